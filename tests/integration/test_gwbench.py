#!/usr/bin/env python3
"""gwbench, the comparison client (docs/comparison.md), against the real
gateway with a tiny workload: every style and column is in its --json
output and the numbers relate as they must (pipelined TCP outruns a new
connection per POST, push delivers well inside a poll interval, rest-close
opens a connection per message and the others almost none, REST costs more
bytes than the session protocol); --csv and --svg are well-formed; an
unreachable gateway, a gateway lost mid-run and a bad command line give
clear errors and non-zero exits.

Run as `python3 test_gwbench.py build/gateway/gateway`: gwbench is found
next to the gateway, at ../clients/gwbench from the gateway's directory (or
set VISAVIS_GWBENCH)."""

import sys
sys.dont_write_bytecode = True

import csv
import io
import json
import os
import socket
import subprocess
import tempfile
import time
import xml.etree.ElementTree as ET

import harness
from harness import test, check, eq, Failure

shared = harness.Shared()
TIMEOUT = 60

STYLES = ['rest-close', 'rest-keepalive', 'tcp', 'tcp-pipelined', 'tcp-push', 'rest-longpoll',
          'rest-poll']
DELIVERY = {'tcp-push', 'rest-longpoll', 'rest-poll'}
POLLING = {'rest-longpoll', 'rest-poll'}
COLUMNS = ['msgs_per_s', 'p50_us', 'p90_us', 'p99_us', 'max_us', 'bytes_per_msg',
           'connections_per_1k', 'empty_poll_share']
POLL_MS = 250
TINY = ['--messages', '200', '--connections', '4']


def gwbench_bin():
    path = os.environ.get('VISAVIS_GWBENCH') or os.path.normpath(
        os.path.join(os.path.dirname(harness.gateway_bin()), '..', 'clients', 'gwbench'))
    if not os.access(path, os.X_OK):
        print('Bail out! gwbench binary %s is missing or not executable' % path)
        sys.exit(1)
    return path


def fronts(gw):
    return ['--http', '127.0.0.1:%d' % gw.http_port, '--tcp', '127.0.0.1:%d' % gw.tcp_port]


def run_gwbench(args, timeout=TIMEOUT):
    """Run gwbench to completion; returns (rc, stdout, stderr) as text."""
    p = subprocess.Popen([gwbench_bin()] + list(args), stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         env=harness.clean_env(), start_new_session=True)
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


def free_port():
    """A port nothing listens on (bound, then released)."""
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    return port


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
        for col in COLUMNS:
            check(col in s, '%s has no %s: %r' % (s['name'], col, s))
            if col == 'empty_poll_share' and s['name'] not in POLLING:
                eq(s[col], None, '%s %s (not a polling style)' % (s['name'], col))
                continue
            check(isinstance(s[col], (int, float)) and s[col] >= 0,
                  '%s %s is a non-negative number: %r' % (s['name'], col, s[col]))
        check(s['p50_us'] > 0 and s['p50_us'] <= s['p90_us'] <= s['p99_us'] <= s['max_us'],
              '%s: 0 < p50 <= p90 <= p99 <= max: %r' % (s['name'], s))
        check(s['msgs_per_s'] > 0, '%s msgs_per_s > 0' % s['name'])
        if s['name'] in DELIVERY:
            eq(s['published'], 200, '%s messages published' % s['name'])
            eq(s['messages'], 800, '%s deliveries (200 messages x 4 receivers)' % s['name'])
        else:
            eq(s['messages'], 200, '%s messages acknowledged' % s['name'])
    cfg = doc['config']
    eq((cfg['connections'], cfg['messages'], cfg['duration_s'], cfg['poll_interval_ms']),
       (4, 200, None, POLL_MS), 'config')
    eq(cfg['styles'], STYLES, 'config styles')
    eq(sorted(doc['winners'].keys()), sorted(COLUMNS), 'winners columns')
    for col, name in doc['winners'].items():
        check(name in STYLES, 'winner of %s is a style: %r' % (col, name))
    eq(doc['winners']['empty_poll_share'] in POLLING, True, 'empty_poll_share winner polls')


