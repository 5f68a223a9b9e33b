'use strict';
// One round trip with the official socketcluster-client@20: invoke `echo`, subscribe, publish, receive.
//
//   node echo_publish.js --url ws[s]://127.0.0.1:PORT/socketcluster/ [--codec json|minbin] [--timeout MS]
//
// Over wss:// the server's CA comes from NODE_EXTRA_CA_CERTS. Prints one JSON line
//   {"event": "done", "echo": ..., "received": ...}
// and exits 0; on an error prints {"event": "error", "error"} and exits 2.

const {parseArgs, emit, fail, failAfter, createSocket} = require('./lib/script');

const args = parseArgs('echo_publish.js', {codec: 'json', timeout: '10000'});
failAfter(args.timeout);

(async () => {
  const socket = createSocket(args.url, args.codec);
  const echo = await socket.invoke('echo', {hello: 'tls'});
  const channel = socket.subscribe('tls-room');
  await channel.listener('subscribe').once();
  const consumer = channel.createConsumer(); // before the publish: its message may come with the ack
  await socket.invokePublish('tls-room', {n: 1});
  const {value: received} = await consumer.next();
  emit({event: 'done', echo, received});
  socket.disconnect();
  process.exit(0);
})().catch(fail);
