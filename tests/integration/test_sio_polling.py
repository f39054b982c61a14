#!/usr/bin/env python3
"""Engine.IO v4 polling at /socket.io/, spoken by hand (docs/socketio.md):
the handshake and its refusals, packets batched into one payload both
ways (separated by 0x1e), CONNECT and its refusal for another namespace,
acks, events, a held poll answered by a push, pings and the close of a
client that does not answer them, two polls at once, the payload limit,
bad packets and the metrics label."""

import sys
sys.dont_write_bytecode = True

import json
import re
import threading
import time

import harness
from harness import test, check, eq

SEP = '\x1e'
# --trace: a held poll is waited for by its trace line.
shared = harness.Shared(args=['--trace'])


def gw():
    return shared.get()


class Eio:
    """One Engine.IO session over polling, one HTTP connection per request."""

    def __init__(self, g):
        self.g = g
        r = g.get('/socket.io/?EIO=4&transport=polling&t=x')
        eq(r.status, 200, 'handshake status (%s)' % r)
        text = r.raw.decode()
        check(text.startswith('0{'), 'the open packet: %r' % text)
        self.open = json.loads(text[1:])
        self.sid = self.open['sid']
        self.path = '/socket.io/?EIO=4&transport=polling&sid=' + self.sid

    def post(self, *packets):
        r = self.g.request('POST', self.path, body=SEP.join(packets).encode(),
                           content_type='text/plain;charset=UTF-8')
        eq((r.status, r.raw), (200, b'ok'), 'POST of %s (%s)' % (packets, r))

    def get(self, timeout=10):
        """One poll: its packets."""
        c = self.g.connect(timeout=timeout)
        r = self.g.get(self.path, conn=c)
        c.close()
        eq(r.status, 200, 'poll status (%s)' % r)
        eq((r.header('Content-Type') or '').split(';')[0], 'text/plain', 'poll Content-Type')
        return r.raw.decode().split(SEP)

    def until(self, pred, what, polls=10):
        """Polls until a packet matches pred; every packet seen, in order."""
        seen = []
        for _ in range(polls):
            seen += self.get()
            if any(pred(p) for p in seen):
                return seen
        raise harness.Failure('no packet %s in %s' % (what, seen))

    def connect(self):
        self.post('40')
        got = self.get()
        check(re.fullmatch(r'40\{"sid":"[0-9a-f]{16}"\}', got[0]), 'CONNECT answer: %s' % got)
        return got


def event(p):
    """42["name",{...}] -> (name, obj); None for another packet."""
    if not p.startswith('42['):
        return None
    name, obj = json.loads(p[2:])
    return name, obj


def ack(p):
    """43<id>[{...}] -> (id, obj)."""
    m = re.fullmatch(r'43(\d+)(\[.*\])', p)
    return (int(m.group(1)), json.loads(m.group(2))[0]) if m else None


@test
def handshake():
    """the handshake: the open packet with sid, upgrades, pingInterval, pingTimeout, maxPayload"""
    g = harness.Gateway(args=['--heartbeat', '7', '--sio-ping-timeout', '3', '--max-line', '4096'])
    r = g.get('/socket.io/?EIO=4&transport=polling&t=N8hyd6w')
    eq(r.status, 200, 'status')
    eq(r.header('Content-Type'), 'text/plain; charset=UTF-8', 'Content-Type')
    text = r.raw.decode()
    check(text[0] == '0' and not text.endswith('\n'), 'an open packet, exactly: %r' % text)
    o = json.loads(text[1:])
    eq(list(o.keys()), ['sid', 'upgrades', 'pingInterval', 'pingTimeout', 'maxPayload'], 'keys')
    check(re.fullmatch(r'[A-Za-z0-9_-]{20}', o['sid']), 'sid %r' % o['sid'])
    eq((o['upgrades'], o['pingInterval'], o['pingTimeout'], o['maxPayload']),
       (['websocket'], 7000, 3000, 4096), 'the session\'s terms')
    other = json.loads(g.get('/socket.io/?EIO=4&transport=polling').raw[1:])
    check(other['sid'] != o['sid'], 'each handshake has its own sid')
    g.stop()


@test
def handshake_refusals():
    """a bad version, transport, sid or method is refused in Engine.IO's words"""
    g = gw()
    cases = [
        ('GET', '/socket.io/?EIO=3&transport=polling', 400, 5),
        ('GET', '/socket.io/?transport=polling', 400, 5),
        ('GET', '/socket.io/?EIO=4&transport=carrier-pigeon', 400, 0),
        ('GET', '/socket.io/?EIO=4&transport=polling&sid=nosuchsession', 400, 1),
        ('POST', '/socket.io/?EIO=4&transport=polling', 400, 2),
    ]
    for method, path, status, code in cases:
        r = g.request(method, path, body=b'40' if method == 'POST' else None,
                      content_type='text/plain')
        eq(r.status, status, '%s %s (%s)' % (method, path, r))
        check(isinstance(r.json, dict) and r.json.get('code') == code and r.json.get('message'),
              '%s %s: {"code":%d,"message"}: %s' % (method, path, code, r))
    r = g.request('PUT', '/socket.io/?EIO=4&transport=polling')
    harness.check_error(r, 405, 'method_not_allowed', 'PUT')
    eq(r.header('Allow'), 'GET, POST', 'Allow')


