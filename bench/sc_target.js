'use strict';
// The benchmark's reference target: a plain socketcluster-server@20 in one process, with no
// middleware, procedures or receivers (unlike tests/interop/sc_server.js), on 127.0.0.1.
//
// Usage: node sc_target.js [--port 0] [--codec json|minbin] [--ping-interval MS] [--ping-timeout MS]
// Prints "listening on ws://127.0.0.1:PORT/socketcluster/" once ready; exits 0 on SIGTERM/SIGINT.

const http = require('http');
const socketClusterServer = require('socketcluster-server');

function parseArgs(argv) {
  const opts = {port: 0, codec: 'json', 'ping-interval': 8000, 'ping-timeout': 20000};
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (!(name in opts) || value === undefined) {
      console.error(`sc_target.js: bad option ${argv[i]}`);
      process.exit(2);
    }
    opts[name] = name === 'codec' ? value : Number(value);
  }
  return opts;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const httpServer = http.createServer((req, res) => {
    res.writeHead(404);
    res.end();
  });
  const options = {pingInterval: opts['ping-interval'], pingTimeout: opts['ping-timeout']};
  if (opts.codec === 'minbin') options.codecEngine = require('sc-codec-min-bin');
  const agServer = socketClusterServer.attach(httpServer, options);

  // Errors and warnings are consumed (an unconsumed listener buffers them) and counted only.
  (async () => {
    for await (const {error} of agServer.listener('error')) console.error(`server error: ${error.message}`);
  })();
  (async () => {
    for await (const _ of agServer.listener('warning')) { /* ignored */ }
  })();

  let stopping = false;
  const stop = () => {
    if (stopping) return;
    stopping = true;
    setTimeout(() => process.exit(0), 2000).unref();
    agServer.close().catch(() => {}).finally(() => process.exit(0));
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);

  await new Promise((resolve, reject) => {
    httpServer.once('error', reject);
    httpServer.listen(opts.port, '127.0.0.1', resolve);
  });
  console.log(`listening on ws://127.0.0.1:${httpServer.address().port}${agServer.getPath()}`);
}

main().catch((e) => {
  console.error(e);
  process.exit(1);
});
