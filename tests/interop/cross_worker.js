'use strict';
// A subscriber on the official socketcluster-client@20, for the cross-worker cluster tests.
//
//   node cross_worker.js --url ws://127.0.0.1:PORT/socketcluster/ --codec json|minbin
//                        --channel NAME --count N [--timeout MS] [--avoid PID]
//
// Connects, asks the server which worker process it landed on (procedure `worker`, answered by
// tests/cluster/cluster_app.py with {pid}; with --avoid, connects again until that is not PID, so
// that two subscribers sit on two workers), subscribes to NAME and prints one JSON line
//   {"event": "ready", "pid": PID}
// once the subscription is acknowledged. It then collects N messages shaped {i, t} (t = the
// publisher's wall clock in ms, float) and prints
//   {"event": "done", "pid": PID, "order": [i...], "latencies_ms": [...]}
// where a latency is this process's wall clock at receipt minus t (same host, same clock).
// Exit 0 when done; 2 on error or when --timeout (default 30000 ms) passes first.

const {performance} = require('perf_hooks');
const {parseArgs, emit, fail, failAfter, createSocket} = require('./lib/script');

const args = parseArgs('cross_worker.js', {codec: 'json', count: '1', timeout: '30000', avoid: ''});
const count = Number(args.count);
const nowMs = () => performance.timeOrigin + performance.now();

failAfter(args.timeout);

(async () => {
  let socket = createSocket(args.url, args.codec);
  let {pid} = await socket.invoke('worker');
  for (let attempt = 1; String(pid) === args.avoid; attempt++) {
    if (attempt > 100) throw new Error(`every connection landed on worker ${args.avoid}`);
    socket.disconnect();
    socket = createSocket(args.url, args.codec);
    ({pid} = await socket.invoke('worker'));
  }
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
})().catch(fail);
