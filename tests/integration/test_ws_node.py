#!/usr/bin/env python3
"""The WebSocket front against another implementation: the npm `ws` client
(tests/node/ws, installed by `make test`) runs the kinds of case the
Autobahn|Testsuite fuzzingclient runs (framing at the length boundaries,
fragmentation with pings in between, UTF-8, ping/pong, the close handshake
and its codes); the Autobahn suite itself cannot be had here. Each of its
TAP lines is checked."""

import sys
sys.dont_write_bytecode = True

import os
import re
import shutil
import subprocess

import harness
from harness import test, check

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, '..', 'node', 'ws', 'cases.js')
MODULES = os.path.join(HERE, '..', 'node', 'ws', 'node_modules', 'ws')


@test
def npm_ws_client_cases():
    """the npm ws client: 30 protocol cases, every one passes"""
    node = shutil.which('node')
    if not node:
        harness.skip('node is not installed (Debian nodejs; make test installs it)')
    if not os.path.isdir(MODULES):
        harness.skip('the npm ws client is not installed: npm ci in tests/node/ws (make test does)')
    gw = harness.Gateway()
    p = subprocess.run([node, CASES, str(gw.http_port)], capture_output=True, text=True,
                       timeout=180)
    out = p.stdout
    lines = [l for l in out.splitlines() if re.match(r'(not )?ok \d+ - ', l)]
    bad = [l for l in lines if l.startswith('not ok')]
    print('# %d cases of the npm ws client' % len(lines))
    check(p.returncode == 0 and not bad and len(lines) >= 30,
          'node cases.js exited %d, %d cases, failed: %s\n%s\n%s'
          % (p.returncode, len(lines), bad, out[-3000:], p.stderr[-2000:]))


harness.main()
