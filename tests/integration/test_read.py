#!/usr/bin/env python3
"""Reading: GET /v1/channels/{ch}/messages (since, limit, next_since),
GET /v1/messages/{id}, GET /v1/channels."""

import sys
sys.dont_write_bytecode = True

import time

import harness
from harness import test, check, eq, check_message, check_error

shared = harness.Shared()
_filled = {}


def filled(ch, n):
    """Channel ch holding messages with bodies m1..mn (posted once per run)."""
    gw = shared.get()
    if _filled.get(ch) is None or _filled[ch][0] is not gw:
        conn = gw.connect()
        msgs = [gw.publish(ch, 'm%d' % i, sender='s%d' % (i % 3), conn=conn) for i in range(1, n + 1)]
        conn.close()
        _filled[ch] = (gw, msgs)
    return gw, _filled[ch][1]


def page(gw, ch, query, top=None):
    """The page's (seqs, next_since); "more" is checked against top when given."""
    path = '/v1/channels/%s/messages%s' % (ch, query)
    r = gw.get(path)
    eq(r.status, 200, 'GET %s status (%s)' % (path, r))
    more = 'more' in r.json
    eq(r.keys(), ['channel', 'messages', 'next_since'] + (['more'] if more else []),
       'envelope keys in order')
    if more:
        eq(r.json['more'], True, '"more" is only ever true')
    if top is not None:
        eq(more, r.json['next_since'] < top,
           '"more" for %s: next_since %d, top %d' % (query, r.json['next_since'], top))
    eq(r.json['channel'], ch, 'envelope channel')
    for m in r.json['messages']:
        check_message(m, channel=ch)
    return [m['seq'] for m in r.json['messages']], r.json['next_since']


@test
def read_unknown_channel():
    """a channel with no messages answers an empty list, next_since 0"""
    gw = shared.get()
    r = gw.get('/v1/channels/nobody-here/messages')
    eq(r.status, 200, 'status (%s)' % r)
    eq(r.json, {'channel': 'nobody-here', 'messages': [], 'next_since': 0}, 'body')
    eq(r.keys(), ['channel', 'messages', 'next_since'], 'key order')
    ct = r.header('Content-Type') or ''
    eq(ct.split(';')[0].strip().lower(), 'application/json', 'Content-Type')


@test
def read_unknown_channel_since():
    """on an empty channel since 0 is an empty page, a since past the top is invalid_cursor"""
    gw = shared.get()
    eq(page(gw, 'nobody-here', '?since=0'), ([], 0), '(seqs, next_since) for since=0')
    for q in ('?since=5', '?since=7&limit=3', '?since=1&limit=0', '?since=1&wait=5'):
        r = gw.get('/v1/channels/nobody-here/messages' + q)
        check_error(r, 400, 'invalid_cursor', q)
        check("beyond the last seq of 'nobody-here' (0)" in r.json['error']['message'],
              'the message names the top: %s' % r.json)


@test
def read_cursor_past_the_top():
    """a since past the channel's last seq is 400 invalid_cursor naming the top, with or without wait"""
    gw, _ = filled('rd-past', 5)
    for q in ('?since=6', '?since=100', '?since=9223372036854775807', '?since=6&limit=0',
              '?since=6&wait=30'):
        t0 = time.monotonic()
        r = gw.get('/v1/channels/rd-past/messages' + q)
        check_error(r, 400, 'invalid_cursor', q)
        check("(5)" in r.json['error']['message'], 'the message names the top 5: %s' % r.json)
        check(time.monotonic() - t0 < 5, '%s answered at once, not after a wait' % q)
    eq(page(gw, 'rd-past', '?since=5'), ([], 5), 'since = top is an empty page')


