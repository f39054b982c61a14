#!/usr/bin/env python3
"""When the store cannot write: a database another connection holds
(store_busy), a full disk or a file size limit (store_full), rows written
behind the gateway's back, the file removed or replaced under it. Each fails fast with its own code on every front,
stores nothing half, and publishing resumes by itself once the cause is gone;
a stop does not hang on a held database."""

import sys
sys.dont_write_bytecode = True

import os
import resource
import signal
import sqlite3
import subprocess
import tempfile
import threading
import time

import harness
from harness import test, check, eq

# The writer waits this long for another writer's lock (STORE_WRITER_BUSY_MS),
# once per batch: a bound for a batch's failure, with room for a slow machine.
BUSY_BOUND = 4.0


def held_gateway(channel):
    """A gateway with one message in channel, and the test's own connection
    to its database holding the write lock (BEGIN IMMEDIATE)."""
    gw = harness.Gateway()
    gw.publish(channel, 'before')
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=0)
    con.execute('BEGIN IMMEDIATE')
    return gw, con


def stored(db, channel):
    """Messages of channel on disk, read by a connection of the test's own."""
    con = sqlite3.connect(db, timeout=5)
    try:
        return con.execute('SELECT count(*) FROM messages m JOIN channels c ON c.id = m.channel_id '
                           'WHERE c.name = ?', (channel,)).fetchone()[0]
    finally:
        con.close()


def check_busy_http(r, what):
    harness.check_error(r, 503, 'store_busy', what)
    eq(r.header('Retry-After'), '1', what + ': Retry-After')


@test
def busy_fails_fast_then_resumes():
    """database held (BEGIN IMMEDIATE): 6 pipelined PUBs and 3 POSTs fail fast with store_busy (503 + Retry-After), nothing stored; then all pass"""
    gw, con = held_gateway('busy')
    try:
        s = harness.Session(gw)
        results = [None] * 3

        def poster(i):
            t = time.monotonic()
            try:
                r = gw.post('busy', {'body': 'rest %d' % i})
            except OSError as e:  # a timeout: the check below says so
                r = e
            results[i] = (r, time.monotonic() - t)

        t0 = time.monotonic()
        threads = [threading.Thread(target=poster, args=(i,)) for i in range(3)]
        for t in threads:
            t.start()
        s.send(b''.join(b'PUB busy tcp %d\n' % i for i in range(6)))
        replies = [s.reply(timeout=30) for _ in range(6)]
        tcp_s = time.monotonic() - t0
        for t in threads:
            t.join(30)
        for i, r in enumerate(replies):
            harness.check_session_error(r, 'store_busy', op='pub', what='PUB %d' % i)
        check(tcp_s < BUSY_BOUND, '6 pipelined PUBs took %.1fs to fail, want < %.0fs' % (tcp_s, BUSY_BOUND))
        for i, res in enumerate(results):
            check(res is not None and isinstance(res[0], harness.Resp),
                  'POST %d got no answer: %s' % (i, res and res[0]))
            check_busy_http(res[0], 'POST %d' % i)
            check(res[1] < BUSY_BOUND, 'POST %d took %.1fs to fail, want < %.0fs' % (i, res[1], BUSY_BOUND))

        # Reads are not blocked by a writer: the page shows only what was there.
        eq([m['body'] for m in gw.read('busy')['messages']], ['before'], 'messages while held')
        eq(con.execute('SELECT count(*) FROM messages').fetchone()[0], 1, 'rows on disk while held')
    finally:
        con.execute('ROLLBACK')
        con.close()

    # The cause is gone: both fronts publish again, no restart, seq without a gap.
    r = s.request('PUB busy after')
    eq(r.get('type'), 'ok', 'PUB after the lock is gone (%s)' % r)
    eq(r['message']['seq'], 2, 'seq of the PUB after the lock is gone')
    eq(gw.publish('busy', 'after rest')['seq'], 3, 'seq of the POST after the lock is gone')
    s.close()
    eq(stored(gw.db, 'busy'), 3, 'rows on disk at the end')


