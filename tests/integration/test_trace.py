#!/usr/bin/env python3
"""--trace: one log line per socket step (bind, listen, accept, recv, send,
close), per connection and per front; none without it."""

import sys
sys.dont_write_bytecode = True

import re

import harness
from harness import test, check, eq


def trace_lines(gw):
    return [l for l in gw.stderr_text().splitlines() if re.search(r'\btrace\b', l)]


@test
def a_request_per_connection_against_one_session():
    """three REST posts on new connections show three accepts and closes; a session one"""
    gw = harness.Gateway(args=['--trace', '--log-level', 'warn'])
    for i in range(3):
        gw.publish('tr', 'rest %d' % i)  # each on a fresh connection
    s = harness.Session(gw)
    for i in range(3):
        s.request('PUB tr tcp %d' % i)
    s.request('QUIT')
    s.until_eof()
    gw.wait_stderr(r'trace tcp conn \S+ close')
    lines = trace_lines(gw)
    check(any(re.search(r'trace http bind 127\.0\.0\.1:0 \(port %d\), listen' % gw.http_port, l)
              for l in lines), 'http bind and listen traced')
    check(any('trace tcp bind' in l for l in lines), 'tcp bind and listen traced')
    http_accepts = [l for l in lines if re.search(r'trace http conn \d+ accept$', l)]
    eq(len(http_accepts), 3, 'one HTTP accept per REST post')
    harness.wait_for(lambda: len([l for l in trace_lines(gw)
                                  if re.search(r'trace http conn \d+ close$', l)]) == 3,
                     'three HTTP closes')
    eq(len([l for l in lines if re.search(r'trace http conn \d+ recv request POST ', l)]), 3,
       'three requests received')
    eq(len([l for l in lines if re.search(r'trace http conn \d+ send response 201', l)]), 3,
       'three responses sent')
    tcp_accepts = [l for l in lines if re.search(r'trace tcp conn \S+ accept fd \d+ from ', l)]
    eq(len(tcp_accepts), 1, 'one TCP accept for the whole session')
    sid = re.search(r'tcp conn (\S+) accept', tcp_accepts[0]).group(1)
    check(len([l for l in lines if 'tcp conn %s recv' % sid in l]) >= 1, 'session recv traced')
    check(len([l for l in lines if 'tcp conn %s send' % sid in l]) >= 4,
          'hello and three acks sent (at least four sends)')
    gw.stop()


@test
def silent_without_trace():
    """without --trace nothing is traced, even at debug level"""
    gw = harness.Gateway(args=['--log-level', 'debug'])
    gw.publish('tr', 'x')
    s = harness.Session(gw)
    s.request('PING')
    s.close()
    gw.stop()
    eq(trace_lines(gw), [], 'trace lines')


harness.main()
