#!/usr/bin/env python3
"""POST /v1/channels/{ch}/messages: the 201 answer, the message object, and
bodies that must come back byte for byte through every read path."""

import sys
sys.dont_write_bytecode = True

import datetime
import json

import harness
from harness import test, check, eq, check_message

shared = harness.Shared()


def now_utc():
    return datetime.datetime.now(datetime.timezone.utc)


def parse_ts(ts):
    return datetime.datetime.strptime(ts, '%Y-%m-%dT%H:%M:%S.%fZ').replace(
        tzinfo=datetime.timezone.utc)


@test
def publish_basic():
    """POST answers 201, Location /v1/messages/{id} and the message in key order"""
    gw = shared.get()
    before = now_utc()
    r = gw.post('pub-basic', {'sender': 'ana', 'body': 'salut'})
    after = now_utc()
    eq(r.status, 201, 'status (%s)' % r)
    ct = r.header('Content-Type') or ''
    eq(ct.split(';')[0].strip().lower(), 'application/json', 'Content-Type')
    check(r.json is not None, 'body is not JSON: %s' % r)
    eq(r.keys(), harness.MESSAGE_KEYS, 'key order on the wire')
    m = r.json
    check_message(m, channel='pub-basic', sender='ana', body='salut', via='rest')
    eq(m['seq'], 1, 'seq of the first message of a new channel')
    eq(r.header('Location'), '/v1/messages/%d' % m['id'], 'Location header')
    eq(r.header_count('Location'), 1, 'number of Location headers')
    ts = parse_ts(m['ts'])
    slack = datetime.timedelta(seconds=5)
    check(before - slack <= ts <= after + slack,
          'ts %s is not the commit time (request between %s and %s)' % (m['ts'], before, after))


@test
def publish_location_resolves():
    """GET on the Location of a 201 returns the very same message"""
    gw = shared.get()
    r = gw.post('pub-loc', {'sender': 'bo', 'body': 'where am I'})
    eq(r.status, 201, 'status (%s)' % r)
    g = gw.get(r.header('Location'))
    eq(g.status, 200, 'GET Location status (%s)' % g)
    eq(g.json, r.json, 'message read back by id')
    eq(g.keys(), harness.MESSAGE_KEYS, 'key order of GET /v1/messages/{id}')


@test
def publish_default_sender():
    """a message without sender is stored with sender "anonymous" """
    gw = shared.get()
    m = gw.publish('pub-anon', 'who sent this?')
    check_message(m, channel='pub-anon', sender='anonymous', body='who sent this?')
    eq(gw.get('/v1/messages/%d' % m['id']).json['sender'], 'anonymous', 'stored sender')


@test
def publish_seq_per_channel_id_global():
    """seq counts 1,2,3 per channel; id is unique and increases across channels"""
    gw = shared.get()
    conn = gw.connect()
    got = []
    for ch in ['pub-sa', 'pub-sb', 'pub-sa', 'pub-sc', 'pub-sb', 'pub-sa']:
        got.append(gw.publish(ch, 'x', conn=conn))
    conn.close()
    eq([(m['channel'], m['seq']) for m in got],
       [('pub-sa', 1), ('pub-sb', 1), ('pub-sa', 2), ('pub-sc', 1), ('pub-sb', 2), ('pub-sa', 3)],
       '(channel, seq) sequence')
    ids = [m['id'] for m in got]
    eq(ids, sorted(set(ids)), 'ids strictly increasing in commit order')


@test
def publish_sender_limits():
    """sender of 1 byte and of 128 bytes (ASCII and multi-byte UTF-8) are accepted"""
    gw = shared.get()
    for sender in ['x', 'a' * 128, '\u00e9' * 64, '\u20ac' * 42 + 'ab', '\U0001F600' * 32]:
        eq(len(sender.encode('utf-8')) <= 128, True, 'test data: %r fits' % sender)
        m = gw.publish('pub-sender', 'hi', sender=sender)
        eq(m['sender'], sender, 'sender of %d bytes' % len(sender.encode('utf-8')))


