'use strict';
// A subscriber on the official socketcluster-client@20 for the embedding tests.
//
//   node subscriber.js --url ws://127.0.0.1:PORT/socketcluster/ --channel NAME [--count N] [--timeout MS]
//
// Prints {"event": "ready"} once the subscription is acknowledged, then one
// {"event": "message", "data": ...} per publication, and exits 0 after N (default 1) of them;
// 2 on error or when --timeout (default 20000 ms) passes first.

const {parseArgs, emit, fail, failAfter, createSocket} = require('./lib/script');

const args = parseArgs('subscriber.js', {codec: 'json', count: '1', timeout: '20000'});
failAfter(args.timeout);

(async () => {
  const socket = createSocket(args.url, args.codec);
  const channel = socket.subscribe(args.channel);
  await channel.listener('subscribe').once();
  emit({event: 'ready'});
  let seen = 0;
  for await (const data of channel) {
    emit({event: 'message', data});
    if (++seen >= Number(args.count)) break;
  }
  socket.disconnect();
  process.exit(0);
})().catch(fail);
