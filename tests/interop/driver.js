'use strict';
// Runs ONE interop scenario against a SocketCluster v20 compatible server, with the official
// socketcluster-client@20 and (for what that client cannot do) a raw `ws` peer.
//
//   node driver.js --url ws://127.0.0.1:PORT/socketcluster/ --codec json|minbin --scenario NAME
//                  [--auth-key KEY] [--ping-timeout MS] [--timeout MS]
//   node driver.js --list          (prints the scenario names as a JSON array)
//
// Prints exactly one JSON line on stdout:
//   {"scenario", "codec", "ok", "checks": [{label, ok, actual, expected}], "error"?}
// `actual`/`expected` are normalised (bytes as {"<ArrayBuffer>": hex} / {"<Buffer>": hex}, errors as
// plain objects, undefined as "<undefined>"). Exit status: 0 all checks passed, 1 a check failed,
// 2 the scenario crashed or hit the overall time limit, 3 bad usage.
//
// `--ping-timeout` is the pingTimeout (ms) the server is expected to advertise in its handshake reply.

const util = require('util');
const jwt = require('jsonwebtoken');
const socketClusterClient = require('socketcluster-client');
const scCodecMinBin = require('sc-codec-min-bin');
const {RawPeer} = require('./lib/rawpeer');

// ------------------------------------------------------------------------------------------------
// CLI

function parseArgs(argv) {
  let opts = {codec: 'json', 'auth-key': 'hubbub-interop-test-secret', 'ping-timeout': '5000', timeout: '10000'};
  for (let i = 0; i < argv.length; i++) {
    let a = argv[i];
    if (a === '--list') {
      opts.list = true;
      continue;
    }
    if (!a.startsWith('--') || argv[i + 1] === undefined) usage(`bad argument ${a}`);
    opts[a.slice(2)] = argv[++i];
  }
  return opts;
}

function usage(msg) {
  console.error(`driver.js: ${msg}`);
  console.error('usage: node driver.js --url URL --codec json|minbin --scenario NAME [--auth-key KEY] ' +
    '[--ping-timeout MS] [--timeout MS] | --list');
  process.exit(3);
}

const args = parseArgs(process.argv.slice(2));
const CODEC = args.codec;
const AUTH_KEY = args['auth-key'];
const PING_TIMEOUT = Number(args['ping-timeout']);
const MINBIN = CODEC === 'minbin';
// The server under test. hubbub differs from socketcluster-server in a few documented places
// (docs/protocol.md, "Where hubbub differs"); those expectations branch on HUBBUB, nothing else.
const HUBBUB = args.target === 'hubbub';
const codecEngine = MINBIN ? scCodecMinBin : undefined;

// ------------------------------------------------------------------------------------------------
// Checks and normalisation

const checks = [];

