#!/usr/bin/env python3
"""File descriptors: out of them, the gateway pauses accepting instead of
spinning (a handful of log lines, little CPU), serves the connections it has,
and accepts again on both fronts once clients close; at start it raises its
limit and warns when the connection limits cannot fit; a taken port names
the setting to change."""

import sys
sys.dont_write_bytecode = True

import os
import re
import selectors
import socket
import time

import harness
import wsclient
from harness import test, check, eq, wait_for


class Limited(harness.Gateway):
    """The gateway started under `prlimit --nofile=<nofile>`."""

    def __init__(self, nofile, **kw):
        self.nofile = nofile
        super().__init__(**kw)

    def argv(self):
        return ['prlimit', '--nofile=%s' % self.nofile, '--'] + super().argv()


def cpu_seconds(gw):
    with open('/proc/%d/stat' % gw.proc.pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def open_files_limit(gw):
    with open('/proc/%d/limits' % gw.proc.pid) as f:
        for line in f:
            if line.startswith('Max open files'):
                return [int(v) for v in line.split()[3:5]]
    raise harness.Failure('no "Max open files" in /proc/%d/limits' % gw.proc.pid)


HEALTHZ = b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'


def answered(sock, timeout):
    """The first bytes the server sends within timeout, or b''."""
    sock.settimeout(timeout)
    try:
        return sock.recv(4096)
    except (socket.timeout, ConnectionResetError):
        return b''


def first_bytes(socks, timeout, close=False):
    """What each socket receives first within one deadline for all (b'': nothing).
    close: close each socket once it has its bytes, so that its descriptor in the
    gateway frees up for the clients still waiting."""
    got = {s: b'' for s in socks}
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    deadline = time.monotonic() + timeout
    while sel.get_map() and time.monotonic() < deadline:
        for key, _ in sel.select(max(0.0, deadline - time.monotonic())):
            try:
                got[key.fileobj] = key.fileobj.recv(4096)
            except ConnectionResetError:
                pass
            sel.unregister(key.fileobj)
            if close:
                key.fileobj.close()
    sel.close()
    return got


@test
def out_of_descriptors_pauses_then_recovers():
    """under prlimit --nofile=64 with 100 clients: little CPU, few log lines, open ones served, both fronts accept again"""
    harness.raise_nofile(4096)
    gw = Limited('64', args=['--max-connections', '1000', '--max-sessions', '1000'])
    http, tcp = [], []
    try:
        # More clients than the gateway has descriptors: the kernel's backlog holds the rest.
        for i in range(50):
            s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
            s.sendall(HEALTHZ)
            http.append(s)
            tcp.append(socket.create_connection(('127.0.0.1', gw.tcp_port), timeout=5))
        got = first_bytes(http + tcp, 1.5)
        served_http = [s for s in http if got[s].startswith(b'HTTP/1.1 200')]
        served_tcp = [s for s in tcp if b'"type":"hello"' in got[s]]
        check(served_http or served_tcp, 'nothing was served at all')
        check(len(served_http) + len(served_tcp) < 100, 'every client was served under 64 fds')
        gw.wait_stderr(r'(http|tcp): (cannot )?accept: Too many open files')

        # Out of descriptors for two seconds: no spinning, no flood of lines.
        lines0, cpu0 = len(gw.stderr_text().splitlines()), cpu_seconds(gw)
        time.sleep(2.0)  # the window measured: there is nothing to wait for
        cpu = cpu_seconds(gw) - cpu0
        lines = len(gw.stderr_text().splitlines()) - lines0
        print('# 2 s out of descriptors: %.2f s CPU, %d log lines' % (cpu, lines))
        check(cpu < 0.5, 'the gateway used %.2f s of CPU in 2 s out of descriptors' % cpu)
        check(lines <= 4, '%d log lines in 2 s out of descriptors:\n%s' % (lines, gw.stderr_tail()))
        warnings = len(re.findall(r'cannot accept', gw.stderr_text()))
        check(warnings <= 4, '%d "cannot accept" warnings' % warnings)

        # The connections it has are served meanwhile.
        for s in served_http[:3]:
            s.sendall(HEALTHZ)
            check(answered(s, 5).startswith(b'HTTP/1.1 200'), 'an open REST connection went unserved')
        for s in served_tcp[:3]:
            s.sendall(b'PING\n')
            check(b'"pong"' in answered(s, 5), 'an open session went unserved')

        # Clients leave: the waiting ones are accepted, and new ones too, on both fronts.
        for s in served_http + served_tcp:
            s.close()
        waiting_http = [s for s in http if s not in served_http]
        waiting_tcp = [s for s in tcp if s not in served_tcp]
        # More wait than the gateway has descriptors for at once: each leaves once served.
        got = first_bytes(waiting_http + waiting_tcp, 10, close=True)
        check(all(got[s].startswith(b'HTTP/1.1 200') for s in waiting_http),
              '%d of %d REST clients in the backlog were never served'
              % (sum(1 for s in waiting_http if not got[s]), len(waiting_http)))
        check(all(b'"type":"hello"' in got[s] for s in waiting_tcp),
              '%d of %d sessions in the backlog were never greeted'
              % (sum(1 for s in waiting_tcp if not got[s]), len(waiting_tcp)))
        for s in http + tcp:
            s.close()
        http, tcp = [], []
        wait_for(lambda: gw.get('/healthz').status == 200, 'a new REST request served')
        s = harness.Session(gw)
        eq(s.request('PING')['type'], 'pong', 'a new session served')
        s.close()
        gw.wait_stderr(r'http: accepting again after [0-9.]+ s \(\d+ attempts\)')
        gw.wait_stderr(r'tcp: accepting again after [0-9.]+ s \(\d+ attempts\)')
    finally:
        for s in http + tcp:
            s.close()


@test
def ended_sessions_linger_within_the_limit():
    """a client that opens a TCP session, sends QUIT and keeps its socket, 2,000 times: the sessions
    ending and lingering stay within --max-sessions together, so the gateway (1,024 descriptors)
    never runs out of them and a bystander is greeted at once"""
    harness.raise_nofile(4096)
    gw = Limited('1024', args=['--max-sessions', '10', '--max-ws-sessions', '10',
                               '--max-sse-streams', '10', '--max-sio-sessions', '10',
                               '--max-connections', '100'])
    base = harness.fd_count(gw)
    kept, peak = [], base
    try:
        for i in range(2000):
            s = socket.socket()
            s.settimeout(5)
            try:
                s.connect(('127.0.0.1', gw.tcp_port))
                s.sendall(b'QUIT\n')
            except OSError:
                s.close()
                continue
            kept.append(s)  # never read, never closed: its end lingers on the gateway
            if i % 50 == 0:
                peak = max(peak, harness.fd_count(gw))
        peak = max(peak, harness.fd_count(gw))
        print('# descriptors: %d at start, %d at most' % (base, peak))
        check(peak <= base + 10 + 8, '%d descriptors at most, %d at start: ended sessions '
              'lingered past --max-sessions 10' % (peak, base))
        check('Too many open files' not in gw.stderr_text(),
              'the gateway ran out of descriptors:\n%s' % gw.stderr_tail())
        t0 = time.monotonic()
        with harness.Session(gw, source='127.0.0.2') as s:
            eq(s.request('PING')['type'], 'pong', 'a bystander is served')
        check(time.monotonic() - t0 < 2, 'the bystander waited %.1f s' % (time.monotonic() - t0))
    finally:
        for s in kept:
            s.close()


def upgrade_request(path):
    headers = dict(wsclient.upgrade_headers(), Host='127.0.0.1')
    return ('GET %s HTTP/1.1\r\n' % path +
            ''.join('%s: %s\r\n' % kv for kv in headers.items()) + '\r\n').encode()


@test
def upgrade_without_a_descriptor_is_refused_before_the_101():
    """out of descriptors, a WebSocket or Socket.IO upgrade on a connection the gateway has gets 429 too_many_sessions with the reason, not a 101 and then nothing; once clients leave, it is upgraded"""
    harness.raise_nofile(4096)
    gw = Limited('64', args=['--max-connections', '1000', '--max-sessions', '1000'])
    paths = ['/v1/ws', '/socket.io/?EIO=4&transport=websocket']
    conns, tcp = [], []
    try:
        for _ in paths:
            s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
            s.sendall(HEALTHZ)
            check(answered(s, 5).startswith(b'HTTP/1.1 200'), 'a REST connection is served')
            conns.append(s)
        # Sessions until the gateway has no descriptor left (the kernel's backlog holds the rest).
        for _ in range(80):
            tcp.append(socket.create_connection(('127.0.0.1', gw.tcp_port), timeout=5))
        gw.wait_stderr(r'tcp: (cannot )?accept: Too many open files')
        for path, s in zip(paths, conns):
            s.sendall(upgrade_request(path))
            got = answered(s, 5)
            check(got.startswith(b'HTTP/1.1 429 '), 'answer to the upgrade of %s: %r' % (path, got))
            check(b'"too_many_sessions"' in got and b'no descriptor for the session' in got,
                  'the reason for %s in: %r' % (path, got))
        for s in tcp + conns:
            s.close()
        tcp, conns = [], []
        for path in paths:
            def upgraded():
                s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=5)
                s.sendall(upgrade_request(path))
                got = answered(s, 5)
                s.close()
                return got.startswith(b'HTTP/1.1 101 ')
            wait_for(upgraded, 'an upgrade of %s once descriptors are free' % path)
    finally:
        for s in tcp + conns:
            s.close()


