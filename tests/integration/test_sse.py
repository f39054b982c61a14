#!/usr/bin/env python3
"""Server-Sent Events, GET /v1/channels/{ch}/events (docs/sse.md): the
event-stream head, messages as id/event/data, resume from Last-Event-ID or
?since= (the header wins), gap events, heartbeat comments, the slow-consumer
rule, a bad cursor refused before the stream starts, many streams at once,
a client that vanishes, shutdown; and GET / as the page or the JSON index."""

import sys
sys.dont_write_bytecode = True

import json
import re
import socket
import threading
import time

import harness
from harness import test, check, eq, Session

shared = harness.Shared()
TIMEOUT = 20.0
BODY_TAIL = 4096


class Stream(harness.RawConn):
    """One SSE request on a raw socket: the head, then events as they come.

    st = Stream(gw, '/v1/channels/x/events?since=0', headers={'Last-Event-ID': '3'})
    st.status, st.headers          the response head
    ev = st.event()                the next event: {'id', 'event', 'data', 'comments'}
    evs = st.messages(n)           the next n "message" events' data, parsed
    st.ended                       the server ended the stream (chunked end or close)
    """

    def __init__(self, gw, path, headers=None, rcvbuf=None, read_head=True):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(('127.0.0.1', gw.http_port))
        hdrs = {'Host': 'localhost', 'Accept': 'text/event-stream'}
        hdrs.update(headers or {})
        req = 'GET %s HTTP/1.1\r\n' % path + ''.join('%s: %s\r\n' % kv for kv in hdrs.items())
        self.sock.sendall((req + '\r\n').encode())
        self.raw = b''      # bytes off the socket, not yet de-chunked
        self.text = ''      # de-chunked body, not yet cut into events
        self.body = ''      # the body's last BODY_TAIL characters, for failure messages
        self.chunked = False
        self.ended = False  # the last chunk came, or the connection closed
        self.whole = False  # the last chunk came: the server ended the stream whole
        self.eof = False
        self.status = None
        self.headers = {}
        self.pings = 0
        if read_head:
            self.read_head()

    def _recv(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise harness.Failure('timed out reading the stream; body so far: %r'
                                  % self.body[-600:])
        self.sock.settimeout(left)
        try:
            data = self.sock.recv(65536)
        except socket.timeout:
            raise harness.Failure('timed out reading the stream; body so far: %r'
                                  % self.body[-600:])
        except ConnectionResetError:
            data = b''
        if not data:
            self.eof = True
            self.ended = True
        self.raw += data
        return bool(data)

    def read_head(self, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while b'\r\n\r\n' not in self.raw:
            check(self._recv(deadline), 'connection closed before the response head: %r' % self.raw)
        head, self.raw = self.raw.split(b'\r\n\r\n', 1)
        lines = head.decode('latin-1').split('\r\n')
        self.status = int(lines[0].split()[1])
        for ln in lines[1:]:
            k, v = ln.split(':', 1)
            self.headers[k.strip().lower()] = v.strip()
        self.chunked = self.headers.get('transfer-encoding', '').lower() == 'chunked'
        self.length = int(self.headers.get('content-length', '-1'))

    def _took(self, text):
        self.text += text
        # Only a tail: a string grown by every chunk is copied whole each time, and a reader of
        # megabytes would fall behind the stream it checks.
        self.body = (self.body + text)[-BODY_TAIL:]

    def _dechunk(self):
        if not self.chunked:
            self._took(self.raw.decode('utf-8'))
            self.raw = b''
            return
        while True:
            i = self.raw.find(b'\r\n')
            if i < 0:
                return
            size = int(self.raw[:i].split(b';')[0], 16)
            if len(self.raw) < i + 2 + size + 2:
                return
            data = self.raw[i + 2:i + 2 + size]
            eq(self.raw[i + 2 + size:i + 4 + size], b'\r\n', 'the CRLF after a chunk')
            self.raw = self.raw[i + 4 + size:]
            if size == 0:
                self.ended = True
                self.whole = True
                return
            self._took(data.decode('utf-8'))

    def event(self, timeout=TIMEOUT):
        """The next event (blocks up to timeout); None once the stream has ended."""
        deadline = time.monotonic() + timeout
        while True:
            self._dechunk()
            if '\n\n' in self.text:
                block, self.text = self.text.split('\n\n', 1)
                ev = {'id': None, 'event': 'message', 'data': None, 'comments': []}
                data = []
                for ln in block.split('\n'):
                    if ln.startswith(':'):
                        ev['comments'].append(ln[1:].strip())
                        continue
                    field, _, value = ln.partition(':')
                    value = value[1:] if value.startswith(' ') else value
                    if field == 'data':
                        data.append(value)
                    elif field in ('id', 'event', 'retry'):
                        ev[field] = value
                if data:
                    ev['data'] = '\n'.join(data)
                return ev
            if self.ended:
                return None
            self._recv(deadline)

    def next_of(self, kinds=('message',), timeout=TIMEOUT):
        """The next event of one of kinds, skipping comment-only blocks (hello, replies, pings)."""
        while True:
            ev = self.event(timeout)
            check(ev is not None, 'the stream ended while waiting for %s; body: %r'
                  % (kinds, self.body[-600:]))
            if ev['data'] is None:
                self.pings += sum(1 for c in ev['comments'] if c == 'ping')
                continue
            check(ev['event'] in kinds, 'expected %s, got %r' % (kinds, ev))
            return ev

    def messages(self, n, timeout=TIMEOUT):
        out = []
        for _ in range(n):
            ev = self.next_of(timeout=timeout)
            m = json.loads(ev['data'])
            eq(ev['id'], str(m['seq']), 'the event id is the message seq')
            out.append(m)
        return out

    def until_end(self, timeout=TIMEOUT):
        evs = []
        while True:
            ev = self.event(timeout)
            if ev is None:
                return evs
            evs.append(ev)


def events_path(ch, since=None):
    return '/v1/channels/%s/events' % ch + ('' if since is None else '?since=%s' % since)


def open_sse(gw):
    return gw.get('/v1/stats').json['open']['sse']


@test
def head_and_first_bytes():
    """200 text/event-stream, no-cache, X-Accel-Buffering: no, not compressed; retry: set first"""
    gw = shared.get()
    with Stream(gw, events_path('h-head', 0), headers={'Accept-Encoding': 'gzip, br'}) as st:
        eq(st.status, 200, 'status')
        eq(st.headers.get('content-type'), 'text/event-stream', 'Content-Type')
        eq(st.headers.get('cache-control'), 'no-cache', 'Cache-Control')
        eq(st.headers.get('x-accel-buffering'), 'no', 'X-Accel-Buffering')
        eq(st.headers.get('content-encoding'), None, 'no Content-Encoding')
        check(st.chunked, 'a streamed body (chunked): %r' % st.headers)
        hello = st.event()
        eq(hello['retry'], '2000', 'retry: in the first event')
        eq(hello['data'], None, 'the greeting is a comment, not an event EventSource dispatches')
        eq(json.loads(hello['comments'][0])['type'], 'hello', 'the greeting')
        check('hint' not in json.loads(hello['comments'][0]),
              'no hint to type HELP on a stream that takes no commands')
        reply = st.event()
        eq(json.loads(reply['comments'][0])['op'], 'sub', 'the SUB reply, as a comment')


@test
def messages_in_order_with_via():
    """stored messages then live ones, each once, with id = seq and via kept (rest, tcp)"""
    gw = shared.get()
    stored = [gw.publish('h-order', 'm%d' % i) for i in range(1, 4)]
    with Stream(gw, events_path('h-order', 0)) as st:
        eq(st.messages(3), stored, 'the stored messages, as REST shows them')
        live = gw.publish('h-order', 'live')
        eq(st.messages(1), [live], 'a live message')
        with Session(gw) as s:
            r = s.request('PUB h-order from-tcp')
        got = st.messages(1)[0]
        eq(got, r['message'], 'a message published over TCP')
        eq(got['via'], 'tcp', 'its via is kept')


@test
def no_cursor_is_from_now():
    """without since= or Last-Event-ID: only what commits after"""
    gw = shared.get()
    gw.publish('h-now', 'old')
    with Stream(gw, events_path('h-now')) as st:
        st.event()  # hello
        sub = json.loads(st.event()['comments'][0])
        eq((sub['since'], sub['top']), (1, 1), 'subscribed from the top')
        m = gw.publish('h-now', 'new')
        eq(st.messages(1), [m], 'only the new message')


@test
def resume_with_since():
    """?since=N: exactly the messages after N"""
    gw = shared.get()
    ms = [gw.publish('h-since', 'm%d' % i) for i in range(1, 6)]
    with Stream(gw, events_path('h-since', 3)) as st:
        eq(st.messages(2), ms[3:], 'seqs 4 and 5')
        m = gw.publish('h-since', 'm6')
        eq(st.messages(1), [m], 'then live')


@test
def last_event_id_wins_over_since():
    """Last-Event-ID (what EventSource sends on reconnect) wins over the URL's ?since="""
    gw = shared.get()
    ms = [gw.publish('h-leid', 'm%d' % i) for i in range(1, 6)]
    with Stream(gw, events_path('h-leid', 1), headers={'Last-Event-ID': '4'}) as st:
        eq(st.messages(1), ms[4:], 'resumed after 4, not after 1')
    with Stream(gw, events_path('h-leid'), headers={'Last-Event-ID': '0'}) as st:
        eq(st.messages(5), ms, 'Last-Event-ID 0: everything')
    with Stream(gw, events_path('h-leid', 2), headers={'Last-Event-ID': ''}) as st:
        eq(st.messages(3), ms[2:], 'an empty Last-Event-ID is no cursor: since= counts')
    # Blanks after a field's value are not part of it (RFC 9110 5.5).
    with Stream(gw, events_path('h-leid', 1), headers={'Last-Event-ID': '3 \t'}) as st:
        eq(st.messages(2), ms[3:], 'Last-Event-ID with trailing blanks')


@test
def resume_is_exact_across_reconnects():
    """a reader that reconnects with its last id, while messages commit, misses none and repeats none"""
    gw = shared.get()
    got, last = [], 0
    for round_ in range(4):
        with Stream(gw, events_path('h-exact'), headers={'Last-Event-ID': str(last)}) as st:
            for i in range(3):
                gw.publish('h-exact', 'r%d-%d' % (round_, i))
            for m in st.messages(3 if round_ == 0 else 5):
                got.append(m['seq'])
            last = got[-1]
        # Published while no stream is open: the next one replays them.
        gw.publish('h-exact', 'gap-%d-a' % round_)
        gw.publish('h-exact', 'gap-%d-b' % round_)
    eq(got, list(range(1, len(got) + 1)), 'every seq once, in order')
    eq(len(got), 3 + 3 * 5, 'count')


@test
def bad_cursor_is_a_400_before_the_stream():
    """since or Last-Event-ID past the top: 400 invalid_cursor; not a number, or Last-Event-ID twice: invalid_parameter"""
    gw = shared.get()
    gw.publish('h-bad', 'one')
    cases = [
        (events_path('h-bad', 2), {}, 400, 'invalid_cursor'),
        (events_path('h-bad'), {'Last-Event-ID': '9'}, 400, 'invalid_cursor'),
        (events_path('h-bad', 'x'), {}, 400, 'invalid_parameter'),
        (events_path('h-bad', '-1'), {}, 400, 'invalid_parameter'),
        (events_path('h-bad'), {'Last-Event-ID': '1x'}, 400, 'invalid_parameter'),
        # Two fields: which one counts is ambiguous, as with since= twice.
        (events_path('h-bad'), {'Last-Event-ID': '1', 'last-event-id': '0'}, 400,
         'invalid_parameter'),
        (events_path('h-bad'), {'Last-Event-ID': '', 'last-event-id': '0'}, 400,
         'invalid_parameter'),
        (events_path('h-bad'), {'Last-Event-ID': '0', 'last-event-id': ''}, 400,
         'invalid_parameter'),
        (events_path('bad!name', 0), {}, 400, 'invalid_channel'),
        (events_path('x' * 65, 0), {}, 400, 'invalid_channel'),
    ]
    for path, hdrs, status, code in cases:
        r = gw.get(path, headers=hdrs)
        harness.check_error(r, status, code, '%s %s' % (path, hdrs))
        eq(r.header('Content-Type'), 'application/json', '%s: a JSON answer, no stream' % path)
        if code == 'invalid_cursor':
            said = r.json['error']['message']
            eq(said, "%s is beyond the last seq of 'h-bad' (1)"
               % ('Last-Event-ID 9' if 'Last-Event-ID' in hdrs else 'since 2'),
               'the message names the cursor the client sent, and the top')
    r = gw.request('POST', events_path('h-bad', 0), body=b'')
    harness.check_error(r, 405, 'method_not_allowed', 'POST to the stream')
    eq(open_sse(gw), 0, 'no stream was opened for any of them')


@test
def gap_event_in_place():
    """rows deleted from the database: event gap with the id of the hole's end, then the rest"""
    gw = shared.get()
    for i in range(1, 8):
        gw.publish('h-gap', 'm%d' % i)
    harness.db_sql(gw.db, "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels"
                   " WHERE name = 'h-gap') AND seq IN (3, 4, 5)")
    with Stream(gw, events_path('h-gap', 0)) as st:
        evs = [st.next_of(kinds=('message', 'gap')) for _ in range(5)]
        eq([(e['event'], e['id']) for e in evs],
           [('message', '1'), ('message', '2'), ('gap', '5'), ('message', '6'), ('message', '7')],
           'events and their ids')
        eq(json.loads(evs[2]['data']),
           {'type': 'gap', 'channel': 'h-gap', 'from': 3, 'to': 5, 'first_seq': 6}, 'the gap data')
    # Resuming inside the hole: the rest of it, then the messages.
    with Stream(gw, events_path('h-gap'), headers={'Last-Event-ID': '3'}) as st:
        ev = st.next_of(kinds=('message', 'gap'))
        eq((ev['event'], ev['id'], json.loads(ev['data'])['from']), ('gap', '5', 4), 'rest of the hole')
        eq([m['seq'] for m in st.messages(2)], [6, 7], 'then 6 and 7')


@test
def heartbeat_comments():
    """a quiet stream gets ': ping' comments at the heartbeat interval"""
    gw = harness.Gateway(args=['--heartbeat', '1'])
    with Stream(gw, events_path('h-ping', 0)) as st:
        t0 = time.monotonic()
        pings = 0
        while pings < 2:
            ev = st.event(timeout=5)
            check(ev is not None, 'the stream ended')
            eq(ev['data'], None, 'nothing but comments on a quiet channel: %r' % ev)
            pings += ev['comments'].count('ping')
        took = time.monotonic() - t0
        check(1.0 <= took < 4.5, 'two pings took %.2f s, want about 2 s' % took)


@test
def slow_consumer_gets_error_event_then_the_end():
    """a reader that does not read: event error slow_consumer naming its last seq, then the end;
    it resumes from there with nothing lost; another stream is not slowed"""
    gw = harness.Gateway(args=['--max-outbuf', '65536'])
    body = 'x' * 60000
    slow = Stream(gw, events_path('h-slow', 0), rcvbuf=4096)
    fast = Stream(gw, events_path('h-slow', 0))
    n = 250  # 15 MB: more than the socket buffers hold
    conn = gw.connect()
    for i in range(n):
        m = gw.publish('h-slow', '%04d%s' % (i + 1, body), conn=conn)
        # The next publish waits for this event: a reader that keeps up never holds more than one
        # message, whatever the store's commit rate (a reader left to race the commits is a slow
        # consumer as soon as the socket buffers between them fill, as the rule says).
        eq([e['seq'] for e in fast.messages(1)], [m['seq']], 'the reader that reads got it')
    conn.close()
    gw.wait_stderr(r'sse session \w+ \S+: slow consumer')
    seqs, farewell = [], None
    for ev in slow.until_end():
        if ev['event'] == 'message' and ev['data']:
            m = json.loads(ev['data'])
            eq(m['body'][:4], '%04d' % m['seq'], 'a whole message')
            seqs.append(m['seq'])
        elif ev['event'] == 'error':
            farewell = json.loads(ev['data'])
    check(farewell is not None, 'an error event at the end: %r' % slow.body[-400:])
    eq(farewell['code'], 'slow_consumer', 'its code')
    eq(seqs, list(range(1, len(seqs) + 1)), 'what it got is in order, without a hole')
    check(len(seqs) < n, 'it did not get everything (%d)' % len(seqs))
    eq(farewell['last_seq'], {'h-slow': seqs[-1] if seqs else 0}, 'last_seq = the last it got')
    check(slow.ended, 'the stream ended')
    slow.close()
    fast.close()
    last = seqs[-1] if seqs else 0
    with Stream(gw, events_path('h-slow'), headers={'Last-Event-ID': str(last)}) as again:
        eq([m['seq'] for m in again.messages(n - last)], list(range(last + 1, n + 1)),
           'resumed with Last-Event-ID: the rest, exactly')


@test
def slow_consumer_of_small_messages_ends_whole():
    """a reader that stops reading during a burst of 6,000 small messages, then reads: every
    chunk whole (none promised lines the slow-consumer rule then dropped), the error event,
    then the last chunk"""
    gw = harness.Gateway(args=['--max-outbuf', '65536', '--sync', 'normal'])
    gw.publish('h-slow-small', 'first')
    slow = Stream(gw, events_path('h-slow-small', 0), rcvbuf=4096)
    slow.next_of()
    with Session(gw) as pub:
        body = 'x' * 900
        pub.send(''.join('PUB h-slow-small %d-%s\n' % (i, body) for i in range(6000)).encode())
        for _ in range(6000):
            pub.reply(timeout=60)
    gw.wait_stderr(r'sse session \w+ \S+: slow consumer')
    evs = slow.until_end(timeout=30)
    seqs = [int(e['id']) for e in evs if e['event'] == 'message' and e['data']]
    eq(seqs, list(range(2, len(seqs) + 2)), 'in order, without a hole')
    errs = [json.loads(e['data']) for e in evs if e['event'] == 'error']
    eq([e['code'] for e in errs], ['slow_consumer'], 'the farewell')
    eq(errs[0]['last_seq'], {'h-slow-small': seqs[-1]}, 'naming the last seq it got')
    check(slow.whole, 'the stream ended with the last chunk, not cut: %r' % slow.raw[-200:])
    slow.close()
    gw.stop()


@test
def many_streams_at_once():
    """300 streams on one channel each get a message, then all are let go and freed"""
    gw = harness.Gateway()
    n = 300
    streams = [Stream(gw, events_path('h-many', 0), read_head=False) for _ in range(n)]
    for st in streams:
        st.read_head()
        eq(st.status, 200, 'status')
    harness.wait_for(lambda: open_sse(gw) == n, '%d streams open' % n)
    m = gw.publish('h-many', 'to all')
    for i, st in enumerate(streams):
        eq(st.messages(1), [m], 'stream %d' % i)
    for st in streams:
        st.close()
    harness.wait_for(lambda: open_sse(gw) == 0, 'every session freed', timeout=15)
    # A client that leaves is one info line of its session, not a warning of libmicrohttpd's each.
    warned = [l for l in gw.stderr_text().splitlines() if ' warn ' in l and 'http:' in l]
    eq(warned, [], 'no warning for streams their clients closed')
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['rest'] == 1,
                     'every HTTP connection closed but the one asking', timeout=5)


@test
def streams_hold_no_http_connection_and_little_memory():
    """1000 idle streams: each costs a session and a socket (a few KiB), not an HTTP connection
    (--max-connections 32 does not count them) nor libmicrohttpd's 20 KiB of buffers"""
    gw = harness.Gateway(args=['--max-connections', '32'], prefix=harness.address_limit(512))
    n = 1000
    warm = [Stream(gw, events_path('h-idle', 0)) for _ in range(20)]
    rss0 = harness.rss_kb(gw)
    streams = []
    for _ in range(n):  # one at a time: a request under way does hold a connection
        st = Stream(gw, events_path('h-idle', 0))
        eq(st.status, 200, 'status')
        ev = st.event()  # the hello, as a comment
        check(ev is not None and any('hello' in c for c in ev['comments']), 'hello: %r' % ev)
        streams.append(st)
    harness.wait_for(lambda: open_sse(gw) == n + len(warm), '%d streams open' % n)
    grew = harness.rss_kb(gw) - rss0
    print('# %d idle streams: RSS +%d kB, %.2f KiB each' % (n, grew, grew / n))
    if not harness.sanitized():
        # Served by libmicrohttpd, a stream kept its connection's pool: 32.5 KiB each.
        check(grew < n * 6, 'RSS grew by %d kB for %d streams' % (grew, n))
    # The stats requests before this one closed their connections: the gateway may read those
    # ends after this request, so the count is waited for.
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['rest'] == 1,
                     'HTTP connections open: only the one asking', timeout=5)
    m = gw.publish('h-idle', 'to every stream')
    for i, st in enumerate(streams):
        eq(st.messages(1), [m], 'stream %d' % i)
    for st in streams + warm:
        st.close()
    harness.wait_for(lambda: open_sse(gw) == 0, 'every session freed', timeout=15)
    gw.stop()