function norm(v, seen = new Set()) {
  if (v === undefined) return '<undefined>';
  if (v === null || typeof v !== 'object') {
    if (typeof v === 'number' && !Number.isFinite(v)) return `<number ${v}>`;
    if (typeof v === 'function') return '<function>';
    return v;
  }
  if (seen.has(v)) return '<cycle>';
  seen.add(v);
  try {
    if (v instanceof ArrayBuffer) return {'<ArrayBuffer>': Buffer.from(v).toString('hex')};
    if (Buffer.isBuffer(v)) return {'<Buffer>': v.toString('hex')};
    if (ArrayBuffer.isView(v)) return {[`<${v.constructor.name}>`]: Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')};
    if (v instanceof Date) return {'<Date>': v.toISOString()};
    if (v instanceof Error) {
      let out = {name: v.name, message: v.message};
      for (let k of Object.keys(v)) if (k !== 'stack' && !(k in out)) out[k] = norm(v[k], seen);
      return out;
    }
    if (Array.isArray(v)) return v.map((x) => norm(x, seen));
    let out = {};
    for (let k of Object.keys(v)) out[k] = norm(v[k], seen);
    return out;
  } finally {
    seen.delete(v);
  }
}

// actual deep-equals expected (key order ignored; use keysOf() where order matters)
function check(label, actual, expected) {
  let a = norm(actual);
  let e = norm(expected);
  checks.push({label, ok: util.isDeepStrictEqual(a, e), actual: a, expected: e});
}

// predicate check: `description` says what was expected
function checkThat(label, actual, predicate, description) {
  let ok = false;
  try {
    ok = Boolean(predicate(actual));
  } catch (e) {
    ok = false;
  }
  checks.push({label, ok, actual: norm(actual), expected: `<${description}>`});
}

const keysOf = (o) => (o && typeof o === 'object' ? Object.keys(o) : o);
const BASE64ID = /^[A-Za-z0-9_-]{20}$/;
const isBase64Id = (s) => typeof s === 'string' && BASE64ID.test(s);

// A response as decoded by the peer: under min-bin, absent error/data arrive as null.
function response(rid, {data, error} = {}) {
  if (MINBIN) return {rid, error: error === undefined ? null : error, data: data === undefined ? null : data};
  let out = {rid};
  if (data !== undefined) out.data = data;
  if (error !== undefined) out.error = error;
  return out;
}

// An event/request packet as decoded by the peer.
function eventPacket(event, data, cid) {
  if (MINBIN) {
    let out = {event, data: data === undefined ? null : data};
    if (cid !== undefined) out.cid = cid;
    return out;
  }
  let out = {event};
  if (data !== undefined) out.data = data;
  if (cid !== undefined) out.cid = cid;
  return out;
}

function publishPacket(channel, data) {
  return eventPacket('#publish', {channel, data});
}

// ------------------------------------------------------------------------------------------------
// Helpers: waiting, clients, raw peers

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function within(promise, ms, what) {
  let timer;
  try {
    return await Promise.race([
      promise,
      new Promise((resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms waiting for ${what}`)), ms);
      })
    ]);
  } finally {
    clearTimeout(timer);
  }
}

async function once(emitter, name, ms = 3000) {
  try {
    return await emitter.listener(name).once(ms);
  } catch (e) {
    if (e && e.name === 'TimeoutError') throw new Error(`timed out after ${ms} ms waiting for '${name}' event`);
    throw e;
  }
}

async function waitUntil(cond, ms, what) {
  let deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await delay(5);
  }
}

// Settles a promise into {ok, value} / {ok:false, error} without throwing.
async function settle(promise, ms, what) {
  try {
    return {resolved: true, value: await within(promise, ms, what)};
  } catch (error) {
    return {resolved: false, error};
  }
}

const baseUrl = new URL(args.url || 'ws://127.0.0.1:1/socketcluster/');
const clients = [];
const peers = [];

function memoryAuthEngine(initialToken) {
  let store = {};
  return {
    store,
    preset(name) {
      if (initialToken != null) store[name] = initialToken;
    },
    saveToken: (name, token) => {
      store[name] = token;
      return Promise.resolve(token);
    },
    removeToken: (name) => {
      let old = store[name] === undefined ? null : store[name];
      delete store[name];
      return Promise.resolve(old);
    },
    loadToken: (name) => Promise.resolve(store[name] === undefined ? null : store[name])
  };
}

// The official client. Every event of interest is recorded in client.log.
function client(options = {}) {
  let {token, ...rest} = options;
  let authEngine = memoryAuthEngine(token);
  let c = socketClusterClient.create({
    hostname: baseUrl.hostname,
    port: Number(baseUrl.port),
    path: baseUrl.pathname,
    codecEngine,
    ackTimeout: 3000,
    connectTimeout: 5000,
    autoConnect: false,
    authEngine,
    autoReconnectOptions: {initialDelay: 100, randomness: 0, multiplier: 1, maxDelay: 500},
    ...rest
  });
  authEngine.preset(c.authTokenName);
  c.authStore = authEngine.store;
  c.log = [];
  for (let name of ['connect', 'close', 'error', 'authStateChange', 'kickOut', 'subscribeFail',
    'removeAuthToken', 'authenticate', 'deauthenticate']) {
    (async () => {
      for await (let e of c.listener(name)) {
        let rec = {event: name};
        for (let k of Object.keys(e)) if (typeof e[k] !== 'function') rec[k] = e[k];
        c.log.push(rec);
      }
    })();
  }
  clients.push(c);
  if (options.autoConnect !== false) c.connect();
  return c;
}

async function connected(options = {}) {
  let c = client({...options, autoConnect: false});
  let p = once(c, 'connect', 5000);
  c.connect();
  c.status = await p;
  return c;
}

// Collects everything a receiver / channel yields.
function collect(iterable) {
  let items = [];
  (async () => {
    for await (let x of iterable) items.push(x);
  })();
  return items;
}

function urlWith({path, query} = {}) {
  return `${baseUrl.protocol}//${baseUrl.host}${path === undefined ? baseUrl.pathname : path}${query || ''}`;
}

function raw(options = {}) {
  let p = new RawPeer(urlWith(options), {codec: scCodecMinBin, codecName: CODEC, ...options});
  peers.push(p);
  return p;
}

// Raw peer that has completed a handshake; returns [peer, handshake response packet].
async function rawConnected(options = {}, authToken = null) {
  let p = raw(options);
  await within(p.opened, 3000, 'raw WebSocket open');
  p.send({event: '#handshake', data: {authToken}, cid: 1});
  let res = await p.next(3000);
  if (!res || res.rid !== 1) throw new Error(`raw handshake failed: ${JSON.stringify(norm(res))}`);
  return [p, res];
}

// Sends an RPC from a raw peer and returns the response for it (other frames are kept in `others`).
async function rawCall(p, event, data, cid, {others = [], ms = 3000} = {}) {
  p.send(data === undefined ? {event, cid} : {event, data, cid});
  let deadline = Date.now() + ms;
  for (;;) {
    let pkt = await p.next(Math.max(1, deadline - Date.now()));
    if (pkt === undefined) throw new Error(`no response to raw ${event} (cid ${cid}) within ${ms} ms`);
    if (pkt.rid === cid && typeof pkt.event !== 'string') return pkt;
    others.push(pkt);
  }
}

async function errorOf(promise, ms = 3000, what = 'rejection') {
  let r = await settle(promise, ms, what);
  return r.resolved ? {'<resolved>': norm(r.value)} : r.error;
}

function tokenFor(payload, options = {expiresIn: 3600}, key = AUTH_KEY) {
  return jwt.sign(payload, key, options);
}

const QUIET_MS = 300; // window used to assert that nothing (more) arrives

// ------------------------------------------------------------------------------------------------
// Scenarios

const scenarios = {};

// -- handshake ------------------------------------------------------------------------------------

scenarios.handshake_no_token = async () => {
  let c = await connected();
  check('client connect: authError', c.status.authError, undefined);
  checkThat('client connect: id', c.status.id, isBase64Id, '20-char base64id');
  check('client connect: pingTimeout', c.status.pingTimeout, PING_TIMEOUT);
  check('client connect: isAuthenticated', c.status.isAuthenticated, false);
  check('client authState', c.authState, 'unauthenticated');
  check('client state', c.state, 'open');

  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {authToken: null}, cid: 1});
  let f = await p.nextFrame(3000);
  check('raw: handshake reply frame is binary (min-bin) / text (json)', f && f.binary, MINBIN);
  let res = f && f.packet;
  check('raw: reply rid', res && res.rid, 1);
  check('raw: reply error', res && (res.error === undefined ? null : res.error), null);
  if (!MINBIN) check('raw: reply packet keys', keysOf(res), ['rid', 'data']);
  check('raw: reply data keys in order', keysOf(res && res.data), ['id', 'pingTimeout', 'isAuthenticated']);
  checkThat('raw: reply id', res && res.data.id, isBase64Id, '20-char base64id');
  checkThat('raw: reply id differs from the first connection', res && res.data.id, (id) => id !== c.status.id,
    `!= ${c.status.id}`);
  check('raw: pingTimeout', res && res.data.pingTimeout, PING_TIMEOUT);
  check('raw: isAuthenticated', res && res.data.isAuthenticated, false);
  check('raw: nothing after the handshake reply', await p.next(QUIET_MS), undefined);
  let echo = await rawCall(p, 'echo', 'after-handshake', 2);
  check('raw: echo after handshake', echo, response(2, {data: 'after-handshake'}));
};

async function rawBadTokenHandshake(token, cid) {
  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {authToken: token}, cid});
  let res = await p.next(3000);
  let next = await p.next(1000);
  let later = await p.next(QUIET_MS);
  return {p, res, next, later};
}

function checkBadTokenHandshake(prefix, {res, next, later}, cid, expectedError) {
  check(`${prefix}: reply rid`, res && res.rid, cid);
  check(`${prefix}: reply data keys in order`, keysOf(res && res.data), ['id', 'pingTimeout', 'authError', 'isAuthenticated']);
  check(`${prefix}: isAuthenticated`, res && res.data.isAuthenticated, false);
  check(`${prefix}: authError`, res && res.data.authError, expectedError);
  check(`${prefix}: #removeAuthToken pushed after the reply`, next, eventPacket('#removeAuthToken'));
  check(`${prefix}: nothing else`, later, undefined);
}

async function officialClientWithBadToken(token, expectedName, expectedMessage) {
  let c = await connected({token});
  check('client connect: isAuthenticated', c.status.isAuthenticated, false);
  let ae = c.status.authError || {};
  check('client connect: authError name/message/isBadToken', {name: ae.name, message: ae.message, isBadToken: ae.isBadToken},
    {name: expectedName, message: expectedMessage, isBadToken: true});
  check('client authState', c.authState, 'unauthenticated');
  check('client signedAuthToken', c.signedAuthToken, null);
  await waitUntil(() => c.authStore[c.authTokenName] === undefined, 2000, 'stored token removal').catch(() => {});
  check('client: stored token removed', c.authStore[c.authTokenName], undefined);
  check('client: whoami', await c.invoke('whoami'), null);
}

scenarios.handshake_valid_token = async () => {
  let token = tokenFor({username: 'dave'});
  let payload = jwt.decode(token);
  let [p, res] = await rawConnected({}, token);
  check('raw: reply data keys in order', keysOf(res.data), ['id', 'pingTimeout', 'isAuthenticated']);
  check('raw: isAuthenticated', res.data.isAuthenticated, true);
  check('raw: no #setAuthToken (nothing) after the reply', await p.next(QUIET_MS), undefined);
  check('raw: whoami returns the token payload', await rawCall(p, 'whoami', undefined, 2), response(2, {data: payload}));

  let c = await connected({token});
  check('client connect: isAuthenticated', c.status.isAuthenticated, true);
  check('client connect: authError', c.status.authError, undefined);
  check('client authState', c.authState, 'authenticated');
  check('client authToken', c.authToken, payload);
  check('client whoami', await c.invoke('whoami'), payload);
};

scenarios.handshake_expired_token = async () => {
  let exp = Math.floor(Date.now() / 1000) - 60;
  let token = tokenFor({username: 'erin', exp}, {});
  let r = await rawBadTokenHandshake(token, 1);
  checkBadTokenHandshake('raw', r, 1, {
    message: 'jwt expired',
    name: 'AuthTokenExpiredError',
    // A JS Date has no enumerable keys, so the official server sends {} under min-bin; hubbub
    // sends the ISO string under both codecs.
    expiry: MINBIN && !HUBBUB ? {} : new Date(exp * 1000).toISOString(),
    isBadToken: true
  });
  check('raw: whoami after bad token', await rawCall(r.p, 'whoami', undefined, 2), response(2, {data: null}));
  await officialClientWithBadToken(token, 'AuthTokenExpiredError', 'jwt expired');
};

scenarios.handshake_wrong_key_token = async () => {
  let token = tokenFor({username: 'mallory'}, {expiresIn: 3600}, 'some-other-key');
  let r = await rawBadTokenHandshake(token, 1);
  checkBadTokenHandshake('raw', r, 1, {message: 'invalid signature', name: 'AuthTokenInvalidError', isBadToken: true});
  await officialClientWithBadToken(token, 'AuthTokenInvalidError', 'invalid signature');
};

scenarios.handshake_garbage_token = async () => {
  let r = await rawBadTokenHandshake('garbage', 7);
  checkBadTokenHandshake('raw', r, 7, {message: 'jwt malformed', name: 'AuthTokenInvalidError', isBadToken: true});
  await officialClientWithBadToken('garbage', 'AuthTokenInvalidError', 'jwt malformed');
};

// -- channels -------------------------------------------------------------------------------------

scenarios.subscribe_unsubscribe = async () => {
  let a = await connected();
  let room = a.subscribe('room');
  check('client: channel state right after subscribe()', room.state, 'pending');
  await once(room, 'subscribe');
  check('client: channel state after ack', room.state, 'subscribed');
  check('client: subscriptions()', a.subscriptions(), ['room']);
  a.unsubscribe('room');
  check('client: channel state after unsubscribe()', room.state, 'unsubscribed');
  check('client: no subscribeFail / error events', a.log.filter((e) => e.event === 'subscribeFail' || e.event === 'error'), []);

  // Wire-level: subscribe (RPC), delivery, transmit-form #unsubscribe, RPC-form #unsubscribe.
  let [p] = await rawConnected();
  check('raw: #subscribe reply', await rawCall(p, '#subscribe', {channel: 'room'}, 2), response(2));
  let b = await connected();
  await b.invokePublish('room', 'm1');
  check('raw: delivery while subscribed', await p.next(2000), publishPacket('room', 'm1'));
  p.send({event: '#unsubscribe', data: 'room'});
  check('raw: #unsubscribe (transmit) gets no reply; echo after it', await rawCall(p, 'echo', 'sync', 3), response(3, {data: 'sync'}));
  await b.invokePublish('room', 'm2');
  check('raw: no delivery after #unsubscribe', await p.next(QUIET_MS), undefined);
  check('raw: #subscribe again', await rawCall(p, '#subscribe', {channel: 'room'}, 4), response(4));
  check('raw: RPC-form #unsubscribe reply', await rawCall(p, '#unsubscribe', 'room', 5), response(5));
  await b.invokePublish('room', 'm3');
  check('raw: no delivery after RPC #unsubscribe', await p.next(QUIET_MS), undefined);
  let notSub = await rawCall(p, '#unsubscribe', 'notSubscribed', 6);
  check('raw: #unsubscribe of a channel not subscribed -> error name', notSub.error && notSub.error.name, 'BrokerError');
};

async function twoSubscribers(channel) {
  let a = await connected();
  let b = await connected();
  let ca = a.subscribe(channel);
  let cb = b.subscribe(channel);
  let ga = collect(ca);
  let gb = collect(cb);
  await Promise.all([once(ca, 'subscribe'), once(cb, 'subscribe')]);
  return {a, b, ga, gb};
}

scenarios.publish_transmit = async () => {
  let {a, ga, gb} = await twoSubscribers('room');
  await a.transmitPublish('room', {text: 'hello via transmitPublish'});
  await waitUntil(() => ga.length >= 1 && gb.length >= 1, 2000, 'deliveries').catch(() => {});
  check('publisher receives its own message', ga, [{text: 'hello via transmitPublish'}]);
  check('other subscriber receives it', gb, [{text: 'hello via transmitPublish'}]);

  let [p] = await rawConnected();
  await rawCall(p, '#subscribe', {channel: 'room'}, 2);
  p.send({event: '#publish', data: {channel: 'room', data: 'raw-tx'}});
  check('raw: transmit-form #publish: own delivery (no ack)', await p.next(2000), publishPacket('room', 'raw-tx'));
  check('raw: nothing else', await p.next(QUIET_MS), undefined);
  await waitUntil(() => ga.length >= 2, 2000, 'delivery of the raw publish').catch(() => {});
  check('official subscriber receives the raw publish', ga.slice(1), ['raw-tx']);
};

scenarios.publish_invoke = async () => {
  let {a, ga, gb} = await twoSubscribers('room');
  let r = await settle(a.invokePublish('room', {text: 'hello via invokePublish'}), 3000, 'invokePublish');
  check('invokePublish resolves', r.resolved, true);
  check('invokePublish resolves with nothing', r.value, MINBIN ? null : undefined);
  await waitUntil(() => ga.length >= 1 && gb.length >= 1, 2000, 'deliveries').catch(() => {});
  check('publisher receives its own message', ga, [{text: 'hello via invokePublish'}]);
  check('other subscriber receives it', gb, [{text: 'hello via invokePublish'}]);

  let [p] = await rawConnected();
  await rawCall(p, '#subscribe', {channel: 'room'}, 2);
  let others = [];
  let ack = await rawCall(p, '#publish', {channel: 'room', data: {n: 1}}, 3, {others});
  check('raw: #publish ack', ack, response(3));
  if (!others.length) {
    let more = await p.next(2000);
    if (more !== undefined) others.push(more);
  }
  check('raw: own delivery', others, [publishPacket('room', {n: 1})]);
  check('raw: nothing else', await p.next(QUIET_MS), undefined);
  let nobody = await rawCall(p, '#publish', {channel: 'nobody-listens', data: 'x'}, 4);
  check('raw: publish to a channel without subscribers', nobody, response(4));
};

scenarios.server_publish = async () => {
  let a = await connected();
  let room = a.subscribe('room');
  let hidden = a.subscribe('hidden');
  let gr = collect(room);
  let gh = collect(hidden);
  await Promise.all([once(room, 'subscribe'), once(hidden, 'subscribe')]);
  let r = await settle(a.invoke('serverPublish'), 3000, 'serverPublish');
  check('serverPublish resolves', r.resolved, true);
  await waitUntil(() => gr.length >= 2, 2000, 'room deliveries').catch(() => {});
  check('room deliveries in order', gr, [{from: 'server', via: 'transmitPublish'}, {from: 'server', via: 'invokePublish'}]);
  await delay(QUIET_MS);
  check('"hidden" delivery blocked by outbound middleware', gh, []);

  let [p] = await rawConnected();
  await rawCall(p, '#subscribe', {channel: 'room'}, 2);
  await rawCall(p, '#subscribe', {channel: 'hidden'}, 3);
  let others = [];
  let res = await rawCall(p, 'serverPublish', undefined, 4, {others});
  check('raw: serverPublish reply', res, response(4));
  while (others.length < 2) {
    let x = await p.next(2000);
    if (x === undefined) break;
    others.push(x);
  }
  let x = await p.next(QUIET_MS);
  if (x !== undefined) others.push(x);
  check('raw: deliveries (no "hidden")', others, [
    publishPacket('room', {from: 'server', via: 'transmitPublish'}),
    publishPacket('room', {from: 'server', via: 'invokePublish'})
  ]);
};

scenarios.subscribe_forbidden = async () => {
  let a = await connected();
  let ch = a.subscribe('forbidden');
  let fail = await once(ch, 'subscribeFail');
  let e = fail.error || {};
  check('subscribeFail error', {name: e.name, message: e.message},
    {name: 'SubscribeForbiddenError', message: 'You may not subscribe to forbidden'});
  check('channel state', ch.state, 'unsubscribed');
  check('isSubscribed(includePending)', a.isSubscribed('forbidden', true), false);

  let [p] = await rawConnected();
  check('raw: #subscribe forbidden reply', await rawCall(p, '#subscribe', {channel: 'forbidden'}, 2),
    response(2, {error: {message: 'You may not subscribe to forbidden', name: 'SubscribeForbiddenError'}}));
};

scenarios.publish_readonly = async () => {
  let a = await connected();
  let ch = a.subscribe('readonly');
  let got = collect(ch);
  await once(ch, 'subscribe');
  let e = await errorOf(a.invokePublish('readonly', {text: 'nope'}));
  check('invokePublish rejected', {name: e.name, message: e.message},
    {name: 'PublishForbiddenError', message: 'Channel readonly is read-only'});
  await a.transmitPublish('readonly', {text: 'nope either'});
  check('echo after transmitPublish', await a.invoke('echo', 'sync'), 'sync');
  await delay(QUIET_MS);
  check('nothing delivered on readonly', got, []);

  let [p] = await rawConnected();
  check('raw: #publish readonly reply', await rawCall(p, '#publish', {channel: 'readonly', data: 1}, 2),
    response(2, {error: {message: 'Channel readonly is read-only', name: 'PublishForbiddenError'}}));
};

// -- RPC ------------------------------------------------------------------------------------------

scenarios.invoke_echo = async () => {
  let a = await connected();
  let data = {a: 1, s: 'two', arr: [3, 4.5, null, true], nested: {x: 'y'}, u: 'héllo ✓', big: 2 ** 31, neg: -129, f: -0.5};
  check('echo object', await a.invoke('echo', data), data);
  check('echo string', await a.invoke('echo', 'plain'), 'plain');
  check('echo number', await a.invoke('echo', 42), 42);
  check('echo array', await a.invoke('echo', [1, 'x', {}]), [1, 'x', {}]);
  check('echo false', await a.invoke('echo', false), false);

  let [p] = await rawConnected();
  check('raw: echo reply', await rawCall(p, 'echo', {k: [1, 2]}, 2), response(2, {data: {k: [1, 2]}}));
  check('raw: echo without data', await rawCall(p, 'echo', undefined, 3), response(3, MINBIN ? {data: null} : {}));
};

scenarios.invoke_error = async () => {
  let a = await connected();
  let e = await errorOf(a.invoke('fail', 42));
  check('fail rejected', {name: e.name, message: e.message, code: e.code},
    {name: 'MyCustomError', message: 'Procedure fail always fails', code: 'E_FAIL'});
  e = await errorOf(a.invoke('failPlain'));
  check('failPlain rejected', {name: e.name, message: e.message, code: e.code},
    {name: 'Error', message: 'plain Error object', code: undefined});

  let [p] = await rawConnected();
  check('raw: fail reply', await rawCall(p, 'fail', 42, 2),
    response(2, {error: {message: 'Procedure fail always fails', name: 'MyCustomError', code: 'E_FAIL'}}));
  check('raw: failPlain reply', await rawCall(p, 'failPlain', undefined, 3),
    response(3, {error: {message: 'plain Error object'}}));
};

scenarios.invoke_silent_block = async () => {
  let a = await connected();
  let e = await errorOf(a.invoke('silentBlock', 'x'));
  check('silentBlock rejected', {name: e.name, message: e.message, type: e.type}, {
    name: 'SilentMiddlewareBlockedError',
    message: 'The invoke AGAction was blocked by inbound middleware',
    type: 'inbound'
  });
  let [p] = await rawConnected();
  check('raw: silentBlock reply', await rawCall(p, 'silentBlock', 'x', 2), response(2, {
    error: {message: 'The invoke AGAction was blocked by inbound middleware', name: 'SilentMiddlewareBlockedError', type: 'inbound'}
  }));
};

scenarios.invoke_timeout = async () => {
  let a = await connected();
  let t0 = Date.now();
  let e = await errorOf(a.invoke('never', null, {ackTimeout: 300}), 3000);
  check('never rejected with TimeoutError', {name: e.name, message: e.message},
    {name: 'TimeoutError', message: 'Event response for never event timed out'});
  checkThat('rejected after ~ackTimeout', Date.now() - t0, (ms) => ms >= 250 && ms < 2000, '250..2000 ms');
  check('connection still usable', await a.invoke('echo', 'still here'), 'still here');

  let [p] = await rawConnected();
  p.send({event: 'never', data: null, cid: 2});
  check('raw: no reply to never', await p.next(QUIET_MS), undefined);
  check('raw: echo afterwards', await rawCall(p, 'echo', 1, 3), response(3, {data: 1}));
};

scenarios.transmit = async () => {
  let a = await connected();
  let got = collect(a.receiver('greetBack'));
  await a.transmit('blockedTransmit', {x: 1});
  await a.transmit('greet', 'world');
  await waitUntil(() => got.length >= 1, 2000, 'greetBack').catch(() => {});
  await delay(QUIET_MS);
  check('greetBack received once', got, [{hello: 'world'}]);
  check('no error events', a.log.filter((x) => x.event === 'error'), []);

  let [p] = await rawConnected();
  p.send({event: 'blockedTransmit', data: {x: 1}});
  check('raw: blockedTransmit gets nothing back', await p.next(QUIET_MS), undefined);
  p.send({event: 'greet', data: 'raw'});
  check('raw: greetBack (transmit, no cid)', await p.next(2000), eventPacket('greetBack', {hello: 'raw'}));
};

scenarios.binary = async () => {
  let a = await connected();
  let got = collect(a.receiver('binaryBack'));
  await a.transmit('binary', {buf: Buffer.from('abc'), ab: new Uint8Array([1, 2, 3]).buffer});
  await waitUntil(() => got.length >= 1, 2000, 'binaryBack').catch(() => {});
  // Under min-bin the official server sends a Node Buffer as an index->byte map; hubbub sends
  // Python bytes as msgpack bin, which arrives as an ArrayBuffer.
  let officialBuf = HUBBUB ? new Uint8Array(Buffer.from('hubbub')).buffer : {0: 104, 1: 117, 2: 98, 3: 98, 4: 117, 5: 98};
  let expected = MINBIN
    ? {buf: officialBuf, ab: new Uint8Array([0, 255]).buffer}
    : {buf: {base64: true, data: 'aHViYnVi'}, ab: {base64: true, data: 'AP8='}};
  check('binaryBack received once', got.length, 1);
  let back = got[0] || {};
  check(MINBIN ? 'binaryBack.ab (ArrayBuffer -> msgpack bin)' : 'binaryBack.ab (ArrayBuffer -> {base64:true})', back.ab, expected.ab);
  check(MINBIN ? 'binaryBack.buf (Node Buffer -> index->byte map under min-bin)' : 'binaryBack.buf (Buffer -> {base64:true})',
    back.buf, expected.buf);
  let echoed = await a.invoke('echo', {ab: new Uint8Array([1, 2, 3]).buffer, buf: Buffer.from('hi')});
  check('echo of binary data', echoed, MINBIN
    ? {ab: new Uint8Array([1, 2, 3]).buffer, buf: {0: 104, 1: 105}}
    : {ab: {base64: true, data: 'AQID'}, buf: {base64: true, data: 'aGk='}});

  let [p] = await rawConnected();
  p.send({event: 'binary', data: 'x'});
  let f = await p.nextFrame(2000);
  check('raw: binaryBack frame is binary (min-bin) / text (json)', f && f.binary, MINBIN);
  check('raw: binaryBack packet', f && f.packet, eventPacket('binaryBack', expected));
};

scenarios.server_invoke = async () => {
  let a = await connected();
  let asked = [];
  (async () => {
    for await (let req of a.procedure('clientProc')) {
      asked.push(req.data);
      req.end({answer: 'pong!'});
    }
  })();
  check('serverInvoke result', await a.invoke('serverInvoke'), {clientAnswered: {answer: 'pong!'}});
  check('clientProc got', asked, [{question: 'ping?'}]);

  let [p] = await rawConnected();
  p.send({event: 'serverInvoke', cid: 2});
  let req = await p.next(2000);
  check('raw: server request shape', req && {event: req.event, data: req.data}, {event: 'clientProc', data: {question: 'ping?'}});
  checkThat('raw: server request cid', req && req.cid, (cid) => typeof cid === 'number', 'a number');
  p.send({rid: req && req.cid, data: {answer: 'raw'}});
  check('raw: serverInvoke reply', await p.next(2000), response(2, {data: {clientAnswered: {answer: 'raw'}}}));
};

// -- auth -----------------------------------------------------------------------------------------

function checkIssuedToken(prefix, signed, username) {
  let verified = null;
  let error = null;
  try {
    verified = jwt.verify(signed, AUTH_KEY, {algorithms: ['HS256']});
  } catch (e) {
    error = e;
  }
  check(`${prefix}: token verifies with the auth key (HS256)`, error && error.message, null);
  let header = null;
  try {
    header = JSON.parse(Buffer.from(String(signed).split('.')[0], 'base64url').toString());
  } catch (e) {
    header = String(e);
  }
  check(`${prefix}: JWT header`, header, {alg: 'HS256', typ: 'JWT'});
  check(`${prefix}: payload keys`, keysOf(verified), ['username', 'iat', 'exp']);
  check(`${prefix}: username`, verified && verified.username, username);
  check(`${prefix}: default expiry exp - iat`, verified && verified.exp - verified.iat, 86400);
  return verified;
}

scenarios.login_reconnect = async () => {
  let a = await connected();
  let priv = a.subscribe('private', {waitForAuth: true});
  check('waitForAuth channel pending before login', priv.state, 'pending');
  let authed = once(a, 'authenticate');
  check('login result', await a.invoke('login', {username: 'alice'}), 'logged-in');
  await authed;
  check('client authState', a.authState, 'authenticated');
  let payload = checkIssuedToken('issued', a.signedAuthToken, 'alice');
  check('client authToken (decoded payload)', a.authToken, payload);
  check('token stored by the client', a.authStore[a.authTokenName], a.signedAuthToken);
  if (priv.state !== 'subscribed') await once(priv, 'subscribe');
  check('waitForAuth channel subscribed after login', priv.state, 'subscribed');
  check('whoami', await a.invoke('whoami'), payload);

  let oldId = a.id;
  let p = once(a, 'connect', 5000);
  a.reconnect();
  let status = await p;
  check('reconnect: isAuthenticated', status.isAuthenticated, true);
  check('reconnect: authError', status.authError, undefined);
  checkThat('reconnect: new socket id', status.id, (id) => isBase64Id(id) && id !== oldId, `base64id != ${oldId}`);
  check('reconnect: whoami', await a.invoke('whoami'), payload);
  if (priv.state !== 'subscribed') await once(priv, 'subscribe');
  check('reconnect: private channel re-subscribed', priv.state, 'subscribed');

  let [raw1] = await rawConnected();
  let others = [];
  let res = await rawCall(raw1, 'login', {username: 'zoe'}, 2, {others});
  check('raw: login reply', res, response(2, {data: 'logged-in'}));
  if (!others.length) {
    let x = await raw1.next(2000);
    if (x !== undefined) others.push(x);
  }
  let push = others[0] || {};
  check('raw: #setAuthToken push shape', {event: push.event, keys: keysOf(push.data), cid: push.cid},
    {event: '#setAuthToken', keys: ['token'], cid: undefined});
  checkIssuedToken('raw: pushed', push.data && push.data.token, 'zoe');
};

scenarios.login_ack = async () => {
  let a = await connected();
  check('loginAck result', await a.invoke('loginAck', {username: 'dan'}), 'logged-in-ack');
  check('client authState', a.authState, 'authenticated');
  let payload = checkIssuedToken('issued', a.signedAuthToken, 'dan');
  check('whoami', await a.invoke('whoami'), payload);

  let [p] = await rawConnected();
  p.send({event: 'loginAck', data: {username: 'ann'}, cid: 2});
  let req = await p.next(2000);
  check('raw: #setAuthToken request shape', req && {event: req.event, keys: keysOf(req.data)},
    {event: '#setAuthToken', keys: ['token']});
  checkThat('raw: #setAuthToken carries a numeric cid', req && req.cid, (cid) => typeof cid === 'number', 'a number');
  check('raw: loginAck waits for the client ack', await p.next(QUIET_MS), undefined);
  p.send({rid: req && req.cid});
  check('raw: loginAck reply after the ack', await p.next(2000), response(2, {data: 'logged-in-ack'}));
  checkIssuedToken('raw: pushed', req && req.data && req.data.token, 'ann');
};

scenarios.authenticate_good = async () => {
  let token = tokenFor({username: 'frank'});
  let payload = jwt.decode(token);
  let a = await connected();
  let r = await a.authenticate(token);
  check('authenticate result', {isAuthenticated: r.isAuthenticated, authError: r.authError}, {isAuthenticated: true, authError: null});
  check('client authState', a.authState, 'authenticated');
  check('whoami', await a.invoke('whoami'), payload);

  let [p] = await rawConnected();
  check('raw: #authenticate reply', await rawCall(p, '#authenticate', token, 2),
    response(2, {data: {isAuthenticated: true, authError: null}}));
  check('raw: nothing else', await p.next(QUIET_MS), undefined);
  check('raw: whoami', await rawCall(p, 'whoami', undefined, 3), response(3, {data: payload}));
};

scenarios.authenticate_bad = async () => {
  let a = await connected();
  await a.authenticate(tokenFor({username: 'gina'}));
  check('authenticated first', a.authState, 'authenticated');
  let removed = once(a, 'removeAuthToken').catch(() => null);
  let e = await errorOf(a.authenticate('not-a-jwt'));
  check('authenticate(garbage) rejected', {name: e.name, message: e.message, isBadToken: e.isBadToken},
    {name: 'AuthTokenInvalidError', message: 'jwt malformed', isBadToken: true});
  check('client authState', a.authState, 'unauthenticated');
  check('#removeAuthToken received (removeAuthToken event)', (await removed) !== null, true);
  check('whoami after failed #authenticate', await a.invoke('whoami'), null);

  let [p] = await rawConnected();
  check('raw: #authenticate garbage reply', await rawCall(p, '#authenticate', 'not-a-jwt', 2),
    response(2, {error: {message: 'jwt malformed', name: 'AuthTokenInvalidError', isBadToken: true}}));
  check('raw: then #removeAuthToken', await p.next(1000), eventPacket('#removeAuthToken'));
  let wrongKey = tokenFor({username: 'mallory'}, {expiresIn: 3600}, 'some-other-key');
  check('raw: #authenticate wrong-key reply', await rawCall(p, '#authenticate', wrongKey, 3),
    response(3, {error: {message: 'invalid signature', name: 'AuthTokenInvalidError', isBadToken: true}}));
  check('raw: then #removeAuthToken again', await p.next(1000), eventPacket('#removeAuthToken'));
  check('raw: nothing else', await p.next(QUIET_MS), undefined);
};

scenarios.deauth_client = async () => {
  let a = await connected();
  await a.invoke('login', {username: 'carol'});
  if (a.authState !== 'authenticated') await once(a, 'authenticate');
  await a.deauthenticate();
  check('client authState', a.authState, 'unauthenticated');
  check('stored token removed', a.authStore[a.authTokenName], undefined);
  check('server forgot the token (whoami)', await a.invoke('whoami'), null);

  let [p] = await rawConnected({}, tokenFor({username: 'hank'}));
  p.send({event: '#removeAuthToken'});
  check('raw: no reply to #removeAuthToken; whoami', await rawCall(p, 'whoami', undefined, 2), response(2, {data: null}));
};

scenarios.deauth_server = async () => {
  let a = await connected();
  await a.invoke('login', {username: 'carol'});
  if (a.authState !== 'authenticated') await once(a, 'authenticate');
  let deauth = once(a, 'deauthenticate');
  check('logoutServer result', await a.invoke('logoutServer'), 'logged-out');
  await deauth;
  check('client authState', a.authState, 'unauthenticated');
  check('client signedAuthToken', a.signedAuthToken, null);
  check('whoami', await a.invoke('whoami'), null);

  let [p] = await rawConnected({}, tokenFor({username: 'ivy'}));
  let others = [];
  check('raw: logoutServer reply', await rawCall(p, 'logoutServer', undefined, 2, {others}), response(2, {data: 'logged-out'}));
  if (!others.length) {
    let x = await p.next(2000);
    if (x !== undefined) others.push(x);
  }
  check('raw: #removeAuthToken (transmit)', others, [eventPacket('#removeAuthToken')]);
};

scenarios.logout_ack = async () => {
  let a = await connected();
  check('loginAck', await a.invoke('loginAck', {username: 'dan'}), 'logged-in-ack');
  check('logoutAck', await a.invoke('logoutAck'), 'logged-out-ack');
  check('client authState', a.authState, 'unauthenticated');
  check('whoami', await a.invoke('whoami'), null);

  let [p] = await rawConnected({}, tokenFor({username: 'jack'}));
  p.send({event: 'logoutAck', cid: 2});
  let req = await p.next(2000);
  check('raw: #removeAuthToken request event', req && req.event, '#removeAuthToken');
  checkThat('raw: #removeAuthToken carries a numeric cid', req && req.cid, (cid) => typeof cid === 'number', 'a number');
  check('raw: logoutAck waits for the ack', await p.next(QUIET_MS), undefined);
  p.send({rid: req && req.cid});
  check('raw: logoutAck reply', await p.next(2000), response(2, {data: 'logged-out-ack'}));
};

// -- kickOut, batches -----------------------------------------------------------------------------

scenarios.kick_out = async () => {
  let a = await connected();
  let room = a.subscribe('room');
  await once(room, 'subscribe');
  let kicked = once(a, 'kickOut');
  let r = await settle(a.invoke('kickMe', {channel: 'room'}), 3000, 'kickMe');
  check('kickMe resolves', r.resolved, true);
  let k = await kicked;
  check('kickOut event', {channel: k.channel, message: k.message}, {channel: 'room', message: 'you have been kicked'});
  check('channel state', room.state, 'unsubscribed');

  let [p] = await rawConnected();
  await rawCall(p, '#subscribe', {channel: 'room'}, 2);
  let others = [];
  check('raw: kickMe reply', await rawCall(p, 'kickMe', {channel: 'room'}, 3, {others}), response(3));
  if (!others.length) {
    let x = await p.next(2000);
    if (x !== undefined) others.push(x);
  }
  check('raw: #kickOut', others, [eventPacket('#kickOut', {channel: 'room', message: 'you have been kicked'})]);
  await a.invokePublish('room', 'after-kick');
  check('raw: no delivery after kickOut', await p.next(QUIET_MS), undefined);
};

scenarios.batch_client = async () => {
  let a = await connected();
  let got = collect(a.receiver('greetBack'));
  a.startBatch();
  a.transmit('greet', 'batch-1');
  a.transmit('greet', 'batch-2');
  let echo = a.invoke('echo', 'batch-3');
  a.flushBatch();
  check('batched echo', await within(echo, 3000, 'batched echo'), 'batch-3');
  await waitUntil(() => got.length >= 2, 2000, 'greetBack x2').catch(() => {});
  check('batched transmits answered in order', got, [{hello: 'batch-1'}, {hello: 'batch-2'}]);

  let [p] = await rawConnected();
  p.send([{event: 'echo', data: 'b1', cid: 8}, {event: 'echo', data: 'b2', cid: 9}]);
  let replies = [await p.next(2000), await p.next(2000)];
  // (the official server answers these two in order; the client matches by rid, so order is not checked)
  let byRid = replies.slice().sort((x, y) => ((x && x.rid) || 0) - ((y && y.rid) || 0));
  check('raw: replies to an array frame (sorted by rid)', byRid, [response(8, {data: 'b1'}), response(9, {data: 'b2'})]);
  check('raw: nothing else', await p.next(QUIET_MS), undefined);
};

scenarios.batch_server = async () => {
  let a = await connected();
  let got = collect(a.receiver('batched'));
  check('batchReply result', await a.invoke('batchReply'), 'batch-done');
  await waitUntil(() => got.length >= 2, 2000, 'batched x2').catch(() => {});
  check('batched transmits in order', got, [1, 2]);
};

// -- heartbeat and timeouts -----------------------------------------------------------------------

scenarios.ping_pong = async () => {
  // Server runs with pingInterval 300 ms / pingTimeout 900 ms.
  let a = await connected();
  check('advertised pingTimeout', a.status.pingTimeout, PING_TIMEOUT);
  let [p] = await rawConnected();
  let id = a.id;
  await delay(2 * PING_TIMEOUT + 300);
  check('client: no close/error events while idle', a.log.filter((e) => ['close', 'error'].includes(e.event)), []);
  check('client: still open with the same id', {state: a.state, id: a.id}, {state: 'open', id});
  check('client: echo works', await a.invoke('echo', 'alive'), 'alive');
  checkThat('raw: empty-text pings received', p.pings, (n) => n >= 3, `>= 3 pings in ${2 * PING_TIMEOUT + 300} ms`);
  check('raw: still open after answering pings', await p.closedWithin(0), undefined);
  check('raw: echo works', await rawCall(p, 'echo', 1, 2), response(2, {data: 1}));
};

scenarios.pong_timeout = async () => {
  // Server runs with pingInterval 300 ms / pingTimeout 900 ms; this peer never answers pings.
  let p = raw({autoPong: false});
  await within(p.opened, 3000, 'raw open');
  let t0 = Date.now();
  p.send({event: '#handshake', data: {authToken: null}, cid: 1});
  let res = await p.next(2000);
  check('raw: handshake ok', res && res.rid, 1);
  let closed = await p.closedWithin(PING_TIMEOUT + 3000);
  let elapsed = Date.now() - t0;
  check('raw: closed by the server with 4001 and no reason', closed, {code: 4001, reason: ''});
  checkThat('raw: close after ~pingTimeout', elapsed, (ms) => ms >= PING_TIMEOUT - 300 && ms <= PING_TIMEOUT + 1500,
    `${PING_TIMEOUT - 300}..${PING_TIMEOUT + 1500} ms`);
  checkThat('raw: saw pings before closing', p.pings, (n) => n >= 1, '>= 1');
};

scenarios.handshake_timeout = async () => {
  // Server runs with handshakeTimeout 500 ms; this peer sends nothing.
  let p = raw({autoPong: false});
  await within(p.opened, 3000, 'raw open');
  let t0 = Date.now();
  let closed = await p.closedWithin(4000);
  let elapsed = Date.now() - t0;
  check('raw: closed with 4005 and no reason', closed, {code: 4005, reason: ''});
  checkThat('raw: after ~handshakeTimeout (500 ms)', elapsed, (ms) => ms >= 300 && ms <= 2500, '300..2500 ms');
  check('raw: no frames received', p.frames, []);
};

// -- protocol violations and HTTP-level refusals --------------------------------------------------

scenarios.no_cid_handshake = async () => {
  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {}});
  check('raw: closed with 4008, no reason', await p.closedWithin(3000), {code: 4008, reason: ''});
  check('raw: no reply', p.frames, []);
};