@test
def limit_raised_and_warned():
    """the soft limit is raised to the hard one; too few descriptors for the flags is a clear warning"""
    gw = Limited('256:4096')
    eq(open_files_limit(gw), [4096, 4096], 'soft and hard limits after start')
    text = gw.wait_stderr(r'warn +only 4096 file descriptors .*').group(0)
    for word in ['--max-sessions', '--max-ws-sessions', '--max-sse-streams', '--max-sio-sessions',
                 '--max-connections', 'VISAVIS_MAX_SESSIONS', 'VISAVIS_MAX_WS_SESSIONS',
                 'VISAVIS_MAX_SSE_STREAMS', 'VISAVIS_MAX_SIO_SESSIONS', 'VISAVIS_MAX_CONNECTIONS',
                 'ulimit -n']:
        check(word in text, 'the warning names %s: %s' % (word, text))
    gw.stop()
    quiet = Limited('256:4096', args=['--max-sessions', '100', '--max-connections', '100',
                                      '--max-ws-sessions', '100', '--max-sio-sessions', '100',
                                      '--max-sse-streams', '100'])
    quiet.stop()
    check('file descriptors' not in quiet.stderr_text(), 'a warning although 5 x 100 fit:\n'
          + quiet.stderr_tail())


@test
def limits_fitted_to_the_descriptors_keep_fair_shares():
    """under prlimit --nofile=1024 the five connection limits are cut to fit (the TCP one to 203, said in the warning): one address filling the TCP sessions meets that limit, not the end of the descriptors, so a newcomer from another address still gets in, taking its place"""
    harness.raise_nofile(4096)
    gw = Limited('1024')
    text = gw.wait_stderr(r'warn +only 1024 file descriptors .*').group(0)
    check('serving at most 203, 203, 203, 203 and 83' in text, 'the limits fitted: %s' % text)
    held, refused = [], None
    try:
        for i in range(400):
            s = harness.Session(gw, hello=False, source='127.0.0.2', timeout=5)
            first = s.reply()
            if first.get('type') != 'hello':
                refused = (i, first)
                s.close()
                break
            held.append(s)
        check(refused is not None, 'one address opened %d sessions, none refused' % len(held))
        eq(len(held), 203, 'sessions one address holds at the fitted limit')
        eq(refused[1].get('code'), 'too_many_sessions', 'what the one over the limit is told')
        # Before, the limit was 10,000: the descriptors ran out first and the
        # newcomer waited in the backlog until the holder let go.
        newcomer = harness.Session(gw, source='127.0.0.3', timeout=5)
        r = newcomer.request('PING in')
        eq((r.get('type'), r.get('token')), ('pong', 'in'), 'the newcomer from another address is served')
        newcomer.close()
        eq(gw.get('/healthz').status, 200, 'REST beside them')
    finally:
        for s in held:
            s.close()
    gw.stop()


@test
def taken_port_names_the_setting():
    """a taken port: the error names the flag and the environment variable, for each listener"""
    with socket.socket() as busy:
        busy.bind(('127.0.0.1', 0))
        busy.listen()
        port = busy.getsockname()[1]
        d = harness.Gateway(start=False).tmpdir
        for flag, env, other in [('--http-addr', 'VISAVIS_HTTP_ADDR', '--tcp-addr'),
                                 ('--tcp-addr', 'VISAVIS_TCP_ADDR', '--http-addr')]:
            rc, _, err = harness.run_binary([flag, '127.0.0.1:%d' % port, other, '127.0.0.1:0',
                                             '--udp-addr', '', '--db', os.path.join(d, 'p.db')])
            eq(rc, 1, '%s on a taken port: exit status' % flag)
            check('Address already in use' in err and flag in err and env in err,
                  '%s on a taken port: the error names %s and %s:\n%s' % (flag, flag, env, err))


harness.main()
