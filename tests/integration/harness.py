"""Integration-test harness for the visavis gateway: TAP output, the real
binary as a child process, and HTTP helpers.

Standard library only (Python >= 3.9). Every test file does

    import harness
    from harness import test, check, eq

    @test
    def something():
        '''what the TAP line says'''
        gw = harness.Gateway()
        ...

    harness.main()

and is run as `python3 test_x.py /path/to/gateway` (or with VISAVIS_BIN set).
It prints TAP on stdout: one `ok N - name` / `not ok N - name` per test, the
diagnostics as `# ...` lines, the plan `1..N` last, and exits 1 if a test
failed. An optional second argument (or VISAVIS_TEST_FILTER) runs only the
tests whose name contains it.

The gateway is started on port 0 with its database in a fresh temporary
directory (with VISAVIS_TEST_BACKEND=postgres: a fresh database on a
PostgreSQL server the test process starts on first use and shares, see
pgserver.py; where no server can run, such tests skip with the reason), and
is ready when it prints `READY http=<port>[ tcp=<port>[ udp=<port>]]` on
stdout; there is a deadline, never a sleep. A gateway a test starts is stopped
when the test ends (SIGTERM, then SIGKILL after STOP_GRACE seconds), and the
test fails if it died from a signal it was not sent on purpose, exited
non-zero, or left a sanitizer report on stderr.
"""

import functools
import http.client
import json
import os
import queue
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

# Generous: the suite also runs under AddressSanitizer, 2-3x slower.
START_DEADLINE = float(os.environ.get('VISAVIS_TEST_START_DEADLINE', '20'))
STOP_GRACE = 10.0
HTTP_TIMEOUT = float(os.environ.get('VISAVIS_TEST_HTTP_TIMEOUT', '30'))

READY_RE = re.compile(r'^READY http=(\d+)(?: tcp=(\d+))?(?: udp=(\d+))?\s*$')
TS_RE = re.compile(r'^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$')
SANITIZER_RE = re.compile(r'Sanitizer|runtime error')

MESSAGE_KEYS = ['id', 'channel', 'seq', 'sender', 'body', 'ts', 'via']

# The store a Gateway() gets when no db is given: 'sqlite' (a file) or 'postgres'.
BACKEND = os.environ.get('VISAVIS_TEST_BACKEND', 'sqlite')


# --------------------------------------------------------------------------
# Assertions

class Failure(AssertionError):
    """A test assertion failed; the message is the diagnostic."""


class Skip(Exception):
    """The test cannot run here (a missing privilege, tool or file system)."""


def skip(reason):
    """End the running test as skipped: TAP "ok N - name # SKIP reason"."""
    raise Skip(reason)


def check(cond, msg):
    if not cond:
        raise Failure(msg)


def eq(got, want, what):
    if got != want:
        raise Failure('%s: got %s, want %s' % (what, _short(got), _short(want)))


def _short(v, limit=600):
    s = repr(v)
    return s if len(s) <= limit else s[:limit] + '...(%d chars)' % len(s)


NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'node')


def node_cases(suite, module):
    """(node, path of tests/node/<suite>/cases.js), or the test is skipped:
    node, or the suite's npm module, is not installed (make test installs both)."""
    node = shutil.which('node')
    if not node:
        skip('node is not installed (Debian nodejs; make test installs it)')
    if not os.path.isdir(os.path.join(NODE_DIR, suite, 'node_modules', module)):
        skip('%s is not installed: npm ci in tests/node/%s (make test does)' % (module, suite))
    return node, os.path.join(NODE_DIR, suite, 'cases.js')


def check_node_tap(what, returncode, out, err, at_least):
    """The verdict on a Node suite's TAP: it exited 0, no check failed, and
    at least at_least ran (a suite cut short must not pass)."""
    lines = [l for l in out.splitlines() if re.match(r'(not )?ok \d+ - ', l)]
    bad = [l for l in lines if l.startswith('not ok')]
    print('# %d cases of %s' % (len(lines), what))
    check(returncode == 0 and not bad and len(lines) >= at_least,
          'node cases.js exited %d, %d cases, failed: %s\n%s\n%s'
          % (returncode, len(lines), bad, out[-3000:], err[-2000:]))


def wait_for(pred, what, timeout=10.0, interval=0.02):
    """Poll pred() until it returns a true value or the deadline passes.

    Only for conditions that have no readiness signal of their own (a log
    line being written, for instance)."""
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v:
            return v
        if time.monotonic() >= deadline:
            raise Failure('timed out after %.1fs waiting for %s' % (timeout, what))
        time.sleep(interval)


# --------------------------------------------------------------------------
# The binary

def gateway_bin():
    path = sys.argv[1] if len(sys.argv) > 1 else os.environ.get('VISAVIS_BIN')
    if not path:
        print('Bail out! no gateway binary: pass it as argv[1] or set VISAVIS_BIN')
        sys.exit(1)
    path = os.path.abspath(path)
    if not os.access(path, os.X_OK):
        print('Bail out! gateway binary %s is missing or not executable' % path)
        sys.exit(1)
    return path


def clean_env(extra=None):
    """The environment for the gateway: ours without any VISAVIS_* setting,
    so that a developer's shell cannot change what a test means."""
    env = {k: v for k, v in os.environ.items() if not k.startswith('VISAVIS_')}
    env.update(extra or {})
    return env


