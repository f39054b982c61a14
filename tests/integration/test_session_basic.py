#!/usr/bin/env python3
"""The TCP session front (docs/protocol.md), command by command: the
greeting, every command in text and JSON form, tags, verbs in any case, LF
and CRLF, blanks and empty lines, PUB stored before its ok and readable over
REST, HIST and CHANNELS as REST answers them, PING, QUIT, and replies in
command order when commands are pipelined."""

import sys
sys.dont_write_bytecode = True

import time

import harness
from harness import test, check, eq, check_message, check_hello, check_session_error, check_error, Session

shared = harness.Shared()

VERBS = ['HELP', 'PUB', 'SUB', 'UNSUB', 'HIST', 'CHANNELS', 'PING', 'PONG', 'QUIT']


def check_ok(r, op, tag=None):
    """r is {"type":"ok","op":op,...} (with tag when given)."""
    check(r.get('type') == 'ok', 'want an ok reply to %s, got %s' % (op, harness._short(r)))
    eq(list(r.keys())[:2], ['type', 'op'], 'first keys of the %s reply' % op)
    eq(r['op'], op, 'op of the reply')
    if tag is not None:
        eq(r.get('tag'), tag, 'tag echoed in the %s reply' % op)


def check_pong(r, token, tag=None):
    eq(r.get('type'), 'pong', 'reply type (%s)' % harness._short(r))
    eq(r.get('token'), token, 'pong token')
    t = r.get('time_us')
    check(type(t) is int, 'time_us is not an integer: %s' % harness._short(r))
    now = time.time() * 1e6
    check(abs(t - now) < 5e6, 'time_us %d is %.1fs away from this clock' % (t, (t - now) / 1e6))
    if tag is not None:
        eq(r.get('tag'), tag, 'tag echoed in the pong')


def pub_ok(s, channel, body, tag=None, **kw):
    """A JSON PUB that must succeed; returns the message of the reply."""
    obj = {'op': 'pub', 'channel': channel, 'body': body}
    obj.update(kw)
    if tag is not None:
        obj['tag'] = tag
    r = s.request_json(obj)
    check_ok(r, 'pub', tag)
    return r['message']


def rest_channel(gw, name):
    for c in gw.channels():
        if c['name'] == name:
            return c
    return None


# --------------------------------------------------------------------------
# The greeting

@test
def greeting_before_reading():
    """the greeting comes on connect, before the client sends a byte, with every field"""
    gw = shared.get()
    s = Session(gw, hello=False)
    raw = s.read_raw(timeout=10)  # connect + recv only: nothing was sent
    check(raw is not None, 'EOF instead of a greeting')
    check(not raw.endswith(b'\r'), 'greeting line ends with CRLF, want LF: %r' % raw[-20:])
    h = Session.parse(raw)
    check_hello(h, heartbeat=30)
    version = gw.get('/v1/version').json['version']
    eq(h['server'], 'visavis ' + version, 'server field vs GET /v1/version')
    eq(s.buf, b'', 'bytes after the greeting before any command')
    s.close()


@test
def greeting_session_ids_differ():
    """every session gets its own 16-hex-digit session id"""
    gw = shared.get()
    ids = set()
    for _ in range(20):
        with Session(gw) as s:
            check_hello(s.hello)
            ids.add(s.hello['session'])
    eq(len(ids), 20, 'distinct session ids over 20 sessions')


# --------------------------------------------------------------------------
# HELP

@test
def help_text_and_json():
    """HELP (any case) lists every command in words; {"op":"help"} lists their usage as JSON"""
    gw = shared.get()
    with Session(gw) as s:
        for line in ['HELP', 'help', 'Help']:
            r = s.request(line)
            eq(r['type'], 'help-text', 'HELP typed as text: words for a person')
            firsts = {w.split()[0].upper() for w in r['lines'] if w.split()}
            missing = [v for v in VERBS if v not in firsts]
            eq(missing, [], 'commands missing from the HELP words %s' % r['lines'])
            check(any(w.strip().startswith('PUB <channel>') for w in r['lines']),
                  'PUB usage: %s' % r['lines'])
        r = s.request_json({'op': 'help', 'tag': 'h1'})
        check_ok(r, 'help', 'h1')
        cmds = r.get('commands')
        check(isinstance(cmds, list) and cmds and all(isinstance(c, str) for c in cmds),
              'commands must be a list of strings: %s' % harness._short(r))
        firsts = {c.split()[0].rstrip(':').upper() for c in cmds if c.split()}
        eq([v for v in VERBS if v not in firsts], [], 'commands missing from the JSON HELP %s' % cmds)
        check(any(c.startswith('PUB <channel>') for c in cmds), 'PUB usage: %s' % cmds)


