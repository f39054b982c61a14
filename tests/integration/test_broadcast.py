#!/usr/bin/env python3
"""A broadcast to 10,000 sessions: each subscriber gets every message, in
seq order, exactly once, while one publisher pipelines them as fast as the
gateway takes them (so fan-outs follow each other with output still queued,
and are sent in slices across loop turns). Then a PING on every session is
answered with nothing before it: no message came late or twice.

The sessions are raw sockets read by one selector (the harness's Session is
made for a few). Opens 10,000 sockets here and 10,000 in the gateway: the
test raises its open-file limit first (the gateway inherits it) and is
skipped, saying so, where the hard limit does not allow it. Under
AddressSanitizer it runs the same 10,000 sessions with longer deadlines.
Loads the machine, so runs alone."""

import sys
sys.dont_write_bytecode = True

import json
import selectors
import socket
import time

import harness
from harness import test, check, eq, Session

SESSIONS = 10000
MESSAGES = 30
CHANNEL = 'broadcast'
WINDOW = 256  # connections being opened at once: never overflow the listen backlog
DEADLINE = 300 if harness.sanitized() else 120  # seconds, for each phase


class Sub:
    """One subscriber: its socket, what it has not yet cut into lines, its state."""
    __slots__ = ('sock', 'buf', 'state', 'next_seq', 'i')

    def __init__(self, i, sock):
        self.i = i
        self.sock = sock
        self.buf = b''
        self.state = 'hello'  # hello -> subscribing -> live -> pinged -> done
        self.next_seq = 1

    def lines(self):
        """The whole lines received, parsed; raises on the server's close."""
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return []
        if not data:
            raise harness.Failure('subscriber %d: the gateway closed the session (state %s, next seq %d)'
                                  % (self.i, self.state, self.next_seq))
        self.buf += data
        *whole, self.buf = self.buf.split(b'\n')
        return [json.loads(l) for l in whole if l.strip()]


def step(s, line, bodies):
    """One line of subscriber s; raises on anything a bug would change."""
    t = line.get('type')
    if t == 'ping':
        return
    if s.state == 'hello':
        eq(t, 'hello', 'subscriber %d: first line' % s.i)
        s.sock.sendall(b'SUB %s\n' % CHANNEL.encode())
        s.state = 'subscribing'
    elif s.state == 'subscribing':
        check(t == 'ok' and line.get('op') == 'sub', 'subscriber %d: reply to SUB: %s' % (s.i, line))
        s.state = 'live'
    elif s.state == 'live':
        check(t == 'message', 'subscriber %d: a %s line among the messages: %s' % (s.i, t, line))
        check(line.get('channel') == CHANNEL and line.get('seq') == s.next_seq,
              'subscriber %d: got seq %s, expected %d (lost, repeated or out of order): %s'
              % (s.i, line.get('seq'), s.next_seq, harness._short(line, 200)))
        eq(line.get('body'), bodies[s.next_seq - 1], 'subscriber %d: body of seq %d' % (s.i, s.next_seq))
        s.next_seq += 1
        if s.next_seq > len(bodies):
            s.sock.sendall(b'PING end\n')
            s.state = 'pinged'
    elif s.state == 'pinged':
        check(t == 'pong' and line.get('token') == 'end',
              'subscriber %d: after the last message, %s before the pong' % (s.i, harness._short(line, 200)))
        s.state = 'done'
    else:
        raise harness.Failure('subscriber %d: a line after its pong: %s' % (s.i, line))


def pump(sel, subs, until, what, bodies):
    """Reads every registered subscriber until until(s) holds for all of them."""
    left = {s.i for s in subs if not until(s)}
    deadline = time.monotonic() + DEADLINE
    while left:
        wait = deadline - time.monotonic()
        if wait <= 0:
            s = subs[min(left)]
            raise harness.Failure('%s: %d of %d subscribers not there after %ds (e.g. %d: state %s, next seq %d)'
                                  % (what, len(left), len(subs), DEADLINE, s.i, s.state, s.next_seq))
        for key, _ in sel.select(min(wait, 1.0)):
            s = key.data
            for line in s.lines():
                step(s, line, bodies)
            if until(s):
                left.discard(s.i)


def open_subscribers(gw, sel):
    """SESSIONS sessions, each subscribed to CHANNEL (256 openings at a time)."""
    subs = []
    opening = []
    deadline = time.monotonic() + DEADLINE
    while len(subs) < SESSIONS or opening:
        while len(opening) < WINDOW and len(subs) < SESSIONS:
            sock = socket.create_connection(('127.0.0.1', gw.tcp_port), timeout=30)
            sock.setblocking(False)
            s = Sub(len(subs), sock)
            subs.append(s)
            opening.append(s)
            sel.register(sock, selectors.EVENT_READ, s)
        if time.monotonic() > deadline:
            raise harness.Failure('%d of %d sessions subscribed after %ds'
                                  % (len(subs) - len(opening), SESSIONS, DEADLINE))
        for key, _ in sel.select(1.0):
            s = key.data
            for line in s.lines():
                step(s, line, [])
        opening = [s for s in opening if s.state != 'live']
    return subs


@test
def broadcast_10000_in_order_exactly_once():
    """10,000 subscribers, 30 pipelined PUBs: every subscriber gets seq 1..30 in order, each once, nothing after"""
    have = harness.raise_nofile(SESSIONS + 1024)  # before the gateway starts: it inherits the limit
    if have < SESSIONS + 512:
        harness.skip('needs %d open files per process, the limit here is %d' % (SESSIONS + 512, have))
    gw = harness.Gateway(args=['--max-sessions', str(SESSIONS + 64)],
                         env=harness.small_asan_quarantine())
    sel = selectors.DefaultSelector()
    subs = []
    try:
        t0 = time.monotonic()
        subs = open_subscribers(gw, sel)
        print('# %d sessions subscribed in %.1fs' % (SESSIONS, time.monotonic() - t0))
        bodies = ['broadcast %d of %d' % (k, MESSAGES) for k in range(MESSAGES)]
        with Session(gw, timeout=DEADLINE) as pub:
            t1 = time.monotonic()
            pub.send(''.join('PUB %s %s\n' % (CHANNEL, b) for b in bodies))
            pump(sel, subs, lambda s: s.state == 'done', 'the broadcast', bodies)
            print('# %d messages reached %d subscribers in %.2fs' % (MESSAGES, SESSIONS, time.monotonic() - t1))
            replies = [pub.reply() for _ in bodies]
            eq([(r.get('type'), r.get('op'), r['message']['seq']) for r in replies],
               [('ok', 'pub', k + 1) for k in range(MESSAGES)], 'the publisher\'s replies')
        stored = gw.read_all(CHANNEL)
        eq([m['body'] for m in stored], bodies, 'the channel as stored')
    finally:
        sel.close()
        for s in subs:
            s.sock.close()


harness.main()
