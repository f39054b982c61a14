#!/usr/bin/env python3
"""gwbench, the comparison client (docs/comparison.md), against the real
gateway with a tiny workload: every style and column is in its --json
output and the numbers relate as they must (pipelined TCP outruns a new
connection per POST, push delivers well inside a poll interval, rest-close
opens a connection per message and the others almost none, REST costs more
bytes than the session protocol, udp's stored and lost add up to what it
sent and match what the gateway holds); publish, delivery and round-trip
styles are shown and ranked apart (a delivery style's rate is the one
offered, never a winner of msgs/s); --runs gives medians and their spread;
--csv and --svg are
well-formed; the run's channels share one prefix; an unreachable gateway, a
gateway lost mid-run and a bad command line give clear errors and non-zero
exits.

Run as `python3 test_gwbench.py build/gateway/visavis-gateway`: gwbench is found
next to the gateway, at ../clients/gwbench/gwbench from the gateway's directory (or
set VISAVIS_GWBENCH)."""

import sys
sys.dont_write_bytecode = True

import base64
import csv
import hashlib
import http.client
import io
import json
import os
import re
import select
import shutil
import signal
import socket
import struct
import subprocess
import tempfile
import threading
import time
import xml.etree.ElementTree as ET

import harness
from harness import test, check, eq, Failure

# No UDP rate limit per source, as with --spawn: gwbench's sockets share one address.
# --sync normal: these tests read what gwbench reports and how its figures
# relate, not the disk; an fsync at each commit let a moment of a busy disk
# (another test's) make a push style slower than polling.
shared = harness.Shared(args=['--udp-rate', '0', '--sync', 'normal'])
TIMEOUT = 60

STYLES = ['rest-close', 'rest-keepalive', 'tcp', 'tcp-pipelined', 'ws', 'udp', 'tcp-push',
          'ws-push', 'socketio', 'sse', 'rest-longpoll', 'rest-poll', 'tcp-ping', 'udp-ping']
DELIVERY = {'tcp-push', 'ws-push', 'socketio', 'sse', 'rest-longpoll', 'rest-poll'}
ROUNDTRIP = {'tcp-ping', 'udp-ping'}
PUBLISH = [s for s in STYLES if s not in DELIVERY and s not in ROUNDTRIP]
POLLING = {'rest-longpoll', 'rest-poll'}
LATENCIES = ['p50_us', 'p90_us', 'p99_us', 'max_us']
COLUMNS = ['msgs_per_s', 'offered_per_s', 'delivered_share'] + LATENCIES + \
    ['bytes_per_msg', 'connections_per_1k', 'empty_poll_share', 'lost_share']
# What each kind is ranked on: never msgs/s for the delivery styles, whose rate is the offered one.
RANKED = {'publish': ['msgs_per_s'] + LATENCIES + ['bytes_per_msg', 'connections_per_1k'],
          'delivery': LATENCIES + ['bytes_per_msg', 'connections_per_1k', 'empty_poll_share'],
          'roundtrip': ['msgs_per_s'] + LATENCIES + ['bytes_per_msg', 'connections_per_1k']}


def kind_of(name):
    return 'delivery' if name in DELIVERY else 'roundtrip' if name in ROUNDTRIP else 'publish'


def has_no(name, col):
    """True where a style has no value in a column (null in JSON, empty in CSV)."""
    return ((col == 'empty_poll_share' and name not in POLLING) or
            (col == 'delivered_share' and name not in DELIVERY) or
            (col == 'lost_share' and name in DELIVERY) or
            (col in LATENCIES and name == 'udp'))  # fire and forget: nothing to time
POLL_MS = 250
TINY = ['--messages', '200', '--connections', '4']


def gwbench_bin():
    path = os.environ.get('VISAVIS_GWBENCH') or os.path.normpath(
        os.path.join(os.path.dirname(harness.gateway_bin()), '..', 'clients', 'gwbench', 'gwbench'))
    if not os.access(path, os.X_OK):
        print('Bail out! gwbench binary %s is missing or not executable' % path)
        sys.exit(1)
    return path


def fronts(gw):
    return ['--http', '127.0.0.1:%d' % gw.http_port, '--tcp', '127.0.0.1:%d' % gw.tcp_port,
            '--udp', '127.0.0.1:%d' % gw.udp_port]


