#!/usr/bin/env python3
"""WebSocket framing and the close handshake (RFC 6455, docs/websocket.md):
masking required, fragmentation with control frames in between, ping/pong,
heartbeats, and every way a session ends with its close code: 1000 (QUIT,
the client's close), 1002 (frames that break the protocol), 1003 (binary),
1007 (bad UTF-8), 1008 (too many errors, idle, a silent peer), 1009 (a
message over --max-line), each after the replies due and an error message
that says why where one can still be sent."""

import sys
sys.dont_write_bytecode = True

import socket
import struct
import threading
import time

import harness
from harness import test, check, eq, check_session_error
import wsclient
from wsclient import WsSession, frame, OP_TEXT, OP_BINARY, OP_CONT, OP_PING, OP_PONG, OP_CLOSE

shared = harness.Shared()


def closes_with(ws, code, what, reason_has=None):
    got, reason, msgs = ws.expect_close()
    eq(got, code, 'close code: %s (reason %r, messages before it %s)' % (what, reason, msgs))
    if reason_has:
        check(reason_has in reason, '%s: close reason %r lacks %r' % (what, reason, reason_has))
    ws.sock.close()
    return reason, msgs


@test
def unmasked_frame_is_1002():
    """a client frame without a mask: close 1002, nothing run"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send_frame(OP_TEXT, 'PUB ws-unmasked no', mask=False)
    closes_with(ws, 1002, 'an unmasked frame')
    eq(gw.read('ws-unmasked')['messages'], [], 'nothing was published')
    eq(WsSession(gw).request('PING')['type'], 'pong', 'the gateway goes on')


@test
def protocol_errors_are_1002():
    """reserved opcode, RSV bit, a fragmented ping, a continuation with nothing to continue, a new text frame inside a message, a bad close code, a close body of one byte (half a code): each closed with 1002"""
    gw = shared.get()
    cases = [
        ('reserved opcode 3', frame(3, 'x')),
        ('RSV1 set', frame(OP_TEXT, 'PING', rsv=4)),
        ('fragmented ping', frame(OP_PING, 'p', fin=False)),
        ('ping of 126 bytes', frame(OP_PING, 'p' * 126)),
        ('continuation first', frame(OP_CONT, 'PING')),
        ('text inside a message', frame(OP_TEXT, 'PI', fin=False) + frame(OP_TEXT, 'NG')),
        ('close code 999', frame(OP_CLOSE, struct.pack('!H', 999))),
        ('close body of one byte', frame(OP_CLOSE, b'\x03')),
        ('length 5 written long', b'\x81\xfe\x00\x05' + b'\x00' * 4 + b'PING ' ),
    ]
    for what, data in cases:
        ws = WsSession(gw)
        ws.send(data)
        closes_with(ws, 1002, what)


@test
def fragmented_with_interleaved_ping():
    """a command in three frames with a ping between them: the pong comes back at once, then the command's reply, with the whole body"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send_frame(OP_TEXT, 'PUB ws-frag hel', fin=False)
    ws.send_frame(OP_PING, 'in-between')
    ws.send_frame(OP_CONT, 'lo wor', fin=False)
    ws.send_frame(OP_CONT, 'ld')
    r = ws.reply()
    eq(r.get('type'), 'ok', 'reply to the fragmented PUB: %s' % r)
    eq(r['message']['body'], 'hello world', 'body put together')
    eq(r['message']['via'], 'ws', 'via')
    eq(ws.pongs, [b'in-between'], 'the pong, with the ping payload')
    # an empty message is no command; a message with a trailing line end is one
    ws.send_frame(OP_TEXT, '')
    ws.send_text('PING end\r\n')
    eq(ws.reply().get('token'), 'end', 'PING with its line end')
    ws.sock.close()


@test
def ping_pong_and_heartbeat():
    """the client's ping gets its pong; with --heartbeat 1 the gateway pings a quiet session, and one that answers lives on"""
    gw = harness.Gateway(args=['--heartbeat', '1'])
    ws = WsSession(gw)
    ws.ping(b'12345')
    r = ws.request('PING')
    eq(r['type'], 'pong', 'PING reply')
    eq(ws.pongs, [b'12345'], 'pong to the client ping')
    eq(ws.request('SUB ws-hb')['type'], 'ok', 'SUB')
    # heartbeats come as ping frames (no ping line), answered by the client
    harness.wait_for(lambda: (ws.collect(0.5), len(ws.server_pings) >= 4)[1],
                     'four heartbeat pings', timeout=15)
    check(all(p.isdigit() for p in ws.server_pings), 'ping payloads: %s' % ws.server_pings)
    eq(ws.request('PING alive')['token'], 'alive', 'after four heartbeats the session lives')
    ws.sock.close()