@test
def max_sse_streams_is_a_429():
    """--max-sse-streams 2: a third stream is 429 too_many_sessions with Retry-After, nothing
    opened; once one closes, a new one opens"""
    gw = harness.Gateway(args=['--max-sse-streams', '2'])
    a = Stream(gw, events_path('h-max', 0))
    b = Stream(gw, events_path('h-max', 0))
    harness.wait_for(lambda: open_sse(gw) == 2, 'two streams open')
    r = gw.get(events_path('h-max', 0))
    eq(r.status, 429, 'status past the limit')
    eq(r.json['error']['code'], 'too_many_sessions', 'code')
    check('--max-sse-streams' in r.json['error']['message'], 'names the flag: %r' % r.json)
    eq(r.header('Retry-After'), '1', 'Retry-After')
    eq(open_sse(gw), 2, 'nothing more opened')
    a.close()
    harness.wait_for(lambda: open_sse(gw) == 1, 'one closed')
    with Stream(gw, events_path('h-max', 0)) as c:
        eq(c.status, 200, 'room again')
        m = gw.publish('h-max', 'x')
        eq(c.messages(1), [m], 'the new stream works')
        eq(b.messages(1), [m], 'the old one too')
    b.close()
    gw.stop()


@test
def http10_stream_runs_until_the_close():
    """an HTTP/1.0 request: the stream is not chunked, says Connection: close, and ends with the
    connection (here at SIGTERM, after its bye event)"""
    gw = harness.Gateway()
    sock = socket.create_connection(('127.0.0.1', gw.http_port), timeout=TIMEOUT)
    sock.sendall(b'GET /v1/channels/h-10/events?since=0 HTTP/1.0\r\nHost: x\r\n\r\n')
    data = b''
    while b'"op":"sub"' not in data:
        got = sock.recv(65536)
        check(got, 'closed early: %r' % data)
        data += got
    head = data.split(b'\r\n\r\n', 1)[0].decode('latin-1').lower()
    check(head.startswith('http/1.1 200'), 'status line: %r' % head)
    check('transfer-encoding' not in head, 'not chunked: %r' % head)
    check('connection: close' in head, 'Connection: close: %r' % head)
    m = gw.publish('h-10', 'plain')
    while ('"seq":%d' % m['seq']).encode() not in data:
        got = sock.recv(65536)
        check(got, 'closed before the message: %r' % data[-300:])
        data += got
    stopped = []
    stopper = threading.Thread(target=lambda: stopped.append(gw.stop()))  # SIGTERM, then the wait
    stopper.start()
    while True:
        got = sock.recv(65536)
        if not got:
            break
        data += got
    stopper.join(15)
    body = data.split(b'\r\n\r\n', 1)[1].decode()
    check('event: bye' in body, 'a bye event before the close: %r' % body[-300:])
    check(body.endswith('\n\n'), 'the body ends with a whole event: %r' % body[-100:])
    sock.close()
    eq(stopped, [0], 'exit status')


