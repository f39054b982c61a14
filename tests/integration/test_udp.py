#!/usr/bin/env python3
"""The UDP front (docs/udp.md): the primer's client publishing to a TCP
subscriber, PING/pong, acknowledged PUBs, oversize and truncated datagrams,
garbage, invalid UTF-8, the per-source rate, no answer larger than its
datagram (every command, both forms), the writer's backlog and store
failures with every datagram accounted for, a flood beside a TCP session and
HTTP, UDP off, a taken port, --trace and the metrics.

"Nothing came back" is never a bare timeout: after the datagram under test
the client sends a sentinel whose answer must come after any answer to the
first (a padded PING for what is answered at once, a tagged PUB for what is
answered after a commit: commits are answered in order), and then reads
everything that arrived before the sentinel's answer."""

import sys
sys.dont_write_bytecode = True

import json
import os
import random
import socket
import sqlite3
import statistics
import subprocess
import time

import harness
from harness import test, check, eq, check_push, check_session_error, Session

# Many tests commit a sentinel per check: no fsync per commit on the shared gateway.
shared = harness.Shared(args=['--sync', 'normal'])

# Answers are single datagrams; none is larger than this.
RECV_MAX = 65536
# Room enough for any answer: a request padded to this many bytes gets one.
ROOM = 600
# A sentinel's size: room for its own whole answer, within every --max-datagram used here.
SENTINEL = 100


def pad(data, n):
    """data (bytes) padded with trailing blanks to n bytes: blanks end a
    text command's words and are whitespace after a JSON object."""
    return data + b' ' * max(0, n - len(data))


def jdump(obj):
    return json.dumps(obj, ensure_ascii=False, separators=(',', ':')).encode('utf-8')


class Udp:
    """A UDP client socket talking to one gateway, from address bind."""

    def __init__(self, gw, bind='127.0.0.1', timeout=5.0):
        self.gw = gw
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((bind, 0))
        self.timeout = timeout
        self.to = ('127.0.0.1', gw.udp_port)
        self.seq = 0

    @property
    def peer(self):
        return '%s:%d' % self.sock.getsockname()

    def send(self, data):
        self.sock.sendto(data, self.to)

    def recv(self, timeout=None):
        """The next datagram (bytes), from the gateway; fails at the deadline."""
        self.sock.settimeout(self.timeout if timeout is None else timeout)
        try:
            data, addr = self.sock.recvfrom(RECV_MAX)
        except socket.timeout:
            raise harness.Failure('no datagram from the gateway within %.1fs'
                                  % (self.timeout if timeout is None else timeout))
        eq(addr, self.to, 'the answer comes from the gateway\'s address')
        return data

    @staticmethod
    def parse(data):
        check(data.endswith(b'\n') and data.count(b'\n') == 1,
              'an answer is one line ended by LF: %r' % data[:300])
        return Session.parse(data[:-1])

    def ask(self, data):
        """Sends data; returns (raw answer, parsed)."""
        self.send(data)
        raw = self.recv()
        return raw, self.parse(raw)

    def sentinel_ping(self):
        self.seq += 1
        return 's%d' % self.seq, pad(b'PING s%d' % self.seq, SENTINEL)

    def sentinel_pub(self):
        """A tagged PUB (on channel udp-sentinel): its ack comes after every
        answer due to what was sent before it."""
        self.seq += 1
        tag = 's%d' % self.seq
        return tag, pad(jdump({'op': 'pub', 'channel': 'udp-sentinel', 'body': 'x', 'tag': tag}),
                        SENTINEL)

    def until(self, sentinel):
        """Sends the sentinel (tag or token, datagram) and returns every
        datagram that arrived before its answer."""
        mark, data = sentinel
        self.send(data)
        got = []
        while True:
            raw = self.recv()
            obj = self.parse(raw)
            if obj.get('token') == mark or obj.get('tag') == mark:
                return got
            got.append(raw)

    def close(self):
        self.sock.close()


def stats(gw):
    r = gw.get('/v1/stats')
    eq(r.status, 200, '/v1/stats status')
    return r.json


def dropped(gw):
    return stats(gw)['udp_dropped_total']


def messages(gw, channel):
    """Every message of channel, over REST."""
    out, since = [], 0
    while True:
        page = gw.read(channel, since=since, limit=1000)
        out += page['messages']
        if not page['messages']:
            return out
        since = page['next_since']


def check_pong(r, token, tag=None):
    eq(r.get('type'), 'pong', 'answer type (%s)' % harness._short(r))
    eq(r.get('token'), token, 'pong token')
    t = r.get('time_us')
    check(type(t) is int and abs(t - time.time() * 1e6) < 5e6,
          'time_us is the server clock in µs: %s' % harness._short(r))
    if tag is not None:
        eq(r.get('tag'), tag, 'tag echoed in the pong')


# --------------------------------------------------------------------------
# The primer's client, PING, PUB

@test
def primer_client_publishes_to_a_tcp_subscriber():
    """the primer's UDP client, unchanged but for the port: its datagram is stored on channel udp and pushed to a TCP subscriber (sender ip:port, via udp)"""
    gw = shared.get()
    s = Session(gw)
    eq(s.request('SUB udp').get('type'), 'ok', 'SUB udp')

    client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    client.sendto(b"Hello serveur UDP", ("localhost", gw.udp_port))

    p = s.push()
    m = check_push(p, channel='udp', body='Hello serveur UDP', via='udp',
                   sender='127.0.0.1:%d' % client.getsockname()[1])
    stored = [x for x in messages(gw, 'udp') if x['id'] == m['id']]
    eq(stored, [m], 'the pushed message, read back over REST')
    client.close()
    s.close()


