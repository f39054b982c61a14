#!/usr/bin/env python3
"""The HTTP edge (docs/api.md, "Limits and HTTP framing"): framing that two
parties could read two ways is refused with one clean JSON error and a
close; a request must arrive whole within its deadlines however slowly it
drips; the connection limit is no lock-out; a long-poll whose client left is
freed at once; client bytes in the log are escaped."""

import sys
sys.dont_write_bytecode = True

import os
import re
import signal
import socket
import struct
import time

import harness
from harness import test, check, eq, check_error, wait_for

shared = harness.Shared()

SMUGGLED = b'POST /v1/channels/edge-smuggled/messages HTTP/1.1\r\nHost: x\r\n' \
           b'Content-Type: application/json\r\nContent-Length: 15\r\n\r\n{"body":"evil"}'


def head(method, path, fields, version='HTTP/1.1'):
    lines = ['%s %s %s' % (method, path, version), 'Host: 127.0.0.1'] + fields
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('ascii')


def smuggled_stored(gw):
    """True if the request hidden after a refused one ran."""
    return any(c['name'] == 'edge-smuggled' for c in gw.channels())


def refused_once(gw, data, status, code, what, deadline=5.0):
    """Sends data on a fresh connection: exactly one response, the JSON error
    (status, code) with Connection: close, then the close, within deadline
    seconds; nothing hidden after it runs."""
    t0 = time.monotonic()
    with gw.raw(timeout=deadline) as rc:
        rc.send(data)
        r = rc.read_response()
        check(r is not None, '%s: closed without an answer' % what)
        check_error(r, status, code, what)
        eq((r.header('Connection') or '').lower(), 'close', '%s: Connection header' % what)
        check(rc.closed_by_peer(timeout=deadline), '%s: still open after the answer, then %r'
              % (what, rc.buf[:300]))
        eq(rc.buf, b'', '%s: bytes after the one answer (a second response?)' % what)
    dt = time.monotonic() - t0
    check(dt < deadline, '%s: took %.1fs' % (what, dt))
    check(not smuggled_stored(gw), '%s: the request hidden after it was run' % what)
    return r


# -- request smuggling (RFC 9112 sections 6.1 and 6.3) -------------------------

@test
def transfer_encoding_and_content_length():
    """Transfer-Encoding and Content-Length together: 400, close, the hidden request never runs"""
    gw = shared.get()
    data = head('POST', '/v1/channels/edge/messages',
                ['Content-Type: application/json', 'Transfer-Encoding: chunked',
                 'Content-Length: 5']) + b'0\r\n\r\n' + SMUGGLED
    r = refused_once(gw, data, 400, 'invalid_parameter', 'TE + CL')
    check('Transfer-Encoding' in r.json['error']['message'], 'the message says why: %s' % r)
    # The same on a GET, where no body is read at all.
    refused_once(gw, head('GET', '/v1/channels', ['Transfer-Encoding: chunked', 'Content-Length: 3'])
                 + b'0\r\n\r\n' + SMUGGLED, 400, 'invalid_parameter', 'GET with TE + CL')


@test
def framing_field_names_a_proxy_reads_otherwise():
    """a blank or tab before the colon, a line folded onto Content-Length or another field the gateway reads, 'Transfer-Encoding :':
    400 and close (RFC 9112 5.1, 5.2), the body never read as a request"""
    gw = shared.get()
    n = len(SMUGGLED)
    for what, field in [('a blank before the colon', 'Content-Length : %d' % n),
                        ('a tab before the colon', 'Content-Length\t: %d' % n),
                        ('a folded value', 'Content-Length:\r\n %d' % n),
                        ('TE with a blank, and CL', 'Transfer-Encoding : chunked\r\n'
                         'Content-Length: 5'),
                        ('a line folded onto Content-Type', 'Content-Length: %d\r\n'
                         'Content-Type: application/\r\n\tjson' % n)]:
        body = b'0\r\n\r\n' + SMUGGLED if what.startswith('TE') else SMUGGLED
        data = head('POST', '/v1/channels/edge/messages',
                    ['Content-Type: application/json', field]) + body
        refused_once(gw, data, 400, 'invalid_parameter', what)
    check(not any(c['name'] == 'edge' for c in gw.channels()), 'nothing stored on "edge"')


