#!/usr/bin/env python3
"""The store across restarts and crashes: an acknowledged message survives
kill -9; a clean restart keeps everything and goes on counting; a database
newer than the binary is refused."""

import sys
sys.dont_write_bytecode = True

import os
import shutil
import signal
import subprocess
import tempfile
import threading

import harness
from harness import test, check, eq


@test
def kill9_right_after_201():
    """POST, 201, kill -9 at once: after restart the message is there"""
    gw = harness.Gateway()
    m = gw.publish('dur-one', 'survive me', sender='ana')
    gw.kill9()
    gw.restart()
    r = gw.get('/v1/messages/%d' % m['id'])
    eq(r.status, 200, 'GET by id after the crash (%s)' % r)
    eq(r.json, m, 'message after the crash')
    eq(gw.read('dur-one')['messages'], [m], 'channel after the crash')


@test
def kill9_after_twenty():
    """20 POSTs then kill -9 right after the last 201: all 20 there, new post gets seq 21"""
    gw = harness.Gateway()
    conn = gw.connect()
    posted = [gw.publish('dur-20', 'n%02d' % i, conn=conn) for i in range(20)]
    gw.kill9()
    conn.close()
    gw.restart()
    eq(gw.read_all('dur-20'), posted, 'messages after the crash')
    m = gw.publish('dur-20', 'after')
    eq(m['seq'], 21, 'seq after the crash')
    check(m['id'] > posted[-1]['id'], 'id %d after the crash is not above %d' % (m['id'], posted[-1]['id']))


class Load:
    """n clients publishing to one channel on keep-alive connections until
    the gateway goes away; records every answer."""

    def __init__(self, gw, ch, n=8):
        self.gw, self.ch = gw, ch
        self.acked, self.other = [], []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self.client, args=(i,), daemon=True) for i in range(n)]
        self.count_reached = threading.Event()
        self.want = 0

    def client(self, i):
        conn = self.gw.connect(timeout=15)
        j = 0
        try:
            while True:
                r = self.gw.post(self.ch, {'sender': 'c%d' % i, 'body': 'c%d-%d' % (i, j)}, conn=conn)
                with self.lock:
                    if r.status == 201:
                        self.acked.append(r.json)
                        if len(self.acked) >= self.want:
                            self.count_reached.set()
                    else:
                        self.other.append(r)
                if r.status != 201:
                    return
                j += 1
        except Exception:  # noqa: BLE001 - the gateway goes away under us: expected
            return
        finally:
            conn.close()

    def run_until(self, acks):
        self.want = acks
        for t in self.threads:
            t.start()
        check(self.count_reached.wait(120), 'only %d publishes acknowledged in 120s' % len(self.acked))

    def join(self):
        for t in self.threads:
            t.join(timeout=30)
            check(not t.is_alive(), 'a client is still running 30s after the gateway stopped')
        with self.lock:
            return list(self.acked), list(self.other)


def check_survivors(gw, ch, acked):
    """After a restart: every acknowledged message is stored unchanged, seqs
    have no hole, and the next publish continues the sequence."""
    stored = gw.read_all(ch)
    seqs = [m['seq'] for m in stored]
    eq(seqs, list(range(1, len(stored) + 1)), 'stored seqs have no hole')
    by_id = {m['id']: m for m in stored}
    lost = [m for m in acked if by_id.get(m['id']) != m]
    check(not lost, '%d acknowledged messages lost or changed, e.g. %s' % (len(lost), lost[:2]))
    check(len(stored) >= len(acked), 'fewer stored (%d) than acknowledged (%d)' % (len(stored), len(acked)))
    m = gw.publish(ch, 'after the restart')
    eq(m['seq'], len(stored) + 1, 'seq after the restart')
    check(not by_id or m['id'] > max(by_id), 'an id was reused after the restart')


