#!/usr/bin/env python3
"""WebSocket sessions are sessions (docs/websocket.md): what is published
over a WebSocket reaches TCP and REST with via "ws" and the reverse, resume
with SUB ch since, gap events, the slow consumer closed with 4001 and its
last seqs (and resuming from them exactly), SIGTERM closing with 1001,
metrics and stats labelled ws, --trace narrating the upgrade and the frames,
and the memory an idle WebSocket costs."""

import sys
sys.dont_write_bytecode = True

import json
import re
import signal
import sqlite3
import socket
import struct
import threading
import time

import harness
from harness import test, check, eq, check_push, check_session_error, Session
from wsclient import WsSession, frame, OP_TEXT, OP_CLOSE

shared = harness.Shared()


def sub(s, channel, since=None):
    r = s.request('SUB %s' % channel + ('' if since is None else ' %d' % since))
    eq((r.get('type'), r.get('op')), ('ok', 'sub'), 'SUB %s reply: %s' % (channel, r))
    return r


@test
def ws_publish_reaches_tcp_and_rest():
    """PUB over a WebSocket: acknowledged after commit, pushed to a TCP subscriber and a WebSocket one, read over REST, via ws"""
    gw = shared.get()
    ws, other = WsSession(gw), WsSession(gw)
    with Session(gw) as tcp:
        sub(tcp, 'wss-a')
        sub(other, 'wss-a')
        r = ws.request('PUB wss-a bonjour')
        eq(r['type'], 'ok', 'PUB reply')
        m = r['message']
        eq(m['via'], 'ws', 'via of a message published over a WebSocket')
        eq(check_push(tcp.push(), channel='wss-a', body='bonjour', via='ws'), m, 'TCP push')
        eq(check_push(other.push(), channel='wss-a', body='bonjour', via='ws'), m, 'WebSocket push')
        eq(gw.read('wss-a')['messages'], [m], 'REST read')
        # the JSON form too, with a tag
        r = ws.request_json({'op': 'pub', 'channel': 'wss-a', 'body': 'json\nform', 'tag': 't1'})
        eq((r['type'], r.get('tag'), r['message']['body']), ('ok', 't1', 'json\nform'), 'JSON PUB')
        # A line end (LF or CRLF) after the command is not part of it; a CR alone is, as on TCP.
        for text, body in [('x\r', 'x\r'), ('x\r\r\n', 'x\r'), ('x\r\n', 'x'), ('x\n', 'x')]:
            r = ws.request('PUB wss-a ' + text)
            eq(r['message']['body'], body, 'the body of a message that ends %r' % text[1:])
    ws.sock.close()
    other.sock.close()


@test
def tcp_and_rest_publish_reach_ws():
    """a message POSTed over REST and one PUB over TCP are pushed to a WebSocket subscriber, in order, once"""
    gw = shared.get()
    ws = WsSession(gw)
    sub(ws, 'wss-b')
    m1 = gw.publish('wss-b', 'from rest', sender='ana')
    with Session(gw) as tcp:
        r = tcp.request('PUB wss-b from-tcp')
        m2 = r['message']
    got = [check_push(p) for p in ws.messages(2)]
    eq(got, [m1, m2], 'pushes')
    eq([m['via'] for m in got], ['rest', 'tcp'], 'via of each')
    eq([x for x in ws.collect(0.3) if x['type'] == 'message'], [], 'nothing more')
    ws.sock.close()


@test
def pipelined_past_the_window():
    """600 PUBs written at once (past the session's window of 256): input is held back and resumed, every one answered once, in order"""
    gw = shared.get()
    ws = WsSession(gw)
    ws.send(b''.join(frame(OP_TEXT, 'PUB wss-pipe m%d' % i) for i in range(600)))
    replies = [ws.reply() for _ in range(600)]
    eq([r['type'] for r in replies], ['ok'] * 600, 'replies')
    eq([r['message']['body'] for r in replies], ['m%d' % i for i in range(600)], 'in order')
    eq([r['message']['seq'] for r in replies], list(range(1, 601)), 'seqs')
    eq(ws.request('PING after')['token'], 'after', 'the session goes on')
    ws.sock.close()


