#!/usr/bin/env python3
"""Flow control and liveness of the TCP session front (docs/protocol.md, "Flow
control, liveness, shutdown"): heartbeats, the idle timeout, slow consumers
cut off with their last seq while the others keep their pace and the
gateway's memory stays bounded, and the goodbye on SIGTERM.

Each test starts its own gateway with short timers; the file loads the
machine (8 MB pushed at a reader that does not read) and so runs alone."""

import sys
sys.dont_write_bytecode = True

import signal
import threading
import time

import harness
from harness import test, check, eq, check_hello, check_session_error, check_push, Session

SHORT = ['--heartbeat', '1', '--idle-timeout', '2']


def timed_lines(s, seconds):
    """(monotonic time, line) of every line within seconds; stops at EOF."""
    deadline = time.monotonic() + seconds
    out = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out
        try:
            raw = s.read_raw(timeout=left)
        except harness.Failure:
            if s.buf:
                raise
            return out  # nothing more within the window
        if raw is None:
            return out
        out.append((time.monotonic(), Session.parse(raw)))


def pong(s, token):
    r = s.request('PING %s' % token)
    eq((r.get('type'), r.get('token')), ('pong', token), 'reply to PING %s (%s)' % (token, harness._short(r)))


# --------------------------------------------------------------------------
# Heartbeats

@test
def heartbeat_in_greeting():
    """the greeting's heartbeat is --heartbeat, or VISAVIS_HEARTBEAT; the flag wins"""
    gw = harness.Gateway(args=['--heartbeat', '7'])
    with Session(gw) as s:
        check_hello(s.hello, heartbeat=7)
    gw.stop()
    gw = harness.Gateway(env={'VISAVIS_HEARTBEAT': '11'})
    with Session(gw) as s:
        check_hello(s.hello, heartbeat=11)
    gw.stop()
    gw = harness.Gateway(args=['--heartbeat', '5'], env={'VISAVIS_HEARTBEAT': '11'})
    with Session(gw) as s:
        check_hello(s.hello, heartbeat=5)


@test
def heartbeat_keeps_subscriber():
    """--heartbeat 1 --idle-timeout 2: a subscribed session that never sends gets a ping each second and stays open"""
    gw = harness.Gateway(args=SHORT)
    with Session(gw) as s:
        check_hello(s.hello, heartbeat=1)
        eq(s.request('SUB hb').get('type'), 'ok', 'SUB')
        t0 = time.monotonic()
        lines = timed_lines(s, 4.5)
        check(not s.eof, 'the server closed a subscribed session after %.1fs: %s'
              % (time.monotonic() - t0, [x for _, x in lines]))
        for _, x in lines:
            eq(list(x.keys()), ['type', 'time_us'], 'keys of a heartbeat line %s' % x)
            eq(x['type'], 'ping', 'type of a line on an idle session')
            check(type(x['time_us']) is int and abs(x['time_us'] - time.time() * 1e6) < 5e6,
                  'heartbeat time_us %s is not the server clock' % x)
        n = len(lines)
        check(3 <= n <= 6, '%d heartbeats in 4.5s with --heartbeat 1, want about 4' % n)
        times = [t0] + [t for t, _ in lines]
        gaps = [b - a for a, b in zip(times, times[1:])]
        check(min(gaps[1:] or [1]) >= 0.5, 'heartbeats closer than 0.5s: gaps %s' % gaps)
        # still fully usable, and a PONG is taken without a reply
        s.cmd('PONG')
        pong(s, 'alive')
        m = gw.publish('hb', 'still subscribed')
        eq(check_push(s.push()), m, 'push after the heartbeats')


@test
def no_heartbeat_while_traffic_flows():
    """a session sent a message every 0.3s gets no heartbeat (--heartbeat 1)"""
    gw = harness.Gateway(args=SHORT)
    with Session(gw) as s:
        eq(s.request('SUB hb-busy').get('type'), 'ok', 'SUB')
        conn = gw.connect()
        for i in range(10):
            gw.publish('hb-busy', 'b%d' % i, conn=conn)
            time.sleep(0.3)  # the pace of the traffic under test, not a wait for readiness
        conn.close()
        got = s.messages(10)
        eq([p['seq'] for p in got], list(range(1, 11)), 'seqs')
        eq(s.pings, 0, 'heartbeats received while a message came every 0.3s')