@test
def kill9_under_load():
    """kill -9 while 8 clients publish: every acknowledged message survives, seqs have no hole"""
    gw = harness.Gateway()
    load = Load(gw, 'dur-load')
    load.run_until(150)
    gw.kill9()
    acked, _ = load.join()
    gw.restart()
    check_survivors(gw, 'dur-load', acked)


@test
def sigterm_under_load():
    """SIGTERM while 8 clients publish: exit 0; every 201 is stored; other answers are 503 shutting_down"""
    gw = harness.Gateway()
    load = Load(gw, 'dur-term')
    load.run_until(150)
    eq(gw.stop(), 0, 'exit status')
    acked, other = load.join()
    for r in other:
        harness.check_error(r, 503, 'shutting_down', 'answer to a publish during shutdown')
    gw.restart()
    check_survivors(gw, 'dur-term', acked)


@test
def restart_keeps_everything():
    """3 posts, SIGTERM (exit 0), restart on the same db: all there, next post seq 4, larger id"""
    gw = harness.Gateway()
    conn = gw.connect()
    posted = [gw.publish('dur-rs', 'p%d' % i, sender='s%d' % i, conn=conn) for i in range(3)]
    other = gw.publish('dur-rs-other', 'o')
    conn.close()
    chans = gw.channels()
    eq(gw.stop(), 0, 'exit status')
    gw.restart()
    eq(gw.read_all('dur-rs'), posted, 'messages after restart')
    eq(gw.get('/v1/messages/%d' % other['id']).json, other, 'message of another channel by id')
    eq(gw.channels(), chans, 'channel list after restart')
    m = gw.publish('dur-rs', 'p3')
    eq(m['seq'], 4, 'seq of the first post after restart')
    check(m['id'] > other['id'], 'id %d after restart is not above %d' % (m['id'], other['id']))
    eq(gw.stop(), 0, 'exit status of the second run')
    gw.restart()
    eq([x['body'] for x in gw.read_all('dur-rs')], ['p0', 'p1', 'p2', 'p3'], 'bodies after two restarts')


@test
def restart_twice_empty_store():
    """a store with no message survives restarts and still starts at seq 1"""
    gw = harness.Gateway()
    eq(gw.stop(), 0, 'exit status')
    gw.restart()
    eq(gw.channels(), [], 'channels')
    eq(gw.publish('dur-empty', 'first')['seq'], 1, 'seq')


@test
def schema_version_set():
    """the gateway records its schema version (SQLite 1, PostgreSQL 3) in a new database"""
    gw = harness.Gateway()
    gw.publish('dur-sv', 'x')
    want = 3 if harness.is_postgres(gw.db) else 1
    eq(gw.get('/v1/version').json['schema_version'], want, 'schema_version of GET /v1/version')
    eq(gw.stop(), 0, 'exit status')
    eq(harness.schema_version(gw.db), want, 'schema version')


@test
def newer_schema_refused():
    """a database with a newer schema (version 999) is refused: non-zero exit, 'schema' on stderr, no READY"""
    gw = harness.Gateway()
    gw.publish('dur-new', 'x')
    eq(gw.stop(), 0, 'exit status')
    harness.set_schema_version(gw.db, 999)
    rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                       '--udp-addr', '', '--db', gw.db, '--log-level', 'info'])
    check(rc != 0, 'exit status 0 on a newer database (stderr %r)' % err[-500:])
    check(rc > 0, 'died from signal %d instead of exiting (stderr %r)' % (-rc, err[-500:]))
    check('READY' not in out, 'printed READY on a newer database: %r' % out)
    check('schema' in err.lower(), 'stderr does not mention the schema: %r' % err[-500:])
    eq(harness.schema_version(gw.db), 999, 'schema version left untouched')