@test
def sigterm_while_held():
    """SIGTERM while the database is held: pending PUBs and POSTs are answered, exit 0 within the 4 s grace"""
    gw, con = held_gateway('term')
    try:
        s = harness.Session(gw)
        raw = gw.raw(timeout=30)
        # A keep-alive connection MHD already watches, so the POST below is
        # read in the loop's next round, as the session's PUBs are.
        raw.send(b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n')
        eq(raw.read_response().status, 200, 'healthz on the raw connection')
        s.send(b'PUB term a\nPUB term b\nPUB term c\n')
        body = b'{"body":"rest"}'
        raw.send(b'POST /v1/channels/term/messages HTTP/1.1\r\nHost: x\r\n'
                 b'Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s' % (len(body), body))
        # A round trip on another session: the loop has read the bytes above.
        with harness.Session(gw) as barrier:
            eq(barrier.request('PING x').get('type'), 'pong', 'barrier PING')
        eq(gw.stop(grace=10), 0, 'exit status')
        check(gw.stop_seconds < 4.0, 'took %.2fs to stop with the database held (grace: 4 s)'
              % gw.stop_seconds)
        lines = s.until_eof(timeout=10)
        errors = [x for x in lines if x.get('type') == 'error']
        eq(len(errors), 3, 'answers to the 3 PUBs (%s)' % lines)
        for e in errors:
            harness.check_session_error(e, ('store_busy', 'shutting_down'), op='pub')
        r = raw.read_response()
        check(r is not None, 'no answer to the POST')
        check(r.status == 503, 'POST during the stop: %s' % r)
        s.close()
        raw.close()
    finally:
        con.execute('ROLLBACK')
        con.close()
    eq(stored(gw.db, 'term'), 1, 'rows on disk: only the one from before')


@test
def outside_write_stale_cache():
    """rows written behind the gateway's back (seq taken, channel removed): the next publish passes, read again from disk"""
    gw = harness.Gateway()
    for i in range(2):
        gw.publish('ext', 'g%d' % i)
    gw.publish('ext-gone', 'x')
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=5)
    try:
        con.executescript(
            "BEGIN IMMEDIATE;"
            "INSERT INTO messages(channel_id, seq, sender, body, ts, via) "
            "  SELECT id, 3, 'tool', 'outside', 0, 'rest' FROM channels WHERE name = 'ext';"
            "UPDATE channels SET last_seq = 3, msg_count = 3 WHERE name = 'ext';"
            "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels WHERE name = 'ext-gone');"
            "DELETE FROM channels WHERE name = 'ext-gone';"
            "COMMIT;")
    finally:
        con.close()
    m = gw.publish('ext', 'after')
    eq(m['seq'], 4, 'seq after the outside row')
    eq(gw.publish('ext-gone', 'again')['seq'], 1, 'seq of the removed channel, created again')
    eq([x['body'] for x in gw.read_all('ext')], ['g0', 'g1', 'outside', 'after'], 'ext on disk')
    with harness.Session(gw) as s:
        r = s.request('PUB ext tcp')
        eq(r.get('type'), 'ok', 'PUB after the outside write (%s)' % r)
        eq(r['message']['seq'], 5, 'PUB seq')


def fill(path):
    """Writes path until the file system says ENOSPC; returns the bytes written."""
    n = 0
    chunk = b'\0' * 65536
    with open(path, 'wb', buffering=0) as f:
        while True:
            try:
                n += f.write(chunk)
            except OSError as e:
                if e.errno != 28:  # ENOSPC
                    raise
                break
        # Whatever is left is less than a chunk: take it byte by byte, in small steps.
        for size in (4096, 512, 1):
            while True:
                try:
                    n += f.write(b'\0' * size)
                except OSError:
                    break
    return n


def check_health(gw, status, code, what):
    """GET /healthz: status "ok", or "degraded" (200) / "failing" (503) with the store's error."""
    r = gw.get('/healthz')
    eq(r.status, 503 if status == 'failing' else 200, '/healthz status, ' + what)
    eq(r.json.get('status'), status, '/healthz says, ' + what)
    if code:
        eq(r.json['error']['code'], code, '/healthz error code, ' + what)
        check(r.json['error']['message'], '/healthz says why, ' + what)
    return r