# --------------------------------------------------------------------------
# PUB

@test
def pub_text_committed_and_visible():
    """PUB answers ok with the stored message (via tcp, anonymous), readable by id and listed"""
    gw = shared.get()
    with Session(gw) as s:
        r = s.request('PUB sb-pub salut tout le monde')
        check_ok(r, 'pub')
        eq(list(r.keys()), ['type', 'op', 'message'], 'keys of the pub reply')
        m = r['message']
        check_message(m, channel='sb-pub', sender='anonymous', body='salut tout le monde', via='tcp')
        eq(list(m.keys()), harness.MESSAGE_KEYS, 'message keys in the reply')
        eq(m['seq'], 1, 'seq of the first message of the channel')
        # Stored before the ok: the very next REST reads see it.
        g = gw.get('/v1/messages/%d' % m['id'])
        eq(g.status, 200, 'GET /v1/messages/%d status (%s)' % (m['id'], g))
        eq(g.json, m, 'message read by id over REST')
        eq(gw.read('sb-pub')['messages'], [m], 'channel read over REST')
        c = rest_channel(gw, 'sb-pub')
        check(c is not None, 'sb-pub not in GET /v1/channels')
        eq((c['messages'], c['last_seq'], c['last_ts']), (1, 1, m['ts']), 'channel list entry')
        m2 = s.request('PUB sb-pub encore')['message']
        eq(m2['seq'], 2, 'seq of the second PUB')
        check(m2['id'] > m['id'], 'ids increase')


@test
def pub_text_body_byte_for_byte():
    """PUB keeps the text after the channel and its blanks byte for byte (inner/trailing blanks, tabs, CR, UTF-8)"""
    gw = shared.get()
    cases = [
        (b'PUB sb-text hello', 'hello'),
        (b'PUB sb-text    many   inner   spaces', 'many   inner   spaces'),
        (b'PUB sb-text \t \ttab\tinside\t', 'tab\tinside\t'),
        (b'PUB sb-text trailing blanks  \t ', 'trailing blanks  \t '),
        (b'PUB\tsb-text\ttabs as separators', 'tabs as separators'),
        (b'PUB sb-text lone\rcr inside', 'lone\rcr inside'),
        ('PUB sb-text h\u00e9llo \U0001F389 \u4f60\u597d'.encode('utf-8'), 'h\u00e9llo \U0001F389 \u4f60\u597d'),
        (b'PUB sb-text {"op":"quit"}', '{"op":"quit"}'),
        (b'PUB sb-text QUIT', 'QUIT'),
        (b'PUB sb-text back\\slash "quotes" \\n', 'back\\slash "quotes" \\n'),
        (b'PUB sb-text x', 'x'),
    ]
    with Session(gw) as s:
        for end in [b'\n', b'\r\n']:
            for line, want in cases:
                s.send(line + end)
                r = s.reply()
                check_ok(r, 'pub')
                eq(r['message']['body'], want, 'body of %r + %r' % (line, end))
                eq(gw.get('/v1/messages/%d' % r['message']['id']).json['body'], want,
                   'body read back over REST for %r' % line)


@test
def pub_json_form():
    """{"op":"pub"} stores any Unicode body (newlines, NUL), a sender, echoes the tag, ignores unknown fields"""
    gw = shared.get()
    with Session(gw) as s:
        bodies = ['two\nlines', 'nul\u0000inside', '', 'crlf\r\nin body\n', '\u0000',
                  'emoji \U0001F600 \u202e rtl', 'quote " backslash \\ slash /',
                  ''.join(chr(c) for c in range(1, 32)), 'long ' * 2000]
        for i, body in enumerate(bodies):
            m = pub_ok(s, 'sb-json', body, tag='p%d' % i, sender='ana')
            check_message(m, channel='sb-json', sender='ana', body=body, via='tcp')
            eq(gw.get('/v1/messages/%d' % m['id']).json, m, 'message %d read back by id' % i)
        m = pub_ok(s, 'sb-json', 'no sender')
        eq(m['sender'], 'anonymous', 'default sender of the JSON form')
        m = pub_ok(s, 'sb-json', 'extra', sender='\u00e9' * 64, id=5, seq=9, via='rest', x=[1, {}])
        check_message(m, channel='sb-json', sender='\u00e9' * 64, body='extra', via='tcp')
        check(m['seq'] == len(bodies) + 2, 'seq assigned by the server: %s' % m)
        eq(len(gw.read_all('sb-json')), len(bodies) + 2, 'messages stored on sb-json')