# --------------------------------------------------------------------------
# Idle sessions

def expect_idle_close(s, t0, lo=1.5, hi=12.0):
    lines = s.until_eof(timeout=20)
    dt = time.monotonic() - t0
    check(lines, 'closed without an idle_timeout line after %.1fs' % dt)
    for x in lines[:-1]:
        eq(x.get('type'), 'ping', 'a line before the idle_timeout error: %s' % x)
    check_session_error(lines[-1], 'idle_timeout', what='last line of an idle session')
    check(lo <= dt <= hi, 'idle session closed after %.1fs with --idle-timeout 2' % dt)


@test
def idle_session_closed():
    """--idle-timeout 2: a session that never subscribes nor sends gets idle_timeout, then EOF"""
    gw = harness.Gateway(args=SHORT)
    t0 = time.monotonic()
    s = Session(gw)
    expect_idle_close(s, t0)
    s.close()
    with Session(gw) as s2:  # the gateway goes on
        pong(s2, 'next')


@test
def idle_after_unsub():
    """a session idle since its UNSUB (no subscription left) is closed for idleness"""
    gw = harness.Gateway(args=SHORT)
    with Session(gw) as s:
        eq(s.request('SUB idle-u').get('type'), 'ok', 'SUB')
        eq(s.request('UNSUB idle-u').get('type'), 'ok', 'UNSUB')
        expect_idle_close(s, time.monotonic())


@test
def pongs_keep_no_idle_session():
    """a session that only answers heartbeats with PONG, never subscribed, is closed for idleness as a silent one is: a PONG is no command"""
    gw = harness.Gateway(args=SHORT)
    with Session(gw) as s:
        t0 = time.monotonic()
        lines = []
        while not s.eof and time.monotonic() - t0 < 8:
            try:
                s.send('PONG\n')
            except OSError:
                break  # closed under the send
            lines += s.collect(0.5)  # the client's pace under test
        lines += s.until_eof(timeout=10)
        dt = time.monotonic() - t0
        check(lines, 'no line in %.1fs' % dt)
        check_session_error(lines[-1], 'idle_timeout', what='last line of a session that only sent PONG')
        check(dt <= 6, 'closed after %.1fs with --idle-timeout 2' % dt)


@test
def commands_keep_session():
    """a session that sends a command every 0.5s stays open past --idle-timeout 2"""
    gw = harness.Gateway(args=SHORT)
    with Session(gw) as s:
        t0 = time.monotonic()
        i = 0
        while time.monotonic() - t0 < 4.5:
            pong(s, 'p%d' % i)
            i += 1
            time.sleep(0.5)  # the client's pace under test
        extra = [x for x in s.collect(0.2) if x['type'] != 'ping']
        eq(extra, [], 'lines other than heartbeats')
        check(not s.eof, 'an active session was closed')
        pong(s, 'last')


# --------------------------------------------------------------------------
# Slow consumers

BODY = 16000
FLOOD = 512          # x 16 kB = 8 MB: past the kernel's own buffers (~4 MB on loopback) and the outbuf
MAX_OUTBUF = 65536


