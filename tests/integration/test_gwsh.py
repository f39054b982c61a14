#!/usr/bin/env python3
"""gwsh, the live-session client (docs/gwsh.md), against the real gateway:
-c runs commands and reports errors in its exit status; --sub prints each
message once, as JSON, and resumes across a gateway restart without a gap or
a repeat; --since replays; the shell under a pseudo-terminal prints pushes
without mangling the line being typed.

Run as `python3 test_gwsh.py build/gateway/visavis-gateway`: gwsh is found next to
the gateway, at ../clients/gwsh/gwsh from the gateway's directory (or set
VISAVIS_GWSH)."""

import sys
sys.dont_write_bytecode = True

import fcntl
import json
import os
import re
import select
import signal
import socket
import struct
import subprocess
import termios
import threading
import time

import harness
from harness import test, check, eq, check_message, Failure, wait_for

shared = harness.Shared()
TIMEOUT = harness.SESSION_TIMEOUT


def gwsh_bin():
    path = os.environ.get('VISAVIS_GWSH') or os.path.normpath(
        os.path.join(os.path.dirname(harness.gateway_bin()), '..', 'clients', 'gwsh', 'gwsh'))
    if not os.access(path, os.X_OK):
        print('Bail out! gwsh binary %s is missing or not executable' % path)
        sys.exit(1)
    return path


def addr(gw):
    return '127.0.0.1:%d' % gw.tcp_port


def run_gwsh(args, timeout=None, env=None, stdin_data=None):
    """Run gwsh to completion; returns (rc, stdout, stderr) as text."""
    p = subprocess.Popen([gwsh_bin()] + list(args),
                         stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.clean_env(env), start_new_session=True)
    try:
        out, err = p.communicate(stdin_data, timeout=timeout or TIMEOUT)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure('gwsh %s still running after %.0fs (killed); stdout=%s stderr=%s'
                      % (' '.join(args), timeout or TIMEOUT, harness._short(out), harness._short(err)))
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(not harness.SANITIZER_RE.search(err), 'sanitizer report from gwsh:\n' + err[-3000:])
    return p.returncode, out, err


free_port = harness.free_port