@test
def other_paths_say_where_socketio_is():
    """a Socket.IO client at another path (/v1/ws, /v1/ws/, /sio/) is told /socket.io/, not given a WebSocket it cannot read"""
    import wsclient
    g = gw()
    for path in ['/v1/ws/?EIO=4&transport=polling&t=x', '/sio/?EIO=4&transport=polling',
                 '/v1/ws?EIO=4&transport=polling']:
        r = g.get(path)
        harness.check_error(r, 404, 'not_found', path)
        check('/socket.io/' in r.json['error']['message'] and 'did you mean' not in
              r.json['error']['message'], '%s: the message says where: %s' % (path, r.json))
    status, _, body, sock = wsclient.handshake_raw(
        g, wsclient.upgrade_headers(), path='/v1/ws?EIO=4&transport=websocket')
    sock.close()
    eq(status, 404, 'the WebSocket upgrade of /v1/ws with EIO= (%r)' % body[:200])
    check(b'/socket.io/' in body, 'its body says where: %r' % body[:300])
    # The visavis WebSocket itself, without EIO=, is unchanged.
    status, _, _, sock = wsclient.handshake_raw(g, wsclient.upgrade_headers(), path='/v1/ws')
    sock.close()
    eq(status, 101, 'the WebSocket upgrade of /v1/ws')


@test
def batching_both_ways():
    """packets batched in one POST are each answered; pushes queued meanwhile come in one poll"""
    g = gw()
    e = Eio(g)
    e.connect()
    # One payload, three packets: a sub with an ack, a pub without one, a pub with one.
    e.post('421["sub",{"channel":"batch","since":0}]',
           '42["pub",{"channel":"batch","body":"one","sender":"p"}]',
           '422["pub",{"channel":"batch","body":"two","sender":"p"}]')
    seen = e.until(lambda p: ack(p) and ack(p)[0] == 2, 'the ack of the second pub')
    acks = dict(ack(p) for p in seen if ack(p))
    eq(acks[1], {'type': 'ok', 'op': 'sub', 'channel': 'batch', 'since': 0, 'top': 0}, 'sub ack')
    eq((acks[2]['type'], acks[2]['message']['body'], acks[2]['message']['via']),
       ('ok', 'two', 'socketio'), 'pub ack')
    check(not any(p.startswith('43') and not ack(p) for p in seen), 'acks are well formed')
    # Three posts while no poll is held: one poll takes them all, in order, one packet each.
    for body in ('a', 'b', 'c'):
        g.publish('batch', body)
    seen = []
    while len([p for p in seen if event(p) and event(p)[1].get('body') in 'abc']) < 3:
        seen += e.get()
    msgs = [event(p)[1] for p in seen if event(p) and event(p)[0] == 'message']
    eq([m['body'] for m in msgs][-3:], ['a', 'b', 'c'], 'the pushes, in order')
    harness.check_message(msgs[-1], channel='batch', body='c', via='rest')
    page = g.read('batch')
    eq([m['body'] for m in page['messages']], ['one', 'two', 'a', 'b', 'c'], 'the store')


@test
def held_poll_answered_by_push():
    """a poll with nothing to send is held, and answered as soon as a message commits"""
    g = gw()
    e = Eio(g)
    e.connect()
    e.post('421["sub",{"channel":"held"}]')
    e.until(lambda p: ack(p), 'the sub ack')
    result = {}
    t = threading.Thread(target=lambda: result.update(p=e.get(), at=time.monotonic()))
    t.start()
    g.wait_stderr(r'sio %s poll held' % re.escape(e.sid))
    posted = time.monotonic()
    m = g.publish('held', 'wake')
    t.join(10)
    check(not t.is_alive(), 'the held poll was answered')
    msgs = [event(p)[1] for p in result['p'] if event(p)]
    eq([x['id'] for x in msgs], [m['id']], 'the message, alone')
    check(result['at'] - posted < 2, 'answered at once (%.2fs)' % (result['at'] - posted))


@test
def pings_and_silence():
    """pings come every --heartbeat; a client that answers stays, one that does not is closed"""
    g = harness.Gateway(args=['--heartbeat', '1', '--sio-ping-timeout', '1'])
    quiet = Eio(g)
    quiet.connect()
    got = quiet.until(lambda p: p == '1', 'the close packet', polls=5)
    check('2' in got, 'it was pinged: %s' % got)
    errs = [event(p)[1] for p in got if event(p) and event(p)[0] == 'error']
    check(errs and errs[-1]['code'] == 'idle_timeout', 'told idle_timeout: %s' % got)
    r = g.get(quiet.path)
    check(r.status == 400 and r.json['code'] == 1, 'the session is gone: %s' % r)
    # One that answers every ping stays (it polls all along, as a client does).
    e = Eio(g)
    e.connect()
    for _ in range(3):
        got = e.get()
        eq(got, ['2'], 'a poll held until the ping')
        e.post('3')
    e.post('421["channels",{}]')
    e.until(lambda p: ack(p), 'its channels ack')
    g.stop()


