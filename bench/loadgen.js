'use strict';
// hubbub's load generator: raw `ws` clients speaking the SocketCluster v20 protocol (JSON codec),
// split across K worker processes so that it is not the bottleneck.
//
//   node loadgen.js '<json config>'      coordinator: forks K workers, runs one scenario, prints
//                                        progress on stderr and one JSON result line on stdout
//   node loadgen.js --worker N           a worker (forked by the coordinator, IPC-driven)
//
// Scenarios: fanout / paced / channels (publish + deliver), idle (hold subscribed connections),
// churn (connect, handshake, subscribe, close, in a loop). Publications carry their send time
// (CLOCK_MONOTONIC in microseconds, comparable across processes) and a sequence number in the
// payload; every subscriber keeps a bitmap of what it received, so that lost and duplicated
// messages are counted exactly. Server CPU (utime+stime) and RSS come from /proc/<pid>/stat and
// /proc/<pid>/status of the PIDs the caller names; the generator's own CPU from process.cpuUsage().

const fs = require('fs');
const path = require('path');
const {fork} = require('child_process');

const WebSocket = require('ws');

// ---------------------------------------------------------------------------------------------
// shared helpers

function nowUs() {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
}

const LOG_BASE = Math.log(1.02); // latency histogram: 2 % wide buckets from 1 us up
const HIST_SIZE = 1400; // 1.02^1400 us is far beyond any timeout

class Hist {
  constructor() {
    this.counts = new Float64Array(HIST_SIZE);
    this.n = 0;
    this.sum = 0;
    this.max = 0;
  }

  record(us) {
    if (us < 1) us = 1;
    let idx = Math.ceil(Math.log(us) / LOG_BASE);
    if (idx >= HIST_SIZE) idx = HIST_SIZE - 1;
    this.counts[idx]++;
    this.n++;
    this.sum += us;
    if (us > this.max) this.max = us;
  }

  toJSON() {
    const sparse = [];
    for (let i = 0; i < HIST_SIZE; i++) if (this.counts[i]) sparse.push([i, this.counts[i]]);
    return {sparse, n: this.n, sum: this.sum, max: this.max};
  }

  merge(obj) {
    for (const [i, c] of obj.sparse) this.counts[i] += c;
    this.n += obj.n;
    this.sum += obj.sum;
    if (obj.max > this.max) this.max = obj.max;
  }

  // Upper edge of the bucket holding the q-quantile, capped at the exact maximum.
  quantile(q) {
    if (!this.n) return null;
    const rank = Math.max(1, Math.ceil(q * this.n));
    let seen = 0;
    for (let i = 0; i < HIST_SIZE; i++) {
      seen += this.counts[i];
      if (seen >= rank) return Math.min(Math.exp(i * LOG_BASE), this.max);
    }
    return this.max;
  }

  summary() {
    if (!this.n) return null;
    return {
      p50: this.quantile(0.5),
      p90: this.quantile(0.9),
      p99: this.quantile(0.99),
      p999: this.quantile(0.999),
      max: this.max,
      mean: this.sum / this.n,
      n: this.n
    };
  }
}

// ---------------------------------------------------------------------------------------------
// worker

const HANDSHAKE = JSON.stringify({event: '#handshake', data: {authToken: null}, cid: 1});
const PUBLISH_MARK = Buffer.from('"event":"#publish"');
const DATA_MARK = Buffer.from('"data":"');