def run_gwbench(args, timeout=TIMEOUT, env=None, pre=()):
    """Run gwbench to completion, behind the command prefix pre (prlimit, say);
    returns (rc, stdout, stderr) as text."""
    p = subprocess.Popen(list(pre) + [gwbench_bin()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.clean_env(env), start_new_session=True)
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        p.kill()
        out, err = p.communicate()
        raise Failure('gwbench %s still running after %.0fs (killed); stdout=%s stderr=%s'
                      % (' '.join(args), timeout, harness._short(out), harness._short(err)))
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    check(not harness.SANITIZER_RE.search(err), 'sanitizer report from gwbench:\n' + err[-3000:])
    return p.returncode, out, err


free_port = harness.free_port


_report = {}


def report():
    """The --json report of one tiny run of every style, made once for the tests that read it."""
    if 'doc' not in _report:
        gw = shared.get()
        rc, out, err = run_gwbench(fronts(gw) + TINY + ['--poll-interval', str(POLL_MS), '--json'])
        eq(rc, 0, 'gwbench exit status (stderr:\n%s)' % err)
        try:
            _report['doc'] = json.loads(out)
        except ValueError as e:
            raise Failure('--json output is not JSON (%s): %s' % (e, harness._short(out)))
    return _report['doc']


def by_name(doc):
    return {s['name']: s for s in doc['styles']}


# --------------------------------------------------------------------------
# --json

@test
def json_every_style_and_column():
    """--json: every style, every column, config and winners; nulls only where they belong"""
    doc = report()
    eq(sorted(doc.keys()), ['config', 'styles', 'winners'], 'top-level keys')
    eq([s['name'] for s in doc['styles']], STYLES, 'styles, in order')
    for s in doc['styles']:
        eq(s['error'], None, '%s error' % s['name'])
        eq(s['kind'], kind_of(s['name']), '%s kind' % s['name'])
        for col in COLUMNS:
            check(col in s, '%s has no %s: %r' % (s['name'], col, s))
            if has_no(s['name'], col):
                eq(s[col], None, '%s %s (not that kind of style)' % (s['name'], col))
                continue
            check(isinstance(s[col], (int, float)) and s[col] >= 0,
                  '%s %s is a non-negative number: %r' % (s['name'], col, s[col]))
        eq(len(s['per_run']), 1, '%s: one run' % s['name'])
        check(s['per_run'][0]['channel'].startswith(doc['config']['channel_prefix']),
              '%s: its channel has the run\'s prefix: %r' % (s['name'], s['per_run'][0]))
        if s['name'] != 'udp':
            check(s['p50_us'] > 0 and s['p50_us'] <= s['p90_us'] <= s['p99_us'] <= s['max_us'],
                  '%s: 0 < p50 <= p90 <= p99 <= max: %r' % (s['name'], s))
        check(s['msgs_per_s'] > 0, '%s msgs_per_s > 0' % s['name'])
        run = s['per_run'][0]
        if s['name'] in ('udp', 'udp-ping'):
            # Datagrams: what was not stored (answered) was lost, and said so.
            eq(run['sent'], 200, '%s datagrams sent' % s['name'])
            eq(s['messages'] + run['lost'], 200, '%s stored (answered) + lost' % s['name'])
            eq(s['lost_share'], round(run['lost'] / 200, 4), '%s lost_share' % s['name'])
            check(isinstance(run['udp_drops'], str), '%s udp_drops: %r' % (s['name'], run))
            eq(s['latency_of'], None if s['name'] == 'udp' else 'ping->pong',
               '%s latency_of' % s['name'])
        elif s['name'] in DELIVERY:
            eq(s['published'], 200, '%s messages published' % s['name'])
            eq(s['messages'], 800, '%s deliveries (200 messages x 4 receivers)' % s['name'])
            eq(s['offered_per_s'], 1000.0, '%s offered rate (the default)' % s['name'])
            check(0 < s['delivered_share'] <= 1, '%s share got: %r' % (s['name'], s))
            eq(s['fell_short'], s['delivered_share'] < 0.9, '%s fell_short' % s['name'])
        else:
            eq(s['messages'], 200, '%s messages acknowledged' % s['name'])
            eq((run['sent'], run['lost'], s['lost_share']), (200, 0, 0.0),
               '%s sent, lost (a reliable style)' % s['name'])
            eq(s['fell_short'], None, '%s fell_short (not a delivery style)' % s['name'])
    cfg = doc['config']
    eq((cfg['connections'], cfg['messages'], cfg['duration_s'], cfg['poll_interval_ms'],
        cfg['runs']), (4, 200, None, POLL_MS, 1), 'config')
    eq(cfg['styles'], STYLES, 'config styles')
    check(re.match(r'^gwbench-[0-9a-f]{8}-$', cfg['channel_prefix']),
          'channel prefix: %r' % cfg['channel_prefix'])
    eq(cfg['channels_kept'], True, 'a live gateway keeps the channels')
    check(re.match(r'^\d+ CPUs, ', cfg['machine']) and cfg['started'].endswith(' UTC'),
          'where and when: %r, %r' % (cfg['machine'], cfg['started']))
    eq(cfg['udp'], '127.0.0.1:%d' % shared.get().udp_port, 'config udp')
    eq(sorted(doc['winners'].keys()), ['delivery', 'publish', 'roundtrip'], 'winners per kind')
    for kind, cols in RANKED.items():
        eq(sorted(doc['winners'][kind].keys()), sorted(cols), '%s winners columns' % kind)
        for col, name in doc['winners'][kind].items():
            check(kind_of(name) == kind,
                  '%s winner of %s is a %s style: %r' % (kind, col, kind, name))
    check(doc['winners']['delivery']['empty_poll_share'] in POLLING, 'empty_poll_share winner polls')


@test
def json_relations():
    """--json: the numbers relate as the styles promise"""
    s = by_name(report())
    check(s['tcp-pipelined']['msgs_per_s'] > s['rest-close']['msgs_per_s'],
          'pipelined TCP moves more messages/s than rest-close: %s vs %s'
          % (s['tcp-pipelined']['msgs_per_s'], s['rest-close']['msgs_per_s']))
    for push in ('tcp-push', 'sse'):
        check(s[push]['p50_us'] < POLL_MS * 1000,
              '%s p50 %s us is below the poll interval' % (push, s[push]['p50_us']))
    check(900 <= s['rest-close']['connections_per_1k'] <= 1100,
          'rest-close opens a connection per message: %s per 1k'
          % s['rest-close']['connections_per_1k'])
    for name in STYLES:
        if name == 'rest-close':
            continue
        if name in ('udp', 'udp-ping'):
            eq(s[name]['connections_per_1k'], 0.0, '%s opens no connection' % name)
        # 4 connections for 200 (or 800) messages: 20 (or 5) per 1,000; a new one per message is 1,000.
        check(s[name]['connections_per_1k'] <= 25,
              '%s keeps its connections: %s per 1k' % (name, s[name]['connections_per_1k']))
    for rest in ('rest-close', 'rest-keepalive'):
        for tcp in ('tcp', 'tcp-pipelined'):
            check(s[rest]['bytes_per_msg'] > s[tcp]['bytes_per_msg'],
                  '%s costs more bytes per message than %s: %s vs %s'
                  % (rest, tcp, s[rest]['bytes_per_msg'], s[tcp]['bytes_per_msg']))
    for name in POLLING:
        share = s[name]['empty_poll_share']
        run = s[name]['per_run'][0]
        check(0 <= share <= 1, '%s empty poll share in [0, 1]: %r' % (name, share))
        check(run['polls'] >= 1 and run['empty_polls'] <= run['polls'],
              '%s polls %s, empty %s' % (name, run['polls'], run['empty_polls']))
    # A poller wakes every 250 ms: its median delivery waits a good part of that.
    check(s['rest-poll']['p50_us'] > s['tcp-push']['p50_us'],
          'rest-poll p50 %s us above tcp-push p50 %s us'
          % (s['rest-poll']['p50_us'], s['tcp-push']['p50_us']))
    check(s['rest-poll']['max_us'] < (POLL_MS + 2000) * 1000,
          'rest-poll max %s us within a poll interval (and slack)' % s['rest-poll']['max_us'])
    # What udp says it stored is what the gateway holds on its channel.
    udp = s['udp']['per_run'][0]
    held = [c['messages'] for c in shared.get().channels() if c['name'] == udp['channel']]
    eq(held, [s['udp']['messages']], 'messages on %s' % udp['channel'])
    check(s['udp']['offered_per_s'] >= s['udp']['msgs_per_s'],
          'udp offered %s >= stored %s per second' % (s['udp']['offered_per_s'],
                                                      s['udp']['msgs_per_s']))
    eq(s['tcp-ping']['bytes_per_msg'] < s['tcp']['bytes_per_msg'], True,
       'a PING round trip costs fewer bytes than a PUB: %s vs %s'
       % (s['tcp-ping']['bytes_per_msg'], s['tcp']['bytes_per_msg']))


@test
def rest_poll_keeps_up_with_cut_pages():
    """rest-poll asks for the next page at once while a page says more: one 3 kB message per 4 KiB page, 400 msgs/s, it keeps up"""
    gw = harness.Gateway(args=['--page-bytes', '4096'])
    try:
        rc, out, err = run_gwbench(fronts(gw) + ['--styles', 'rest-poll', '--messages', '200',
                                                 '--connections', '1', '--size', '3000',
                                                 '--rate', '400', '--poll-interval', str(POLL_MS),
                                                 '--json'])
    finally:
        gw.stop()
    eq(rc, 0, 'gwbench exit status (stderr:\n%s)' % err)
    s = by_name(json.loads(out))['rest-poll']
    eq(s['messages'], 200, 'messages published')
    # A page per interval would take 200 intervals for the 200 cut pages.
    check(s['max_us'] < (POLL_MS + 2000) * 1000,
          'rest-poll max %s us within a poll interval (and slack)' % s['max_us'])


# --------------------------------------------------------------------------
# table, --csv, --svg

@test
def table_and_winners_line():
    """the table: publish and delivery styles in blocks of their own, one winners line each"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + ['--messages', '60', '--connections', '2',
                                             '--styles', 'tcp,rest-keepalive,tcp-push'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    lines = out.splitlines()
    pub = [i for i, l in enumerate(lines) if l.startswith('publish styles ')]
    dlv = [i for i, l in enumerate(lines) if l.startswith('delivery styles ')]
    eq((len(pub), len(dlv)), (1, 1), 'a header per kind in:\n%s' % out)
    p, d = pub[0], dlv[0]
    for col in ('msgs/s', 'p99', 'bytes/msg', 'conns/1k'):
        check(col in lines[p], 'publish header has %s: %r' % (col, lines[p]))
    for col in ('offered', 'got', 'p99', 'bytes/msg', 'conns/1k'):
        check(col in lines[d], 'delivery header has %s: %r' % (col, lines[d]))
    check('msgs/s' not in lines[d], 'no msgs/s for delivery styles: %r' % lines[d])
    rows = lines[p + 1:p + 3]
    eq([r.split()[0] for r in rows], ['rest-keepalive', 'tcp'],
       'publish rows in the order the styles run:\n%s' % out)
    eq(len(set(len(r) for r in rows + [lines[p]])), 1, 'aligned publish rows:\n%s' % out)
    eq(lines[d + 1].split()[0], 'tcp-push', 'the delivery row:\n%s' % out)
    eq(len(lines[d + 1]), len(lines[d]), 'aligned delivery row:\n%s' % out)
    check(re.search(r'\s1,000\s+\d+%\*?\s', lines[d + 1]),
          'offered 1,000/s and the share got: %r' % lines[d + 1])
    best_pub = [l for l in lines if l.startswith('best publish:')]
    best_dlv = [l for l in lines if l.startswith('best delivery:')]
    eq((len(best_pub), len(best_dlv)), (1, 1), 'a winners line per kind in:\n%s' % out)
    check(re.search(r'msgs/s (rest-keepalive|tcp)\b', best_pub[0]),
          'msgs/s won by a publish style: %r' % best_pub[0])
    check('msgs/s' not in best_dlv[0] and 'p50 tcp-push' in best_dlv[0],
          'delivery ranked on latency, not msgs/s: %r' % best_dlv[0])
    check(any(l.startswith('channels: gwbench-') for l in lines),
          'the run\'s channels are named:\n%s' % out)


@test
def table_udp_and_round_trips():
    """the table: udp among the publish styles with no latency, a round-trips block, a winners line for it"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + ['--messages', '60', '--connections', '2',
                                             '--styles', 'tcp,udp,tcp-ping,udp-ping'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    lines = out.splitlines()
    pub = [i for i, l in enumerate(lines) if l.startswith('publish styles ')]
    rtt = [i for i, l in enumerate(lines) if l.startswith('round trips ')]
    eq((len(pub), len(rtt)), (1, 1), 'a header per kind in:\n%s' % out)
    p, t = pub[0], rtt[0]
    for col in ('msgs/s', 'offered', 'p99', 'bytes/msg', 'lost'):
        check(col in lines[p] and col in lines[t], 'both headers have %s:\n%s' % (col, out))
    udp = lines[p + 2].split()
    eq(udp[0], 'udp', 'the udp row:\n%s' % out)
    eq(udp[3:7], ['-'] * 4, 'udp has no latency: %r' % lines[p + 2])
    eq([lines[t + 1].split()[0], lines[t + 2].split()[0]], ['tcp-ping', 'udp-ping'],
       'round-trip rows:\n%s' % out)
    eq(len(set(len(r) for r in lines[t:t + 3])), 1, 'aligned round-trip rows:\n%s' % out)
    best = [l for l in lines if l.startswith('best round trip:')]
    eq(len(best), 1, 'a winners line for round trips:\n%s' % out)
    check(re.search(r'msgs/s (tcp|udp)-ping\b', best[0]), 'round trips ranked: %r' % best[0])
    check(any(l.startswith('udp:      fire and forget') for l in lines),
          'the udp footnote:\n%s' % out)


@test
def udp_open_loop():
    """--rate: udp sends on the schedule, offers that rate, has no latency, and stores every datagram at a rate the gateway carries"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + ['--rate', '5000', '--duration', '1',
                                             '--styles', 'udp', '--json'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    s = by_name(json.loads(out))['udp']
    run = s['per_run'][0]
    check(4500 <= run['sent'] <= 5000, '%s sent in 1 s at 5000/s' % run['sent'])
    eq((s['messages'], run['lost']), (run['sent'], 0), 'stored, lost')
    check(4000 <= s['offered_per_s'] <= 6000, 'offered %s, about --rate 5000' % s['offered_per_s'])
    check(s['msgs_per_s'] <= s['offered_per_s'] * 1.05,
          'stored %s per second, not above what was offered' % s['msgs_per_s'])
    eq([s[c] for c in LATENCIES], [None] * 4, 'no latency, even open loop')


@test
def csv_header_and_rows():
    """--csv: a header and one row per style, the same columns as --json"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + TINY + ['--csv'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    rows = list(csv.reader(io.StringIO(out)))
    eq(rows[0], ['style', 'kind', 'run'] + COLUMNS + ['messages', 'error'], 'CSV header')
    eq([r[0] for r in rows[1:]], STYLES, 'one row per style, in order')
    for r in rows[1:]:
        eq(len(r), len(rows[0]), 'fields in the row of %s' % r[0])
        eq((r[1], r[2]), (kind_of(r[0]), '1'), 'kind and run')
        for col, v in zip(COLUMNS, r[3:]):
            if has_no(r[0], col):
                eq(v, '', '%s %s' % (r[0], col))
            else:
                check(float(v) >= 0, '%s %s = %r' % (r[0], col, v))
        eq(r[-1], '', '%s error field' % r[0])


@test
def svg_chart_is_valid():
    """--svg FILE: a well-formed SVG naming every style, with bars"""
    gw = shared.get()
    path = os.path.join(tempfile.mkdtemp(prefix='gwbench-svg-'), 'chart.svg')
    try:
        rc, out, err = run_gwbench(fronts(gw) + TINY + ['--svg', path, '--json'])
        eq(rc, 0, 'exit status (stderr:\n%s)' % err)
        json.loads(out)  # --svg goes to the file; stdout keeps the report
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise Failure('%s is not well-formed XML: %s' % (path, e))
        eq(root.tag, '{http://www.w3.org/2000/svg}svg', 'root element')
        ns = '{http://www.w3.org/2000/svg}'
        texts = [''.join(t.itertext()) for t in root.iter(ns + 'text')]
        for name in STYLES:
            check(texts.count(name) == 2, 'style %s labels both panels: %r' % (name, texts))
        # Bars: the background, one per publish and round-trip style for throughput, 2 per
        # style for latency but udp (fire and forget, nothing to time), 3 legend keys.
        eq(len(list(root.iter(ns + 'rect'))),
           1 + len(PUBLISH) + len(ROUNDTRIP) + 2 * (len(STYLES) - 1) + 3,
           'no throughput bar for a delivery style, no latency bar for udp')
        eq(len([t for t in texts if t.startswith('fire and forget')]), 1, 'udp says why: %r' % texts)
        eq(len([t for t in texts if t.startswith('paced, not a capacity: 1,000 msgs/s offered')]),
           len(DELIVERY), 'each delivery style says it is paced: %r' % texts)
    finally:
        if os.path.exists(path):
            os.unlink(path)
        os.rmdir(os.path.dirname(path))


# --------------------------------------------------------------------------
# errors

@test
def unreachable_gateway():
    """nothing listening: exit 3 and "cannot connect to <addr>: Connection refused" """
    port = free_port()
    for args in (['--http', '127.0.0.1:%d' % port, '--styles', 'rest-keepalive'],
                 ['--tcp', '127.0.0.1:%d' % port, '--styles', 'tcp', '--json']):
        rc, out, err = run_gwbench(args + ['--messages', '10', '--timeout', '5'])
        eq(rc, 3, 'exit status of gwbench %s (stderr: %r)' % (' '.join(args), err))
        check('cannot connect to 127.0.0.1:%d: Connection refused' % port in err,
              'message on stderr: %r' % err)
        eq(out, '', 'stdout')
    # UDP has no connect: nothing answers, and the port says so.
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(('127.0.0.1', 0))
        udp_port = s.getsockname()[1]
    rc, out, err = run_gwbench(['--udp', '127.0.0.1:%d' % udp_port, '--styles', 'udp-ping',
                                '--messages', '10', '--timeout', '2'])
    eq(rc, 3, 'exit status with no UDP front (stderr: %r)' % err)
    check('does not answer as a visavis UDP front (--udp)' in err, 'message on stderr: %r' % err)


@test
def wrong_front():
    """--http pointing at the session port: exit 3, saying it is not a REST front"""
    gw = shared.get()
    rc, out, err = run_gwbench(['--http', '127.0.0.1:%d' % gw.tcp_port, '--styles', 'rest-close',
                                '--messages', '10', '--timeout', '5'])
    eq(rc, 3, 'exit status (stderr: %r)' % err)
    check('does not answer as a visavis REST front' in err, 'message: %r' % err)


@test
def gateway_lost_mid_run():
    """the gateway killed mid-run: exit 1, the style named, what happened said"""
    gw = harness.Gateway()
    p = subprocess.Popen([gwbench_bin()] + fronts(gw) + ['--styles', 'tcp,tcp-push',
                                                         '--duration', '20', '--json'],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.clean_env(), start_new_session=True)
    try:
        # gwbench names its channels once the gateway answered; the tcp style's first
        # commit then releases a long-poll on its channel: gwbench is publishing.
        first = p.stderr.readline().decode('utf-8', 'replace')
        m = re.match(r"^gwbench: this run's channels: (gwbench-[0-9a-f]{8}-)\*$", first.strip())
        check(m, 'the first stderr line names the channels: %r' % first)
        conn = http.client.HTTPConnection('127.0.0.1', gw.http_port, timeout=40)
        try:
            r = gw.get('/v1/channels/%stcp/messages?since=0&limit=1&wait=30' % m.group(1),
                       conn=conn)
        finally:
            conn.close()
        eq(r.status, 200, 'the long-poll on the tcp style\'s channel (%s)' % r)
        check(r.json['messages'], 'released by a message: %r' % r.json)
        gw.kill9()
        out, err = p.communicate(timeout=TIMEOUT)
        err = first.encode() + err
    finally:
        if p.poll() is None:
            p.kill()
            p.communicate()
    out, err = out.decode('utf-8', 'replace'), err.decode('utf-8', 'replace')
    eq(p.returncode, 1, 'exit status (stderr: %r)' % err)
    check('gwbench: tcp failed: ' in err, 'the failed style is named: %r' % err)
    check('closed' in err or 'reset' in err, 'what happened is said: %r' % err)
    check('were not run' in err, 'the styles after it are said to be skipped: %r' % err)
    doc = json.loads(out)
    eq([s['name'] for s in doc['styles']], ['tcp'], 'styles in the report')
    check(doc['styles'][0]['error'] and doc['styles'][0]['msgs_per_s'] is None,
          'the failed style has an error and no numbers: %r' % doc['styles'][0])


# --------------------------------------------------------------------------
# A hostile session server: what it sends must not take gwbench's memory or
# time, nor reach the terminal raw

HELLO = b'{"type":"hello","protocol":"visavis","version":1,"server":"fake","session":"s1","heartbeat":30}\n'


class FakeServer(harness.FakeServer):
    """harness.FakeServer with gwbench to run against it."""

    def run_gwbench(self, args, limit_mb=None, timeout=TIMEOUT, style='tcp-ping', front='--tcp'):
        """gwbench's style against this server as its front (--tcp or --http;
        no other front is touched); (rc, stdout, stderr, seconds it took)."""
        pre = harness.address_limit(limit_mb) if limit_mb else []
        fronts = {'--tcp': '127.0.0.1:1', '--http': '127.0.0.1:1', '--udp': '127.0.0.1:1'}
        fronts[front] = self.addr
        t0 = time.monotonic()
        p = subprocess.Popen(pre + [gwbench_bin()] + [w for f in fronts.items() for w in f] +
                             ['--styles', style] + list(args),
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, env=harness.clean_env(),
                             start_new_session=True)
        try:
            out, err = p.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
            raise Failure('gwbench still running after %.0fs (killed); stderr=%s'
                          % (timeout, harness._short(err)))
        finally:
            self.close()
        err = err.decode('utf-8', 'replace')
        check(not harness.SANITIZER_RE.search(err), 'sanitizer report from gwbench:\n' + err[-3000:])
        return p.returncode, out.decode('utf-8', 'replace'), err, time.monotonic() - t0


def first_line(conn, stop):
    """Waits for the first line gwbench sends; False once stop is set or it closed."""
    return harness.recv_line(conn, stop, bytearray()) is not None


def greet_then(answer):
    """A handler: the hello; at the first command, answer(conn, stop)."""
    def handler(conn, stop):
        conn.sendall(HELLO)
        if first_line(conn, stop):
            answer(conn, stop)
    return handler


endless = harness.send_endless_line


# What a terminal must never be handed raw: C0 controls, DEL and the C1 controls.
CONTROLS = re.compile('[\x00-\x09\x0b-\x1f\x7f-\x9f]')


@test
def endless_reply_line():
    """a reply line with no end fails the run with a clear error, in bounded memory"""
    srv = FakeServer(greet_then(endless))
    rc, out, err, took = srv.run_gwbench(['-c', '3', '-d', '2', '--timeout', '5'], limit_mb=768)
    eq(rc, 1, 'exit status (stderr %r)' % err)
    check(re.search(r'tcp-ping failed: .* sent a line longer than \d+ bytes', err),
          'the reason on stderr: %r' % err)


def websocket_endless(conn, stop, fragments=False):
    """A REST front that is healthy, and whose WebSocket upgrade is followed
    by one text message that never ends: one frame that claims 2^40 bytes,
    or (fragments) 64 KiB frames none of which is the last."""
    head = b''
    while b'\r\n\r\n' not in head:
        if stop.is_set():
            return
        try:
            data = conn.recv(4096)
        except socket.timeout:
            continue
        if not data:
            return
        head += data
    if head.startswith(b'GET /healthz '):
        conn.sendall(b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 15\r\n'
                     b'Connection: close\r\n\r\n{"status":"ok"}')
        return
    key = re.search(rb'(?i)\r\nsec-websocket-key:\s*(\S+)', head).group(1)
    accept = base64.b64encode(hashlib.sha1(key + b'258EAFA5-E914-47DA-95CA-C5AB0DC11B65').digest())
    proto = re.search(rb'(?i)\r\nsec-websocket-protocol:\s*([^,\r]+)', head)
    conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                 b'Sec-WebSocket-Accept: ' + accept + b'\r\n' +
                 (b'Sec-WebSocket-Protocol: ' + proto.group(1).strip() + b'\r\n' if proto else b'') +
                 b'\r\n')
    if not fragments:
        conn.sendall(b'\x81\x7f' + struct.pack('!Q', 1 << 40))
        endless(conn, stop)
        return
    frame = b'\x7e' + struct.pack('!H', 65535) + b'x' * 65535
    opcode = b'\x01'  # text, not the last frame; then continuations
    for _ in range(1 << 15):  # 2 GiB at most
        if stop.is_set():
            return
        try:
            conn.sendall(opcode + frame)
        except socket.timeout:
            continue
        opcode = b'\x00'