@test
def dot_channels_of_an_older_database_stay_readable():
    """channels "." and ".." (no longer published to) in an older database: read by REST, HIST and SUB, never written"""
    gw = harness.Gateway()
    gw.publish('dots-other', 'x')
    gw.stop()
    for name in ('.', '..'):
        harness.db_sql(gw.db, "INSERT INTO channels(name, last_seq, msg_count, last_ts) "
                              "VALUES ('%s', 1, 1, 0)" % name)
        harness.db_sql(gw.db, "INSERT INTO messages(channel_id, seq, sender, body, ts, via) "
                              "SELECT id, 1, 'old', 'kept %s', 0, 'rest' FROM channels "
                              "WHERE name = '%s'" % (name, name))
    gw.restart()
    try:
        for name in ('.', '..'):
            seqs, nxt = page(gw, name, '?since=0')
            eq((seqs, nxt), ([1], 1), 'GET /v1/channels/%s/messages (the path as it is)' % name)
            with harness.Session(gw) as s:
                r = s.request('HIST %s 0' % name)
                check(r.get('type') == 'ok' and [m['body'] for m in r['messages']]
                      == ['kept %s' % name], 'HIST %s: %s' % (name, r))
                r = s.request('SUB %s 0' % name)
                eq(r.get('type'), 'ok', 'SUB %s (%s)' % (name, r))
                m = s.push()
                eq((m.get('type'), m.get('seq'), m.get('body')), ('message', 1, 'kept %s' % name),
                   'the replay of SUB %s' % name)
                r = s.request('PUB %s new' % name)
                harness.check_session_error(r, ('invalid_channel',), op='pub')
        eq([c['name'] for c in gw.get('/v1/channels').json['channels']], ['.', '..', 'dots-other'],
           'the channel list, nothing added')
    finally:
        gw.stop()


@test
def read_all_oldest_first():
    """all messages oldest first, equal to what POST answered, next_since = last seq"""
    gw, posted = filled('rd-five', 5)
    r = gw.get('/v1/channels/rd-five/messages')
    eq(r.status, 200, 'status (%s)' % r)
    eq(r.json['messages'], posted, 'messages read equal the POST answers')
    eq(r.json['next_since'], 5, 'next_since')
    for m in key_order_messages(r.raw):
        eq([k for k, _ in m], harness.MESSAGE_KEYS, 'message key order inside the list')


def key_order_messages(raw):
    env = dict(harness.key_order(raw))
    return env['messages']


PAGES = [
    ('?since=0', [1, 2, 3, 4, 5], 5),
    ('?since=2', [3, 4, 5], 5),
    ('?limit=2', [1, 2], 2),
    ('?since=2&limit=2', [3, 4], 4),
    ('?limit=2&since=4', [5], 5),
    ('?since=4&limit=1', [5], 5),
    ('?since=5', [], 5),
    ('?since=3&limit=0', [], 3),
    ('?limit=0', [], 0),
    ('?limit=1000', [1, 2, 3, 4, 5], 5),
    ('?since=0&limit=5', [1, 2, 3, 4, 5], 5),
    ('?since=1&unknown=zzz&limit=1', [2], 2),
    ('?foo', [1, 2, 3, 4, 5], 5),
]


def read_page(query, seqs, next_since):
    gw, _ = filled('rd-five', 5)
    eq(page(gw, 'rd-five', query, top=5), (seqs, next_since), '(seqs, next_since) for %s' % query)


for _q, _s, _n in PAGES:
    harness.add_test('read page %s -> seqs %s next_since %d%s' % (_q, _s, _n, ', more' if _n < 5 else ''),
                     read_page, _q, _s, _n)


@test
def read_default_limit_100():
    """without limit at most 100 messages come back; paging fetches the rest"""
    gw, posted = filled('rd-105', 105)
    seqs, nxt = page(gw, 'rd-105', '', top=105)
    eq(seqs, list(range(1, 101)), 'first page seqs')
    eq(nxt, 100, 'next_since')
    seqs, nxt = page(gw, 'rd-105', '?since=100', top=105)
    eq(seqs, list(range(101, 106)), 'second page seqs')
    eq(nxt, 105, 'next_since')
    eq(gw.read_all('rd-105'), posted, 'paged read equals the POST answers')