@test
def small_window_reader_gets_every_chunk_whole():
    """a reader with a 4 KiB window, 1,500 messages of 10 B to 20 KB queued at once: chunks cut
    anywhere by a full socket still arrive whole (size, data, CRLF), every message once, in order"""
    gw = harness.Gateway(args=['--max-outbuf', str(64 << 20)])
    st = Stream(gw, events_path('h-window', 0), rcvbuf=4096)
    n, sizes = 1500, [10, 700, 4093, 20000, 1, 333]
    conn = gw.connect()
    for i in range(n):
        gw.publish('h-window', '%05d' % (i + 1) + 'y' * sizes[i % len(sizes)], conn=conn)
    conn.close()
    got = st.messages(n, timeout=60)
    eq([m['seq'] for m in got], list(range(1, n + 1)), 'every message once, in order')
    check(all(m['body'][:5] == '%05d' % m['seq'] and len(m['body']) == 5 + sizes[(m['seq'] - 1)
              % len(sizes)] for m in got), 'each message whole')
    st.close()
    gw.stop()


@test
def vanished_client_frees_its_session():
    """a client that goes away while its stream waits: the session is closed and freed at once"""
    gw = shared.get()
    st = Stream(gw, events_path('h-gone', 0))
    st.event()
    harness.wait_for(lambda: open_sse(gw) >= 1, 'the stream open')
    before = open_sse(gw)
    st.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b'\x01\x00\x00\x00\x00\x00\x00\x00')
    st.close()  # a reset: the client is gone
    harness.wait_for(lambda: open_sse(gw) == before - 1, 'its session freed', timeout=5)
    gw.wait_stderr(r'sse session \w+ \S+ closed: client closed')
    gw.publish('h-gone', 'nobody listens')  # no stream left to push to: nothing breaks