scenarios.early_event = async () => {
  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: 'echo', data: 1, cid: 1});
  check('raw: closed with 4009, no reason', await p.closedWithin(3000), {code: 4009, reason: ''});
  check('raw: no reply', p.frames, []);
};

scenarios.handshake_reject = async () => {
  let p = raw({query: '?reject=1'});
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {authToken: null}, cid: 1});
  check('raw: error reply', await p.next(2000), response(1, {
    error: {message: 'SC handshake rejected by test middleware', name: 'RejectedError', statusCode: 4008}
  }));
  check('raw: closed with 4008', await p.closedWithin(3000), {code: 4008, reason: ''});

  let q = raw({query: '?reject=1&status=4555'});
  await within(q.opened, 3000, 'raw open');
  q.send({event: '#handshake', data: {authToken: null}, cid: 1});
  let res = await q.next(2000);
  check('raw: error statusCode from middleware', res && res.error && res.error.statusCode, 4555);
  check('raw: closed with that code', await q.closedWithin(3000), {code: 4555, reason: ''});

  let c = client({query: {reject: '1'}, autoReconnect: false});
  let closeEvt = await once(c, 'close', 3000);
  check('client: close code', closeEvt.code, 4008);
  check('client: never connected', c.log.filter((e) => e.event === 'connect'), []);
};