def check_full_then_resumes(gw, channel, free_room):
    check_health(gw, 'ok', None, 'before the disk is full')
    r = gw.post(channel, {'body': 'x' * 60000})
    harness.check_error(r, 507, 'store_full', 'POST on a full disk')
    check_health(gw, 'degraded', 'store_full', 'once a publish met the full disk')
    check(r.header('Retry-After') is None, 'Retry-After on store_full: %s' % r)
    with harness.Session(gw) as s:
        e = s.request('PUB %s %s' % (channel, 'y' * 60000))
        harness.check_session_error(e, 'store_full', op='pub', what='PUB on a full disk')
        eq([m['body'] for m in gw.read(channel)['messages']], ['room'], 'messages while full')
        free_room()
        r = s.request('PUB %s tcp after' % channel)
        eq(r.get('type'), 'ok', 'PUB once there is room (%s)' % r)
        eq(r['message']['seq'], 2, 'seq once there is room')
    eq(gw.publish(channel, 'z' * 60000)['seq'], 3, 'POST once there is room')
    gw.wait_stderr(r'writes work again')
    check_health(gw, 'ok', None, 'once publishes pass again')


@test
def full_disk():
    """a full file system (small tmpfs filled up): 507 store_full and a store_full line; room again: both pass; a start on the full disk is refused saying so, and leaves no empty file"""
    mnt = tempfile.mkdtemp(prefix='visavis-it-full-')
    p = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=4m', 'tmpfs', mnt],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        os.rmdir(mnt)
        harness.skip('cannot mount a tmpfs here (%s): the file size limit test covers store_full'
                     % p.stdout.decode(errors='replace').strip())
    gw = None
    try:
        gw = harness.Gateway(db=os.path.join(mnt, 't.db'), tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
        gw.publish('full', 'room')
        filler = os.path.join(mnt, 'filler')
        fill(filler)
        check_full_then_resumes(gw, 'full', lambda: os.unlink(filler))
        eq(gw.stop(), 0, 'exit status')
        # A start on the full disk: refused saying why, with no empty file left behind.
        fill(filler)
        for db in (gw.db, os.path.join(mnt, 'new.db')):
            existed = os.path.exists(db)
            rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr',
                                               '127.0.0.1:0', '--udp-addr', '', '--db', db])
            check(rc > 0 and 'READY' not in out, 'a start on a full disk: exit %d, %r' % (rc, out))
            check('No space left on device' in err or 'disk is full' in err,
                  'a start on a full disk says why: %r' % err[-300:])
            eq(os.path.exists(db), existed, 'the database file there after the refused start')
    finally:
        if gw is not None and gw.running:
            gw.kill9()
        subprocess.run(['umount', '-l', mnt])
        os.rmdir(mnt)


def small_block_volume(size_mb):
    """A fresh ext4 file system of 1 KiB blocks (what mkfs makes of a small
    volume), loop-mounted on a new folder: the folder, or a skip. Undone by
    release_volume."""
    mnt = tempfile.mkdtemp(prefix='visavis-it-ext4-')
    image = mnt + '.img'
    with open(image, 'wb') as f:
        f.truncate(size_mb << 20)
    p = subprocess.run('mkfs.ext4 -q -F -b 1024 %s && mount -o loop %s %s' % (image, image, mnt),
                       shell=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if p.returncode != 0:
        os.rmdir(mnt)
        os.unlink(image)
        harness.skip('cannot make and loop-mount an ext4 volume here (%s)'
                     % p.stdout.decode(errors='replace').strip())
    return mnt


def release_volume(mnt):
    subprocess.run(['umount', '-l', mnt])
    os.rmdir(mnt)
    os.unlink(mnt + '.img')


def fill_leaving(path, room):
    """Fills the file system of path, then gives back room bytes."""
    fill(path)
    os.truncate(path, max(0, os.path.getsize(path) - room))
    os.sync()


@test
def full_disk_small_blocks():
    """a full disk of 1 KiB blocks as the WAL's index grows into a new region: 507 store_full, not a SIGBUS that ends the gateway; room again: publishing resumes; a start on such a nearly full disk is refused saying so"""
    mnt = small_block_volume(48)
    gw = reader = None
    try:
        gw = harness.Gateway(db=os.path.join(mnt, 't.db'), tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
        gw.publish('blocks', 'first')
        # A reader holding its snapshot keeps the WAL from being reused from its start.
        reader = sqlite3.connect(gw.db, timeout=5, isolation_level=None)
        reader.execute('BEGIN')
        reader.execute('SELECT count(*) FROM messages').fetchall()
        frames = lambda: (os.path.getsize(gw.db + '-wal') - 32) // (4096 + 24)
        acked = 1
        with harness.Session(gw, timeout=30) as s:
            # 4062 frames fill the index's first region of 32 KiB.
            while frames() < 4050:
                r = s.request('PUB blocks ' + 'v' * 1500)
                eq(r.get('type'), 'ok', 'PUB while there is room (%s)' % r)
                acked += 1
            filler = os.path.join(mnt, 'filler')
            fill_leaving(filler, 56 * 1024)
            codes = {}
            for _ in range(60):
                r = s.request('PUB blocks ' + 'w' * 1500)
                check(r is not None and gw.running,
                      'the gateway died on a full disk (%s):\n%s' % (gw.proc.poll(), gw.stderr_tail()))
                code = 'ok' if r.get('type') == 'ok' else r.get('code')
                codes[code] = codes.get(code, 0) + 1
                if code == 'ok':
                    acked += 1
                else:
                    harness.check_session_error(r, 'store_full', op='pub', what='PUB on a full disk')
            check(codes.get('store_full', 0) > 0, 'no store_full as the disk filled: %s' % codes)
            os.unlink(filler)
            r = s.request('PUB blocks room again')
            eq(r.get('type'), 'ok', 'PUB once there is room (%s)' % r)
            acked += 1
        reader.close()
        reader = None
        eq(gw.stop(), 0, 'exit status')
        eq(len(rows(gw.db, 'blocks')), acked, 'messages stored, all acknowledged')
        # A start with only a little room: refused saying so, before SQLite maps anything.
        fill_leaving(filler, 40 * 1024)
        rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr',
                                           '127.0.0.1:0', '--udp-addr', '', '--db', gw.db])
        check(rc > 0 and 'READY' not in out, 'a start on a nearly full disk: exit %d, %r' % (rc, out))
        check('disk is full' in err, 'a start on a nearly full disk says why: %r' % err[-300:])
    finally:
        if reader is not None:
            reader.close()
        if gw is not None and gw.running:
            gw.kill9()
        release_volume(mnt)