def each_stored_once(gw, channel, stored):
    """channel holds seqs 1..stored, nothing more, and the gateway goes on."""
    eq(gw.read(channel, since=stored)['messages'], [], 'nothing more')
    eq(gw.read(channel, since=stored - 1)['messages'][0]['seq'], stored, 'every PUB once')
    with Session(gw) as s:
        eq(s.request('PING by').get('token'), 'by', 'the gateway goes on')


@test
def commands_before_a_close_all_run():
    """PUBs written at once with a close frame after them (300 and 3000: past the session's window of 256), three times each: every PUB runs and is stored, the close is echoed, and the gateway goes on (the close's reason outlives the read that found it)"""
    gw = shared.get()
    stored = 0
    for n in (300, 3000, 300, 3000, 300, 3000):
        ws = WsSession(gw)
        ws.send(b''.join(frame(OP_TEXT, 'PUB wss-close m%d' % i) for i in range(n))
                + frame(OP_CLOSE, struct.pack('!H', 1000)))
        code, _, _ = ws.expect_close(timeout=30)
        eq(code, 1000, 'the close echoed after %d PUBs' % n)
        ws.sock.close()
        stored += n
        harness.wait_for(lambda: gw.get('/v1/channels/wss-close/messages?since=%d'
                                        % (stored - 1)).status == 200,
                         'the last of %d PUBs stored' % n, timeout=30)
    each_stored_once(gw, 'wss-close', stored)


@test
def commands_before_the_end_of_stream_all_run():
    """PUBs written at once, then the end of the TCP stream with no close frame (300 and 3000, past the session's window): as on TCP every PUB runs and is stored, its reply comes in order, then the bye and a close 1000; the gateway goes on"""
    gw = shared.get()
    stored = 0
    for n in (300, 3000, 300, 3000):
        ws = WsSession(gw)
        ws.send(b''.join(frame(OP_TEXT, 'PUB wss-eof m%d' % i) for i in range(n)))
        ws.sock.shutdown(socket.SHUT_WR)
        code, reason, msgs = ws.expect_close(timeout=30)
        eq((code, reason), (1000, 'end of input'), 'the close after %d PUBs' % n)
        eq(msgs[-1], {'type': 'bye', 'reason': 'end of input'}, 'the bye before it')
        eq([(m['type'], m['message']['seq']) for m in msgs[:-1]],
           [('ok', stored + i + 1) for i in range(n)], 'a reply to each PUB, in order')
        ws.sock.close()
        stored += n
    each_stored_once(gw, 'wss-eof', stored)


@test
def resume_with_since():
    """SUB ch N on a WebSocket: the messages after N from the store, then live, no gap, no repeat"""
    gw = shared.get()
    ms = [gw.publish('wss-resume', 'm%d' % i) for i in range(1, 8)]
    ws = WsSession(gw)
    r = sub(ws, 'wss-resume', 3)
    eq((r['since'], r['top']), (3, 7), 'since and top')
    eq([check_push(p) for p in ws.messages(4)], ms[3:], 'replayed 4..7')
    live = gw.publish('wss-resume', 'live')
    eq(check_push(ws.push()), live, 'then live')
    ws.sock.close()