@test
def head_request_opens_nothing():
    """HEAD: the stream's head, no body, no session"""
    gw = shared.get()
    r = gw.head(events_path('h-headreq', 0))
    eq(r.status, 200, 'status')
    eq(r.header('Content-Type'), 'text/event-stream', 'Content-Type')
    eq(open_sse(gw), 0, 'no session')


@test
def metrics_label_sse():
    """/metrics and /v1/stats count sse streams and what they were sent"""
    gw = harness.Gateway()
    with Stream(gw, events_path('h-metrics', 0)) as st:
        gw.publish('h-metrics', 'counted')
        st.messages(1)
        stats = gw.get('/v1/stats').json
        eq(stats['open']['sse'], 1, 'open sse')
        text = gw.get('/metrics').raw.decode()
        check(re.search(r'^visavis_open\{transport="sse"\} 1$', text, re.M),
              'visavis_open{transport="sse"} 1 in /metrics')
        check(re.search(r'^visavis_messages_delivered_total\{transport="sse"\} 1$', text, re.M),
              'one message delivered over sse')
        check('via="sse"' not in text, 'sse publishes nothing: no via="sse" series')


@test
def shutdown_says_bye_and_ends_the_stream():
    """SIGTERM: the stream gets event bye and ends; the gateway exits 0 promptly"""
    gw = harness.Gateway()
    st = Stream(gw, events_path('h-stop', 0))
    st.event()
    stopped = []

    def stop():
        try:
            stopped.append(gw.stop())  # SIGTERM, then the wait for the exit
        except harness.Failure as e:
            stopped.append(e)
    stopper = threading.Thread(target=stop)
    stopper.start()
    evs = st.until_end(timeout=10)
    stopper.join(15)
    eq([e['event'] for e in evs if e['data']], ['bye'], 'the last event')
    eq(json.loads(evs[-1]['data'])['reason'], 'shutdown', 'its reason')
    st.close()
    eq(stopped, [0], 'exit status')
    check(gw.stop_seconds < 3, 'stopped in %.2f s' % gw.stop_seconds)