function runWorker(index) {
  const conns = []; // subscriber connections
  const pubs = []; // publisher connections
  let cfg = null; // from 'setup'
  let stats = null;
  let cpu0 = process.cpuUsage();
  let hist = new Hist();
  let progressTimer = null;
  let connSeq = 0;

  function send(msg) {
    if (process.connected) process.send(msg);
  }

  function resetStats() {
    stats = {
      received: 0,
      unique: 0,
      dups: 0,
      misrouted: 0,
      firstRecv: 0,
      lastRecv: 0,
      sent: 0,
      acked: 0,
      pubErrors: 0,
      firstSend: 0,
      lastAck: 0,
      pubDone: 0,
      drops: 0,
      pings: 0
    };
    hist = new Hist();
    cpu0 = process.cpuUsage();
  }
  resetStats();

  // One SocketCluster connection. onPublish(conn, packet) for deliveries.
  class Conn {
    constructor(url, channel, chanIdx) {
      this.url = url;
      this.channel = channel;
      this.chanIdx = chanIdx;
      this.cid = 1;
      this.pending = new Map();
      this.seen = null;
      this.expected = 0;
      this.open = false;
      this.closing = false;
      this.channelMark = channel === null ? null : Buffer.from(JSON.stringify({channel}).slice(1, -1));
    }

    connect(localAddress) {
      return new Promise((resolve) => {
        const ws = new WebSocket(this.url, {perMessageDeflate: false, skipUTF8Validation: true, localAddress});
        this.ws = ws;
        let settled = false;
        const done = (ok, why) => {
          if (settled) return;
          settled = true;
          resolve(ok ? null : why || 'failed');
        };
        ws.on('open', () => {
          this.open = true;
          ws.send(HANDSHAKE);
          this.pending.set(1, (pkt) => {
            if (pkt.error) return done(false, `handshake: ${JSON.stringify(pkt.error)}`);
            if (this.channel === null) return done(true);
            this.call('#subscribe', {channel: this.channel}, (ack) => {
              done(!ack.error, ack.error ? `subscribe: ${JSON.stringify(ack.error)}` : null);
            });
          });
        });
        ws.on('message', (data) => this.onMessage(data));
        ws.on('error', (err) => done(false, err.code || err.message));
        ws.on('unexpected-response', (req, res) => {
          done(false, `HTTP ${res.statusCode}`);
          req.destroy();
        });
        ws.on('close', (code) => {
          if (this.open && !this.closing) {
            stats.drops++;
            if (stats.drops <= 3) send({op: 'log', text: `worker ${index}: connection closed by peer, code ${code}`});
          }
          this.open = false;
          done(false, `closed ${code}`);
          if (this.onClose) this.onClose();
        });
      });
    }

    call(event, data, cb) {
      const cid = ++this.cid;
      this.pending.set(cid, cb);
      this.ws.send(JSON.stringify({event, data, cid}));
    }

    onMessage(data) {
      if (data.length === 0) {
        // protocol v2 ping: answer with an empty frame
        stats.pings++;
        this.ws.send('');
        return;
      }
      // Fast path for deliveries, without JSON.parse: the generator must stay cheaper than the
      // servers it measures. The payload is '<sent us> <seq> xxx...' (no quotes, no escapes).
      if (data.indexOf(PUBLISH_MARK) !== -1) {
        this.onDelivery(data);
        return;
      }
      const pkt = JSON.parse(data);
      if (pkt.rid !== undefined) {
        const cb = this.pending.get(pkt.rid);
        if (cb) {
          this.pending.delete(pkt.rid);
          cb(pkt);
        }
      }
    }

    onDelivery(data) {
      const now = nowUs();
      stats.received++;
      if (!stats.firstRecv) stats.firstRecv = now;
      stats.lastRecv = now;
      if (this.channelMark === null || data.indexOf(this.channelMark) === -1) {
        stats.misrouted++;
        return;
      }
      let i = data.lastIndexOf(DATA_MARK) + DATA_MARK.length;
      let sent = 0;
      let c;
      while ((c = data[i++]) !== 32) sent = sent * 10 + (c - 48);
      let seq = 0;
      while ((c = data[i++]) !== 32) seq = seq * 10 + (c - 48);
      hist.record(now - sent);
      const slot = Math.floor(seq / cfg.nch);
      if (this.seen === null || slot >= this.seen.length) {
        stats.misrouted++;
      } else if (this.seen[slot]) {
        stats.dups++;
      } else {
        this.seen[slot] = 1;
        stats.unique++;
      }
    }

    close() {
      this.closing = true;
      if (this.ws) this.ws.terminate();
    }
  }

  function localAddress(n) {
    // Spread connections over a few loopback source addresses: 20k+ sockets need ephemeral ports.
    return `${cfg.srcNet}.${2 + ((index * 7 + Math.floor(n / 10000)) % 250)}`;
  }

  async function connectMany(specs, concurrency, isPub) {
    let next = 0;
    let ok = 0;
    const failures = {};
    const runOne = async () => {
      while (next < specs.length) {
        const spec = specs[next++];
        const conn = new Conn(cfg.url, spec.channel, spec.chanIdx);
        const err = await conn.connect(localAddress(connSeq++));
        if (err) {
          failures[err] = (failures[err] || 0) + 1;
          conn.close();
          continue;
        }
        ok++;
        (isPub ? pubs : conns).push(conn);
      }
    };
    await Promise.all(Array.from({length: Math.min(concurrency, specs.length)}, runOne));
    return {ok, failed: specs.length - ok, failures};
  }

  function payload(seq) {
    const head = `${Math.round(nowUs())} ${seq} `;
    return head + 'x'.repeat(Math.max(0, cfg.size - head.length));
  }

  function startPublishing(plan) {
    // plan: {mode: 'window'|'paced', total, P, window, rate, t0}
    const total = plan.total;
    const P = plan.P;
    const nch = cfg.nch;
    pubs.forEach((conn) => {
      const p = conn.pubIndex;
      let seq = p;
      let inflight = 0;
      const ackCb = (pkt) => {
        inflight--;
        stats.acked++;
        stats.lastAck = nowUs();
        if (pkt.error) {
          stats.pubErrors++;
          if (stats.pubErrors <= 3) send({op: 'log', text: `publish error: ${JSON.stringify(pkt.error)}`});
        }
        if (plan.mode === 'window') pump();
        if (seq >= total && inflight === 0) stats.pubDone++;
      };
      const publishOne = () => {
        const chanIdx = seq % nch;
        if (!stats.firstSend) stats.firstSend = nowUs();
        conn.call('#publish', {channel: `${cfg.chanPrefix}${chanIdx}`, data: payload(seq)}, ackCb);
        stats.sent++;
        inflight++;
        seq += P;
      };
      const pump = () => {
        while (inflight < plan.window && seq < total && conn.open) publishOne();
      };
      if (plan.mode === 'window') {
        pump();
      } else {
        // paced: publication seq is due at t0 + seq / rate seconds
        const tick = () => {
          if (!conn.open) return;
          while (seq < total && nowUs() >= plan.t0 + (seq / plan.rate) * 1e6) publishOne();
          if (seq < total) {
            const wait = (plan.t0 + (seq / plan.rate) * 1e6 - nowUs()) / 1000;
            setTimeout(tick, Math.max(0, wait));
          }
        };
        setTimeout(tick, Math.max(0, (plan.t0 - nowUs()) / 1000));
      }
      if (seq >= total && inflight === 0) stats.pubDone++;
    });
  }

  async function churn(op) {
    const deadline = nowUs() + op.durationMs * 1000;
    const cycleHist = new Hist();
    let cycles = 0;
    const failures = {};
    let slot = 0;
    const runSlot = async (s) => {
      while (nowUs() < deadline) {
        const t = nowUs();
        const conn = new Conn(cfg.url, `${cfg.chanPrefix}${index}-${s}`, 0);
        conn.closing = true; // closes here are ours, not drops
        const err = await conn.connect(localAddress(connSeq++));
        if (err) {
          failures[err] = (failures[err] || 0) + 1;
          conn.ws.terminate();
          await new Promise((r) => setTimeout(r, 10));
          continue;
        }
        await new Promise((resolve) => {
          const timer = setTimeout(() => {
            conn.ws.terminate();
            resolve();
          }, 5000);
          conn.onClose = () => {
            clearTimeout(timer);
            resolve();
          };
          conn.ws.close(1000);
        });
        cycles++;
        cycleHist.record(nowUs() - t);
      }
    };
    await Promise.all(Array.from({length: op.concurrency}, () => runSlot(slot++)));
    return {cycles, failures, hist: cycleHist.toJSON()};
  }

  process.on('message', async (op) => {
    try {
      if (op.op === 'setup') {
        cfg = op.cfg;
        send({op: 'ok'});
      } else if (op.op === 'connect') {
        // op.subs: [{channel, chanIdx}], op.pubs: [pubIndex]
        const r1 = await connectMany(op.subs, op.concurrency, false);
        const pubSpecs = op.pubs.map((p) => ({channel: null, chanIdx: p}));
        const before = pubs.length;
        const r2 = await connectMany(pubSpecs, op.concurrency, true);
        for (let i = before; i < pubs.length; i++) pubs[i].pubIndex = pubs[i].chanIdx;
        send({op: 'connected', ok: r1.ok + r2.ok, failed: r1.failed + r2.failed,
          failures: {...r1.failures, ...r2.failures}, pubs: pubs.length});
      } else if (op.op === 'arm') {
        resetStats();
        let expected = 0;
        for (const conn of conns) {
          const c = conn.chanIdx;
          conn.expected = c < op.total ? Math.floor((op.total - 1 - c) / cfg.nch) + 1 : 0;
          conn.seen = new Uint8Array(conn.expected);
          expected += conn.expected;
        }
        send({op: 'armed', expected});
      } else if (op.op === 'go') {
        startPublishing(op.plan);
        progressTimer = setInterval(() => send({op: 'progress', unique: stats.unique,
          received: stats.received, acked: stats.acked, pubDone: stats.pubDone, drops: stats.drops}), 100);
        send({op: 'going'});
      } else if (op.op === 'cpu') {
        send({op: 'cpu', cpu: process.cpuUsage(cpu0)});
      } else if (op.op === 'collect') {
        if (progressTimer) clearInterval(progressTimer);
        progressTimer = null;
        send({op: 'stats', stats, hist: hist.toJSON(), cpu: process.cpuUsage(cpu0), open: countOpen()});
      } else if (op.op === 'churn') {
        resetStats();
        const r = await churn(op);
        send({op: 'churned', ...r, cpu: process.cpuUsage(cpu0)});
      } else if (op.op === 'status') {
        send({op: 'status', open: countOpen(), drops: stats.drops, pings: stats.pings, cpu: process.cpuUsage(cpu0)});
      } else if (op.op === 'exit') {
        for (const c of conns) c.close();
        for (const c of pubs) c.close();
        setTimeout(() => process.exit(0), 50);
      }
    } catch (e) {
      send({op: 'error', text: `${e.stack || e}`});
    }
  });

  function countOpen() {
    let n = 0;
    for (const c of conns) if (c.open) n++;
    return n;
  }

  process.on('disconnect', () => process.exit(0));
  send({op: 'ready', pid: process.pid});
}