@test
def gap_events():
    """holes in the store are said as gap events over a WebSocket too"""
    gw = shared.get()
    conn = gw.connect()
    for i in range(1, 7):
        gw.publish('wss-gap', 'm%d' % i, conn=conn)
    conn.close()
    db = sqlite3.connect(gw.db, timeout=10)
    with db:
        db.execute('DELETE FROM messages WHERE channel_id = (SELECT id FROM channels WHERE name = ?)'
                   ' AND seq IN (2, 3)', ['wss-gap'])
    db.close()
    ws = WsSession(gw)
    sub(ws, 'wss-gap', 0)
    got = [ws.push(types=('message', 'gap')) for _ in range(5)]
    eq([x['seq'] if x['type'] == 'message' else ('gap', x['from'], x['to']) for x in got],
       [1, ('gap', 2, 3), 4, 5, 6], 'pushes and the gap in order')
    eq(got[1], {'type': 'gap', 'channel': 'wss-gap', 'from': 2, 'to': 3, 'first_seq': 4}, 'gap event')
    ws.sock.close()


FLOOD, BODY, MAX_OUTBUF = 600, 8000, 65536


@test
def slow_consumer_4001_then_resume():
    """--max-outbuf 64K: a WebSocket subscriber that does not read gets whole messages, the slow_consumer farewell, close 4001 naming its last seq; a new session resuming from it gets exactly the rest"""
    gw = harness.Gateway(args=['--max-outbuf', str(MAX_OUTBUF), '--sync', 'normal'],
                         env=harness.small_asan_quarantine())
    slow = WsSession(gw, rcvbuf=4096, timeout=60)
    sub(slow, 'wss-slow')
    with Session(gw, timeout=60) as p:
        for i in range(0, FLOOD, 20):
            p.send(''.join(json.dumps({'op': 'pub', 'channel': 'wss-slow',
                                       'body': ('%d ' % (i + k)).ljust(BODY, 's')}) + '\n'
                           for k in range(20)))
            for _ in range(20):
                eq(p.reply(timeout=60)['type'], 'ok', 'PUB of the flood')
    code, reason, msgs = slow.expect_close(timeout=60)
    slow.sock.close()
    eq(code, 4001, 'close code of a slow consumer (reason %r)' % reason)
    last = msgs[-1]
    check_session_error(last, 'slow_consumer', what='the last message')
    seqs = [m['seq'] for m in msgs[:-1] if m['type'] == 'message']
    eq(seqs, list(range(1, len(seqs) + 1)), 'seqs received, in order, no hole')
    check(len(seqs) < FLOOD, 'received all %d: never cut off' % FLOOD)
    got = seqs[-1] if seqs else 0
    eq(last['last_seq'], {'wss-slow': got}, 'last_seq of the farewell')
    eq(reason, 'slow consumer; last_seq {"wss-slow":%d}' % got, 'close reason')
    print('# the slow WebSocket received %d of %d messages before 4001' % (len(seqs), FLOOD))
    # resume exactly from the reason's seq
    n = int(re.search(r':(\d+)\}$', reason).group(1))
    again = WsSession(gw, timeout=60)
    sub(again, 'wss-slow', n)
    rest = again.messages(FLOOD - n, timeout=60)
    eq([m['seq'] for m in rest], list(range(n + 1, FLOOD + 1)), 'the rest, once each')
    again.sock.close()


@test
def sigterm_is_1001():
    """SIGTERM: a WebSocket session gets its bye, then close 1001 (going away), and the gateway exits 0"""
    gw = harness.Gateway()
    ws = WsSession(gw)
    sub(ws, 'wss-term')
    rc = []
    t = threading.Thread(target=lambda: rc.append(gw.stop()))
    t.start()
    code, reason, msgs = ws.expect_close()
    ws.sock.close()
    t.join(30)
    eq(code, 1001, 'close code on SIGTERM (reason %r)' % reason)
    eq([m['type'] for m in msgs], ['bye'], 'messages before the close')
    eq(msgs[0].get('reason'), 'shutdown', 'bye reason')
    eq(rc, [0], 'exit status')