@test
def endless_websocket_message():
    """a WebSocket text message with no end fails the run with a clear error, in bounded memory"""
    for fragments in (False, True):
        srv = FakeServer(lambda conn, stop: websocket_endless(conn, stop, fragments))
        rc, out, err, took = srv.run_gwbench(['-c', '3', '-d', '2', '--timeout', '5'],
                                             limit_mb=768, style='ws', front='--http')
        what = 'in frames' if fragments else 'in one frame'
        eq(rc, 1, 'exit status, %s (stderr %r)' % (what, err))
        check(re.search(r'ws failed: .*a WebSocket message of more than \d+ bytes', err),
              'the reason on stderr, %s: %r' % (what, err))


@test
def reply_line_never_completed():
    """a server that drips a reply and never ends it: the run ends by its deadline, with an error"""
    def drip(conn, stop):
        while not stop.wait(0.2):
            conn.sendall(b' ')
    srv = FakeServer(greet_then(drip))
    rc, out, err, took = srv.run_gwbench(['-c', '2', '-d', '1', '--timeout', '2'], timeout=30)
    eq(rc, 1, 'exit status (stderr %r)' % err)
    check('tcp-ping failed: ' in err, 'the failure on stderr: %r' % err)
    # The run's second, then --timeout for the replies owed, and some slack.
    check(took < 10, 'gwbench took %.1f s' % took)