@test
def ping_pong():
    """PING (text, with and without a token) and {"op":"ping"} (token, tag) get one pong with the server clock, from the gateway's address"""
    gw = shared.get()
    u = Udp(gw)
    raw, r = u.ask(pad(b'PING t1', 100))
    check_pong(r, 't1')
    check(len(raw) <= 100, 'pong of %d bytes to a 100-byte PING' % len(raw))
    _, r = u.ask(pad(b'ping', 100))
    check_pong(r, '')
    _, r = u.ask(pad(jdump({'op': 'ping', 'token': 'j1', 'tag': 'g1'}), 120))
    check_pong(r, 'j1', tag='g1')
    _, r = u.ask(pad(b'PING crlf', 100) + b'\r\n')
    check_pong(r, 'crlf')
    u.close()


@test
def unpadded_ping_gets_no_pong():
    """a PING smaller than its pong is not answered (no amplification): 'PING' alone, a short JSON ping"""
    gw = harness.Gateway()
    u = Udp(gw)
    u.send(b'PING')
    u.send(b'PING abc')
    u.send(jdump({'op': 'ping'}))
    eq(u.until(u.sentinel_ping()), [], 'answers to PINGs smaller than their pong')
    eq(stats(gw)['udp_replies_withheld_total'], 3, 'udp_replies_withheld_total')
    u.close()
    gw.stop()


@test
def acknowledged_pub():
    """a JSON PUB with a tag is answered after its commit (the whole ok, with the message, when the datagram has room): stored, readable over REST, via udp"""
    gw = shared.get()
    u = Udp(gw)
    req = pad(jdump({'op': 'pub', 'channel': 'udp-ack', 'body': 'one\ntwo', 'sender': 'ana',
                     'tag': 'p1'}), 400)
    raw, r = u.ask(req)
    check(len(raw) <= len(req), 'ack of %d bytes to a %d-byte PUB' % (len(raw), len(req)))
    eq(r.get('type'), 'ok', 'answer type (%s)' % harness._short(r))
    eq(list(r.keys()), ['type', 'op', 'message', 'tag'], 'keys of the ack')
    eq(r['op'], 'pub', 'op')
    eq(r['tag'], 'p1', 'tag')
    m = r['message']
    harness.check_message(m, channel='udp-ack', sender='ana', body='one\ntwo', via='udp')
    # Stored before acknowledged: the ack's message is there the moment the ack is.
    eq(messages(gw, 'udp-ack')[-1], m, 'the acknowledged message over REST')
    u.close()


@test
def ack_fits_its_datagram():
    """an acknowledged PUB's ok shrinks to fit its datagram: without the body, then without the message; never dropped"""
    gw = shared.get()
    u = Udp(gw)
    # The smallest tagged PUB still gets {"type":"ok","op":"pub","tag":...}.
    req = jdump({'op': 'pub', 'channel': 'a', 'body': '', 'tag': 't'})
    raw, r = u.ask(req)
    eq(r, {'type': 'ok', 'op': 'pub', 'tag': 't'}, 'the ack of the smallest tagged PUB')
    check(len(raw) <= len(req), 'ack %d bytes, request %d' % (len(raw), len(req)))
    # A body long enough for the message, not for the message and its body.
    body = 'b' * 150
    req = jdump({'op': 'pub', 'channel': 'udp-fit', 'body': body, 'tag': 't2'})
    raw, r = u.ask(req)
    check(len(raw) <= len(req), 'ack %d bytes, request %d' % (len(raw), len(req)))
    eq(list(r.get('message', {}).keys()), ['id', 'channel', 'seq', 'sender', 'ts', 'via'],
       'the ack\'s message without its body (%s)' % harness._short(r))
    stored = messages(gw, 'udp-fit')[-1]
    eq(stored['body'], body, 'the body is stored whole')
    eq(stored['id'], r['message']['id'], 'id of the ack')
    u.close()


@test
def a_tag_too_wide_to_echo_is_not_stored():
    """a tagged PUB whose tag, escaped, makes even the shortest ok larger than its datagram (DEL and C1 controls sent raw come back as \\u00XX) is not stored and not answered; padded, it is stored and acknowledged once"""
    gw = shared.get()
    u = Udp(gw)
    refused = dropped(gw)['refused']
    for tag in ['\x7f' * 128, '\u0085' * 64, '\x7f' * 20, '\u009f' * 10]:
        u.send(jdump({'op': 'pub', 'channel': 'udp-wide-tag', 'body': 'x', 'tag': tag}))
    eq(u.until(u.sentinel_pub()), [], 'answers to PUBs whose ok cannot fit')
    eq(messages(gw, 'udp-wide-tag'), [], 'none of them stored (stored, each would be sent again)')
    eq(dropped(gw)['refused'] - refused, 4, 'counted as refused datagrams')
    tag = '\x7f' * 20
    raw, r = u.ask(pad(jdump({'op': 'pub', 'channel': 'udp-wide-tag', 'body': 'x', 'tag': tag}),
                       ROOM))
    eq((r.get('type'), r.get('tag')), ('ok', tag), 'the padded one acknowledged, its tag echoed')
    eq([m['body'] for m in messages(gw, 'udp-wide-tag')], ['x'], 'and stored once')
    u.close()

