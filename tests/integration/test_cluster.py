#!/usr/bin/env python3
"""Several gateways on one PostgreSQL database (docs/scaling.md): a commit on
one reaches the subscribers of the other, seqs stay 1, 2, 3 ... whoever
publishes, and neither a gateway killed under load nor a database restarted
under load loses an acknowledged message or pushes one twice.

Every test starts its own gateways on a fresh database of the test's
PostgreSQL server (pgserver.py); the file skips where no server can run.
Load is bounded: a few hundred publishes per test, on loopback.
"""

import sys
sys.dont_write_bytecode = True

import contextlib
import http.client
import os
import json
import signal
import socket
import tempfile
import threading
import time

import harness
from harness import test, check, check_error, eq, wait_for, check_push, check_session_error, Session


def pair(**kw):
    """Two gateways, A and B, on one fresh database."""
    srv = harness.pg_server()
    url = srv.new_database()
    return harness.Gateway(db=url, **kw), harness.Gateway(db=url, **kw)


def sse_next_message(resp):
    """The data of the next "message" event of an SSE response (http.client
    reads the chunks; the socket's timeout bounds the wait)."""
    event = None
    while True:
        line = resp.readline()
        check(line, 'the SSE stream ended')
        line = line.decode('utf-8').rstrip('\r\n')
        if line.startswith('event: '):
            event = line[7:]
        elif line.startswith('data: ') and event == 'message':
            return json.loads(line[6:])


def cut(gw, role):
    """Ends the database connections of one kind (writer, reader, feed) of
    every gateway on gw's database, as pg_terminate_backend does; how many."""
    return int(harness.pg_server().sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name ="
        " 'visavis %s' AND datname = '%s'" % (role, gw.db.rsplit('/', 1)[1]))[0])


def held(gw):
    """Long-polls the gateway holds right now."""
    return gw.get('/v1/stats').json['open']['longpoll']


def gone(gw):
    """The gateway was killed, or is not running (set before the kill itself)."""
    return gw.killed_on_purpose or not gw.running


def consecutive(seqs, first=1):
    """seqs is first, first + 1, ... with no hole and no repeat."""
    want = list(range(first, first + len(seqs)))
    if seqs != want:
        bad = next(i for i, (a, b) in enumerate(zip(seqs, want)) if a != b) if \
            len(seqs) == len(want) else min(len(seqs), len(want))
        raise harness.Failure('seqs are not %d..%d: around index %d: %s' % (
            first, first + len(seqs) - 1, bad, seqs[max(0, bad - 3):bad + 4]))


class Publisher(threading.Thread):
    """POSTs body prefix-N to channel on one gateway after another (keep-alive),
    until stopped or count reached; records every answer. A gateway that is
    gone (connection refused, reset) sends it to the next one in gws, as a
    load balancer would."""

    def __init__(self, gws, channel, prefix, count=None, pause=0.0):
        super().__init__(daemon=True)
        self.gws = list(gws)
        self.channel = channel
        self.prefix = prefix
        self.count = count
        self.pause = pause
        self.acked = []        # message objects answered 201
        self.refused = []      # (status, error code, seconds) of every other answer
        self.lost = []         # bodies sent when the connection broke (no answer)
        self.halt = threading.Event()
        self.error = None
        self.n = 0

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def _run(self):
        conn = None
        while not self.halt.is_set() and (self.count is None or self.n < self.count):
            gw = self.gws[0]
            if conn is None:
                conn = http.client.HTTPConnection('127.0.0.1', gw.http_port, timeout=30)
            body = '%s-%d' % (self.prefix, self.n)
            t0 = time.monotonic()
            try:
                conn.request('POST', '/v1/channels/%s/messages' % self.channel,
                             body=json.dumps({'sender': self.prefix, 'body': body}),
                             headers={'Content-Type': 'application/json'})
                r = conn.getresponse()
                raw = r.read()
            except (ConnectionError, http.client.HTTPException, socket.timeout, OSError):
                conn.close()
                conn = None
                self.lost.append(body)
                if gone(gw) and len(self.gws) > 1:
                    self.gws.pop(0)  # that gateway is gone: on to the next
                else:
                    time.sleep(0.01)
                self.n += 1
                continue
            dt = time.monotonic() - t0
            obj = json.loads(raw)
            if r.status == 201:
                self.acked.append(obj)
            else:
                self.refused.append((r.status, obj.get('error', {}).get('code'), dt))
                time.sleep(0.01)  # as a client told Retry-After would, briefly
            self.n += 1
            if self.pause:
                time.sleep(self.pause)
        if conn:
            conn.close()

    def finish(self, timeout=120):
        self.halt.set()
        self.join(timeout)
        check(not self.is_alive(), 'a publisher is still running after %ds' % timeout)
        check(self.error is None, 'publisher %s failed: %r' % (self.prefix, self.error))
        return self