def run_binary(args, env=None, timeout=None, cwd=None):
    """Run the gateway to completion (for --help, bad flags, refusals).

    Returns (returncode, stdout_text, stderr_text). If it is still running at
    the deadline it is killed and the test fails: it must have refused."""
    timeout = START_DEADLINE if timeout is None else timeout
    p = subprocess.Popen([gateway_bin()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=clean_env(env), start_new_session=True, cwd=cwd)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure('gateway %s still running after %.0fs (killed); stdout=%s stderr=%s'
                      % (' '.join(args), timeout, _short(out.decode('utf-8', 'replace')),
                         _short(err.decode('utf-8', 'replace'))))
    out = out.decode('utf-8', 'replace')
    err = err.decode('utf-8', 'replace')
    check(not SANITIZER_RE.search(err), 'sanitizer report on stderr:\n' + err[-3000:])
    return p.returncode, out, err


# Gateways started by the running test; the runner stops them afterwards.
_owned = []
# Every gateway process started and not yet reaped: killed if this test
# process is stopped early (a meson timeout sends SIGTERM, Ctrl-C SIGINT), so
# no gateway outlives the test that started it.
_procs = set()


def _kill_leftovers(*_):
    for p in list(_procs):
        if p.poll() is None:
            p.kill()


def _on_stop_signal(signum, frame):
    _kill_leftovers()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


import atexit  # noqa: E402 - next to the registry it serves
atexit.register(_kill_leftovers)


def free_port():
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


def register_child(proc):
    """A process of the test's (a database server) that must not outlive it."""
    _procs.add(proc)


_pg = None


def pg_server():
    """The PostgreSQL server this test process shares, started on first use
    (pgserver.Server) and stopped at exit. Skips the running test where no
    server can run here."""
    global _pg
    import pgserver
    if _pg is None:
        why = pgserver.installed()
        if why:
            skip(why)
        try:
            _pg = pgserver.Server(on_child=register_child)
        except RuntimeError as e:
            raise Failure('cannot start a PostgreSQL server: %s' % e)
        atexit.register(_pg.close)
    if not _pg.running:
        _pg.start()  # a test stopped it and failed before it started it again
    return _pg


def is_postgres(db):
    return db.startswith('postgresql://') or db.startswith('postgres://')


def db_sql(db, sql):
    """Runs sql on a gateway's database behind its back (its db: a SQLite
    file or a PostgreSQL URL of pg_server()); returns the rows as tuples of
    strings."""
    if is_postgres(db):
        return [tuple(line.split('|')) for line in pg_server().sql(sql, db.rsplit('/', 1)[1])]
    import sqlite3
    conn = sqlite3.connect(db, timeout=10)
    try:
        with conn:
            return [tuple(str(v) for v in row) for row in conn.execute(sql).fetchall()]
    finally:
        conn.close()


def schema_version(db):
    """The schema version the gateway recorded in db (SQLite's user_version,
    PostgreSQL's visavis_schema table)."""
    if is_postgres(db):
        return int(db_sql(db, 'SELECT version FROM visavis_schema')[0][0])
    return int(db_sql(db, 'PRAGMA user_version')[0][0])


def set_schema_version(db, version):
    if is_postgres(db):
        db_sql(db, 'UPDATE visavis_schema SET version = %d' % version)
    else:
        db_sql(db, 'PRAGMA user_version = %d' % version)
for _sig in (signal.SIGTERM, signal.SIGINT):
    signal.signal(_sig, _on_stop_signal)
_persistent = []


class Gateway:
    """The real gateway as a child process.

    Gateway()                        fresh database in a new temporary directory
    Gateway(db=path)                 that database (restart on the same store; a
                                     PostgreSQL URL: a second gateway on it)
    Gateway(args=[...], env={...})   extra flags (after the standard ones) / environment
    Gateway(base_args=False, ...)    no standard flags at all (environment tests)
    """

    _starts = 0

    def __init__(self, db=None, args=(), env=None, base_args=True, tmpdir=None,
                 start=True, persistent=False, log_level='info', prefix=()):
        self.tmpdir = tmpdir or (os.path.dirname(os.path.abspath(db))
                                 if db and not is_postgres(db)
                                 else tempfile.mkdtemp(prefix='visavis-it-'))
        if db:
            self.db = db
        elif BACKEND == 'postgres':
            self.db = pg_server().new_database()
        else:
            self.db = os.path.join(self.tmpdir, 't.db')
        self.args = list(args)
        self.prefix = list(prefix)  # e.g. ['prlimit', '--as=...', '--']: runs the gateway under it
        self.env = dict(env or {})
        self.base_args = base_args
        self.log_level = log_level
        self.proc = None
        self.http_port = None
        self.tcp_port = None
        self.udp_port = None
        self.killed_on_purpose = False
        self.stopped = False
        self.stop_seconds = None
        self.stderr_path = None
        self.stdout_lines = []
        self._ready = threading.Condition()
        self._reader = None
        self._stdout_eof = False
        self.persistent = persistent
        (_persistent if persistent else _owned).append(self)
        if start:
            self.start()

    # -- life cycle --------------------------------------------------------

    def argv(self):
        argv = self.prefix + [gateway_bin()]
        if self.base_args:
            argv += ['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                     '--udp-addr', '127.0.0.1:0', '--db', self.db, '--log-level', self.log_level]
        return argv + self.args

    @property
    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def start(self):
        check(not self.running, 'start() on a gateway that is already running')
        Gateway._starts += 1
        self.stderr_path = os.path.join(self.tmpdir, 'stderr.%d.log' % Gateway._starts)
        self.stdout_lines = []
        self._stdout_eof = False
        self.killed_on_purpose = False
        self.stopped = False
        self.http_port = self.tcp_port = self.udp_port = None
        with open(self.stderr_path, 'wb') as errf:
            self.proc = subprocess.Popen(self.argv(), stdin=subprocess.DEVNULL,
                                         stdout=subprocess.PIPE, stderr=errf,
                                         env=clean_env(self.env), start_new_session=True)
        _procs.add(self.proc)
        self._reader = threading.Thread(target=self._read_stdout, daemon=True)
        self._reader.start()
        deadline = time.monotonic() + START_DEADLINE
        with self._ready:
            while self.http_port is None:
                if self._stdout_eof:
                    rc = self.proc.wait(timeout=STOP_GRACE)
                    raise Failure('gateway exited (rc=%s) before printing READY; stdout=%s\n'
                                  'stderr:\n%s' % (rc, _short(self.stdout_lines), self.stderr_tail()))
                left = deadline - time.monotonic()
                if left <= 0:
                    self.proc.kill()
                    self.proc.wait()
                    self.killed_on_purpose = True
                    raise Failure('no READY line on stdout within %.0fs (is stdout flushed?); '
                                  'stdout=%s\nstderr:\n%s'
                                  % (START_DEADLINE, _short(self.stdout_lines), self.stderr_tail()))
                self._ready.wait(left)
        return self

    def _read_stdout(self):
        for raw in iter(self.proc.stdout.readline, b''):
            line = raw.decode('utf-8', 'replace').rstrip('\r\n')
            with self._ready:
                self.stdout_lines.append(line)
                m = READY_RE.match(line)
                if m and self.http_port is None:
                    self.http_port = int(m.group(1))
                    self.tcp_port = int(m.group(2)) if m.group(2) else None
                    self.udp_port = int(m.group(3)) if m.group(3) else None
                    self._ready.notify_all()
        with self._ready:
            self._stdout_eof = True
            self._ready.notify_all()

    def _reap(self):
        if self._reader is not None:
            self._reader.join(timeout=5)
        if self.proc.stdout:
            self.proc.stdout.close()

    def stop(self, sig=signal.SIGTERM, grace=STOP_GRACE):
        """Stop with sig (SIGTERM); the gateway must exit 0 within grace
        seconds, not from a signal, with no sanitizer report. Returns the
        exit code; raises Failure listing every problem otherwise."""
        check(self.proc is not None, 'stop() on a gateway that never started')
        problems = []
        self.stopped = True
        if self.proc.poll() is None:
            t0 = time.monotonic()
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                problems.append('did not exit within %.0fs of %s; SIGKILLed'
                                % (grace, signal.Signals(sig).name))
            self.stop_seconds = time.monotonic() - t0
        else:
            problems.append('had already exited (rc=%s) before it was told to stop'
                            % self.proc.returncode)
        rc = self.proc.returncode
        if rc < 0 and not problems:
            problems.append('died from signal %s' % signal.Signals(-rc).name)
        elif rc > 0:
            problems.append('exited with status %d' % rc)
        self._reap()
        problems += self.sanitizer_problems()
        if problems:
            raise Failure('gateway ' + '; '.join(problems) + '\nstderr:\n' + self.stderr_tail())
        return rc

    def kill9(self):
        """Crash the gateway on purpose (SIGKILL). Not a failure by itself."""
        check(self.running, 'kill9() on a gateway that is not running (rc=%s)'
              % (self.proc.returncode if self.proc else None))
        self.killed_on_purpose = True
        self.proc.kill()
        self.proc.wait()
        self._reap()
        problems = self.sanitizer_problems()
        check(not problems, '; '.join(problems))

    def restart(self):
        """Start again on the same database (after stop() or kill9())."""
        return self.start()

    def died_unexpectedly(self):
        """A description if the process is gone without being told to go."""
        if self.proc is None or self.killed_on_purpose or self.proc.poll() is None:
            return None
        return 'gateway process exited unexpectedly (rc=%s)\nstderr:\n%s' % (
            self.proc.returncode, self.stderr_tail())

    # -- stderr ------------------------------------------------------------

    def stderr_text(self):
        if not self.stderr_path or not os.path.exists(self.stderr_path):
            return ''
        with open(self.stderr_path, 'rb') as f:
            return f.read().decode('utf-8', 'replace')

    def stderr_tail(self, n=25):
        lines = self.stderr_text().splitlines()
        return '\n'.join(lines[-n:]) if lines else '(empty)'

    def sanitizer_problems(self):
        text = self.stderr_text()
        m = SANITIZER_RE.search(text)
        if not m:
            return []
        start = text.rfind('\n', 0, m.start()) + 1
        return ['sanitizer report on stderr:\n' + text[start:start + 4000]]

    def wait_stderr(self, pattern, timeout=10.0):
        """Wait until a stderr line matches the regex; return the match."""
        rx = re.compile(pattern, re.M)
        return wait_for(lambda: rx.search(self.stderr_text()),
                        'a stderr line matching %r; stderr:\n%s' % (pattern, self.stderr_tail()),
                        timeout=timeout)

    # -- HTTP --------------------------------------------------------------

    def connect(self, timeout=HTTP_TIMEOUT):
        check(self.http_port, 'gateway has no HTTP port (not started?)')
        return http.client.HTTPConnection('127.0.0.1', self.http_port, timeout=timeout)

    def request(self, method, path, body=None, headers=None, conn=None, obj=None,
                content_type='application/json'):
        """One request; on conn (kept open) or on a fresh connection.

        obj: a Python value sent as JSON (UTF-8, not ASCII-escaped) with
        Content-Type content_type (None: no Content-Type header at all).
        body: raw bytes instead. Returns a Resp."""
        hdrs = dict(headers or {})
        if obj is not None:
            body = json.dumps(obj, ensure_ascii=False).encode('utf-8')
        if body is not None and content_type is not None:
            if not any(k.lower() == 'content-type' for k in hdrs):
                hdrs['Content-Type'] = content_type
        own = conn is None
        c = self.connect() if own else conn
        try:
            c.request(method, path, body=body, headers=hdrs)
            r = c.getresponse()
            raw = r.read()
            return Resp(r.status, r.reason, r.getheaders(), raw, method, path)
        finally:
            if own:
                c.close()

    def get(self, path, conn=None, **kw):
        return self.request('GET', path, conn=conn, **kw)

    def head(self, path, conn=None, **kw):
        return self.request('HEAD', path, conn=conn, **kw)

    def post(self, channel, obj, conn=None, **kw):
        return self.request('POST', '/v1/channels/%s/messages' % channel, obj=obj, conn=conn, **kw)

    def publish(self, channel, body, sender=None, conn=None):
        """POST a message that must be accepted; returns the message object."""
        obj = {'body': body}
        if sender is not None:
            obj['sender'] = sender
        r = self.post(channel, obj, conn=conn)
        eq(r.status, 201, 'POST %s status (%s)' % (channel, r))
        check(isinstance(r.json, dict), 'POST answer is not a JSON object: %s' % r)
        return r.json

    def read(self, channel, since=None, limit=None, conn=None):
        """GET a channel page that must succeed; returns the parsed envelope."""
        q = []
        if since is not None:
            q.append('since=%s' % since)
        if limit is not None:
            q.append('limit=%s' % limit)
        path = '/v1/channels/%s/messages' % channel + ('?' + '&'.join(q) if q else '')
        r = self.get(path, conn=conn)
        eq(r.status, 200, 'GET %s status (%s)' % (path, r))
        check(isinstance(r.json, dict), 'GET %s: not a JSON object: %s' % (path, r))
        return r.json

    def read_all(self, channel, page=1000):
        """Every message of a channel, paging with since/limit."""
        out, since = [], 0
        while True:
            env = self.read(channel, since=since, limit=page)
            msgs = env['messages']
            out += msgs
            if not msgs:
                eq(env['next_since'], since, 'next_since of an empty page')
                return out
            eq(env['next_since'], msgs[-1]['seq'], 'next_since = seq of the last message')
            since = env['next_since']

    def channels(self):
        """Every channel: the pages of GET /v1/channels, following next_after."""
        out, path = [], '/v1/channels'
        for _ in range(10000):
            r = self.get(path)
            eq(r.status, 200, 'GET %s status (%s)' % (path, r))
            check(isinstance(r.json, dict) and isinstance(r.json.get('channels'), list),
                  'GET %s: not {"channels":[...]}: %s' % (path, r))
            out += r.json['channels']
            if 'next_after' not in r.json:
                return out
            path = '/v1/channels?after=' + r.json['next_after']
        raise Failure('GET /v1/channels: next_after never ended')

    def raw(self, timeout=HTTP_TIMEOUT):
        check(self.http_port, 'gateway has no HTTP port (not started?)')
        return RawConn('127.0.0.1', self.http_port, timeout)


class Resp:
    """A response: status, reason, headers (list of pairs), raw body bytes,
    json (parsed, or None when the body is not JSON; json_error says why)."""

    def __init__(self, status, reason, headers, raw, method='', path=''):
        self.status = status
        self.reason = reason
        self.headers = list(headers)
        self.raw = raw
        self.method = method
        self.path = path
        self.json = None
        self.json_error = None
        if raw:
            try:
                self.json = json.loads(raw.decode('utf-8'))
            except (UnicodeDecodeError, ValueError) as e:
                self.json_error = str(e)
        else:
            self.json_error = 'empty body'

    def header(self, name, default=None):
        vals = [v for k, v in self.headers if k.lower() == name.lower()]
        return ', '.join(vals) if vals else default

    def header_count(self, name):
        return sum(1 for k, _ in self.headers if k.lower() == name.lower())

    def keys(self):
        """Top-level object keys in the order they appear on the wire."""
        return [k for k, _ in json.loads(self.raw.decode('utf-8'), object_pairs_hook=list)]

    def __repr__(self):
        return '<%s %s -> %s %s %s %s>' % (self.method, self.path, self.status, self.reason,
                                          dict(self.headers), _short(self.raw, 400))


def key_order(raw):
    """The raw JSON with every object as a list of (key, value) pairs."""
    if isinstance(raw, bytes):
        raw = raw.decode('utf-8')
    return json.loads(raw, object_pairs_hook=list)


class RawConn:
    """A plain socket for hand-made requests (bad lengths, chunked bodies,
    headers without a body)."""

    def __init__(self, host, port, timeout=HTTP_TIMEOUT):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.buf = b''

    def send(self, data):
        self.sock.sendall(data)

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _fill(self):
        """Read more; False on EOF or reset."""
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return False
        if not data:
            return False
        self.buf += data
        return True

    def closed_by_peer(self, timeout=HTTP_TIMEOUT):
        """True if the server closes (EOF/reset) before sending anything more."""
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            return True
        if data:
            self.buf += data
            return False
        return True

    def read_response(self, head=False, skip_100=True):
        """Read one response; None if the peer closed before a status line.
        Socket timeout raises."""
        while True:
            while b'\r\n\r\n' not in self.buf:
                if not self._fill():
                    if self.buf:
                        raise Failure('connection closed inside a response head: %r' % self.buf[:300])
                    return None
            head_bytes, self.buf = self.buf.split(b'\r\n\r\n', 1)
            lines = head_bytes.decode('iso-8859-1').split('\r\n')
            parts = lines[0].split(' ', 2)
            check(len(parts) >= 2 and parts[0].startswith('HTTP/'), 'bad status line %r' % lines[0])
            status = int(parts[1])
            reason = parts[2] if len(parts) > 2 else ''
            headers = []
            for ln in lines[1:]:
                k, _, v = ln.partition(':')
                headers.append((k.strip(), v.strip()))
            if status == 100 and skip_100:
                continue
            break
        r = Resp(status, reason, headers, b'', 'RAW', '')
        if head or status in (100, 204, 304):
            return r
        te = (r.header('Transfer-Encoding') or '').lower()
        if 'chunked' in te:
            body = b''
            while True:
                while b'\r\n' not in self.buf:
                    check(self._fill(), 'EOF inside a chunked response')
                size_line, self.buf = self.buf.split(b'\r\n', 1)
                size = int(size_line.split(b';')[0], 16)
                while len(self.buf) < size + 2:
                    check(self._fill(), 'EOF inside a chunk')
                body += self.buf[:size]
                self.buf = self.buf[size + 2:]
                if size == 0:
                    break
        elif r.header('Content-Length') is not None:
            n = int(r.header('Content-Length'))
            while len(self.buf) < n:
                check(self._fill(), 'EOF after %d of %d body bytes' % (len(self.buf), n))
            body, self.buf = self.buf[:n], self.buf[n:]
        else:
            while self._fill():
                pass
            body, self.buf = self.buf, b''
        return Resp(status, reason, headers, body, 'RAW', '')


# --------------------------------------------------------------------------
# Checks shared by several files

def check_error(r, status, code, what=''):
    """r is the documented error: status, JSON content type, and the body
    {"error":{"code":code,"message":<non-empty string>}}."""
    label = (what + ': ') if what else ''
    eq(r.status, status, label + 'status (%s)' % r)
    ct = r.header('Content-Type') or ''
    check(ct.split(';')[0].strip().lower() == 'application/json',
          label + 'Content-Type %r, want application/json (%s)' % (ct, r))
    check(isinstance(r.json, dict), label + 'error body is not a JSON object (%s): %s'
          % (r.json_error, r))
    check(list(r.json.keys()) == ['error'], label + 'error body keys %s, want ["error"]: %s'
          % (list(r.json.keys()), r))
    e = r.json['error']
    check(isinstance(e, dict), label + '"error" is not an object: %s' % r)
    eq(e.get('code'), code, label + 'error.code (%s)' % r)
    msg = e.get('message')
    check(isinstance(msg, str) and msg.strip(), label + 'error.message must be a non-empty string: %s' % r)


def check_message(m, channel=None, sender=None, body=None, via='rest'):
    """m is a message object with every field of the right type and order."""
    check(isinstance(m, dict), 'message is not an object: %s' % _short(m))
    eq(list(m.keys()), MESSAGE_KEYS, 'message keys')
    check(type(m['id']) is int and m['id'] > 0, 'id must be a positive integer: %s' % _short(m))
    check(type(m['seq']) is int and m['seq'] > 0, 'seq must be a positive integer: %s' % _short(m))
    check(isinstance(m['ts'], str) and TS_RE.match(m['ts']), 'ts %r is not RFC 3339 UTC ms' % m.get('ts'))
    eq(m['via'], via, 'via')
    if channel is not None:
        eq(m['channel'], channel, 'channel')
    if sender is not None:
        eq(m['sender'], sender, 'sender')
    if body is not None:
        eq(m['body'], body, 'body')


# --------------------------------------------------------------------------
# Shared gateway per file

class Shared:
    """One gateway for the tests of a file that can share a store. Started on
    first use; if it dies, the test running then fails and the next user
    gets a fresh one. The runner stops it at the end as a test of its own."""

    def __init__(self, **kw):
        self.kw = kw
        self.gw = None
        self.start_failure = None

    def get(self):
        # A gateway that cannot start will not start for the next test either:
        # fail fast instead of waiting START_DEADLINE once per test.
        if self.start_failure:
            raise Failure('the shared gateway failed to start earlier: ' + self.start_failure)
        if self.gw is None or not self.gw.running:
            try:
                self.gw = Gateway(persistent=True, **self.kw)
            except Failure as e:
                self.start_failure = str(e).splitlines()[0]
                raise
        return self.gw


# --------------------------------------------------------------------------
# TAP runner

_tests = []


def test(fn=None, name=None):
    """Decorator: register fn as a test; its docstring's first line names it."""
    def register(f):
        doc = (f.__doc__ or '').strip().splitlines()
        _tests.append((name or (doc[0].strip() if doc else f.__name__), f))
        return f
    return register(fn) if fn is not None else register


def add_test(name, fn, *args, **kw):
    _tests.append((name, functools.partial(fn, *args, **kw)))


def _diag(text):
    for line in str(text).splitlines() or ['']:
        print('# ' + line)


def _describe(exc):
    tb = traceback.extract_tb(exc.__traceback__)
    here = os.path.abspath(__file__)
    frames = [f for f in tb if os.path.abspath(f.filename) != here] or tb
    where = frames[-1] if frames else None
    if isinstance(exc, Failure):
        text = str(exc)
    else:
        text = ''.join(traceback.format_exception(type(exc), exc, exc.__traceback__))
    if where is not None:
        text += '\n  at %s:%d (%s)' % (os.path.basename(where.filename), where.lineno, where.name)
    return text


def _remove_tmpdir(path):
    # Only directories made by mkdtemp(prefix='visavis-it-'): never a db's
    # directory a caller happened to pass in.
    if os.path.basename(path.rstrip('/')).startswith('visavis-it-') and \
            os.path.dirname(os.path.abspath(path)) == os.path.abspath(tempfile.gettempdir()):
        shutil.rmtree(path, ignore_errors=True)


def main():
    gateway_bin()  # bail out early without a binary
    filt = sys.argv[2] if len(sys.argv) > 2 else os.environ.get('VISAVIS_TEST_FILTER')
    n = failed = 0
    keep = os.environ.get('VISAVIS_KEEP_TMP')
    for name, fn in _tests:
        if filt and filt not in name:
            continue
        n += 1
        del _owned[:]
        problems = []
        skipped = None
        t0 = time.monotonic()
        try:
            fn()
        except Skip as e:
            skipped = str(e).replace('#', '(hash)').replace('\n', ' ')
        except Exception as e:  # noqa: BLE001 - any exception fails the test
            problems.append(_describe(e))
        for g in list(_owned):
            if g.running:
                try:
                    g.stop()
                except Failure as e:
                    problems.append('at teardown: ' + str(e))
            elif g.proc is not None and not g.killed_on_purpose and not g.stopped \
                    and g.http_port is not None:
                problems.append('a gateway of this test exited on its own with rc=%s\nstderr:\n%s'
                                % (g.proc.returncode, g.stderr_tail()))
        for g in _persistent:
            why = g.died_unexpectedly()
            if why and not getattr(g, '_reported', False):
                g._reported = True
                problems.append('the shared ' + why)
        dt = time.monotonic() - t0
        if problems:
            failed += 1
            print('not ok %d - %s' % (n, name))
            for p in problems:
                _diag(p)
            for g in _owned:
                _diag('tmpdir kept: %s' % g.tmpdir)
        else:
            print('ok %d - %s%s' % (n, name, ' # SKIP ' + skipped if skipped else ''))
            if dt > 5:
                _diag('took %.2fs' % dt)
            if not keep:
                for g in _owned:
                    _remove_tmpdir(g.tmpdir)
        sys.stdout.flush()
    for g in _persistent:
        if g.proc is None or getattr(g, '_reported', False) or g.killed_on_purpose:
            continue
        n += 1
        try:
            g.stop()
            print('ok %d - shared gateway stops on SIGTERM: exit 0, no sanitizer report' % n)
            if not keep:
                _remove_tmpdir(g.tmpdir)
        except Failure as e:
            failed += 1
            print('not ok %d - shared gateway stops on SIGTERM: exit 0, no sanitizer report' % n)
            _diag(str(e))
            _diag('tmpdir kept: %s' % g.tmpdir)
    print('1..%d' % n)
    if failed:
        _diag('%d of %d failed' % (failed, n))
    sys.stdout.flush()
    sys.exit(1 if failed else 0)


# --------------------------------------------------------------------------
# TCP sessions (docs/protocol.md)

import collections  # noqa: E402 - kept with the session helpers
import struct  # noqa: E402

SESSION_TIMEOUT = float(os.environ.get('VISAVIS_TEST_SESSION_TIMEOUT', '20'))
PUSH_TYPES = ('message', 'ping', 'gap')
HELLO_KEYS = ['type', 'protocol', 'version', 'server', 'session', 'heartbeat', 'hint']
SESSION_ID_RE = re.compile(r'^[0-9a-f]{16}$')


class Session:
    """One TCP session with the gateway's session front.

    s = Session(gw)                  connect and read the greeting (s.hello)
    s = Session(gw, hello=False)     connect only
    s = Session(gw, source='127.0.0.2')  from another loopback address
    s.cmd('SUB general')             send one line (LF added)
    s.send(b'raw bytes')             send bytes as they are
    s.send_json({'op': 'ping'})      send a JSON command line
    r = s.reply()                    the next reply; pushes met on the way are
                                     kept in s.pushes (collections.deque)
    r = s.request('PING x')          cmd() + reply()
    m = s.push()                     the next "message" push (heartbeat pings
                                     are counted in s.pings and skipped)
    ms = s.messages(n)               the next n "message" pushes
    ls = s.collect(0.3)              every line that arrives within 0.3 s
    ls = s.until_eof()               every line up to the server's close

    Every line the server sends must be one JSON object with a string "type",
    ended by LF; anything else fails the test. Reads have a deadline
    (SESSION_TIMEOUT unless given), never a sleep.
    """

    def __init__(self, gw, hello=True, timeout=None, rcvbuf=None, connect_timeout=None,
                 source=None):
        port = gw if isinstance(gw, int) else gw.tcp_port
        check(port, 'gateway has no TCP port: its READY line has no tcp=<port>')
        self.port = port
        self.timeout = SESSION_TIMEOUT if timeout is None else timeout
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        s.settimeout(connect_timeout or self.timeout)
        try:
            if source:
                s.bind((source, 0))
            s.connect(('127.0.0.1', port))
        except BaseException:
            s.close()
            raise
        s.settimeout(self.timeout)
        self.sock = s
        self.buf = b''
        self.eof = False
        self.reset = False
        self.pushes = collections.deque()   # pushes met while waiting for a reply
        self.replies = collections.deque()  # replies met while waiting for a push
        self.pings = 0                      # heartbeat pings seen
        self.last_raw = None
        self.raw_lines = 0
        self.hello = self.read_line() if hello else None
        if hello:
            eq(self.hello.get('type'), 'hello', 'type of the first line (%s)' % _short(self.hello))

    # -- sending -----------------------------------------------------------

    def send(self, data):
        if isinstance(data, str):
            data = data.encode('utf-8')
        self.sock.sendall(data)

    def cmd(self, line, end='\n'):
        if isinstance(line, bytes):
            self.send(line + end.encode('ascii'))
        else:
            self.send(line + end)

    def send_json(self, obj, end='\n'):
        self.send(json.dumps(obj, ensure_ascii=False) + end)

    # -- reading -----------------------------------------------------------

    def fileno(self):
        return self.sock.fileno()

    def _fill(self, deadline):
        """Read once more into buf; False at EOF. Raises Failure at the deadline."""
        if self.eof:
            return False
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout()
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            self.eof = self.reset = True
            return False
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_raw(self, timeout=None):
        """The next line as bytes without its LF; None at a clean EOF."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        start = 0
        while True:
            i = self.buf.find(b'\n', start)
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 1:]
                self.last_raw = line
                self.raw_lines += 1
                return line
            start = len(self.buf)
            try:
                more = self._fill(deadline)
            except socket.timeout:
                raise Failure('no line from the session within %.1fs (partial: %s)'
                              % (self.timeout if timeout is None else timeout, _short(self.buf, 300)))
            if not more:
                check(not self.buf, 'the server closed the session%s inside a line: %s'
                      % (' (reset)' if self.reset else '', _short(self.buf, 300)))
                return None

    @staticmethod
    def parse(raw):
        try:
            obj = json.loads(raw.decode('utf-8'))
        except (UnicodeDecodeError, ValueError) as e:
            raise Failure('server line is not UTF-8 JSON (%s): %s' % (e, _short(raw, 400)))
        check(isinstance(obj, dict), 'server line is not a JSON object: %s' % _short(raw, 400))
        check(isinstance(obj.get('type'), str), 'server line has no string "type": %s' % _short(raw, 400))
        return obj

    def read_line(self, timeout=None):
        """The next line, parsed; EOF fails. HELP typed as text answers in
        words (lines starting with two blanks, then an empty line): they come
        back as one {"type": "help-text", "lines": [...]}."""
        raw = self.read_raw(timeout)
        check(raw is not None, 'the server closed the session%s where a line was expected'
              % (' (reset)' if self.reset else ''))
        if raw.startswith(b'  '):
            lines = []
            while raw:
                check(raw.startswith(b'  '), 'a line of HELP words without its two blanks: %r' % raw)
                lines.append(raw.decode('utf-8'))
                raw = self.read_raw(timeout)
                check(raw is not None, 'the server closed the session inside the HELP words')
            return {'type': 'help-text', 'lines': lines}
        return self.parse(raw)

    def reply(self, timeout=None):
        """The next reply (a line that is not a push). Pushes read on the way
        go to self.pushes."""
        if self.replies:
            return self.replies.popleft()
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            obj = self.read_line(max(0.0, deadline - time.monotonic()))
            if obj['type'] in PUSH_TYPES:
                if obj['type'] == 'ping':
                    self.pings += 1
                else:
                    self.pushes.append(obj)
                continue
            return obj

    def push(self, timeout=None, types=('message',)):
        """The next push of one of types; heartbeat pings are skipped unless
        asked for, replies read on the way go to self.replies."""
        for i, p in enumerate(self.pushes):
            if p['type'] in types:
                del self.pushes[i]
                return p
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        while True:
            obj = self.read_line(max(0.0, deadline - time.monotonic()))
            t = obj['type']
            if t in types:
                if t == 'ping':
                    self.pings += 1
                return obj
            if t == 'ping':
                self.pings += 1
            elif t in PUSH_TYPES:
                self.pushes.append(obj)
            else:
                self.replies.append(obj)

    def messages(self, n, timeout=None):
        """The next n message pushes, within one deadline for all."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        for _ in range(n):
            try:
                out.append(self.push(max(0.0, deadline - time.monotonic())))
            except Failure as e:
                raise Failure('%d of %d message pushes arrived (last seqs %s); then: %s'
                              % (len(out), n, [m.get('seq') for m in out[-5:]], e))
        return out

    def request(self, line, timeout=None):
        self.cmd(line)
        return self.reply(timeout)

    def request_json(self, obj, timeout=None):
        self.send_json(obj)
        return self.reply(timeout)

    def collect(self, seconds):
        """Every line that arrives within seconds (a bounded read for
        "nothing more arrives" checks); stops early at EOF."""
        deadline = time.monotonic() + seconds
        out = []
        while True:
            while b'\n' in self.buf:
                raw, self.buf = self.buf.split(b'\n', 1)
                out.append(self.parse(raw))
            try:
                if not self._fill(deadline):
                    check(not self.buf, 'the server closed the session inside a line: %s'
                          % _short(self.buf, 300))
                    return out
            except socket.timeout:
                return out

    def until_eof(self, timeout=None):
        """Every line up to the server's close (a deadline for the whole)."""
        deadline = time.monotonic() + (self.timeout if timeout is None else timeout)
        out = []
        while True:
            raw = self.read_raw(max(0.0, deadline - time.monotonic()))
            if raw is None:
                return out
            out.append(self.parse(raw))

    def read_available(self):
        """For selector loops: one recv (the socket is readable), then every
        complete line parsed. Sets self.eof at the server's close."""
        try:
            data = self.sock.recv(262144)
        except ConnectionResetError:
            data = b''
            self.reset = True
        if not data:
            self.eof = True
        self.buf += data
        out = []
        while b'\n' in self.buf:
            raw, self.buf = self.buf.split(b'\n', 1)
            out.append(self.parse(raw))
        return out

    # -- closing -----------------------------------------------------------

    def shutdown_write(self):
        self.sock.shutdown(socket.SHUT_WR)

    def abort(self):
        """Close with a reset (SO_LINGER 0) instead of a FIN."""
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack('ii', 1, 0))
        self.sock.close()

    def close(self):
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def check_hello(h, heartbeat=None):
    """h is the greeting of docs/protocol.md, keys in order."""
    eq(list(h.keys()), HELLO_KEYS, 'greeting keys')
    eq(h['type'], 'hello', 'greeting type')
    eq(h['protocol'], 'visavis', 'greeting protocol')
    check(type(h['version']) is int and h['version'] == 1, 'greeting version: %s' % _short(h))
    check(isinstance(h['server'], str) and h['server'].startswith('visavis '),
          'greeting server %r, want "visavis <version>"' % h.get('server'))
    check(isinstance(h['session'], str) and SESSION_ID_RE.match(h['session']),
          'greeting session %r, want 16 hex digits' % h.get('session'))
    check(type(h['heartbeat']) is int, 'greeting heartbeat is not an integer: %s' % _short(h))
    if heartbeat is not None:
        eq(h['heartbeat'], heartbeat, 'greeting heartbeat')


def check_session_error(r, code, op=None, tag=None, what=''):
    """r is {"type":"error","code":code,"message":<non-empty>[,"op"][,"tag"]}.
    code may be a tuple of acceptable codes; op/tag are checked when given
    (op a tuple: acceptable values, None among them for no op key; tag=False:
    no tag key at all)."""
    label = (what + ': ') if what else ''
    eq(r.get('type'), 'error', label + 'type of %s' % _short(r))
    codes = code if isinstance(code, tuple) else (code,)
    check(r.get('code') in codes, label + 'error code %r, want %s: %s'
          % (r.get('code'), ' or '.join(codes), _short(r)))
    check(isinstance(r.get('message'), str) and r['message'].strip(),
          label + 'error message must be a non-empty string: %s' % _short(r))
    if isinstance(op, tuple):  # acceptable values; None: no op key
        check(r.get('op') in op, label + 'op of the error %r, want one of %s: %s'
              % (r.get('op'), op, _short(r)))
    elif op is not None:
        eq(r.get('op'), op, label + 'op of the error %s' % _short(r))
    if tag is False:
        check('tag' not in r, label + 'error carries a tag that was not given: %s' % _short(r))
    elif tag is not None:
        eq(r.get('tag'), tag, label + 'tag of the error %s' % _short(r))


def check_push(p, channel=None, sender=None, body=None, via=None):
    """p is a message push: "type":"message" first, then the message keys."""
    check(isinstance(p, dict), 'push is not an object: %s' % _short(p))
    eq(list(p.keys()), ['type'] + MESSAGE_KEYS, 'push keys')
    eq(p['type'], 'message', 'push type')
    m = {k: p[k] for k in MESSAGE_KEYS}
    check_message(m, channel=channel, sender=sender, body=body, via=via or p['via'])
    return m


def proc_status(pid, field):
    """A field of /proc/<pid>/status in kB (VmRSS, VmHWM, ...)."""
    with open('/proc/%d/status' % pid) as f:
        for line in f:
            if line.startswith(field + ':'):
                return int(line.split()[1])
    raise Failure('no %s in /proc/%d/status' % (field, pid))


def rss_kb(gw):
    return proc_status(gw.proc.pid, 'VmRSS')


def recv_until_close(sock):
    """Every byte sock receives until its peer closes (the socket's own timeout applies)."""
    got = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return got
        got += chunk


def fd_count(gw):
    return len(os.listdir('/proc/%d/fd' % gw.proc.pid))


def raise_nofile(n):
    """Raise this process's RLIMIT_NOFILE soft limit to at least n (children
    started afterwards inherit it). Returns the soft limit now in force."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n if hard == resource.RLIM_INFINITY else min(n, hard)
    if soft != resource.RLIM_INFINITY and soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        soft = want
    return soft


_sanitized = None


def sanitized():
    """Whether the gateway binary is built with AddressSanitizer (its own
    memory map and speed are then not the gateway's)."""
    global _sanitized
    if _sanitized is None:
        with open(gateway_bin(), 'rb') as f:
            _sanitized = b'__asan_init' in f.read()
    return _sanitized


def address_limit(mb):
    """A Gateway prefix that caps the gateway's address space at mb MiB, so
    that a memory regression fails the test instead of the machine. Empty
    under AddressSanitizer, whose shadow memory needs terabytes of address
    space: such tests sample RSS instead."""
    if sanitized() or not shutil.which('prlimit'):
        return []
    return ['prlimit', '--as=%d' % (mb * 1024 * 1024), '--']


def small_asan_quarantine():
    """Environment for a gateway whose RSS a test measures: under
    AddressSanitizer, freed memory sits in a quarantine of 256 MB by default,
    which is not the gateway's; 16 MB keeps RSS meaningful. Ignored by a
    build without sanitizers."""
    opts = os.environ.get('ASAN_OPTIONS', '')
    return {'ASAN_OPTIONS': (opts + ':' if opts else '') + 'quarantine_size_mb=16'}


# --------------------------------------------------------------------------
# A fake server for the clients' tests (gwsh, gwbench): what a hostile or
# broken server sends must not take a client's memory, time or terminal.

class FakeServer:
    """A server on loopback that serves each connection with
    handler(sock, stop) in a thread of its own; stop (an Event) is set when
    the test ends, and every handler must return soon after. The socket
    times out every 0.2 s, so that a handler can look at stop."""

    def __init__(self, handler, backlog=64):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(('127.0.0.1', 0))
        self.sock.listen(backlog)
        self.sock.settimeout(0.2)
        self.port = self.sock.getsockname()[1]
        self.addr = '127.0.0.1:%d' % self.port
        self.handler = handler
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            t = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(t)
            t.start()

    def _serve(self, conn):
        conn.settimeout(0.2)
        try:
            self.handler(conn, self.stop)
        except OSError:
            pass  # the client went away: that is how most of these end
        finally:
            conn.close()

    def close(self):
        self.stop.set()
        self.sock.close()
        for t in self.threads:
            t.join(5)


def recv_line(conn, stop, pending):
    """A FakeServer handler's part: the next line the client sent (without
    its LF), or None once stop is set or the connection closed; pending is
    the bytearray kept between calls."""
    while b'\n' not in pending:
        if stop.is_set():
            return None
        try:
            data = conn.recv(4096)
        except socket.timeout:
            continue
        if not data:
            return None
        pending += data
    line, _, rest = bytes(pending).partition(b'\n')
    pending[:] = rest
    return line


def send_endless_line(conn, stop, cap=1 << 31):
    """A FakeServer handler's part: one line that never ends, sent as fast as
    the client reads it, cap bytes at most."""
    chunk = b'x' * (1 << 20)
    sent = 0
    while not stop.is_set() and sent < cap:
        try:
            conn.sendall(chunk)
        except socket.timeout:
            continue
        sent += len(chunk)