@test
def unacknowledged_pub_is_stored_silently():
    """PUB in text form and a JSON PUB without a tag get no answer, even padded, and are stored (sender anonymous, via udp)"""
    gw = shared.get()
    u = Udp(gw)
    u.send(pad(b'PUB udp-quiet hello there', 300))
    u.send(pad(jdump({'op': 'pub', 'channel': 'udp-quiet', 'body': 'json'}), 300))
    eq(u.until(u.sentinel_pub()), [], 'answers to PUBs without a tag')
    ms = messages(gw, 'udp-quiet')
    eq([m['body'] for m in ms], ['hello there' + ' ' * 275, 'json'], 'bodies stored')
    for m in ms:
        harness.check_message(m, channel='udp-quiet', sender='anonymous', via='udp')
    u.close()


@test
def bare_datagrams_are_bodies():
    """a datagram that is not a command is a body on --udp-channel: any text, JSON that is no command, a final line end dropped"""
    gw = harness.Gateway(args=['--udp-channel', 'inbox'])
    u = Udp(gw)
    bodies = [b'hello', b'hello with LF\n', b'CRLF\r\n', b'two\nlines', b'{"temp":21.5}',
              b'{"op":"nope"}', b'  leading blanks', 'ça va ? ✓'.encode('utf-8'), b'\x00\x01 ctl',
              b'Pubs are open']
    for b in bodies:
        u.send(b)
    eq(u.until(u.sentinel_pub()), [], 'answers to bare datagrams')
    want = ['hello', 'hello with LF', 'CRLF', 'two\nlines', '{"temp":21.5}', '{"op":"nope"}',
            '  leading blanks', 'ça va ? ✓', '\x00\x01 ctl', 'Pubs are open']
    ms = messages(gw, 'inbox')
    eq([m['body'] for m in ms], want, 'bodies on channel inbox')
    for m in ms:
        harness.check_message(m, channel='inbox', sender=u.peer, via='udp')
    eq(messages(gw, 'udp'), [], 'nothing on the default channel')
    u.close()
    gw.stop()


@test
def a_command_with_a_mistake_is_refused_not_stored():
    """a datagram that names a verb in "op" (in any case) is a command whatever is wrong with it (a bad tag, malformed JSON, the verb's case): it gets its error, answered when it is no PUB or carries a "tag", and is stored nowhere; JSON that names no verb is still a body"""
    gw = harness.Gateway()
    u = Udp(gw)
    long_tag = 'a' * 200
    cases = [
        (jdump({'op': 'pub', 'channel': 'c', 'body': 'x', 'tag': long_tag}), 'invalid_field', 'pub'),
        (jdump({'op': 'pub', 'channel': 'c', 'body': 'x', 'tag': 5}), 'invalid_field', 'pub'),
        (jdump({'op': 'ping', 'tag': long_tag}), 'invalid_field', 'ping'),
        (b'{"op":"pub","channel":"c","body":"\\ud800","tag":"t"}', 'invalid_json', 'pub'),
        (b'{"op":"pub","channel":"c","body":"x","tag":"t",}', 'invalid_json', 'pub'),
        (b'{"op":"ping","op":"ping"}', 'invalid_json', 'ping'),
    ]
    for data, code, op in cases:
        _, r = u.ask(pad(data, ROOM))
        eq((r.get('type'), r.get('code'), r.get('op')), ('error', code, op),
           'the answer to %r' % data[:60])
        check('tag' not in r, 'a tag that could not be read is not echoed: %s' % harness._short(r))
    # A verb in another case is that verb, with an error that says ops are lower case.
    for data, code in [(jdump({'op': 'PUB', 'channel': 'c', 'body': 'x', 'tag': 't'}),
                        'unknown_command'),
                       (b'{"op":"Pub","channel":"c","body":"x","tag":"t",}', 'invalid_json')]:
        _, r = u.ask(pad(data, ROOM))
        eq((r.get('type'), r.get('code'), r.get('op')), ('error', code, 'pub'),
           'the answer to %r' % data[:60])
    # A PUB that carries no tag asked for nothing, an error included; it is not stored either.
    u.send(pad(b'{"op":"pub","channel":"c","body":"x",}', ROOM))
    # Not commands: bodies, as before.
    u.send(b'{temp=21}')
    u.send(b'{"op":"nope",}')
    eq(u.until(u.sentinel_pub()), [], 'answers to the untagged PUB and to the bodies')
    eq(messages(gw, 'c'), [], 'nothing on channel c')
    eq([m['body'] for m in messages(gw, 'udp')], ['{temp=21}', '{"op":"nope",}'],
       'only the two bodies on channel udp')
    eq(dropped(gw)['refused'], len(cases) + 3, 'udp_dropped_total{refused}')
    u.close()
    gw.stop()


# --------------------------------------------------------------------------
# Limits

@test
def oversize_and_truncated_datagrams():
    """over --max-datagram (201 bytes, and 60,000 cut by the kernel) is dropped and counted as size, its real size logged; 200 bytes pass"""
    gw = harness.Gateway(args=['--max-datagram', '200'])
    u = Udp(gw)
    u.send(b'a' * 200)
    u.send(b'b' * 201)
    u.send(b'c' * 60000)
    u.send(pad(b'PING big', 201))
    # A PUB sentinel: its ack comes once the 200-byte body before it has committed.
    eq(u.until(u.sentinel_pub()), [], 'answers to oversize datagrams')
    eq([m['body'] for m in messages(gw, 'udp')], ['a' * 200], 'only the 200-byte datagram stored')
    eq(dropped(gw)['size'], 3, 'udp_dropped_total{size}')
    gw.wait_stderr(r'udp: 1 datagram dropped \(size\): 201 bytes, over --max-datagram 200, '
                   r'the last from 127\.0\.0\.1:\d+')
    u.close()
    gw.stop()
    check('60000 bytes' not in gw.stderr_text(),
          'a second size drop within 10 s is not logged on a line of its own')