class Follower:
    """gwsh --sub as a child process; its stdout and stderr read by threads."""

    def __init__(self, args):
        self.proc = subprocess.Popen([gwsh_bin()] + list(args), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=harness.clean_env(), start_new_session=True)
        self.cond = threading.Condition()
        self.out = []   # stdout lines
        self.err = []   # stderr lines
        self.eof = 0
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()
        _followers.append(self)

    def _read(self, stream, sink):
        for raw in iter(stream.readline, b''):
            with self.cond:
                sink.append(raw.decode('utf-8', 'replace').rstrip('\n'))
                self.cond.notify_all()
        with self.cond:
            self.eof += 1
            self.cond.notify_all()

    def _wait(self, pred, what, timeout):
        deadline = time.monotonic() + (timeout or TIMEOUT)
        with self.cond:
            while True:
                v = pred()
                if v:
                    return v
                left = deadline - time.monotonic()
                if left <= 0 or self.eof == 2:
                    raise Failure('gwsh --sub: timed out waiting for %s%s\nstdout: %s\nstderr:\n%s'
                                  % (what, ' (it exited, rc=%s)' % self.proc.poll() if self.eof == 2 else '',
                                     harness._short(self.out[-10:]), '\n'.join(self.err[-15:])))
                self.cond.wait(left)

    def wait_err(self, pattern, start=0, timeout=None):
        """Index of the first stderr line at or after start matching pattern."""
        rx = re.compile(pattern)

        def find():
            for i in range(start, len(self.err)):
                if rx.search(self.err[i]):
                    return i + 1
            return None
        return self._wait(find, 'a stderr line matching %r' % pattern, timeout) - 1

    def messages(self, n, timeout=None):
        """The first n stdout lines, parsed (each must be one JSON object)."""
        self._wait(lambda: len(self.out) >= n, '%d lines on stdout (have %d)' % (n, len(self.out)), timeout)
        with self.cond:
            lines = self.out[:n]
        out = []
        for line in lines:
            try:
                out.append(json.loads(line))
            except ValueError as e:
                raise Failure('gwsh --sub printed a line that is not JSON (%s): %r' % (e, line))
        return out

    def stop(self, sig=signal.SIGTERM):
        """Sends sig; gwsh must exit 0 promptly. Returns the stderr text."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise Failure('gwsh --sub did not exit within 10 s of %s' % signal.Signals(sig).name)
        with self.cond:
            self._wait(lambda: self.eof == 2, 'the end of its output', 5)
        err = '\n'.join(self.err)
        check(not harness.SANITIZER_RE.search(err), 'sanitizer report from gwsh:\n' + err[-3000:])
        eq(rc, 0, 'gwsh --sub exit status after %s (stderr:\n%s)' % (signal.Signals(sig).name, err))
        return err


_followers = []


def cleanup():
    for f in _followers:
        if f.proc.poll() is None:
            f.proc.kill()
            f.proc.wait()
    del _followers[:]


def with_cleanup(fn):
    def run():
        try:
            fn()
        finally:
            cleanup()
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


def publish_n(gw, channel, bodies):
    conn = gw.connect()
    try:
        return [gw.publish(channel, b, conn=conn) for b in bodies]
    finally:
        conn.close()


MSG_LINE = r'\[%s #%d\] %s: %s  \((rest|tcp), \d\d:\d\d:\d\d\.\d{3}\)'


# --------------------------------------------------------------------------
# -c

@test
def c_pub_then_hist():
    """-c: PUB then HIST prints the ack and the message; the message is stored"""
    gw = shared.get()
    rc, out, err = run_gwsh(['-c', 'PUB gw-c salut tout le monde', '-c', 'HIST gw-c', addr(gw)])
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    lines = out.splitlines()
    eq(len(lines), 3, 'output lines: %r' % out)
    eq(lines[0], 'ok pub gw-c #1', 'the PUB ack')
    eq(lines[1], 'ok hist gw-c: 1 message, next since 1', 'the HIST reply')
    check(re.fullmatch('  ' + MSG_LINE % ('gw-c', 1, 'anonymous', 'salut tout le monde'), lines[2]),
          'the message in HIST: %r' % lines[2])
    page = gw.read('gw-c')
    eq([m['body'] for m in page['messages']], ['salut tout le monde'], 'bodies over REST')
    eq(page['messages'][0]['via'], 'tcp', 'via of the stored message')


@test
def c_hist_says_more():
    """-c: a HIST page the channel goes on after ends with the command for the next page"""
    gw = shared.get()
    for body in ('un', 'deux', 'trois'):
        gw.publish('gw-more', body)
    rc, out, err = run_gwsh(['-c', 'HIST gw-more 0 2', '-c', 'HIST gw-more 2 2', addr(gw)])
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    lines = out.splitlines()
    eq(len(lines), 6, 'output lines: %r' % out)
    eq(lines[0], 'ok hist gw-more: 2 messages, next since 2', 'the first HIST reply')
    eq(lines[3], '  (more: HIST gw-more 2)', 'what to type for the next page')
    eq(lines[4], 'ok hist gw-more: 1 message, next since 3', 'the second HIST reply')
    check(re.fullmatch('  ' + MSG_LINE % ('gw-more', 3, 'anonymous', 'trois'), lines[5]),
          'the last page ends with its message: %r' % lines[5])


@test
def c_json_raw_replies_only():
    """-c --json: the raw reply lines, in command order, pushes skipped"""
    gw = shared.get()
    rc, out, err = run_gwsh(['--json', '-c', 'SUB gw-cj', '-c', 'PUB gw-cj one', '-c', 'PING tok',
                             '-c', '{"op":"pub","channel":"gw-cj","body":"two\\nlines\\u0000","tag":"t2"}',
                             '-c', 'HIST gw-cj', addr(gw)])
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    lines = [json.loads(x) for x in out.splitlines()]
    eq([(x['type'], x.get('op')) for x in lines],
       [('ok', 'sub'), ('ok', 'pub'), ('pong', None), ('ok', 'pub'), ('ok', 'hist')],
       'reply kinds (the message pushes of the SUB must not be printed)')
    eq(lines[1]['message']['body'], 'one', 'first PUB body')
    eq(lines[2]['token'], 'tok', 'pong token')
    eq(lines[3]['tag'], 't2', 'tag of the JSON PUB')
    eq([m['body'] for m in lines[4]['messages']], ['one', 'two\nlines\x00'], 'HIST bodies')


@test
def c_error_reply_exit_1():
    """-c: an error reply is printed, the next commands still run, exit status 1"""
    gw = shared.get()
    rc, out, err = run_gwsh(['-c', 'PUB bad/name x', '-c', 'PING after', addr(gw)])
    eq(rc, 1, 'exit status (stdout: %r, stderr: %r)' % (out, err))
    lines = out.splitlines()
    eq(len(lines), 2, 'output lines: %r' % out)
    check(lines[0].startswith('error invalid_channel: ') and len(lines[0]) > 24,
          'error line: %r' % lines[0])
    check(lines[1].startswith('pong after (server time '), 'reply to the next command: %r' % lines[1])
    rc, out, err = run_gwsh(['-c', 'BOGUS', addr(gw)])
    eq(rc, 1, 'exit status after unknown_command')
    check(out.startswith('error unknown_command: '), 'unknown command line: %r' % out)


@test
def c_pong_and_blank_expect_no_reply():
    """-c: PONG and blank commands get no reply, and gwsh does not wait for one"""
    gw = shared.get()
    t0 = time.monotonic()
    rc, out, err = run_gwsh(['-c', 'PONG', '-c', '', '-c', 'PING x', addr(gw)])
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    eq(len(out.splitlines()), 1, 'one reply line: %r' % out)
    check(time.monotonic() - t0 < 5, 'gwsh waited for a reply that never comes')


@test
def c_unreachable_exit_3():
    """unreachable gateway: exit 3 and "cannot connect to <addr>: Connection refused" """
    port = free_port()
    for args in (['-c', 'PING'], [], ['--json', '-c', 'HIST x']):
        rc, out, err = run_gwsh(args + ['127.0.0.1:%d' % port])
        eq(rc, 3, 'exit status of gwsh %s' % ' '.join(args))
        check('cannot connect to 127.0.0.1:%d: Connection refused' % port in err,
              'message on stderr: %r' % err)
        eq(out, '', 'stdout')
    # The address from the environment.
    rc, out, err = run_gwsh(['-c', 'PING'], env={'VISAVIS_TCP_ADDR': '127.0.0.1:%d' % port})
    eq(rc, 3, 'exit status with VISAVIS_TCP_ADDR')
    check('127.0.0.1:%d' % port in err, 'VISAVIS_TCP_ADDR is used: %r' % err)


@test
def usage_errors_exit_2():
    """usage errors exit 2 with a message; --help exits 0"""
    for args in (['--since', '3'], ['--sub', 'bad/ch'], ['--sub', 'x', '--since', '-1'],
                 ['--sub', 'x', '-c', 'PING'], ['a:1', 'b:2'], ['nocolon'], ['--bogus'],
                 ['-c'], ['-c', 'PUB x a\nb'], ['--timeout', '0'], ['127.0.0.1:0'],
                 ['--text'], ['--sub', 'x', '--text', '--json']):
        rc, out, err = run_gwsh(args)
        eq(rc, 2, 'exit status of gwsh %r (stderr %r)' % (args, err))
        check(err.startswith('gwsh: '), 'a message on stderr for %r: %r' % (args, err))
    rc, out, err = run_gwsh(['--help'])
    eq(rc, 0, '--help exit status')
    check('--sub' in out and '-c' in out and 'Exit status' in out, '--help text: %r' % out)


@test
def plain_stdin_shell():
    """the shell with a pipe for stdin: lines are sent, replies printed, QUIT at EOF"""
    gw = shared.get()
    rc, out, err = run_gwsh([addr(gw)], stdin_data=b'PUB gw-plain piped\r\nHIST gw-plain\n/ping\n\nCHANNELS')
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    lines = out.splitlines()
    check(lines and lines[0].startswith('connected to %s (visavis ' % addr(gw)), 'greeting: %r' % out)
    check('ok pub gw-plain #1' in lines, 'PUB ack in %r' % out)
    check(any(re.fullmatch('  ' + MSG_LINE % ('gw-plain', 1, 'anonymous', 'piped'), x) for x in lines),
          'HIST message in %r' % out)
    check(any(re.fullmatch(r'pong \d+ us', x) for x in lines), '/ping round trip in %r' % out)
    check(any(x.startswith('ok channels: ') for x in lines), 'CHANNELS reply (last line, no LF) in %r' % out)
    eq(lines[-1], 'bye (quit)', 'last line')


@test
def channels_in_pages():
    """a full page of CHANNELS ends with the command for the next; the last page without"""
    gw = shared.get()
    gw.publish('gw-pages-a', 'x')
    gw.publish('gw-pages-b', 'x')
    rc, out, err = run_gwsh([addr(gw)],
                            stdin_data=b'CHANNELS gw-pages 1\nCHANNELS gw-pages-a 1\nCHANNELS zz\n')
    eq(rc, 0, 'exit status (stderr: %s)' % err)
    lines = out.splitlines()
    i = lines.index('ok channels: 1')
    check(lines[i + 1].startswith('  gw-pages-a: 1 message, last #1'), 'the entry: %r' % out)
    eq(lines[i + 2], '  (more: CHANNELS gw-pages-a)', 'the line after a full page')
    eq(lines[i + 3:i + 6], ['ok channels: 1', lines[i + 4], '  (more: CHANNELS gw-pages-b)'],
       'the next page')
    check(lines[i + 4].startswith('  gw-pages-b: '), 'the next page: %r' % out)
    eq(lines[i + 6:], ['ok channels: 0', 'bye (quit)'], 'the last page: nothing more')


# --------------------------------------------------------------------------
# --sub

@test
@with_cleanup
def sub_prints_messages_as_json():
    """--sub: each message published over REST is one JSON line, the message object exactly"""
    gw = shared.get()
    f = Follower(['--sub', 'gw-sub', addr(gw)])
    f.wait_err(r'^gwsh: following gw-sub at .* after seq 0$')
    sent = publish_n(gw, 'gw-sub', ['salut', 'ça va ?', 'a "quoted"\nline\twith\x00nul \u2028'])
    got = f.messages(3)
    for m in got:
        check_message(m, channel='gw-sub')
    eq(got, sent, 'printed messages vs the 201 bodies')
    # Raw lines: compact, one object each, keys in the server's order.
    for line in f.out[:3]:
        eq(list(json.loads(line).keys()), harness.MESSAGE_KEYS, 'keys of %r' % line)
    f.stop(signal.SIGINT)
    eq(len(f.out), 3, 'lines printed in all: %r' % f.out)


@test
@with_cleanup
def sub_text_shows_delay():
    """--sub --text: a line per message, `push seq N "body" X ms after commit`, body cut to fit"""
    gw = shared.get()
    f = Follower(['--sub', 'gw-text', '--text', addr(gw)])
    f.wait_err(r'^gwsh: following gw-text at .* after seq 0$')
    before = time.time()
    long_body = 'é' * 60
    sent = publish_n(gw, 'gw-text', ['hello #1', 'tab\there', long_body, 'a' * 39 + '\x1bzzz'])
    after = time.time()
    f._wait(lambda: len(f.out) >= 4, '4 lines on stdout', None)
    rx = re.compile(r'^push seq (\d+) "(.*)" (\d+\.\d) ms after commit$')
    # The cut falls between characters, never inside an escape (no "\" left alone).
    shown = ['hello #1', 'tab\\there', 'é' * 40 + '\u2026', 'a' * 39 + '\\x1b\u2026']
    for i, line in enumerate(f.out[:4]):
        m = rx.match(line)
        check(m, 'line %d has the form: %r' % (i, line))
        eq(int(m.group(1)), sent[i]['seq'], 'seq of line %d' % i)
        eq(m.group(2), shown[i], 'body of line %d (escaped, cut to 40 characters)' % i)
        # ts is the commit time in ms; the push came after it, within the publish calls.
        delay = float(m.group(3))
        check(0 <= delay <= (after - before) * 1000 + 1000,
              'delay %.1f ms within the %.1f ms the publishes took, and a second'
              % (delay, (after - before) * 1000))
        check(len(line) <= 80, 'line %d fits 80 columns: %d' % (i, len(line)))
    f.stop()


@test
@with_cleanup
def sub_since_replays():
    """--sub --since N: the stored messages after N first, then new ones"""
    gw = shared.get()
    sent = publish_n(gw, 'gw-since', ['m%d' % i for i in range(1, 6)])
    f = Follower(['--sub', 'gw-since', '--since', '2', addr(gw)])
    got = f.messages(3)
    eq([m['seq'] for m in got], [3, 4, 5], 'seqs replayed after 2')
    eq(got, sent[2:], 'replayed messages vs the stored ones')
    more = publish_n(gw, 'gw-since', ['m6'])
    got = f.messages(4)
    eq(got[3], more[0], 'the live message after the replay')
    f.stop()
    f2 = Follower(['--sub', 'gw-since', '--since', '0', addr(gw)])
    eq([m['seq'] for m in f2.messages(6)], [1, 2, 3, 4, 5, 6], '--since 0: every message')
    f2.stop()


@test
@with_cleanup
def sub_since_beyond_top_exits_1():
    """--sub --since beyond the channel's last seq: refused (invalid_cursor), exit 1"""
    gw = shared.get()
    publish_n(gw, 'gw-beyond', ['x'])
    rc, out, err = run_gwsh(['--sub', 'gw-beyond', '--since', '5', addr(gw)])
    eq(rc, 1, 'exit status (stderr: %s)' % err)
    check('invalid_cursor' in err, 'the refusal on stderr: %r' % err)
    eq(out, '', 'stdout')


