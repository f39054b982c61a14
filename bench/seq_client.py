#!/usr/bin/env python3
"""One connection, one request at a time, for bench/instructions.sh.

    seq_client.py post|get|pub PORT COUNT

post: POST /v1/channels/seq/messages with a 100-byte body (as gw_post.lua);
get:  GET /v1/channels/seq/messages?since=S&limit=10, S cycling over the
      first 190 messages (seed them with post first);
pub:  PUB seq <100 bytes> on a TCP session (PORT is the TCP port).
Every answer is read whole and checked; any other answer ends the run with
status 1.
"""
import socket
import sys

BODY = b'{"body":"' + b"x" * 88 + b'"}'


def http(sock, state, request, want):
    sock.sendall(request)
    while b"\r\n\r\n" not in state[0]:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        state[0] += chunk
    head, _, rest = state[0].partition(b"\r\n\r\n")
    if not head.startswith(want):
        sys.exit("unexpected answer: %r" % head[:200])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            sys.exit("connection closed")
        rest += chunk
    state[0] = rest[length:]


def main():
    mode, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    sock = socket.create_connection(("127.0.0.1", port))
    if mode == "pub":
        lines = sock.makefile("rb")
        lines.readline()  # hello
        for _ in range(count):
            sock.sendall(b"PUB seq " + b"x" * 100 + b"\n")
            if b'"ok"' not in lines.readline():
                sys.exit("PUB not acknowledged")
        return
    state = [b""]
    for i in range(count):
        if mode == "post":
            http(sock, state,
                 b"POST /v1/channels/seq/messages HTTP/1.1\r\nHost: b\r\n"
                 b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                 % (len(BODY), BODY), b"HTTP/1.1 201")
        else:
            http(sock, state,
                 b"GET /v1/channels/seq/messages?since=%d&limit=10 HTTP/1.1\r\nHost: b\r\n\r\n"
                 % (i % 190), b"HTTP/1.1 200")


if __name__ == "__main__":
    main()