@test
def slow_consumer_cut_off():
    """--max-outbuf 64K: a subscriber that does not read while 8 MB are published gets whole lines, then slow_consumer with its last seq, then EOF; another subscriber gets everything at once; RSS bounded"""
    gw = harness.Gateway(args=['--max-outbuf', str(MAX_OUTBUF)], env=harness.small_asan_quarantine())
    fast = Session(gw)
    slow = Session(gw, rcvbuf=4096)
    for s in (fast, slow):
        eq(s.request('SUB slow-b').get('type'), 'ok', 'SUB slow-b')
    pre = [gw.publish('slow-b', 'pre%d' % i) for i in range(3)]
    for s in (fast, slow):
        eq([check_push(p) for p in s.messages(3)], pre, 'pushes on slow-b before the flood')
    for s in (fast, slow):
        r = s.request('SUB slow')
        eq((r.get('type'), r.get('since')), ('ok', 0), 'SUB slow')

    # the fast reader, in its own thread, notes when each seq arrives
    fast_got = {}
    fast_err = []

    def fast_reader():
        try:
            while len(fast_got) < FLOOD:
                p = fast.push(timeout=60)
                check(p['channel'] == 'slow', 'push of %s' % p['channel'])
                check(p['seq'] not in fast_got, 'seq %d pushed twice to the fast reader' % p['seq'])
                check(len(p['body']) == BODY, 'body of %d bytes' % len(p['body']))
                fast_got[p['seq']] = time.monotonic()
        except Exception as e:  # noqa: BLE001
            fast_err.append(e)

    acked = {}
    pub_err = []

    def publisher(k):
        conn = gw.connect()
        try:
            for i in range(FLOOD // 2):
                m = gw.publish('slow', ('%d-%d ' % (k, i)).ljust(BODY, 'x'), conn=conn)
                acked[m['seq']] = time.monotonic()
        except Exception as e:  # noqa: BLE001
            pub_err.append(e)
        finally:
            conn.close()

    rss0 = harness.rss_kb(gw)
    hwm0 = harness.proc_status(gw.proc.pid, 'VmHWM')
    ft = threading.Thread(target=fast_reader)
    ft.start()
    pubs = [threading.Thread(target=publisher, args=(k,)) for k in range(2)]
    t0 = time.monotonic()
    for t in pubs:
        t.start()
    for t in pubs:
        t.join(timeout=60)
    t_pub = time.monotonic() - t0
    ft.join(timeout=30)
    rss1 = harness.rss_kb(gw)
    hwm1 = harness.proc_status(gw.proc.pid, 'VmHWM')
    check(not pub_err, 'publishers: %s' % pub_err)
    eq(len(acked), FLOOD, 'messages acknowledged')
    check(not fast_err, 'fast reader: %s' % fast_err)
    eq(sorted(fast_got), list(range(1, FLOOD + 1)), 'seqs the fast reader received')
    lag = max(fast_got[q] - acked[q] for q in acked)
    print('# published %d x %d B in %.2fs; fast reader max lag behind the 201: %.3fs; '
          'RSS %d -> %d kB, VmHWM %d -> %d kB' % (FLOOD, BODY, t_pub, lag, rss0, rss1, hwm0, hwm1))
    check(lag < 5.0, 'the fast reader got a message %.1fs after its 201: slowed by the slow one?' % lag)

    # now the slow reader reads: whole lines, consecutive seqs, slow_consumer last
    lines = slow.until_eof(timeout=30)
    check(lines, 'the slow session got nothing at all')
    last = lines[-1]
    check_session_error(last, 'slow_consumer', what='last line of the slow session')
    check(last['message'].startswith('more than %d bytes queued for this session' % MAX_OUTBUF),
          'it says its queue went over the bound: %r' % last['message'])
    body = [x for x in lines[:-1]]
    for x in body:
        eq(x.get('type'), 'message', 'a line before slow_consumer: %s' % harness._short(x, 200))
        eq(x['channel'], 'slow', 'channel of a push before slow_consumer')
    seqs = [x['seq'] for x in body]
    eq(seqs, list(range(1, len(seqs) + 1)), 'seqs the slow session received')
    check(len(seqs) < FLOOD, 'the slow session received all %d messages: it was never cut off' % FLOOD)
    ls = last.get('last_seq')
    check(isinstance(ls, dict), 'slow_consumer has no last_seq object: %s' % last)
    eq(ls, {'slow': seqs[-1] if seqs else 0, 'slow-b': 3}, 'last_seq of slow_consumer')
    print('# the slow session received %d messages (%d lines) before it was cut off'
          % (len(seqs), len(lines)))
    check(rss1 - rss0 < 50 * 1024, 'gateway RSS grew by %d kB during the flood' % (rss1 - rss0))
    check(hwm1 - max(hwm0, rss0) < 50 * 1024, 'gateway peak RSS grew by %d kB during the flood'
          % (hwm1 - max(hwm0, rss0)))

    pong(fast, 'fast-still')
    fast.close()
    slow.close()
    with Session(gw) as r:  # the others go on
        pong(r, 'after')


@test
def replay_not_read_is_a_slow_consumer():
    """--max-outbuf 64K: a session that SUBs from 0 on a 6.4 MB channel and reads none of its replay is closed as a slow consumer once it has taken nothing for 10 s: whole lines, then slow_consumer with the last seq it was sent; SUB from there gets the rest"""
    gw = harness.Gateway(args=['--max-outbuf', str(MAX_OUTBUF), '--sync', 'normal'])
    conn = gw.connect()
    n = 400
    for i in range(n):
        gw.publish('unread', ('%d ' % i).ljust(BODY, 'u'), conn=conn)
    conn.close()
    slow = Session(gw, rcvbuf=4096)
    rep = slow.request('SUB unread 0')
    eq((rep.get('type'), rep.get('top')), ('ok', n), 'SUB unread 0')
    t0 = time.monotonic()
    gw.wait_stderr(r'tcp session \S+ \S+: slow consumer', timeout=40)
    took = time.monotonic() - t0
    check(took >= 9, 'closed after %.1f s: before it had taken nothing for 10 s' % took)
    lines = slow.until_eof(timeout=30)
    check(lines, 'the slow session got nothing at all')
    last = lines[-1]
    check_session_error(last, 'slow_consumer', what='last line of the slow session')
    check(last['message'].startswith('this session took no byte for 10.0 s while its replay '
                                     'waited for room'),
          'it says it was stuck, not over the bound: %r' % last['message'])
    seqs = [x['seq'] for x in lines[:-1]]
    eq(seqs, list(range(1, len(seqs) + 1)), 'seqs the slow session received, whole and in order')
    check(len(seqs) < n, 'the slow session received all %d messages: it was never cut off' % n)
    eq(last.get('last_seq'), {'unread': seqs[-1] if seqs else 0}, 'last_seq of slow_consumer')
    slow.close()
    with Session(gw) as r:
        resumed = seqs[-1] if seqs else 0
        eq(r.request('SUB unread %d' % resumed).get('type'), 'ok', 'SUB from its last_seq')
        got = [r.push(timeout=30)['seq'] for _ in range(n - resumed)]
        eq(got, list(range(resumed + 1, n + 1)), 'the rest, after its last_seq')
    gw.stop()

@test
def replay_across_a_stopped_gateway():
    """--max-outbuf 64K: a reader in the middle of a 4.8 MB replay, its socket full, the gateway stopped (SIGSTOP) for 11 s while the reader empties the socket, then continued: not a slow consumer, the replay whole"""
    gw = harness.Gateway(args=['--max-outbuf', str(MAX_OUTBUF)])
    conn = gw.connect()
    n = 300
    for i in range(n):
        gw.publish('paused', ('%d ' % i).ljust(BODY, 'p'), conn=conn)
    conn.close()
    r = Session(gw, rcvbuf=4096)
    eq(r.request('SUB paused 0').get('type'), 'ok', 'SUB paused 0')
    got = [r.read_line(timeout=30)]
    time.sleep(0.5)  # the gateway fills the socket, then its queue: the replay waits for room
    gw.proc.send_signal(signal.SIGSTOP)
    try:
        stopped = time.monotonic()
        while True:  # what the kernel holds for the reader, while the gateway cannot send
            try:
                got.append(r.read_line(timeout=1))
            except harness.Failure:
                break
        time.sleep(max(0, 11 - (time.monotonic() - stopped)))
    finally:
        gw.proc.send_signal(signal.SIGCONT)
    check(len(got) < n, 'the whole replay was out before the gateway stopped: nothing tested')
    while len(got) < n:
        got.append(r.read_line(timeout=30))
    eq([(x.get('type'), x.get('seq')) for x in got], [('message', i) for i in range(1, n + 1)],
       'the replay, whole and in order, across the stop')
    eq(r.request('PING after').get('type'), 'pong', 'the session lives on')
    r.close()
    gw.stop()


@test
def replay_larger_than_outbuf():
    """--max-outbuf 64K: a reader that reads at once gets a 4.8 MB replay (SUB since) whole, it is not a slow consumer"""
    gw = harness.Gateway(args=['--max-outbuf', str(MAX_OUTBUF)])
    conn = gw.connect()
    n = 300
    for i in range(n):
        gw.publish('replay', ('%d ' % i).ljust(BODY, 'r'), conn=conn)
    conn.close()
    for since in (0, 150):
        with Session(gw) as r:
            rep = r.request('SUB replay %d' % since)
            eq((rep.get('type'), rep.get('since'), rep.get('top')), ('ok', since, n), 'SUB replay %d' % since)
            got = []
            while len(got) < n - since:
                x = r.read_line(timeout=30)
                check(x['type'] == 'message', 'line %d of the replay from %d: %s'
                      % (len(got) + 1, since, harness._short(x, 300)))
                got.append(x['seq'])
            eq(got, list(range(since + 1, n + 1)), 'seqs replayed from %d' % since)
            m = gw.publish('replay', 'live')
            eq(check_push(r.push()), m, 'live push after the replay')
            n += 1


# --------------------------------------------------------------------------
# Half-close: the client ends its side (nc -N, shutdown(SHUT_WR))

@test
def half_close_gets_every_reply():
    """PUB then shutdown(SHUT_WR): the ok (after commit), then bye "end of input", then EOF; the message is stored"""
    gw = harness.Gateway()
    s = Session(gw)
    s.cmd('PUB hc-one hello')
    s.shutdown_write()
    lines = s.until_eof(timeout=15)
    eq([x['type'] for x in lines], ['ok', 'bye'], 'lines after the half-close')
    eq(lines[0]['message']['body'], 'hello', 'the ok carries the message')
    eq(lines[1], {'type': 'bye', 'reason': 'end of input'}, 'the farewell')
    check(not s.reset, 'closed with a reset')
    s.close()
    eq([m['body'] for m in gw.read_all('hc-one')], ['hello'], 'stored')


@test
def half_close_after_pipelining():
    """200 PUBs, a HIST and a PING in one write, then shutdown(SHUT_WR): every reply in order, then bye"""
    gw = harness.Gateway()
    s = Session(gw)
    s.send(''.join('PUB hc-many p%d\n' % i for i in range(200)) + 'HIST hc-many 0 5\nPING last\n')
    s.shutdown_write()
    lines = s.until_eof(timeout=30)
    eq(len(lines), 203, 'replies + bye')
    eq([x['message']['body'] for x in lines[:200]], ['p%d' % i for i in range(200)], 'PUB oks in order')
    eq([m['seq'] for m in lines[200]['messages']], [1, 2, 3, 4, 5], 'HIST after the PUBs')
    eq((lines[201]['type'], lines[201]['token']), ('pong', 'last'), 'PING')
    eq(lines[202], {'type': 'bye', 'reason': 'end of input'}, 'bye')
    s.close()


@test
def half_close_during_replay():
    """SUB ch 0 on 3,000 stored messages, then shutdown(SHUT_WR) (echo 'SUB ch 0' | nc -N): the ok, every message in order, then bye"""
    gw = harness.Gateway()
    pub = Session(gw)
    body = 'x' * 100
    for start in range(0, 3000, 500):
        pub.send(''.join('PUB hc-replay %s-%d\n' % (body, i) for i in range(start, start + 500)))
        for _ in range(500):
            eq(pub.reply().get('type'), 'ok', 'PUB')
    pub.close()
    s = Session(gw)
    s.cmd('SUB hc-replay 0')
    s.shutdown_write()
    lines = s.until_eof(timeout=30)
    eq((lines[0].get('type'), lines[0].get('top')), ('ok', 3000), 'the SUB ok')
    eq([x.get('seq') for x in lines[1:-1]], list(range(1, 3001)), 'the whole replay, in order')
    eq(lines[-1], {'type': 'bye', 'reason': 'end of input'}, 'then the farewell')
    check(not s.reset, 'closed with a reset')
    s.close()


@test
def half_close_last_line_without_newline():
    """a last line without its LF before the half-close still runs (nc -N, printf without \\n)"""
    gw = harness.Gateway()
    s = Session(gw)
    s.send('PING one\nPING two')
    s.shutdown_write()
    lines = s.until_eof(timeout=15)
    eq([(x['type'], x.get('token')) for x in lines], [('pong', 'one'), ('pong', 'two'), ('bye', None)],
       'both pings answered, then bye')
    s.close()


@test
def quit_with_more_input_behind_it():
    """QUIT followed by more pipelined input: bye arrives whole and the close is clean (no reset)"""
    gw = harness.Gateway()
    s = Session(gw)
    s.send('QUIT\n' + 'PING never\n' * 20000)
    lines = s.until_eof(timeout=15)
    eq(lines, [{'type': 'bye', 'reason': 'quit'}], 'lines after QUIT')
    check(not s.reset, 'closed with a reset: the bye could have been lost')
    s.close()


# --------------------------------------------------------------------------
# Shutdown

@test
def sigterm_says_bye():
    """on SIGTERM every open session (idle, subscribed, just spoke) gets bye/shutdown before EOF; exit 0"""
    gw = harness.Gateway()
    idle = [Session(gw) for _ in range(10)]
    subd = [Session(gw) for _ in range(10)]
    for s in subd:
        eq(s.request('SUB bye-ch 0').get('type'), 'ok', 'SUB')
    m = gw.publish('bye-ch', 'before the end')
    for s in subd:
        eq(check_push(s.push()), m, 'push before SIGTERM')
    talk = [Session(gw) for _ in range(5)]
    for s in talk:
        pong(s, 'x')
    gw.stop()  # SIGTERM; must exit 0 (raises otherwise)
    for s in idle + subd + talk:
        lines = s.until_eof(timeout=10)
        eq(lines, [{'type': 'bye', 'reason': 'shutdown'}], 'lines after SIGTERM')
        check(not s.reset, 'the connection was reset instead of closed after the bye')
        s.close()


@test
def sigterm_with_pubs_in_flight():
    """SIGTERM while 200 pipelined PUBs are under way: replies in order, then bye; exactly the ok'd messages are stored"""
    gw = harness.Gateway()
    s = Session(gw)
    s.send(''.join('PUB bye-pubs p%d\n' % i for i in range(200)))
    first = s.reply()
    eq((first.get('type'), first.get('op')), ('ok', 'pub'), 'first reply')
    gw.stop()
    lines = [first] + s.until_eof(timeout=15)
    eq(lines[-1], {'type': 'bye', 'reason': 'shutdown'}, 'last line')
    acked = []
    for i, x in enumerate(lines[:-1]):
        if x['type'] == 'ok':
            check(not acked or len(acked) == i, 'an ok after an error at line %d' % i)
            acked.append(x['message'])
        else:
            check_session_error(x, 'shutting_down', op='pub', what='reply %d after SIGTERM' % i)
    eq([m['body'] for m in acked], ['p%d' % i for i in range(len(acked))], 'bodies acknowledged, in order')
    print('# %d of 200 PUBs acknowledged before the bye' % len(acked))
    s.close()
    gw.restart()
    eq(gw.read_all('bye-pubs'), acked, 'messages stored: exactly the acknowledged ones')


@test
def sigterm_with_a_reader_that_does_not_read():
    """SIGTERM while a subscriber's buffers are full: the gateway still exits 0 in time, others get bye"""
    gw = harness.Gateway(args=['--max-outbuf', str(4 * 1024 * 1024)])
    stuck = Session(gw, rcvbuf=4096)
    eq(stuck.request('SUB stuck').get('type'), 'ok', 'SUB')
    other = Session(gw)
    conn = gw.connect()
    for i in range(300):  # ~5 MB: kernel buffers full, the outbuf partly
        gw.publish('stuck', ('%d ' % i).ljust(BODY, 'y'), conn=conn)
    conn.close()
    t0 = time.monotonic()
    gw.stop()
    print('# stopped in %.2fs' % (time.monotonic() - t0))
    eq(other.until_eof(timeout=10), [{'type': 'bye', 'reason': 'shutdown'}], 'lines of an idle session')
    other.close()
    stuck.close()


harness.main()
