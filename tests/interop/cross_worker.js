'use strict';
// A subscriber on the official socketcluster-client@20, for the cross-worker cluster tests.
//
//   node cross_worker.js --url ws://127.0.0.1:PORT/socketcluster/ --codec json|minbin
//                        --channel NAME --count N [--timeout MS]
//
// Connects, asks the server which worker process it landed on (procedure `worker`, answered by
// tests/cluster/cluster_app.py with {pid}), subscribes to NAME and prints one JSON line
//   {"event": "ready", "pid": PID}
// once the subscription is acknowledged. It then collects N messages shaped {i, t} (t = the
// publisher's wall clock in ms, float) and prints
//   {"event": "done", "pid": PID, "order": [i...], "latencies_ms": [...]}
// where a latency is this process's wall clock at receipt minus t (same host, same clock).
// Exit 0 when done; 2 on error or when --timeout (default 30000 ms) passes first.

const {performance} = require('perf_hooks');
const socketClusterClient = require('socketcluster-client');
const scCodecMinBin = require('sc-codec-min-bin');

function parseArgs(argv) {
  const opts = {codec: 'json', count: '1', timeout: '30000'};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      console.error(`cross_worker.js: bad argument ${argv[i]}`);
      process.exit(3);
    }
    opts[argv[i].slice(2)] = argv[i + 1];
  }
  return opts;
}

const args = parseArgs(process.argv.slice(2));
const url = new URL(args.url);
const count = Number(args.count);
const nowMs = () => performance.timeOrigin + performance.now();

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

setTimeout(() => {
  emit({event: 'error', error: `timed out after ${args.timeout} ms`});
  process.exit(2);
}, Number(args.timeout)).unref();

(async () => {
  const socket = socketClusterClient.create({
    hostname: url.hostname,
    port: Number(url.port),
    path: url.pathname,
    codecEngine: args.codec === 'minbin' ? scCodecMinBin : undefined,
    ackTimeout: 5000,
    connectTimeout: 5000,
    autoReconnect: false,
  });
  const {pid} = await socket.invoke('worker');
  const channel = socket.subscribe(args.channel);
  await channel.listener('subscribe').once();
  emit({event: 'ready', pid});
  const order = [];
  const latencies = [];
  for await (const message of channel) {
    latencies.push(nowMs() - message.t);
    order.push(message.i);
    if (order.length >= count) break;
  }
  emit({event: 'done', pid, order, latencies_ms: latencies});
  socket.disconnect();
  process.exit(0);
})().catch((error) => {
  emit({event: 'error', error: String(error && error.stack || error)});
  process.exit(2);
});
