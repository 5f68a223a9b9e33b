'use strict';
// The official socketcluster-server@20, wired with the test middleware, procedures and receivers
// that hubbub's interop scenarios use (same behaviour as /work/shared/sc-interop/lib/server.js,
// plus a procedure `never` that never answers). Binds 127.0.0.1 only.
//
// Usage: node sc_server.js [--port 0] [--codec json|minbin] [--ping-interval 2000]
//          [--ping-timeout 5000] [--handshake-timeout 10000] [--protocol-version 2]
//          [--auth-key hubbub-interop-test-secret]
// Prints "listening on ws://127.0.0.1:PORT/socketcluster/" once ready; exits 0 on SIGTERM/SIGINT.

const http = require('http');
const socketClusterServer = require('socketcluster-server');

const DEFAULTS = {
  port: '0',
  codec: 'json',
  'ping-interval': '2000',
  'ping-timeout': '5000',
  'handshake-timeout': '10000',
  'protocol-version': '2',
  'auth-key': 'hubbub-interop-test-secret'
};

function parseArgs(argv) {
  let opts = {...DEFAULTS};
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i];
    if (!arg.startsWith('--')) usage(`unexpected argument ${arg}`);
    let name = arg.slice(2);
    let value;
    let eq = name.indexOf('=');
    if (eq !== -1) {
      value = name.slice(eq + 1);
      name = name.slice(0, eq);
    } else {
      value = argv[++i];
    }
    if (!(name in DEFAULTS)) usage(`unknown option --${name}`);
    if (value === undefined) usage(`--${name} needs a value`);
    opts[name] = value;
  }
  if (opts.codec !== 'json' && opts.codec !== 'minbin') usage(`bad --codec ${opts.codec}`);
  for (let k of ['port', 'ping-interval', 'ping-timeout', 'handshake-timeout', 'protocol-version']) {
    if (!/^\d+$/.test(opts[k])) usage(`--${k} must be a non-negative integer`);
    opts[k] = Number(opts[k]);
  }
  return opts;
}

function usage(msg) {
  console.error(`sc_server.js: ${msg}`);
  console.error('usage: node sc_server.js [--port N] [--codec json|minbin] [--ping-interval MS] ' +
    '[--ping-timeout MS] [--handshake-timeout MS] [--protocol-version 1|2] [--auth-key KEY]');
  process.exit(2);
}

function queryOf(request) {
  return new URL(request.url, 'http://127.0.0.1').searchParams;
}

function namedError(name, message, extra = {}) {
  let err = new Error(message);
  err.name = name;
  return Object.assign(err, extra);
}

function installMiddleware(agServer) {
  agServer.setMiddleware(agServer.MIDDLEWARE_HANDSHAKE, async (stream) => {
    for await (let action of stream) {
      let q = queryOf(action.request);
      if (action.type === action.HANDSHAKE_WS && q.get('deny') === '1') {
        action.block(namedError('DeniedError', 'WS handshake denied by test middleware'));
        continue;
      }
      if (action.type === action.HANDSHAKE_SC && q.get('reject') === '1') {
        let err = namedError('RejectedError', 'SC handshake rejected by test middleware');
        if (q.get('status')) err.statusCode = Number(q.get('status'));
        action.block(err);
        continue;
      }
      action.allow();
    }
  });

  agServer.setMiddleware(agServer.MIDDLEWARE_INBOUND, async (stream) => {
    for await (let action of stream) {
      if (action.type === action.SUBSCRIBE && action.channel === 'forbidden') {
        action.block(namedError('SubscribeForbiddenError', 'You may not subscribe to forbidden'));
        continue;
      }
      if (action.type === action.PUBLISH_IN && action.channel === 'readonly') {
        action.block(namedError('PublishForbiddenError', 'Channel readonly is read-only'));
        continue;
      }
      if (action.type === action.INVOKE && action.procedure === 'silentBlock') {
        action.block(); // no error => SilentMiddlewareBlockedError
        continue;
      }
      if (action.type === action.TRANSMIT && action.receiver === 'blockedTransmit') {
        action.block(new Error('transmit blocked'));
        continue;
      }
      action.allow();
    }
  });

  agServer.setMiddleware(agServer.MIDDLEWARE_OUTBOUND, async (stream) => {
    for await (let action of stream) {
      if (action.type === action.PUBLISH_OUT && action.channel === 'hidden') {
        action.block();
        continue;
      }
      action.allow();
    }
  });
}