@test
def absolute_form_target():
    """a request target in absolute form (http://host/path, RFC 9112 3.2.2) is served as its
    path: a read, a publish, and HTTPS:// in capitals"""
    gw = shared.get()
    with gw.raw(timeout=5) as rc:
        rc.send(head('GET', 'http://127.0.0.1:%d/healthz' % gw.http_port, []))
        r = rc.read_response()
        eq(r.status, 200, 'GET in absolute form (%s)' % r)
        body = b'{"body":"absolute"}'
        rc.send(head('POST', 'HTTPS://gw.example/v1/channels/edge-abs/messages',
                     ['Content-Type: application/json', 'Content-Length: %d' % len(body)]) + body)
        r = rc.read_response()
        eq(r.status, 201, 'POST in absolute form (%s)' % r)
    eq([m['body'] for m in gw.read('edge-abs')['messages']], ['absolute'], 'what was stored')


@test
def bare_cr_in_a_field():
    """a bare CR inside a header field (X: a<CR>Content-Length: N, Transfer-Encoding: chunked<CR>,
    Host: a<CR>Host: b), or in the request line: 400 and close (RFC 9112 2.2); the body a proxy
    would have read as this request's never runs as another"""
    gw = shared.get()
    n = len(SMUGGLED)
    for what, field in [('a length after a CR', 'X-Note: a\rContent-Length: %d' % n),
                        ('TE and CL, a CR between', 'X-Note: a\rTransfer-Encoding: chunked\r\n'
                         'Content-Length: %d' % n),
                        ('two Hosts, a CR between', 'X-Host: a\rHost: b')]:
        data = head('POST', '/v1/channels/edge/messages',
                    ['Content-Type: application/json', field]) + SMUGGLED
        r = refused_once(gw, data, 400, 'invalid_parameter', what)
        check('bare CR' in r.json['error']['message'], '%s: the message says why: %s' % (what, r))
    # The same in the request line: not a path with a CR in it (a 404 on a connection left open).
    for what, path in [('a CR in the path', '/v1/channels/edge\rx/messages'),
                       ('a CR in the query', '/v1/channels/edge/messages?since=0\r')]:
        r = refused_once(gw, head('GET', path, []), 400, 'invalid_parameter', what)
        check('bare CR' in r.json['error']['message'], '%s: the message says why: %s' % (what, r))