class Follower(threading.Thread):
    """A TCP subscriber of channel from since 0 that records every push; when
    its gateway goes away it resumes on the next of gws with SUB channel
    <last seq>, as a client does."""

    def __init__(self, gws, channel):
        super().__init__(daemon=True)
        self.gws = list(gws)
        self.channel = channel
        self.seqs = []
        self.msgs = []
        self.moves = 0
        self.eofs = 0
        self.halt = threading.Event()
        self.subscribed = threading.Event()
        self.error = None

    def run(self):
        try:
            self._run()
        except Exception as e:  # noqa: BLE001 - reported by finish()
            self.error = e

    def _run(self):
        while not self.halt.is_set():
            gw = self.gws[0]
            s = Session(gw, timeout=30)
            last = self.seqs[-1] if self.seqs else 0
            r = s.request('SUB %s %d' % (self.channel, last))
            eq(r.get('type'), 'ok', 'SUB answer on resume from %d' % last)
            self.subscribed.set()
            while not self.halt.is_set():
                try:
                    lines = s.collect(0.2)
                except harness.Failure:
                    break
                for p in lines:
                    if p['type'] == 'message':
                        self.seqs.append(p['seq'])
                        self.msgs.append(p)
                    elif p['type'] not in ('ping',):
                        raise harness.Failure('unexpected line from %s: %s' % (self.channel, p))
                if s.eof:
                    break
            s.close()
            if self.halt.is_set():
                return
            self.eofs += 1
            if not gone(gw):
                raise harness.Failure('the session of a subscriber ended while its gateway runs')
            check(len(self.gws) > 1, 'the gateway of a subscriber went away, and no other is left')
            self.gws.pop(0)
            self.moves += 1

    def wait_for(self, top, timeout=60):
        harness.wait_for(lambda: self.error or (self.seqs and self.seqs[-1] >= top),
                         'subscriber of %s to reach seq %d (at %s)'
                         % (self.channel, top, self.seqs[-1:] or 'nothing'), timeout=timeout)
        check(self.error is None, 'subscriber failed: %r' % (self.error,))

    def finish(self):
        self.halt.set()
        self.join(30)
        check(not self.is_alive(), 'a subscriber is still running')
        check(self.error is None, 'subscriber failed: %r' % (self.error,))
        return self


def all_acknowledged(pubs):
    """Runs the publishers to their end; each must have every publish
    answered 201. Returns the messages acknowledged, of all of them."""
    for p in pubs:
        p.start()
    for p in pubs:
        p.join(120)
        p.finish()
        eq(p.refused, [], 'answers other than 201 to %s' % p.prefix)
        eq(p.lost, [], 'publishes without an answer from %s' % p.prefix)
    return [m for p in pubs for m in p.acked]


def check_store(gw, channel, acked):
    """The channel is seqs 1..top without a hole; every acknowledged message
    is in it, unchanged; ids are unique and grow with seq."""
    stored = gw.read_all(channel)
    consecutive([m['seq'] for m in stored])
    by_id = {m['id']: m for m in stored}
    eq(len(by_id), len(stored), 'distinct ids in the channel')
    ids = [m['id'] for m in stored]
    eq(ids, sorted(ids), 'ids in seq order')
    missing = [m for m in acked if by_id.get(m['id']) != m]
    check(not missing, '%d acknowledged messages are not in the store as answered, first: %s'
          % (len(missing), missing[:3]))
    return stored


@test
def publish_on_a_reaches_b():
    """publish on A: a TCP subscriber, an SSE stream and a long-poll on B get it, a read on B sees it"""
    a, b = pair()
    with Session(b) as s:
        eq(s.request('SUB across')['type'], 'ok', 'SUB on B')
        c = b.connect(timeout=60)
        c.request('GET', '/v1/channels/across/messages?since=0&wait=30')
        harness.wait_for(lambda: held(b) == 1, 'the long-poll to be held by B')
        ev = b.connect(timeout=30)
        # since=0: whether the stream's subscription is set up before the
        # commit or after, the message comes (the channel is empty now).
        ev.request('GET', '/v1/channels/across/events?since=0',
                   headers={'Accept': 'text/event-stream'})
        stream = ev.getresponse()
        eq(stream.status, 200, 'SSE stream status on B')
        harness.wait_for(lambda: b.get('/v1/stats').json['open']['sse'] == 1,
                         'the SSE stream to be open on B')
        t0 = time.monotonic()
        m = a.publish('across', 'from A', sender='ana')
        eq(check_push(s.push(), channel='across', body='from A', sender='ana'), m,
           'the push on B is the message A answered')
        eq(sse_next_message(stream), m, 'the SSE event on B is the message A answered')
        ev.close()
        r = c.getresponse()
        env = json.loads(r.read())
        took = time.monotonic() - t0
        c.close()
        eq(r.status, 200, 'long-poll status')
        eq(env['messages'], [m], 'the long-poll on B returns the message')
        check(took < 10, 'the long-poll returned %.1f s after the publish on A' % took)
        eq(b.read('across', since=0)['messages'], [m], 'GET on B')
        m2 = b.publish('across', 'from B')
        eq(m2['seq'], 2, 'seq of the next message, published on B')
        eq(check_push(s.push(), body='from B'), m2, 'B pushes its own commit too')
    # And the other way, over a session on A.
    with Session(a) as s:
        eq(s.request('SUB across 2')['type'], 'ok', 'SUB on A')
        m3 = b.publish('across', 'from B to A')
        eq(check_push(s.push(), body='from B to A'), m3, 'a commit on B reaches A')


@test
def concurrent_publishers_on_both():
    """20 publishers on A and B (10 each, 15 POSTs each) to one channel: seqs 1..300 exactly once, both fan out all"""
    a, b = pair()
    subs = [Follower([a], 'crowd'), Follower([b], 'crowd')]
    for f in subs:
        f.start()
        check(f.subscribed.wait(30), 'a subscriber did not subscribe')
    pubs = [Publisher([a if i % 2 else b], 'crowd', 'p%02d' % i, count=15) for i in range(20)]
    acked = all_acknowledged(pubs)
    eq(len(acked), 300, 'acknowledged publishes')
    consecutive(sorted(m['seq'] for m in acked))
    eq(len({m['id'] for m in acked}), 300, 'distinct ids')
    for p in pubs:
        seqs = [m['seq'] for m in p.acked]
        eq(seqs, sorted(seqs), 'one publisher\'s seqs grow in the order it was answered')
    check_store(a, 'crowd', acked)
    by_seq = {m['seq']: m for m in acked}
    for f, name in zip(subs, 'AB'):
        f.wait_for(300)
        f.finish()
        consecutive(f.seqs)
        eq(len(f.seqs), 300, 'pushes to the subscriber on %s' % name)
        bad = [p for p in f.msgs if {k: p[k] for k in harness.MESSAGE_KEYS} != by_seq[p['seq']]]
        check(not bad, 'pushes on %s that differ from the answer: %s' % (name, bad[:2]))