@test
def pub_ok_survives_kill9():
    """every PUB answered ok is in the store after kill -9 and a restart"""
    gw = harness.Gateway()
    with Session(gw) as s:
        s.send(''.join('PUB sb-crash c%d\n' % i for i in range(50)))
        acked = [s.reply()['message'] for _ in range(50)]
        gw.kill9()
    gw.restart()
    eq(gw.read_all('sb-crash'), acked, 'messages stored after kill -9 vs the ok replies')

# --------------------------------------------------------------------------
# Verbs, line ends, blanks, empty lines

@test
def verbs_case_insensitive():
    """verbs are case-insensitive: pub, Pub, sUb, hist, Channels, ping, unsub, help, quit"""
    gw = shared.get()
    with Session(gw) as s:
        check_ok(s.request('pub sb-case one'), 'pub')
        check_ok(s.request('Pub sb-case two'), 'pub')
        check_ok(s.request('pUB sb-case three'), 'pub')
        r = s.request('sUb sb-case 3')
        check_ok(r, 'sub')
        eq((r['channel'], r['since'], r['top']), ('sb-case', 3, 3), 'sub reply')
        check_ok(s.request('UnSuB sb-case'), 'unsub')
        r = s.request('hist sb-case')
        check_ok(r, 'hist')
        eq([m['body'] for m in r['messages']], ['one', 'two', 'three'], 'hist bodies')
        check_ok(s.request('Channels'), 'channels')
        eq(s.request('hElP')['type'], 'help-text', 'hElP')
        check_pong(s.request('ping lower'), 'lower')
        s.cmd('pong')
        check_pong(s.request('PiNg mixed'), 'mixed')
        r = s.request('Quit')
        eq(r, {'type': 'bye', 'reason': 'quit'}, 'reply to Quit')
        eq(s.until_eof(), [], 'lines after bye')


@test
def crlf_and_lf():
    """LF and CRLF line ends give the same commands (the CR is never part of an argument)"""
    gw = shared.get()
    with Session(gw) as s:
        for end in ['\n', '\r\n']:
            s.cmd('PING tok', end=end)
            check_pong(s.reply(), 'tok')
            s.cmd('PUB sb-crlf body', end=end)
            eq(s.reply()['message']['body'], 'body', 'PUB body with %r' % end)
            s.cmd('SUB sb-crlf 0', end=end)
            r = s.reply()
            check_ok(r, 'sub')
            eq((r['channel'], r['since']), ('sb-crlf', 0), 'sub reply with %r' % end)
            s.cmd('HIST sb-crlf 0 1', end=end)
            r = s.reply()
            check_ok(r, 'hist')
            eq(len(r['messages']), 1, 'HIST limit 1 with %r' % end)
            s.cmd('UNSUB sb-crlf', end=end)
            check_ok(s.reply(), 'unsub')
            s.send_json({'op': 'ping', 'token': 'j'}, end=end)
            check_pong(s.reply(), 'j')
        s.pushes.clear()
        # A mix in one write.
        s.send(b'PING a\r\nPING b\nPING c\r\n')
        eq([s.reply()['token'] for _ in range(3)], ['a', 'b', 'c'], 'tokens of a mixed-ending write')


