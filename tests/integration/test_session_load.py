#!/usr/bin/env python3
"""The TCP session front under numbers: 2000 connect/close cycles of every
kind leave no memory or descriptors behind, 2000 sessions open at once
all receive one broadcast, clients that pipeline without end wait their
turn, and one that reads nothing is not answered without end. Loads the
machine, so runs alone."""

import sys
sys.dont_write_bytecode = True

import selectors
import socket
import statistics
import subprocess
import time

import harness
from harness import test, check, eq, check_push, Session

CHURN = 2000
FANOUT = 2000


def pong(s, token):
    r = s.request('PING %s' % token)
    eq((r.get('type'), r.get('token')), ('pong', token), 'reply to PING %s (%s)' % (token, harness._short(r)))


def churn_once(gw, i):
    kind = i % 5
    if kind == 0:    # greeting, then a clean close
        s = Session(gw)
        s.close()
    elif kind == 1:  # subscribed, then gone
        s = Session(gw)
        s.cmd('SUB churn %s' % ('0' if i % 2 else ''))
        s.reply()
        s.close()
    elif kind == 2:  # half a command, then a reset
        s = Session(gw)
        s.send(b'PUB churn half a line without its end')
        s.abort()
    elif kind == 3:  # never reads the greeting
        s = Session(gw, hello=False)
        s.close()
    else:            # QUIT
        s = Session(gw)
        s.cmd('SUB churn')
        s.reply()
        s.cmd('QUIT')
        eq(s.reply().get('type'), 'bye', 'reply to QUIT')
        s.close()


@test
def connect_churn():
    """2000 sessions opened and closed (clean, subscribed, reset mid-line, greeting unread, QUIT): RSS and fds bounded, still serving"""
    gw = harness.Gateway(env=harness.small_asan_quarantine())
    gw.publish('churn', 'seed')
    for i in range(200):  # warm up allocator and caches
        churn_once(gw, i)
    watcher = Session(gw)
    eq(watcher.request('SUB churn').get('type'), 'ok', 'SUB')

    def settled():
        return harness.fd_count(gw) <= fds0 + 2

    fds0 = harness.fd_count(gw)
    rss0 = harness.rss_kb(gw)
    t0 = time.monotonic()
    for i in range(CHURN):
        churn_once(gw, i)
        if i % 500 == 499:  # messages to the subscribers that are going away
            gw.publish('churn', 'while churning %d' % i)
    dt = time.monotonic() - t0
    harness.wait_for(settled, 'the gateway\'s descriptors back to %d (now %d)'
                     % (fds0, harness.fd_count(gw)), timeout=15)
    rss1 = harness.rss_kb(gw)
    print('# %d cycles in %.2fs; RSS %d -> %d kB; fds %d -> %d'
          % (CHURN, dt, rss0, rss1, fds0, harness.fd_count(gw)))
    check(rss1 - rss0 < 20 * 1024, 'gateway RSS grew by %d kB over %d sessions' % (rss1 - rss0, CHURN))
    got = watcher.messages(4)
    eq([p['body'] for p in got], ['while churning %d' % i for i in (499, 999, 1499, 1999)], 'pushes to the watcher')
    m = gw.publish('churn', 'after')
    eq(check_push(watcher.push()), m, 'push after the churn')
    with Session(gw) as s:
        pong(s, 'after')
        eq(s.request('SUB churn 0').get('since'), 0, 'SUB after the churn')
        eq(len(s.messages(m['seq'])), m['seq'], 'replay after the churn')
    eq(len(gw.read_all('churn')), m['seq'], 'nothing stored by the half lines')
    watcher.close()