class Spreader(threading.Thread):
    """A TCP session that sends count PUBs at once (pipelined: the gateway
    batches them), going round channels in the order given; then reads the
    replies."""

    def __init__(self, gw, channels, count):
        super().__init__(daemon=True)
        self.gw = gw
        self.channels = channels
        self.count = count
        self.replies = []
        self.error = None

    def run(self):
        try:
            with Session(self.gw, timeout=60) as s:
                s.send(''.join('PUB %s m%d\n' % (self.channels[i % len(self.channels)], i)
                               for i in range(self.count)))
                self.replies = [s.reply() for _ in range(self.count)]
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


@test
def burst_reaches_every_subscriber_on_b():
    """400 PUBs pipelined on A; on B 15 subscribers live, 15 more replaying from 0 meanwhile (their reads see A's commits before the notices): each gets 1..400 exactly once, the last ones without waiting for a later commit"""
    a, b = pair()
    live = [Session(b, timeout=30) for _ in range(15)]
    late = [Session(b, timeout=30) for _ in range(15)]
    try:
        for s in live:
            eq(s.request('SUB burst')['type'], 'ok', 'SUB on B')
        pub = Spreader(a, ['burst'], 400)
        pub.start()
        for s in late:
            s.cmd('SUB burst 0')
        pub.join(60)
        check(pub.error is None and len(pub.replies) == 400, 'the PUBs on A: %s' % pub.error)
        for s in late:
            eq(s.reply().get('type'), 'ok', 'SUB burst 0 on B')
        for i, s in enumerate(live + late):
            seqs = [p['seq'] for p in s.messages(400, timeout=15)]
            consecutive(seqs)
            eq(s.collect(0.05), [], 'nothing more to subscriber %d' % i)
    finally:
        for s in live + late:
            s.close()


@test
def strict_isolation_default():
    """a database whose default isolation is serializable: 10 publishers on A and B to one channel all pass (no 40001 store_busy), seqs 1..200"""
    srv = harness.pg_server()
    url = srv.new_database()
    srv.sql("ALTER DATABASE \"%s\" SET default_transaction_isolation = 'serializable'"
            % url.rsplit('/', 1)[1])
    a, b = harness.Gateway(db=url), harness.Gateway(db=url)
    pubs = [Publisher([a if i % 2 else b], 'strict', 'p%02d' % i, count=20) for i in range(10)]
    acked = all_acknowledged(pubs)
    eq(len(acked), 200, 'acknowledged publishes')
    consecutive(sorted(m['seq'] for m in acked))
    check_store(a, 'strict', acked)


@test
def many_channels_both_ways():
    """3 rounds of 8 sessions on A and B pipelining 100 PUBs round 6 channels in opposite orders: all pass (no two batches wait for each other in a circle), each channel 1..n"""
    a, b = pair()
    names = ['ring%d' % i for i in range(6)]
    acked = []
    for _ in range(3):
        spreaders = [Spreader(a if i % 2 else b, names if i % 2 else names[::-1], 100)
                     for i in range(8)]
        for sp in spreaders:
            sp.start()
        for sp in spreaders:
            sp.join(120)
            check(not sp.is_alive(), 'a session is still publishing')
            check(sp.error is None, 'a session failed: %r' % (sp.error,))
            bad = [r for r in sp.replies if r.get('type') != 'ok']
            check(not bad, '%d PUBs refused, first: %s' % (len(bad), bad[:2]))
            acked += [r['message'] for r in sp.replies]
    eq(len(acked), 3 * 8 * 100, 'acknowledged publishes')
    for ch in names:
        mine = [m for m in acked if m['channel'] == ch]
        eq(len(check_store(b, ch, mine)), len(mine), 'messages in %s' % ch)


@test
def resume_on_the_other_gateway():
    """a client on A reconnects to B with its last seq: exactly what it missed, then live"""
    a, b = pair()
    with Session(a) as s:
        eq(s.request('SUB moving')['type'], 'ok', 'SUB on A')
        first = [a.publish('moving', 'm%d' % i) for i in range(1, 4)]
        got = [check_push(p) for p in s.messages(3)]
        eq(got, first, 'live on A')
    last = got[-1]['seq']
    missed = [a.publish('moving', 'a%d' % i) for i in range(3)] + \
        [b.publish('moving', 'b%d' % i) for i in range(3)]
    with Session(b) as s:
        r = s.request('SUB moving %d' % last)
        eq((r['type'], r['since'], r['top']), ('ok', last, last + 6), 'SUB on B from the last seq')
        eq([check_push(p) for p in s.messages(6)], missed, 'exactly what it missed, in order')
        live = a.publish('moving', 'live from A')
        eq(check_push(s.push()), live, 'then live, from a commit on A')
        eq(s.collect(0.3), [], 'nothing twice')