@test
def publish_channel_names():
    """channel names of 1 and 64 characters and with . _ - are accepted"""
    gw = shared.get()
    for ch in ['a', 'Z' * 64, 'a.b_c-d', '0', '...', '-_-', 'MiXeD.Case_09']:
        m = gw.publish(ch, 'hello ' + ch)
        eq(m['channel'], ch, 'channel')
        env = gw.read(ch)
        eq(env['channel'], ch, 'channel of the read envelope')
        eq([x['body'] for x in env['messages']], ['hello ' + ch], 'bodies read back from %s' % ch)


@test
def publish_unknown_fields_ignored():
    """unknown fields in the request body are ignored and not echoed"""
    gw = shared.get()
    r = gw.post('pub-extra', {'body': 'b', 'sender': 's', 'id': 999, 'seq': 77, 'via': 'tcp',
                              'ts': '1999-01-01T00:00:00.000Z', 'channel': 'other', 'x': [1]})
    eq(r.status, 201, 'status (%s)' % r)
    check_message(r.json, channel='pub-extra', sender='s', body='b', via='rest')
    eq(r.json['seq'], 1, 'seq is assigned by the server')
    check(r.json['ts'] != '1999-01-01T00:00:00.000Z', 'ts is assigned by the server')
    eq(gw.read('other')['messages'], [], 'nothing stored on the channel named in the body')


@test
def publish_charset_param_accepted():
    """Content-Type application/json; charset=utf-8 is accepted"""
    gw = shared.get()
    for ct in ['application/json; charset=utf-8', 'application/json;charset=utf-8',
               'application/json; charset=UTF-8']:
        r = gw.post('pub-ct', {'body': ct}, content_type=ct)
        eq(r.status, 201, 'status with Content-Type %r (%s)' % (ct, r))
        eq(r.json['body'], ct, 'body')


@test
def publish_empty_body_text():
    """an empty string is a valid body"""
    gw = shared.get()
    m = gw.publish('pub-empty', '')
    eq(m['body'], '', 'body')
    eq(gw.get('/v1/messages/%d' % m['id']).json['body'], '', 'body read back')


# Bodies that must come back identical through the POST answer, the channel
# read and the read by id.
ROUND_TRIP = [
    ('ascii', 'hello world'),
    ('emoji', 'party \U0001F389\U0001F600 \u2764\ufe0f family \U0001F468\u200d\U0001F469\u200d\U0001F467'),
    ('cjk', '\u4f60\u597d\uff0c\u4e16\u754c \u3053\u3093\u306b\u3061\u306f \uc548\ub155\ud558\uc138\uc694'),
    ('rtl', '\u05e9\u05dc\u05d5\u05dd \u0645\u0631\u062d\u0628\u0627 \u202eevil\u202c'),
    ('quotes', 'she said "salut" and \'bye\''),
    ('backslashes', 'C:\\path\\to\\file \\\\ \\n is not a newline \\u0041'),
    ('newlines-tabs', 'line1\nline2\r\nline3\ttabbed\t\tend\n'),
    ('nul-inside', 'before\u0000after'),
    ('nul-many', '\u0000\u0000x\u0000'),
    ('controls', ''.join(chr(c) for c in range(1, 32)) + '\u007f'),
    ('json-lookalike', '{"body":"inner","sender":"x"}'),
    ('slashes', '</script> / \\/ //'),
    ('max-bmp', '\uffff\ufffd\u0800\u07ff\u0080'),
    ('astral', '\U00010000\U0010ffff\U0001d11e'),
    ('long', 'long line ' * 3000),
]


def round_trip(name, text):
    gw = shared.get()
    ch = 'rt-' + name
    r = gw.post(ch, {'sender': 'rt \u2603 "\\', 'body': text})
    eq(r.status, 201, 'status (%s)' % r)
    eq(r.json['body'], text, 'body in the POST answer')
    eq(r.json['sender'], 'rt \u2603 "\\', 'sender in the POST answer')
    by_id = gw.get('/v1/messages/%d' % r.json['id'])
    eq(by_id.status, 200, 'GET by id status')
    eq(by_id.json['body'], text, 'body read by id')
    eq(by_id.json, r.json, 'message read by id')
    env = gw.read(ch)
    eq(len(env['messages']), 1, 'messages on %s' % ch)
    eq(env['messages'][0]['body'], text, 'body read from the channel')
    eq(env['messages'][0], r.json, 'message read from the channel')
    # The same text sent with every non-ASCII character escaped as \uXXXX.
    r2 = gw.request('POST', '/v1/channels/%s/messages' % ch,
                    body=json.dumps({'body': text}, ensure_ascii=True).encode('ascii'))
    eq(r2.status, 201, 'status of the ASCII-escaped post (%s)' % r2)
    eq(r2.json['body'], text, 'body of the ASCII-escaped post')
    eq(gw.get('/v1/messages/%d' % r2.json['id']).json['body'], text, 'ASCII-escaped body read by id')