@test
def silent_peer_is_closed():
    """--heartbeat 1: a subscribed client that answers no ping and sends nothing is closed after about three heartbeats (1008)"""
    gw = harness.Gateway(args=['--heartbeat', '1'])
    ws = WsSession(gw, auto_pong=False)
    eq(ws.request('SUB ws-silent')['type'], 'ok', 'SUB')
    t0 = time.monotonic()
    reason, msgs = closes_with(ws, 1008, 'a silent peer', reason_has='heartbeat')
    took = time.monotonic() - t0
    check(2.5 <= took <= 8, 'closed after %.1f s, want about 3.5' % took)
    check_session_error(msgs[-1], 'idle_timeout', what='the last message')
    check(len(ws.server_pings) >= 2, 'pinged first: %d pings' % len(ws.server_pings))


@test
def quit_and_client_close_are_1000():
    """QUIT: the bye message, then close 1000; the client's close 1000 is echoed"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send_text('QUIT')
    reason, msgs = closes_with(ws, 1000, 'QUIT')
    eq([m['type'] for m in msgs], ['bye'], 'messages before the close')
    ws = WsSession(gw)
    ws.close(1000, 'done')
    code, reason, msgs = ws.expect_close()
    eq((code, reason), (1000, 'done'), 'the client close, echoed')
    ws.sock.close()


@test
def binary_is_1003():
    """a binary message: an error message that says to send text, then close 1003"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send_frame(OP_BINARY, b'PING')
    reason, msgs = closes_with(ws, 1003, 'a binary message', reason_has='text')
    check_session_error(msgs[-1], 'unsupported_media_type', what='the error before the close')