@test
def blanks_separate_arguments():
    """spaces and tabs, one or many, separate arguments"""
    gw = shared.get()
    with Session(gw) as s:
        for i in range(5):
            s.request('PUB sb-blank m%d' % i)
        for line in ['HIST sb-blank 1 2', 'HIST\tsb-blank\t1\t2', 'HIST   sb-blank  \t 1 \t\t 2',
                     'hist \t sb-blank \t 1 \t 2']:
            r = s.request(line)
            check_ok(r, 'hist')
            eq([m['seq'] for m in r['messages']], [2, 3], 'seqs of %r' % line)
            eq(r['next_since'], 3, 'next_since of %r' % line)
        for line in ['SUB  sb-blank  5', 'SUB\tsb-blank\t5']:
            r = s.request(line)
            check_ok(r, 'sub')
            eq((r['channel'], r['since']), ('sb-blank', 5), 'sub reply of %r' % line)
        check_pong(s.request('PING\tt1'), 't1')
        check_pong(s.request('PING    t2'), 't2')


@test
def empty_and_blank_lines_ignored():
    """empty lines (LF, CRLF) and lines of only blanks get no reply at all"""
    gw = shared.get()
    with Session(gw) as s:
        s.send(b'\n\r\n\n\n')
        s.send(b'   \n\t\n \t \r\n')
        s.cmd('PING first')
        r = s.reply()
        check_pong(r, 'first')
        s.send(b'\n' * 100 + b'PING second\n' + b'\r\n' * 100 + b'PING third\n')
        check_pong(s.reply(), 'second')
        check_pong(s.reply(), 'third')
        eq(s.collect(0.3), [], 'lines after the pongs (an empty line was answered?)')


# --------------------------------------------------------------------------
# Tags

@test
def tags_echoed_in_every_reply():
    """the tag of a JSON command is echoed in its reply: ok, pong, error, bye"""
    gw = shared.get()
    with Session(gw) as s:
        check_ok(s.request_json({'op': 'pub', 'channel': 'sb-tag', 'body': 'b', 'tag': 't-pub'}),
                 'pub', 't-pub')
        check_ok(s.request_json({'op': 'sub', 'channel': 'sb-tag', 'since': 0, 'tag': 't-sub'}),
                 'sub', 't-sub')
        check_ok(s.request_json({'op': 'hist', 'channel': 'sb-tag', 'tag': 't-hist'}), 'hist', 't-hist')
        check_ok(s.request_json({'op': 'channels', 'tag': 't-ch'}), 'channels', 't-ch')
        check_ok(s.request_json({'op': 'help', 'tag': 't-help'}), 'help', 't-help')
        check_ok(s.request_json({'op': 'unsub', 'channel': 'sb-tag', 'tag': 't-unsub'}),
                 'unsub', 't-unsub')
        check_pong(s.request_json({'op': 'ping', 'token': 'x', 'tag': 't-ping'}), 'x', 't-ping')
        weird = 'tag \u00e9 "quoted" \\ \U0001F600'
        check_pong(s.request_json({'op': 'ping', 'tag': weird}), '', weird)
        long_tag = 't' * 128
        check_pong(s.request_json({'op': 'ping', 'tag': long_tag}), '', long_tag)
        # Errors carry the tag (and the op), text commands carry none.
        r = s.request_json({'op': 'unsub', 'channel': 'sb-tag', 'tag': 't-err'})
        check_session_error(r, 'not_subscribed', op='unsub', tag='t-err')
        r = s.request_json({'op': 'pub', 'channel': 'no/such', 'body': 'x', 'tag': 't-err2'})
        check_session_error(r, 'invalid_channel', op='pub', tag='t-err2')
        r = s.request('UNSUB sb-tag')
        check_session_error(r, 'not_subscribed', op='unsub', tag=False)
        # pushes are not replies: no tag
        s.pushes.clear()
        check_ok(s.request_json({'op': 'sub', 'channel': 'sb-tag', 'since': 0, 'tag': 'again'}),
                 'sub', 'again')
        p = s.push()
        check('tag' not in p, 'a push carries a tag: %s' % p)
        r = s.request_json({'op': 'quit', 'tag': 't-quit'})
        eq(r.get('type'), 'bye', 'reply to quit: %s' % r)
        eq(r.get('reason'), 'quit', 'bye reason')
        eq(r.get('tag'), 't-quit', 'tag echoed in the bye (the reply to quit)')


# --------------------------------------------------------------------------
# PING, PONG

