#!/usr/bin/env python3
"""Bad input on the TCP session front (docs/protocol.md, "Errors"): every
malformed command gets one error line with the right code (and its op and tag
when known), nothing is stored, and the session goes on; the errors that close
a session (too_many_errors, line_too_long, too_many_sessions) close it after
their line; subscription limits."""

import sys
sys.dont_write_bytecode = True

import json
import random

import harness
from harness import test, check, eq, check_session_error, Session

MAX_LINE = 4096
MAX_BODY = 1000
MAX_SUBS = 3
shared = harness.Shared(args=['--max-line', str(MAX_LINE), '--max-body', str(MAX_BODY),
                              '--max-subs', str(MAX_SUBS)])

NOSTORE = 'e-nostore'  # every failing PUB with a valid channel name targets this one


def pong(s, token):
    r = s.request('PING %s' % token)
    eq((r.get('type'), r.get('token')), ('pong', token),
       'PING after the error: the session goes on (%s)' % harness._short(r))


def channel_names(gw):
    return [c['name'] for c in gw.channels()]


def nothing_stored(gw, before):
    after = gw.channels()
    eq(after, before, 'GET /v1/channels after the failed command: nothing stored')
    check(NOSTORE not in [c['name'] for c in after], '%s was created by a failed command' % NOSTORE)


# --------------------------------------------------------------------------
# One bad line -> one error, the session goes on, nothing stored.
# (line, acceptable codes, op or None, tag or None/False)

UC, MA, IC, IP, IU, IJ, IF = ('unknown_command', 'missing_argument', 'invalid_channel',
                              'invalid_parameter', 'invalid_utf8', 'invalid_json', 'invalid_field')
# Where protocol.md names no code for a JSON-form mistake, the REST code of
# the same mistake (api.md) or the session's own are both taken.
MISSING = (MA, 'missing_field')
NUMBER = (IP, IF)
# The whole line is checked for UTF-8 first: the op may be unknown then.
PUB_OR_NONE = ('pub', None)

