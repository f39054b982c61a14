#!/usr/bin/env python3
"""Fair shares at a full limit: one source address that fills --max-sessions
(or a WebSocket, SSE or HTTP limit) does not lock out a client from another
address. The newcomer takes the newest session of the address holding the
most, which is told too_many_sessions and closed, until the two hold equal
shares; the address that filled the limit cannot take places back, and
while there is room any address may hold any number."""

import sys
sys.dont_write_bytecode = True

import fcntl
import http.client
import json
import re
import select
import socket
import sqlite3
import struct
import termios
import threading
import time

import harness
import wsclient
from harness import test, check, eq, wait_for

A, B, C = '127.0.0.1', '127.0.0.2', '127.0.0.3'


def opened(gw, transport):
    return gw.get('/v1/stats').json['open'][transport]


def refused_tcp(gw, source):
    """A TCP session from source, refused: its one line, then the end."""
    s = harness.Session(gw, hello=False, source=source)
    lines = s.until_eof()
    s.close()
    eq([l.get('type') for l in lines], ['error'], 'what a refused session is sent: %s' % lines)
    return lines[0]


def greeted(gw, source):
    """A TCP session from source, or None when it was refused (closed)."""
    s = harness.Session(gw, hello=False, source=source)
    first = s.read_line()
    if first.get('type') == 'hello':
        s.hello = first
        return s
    s.close()
    return None


def made_room(victim, holder, held, limit, what):
    """victim was closed to make room: one too_many_sessions error that says
    who holds how many, then the end."""
    lines = victim.until_eof()
    errors = [l for l in lines if l.get('type') == 'error']
    eq([e.get('code') for e in errors], ['too_many_sessions'], 'errors sent to the %s' % what)
    msg = errors[0].get('message', '')
    want = '%s holds %d of the %d' % (holder, held, limit)
    check(want in msg and 'another address' in msg,
          'the %s is told why (%r in %r)' % (what, want, msg))


@test
def tcp_sessions_are_shared_when_full():
    """--max-sessions 6 filled from 127.0.0.1: a newcomer of its own is refused; one from
    127.0.0.2 gets a session and the newest of 127.0.0.1 is closed with why; places move until
    3 and 3, then neither address gets more, and the sessions left all work"""
    gw = harness.Gateway(args=['--max-sessions', '6'])
    a = [harness.Session(gw, source=A) for _ in range(6)]
    err = refused_tcp(gw, A)
    eq(err.get('code'), 'too_many_sessions', 'the filling address is refused at the limit')

    b = [harness.Session(gw, source=B)]
    made_room(a.pop(), A, 6, 6, 'newest session of 127.0.0.1')
    b.append(harness.Session(gw, source=B))
    made_room(a.pop(), A, 5, 6, 'next newest of 127.0.0.1')
    b.append(harness.Session(gw, source=B))
    made_room(a.pop(), A, 4, 6, 'third of 127.0.0.1')
    eq(refused_tcp(gw, B).get('code'), 'too_many_sessions', '3 and 3: the newcomer is refused')
    eq(refused_tcp(gw, A).get('code'), 'too_many_sessions', 'and 127.0.0.1 takes none back')
    for s in a + b:
        eq(s.request('PING x').get('type'), 'pong', 'a session that kept its place works')
    # One leaves: its place is anyone's again, whoever holds how many.
    b.pop().close()
    # The front frees the place in the pass after the session ends: a newcomer may come first.
    a.append(wait_for(lambda: greeted(gw, A), 'a place free'))
    eq(a[-1].request('PING u').get('type'), 'pong', 'a freed place is anyone\'s')
    for s in a + b:
        s.close()
    gw.stop()


@test
def a_session_with_publishes_under_way_is_not_the_one_closed():
    """--max-sessions 10 held by 127.0.0.2, its newest session pipelining 2000 tagged PUBs: a newcomer from 127.0.0.3 closes an idle session of 127.0.0.2, not the busy one, whose every PUB is acknowledged and stored"""
    gw = harness.Gateway(args=['--max-sessions', '10'])
    idle = [harness.Session(gw, source=B) for _ in range(9)]
    busy = harness.Session(gw, source=B)
    n = 2000
    busy.send(''.join('{"op":"pub","channel":"evict","body":"m%d","tag":"t%d"}\n' % (i, i)
                      for i in range(n)))
    newcomer = harness.Session(gw, source=C)
    eq(newcomer.request('PING n').get('type'), 'pong', 'the newcomer works')
    tags = [busy.reply(timeout=30) for _ in range(n)]
    eq([(r.get('type'), r.get('tag')) for r in tags], [('ok', 't%d' % i) for i in range(n)],
       'an ok for each PUB of the busy session, in order')
    eq(len(gw.read_all('evict')), n, 'every PUB stored')
    made_room(idle.pop(), B, 10, 10, 'newest idle session of 127.0.0.2')
    for s in idle + [busy]:
        eq(s.request('PING y').get('type'), 'pong', 'the other sessions of 127.0.0.2 go on')
    for s in idle + [busy, newcomer]:
        s.close()
    gw.stop()