def _resume_across_restart(how):
    gw = harness.Gateway()
    port = gw.tcp_port
    f = Follower(['--sub', 'demo', '--since', '0', '127.0.0.1:%d' % port])
    sent = publish_n(gw, 'demo', ['before-%d' % i for i in range(1, 4)])
    eq([m['seq'] for m in f.messages(3)], [1, 2, 3], 'seqs before the restart')
    mark = len(f.err)
    if how == 'sigterm':
        gw.stop()
    else:
        gw.kill9()
    f.wait_err(r'reconnecting in .* to resume demo after seq 3', start=mark)
    # Down for a moment: gwsh retries against nothing (connection refused).
    time.sleep(0.3)
    eq(len(f.out), 3, 'nothing printed while the gateway is down: %r' % f.out[3:])
    gw.args = ['--tcp-addr', '127.0.0.1:%d' % port]
    gw.restart()
    eq(gw.tcp_port, port, 'the restarted gateway listens on the same TCP port')
    # Some messages race gwsh's reconnection (they come back as replay), some follow it.
    sent += publish_n(gw, 'demo', ['after-%d' % i for i in range(1, 3)])
    f.wait_err(r'^gwsh: following demo at .* after seq 3$', start=mark)
    sent += publish_n(gw, 'demo', ['after-%d' % i for i in range(3, 6)])
    got = f.messages(8)
    eq([m['seq'] for m in got], list(range(1, 9)), 'seqs across the restart')
    eq(got, sent, 'printed messages vs the 201 bodies')
    time.sleep(0.3)
    err = f.stop()
    eq([json.loads(x)['seq'] for x in f.out], list(range(1, 9)),
       'every seq exactly once, in order, no gap (stderr:\n%s)' % err)


@test
@with_cleanup
def sub_resumes_across_sigterm_restart():
    """--sub: the gateway stopped (SIGTERM) and restarted on the same port; every seq once, in order"""
    _resume_across_restart('sigterm')


@test
@with_cleanup
def sub_resumes_across_crash_restart():
    """--sub: the gateway killed (SIGKILL) and restarted on the same port; every seq once, in order"""
    _resume_across_restart('kill9')


@test
@with_cleanup
def sub_resumes_after_slow_consumer():
    """--sub: stopped while a flood comes, it is dropped as a slow consumer, then resumes; every seq once"""
    gw = harness.Gateway(args=['--max-outbuf', '65536'])
    f = Follower(['--sub', 'flood', '--since', '0', addr(gw)])
    f.wait_err(r'^gwsh: following flood at ')
    n = 300
    f.proc.send_signal(signal.SIGSTOP)
    try:
        # ~18 MB of pushes: more than the socket buffers and the 64 KiB queue hold.
        publish_n(gw, 'flood', ['%05d ' % i + 'x' * 60000 for i in range(1, n + 1)])
    finally:
        f.proc.send_signal(signal.SIGCONT)
    f.wait_err(r'slow_consumer')
    got = f.messages(n, timeout=60)
    eq([m['seq'] for m in got], list(range(1, n + 1)), 'seqs printed across the slow_consumer drop')
    time.sleep(0.3)
    f.stop()
    eq(len(f.out), n, 'lines printed in all')