def gather(sessions, done, timeout, what):
    """Reads every session with one selector until done(i, lines_of_i) holds
    for all; returns the lines per session."""
    sel = selectors.DefaultSelector()
    lines = [[] for _ in sessions]
    left = set()
    for i, s in enumerate(sessions):
        if not done(i, lines[i]):
            sel.register(s.sock, selectors.EVENT_READ, i)
            left.add(i)
    deadline = time.monotonic() + timeout
    try:
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise harness.Failure('%s: %d of %d sessions not done after %.0fs (e.g. session %d got %s)'
                                      % (what, len(left), len(sessions), timeout, min(left),
                                         harness._short(lines[min(left)], 300)))
            for key, _ in sel.select(wait):
                i = key.data
                s = sessions[i]
                lines[i] += s.read_available()
                if done(i, lines[i]):
                    sel.unregister(s.sock)
                    left.discard(i)
                elif s.eof:
                    raise harness.Failure('%s: session %d closed by the server; lines: %s'
                                          % (what, i, harness._short(lines[i], 300)))
    finally:
        sel.close()
    return lines


@test
def fanout_2000_sessions():
    """2000 sessions open at once, each subscribed to one channel, all get a REST broadcast and a session's PUB"""
    harness.raise_nofile(2 * FANOUT + 1024)  # before the gateway starts: it inherits the limit
    gw = harness.Gateway()
    sessions = []
    t0 = time.monotonic()
    try:
        for i in range(FANOUT):
            try:
                sessions.append(Session(gw, timeout=30))
            except (OSError, harness.Failure) as e:
                raise harness.Failure('session %d of %d could not open: %s' % (i + 1, FANOUT, e))
        print('# %d sessions open in %.2fs' % (FANOUT, time.monotonic() - t0))
        for i, s in enumerate(sessions):
            s.send('SUB fan\n' if i % 2 else '{"op":"sub","channel":"fan","tag":"%d"}\n' % i)
        subs = gather(sessions, lambda i, ls: len(ls) >= 1, 60, 'SUB replies')
        for i, ls in enumerate(subs):
            r = ls[0]
            check(r.get('type') == 'ok' and r.get('op') == 'sub', 'session %d: reply to SUB: %s' % (i, r))
            if i % 2 == 0:
                eq(r.get('tag'), str(i), 'tag of session %d' % i)
        t1 = time.monotonic()
        m = gw.publish('fan', 'to everyone')
        got = gather(sessions, lambda i, ls: any(x.get('type') == 'message' for x in ls), 60, 'broadcast')
        dt = time.monotonic() - t1
        for i, ls in enumerate(got):
            msgs = [x for x in ls if x['type'] == 'message']
            eq(len(msgs), 1, 'messages pushed to session %d' % i)
            eq(check_push(msgs[0]), m, 'the broadcast as session %d got it' % i)
        print('# broadcast reached %d sessions in %.3fs' % (FANOUT, dt))
        # and a PUB from one of them reaches all, the publisher included
        sessions[7].cmd('PUB fan from session 7')
        got = gather(sessions, lambda i, ls: any(x.get('type') == 'message' for x in ls), 60, 'session PUB')
        ids = {next(x for x in ls if x['type'] == 'message')['id'] for ls in got}
        eq(len(ids), 1, 'distinct messages pushed for one PUB')
        reply = [x for x in got[7] if x['type'] == 'ok']
        if not reply:
            reply = [sessions[7].reply()]
        eq(reply[0].get('op'), 'pub', 'the publisher\'s reply')
        eq(reply[0]['message']['id'], ids.pop(), 'pushed id vs the PUB reply')
        with Session(gw) as s:
            pong(s, 'one-more')
        eq(gw.get('/healthz').status, 200, 'REST with %d sessions open' % FANOUT)
    finally:
        for s in sessions:
            s.close()
    with Session(gw) as s:
        pong(s, 'after')