@test
def bad_utf8_is_1007():
    """a text message that is not UTF-8 (also split across frames): close 1007, nothing published"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send_frame(OP_TEXT, b'PUB ws-utf8 \xc3\x28')
    closes_with(ws, 1007, 'bad UTF-8')
    ws = WsSession(gw)
    ws.send_frame(OP_TEXT, b'PUB ws-utf8 \xe2\x82', fin=False)
    ws.send_frame(OP_CONT, b'')
    closes_with(ws, 1007, 'a message ending inside a character')
    eq(gw.read('ws-utf8')['messages'], [], 'nothing was published')


@test
def oversize_is_1009():
    """--max-line 1024: a message of 2000 bytes, in one frame or many small ones, is refused before its end with line_too_long and close 1009; replies due come first"""
    gw = harness.Gateway(args=['--max-line', '1024'])
    ws = WsSession(gw)
    ws.send_text('PING first')
    ws.send_text('PUB ws-big ' + 'x' * 2000)
    reason, msgs = closes_with(ws, 1009, 'one big frame', reason_has='1024')
    eq(msgs[0].get('token'), 'first', 'the reply due before it')
    check_session_error(msgs[-1], 'line_too_long', what='the error before the close')
    ws = WsSession(gw)
    ws.send_frame(OP_TEXT, 'PUB ws-big ', fin=False)
    for _ in range(10):  # 10 x 200 bytes: over the limit at the 6th, the last never sent
        ws.send_frame(OP_CONT, 'y' * 200, fin=False)
    closes_with(ws, 1009, 'many small frames')
    eq(gw.read('ws-big')['messages'], [], 'nothing was published')
    # exactly at the limit is fine
    ws = WsSession(gw)
    body = 'z' * (1024 - len('PUB ws-big '))
    r = ws.request('PUB ws-big ' + body)
    eq((r['type'], r['message']['body']), ('ok', body), 'a message of exactly --max-line bytes')
    # A line end after the command is not part of it, as on TCP.
    for end in ('\n', '\r\n'):
        r = ws.request('PUB ws-big ' + body + end)
        eq((r['type'], r['message']['body']), ('ok', body), '--max-line bytes and %r' % end)
    ws.sock.close()
    # One byte more, with its line end: still too long.
    ws = WsSession(gw)
    ws.send_text('PUB ws-big ' + body + 'z\n')
    closes_with(ws, 1009, '--max-line + 1 bytes and a LF')
    # A header that announces more than any message (2^62 bytes and up, the top bit clear):
    # refused from the header alone, and told why, as any message too long.
    for n in (1 << 62, (1 << 63) - 1):
        ws = WsSession(gw)
        ws.send(b'\x81\xff' + struct.pack('!Q', n) + b'\x00' * 4 + b'PING')
        closes_with(ws, 1009, 'a frame of %d bytes announced' % n, reason_has='1024')


@test
def too_many_errors_is_1008():
    """ten bad commands in a row: ten error messages, then too_many_errors and close 1008"""
    gw = shared.get()
    ws = WsSession(gw)
    for i in range(10):
        ws.send_text('NOPE %d' % i)
    reason, msgs = closes_with(ws, 1008, 'too many errors')
    eq([m['code'] for m in msgs], ['unknown_command'] * 10 + ['too_many_errors'], 'errors')


@test
def idle_session_is_1008():
    """--idle-timeout 1: a session with no command and no subscription is told idle_timeout and closed with 1008"""
    gw = harness.Gateway(args=['--idle-timeout', '1', '--heartbeat', '5'])
    ws = WsSession(gw)
    reason, msgs = closes_with(ws, 1008, 'idle')
    check_session_error(msgs[-1], 'idle_timeout', what='the error before the close')


@test
def large_lines_go_as_continuations():
    """a reply over 4 KiB is one text message: a text frame and continuation frames"""
    gw = shared.get()
    ws = WsSession(gw)
    body = 'b' * 20000
    r = ws.request('PUB ws-long ' + body)
    eq(r['message']['body'], body, 'the whole body in the reply')
    ops = [(fin, op) for fin, op, _ in ws.frames[1:]]
    eq(ops[0], (False, OP_TEXT), 'first frame of the reply')
    eq(ops[-1], (True, OP_CONT), 'last frame of the reply')
    check(all(o == (False, OP_CONT) for o in ops[1:-1]), 'frames in between: %s' % ops)
    ws.sock.close()


@test
def pushes_pongs_and_long_lines_interleave():
    """pushes of up to 4 KiB (framed by the front), longer ones (text and continuation frames from wslay) and pongs to the client's pings, while the socket fills and drains: every push whole and in order, every pong in order, no frame inside another's message"""
    # The subscriber reads nothing until every PUB is acknowledged, through
    # a 4 KiB receive buffer: the gateway's socket fills again and again,
    # often in the middle of one of wslay's long messages, and what follows
    # goes out on EPOLLOUT, where a frame of the front's own inside wslay's
    # message would break the stream.
    gw = harness.Gateway(args=['--max-outbuf', str(64 << 20)])
    ws = WsSession(gw, rcvbuf=4096)
    eq(ws.request('SUB ws-mix')['type'], 'ok', 'SUB')
    count, pings, burst = 3000, 60, 100
    sizes = [9000 if i % 3 == 1 else 4096 if i % 11 == 5 else 20 + i % 300 for i in range(count)]
    with harness.Session(gw) as pub:
        for at in range(0, count, burst):
            pub.send(''.join('PUB ws-mix %d:%s\n' % (i, 'x' * sizes[i])
                             for i in range(at, at + burst)).encode())
            for i in range(at, at + burst):
                eq(pub.reply(timeout=30).get('type'), 'ok', 'PUB %d acknowledged' % i)
                if i % (count // pings) == 0:
                    ws.ping(b'p%d' % (i // (count // pings)))
    got = ws.messages(count, timeout=60)
    eq([m['seq'] for m in got], list(range(1, count + 1)), 'seqs in order, each once')
    for i, m in enumerate(got):
        eq(m['body'], '%d:%s' % (i, 'x' * sizes[i]), 'push %d whole' % i)
    harness.wait_for(lambda: (ws.collect(0.2), len(ws.pongs) >= pings)[1], 'every pong',
                     timeout=10)
    eq(ws.pongs, [b'p%d' % k for k in range(pings)], 'the pongs, in order')
    check(any(op == OP_CONT for _, op, _ in ws.frames), 'some pushes came as continuations')
    ws.sock.close()
    gw.stop()


N_FLOOD = 40


@test
def command_flood_without_reading_is_bounded():
    """40 peers that each send 'PING 1' commands in small text frames as fast as the gateway takes them and read nothing (--max-outbuf 65536): the gateway stops reading each one, each holding its queue and 16 KiB of messages for its session, not a socket read's worth of them (about 450 KB each)"""
    gw = harness.Gateway(args=['--max-outbuf', '65536'], prefix=harness.address_limit(1024),
                         env=harness.small_asan_quarantine())
    rss0 = harness.rss_kb(gw)
    peers = []
    try:
        for _ in range(N_FLOOD):
            p = WsSession(gw, rcvbuf=4096)
            p.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            p.sock.setblocking(False)
            peers.append(p)
        unit = frame(OP_TEXT, b'PING 1')
        lasts = {}
        floods = [threading.Thread(target=lambda p=p: lasts.update({p: wsclient.flood(p.sock, unit)[1]}))
                  for p in peers]
        for t in floods:
            t.start()
        for t in floods:
            t.join(timeout=60)
        eq(sorted(set(lasts.values())), [0], 'bytes the gateway read in the last second of a flood')
        grew = harness.rss_kb(gw) - rss0
        print('# %d WebSockets flooding commands, reading nothing: RSS +%d kB, %d kB each'
              % (N_FLOOD, grew, grew // N_FLOOD))
        if not harness.sanitized():  # ASan's quarantine keeps what it frees
            check(grew < N_FLOOD * 300, 'RSS grew by %d kB for %d peers' % (grew, N_FLOOD))
        with harness.Session(gw) as bystander:
            eq(bystander.request('PING by').get('token'), 'by', 'a bystander is answered')
    finally:
        for p in peers:
            p.sock.close()
    gw.stop()


def ping_flood(payload):
    gw = harness.Gateway(prefix=harness.address_limit(512), env=harness.small_asan_quarantine())
    rss0 = harness.rss_kb(gw)
    flood = WsSession(gw, rcvbuf=4096)
    # A small send buffer too, so that what waits in the kernels stays small.
    flood.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
    ping = frame(OP_PING, payload)
    flood.sock.setblocking(False)
    sent, last_second = wsclient.flood(flood.sock, ping)
    grew = harness.rss_kb(gw) - rss0
    print('# %d bytes of %d-byte pings sent before the gateway stopped reading; RSS +%d kB'
          % (sent, len(payload), grew))
    # Unbounded, every ping queued a pong: the gateway read on, gigabytes within seconds.
    eq(last_second, 0, 'bytes of pings the gateway read in the last second of the flood')
    if not harness.sanitized():  # ASan's quarantine keeps what it frees: RSS says little there
        check(grew < 16 * 1024, 'RSS grew by %d kB' % grew)
    with harness.Session(gw) as bystander:
        eq(bystander.request('PING by').get('token'), 'by', 'a bystander is answered')
    flood.sock.setblocking(True)
    flood.sock.settimeout(30)
    # Reading again: every ping is answered, then the session works.
    def pongs(n):
        harness.wait_for(lambda: (flood.collect(0.2), len(flood.pongs) >= n)[1], '%d pongs' % n,
                         timeout=60)
    pongs(sent // len(ping))
    # The rest of a ping the last non-blocking send cut, so that frames line up again.
    cut = sent % len(ping)
    if cut:
        flood.send(ping[cut:])
    pings = (sent + len(ping) - 1) // len(ping)
    pongs(pings)
    eq(len(flood.pongs), pings, 'one pong per ping')
    check(all(p == payload for p in flood.pongs), 'the pongs carry the pings\' payload')
    eq(flood.request('PING after').get('token'), 'after', 'the session goes on')
    flood.sock.close()
    gw.stop()


@test
def ping_flood_without_reading_is_bounded():
    """a peer that floods pings and reads nothing: the gateway stops reading it once 16 KiB of pongs wait, its memory stays flat, a bystander's PING is answered, and the flooder that reads again gets every pong and a working session"""
    ping_flood(b'p' * 100)


@test
def empty_ping_flood_without_reading_is_bounded():
    """the same with empty pings: each waiting pong counts for what it costs beside its payload, so the gateway stops reading this flooder too, and its memory stays flat"""
    ping_flood(b'')


harness.main()
