// WebSocket protocol cases against a running gateway, with the npm `ws`
// client: the kinds of case the Autobahn|Testsuite fuzzingclient runs
// (framing at the length boundaries, fragmentation with control frames in
// between, UTF-8, ping/pong, the close handshake and its codes), which
// cannot be had here. Unmasked frames and broken headers, which `ws` will
// not send, are in tests/integration/test_ws_frames.py.
//
//   node cases.js <http-port>        TAP on stdout, exit 1 if a case failed
//
// Run by tests/integration/test_ws_node.py, which starts the gateway.
'use strict';

const http = require('http');
const WebSocket = require('ws');
const { ok, done } = require('../tap.js');

const port = Number(process.argv[2]);
const url = `ws://127.0.0.1:${port}/v1/ws`;
const TIMEOUT_MS = 15000;

// A session: messages parsed as they come, waited for one at a time.
function open(protocols, options) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, options);
    const s = { ws, queue: [], waiters: [], pongs: [], closed: null };
    ws.on('message', (data, isBinary) => {
      const m = { isBinary, text: data.toString('utf8') };
      try {
        m.obj = JSON.parse(m.text);
      } catch (e) {
        m.obj = null;
      }
      if (s.waiters.length) s.waiters.shift()(m);
      else s.queue.push(m);
    });
    ws.on('pong', (data) => s.pongs.push(data.toString('utf8')));
    ws.on('close', (code, reason) => {
      s.closed = { code, reason: reason.toString('utf8') };
      while (s.waiters.length) s.waiters.shift()(null);
    });
    ws.on('error', (e) => { s.error = e; });
    ws.once('open', async () => {
      s.hello = (await next(s)).obj;
      resolve(s);
    });
    ws.once('unexpected-response', (req, res) => reject(new Error(`HTTP ${res.statusCode}`)));
    ws.once('error', reject);
  });
}

function next(s) {
  if (s.queue.length) return Promise.resolve(s.queue.shift());
  if (s.closed) return Promise.resolve(null);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), TIMEOUT_MS);
    s.waiters.push((m) => { clearTimeout(t); resolve(m); });
  });
}

function closedWith(s) {
  if (s.closed) return Promise.resolve(s.closed);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), TIMEOUT_MS);
    s.ws.once('close', (code, reason) => {
      clearTimeout(t);
      resolve({ code, reason: reason.toString('utf8') });
    });
  });
}

async function request(s, line) {
  s.ws.send(line);
  for (;;) {
    const m = await next(s);
    if (!m || !m.obj || (m.obj.type !== 'message' && m.obj.type !== 'gap')) return m;
  }
}

function post(channel, body) {
  return new Promise((resolve, reject) => {
    const data = JSON.stringify({ body });
    const req = http.request({ host: '127.0.0.1', port, method: 'POST',
      path: `/v1/channels/${channel}/messages`,
      headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) } },
    (res) => {
      let text = '';
      res.on('data', (c) => { text += c; });
      res.on('end', () => resolve({ status: res.statusCode, obj: JSON.parse(text) }));
    });
    req.on('error', reject);
    req.end(data);
  });
}