@test
def another_applications_sqlite_file_refused():
    """--db on another application's SQLite file (tables of its own, no visavis schema), or on a visavis file of a newer schema, is refused with one clear line, and the file is left byte for byte as it was: not switched to WAL, no table added"""
    import sqlite3
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    cases = [('another application', 'CREATE TABLE users(id INTEGER PRIMARY KEY, name TEXT);'
              "INSERT INTO users(name) VALUES ('ana');", 'another application'),
             ('a newer visavis', 'CREATE TABLE channels(id INTEGER PRIMARY KEY);'
              'PRAGMA user_version = 999;', 'schema'),
             # user_version is any application's to set: 1 is not proof of a visavis file.
             ('another application with user_version 1', 'CREATE TABLE users(id INTEGER PRIMARY KEY);'
              'PRAGMA user_version = 1;', 'another application'),
             ('another application of views only', 'CREATE VIEW answer AS SELECT 42;',
              'another application')]
    for what, sql, said in cases:
        db = os.path.join(tmp, what.replace(' ', '-') + '.db')
        conn = sqlite3.connect(db)
        conn.executescript(sql)
        conn.close()
        with open(db, 'rb') as f:
            before = f.read()
        rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                           '--udp-addr', '', '--db', db])
        check(rc > 0, '%s: exit status %d, want > 0 (stderr %r)' % (what, rc, err[-500:]))
        check('READY' not in out, '%s: printed READY: %r' % (what, out))
        check(said in err.lower(), '%s: stderr does not say %r: %r' % (what, said, err[-500:]))
        with open(db, 'rb') as f:
            eq(f.read() == before, True, '%s: the file left as it was' % what)
        check(not os.path.exists(db + '-wal'), '%s: a WAL made beside it' % what)
    shutil.rmtree(tmp)


@test
def companion_file_refused():
    """--db naming the WAL, -shm or journal of a database (a tab completion away), of a running gateway or not: refused naming the database to give, the file left as it was; a running gateway's acknowledged messages all kept"""
    # A SQLite file whatever the backend under test: the mistake is a path's.
    first = harness.Gateway(db=os.path.join(tempfile.mkdtemp(prefix='visavis-it-'), 't.db'))
    first.publish('kept', 'zero')
    eq(first.stop(), 0, 'exit status')
    # Started again, its WAL is empty until the first publish: it would pass for a new file.
    gw = harness.Gateway(db=first.db)
    eq(os.path.getsize(gw.db + '-wal'), 0, 'size of the WAL of a gateway started again')
    for suffix in ('-wal', '-shm', '-journal'):
        target = gw.db + suffix
        made = not os.path.exists(target)
        if made:
            open(target, 'wb').close()
        with open(target, 'rb') as f:
            before = f.read()
        rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                           '--udp-addr', '', '--db', target])
        check(rc > 0 and 'READY' not in out, '%s: exit status %d, %r' % (suffix, rc, out))
        check(gw.db in err and 'give --db' in err, '%s: stderr names the database: %r' % (suffix, err[-400:]))
        if suffix != '-shm':  # the running gateway's own SQLite writes this one
            with open(target, 'rb') as f:
                eq(f.read() == before, True, '%s: the file left as it was' % suffix)
        for extra in ('-wal', '-shm'):
            check(not os.path.exists(target + extra), '%s: a %s made beside it' % (suffix, extra))
        if made:
            os.unlink(target)
    gw.publish('kept', 'one')
    gw.publish('kept', 'two')
    eq(gw.stop(), 0, 'exit status')
    eq([m['body'] for m in harness.Gateway(db=gw.db).read('kept')['messages']], ['zero', 'one', 'two'],
       'what was acknowledged')