@test
def stats_and_metrics_label_ws():
    """/v1/stats and /metrics count WebSocket sessions, publishes and deliveries as ws"""
    gw = harness.Gateway()
    ws = WsSession(gw)
    sub(ws, 'wss-met')
    ws.request('PUB wss-met one')
    ws.push()
    st = gw.get('/v1/stats').json
    eq(st['open']['ws'], 1, 'open ws sessions')
    eq(st['messages_published_total']['ws'], 1, 'published via ws')
    eq(st['messages_delivered_total']['ws'], 1, 'delivered over ws')
    check(st['requests_total']['ws'] >= 2, 'ws commands: %s' % st['requests_total'])
    check(st['bytes_sent_total']['ws'] > 0 and st['bytes_received_total']['ws'] > 0, 'ws bytes')
    text = gw.get('/metrics').raw.decode()
    check(re.search(r'^visavis_messages_published_total\{via="ws"\} 1$', text, re.M),
          'published via ws in /metrics')
    check(re.search(r'^visavis_open\{transport="ws"\} 1$', text, re.M), 'open ws in /metrics')
    ws.request('QUIT')
    ws.expect_close()
    ws.sock.close()
    harness.wait_for(lambda: gw.get('/v1/stats').json['open']['ws'] == 0, 'no ws session open')


@test
def trace_narrates_upgrade_and_frames():
    """--trace: the upgrade, the adoption, each frame received and sent, the close"""
    gw = harness.Gateway(args=['--trace', '--log-level', 'warn'])
    ws = WsSession(gw)
    ws.request('PING')
    ws.close(1000, '')
    ws.expect_close()
    ws.sock.close()
    sid = ws.hello['session']
    gw.wait_stderr(r'trace ws conn %s close fd' % sid)
    text = gw.stderr_text()
    for pat in (r'trace http conn \d+ upgrade to websocket \(subprotocol none\): fd \d+ handed over',
                r'trace ws conn %s adopt fd \d+ from 127\.0\.0\.1:\d+' % sid,
                r'trace ws conn %s recv frame text, 4 bytes' % sid,
                r'trace ws conn %s send frame text, \d+ bytes' % sid,
                r'trace ws conn %s recv frame close' % sid):
        check(re.search(pat, text), 'no trace line matching %r in:\n%s' % (pat, text[-3000:]))


IDLE_N = 400


@test
def idle_websocket_memory():
    """%d idle subscribed WebSockets (--heartbeat 1): RSS per connection sampled once every one has had its heartbeats; under 4 KiB each""" % IDLE_N
    limit = 4096
    harness.raise_nofile(2 * IDLE_N + 200)
    gw = harness.Gateway(args=['--heartbeat', '1', '--idle-timeout', '60'],
                         env=harness.small_asan_quarantine(),
                         prefix=harness.address_limit(512))

    def open_batch(n, tag):
        out = []
        for i in range(n):
            ws = WsSession(gw)
            sub(ws, 'idle-%s-%d' % (tag, i % 50))
            out.append(ws)
        return out

    def heartbeats(conns, n):
        # each connection answers n pings: by then its framing context has been dropped
        for ws in conns:
            while len(ws.server_pings) < n:
                f = ws.frame(timeout=10)
                check(f is not None, 'a connection ended')
                if f[1] == 9:
                    ws.server_pings.append(f[2])
                    ws.send_frame(10, f[2])

    warm = open_batch(50, 'w')
    heartbeats(warm, 2)
    rss0 = harness.rss_kb(gw)
    conns = open_batch(IDLE_N, 'i')
    heartbeats(conns, 2)
    heartbeats(warm + conns, 3)
    rss1 = harness.rss_kb(gw)
    per = (rss1 - rss0) * 1024 / IDLE_N
    print('# RSS %d kB -> %d kB for %d idle WebSockets: %.0f bytes each%s'
          % (rss0, rss1, IDLE_N, per, ' (AddressSanitizer build: not judged)' if harness.sanitized() else ''))
    if not harness.sanitized():
        check(per < limit, 'an idle WebSocket costs %.0f bytes of RSS, want under %d' % (per, limit))
    for ws in warm + conns:
        eq(ws.request('PING')['type'], 'pong', 'still served')
        ws.sock.close()


harness.main()
