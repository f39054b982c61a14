#!/usr/bin/env python3
"""GET /metrics (Prometheus text format 0.0.4) and GET /v1/stats (the same as
JSON): well-formed, and counters that move with what the gateway does."""

import sys
sys.dont_write_bytecode = True

import re
import threading

import harness
from harness import test, check, eq

shared = harness.Shared()

SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})? (\S+)$')
LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def scrape(gw):
    """Parses /metrics strictly; returns {(name, ((label, value), ...)): float}."""
    r = gw.get('/metrics')
    eq(r.status, 200, 'status')
    ct = r.header('Content-Type') or ''
    check(ct.startswith('text/plain') and 'version=0.0.4' in ct, 'Content-Type %r' % ct)
    text = r.raw.decode('utf-8')
    check(text.endswith('\n'), 'ends with a newline')
    samples, types = {}, {}
    for line in text.splitlines():
        if line.startswith('# HELP '):
            continue
        if line.startswith('# TYPE '):
            _, _, name, kind = line.split(' ', 3)
            check(kind in ('counter', 'gauge', 'histogram'), 'TYPE %r' % line)
            types[name] = kind
            continue
        m = SAMPLE.match(line)
        check(m, 'not a sample line: %r' % line)
        labels = tuple(LABEL.findall(m.group(3) or ''))
        key = (m.group(1), labels)
        check(key not in samples, 'duplicate sample %r' % (key,))
        samples[key] = float(m.group(4))
        base = re.sub(r'_(bucket|sum|count)$', '', m.group(1))
        check(m.group(1) in types or base in types, 'sample before its TYPE: %r' % line)
    return samples, types


def value(samples, name, **labels):
    key = (name, tuple(sorted(labels.items())))
    for (n, ls), v in samples.items():
        if n == name and tuple(sorted(ls)) == key[1]:
            return v
    raise harness.Failure('no sample %s%r' % (name, labels))


@test
def prometheus_text_is_well_formed():
    """/metrics parses line by line; histograms are cumulative and end at +Inf == _count"""
    gw = shared.get()
    gw.publish('met-form', 'x')
    samples, types = scrape(gw)
    for name, kind in types.items():
        if kind != 'histogram':
            continue
        series = {}
        for (n, ls), v in samples.items():
            if n == name + '_bucket':
                rest = tuple(l for l in ls if l[0] != 'le')
                le = dict(ls)['le']
                series.setdefault(rest, []).append((float('inf') if le == '+Inf' else float(le), v))
        check(series, 'histogram %s has buckets' % name)
        for rest, buckets in series.items():
            buckets.sort()
            counts = [c for _, c in buckets]
            eq(counts, sorted(counts), '%s%r buckets are cumulative' % (name, rest))
            eq(buckets[-1][0], float('inf'), '%s ends with +Inf' % name)
            eq(buckets[-1][1], value(samples, name + '_count', **dict(rest)),
               '%s +Inf bucket equals _count' % name)
    for t in ('rest', 'longpoll', 'tcp'):
        value(samples, 'visavis_requests_total', transport=t)
        value(samples, 'visavis_open', transport=t)


@test
def counters_move():
    """a REST post, a session PUB, a push and a long-poll each move their counters"""
    gw = shared.get()
    before, _ = scrape(gw)
    s = harness.Session(gw)
    s.cmd('SUB met-move')
    s.reply()
    gw.publish('met-move', 'over rest')
    s.push()
    s.cmd('PUB met-move over tcp')
    s.reply()
    # a long-poll released by a commit
    got = []
    t = threading.Thread(target=lambda: got.append(
        gw.get('/v1/channels/met-move/messages?since=2&wait=30')))
    t.start()
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['longpoll'] >= 1, 'long-poll held')
    gw.publish('met-move', 'wakes the poll')
    t.join(30)
    eq(got[0].status, 200, 'long-poll answered')
    after, _ = scrape(gw)

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    eq(delta('visavis_messages_published_total', via='rest'), 2, 'published via rest')
    eq(delta('visavis_messages_published_total', via='tcp'), 1, 'published via tcp')
    check(delta('visavis_messages_delivered_total', transport='tcp') >= 3,
          'the session got 3 pushes (1 over rest, its own, the third)')
    eq(delta('visavis_messages_delivered_total', transport='longpoll'), 1, 'long-poll delivery')
    eq(delta('visavis_delivery_seconds_count', transport='longpoll'), 1, 'long-poll latency count')
    check(delta('visavis_delivery_seconds_count', transport='tcp') >= 3, 'tcp latency count')
    eq(delta('visavis_requests_total', transport='longpoll'), 1, 'long-poll requests')
    check(delta('visavis_requests_total', transport='tcp') >= 2, 'session commands')
    check(delta('visavis_commits_total') >= 1, 'commits')
    check(delta('visavis_bytes_sent_total', transport='tcp') > 0, 'session bytes out')
    check(delta('visavis_bytes_received_total', transport='rest') > 0, 'rest bytes in')
    s.close()


@test
def open_gauges_follow_sessions():
    """the open{tcp} gauge counts sessions up and back down"""
    gw = shared.get()
    # Earlier tests closed their sessions; the gateway may still be reaping them.
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['tcp'] == 0, 'no session open')
    sessions = [harness.Session(gw) for _ in range(5)]
    # Each Session has read its greeting, so the gateway has counted it.
    eq(gw.get('/v1/stats').json['open']['tcp'], 5, 'five sessions')
    for s in sessions:
        s.close()
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['tcp'] == 0, 'none left')


@test
def stats_json_matches_metrics():
    """/v1/stats carries the same counts as /metrics"""
    gw = shared.get()
    gw.publish('met-json', 'x')
    stats = gw.get('/v1/stats').json
    samples, _ = scrape(gw)
    for via in ('rest', 'tcp'):
        eq(stats['messages_published_total'][via],
           value(samples, 'visavis_messages_published_total', via=via), 'published ' + via)
    eq(stats['commits_total'], value(samples, 'visavis_commits_total'), 'commits')
    check(stats['commit_batch_size_p50'] >= 1, 'batch size p50 is at least one message')


harness.main()