@test
def truncated_size_is_the_real_one():
    """a 60,000-byte datagram is logged with its real size, not the buffer's"""
    gw = harness.Gateway(args=['--max-datagram', '100', '--trace'])
    u = Udp(gw)
    u.send(b'x' * 60000)
    gw.wait_stderr(r'udp: 1 datagram dropped \(size\): 60000 bytes, over --max-datagram 100')
    gw.wait_stderr(r'trace udp recvfrom 127\.0\.0\.1:%d 60000 bytes' % u.sock.getsockname()[1])
    u.close()
    gw.stop()


@test
def answers_are_never_answered():
    """a datagram that is an answer (it begins {"type":, as every line a gateway sends) is dropped unanswered and counted: a datagram forged with another gateway's address, or this one's, cannot start two gateways answering each other for ever"""
    gw = harness.Gateway()
    u = Udp(gw)
    # What a gateway answers a HIST without a channel: sent back to a gateway, it was
    # answered with itself, byte for byte.
    echo = (b'{"type":"error","op":"hist","code":"missing_field",'
            b'"message":"HIST needs a channel","tag":"t"}')
    answers = [echo, b'{"type":"ok","op":"pub","message":{"id":1,"channel":"udp","seq":1}}',
               b'{"type":"pong","token":"x"}\n']
    for a in answers:
        u.send(a)
    eq(u.until(u.sentinel_ping()), [], 'answers to answers')
    eq(dropped(gw)['answer'], len(answers), 'udp_dropped_total{answer}')
    eq(messages(gw, 'udp'), [], 'nothing stored')
    # A command in JSON is still one: only the answer's head is refused.
    _, r = u.ask(pad(b'{"op":"ping","token":"after"}', 100))
    check_pong(r, 'after')
    u.close()
    gw.stop()


@test
def garbage_and_invalid_utf8():
    """invalid UTF-8 (a command or not) and empty datagrams are dropped and counted, never stored or answered; the gateway goes on"""
    gw = harness.Gateway()
    u = Udp(gw)
    bad = [b'\xff\xfe\xfd', b'caf\xe9', b'\xc3', b'\xed\xa0\x80 surrogate', b'\xc0\xaf overlong',
           pad(b'PUB udp caf\xe9', 300), pad(b'PING \xff', 300),
           pad(b'{"op":"pub","channel":"udp","body":"\xff","tag":"g"}', 300)]
    rnd = random.Random(11)
    for _ in range(20):
        junk = bytes(rnd.randrange(256) for _ in range(rnd.randrange(1, 300)))
        try:
            junk.decode('utf-8')
        except UnicodeDecodeError:
            bad.append(junk)
    for b in bad:
        u.send(b)
    for b in (b'', b'\n', b'\r\n'):
        u.send(b)
    eq(u.until(u.sentinel_pub()), [], 'answers to garbage')
    eq(messages(gw, 'udp'), [], 'nothing stored')
    d = dropped(gw)
    eq(d['utf8'], len(bad), 'udp_dropped_total{utf8}')
    eq(d['empty'], 3, 'udp_dropped_total{empty}')
    gw.wait_stderr(r'udp: 1 datagram dropped \(utf8\): not valid UTF-8')
    _, r = u.ask(pad(b'PING after', 100))
    check_pong(r, 'after')
    u.close()
    gw.stop()


@test
def per_source_rate():
    """--udp-rate 20 --udp-burst 5: one address gets its burst then is dropped (rate), another address is not held back, and the first gets answers again as its tokens come back"""
    gw = harness.Gateway(args=['--udp-rate', '20', '--udp-burst', '5'])
    a, b = Udp(gw), Udp(gw, bind='127.0.0.2')
    t0 = time.monotonic()
    for i in range(30):
        a.send(pad(b'PING a%d' % i, 100))
    # b's own bucket is full: its PING is answered; by then a's answers are in.
    _, r = b.ask(pad(b'PING b', 100))
    check_pong(r, 'b')
    took = time.monotonic() - t0
    tokens = []
    a.sock.setblocking(False)
    while True:
        try:
            tokens.append(a.parse(a.sock.recv(RECV_MAX))['token'])
        except BlockingIOError:
            break
    # The burst, plus what 20/s gave back while the 30 were read.
    most = 5 + int(took * 20) + 1
    check(5 <= len(tokens) <= most, '%d of 30 PINGs answered, want 5..%d: %s'
          % (len(tokens), most, tokens))
    eq(tokens[:5], ['a0', 'a1', 'a2', 'a3', 'a4'], 'the first five are the burst')
    eq(dropped(gw)['rate'], 30 - len(tokens), 'udp_dropped_total{rate}')
    gw.wait_stderr(r'udp: 1 datagram dropped \(rate\): over the source address\'s --udp-rate')
    # Tokens come back at 20/s: a is answered again within a fraction of a second.
    a.sock.setblocking(True)

    def answered():
        a.send(pad(b'PING again', 100))
        try:
            return a.parse(a.recv(0.1))['token'] == 'again'
        except harness.Failure:
            return False
    harness.wait_for(answered, 'a PING answered once tokens came back', timeout=5)
    a.close()
    b.close()
    gw.stop()