@test
def read_only_file_refused():
    """a database file the gateway's user cannot write (mode 0444, run as nobody): refused at start saying so, not a gateway that answers READY and fails every publish; a new one in a folder it may not write: refused naming the folder, not 'No such file'"""
    if os.geteuid() != 0:
        harness.skip('needs root to run the gateway as another user')
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    os.chmod(tmp, 0o777)
    db = os.path.join(tmp, 'ro.db')
    gw = harness.Gateway(db=db, tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
    gw.publish('ro', 'one')
    eq(gw.stop(), 0, 'exit status')
    os.chmod(db, 0o444)
    bin_copy = os.path.join(tmp, 'gateway')
    shutil.copy(harness.gateway_bin(), bin_copy)
    os.chmod(bin_copy, 0o755)

    def start_as_nobody(db):
        p = subprocess.Popen(['runuser', '-u', 'nobody', '--', bin_copy, '--http-addr', '127.0.0.1:0',
                              '--tcp-addr', '127.0.0.1:0', '--udp-addr', '', '--db', db],
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             env=harness.clean_env(None), start_new_session=True)
        try:
            out, err = p.communicate(timeout=harness.START_DEADLINE)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            out, err = p.communicate()
        out = out.decode()
        check(p.returncode != 0 and 'READY' not in out, 'exit status %d, %r' % (p.returncode, out))
        return err.decode()

    err = start_as_nobody(db)
    check('read-only' in err and db in err, 'it says why: %r' % err[-400:])
    # SQLite retries read-only, whose errno (ENOENT) used to be the one reported.
    closed = os.path.join(tmp, 'closed')
    os.mkdir(closed, 0o755)
    err = start_as_nobody(os.path.join(closed, 'new.db'))
    check('not writable' in err and closed in err and 'No such file' not in err,
          'a folder it may not write is named: %r' % err[-400:])
    check(not os.listdir(closed), 'nothing created there: %r' % os.listdir(closed))
    shutil.rmtree(tmp)


@test
def refused_start_leaves_no_new_database():
    """a start refused after the store opened (the HTTP port taken): exit 1 naming the port, and no database file left where there was none; an existing one is kept"""
    import socket
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    taken = socket.socket()
    taken.bind(('127.0.0.1', 0))
    taken.listen(1)
    try:
        for existed in (False, True):
            db = os.path.join(tmp, 'fresh.db')
            if existed:
                gw = harness.Gateway(db=db, tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
                gw.publish('kept', 'here')
                eq(gw.stop(), 0, 'exit status of the gateway that made it')
            rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:%d' % taken.getsockname()[1],
                                               '--tcp-addr', '127.0.0.1:0', '--udp-addr', '',
                                               '--db', db])
            eq(rc, 1, 'exit status (stderr %r)' % err[-300:])
            check('Address already in use' in err, 'it says why: %r' % err[-300:])
            eq(sorted(os.listdir(tmp)), ['fresh.db'] if existed else [],
               'files left (there was %s database)' % ('a' if existed else 'no'))
    finally:
        taken.close()
        shutil.rmtree(tmp, ignore_errors=True)


@test
def unusable_db_path_refused():
    """--db in a directory that does not exist: non-zero exit with a message, no READY"""
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    db = os.path.join(tmp, 'no', 'such', 'dir', 't.db')
    rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                       '--udp-addr', '', '--db', db])
    check(rc > 0, 'exit status %d, want > 0 (stderr %r)' % (rc, err[-500:]))
    check(err.strip(), 'no message on stderr')
    check('READY' not in out, 'printed READY: %r' % out)
    shutil.rmtree(tmp, ignore_errors=True)


@test
def not_a_database_refused():
    """--db pointing at a file that is not SQLite: non-zero exit with a message, file untouched"""
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    db = os.path.join(tmp, 'junk.db')
    junk = b'this is not a database\n' * 200
    with open(db, 'wb') as f:
        f.write(junk)
    rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                       '--udp-addr', '', '--db', db])
    check(rc > 0, 'exit status %d, want > 0 (stderr %r)' % (rc, err[-500:]))
    check(err.strip(), 'no message on stderr')
    check('READY' not in out, 'printed READY: %r' % out)
    with open(db, 'rb') as f:
        eq(f.read() == junk, True, 'the file was left untouched')
    shutil.rmtree(tmp, ignore_errors=True)


harness.main()