for _name, _text in ROUND_TRIP:
    harness.add_test('round trip, byte for byte: %s' % _name, round_trip, _name, _text)


@test
def round_trip_hand_written_escapes():
    """hand-written JSON escapes (\\u0000, surrogate pair, \\/, \\b \\f) decode exactly"""
    gw = shared.get()
    raw = b'{"body":"a\\u0000b\\ud83d\\ude00c\\/d\\b\\f\\"\\\\e","sender":"\\u00e9"}'
    want = 'a\x00b\U0001F600c/d\b\f"\\e'
    r = gw.request('POST', '/v1/channels/rt-hand/messages', body=raw)
    eq(r.status, 201, 'status (%s)' % r)
    eq(r.json['body'], want, 'body in the POST answer')
    eq(r.json['sender'], '\u00e9', 'sender in the POST answer')
    eq(gw.get('/v1/messages/%d' % r.json['id']).json['body'], want, 'body read by id')
    eq(gw.read('rt-hand')['messages'][0]['body'], want, 'body read from the channel')


@test
def publish_body_at_default_limit():
    """a request body of exactly 65536 bytes (the default --max-body) is accepted"""
    gw = shared.get()
    prefix, suffix = b'{"body":"', b'"}'
    raw = prefix + b'y' * (65536 - len(prefix) - len(suffix)) + suffix
    eq(len(raw), 65536, 'test data size')
    r = gw.request('POST', '/v1/channels/pub-big/messages', body=raw)
    eq(r.status, 201, 'status (%s)' % r)
    eq(len(r.json['body']), 65536 - len(prefix) - len(suffix), 'stored body length')


@test
def trigger_that_skips_a_row_is_told():
    """a trigger another tool added skips one message's row (SQLite: RAISE(IGNORE); PostgreSQL: a function that returns NULL): that PUB is answered store_failed saying it was skipped, it is not stored, and every PUB answered ok is stored under its id"""
    gw = harness.Gateway()  # its own database: the trigger must not outlive the test
    if harness.is_postgres(gw.db):
        harness.db_sql(gw.db, "CREATE FUNCTION skip_bad() RETURNS trigger LANGUAGE plpgsql AS $$ "
                       "BEGIN IF NEW.body = 'bad'::bytea THEN RETURN NULL; END IF; RETURN NEW; END $$; "
                       "CREATE TRIGGER skip_bad BEFORE INSERT ON messages FOR EACH ROW "
                       "EXECUTE FUNCTION skip_bad()")
    else:
        harness.db_sql(gw.db, "CREATE TRIGGER skip_bad BEFORE INSERT ON messages "
                       "WHEN NEW.body = 'bad' BEGIN SELECT RAISE(IGNORE); END")
    with harness.Session(gw) as s:
        s.send('PUB tskip g1\nPUB tskip bad\nPUB tskip g3\n')
        replies = [s.reply(), s.reply(), s.reply()]
    harness.check_session_error(replies[1], 'store_failed', op='pub', what='the skipped PUB')
    check('skipped' in replies[1]['message'], 'it says why: %s' % replies[1])
    stored = {m['id']: m['body'] for m in gw.read_all('tskip')}
    check('bad' not in stored.values(), 'the skipped one stored: %s' % stored)
    for r in replies:
        if r.get('type') == 'ok':
            eq(stored.get(r['message']['id']), r['message']['body'], 'acknowledged, so stored')
    eq(gw.stop(), 0, 'exit status')


harness.main()