@test
def namespaces_and_order():
    """another namespace gets CONNECT_ERROR; an event before CONNECT is refused too"""
    g = gw()
    e = Eio(g)
    e.post('42["sub",{"channel":"x"}]')
    got = e.get()
    check(got[0].startswith('44{') and 'CONNECT' in json.loads(got[0][2:])['message'],
          'an event before CONNECT: %s' % got)
    e.post('40/admin,')
    got = e.get()
    check(got[0].startswith('44/admin,{'), 'CONNECT_ERROR for /admin: %s' % got)
    check("'/'" in json.loads(got[0][len('44/admin,'):])['message'], 'it names /: %s' % got)
    e.connect()


@test
def bad_packets():
    """bad packets get an error (through the ack when they have an id) and change nothing"""
    g = gw()
    g.publish('badp', 'only')
    e = Eio(g)
    e.connect()
    bad = [
        ('42["pub",{"channel":"badp","body":"x"}', 'invalid_json'),
        ('427["pub",{"channel":"badp","body":"x"', 'invalid_json'),
        ('42{"channel":"badp"}', 'invalid_parameter'),
        ('42["pub","badp"]', 'not_an_object'),
        ('42["pub",{"channel":"badp","body":7}]', 'invalid_field'),
        ('42["pub",{"channel":"..","body":"x"}]', 'invalid_channel'),
        ('49', 'invalid_parameter'),
        ('9', 'invalid_parameter'),
        ('43["x"]', 'invalid_parameter'),
        ('42/chat,["pub",{"channel":"badp","body":"x"}]', 'not_found'),
    ]
    for pkt, code in bad:
        e.post(pkt)
        got = e.until(lambda p: event(p) or ack(p), 'an answer to %r' % pkt)
        ans = [event(p)[1] if event(p) else ack(p)[1] for p in got if event(p) or ack(p)][-1]
        eq(ans.get('code'), code, 'the code for %r (%s)' % (pkt, got))
        if pkt.startswith('427'):
            check(any(ack(p) and ack(p)[0] == 7 for p in got), 'answered through ack 7: %s' % got)
        e.post('421["channels",{}]')  # a command that succeeds resets the error count
        e.until(lambda p: ack(p), 'a good ack')
    eq([m['body'] for m in g.read('badp')['messages']], ['only'], 'nothing stored')


@test
def client_closes():
    """a close packet in a POST ends the session; the POST is still answered ok"""
    g = gw()
    held = Eio(g)  # a held poll of another session must not be disturbed
    held.connect()
    result = {}
    t = threading.Thread(target=lambda: result.update(p=held.get()))
    t.start()
    g.wait_stderr(r'sio %s poll held' % re.escape(held.sid))
    e = Eio(g)
    e.connect()
    e.post('421["channels",{}]', '1')
    g.wait_stderr(r'socketio session \S+ \S+ closed: the client closed the session')
    r = g.get(e.path)
    check(r.status == 400 or r.raw == b'1', 'the session is over: %s' % r)
    g.publish('closes', 'x')  # nothing for the held poll: it waits on
    check(t.is_alive(), 'the other session\'s poll is still held')
    held.post('1')
    t.join(10)
    check(not t.is_alive() and result['p'][-1] == '1', 'it ends with its own close: %s' % result)
    warned = [l for l in g.stderr_text().splitlines() if ' warn ' in l and 'http:' in l]
    check(not warned, 'libmicrohttpd saw nothing amiss: %s' % warned)


@test
def too_many_errors():
    """ten bad packets in a row: an error, then DISCONNECT and the close packet"""
    g = gw()
    e = Eio(g)
    e.connect()
    e.post(*(['42[' for _ in range(10)]))
    got = e.until(lambda p: p == '1', 'the close packet')
    errs = [event(p)[1]['code'] for p in got if event(p)]
    eq(errs[-1], 'too_many_errors', 'the last error (%s)' % got)
    check('41' in got and got.index('41') < got.index('1'), 'DISCONNECT before the close: %s' % got)


@test
def packets_a_closing_session_cannot_run_are_refused():
    """ten bad packets then a publish in one POST: the tenth closes the session, so the POST is 400 (code 1) saying the last packet was not run, and nothing is stored; a POST after it is 400 too; a poll still gets why and the close"""
    g = gw()
    e = Eio(g)
    e.connect()
    ch = 'sio-closing-%s' % e.sid
    pub = '42["pub",{"channel":"%s","body":"not run"}]' % ch
    r = g.request('POST', e.path, body=SEP.join(['42['] * 10 + [pub]).encode(),
                  content_type='text/plain;charset=UTF-8')
    eq(r.status, 400, 'a POST whose last packet the closing session could not run (%s)' % r)
    err = json.loads(r.raw)
    check(err.get('code') == 1 and 'the last 1 were not run' in err.get('message', ''),
          'the answer says so: %s' % err)
    r = g.request('POST', e.path, body=pub.encode(), content_type='text/plain;charset=UTF-8')
    eq(r.status, 400, 'a POST to the closing session (%s)' % r)
    check('nothing of this POST was run' in json.loads(r.raw).get('message', ''),
          'the answer says so: %s' % r.raw)
    got = e.until(lambda p: p == '1', 'the close packet')
    errs = [event(p)[1]['code'] for p in got if event(p)]
    eq(errs[-1], 'too_many_errors', 'why, for the poll (%s)' % got)
    eq(g.read(ch)['messages'], [], 'nothing of the refused POSTs stored')