@test
@with_cleanup
def sub_long_lines():
    """--sub and -c: 64 KiB bodies of escaped characters (lines of ~400 KB) come through whole"""
    # The JSON request for such a body is larger than the default --max-body.
    gw = harness.Gateway(args=['--max-body', '1048576'])
    bodies = ['\x01' * 65536, '"\\' * 32768, 'é' * 32768]
    f = Follower(['--sub', 'gw-long', '--since', '0', addr(gw)])
    sent = publish_n(gw, 'gw-long', bodies)
    got = f.messages(3)
    eq([m['body'] for m in got], bodies, 'bodies printed by --sub')
    eq(got, sent, 'messages printed by --sub')
    f.stop()
    rc, out, err = run_gwsh(['--json', '-c', 'HIST gw-long', addr(gw)])
    eq(rc, 0, 'exit status of HIST (stderr %s)' % err)
    eq([m['body'] for m in json.loads(out)['messages']], bodies, 'bodies in HIST')


@test
@with_cleanup
def sub_waits_for_gateway():
    """--sub started before the gateway: retries with back-off, then follows; SIGTERM exits 0"""
    port = free_port()
    f = Follower(['--sub', 'late', '--since', '0', '127.0.0.1:%d' % port])
    f.wait_err(r'cannot connect to 127\.0\.0\.1:%d: Connection refused' % port)
    f.wait_err(r'reconnecting in')
    gw = harness.Gateway(args=['--tcp-addr', '127.0.0.1:%d' % port])
    sent = publish_n(gw, 'late', ['hello'])
    eq(f.messages(1), sent, 'the message published once the gateway is up')
    f.stop(signal.SIGTERM)


# --------------------------------------------------------------------------
# A hostile server: what it sends must not take gwsh's memory, time or the
# reader's terminal

HELLO = (b'{"type":"hello","protocol":"visavis","version":1,"server":"fake","session":"s1",'
         b'"heartbeat":%d}\n')
SUB_OK = b'{"type":"ok","op":"sub","channel":"x","since":0,"top":0}\n'


class FakeServer(harness.FakeServer):
    """harness.FakeServer, closed when the test ends (with_fakes)."""

    def __init__(self, handler):
        super().__init__(handler)
        _fakes.append(self)


_fakes = []


recv_line = harness.recv_line


def idle(conn, stop):
    """Keeps the connection open, reading and dropping, until the test ends."""
    while recv_line(conn, stop, bytearray()) is not None:
        pass


endless = harness.send_endless_line


class Proc:
    """gwsh as a child process, its raw stdout and stderr read by threads."""

    def __init__(self, args, limit_mb=None, stdin_data=None):
        pre = harness.address_limit(limit_mb) if limit_mb else []
        self.proc = subprocess.Popen(pre + [gwsh_bin()] + list(args),
                                     stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     env=harness.clean_env(), start_new_session=True)
        if stdin_data is not None:
            self.proc.stdin.write(stdin_data)
            self.proc.stdin.close()
        self.cond = threading.Condition()
        self.out, self.err = bytearray(), bytearray()
        self.eof = 0
        for stream, sink in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._read, args=(stream, sink), daemon=True).start()
        _procs.append(self)

    def _read(self, stream, sink):
        for chunk in iter(lambda: stream.read1(65536), b''):
            with self.cond:
                sink += chunk
                self.cond.notify_all()
        with self.cond:
            self.eof += 1
            self.cond.notify_all()

    def wait(self, pred, what, timeout):
        deadline = time.monotonic() + timeout
        with self.cond:
            while not pred():
                left = deadline - time.monotonic()
                if left <= 0 or self.eof == 2:
                    raise Failure('gwsh: timed out waiting for %s%s\nstdout: %r\nstderr: %r'
                                  % (what, ' (it exited, rc=%s)' % self.proc.poll()
                                     if self.eof == 2 else '', bytes(self.out[-600:]),
                                     bytes(self.err[-1500:])))
                self.cond.wait(left)

    def wait_err(self, pattern, timeout):
        rx = re.compile(pattern.encode())
        self.wait(lambda: rx.search(self.err), 'stderr matching %r' % pattern, timeout)

    def exit(self, timeout):
        """Waits for gwsh to exit by itself; its status."""
        self.wait(lambda: self.eof == 2, 'gwsh to exit', timeout)
        rc = self.proc.wait(5)
        self.check_clean()
        return rc

    def stop(self):
        """SIGTERM: gwsh must exit 0 promptly."""
        self.proc.send_signal(signal.SIGTERM)
        eq(self.exit(10), 0, 'exit status after SIGTERM (stderr %r)' % bytes(self.err))

    def check_clean(self):
        err = bytes(self.err).decode('utf-8', 'replace')
        check(not harness.SANITIZER_RE.search(err), 'sanitizer report from gwsh:\n' + err[-3000:])


_procs = []


def with_fakes(fn):
    def run():
        try:
            fn()
        finally:
            for p in _procs:
                if p.proc.poll() is None:
                    p.proc.kill()
                    p.proc.wait()
            del _procs[:]
            for f in _fakes:
                f.close()
            del _fakes[:]
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


def subscribed(heartbeat, then):
    """A handler: the hello, the ok of the SUB, then then(conn, stop)."""
    def handler(conn, stop):
        conn.sendall(HELLO % heartbeat)
        pending = bytearray()
        line = recv_line(conn, stop, pending)
        if line is None or not line.startswith(b'SUB x'):
            return
        conn.sendall(SUB_OK)
        then(conn, stop)
    return handler


# What a terminal must never be handed raw: C0 controls, DEL and the C1 controls.
CONTROLS = re.compile('[\x00-\x09\x0b-\x1f\x7f-\x9f]')


@test
@with_cleanup
def sub_json_escapes_c1():
    """--sub: a body's C1 controls (U+0080..U+009F) are printed as \\u escapes, never raw"""
    gw = shared.get()
    f = Follower(['--sub', 'gw-c1', addr(gw)])
    f.wait_err(r'^gwsh: following gw-c1 at .* after seq 0$')
    sent = publish_n(gw, 'gw-c1', ['x\u009b2J\u009b31mRED \u0085 \u009d0;title\u0007'])
    eq(f.messages(1), sent, 'the message printed')
    check(not CONTROLS.search(f.out[0]), 'a control character printed raw: %r' % f.out[0])
    check('\\u009b' in f.out[0], 'CSI escaped as \\u009b: %r' % f.out[0])
    f.stop()