# --------------------------------------------------------------------------
# No amplification

VERBS = ['help', 'pub', 'sub', 'unsub', 'hist', 'channels', 'ping', 'pong', 'quit']


def requests_of(verb):
    """(datagram, what must come back once padded to ROOM) in both forms.
    What comes back: 'answer' (an answer of some kind) or None (nothing)."""
    text = {
        'help': [b'HELP'], 'pub': [b'PUB', b'PUB udp-amp', b'PUB udp-amp hi', b'PUB bad/ch hi'],
        'sub': [b'SUB udp-amp', b'SUB udp-amp 0', b'SUB'], 'unsub': [b'UNSUB udp-amp'],
        'hist': [b'HIST udp-amp 0 10', b'HIST'], 'channels': [b'CHANNELS'],
        'ping': [b'PING', b'PING tok', b'PING ' + b'k' * 200, b'PING a b'], 'pong': [b'PONG'],
        'quit': [b'QUIT'],
    }[verb]
    js = {
        'help': [{'op': 'help'}, {'op': 'help', 'tag': 'h'}],
        'pub': [{'op': 'pub', 'channel': 'udp-amp', 'body': 'x'},
                {'op': 'pub', 'channel': 'udp-amp', 'body': 'x', 'tag': 'p'},
                {'op': 'pub', 'channel': 'udp-amp', 'body': 'y' * 300, 'tag': 'long'},
                {'op': 'pub', 'channel': 'bad/ch', 'body': 'x', 'tag': 'e'},
                {'op': 'pub', 'channel': 'udp-amp', 'tag': 'nobody'},
                {'op': 'pub', 'channel': 'udp-amp', 'body': 'x', 'sender': '', 'tag': 's'}],
        'sub': [{'op': 'sub', 'channel': 'udp-amp', 'since': 0}], 'unsub': [{'op': 'unsub'}],
        'hist': [{'op': 'hist', 'channel': 'udp-amp', 'tag': 'h'}],
        'channels': [{'op': 'channels', 'tag': 'c'}],
        'ping': [{'op': 'ping'}, {'op': 'ping', 'token': 't', 'tag': 'g'},
                 {'op': 'ping', 'token': 'x' * 200}],
        'pong': [{'op': 'pong'}], 'quit': [{'op': 'quit', 'tag': 'q'}],
    }[verb]
    out = []
    for t in text:
        # A text PUB asks for no answer, not even an error.
        out.append((t, None if t.upper().startswith(b'PUB') else 'answer'))
    for j in js:
        quiet = j['op'] == 'pub' and 'tag' not in j
        out.append((jdump(j), None if quiet else 'answer'))
    return out


def amplification(verb):
    gw = shared.get()
    u = Udp(gw)
    for req, want in requests_of(verb):
        for size in sorted({len(req), len(req) + 10, len(req) + 60, len(req) + 120, ROOM}):
            data = pad(req, size)
            u.send(data)
            got = u.until(u.sentinel_pub())
            for raw in got:
                check(len(raw) <= len(data), '%r padded to %d bytes: an answer of %d bytes: %r'
                      % (req, len(data), len(raw), raw))
                u.parse(raw)
            check(len(got) <= 1, '%r: %d answers' % (req, len(got)))
            if size == ROOM:
                eq(len(got), 0 if want is None else 1,
                   'answers to %r padded to %d bytes (%s)' % (req, size, got))
    u.close()


for _v in VERBS:
    harness.add_test('no answer larger than its datagram: %s in text and JSON, at several sizes'
                     % _v.upper(), amplification, _v)


@test
def not_offered_over_udp():
    """HELP, SUB, UNSUB, HIST, CHANNELS, PONG and QUIT are unknown_command over UDP (tag echoed); nothing that reads the store answers"""
    gw = shared.get()
    gw.publish('udp-amp', 'something to read')
    u = Udp(gw)
    for verb in ['HELP', 'SUB udp-amp 0', 'UNSUB udp-amp', 'HIST udp-amp 0', 'CHANNELS', 'PONG',
                 'QUIT']:
        _, r = u.ask(pad(verb.encode(), ROOM))
        check_session_error(r, 'unknown_command', op=verb.split()[0].lower(), tag=False,
                            what=verb)
        check('not offered over udp' in r['message'], 'the message says why: %s' % r['message'])
    _, r = u.ask(pad(jdump({'op': 'hist', 'channel': 'udp-amp', 'tag': 'h1'}), ROOM))
    check_session_error(r, 'unknown_command', op='hist', tag='h1')
    # The session still works as before: a SUB datagram subscribed nothing.
    eq(u.until(u.sentinel_pub()), [], 'no push followed the SUB datagram')
    u.close()


@test
def errors_are_cut_to_fit():
    """an error answer is cut to fit its datagram (its message shortened), or not sent when even that is too large"""
    gw = shared.get()
    u = Udp(gw)
    full_raw, full = u.ask(pad(b'HIST udp-amp', ROOM))
    check_session_error(full, 'unknown_command', op='hist')
    short_req = pad(b'HIST udp-amp', len(full_raw) - 20)
    raw, r = u.ask(short_req)
    check_session_error(r, 'unknown_command', op='hist')
    check(len(raw) <= len(short_req), 'a cut error of %d bytes for %d' % (len(raw), len(short_req)))
    check(full['message'].startswith(r['message']) and len(r['message']) < len(full['message']),
          'the message is cut: %r from %r' % (r['message'], full['message']))
    # Smaller than the error with an empty message: nothing.
    u.send(b'HIST udp-amp')
    eq(u.until(u.sentinel_ping()), [], 'an answer to a 12-byte HIST')
    u.close()