@test
def posting_without_polling_is_bounded():
    """a client that POSTs pings carrying data (each owed a pong), or packets before CONNECT
    (each owed a CONNECT_ERROR), and never polls: what it is owed stops at about one payload,
    the session ends as a slow consumer, and the gateway's memory stays flat"""
    g = harness.Gateway(args=['--max-line', '65536'], prefix=harness.address_limit(512))
    rss0 = harness.rss_kb(g)
    for what, packets in [('pings with 60 KB of data', ['2' + 'A' * 60000, '3']),
                          ('events before CONNECT', ['42["x"]'] * 2000)]:
        e = Eio(g)
        # 12 MB of pongs, or 400,000 CONNECT_ERRORs, owed if nothing stopped it.
        for i in range(200):
            r = g.request('POST', e.path, body=SEP.join(packets).encode(),
                          content_type='text/plain;charset=UTF-8')
            check(r.status in (200, 400), '%s: POST %d answered %s' % (what, i, r))
        r = g.get(e.path)
        check(r.status == 400 or (r.status == 200 and len(r.raw) < 65536 + 8192
                                  and r.raw.decode().split(SEP)[-1] == '1'),
              '%s: the session is over, what it was owed cut at a payload: %s %d bytes, ends %r'
              % (what, r.status, len(r.raw), r.raw[-40:]))
    grew = harness.rss_kb(g) - rss0
    print('# RSS grew by %d kB' % grew)
    if not harness.sanitized():
        check(grew < 16 * 1024, 'RSS grew by %d kB' % grew)
    with harness.Session(g) as by:
        eq(by.request('PING by').get('token'), 'by', 'a bystander is answered')
    g.stop()


def settled(sample, quiet=1.0, timeout=30):
    """sample()'s value once it has not changed for quiet seconds."""
    last, since, end = None, time.monotonic(), time.monotonic() + timeout
    while time.monotonic() < end:
        v = sample()
        if v != last:
            last, since = v, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return v
        time.sleep(0.05)
    raise harness.Failure('still changing after %.0f s: %s' % (timeout, last))


@test
def replays_nobody_polls_count_in_the_reply_memory():
    """sessions that subscribe from far back and never poll (a client needs no socket for each):
    their replays count in --max-reply-memory, as HIST pages do, so the gateway's memory stays
    near that bound, not a quarter of --max-outbuf per session; a bystander's replay still comes"""
    bound = 4 << 20
    g = harness.Gateway(args=['--max-reply-memory', str(bound)], prefix=harness.address_limit(512))
    with harness.Session(g) as s:
        for _ in range(10):
            for _ in range(100):
                s.cmd('PUB far %s' % ('z' * 1000))
            for _ in range(100):
                eq(s.reply().get('type'), 'ok', 'a PUB of the fill')
    rss0 = harness.rss_kb(g)
    for _ in range(300):
        e = Eio(g)
        e.connect()
        e.post('42["sub",{"channel":"far","since":0}]')
    # Every replay has read what the bound lets it: the reads stop, memory with them.
    # (ASan's own allocations move its RSS on their own: the gauge alone there.)
    held, rss = settled(lambda: (g.get('/v1/stats').json['reply_bytes'],
                                 0 if harness.sanitized() else harness.rss_kb(g)))
    rss = harness.rss_kb(g)
    check(held <= bound + 300 * 1200, 'replays hold %d bytes of a %d-byte bound' % (held, bound))
    grew = rss - rss0
    print('# replays hold %d bytes; RSS grew by %d kB' % (held, grew))
    if not harness.sanitized():
        # 300 sessions x a quarter of --max-outbuf, about 75 MB, were read without the bound.
        check(grew < 40 * 1024, 'RSS grew by %d kB' % grew)
    with harness.Session(g, source='127.0.0.3') as by:
        eq(by.request('PING by').get('token'), 'by', 'a bystander is answered')
        eq(by.request('SUB far 0').get('type'), 'ok', 'a bystander\'s SUB from far back')
        seqs = [by.push(timeout=10)['seq'] for _ in range(1000)]
        eq(seqs, list(range(1, 1001)), 'the bystander\'s replay, whole and in order')
    g.stop()