@test
def server_text_escaped():
    """the server's first line, error text and bye reason reach stderr escaped, never as raw controls"""
    def greeting(conn, stop):
        conn.sendall(b'\x1b]0;pwned\x07\x1b[2J\xc2\x9b31mnot a hello\x85\n')
        first_line(conn, stop)
    cases = [
        (greeting, 3, 'not a visavis hello'),
        (greet_then(lambda conn, stop: conn.sendall(
            b'{"type":"error","op":"ping","code":"x\\u001b[31m","message":"m\\u009bq\\u0007"}\n')),
         1, 'the gateway answered error'),
        (greet_then(lambda conn, stop: conn.sendall(b'{"type":"bye","reason":"\\u001b]0;t\\u0007"}\n')),
         1, 'the gateway ended the session'),
    ]
    for handler, want_rc, what in cases:
        srv = FakeServer(handler)
        rc, out, err, took = srv.run_gwbench(['-c', '1', '-n', '10', '--timeout', '5'])
        eq(rc, want_rc, 'exit status (stderr %r)' % err)
        check(what in err, '%r on stderr: %r' % (what, err))
        check(not CONTROLS.search(err), 'a control character on stderr: %r' % err)


@test
def usage_errors():
    """bad command lines exit 2 with a message; --help exits 0"""
    for args in (['--styles', 'bogus'], ['--messages', '0'], ['--duration', '1', '--messages', '5'],
                 ['--runs', '0'], ['--runs', '101'], ['--runs', 'x'],
                 ['--json', '--csv'], ['--size', '10'], ['--http', 'nocolon'], ['--tcp', 'x:0'],
                 ['--udp', 'x:0'], ['--spawn', 'x', '--udp', '127.0.0.1:1'],
                 ['--bogus'], ['extra'], ['--spawn', 'x', '--http', '127.0.0.1:1']):
        rc, out, err = run_gwbench(args)
        eq(rc, 2, 'exit status of gwbench %r (stderr %r)' % (args, err))
        check(err.startswith('gwbench: '), 'a message on stderr for %r: %r' % (args, err))
    rc, out, err = run_gwbench(['--help'])
    eq(rc, 0, '--help exit status')
    for word in STYLES + ['--rate', '--svg', '--runs', '--udp', 'Exit status']:
        check(word in out, '--help mentions %s' % word)