@test
def json_relations():
    """--json: the numbers relate as the styles promise"""
    s = by_name(report())
    check(s['tcp-pipelined']['msgs_per_s'] > s['rest-close']['msgs_per_s'],
          'pipelined TCP moves more messages/s than rest-close: %s vs %s'
          % (s['tcp-pipelined']['msgs_per_s'], s['rest-close']['msgs_per_s']))
    check(s['tcp-push']['p50_us'] < POLL_MS * 1000,
          'tcp-push p50 %s us is below the poll interval' % s['tcp-push']['p50_us'])
    check(900 <= s['rest-close']['connections_per_1k'] <= 1100,
          'rest-close opens a connection per message: %s per 1k'
          % s['rest-close']['connections_per_1k'])
    for name in STYLES:
        if name == 'rest-close':
            continue
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
        check(0 <= share <= 1, '%s empty poll share in [0, 1]: %r' % (name, share))
        check(s[name]['polls'] >= 1 and s[name]['empty_polls'] <= s[name]['polls'],
              '%s polls %s, empty %s' % (name, s[name]['polls'], s[name]['empty_polls']))
    # A poller wakes every 250 ms: its median delivery waits a good part of that.
    check(s['rest-poll']['p50_us'] > s['tcp-push']['p50_us'],
          'rest-poll p50 %s us above tcp-push p50 %s us'
          % (s['rest-poll']['p50_us'], s['tcp-push']['p50_us']))
    check(s['rest-poll']['max_us'] < (POLL_MS + 2000) * 1000,
          'rest-poll max %s us within a poll interval (and slack)' % s['rest-poll']['max_us'])


# --------------------------------------------------------------------------
# table, --csv, --svg

@test
def table_and_winners_line():
    """the default table: a row per style, aligned, and a line naming the winners"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + ['--messages', '60', '--connections', '2',
                                             '--styles', 'tcp,rest-keepalive,tcp-push'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    lines = out.splitlines()
    header = [i for i, l in enumerate(lines) if l.startswith('style ')]
    eq(len(header), 1, 'one header line in:\n%s' % out)
    h = header[0]
    check('msgs/s' in lines[h] and 'p99' in lines[h] and 'bytes/msg' in lines[h]
          and 'conns/1k' in lines[h], 'header columns: %r' % lines[h])
    rows = lines[h + 1:h + 4]
    eq([r.split()[0] for r in rows], ['rest-keepalive', 'tcp', 'tcp-push'],
       'rows in the order the styles run:\n%s' % out)
    eq(len(set(len(r) for r in rows + [lines[h]])), 1, 'aligned rows:\n%s' % out)
    check(any(l.startswith('best: msgs/s ') for l in lines), 'a winners line in:\n%s' % out)


@test
def csv_header_and_rows():
    """--csv: a header and one row per style, the same columns as --json"""
    gw = shared.get()
    rc, out, err = run_gwbench(fronts(gw) + TINY + ['--csv'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    rows = list(csv.reader(io.StringIO(out)))
    eq(rows[0], ['style'] + COLUMNS + ['messages', 'error'], 'CSV header')
    eq([r[0] for r in rows[1:]], STYLES, 'one row per style, in order')
    for r in rows[1:]:
        eq(len(r), len(rows[0]), 'fields in the row of %s' % r[0])
        for col, v in zip(COLUMNS, r[1:]):
            if col == 'empty_poll_share' and r[0] not in POLLING:
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
        check(len(list(root.iter(ns + 'rect'))) >= 3 * len(STYLES), 'bars drawn')
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
        time.sleep(1.0)  # no readiness signal to wait for: gwbench is publishing by now
        gw.kill9()
        out, err = p.communicate(timeout=TIMEOUT)
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


@test
def usage_errors():
    """bad command lines exit 2 with a message; --help exits 0"""
    for args in (['--styles', 'bogus'], ['--messages', '0'], ['--duration', '1', '--messages', '5'],
                 ['--json', '--csv'], ['--size', '10'], ['--http', 'nocolon'], ['--tcp', 'x:0'],
                 ['--bogus'], ['extra'], ['--spawn', 'x', '--http', '127.0.0.1:1']):
        rc, out, err = run_gwbench(args)
        eq(rc, 2, 'exit status of gwbench %r (stderr %r)' % (args, err))
        check(err.startswith('gwbench: '), 'a message on stderr for %r: %r' % (args, err))
    rc, out, err = run_gwbench(['--help'])
    eq(rc, 0, '--help exit status')
    for word in STYLES + ['--rate', '--svg', 'Exit status']:
        check(word in out, '--help mentions %s' % word)


@test
def spawn_own_gateway():
    """--spawn GATEWAY: gwbench starts a gateway of its own, runs, stops it"""
    rc, out, err = run_gwbench(['--spawn', harness.gateway_bin(), '--messages', '50',
                                '--connections', '2', '--styles', 'tcp,rest-poll',
                                '--poll-interval', '50', '--json'])
    eq(rc, 0, 'exit status (stderr:\n%s)' % err)
    doc = json.loads(out)
    eq([s['name'] for s in doc['styles']], ['tcp', 'rest-poll'], 'styles')
    check(doc['config']['http'].startswith('127.0.0.1:'), 'the spawned address: %r' % doc['config'])


harness.main()