// ---------------------------------------------------------------------------------------------
// coordinator

function log(text) {
  process.stderr.write(`  | ${text}\n`);
}

function procCpuTicks(pid) {
  // [utime, stime] in clock ticks
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return [Number(fields[11]), Number(fields[12])];
  } catch (e) {
    return [0, 0];
  }
}

function procRssKb(pid) {
  try {
    const m = /VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch (e) {
    return 0;
  }
}

function procFds(pid) {
  try {
    return fs.readdirSync(`/proc/${pid}/fd`).length;
  } catch (e) {
    return 0;
  }
}

function cpuSeconds(pids, clkTck) {
  return cpuSplit(pids, clkTck).total;
}

// Server CPU in seconds: {user, system, total}, summed over pids.
function cpuSplit(pids, clkTck) {
  let user = 0;
  let system = 0;
  for (const p of pids) {
    const [u, st] = procCpuTicks(p);
    user += u;
    system += st;
  }
  return {user: user / clkTck, system: system / clkTck, total: (user + system) / clkTck};
}

function fdsByPid(pids) {
  const out = {};
  for (const p of pids) out[p] = procFds(p);
  return out;
}

function rssKb(pids) {
  return pids.reduce((s, p) => s + procRssKb(p), 0);
}

class Workers {
  constructor(k, cfg) {
    this.k = k;
    this.cfg = cfg;
    this.procs = [];
    this.inbox = [];
    this.onProgress = null;
  }

  async start() {
    for (let i = 0; i < this.k; i++) {
      const child = fork(__filename, ['--worker', String(i)], {stdio: ['ignore', 'inherit', 'inherit', 'ipc']});
      const w = {child, index: i, waiters: [], progress: null};
      child.on('message', (msg) => {
        if (msg.op === 'progress') {
          w.progress = msg;
          return;
        }
        if (msg.op === 'log') return log(msg.text);
        if (msg.op === 'error') {
          log(`worker ${i} error: ${msg.text}`);
          process.exitCode = 3;
        }
        const waiter = w.waiters.shift();
        if (waiter) waiter(msg);
      });
      child.on('exit', (code) => {
        for (const waiter of w.waiters) waiter({op: 'error', text: `worker exited ${code}`});
        w.waiters = [];
      });
      this.procs.push(w);
    }
    await this.all(() => null); // 'ready'
    await this.all(() => ({op: 'setup', cfg: this.cfg}));
  }

  next(w) {
    return new Promise((resolve) => w.waiters.push(resolve));
  }

  // Sends msgFor(i) (if not null) to each worker and waits for one reply from each.
  all(msgFor) {
    return Promise.all(this.procs.map((w) => {
      const reply = this.next(w);
      const msg = msgFor(w.index);
      if (msg) w.child.send(msg);
      return reply;
    }));
  }

  cpuSeconds(replies) {
    return replies.reduce((s, r) => s + (r.cpu.user + r.cpu.system) / 1e6, 0);
  }

  stop() {
    for (const w of this.procs) {
      try {
        w.child.send({op: 'exit'});
      } catch (e) { /* gone */ }
    }
    const timer = setTimeout(() => {
      for (const w of this.procs) w.child.kill('SIGKILL');
    }, 3000);
    timer.unref();
  }
}

function sleep(ms) {
  return new Promise((r) => setTimeout(r, ms));
}

async function connectPhase(workers, subs, pubsTotal, concurrency, label) {
  // subscriber j goes to worker j % K; publisher p to worker p % K
  const k = workers.k;
  const t = nowUs();
  const replies = await workers.all((i) => ({
    op: 'connect',
    concurrency,
    subs: subs.filter((_, j) => j % k === i),
    pubs: Array.from({length: pubsTotal}, (_, p) => p).filter((p) => p % k === i)
  }));
  const secs = (nowUs() - t) / 1e6;
  const ok = replies.reduce((s, r) => s + r.ok, 0);
  const failed = replies.reduce((s, r) => s + r.failed, 0);
  const failures = {};
  for (const r of replies) for (const [key, n] of Object.entries(r.failures)) failures[key] = (failures[key] || 0) + n;
  log(`${label}: ${ok} connected in ${secs.toFixed(1)} s${failed ? `, ${failed} FAILED ${JSON.stringify(failures)}` : ''}`);
  return {ok, failed, failures, secs};
}

async function scenarioPublish(cfg, workers) {
  // fanout / paced / channels: cfg.subscribers connections over cfg.nch channels, cfg.publishers
  // publishers, cfg.messages publications of cfg.size bytes.
  const subs = Array.from({length: cfg.subscribers}, (_, j) => ({channel: `${cfg.chanPrefix}${j % cfg.nch}`, chanIdx: j % cfg.nch}));
  const fds0 = fdsByPid(cfg.serverPids);
  const conn = await connectPhase(workers, subs, cfg.publishers, cfg.connectConcurrency, 'connect');
  await sleep(cfg.settleMs);
  // Descriptors each server process gained: where the connections landed (for --workers 2).
  const fds1 = fdsByPid(cfg.serverPids);
  const fdsAdded = {};
  for (const p of cfg.serverPids) if (fds1[p] - fds0[p]) fdsAdded[p] = fds1[p] - fds0[p];
  if (cfg.serverPids.length > 1) log(`descriptors gained per server process: ${JSON.stringify(fdsAdded)}`);
  const armed = await workers.all(() => ({op: 'arm', total: cfg.messages}));
  const expected = armed.reduce((s, r) => s + r.expected, 0);
  const pids = cfg.serverPids;
  const cpu0 = cpuSplit(pids, cfg.clkTck);
  const genSelf0 = process.cpuUsage();
  const t0 = nowUs();
  const plan = {
    mode: cfg.rate ? 'paced' : 'window',
    total: cfg.messages,
    P: cfg.publishers,
    window: Math.max(1, Math.floor(cfg.window / cfg.publishers)),
    rate: cfg.rate,
    t0: t0 + 100e3
  };
  await workers.all(() => ({op: 'go', plan}));

  // Wait for every expected delivery, or a stall, or the deadline.
  const deadline = t0 + cfg.timeoutS * 1e6;
  let lastUnique = -1;
  let lastChange = nowUs();
  let lastReport = nowUs();
  let unique = 0;
  for (;;) {
    await sleep(50);
    unique = 0;
    let acked = 0;
    let pubDone = 0;
    let drops = 0;
    for (const w of workers.procs) {
      if (!w.progress) continue;
      unique += w.progress.unique;
      acked += w.progress.acked;
      pubDone += w.progress.pubDone;
      drops += w.progress.drops;
    }
    const now = nowUs();
    if (unique !== lastUnique) {
      lastUnique = unique;
      lastChange = now;
    }
    if (now - lastReport > 2e6) {
      lastReport = now;
      log(`${unique}/${expected} delivered, ${acked}/${cfg.messages} acked${drops ? `, ${drops} DROPPED` : ''}`);
    }
    if (unique >= expected && acked >= cfg.messages) break;
    if (now - lastChange > cfg.stallS * 1e6 && (pubDone >= cfg.publishers || acked >= cfg.messages || now - lastChange > 3 * cfg.stallS * 1e6)) {
      log(`stalled at ${unique}/${expected} deliveries`);
      break;
    }
    if (now > deadline) {
      log(`deadline reached at ${unique}/${expected} deliveries`);
      break;
    }
  }
  const cpu1 = cpuSplit(pids, cfg.clkTck);
  const genSelf = process.cpuUsage(genSelf0);
  const cpuReplies = await workers.all(() => ({op: 'cpu'}));
  await sleep(300); // late duplicates
  const replies = await workers.all(() => ({op: 'collect'}));
  const hist = new Hist();
  const tot = {received: 0, unique: 0, dups: 0, misrouted: 0, acked: 0, pubErrors: 0, drops: 0, pings: 0};
  let firstSend = Infinity;
  let lastRecv = 0;
  for (const r of replies) {
    hist.merge(r.hist);
    for (const key of Object.keys(tot)) tot[key] += r.stats[key];
    if (r.stats.firstSend) firstSend = Math.min(firstSend, r.stats.firstSend);
    lastRecv = Math.max(lastRecv, r.stats.lastRecv);
  }
  const genCpu = workers.cpuSeconds(cpuReplies) + (genSelf.user + genSelf.system) / 1e6;
  const genSys = cpuReplies.reduce((s, r) => s + r.cpu.system / 1e6, 0) + genSelf.system / 1e6;
  const elapsed = Math.max(1e-6, (lastRecv - firstSend) / 1e6);
  const serverCpu = cpu1.total - cpu0.total;
  return {
    connected: conn.ok,
    connect_failed: conn.failed,
    connect_failures: conn.failures,
    expected,
    delivered: tot.unique,
    lost: expected - tot.unique,
    duplicated: tot.dups,
    misrouted: tot.misrouted,
    drops: tot.drops,
    pings_answered: tot.pings,
    publish_errors: tot.pubErrors,
    acked: tot.acked,
    elapsed_s: elapsed,
    deliveries_per_s: tot.unique / elapsed,
    latency_us: hist.summary(),
    hist: hist.toJSON(),
    server_fds_added: fdsAdded,
    server_cpu_s: serverCpu,
    server_cpu_system_s: cpu1.system - cpu0.system,
    server_cpu_us_per_delivery: tot.unique ? (serverCpu * 1e6) / tot.unique : null,
    server_cpu_util: serverCpu / elapsed,
    gen_cpu_s: genCpu,
    gen_cpu_system_s: genSys,
    gen_cpu_us_per_delivery: tot.unique ? (genCpu * 1e6) / tot.unique : null,
    gen_cpu_util: genCpu / elapsed,
    // per generator process (worker 0 also hosts publisher 0): is one of them saturated?
    gen_cpu_util_per_proc: cpuReplies.map((r) => (r.cpu.user + r.cpu.system) / 1e6 / elapsed)
  };
}

async function scenarioIdle(cfg, workers) {
  const pids = cfg.serverPids;
  await sleep(cfg.settleMs);
  const rss0 = rssKb(pids);
  const fds0 = pids.reduce((s, p) => s + procFds(p), 0);
  log(`server RSS before connecting: ${(rss0 / 1024).toFixed(1)} MiB`);
  const levels = [];
  let have = 0;
  for (const level of cfg.levels) {
    const subs = [];
    for (let j = have; j < level; j++) subs.push({channel: `${cfg.chanPrefix}${j}`, chanIdx: 0});
    const cpu0 = cpuSeconds(pids, cfg.clkTck);
    const conn = await connectPhase(workers, subs, 0, cfg.connectConcurrency, `idle ${level}`);
    const cpu1 = cpuSeconds(pids, cfg.clkTck);
    have = level;
    await sleep(cfg.settleMs);
    const status = await workers.all(() => ({op: 'status'}));
    const open = status.reduce((s, r) => s + r.open, 0);
    const rss = rssKb(pids);
    const fds = pids.reduce((s, p) => s + procFds(p), 0);
    const perConn = ((rss - rss0) * 1024) / Math.max(1, open);
    log(`idle ${level}: ${open} open, server RSS ${(rss / 1024).toFixed(1)} MiB, ` +
      `${(perConn / 1024).toFixed(2)} KiB per connection, ${fds - fds0} new fds`);
    levels.push({
      level,
      connected: open,
      connect_failed: level - open,
      connect_failures: conn.failures,
      connect_s: conn.secs,
      connects_per_s: conn.ok / Math.max(1e-6, conn.secs),
      server_cpu_us_per_connect: conn.ok ? ((cpu1 - cpu0) * 1e6) / conn.ok : null,
      rss_kb: rss,
      rss_bytes_per_conn: perConn
    });
  }
  // Hold: no connection may drop while the server pings them all.
  const cpu0 = cpuSeconds(pids, cfg.clkTck);
  const before = await workers.all(() => ({op: 'status'}));
  log(`holding ${have} connections for ${cfg.holdS} s`);
  await sleep(cfg.holdS * 1000);
  const after = await workers.all(() => ({op: 'status'}));
  const cpu1 = cpuSeconds(pids, cfg.clkTck);
  const open = after.reduce((s, r) => s + r.open, 0);
  const drops = after.reduce((s, r) => s + r.drops, 0);
  const pings = after.reduce((s, r) => s + r.pings, 0) - before.reduce((s, r) => s + r.pings, 0);
  log(`after holding: ${open} open, ${drops} dropped, ${pings} pings answered`);
  return {
    rss_before_kb: rss0,
    levels,
    held: open,
    drops,
    pings_during_hold: pings,
    hold_s: cfg.holdS,
    hold_server_cpu_s: cpu1 - cpu0,
    gen_cpu_s: workers.cpuSeconds(after)
  };
}

async function scenarioChurn(cfg, workers) {
  const pids = cfg.serverPids;
  await sleep(cfg.settleMs);
  const cpu0 = cpuSplit(pids, cfg.clkTck);
  const t0 = nowUs();
  const per = Math.max(1, Math.round(cfg.concurrency / workers.k));
  log(`churn: ${per * workers.k} concurrent loops for ${cfg.durationS} s`);
  const replies = await workers.all(() => ({op: 'churn', concurrency: per, durationMs: cfg.durationS * 1000}));
  const elapsed = (nowUs() - t0) / 1e6;
  const cpu1 = cpuSplit(pids, cfg.clkTck);
  const hist = new Hist();
  let cycles = 0;
  const failures = {};
  for (const r of replies) {
    cycles += r.cycles;
    hist.merge(r.hist);
    for (const [key, n] of Object.entries(r.failures)) failures[key] = (failures[key] || 0) + n;
  }
  const failed = Object.values(failures).reduce((s, n) => s + n, 0);
  const serverCpu = cpu1.total - cpu0.total;
  const genCpu = workers.cpuSeconds(replies);
  log(`churn: ${cycles} cycles, ${(cycles / elapsed).toFixed(0)}/s${failed ? `, ${failed} FAILED ${JSON.stringify(failures)}` : ''}`);
  return {
    cycles,
    failed,
    failures,
    elapsed_s: elapsed,
    cycles_per_s: cycles / elapsed,
    latency_us: hist.summary(),
    hist: hist.toJSON(),
    server_cpu_s: serverCpu,
    server_cpu_system_s: cpu1.system - cpu0.system,
    server_cpu_us_per_cycle: cycles ? (serverCpu * 1e6) / cycles : null,
    server_cpu_util: serverCpu / elapsed,
    gen_cpu_s: genCpu,
    gen_cpu_us_per_cycle: cycles ? (genCpu * 1e6) / cycles : null,
    gen_cpu_util: genCpu / elapsed
  };
}

async function coordinator(cfg) {
  const defaults = {
    procs: 1,
    nch: 1,
    chanPrefix: 'bench/',
    subscribers: 1000,
    publishers: 1,
    messages: 2000,
    size: 100,
    window: 100,
    rate: 0,
    connectConcurrency: 100,
    settleMs: 500,
    stallS: 3,
    timeoutS: 120,
    srcNet: '127.0.1',
    clkTck: 100,
    serverPids: []
  };
  cfg = {...defaults, ...cfg};
  const workers = new Workers(cfg.procs, {url: cfg.url, nch: cfg.nch, size: cfg.size, chanPrefix: cfg.chanPrefix, srcNet: cfg.srcNet});
  const hardStop = setTimeout(() => {
    log('coordinator: hard time limit reached');
    workers.stop();
    process.exit(4);
  }, (cfg.hardLimitS || 300) * 1000);
  hardStop.unref();
  let result;
  try {
    await workers.start();
    if (cfg.scenario === 'idle') result = await scenarioIdle(cfg, workers);
    else if (cfg.scenario === 'churn') result = await scenarioChurn(cfg, workers);
    else result = await scenarioPublish(cfg, workers);
  } finally {
    workers.stop();
  }
  result.scenario = cfg.scenario;
  result.procs = cfg.procs;
  process.stdout.write(`${JSON.stringify(result)}\n`);
  setTimeout(() => process.exit(0), 200).unref();
}

if (process.argv[2] === '--worker') {
  runWorker(Number(process.argv[3]));
} else if (require.main === module) {
  const arg = process.argv[2];
  if (!arg) {
    console.error(`usage: node ${path.basename(__filename)} '<json config>'`);
    process.exit(2);
  }
  coordinator(JSON.parse(arg)).catch((e) => {
    console.error(e);
    process.exit(1);
  });
}