@test
def handshakes_alone_lock_nobody_out():
    """--max-sio-sessions 5: handshakes that never CONNECT do not keep a newcomer out (the
    oldest of them makes room); connected sessions make no room for their own address (only
    for another's: test_fair_share.py), so past them 429"""
    g = harness.Gateway(args=['--max-sio-sessions', '5'])
    idle = [Eio(g) for _ in range(5)]
    e = Eio(g)  # the sixth: the oldest idle handshake made room
    r = g.get(idle[0].path)
    check(r.status == 400 or r.raw.decode().split(SEP)[-1] == '1',
          'the oldest handshake is gone: %s %r' % (r.status, r.raw[:80]))
    used = [e] + [Eio(g) for _ in range(4)]
    for u in used:
        u.connect()
    r = g.get('/socket.io/?EIO=4&transport=polling')
    eq(r.status, 429, 'five connected sessions: no room (%s)' % r)
    used[0].post('421["channels",{}]')
    got = used[0].until(lambda p: ack(p) is not None, 'the ack')
    check('channels' in ack([p for p in got if ack(p)][0])[1], 'a connected session still works')
    g.stop()


def raw_http(g, source, method, path, body=b''):
    """A request on a socket of its own from source, its answer not yet read."""
    import socket
    sock = socket.socket()
    sock.bind((source, 0))
    sock.settimeout(10)
    sock.connect(('127.0.0.1', g.http_port))
    sock.sendall(('%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n'
                  'Content-Length: %d\r\n\r\n' % (method, path, len(body))).encode() + body)
    return sock


def raw_answer(sock):
    """(status, body) of the one answer on sock, read to its close."""
    data = b''
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        head, sep, rest = data.partition(b'\r\n\r\n')
        m = re.search(rb'content-length: *(\d+)', head, re.I)
        if sep and m and len(rest) >= int(m.group(1)):
            break
    sock.close()
    head, _, rest = data.partition(b'\r\n\r\n')
    return int(head.split(b' ')[1]) if head else 0, rest


@test
def held_posts_give_way_to_other_addresses():
    """an address whose POSTs are held (its sessions never poll for what their packets answer)
    fills --max-connections: a client of another address still gets in, one POST giving way
    with 400 (code 1) saying how many of its packets were not run and why"""
    g = harness.Gateway(args=['--trace', '--max-connections', '4'])
    for _ in range(20):
        g.publish('heavy', 'h' * 60000)
    sessions = [Eio(g) for _ in range(4)]
    for e in sessions:
        e.connect()
    # Each HIST answer is a page of a MiB: after one or two the session's queue is full,
    # and, its client never polling, it takes no more packets.
    posts = [raw_http(g, '127.0.0.2', 'POST', e.path,
                      SEP.join(['42["hist",{"channel":"heavy","since":0}]'] * 40).encode())
             for e in sessions]
    for e in sessions:
        g.wait_stderr(r'sio %s POST held' % e.sid)
    newcomer = raw_http(g, '127.0.0.3', 'GET', '/v1/version')
    status, body = raw_answer(newcomer)
    eq(status, 200, 'a client of another address gets in: %r' % body[:300])
    answers = []
    for sock in posts:
        sock.settimeout(1)
        try:
            answers.append(raw_answer(sock))
        except OSError:
            answers.append(None)  # still held: it did not have to give way
    gave = [a for a in answers if a and a[0] == 400]
    check(gave, 'a held POST gave way: %s' % [a and (a[0], a[1][:80]) for a in answers])
    for status, body in gave:
        err = json.loads(body)
        check(err.get('code') == 1 and re.search(r'the last \d+ were not run', err['message'])
              and 'another address' in err['message'], 'it says why: %s' % err)
    g.stop()


@test
def unread_poll_answers_give_way_to_other_addresses():
    """an address whose polls' answers are not read (each larger than the kernel takes)
    fills --max-connections: a client of another address still gets in, a poll not taken
    for a second is closed, and its session ends with it (its client lost those packets), as
    does the session of a poll whose client closes before taking its answer"""
    g = harness.Gateway(args=['--trace', '--max-connections', '4', '--max-body', '1048576',
                              '--max-outbuf', str(64 << 20)])
    for _ in range(12):
        g.request('POST', '/v1/channels/vast/messages', body=b'v' * 1000000,
                  content_type='text/plain')
    sessions = [Eio(g) for _ in range(4)]
    for e in sessions:
        e.connect()
        e.post('42["sub",{"channel":"vast","since":0}]')
    # Each replay queues the whole channel, 12 MB: a poll takes it all at once.
    settled(lambda: g.get('/v1/stats').json['reply_bytes'])
    polls = []
    import socket
    try:
        for e in sessions:
            sock = socket.socket()
            polls.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind(('127.0.0.2', 0))
            sock.connect(('127.0.0.1', g.http_port))
            sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % e.path).encode())
            # One at a time: the last /v1/stats connection is long gone by the fourth, which
            # would otherwise find it still counted and be cut as the newest head.
            g.wait_stderr(r'sio %s poll answered, \d{8,} bytes' % re.escape(e.sid))
        # Before a second has passed the newcomer may be refused: it asks again.
        got = None
        for _ in range(100):
            status, body = raw_answer(raw_http(g, '127.0.0.3', 'GET', '/v1/version'))
            if status == 200:
                got = status
                break
            eq(status, 429, 'a refusal meanwhile: %r' % body[:200])
            time.sleep(0.1)
        eq(got, 200, 'a client of another address gets in')
        # Let in at once if the newest poll's answer was being taken (it closes after it):
        # newcomers after a second cut a poll not taken.
        cut = r'sio (\S+) 127\.0\.0\.\d+:\d+: .*answer to a GET has not been taken'
        for _ in range(100):
            if re.search(cut, g.stderr_text()):
                break
            raw_answer(raw_http(g, '127.0.0.3', 'GET', '/v1/version'))
            time.sleep(0.1)
        m = g.wait_stderr(cut)
        ended = [e for e in sessions if e.sid == m.group(1)]
        check(ended, 'the session whose poll was cut: %s' % m.group(0))
        for sock in polls:
            sock.close()
        polls = []

        # The others' clients left before taking their answers: their sessions end too.
        for e in sessions:
            def poll():
                r = g.get(e.path)
                return r if r.status != 429 else None  # the closed ones not yet reaped
            r = harness.wait_for(poll, 'a poll once the others are closed')
            check(r.status == 400 or r.raw.decode().split(SEP)[-1] == '1',
                  'session %s is over: %s %r' % (e.sid, r.status, r.raw[:80]))
    finally:
        for sock in polls:
            sock.close()
    g.stop()


