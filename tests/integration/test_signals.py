#!/usr/bin/env python3
"""Signals a terminal or a supervisor sends: SIGHUP, SIGUSR1 and SIGUSR2 are
logged and ignored, under load and without losing anything; SIGQUIT stops
gracefully like SIGTERM (README.md, "Signals")."""

import sys
sys.dont_write_bytecode = True

import os
import signal
import threading

import harness
from harness import test, check, eq


class Load:
    """REST clients and one session publishing to ch until stopped (or the
    gateway goes); every answer is recorded."""

    def __init__(self, gw, ch, rest=4):
        self.gw, self.ch = gw, ch
        self.acked, self.other = [], []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.enough = threading.Event()
        self.want = 0
        self.threads = [threading.Thread(target=self.rest, args=(i,), daemon=True) for i in range(rest)]
        self.threads.append(threading.Thread(target=self.session, daemon=True))

    def record(self, ok, what):
        with self.lock:
            (self.acked if ok else self.other).append(what)
            if len(self.acked) >= self.want:
                self.enough.set()

    def rest(self, i):
        conn = self.gw.connect(timeout=15)
        j = 0
        try:
            while not self.stop.is_set():
                r = self.gw.post(self.ch, {'sender': 'r%d' % i, 'body': 'r%d-%d' % (i, j)}, conn=conn)
                self.record(r.status == 201, r.json if r.status == 201 else r)
                if r.status != 201:
                    return
                j += 1
        except OSError:  # the gateway went away: a stop test expects it
            return
        finally:
            conn.close()

    def session(self):
        try:
            with harness.Session(self.gw, timeout=15) as s:
                j = 0
                while not self.stop.is_set():
                    r = s.request('PUB %s s-%d' % (self.ch, j))
                    if r.get('type') == 'bye':  # stopping: that PUB was never read
                        eq(r.get('reason'), 'shutdown', 'reason of the farewell (%s)' % r)
                        return
                    ok = r.get('type') == 'ok'
                    self.record(ok, r['message'] if ok else r)
                    if not ok:
                        return
                    j += 1
        except (OSError, harness.Failure):
            return

    def start(self, acks):
        self.want = acks
        for t in self.threads:
            t.start()
        check(self.enough.wait(60), 'only %d publishes acknowledged in 60 s' % len(self.acked))

    def more(self, acks):
        with self.lock:
            self.want = len(self.acked) + acks
            self.enough.clear()
        check(self.enough.wait(60), 'publishing stalled at %d acknowledged' % len(self.acked))

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
            check(not t.is_alive(), 'a load client is still running 30 s after the end')
        return list(self.acked), list(self.other)


def check_stored(gw, ch, acked):
    stored = gw.read_all(ch)
    eq([m['seq'] for m in stored], list(range(1, len(stored) + 1)), 'stored seqs have no hole')
    by_id = {m['id']: m for m in stored}
    lost = [m for m in acked if by_id.get(m['id'], {}).get('body') != m['body']]
    check(not lost, '%d acknowledged messages lost, e.g. %s' % (len(lost), lost[:2]))


def ignored_lines(gw):
    return gw.stderr_text().count(': ignored')


@test
def sighup_under_load():
    """SIGHUP three times while REST and a session publish: logged, ignored, nothing refused or lost"""
    gw = harness.Gateway()
    load = Load(gw, 'sig-hup')
    load.start(100)
    for k in range(1, 4):
        os.kill(gw.proc.pid, signal.SIGHUP)
        harness.wait_for(lambda: ignored_lines(gw) >= k, 'log line %d of an ignored SIGHUP' % k)
        load.more(50)
    acked, other = load.finish()
    check(gw.running, 'the gateway died of SIGHUP')
    eq(other, [], 'answers other than success')
    gw.wait_stderr(r'Hangup \(from pid %d\): ignored' % os.getpid())
    check_stored(gw, 'sig-hup', acked)
    eq(gw.stop(), 0, 'exit status after the SIGHUPs')


@test
def sigusr_ignored():
    """SIGUSR1 and SIGUSR2: one log line each, the gateway goes on"""
    gw = harness.Gateway()
    gw.publish('sig-usr', 'a')
    for n, sig in enumerate((signal.SIGUSR1, signal.SIGUSR2), 1):
        os.kill(gw.proc.pid, sig)
        harness.wait_for(lambda: ignored_lines(gw) >= n, 'log line of an ignored %s' % sig.name)
        check(gw.running, 'the gateway died of %s' % sig.name)
    eq(gw.publish('sig-usr', 'b')['seq'], 2, 'publish after SIGUSR1 and SIGUSR2')
    eq(ignored_lines(gw), 2, 'one log line per signal')


@test
def sigquit_stops_gracefully():
    """SIGQUIT while REST and a session publish: exit 0 like SIGTERM, every acknowledged message stored"""
    gw = harness.Gateway()
    load = Load(gw, 'sig-quit')
    load.start(100)
    eq(gw.stop(sig=signal.SIGQUIT), 0, 'exit status')
    acked, other = load.finish()
    for r in other:
        if isinstance(r, harness.Resp):
            harness.check_error(r, 503, 'shutting_down', 'a POST during the stop')
        else:
            harness.check_session_error(r, 'shutting_down', what='a PUB during the stop')
    gw.restart()
    check_stored(gw, 'sig-quit', acked)


harness.main()
