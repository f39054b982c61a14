"""A raw WebSocket client for the integration tests (RFC 6455 framing by hand,
standard library only): the handshake, frames of any shape (masked or not,
fragmented, control frames in between), and the same reading helpers as
harness.Session over text messages instead of lines.

    ws = WsSession(gw)                     handshake on GET /v1/ws, then the hello
    ws.send_text('PUB general hi')         one command per text message
    r = ws.request('PING')                 send + the next reply
    m = ws.push()                          the next "message" push
    ws.send_frame(OP_TEXT, b'x', fin=False, mask=True)   any frame at all
    code, reason = ws.expect_close()       the server's close frame, then its end of stream
    status, headers, body = handshake_raw(gw, {...})     a handshake that may be refused

Every text message the server sends must be one JSON object with a string
"type"; server frames must not be masked; reads have a deadline. Pings from
the server are answered with pongs (unless auto_pong is False) and counted in
ws.server_pings.
"""

import base64
import collections
import hashlib
import json
import os
import socket
import struct
import time

import harness
from harness import Failure, check, eq, _short

OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10
GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
TIMEOUT = harness.SESSION_TIMEOUT


def accept_of(key):
    return base64.b64encode(hashlib.sha1(key.encode('ascii') + GUID).digest()).decode('ascii')


def new_key():
    return base64.b64encode(os.urandom(16)).decode('ascii')