async function cases() {
  // -- handshake
  let s = await open('visavis.v1');
  ok(s.ws.protocol === 'visavis.v1', 'subprotocol visavis.v1 agreed', s.ws.protocol);
  ok(s.hello && s.hello.type === 'hello', 'the hello is the first text message', JSON.stringify(s.hello));

  // -- framing: bodies at the length boundaries of the frame header, both ways
  for (const size of [0, 1, 125, 126, 127, 4095, 4096, 4097, 65535 - 20, 65000]) {
    const body = 'b'.repeat(size);
    const r = await request(s, size ? `PUB node-len ${body}` : JSON.stringify({ op: 'pub', channel: 'node-len', body: '' }));
    ok(r && r.obj && r.obj.type === 'ok' && r.obj.message.body === body,
      `a message with a body of ${size} bytes, and its reply`, r && r.text.slice(0, 200));
  }

  // -- fragmentation, with a ping in between
  s.ws.send('PUB node-frag fragm', { fin: false });
  s.ws.ping('between');
  s.ws.send('ented ', { fin: false });
  s.ws.send('message', { fin: true });
  let r = await next(s);
  ok(r && r.obj.type === 'ok' && r.obj.message.body === 'fragmented message', 'a message in three frames', r && r.text);
  ok(s.pongs.includes('between'), 'the ping between its frames answered', JSON.stringify(s.pongs));

  // -- ping/pong with payloads up to 125 bytes
  for (const p of ['', 'x', 'p'.repeat(125)]) {
    s.pongs = [];
    s.ws.ping(p);
    r = await request(s, 'PING');
    ok(s.pongs.length === 1 && s.pongs[0] === p, `ping of ${p.length} bytes gets its pong`, JSON.stringify(s.pongs));
  }

  // -- UTF-8 both ways
  for (const text of ['héllo', '世界', '🎉 emoji', 'mixed ascii and ünïcödé ✓']) {
    r = await request(s, `PUB node-utf8 ${text}`);
    ok(r && r.obj.type === 'ok' && r.obj.message.body === text, `UTF-8 kept: ${text}`, r && r.text);
  }

  // -- a push from REST
  r = await request(s, 'SUB node-push');
  ok(r && r.obj.type === 'ok', 'SUB', r && r.text);
  const posted = await post('node-push', 'from rest');
  const pushed = await next(s);
  ok(posted.status === 201 && pushed && pushed.obj.type === 'message' &&
     pushed.obj.id === posted.obj.id && pushed.obj.via === 'rest', 'a REST publish pushed as a text message',
  pushed && pushed.text);

  // -- the close handshake
  s.ws.close(1000, 'done');
  let c = await closedWith(s);
  ok(c && c.code === 1000 && c.reason === 'done', 'the client closes with 1000: echoed', JSON.stringify(c));

  s = await open();
  s.ws.close(4000, 'custom');
  c = await closedWith(s);
  ok(c && c.code === 4000, 'a private close code (4000) is echoed', JSON.stringify(c));

  s = await open();
  s.ws.send('QUIT');
  r = await next(s);
  c = await closedWith(s);
  ok(r && r.obj.type === 'bye' && c && c.code === 1000, 'QUIT: bye, then 1000', JSON.stringify([r && r.text, c]));

  s = await open();
  s.ws.send(Buffer.from('PING'), { binary: true });
  r = await next(s);
  c = await closedWith(s);
  ok(r && r.obj.code === 'unsupported_media_type' && c && c.code === 1003, 'a binary message: an error, then 1003', JSON.stringify([r && r.text, c]));

  s = await open();
  s.ws.send(Buffer.from([0x50, 0x49, 0x4e, 0x47, 0x20, 0xc3, 0x28]), { binary: false });
  c = await closedWith(s);
  ok(c && c.code === 1007, 'a text message that is not UTF-8: 1007', JSON.stringify(c));

  s = await open();
  s.ws.send(`PUB node-big ${'z'.repeat(70000)}`);
  r = await next(s);
  c = await closedWith(s);
  ok(r && r.obj.code === 'line_too_long' && c && c.code === 1009, 'a message over --max-line: an error, then 1009', JSON.stringify([r && r.text.slice(0, 200), c]));

  s = await open();
  for (let i = 0; i < 10; i++) s.ws.send(`NOPE ${i}`);
  c = await closedWith(s);
  ok(c && c.code === 1008, 'ten errors in a row: 1008', JSON.stringify(c));
}

const guard = setTimeout(() => {
  ok(false, 'the cases finished in time');
  done(true);
}, 120000);

cases().then(() => {
  clearTimeout(guard);
  done();
}, (e) => {
  ok(false, 'no exception', e.stack);
  done(true);
});