async function httpRefusal(options) {
  let p = raw(options);
  let r = await settle(p.opened, 3000, 'upgrade refusal');
  return r.resolved ? {opened: true} : {statusCode: r.error.statusCode, body: r.error.body};
}

scenarios.ws_deny = async () => {
  check('raw: upgrade refused with HTTP 401 and the error message as body', await httpRefusal({query: '?deny=1'}),
    {statusCode: 401, body: 'WS handshake denied by test middleware'});
  let c = client({query: {deny: '1'}, autoReconnect: false});
  let closeEvt = await once(c, 'close', 3000);
  checkThat('client: closed without connecting', closeEvt.code, (code) => code !== 1000, 'a non-1000 close code');
  check('client: never connected', c.log.filter((e) => e.event === 'connect'), []);
};

scenarios.wrong_path = async () => {
  let noSlash = baseUrl.pathname.replace(/\/$/, '');
  let r1 = await httpRefusal({path: noSlash});
  check(`raw: ${noSlash} -> HTTP 400`, r1.statusCode, 400);
  let r2 = await httpRefusal({path: '/elsewhere/'});
  check('raw: /elsewhere/ -> HTTP 400', r2.statusCode, 400);
};

scenarios.drop_me = async () => {
  let a = await connected();
  let room = a.subscribe('room');
  await once(room, 'subscribe');
  let oldId = a.id;
  let closeP = once(a, 'close', 3000);
  let connectP = once(a, 'connect', 5000);
  let r = await settle(a.invoke('dropMe'), 3000, 'dropMe');
  check('dropMe resolves', r.resolved, true);
  let closeEvt = await closeP;
  check('client close event', {code: closeEvt.code, reason: closeEvt.reason}, {code: 4100, reason: 'dropped by test'});
  let status = await connectP;
  checkThat('auto-reconnected with a new id', status.id, (id) => isBase64Id(id) && id !== oldId, `base64id != ${oldId}`);
  if (room.state !== 'subscribed') await once(room, 'subscribe');
  check('channel re-subscribed', room.state, 'subscribed');
  check('echo after reconnect', await a.invoke('echo', 'back'), 'back');
};