@test
def ping_pong():
    """PING answers pong with its token (empty without one) and the server clock in µs"""
    gw = shared.get()
    with Session(gw) as s:
        r = s.request('PING')
        check_pong(r, '')
        eq(list(r.keys()), ['type', 'token', 'time_us'], 'pong keys')
        check_pong(s.request('PING tok-1.\u00e9'), 'tok-1.\u00e9')
        check_pong(s.request_json({'op': 'ping', 'token': 't1'}), 't1')
        check_pong(s.request_json({'op': 'ping'}), '')
        t1 = s.request('PING')['time_us']
        t2 = s.request('PING')['time_us']
        check(t2 >= t1, 'time_us went back: %d then %d' % (t1, t2))


@test
def pong_gets_no_reply():
    """PONG (text or JSON) is answered by nothing"""
    gw = shared.get()
    with Session(gw) as s:
        s.cmd('PONG')
        s.send_json({'op': 'pong'})
        s.send_json({'op': 'pong', 'tag': 'pt'})
        s.cmd('pong')
        check_pong(s.request('PING after'), 'after')
        eq(s.collect(0.3), [], 'lines after the pong')


# --------------------------------------------------------------------------
# HIST, CHANNELS

@test
def hist_matches_rest():
    """HIST (text and JSON) answers what GET /v1/channels/{ch}/messages answers"""
    gw = shared.get()
    for i in range(7):
        gw.publish('sb-hist', 'h%d' % i, sender='s%d' % i)
    with Session(gw) as s:
        s.request('PUB sb-hist from tcp')
        for args, q in [('', {}), ('0', {'since': 0}), ('3', {'since': 3}), ('3 2', {'since': 3, 'limit': 2}),
                        ('0 1000', {'since': 0, 'limit': 1000}), ('8', {'since': 8}), ('0 0', {'since': 0, 'limit': 0})]:
            env = gw.read('sb-hist', **q)
            r = s.request(('HIST sb-hist ' + args).strip())
            check_ok(r, 'hist')
            more = env['next_since'] < 8  # the channel's top
            eq(env.get('more', False), more, 'REST more for %s' % q)
            eq(list(r.keys()), ['type', 'op', 'channel', 'messages', 'next_since'] + (['more'] if more else []),
               'hist reply keys')
            eq(r['channel'], 'sb-hist', 'channel of the HIST reply')
            eq(r['messages'], env['messages'], 'HIST sb-hist %s vs REST' % args)
            eq(r['next_since'], env['next_since'], 'next_since of HIST sb-hist %s' % args)
            eq(r.get('more', False), more, 'more of HIST sb-hist %s' % args)
            obj = {'op': 'hist', 'channel': 'sb-hist', 'tag': 'hj'}
            obj.update(q)
            rj = s.request_json(obj)
            check_ok(rj, 'hist', 'hj')
            eq(rj['messages'], env['messages'], 'JSON hist %s vs REST' % q)
            eq(rj['next_since'], env['next_since'], 'JSON hist next_since %s' % q)
            eq(rj.get('more', False), more, 'JSON hist more %s' % q)
        # past the top: the same refusal on both
        check_error(gw.get('/v1/channels/sb-hist/messages?since=20'), 400, 'invalid_cursor', 'GET since=20')
        check_session_error(s.request('HIST sb-hist 20'), 'invalid_cursor', op='hist')
        check_session_error(s.request_json({'op': 'hist', 'channel': 'sb-hist', 'since': 20, 'tag': 'hc'}),
                            'invalid_cursor', op='hist', tag='hc')
        eq([m['via'] for m in s.request('HIST sb-hist')['messages']], ['rest'] * 7 + ['tcp'], 'via')
        r = s.request('HIST sb-hist-none')
        check_ok(r, 'hist')
        eq((r['messages'], r['next_since']), ([], 0), 'HIST of a channel with no messages')


@test
def hist_default_limit():
    """HIST without a limit returns 100 messages, like REST"""
    gw = shared.get()
    conn = gw.connect()
    for i in range(120):
        gw.publish('sb-hist-lim', 'm%d' % i, conn=conn)
    conn.close()
    with Session(gw) as s:
        r = s.request('HIST sb-hist-lim')
        eq([m['seq'] for m in r['messages']], list(range(1, 101)), 'seqs of HIST without limit')
        eq(r['next_since'], 100, 'next_since')
        r = s.request('HIST sb-hist-lim 100')
        eq([m['seq'] for m in r['messages']], list(range(101, 121)), 'seqs of the second page')
        eq(r['messages'], gw.read('sb-hist-lim', since=100)['messages'], 'second page vs REST')