# Sixteen clients from another address, each sending empty lines as fast as
# the gateway takes them, for a few seconds (a process of its own, so that
# the bystander's timing does not share an interpreter with it).
FLOOD = r"""
import socket, sys, time
port, n, seconds = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
socks = []
for _ in range(n):
    s = socket.socket()
    s.bind(('127.0.0.2', 0))
    s.connect(('127.0.0.1', port))
    s.setblocking(False)
    socks.append(s)
print('ready', flush=True)
chunk = b'\n' * 65536
end = time.monotonic() + seconds
sent = 0
while time.monotonic() < end:
    for s in socks:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            pass
        except OSError:
            sys.exit('a flooding session was closed')
    time.sleep(0.001)
print('sent', sent, flush=True)
"""


@test
def pipelined_lines_wait_their_turn():
    """16 sessions sending empty lines as fast as they are taken (64 KiB a send, nothing to answer) do not hold a bystander's PING: a session runs at most 64 lines a loop turn, the rest after every other client's"""
    gw = harness.Gateway()
    flood = subprocess.Popen([sys.executable, '-c', FLOOD, str(gw.tcp_port), '16', '6'],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        eq(flood.stdout.readline().strip(), b'ready', 'the flood started')
        rtts = []
        with Session(gw) as s:
            time.sleep(0.5)  # the flood under way: its sessions' buffers are full
            for i in range(40):
                t = time.monotonic()
                pong(s, 'b%d' % i)
                rtts.append((time.monotonic() - t) * 1000)
                time.sleep(0.05)
        out, err = flood.communicate(timeout=30)
        eq(flood.returncode, 0, 'the flood ran to its end: %s' % err.decode()[-300:])
        sent = int(out.split()[-1])
        print('# flood: %.0f MB of empty lines; bystander PING p50 %.2f ms, max %.2f ms'
              % (sent / 1e6, statistics.median(rtts), max(rtts)))
        check(sent > 16 * 65536, 'the flood sent more than its first buffers: %d bytes' % sent)
        # Before: about 13 ms a flooding session a turn, 200 ms and more for 16.
        check(statistics.median(rtts) < 100,
              'bystander PING p50 %.1f ms under the flood (max %.1f)' % (statistics.median(rtts), max(rtts)))
    finally:
        if flood.poll() is None:
            flood.kill()
            flood.wait()
    with Session(gw) as s:
        pong(s, 'after')
    gw.stop()


@test
def a_session_that_reads_nothing_is_answered_64k_ahead():
    """a session that pipelines PINGs and reads nothing has its commands taken only while under 64 KiB of its answers wait in the gateway, whatever --max-outbuf (16 MiB here): what the kernel holds, plus 64 KiB, then it waits"""
    gw = harness.Gateway(args=['--max-outbuf', str(16 << 20)])
    with open('/proc/sys/net/ipv4/tcp_wmem') as f:
        wmem_max = int(f.read().split()[2])
    cmd = b'PING ' + b't' * 100 + b'\n'
    pong_len = len(b'{"type":"pong","token":"%s","time_us":1700000000000000}\n' % (b't' * 100))
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.bind(('127.0.0.2', 0))
    s.connect(('127.0.0.1', gw.tcp_port))
    s.setblocking(False)
    chunk = cmd * 512
    sent, end = 0, time.monotonic() + 3
    while time.monotonic() < end:
        try:
            sent += s.send(chunk)
        except BlockingIOError:
            time.sleep(0.005)
    taken = gw.get('/v1/stats').json['requests_total']['tcp']
    # The kernel's send buffer takes at most tcp_wmem's largest; 16 MiB of answers
    # waiting in the gateway would be 16 MiB / pong_len commands more.
    bound = (wmem_max + (1 << 20)) // pong_len
    print('# sent %d PINGs, %d taken; bound %d (tcp_wmem max %d)' % (sent // len(cmd), taken, bound, wmem_max))
    check(sent // len(cmd) > bound + 10000, 'the client sent more than the bound: %d' % (sent // len(cmd)))
    check(taken < bound, '%d PINGs taken from a session that reads nothing (bound %d)' % (taken, bound))
    s.close()
    with Session(gw) as b:
        pong(b, 'after')
    gw.stop()


harness.main()
