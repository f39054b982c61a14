#!/usr/bin/env python3
"""Everything around the messages: /healthz, /v1/version, HEAD, keep-alive,
the command line and environment, the request log, signals."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import signal
import socket
import tempfile
import time

import harness
from harness import test, check, eq, check_error, wait_for

shared = harness.Shared()


def json_ct(r):
    ct = r.header('Content-Type') or ''
    eq(ct.split(';')[0].strip().lower(), 'application/json', 'Content-Type of %s %s' % (r.method, r.path))


@test
def healthz():
    """GET /healthz answers 200 {"status":"ok"} as JSON"""
    gw = shared.get()
    r = gw.get('/healthz')
    eq(r.status, 200, 'status (%s)' % r)
    json_ct(r)
    eq(r.json, {'status': 'ok'}, 'body')
    eq(int(r.header('Content-Length', '-1')), len(r.raw), 'Content-Length')


@test
def version():
    """GET /v1/version names visavis, api v1, schema_version 1, a x.y.z version"""
    gw = shared.get()
    r = gw.get('/v1/version')
    eq(r.status, 200, 'status (%s)' % r)
    json_ct(r)
    check(isinstance(r.json, dict), 'not an object: %s' % r)
    eq(sorted(r.json), ['api', 'name', 'schema_version', 'version'], 'keys')
    eq(r.json['name'], 'visavis', 'name')
    eq(r.json['api'], 'v1', 'api')
    eq(r.json['schema_version'], 1, 'schema_version')
    check(isinstance(r.json['version'], str) and re.match(r'^\d+\.\d+\.\d+', r.json['version']),
          'version %r is not x.y.z' % r.json.get('version'))


def head_paths(gw):
    m = gw.publish('misc-head', 'for HEAD')
    return ['/healthz', '/v1/version', '/v1/channels', '/v1/channels/misc-head/messages',
            '/v1/channels/misc-head/messages?since=0&limit=1', '/v1/channels/nobody/messages',
            '/v1/messages/%d' % m['id'],
            # errors answer HEAD with the same status and length as GET
            '/v1/messages/999999', '/nope', '/v1/messages/abc', '/v1/channels/a*/messages',
            '/v1/channels/misc-head/messages?limit=1001']


@test
def head_like_get():
    """HEAD answers the status, Content-Type and Content-Length of GET, and no body"""
    gw = shared.get()
    conn = gw.connect()
    for path in head_paths(gw):
        g = gw.get(path, conn=conn)
        h = gw.head(path, conn=conn)
        eq(h.status, g.status, 'HEAD %s status' % path)
        eq(h.header('Content-Type'), g.header('Content-Type'), 'HEAD %s Content-Type' % path)
        eq(h.header('Content-Length'), g.header('Content-Length'), 'HEAD %s Content-Length' % path)
        check(g.header('Content-Length') is not None, 'GET %s has no Content-Length' % path)
        eq(h.raw, b'', 'HEAD %s body' % path)
    conn.close()


@test
def head_sends_no_body_bytes():
    """after a HEAD on a raw socket the next response starts right away (no stray body bytes)"""
    gw = shared.get()
    with gw.raw() as rc:
        rc.send(b'HEAD /v1/version HTTP/1.1\r\nHost: x\r\n\r\n'
                b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        h = rc.read_response(head=True)
        check(h is not None, 'no response to HEAD')
        eq(h.status, 200, 'HEAD status (%s)' % h)
        check(int(h.header('Content-Length', '0')) > 0, 'HEAD Content-Length %r' % h.header('Content-Length'))
        g = rc.read_response()
        check(g is not None, 'no response to the GET after HEAD')
        eq(g.status, 200, 'GET after HEAD: status (%s)' % g)
        eq(g.json, {'status': 'ok'}, 'GET after HEAD: body')


@test
def keep_alive():
    """GETs, POSTs and HEADs on one connection, no Connection: close, same socket throughout"""
    gw = shared.get()
    conn = gw.connect()
    conn.connect()
    sock = conn.sock
    steps = [('GET', '/healthz', None), ('POST', '/v1/channels/misc-ka/messages', {'body': 'one'}),
             ('GET', '/v1/channels/misc-ka/messages', None),
             ('POST', '/v1/channels/misc-ka/messages', {'body': 'two', 'sender': 'ka'}),
             ('HEAD', '/v1/channels', None), ('GET', '/v1/version', None),
             ('POST', '/v1/channels/misc-ka/messages', {'body': 'three'}),
             ('GET', '/v1/messages/1', None), ('GET', '/v1/channels/misc-ka/messages?since=1', None),
             ('GET', '/v1/channels', None)]
    for method, path, obj in steps:
        r = gw.request(method, path, obj=obj, conn=conn)
        eq(r.status, 201 if method == 'POST' else 200, '%s %s status (%s)' % (method, path, r))
        check('close' not in (r.header('Connection') or '').lower(),
              '%s %s answered Connection: %s' % (method, path, r.header('Connection')))
        check(conn.sock is sock, 'the connection was reopened after %s %s' % (method, path))
    eq([m['body'] for m in gw.read('misc-ka')['messages']], ['one', 'two', 'three'], 'bodies')
    conn.close()


@test
def keep_alive_pipelined():
    """three requests sent at once on one socket get three answers in order"""
    gw = shared.get()
    body = b'{"body":"piped"}'
    post = (b'POST /v1/channels/misc-pipe/messages HTTP/1.1\r\nHost: x\r\n'
            b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n' % len(body)) + body
    with gw.raw() as rc:
        rc.send(post + post + b'GET /v1/channels/misc-pipe/messages HTTP/1.1\r\nHost: x\r\n\r\n')
        a, b, c = rc.read_response(), rc.read_response(), rc.read_response()
    check(a is not None and b is not None and c is not None, 'missing responses: %s %s %s' % (a, b, c))
    eq((a.status, b.status, c.status), (201, 201, 200), 'statuses')
    eq((a.json['seq'], b.json['seq']), (1, 2), 'seqs')
    eq([m['seq'] for m in c.json['messages']], [1, 2], 'read after the pipelined posts')


@test
def json_content_type_everywhere():
    """every answer, success or error, is Content-Type application/json"""
    gw = shared.get()
    for method, path, obj in [('GET', '/healthz', None), ('GET', '/v1/version', None),
                              ('GET', '/v1/channels', None), ('GET', '/nope', None),
                              ('POST', '/v1/channels/misc-ct/messages', {'body': 'x'}),
                              ('POST', '/v1/channels/misc-ct/messages', {'nobody': 'x'}),
                              ('DELETE', '/v1/channels', None)]:
        r = gw.request(method, path, obj=obj)
        json_ct(r)
        check(r.json is not None, '%s %s: body is not JSON (%s)' % (method, path, r.json_error))


@test
def ready_line_and_ports():
    """READY http=<port> tcp=<port>: the HTTP port answers, two gateways get different ports"""
    a = harness.Gateway()
    b = harness.Gateway()
    ready = [ln for ln in a.stdout_lines if ln.startswith('READY')]
    eq(len(ready), 1, 'READY lines on stdout (%s)' % a.stdout_lines)
    # tcp=<port> is optional until the TCP front exists; when present it must be a port.
    if a.tcp_port is not None:
        check(0 < a.tcp_port < 65536 and a.tcp_port != a.http_port, 'tcp port %d' % a.tcp_port)
    check(a.http_port != b.http_port, 'two gateways on the same HTTP port %d' % a.http_port)
    eq(a.get('/healthz').status, 200, 'gateway a answers')
    eq(b.get('/healthz').status, 200, 'gateway b answers')
    b.publish('only-b', 'x')
    eq(a.read('only-b')['messages'], [], 'the two gateways do not share a store')


@test
def sigterm_exits_0_within_5s():
    """SIGTERM: exit status 0 within 5 seconds, even with an idle keep-alive client"""
    gw = harness.Gateway()
    conn = gw.connect()
    gw.publish('misc-term', 'x', conn=conn)  # leave the connection open and idle
    rc = gw.stop(grace=5)
    eq(rc, 0, 'exit status')
    check(gw.stop_seconds < 5, 'took %.2fs to exit' % gw.stop_seconds)
    conn.close()


@test
def sigint_exits_0():
    """SIGINT stops the gateway like SIGTERM: exit status 0"""
    gw = harness.Gateway()
    gw.publish('misc-int', 'x')
    eq(gw.stop(sig=signal.SIGINT, grace=5), 0, 'exit status')


@test
def sigterm_with_half_sent_request():
    """SIGTERM while a client is in the middle of sending a request: exit 0 within 5 seconds"""
    gw = harness.Gateway()
    rc = gw.raw()
    rc.send(b'POST /v1/channels/misc-half/messages HTTP/1.1\r\nHost: x\r\n'
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"body":')
    eq(gw.get('/healthz').status, 200, 'healthz beside the half-sent request')
    eq(gw.stop(grace=5), 0, 'exit status')
    check(gw.stop_seconds < 5, 'took %.2fs to exit' % gw.stop_seconds)
    rc.close()
    gw.restart()
    eq(gw.channels(), [], 'nothing stored from the half-sent request')


@test
def version_flag():
    """--version exits 0 and prints the version /v1/version reports"""
    rc, out, err = harness.run_binary(['--version'])
    eq(rc, 0, 'exit status (stderr %r)' % err[-300:])
    gw = shared.get()
    v = gw.get('/v1/version').json['version']
    check(v in out, '--version printed %r, /v1/version says %r' % (out, v))


@test
def flag_equals_form():
    """--max-body=1000 (the --option=value form) works like --max-body 1000"""
    gw = harness.Gateway(args=['--max-body=1000'])
    eq(gw.request('POST', '/v1/channels/eqf/messages', body=body_of(1000)).status, 201, '1000 bytes')
    check_error(gw.request('POST', '/v1/channels/eqf/messages', body=body_of(1001)), 413,
                'body_too_large', '1001 bytes with --max-body=1000')


@test
def help_lists_every_setting():
    """--help exits 0 and lists every flag with its environment variable and default"""
    rc, out, err = harness.run_binary(['--help'])
    eq(rc, 0, 'exit status of --help (stderr: %s)' % err[-500:])
    text = out + err
    check(out.strip(), '--help printed nothing on stdout (stderr: %r)' % err[-500:])
    for flag, var, default in [('--http-addr', 'VISAVIS_HTTP_ADDR', '127.0.0.1:8080'),
                               ('--tcp-addr', 'VISAVIS_TCP_ADDR', '127.0.0.1:12345'),
                               ('--db', 'VISAVIS_DB', 'visavis.db'),
                               ('--log-level', 'VISAVIS_LOG_LEVEL', 'info'),
                               ('--max-body', 'VISAVIS_MAX_BODY', '65536'),
                               ('--max-connections', 'VISAVIS_MAX_CONNECTIONS', '4096'),
                               ('--http-idle-timeout', 'VISAVIS_HTTP_IDLE_TIMEOUT', '60')]:
        for word in (flag, var, default):
            check(word in text, '--help does not mention %r:\n%s' % (word, text))
    check(not any(harness.READY_RE.match(ln) for ln in out.splitlines()),
          '--help must not start the gateway: %r' % out)


BAD_FLAGS = [
    ['--log-level', 'loud'],
    ['--log-level', ''],
    ['--max-body', 'abc'],
    ['--max-body', '-1'],
    ['--max-body', '12x'],
    ['--max-body', '99999999999999999999999'],
    ['--http-addr', 'nonsense'],
    ['--http-addr', '127.0.0.1:99999'],
    ['--http-addr', '127.0.0.1:-1'],
    ['--tcp-addr', 'nohost:'],
    ['--no-such-flag'],
    ['--db'],
    ['stray-positional'],
]


def bad_flag(extra):
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    args = ['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0', '--udp-addr', '',
            '--db', os.path.join(tmp, 't.db')]
    # The bad flag comes last so that it overrides the good one.
    rc, out, err = harness.run_binary(args + extra)
    eq(rc, 2, 'exit status for %s (stdout %r, stderr %r)' % (extra, out[-300:], err[-300:]))
    check(err.strip(), 'no message on stderr for %s' % extra)
    check(not any(harness.READY_RE.match(ln) for ln in out.splitlines()), 'printed READY for %s' % extra)
    shutil.rmtree(tmp, ignore_errors=True)


for _f in BAD_FLAGS:
    harness.add_test('bad flag %s: exit 2 with a message on stderr' % ' '.join(repr(a) for a in _f),
                     bad_flag, _f)


BAD_ENV = [('VISAVIS_LOG_LEVEL', 'loud'), ('VISAVIS_MAX_BODY', 'lots'), ('VISAVIS_HTTP_ADDR', 'nonsense')]


def bad_env(var, value):
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    env = {'VISAVIS_HTTP_ADDR': '127.0.0.1:0', 'VISAVIS_TCP_ADDR': '127.0.0.1:0',
           'VISAVIS_UDP_ADDR': '', 'VISAVIS_DB': os.path.join(tmp, 't.db')}
    env[var] = value
    rc, out, err = harness.run_binary([], env=env)
    eq(rc, 2, 'exit status for %s=%r (stderr %r)' % (var, value, err[-300:]))
    check(err.strip(), 'no message on stderr for %s=%r' % (var, value))
    check(not any(harness.READY_RE.match(ln) for ln in out.splitlines()),
          'printed READY for %s=%r' % (var, value))
    shutil.rmtree(tmp, ignore_errors=True)


for _v, _x in BAD_ENV:
    harness.add_test('bad environment %s=%r: exit 2 with a message on stderr' % (_v, _x), bad_env, _v, _x)


def body_of(n):
    prefix, suffix = b'{"body":"', b'"}'
    return prefix + b'e' * (n - len(prefix) - len(suffix)) + suffix


@test
def env_settings_used():
    """with no flags, VISAVIS_HTTP_ADDR/TCP_ADDR/DB/MAX_BODY are used"""
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    db = os.path.join(tmp, 'env.db')
    gw = harness.Gateway(base_args=False, tmpdir=tmp, db=db,
                         env={'VISAVIS_HTTP_ADDR': '127.0.0.1:0', 'VISAVIS_TCP_ADDR': '127.0.0.1:0',
                              'VISAVIS_UDP_ADDR': '127.0.0.1:0', 'VISAVIS_DB': db, 'VISAVIS_MAX_BODY': '1000',
                              'VISAVIS_LOG_LEVEL': 'info'})
    eq(gw.request('POST', '/v1/channels/env/messages', body=body_of(1000)).status, 201, '1000 bytes')
    check_error(gw.request('POST', '/v1/channels/env/messages', body=body_of(1001)), 413,
                'body_too_large', '1001 bytes with VISAVIS_MAX_BODY=1000')
    gw.stop()
    check(os.path.exists(db), 'VISAVIS_DB=%s was not created' % db)
    gw.restart()
    eq(len(gw.read('env')['messages']), 1, 'messages after restart on VISAVIS_DB')


@test
def flags_win_over_env():
    """a flag wins over its environment variable (--db, --max-body, --log-level)"""
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    env_db = os.path.join(tmp, 'from-env.db')
    flag_db = os.path.join(tmp, 'from-flag.db')
    gw = harness.Gateway(db=flag_db, args=['--max-body', '5000'], log_level='info',
                         env={'VISAVIS_DB': env_db, 'VISAVIS_MAX_BODY': '1000',
                              'VISAVIS_LOG_LEVEL': 'error'})
    eq(gw.request('POST', '/v1/channels/fw/messages', body=body_of(1001)).status, 201,
       '1001 bytes with --max-body 5000 over VISAVIS_MAX_BODY=1000')
    gw.wait_stderr(r'POST.*/v1/channels/fw/messages.* 201 ')
    gw.stop()
    check(os.path.exists(flag_db), '--db file was not created')
    check(not os.path.exists(env_db), 'VISAVIS_DB file was created although --db was given')


@test
def request_log_line():
    """at info, each request logs a line with method, path, status, bytes and a duration in us"""
    gw = harness.Gateway()
    r = gw.get('/v1/channels/logchk/messages?since=0')
    eq(r.status, 200, 'status')
    m = gw.wait_stderr(r'^.*GET.*/v1/channels/logchk/messages.* 200 .*$')
    line = m.group(0)
    check(re.search(r'\d+\s*us\b', line), 'no duration ending in us in %r' % line)
    check(re.search(r'info', line, re.I), 'no level in %r' % line)
    check(re.search(r'\d\d:\d\d:\d\d', line), 'no time of day in %r' % line)
    gw.publish('logchk', 'hello')
    gw.wait_stderr(r'POST.*/v1/channels/logchk/messages.* 201 ')
    gw.get('/nope-logged')
    gw.wait_stderr(r'GET.*/nope-logged.* 404 ')
    # one line per request: three requests, three request lines
    text = gw.stderr_text()
    eq(len(re.findall(r'(GET|POST).*(/v1/channels/logchk/messages|/nope-logged).* (200|201|404) ', text)),
       3, 'request lines in:\n' + text[-2000:])


# docs/api.md: `<time> <level> <text>`, and for a request
# `http <METHOD> <path> <status> <body bytes>B <duration>us`.
LOG_TIME = r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z'


@test
def request_log_line_format():
    """the request line is '<time> info http <METHOD> <path> <status> <bytes>B <n>us' with the body size"""
    gw = harness.Gateway()
    r = gw.get('/v1/channels/logfmt/messages?since=0')
    eq(r.status, 200, 'status')
    m = gw.wait_stderr(r'^(%s) +info +http GET (/v1/channels/logfmt/messages\S*) 200 (\d+)B (\d+)us$' % LOG_TIME)
    eq(int(m.group(3)), len(r.raw), 'bytes logged for the GET (line %r)' % m.group(0))
    p = gw.post('logfmt', {'body': 'sized'})
    m = gw.wait_stderr(r'^(%s) +info +http POST /v1/channels/logfmt/messages 201 (\d+)B (\d+)us$' % LOG_TIME)
    eq(int(m.group(2)), len(p.raw), 'bytes logged for the POST (line %r)' % m.group(0))
    for line in gw.stderr_text().splitlines():
        check(re.match(r'^%s +(debug|info|warn|error) +\S' % LOG_TIME, line),
              'stderr line not in the form <time> <level> <text>: %r' % line)


@test
def aborted_request_logged():
    """a request the client abandons mid-body is logged with 'ended: <why>'; nothing stored"""
    gw = harness.Gateway()
    rc = gw.raw()
    rc.send(b'POST /v1/channels/logabort/messages HTTP/1.1\r\nHost: x\r\n'
            b'Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{"body":')
    eq(gw.get('/healthz').status, 200, 'healthz beside the half-sent request')
    rc.close()
    gw.wait_stderr(r'http POST /v1/channels/logabort/messages .* ended: \S')
    eq(gw.channels(), [], 'nothing stored')


@test
def log_level_warn_is_quiet():
    """at --log-level warn a successful request logs nothing"""
    gw = harness.Gateway(log_level='warn')
    eq(gw.get('/v1/channels/quiet-zone/messages').status, 200, 'status')
    gw.publish('quiet-zone', 'shh')
    # Stop first: whatever was going to be logged has been written by then.
    gw.stop()
    text = gw.stderr_text()
    check('quiet-zone' not in text, 'request logged at warn level:\n' + text[-2000:])


@test
def log_level_debug_starts():
    """--log-level debug and error both start and serve"""
    for lvl in ['debug', 'error']:
        gw = harness.Gateway(log_level=lvl)
        gw.publish('lvl', lvl)
        eq(gw.get('/healthz').status, 200, 'healthz at %s' % lvl)
        gw.stop()


@test
def idle_timeout_closes():
    """--http-idle-timeout 1: an idle keep-alive connection is closed by the gateway"""
    gw = harness.Gateway(args=['--http-idle-timeout', '1'])
    with gw.raw(timeout=15) as rc:
        # Timed from the send, which comes before the answer: the idle second
        # begins after it, however late this process reads the answer.
        t0 = time.monotonic()
        rc.send(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        r = rc.read_response()
        eq(r.status, 200, 'status')
        check(rc.closed_by_peer(timeout=15), 'not closed, got %r' % rc.buf[:200])
        dt = time.monotonic() - t0
        check(0.9 <= dt < 10, 'closed %.2fs after the request with --http-idle-timeout 1' % dt)
    eq(gw.get('/healthz').status, 200, 'a new connection works')


@test
def max_connections_limit():
    """--max-connections 5: a 6th connection is served at once, in place of the one idle longest"""
    gw = harness.Gateway(args=['--max-connections', '5'])
    conns = []
    try:
        for i in range(5):
            rc = gw.raw(timeout=10)
            rc.send(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
            r = rc.read_response()
            check(r is not None and r.status == 200, 'connection %d: %s' % (i + 1, r))
            conns.append(rc)
        # docs/api.md: at the limit a newcomer takes the place of the connection
        # idle longest, not a place in a queue behind it.
        extra = gw.raw(timeout=10)
        extra.send(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        r = extra.read_response()
        check(r is not None and r.status == 200, 'the 6th connection at the limit: %s' % r)
        oldest = conns.pop(0)
        check(oldest.closed_by_peer(timeout=10), 'the connection idle longest is still open, got %r'
              % oldest.buf[:200])
        oldest.close()
        conns.append(extra)
        for rc in conns:
            rc.send(b'GET /v1/version HTTP/1.1\r\nHost: x\r\n\r\n')
            r = rc.read_response()
            check(r is not None and r.status == 200, 'the other connections afterwards: %s' % r)
        gw.wait_stderr(r'http conn 1 closed: idle for [0-9.]+ s: closed to make room')
    finally:
        for rc in conns:
            rc.close()


@test
def many_connections_then_stop():
    """200 open idle connections do not stop the gateway from serving or exiting"""
    gw = harness.Gateway()
    socks = []
    try:
        for _ in range(200):
            s = socket.create_connection(('127.0.0.1', gw.http_port), timeout=10)
            socks.append(s)
        eq(gw.get('/healthz').status, 200, 'healthz with 200 idle connections')
        t0 = time.monotonic()
        eq(gw.stop(grace=5), 0, 'exit status')
        check(time.monotonic() - t0 < 5, 'slow exit')
    finally:
        for s in socks:
            s.close()


@test
def conninfo_typo_is_no_sqlite_file():
    """--db 'host=... usr=...' (a key libpq does not know), with a quote left open, or with 3 ports for 2 hosts fails to start with libpq's reason, and creates no SQLite file of that name; 'a=b.db' is still a file"""
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    try:
        for target, reason in [('host=127.0.0.1 port=1 dbname=t1 usr=postgres',
                                'invalid connection option "usr"'),
                               ("host=127.0.0.1 port=1 dbname='t1 user=postgres",
                                'unterminated quoted string'),
                               ('host=127.0.0.1,127.0.0.1 port=1,2,3 dbname=t1',
                                'could not match 3 port numbers to 2 hosts')]:
            rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr',
                                               '127.0.0.1:0', '--udp-addr', '', '--db', target],
                                              cwd=tmp)
            eq(rc, 1, 'exit status for --db %r (stderr %r)' % (target, err[-300:]))
            check(reason in err, 'libpq\'s reason for --db %r in: %r' % (target, err[-300:]))
            check(not any(harness.READY_RE.match(ln) for ln in out.splitlines()),
                  'printed READY for --db %r' % target)
            eq(os.listdir(tmp), [], 'files made for --db %r' % target)
        gw = harness.Gateway(db=os.path.join(tmp, 'a=b.db'))
        eq(gw.publish('eq', 'x')['seq'], 1, 'a publish on a=b.db')
        gw.stop()
        check(os.path.exists(os.path.join(tmp, 'a=b.db')), 'a=b.db is a SQLite file')
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


harness.main()