@test
def a_third_address_takes_from_the_biggest():
    """at the limit with 127.0.0.1 holding 4 and 127.0.0.2 holding 2, a newcomer from
    127.0.0.3 takes from 127.0.0.1, the biggest"""
    gw = harness.Gateway(args=['--max-sessions', '6'])
    a = [harness.Session(gw, source=A) for _ in range(4)]
    b = [harness.Session(gw, source=B) for _ in range(2)]
    c = harness.Session(gw, source=C)
    made_room(a.pop(), A, 4, 6, 'newest session of the biggest address')
    for s in b:
        eq(s.request('PING y').get('type'), 'pong', '127.0.0.2 keeps its sessions')
    eq(c.request('PING z').get('type'), 'pong', 'the newcomer works')
    for s in a + b + [c]:
        s.close()
    gw.stop()


@test
def websocket_sessions_are_shared_when_full():
    """--max-ws-sessions 2 filled from 127.0.0.1: an upgrade from 127.0.0.1 is 429; one from
    127.0.0.2 gets its 101, and the newest of 127.0.0.1 gets the error, then close 1013"""
    gw = harness.Gateway(args=['--max-ws-sessions', '2'])
    a = [wsclient.WsSession(gw, source=A) for _ in range(2)]
    key = wsclient.new_key()
    status, _, body, sock = wsclient.handshake_raw(gw, wsclient.upgrade_headers(key))
    sock.close()
    eq(status, 429, 'an upgrade from the filling address at the limit')
    check(b'too_many_sessions' in body, 'names the error: %r' % body)

    b = wsclient.WsSession(gw, source=B)
    code, reason, msgs = a[1].expect_close()
    eq(code, 1013, 'close code of the session that made room')
    eq([m.get('code') for m in msgs if m.get('type') == 'error'], ['too_many_sessions'],
       'the error before the close: %s' % msgs)
    check('127.0.0.1 holds 2 of the 2 ws sessions' in msgs[-1].get('message', ''),
          'says why: %s' % msgs)
    eq(b.request('PING w').get('type'), 'pong', 'the newcomer works')
    eq(a[0].request('PING v').get('type'), 'pong', 'the older session of 127.0.0.1 works')
    b.close()
    a[0].close()
    gw.stop()


def connected_from(gw, source):
    """A socket from source connected to the HTTP front, that has sent nothing."""
    s = socket.socket()
    s.settimeout(10)
    s.bind((source, 0))
    s.connect(('127.0.0.1', gw.http_port))
    return s


def http_from(gw, source, target, headers=''):
    """A socket from source that has sent GET target to the HTTP front."""
    s = connected_from(gw, source)
    s.sendall(('GET %s HTTP/1.1\r\nHost: x\r\n%s\r\n' % (target, headers)).encode())
    return s


def sse_from(gw, source, channel):
    """An SSE request from source: (socket, status, bytes after the head)."""
    s = http_from(gw, source, '/v1/channels/%s/events' % channel,
                  'Accept: text/event-stream\r\n')
    data = b''
    while b'\r\n\r\n' not in data:
        chunk = s.recv(65536)
        check(chunk, 'the SSE request got no answer: %r' % data)
        data += chunk
    head, _, rest = data.partition(b'\r\n\r\n')
    return s, int(head.split()[1]), rest


def all_served(conns, what):
    """Sends GET /healthz on each of conns, then checks that each is answered 200."""
    for s in conns:
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    answers = [rest_of(s) for s in conns]
    eq([x.split(b'\r\n', 1)[0] for x in answers], [b'HTTP/1.1 200 OK'] * len(conns), what)