@test
@with_fakes
def sub_json_safe_from_hostile_server():
    """--sub: raw ESC, BEL, NUL, C1, DEL and invalid UTF-8 in a server's push come out as valid JSON, escaped"""
    pushes = [
        # The gateway's layout (read the fast way), strings raw as no gateway sends them.
        b'{"type":"message","id":1,"channel":"x","seq":1,"sender":"ev\x1b[31mil",'
        b'"body":"a\x1b]0;t\x07\x00\xff\xc2\x9b\x7f z","ts":"2026-01-01T00:00:00.000Z","via":"tcp"}\n',
        # Another layout (read with jansson): valid JSON, its C1 and DEL raw.
        b'{"type":"message","seq":2,"id":2,"channel":"x","sender":"s\\u001b",'
        b'"body":"b\xc2\x85\xc2\x9b\x7f","ts":"2026-01-01T00:00:00.000Z","via":"tcp"}\n',
    ]

    def then(conn, stop):
        conn.sendall(b''.join(pushes))
        idle(conn, stop)
    srv = FakeServer(subscribed(30, then))
    p = Proc(['--sub', 'x', srv.addr])
    p.wait(lambda: p.out.count(b'\n') >= 2, 'two lines on stdout', TIMEOUT)
    p.stop()
    lines = bytes(p.out).split(b'\n')[:2]
    for raw in lines:
        try:
            text = raw.decode('utf-8')
        except UnicodeDecodeError as e:
            raise Failure('--sub printed invalid UTF-8 (%s): %r' % (e, raw))
        check(not CONTROLS.search(text), 'a control character printed raw: %r' % raw)
    got = [json.loads(raw) for raw in lines]
    eq(got[0]['sender'], 'ev\x1b[31mil', 'the first sender, escaped and read back')
    eq(got[0]['body'], 'a\x1b]0;t\x07\x00\ufffd\u009b\x7f z', 'the first body (invalid UTF-8 replaced)')
    eq(got[1]['sender'], 's\x1b', 'the second sender')
    eq(got[1]['body'], 'b\u0085\u009b\x7f', 'the second body')


@test
@with_fakes
def json_lines_safe_from_hostile_server():
    """--json: a server's lines holding raw C1 controls and DEL are printed as the same JSON, escaped"""
    def hostile(conn, stop):
        conn.sendall(b'{"type":"hello","protocol":"visavis","version":1,"server":"fa\xc2\x9b2Jke",'
                     b'"session":"s\x7f1","heartbeat":30}\n')
        pending = bytearray()
        line = recv_line(conn, stop, pending)
        if line is None or not line.startswith(b'PING'):
            return
        conn.sendall(b'{"type":"pong","token":"a\xc2\x9b[31m\x7f\xc2\x85"}\n')
        idle(conn, stop)
    srv = FakeServer(hostile)
    p = Proc(['--json', '-c', 'PING a', srv.addr])
    eq(p.exit(TIMEOUT), 0, 'exit status (stderr %r)' % bytes(p.err))
    lines = bytes(p.out).split(b'\n')
    eq(len(lines), 2, 'the reply, alone, and its line end: %r' % bytes(p.out))
    text = lines[0].decode('utf-8')
    check(not CONTROLS.search(text), 'a control character printed raw: %r' % text)
    eq(json.loads(text), {'type': 'pong', 'token': 'a\u009b[31m\x7f\u0085'}, 'the reply, read back')


@test
@with_fakes
def sub_partial_line_is_silence():
    """--sub: bytes that never make a line do not count as life: dead after three heartbeats"""
    def drip(conn, stop):
        while not stop.wait(0.3):
            conn.sendall(b' ')
    srv = FakeServer(subscribed(1, drip))
    p = Proc(['--sub', 'x', srv.addr])
    p.wait_err(r'following x at ', TIMEOUT)
    # Heartbeat 1 s: three periods and the 5 s margin.
    p.wait_err(r'nothing from .* for 8 s: taking the connection for dead', 15)
    p.stop()


@test
@with_fakes
def sub_huge_heartbeat():
    """--sub: a hello's heartbeat of 2^63-1 neither overflows nor ends the session early"""
    def late_push(conn, stop):
        if stop.wait(3):  # silence the wrapped limit took for a dead connection
            return
        conn.sendall(b'{"type":"message","id":1,"channel":"x","seq":1,"sender":"s","body":"late",'
                     b'"ts":"2026-01-01T00:00:00.000Z","via":"tcp"}\n')
        idle(conn, stop)
    srv = FakeServer(subscribed(9223372036854775807, late_push))
    p = Proc(['--sub', 'x', srv.addr])
    p.wait(lambda: b'\n' in p.out, 'the message pushed after 3 s', TIMEOUT)
    p.stop()
    err = bytes(p.err).decode('utf-8', 'replace')
    check('for dead' not in err and 'reconnecting' not in err, 'a reconnect: %r' % err)
    eq(json.loads(bytes(p.out).split(b'\n')[0])['body'], 'late', 'the message printed')


@test
@with_fakes
def piped_quit_has_a_deadline():
    """piped shell: after QUIT, a server that keeps talking gets 3 s in all, not 3 s per line"""
    def chatty(conn, stop):
        conn.sendall(HELLO % 30)
        pending = bytearray()
        while True:
            line = recv_line(conn, stop, pending)
            if line is None:
                return
            if line.startswith(b'PING'):
                conn.sendall(b'{"type":"pong","token":"a"}\n')
            if line == b'QUIT':
                break
        while not stop.wait(0.5):
            conn.sendall(b'{"type":"ping","time_us":1}\n')
    srv = FakeServer(chatty)
    p = Proc([srv.addr], stdin_data=b'PING a\n')
    p.wait(lambda: b'pong' in p.out, 'the pong', TIMEOUT)
    t0 = time.monotonic()
    rc = p.exit(10)
    check(time.monotonic() - t0 < 6, 'gwsh took %.1f s to leave' % (time.monotonic() - t0))
    eq(rc, 0, 'exit status (stderr %r)' % bytes(p.err))


def answering(answer):
    """A handler: the hello, then answer(line) sent for each command line until QUIT."""
    def handler(conn, stop):
        conn.sendall(HELLO % 30)
        pending = bytearray()
        while True:
            line = recv_line(conn, stop, pending)
            if line is None or line == b'QUIT':
                return
            reply = answer(line)
            if reply is None:
                return  # closes without a word
            conn.sendall(reply)
    return handler