def frame(opcode, payload=b'', fin=True, mask=True, rsv=0, length=None):
    """One frame as bytes; length overrides the length field (for lies)."""
    if isinstance(payload, str):
        payload = payload.encode('utf-8')
    n = len(payload) if length is None else length
    b0 = (0x80 if fin else 0) | (rsv << 4) | opcode
    mbit = 0x80 if mask else 0
    if n < 126:
        head = struct.pack('!BB', b0, mbit | n)
    elif n < 65536:
        head = struct.pack('!BBH', b0, mbit | 126, n)
    else:
        head = struct.pack('!BBQ', b0, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(c ^ key[i % 4] for i, c in enumerate(payload))
    return head + key + masked


def _read_head(sock, deadline):
    data = b''
    while b'\r\n\r\n' not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            raise Failure('no handshake answer within the deadline: %s' % _short(data))
        sock.settimeout(left)
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    lines = head.decode('latin-1').split('\r\n')
    check(lines and lines[0].startswith('HTTP/1.1 '), 'not an HTTP answer: %s' % _short(data))
    status = int(lines[0].split()[1])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(':')
        headers.setdefault(k.strip().lower(), []).append(v.strip())
    return status, headers, rest


def handshake_raw(gw, headers=None, path='/v1/ws', method='GET', version='HTTP/1.1',
                  timeout=TIMEOUT):
    """Sends an upgrade request with exactly these headers (plus Host unless
    given) and returns (status, {lower-name: [values]}, body bytes, socket).
    The body is read by Content-Length when there is one."""
    port = gw if isinstance(gw, int) else gw.http_port
    hdrs = dict(headers or {})
    if not any(k.lower() == 'host' for k in hdrs):
        hdrs['Host'] = '127.0.0.1:%d' % port
    req = '%s %s %s\r\n' % (method, path, version)
    req += ''.join('%s: %s\r\n' % kv for kv in hdrs.items()) + '\r\n'
    sock = socket.create_connection(('127.0.0.1', port), timeout=timeout)
    sock.sendall(req.encode('latin-1'))
    deadline = time.monotonic() + timeout
    status, got, rest = _read_head(sock, deadline)
    if status != 101 and 'content-length' in got:
        want = int(got['content-length'][0])
        while len(rest) < want:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            chunk = sock.recv(65536)
            if not chunk:
                break
            rest += chunk
    return status, got, rest, sock


def flood(sock, unit, quiet=1.0, deadline=30.0):
    """Sends unit over and over on the non-blocking sock, reading nothing, as fast as the
    gateway takes it, until it has taken nothing for quiet seconds, or for deadline seconds
    in all. Returns (bytes sent, bytes sent in the last quiet seconds): a gateway that stops
    reading a peer it owes answers ends with 0, one that reads on does not, however slow the
    machine is."""
    sent, left = 0, b''
    t0 = time.monotonic()
    taken = [(t0, 0)]  # (when, bytes sent by then), for the last quiet seconds
    while True:
        now = time.monotonic()
        while len(taken) > 1 and taken[1][0] <= now - quiet:
            taken.pop(0)
        if now - taken[-1][0] >= quiet or now - t0 >= deadline:
            return sent, sent - taken[0][1]  # taken[0]: the last count quiet seconds ago
        left = left or unit * 256
        try:
            n = sock.send(left)
        except BlockingIOError:
            time.sleep(0.01)  # the gateway stopped reading: its answers wait for us
            continue
        sent, left = sent + n, left[n:]
        taken.append((time.monotonic(), sent))


def upgrade_headers(key=None, protocol=None, origin=None, extra=None):
    h = {'Upgrade': 'websocket', 'Connection': 'Upgrade', 'Sec-WebSocket-Version': '13',
         'Sec-WebSocket-Key': key or new_key()}
    if protocol:
        h['Sec-WebSocket-Protocol'] = protocol
    if origin:
        h['Origin'] = origin
    h.update(extra or {})
    return h


class Closed(Exception):
    """The server's close frame arrived where a message was expected."""

    def __init__(self, code, reason):
        super().__init__('closed by the server: %s %r' % (code, reason))
        self.code, self.reason = code, reason


class WsSession(harness.Session):
    """harness.Session over a WebSocket: one text message per line. Its
    reply(), push(), messages(), request() and request_json() work as
    they do on TCP."""

    def __init__(self, gw, hello=True, protocol=None, origin=None, timeout=None, rcvbuf=None,
                 auto_pong=True, first=b'', source=None):
        self.timeout = TIMEOUT if timeout is None else timeout
        port = gw if isinstance(gw, int) else gw.http_port
        key = new_key()
        hdrs = upgrade_headers(key, protocol, origin)
        hdrs['Host'] = '127.0.0.1:%d' % port
        req = 'GET /v1/ws HTTP/1.1\r\n' + ''.join('%s: %s\r\n' % kv for kv in hdrs.items())
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(self.timeout)
        if source:
            s.bind((source, 0))  # another loopback address
        s.connect(('127.0.0.1', port))
        # first: frames sent in the same write as the request (read ahead by the HTTP front)
        s.sendall((req + '\r\n').encode('latin-1') + first)
        self.sock = s
        status, headers, rest = _read_head(s, time.monotonic() + self.timeout)
        eq(status, 101, 'handshake status (headers %s)' % headers)
        eq(headers.get('sec-websocket-accept'), [accept_of(key)], 'Sec-WebSocket-Accept')
        check('websocket' in [v.lower() for v in headers.get('upgrade', [])],
              'Upgrade header of the 101: %s' % headers)
        self.headers = headers
        self.buf = rest
        self.auto_pong = auto_pong
        self.server_pings = []     # payloads of the server's pings
        self.pongs = []            # payloads of pongs received
        self.pushes = collections.deque()
        self.replies = collections.deque()
        self.pings = 0
        self.frames = []           # (fin, opcode, length) of every frame received, for checks
        self.close_frame = None    # (code, reason) once received
        self.eof = False
        self.hello = self.message() if hello else None
        if hello:
            eq(self.hello.get('type'), 'hello', 'first message (%s)' % _short(self.hello))

    # -- sending -----------------------------------------------------------

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b'', fin=True, mask=True, rsv=0):
        self.send(frame(opcode, payload, fin=fin, mask=mask, rsv=rsv))

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def cmd(self, line, end=''):
        self.send_text(line + end if isinstance(line, str) else line + end.encode())

    def send_json(self, obj, end=''):
        self.send_text(json.dumps(obj, ensure_ascii=False) + end)

    def ping(self, payload=b''):
        self.send_frame(OP_PING, payload)

    def close(self, code=1000, reason=''):
        """Sends a close frame (code None: an empty one)."""
        payload = b'' if code is None else struct.pack('!H', code) + reason.encode('utf-8')
        self.send_frame(OP_CLOSE, payload)

    # -- frames ------------------------------------------------------------

    def _need(self, n, deadline):
        while len(self.buf) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise socket.timeout()
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(262144)
            except ConnectionResetError:
                chunk = b''
            if not chunk:
                self.eof = True
                return False
            self.buf += chunk
        return True

    def frame(self, timeout=None):
        """The next frame as (fin, opcode, payload); None at end of stream."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        try:
            if not self._need(2, deadline):
                check(not self.buf, 'the server ended the stream inside a frame: %s' % _short(self.buf))
                return None
            b0, b1 = self.buf[0], self.buf[1]
            n, at = b1 & 0x7f, 2
            check(not (b1 & 0x80), 'a masked frame from the server')
            check(not (b0 & 0x70), 'RSV bits set by the server: %#x' % b0)
            if n == 126:
                check(self._need(4, deadline), 'end of stream inside a frame header')
                n, at = struct.unpack('!H', self.buf[2:4])[0], 4
            elif n == 127:
                check(self._need(10, deadline), 'end of stream inside a frame header')
                n, at = struct.unpack('!Q', self.buf[2:10])[0], 10
            check(self._need(at + n, deadline), 'end of stream inside a frame payload')
        except socket.timeout:
            raise Failure('no frame from the server within %.1fs (partial: %s)'
                          % (self.timeout if timeout is None else timeout, _short(self.buf, 200)))
        payload, self.buf = self.buf[at:at + n], self.buf[at + n:]
        fin, op = bool(b0 & 0x80), b0 & 0x0f
        self.frames.append((fin, op, n))
        return fin, op, payload

    def text(self, timeout=None):
        """The next text message as bytes (continuations joined), answering
        pings on the way; raises Closed at the server's close frame."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        parts = []
        while True:
            f = self.frame(max(0.0, deadline - time.monotonic()))
            check(f is not None, 'end of stream where a message was expected (no close frame)')
            fin, op, payload = f
            if op == OP_PING:
                self.server_pings.append(payload)
                if self.auto_pong:
                    self.send_frame(OP_PONG, payload)
                continue
            if op == OP_PONG:
                self.pongs.append(payload)
                continue
            if op == OP_CLOSE:
                code = struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else None
                self.close_frame = (code, payload[2:].decode('utf-8'))
                raise Closed(*self.close_frame)
            if parts:
                eq(op, OP_CONT, 'opcode of a frame inside a message')
            else:
                eq(op, OP_TEXT, 'opcode of a message from the server')
            parts.append(payload)
            if fin:
                return b''.join(parts)

    def message(self, timeout=None):
        return self.parse(self.text(timeout))

    # -- harness.Session's helpers (reply, push, messages, request) read through read_line

    def read_line(self, timeout=None):
        return self.message(timeout)

    def collect(self, seconds):
        """Every message within seconds (stops at a close frame or the end)."""
        deadline = time.monotonic() + seconds
        out = []
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return out
            try:
                out.append(self.message(left))
            except Closed:
                return out
            except Failure as e:
                if 'no frame from the server' in str(e):
                    return out
                raise

    def expect_close(self, timeout=None):
        """Every message up to the server's close frame, which must come,
        followed by the end of the stream; returns (code, reason, messages)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        msgs = []
        try:
            while True:
                msgs.append(self.message(max(0.0, deadline - time.monotonic())))
        except Closed as c:
            code, reason = c.code, c.reason
        # After its close frame the server sends nothing more and ends the stream.
        f = self.frame(max(0.0, deadline - time.monotonic()))
        check(f is None, 'a frame after the close frame: %s' % (f,))
        return code, reason, msgs

    def abort(self):
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.sock.close()