scenarios.traffic_keeps_alive = async () => {
  // Server runs with pingInterval 300 ms / pingTimeout 900 ms; this peer never pongs but keeps talking.
  let p = raw({autoPong: false});
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {authToken: null}, cid: 1});
  check('raw: handshake ok', (await p.next(2000) || {}).rid, 1);
  let until = Date.now() + 2 * PING_TIMEOUT + 300;
  let cid = 2;
  let answered = 0;
  while (Date.now() < until) {
    let res = await rawCall(p, 'echo', cid, cid).catch(() => undefined);
    if (res && res.data === cid) answered++;
    cid++;
    let closed = await p.closedWithin(PING_TIMEOUT / 6);
    if (closed) break;
  }
  check('raw: not closed while sending traffic (no pongs)', await p.closedWithin(0), undefined);
  checkThat('raw: all echoes answered', answered, (n) => n === cid - 2, `${cid - 2}`);
};

// Byte-exact frames: what the server sends must equal what the official codec produces.
scenarios.wire_bytes = async () => {
  let officialCodec = MINBIN ? scCodecMinBin : require('sc-formatter');
  let expectWire = (packet) => {
    let enc = officialCodec.encode(packet);
    return Buffer.isBuffer(enc) ? enc.toString('hex') : typeof enc === 'string' ? enc : Buffer.from(enc).toString('hex');
  };
  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', data: {authToken: null}, cid: 1});
  let f = await p.nextFrame(2000);
  let id = f && f.packet && f.packet.data && f.packet.data.id;
  check('handshake reply bytes', f && f.wire, expectWire({rid: 1, data: {id, pingTimeout: PING_TIMEOUT, isAuthenticated: false}}));

  let numbers = [0, 1, 127, 128, 255, 256, 65535, 65536, -1, -32, -33, -128, -129, -32768, -32769,
    2 ** 31 - 1, 2 ** 31, -(2 ** 31), -(2 ** 31) - 1, 2 ** 32, 2 ** 53, 0.5, -1.25, 1e-7, 3.141592653589793];
  let strings = ['', 'a'.repeat(31), 'b'.repeat(32), 'c'.repeat(255), 'd'.repeat(256), 'é✓😀', '"quote" \\ \n'];
  let data = {numbers, strings, nested: {t: true, f: false, n: null, arr: [[], {}]}};
  p.send({event: 'echo', data, cid: 2});
  f = await p.nextFrame(2000);
  let wire = expectWire({rid: 2, data});
  // Python writes float text in its own way (1e-07 for JS's 1e-7); the values are the same.
  if (HUBBUB && !MINBIN && typeof wire === 'string') wire = wire.replace('1e-7', '1e-07');
  check('echo reply bytes (numbers, strings, maps)', f && f.wire, wire);

  p.send({event: 'echo', cid: 3});
  f = await p.nextFrame(2000);
  check('empty echo reply bytes', f && f.wire, expectWire({rid: 3, data: MINBIN ? null : undefined}));

  p.send({event: 'fail', data: 1, cid: 4});
  f = await p.nextFrame(2000);
  check('error reply bytes', f && f.wire,
    expectWire({rid: 4, error: {message: 'Procedure fail always fails', name: 'MyCustomError', code: 'E_FAIL'}}));

  p.send({event: '#subscribe', data: {channel: 'room'}, cid: 5});
  f = await p.nextFrame(2000);
  check('subscribe ack bytes', f && f.wire, expectWire({rid: 5}));
  p.send({event: '#publish', data: {channel: 'room', data: {n: 1, s: 'x'}}});
  f = await p.nextFrame(2000);
  check('#publish delivery bytes', f && f.wire, expectWire({event: '#publish', data: {channel: 'room', data: {n: 1, s: 'x'}}}));

  p.send({event: 'greet', data: [1, 2]});
  f = await p.nextFrame(2000);
  check('transmit bytes', f && f.wire, expectWire({event: 'greetBack', data: {hello: [1, 2]}}));

  let q = raw();
  await within(q.opened, 3000, 'raw open');
  q.send({event: '#handshake', data: {authToken: 'garbage'}, cid: 1});
  await q.nextFrame(2000);
  f = await q.nextFrame(2000);
  check('#removeAuthToken bytes', f && f.wire, expectWire({event: '#removeAuthToken'}));
};

