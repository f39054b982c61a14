// Socket.IO clients against a running gateway, with the npm socket.io-client
// (pinned by package-lock.json): polling then the upgrade to WebSocket,
// subscribing with since, pushes of what REST posts, publishing with an ack
// after commit, errors, a WebSocket-only client, a refused namespace, a
// client that stops answering pings, and a reconnection across a restart of
// the gateway that resumes without a loss or a repeat.
//
//   node cases.js <http-port>        TAP on stdout, exit 1 if a case failed
//
// Run by tests/integration/test_sio_node.py, which starts the gateway with
// --heartbeat 1 --sio-ping-timeout 1. To restart it, this script prints
// "RESTART" and waits for a line "RESTARTED" on its stdin.
'use strict';

const readline = require('readline');
const { io } = require('socket.io-client');
const { ok, done } = require('../tap.js');

const port = Number(process.argv[2]);
const base = `http://127.0.0.1:${port}`;
const TIMEOUT_MS = 15000;

function within(promise, what, ms = TIMEOUT_MS) {
  let timer;
  return Promise.race([
    promise,
    new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Error(`timed out waiting for ${what}`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

function once(emitter, event, what) {
  return within(new Promise((resolve) => emitter.once(event, (...a) => resolve(a))), what || event);
}

async function rest(method, path, body) {
  const r = await fetch(base + path, {
    method,
    headers: body ? { 'content-type': 'application/json' } : {},
    body: body ? JSON.stringify(body) : undefined,
  });
  return { status: r.status, json: await r.json() };
}

const post = (channel, body, sender) =>
  rest('POST', `/v1/channels/${channel}/messages`, { body, sender: sender || 'rest' });

// Pushes of one socket, waited for in order.
function inbox(socket, event = 'message') {
  const box = { items: [], waiters: [] };
  socket.on(event, (m) => {
    if (box.waiters.length) box.waiters.shift()(m);
    else box.items.push(m);
  });
  box.next = (what) =>
    within(
      new Promise((resolve) => {
        if (box.items.length) resolve(box.items.shift());
        else box.waiters.push(resolve);
      }),
      what || event,
    );
  return box;
}

function connect(opts) {
  return io(base, { reconnection: false, timeout: 5000, ...opts });
}

async function pollingThenUpgrade() {
  const socket = connect({ transports: ['polling', 'websocket'] });
  // The engine opens (over polling), then probes and upgrades: both heard from the start.
  const opened = await within(new Promise((resolve) => socket.io.once('open', () => {
    const eng = socket.io.engine;
    resolve({ first: eng.transport.name, upgraded: new Promise((r) => eng.once('upgrade', r)) });
  })), 'the engine to open');
  await once(socket, 'connect');
  ok(opened.first === 'polling', 'connects over polling first', opened.first);
  ok(typeof socket.id === 'string' && /^[0-9a-f]{16}$/.test(socket.id),
    'the Socket.IO sid is the session id', socket.id);
  await within(opened.upgraded, 'the upgrade to websocket');
  ok(socket.io.engine.transport.name === 'websocket', 'upgrades to websocket',
    socket.io.engine.transport.name);
  // The session goes on over the WebSocket: an ack still comes.
  const ack = await within(socket.emitWithAck('channels', {}), 'the channels ack');
  ok(ack && ack.type === 'ok' && Array.isArray(ack.channels), 'an ack after the upgrade', ack);
  socket.disconnect();
}

async function subscribeAndPublish() {
  const ch = 'sio-sub';
  await post(ch, 'one');
  await post(ch, 'two');
  const socket = connect();
  const box = inbox(socket);
  await once(socket, 'connect');
  const ack = await within(socket.emitWithAck('sub', { channel: ch, since: 1 }), 'the sub ack');
  ok(ack.type === 'ok' && ack.op === 'sub' && ack.channel === ch && ack.since === 1 &&
    ack.top === 2, 'sub with since is acked with since and top', ack);
  const replayed = await box.next('the replay');
  ok(replayed.seq === 2 && replayed.body === 'two' && replayed.via === 'rest' &&
    replayed.type === undefined, 'the message after since is replayed, as the message object',
  replayed);
  const posted = await post(ch, 'three');
  const live = await box.next('the live push');
  ok(live.seq === 3 && live.id === posted.json.id && live.body === 'three',
    'a message posted over REST is pushed live', live);

  const pub = await within(socket.emitWithAck('pub', { channel: ch, body: 'from sio', sender: 'node' }),
    'the pub ack');
  ok(pub.type === 'ok' && pub.op === 'pub' && pub.message && pub.message.seq === 4 &&
    pub.message.via === 'socketio' && pub.message.sender === 'node', 'pub is acked with the stored message', pub);
  // Acked after commit: REST reads it at once.
  const stored = await rest('GET', `/v1/messages/${pub.message.id}`);
  ok(stored.status === 200 && stored.json.body === 'from sio' && stored.json.via === 'socketio',
    'the acked message is stored', stored);
  const own = await box.next('the own push');
  ok(own.seq === 4, 'a subscribed publisher gets its own message pushed', own);

  const bad = await within(socket.emitWithAck('sub', { channel: 'not a channel!' }), 'the error ack');
  ok(bad.type === 'error' && bad.code === 'invalid_channel' && typeof bad.message === 'string',
    'an error comes back in the ack, with the code of every front', bad);
  const cursor = await within(socket.emitWithAck('sub', { channel: ch, since: 99 }), 'the cursor ack');
  ok(cursor.type === 'error' && cursor.code === 'invalid_cursor', 'a since past the top is invalid_cursor', cursor);
  const unknown = await within(socket.emitWithAck('shout', { channel: ch }), 'the unknown ack');
  ok(unknown.type === 'error' && unknown.code === 'unknown_command', 'an unknown event is unknown_command', unknown);
  const unsub = await within(socket.emitWithAck('unsub', { channel: ch }), 'the unsub ack');
  ok(unsub.type === 'ok' && unsub.op === 'unsub', 'unsub is acked', unsub);
  socket.disconnect();
}

async function badPacket() {
  const ch = 'sio-bad';
  await post(ch, 'kept');
  const socket = connect();
  const errors = inbox(socket, 'error');
  await once(socket, 'connect');
  // A broken EVENT, written under the Socket.IO layer: the packet's JSON is cut short.
  socket.io.engine.write('2["pub",{"channel":"sio-bad","body":"lost"');
  const e = await errors.next('the error event');
  ok(e && e.code === 'invalid_json' && typeof e.message === 'string',
    'a bad packet is answered with an error event', e);
  // A packet without an ack that is not JSON at all, and a binary event.
  socket.io.engine.write('2nonsense');
  const e2 = await errors.next('the second error event');
  ok(e2 && e2.code === 'invalid_json', 'a second bad packet too', e2);
  const bin = await within(socket.emitWithAck('pub', { channel: ch, body: Buffer.from('xyz') }),
    'the binary ack');
  ok(bin.type === 'error' && bin.code === 'unsupported_media_type', 'a binary event is refused', bin);
  const page = await rest('GET', `/v1/channels/${ch}/messages`);
  ok(page.json.messages.length === 1 && page.json.messages[0].body === 'kept',
    'bad packets change nothing', page.json);
  const still = await within(socket.emitWithAck('pub', { channel: ch, body: 'after' }), 'a pub after');
  ok(still.type === 'ok' && still.message.seq === 2, 'the session goes on', still);
  socket.disconnect();
}

async function websocketOnly() {
  const ch = 'sio-ws';
  const socket = connect({ transports: ['websocket'] });
  const box = inbox(socket);
  await once(socket, 'connect');
  ok(socket.io.engine.transport.name === 'websocket', 'a websocket-only client connects',
    socket.io.engine.transport.name);
  const ack = await within(socket.emitWithAck('sub', { channel: ch }), 'the sub ack');
  ok(ack.type === 'ok' && ack.since === 0, 'it subscribes', ack);
  const other = connect({ transports: ['polling'], upgrade: false });
  await once(other, 'connect');
  const pub = await within(other.emitWithAck('pub', { channel: ch, body: 'across' }), 'the pub ack');
  const m = await box.next('the push');
  ok(m.id === pub.message.id && m.body === 'across', 'a polling client publishes to a websocket one', m);
  other.disconnect();
  socket.disconnect();
}

async function namespaceRefused() {
  const socket = io(`${base}/admin`, { reconnection: false, timeout: 5000 });
  const [err] = await once(socket, 'connect_error');
  ok(err && /namespace/.test(err.message) && /'\/'/.test(err.message),
    'another namespace is refused with CONNECT_ERROR', err && err.message);
  socket.disconnect();
}

async function silentClient() {
  const socket = connect();
  const errors = inbox(socket, 'error');
  await once(socket, 'connect');
  const eng = socket.io.engine;
  const send = eng._sendPacket.bind(eng);
  let dropped = 0;
  eng._sendPacket = (type, ...rest) => {
    if (type === 'pong') {
      dropped++;
      return undefined;
    }
    return send(type, ...rest);
  };
  const t0 = Date.now();
  const [reason] = await once(socket, 'disconnect', 'the disconnect of a client that does not pong');
  const e = await errors.next('the idle_timeout error');
  ok(dropped >= 1 && reason === 'transport close' && Date.now() - t0 < 8000,
    'a client that stops answering pings is dropped', { dropped, reason, ms: Date.now() - t0 });
  ok(e && e.code === 'idle_timeout', 'it is told idle_timeout first', e);
}

function waitLine(lines, want) {
  return within(new Promise((resolve) => {
    const on = (l) => {
      if (l.trim() === want) {
        lines.off('line', on);
        resolve();
      }
    };
    lines.on('line', on);
  }), want, 60000);
}

async function resumeAcrossRestart(lines) {
  const ch = 'sio-resume';
  await post(ch, 'r1');
  await post(ch, 'r2');
  const socket = io(base, { reconnectionDelay: 100, reconnectionDelayMax: 500, timeout: 2000 });
  const seen = [];
  let last = 0;
  let waiter = null;
  socket.on('message', (m) => {
    if (m.channel !== ch) return;
    seen.push(m.seq);
    last = m.seq;
    if (waiter && seen.length >= waiter.count) waiter.resolve();
  });
  const upTo = (count) => within(new Promise((resolve) => {
    if (seen.length >= count) resolve();
    else waiter = { count, resolve };
  }), `${count} messages`);
  // The client's own reconnect, and the last seq it saw: on every connect.
  let connects = 0;
  socket.on('connect', () => {
    connects++;
    socket.emit('sub', { channel: ch, since: last });
  });
  await upTo(2);
  const gone = once(socket, 'disconnect', 'the disconnect at the stop');
  console.log('RESTART');
  const [reason] = await gone;
  await waitLine(lines, 'RESTARTED');
  await post(ch, 'r3');
  await post(ch, 'r4');
  await within(new Promise((resolve) => {
    if (connects >= 2) resolve();
    else socket.once('connect', resolve);
  }), 'the reconnect', 30000);
  await upTo(4);
  await post(ch, 'r5');
  await upTo(5);
  ok(reason === 'transport close', 'the stop is a transport close (the client reconnects)', reason);
  ok(JSON.stringify(seen) === '[1,2,3,4,5]',
    'resumed after the restart with since: nothing lost, nothing repeated', seen);
  socket.disconnect();
}

async function main() {
  const lines = readline.createInterface({ input: process.stdin });
  const cases = [pollingThenUpgrade, subscribeAndPublish, badPacket, websocketOnly,
    namespaceRefused, silentClient];
  for (const c of cases) {
    try {
      await c();
    } catch (e) {
      ok(false, `${c.name} ran to its end`, String(e && e.stack));
    }
  }
  try {
    await resumeAcrossRestart(lines);
  } catch (e) {
    ok(false, 'resumeAcrossRestart ran to its end', String(e && e.stack));
  }
  lines.close();
  done();
}

main();