def rest_of(sock, rest=b''):
    """Every byte up to the server's close (10 s at most)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            chunk = sock.recv(65536)
        except socket.timeout:
            break
        if not chunk:
            return rest
        rest += chunk
    raise harness.Failure('the server did not close: %r' % rest[-400:])


@test
def sse_streams_are_shared_when_full():
    """--max-sse-streams 2 filled from 127.0.0.1: a stream from 127.0.0.1 is 429, one from
    127.0.0.2 is 200; the newest of 127.0.0.1 gets an error event and ends"""
    gw = harness.Gateway(args=['--max-sse-streams', '2'])
    a = [sse_from(gw, A, 'fair-sse') for _ in range(2)]
    eq([st for _, st, _ in a], [200, 200], 'two streams from 127.0.0.1')
    s, st, body = sse_from(gw, A, 'fair-sse')
    eq(st, 429, 'a third from 127.0.0.1')
    s.close()
    b, st, _ = sse_from(gw, B, 'fair-sse')
    eq(st, 200, 'a stream from 127.0.0.2 at the limit')
    tail = rest_of(a[1][0], a[1][2])
    check(b'event: error' in tail and b'too_many_sessions' in tail and b'another address' in tail,
          'the newest stream of 127.0.0.1 is told why: %r' % tail[-400:])
    m = gw.publish('fair-sse', 'after')
    for sock, what in ((b, '127.0.0.2'), (a[0][0], 'the older of 127.0.0.1')):
        data = b''
        deadline = time.monotonic() + 10
        while ('"seq":%d' % m['seq']).encode() not in data and time.monotonic() < deadline:
            sock.settimeout(max(0.01, deadline - time.monotonic()))
            data += sock.recv(65536)
        check(('"seq":%d' % m['seq']).encode() in data, 'the stream of %s goes on' % what)
    b.close()
    a[0][0].close()
    gw.stop()


def long_polls_of(gw, source, channel, n):
    """n long-polls from source on channel after its last message (published first), each
    waited for by its log line (--log-level debug): a request for a count would need a
    connection."""
    top = gw.publish(channel, 'before')['seq']
    polls = []
    for i in range(n):
        polls.append(http_from(gw, source, '/v1/channels/%s/messages?since=%d&wait=30'
                               % (channel, top)))
        wait_for(lambda: gw.stderr_text().count("http long-poll on '%s'" % channel) == i + 1,
                 'long-poll %d waiting' % (i + 1))
    return polls


@test
def longpolls_give_way_when_every_connection_waits():
    """--max-connections 4, every one a long-poll of 127.0.0.1: a request from 127.0.0.2 is
    served, and the newest long-poll is answered early (200, nothing new, Connection: close);
    a newcomer from 127.0.0.1 is refused 429"""
    gw = harness.Gateway(args=['--max-connections', '4', '--log-level', 'debug'])
    a = long_polls_of(gw, A, 'fair-lp', 4)
    own = http_from(gw, A, '/healthz')
    answer = rest_of(own)
    check(answer.startswith(b'HTTP/1.1 429'), 'the filling address is refused: %r' % answer[:200])
    own.close()

    other = http_from(gw, B, '/healthz', 'Connection: close\r\n')
    answer = rest_of(other)
    check(answer.startswith(b'HTTP/1.1 200'), '127.0.0.2 is served: %r' % answer[:200])
    other.close()

    early = rest_of(a[3])
    head, _, body = early.partition(b'\r\n\r\n')
    check(head.startswith(b'HTTP/1.1 200'), 'the newest long-poll is answered: %r' % head)
    check(b'connection: close' in head.lower(), 'and closed: %r' % head)
    eq(json.loads(body)['messages'], [], 'with nothing new')
    for s in a[:3]:
        s.settimeout(0.2)
        try:
            eq(s.recv(1), b'', 'x')
            raise harness.Failure('an older long-poll of 127.0.0.1 was ended too')
        except socket.timeout:
            pass  # still waiting, as it should
        s.close()
    gw.stop()


@test
def requests_under_way_give_way_when_every_connection_is_busy():
    """--max-connections 4, every one a publish of 127.0.0.1 waiting for its commit (the database held): a request from 127.0.0.2 is served at once, and the newest publish is answered 201 once stored, with Connection: close; the others stay open"""
    gw = harness.Gateway(args=['--max-connections', '4', '--trace'])
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=0)
    con.execute('BEGIN IMMEDIATE')  # the writer waits for it, a second at most
    try:
        body = b'{"body":"busy"}'
        a = []
        for i in range(4):
            s = connected_from(gw, A)
            s.sendall(b'POST /v1/channels/fair-busy/messages HTTP/1.1\r\nHost: x\r\n'
                      b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s'
                      % (len(body), body))
            a.append(s)
        wait_for(lambda: gw.stderr_text().count('recv request POST') >= 4, 'the four POSTs read')
        time.sleep(0.1)  # for their bodies to be read and their commits queued: nothing says when
        other = http_from(gw, B, '/healthz', 'Connection: close\r\n')
        answer = rest_of(other)
        other.close()
    finally:
        con.execute('COMMIT')
        con.close()
    check(answer.startswith(b'HTTP/1.1 200'), '127.0.0.2 is served: %r' % answer[:300])
    newest = rest_of(a[3])
    head = newest.partition(b'\r\n\r\n')[0]
    check(head.startswith(b'HTTP/1.1 201'), 'the newest publish is stored: %r' % head)
    check(b'connection: close' in head.lower(), 'and its connection closed after: %r' % head)
    for s in a[:3]:
        s.settimeout(10)
        head = s.recv(65536).partition(b'\r\n\r\n')[0]
        check(head.startswith(b'HTTP/1.1 201') and b'connection: close' not in head.lower(),
              'an older publish of 127.0.0.1 answered and kept alive: %r' % head)
        s.close()
    eq(len(gw.read_all('fair-busy')), 4, 'the four publishes stored')
    gw.stop()


@test
def a_newcomers_parallel_connections_all_get_in():
    """--max-connections 8 held by long-polls of 127.0.0.1: 127.0.0.2 opens 4 connections at once, then sends on each (as a browser does); all 4 are served, and 4 long-polls give way. A head begun a moment ago is not a slow one to close for the next"""
    gw = harness.Gateway(args=['--max-connections', '8', '--log-level', 'debug'])
    a = long_polls_of(gw, A, 'fair-burst', 8)
    burst = []
    for _ in range(4):
        s = connected_from(gw, B)
        burst.append(s)
    all_served(burst, 'what the 4 connections of 127.0.0.2 were answered')
    early = [rest_of(s)[:12] for s in a[4:]]
    eq(early, [b'HTTP/1.1 200'] * 4, 'the 4 newest long-polls answered early')
    for s in burst + a:
        s.close()
    gw.stop()


@test
def a_newcomers_silent_connections_are_not_idle_ones():
    """--max-connections 8 held by long-polls of 127.0.0.1: 127.0.0.2 opens 4 connections one after the other and sends on none until all are open (a browser's preconnects): a connection that has not yet carried a request is not an idle one to close for the next, and all 4 are served"""
    gw = harness.Gateway(args=['--max-connections', '8', '--log-level', 'debug', '--trace'])
    a = long_polls_of(gw, A, 'fair-silent', 8)
    accepted = gw.stderr_text().count(' accept\n')
    burst = []
    for i in range(4):
        s = connected_from(gw, B)
        burst.append(s)
        wait_for(lambda: gw.stderr_text().count(' accept\n') == accepted + i + 1,
                 'connection %d of 127.0.0.2 accepted' % (i + 1))
    all_served(burst, 'what the 4 connections of 127.0.0.2 were answered')
    for s in burst + a:
        s.close()
    gw.stop()


@test
def a_newcomer_from_the_biggest_holder_closes_none_of_the_others():
    """--max-connections 4: 127.0.0.3 sends half a publish's head; 127.0.0.2 opens 4 silent connections. Its fourth takes the place of its own first, closed unanswered: the head of 127.0.0.3 is not closed for it, and its publish is stored"""
    gw = harness.Gateway(args=['--max-connections', '4', '--log-level', 'debug', '--trace'])
    accepted = gw.stderr_text().count(' accept\n')
    victim = connected_from(gw, C)
    victim.sendall(b'POST /v1/channels/fair-head/messages HTTP/1.1\r\nHost: x\r\n')
    wait_for(lambda: gw.stderr_text().count(' accept\n') == accepted + 1, 'the head arriving')
    silent = []
    for i in range(4):
        s = connected_from(gw, B)
        silent.append(s)
    eq(rest_of(silent[0]), b'', 'the first of 127.0.0.2, closed for its fourth')
    victim.sendall(b'Content-Type: application/json\r\nContent-Length: 12\r\n'
                   b'Connection: close\r\n\r\n{"body":"x"}')
    answer = rest_of(victim)
    check(answer.startswith(b'HTTP/1.1 201'), 'the publish of 127.0.0.3: %r' % answer[:300])
    for s in silent + [victim]:
        s.close()
    gw.stop()


@test
def a_connection_just_answered_or_just_opened_is_not_closed_silently():
    """--max-connections 4. (1) 127.0.0.1 holds 3 long-polls, 127.0.0.3 has just been answered on its keep-alive connection: a newcomer from 127.0.0.4 takes a long-poll's place, not that connection, whose next request is served. (2) 127.0.0.1, .3 and .5 hold one connection each, .5's just opened and silent: a newcomer from 127.0.0.6 is refused 429, and .5's request is served"""
    gw = harness.Gateway(args=['--max-connections', '4', '--log-level', 'debug'])
    a = long_polls_of(gw, A, 'fair-rest', 3)
    keep = connected_from(gw, C)
    get = b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
    keep.sendall(get)
    check(keep.recv(4096).startswith(b'HTTP/1.1 200'), 'the keep-alive client answered')
    answer = rest_of(http_from(gw, '127.0.0.4', '/healthz', 'Connection: close\r\n'))
    check(answer.startswith(b'HTTP/1.1 200'), 'the newcomer from 127.0.0.4: %r' % answer[:200])
    keep.sendall(get)
    check(keep.recv(4096).startswith(b'HTTP/1.1 200'), 'the keep-alive connection kept')
    for s in a + [keep]:
        s.close()
    gw.stop()

    gw = harness.Gateway(args=['--max-connections', '3', '--log-level', 'debug', '--trace'])
    a = long_polls_of(gw, A, 'fair-rest', 1)
    c = http_from(gw, C, '/v1/channels/fair-rest/messages?since=1&wait=30')
    wait_for(lambda: gw.stderr_text().count("http long-poll on 'fair-rest'") == 2, 'waiting')
    accepted = gw.stderr_text().count(' accept\n')
    silent = connected_from(gw, '127.0.0.5')
    wait_for(lambda: gw.stderr_text().count(' accept\n') == accepted + 1, 'accepted')
    refused = rest_of(http_from(gw, '127.0.0.6', '/healthz', 'Connection: close\r\n'))
    check(refused.startswith(b'HTTP/1.1 429'), 'the newcomer from 127.0.0.6: %r' % refused[:200])
    check(b'0 of them from 127.0.0.6' in refused, 'the refusal says why: %r' % refused)
    silent.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n')
    answer = rest_of(silent)
    check(answer.startswith(b'HTTP/1.1 200'), 'the connection just opened: %r' % answer[:200])
    for s in a + [c, silent]:
        s.close()
    gw.stop()



@test
def the_biggest_holders_idle_connection_is_told_why():
    """--max-connections 4, all of 127.0.0.1, each answered a moment ago (not rested): a newcomer from 127.0.0.2 is served; 127.0.0.1's newest is told 429 too_many_sessions, which says it had no request under way, and so does the log"""
    gw = harness.Gateway(args=['--max-connections', '4', '--log-level', 'debug'])
    get = b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'
    a = []
    for _ in range(4):
        s = connected_from(gw, A)
        s.sendall(get)
        check(s.recv(4096).startswith(b'HTTP/1.1 200'), 'a keep-alive client of 127.0.0.1 answered')
        a.append(s)
    answer = rest_of(http_from(gw, B, '/healthz', 'Connection: close\r\n'))
    check(answer.startswith(b'HTTP/1.1 200'), 'the newcomer from 127.0.0.2: %r' % answer[:200])
    told = rest_of(a[3])
    head, _, body = told.partition(b'\r\n\r\n')
    check(head.startswith(b'HTTP/1.1 429') and b'retry-after: 1' in head.lower(),
          '127.0.0.1\'s newest connection: %r' % head)
    why = json.loads(body)['error']
    eq(why['code'], 'too_many_sessions', 'its error code')
    check('with no request under way' in why['message'] and 'not yet whole' not in why['message'],
          'it says the connection had no request under way: %r' % why['message'])
    gw.wait_stderr(r'closed with 429: 127\.0\.0\.1 holds 4 of the 4 connections .* with no '
                   r'request under way')
    for s in a[:3]:
        s.sendall(get)
        check(s.recv(4096).startswith(b'HTTP/1.1 200'), 'the older connections of 127.0.0.1 kept')
        s.close()
    a[3].close()
    gw.stop()

def unread(sock):
    """Bytes waiting in sock's receive buffer."""
    return struct.unpack('i', fcntl.ioctl(sock, termios.FIONREAD, b'\0' * 4))[0]


@test
def answers_not_taken_give_way():
    """--max-connections 4 held by 127.0.0.1 with reads whose answers it does not take (pipelined GETs of the page, never read): requests from 127.0.0.2 are served, and once a second has passed the hogs are cut, not kept until their idle timeout"""
    gw = harness.Gateway(args=['--max-connections', '4'])
    hogs = []
    for _ in range(4):
        h = socket.socket()
        h.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
        h.bind((A, 0))
        h.connect(('127.0.0.1', gw.http_port))
        h.setblocking(False)
        try:
            h.send(b'GET / HTTP/1.1\r\nHost: x\r\nAccept: text/html\r\n\r\n' * 200)
        except BlockingIOError:
            pass
        hogs.append(h)
    # Stuck: each hog's receive buffer holds what it allows, and its answers wait behind it.
    wait_for(lambda: all(unread(h) >= 2048 for h in hogs), 'the hogs\' answers stuck')

    def served():
        s = http_from(gw, B, '/v1/version', 'Connection: close\r\n')
        answer = rest_of(s)
        s.close()
        return answer.startswith(b'HTTP/1.1 200')
    # At once, its newest hog closing after its answer, or once they have waited a second;
    # newcomers after that second cut the hogs that take nothing, whichever it was.
    wait_for(served, 'a read from 127.0.0.2 served', timeout=8, interval=0.2)
    wait_for(lambda: served() and 'answer to a GET has not been taken' in gw.stderr_text(),
             'a hog cut for the answer it does not take', timeout=8, interval=0.2)
    for h in hogs:
        h.close()
    gw.stop()


@test
def heads_being_sent_are_not_cut_for_a_newcomer():
    """--max-connections 2 held by 127.0.0.1 sending two request heads: a newcomer from
    127.0.0.2 at that moment is refused 429 rather than either request cut, and both are answered
    200 once whole; heads still arriving a while later (dripped) give way to the next newcomer"""
    gw = harness.Gateway(args=['--max-connections', '2'])
    a = [connected_from(gw, A) for _ in range(2)]
    for s in a:
        s.sendall(b'GET /healthz HTTP/1.1\r\nHost: x\r\n')
    refused = rest_of(http_from(gw, B, '/healthz', 'Connection: close\r\n'))
    check(refused.startswith(b'HTTP/1.1 429') and b'none can give way' in refused,
          'the newcomer is refused: %r' % refused[:300])
    for s in a:
        s.sendall(b'\r\n')
        check(s.recv(4096).startswith(b'HTTP/1.1 200'), 'the request being sent is answered')
        s.sendall(b'GET /healthz HTTP/1.1\r\n')  # the next head, which stops there
    time.sleep(0.5)  # the heads have been arriving longer than HEAD_GIVES_WAY_MS
    served = rest_of(http_from(gw, B, '/healthz', 'Connection: close\r\n'))
    check(served.startswith(b'HTTP/1.1 200'), 'the next newcomer is served: %r' % served[:300])
    cut, _, _ = select.select(a, [], [], 5)
    told = rest_of(cut[0]) if cut else b''
    check(told.startswith(b'HTTP/1.1 429') and b'its request not yet whole' in told,
          'a dripped head gave way, told 429: %r' % told[:300])
    for s in a:
        s.close()
    gw.stop()


@test
def heads_begun_again_and_again_give_way():
    """--max-connections 32 held by 127.0.0.2 opening its connections again every 200 ms, each
    sending a request head's first line and no more: every head is a moment old, yet a client
    of 127.0.0.3 asking /healthz 20 times is served each time, not refused 429 (a few heads
    being sent at once are let finish: heads_being_sent_are_not_cut_for_a_newcomer)"""
    gw = harness.Gateway(args=['--max-connections', '32'])
    stop = threading.Event()
    cycles = [0]

    def churn():
        held = []
        while not stop.is_set():
            began = time.monotonic()
            for s in held:
                s.close()
            held = []
            for _ in range(32):
                try:
                    s = connected_from(gw, B)
                    s.sendall(b'GET /healthz HTTP/1.1\r\n')
                    held.append(s)
                except OSError:
                    pass
            cycles[0] += 1
            stop.wait(max(0.0, 0.2 - (time.monotonic() - began)))
        for s in held:
            s.close()
    t = threading.Thread(target=churn)
    t.start()
    try:
        wait_for(lambda: cycles[0] >= 2, 'the churn under way')
        answers = []
        for _ in range(20):
            answers.append(rest_of(http_from(gw, C, '/healthz', 'Connection: close\r\n'))[:12])
            time.sleep(0.05)
    finally:
        stop.set()
        t.join()
    eq([a for a in answers if a != b'HTTP/1.1 200'], [], 'answers other than 200 of 20')
    gw.stop()


@test
def answers_taken_slowly_keep_their_connections():
    """--max-connections 3 held by 127.0.0.1 reading large pages slowly but all the time: not one
    of them cut, each page arrives whole; a newcomer from 127.0.0.2 is served, the newest reader's
    connection closing after its page instead of taking another request"""
    gw = harness.Gateway(args=['--max-connections', '3', '--max-body', '1048576',
                               '--page-bytes', '8388608'])
    for _ in range(6):
        r = gw.request('POST', '/v1/channels/big/messages', body=b'x' * 1000000,
                       content_type='text/plain')
        eq(r.status, 201, 'a large message stored')
    got, begun = {}, set()

    def take_slowly(k):
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        s.settimeout(10)
        s.bind((A, 0))
        s.connect(('127.0.0.1', gw.http_port))
        s.sendall(b'GET /v1/channels/big/messages?limit=6 HTTP/1.1\r\nHost: x\r\n\r\n')
        data = b''
        try:
            while True:
                head, sep, body = data.partition(b'\r\n\r\n')
                if sep:
                    n = int(re.search(rb'(?i)content-length: *(\d+)', head).group(1))
                    if len(body) >= n:
                        break
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
                begun.add(k)
                time.sleep(0.03)  # about 2 MB/s: a slow link, read all the time
        except OSError as e:
            got[k] = 'error %r after %d bytes' % (e, len(data))
            return
        finally:
            s.close()
        head, _, body = data.partition(b'\r\n\r\n')
        got[k] = 'whole' if head.startswith(b'HTTP/1.1 200') and body.endswith(b'}\n') else \
            'cut after %d bytes' % len(data)
    readers = [threading.Thread(target=take_slowly, args=(k,)) for k in range(3)]
    for t in readers:
        t.start()
    wait_for(lambda: len(begun) == 3, 'each reader\'s page on its way')
    time.sleep(1.5)  # longer than a page not taken may hold its connection (ANSWER_NOT_TAKEN_MS)
    answer = rest_of(http_from(gw, B, '/healthz', 'Connection: close\r\n'))
    for t in readers:
        t.join(30)
    eq(got, {0: 'whole', 1: 'whole', 2: 'whole'}, 'every page taken slowly arrived whole')
    check(answer.startswith(b'HTTP/1.1 200'), 'the newcomer is served: %r' % answer[:300])
    gw.wait_stderr(r'http conn \d+: closes after its answer: 127\.0\.0\.1 holds 3 of the 3 '
                   r'connections, and 127\.0\.0\.2 needs one')
    gw.stop()


@test
def slow_bodies_give_way_when_every_connection_is_busy():
    """--max-connections 4, every one a publish of 127.0.0.1 whose body is still arriving: a
    request from 127.0.0.2 is served; the newest of them is told 429 and closed, its message not
    stored; the others complete and are stored"""
    gw = harness.Gateway(args=['--max-connections', '4'])
    a = []
    for _ in range(4):
        s = connected_from(gw, A)
        s.sendall(b'POST /v1/channels/fair-body/messages HTTP/1.1\r\nHost: x\r\n'
                  b'Content-Type: text/plain\r\nContent-Length: 2\r\n'
                  b'Expect: 100-continue\r\n\r\n')
        # The 100 says the head was read: the connection is in its body now.
        check(s.recv(64).startswith(b'HTTP/1.1 100'), 'the head of a publish was read')
        s.sendall(b'x')  # one byte of the two: the body is still arriving
        a.append(s)
    other = http_from(gw, B, '/healthz', 'Connection: close\r\n')
    answer = rest_of(other)
    check(answer.startswith(b'HTTP/1.1 200'), '127.0.0.2 is served: %r' % answer[:200])
    other.close()
    cut = rest_of(a[3])
    check(cut.startswith(b'HTTP/1.1 429') and b'another address' in cut,
          'the newest slow body of 127.0.0.1 is told why: %r' % cut[:300])
    for s in a[:3]:
        s.sendall(b'y')
        check(s.recv(4096).startswith(b'HTTP/1.1 201'), 'an older one completes')
        s.close()
    eq([m['body'] for m in gw.read('fair-body')['messages']], ['xy'] * 3,
       'stored: the three that completed, not the one cut')
    gw.stop()


def sio_request(gw, source, method, path, body=None):
    """One Engine.IO polling request from source: (status, body text)."""
    c = http.client.HTTPConnection('127.0.0.1', gw.http_port, timeout=10,
                                   source_address=(source, 0))
    c.request(method, path, body=body,
              headers={'Content-Type': 'text/plain;charset=UTF-8'} if body else {})
    r = c.getresponse()
    out = (r.status, r.read().decode())
    c.close()
    return out


def sio_handshake(gw, source):
    """A Socket.IO handshake over polling from source, not connected: its poll path."""
    status, text = sio_request(gw, source, 'GET', '/socket.io/?EIO=4&transport=polling')
    eq(status, 200, 'handshake from %s: %s' % (source, text))
    return '/socket.io/?EIO=4&transport=polling&sid=' + json.loads(text[1:])['sid']


def sio_connect(gw, source, path):
    """CONNECT on the handshake of path, and its answer."""
    eq(sio_request(gw, source, 'POST', path, '40'), (200, 'ok'), 'CONNECT from %s' % source)
    status, text = sio_request(gw, source, 'GET', path)
    check(status == 200 and text.startswith('40{'),
          'CONNECT answered to %s: %s %r' % (source, status, text))


def sio_session(gw, source):
    """A Socket.IO session over polling from source, connected: its poll path."""
    path = sio_handshake(gw, source)
    sio_connect(gw, source, path)
    return path


@test
def socketio_sessions_are_shared_when_full():
    """--max-sio-sessions 2, both connected from 127.0.0.1: a handshake from 127.0.0.1 is 429,
    one from 127.0.0.2 is let in, and the newest session of 127.0.0.1 is closed"""
    gw = harness.Gateway(args=['--max-sio-sessions', '2'])
    a = [sio_session(gw, A) for _ in range(2)]
    status, text = sio_request(gw, A, 'GET', '/socket.io/?EIO=4&transport=polling')
    eq(status, 429, 'a handshake from the filling address: %r' % text)
    b = sio_session(gw, B)
    # On polling the session cannot be told at once: it is closed, and its next poll says so.
    status, text = sio_request(gw, A, 'GET', a[1])
    check((status, text) == (200, '1') or status == 400,
          'the newest session of 127.0.0.1 is closed: %s %r' % (status, text))
    for path, source in ((a[0], A), (b, B)):
        eq(sio_request(gw, source, 'POST', path, '421["channels",{}]'), (200, 'ok'),
           'a command from %s' % source)
        status, text = sio_request(gw, source, 'GET', path)
        check(status == 200 and text.startswith('431['), 'its ack: %s %r' % (status, text))
    gw.stop()


@test
def closed_socketio_sessions_give_way_first():
    """--max-sio-sessions 4 held by sessions of 127.0.0.1 that disconnected without polling for their close packet (2000 pings posted first, never polled): a handshake from 127.0.0.2 is let in at once, and from 127.0.0.1 too, the oldest closed session giving way; memory stays small"""
    gw = harness.Gateway(args=['--max-sio-sessions', '4'], env=harness.small_asan_quarantine())
    rss0 = harness.rss_kb(gw)
    for _ in range(40):
        path = sio_session(gw, A)
        eq(sio_request(gw, A, 'POST', path, '\x1e'.join(['2'] * 2000)), (200, 'ok'),
           'pings from 127.0.0.1')
        eq(sio_request(gw, A, 'POST', path, '41'), (200, 'ok'), 'DISCONNECT from 127.0.0.1')
    grew = harness.rss_kb(gw) - rss0
    print('# 40 sessions closed and not polled: RSS +%d kB' % grew)
    status, text = sio_request(gw, B, 'GET', '/socket.io/?EIO=4&transport=polling')
    eq(status, 200, 'a handshake from 127.0.0.2: %r' % text)
    if not harness.sanitized():
        check(grew < 8 * 1024, 'RSS grew by %d kB for closed sessions' % grew)
    gw.stop()


@test
def a_handshake_flood_ends_its_own_handshakes():
    """--max-sio-sessions 10: 127.0.0.2 and 127.0.0.3 each handshake, then 127.0.0.1 sends 60 handshakes and connects none, 127.0.0.4 handshaking midway: all three still connect afterwards, the flood ending its own handshakes"""
    gw = harness.Gateway(args=['--max-sio-sessions', '10'])
    victims = [(B, sio_handshake(gw, B)), (C, sio_handshake(gw, C))]
    for _ in range(30):
        sio_handshake(gw, A)
    late = ('127.0.0.4', sio_handshake(gw, '127.0.0.4'))
    for _ in range(30):
        sio_handshake(gw, A)
    for source, path in victims + [late]:
        sio_connect(gw, source, path)
    gw.stop()


@test
def held_socketio_polls_give_way():
    """--max-connections 4 held by 127.0.0.1 with Socket.IO polls waiting (nothing to send): a request from 127.0.0.2 is served, and the newest poll is answered early with a noop and Connection: close; the session goes on with its next poll"""
    gw = harness.Gateway(args=['--max-connections', '4', '--log-level', 'debug', '--trace'])
    paths = [sio_session(gw, A) for _ in range(4)]
    polls = []
    for i, path in enumerate(paths):
        polls.append(http_from(gw, A, path))
        wait_for(lambda: gw.stderr_text().count(' poll held') == i + 1, 'poll %d held' % (i + 1))
    answer = rest_of(http_from(gw, B, '/healthz', 'Connection: close\r\n'))
    check(answer.startswith(b'HTTP/1.1 200'), 'a request from 127.0.0.2: %r' % answer[:200])
    early = rest_of(polls[3])
    check(early.startswith(b'HTTP/1.1 200') and early.endswith(b'\r\n\r\n6')
          and b'Connection: close' in early, 'the newest poll answered early: %r' % early)
    for p in polls[:3]:
        p.close()
    eq(sio_request(gw, A, 'POST', paths[3], '421["channels",{}]'), (200, 'ok'),
       'its session goes on')
    status, text = sio_request(gw, A, 'GET', paths[3])
    check(status == 200 and text.startswith('431['), 'its ack: %s %r' % (status, text))
    gw.stop()


@test
def a_client_that_connects_and_leaves_takes_one_place():
    """--max-sessions 8 held from 127.0.0.2 by sessions whose sockets are full (they pipelined
    HISTs and read nothing): a client from 127.0.0.3 that opens a session and leaves, 10 times,
    makes room once. The session closed for it must not linger on the limit while its peer
    reads nothing, or each newcomer would take another place"""
    seeder = harness.Gateway()
    with harness.Session(seeder) as w:
        body = 'x' * 4000
        w.send(''.join('PUB big %s\n' % body for _ in range(300)))
        for _ in range(300):
            eq(w.read_line().get('type'), 'ok', 'a message for the pages')
    seeder.stop()
    gw = harness.Gateway(db=seeder.db, args=['--max-sessions', '8'])
    hogs = []
    for _ in range(8):
        h = socket.socket()
        h.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        h.bind((B, 0))
        h.connect(('127.0.0.1', gw.tcp_port))
        h.sendall(b'HIST big 0 1000\n' * 20)
        hogs.append(h)
    # Full: a page of about 1 MiB waits for each hog, its next HIST held back until it reads.
    # A page counts until the kernel takes it, and the kernel takes what its send buffer holds
    # (grown to megabytes, a page and a part of the next): so not exactly 8 MiB, but
    # nothing more sent for a while, and more than 7.5 pages waiting.
    last = [None]

    def hogs_full():
        stats = gw.get('/v1/stats').json
        now = (stats['bytes_sent_total']['tcp'], stats['reply_bytes'])
        settled = now == last[0] and now[1] >= 15 << 19
        last[0] = now
        return settled
    wait_for(hogs_full, 'the hogs\' sockets full', interval=0.3)
    for i in range(10):
        s = greeted(gw, C)
        check(s is not None, 'newcomer %d from 127.0.0.3 is greeted' % i)
        if s is None:
            continue
        sid = s.hello['session']
        s.close()
        # Gone: its session ended (not the place of the one closed for it, which may linger).
        # By its session id: a later newcomer may get the same port, and match an earlier line.
        wait_for(lambda: re.search(r'tcp session %s \S+ closed' % sid, gw.stderr_text()),
                 'newcomer %d gone' % i)
    made = gw.stderr_text().count('is closed to make room')
    eq(made, 1, 'sessions of 127.0.0.2 closed to make room for 10 newcomers in turn')
    eq(opened(gw, 'tcp'), 7, 'the hogs\' sessions left open')
    for h in hogs:
        h.close()
    gw.stop()


# --------------------------------------------------------------------------
# The store's queues: publishes are taken by address in turns

def tcp_commands(gw):
    return gw.get('/v1/stats').json['requests_total']['tcp']


@test
def a_publish_takes_its_turn_beside_another_addresss_queue():
    """the database held, the writer waiting for it with a PUB from 127.0.0.1, while 10 sessions from 127.0.0.2 queue 20 PUBs each, then one from 127.0.0.3: once it is free, 127.0.0.3's PUB commits beside 127.0.0.2's first, not after their 200 (message ids)"""
    gw = harness.Gateway()
    first = harness.Session(gw, source=A)
    floods = [harness.Session(gw, source=B) for _ in range(10)]
    mine = harness.Session(gw, source=C)
    before = tcp_commands(gw)
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=0)
    con.execute('BEGIN IMMEDIATE')
    try:
        # The writer takes this one and waits for the database (a second at most) while the rest queue.
        first.send('PUB turns-a first\n')
        wait_for(lambda: tcp_commands(gw) >= before + 1, '127.0.0.1\'s PUB taken in', interval=0.01)
        time.sleep(0.1)  # for the writer to take it: nothing says when it has
        before += 1
        for i, s in enumerate(floods):
            s.send(''.join('PUB turns-b %d-%d\n' % (i, k) for k in range(20)))
        wait_for(lambda: tcp_commands(gw) >= before + 200, '127.0.0.2\'s 200 PUBs taken in',
                 interval=0.01)
        mine.send('PUB turns-c mine\n')
        wait_for(lambda: tcp_commands(gw) >= before + 201, '127.0.0.3\'s PUB taken in', interval=0.01)
    finally:
        con.execute('COMMIT')
        con.close()
    theirs = [s.reply(timeout=30) for s in floods for _ in range(20)]
    ack = mine.reply(timeout=30)
    eq(ack.get('type'), 'ok', '127.0.0.3\'s PUB')
    ids = [r['message']['id'] for r in theirs if r.get('type') == 'ok']
    check(len(ids) >= 150, 'of 127.0.0.2\'s 200 PUBs only %d stored: %s'
          % (len(ids), [r for r in theirs if r.get('type') != 'ok'][:2]))
    after = sum(1 for x in ids if x > ack['message']['id'])
    check(after >= len(ids) - 50, '127.0.0.3\'s PUB committed after %d of 127.0.0.2\'s %d: it '
          'waited its turn behind their queue' % (len(ids) - after, len(ids)))
    eq(first.reply(timeout=30).get('type'), 'ok', '127.0.0.1\'s PUB')
    for s in floods + [mine, first]:
        s.close()
    gw.stop()


if __name__ == '__main__':
    harness.main()