@test
def gateways_start_together():
    """four gateways started at once on an empty database: one migrates, all serve it"""
    srv = harness.pg_server()
    url = srv.new_database()
    gws = [harness.Gateway(db=url, start=False) for _ in range(4)]
    errors = []

    def start(g):
        try:
            g.start()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=start, args=(g,)) for g in gws]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    check(not errors, 'a gateway did not start: %s' % errors[:1])
    for m in (1, 2, 3):
        applied = sum(g.stderr_text().count('applied PostgreSQL migration %d' % m) for g in gws)
        eq(applied, 1, 'gateways that applied migration %d' % m)
    eq(harness.schema_version(url), 3, 'schema version')
    seqs = [g.publish('together', 'x')['seq'] for g in gws]
    eq(seqs, [1, 2, 3, 4], 'seqs, one publish on each in turn')


def xact_count(srv, dbname):
    """Transactions the server has counted on dbname so far."""
    srv.sql('SELECT pg_stat_force_next_flush()', dbname)
    return int(srv.sql("SELECT xact_commit + xact_rollback FROM pg_stat_database "
                       "WHERE datname = '%s'" % dbname)[0])


@test
def forged_notice_is_checked():
    """a NOTIFY anyone can send, claiming a top of 1000000: no read loop, SUB's top and cursor check stay the store's"""
    a, b = pair()
    srv = harness.pg_server()
    dbname = a.db.rsplit('/', 1)[1]
    for i in range(3):
        a.publish('forged', 'm%d' % i)
    with Session(a) as s:
        eq(s.request('SUB forged')['top'], 3, 'SUB on A')
        srv.sql("NOTIFY visavis, 'deadbeefdeadbeef 1000000 forged'", dbname)
        # B's commit is noticed after the forged one: once it is pushed, A has read both.
        m = b.publish('forged', 'real')
        eq(check_push(s.push(), body='real'), m, 'the push of the real commit on B')
        before = time.monotonic(), xact_count(srv, dbname)
        time.sleep(2)
        took = time.monotonic() - before[0]
        n = xact_count(srv, dbname) - before[1]
        check(n < 200, '%d transactions on the database in %.1f s with one idle subscriber: '
              'a read loop' % (n, took))
    with Session(a) as s:
        r = s.request('SUB forged')
        eq((r.get('type'), r.get('top')), ('ok', 4), 'a new SUB on A: the store\'s top (%s)' % r)
        r = s.request('SUB forged 500')
        check_session_error(r, ('invalid_cursor',), op='sub')


@test
def seqs_that_start_again_under_the_other_gateway():
    """rows and count removed by hand, then a commit on B at seq 1: A's subscriber past it is told invalid_cursor"""
    a, b = pair()
    for i in range(3):
        a.publish('again', 'm%d' % i)
    with Session(a) as s:
        eq(s.request('SUB again')['top'], 3, 'SUB on A at the top')
        harness.db_sql(a.db, "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels"
                       " WHERE name = 'again')")
        harness.db_sql(a.db, "DELETE FROM channels WHERE name = 'again'")
        eq(b.publish('again', 'new1')['seq'], 1, 'the store counts from 1 again, on B')
        err = s.reply()
        check_session_error(err, ('invalid_cursor',), op='sub')
        check('went back from 3 to 1' in err['message'], 'A read the new top: %s' % err['message'])


@test
def a_feed_whose_server_hangs_is_found_out():
    """A's LISTEN backend stopped (SIGSTOP, so TCP still answers): A probes it, reconnects, and its subscriber gets B's commit"""
    srv = harness.pg_server()
    url = srv.new_database()
    dbname = url.rsplit('/', 1)[1]
    a = harness.Gateway(db=url)
    feed = srv.sql("SELECT pid FROM pg_stat_activity WHERE application_name = 'visavis feed'"
                   " AND datname = '%s'" % dbname)
    eq(len(feed), 1, "A's feed backend, the only one on the database yet")
    os.kill(int(feed[0]), signal.SIGSTOP)
    try:
        b = harness.Gateway(db=url)
        with Session(a, timeout=40) as s:
            eq(s.request('SUB hang')['type'], 'ok', 'SUB on A')
            t0 = time.monotonic()
            m = b.publish('hang', 'from B')
            eq(check_push(s.push(), body='from B'), m, "B's commit reaches A's subscriber")
            took = time.monotonic() - t0
            check(took < 30, 'within the probe and its answer: %.1f s' % took)
        check(a.wait_stderr(r'store feed: lost the connection to the database \(listening: no '
                            r'answer to a probe within 5 s\)'), 'A says why it reconnected')
    finally:
        os.kill(int(feed[0]), signal.SIGCONT)


@test
def a_schema_it_does_not_read_is_said_every_time():
    """the schema moved to a version this gateway does not read, and its connections cut: every publish and read says schema_mismatch (500), none store_unavailable"""
    srv = harness.pg_server()
    a = harness.Gateway(db=srv.new_database())
    a.publish('schema', 'before')
    version = harness.schema_version(a.db)
    harness.set_schema_version(a.db, 99)
    try:
        check(cut(a, 'writer') == 1 and cut(a, 'reader') == 1, "A's writer and reader cut")
        codes = []
        for i in range(6):
            r = a.request('POST', '/v1/channels/schema/messages', obj={'body': 'x%d' % i})
            codes.append((r.status, r.json['error']['code']))
            r = a.get('/v1/channels/schema/messages?since=0')
            codes.append((r.status, r.json['error']['code']))
        eq(set(codes), {(500, 'schema_mismatch')}, 'every answer, the tries and between them')
    finally:
        harness.set_schema_version(a.db, version)


