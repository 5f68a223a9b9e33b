'use strict';
// A hand-rolled SocketCluster peer on top of `ws` (adapted from the team's sc-interop/lib/rawclient.js),
// for what the official client never does: handshakes without cid, events before the handshake,
// wrong paths, never answering pings, exact wire shapes.

const WebSocket = require('ws');

class RawPeer {
  // url: full ws:// URL (path and query included); codecName: 'json' | 'minbin'
  constructor(url, {codec, codecName, autoPong = true, protocolVersion = 2} = {}) {
    this.codec = codec;
    this.codecName = codecName;
    this.autoPong = autoPong;
    this.protocolVersion = protocolVersion;
    this.pings = 0;
    this.frames = []; // every non-ping frame: {binary, packet, wire (text, or hex for binary)}
    this.inbox = [];
    this.waiters = [];
    this.ws = new WebSocket(url);
    this.ws.binaryType = 'nodebuffer';
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => resolve({code, reason: reason.toString()}));
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.on('open', () => resolve());
      this.ws.on('error', (err) => reject(err));
      this.ws.on('unexpected-response', (req, res) => {
        let body = '';
        res.on('data', (c) => { body += c; });
        res.on('end', () => {
          reject(Object.assign(new Error(`HTTP ${res.statusCode}`), {statusCode: res.statusCode, body}));
          req.destroy();
        });
      });
    });
    this.opened.catch(() => {});
    this.ws.on('message', (data, isBinary) => {
      let pingStr = this.protocolVersion === 1 ? '#1' : '';
      if (!isBinary && data.toString() === pingStr) {
        this.pings++;
        if (this.autoPong) this.ws.send(this.protocolVersion === 1 ? '#2' : '');
        return;
      }
      let packet;
      try {
        packet = this.codecName === 'json' ? JSON.parse(data.toString()) : this.codec.decode(data);
      } catch (e) {
        packet = {undecodable: isBinary ? data.toString('hex') : data.toString()};
      }
      let frame = {binary: isBinary, packet, wire: isBinary ? data.toString('hex') : data.toString()};
      this.frames.push(frame);
      if (this.waiters.length) {
        this.waiters.shift()(frame);
      } else {
        this.inbox.push(frame);
      }
    });
  }

  send(packet) {
    if (this.codecName === 'json') {
      this.ws.send(JSON.stringify(packet));
    } else {
      this.ws.send(this.codec.encode(packet));
    }
  }

  sendText(text) {
    this.ws.send(text);
  }

  // Next non-ping frame ({binary, packet}), or undefined after timeoutMs.
  nextFrame(timeoutMs = 2000) {
    if (this.inbox.length) return Promise.resolve(this.inbox.shift());
    return new Promise((resolve) => {
      let fn = (v) => {
        clearTimeout(timer);
        resolve(v);
      };
      let timer = setTimeout(() => {
        let i = this.waiters.indexOf(fn);
        if (i !== -1) this.waiters.splice(i, 1);
        resolve(undefined);
      }, timeoutMs);
      this.waiters.push(fn);
    });
  }

  async next(timeoutMs = 2000) {
    let frame = await this.nextFrame(timeoutMs);
    return frame === undefined ? undefined : frame.packet;
  }

  // Resolves with {code, reason} or with undefined if the socket is still open after timeoutMs.
  closedWithin(timeoutMs) {
    let timer;
    return Promise.race([
      this.closed,
      new Promise((resolve) => { timer = setTimeout(() => resolve(undefined), timeoutMs); })
    ]).finally(() => clearTimeout(timer));
  }

  close(code = 1000, reason) {
    if (this.ws.readyState === WebSocket.OPEN) this.ws.close(code, reason);
    else if (this.ws.readyState === WebSocket.CONNECTING) this.ws.terminate();
  }
}

module.exports = {RawPeer};