@test
def big_window_and_connections_never_abort():
    """--window and --connections at the top of their ranges: bounded memory or exit 2 naming the limit, never a signal"""
    gw = shared.get()
    # 10 sessions x 100,000 PUBs of 1,000 bytes: a gigabyte if each window were queued at once.
    t0 = time.monotonic()
    rc, out, err = run_gwbench(fronts(gw) + ['--styles', 'tcp-pipelined', '--window', '100000',
                                             '--connections', '10', '--size', '1000',
                                             '--duration', '0.5', '--timeout', '5', '--json'],
                               pre=harness.address_limit(1000))
    check(rc >= 0, 'gwbench died of signal %d (stderr %r)' % (-rc, err[-2000:]))
    eq(rc, 0, 'exit status (stderr %r)' % err[-2000:])
    s = by_name(json.loads(out))['tcp-pipelined']
    check(s['messages'] > 0 and s['error'] is None, 'it ran: %r' % s)
    check(time.monotonic() - t0 < 20, 'it took %.1f s' % (time.monotonic() - t0))
    # More connections than the open-file limit allows: refused at once, with the numbers.
    if shutil.which('prlimit'):
        rc, out, err = run_gwbench(fronts(gw) + ['--styles', 'tcp', '--connections', '1000',
                                                 '--messages', '100', '--timeout', '5'],
                                   pre=['prlimit', '--nofile=256:256', '--'])
        eq(rc, 2, 'exit status with 1000 connections and 256 open files (stderr %r)' % err)
        check(re.search(r'--connections 1000: .*need up to 1064 open files.* may open 256', err),
              'the limit and the need are said: %r' % err)
        eq(out, '', 'stdout')