@test
@with_fakes
def c_needs_its_own_ok():
    """-c: a PUB answered by a bye (the server stopping), by a pong or by another command's ok did not succeed: exit 1"""
    for name, reply in [('a bye', b'{"type":"bye","reason":"shutdown"}\n'),
                        ('a pong', b'{"type":"pong","token":"x"}\n'),
                        ('the ok of a SUB', SUB_OK),
                        ('a line of an unknown type', b'{"type":"surprise"}\n')]:
        srv = FakeServer(answering(lambda line, r=reply: r))
        rc, out, err = run_gwsh(['-c', 'PUB general hi', srv.addr])
        eq(rc, 1, 'exit status of a PUB answered by %s (stdout %r, stderr %r)' % (name, out, err))
        check('PUB general hi' in err, 'stderr names the command: %r' % err)
    ok_line = (b'{"type":"ok","op":"pub","message":{"id":1,"channel":"general","seq":1,'
               b'"sender":"anonymous","body":"hi","ts":"2026-01-01T00:00:00.000Z","via":"tcp"}}\n')
    srv = FakeServer(answering(lambda line: ok_line))
    rc, out, err = run_gwsh(['-c', 'PUB general hi', srv.addr])
    eq(rc, 0, 'exit status of a PUB answered by its ok (stderr %r)' % err)


@test
@with_fakes
def piped_commands_left_unanswered_fail():
    """piped shell: the server ending the session with commands unanswered, or an error reply, is exit 1, saying how many"""
    srv = FakeServer(answering(lambda line: b''))  # answers nothing, closes at QUIT
    rc, out, err = run_gwsh([srv.addr], stdin_data=b'PUB general hi\nPING\n')
    eq(rc, 1, 'exit status when the server closed with two commands unanswered (stderr %r)' % err)
    check('2 commands unanswered' in err, 'stderr says how many: %r' % err)
    gw = shared.get()
    # The gateway closes the session at the tenth error in a row: the PING after it is lost.
    rc, out, err = run_gwsh([addr(gw)], stdin_data=b'NOPE\n' * 12 + b'PING\n')
    eq(rc, 1, 'exit status after too_many_errors (stdout %r, stderr %r)' % (out[-300:], err))
    rc, out, err = run_gwsh([addr(gw)], stdin_data=b'PUB bad/name x\nPING\n')
    eq(rc, 1, 'exit status with an error reply (stdout %r)' % out)
    rc, out, err = run_gwsh([addr(gw)], stdin_data=b'PUB general fine\nPING\n')
    eq(rc, 0, 'exit status when every command succeeded (stderr %r)' % err)


@test
@with_fakes
def timestamps_are_escaped():
    """text mode: a ts holding an escape sequence (in the 24-byte form gwsh shortens) reaches the terminal escaped"""
    ts = '2026-11-24T\u001b[2J\u001b[H\u001b[1mQZ'
    push = ('{"type":"message","id":1,"channel":"x","seq":1,'
            '"sender":"a","body":"b","ts":"%s","via":"tcp"}\n' % ts).encode()
    srv = FakeServer(answering(lambda line: SUB_OK + push))
    rc, out, err = run_gwsh([srv.addr], stdin_data=b'SUB x\n')
    check('[x #1] a: b' in out, 'the message shown: %r' % out)
    check(not CONTROLS.search(out), 'a control character reached stdout raw: %r' % out)


@test
@with_fakes
def stdin_waits_for_a_server_that_does_not_read():
    """piped shell at a server that never reads: gwsh stops reading stdin once 1 MiB waits unsent, instead of taking the whole input into memory"""
    def no_reader(conn, stop):
        conn.sendall(HELLO % 30)
        stop.wait(30)
    srv = FakeServer(no_reader)
    p = subprocess.Popen(harness.address_limit(512) + [gwsh_bin(), srv.addr], stdin=subprocess.PIPE,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=harness.clean_env(),
                         start_new_session=True)
    fed = [0]

    def feed():
        line = b'PUB flood ' + b'x' * 1000 + b'\n'
        try:
            while fed[0] < 400 << 20:
                p.stdin.write(line * 64)
                fed[0] += len(line) * 64
        except (BrokenPipeError, ValueError, OSError):
            pass
    t = threading.Thread(target=feed, daemon=True)
    t.start()
    try:
        t0 = time.monotonic()
        while time.monotonic() - t0 < 3 and p.poll() is None:
            time.sleep(0.1)  # a bound shows as input not taken: there is no event to wait for
        check(p.poll() is None, 'gwsh ended (%s): %r' % (p.poll(), p.stderr.read1(2000)
                                                         if p.poll() is not None else b''))
        check(fed[0] < 32 << 20,
              'gwsh took %d MiB of input from a server that reads nothing' % (fed[0] >> 20))
    finally:
        p.kill()
        p.wait()
        try:
            p.stdin.close()
        except OSError:
            pass


@test
@with_fakes
def deadlines_hold_against_a_talking_server():
    """a server that talks without a pause: the greeting deadline (-t 2: exit 3) and the 3 s after QUIT still end gwsh, and so does SIGTERM"""
    def no_greeting(conn, stop):
        while not stop.is_set():
            conn.sendall(b'{"type":"ping","time_us":1}\n' * 100)
    srv = FakeServer(no_greeting)
    t0 = time.monotonic()
    rc, out, err = run_gwsh(['-t', '2', srv.addr], stdin_data=b'PING\n', timeout=15)
    eq(rc, 3, 'exit status without a greeting (stderr %r)' % err)
    check(time.monotonic() - t0 < 8, 'left %.1f s after a 2 s deadline' % (time.monotonic() - t0))

    def chatty_after_quit(conn, stop):
        conn.sendall(HELLO % 30)
        pending = bytearray()
        while recv_line(conn, stop, pending) not in (None, b'QUIT'):
            pass
        while not stop.is_set():
            conn.sendall(b'{"type":"ping","time_us":1}\n' * 100)
    srv = FakeServer(chatty_after_quit)
    t0 = time.monotonic()
    run_gwsh([srv.addr], stdin_data=b'', timeout=15)
    check(time.monotonic() - t0 < 8, 'left %.1f s after QUIT' % (time.monotonic() - t0))

    def flood(conn, stop):
        conn.sendall(HELLO % 30)
        while not stop.is_set():
            conn.sendall(b'{"type":"ping","time_us":1}\n' * 100)
    srv = FakeServer(flood)
    p = Proc([srv.addr], stdin_data=None)
    p.wait(lambda: b'connected' in p.out or b'' != p.out, 'the greeting', TIMEOUT)
    p.stop()


@test
@with_fakes
def closed_stdin_is_no_socket():
    """gwsh with its stdin closed (gwsh <&-) ends as at the end of the input, not reading its own socket"""
    srv = FakeServer(answering(lambda line: b'{"type":"pong","token":"x"}\n'))
    p = subprocess.run('exec %s %s <&-' % (gwsh_bin(), srv.addr), shell=True, capture_output=True,
                       timeout=15, env=harness.clean_env())
    eq(p.returncode, 0, 'exit status (stderr %r)' % p.stderr)


