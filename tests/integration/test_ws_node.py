#!/usr/bin/env python3
"""The WebSocket front against another implementation: the npm `ws` client
(tests/node/ws, installed by `make test`) runs the kinds of case the
Autobahn|Testsuite fuzzingclient runs (framing at the length boundaries,
fragmentation with pings in between, UTF-8, ping/pong, the close handshake
and its codes); the Autobahn suite itself cannot be had here. Each of its
TAP lines is checked."""

import sys
sys.dont_write_bytecode = True

import subprocess

import harness
from harness import test


@test
def npm_ws_client_cases():
    """the npm ws client: 30 protocol cases, every one passes"""
    node, cases = harness.node_cases('ws', 'ws')
    gw = harness.Gateway()
    p = subprocess.run([node, cases, str(gw.http_port)], capture_output=True, text=True,
                       timeout=180)
    harness.check_node_tap('the npm ws client', p.returncode, p.stdout, p.stderr, 30)


harness.main()