def kill_left_from(tmp):
    """SIGKILL every process still running from tmp."""
    for pid in processes_mentioning(tmp):
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass


def processes_mentioning(text):
    """The pids of the processes whose command line holds text."""
    found = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def run_to_files(args, env, interrupt=None):
    """gwbench with its output in files, not pipes: a process it leaves behind
    cannot hold the test up. interrupt(): called while it runs, then SIGINT.
    (rc, stderr)."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        p = subprocess.Popen([gwbench_bin()] + args, stdin=subprocess.DEVNULL, stdout=out,
                             stderr=err, env=harness.clean_env(env), start_new_session=True)
        try:
            if interrupt:
                interrupt()
                p.send_signal(signal.SIGINT)
            p.wait(timeout=20)
        finally:
            if p.poll() is None:
                p.kill()
                p.wait()
        err.seek(0)
        return p.returncode, err.read().decode('utf-8', 'replace')


@test
def spawn_wrapper_script_stopped():
    """--spawn a wrapper script that runs the gateway without exec: nothing is left running, at the end or after a ^C"""
    tmp = tempfile.mkdtemp(prefix='gwbench-wrap-')
    wrapper = os.path.join(tmp, 'gateway.sh')
    with open(wrapper, 'w') as f:
        f.write('#!/bin/sh\n"%s" "$@"\n' % os.path.abspath(harness.gateway_bin()))
    os.chmod(wrapper, 0o755)
    # The spawned database goes under TMPDIR: the gateway's command line names tmp.
    env = {'TMPDIR': tmp}

    def running():
        # The wrapper and the gateway up, the run under way.
        deadline = time.monotonic() + 10
        while len(processes_mentioning(tmp)) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)

    try:
        rc, err = run_to_files(['--spawn', wrapper, '--styles', 'tcp', '--messages', '50',
                                '--connections', '1', '--timeout', '5'], env)
        eq(rc, 0, 'exit status (stderr:\n%s)' % err)
        time.sleep(0.2)
        eq(processes_mentioning(tmp), [], 'processes still running from %s after gwbench' % tmp)
        eq(sorted(os.listdir(tmp)), ['gateway.sh'], 'what is left in %s' % tmp)
        # A ^C at the terminal reaches gwbench alone (the gateway has a group of its own).
        rc, err = run_to_files(['--spawn', wrapper, '--styles', 'tcp', '--duration', '30',
                                '--connections', '1'], env, interrupt=running)
        eq(rc, 1, 'exit status after SIGINT (stderr %r)' % err)
        check('interrupted' in err, 'the run says it was interrupted: %r' % err)
        time.sleep(0.2)
        eq(processes_mentioning(tmp), [], 'processes still running from %s after a ^C' % tmp)
    finally:
        # What this test started and left running (the gateway of an unfixed gwbench).
        kill_left_from(tmp)
        shutil.rmtree(tmp, ignore_errors=True)


@test
def spawn_cleans_up_after_hangup_and_quit():
    """--spawn ended by SIGHUP (its terminal closed) or SIGQUIT: the run is interrupted, the gateway stopped and its database removed"""
    for sig in (signal.SIGHUP, signal.SIGQUIT):
        tmp = tempfile.mkdtemp(prefix='gwbench-hup-')
        # stderr on a terminal, for the progress line that says the run is under way.
        master, slave = os.openpty()
        p = None
        try:
            # No core file from a SIGQUIT that is not handled (prlimit execs: the pid is gwbench's).
            p = subprocess.Popen(['prlimit', '--core=0', '--', gwbench_bin(), '--spawn',
                                  harness.gateway_bin(), '--styles', 'tcp', '--duration', '30',
                                  '--connections', '1'],
                                 stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=slave,
                                 env=harness.clean_env({'TMPDIR': tmp}), cwd=tmp,
                                 start_new_session=True)
            os.close(slave)
            slave = None
            seen = b''
            deadline = time.monotonic() + 20
            while b'[1/1] tcp' not in seen:
                check(time.monotonic() < deadline and p.poll() is None,
                      'no progress line within 20 s (rc %s): %r' % (p.poll(), seen))
                if select.select([master], [], [], 0.1)[0]:
                    seen += os.read(master, 4096)
            p.send_signal(sig)
            deadline = time.monotonic() + 20
            while p.poll() is None and time.monotonic() < deadline:
                if select.select([master], [], [], 0.1)[0]:
                    try:
                        seen += os.read(master, 4096)
                    except OSError:
                        break
            rc = p.wait(timeout=max(0.1, deadline - time.monotonic()))
            # What it wrote last, up to the terminal's end (EIO once no process holds it).
            while select.select([master], [], [], 0.5)[0]:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
            text = seen.decode('utf-8', 'replace')
            check(not harness.SANITIZER_RE.search(text), 'sanitizer report from gwbench:\n' + text[-3000:])
            eq(rc, 1, 'exit status after %s (stderr %r)' % (sig.name, text[-2000:]))
            check('interrupted' in text, 'the run says it was interrupted: %r' % text[-2000:])
            eq(processes_mentioning(tmp), [], 'processes still running from %s after %s' % (tmp, sig.name))
            eq(os.listdir(tmp), [], 'what is left in TMPDIR after %s' % sig.name)
        finally:
            if slave is not None:
                os.close(slave)
            os.close(master)
            if p is not None and p.poll() is None:
                p.kill()
                p.wait()
            kill_left_from(tmp)
            shutil.rmtree(tmp, ignore_errors=True)


@test
def svg_unwritable_refused_at_once():
    """--svg in a folder that does not exist: exit 2 at once, before any style runs"""
    gw = shared.get()
    tmp = tempfile.mkdtemp(prefix='gwbench-svg-')
    try:
        for path, what in ((os.path.join(tmp, 'missing', 'chart.svg'), 'No such file or directory'),
                           (tmp, 'is a directory')):
            t0 = time.monotonic()
            rc, out, err = run_gwbench(fronts(gw) + TINY + ['--svg', path])
            took = time.monotonic() - t0
            eq(rc, 2, 'exit status with --svg %s (stderr %r)' % (path, err))
            check(err.startswith('gwbench: --svg %s: ' % path) and what in err,
                  'the path and why are said: %r' % err)
            eq(out, '', 'stdout: no table')
            check(took < 2, 'refused at once, not after the run: %.1f s' % took)
        eq(os.listdir(tmp), [], 'nothing made in %s' % tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@test
def spawn_own_gateway():
    """--spawn GATEWAY (a path, or a name on PATH): a gateway of gwbench's own, run, stopped"""
    gwdir, gwname = os.path.split(os.path.abspath(harness.gateway_bin()))
    for spawn, env in ((harness.gateway_bin(), None),
                       (gwname, {'PATH': gwdir + os.pathsep + os.environ.get('PATH', '')})):
        rc, out, err = run_gwbench(['--spawn', spawn, '--messages', '50', '--connections', '2',
                                    '--styles', 'tcp,udp,rest-poll', '--poll-interval', '50',
                                    '--json'], env=env)
        eq(rc, 0, 'exit status with --spawn %s (stderr:\n%s)' % (spawn, err))
        doc = json.loads(out)
        eq([s['name'] for s in doc['styles']], ['tcp', 'udp', 'rest-poll'], 'styles')
        check(doc['config']['http'].startswith('127.0.0.1:') and
              doc['config']['udp'].startswith('127.0.0.1:'),
              'the spawned addresses: %r' % doc['config'])
        eq(doc['config']['channels_kept'], False, 'a spawned gateway takes its channels along')
        check('this run\'s channels' not in err, 'no channels to speak of: %r' % err)