@test
def a_full_stdout_is_said():
    """stdout that cannot be written (/dev/full): -c and a piped stdin exit 1 saying so"""
    gw = shared.get()
    for args, data in [(['-c', 'PING'], None), ([], b'PING\n')]:
        with open('/dev/full', 'wb') as full:
            p = subprocess.run([gwsh_bin()] + args + [addr(gw)], input=data, stdout=full,
                               stderr=subprocess.PIPE, timeout=TIMEOUT, env=harness.clean_env())
        eq(p.returncode, 1, 'exit status of %s' % (args or 'a piped stdin'))
        check(b'writing to stdout' in p.stderr, 'stderr of %s: %r' % (args, p.stderr))


@test
@with_fakes
def a_first_line_that_is_no_greeting_is_named():
    """-c at a server whose first line is a heartbeat: exit 3, and the message says so, with no '(null)'"""
    def ping_first(conn, stop):
        conn.sendall(b'{"type":"ping","time_us":1}\n')
        idle(conn, stop)
    srv = FakeServer(ping_first)
    rc, out, err = run_gwsh(['-c', 'PING', srv.addr])
    eq(rc, 3, 'exit status (stderr %r)' % err)
    check('(null)' not in err and 'no greeting' in err, 'the message: %r' % err)


@test
@with_fakes
def piped_shell_waits_for_the_greeting():
    """piped shell at something that does not greet (an HTTP port, say): nothing is sent, and it exits 3 saying so, whether the server stays silent or answers and closes"""
    got = []

    def silent(conn, stop):
        conn.settimeout(0.2)
        data = bytearray()
        while not stop.is_set():
            try:
                chunk = conn.recv(4096)
            except socket.timeout:
                continue
            if not chunk:
                break
            data += chunk
        got.append(bytes(data))

    def answers_and_closes(conn, stop):
        conn.settimeout(0.3)
        try:
            got.append(conn.recv(100))
        except socket.timeout:
            got.append(b'')
        conn.sendall(b'HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n')

    for handler, said in ((silent, 'no greeting within 2000 ms'),
                          (answers_and_closes, 'the server closed the connection before its greeting')):
        srv = FakeServer(handler)
        for stdin_data in (b'PUB alerts disk full\n', b''):
            del got[:]
            p = Proc(['-t', '2', srv.addr], stdin_data=stdin_data)
            eq(p.exit(TIMEOUT), 3, 'exit status (stdin %r, stderr %r)' % (stdin_data, bytes(p.err)))
            check(('cannot open a session at %s: %s' % (srv.addr, said)).encode() in p.err,
                  'it says why: %r' % bytes(p.err))
            wait_for(lambda: got, 'the server saw the connection end')
            eq(got, [b''], 'what the server was sent before any greeting')


@test
def c_help_is_one_reply():
    """-c HELP: "ok help" and the usage lines, and the commands after it get their own replies (exit 0)"""
    gw = shared.get()
    rc, out, err = run_gwsh(['-c', 'HELP', '-c', 'PING x', '-c', 'PUB gw-help after', addr(gw)])
    eq(rc, 0, 'exit status (stderr %r, stdout %r)' % (err, out))
    lines = out.splitlines()
    eq(lines[0], 'ok help', 'the first line')
    check(any(x.startswith('  PUB <channel> <text>') for x in lines), 'the usage lines: %r' % out)
    check(any(x.startswith('pong x ') for x in lines), 'the PING after it answered: %r' % out)
    eq(lines[-1], 'ok pub gw-help #1', 'the PUB after it answered')
    rc, out, err = run_gwsh([addr(gw)], stdin_data=b'help\nPING y\n')
    eq(rc, 0, 'piped: exit status (stderr %r)' % err)
    check('\nok help\n' in out and '\npong y ' in out, 'piped: %r' % out)


@test
def c_slash_quit_says_what_it_skips():
    """-c /quit: sends QUIT and prints the bye; each command after it is said not sent, exit 1"""
    gw = shared.get()
    rc, out, err = run_gwsh(['-c', 'PING before', '-c', '/quit', addr(gw)])
    eq(rc, 0, 'exit status of a last /quit (stderr %r)' % err)
    lines = out.splitlines()
    eq(len(lines), 2, 'output lines: %r' % out)
    check(lines[0].startswith('pong before '), 'the PING before it answered: %r' % out)
    eq(lines[1], 'bye (quit)', 'what /quit prints')
    rc, out, err = run_gwsh(['-c', '/quit', '-c', 'PUB gw-cquit must-not-vanish', '-c', '/ping',
                             addr(gw)])
    eq(rc, 1, 'exit status with commands after /quit (stdout %r, stderr %r)' % (out, err))
    eq(out, 'bye (quit)\n', 'stdout')
    check("'PUB gw-cquit must-not-vanish' not sent" in err and "'/ping' not sent" in err,
          'every command after /quit is said not sent: %r' % err)
    eq(gw.read('gw-cquit')['messages'], [], 'messages stored on gw-cquit')


@test
@with_fakes
def endless_line_before_greeting():
    """-c and --sub: a first line with no end is refused after 64 KiB, not buffered to 1 GiB"""
    srv = FakeServer(endless)
    p = Proc(['-c', 'PING x', srv.addr], limit_mb=256)
    eq(p.exit(TIMEOUT), 3, 'exit status of -c (stderr %r)' % bytes(p.err))
    check(b'longer than 65536 bytes' in p.err, 'the reason: %r' % bytes(p.err))
    p = Proc(['--sub', 'x', srv.addr], limit_mb=256)
    p.wait_err(r'sent a line longer than 65536 bytes', TIMEOUT)
    p.wait_err(r'reconnecting in', TIMEOUT)
    p.stop()


# --------------------------------------------------------------------------
# The shell on a terminal

class Pty:
    """gwsh under a pseudo-terminal; everything it writes is kept in self.data."""

    def __init__(self, args, rows=40, cols=200):
        master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack('HHHH', rows, cols, 0, 0))
        env = harness.clean_env({'LC_ALL': 'C.UTF-8', 'TERM': 'xterm'})
        self.proc = subprocess.Popen([gwsh_bin()] + list(args), stdin=slave, stdout=slave,
                                     stderr=slave, env=env, start_new_session=True, close_fds=True)
        os.close(slave)
        self.fd = master
        self.data = b''
        _ptys.append(self)

    def type(self, s):
        os.write(self.fd, s.encode('utf-8') if isinstance(s, str) else s)

    def _fill(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        r, _, _ = select.select([self.fd], [], [], left)
        if not r:
            return False
        try:
            chunk = os.read(self.fd, 65536)
        except OSError:  # EIO: the child closed the terminal
            chunk = b''
        if not chunk:
            time.sleep(0.01)
            return self.proc.poll() is None
        self.data += chunk
        return True

    def expect(self, pattern, start=0, timeout=None):
        """The first match of the regex (bytes) at or after start; waits for it."""
        rx = re.compile(pattern if isinstance(pattern, bytes) else pattern.encode('utf-8'))
        deadline = time.monotonic() + (timeout or TIMEOUT)
        while True:
            m = rx.search(self.data, start)
            if m:
                return m
            if not self._fill(deadline):
                m = rx.search(self.data, start)
                if m:
                    return m
                raise Failure('terminal: no %r within %.0fs after offset %d; screen bytes:\n%r'
                              % (pattern, timeout or TIMEOUT, start, self.data[-3000:]))

    def wait_exit(self, timeout=10):
        deadline = time.monotonic() + timeout
        while self.proc.poll() is None and time.monotonic() < deadline:
            self._fill(min(deadline, time.monotonic() + 0.1))
        check(self.proc.poll() is not None, 'gwsh did not exit; screen: %r' % self.data[-2000:])
        while self._fill(time.monotonic() + 0.05):
            pass
        text = self.data.decode('utf-8', 'replace')
        check(not harness.SANITIZER_RE.search(text), 'sanitizer report from gwsh:\n' + text[-3000:])
        return self.proc.returncode

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.fd)