@test
def shutdown_with_a_stream_that_does_not_read():
    """SIGTERM while a stream's reader reads nothing: the stop ends it at the grace period, exit 0"""
    gw = harness.Gateway(args=['--max-outbuf', '67108864'])
    st = Stream(gw, events_path('h-stuck', 0), rcvbuf=4096)
    conn = gw.connect()
    for i in range(150):  # 9 MB: the socket buffers fill, the rest waits in the queue
        gw.publish('h-stuck', '%04d%s' % (i, 'y' * 60000), conn=conn)
    conn.close()
    eq(gw.stop(), 0, 'exit status')  # SIGTERM; the stream's bytes cannot all go
    check(re.search(r'grace period over', gw.stderr_text()), 'the stop waited for its deadline')
    st.close()


@test
def index_is_the_page_for_a_browser_and_json_otherwise():
    """GET /: the page (with its CSP) when Accept prefers text/html; the JSON index otherwise"""
    gw = shared.get()
    chrome = ('text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,'
              'image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7')
    r = gw.get('/', headers={'Accept': chrome})
    eq(r.status, 200, 'status')
    eq(r.header('Content-Type'), 'text/html; charset=utf-8', 'Content-Type')
    check(r.raw.startswith(b'<!doctype html>'), 'an HTML page')
    csp = r.header('Content-Security-Policy') or ''
    check("default-src 'none'" in csp and "script-src 'sha256-" in csp and
          "connect-src 'self'" in csp, 'a CSP that forbids loads from elsewhere: %s' % csp)
    check('unsafe-inline' not in csp, 'no unsafe-inline')
    eq(r.header('Vary'), 'Accept', 'Vary: Accept')
    check(not re.search(rb'(src|href)\s*=\s*"(https?:)?//', r.raw), 'no external reference')
    eq(gw.get('/?channel=x', headers={'Accept': chrome}).header('Content-Type'),
       'text/html; charset=utf-8', 'the page with a query')
    for accept in (None, '*/*', 'application/json', 'application/json, text/html;q=0.9'):
        r = gw.get('/', headers={'Accept': accept} if accept else {})
        eq(r.status, 200, 'status')
        eq(r.header('Content-Type'), 'application/json', 'Accept %r: the JSON index' % accept)
        check(any(e['path'].startswith('/v1/channels/{channel}/events') for e in r.json['endpoints']),
              'the index lists the events endpoint: %r' % r.json)
        eq(r.header('Vary'), 'Accept', 'Vary: Accept')
    eq(gw.get('/v1', headers={'Accept': chrome}).header('Content-Type'), 'application/json',
       '/v1 stays the JSON index')


harness.main()