scenarios.raw_edge = async () => {
  let p = raw();
  await within(p.opened, 3000, 'raw open');
  p.send({event: '#handshake', cid: 1});
  let res = await p.next(2000);
  check('#handshake without data accepted', res && res.rid, 1);
  check('#handshake without data: isAuthenticated', res && res.data && res.data.isAuthenticated, false);
  let bad = await rawCall(p, '#subscribe', {channel: 123}, 2);
  check('malformed #subscribe', bad, response(2, {
    error: {message: 'Subscribe channel name was malformatted', name: 'InvalidActionError'}
  }));
  p.send({event: 'echo', data: 'str-cid', cid: 'abc'});
  check('string cid is a transmit: no reply', await p.next(QUIET_MS), undefined);
  p.send({rid: 999, data: 'unsolicited response'});
  check('unknown rid ignored', await p.next(QUIET_MS), undefined);
  p.sendText('this is not json');
  p.sendText('{"broken": json');
  p.ws.send(Buffer.from([0xc1, 0xff, 0x00]));
  check('garbage frames: no reply', await p.next(QUIET_MS), undefined);
  check('still usable after garbage', await rawCall(p, 'echo', 'ok', 3), response(3, {data: 'ok'}));
  check('still open', await p.closedWithin(0), undefined);
};