@test
def another_database_at_the_same_address():
    """the database moved aside under a running gateway, another made under its name and published to: the gateway uses none of it (no push of its seqs, 503 store_unavailable), and goes on when its own comes back"""
    srv = harness.pg_server()
    url = srv.new_database()
    dbname = url.rsplit('/', 1)[1]
    a = harness.Gateway(db=url)
    for i in range(3):
        a.publish('again', 'old%d' % i)
    with Session(a) as s:
        eq(s.request('SUB again')['top'], 3, 'SUB on A')
        # Moved aside (as a restore into a new database and a rename would
        # leave it), and a new one set up under its name by another gateway.
        srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS false' % dbname)
        srv.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s'"
                % dbname)
        wait_for(lambda: srv.sql("SELECT count(*) FROM pg_stat_activity WHERE datname = '%s'"
                                 % dbname) == ['0'], 'the connections to the database ended')
        srv.sql('ALTER DATABASE "%s" RENAME TO "%s_kept"' % (dbname, dbname))
        srv.sql('CREATE DATABASE "%s"' % dbname)
        b = harness.Gateway(db=url)
        eq([b.publish('again', 'new%d' % i)['seq'] for i in range(5)], [1, 2, 3, 4, 5],
           'seqs in the new database')
        a.wait_stderr(r'store feed: another database answers at the gateway\'s target', 20)
        eq(s.collect(1.0), [], 'no push of the new database\'s seqs 4 and 5')
        r = a.post('again', {'body': 'into which?'})
        check_error(r, 503, 'store_unavailable', 'a publish on A')
        check('another database' in r.json['error']['message'], 'the message says why: %s' % r)
        h = a.get('/healthz')
        eq((h.status, h.json['status'], h.json['error']['code']), (200, 'degraded', 'store_unavailable'),
           '/healthz on A meanwhile')
        check_error(a.get('/v1/channels/again/messages?since=3'), 503, 'store_unavailable',
                    'a read on A')
        # The one it started on comes back under its name: A goes on where it was.
        b.stop()
        srv.sql('DROP DATABASE "%s" WITH (FORCE)' % dbname)
        srv.sql('ALTER DATABASE "%s_kept" RENAME TO "%s"' % (dbname, dbname))
        srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS true' % dbname)
        a.wait_stderr(r'store feed: the database the gateway started on answers again', 20)
        m = a.publish('again', 'back')
        eq(m['seq'], 4, 'seq of the next publish on A')
        eq(a.get('/healthz').json, {'status': 'ok'}, '/healthz on A once a publish passed')
        eq(check_push(s.push()), m, 'its push')
    eq(a.stop(), 0, 'exit status of A')
    a.restart()
    eq(a.read('again')['next_since'], 4, 'what A reads after a restart')


@test
def recheck_after_the_feed_reconnects():
    """a commit B never heard of (made behind its back, feed cut): B's subscriber gets it once B listens again"""
    a, b = pair()
    srv = harness.pg_server()
    dbname = a.db.rsplit('/', 1)[1]
    with Session(b) as s:
        eq(s.request('SUB quiet')['type'], 'ok', 'SUB on B')
        m1 = a.publish('quiet', 'heard')
        eq(check_push(s.push()), m1, 'a notice carried the first')
        # A commit without a notice: nobody hears of it.
        srv.sql("UPDATE channels SET last_seq = 2, msg_count = 2 WHERE name = 'quiet';"
                " INSERT INTO messages (channel_id, seq, sender, body, ts, via)"
                " SELECT id, 2, 'psql', 'unheard'::bytea, 0, 'rest' FROM channels"
                " WHERE name = 'quiet'", dbname)
        eq(s.collect(0.5), [], 'no push without a notice')
        # Cut every feed's connection: on reconnecting, each reads its channels again.
        eq(cut(b, 'feed'), 2, 'feed connections cut (one per gateway)')
        p = check_push(s.push(timeout=30), channel='quiet', body='unheard', sender='psql')
        eq(p['seq'], 2, 'seq of the unheard commit')
    b.wait_stderr(r'store feed: connected to the database again')
    b.wait_stderr(r'core: reading the last seq of \d+ followed channels again')


@contextlib.contextmanager
def reads_refused(a, b, channel):
    """B cannot read from the store (its reader's connections cut, new ones
    refused) while A publishes on channel: yields A's message, which B's
    subscribers must read from the store; connections are let in again on the
    way out."""
    srv = harness.pg_server()
    dbname = a.db.rsplit('/', 1)[1]
    srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS false' % dbname)
    try:
        eq(cut(b, 'reader'), 2, 'reader connections cut (one per gateway)')
        # A's writer still works: its commit reaches B as a notice, and
        # B's subscriber must read it from the store, which B cannot now.
        m = a.publish(channel, 'two')
        b.wait_stderr(r"core: reading '%s' for a subscriber: .*; it waits for the database"
                      % channel)
        yield m
    finally:
        srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS true' % dbname)


@test
def subscriber_waits_for_the_database():
    """B's subscriber must read from the store and cannot (its reader's connection cut, new ones refused): it waits, then catches up by itself"""
    a, b = pair()
    with Session(b) as s:
        eq(s.request('SUB wait')['type'], 'ok', 'SUB on B')
        m1 = a.publish('wait', 'one')
        eq(check_push(s.push()), m1, 'live first')
        with reads_refused(a, b, 'wait') as m2:
            eq(s.collect(0.3), [], 'nothing yet, and no error: the session stays')
        # Nothing on B asks the store now: B tries again by itself, now and then.
        m3 = a.publish('wait', 'three')
        eq([check_push(p) for p in s.messages(2)], [m2, m3], 'caught up, in order')
        eq(s.collect(0.3), [], 'nothing twice')