function handleSocket(agServer, socket) {
  let proc = (name, fn) => {
    (async () => {
      for await (let req of socket.procedure(name)) {
        try {
          await fn(req);
        } catch (e) {
          console.log(`procedure ${name} threw ${e.name}: ${e.message}`);
        }
      }
    })();
  };
  let recv = (name, fn) => {
    (async () => {
      for await (let data of socket.receiver(name)) {
        fn(data);
      }
    })();
  };

  proc('echo', (req) => req.end(req.data));
  proc('fail', (req) => {
    req.error(namedError('MyCustomError', 'Procedure fail always fails', {code: 'E_FAIL'}));
  });
  proc('failPlain', (req) => req.error(new Error('plain Error object')));
  proc('never', () => {}); // consumed, never answered
  proc('login', async (req) => {
    await socket.setAuthToken({username: req.data.username});
    req.end('logged-in');
  });
  proc('loginAck', async (req) => {
    // rejectOnFailedDelivery => #setAuthToken is sent as an RPC (with cid)
    await socket.setAuthToken({username: req.data.username}, {rejectOnFailedDelivery: true});
    req.end('logged-in-ack');
  });
  proc('loginShort', async (req) => {
    await socket.setAuthToken({username: req.data.username}, {expiresIn: 1});
    req.end('logged-in-1s');
  });
  proc('logoutAck', async (req) => {
    await socket.deauthenticate({rejectOnFailedDelivery: true});
    req.end('logged-out-ack');
  });
  proc('whoami', (req) => req.end(socket.authToken));
  proc('logoutServer', async (req) => {
    socket.deauthenticate();
    req.end('logged-out');
  });
  proc('kickMe', async (req) => {
    await socket.kickOut(req.data.channel, 'you have been kicked');
    req.end();
  });
  proc('serverInvoke', async (req) => {
    let answer = await socket.invoke('clientProc', {question: 'ping?'});
    req.end({clientAnswered: answer});
  });
  proc('serverPublish', async (req) => {
    // Server-side publish through the exchange (no socket involved).
    await agServer.exchange.transmitPublish('room', {from: 'server', via: 'transmitPublish'});
    await agServer.exchange.invokePublish('room', {from: 'server', via: 'invokePublish'});
    await agServer.exchange.invokePublish('hidden', {from: 'server', note: 'blocked by outbound middleware'});
    req.end();
  });
  proc('batchReply', async (req) => {
    socket.startBatch();
    socket.transmit('batched', 1);
    socket.transmit('batched', 2);
    req.end('batch-done');
    socket.flushBatch();
  });
  proc('dropMe', (req) => {
    req.end();
    setTimeout(() => socket.disconnect(4100, 'dropped by test'), 50);
  });

  recv('greet', (data) => {
    socket.transmit('greetBack', {hello: data});
  });
  recv('binary', () => {
    socket.transmit('binaryBack', {buf: Buffer.from('hubbub'), ab: new Uint8Array([0, 255]).buffer});
  });
  recv('#removeAuthToken', () => {});
}

async function main() {
  let opts = parseArgs(process.argv.slice(2));
  let httpServer = http.createServer((req, res) => {
    res.writeHead(501);
    res.end('Not Implemented');
  });
  let options = {
    authKey: opts['auth-key'],
    pingInterval: opts['ping-interval'],
    pingTimeout: opts['ping-timeout'],
    handshakeTimeout: opts['handshake-timeout'],
    protocolVersion: opts['protocol-version'],
    ackTimeout: 3000
  };
  if (opts.codec === 'minbin') options.codecEngine = require('sc-codec-min-bin');

  let agServer = socketClusterServer.attach(httpServer, options);
  installMiddleware(agServer);

  (async () => {
    for await (let {warning} of agServer.listener('warning')) {
      console.log(`server warning: ${warning.name}: ${warning.message}`);
    }
  })();
  (async () => {
    for await (let {error} of agServer.listener('error')) {
      console.log(`server error: ${error.name}: ${error.message}`);
    }
  })();
  (async () => {
    for await (let {socket} of agServer.listener('connection')) {
      handleSocket(agServer, socket);
    }
  })();

  let stopping = false;
  let stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 1000).unref();
    agServer.close().catch(() => {}).finally(() => {
      httpServer.close();
      process.exit(0);
    });
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, '127.0.0.1', resolve);
  });
  await agServer.listener('ready').once(100).catch(() => {});
  console.log(`listening on ws://127.0.0.1:${httpServer.address().port}${agServer.getPath()}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