// ------------------------------------------------------------------------------------------------
// Main

let finished = false;
function finish(status, extra = {}) {
  if (finished) return;
  finished = true;
  let ok = status === 0 && checks.every((c) => c.ok);
  let out = {scenario: args.scenario, codec: CODEC, ok, checks, ...extra};
  if (unhandled.length) out.unhandled = unhandled;
  process.stdout.write(JSON.stringify(out) + '\n', () => {
    for (let c of clients) {
      try { c.disconnect(); } catch (e) { /* ignore */ }
    }
    for (let p of peers) {
      try { p.ws.terminate(); } catch (e) { /* ignore */ }
    }
    process.exit(status !== 0 ? status : ok ? 0 : 1);
  });
}

const unhandled = [];
process.on('unhandledRejection', (reason) => {
  // Leftover waits of a scenario that already failed elsewhere; reported, not fatal.
  unhandled.push(String(reason && reason.message ? reason.message : reason));
});
process.on('uncaughtException', (e) => finish(2, {error: `uncaught ${e && e.name}: ${e && e.message}`, stack: e && e.stack}));

async function main() {
  if (args.list) {
    process.stdout.write(JSON.stringify(Object.keys(scenarios)) + '\n');
    return;
  }
  if (!args.url) usage('--url is required');
  if (CODEC !== 'json' && CODEC !== 'minbin') usage(`bad --codec ${CODEC}`);
  let fn = scenarios[args.scenario];
  if (!fn) usage(`unknown scenario ${args.scenario}; known: ${Object.keys(scenarios).join(', ')}`);
  let limit = Number(args.timeout);
  setTimeout(() => finish(2, {error: `scenario did not finish within ${limit} ms`}), limit);
  try {
    await fn();
  } catch (e) {
    finish(2, {error: `${e && e.name}: ${e && e.message}`, stack: e && e.stack});
    return;
  }
  finish(0);
}

main();