@test
def a_large_answer_taken_slowly_is_no_slow_consumer():
    """a polling client on a slow link (about 20 KB/s) downloads a poll's answer holding a
    replay's quarter of --max-outbuf for longer than the 10 s a stuck session is given: its
    session is not closed as a slow consumer, and its next poll goes on with the replay"""
    import socket
    g = harness.Gateway(args=['--max-outbuf', '1048576', '--max-body', '65536'])
    for _ in range(12):
        r = g.request('POST', '/v1/channels/big/messages', body=b'x' * 60000,
                      content_type='text/plain')
        eq(r.status, 201, 'a message of the replay stored')
    e = Eio(g)
    e.connect()
    e.post('420["sub",{"channel":"big","since":0}]')
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
    sock.settimeout(10)
    sock.connect(('127.0.0.1', g.http_port))
    sock.sendall(('GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n' % e.path).encode())
    data, took = b'', time.monotonic()
    while True:
        head, sep, rest = data.partition(b'\r\n\r\n')
        m = re.search(rb'content-length: *(\d+)', head, re.I)
        if sep and m and len(rest) >= int(m.group(1)):
            break
        chunk = sock.recv(4096)
        check(chunk, 'the answer cut after %d bytes' % len(data))
        data += chunk
        time.sleep(0.2)  # a slow link: 4 KiB each 0.2 s
    sock.close()
    took = time.monotonic() - took
    packets = rest.decode().split(SEP)
    seqs = [json.loads(p[2:])[1]['seq'] for p in packets if p.startswith('42["message"')]
    check(len(seqs) >= 4 and took > 11, 'a large answer, taken slowly: %d messages in %.1f s'
          % (len(seqs), took))
    later = e.until(lambda p: p.startswith('42["message"'), 'the replay going on')
    check(not any('slow_consumer' in p for p in later), 'no slow consumer: %s' % later[:1])
    nxt = [json.loads(p[2:])[1]['seq'] for p in later if p.startswith('42["message"')]
    eq(nxt[0], seqs[-1] + 1, 'the next poll goes on with the replay')
    check('slow consumer' not in g.stderr_text(), 'the log has no slow consumer')
    g.stop()


@test
def an_upgraded_session_that_does_not_read_is_a_slow_consumer():
    """a polling session that has polled, then upgrades to a WebSocket and reads nothing of its
    replay is closed as a slow consumer once it has taken nothing for 10 s, as on /v1/ws (its
    last poll does not leave it judged as if it were downloading an answer)"""
    import socket
    import wsclient
    g = harness.Gateway(args=['--max-outbuf', '1048576', '--max-body', '65536'])
    for _ in range(160):  # more than the sockets' buffers take
        r = g.request('POST', '/v1/channels/big/messages', body=b'y' * 60000,
                      content_type='text/plain')
        eq(r.status, 201, 'a message of the replay stored')
    e = Eio(g)
    e.connect()
    status, _, _, sock = wsclient.handshake_raw(
        g, wsclient.upgrade_headers(),
        path='/socket.io/?EIO=4&transport=websocket&sid=' + e.sid)
    eq(status, 101, 'the upgrade of the polling session')
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.sendall(wsclient.frame(wsclient.OP_TEXT, b'2probe'))
    buf = bytearray()
    server_frames(sock, buf, lambda op, p: p == b'3probe')
    sock.sendall(wsclient.frame(wsclient.OP_TEXT, b'5'))
    sock.sendall(wsclient.frame(wsclient.OP_TEXT, b'42["sub",{"channel":"big","since":0}]'))
    m = g.wait_stderr(r'socketio session \S+ \S+: slow consumer, \d+ bytes queued: (.*)',
                      timeout=30)
    check('took no byte for 10.0 s' in m.group(1), 'closed as stuck: %s' % m.group(0))
    sock.close()
    g.stop()


