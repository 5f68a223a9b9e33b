'use strict';
// Recovery of a history channel with the official socketcluster-client@20 and the code that
// docs/recovery-protocol.md documents ("Recovering with the official JavaScript client"), read
// from that file and run as written. Driven by tests/interop/test_recovery_official.py:
//
//   node recovery.js --url ws://127.0.0.1:PORT/socketcluster/ --codec json|minbin --channel NAME
//                    [--timeout MS]
//
// Prints JSON lines on stdout and reads commands, one per line, on stdin:
//   {"event": "subscribed"}                   the first subscription is acknowledged
//   {"event": "received", "count": K, "data": D}  after each publication the channel delivered
//   disconnect  -> {"event": "disconnected", "position": {offset, epoch}}
//   reconnect   -> {"event": "resubscribed", "position": {offset, epoch}} once subscribed again
//   report      -> {"event": "report", ...}    everything observed (see report() below)
// Exit 0 after the report; 2 on error or when --timeout (default 20000 ms) passes first.

const fs = require('fs');
const path = require('path');
const readline = require('readline');
const {parseArgs, emit, fail, failAfter, createSocket} = require('./lib/script');

const DOC = path.join(__dirname, '..', '..', 'docs', 'recovery-protocol.md');
const SECTION = '## Recovering with the official JavaScript client';

// The documented functions: the first ```js block of the section, evaluated as it stands.
function loadDocumentedCode() {
  const text = fs.readFileSync(DOC, 'utf8');
  const start = text.indexOf(SECTION);
  if (start < 0) throw new Error(`${DOC} has no section "${SECTION}"`);
  const block = /```js\n([\s\S]*?)```/.exec(text.slice(start));
  if (!block) throw new Error(`the section "${SECTION}" has no js block`);
  return new Function(`${block[1]}\nreturn {trackPosition, subscribeWithRecovery};`)();
}

const args = parseArgs('recovery.js', {codec: 'json', timeout: '20000'});
failAfter(args.timeout);

const {subscribeWithRecovery} = loadDocumentedCode();
const socket = createSocket(args.url, args.codec);

// What the test observes besides the app's own view: the wire (every #publish on the channel and
// every #subscribe answer with a position) and the subscribe requests the client sent.
const wire = {publishes: [], answers: [], subscribeRequests: []};
(async () => {
  for await (const {message} of socket.listener('message')) {
    let packets;
    try {
      packets = socket.decode(message);
    } catch (error) {
      continue;
    }
    for (const packet of Array.isArray(packets) ? packets : [packets]) {
      if (packet && packet.event === '#publish' && packet.data && packet.data.channel === args.channel) {
        wire.publishes.push(packet.data);
      } else if (packet && typeof packet.rid === 'number' && packet.data && 'epoch' in Object(packet.data)) {
        wire.answers.push(packet.data);
      }
    }
  }
})().catch(fail);
(async () => {
  for await (const {channel, subscriptionOptions} of socket.listener('subscribeRequest')) {
    if (channel === args.channel) wire.subscribeRequests.push(JSON.parse(JSON.stringify(subscriptionOptions)));
  }
})().catch(fail);

// The app: subscribe with recovery as documented, and collect what the channel delivers.
const position = {offset: 0, epoch: ''};
const gaps = [];
const received = [];
const channel = subscribeWithRecovery(socket, args.channel, position, (at, data) => {
  gaps.push({at: {...at}, offset: data.offset, epoch: data.epoch});
});
(async () => {
  for await (const data of channel) {
    received.push(data);
    emit({event: 'received', count: received.length, data});
  }
})().catch(fail);

function report() {
  return {
    event: 'report',
    received,
    position,
    gaps,
    publishes: wire.publishes,
    answers: wire.answers,
    subscribeRequests: wire.subscribeRequests,
    state: socket.state,
    channelState: channel.state,
  };
}

async function command(line) {
  if (line === 'disconnect') {
    socket.disconnect();
    emit({event: 'disconnected', position: {...position}, channelState: channel.state});
  } else if (line === 'reconnect') {
    const subscribed = channel.listener('subscribe').once();
    socket.connect();
    await subscribed;
    emit({event: 'resubscribed', position: {...position}});
  } else if (line === 'report') {
    emit(report());
    socket.disconnect();
    process.exit(0);
  } else if (line) {
    fail(`unknown command ${JSON.stringify(line)}`);
  }
}

(async () => {
  await channel.listener('subscribe').once();
  emit({event: 'subscribed'});
  for await (const line of readline.createInterface({input: process.stdin})) {
    await command(line.trim());
  }
  fail('stdin closed before the report');
})().catch(fail);