@test
def publish_cut_to_make_room_is_not_stored():
    """--max-connections 1: a whole publish whose connection is cut to make room for the next
    (429, try again) is not stored, so a client that tries again as told stores it once; every
    publish answered 201 is stored"""
    gw = harness.Gateway(args=['--max-connections', '1'])
    answers = {}
    for i in range(6):
        body = 'cut-%d' % i
        post = ('POST /v1/channels/edge-cut/messages HTTP/1.1\r\nHost: x\r\nContent-Type: '
                'text/plain\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body)).encode()
        # Its head begun a while ago (a head that began a moment ago is let finish), then,
        # the gateway stopped, the rest of it and the next connection: the gateway finds both in
        # one turn, and the second cuts the first, whose whole request is in its socket already.
        a = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        a.sendall(post[:10])
        time.sleep(0.4)  # longer than a head being sent is let finish (HEAD_GIVES_WAY_MS)
        os.kill(gw.proc.pid, signal.SIGSTOP)
        try:
            a.sendall(post[10:])
            b = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        finally:
            os.kill(gw.proc.pid, signal.SIGCONT)
        head = a.recv(4096).split(b'\r\n')[0]
        answers[body] = int(head.split()[1])
        a.close()
        b.close()
    told_429 = [k for k, v in answers.items() if v == 429]
    check(told_429, 'no publish was cut to make room: %s' % answers)
    # (the last connections' closes may not have reached the gateway yet: at its limit of 1)
    wait_for(lambda: gw.get('/healthz').status == 200, 'the gateway has room again')
    stored = [m['body'] for m in gw.read('edge-cut')['messages']]
    eq(sorted(stored), sorted(k for k, v in answers.items() if v == 201),
       'stored, against the answers %s' % answers)


@test
def a_connection_its_client_closed_makes_room():
    """--max-connections 1 held by a kept-alive connection whose client has read its answer and
    closed it, the gateway not yet aware (stopped meanwhile): the next client's request is served
    200, not refused 429 as if the closed one were sending a request (its FIN is no request),
    whether the gateway hears of the close or of the newcomer first"""
    gw = harness.Gateway(args=['--max-connections', '1'])
    for i in range(6):
        a = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        a.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        got = b''
        while b'\r\n\r\n' not in got or not got.endswith(b'}\n'):
            chunk = a.recv(4096)
            check(chunk, 'the kept-alive request answered: %r' % got)
            got += chunk
        check(got.startswith(b'HTTP/1.1 200') and b'Connection: close' not in got,
              'a kept-alive answer: %r' % got[:200])
        os.kill(gw.proc.pid, signal.SIGSTOP)
        try:
            # The gateway hears of the close first, or of the newcomer: either way round.
            if i % 2:
                a.close()
            b = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
            if not i % 2:
                a.close()
            b.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
        finally:
            os.kill(gw.proc.pid, signal.SIGCONT)
        answer = harness.recv_until_close(b)
        b.close()
        check(answer.startswith(b'HTTP/1.1 200'), 'round %d: the next client: %r' % (i, answer[:300]))
    gw.stop()


@test
def host_field_once():
    """an HTTP/1.1 request without Host, or any with two: 400 and close (RFC 9112 3.2); an
    HTTP/1.0 one without Host is served"""
    gw = shared.get()
    refused_once(gw, b'GET /healthz HTTP/1.1\r\n\r\n', 400, 'invalid_parameter', 'no Host')
    refused_once(gw, head('GET', '/healthz', ['Host: other']), 400, 'invalid_parameter',
                 'two Host fields')
    with gw.raw(timeout=5) as rc:
        rc.send(b'GET /healthz HTTP/1.0\r\n\r\n')
        r = rc.read_response()
        eq(r.status, 200, 'HTTP/1.0 without Host (%s)' % r)


@test
def content_type_once():
    """two Content-Type fields, whichever first: 400 and close, nothing stored (a proxy may read the other)"""
    gw = shared.get()
    body = b'{"body":"ct2"}'
    for first, second in (('text/plain', 'application/json'), ('application/json', 'text/plain')):
        refused_once(gw, head('POST', '/v1/channels/edge-ct/messages',
                              ['Content-Type: ' + first, 'Content-Type: ' + second,
                               'Content-Length: %d' % len(body)]) + body,
                     400, 'invalid_parameter', 'two Content-Type fields, %s first' % first)
    eq(gw.read('edge-ct')['messages'], [], 'nothing stored')


@test
def two_content_lengths():
    """two Content-Length fields, different or equal: 400 and close, nothing stored"""
    gw = shared.get()
    for a, b in [(15, 5), (5, 15), (15, 15)]:
        data = head('POST', '/v1/channels/edge/messages',
                    ['Content-Type: application/json', 'Content-Length: %d' % a,
                     'Content-Length: %d' % b]) + b'{"body":"evil"}' + SMUGGLED
        refused_once(gw, data, 400, 'invalid_parameter', 'Content-Length %d and %d' % (a, b))
    check(not any(c['name'] == 'edge' for c in gw.channels()), 'nothing stored on "edge"')


@test
def content_length_list_and_junk():
    """a Content-Length libmicrohttpd refuses itself ("5, 5", "abc"): one JSON 400, not its doubled page"""
    gw = shared.get()
    for value in ['15, 15', 'abc', '-1', '0x10']:
        data = head('POST', '/v1/channels/edge/messages',
                    ['Content-Type: application/json', 'Content-Length: %s' % value]) + \
            b'{"body":"evil"}' + SMUGGLED
        refused_once(gw, data, 400, 'invalid_parameter', 'Content-Length %r' % value)


@test
def content_length_overflow():
    """an overflowing Content-Length: one JSON 413 and close, not libmicrohttpd's doubled reply"""
    gw = shared.get()
    for value in ['99999999999999999999999', '18446744073709551616', '9223372036854775808']:
        r = refused_once(gw, head('POST', '/v1/channels/edge/messages',
                                  ['Content-Type: application/json', 'Content-Length: ' + value]),
                         413, 'body_too_large', 'Content-Length ' + value)
        check(r.header_count('Content-Length') == 1, 'one Content-Length in the answer: %s' % r)


@test
def head_too_large():
    """a head over 8 KiB: one JSON 431 head_too_large and close, nothing stored; 7 KiB is served"""
    gw = shared.get()
    cookie = 'Cookie: ' + 'c' * 7000
    with gw.raw(timeout=10) as rc:
        rc.send(head('POST', '/v1/channels/edge-head/messages',
                      ['Content-Type: application/json', 'Content-Length: 13', cookie])
                + b'{"body":"ok"}')
        r = rc.read_response()
        check(r is not None and r.status == 201, 'a 7 KiB head is served: %s' % r)
    for size in (8300, 9000, 9800):
        r = refused_once(gw, head('POST', '/v1/channels/edge-head/messages',
                                  ['Content-Type: application/json', 'Content-Length: 15',
                                   'Cookie: ' + 'c' * size]) + b'{"body":"evil"}',
                         431, 'head_too_large', 'a %d-byte cookie' % size)
        check('8192' in r.json['error']['message'], 'the message names the limit: %s' % r)
    # Larger than libmicrohttpd's buffer: it refuses the head itself, and
    # the front answers in its place (not its doubled HTML page).
    for size in (10500, 15000):
        refused_once(gw, head('GET', '/v1/channels/edge-head/messages',
                              ['Cookie: ' + 'c' * size]), 431, 'head_too_large',
                     'a %d-byte cookie on a GET' % size)
    eq(len(gw.get('/v1/channels/edge-head/messages').json['messages']), 1,
       'only the 7 KiB publish stored')
    # Small but many: each field and parameter takes room of its own; the answer says so.
    many = '&'.join('p%d=1' % i for i in range(400))
    r = refused_once(gw, head('GET', '/v1/channels/edge-head/messages?' + many, []), 431,
                     'head_too_large', '400 query parameters in %d bytes' % len(many))
    check('too many fields and query parameters' in r.json['error']['message'],
          'the message says why: %s' % r.json)


@test
def unknown_transfer_encoding():
    """a Transfer-Encoding other than chunked: 400 at once (not after 60 s) and close"""
    gw = shared.get()
    for te in ['gzip', 'gzip, chunked', 'chunked, chunked', 'identity']:
        refused_once(gw, head('POST', '/v1/channels/edge/messages',
                              ['Content-Type: application/json', 'Transfer-Encoding: ' + te])
                     + b'abc' + SMUGGLED, 400, 'invalid_parameter', 'Transfer-Encoding ' + te,
                     deadline=3.0)
    refused_once(gw, head('POST', '/v1/channels/edge/messages',
                          ['Content-Type: application/json', 'Transfer-Encoding: chunked',
                           'Transfer-Encoding: chunked']) + b'0\r\n\r\n' + SMUGGLED,
                 400, 'invalid_parameter', 'two Transfer-Encoding fields', deadline=3.0)
    refused_once(gw, head('POST', '/v1/channels/edge/messages',
                          ['Content-Type: application/json', 'Transfer-Encoding: chunked'],
                          version='HTTP/1.0') + b'0\r\n\r\n' + SMUGGLED,
                 400, 'invalid_parameter', 'Transfer-Encoding in HTTP/1.0', deadline=3.0)


@test
def chunked_still_served():
    """a plain chunked publish is still served, and the connection kept"""
    gw = shared.get()
    body = b'{"body":"chunked ok"}'
    with gw.raw(timeout=10) as rc:
        rc.send(head('POST', '/v1/channels/edge-ok/messages',
                     ['Content-Type: application/json', 'Transfer-Encoding: chunked'])
                + b'%x\r\n%s\r\n0\r\n\r\n' % (len(body), body))
        r = rc.read_response()
        eq(r.status, 201, 'chunked publish (%s)' % r)
        rc.send(head('GET', '/healthz', []))
        eq(rc.read_response().status, 200, 'the next request on the same connection')


# -- deadlines (slowloris) -----------------------------------------------------

class Dripper:
    """A client that sends a request's bytes one at a time, every `every` s."""

    def __init__(self, gw, data, every):
        self.sock = socket.create_connection(('127.0.0.1', gw.http_port), timeout=10)
        self.sock.setblocking(False)
        self.data = data
        self.every = every
        self.sent = 0
        self.next_at = time.monotonic()
        self.first_at = None
        self.got = b''
        self.closed_at = None

    def step(self, now):
        """Send the next byte when due; collect what the server says."""
        if self.closed_at is None:
            try:
                while True:
                    chunk = self.sock.recv(65536)
                    if not chunk:
                        self.closed_at = now
                        break
                    self.got += chunk
            except BlockingIOError:
                pass
            except ConnectionResetError:
                self.closed_at = now
        # A client that has been answered stops sending (its unread bytes would make the
        # server's close a reset, which may destroy the answer before it is read).
        if (self.closed_at is None and not self.got and now >= self.next_at
                and self.sent < len(self.data)):
            try:
                self.sock.send(self.data[self.sent:self.sent + 1])
            except (BrokenPipeError, ConnectionResetError):
                self.closed_at = now
                return
            if self.first_at is None:
                self.first_at = now
            self.sent += 1
            self.next_at = now + self.every

    def close(self):
        self.sock.close()


def drip_until(drippers, until, deadline):
    while time.monotonic() < deadline:
        now = time.monotonic()
        for d in drippers:
            d.step(now)
        if until():
            return True
        time.sleep(0.02)  # the drip's own pace: the server has nothing to signal
    return False


def check_cut(d, status, code, what):
    eq(d.got.split(b'\r\n', 1)[0].split(b' ')[1:2], [str(status).encode()],
       '%s: status line of %r' % (what, d.got[:200]))
    check(b'"code":"%s"' % code.encode() in d.got, '%s: error code in %r' % (what, d.got[:400]))
    check(b'Connection: close' in d.got, '%s: Connection: close in %r' % (what, d.got[:400]))


@test
def dripped_head_cut_at_deadline():
    """a request head dripped a byte every 0.2 s is cut 408 at --http-header-timeout, whatever the idle timeout"""
    gw = harness.Gateway(args=['--http-header-timeout', '2', '--http-idle-timeout', '60'])
    d = Dripper(gw, head('GET', '/v1/channels?' + 'x' * 400, ['X-Slow: ' + 'y' * 400]), 0.2)
    try:
        check(drip_until([d], lambda: d.closed_at is not None, time.monotonic() + 15),
              'the dripping client is still open after 15 s (%d bytes sent)' % d.sent)
        took = d.closed_at - d.first_at
        check(1.5 <= took <= 4.5, 'cut %.2f s after its first byte, want about 2 s' % took)
        check_cut(d, 408, 'idle_timeout', 'dripped head')
    finally:
        d.close()
    # The shut-down socket is reaped by libmicrohttpd through its usual callbacks.
    wait_for(lambda: open_gauge(gw, 'rest') == 1, 'only the /metrics connection open')
    # On a keep-alive connection the deadline runs from the next request's first byte.
    with gw.raw(timeout=10) as rc:
        rc.send(head('GET', '/healthz', []))
        eq(rc.read_response().status, 200, 'a first request')
        time.sleep(2.5)  # idle between requests longer than the head deadline: allowed
        rc.send(head('GET', '/healthz', []))
        eq(rc.read_response().status, 200, 'a second request after 2.5 s idle')
        rc.send(b'GET /heal')
        t0 = time.monotonic()
        r = rc.read_response()
        took = time.monotonic() - t0
        check(r is not None and r.status == 408, 'the unfinished third request: %s' % r)
        check(1.5 <= took <= 4.5, 'cut %.2f s after its first bytes, want about 2 s' % took)
    gw.wait_stderr(r'http conn \d+ closed with 408: request head not complete within 2 s')
    eq(gw.get('/healthz').status, 200, 'the gateway serves on')


@test
def dropped_body_gets_a_max_body_deadline():
    """a body read only to be dropped (a GET's, a chunked one to refuse) is given the time of a
    --max-body body, not that of the most the gateway would drain (532 s here)"""
    gw = harness.Gateway(args=['--http-body-timeout', '1', '--http-body-rate', '2000',
                               '--max-body', '4000'])
    for what, fields, unit in [
            ('a GET with a 1 MB body', ['Content-Length: 1064000'], b'x'),
            ('a chunked POST of a refused type', ['Content-Type: application/x-www-form-urlencoded',
                                                  'Transfer-Encoding: chunked'], b'1\r\nx\r\n')]:
        method, path = ('GET', '/healthz') if what.startswith('a GET') else \
            ('POST', '/v1/channels/edge-drop/messages')
        d = Dripper(gw, unit * 2000, 0.05)
        start = head(method, path, fields)
        d.sock.send(start)
        t0 = time.monotonic()
        try:
            check(drip_until([d], lambda: d.closed_at is not None, t0 + 15),
                  '%s: still open after 15 s' % what)
            took = d.closed_at - t0
            check(took <= 5.0, '%s: cut after %.2f s, want about 2 s (4000 B at 2000 B/s)'
                  % (what, took))
        finally:
            d.close()


@test
def slow_body_cut_at_deadline():
    """a body slower than --http-body-rate past --http-body-timeout is cut 408; a steady one passes"""
    gw = harness.Gateway(args=['--http-body-timeout', '1', '--http-body-rate', '2000'])
    body = b'{"body":"' + b'z' * 5000 + b'"}'
    # 5011 bytes at 2000 B/s may take about 2.5 s: sent in 1.2 s, it is served.
    with gw.raw(timeout=10) as rc:
        rc.send(head('POST', '/v1/channels/edge-body/messages',
                     ['Content-Type: application/json', 'Content-Length: %d' % len(body)]))
        for i in range(0, len(body), 1000):
            rc.send(body[i:i + 1000])
            time.sleep(0.2)
        r = rc.read_response()
        eq(r.status, 201, 'a steady body within its deadline (%s)' % r)
    d = Dripper(gw, body, 0.05)
    d.data = head('POST', '/v1/channels/edge-body/messages',
                  ['Content-Type: application/json', 'Content-Length: %d' % len(body)]) + body
    d.sock.send(d.data[:len(d.data) - len(body)])
    d.sent = len(d.data) - len(body)
    t0 = time.monotonic()
    try:
        check(drip_until([d], lambda: d.closed_at is not None, t0 + 15),
              'the dripping body is still open after 15 s')
        took = d.closed_at - t0
        check(2.0 <= took <= 5.0, 'cut after %.2f s, want about 2.5 s' % took)
        check_cut(d, 408, 'idle_timeout', 'dripped body')
    finally:
        d.close()
    eq(len(gw.read('edge-body')['messages']), 1, 'only the steady body was stored')
    gw.wait_stderr(r'http POST /v1/channels/edge-body/messages 408 \d+B \d+us ended: request '
                   r'body not complete within')


@test
def drippers_at_the_limit_lock_nobody_out():
    """4 slow senders hold all of --max-connections 4: a normal client's requests are still answered at once"""
    gw = harness.Gateway(args=['--max-connections', '4'])
    fds = harness.fd_count(gw)
    drippers = [Dripper(gw, head('GET', '/v1/channels', ['X-Slow: ' + 'y' * 400]), 0.2)
                for _ in range(4)]
    try:
        drip_until(drippers, lambda: all(d.sent >= 5 for d in drippers), time.monotonic() + 5)
        for i in range(6):
            t0 = time.monotonic()
            r = gw.get('/healthz')
            took = time.monotonic() - t0
            eq(r.status, 200, 'request %d at the limit' % i)
            check(took < 1.0, 'request %d took %.2f s' % (i, took))
            drip_until(drippers, lambda: False, time.monotonic() + 0.1)
        cut = [d for d in drippers if d.closed_at is not None]
        check(cut, 'no slow sender made room')
        for d in cut:
            # Told, even when libmicrohttpd read its bytes before the loop heard of them.
            check_cut(d, 429, 'too_many_sessions', 'slow sender closed to make room')
    finally:
        for d in drippers:
            d.close()
    gw.wait_stderr(r'http conn \d+ closed with 429: request head still arriving after')
    wait_for(lambda: harness.fd_count(gw) <= fds, 'the descriptors of every closed connection back')


@test
def all_busy_refused_clearly():
    """--max-connections 2 held by long-polls: a third client gets 429 too_many_sessions at once"""
    gw = harness.Gateway(args=['--max-connections', '2'], log_level='debug')
    polls = []
    try:
        for i in range(2):
            rc = gw.raw(timeout=10)
            rc.send(head('GET', '/v1/channels/edge-busy/messages?wait=30', []))
            polls.append(rc)
        wait_for(lambda: len(re.findall(r"long-poll on 'edge-busy' after 0: waiting",
                                        gw.stderr_text())) == 2, 'two long-polls waiting')
        with gw.raw(timeout=5) as rc:
            rc.send(head('GET', '/healthz', []))
            r = rc.read_response()
            check_error(r, 429, 'too_many_sessions', 'a client when every connection is busy')
            eq(r.header('Retry-After'), '1', 'Retry-After')
    finally:
        for rc in polls:
            rc.close()


# -- long-polls whose client left ----------------------------------------------

def metrics_text(gw):
    with gw.raw(timeout=10) as rc:
        rc.send(head('GET', '/metrics', ['Connection: close']))
        return rc.read_response().raw.decode()


def open_gauge(gw, transport):
    m = re.search(r'^visavis_open\{transport="%s"\} (\d+)$' % transport, metrics_text(gw), re.M)
    check(m, 'no visavis_open{transport="%s"} in /metrics' % transport)
    return int(m.group(1))


@test
def vanished_longpolls_freed_at_once():
    """30 long-polls whose clients close are freed at once and logged as ended by the client"""
    gw = harness.Gateway()
    polls = []
    for i in range(30):
        rc = gw.raw(timeout=10)
        rc.send(head('GET', '/v1/channels/edge-lp%d/messages?since=0&wait=60' % (i % 3), []))
        polls.append(rc)
    wait_for(lambda: open_gauge(gw, 'longpoll') == 30, 'thirty long-polls waiting')
    t0 = time.monotonic()
    for rc in polls[:20]:
        rc.close()
    # Both closes (FIN) and resets count.
    for rc in polls[20:25]:
        rc.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        rc.close()
    wait_for(lambda: open_gauge(gw, 'longpoll') == 5, 'the long-poll gauge to drop to 5', timeout=5)
    took = time.monotonic() - t0
    check(took < 3, 'the gauge took %.2f s to drop' % took)
    wait_for(lambda: gw.stderr_text().count('ended: client closed') >= 25,
             'twenty-five long-polls logged as ended by their client')
    lines = [l for l in gw.stderr_text().splitlines() if 'ended: client closed' in l]
    eq(len(lines), 25, 'lines logging a long-poll ended by its client')
    check(all(re.search(r'http GET /v1/channels/edge-lp\d/messages\?since=0&wait=60 0 0B ', l)
              for l in lines), 'logged with the query and no 200: %s' % lines[:2])
    check('Application reported internal error' not in gw.stderr_text(),
          'a libmicrohttpd warning for each of them')
    # The five still waiting are answered by the next message, as before.
    for ch in range(3):
        gw.publish('edge-lp%d' % ch, 'wake up')
    for rc in polls[25:]:
        r = rc.read_response()
        eq(r.status, 200, 'a long-poll still waiting (%s)' % r)
        rc.close()


# -- what a client puts in the log ----------------------------------------------

FORGED = '2026-01-01T00:00:00.000Z error forged'


def no_forged_lines(gw):
    text = gw.stderr_text()
    check(not any(l.startswith('2026-01-01T00:00:00.000Z') for l in text.splitlines()),
          'a client forged a log line:\n' + gw.stderr_tail())
    check('\x1b' not in text and '\r' not in text, 'a raw ESC or CR reached the log')


@test
def log_lines_escape_client_bytes():
    """a URL with %0A, raw CR and ESC: no forged log line, the bytes escaped, the query shown"""
    gw = harness.Gateway()
    # libmicrohttpd logs the decoded path when it cannot send "100 Continue":
    # a client that resets right after its head makes it do so.
    path = '/x%0A' + FORGED.replace(' ', '%20') + '%1B[2J'
    for _ in range(20):
        s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        s.sendall(head('POST', path, ['Content-Length: 5', 'Expect: 100-continue']))
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
        if 'Failed to send data in request for' in gw.stderr_text():
            break
    with gw.raw(timeout=10) as rc:
        rc.send(b'GET /a\x1b[31mb\rc?q=%0A&since=3 HTTP/1.1\r\nHost: x\r\n\r\n')
        rc.read_response()
    eq(gw.get('/v1/channels/edge-log/messages?since=0&limit=5').status, 200, 'a plain read')
    gw.wait_stderr(r'http GET /v1/channels/edge-log/messages\?since=0&limit=5 200 ')
    gw.wait_stderr(r'http GET /a\\x1b\[31mb\\x0dc\?q=%0A&since=3 400 ')
    no_forged_lines(gw)
    text = gw.stderr_text()
    if 'Failed to send data in request for' in text:
        check('Failed to send data in request for /x\\x0a' + FORGED in text,
              'the decoded path is escaped in libmicrohttpd\'s warning:\n' + gw.stderr_tail())
    else:
        print('# libmicrohttpd never failed to send 100 Continue: its warning was not exercised')


@test
def resets_do_not_flood_the_log():
    """200 clients that reset mid-body: libmicrohttpd's line about each is one warning, then at
    most one per 10 s that counts the others, not 200 warnings"""
    gw = harness.Gateway()
    for _ in range(200):
        s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        s.sendall(head('POST', '/v1/channels/resets/messages',
                       ['Content-Type: application/json', 'Content-Length: 100']) + b'{"bo')
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        s.close()
    # Every reset seen: none of their connections is open any more.
    wait_for(lambda: open_gauge(gw, 'rest') == 1, 'only the /metrics connection open')
    warned = [l for l in gw.stderr_text().splitlines() if ' warn  http: ' in l]
    print('# %d warning lines of libmicrohttpd for 200 resets' % len(warned))
    check(len(warned) <= 2, 'warnings for 200 resets: %d, the first %s' % (len(warned), warned[:3]))
    eq(gw.get('/healthz').status, 200, 'the gateway goes on')


@test
def unreadable_request_lines_are_logged():
    """a request line with tabs between its parts: closed by libmicrohttpd without an answer, and one log line says so (not silence); 100 more within 10 s: no more lines at the warn level; a connection that sends nothing: no line"""
    gw = harness.Gateway()
    said = r'warn  http: conn \d+ from 127\.0\.0\.1:\d+ closed before a request line could be read'
    quiet = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
    quiet.close()
    wait_for(lambda: open_gauge(gw, 'rest') == 1, 'the quiet connection closed')
    check(not re.search(said, gw.stderr_text()), 'a connection that sent nothing is logged')
    s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
    s.sendall(b'GET\t/v1/version\tHTTP/1.1\r\nHost: x\r\n\r\n')
    eq(s.recv(4096), b'', 'what the tabbed request line gets')
    s.close()
    gw.wait_stderr(said)
    for _ in range(100):
        s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
        s.sendall(b'GET\t/\tHTTP/1.1\r\n\r\n')
        s.recv(4096)
        s.close()
    wait_for(lambda: open_gauge(gw, 'rest') == 1, 'only the /metrics connection open')
    eq(len(re.findall(said, gw.stderr_text())), 1, 'lines for 101 such connections within 10 s')
    eq(gw.get('/healthz').status, 200, 'the gateway goes on')


@test
def stop_closes_idle_and_unfinished():
    """SIGTERM: idle keep-alive connections close, a half-sent head gets 503, the stop is prompt"""
    gw = harness.Gateway()
    idle = gw.raw(timeout=10)
    idle.send(head('GET', '/healthz', []))
    eq(idle.read_response().status, 200, 'a keep-alive request')
    # Answered once first, so that the gateway has surely accepted it: a connection
    # still in the listen queue at the stop is refused, as by any server.
    half = gw.raw(timeout=10)
    half.send(head('GET', '/healthz', []))
    eq(half.read_response().status, 200, 'a keep-alive request before the half head')
    half.send(b'GET /v1/chan')
    t0 = time.monotonic()
    gw.stop()
    check(time.monotonic() - t0 < 3, 'the stop took %.1f s' % (time.monotonic() - t0))
    check(idle.closed_by_peer(timeout=5), 'the idle connection stayed open')
    r = half.read_response()
    check_error(r, 503, 'shutting_down', 'the half-sent request at the stop')
    idle.close()
    half.close()


@test
def stop_answers_request_waiting_unread():
    """SIGTERM: a request already on an idle connection when the stop comes is answered, not dropped"""
    gw = harness.Gateway()
    conns = [gw.raw(timeout=10) for _ in range(8)]
    for c in conns:
        c.send(head('GET', '/healthz', []))
        eq(c.read_response().status, 200, 'a keep-alive request')
    wait_for(lambda: open_gauge(gw, 'rest') >= 8, 'eight connections open')
    # Held still, the gateway finds the signal and the requests waiting together on its next turn.
    os.kill(gw.proc.pid, signal.SIGSTOP)
    try:
        os.kill(gw.proc.pid, signal.SIGTERM)
        for i, c in enumerate(conns):
            body = b'{"body":"m%d"}' % i
            c.send(head('POST', '/v1/channels/stop-race/messages',
                        ['Content-Type: application/json', 'Content-Length: %d' % len(body)]) + body)
    finally:
        os.kill(gw.proc.pid, signal.SIGCONT)
    answered = []
    for i, c in enumerate(conns):
        r = c.read_response()
        check(r is not None, 'request %d: the connection closed without an answer' % i)
        if r.status == 201:
            answered.append('m%d' % i)
        else:
            check_error(r, 503, 'shutting_down', 'request %d at the stop' % i)
        c.close()
    eq(gw.stop(), 0, 'exit code')
    gw2 = harness.Gateway(db=gw.db)
    got = [m['body'] for m in gw2.get('/v1/channels/stop-race/messages?since=0').json['messages']] \
        if answered else []
    eq(got, answered, 'what was stored is what was acknowledged')


harness.main()
