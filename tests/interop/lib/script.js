'use strict';
// What the helper scripts driven by the Python tests (cross_worker.js, recovery.js) share:
// `--name value` pairs in, one JSON object per line out, and the official client's socket.

const socketClusterClient = require('socketcluster-client');
const scCodecMinBin = require('sc-codec-min-bin');

// `--name value` pairs over `defaults`; a bad argument exits 3 with a message naming `script`.
function parseArgs(script, defaults, argv = process.argv.slice(2)) {
  const opts = {...defaults};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith('--') || argv[i + 1] === undefined) {
      console.error(`${script}: bad argument ${argv[i]}`);
      process.exit(3);
    }
    opts[argv[i].slice(2)] = argv[i + 1];
  }
  return opts;
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

// Prints {"event": "error", "error"} and exits 2.
function fail(error) {
  emit({event: 'error', error: String((error && error.stack) || error)});
  process.exit(2);
}

// Fails after `ms` milliseconds unless the process exits first.
function failAfter(ms) {
  setTimeout(() => fail(`timed out after ${ms} ms`), Number(ms)).unref();
}

// An official client socket for `url` (ws:// or wss://host:port/path) and codec 'json' | 'minbin', connecting
// now; it does not reconnect by itself.
function createSocket(url, codec) {
  const {protocol, hostname, port, pathname} = new URL(url);
  return socketClusterClient.create({
    hostname,
    secure: protocol === 'wss:',
    port: Number(port),
    path: pathname,
    codecEngine: codec === 'minbin' ? scCodecMinBin : undefined,
    ackTimeout: 5000,
    connectTimeout: 5000,
    autoReconnect: false,
  });
}

module.exports = {parseArgs, emit, fail, failAfter, createSocket};
