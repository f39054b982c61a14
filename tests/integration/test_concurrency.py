#!/usr/bin/env python3
"""Many clients at once: every publish answered once, seqs without holes or
repeats, pollers that follow next_since miss nothing."""

import sys
sys.dont_write_bytecode = True

import threading
import time

import harness
from harness import test, check, eq

THREADS = 50
PER_THREAD = 20


def run_threads(n, target):
    """Start n threads on target(i) together; return the exceptions they raised."""
    errors = []
    barrier = threading.Barrier(n)

    def wrap(i):
        try:
            barrier.wait(timeout=30)
            target(i)
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append('thread %d: %r' % (i, e))

    threads = [threading.Thread(target=wrap, args=(i,), daemon=True) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=240)
        check(not t.is_alive(), 'a client thread is still running after 240s')
    return errors


@test
def fifty_clients_one_channel():
    """50 connections x 20 POSTs to one channel: 1000 x 201, unique ids, seqs exactly 1..1000"""
    gw = harness.Gateway()
    ch = 'crowd'
    answers = [[] for _ in range(THREADS)]

    def client(i):
        conn = gw.connect()
        try:
            for j in range(PER_THREAD):
                r = gw.post(ch, {'sender': 't%02d' % i, 'body': 't%02d-m%02d' % (i, j)}, conn=conn)
                answers[i].append(r)
        finally:
            conn.close()

    errors = run_threads(THREADS, client)
    check(not errors, '%d client errors, first: %s' % (len(errors), errors[:3]))
    flat = [r for rs in answers for r in rs]
    eq(len(flat), THREADS * PER_THREAD, 'answers')
    bad = [r for r in flat if r.status != 201]
    check(not bad, '%d answers were not 201, first: %s' % (len(bad), bad[:3]))
    ids = [r.json['id'] for r in flat]
    eq(len(set(ids)), len(ids), 'distinct ids')
    seqs = sorted(r.json['seq'] for r in flat)
    eq(seqs, list(range(1, THREADS * PER_THREAD + 1)), 'seqs in the 201 answers')
    for i, rs in enumerate(answers):
        own = [r.json['seq'] for r in rs]
        eq(own, sorted(own), 'seqs of client %d increase (it posted one after the other)' % i)

    stored = gw.read_all(ch)
    eq([m['seq'] for m in stored], list(range(1, THREADS * PER_THREAD + 1)), 'stored seqs')
    pairs = [(m['sender'], m['body']) for m in stored]
    eq(len(set(pairs)), len(pairs), '(sender, body) pairs stored once each')
    eq(sorted(pairs), sorted(('t%02d' % i, 't%02d-m%02d' % (i, j))
                              for i in range(THREADS) for j in range(PER_THREAD)), 'stored pairs')
    stored_ids = [m['id'] for m in stored]
    eq(stored_ids, sorted(stored_ids), 'ids increase with seq (commit order)')
    tss = [m['ts'] for m in stored]
    eq(tss, sorted(tss), 'ts never goes back in commit order')
    by_id = {r.json['id']: r.json for r in flat}
    for m in stored:
        eq(m, by_id.get(m['id']), 'stored message equals its 201 answer')
    chans = gw.channels()
    eq([(c['name'], c['messages'], c['last_seq']) for c in chans],
       [(ch, THREADS * PER_THREAD, THREADS * PER_THREAD)], 'channel list')


@test
def writers_and_pollers():
    """10 writers on 5 channels while 5 pollers follow next_since: each poller sees 1..N once"""
    gw = harness.Gateway()
    channels = ['cw-%d' % i for i in range(5)]
    per_writer = 30
    writers = 10  # two per channel
    total = per_writer * writers // len(channels)
    seen = {ch: [] for ch in channels}

    def work(i):
        if i < writers:
            conn = gw.connect()
            for j in range(per_writer):
                gw.publish(channels[i % len(channels)], 'w%d-%d' % (i, j), conn=conn)
            conn.close()
            return
        ch = channels[i - writers]
        conn = gw.connect()
        since = 0
        deadline = time.monotonic() + 120
        while len(seen[ch]) < total:
            check(time.monotonic() < deadline, 'poller on %s saw only %d of %d' % (ch, len(seen[ch]), total))
            env = gw.read(ch, since=since, limit=7, conn=conn)
            seen[ch] += [m['seq'] for m in env['messages']]
            if env['messages']:
                eq(env['next_since'], env['messages'][-1]['seq'], 'next_since')
            else:
                eq(env['next_since'], since, 'next_since of an empty page')
            since = env['next_since']
        conn.close()

    errors = run_threads(writers + len(channels), work)
    check(not errors, '%d thread errors, first: %s' % (len(errors), errors[:3]))
    for ch in channels:
        eq(seen[ch], list(range(1, total + 1)), 'seqs the poller of %s saw' % ch)
        eq([m['seq'] for m in gw.read_all(ch)], list(range(1, total + 1)), 'stored seqs of %s' % ch)


@test
def many_channels_at_once():
    """20 clients spreading 200 POSTs over 4 channels: each channel has seqs 1..n, counts add up"""
    gw = harness.Gateway()
    channels = ['mc-a', 'mc-b', 'mc-c', 'mc-d']
    posted = [[] for _ in range(20)]

    def client(i):
        conn = gw.connect()
        for j in range(10):
            posted[i].append(gw.publish(channels[(i + j) % 4], 'c%d-%d' % (i, j), conn=conn))
        conn.close()

    errors = run_threads(20, client)
    check(not errors, '%d client errors, first: %s' % (len(errors), errors[:3]))
    flat = [m for ms in posted for m in ms]
    eq(len({m['id'] for m in flat}), 200, 'distinct ids')
    counts = {}
    for m in flat:
        counts[m['channel']] = counts.get(m['channel'], 0) + 1
    for ch in channels:
        stored = gw.read_all(ch)
        eq([m['seq'] for m in stored], list(range(1, counts[ch] + 1)), 'seqs of %s' % ch)
        eq(sorted(m['id'] for m in stored), sorted(m['id'] for m in flat if m['channel'] == ch),
           'ids of %s' % ch)
    eq([(c['name'], c['messages']) for c in gw.channels()], sorted(counts.items()), 'channel list')


@test
def connection_churn():
    """20 threads x 25 short-lived connections (one request each) all answered"""
    gw = harness.Gateway()
    statuses = []

    def client(i):
        for _ in range(25):
            statuses.append(gw.get('/healthz').status)

    errors = run_threads(20, client)
    check(not errors, '%d client errors, first: %s' % (len(errors), errors[:3]))
    eq(statuses, [200] * 500, 'statuses')


harness.main()