CASES = [
    # unknown verbs
    (b'FOO', UC, None, False),
    (b'FOO bar baz', UC, None, False),
    (b'PUBLISH e-nostore x', UC, None, False),
    (b'SUBS e-x', UC, None, False),
    (b'[1,2,3]', UC, None, False),
    (b'"PING"', UC, None, False),
    # missing arguments
    (b'PUB', MA, 'pub', False),
    (b'PUB e-nostore', MA, 'pub', False),
    (b'pub\te-nostore', MA, 'pub', False),
    (b'SUB', MA, 'sub', False),
    (b'UNSUB', MA, 'unsub', False),
    (b'HIST', MA, 'hist', False),
    # bad channel names
    (b'PUB bad/name x', IC, 'pub', False),
    (b'PUB ' + b'a' * 65 + b' x', IC, 'pub', False),
    (b'PUB b@d x', IC, 'pub', False),
    ('PUB \u00e9t\u00e9 x'.encode('utf-8'), IC, 'pub', False),
    (b'PUB . x', IC, 'pub', False),
    (b'PUB .. x', IC, 'pub', False),
    (b'{"op":"pub","channel":"..","body":"x"}', IC, 'pub', None),
    (b'SUB b@d', IC, 'sub', False),
    (b'SUB ' + b'z' * 65 + b' 0', IC, 'sub', False),
    (b'HIST bad! 0', IC, 'hist', False),
    (b'UNSUB bad:x', IC, 'unsub', False),
    (b'UNSUB ' + b'u' * 65, IC, 'unsub', False),
    ('UNSUB caf\u00e9'.encode('utf-8'), IC, 'unsub', False),
    # bad numbers
    (b'SUB e-x -1', IP, 'sub', False),
    (b'SUB e-x abc', IP, 'sub', False),
    (b'SUB e-x 1.5', IP, 'sub', False),
    (b'SUB e-x 0x10', IP, 'sub', False),
    (b'SUB e-x 99999999999999999999999', (IP, 'invalid_cursor'), 'sub', False),
    (b'HIST e-x abc', IP, 'hist', False),
    (b'HIST e-x 0 1001', IP, 'hist', False),
    (b'HIST e-x 0 -1', IP, 'hist', False),
    (b'HIST e-x 0 ten', IP, 'hist', False),
    # not subscribed
    (b'UNSUB e-never', 'not_subscribed', 'unsub', False),
    # invalid UTF-8 in the text form
    (b'PUB e-nostore \xff\xfe', IU, PUB_OR_NONE, False),
    (b'PUB e-nostore ok \xed\xa0\x80', IU, PUB_OR_NONE, False),      # an encoded surrogate
    (b'PUB e-nostore \xc0\xaf', IU, PUB_OR_NONE, False),             # overlong '/'
    (b'PUB e-nostore trunc \xe2\x82', IU, PUB_OR_NONE, False),       # truncated sequence
    (b'PUB e-nostore \xf8\x88\x80\x80\x80', IU, PUB_OR_NONE, False),  # 5-byte form
    (b'\xc3\x28 x', (IU, UC), None, False),
    # malformed JSON
    (b'{', IJ, None, False),
    (b'{"op":"ping"', IJ, None, False),
    (b'{"op":"ping"}}', IJ, None, False),
    (b'{"op":"ping"} x', IJ, None, False),
    (b'{op:ping}', IJ, None, False),
    (b"{'op':'ping'}", IJ, None, False),
    (b'{"op":"pub","channel":"e-nostore","body":"a\\ud800b"}', (IJ, IU), None, None),
    (b'{"op":"pub","channel":"e-nostore","body":"\xff"}', (IU, IJ), None, None),
    (b'{"op":"pub","channel":"e-nostore","body":"x",}', IJ, None, None),
    # JSON form: unknown op, missing fields, wrong types
    (b'{"op":"nope","tag":"t1"}', UC, None, 't1'),
    (b'{"op":"PUBLISH"}', UC, None, None),
    (b'{"op":5}', (UC, IF), None, None),
    (b'{"op":null}', (UC, IF), None, None),
    (b'{"channel":"e-nostore","body":"x","tag":"t2"}', (UC,) + MISSING, None, 't2'),
    (b'{}', (UC,) + MISSING, None, None),
    (b'{"op":"pub","channel":"e-nostore","tag":"t3"}', MISSING, 'pub', 't3'),
    (b'{"op":"pub","body":"x"}', MISSING, 'pub', None),
    (b'{"op":"sub"}', MISSING, 'sub', None),
    (b'{"op":"unsub"}', MISSING, 'unsub', None),
    (b'{"op":"hist"}', MISSING, 'hist', None),
    (b'{"op":"pub","channel":"e-nostore","body":5,"tag":"t4"}', IF, 'pub', 't4'),
    (b'{"op":"pub","channel":"e-nostore","body":null}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":["x"]}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":"x","sender":""}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":"x","sender":"' + b's' * 129 + b'"}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":"x","sender":5}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":"x","sender":"a\\nb"}', IF, 'pub', None),
    (b'{"op":"pub","channel":"e-nostore","body":"x","sender":"a\\u009bb"}', IF, 'pub', None),
    ('{"op":"pub","channel":"e-nostore","body":"x","sender":"a\u0085b"}'.encode(), IF, 'pub', None),
    (b'{"op":"pub","channel":7,"body":"x"}', (IC, IF), 'pub', None),
    (b'{"op":"pub","channel":"bad/c","body":"x","tag":"t5"}', IC, 'pub', 't5'),
    (b'{"op":"pub","channel":"","body":"x"}', IC, 'pub', None),
    (b'{"op":"sub","channel":"e-x","since":"3"}', NUMBER, 'sub', None),
    (b'{"op":"sub","channel":"e-x","since":-1,"tag":"t6"}', NUMBER, 'sub', 't6'),
    (b'{"op":"sub","channel":"e-x","since":1.5}', NUMBER, 'sub', None),
    (b'{"op":"sub","channel":"e-x","since":true}', NUMBER, 'sub', None),
    (b'{"op":"hist","channel":"e-x","limit":1001}', IP, 'hist', None),
    (b'{"op":"hist","channel":"e-x","limit":"5"}', NUMBER, 'hist', None),
    (b'{"op":"hist","channel":"e-x","since":-3}', NUMBER, 'hist', None),
    (b'{"op":"ping","token":5}', (IF, IP), 'ping', None),
    (b'{"op":"ping","tag":5}', (IF, IP), None, None),
    (b'{"op":"ping","tag":"' + b't' * 129 + b'"}', (IF, IP), None, None),
    (b'{"op":"unsub","channel":"e-never","tag":"t7"}', 'not_subscribed', 'unsub', 't7'),
    # bodies over --max-body
    (b'PUB e-nostore ' + b'b' * (3 * MAX_BODY), 'body_too_large', 'pub', False),
    (b'{"op":"pub","channel":"e-nostore","body":"' + b'b' * (3 * MAX_BODY) + b'","tag":"t8"}',
     'body_too_large', 'pub', 't8'),
]


