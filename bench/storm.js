'use strict';
// The clients of bench/history.py's recovery storm: N official socketcluster-client@20 sockets
// (from tests/interop/node_modules) that subscribe to one history channel with recovery, using the
// code docs/recovery-protocol.md documents (read from that file, as the interop test does).
//
//   node bench/storm.js --url ws://127.0.0.1:PORT/socketcluster/ --channel NAME --clients N --missed M
//
// Prints JSON lines: {"event": "ready"} when all are subscribed; {"event": "primed"} when all got
// their first publication; {"event": "cut"} when all lost their connection; {"event": "recovered",
// "gaps": G} when each got M publications after the cut. Exits 2 on error.

const fs = require('fs');
const path = require('path');

const ROOT = path.join(__dirname, '..');
const socketClusterClient = require(path.join(ROOT, 'tests', 'interop', 'node_modules', 'socketcluster-client'));

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].slice(2)] = process.argv[i + 1];
const N = Number(args.clients);
const MISSED = Number(args.missed);

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function documentedCode() {
  const text = fs.readFileSync(path.join(ROOT, 'docs', 'recovery-protocol.md'), 'utf8');
  const section = text.slice(text.indexOf('## Recovering with the official JavaScript client'));
  const block = /```js\n([\s\S]*?)```/.exec(section);
  return new Function(`${block[1]}\nreturn {subscribeWithRecovery};`)();
}

const {subscribeWithRecovery} = documentedCode();
const {hostname, port, pathname} = new URL(args.url);
const counts = {subscribed: 0, primed: 0, cut: 0, recovered: 0, gaps: 0};

function step(name, total, event) {
  counts[name] += 1;
  if (counts[name] === total) emit({event, gaps: counts.gaps});
}

for (let i = 0; i < N; i++) {
  const socket = socketClusterClient.create({
    hostname, port: Number(port), path: pathname, ackTimeout: 10000, connectTimeout: 10000,
    autoReconnectOptions: {initialDelay: 50, randomness: 50, multiplier: 1.5, maxDelay: 500},
  });
  const position = {offset: 0, epoch: ''};
  const channel = subscribeWithRecovery(socket, args.channel, position, () => { counts.gaps += 1; });
  let received = 0;
  let afterCut = -1;
  (async () => {
    for await (let _ of channel.listener('subscribe')) {
      if (afterCut < 0) step('subscribed', N, 'ready');
      break;
    }
  })();
  (async () => {
    for await (let _ of socket.listener('disconnect')) {
      if (afterCut < 0) {
        afterCut = 0;
        step('cut', N, 'cut');
      }
    }
  })();
  (async () => {
    for await (let _ of channel) {
      received += 1;
      if (received === 1) step('primed', N, 'primed');
      if (afterCut >= 0 && ++afterCut === MISSED) step('recovered', N, 'recovered');
    }
  })();
}
setTimeout(() => { emit({event: 'error', error: 'timed out'}); process.exit(2); }, 300000).unref();