# --------------------------------------------------------------------------
# --runs

def median(v):
    v = sorted(v)
    return v[len(v) // 2] if len(v) % 2 else (v[len(v) // 2 - 1] + v[len(v) // 2]) / 2


@test
def runs_json_median_and_spread():
    """--runs 3: each style runs 3 times on channels of their own; medians, min and max of them"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + ['--runs', '3', '--messages', '100',
                                             '--connections', '2', '--styles', 'tcp,tcp-push',
                                             '--json'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    doc = json.loads(out)
    eq(doc['config']['runs'], 3, 'config runs')
    prefix = doc['config']['channel_prefix']
    for s in doc['styles']:
        eq(s['runs'], 3, '%s runs' % s['name'])
        eq([r['run'] for r in s['per_run']], [1, 2, 3], '%s per_run' % s['name'])
        eq([r['channel'] for r in s['per_run']],
           ['%sr%d-%s' % (prefix, k, s['name']) for k in (1, 2, 3)], '%s channels' % s['name'])
        for col in ('msgs_per_s', 'p50_us', 'p99_us', 'bytes_per_msg'):
            vals = [r[col] for r in s['per_run']]
            check(abs(s[col] - median(vals)) <= 0.11, '%s %s is the median of %r: %r'
                  % (s['name'], col, vals, s[col]))
            eq((s['spread'][col]['min'], s['spread'][col]['max']), (min(vals), max(vals)),
               '%s %s spread' % (s['name'], col))
        expect = 200 if s['name'] == 'tcp-push' else 100
        eq([r['messages'] for r in s['per_run']], [expect] * 3, '%s messages per run' % s['name'])
    # Each run published on its own channel: the gateway holds 100 messages in each.
    chans = {c['name']: c['messages'] for c in gw.channels() if c['name'].startswith(prefix)}
    eq(len(chans), 6, 'six channels with the run\'s prefix: %r' % chans)
    check(all(v == 100 for v in chans.values()), '100 messages each: %r' % chans)


@test
def runs_table_and_csv():
    """--runs 2: the table says median of 2 runs and gives a spread row; the CSV has each run"""
    gw = shared.get()
    args = fronts(gw) + ['--runs', '2', '--messages', '60', '--connections', '2',
                         '--styles', 'tcp,rest-poll', '--poll-interval', '50']
    rc, out, err = run_gwbench(args)
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    lines = out.splitlines()
    check('the median of 2 runs' in lines[0], 'the head says so: %r' % lines[0])
    for name in ('tcp', 'rest-poll'):
        i = [k for k, l in enumerate(lines) if l.split()[:1] == [name]]
        eq(len(i), 1, 'one row for %s:\n%s' % (name, out))
        check(lines[i[0] + 1].startswith('  spread ') and re.search(r'\d%', lines[i[0] + 1]),
              'a spread row under %s: %r' % (name, lines[i[0] + 1]))
    rc, out, err = run_gwbench(args + ['--csv'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    rows = list(csv.reader(io.StringIO(out)))
    eq([(r[0], r[2]) for r in rows[1:]],
       [('tcp', '1'), ('tcp', '2'), ('tcp', 'median'), ('rest-poll', '1'), ('rest-poll', '2'),
        ('rest-poll', 'median')], 'a row per style and run, then the median')


harness.main()