# --------------------------------------------------------------------------
# The writer's backlog, store failures: every datagram accounted for

@test
def backlog_and_store_failures_accounted():
    """while another program holds the database: UDP publishes past 4096 waiting are dropped (backlog), those that waited fail (store; a tagged one answered store_busy); every datagram sent is stored or counted dropped"""
    gw = harness.Gateway(args=['--udp-rate', '0'])
    gw.publish('udp-held', 'before')
    u = Udp(gw)
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=0)
    con.execute('BEGIN IMMEDIATE')
    try:
        sent, sent_bytes = 0, stats(gw)['bytes_received_total']['udp']
        tagged = pad(jdump({'op': 'pub', 'channel': 'udp-held', 'body': 'tagged', 'tag': 'busy'}),
                     ROOM)
        u.send(tagged)
        sent += 1
        sent_bytes += len(tagged)
        # Paced: the gateway has read each chunk before the next is sent, so
        # the kernel drops nothing and the backlog is what overflows.
        for chunk in range(45):
            for i in range(100):
                data = b'held %d' % (chunk * 100 + i)
                u.send(data)
                sent += 1
                sent_bytes += len(data)
            harness.wait_for(lambda: stats(gw)['bytes_received_total']['udp'] >= sent_bytes,
                             'the gateway read chunk %d' % chunk)
        check(dropped(gw)['backlog'] > 0, 'backlog drops: %s' % dropped(gw))
        # The first batch gives up on the lock after a second: its tagged PUB says so.
        r = u.parse(u.recv(10))
        check_session_error(r, 'store_busy', op='pub', tag='busy')
    finally:
        con.rollback()
        con.close()
    # After the lock: a sentinel commits once everything before it is done.
    eq(u.until(u.sentinel_pub()), [], 'other answers')
    d = dropped(gw)
    check(d['store'] >= 1, 'store drops: %s' % d)
    stored = len([m for m in messages(gw, 'udp')])
    accounted = stored + d['backlog'] + d['store'] + d['overflow']
    eq(accounted, sent, 'stored %d + dropped %s: every one of %d datagrams' % (stored, d, sent))
    gw.wait_stderr(r'udp: 1 datagram dropped \(backlog\): \d+ datagrams \(\d+ KiB\) are waiting for the store')
    gw.wait_stderr(r'udp: 1 datagram dropped \(store\): ')
    u.close()
    gw.stop()


@test
def answers_of_waiting_datagrams_stay_their_own():
    """the store held by another program: 64 tagged PUBs from one address fill what goes to the store at once, and 40 PINGs from another wait behind them. Once the lock goes, each PUB gets its own answer, in order, and each PING its pong: an answer that ends at once does not write over one being sent"""
    gw = harness.Gateway(args=['--udp-rate', '0'])
    a, b = Udp(gw), Udp(gw, bind='127.0.0.2')
    con = sqlite3.connect(gw.db, isolation_level=None, timeout=0)
    con.execute('BEGIN IMMEDIATE')
    try:
        for i in range(64):
            a.send(pad(jdump({'op': 'pub', 'channel': 'udp-own', 'body': 'x', 'tag': 'a%d' % i}),
                       ROOM))
        for i in range(40):
            b.send(pad(b'{"op":"ping","token":"%s","tag":"b%d"}' % (b'T' * 128, i), ROOM))
        harness.wait_for(lambda: stats(gw)['requests_total']['udp'] >= 104, 'all 104 read')
    finally:
        con.rollback()
        con.close()
    # The first may have given up on the lock (store_busy): what counts is whose answer it is.
    answers = [a.parse(a.recv(10)) for _ in range(64)]
    eq([r.get('tag') for r in answers], ['a%d' % i for i in range(64)], 'the PUBs\' answers')
    eq({r.get('type') for r in answers} - {'ok', 'error'}, set(), 'what they are')
    eq([(r.get('type'), r.get('tag')) for r in (b.parse(b.recv(10)) for _ in range(40))],
       [('pong', 'b%d' % i) for i in range(40)], 'the PINGs\' answers')
    a.close()
    b.close()
    gw.stop()


@test
def a_burst_waits_its_turn_in_order():
    """2000 PUB datagrams from one address as fast as the gateway reads them, within --udp-burst 2000: every one stored, in the order sent, none dropped (only 64 go to the store at once; the rest wait in order)"""
    gw = harness.Gateway(args=['--udp-burst', '2000'])
    u = Udp(gw)
    sent_bytes = stats(gw)['bytes_received_total']['udp']
    for chunk in range(10):
        for i in range(200):
            data = b'burst %d' % (chunk * 200 + i)
            u.send(data)
            sent_bytes += len(data)
        harness.wait_for(lambda: stats(gw)['bytes_received_total']['udp'] >= sent_bytes,
                         'the gateway read chunk %d' % chunk)
    eq(u.until(u.sentinel_pub()), [], 'answers before the sentinel\'s')
    eq([m['body'] for m in messages(gw, 'udp')], ['burst %d' % i for i in range(2000)],
       'stored, in order')
    eq(sum(dropped(gw).values()), 0, 'drops: %s' % dropped(gw))
    u.close()
    gw.stop()


# --------------------------------------------------------------------------
# A flood beside the other clients