@test
def waiting_subscriber_session_goes_on():
    """while B's subscriber waits for the database, its session's commands are answered (each one pumps the waiting subscription), and once the database is back it catches up once, in order"""
    a, b = pair()
    with Session(b) as s:
        eq(s.request('SUB cmds')['type'], 'ok', 'SUB on B')
        m1 = a.publish('cmds', 'one')
        eq(check_push(s.push()), m1, 'live first')
        with reads_refused(a, b, 'cmds') as m2:
            # Each command pumps the session's subscriptions: one that waits must not read
            # again on its own (it did, and went onto the waiting list twice: the loop spun).
            for i in range(3):
                eq(s.request('PING w%d' % i).get('token'), 'w%d' % i, 'PING while it waits')
            time.sleep(1.2)  # the gateway's own retry (every second) finds the store still gone
            eq(s.request('PING w3').get('token'), 'w3', 'PING after a retry')
        eq(check_push(s.push()), m2, 'caught up by itself')
        eq(s.request('PING back').get('token'), 'back', 'PING once the database is back')
        m3 = a.publish('cmds', 'three')
        eq(check_push(s.push()), m3, 'live again')
        eq(s.collect(0.3), [], 'nothing twice')
    with Session(b) as s2:
        eq(s2.request('PING other').get('token'), 'other', 'a new session is served')


@test
def new_stream_during_an_outage_is_told_to_retry():
    """B cannot read from the store: a new event stream is 200 text/event-stream with retry:, one error event (store_unavailable) and its end, so that an EventSource comes back (a 503 would stop it for good); once the store is back, a stream opens and carries what was published meanwhile"""
    a, b = pair()
    first = a.publish('sse-out', 'one')
    srv = harness.pg_server()
    dbname = a.db.rsplit('/', 1)[1]
    srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS false' % dbname)
    try:
        eq(cut(b, 'reader'), 2, 'reader connections cut (one per gateway)')
        # The first stream's read finds the connection gone; the next finds the reader
        # without one, between its attempts to reconnect: both are answered the same way.
        for which in ('the first stream', 'the next stream'):
            r = b.get('/v1/channels/sse-out/events?since=%d' % first['seq'],
                      headers={'Accept': 'text/event-stream'})
            eq(r.status, 200, 'status of %s the store cannot check now (%s)' % (which, r))
            eq(r.header('Content-Type'), 'text/event-stream', 'Content-Type')
            text = r.raw.decode()
            check(text.startswith('retry: 2000\n'), 'the retry comes first: %r' % text)
            events = [dict(ln.split(': ', 1) for ln in block.split('\n'))
                      for block in text.split('\n\n') if 'event: ' in block]
            eq([e['event'] for e in events], ['error'], 'one event, an error: %r' % text)
            check_session_error(json.loads(events[0]['data']), 'store_unavailable',
                                what='the event\'s data')
            eq(r.header('Connection'), 'close', 'and the stream ends')
        second = a.publish('sse-out', 'two')
    finally:
        srv.sql('ALTER DATABASE "%s" WITH ALLOW_CONNECTIONS true' % dbname)
    # As an EventSource does: after each stream that ended, wait its retry and come back.
    for attempt in range(10):
        ev = b.connect(timeout=30)
        ev.request('GET', '/v1/channels/sse-out/events', headers={
            'Accept': 'text/event-stream', 'Last-Event-ID': str(first['seq'])})
        stream = ev.getresponse()
        eq(stream.status, 200, 'a stream, or its retry, as the store comes back')
        if stream.getheader('Connection') != 'close':
            break
        ev.close()
        time.sleep(2.0)  # the retry: of the answer, as the browser waits it
    eq(sse_next_message(stream), second, 'what was published meanwhile, on attempt %d'
       % (attempt + 1))
    ev.close()


@test
def late_commit_reaches_its_own_gateway():
    """a PUB whose commit stays in doubt (the writer's server process stopped past the 15 s deadline: store_unavailable) and then commits after all reaches the same gateway's subscriber, with no other publish to wake it"""
    srv = harness.pg_server()
    url = srv.new_database()
    gw = harness.Gateway(db=url)
    dbname = url.rsplit('/', 1)[1]
    with Session(gw) as sub, Session(gw, timeout=60) as pub:
        eq(sub.request('SUB late')['type'], 'ok', 'SUB late')
        for i in range(3):
            eq(pub.request('PUB late m%d' % i)['type'], 'ok', 'PUB %d' % i)
        eq([m['seq'] for m in sub.messages(3)], [1, 2, 3], 'the first three, live')
        pid = int(srv.sql("SELECT pid FROM pg_stat_activity WHERE application_name ="
                          " 'visavis writer' AND datname = '%s'" % dbname)[0])
        os.kill(pid, signal.SIGSTOP)
        try:
            r = pub.request('PUB late in-doubt')  # the gateway gives up after 15 s
            check_session_error(r, 'store_unavailable', op='pub', what='a PUB left in doubt')
            check('may or may not be stored' in r['message'], 'the doubt is said: %s'
                  % r['message'])
        finally:
            os.kill(pid, signal.SIGCONT)  # its transaction commits now, 15 s late
        m = check_push(sub.push(timeout=20))
        eq((m['seq'], m['body']), (4, 'in-doubt'), 'the late commit, pushed by itself')
        eq(sub.collect(0.3), [], 'nothing twice')