@test
def acks_owed_at_the_stop_reach_a_polling_client():
    """SIGTERM after a polling client's pub was stored, and before it polls again: its next
    poll, on a new connection, still gets the pub's ack and the close packet (the port stays
    open for it), while any other request is 503 shutting_down; then the gateway exits"""
    import os
    import signal
    g = harness.Gateway()
    e = Eio(g)
    e.connect()
    e.post('421["pub",{"channel":"stop-acks","body":"x"}]')
    harness.wait_for(lambda: g.get('/v1/channels/stop-acks/messages').json['messages'], 'the pub stored')
    os.kill(g.proc.pid, signal.SIGTERM)
    g.wait_stderr(r'stopping \(no new connections')
    r = g.get('/v1/version')
    harness.check_error(r, 503, 'shutting_down', 'another request during the stop')
    got = e.until(lambda p: p == '1', 'the close packet')
    acks = [ack(p) for p in got if ack(p)]
    check(acks and acks[0][0] == 1 and acks[0][1].get('message', {}).get('seq') == 1,
          'the ack of the stored pub: %s' % got)
    eq(got[-1], '1', 'the close packet last: %s' % got)
    eq(g.proc.wait(timeout=10), 0, 'exit code')
    g.stopped = True
    g._reap()
    eq(g.sanitizer_problems(), [], 'sanitizer reports')


@test
def two_polls_at_once():
    """a second poll while one is held is a bad request, and ends the session"""
    g = gw()
    e = Eio(g)
    e.connect()
    result = {}
    t = threading.Thread(target=lambda: result.update(p=e.get()))
    t.start()
    g.wait_stderr(r'sio %s poll held' % re.escape(e.sid))
    r = g.get(e.path)
    check(r.status == 400 and r.json['code'] == 3, 'the second poll: %s' % r)
    t.join(10)
    eq(result.get('p', [])[-1:], ['1'], 'the first poll gets the close packet')


@test
def payload_limit():
    """a POST over maxPayload (--max-line) is 413, before its body is read"""
    g = gw()
    e = Eio(g)
    e.connect()
    big = '42["pub",{"channel":"big","body":"%s"}]' % ('x' * (e.open['maxPayload'] + 10))
    r = g.request('POST', e.path, body=big.encode(), content_type='text/plain')
    harness.check_error(r, 413, 'body_too_large', 'an oversized payload')


@test
def metrics_label():
    """Socket.IO sessions count in /metrics as socketio, and publish with via socketio"""
    g = gw()
    e = Eio(g)
    e.connect()
    text = g.get('/metrics').raw.decode()
    m = re.search(r'^visavis_open\{transport="socketio"\} (\d+)$', text, re.M)
    check(m and int(m.group(1)) >= 1, 'open socketio in /metrics')
    check(re.search(r'^visavis_bytes_sent_total\{transport="socketio"\} [1-9]', text, re.M),
          'bytes out counted for socketio:\n%s' % '\n'.join(
              l for l in text.splitlines() if 'socketio' in l))
    e.post('42["disconnect"]', '41')


@test
def websocket_floods_are_bounded():
    """a Socket.IO WebSocket whose peer floods ping frames (with a payload or empty), or text packets the front answers itself, and reads nothing: the gateway stops reading it once 16 KiB of answers wait, so its memory stays flat and a bystander is answered"""
    import socket
    import wsclient
    g = harness.Gateway(prefix=harness.address_limit(512), env=harness.small_asan_quarantine())
    for what, unit in [('ping frames', wsclient.frame(wsclient.OP_PING, b'p' * 100)),
                       ('empty ping frames', wsclient.frame(wsclient.OP_PING, b'')),
                       ('2probe packets', wsclient.frame(wsclient.OP_TEXT, '2probe'))]:
        rss0 = harness.rss_kb(g)
        status, _, _, sock = wsclient.handshake_raw(
            g, wsclient.upgrade_headers(), path='/socket.io/?EIO=4&transport=websocket')
        eq(status, 101, 'the upgrade')
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
        sock.setblocking(False)
        try:
            sent, last_second = wsclient.flood(sock, unit)
        except ConnectionError as e:
            raise harness.Failure('the gateway closed the WebSocket flooding %s: %s' % (what, e))
        grew = harness.rss_kb(g) - rss0
        print('# %s: %d bytes sent; RSS +%d kB' % (what, sent, grew))
        # Unbounded, each one queued an answer: the gateway read on, gigabytes within seconds.
        eq(last_second, 0, '%s: bytes the gateway read in the flood\'s last second' % what)
        if not harness.sanitized():  # ASan's quarantine keeps what it frees: RSS says little there
            check(grew < 16 * 1024, '%s: RSS grew by %d kB' % (what, grew))
        with harness.Session(g) as bystander:
            eq(bystander.request('PING by').get('token'), 'by', 'a bystander is answered')
        sock.close()
    g.stop()