@test
def channels_matches_rest():
    """CHANNELS (text and JSON) answers what GET /v1/channels answers"""
    gw = shared.get()
    gw.publish('sb-chan-a', 'x')
    with Session(gw) as s:
        s.request('PUB sb-chan-b y')
        s.request('PUB sb-chan-b z')
        rest = gw.channels()
        check(len(rest) < 1000, 'the channels fit one page: %d' % len(rest))
        r = s.request('CHANNELS')
        check_ok(r, 'channels')
        eq(list(r.keys()), ['type', 'op', 'channels'], 'channels reply keys')
        eq(r['channels'], rest, 'CHANNELS vs GET /v1/channels')
        names = [c['name'] for c in r['channels']]
        check('sb-chan-a' in names and 'sb-chan-b' in names, 'new channels listed: %s' % names)
        for c in r['channels']:
            eq(list(c.keys()), ['name', 'messages', 'last_seq', 'last_ts'], 'keys of a channel entry')
        rj = s.request_json({'op': 'channels', 'tag': 'c'})
        check_ok(rj, 'channels', 'c')
        eq(rj['channels'], rest, 'JSON channels vs REST')


# --------------------------------------------------------------------------
# QUIT

@test
def quit_says_bye_and_closes():
    """QUIT answers bye (reason quit) and the server closes; later commands in the same write are not answered"""
    gw = shared.get()
    with Session(gw) as s:
        r = s.request('QUIT')
        eq(r, {'type': 'bye', 'reason': 'quit'}, 'reply to QUIT')
        eq(s.until_eof(timeout=10), [], 'lines between bye and EOF')
    with Session(gw) as s:
        s.send(b'PING one\r\nQUIT\r\nPING two\r\n')
        check_pong(s.reply(), 'one')
        eq(s.reply(), {'type': 'bye', 'reason': 'quit'}, 'reply to QUIT')
        eq(s.until_eof(timeout=10), [], 'lines after bye (the PING after QUIT was answered)')
    with Session(gw) as s:
        r = s.request_json({'op': 'quit'})
        eq((r.get('type'), r.get('reason')), ('bye', 'quit'), 'reply to the JSON quit')
        eq(s.until_eof(timeout=10), [], 'lines after bye')
    with Session(gw) as s:  # the gateway still takes sessions
        check_pong(s.request('PING still'), 'still')


# --------------------------------------------------------------------------
# Pipelining

@test
def pipelined_pubs_then_ping():
    """50 PUBs and a PING in one write: 50 ok in order (seq 1..50), the pong last"""
    gw = shared.get()
    with Session(gw) as s:
        s.send(''.join('PUB sb-pipe m%d\n' % i for i in range(50)) + 'PING last\n')
        replies = [s.reply() for _ in range(51)]
        for i, r in enumerate(replies[:50]):
            check(r.get('type') == 'ok' and r.get('op') == 'pub',
                  'reply %d is not a pub ok: %s' % (i, harness._short(r)))
        eq([r['message']['body'] for r in replies[:50]], ['m%d' % i for i in range(50)], 'bodies in order')
        eq([r['message']['seq'] for r in replies[:50]], list(range(1, 51)), 'seqs in order')
        check_pong(replies[50], 'last')
        eq(s.collect(0.3), [], 'lines after the pong')
        eq([m['body'] for m in gw.read_all('sb-pipe')], ['m%d' % i for i in range(50)], 'stored bodies')