@test
def refused_message_fails_alone():
    """a message PostgreSQL refuses (a CHECK another tool added) fails alone, store_failed; the rest of its batch is stored, seqs without a hole"""
    a, b = pair()
    srv = harness.pg_server()
    srv.sql("ALTER TABLE messages ADD CONSTRAINT no_boom CHECK (sender <> 'boom')",
            a.db.rsplit('/', 1)[1])
    with Session(a) as s:
        lines = []
        for i in range(12):
            sender = 'boom' if i in (3, 8) else 'ok'
            lines.append(json.dumps({'op': 'pub', 'channel': 'refuse', 'body': 'm%d' % i,
                                     'sender': sender}))
        s.send(''.join(line + '\n' for line in lines))  # pipelined: batched together
        replies = [s.reply() for _ in lines]
    for i, r in enumerate(replies):
        if i in (3, 8):
            harness.check_session_error(r, 'store_failed', op='pub', what='PUB from boom')
        else:
            eq(r.get('type'), 'ok', 'reply to PUB %d: %s' % (i, r))
    stored = b.read_all('refuse')
    eq([m['body'] for m in stored], ['m%d' % i for i in range(12) if i not in (3, 8)],
       'the others are stored, in order')
    consecutive([m['seq'] for m in stored])
    a.wait_stderr(r"store: publish to 'refuse' refused: .*no_boom")


@test
def kill9_under_load():
    """kill -9 gateway A under load: its publisher and subscriber move to B, nothing acknowledged is lost or pushed twice"""
    a, b = pair()
    subs = [Follower([a, b], 'k9'), Follower([b], 'k9')]
    for f in subs:
        f.start()
        check(f.subscribed.wait(30), 'a subscriber did not subscribe')
    pubs = [Publisher([a, b], 'k9', 'pa'), Publisher([b], 'k9', 'pb')]
    for p in pubs:
        p.start()
    harness.wait_for(lambda: len(pubs[0].acked) >= 50 and len(pubs[1].acked) >= 50,
                     '50 publishes acknowledged on each gateway', timeout=60)
    a.kill9()
    harness.wait_for(lambda: len(pubs[0].acked) >= 150 and subs[0].moves == 1,
                     "A's publisher and subscriber to go on on B", timeout=60)
    for p in pubs:
        p.finish()
        eq(p.refused, [], 'answers other than 201 to %s' % p.prefix)
    check(len(pubs[0].lost) <= 1, 'publishes without an answer: %s (one may be cut by the kill)'
          % pubs[0].lost)
    acked = pubs[0].acked + pubs[1].acked
    stored = check_store(b, 'k9', acked)
    top = stored[-1]['seq']
    for f, name in zip(subs, ('the one that moved from A to B', 'the one on B')):
        f.wait_for(top)
        f.finish()
        consecutive(f.seqs)
        eq(len(f.seqs), top, 'pushes to %s' % name)
    eq(subs[0].moves, 1, 'the subscriber of A moved once')


@test
def database_restart_under_load():
    """PostgreSQL restarted under load: publishes fail fast with 503 store_unavailable, then pass again; subscribers stay and lose nothing"""
    a, b = pair()
    srv = harness.pg_server()
    subs = [Follower([a], 'rs'), Follower([b], 'rs')]
    for f in subs:
        f.start()
        check(f.subscribed.wait(30), 'a subscriber did not subscribe')
    pubs = [Publisher([a], 'rs', 'pa', pause=0.005), Publisher([b], 'rs', 'pb', pause=0.005)]
    for p in pubs:
        p.start()
    harness.wait_for(lambda: all(len(p.acked) >= 30 for p in pubs), '30 publishes on each',
                     timeout=60)
    srv.stop()
    try:
        harness.wait_for(lambda: all(len(p.refused) >= 5 for p in pubs),
                         'publishes refused on both gateways while the database is down',
                         timeout=30)
    finally:
        srv.start()
    before = [len(p.acked) for p in pubs]
    harness.wait_for(lambda: all(len(p.acked) >= n + 30 for p, n in zip(pubs, before)),
                     '30 more publishes acknowledged on each after the restart', timeout=60)
    for p in pubs:
        p.finish()
        codes = {(st, code) for st, code, _ in p.refused}
        eq(codes, {(503, 'store_unavailable')}, 'refusals of %s' % p.prefix)
        slow = max(dt for _, _, dt in p.refused)
        check(slow < 2.5, 'a refusal of %s took %.2f s: not fast' % (p.prefix, slow))
        eq(p.lost, [], 'publishes without an answer from %s' % p.prefix)
    acked = pubs[0].acked + pubs[1].acked
    stored = check_store(a, 'rs', acked)
    top = stored[-1]['seq']
    for f, name in zip(subs, 'AB'):
        f.wait_for(top)
        f.finish()
        consecutive(f.seqs)
        eq(len(f.seqs), top, 'pushes to the subscriber on %s' % name)
        eq(f.eofs, 0, 'the subscriber on %s stayed connected' % name)
    for g in (a, b):
        g.wait_stderr(r'store writer: connected to the database again')


def backends_of(srv, dbname):
    """The pids of the server processes serving the gateways on dbname."""
    return [int(pid) for pid in srv.sql("SELECT pid FROM pg_stat_activity WHERE datname = '%s' "
                                        "AND application_name LIKE 'visavis%%'" % dbname)]


