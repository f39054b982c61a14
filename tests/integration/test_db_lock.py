#!/usr/bin/env python3
"""One gateway per database file: a second gateway on a file another is
writing refuses to start, says so and names the flag to change, and leaves
the first alone; the lock dies with its process, so a restart after kill -9
is not refused; other tools still read the file."""

import sys
sys.dont_write_bytecode = True

import shutil
import sqlite3
import subprocess

import harness
from harness import test, check, eq


def second(db, env=None, base=True):
    args = ['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0', '--udp-addr', '',
            '--log-level', 'info']
    if base:
        args += ['--db', db]
    return harness.run_binary(args, env=env)


def check_refused(rc, out, err, pid):
    check(rc > 0, 'second gateway: exit status %d, want > 0 (stderr %r)' % (rc, err[-600:]))
    check('READY' not in out, 'second gateway printed READY: %r' % out)
    for want in ('in use', 'pid %d' % pid, '--db', 'VISAVIS_DB'):
        check(want in err, 'second gateway: %r not in its message: %r' % (want, err[-600:]))


@test
def second_gateway_refused():
    """a second gateway on the same file: refused (exit > 0, 'in use', the first's pid, --db / VISAVIS_DB); the first publishes and reads on"""
    gw = harness.Gateway()
    with harness.Session(gw) as sub:
        eq(sub.request('SUB lock').get('type'), 'ok', 'SUB on the first gateway')
        first = gw.publish('lock', 'one')
        check_refused(*second(gw.db), gw.proc.pid)
        # Through the environment as well: the message is the same.
        check_refused(*second(None, env={'VISAVIS_DB': gw.db}, base=False), gw.proc.pid)
        m = gw.publish('lock', 'two')
        eq(m['seq'], 2, 'seq on the first gateway after the refusals')
        eq([x['body'] for x in gw.read('lock')['messages']], ['one', 'two'], 'messages on the first')
        eq([sub.push()['seq'] for _ in range(2)], [first['seq'], 2], 'pushes on the first')
        r = sub.request('PUB lock three')
        eq(r.get('type'), 'ok', 'PUB on the first gateway (%s)' % r)
        eq(r['message']['seq'], 3, 'PUB seq')
    eq(gw.stop(), 0, 'the first stops cleanly')


@test
def restart_after_kill9():
    """kill -9, then a gateway on the same file starts at once: the lock died with the process"""
    gw = harness.Gateway()
    gw.publish('lock-k', 'before')
    gw.kill9()
    gw.restart()
    eq(gw.publish('lock-k', 'after')['seq'], 2, 'seq after the restart')
    eq(gw.stop(), 0, 'exit status')
    gw.restart()
    eq(len(gw.read('lock-k')['messages']), 2, 'after a clean restart too')


@test
def other_tools_still_read():
    """while a gateway writes the file, another SQLite connection reads it (and the sqlite3 tool, if installed)"""
    gw = harness.Gateway()
    gw.publish('lock-r', 'x')
    con = sqlite3.connect('file:%s?mode=ro' % gw.db, uri=True, timeout=5)
    try:
        eq(con.execute('SELECT count(*) FROM messages').fetchone()[0], 1, 'rows read from outside')
    finally:
        con.close()
    if shutil.which('sqlite3'):
        p = subprocess.run(['sqlite3', gw.db, 'SELECT body FROM messages'],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                   timeout=10)
        eq((p.returncode, p.stdout.strip()), (0, b'x'), 'the sqlite3 tool reads (stderr %r)' % p.stderr)
    eq(gw.publish('lock-r', 'y')['seq'], 2, 'the gateway goes on after the outside reads')


harness.main()
