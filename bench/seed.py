#!/usr/bin/env python3
"""Seeds a gateway channel with N messages through the REST API (stdlib only).

usage: seed.py PORT [--channel bench] [--count 10000] [--body-bytes 100]
               [--workers 16] [--deadline 60]

Each worker keeps one keep-alive connection and publishes its share in order;
every answer must be 201. Exits non-zero (and says why) on any other answer,
on a connection error, or when the deadline passes.
"""
import argparse
import http.client
import json
import sys
import threading
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--channel", default="bench")
    ap.add_argument("--count", type=int, default=10000)
    ap.add_argument("--body-bytes", type=int, default=100)
    ap.add_argument("--workers", type=int, default=16)
    ap.add_argument("--deadline", type=float, default=60.0)
    a = ap.parse_args()

    text = ("0123456789" * (a.body_bytes // 10 + 1))[: a.body_bytes]
    payload = json.dumps({"sender": "seed", "body": text}).encode()
    path = "/v1/channels/%s/messages" % a.channel
    headers = {"Content-Type": "application/json"}
    stop_at = time.monotonic() + a.deadline
    lock = threading.Lock()
    state = {"next": 0, "ok": 0, "error": None}

    def take():
        with lock:
            if state["error"] or state["next"] >= a.count:
                return False
            state["next"] += 1
            return True

    def fail(msg):
        with lock:
            if not state["error"]:
                state["error"] = msg

    def worker():
        conn = http.client.HTTPConnection(a.host, a.port, timeout=10)
        try:
            while take():
                if time.monotonic() > stop_at:
                    fail("deadline of %.0f s passed" % a.deadline)
                    return
                conn.request("POST", path, body=payload, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                if resp.status != 201:
                    fail("POST %s answered %d: %r" % (path, resp.status, data[:200]))
                    return
                with lock:
                    state["ok"] += 1
        except Exception as e:  # connection refused, reset, timeout
            fail("POST %s failed: %s" % (path, e))
        finally:
            conn.close()

    t0 = time.monotonic()
    threads = [threading.Thread(target=worker, daemon=True) for _ in range(a.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(max(0.0, stop_at - time.monotonic()) + 5)
    took = time.monotonic() - t0
    if state["error"]:
        print("seed: " + state["error"], file=sys.stderr)
        return 1
    if state["ok"] != a.count:
        print("seed: only %d of %d published in %.1f s" % (state["ok"], a.count, took), file=sys.stderr)
        return 1
    print("seeded %d messages of %d-byte bodies into '%s' in %.1f s (%.0f/s)"
          % (a.count, a.body_bytes, a.channel, took, a.count / took))
    return 0


if __name__ == "__main__":
    sys.exit(main())