@test
def sigterm_while_the_database_is_frozen():
    """SIGTERM while every server process of the gateway is stopped (SIGSTOP) with a read, a long-poll and a publish waiting on it: each is answered 503 store_unavailable, and the gateway exits 0 within its 4 s grace and the 2 s a statement gets after it, not after the read's own deadline"""
    srv = harness.pg_server()
    url = srv.new_database()
    gw = harness.Gateway(db=url, tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
    gw.publish('frozen', 'before')
    frozen = backends_of(srv, url.rsplit('/', 1)[1])
    eq(len(frozen), 3, 'server processes of the writer, the reader and the feed')
    answers, sent = {}, set()

    def ask(name, method, path, body=None):
        c = http.client.HTTPConnection('127.0.0.1', gw.http_port, timeout=60)
        c.request(method, path, body=body, headers={'Content-Type': 'application/json'})
        sent.add(name)
        r = c.getresponse()
        answers[name] = (r.status, json.loads(r.read())['error']['code'])
        c.close()

    asks = [threading.Thread(target=ask, args=a) for a in (
        ('read', 'GET', '/v1/channels/frozen/messages?since=0'),
        ('long-poll', 'GET', '/v1/channels/frozen/messages?since=1&wait=30'),
        ('publish', 'POST', '/v1/channels/frozen/messages', '{"body":"during"}'))]
    for p in frozen:
        os.kill(p, signal.SIGSTOP)
    try:
        for t in asks:
            t.start()
        # A connection open is not a request sent (a busy machine may run the thread later).
        harness.wait_for(lambda: len(sent) == 3 and sum(gw.get('/v1/stats').json['open'][t]
                                                        for t in ('rest', 'longpoll')) >= 4,
                         'three requests waiting on the database (and this one)')
        eq(gw.stop(grace=10), 0, 'exit status')
        check(gw.stop_seconds < 7, 'exit %.1f s after SIGTERM: past the 4 s grace and the 2 s '
              'a statement gets' % gw.stop_seconds)
        for t in asks:
            t.join(10)
        eq(answers, {n: (503, 'store_unavailable') for n in ('read', 'long-poll', 'publish')},
           'the answers')
    finally:
        for p in frozen:
            os.kill(p, signal.SIGCONT)


@test
def a_database_read_only_for_a_while():
    """the database set read-only (default_transaction_read_only) and the writer's connection cut: publishes fail 503 store_unavailable, the log says the database takes no writes; once it is writable again, publishing resumes by itself, no restart"""
    srv = harness.pg_server()
    url = srv.new_database()
    dbname = url.rsplit('/', 1)[1]
    gw = harness.Gateway(db=url, tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
    eq(gw.publish('ro', 'before')['seq'], 1, 'a publish before')
    acked, refused = ['before'], []

    def publish():
        body = 'p%d' % (len(acked) + len(refused))
        r = gw.post('ro', {'body': body})
        (acked if r.status == 201 else refused).append(body)
        return r

    srv.sql('ALTER DATABASE "%s" SET default_transaction_read_only = on' % dbname)
    srv.sql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '%s' "
            "AND application_name = 'visavis writer'" % dbname)
    try:
        harness.wait_for(lambda: publish().status == 503,
                         'publishes refused while the database is read-only')
        harness.check_error(publish(), 503, 'store_unavailable', 'a publish while read-only')
        gw.wait_stderr(r'the database takes no writes \(default_transaction_read_only is on\)')
    finally:
        srv.sql('ALTER DATABASE "%s" RESET default_transaction_read_only' % dbname)
    harness.wait_for(lambda: publish().status == 201,
                     'a publish once the database is writable again', timeout=15)
    eq([m['body'] for m in gw.read('ro')['messages']], acked,
       'stored: what was acknowledged, nothing refused (%d refused)' % len(refused))
    gw.stop()


@contextlib.contextmanager
def hung_port():
    """A port of 127.0.0.1 that takes connections and never says a word: the
    kernel completes the handshake into the listen backlog and nobody
    accepts, so a client waits for the server's first bytes for ever."""
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', 0))
        sock.listen(16)
        yield sock.getsockname()[1]
    finally:
        sock.close()


@test
def failover_past_a_hung_host():
    """--db 'host=a,b port=<hung>,<real> connect_timeout=2 target_session_attrs=read-write': each connection gives up on the hung host after 2 s and connects to the second; publish and read work"""
    srv = harness.pg_server()
    dbname = srv.new_database().rsplit('/', 1)[1]
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    with hung_port() as hung:
        target = ('host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=postgres connect_timeout=2'
                  ' target_session_attrs=read-write' % (hung, srv.port, dbname))
        t0 = time.monotonic()
        gw = harness.Gateway(db=target, tmpdir=tmp)
        took = time.monotonic() - t0
        m = gw.publish('failover', 'through the second host')
        eq(m['seq'], 1, 'seq of the first publish')
        eq(gw.read('failover', since=0)['messages'], [m], 'read back')
        gw.wait_stderr(r'store writer: connected to the database at 127\.0\.0\.1:%d '
                       r'\(127\.0\.0\.1:%d: no answer within 2 s\)' % (srv.port, hung))
        # Three connections (writer, reader, feed), each 2 s on the hung host first.
        check(took < 15, 'READY after %.1f s: the 2 s per host were not what applied' % took)
        gw.stop()


@test
def connect_timeout_of_the_target_applies():
    """--db with connect_timeout=2 and only a hung host (key=value and URL): the gateway fails to start, saying it had no answer within 2 s"""
    with hung_port() as hung:
        for target in ('host=127.0.0.1 port=%d dbname=x user=postgres connect_timeout=2' % hung,
                       'postgresql://postgres@127.0.0.1:%d/x?connect_timeout=2' % hung):
            rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr',
                                               '127.0.0.1:0', '--udp-addr', '', '--db', target])
            eq(rc, 1, 'exit status for --db %r (stderr %r)' % (target, err[-300:]))
            check('no answer within 2 s' in err, 'the 2 s of the target in: %r' % err[-300:])
            check(not any(harness.READY_RE.match(ln) for ln in out.splitlines()),
                  'printed READY for --db %r' % target)


harness.main()
