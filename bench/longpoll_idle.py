#!/usr/bin/env python3
"""CPU cost of idle long-poll waiters.

usage: python3 bench/longpoll_idle.py [GATEWAY_BINARY] [WAITERS] [SECONDS]

Starts the gateway (default build-release/gateway/visavis-gateway) on port 0 with a
temporary database, measures its CPU time for SECONDS with no client, then
opens WAITERS long-polls (GET ...?since=0&wait=60 on an empty channel), waits
until its open{longpoll} gauge shows them all held, and measures its CPU time
for SECONDS again. Prints both as a share of one core, and the difference
(target: < 5 % for 5,000 waiters). Loopback only; bounded in time.
"""
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as f:
        fields = f.read().rsplit(')', 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf('SC_CLK_TCK')


def stats(port):
    with urllib.request.urlopen('http://127.0.0.1:%d/v1/stats' % port, timeout=10) as r:
        return json.load(r)


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else 'build-release/gateway/visavis-gateway'
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 5000
    secs = float(sys.argv[3]) if len(sys.argv) > 3 else 10
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n + 1024
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(want, hard), hard))
    tmp = tempfile.mkdtemp(prefix='visavis-lpidle-', dir='/var/tmp')
    gw = subprocess.Popen([binary, '--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                           '--db', os.path.join(tmp, 'lp.db'), '--log-level', 'warn',
                           '--max-connections', str(n + 100)],
                          stdout=subprocess.PIPE, text=True)
    socks = []
    try:
        line = gw.stdout.readline()
        port = int(line.split('http=')[1].split()[0])
        time.sleep(0.5)  # let start-up work finish before the idle baseline
        c0 = cpu_seconds(gw.pid)
        time.sleep(secs)
        idle = (cpu_seconds(gw.pid) - c0) / secs
        req = b'GET /v1/channels/idle/messages?since=0&wait=60 HTTP/1.1\r\nHost: x\r\n\r\n'
        for _ in range(n):
            s = socket.create_connection(('127.0.0.1', port))
            s.sendall(req)
            socks.append(s)
        deadline = time.monotonic() + 30
        while stats(port)['open']['longpoll'] < n:
            if time.monotonic() > deadline:
                sys.exit('only %d of %d long-polls held' % (stats(port)['open']['longpoll'], n))
            time.sleep(0.1)
        c0 = cpu_seconds(gw.pid)
        time.sleep(secs)
        waiting = (cpu_seconds(gw.pid) - c0) / secs
        held = stats(port)['open']['longpoll']
        print('gateway CPU, no client:            %5.2f %% of a core' % (idle * 100))
        print('gateway CPU, %5d long-polls held: %5.2f %% of a core (still held: %d)'
              % (n, waiting * 100, held))
        print('added by the waiters:              %5.2f %%   target < 5 %%   %s'
              % ((waiting - idle) * 100, 'PASS' if waiting - idle < 0.05 else 'MISS'))
    finally:
        for s in socks:
            s.close()
        gw.terminate()
        gw.wait(timeout=10)
        subprocess.run(['rm', '-rf', tmp])


if __name__ == '__main__':
    main()