def run_case(line, codes, op, tag):
    gw = shared.get()
    before = gw.channels()
    with Session(gw) as s:
        for end in (b'\n', b'\r\n'):
            s.send(line + end)
            r = s.reply()
            check_session_error(r, codes if isinstance(codes, tuple) else (codes,), op=op, tag=tag,
                                what='reply to %r' % harness._short(line, 120))
            pong(s, 'after')
    nothing_stored(gw, before)


for _line, _codes, _op, _tag in CASES:
    harness.add_test('bad line %s -> %s, the session goes on, nothing stored'
                     % (harness._short(_line, 70), '/'.join(_codes) if isinstance(_codes, tuple) else _codes),
                     run_case, _line, _codes, _op, _tag)


@test
def body_under_the_limit_accepted():
    """a PUB body well under --max-body is stored (text and JSON form)"""
    gw = shared.get()
    with Session(gw) as s:
        r = s.request('PUB e-small ' + 'b' * (MAX_BODY // 2))
        eq(r.get('type'), 'ok', 'reply to a PUB of %d bytes: %s' % (MAX_BODY // 2, harness._short(r)))
        r = s.request_json({'op': 'pub', 'channel': 'e-small', 'body': 'c' * (MAX_BODY // 2)})
        eq(r.get('type'), 'ok', 'reply to a JSON PUB of %d bytes: %s' % (MAX_BODY // 2, harness._short(r)))


@test
def binary_garbage():
    """300 lines of random bytes, each followed by a PING, in one write: an error per line, every pong, nothing stored"""
    gw = shared.get()
    before = gw.channels()
    rnd = random.Random(20261124)
    starts = bytes(range(0x80, 0x100)) + b'!#$%&()*+,-./0123456789:;<=>?@[]^_`|~{'
    data = []
    for i in range(300):
        n = rnd.randint(1, 300)
        body = bytes(b for b in rnd.randbytes(n) if b != 0x0a)
        data.append(bytes([rnd.choice(starts)]) + body + b'\n' + b'PING g%d\n' % i)
    with Session(gw) as s:
        s.send(b''.join(data))
        for i in range(300):
            r = s.reply()
            check_session_error(r, (UC, IU, IJ), what='reply to garbage line %d %r' % (i, data[i][:60]))
            p = s.reply()
            eq((p.get('type'), p.get('token')), ('pong', 'g%d' % i), 'reply to the PING after garbage line %d' % i)
        pong(s, 'end')
    nothing_stored(gw, before)


# --------------------------------------------------------------------------
# too_many_errors

def read_to_close(s):
    lines = s.until_eof(timeout=15)
    check(lines, 'the session closed without a too_many_errors line')
    return lines


def check_closed_for_errors(lines, bad):
    """lines end with too_many_errors; before it, the errors of the bad lines
    (the 10th may be answered by too_many_errors itself or by its own error
    first)."""
    check_session_error(lines[-1], 'too_many_errors', what='last line before the close')
    for r in lines[:-1]:
        check_session_error(r, tuple(set(bad)) + ('too_many_errors',), what='line before the close')
    check(len(lines) - 1 in (9, 10), '%d error lines before too_many_errors, want 9 or 10: %s'
          % (len(lines) - 1, [x.get('code') for x in lines]))


@test
def ten_errors_close():
    """10 consecutive errors: too_many_errors, then the server closes; a command after them is not answered"""
    gw = shared.get()
    with Session(gw) as s:
        s.send(b'FOO\n' * 10 + b'PING late\n')
        lines = read_to_close(s)
        check_closed_for_errors(lines, [UC])
    with Session(gw) as s:  # others go on
        pong(s, 'new')


@test
def nine_errors_then_success_resets():
    """9 errors, a PING (success) and 9 more errors leave the session open; the count starts over"""
    gw = shared.get()
    with Session(gw) as s:
        for round_ in range(3):
            s.send(b'FOO\n' * 9)
            for _ in range(9):
                check_session_error(s.reply(), UC)
            pong(s, 'r%d' % round_)
        s.send(b'SUB\n' * 9 + b'PUB e-reset ok\n' + b'{\n' * 9 + b'CHANNELS\n')
        for _ in range(9):
            check_session_error(s.reply(), MA)
        eq(s.reply().get('type'), 'ok', 'the PUB after 9 errors')
        for _ in range(9):
            check_session_error(s.reply(), IJ)
        eq(s.reply().get('op'), 'channels', 'the CHANNELS after 9 more errors')
        s.send(b'FOO\n' * 10)
        check_closed_for_errors(read_to_close(s), [UC])


@test
def empty_lines_do_not_reset_errors():
    """empty lines count as nothing: 5 errors, empty lines, 5 errors close the session"""
    gw = shared.get()
    with Session(gw) as s:
        s.send(b'FOO\n' * 5 + b'\n\r\n\n' + b'{"op":"nope"}\n' * 2 + b'\n' + b'SUB\n' * 3)
        check_closed_for_errors(read_to_close(s), [UC, MA])


# --------------------------------------------------------------------------
# line_too_long

@test
def line_at_max_line_accepted():
    """a line of exactly --max-line bytes (without LF or CRLF) is a command"""
    gw = shared.get()
    with Session(gw) as s:
        for end in (b'\n', b'\r\n'):
            head = b'{"op":"ping","token":"full","pad":"'
            tail = b'"}'
            line = head + b'p' * (MAX_LINE - len(head) - len(tail)) + tail
            eq(len(line), MAX_LINE, 'test data size')
            s.send(line + end)
            r = s.reply()
            eq((r.get('type'), r.get('token')), ('pong', 'full'), 'reply to a %d-byte line + %r' % (MAX_LINE, end))


@test
def line_over_the_input_buffer_at_a_large_max_line():
    """--max-line 4 MiB: a PUB line of 3 MB (more than the 256 KiB the front holds for a
    session by default) is read whole and stored, and the session goes on"""
    gw = harness.Gateway(args=['--max-line', str(4 << 20), '--max-body', str(4 << 20)])
    with Session(gw) as s:
        body = 'b' * (3 << 20)
        s.send(b'PUB e-bigline ' + body.encode() + b'\n')
        r = s.reply(timeout=30)
        eq((r.get('type'), r.get('op')), ('ok', 'pub'), 'the reply to a 3 MB PUB (%s)' % str(r)[:200])
        pong(s, 'after')
    eq(gw.read('e-bigline')['messages'][0]['body'], body, 'stored whole')
    gw.stop()


@test
def line_over_max_line_closes():
    """a line of --max-line + 1 bytes: line_too_long, then the server closes; nothing stored"""
    gw = shared.get()
    before = gw.channels()
    with Session(gw) as s:
        pong(s, 'before')
        line = b'PUB e-nostore ' + b'L' * (MAX_LINE + 1 - len(b'PUB e-nostore '))
        eq(len(line), MAX_LINE + 1, 'test data size')
        s.send(line + b'\nPING late\n')
        lines = s.until_eof(timeout=15)
        eq([x.get('code') for x in lines], ['line_too_long'], 'lines up to the close')
        check_session_error(lines[0], 'line_too_long')
    nothing_stored(gw, before)
    with Session(gw) as s:
        pong(s, 'other')


@test
def line_without_end_closes():
    """--max-line + 100 bytes and no line end yet: line_too_long and close without waiting for the end"""
    gw = shared.get()
    with Session(gw) as s:
        try:
            s.send(b'x' * (MAX_LINE + 100))
        except OSError:
            pass
        lines = s.until_eof(timeout=15)
        eq([x.get('code') for x in lines], ['line_too_long'], 'lines up to the close')


# --------------------------------------------------------------------------
# Limits on subscriptions and sessions

@test
def too_many_subscriptions():
    """past --max-subs SUB is too_many_subscriptions and subscribes nothing (a bad name is still invalid_channel); re-SUB and UNSUB+SUB work"""
    gw = shared.get()
    with Session(gw) as s:
        for i in range(MAX_SUBS):
            eq(s.request('SUB e-s%d' % i).get('type'), 'ok', 'SUB e-s%d' % i)
        check_session_error(s.request('SUB e-s%d' % MAX_SUBS), 'too_many_subscriptions', op='sub', tag=False)
        check_session_error(s.request_json({'op': 'sub', 'channel': 'e-extra', 'tag': 'm'}),
                            'too_many_subscriptions', op='sub', tag='m')
        # A name that is none is said to be so, at the limit or not.
        check_session_error(s.request('SUB bad/name'), 'invalid_channel', op='sub', tag=False)
        pong(s, 'x')
        gw.publish('e-s%d' % MAX_SUBS, 'not for you')
        extra = [p for p in s.collect(0.3) if p['type'] == 'message']
        eq(extra, [], 'pushes of a channel whose SUB was refused')
        eq(s.request('SUB e-s0 0').get('type'), 'ok', 're-SUB of a subscribed channel at the limit')
        eq(s.request('UNSUB e-s1').get('type'), 'ok', 'UNSUB')
        r = s.request('SUB e-s%d' % MAX_SUBS)
        eq((r.get('type'), r.get('since')), ('ok', 1), 'SUB after an UNSUB made room')
        m = gw.publish('e-s%d' % MAX_SUBS, 'for you')
        eq(harness.check_push(s.push()), m, 'push on the new subscription')


@test
def unsub_not_subscribed():
    """UNSUB of a channel never subscribed, or already unsubscribed, is not_subscribed"""
    gw = shared.get()
    with Session(gw) as s:
        check_session_error(s.request('UNSUB e-none'), 'not_subscribed', op='unsub')
        eq(s.request('SUB e-none').get('type'), 'ok', 'SUB')
        eq(s.request('UNSUB e-none').get('type'), 'ok', 'UNSUB')
        check_session_error(s.request('UNSUB e-none'), 'not_subscribed', op='unsub')
        pong(s, 'y')


@test
def too_many_sessions():
    """with --max-sessions 3 a 4th connection gets too_many_sessions then EOF; a freed slot is usable again"""
    gw = harness.Gateway(args=['--max-sessions', '3'])
    held = [Session(gw) for _ in range(3)]
    for i, s in enumerate(held):
        pong(s, 'held%d' % i)
    for attempt in range(2):
        extra = Session(gw, hello=False)
        lines = extra.until_eof(timeout=15)
        codes = [x.get('type') if x.get('type') != 'error' else x.get('code') for x in lines]
        check(codes in (['too_many_sessions'], ['hello', 'too_many_sessions']),
              'lines of a 4th session: %s' % lines)
        check_session_error(lines[-1], 'too_many_sessions')
        extra.close()
    eq(gw.get('/healthz').status, 200, 'REST while the sessions are full')
    for i, s in enumerate(held):
        pong(s, 'still%d' % i)
    r = held[0].request('QUIT')
    eq(r.get('type'), 'bye', 'QUIT')
    eq(held[0].until_eof(), [], 'lines after bye')
    held[0].close()
    s = Session(gw)
    pong(s, 'in')
    held[0] = s
    for s in held:
        s.close()


harness.main()
