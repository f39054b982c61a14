#!/usr/bin/env python3
"""Socket.IO against another implementation: the npm socket.io-client
(tests/node/socketio, pinned by its package-lock.json, installed by `make
test`) connects over polling and upgrades, subscribes with since, receives
what REST posts, publishes with an ack after commit, sends bad packets,
connects over WebSocket alone, is refused another namespace, stops
answering pings, and reconnects across a restart of the gateway (on the same
port and store), resuming with nothing lost or repeated. Each of its TAP
lines is checked."""

import sys
sys.dont_write_bytecode = True

import subprocess
import threading

import harness
from harness import test


@test
def npm_socketio_client_cases():
    """the npm socket.io-client: every case passes, the restart included"""
    node, cases = harness.node_cases('socketio', 'socket.io-client')
    # A ping every second, a second to answer it: the silent client is dropped in about 2 s.
    gw = harness.Gateway(args=['--heartbeat', '1', '--sio-ping-timeout', '1'])
    p = subprocess.Popen([node, cases, str(gw.http_port)], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    err = []
    threading.Thread(target=lambda: err.append(p.stderr.read()), daemon=True).start()
    timer = threading.Timer(240, p.kill)
    timer.start()
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if line.strip() == 'RESTART':
                # Stopped cleanly, started again on the same port and database.
                port = gw.http_port
                gw.stop()
                gw.args += ['--http-addr', '127.0.0.1:%d' % port]
                gw.start()
                p.stdin.write('RESTARTED\n')
                p.stdin.flush()
        p.wait()
    finally:
        timer.cancel()
    text = ''.join(out)
    harness.check_node_tap('the npm socket.io-client', p.returncode, text, ''.join(err), 25)


harness.main()