_ptys = []


def with_ptys(fn):
    def run():
        try:
            fn()
        finally:
            for p in _ptys:
                p.close()
            del _ptys[:]
    run.__doc__ = fn.__doc__
    run.__name__ = fn.__name__
    return run


PROMPT = rb'gwsh> '


@test
@with_ptys
def tty_push_redraws_partial_line():
    """shell on a terminal: a push while a line is half typed is printed, then the line is redrawn"""
    gw = shared.get()
    t = Pty([addr(gw)])
    t.expect(rb'connected to 127\.0\.0\.1:\d+ \(visavis ')
    t.expect(PROMPT)
    t.type('SUB gw-tty\r')
    m = t.expect(rb'ok sub gw-tty since 0 \(top 0\)')
    t.type('PUB gw-tty hel')
    m = t.expect(PROMPT + rb'PUB gw-tty hel', m.end())
    gw.publish('gw-tty', 'from rest', sender='ana')
    # The typed line is cleared (CR, erase), the push printed, the line drawn again.
    push = t.expect(rb'\r\x1b\[[JK]\[gw-tty #1\] ana: from rest  \(rest, \d\d:\d\d:\d\d\.\d{3}\)\r?\n',
                    m.end())
    t.expect(PROMPT + rb'PUB gw-tty hel', push.end())
    # Finish the line: its reply and its own push are printed.
    t.type('lo\r')
    t.expect(rb'ok pub gw-tty #2', push.end())
    t.expect(rb'\[gw-tty #2\] anonymous: hello  \(tcp, ', push.end())
    eq([x['body'] for x in gw.read('gw-tty')['messages']], ['from rest', 'hello'], 'stored bodies')
    # Ctrl-D on the empty line ends the session.
    mark = len(t.data)
    t.type(b'\x04')
    t.expect(rb'bye \(quit\)', mark)
    eq(t.wait_exit(), 0, 'exit status after Ctrl-D')


@test
@with_ptys
def tty_ping_and_editing():
    """shell on a terminal: /ping prints a round trip in us; Backspace, Ctrl-U, Ctrl-C, arrows, UTF-8"""
    gw = shared.get()
    t = Pty([addr(gw)])
    t.expect(PROMPT)
    t.type('/ping\r')
    m = t.expect(rb'pong (\d+) us')
    check(int(m.group(1)) < 5000000, 'round trip %s us' % m.group(1))
    # Ctrl-U erases, Backspace deletes one character (a two-byte one), Left/Right move.
    t.type('garbage\x15PING abé\x7fd')
    t.type('\x1b[D\x1b[Dx\x1b[C\x1b[C\r')
    t.expect(rb'pong axbd \(server time ', m.end())
    # Ctrl-C drops the line; Home/End and Ctrl-A/E.
    t.type('PUB gw-edit nope\x03')
    t.type('gw-edit caf\xe9 \u2615\x01PUB \x05!\r')
    m = t.expect(rb'ok pub gw-edit #1', m.end())
    eq([x['body'] for x in gw.read('gw-edit')['messages']], ['caf\xe9 \u2615!'], 'stored body')
    # A pasted CRLF ends one line, not two.
    t.type('PING p1\r\nPING p2\r\n')
    m = t.expect(rb'pong p2 ', t.expect(rb'pong p1 ', m.end()).end())
    # Up recalls the previous line.
    t.type('\x1b[A\x1b[A\x1b[A\r')
    t.expect(rb'ok pub gw-edit #2', m.end())
    t.type('/quit\r')
    eq(t.wait_exit(), 0, 'exit status after /quit')


@test
@with_ptys
def tty_server_close_reported():
    """shell on a terminal: the gateway stopping is reported, the terminal restored, exit 1"""
    gw = harness.Gateway()
    t = Pty([addr(gw)])
    t.expect(PROMPT)
    t.type('HIST x')
    mark = len(t.data)
    gw.stop()
    t.expect(rb'bye \(shutdown\)', mark)
    t.expect(rb'the server closed the connection', mark)
    eq(t.wait_exit(), 1, 'exit status after the server closed')


def paste(t, data, timeout):
    """Writes data to the terminal as a paste does, in 4 KiB pieces, while
    reading what gwsh draws; what it draws meanwhile is not kept (the line
    drawn again and again)."""
    done = []

    def write():
        view = memoryview(data)
        while view:
            view = view[os.write(t.fd, view[:4096]):]
        done.append(True)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    deadline = time.monotonic() + timeout
    while not done:
        check(time.monotonic() < deadline and t.proc.poll() is None,
              'the paste of %d bytes did not go in within %.0fs (gwsh rc %s)'
              % (len(data), timeout, t.proc.poll()))
        r, _, _ = select.select([t.fd], [], [], 0.1)
        if r:
            os.read(t.fd, 1 << 20)
    writer.join()


@test
@with_ptys
def tty_overlong_line_not_sent():
    """shell on a terminal: a line over the editor's 1 MiB is refused at Enter with its size, never sent cut"""
    # Limits above the editor's: a cut line would be stored, not refused by the gateway.
    gw = harness.Gateway(args=['--max-line', '4194304', '--max-body', '4194304'])
    t = Pty([addr(gw)])
    t.expect(PROMPT)
    line = b'PUB gw-long ' + b'y' * (1024 * 1024 + 4096)
    paste(t, line, 120)
    mark = len(t.data)
    t.type('\r')
    m = t.expect(rb'gwsh: line longer than 1 MiB \(%d bytes\) not sent\r?\n' % len(line), mark,
                 timeout=60)
    # Nor is it kept for Up: Up on the fresh line has nothing to recall, Enter sends nothing.
    t.type('\x1b[A\r')
    t.type('PUB gw-long short\r')
    t.expect(rb'ok pub gw-long #1', m.end())
    eq([x['body'] for x in gw.read('gw-long')['messages']], ['short'], 'stored bodies')
    # After the refusal the editor takes lines as before, Up included.
    t.type('\x1b[A\r')
    t.expect(rb'ok pub gw-long #2', m.end())
    t.type('/quit\r')
    eq(t.wait_exit(), 0, 'exit status after /quit')
    gw.stop()


harness.main()