@test
def pipelined_mixed_commands():
    """every kind of command pipelined in one write: replies in command order"""
    gw = shared.get()
    lines = ['PUB sb-mix a', 'PING 1', 'HIST sb-mix', 'PUB sb-mix b',
             '{"op":"pub","channel":"sb-mix","body":"c","tag":"j"}', 'CHANNELS', 'PING 2',
             'SUB sb-mix', 'UNSUB sb-mix', '{"op":"ping","token":"3"}', 'HELP', 'PUB bad/ch x',
             'UNSUB sb-mix', 'PONG', '', 'PING 4', 'PUB sb-mix d', 'PING 5']
    want = [('ok', 'pub'), ('pong', '1'), ('ok', 'hist'), ('ok', 'pub'), ('ok', 'pub'), ('ok', 'channels'),
            ('pong', '2'), ('ok', 'sub'), ('ok', 'unsub'), ('pong', '3'), ('help-text', None),
            ('error', 'invalid_channel'), ('error', 'not_subscribed'), ('pong', '4'), ('ok', 'pub'),
            ('pong', '5')]
    with Session(gw) as s:
        s.send('\n'.join(lines) + '\n')
        got = []
        for _ in want:
            r = s.reply()
            key = {'ok': 'op', 'pong': 'token', 'error': 'code'}.get(r['type'])
            got.append((r['type'], r.get(key)))
            if r['type'] == 'ok' and r['op'] == 'pub':
                got[-1] = ('ok', 'pub')
                check(r['message']['body'] in 'abcd', 'pub body %s' % r)
        eq(got, want, 'replies to the pipelined commands')
        eq(s.collect(0.3), [], 'lines after the last reply')
        eq([m['body'] for m in gw.read_all('sb-mix')], ['a', 'b', 'c', 'd'], 'stored bodies')


@test
def pipelined_pings_many():
    """500 PINGs in one write: 500 pongs, tokens in order"""
    gw = shared.get()
    with Session(gw) as s:
        s.send(''.join('PING t%d\n' % i for i in range(500)))
        toks = [s.reply()['token'] for _ in range(500)]
        eq(toks, ['t%d' % i for i in range(500)], 'tokens')


@test
def pipelined_pubs_two_sessions():
    """two sessions pipelining PUBs on one channel: each gets its own replies in order, seqs unique"""
    gw = shared.get()
    a, b = Session(gw), Session(gw)
    a.send(''.join('PUB sb-two a%d\n' % i for i in range(100)) + 'PING a\n')
    b.send(''.join('PUB sb-two b%d\n' % i for i in range(100)) + 'PING b\n')
    ra = [a.reply() for _ in range(101)]
    rb = [b.reply() for _ in range(101)]
    eq([r['message']['body'] for r in ra[:100]], ['a%d' % i for i in range(100)], 'session a bodies')
    eq([r['message']['body'] for r in rb[:100]], ['b%d' % i for i in range(100)], 'session b bodies')
    check_pong(ra[100], 'a')
    check_pong(rb[100], 'b')
    sa = [r['message']['seq'] for r in ra[:100]]
    sb = [r['message']['seq'] for r in rb[:100]]
    eq(sa, sorted(sa), 'session a seqs increase')
    eq(sb, sorted(sb), 'session b seqs increase')
    eq(sorted(sa + sb), list(range(1, 201)), 'seqs of both sessions')
    a.close()
    b.close()


@test
def forty_subscriptions():
    """40 SUBs (past the 16 a session walks): each channel pushed once, UNSUB and SUB again find the right one"""
    gw = shared.get()
    names = ['sb-many%d' % i for i in range(40)]
    with Session(gw) as s:
        for n in names:
            eq(s.request('SUB %s' % n)['type'], 'ok', 'SUB %s' % n)
        for n in names:
            gw.publish(n, 'to ' + n)
        got = s.messages(40)
        eq(sorted((m['channel'], m['body']) for m in got), sorted((n, 'to ' + n) for n in names),
           'one push per channel')
        eq(s.request('UNSUB sb-many5')['type'], 'ok', 'UNSUB sb-many5')
        check_session_error(s.request('UNSUB sb-many5'), 'not_subscribed', op='unsub')
        r = s.request('SUB sb-many7 0')
        eq((r['type'], r['since']), ('ok', 0), 'SUB sb-many7 again, from 0')
        eq([(m['channel'], m['seq']) for m in s.messages(1)], [('sb-many7', 1)], 'its replay')
        gw.publish('sb-many5', 'unsubscribed')
        gw.publish('sb-many7', 'again')
        gw.publish('sb-many39', 'last')
        got = s.messages(2)
        eq([(m['channel'], m['body']) for m in got], [('sb-many7', 'again'), ('sb-many39', 'last')],
           'sb-many7 once (the new subscription only), sb-many5 not at all')
        eq(s.request('PING x')['type'], 'pong', 'PING')
        eq(list(s.pushes), [], 'nothing else came before the pong')


harness.main()