@test
def read_polling_loop():
    """a poller following next_since sees every message once, in order"""
    gw = shared.get()
    ch = 'rd-poll'
    since, seen = 0, []
    for round_ in range(4):
        for i in range(3):
            gw.publish(ch, 'r%d-%d' % (round_, i))
        env = gw.read(ch, since=since, limit=2)
        seen += env['messages']
        since = env['next_since']
    while True:
        env = gw.read(ch, since=since, limit=2)
        if not env['messages']:
            eq(env['next_since'], since, 'next_since of an empty page')
            break
        seen += env['messages']
        since = env['next_since']
    eq([m['seq'] for m in seen], list(range(1, 13)), 'seqs seen by the poller')
    eq([m['body'] for m in seen], ['r%d-%d' % (a, b) for a in range(4) for b in range(3)], 'bodies')


@test
def read_by_id():
    """GET /v1/messages/{id} answers each message; ids of other channels too"""
    gw, posted = filled('rd-five', 5)
    other = gw.publish('rd-other', 'elsewhere')
    for m in posted + [other]:
        r = gw.get('/v1/messages/%d' % m['id'])
        eq(r.status, 200, 'status (%s)' % r)
        eq(r.json, m, 'message %d' % m['id'])
        eq(r.keys(), harness.MESSAGE_KEYS, 'key order')


@test
def read_by_id_not_found():
    """an id that was never assigned is 404 not_found"""
    gw = shared.get()
    top = gw.publish('rd-nf', 'x')['id']
    for i in [top + 1, top + 1000, 999999, 9223372036854775807]:
        check_error(gw.get('/v1/messages/%d' % i), 404, 'not_found', 'id %d' % i)


@test
def read_channel_list():
    """GET /v1/channels lists the channels sorted by name with counts and last_ts"""
    gw = harness.Gateway()
    r = gw.get('/v1/channels')
    eq(r.status, 200, 'status (%s)' % r)
    eq(r.json, {'channels': []}, 'channel list of an empty store')
    ct = r.header('Content-Type') or ''
    eq(ct.split(';')[0].strip().lower(), 'application/json', 'Content-Type')
    last = {}
    count = {}
    conn = gw.connect()
    for ch in ['zeta', 'alpha', 'mid.dle', 'alpha', 'beta-2', 'zeta', 'alpha', 'alpha_1', 'a']:
        last[ch] = gw.publish(ch, 'to ' + ch, conn=conn)
        count[ch] = count.get(ch, 0) + 1
    conn.close()
    r = gw.get('/v1/channels')
    eq(r.status, 200, 'status (%s)' % r)
    want = [{'name': ch, 'messages': count[ch], 'last_seq': last[ch]['seq'], 'last_ts': last[ch]['ts']}
            for ch in sorted(count)]
    eq(r.json, {'channels': want}, 'channel list: one page, no next_after')
    for item in dict(harness.key_order(r.raw))['channels']:
        eq([k for k, _ in item], ['name', 'messages', 'last_seq', 'last_ts'], 'channel key order')


@test
def read_same_connection_interleaved():
    """reads and writes interleaved on one keep-alive connection agree"""
    gw = shared.get()
    conn = gw.connect()
    ch = 'rd-inter'
    for i in range(1, 6):
        m = gw.publish(ch, 'i%d' % i, conn=conn)
        env = gw.read(ch, since=i - 1, conn=conn)
        eq(env['messages'], [m], 'the message just posted is the only one after since=%d' % (i - 1))
        eq(env['next_since'], i, 'next_since')
    conn.close()


@test
def read_invalid_params_answer_errors():
    """since/limit that are not non-negative integers, limit over 1000: 400 invalid_parameter"""
    gw, _ = filled('rd-five', 5)
    for q in ['since=-1', 'since=abc', 'limit=x', 'limit=1001', 'limit=-1',
              'since=99999999999999999999999', 'limit=99999999999999999999999', 'since=1.5',
              'limit=2.0', 'since=0x10', 'since=1abc', 'limit=1e3']:
        check_error(gw.get('/v1/channels/rd-five/messages?' + q), 400, 'invalid_parameter', q)


harness.main()