# A flooder of its own (a process, so that it does not share this one's
# interpreter lock with the measurements): sends argv[3] to port argv[1] for
# argv[2] seconds as fast as it can, prints how many went out.
FLOODER = r"""
import socket, sys, time
port, seconds, payload = int(sys.argv[1]), float(sys.argv[2]), sys.argv[3].encode()
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
end = time.monotonic() + seconds
n = 0
while time.monotonic() < end:
    for _ in range(200):
        try:
            s.sendto(payload, ('127.0.0.1', port))
            n += 1
        except OSError:
            pass
print(n)
"""


def flood_case(rate, payload):
    """Floods for 3 s while a TCP session PINGs and an HTTP client GETs;
    returns (gateway, datagrams sent, stats after)."""
    gw = harness.Gateway(args=['--udp-rate', str(rate), '--sync', 'normal'])
    s = Session(gw)
    conn = gw.connect()
    for _ in range(20):  # warm up: the first round trips pay for page faults
        s.request('PING')
    flooder = subprocess.Popen([sys.executable, '-c', FLOODER, str(gw.udp_port), '3', payload],
                               stdout=subprocess.PIPE)
    pings, gets = [], []
    try:
        end = time.monotonic() + 2.5
        while time.monotonic() < end:
            t0 = time.monotonic()
            r = s.request('PING fast', timeout=5)
            pings.append(time.monotonic() - t0)
            eq(r.get('type'), 'pong', 'TCP PING during the flood')
            if len(pings) % 10 == 0:
                t0 = time.monotonic()
                eq(gw.get('/healthz', conn=conn).status, 200, '/healthz during the flood')
                gets.append(time.monotonic() - t0)
        out, _ = flooder.communicate(timeout=30)
    finally:
        if flooder.poll() is None:
            flooder.kill()
            flooder.wait()
    sent = int(out)
    # One more datagram brings the kernel's last drop count along (SO_RXQ_OVFL).
    u = Udp(gw)
    eq(u.until(u.sentinel_pub()), [], 'answers to the sentinel\'s socket')
    u.close()
    pings.sort()
    p50, worst = statistics.median(pings), pings[-1]
    st = stats(gw)
    harness._diag('%d datagrams sent; TCP PING p50 %.2f ms, p99 %.2f ms, max %.2f ms over %d; '
                  'GET /healthz max %.2f ms; dropped %s'
                  % (sent, p50 * 1e3, pings[int(len(pings) * 0.99)] * 1e3, worst * 1e3,
                     len(pings), max(gets) * 1e3, st['udp_dropped_total']))
    # Generous bounds: the flooder shares two cores with the gateway and this test.
    check(len(pings) >= 50, 'only %d TCP PINGs in 2.5 s' % len(pings))
    check(p50 < 0.05, 'TCP PING p50 %.1f ms during the flood' % (p50 * 1e3))
    check(worst < 1.0, 'TCP PING max %.1f ms during the flood' % (worst * 1e3))
    check(max(gets) < 1.0, 'GET /healthz max %.1f ms during the flood' % (max(gets) * 1e3))
    s.close()
    conn.close()
    return gw, sent, st


# A datagram that costs the gateway a lot and the flooder little: 1,400
# bytes of JSON to parse (hundreds of array elements), then a PUB refused
# for its channel, untagged, so never answered and never stored. One
# flooder sends these faster than the gateway can read them.
COSTLY = ('{"op":"pub","channel":"bad/ch","body":"x","pad":[%s]}'
          % ','.join(['0'] * 670))


@test
def flood_without_rate_limit_leaves_tcp_fast():
    """a flood faster than the gateway can read, for 3 s, with no --udp-rate: TCP PINGs and GET /healthz stay fast (the loop reads a bounded number of datagrams per wake-up); every datagram accounted for"""
    eq(len(COSTLY), 1390, 'size of the costly datagram (within --max-datagram)')
    gw, sent, st = flood_case(0, COSTLY)
    # Handed to the tier and refused there, or dropped by the kernel.
    d = st['udp_dropped_total']
    eq(d['refused'] + d['overflow'], sent, 'refused + kernel drops = datagrams sent')
    check(d['overflow'] > 0, 'the flood did not outrun the gateway: %s' % d)
    gw.stop()


@test
def flood_of_bodies_is_rate_limited():
    """the same flood of bodies at the default --udp-rate: at most burst + rate x time stored, the rest dropped as rate; TCP stays fast"""
    gw, sent, st = flood_case(1000, 'flood')
    d = st['udp_dropped_total']
    stored = len(messages(gw, 'udp'))
    check(stored <= 1000 + 1000 * 4, '%d stored from one address at 1000/s in 3 s' % stored)
    check(d['rate'] > 0, 'no rate drops: %s' % d)
    eq(stored + d['rate'] + d['overflow'], sent, 'stored + rate and kernel drops = datagrams sent')
    gw.stop()


# --------------------------------------------------------------------------
# Settings, trace, metrics

@test
def udp_off_with_an_empty_address():
    """--udp-addr '' and VISAVIS_UDP_ADDR='' turn UDP off: READY has no udp=, the log says so"""
    gw = harness.Gateway(args=['--udp-addr', ''])
    ready = [ln for ln in gw.stdout_lines if ln.startswith('READY')]
    check(ready and 'udp=' not in ready[0] and gw.udp_port is None,
          'READY line with UDP off: %s' % ready)
    gw.wait_stderr(r'udp off')
    gw.stop()
    tmp = gw.tmpdir
    env = {'VISAVIS_HTTP_ADDR': '127.0.0.1:0', 'VISAVIS_TCP_ADDR': '127.0.0.1:0',
           'VISAVIS_UDP_ADDR': '', 'VISAVIS_DB': os.path.join(tmp, 'env.db')}
    gw2 = harness.Gateway(base_args=False, tmpdir=tmp, db=env['VISAVIS_DB'], env=env)
    check(gw2.udp_port is None, 'READY line with VISAVIS_UDP_ADDR empty: %s' % gw2.stdout_lines)
    gw2.stop()