def server_frames(sock, buf, until, timeout=10):
    """Reads the server's frames on a raw WebSocket until until(opcode,
    payload) holds; every (opcode, payload) read, in order. buf (a
    bytearray) keeps what is read past the last frame."""
    import struct
    deadline = time.monotonic() + timeout
    seen = []
    while True:
        while True:
            if len(buf) >= 2:
                n, at = buf[1] & 0x7f, 2
                if n == 126 and len(buf) >= 4:
                    n, at = struct.unpack('!H', bytes(buf[2:4]))[0], 4
                elif n == 127 and len(buf) >= 10:
                    n, at = struct.unpack('!Q', bytes(buf[2:10]))[0], 10
                if (buf[1] & 0x7f) < 126 or at > 2:
                    if len(buf) >= at + n:
                        break
            left = deadline - time.monotonic()
            check(left > 0, 'no whole frame from the gateway in %ds; seen %s' % (timeout, seen))
            sock.settimeout(left)
            chunk = sock.recv(65536)
            check(chunk, 'the gateway closed the WebSocket; seen %s' % seen)
            buf += chunk
        seen.append((buf[0] & 0x0f, bytes(buf[at:at + n])))
        del buf[:at + n]
        if until(*seen[-1]):
            return seen


@test
def control_frames_between_fragments_are_no_part_of_the_packet():
    """on the WebSocket transport, pings and pongs between the fragments of a packet are answered and left out of it: the event stores its own bytes only, and 1 MiB of pings inside a packet neither grows it past maxPayload nor closes the session"""
    import wsclient
    from wsclient import frame, OP_TEXT, OP_CONT, OP_PING, OP_PONG
    g = gw()
    status, _, rest, sock = wsclient.handshake_raw(
        g, wsclient.upgrade_headers(), path='/socket.io/?EIO=4&transport=websocket')
    eq(status, 101, 'the upgrade')
    buf = bytearray(rest)  # the open packet may come with the 101
    text = lambda op, p: op == OP_TEXT
    check(server_frames(sock, buf, text)[-1][1].startswith(b'0{'), 'the open packet')
    sock.sendall(frame(OP_TEXT, '40'))
    check(server_frames(sock, buf, text)[-1][1].startswith(b'40{'), 'the CONNECT answer')
    for n, (ctl, pad) in enumerate([(OP_PING, b'XYZ'), (OP_PONG, b'XYZ'), (OP_PING, b'p' * 125)]):
        # 1 MiB of the last kind: more than maxPayload, had their bytes counted.
        ctls = frame(ctl, pad) * (1 if n < 2 else (1 << 20) // 131)
        sock.sendall(frame(OP_TEXT, '42%d["pub",{"channel":"sio-splice","body":"AB' % n, fin=False) +
                     ctls + frame(OP_CONT, 'CD"}]'))
        seen = server_frames(sock, buf, lambda op, p: op == OP_TEXT and p.startswith(b'43%d' % n),
                             timeout=30)
        ack = json.loads(seen[-1][1][len(b'43%d' % n):])
        eq(ack[0].get('message', {}).get('body'), 'ABCD',
           'the acknowledged body, with %s frames between its fragments (ack %s)'
           % ('ping' if ctl == OP_PING else 'pong', _short(ack)))
    sock.close()
    eq([m['body'] for m in g.read('sio-splice')['messages']], ['ABCD'] * 3, 'the stored bodies')


@test
def frames_that_break_rfc_6455_are_closed_with_1002():
    """on the WebSocket transport, a control frame over 125 bytes or a close frame with a one-byte body is answered by a close with 1002 and why, as on /v1/ws, not by a close without a code"""
    import struct
    import wsclient
    from wsclient import frame, OP_TEXT, OP_PING, OP_CLOSE
    g = gw()
    for what, bad in [('a 126-byte ping', frame(OP_PING, b'p' * 126)),
                      ('a close with a one-byte body', frame(OP_CLOSE, b'\x03'))]:
        status, _, rest, sock = wsclient.handshake_raw(
            g, wsclient.upgrade_headers(), path='/socket.io/?EIO=4&transport=websocket')
        eq(status, 101, 'the upgrade')
        buf = bytearray(rest)
        server_frames(sock, buf, lambda op, p: op == OP_TEXT and p.startswith(b'0{'))
        sock.sendall(frame(OP_TEXT, '40'))
        server_frames(sock, buf, lambda op, p: op == OP_TEXT and p.startswith(b'40{'))
        sock.sendall(bad)
        op, payload = server_frames(sock, buf, lambda op, p: op == OP_CLOSE)[-1]
        check(len(payload) >= 2, '%s: the close frame has a code: %r' % (what, payload))
        eq(struct.unpack('!H', payload[:2])[0], 1002, '%s: the close code (%r)' % (what, payload))
        check(b'RFC 6455' in payload, '%s: and says why: %r' % (what, payload))
        sock.close()
    with harness.Session(g) as bystander:
        eq(bystander.request('PING by').get('token'), 'by', 'a bystander is answered')


def _short(v):
    t = json.dumps(v)
    return t if len(t) < 300 else t[:300] + '...'


harness.main()