@test
def store_that_hangs():
    """a file system that hangs under the database (fsfreeze): a read, a long-poll past its wait and the channel list are answered 503 store_busy at their deadline (10 s), not held as long as the hang; once it thaws, reads and publishes pass, nothing lost"""
    mnt = small_block_volume(32)
    gw = None
    frozen = False
    try:
        gw = harness.Gateway(db=os.path.join(mnt, 't.db'), tmpdir=tempfile.mkdtemp(prefix='visavis-it-'))
        gw.publish('frozen', 'before')
        p = subprocess.run(['fsfreeze', '-f', mnt], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if p.returncode != 0:
            harness.skip('cannot freeze a file system here (%s)' % p.stdout.decode(errors='replace').strip())
        frozen = True
        for path in ('/v1/channels/frozen/messages?since=0', '/v1/channels/other/messages?since=0&wait=1',
                     '/v1/channels'):
            t0 = time.monotonic()
            c = gw.connect(timeout=40)
            r = gw.get(path, conn=c)
            c.close()
            took = time.monotonic() - t0
            if r.status == 200:
                continue  # answered from what the file system had in memory: no wait to bound
            harness.check_error(r, 503, 'store_busy', 'GET %s while the file system hangs' % path)
            check('did not answer' in r.json['error']['message'], 'it says why: %s' % r)
            check(took < 20, 'GET %s answered after %.1f s' % (path, took))
        eq(gw.get('/healthz').status, 200, '/healthz meanwhile')
        subprocess.run(['fsfreeze', '-u', mnt], check=True)
        frozen = False
        eq(gw.publish('frozen', 'after')['seq'], 2, 'a publish once it thaws')
        eq([m['body'] for m in gw.read('frozen')['messages']], ['before', 'after'], 'a read once it thaws')
        eq(gw.stop(), 0, 'exit status')
    finally:
        if frozen:
            subprocess.run(['fsfreeze', '-u', mnt])
        if gw is not None and gw.running:
            gw.kill9()
        release_volume(mnt)


@test
def file_size_limit():
    """a file size limit (RLIMIT_FSIZE) reached: 507 store_full, not a SIGXFSZ death; limit raised: both pass"""
    gw = harness.Gateway()
    gw.publish('fsize', 'room')
    size = max(os.path.getsize(f) for f in (gw.db, gw.db + '-wal') if os.path.exists(f))
    pid = gw.proc.pid
    old = resource.prlimit(pid, resource.RLIMIT_FSIZE)
    resource.prlimit(pid, resource.RLIMIT_FSIZE, (size + 16384, old[1]))
    check_full_then_resumes(gw, 'fsize', lambda: resource.prlimit(pid, resource.RLIMIT_FSIZE, old))


def rows(db, channel):
    """The bodies of channel in the SQLite file db, read by a connection of the test's own."""
    con = sqlite3.connect(db, timeout=5)
    try:
        return [b for (b,) in con.execute(
            'SELECT body FROM messages m JOIN channels c ON c.id = m.channel_id '
            'WHERE c.name = ? ORDER BY seq', (channel,))]
    finally:
        con.close()


def another_database(path):
    con = sqlite3.connect(path)
    con.execute('CREATE TABLE other (a)')
    con.commit()
    con.close()


@test
def database_file_removed_or_replaced():
    """the database file removed, moved, replaced by another, cut short, or its WAL or -shm removed (also through a --db that is a symbolic link), while the gateway runs: every publish then fails store_failed naming the file (REST and TCP), none is acknowledged into a file about to be lost, nothing failed is read back, and the log says what happened; outside readers opening and closing the file trip nothing"""
    # (what is done, what the log says: a file replaced by a rename over it is unlinked)
    changes = [
        (lambda db: [os.unlink(db + s) for s in ('', '-wal', '-shm')], 'was removed'),
        (lambda db: os.rename(db, db + '.moved'), 'was moved or replaced'),
        (lambda db: (another_database(db + '.other'), os.rename(db + '.other', db)), 'was removed'),
        (lambda db: os.unlink(db + '-wal'), 'lost its WAL file'),
        # The next program to open the file makes a -shm of its own: its first write
        # through that one and this gateway's next corrupt the file.
        (lambda db: os.unlink(db + '-shm'), 'lost its -shm file'),
        (lambda db: os.truncate(db, 0), r'was cut short \(to 0 bytes\)'),
    ]
    for change, said in changes:
        gw = harness.Gateway()
        for i in range(3):
            gw.publish('moved', 'acked %d' % i)
            eq(rows(gw.db, 'moved'), ['acked 0', 'acked 1', 'acked 2'][:i + 1],
               'an outside reader between publishes')
        check_health(gw, 'ok', None, 'before the file ' + said)
        change(gw.db)
        r = gw.post('moved', {'body': 'after'})
        harness.check_error(r, 500, 'store_failed', 'POST once the file ' + said)
        check(gw.db in r.json['error']['message'], 'the error names the file: %s' % r)
        h = check_health(gw, 'failing', 'store_failed', 'once the file ' + said)
        check('restart' in h.json['error']['message'], '/healthz says to restart: %s' % h)
        with harness.Session(gw) as s:
            e = s.request('PUB moved after tcp')
            harness.check_session_error(e, 'store_failed', op='pub', what='PUB once the file ' + said)
        if 'cut short' not in said:  # nothing is readable there
            eq([m['body'] for m in gw.read('moved')['messages']], ['acked 0', 'acked 1', 'acked 2'],
               'read back once the file ' + said)
        gw.wait_stderr(r'store: database \S+ %s while the gateway had it open' % said)
        eq(gw.stop(), 0, 'exit status')
        if said == 'was moved or replaced':
            eq(rows(gw.db + '.moved', 'moved'), ['acked 0', 'acked 1', 'acked 2'],
               'the moved file holds what was acknowledged')
        if said in ('lost its WAL file', 'lost its -shm file'):
            eq(rows(gw.db, 'moved'), ['acked 0', 'acked 1', 'acked 2'],
               'the file, checkpointed at the stop, holds what was acknowledged')
    # --db a symbolic link: SQLite keeps the WAL beside the file it leads to.
    tmp = tempfile.mkdtemp(prefix='visavis-it-')
    os.symlink(os.path.join(tmp, 'real.db'), os.path.join(tmp, 'link.db'))
    gw = harness.Gateway(db=os.path.join(tmp, 'link.db'), tmpdir=tmp)
    gw.publish('linked', 'acked')
    os.unlink(os.path.join(tmp, 'real.db-wal'))
    harness.check_error(gw.post('linked', {'body': 'after'}), 500, 'store_failed',
                        'POST once the WAL of the linked file is removed')
    gw.wait_stderr(r'store: database \S+ lost its WAL file')
    eq(gw.stop(), 0, 'exit status')


def bodies(gw, channel):
    return [m['body'] for m in gw.read_all(channel)]


def channel_id(gw, channel):
    rows = harness.db_sql(gw.db, "SELECT id FROM channels WHERE name = '%s'" % channel)
    return rows[0][0] if rows else None


@test
def channel_rows_changed_by_hand():
    """channel rows changed by another program while the gateway runs (one removed and its id taken by a new channel, one renamed, one counted back with its row kept): each publish lands in the channel it names, with the seq the file says, over REST and TCP"""
    gw = harness.Gateway()
    for ch in ('renamed', 'back', 'gone'):  # 'gone' last: the highest id, taken again
        for i in range(3):
            gw.publish(ch, '%s%d' % (ch, i))
    gone_id = channel_id(gw, 'gone')
    harness.db_sql(gw.db, "DELETE FROM messages WHERE channel_id = %s" % gone_id)
    harness.db_sql(gw.db, "DELETE FROM channels WHERE id = %s" % gone_id)
    eq(gw.publish('new', 'n0')['seq'], 1, 'a new channel')
    eq(channel_id(gw, 'new'), gone_id, "the new channel has the removed one's id")
    m = gw.publish('gone', 'g-again')
    eq((m['channel'], m['seq']), ('gone', 1), 'the removed channel, created again, counts from 1')
    eq(bodies(gw, 'gone'), ['g-again'], 'what the removed channel now holds')
    eq(bodies(gw, 'new'), ['n0'], 'what the new channel holds')
    eq(gw.publish('new', 'n1')['seq'], 2, 'the new channel goes on')

    harness.db_sql(gw.db, "UPDATE channels SET name = 'archive' WHERE name = 'renamed'")
    eq(gw.publish('renamed', 'r-again')['seq'], 1, 'the renamed channel\'s old name counts from 1')
    eq(bodies(gw, 'renamed'), ['r-again'], 'what the old name now holds')
    eq(rows(gw.db, 'archive'), ['renamed0', 'renamed1', 'renamed2'], 'the renamed rows')

    harness.db_sql(gw.db, "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels "
                   "WHERE name = 'back')")
    harness.db_sql(gw.db, "UPDATE channels SET last_seq = 0, msg_count = 0 WHERE name = 'back'")
    with harness.Session(gw) as s:
        r = s.request('PUB back b-again')
        eq(r.get('type'), 'ok', 'PUB on the channel counted back (%s)' % r)
        eq(r['message']['seq'], 1, 'the channel counted back counts from 1')
    eq(bodies(gw, 'back'), ['b-again'], 'what the channel counted back holds')
    eq(gw.stop(), 0, 'exit status')


@test
def trigger_that_skips_a_row():
    """a trigger another program added skips a row (RAISE(IGNORE)): that publish fails store_failed alone (TCP and REST), the others of its batch are stored, acknowledged with ids of their own and pushed; nothing is pushed that was not stored"""
    gw = harness.Gateway()
    gw.publish('skip', 'first')
    harness.db_sql(gw.db, "CREATE TRIGGER skip_bad BEFORE INSERT ON messages "
                   "WHEN NEW.body = 'bad' BEGIN SELECT RAISE(IGNORE); END")
    with harness.Session(gw) as sub, harness.Session(gw) as s:
        eq(sub.request('SUB skip')['type'], 'ok', 'SUB')
        s.send('PUB skip g1\nPUB skip bad\nPUB skip g3\n')
        g1, bad, g3 = s.reply(), s.reply(), s.reply()
        eq((g1.get('type'), g3.get('type')), ('ok', 'ok'), 'the others: %s %s' % (g1, g3))
        harness.check_session_error(bad, 'store_failed', op='pub', what='the skipped PUB')
        check('skipped' in bad['message'], 'it says why: %s' % bad)
        ids = [g1['message']['id'], g3['message']['id']]
        eq(len(set(ids)), 2, 'ids of their own: %s' % ids)
        r = gw.post('skip', {'body': 'bad'})
        harness.check_error(r, 500, 'store_failed', 'the skipped POST')
        gw.publish('skip', 'last')
        eq([p['body'] for p in sub.messages(3)], ['g1', 'g3', 'last'], 'pushed: what was stored')
    stored_msgs = gw.read_all('skip')
    eq([m['body'] for m in stored_msgs], ['first', 'g1', 'g3', 'last'], 'stored')
    eq([m['id'] for m in stored_msgs][1:3], ids, 'stored under the ids acknowledged')
    eq(gw.stop(), 0, 'exit status')


@test
def trigger_that_skips_a_new_channel():
    """a trigger another program added skips the creation of a channel row: that publish fails store_failed, and is not filed under the channel whose id the connection last inserted"""
    gw = harness.Gateway()
    harness.db_sql(gw.db, "INSERT INTO channels(name) VALUES ('e1'), ('e2'), ('e3')")
    harness.db_sql(gw.db, "CREATE TRIGGER skip_chan BEFORE INSERT ON channels "
                   "WHEN NEW.name = 'newbad' BEGIN SELECT RAISE(IGNORE); END")
    eq(gw.publish('e3', 'to e3')['id'], 1, 'a message whose id is a channel\'s too')
    r = gw.post('newbad', {'body': 'meant for newbad'})
    harness.check_error(r, 500, 'store_failed', 'a publish whose channel row was skipped')
    check('skipped' in r.json['error']['message'], 'it says why: %s' % r)
    eq(bodies(gw, 'e1'), [], 'e1, whose id the last insert had')
    eq(bodies(gw, 'e3'), ['to e3'], 'e3')
    eq(gw.publish('e1', 'to e1')['seq'], 1, 'e1 counts from 1')
    eq(gw.stop(), 0, 'exit status')


@test
def wal_cut_back_after_a_long_reader():
    """an outside reader holds a snapshot while 80 MB are published (the WAL cannot be checkpointed and grows past it); once the reader ends, the WAL is cut back to 64 MiB at the next commits, not kept at its largest until the stop"""
    gw = harness.Gateway()
    body = 'w' * 4000
    with harness.Session(gw) as s:
        def publish(n):
            for _ in range(0, n, 100):
                s.send(''.join('PUB wal %s\n' % body for _ in range(100)))
                for _ in range(100):
                    eq(s.reply().get('type'), 'ok', 'a PUB')
        publish(100)
        reader = sqlite3.connect(gw.db, isolation_level=None)
        reader.execute('BEGIN')
        reader.execute('SELECT count(*) FROM messages').fetchone()
        publish(20000)
        grown = os.path.getsize(gw.db + '-wal')
        check(grown > 70 << 20, 'the WAL grew to %d bytes while the reader held it' % grown)
        reader.execute('COMMIT')
        reader.close()
        publish(2000)
        cut = os.path.getsize(gw.db + '-wal')
        check(cut <= 64 << 20, 'the WAL is %d bytes after the reader ended (was %d)' % (cut, grown))
    eq(gw.stop(), 0, 'exit status')


@test
def shared_memory_file_cut_short():
    """the -shm file truncated under the gateway (SQLite maps it): the gateway stops at once saying what happened (SIGBUS), instead of dying without a word; a start on the database has every acknowledged message and publishes again"""
    gw = harness.Gateway()
    for i in range(3):
        gw.publish('shm', 'm%d' % i)
    os.truncate(gw.db + '-shm', 0)
    try:
        r = gw.post('shm', {'body': 'after'})
        check(r.status != 201, 'a publish acknowledged once the file was cut: %s' % r)
    except OSError:
        pass  # the process ended with the request under way
    gw.killed_on_purpose = True  # by the test, through the file
    rc = gw.proc.wait(10)
    if harness.sanitized():  # ASan reports it in its own words, then exits 1 or aborts
        check(rc in (1, -signal.SIGABRT), 'how the gateway ended: %s' % rc)
        check('AddressSanitizer: BUS' in gw.stderr_text(), 'ASan says: %s' % gw.stderr_tail(3))
    else:
        eq(rc, -signal.SIGBUS, 'how the gateway ended')
        check('fatal: SIGBUS: a file the gateway maps was cut short under it, most likely the '
              "database's shared-memory file %s-shm" % gw.db in gw.stderr_text(),
              'the last line says why: %s' % gw.stderr_tail(3))
    gw._reap()
    gw.restart()
    eq([m['body'] for m in gw.read('shm')['messages']], ['m0', 'm1', 'm2'], 'after the start')
    eq(gw.publish('shm', 'again')['seq'], 4, 'a publish after the start')
    eq(gw.stop(), 0, 'exit status')


harness.main()