@test
def ready_line_names_the_udp_port():
    """READY http=<port> tcp=<port> udp=<port>: http and tcp first, as before; the udp port answers"""
    gw = shared.get()
    ready = [ln for ln in gw.stdout_lines if ln.startswith('READY')]
    eq(ready, ['READY http=%d tcp=%d udp=%d' % (gw.http_port, gw.tcp_port, gw.udp_port)],
       'READY line')
    u = Udp(gw)
    _, r = u.ask(pad(b'PING r', 100))
    check_pong(r, 'r')
    u.close()


@test
def taken_udp_port_names_the_setting():
    """a UDP port in use: exit 1, the error names --udp-addr and VISAVIS_UDP_ADDR"""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
        busy.bind(('127.0.0.1', 0))
        port = busy.getsockname()[1]
        d = harness.Gateway(start=False).tmpdir
        rc, _, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr', '127.0.0.1:0',
                                         '--udp-addr', '127.0.0.1:%d' % port,
                                         '--db', os.path.join(d, 'p.db')])
        eq(rc, 1, 'exit status')
        check('Address already in use' in err and '--udp-addr' in err and 'VISAVIS_UDP_ADDR' in err,
              'the error names --udp-addr and VISAVIS_UDP_ADDR:\n%s' % err)


@test
def bad_udp_settings():
    """a bad --udp-channel, --max-datagram, --udp-rate or --udp-addr: exit 2 with a message naming it"""
    for flag, value in [('--udp-channel', 'no/slash'), ('--udp-channel', ''), ('--udp-channel', '..'),
                        ('--max-datagram', '63'), ('--max-datagram', '65508'),
                        ('--udp-rate', '-1'), ('--udp-burst', '0'), ('--udp-addr', 'nohost')]:
        rc, out, err = harness.run_binary(['--http-addr', '127.0.0.1:0', '--tcp-addr',
                                           '127.0.0.1:0', flag, value])
        eq(rc, 2, 'exit status for %s %r (stderr %r)' % (flag, value, err[-300:]))
        check(flag in err, 'the message names %s: %r' % (flag, err))


@test
def trace_narrates_datagrams():
    """--trace: bind, recvfrom and sendto per datagram, drops with their reason"""
    gw = harness.Gateway(args=['--trace', '--log-level', 'warn', '--max-datagram', '100'])
    u = Udp(gw)
    port = u.sock.getsockname()[1]
    u.ask(pad(b'PING tr', 90))
    u.send(b'y' * 101)
    gw.wait_stderr(r'trace udp bind 127\.0\.0\.1:0 \(port %d\)' % gw.udp_port)
    gw.wait_stderr(r'trace udp recvfrom 127\.0\.0\.1:%d 90 bytes' % port)
    gw.wait_stderr(r'trace udp sendto 127\.0\.0\.1:%d \d+ bytes' % port)
    gw.wait_stderr(r'trace udp recvfrom 127\.0\.0\.1:%d 101 bytes' % port)
    gw.wait_stderr(r'trace udp drop from 127\.0\.0\.1:%d: size: 101 bytes' % port)
    u.close()
    gw.stop()


@test
def metrics_label_udp():
    """/metrics and /v1/stats: requests, bytes and publishes labelled udp, drops by reason, answers withheld"""
    gw = harness.Gateway(args=['--max-datagram', '100'])
    u = Udp(gw)
    req = pad(b'PING m', 90)
    raw, _ = u.ask(req)
    u.send(b'PING')           # withheld
    u.send(b'x' * 101)        # size
    u.send(b'\xff')           # utf8
    u.send(b'body')           # published
    sentinel = u.sentinel_pub()
    eq(u.until(sentinel), [], 'other answers')
    text = gw.get('/metrics').raw.decode()
    for line in ['visavis_udp_dropped_total{reason="size"} 1',
                 'visavis_udp_dropped_total{reason="utf8"} 1',
                 'visavis_udp_dropped_total{reason="rate"} 0',
                 'visavis_udp_replies_withheld_total 1',
                 'visavis_messages_published_total{via="udp"} 2',
                 'visavis_requests_total{transport="udp"} 4']:
        check(line + '\n' in text, '/metrics lacks %r:\n%s' % (line, text))
    st = stats(gw)
    eq(st['udp_dropped_total']['size'], 1, 'stats udp_dropped_total.size')
    eq(set(st['udp_dropped_total']), {'size', 'rate', 'utf8', 'empty', 'answer', 'backlog', 'overflow',
                                      'refused', 'store'}, 'drop reasons')
    eq(st['requests_total']['udp'], 4, 'stats requests_total.udp')
    eq(st['messages_published_total']['udp'], 2, 'stats messages_published_total.udp')
    sent = len(req) + 4 + 101 + 1 + 4 + len(sentinel[1])
    eq(st['bytes_received_total']['udp'], sent, 'stats bytes_received_total.udp')
    check(st['bytes_sent_total']['udp'] >= len(raw), 'stats bytes_sent_total.udp')
    u.close()
    gw.stop()


harness.main()
