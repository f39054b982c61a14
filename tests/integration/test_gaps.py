#!/usr/bin/env python3
"""Gaps are said, never hidden (DESIGN.md, guarantee 4): when a cursor asks
for messages the store no longer has (removed here by hand, from outside the
gateway, as retention will later), a session gets {"type":"gap"} events in
their place and a REST page says so in "gaps"; neither skips in silence nor
replays everything."""

import sys
sys.dont_write_bytecode = True

import threading

import harness
from harness import test, check, eq, check_push, Session

shared = harness.Shared()


def holed(gw, channel, n, missing):
    """n messages on channel, then the rows of seqs missing deleted behind the gateway's back."""
    conn = gw.connect()
    msgs = [gw.publish(channel, 'm%d' % i, conn=conn) for i in range(1, n + 1)]
    conn.close()
    harness.db_sql(gw.db, "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels"
                   " WHERE name = '%s') AND seq IN (%s)" % (channel, ','.join(map(str, missing))))
    return msgs


def gap(frm, to, channel):
    return {'type': 'gap', 'channel': channel, 'from': frm, 'to': to, 'first_seq': to + 1}


@test
def replay_says_each_gap_in_place():
    """SUB ch 0 over holes 3..4 and 9..10: pushes 1 2, gap 3..4, 5..8, gap 9..10, then live 11"""
    gw = shared.get()
    holed(gw, 'g-sub', 10, [3, 4, 9, 10])
    with Session(gw) as s:
        r = s.request('SUB g-sub 0')
        eq((r['type'], r['since'], r['top']), ('ok', 0, 10), 'SUB reply')
        got = [s.push(types=('message', 'gap')) for _ in range(8)]
        eq([x['seq'] if x['type'] == 'message' else (x['from'], x['to']) for x in got],
           [1, 2, (3, 4), 5, 6, 7, 8, (9, 10)], 'pushes and gaps in order')
        eq(got[2], gap(3, 4, 'g-sub'), 'the first gap event')
        eq(got[7], gap(9, 10, 'g-sub'), 'the gap at the end')
        m = gw.publish('g-sub', 'live')
        eq(check_push(s.push()), m, 'live after the replay')
        eq(m['seq'], 11, 'seq of the live message')
    check(gw.wait_stderr(r"'g-sub' lacks seqs 3 to 4"), 'the log says so too')


@test
def resume_inside_a_gap():
    """SUB ch 3 (inside a hole): the rest of the hole first, then the messages"""
    gw = shared.get()
    holed(gw, 'g-mid', 6, [2, 3, 4])
    with Session(gw) as s:
        eq(s.request('SUB g-mid 3')['type'], 'ok', 'SUB g-mid 3')
        eq(s.push(types=('message', 'gap')), gap(4, 4, 'g-mid'), 'the rest of the hole')
        eq([p['seq'] for p in s.messages(2)], [5, 6], 'then 5 and 6')


@test
def rest_pages_say_gaps():
    """GET over holes: "gaps" lists them, next_since goes past them; a long-poll is answered at once"""
    gw = shared.get()
    holed(gw, 'g-rest', 10, [3, 4, 9, 10])
    r = gw.get('/v1/channels/g-rest/messages?since=0')
    eq(r.status, 200, 'status')
    eq(list(r.json.keys()), ['channel', 'messages', 'gaps', 'next_since'], 'keys in order')
    eq([m['seq'] for m in r.json['messages']], [1, 2, 5, 6, 7, 8], 'seqs')
    eq(r.json['gaps'], [{'from': 3, 'to': 4}, {'from': 9, 'to': 10}], 'gaps')
    eq(r.json['next_since'], 10, 'next_since past the last hole')
    r = gw.get('/v1/channels/g-rest/messages?since=8&wait=30')
    eq((r.json['messages'], r.json['gaps'], r.json['next_since']), ([], [{'from': 9, 'to': 10}], 10),
       'a long-poll over a trailing hole is answered at once with it')
    r = gw.get('/v1/channels/g-rest/messages?since=0&limit=3')
    eq(([m['seq'] for m in r.json['messages']], r.json['gaps'], r.json['next_since']),
       ([1, 2, 5], [{'from': 3, 'to': 4}], 5), 'a page of three over the first hole')
    r = gw.get('/v1/channels/g-rest/messages?since=10')
    eq(r.json, {'channel': 'g-rest', 'messages': [], 'next_since': 10}, 'no gaps key without a hole')


@test
def hist_says_gaps():
    """HIST over holes answers what REST answers, gaps included"""
    gw = shared.get()
    holed(gw, 'g-hist', 5, [1, 5])
    env = gw.read('g-hist', since=0)
    with Session(gw) as s:
        r = s.request('HIST g-hist 0')
        eq(list(r.keys()), ['type', 'op', 'channel', 'messages', 'gaps', 'next_since'], 'keys')
        eq((r['messages'], r['gaps'], r['next_since']),
           (env['messages'], env['gaps'], env['next_since']), 'HIST vs REST')
        eq(r['gaps'], [{'from': 1, 'to': 1}, {'from': 5, 'to': 5}], 'gaps')


def restart_seqs(gw, channel, keep_row=False):
    """Removes every row of channel and its count behind the gateway's back
    (what a TRUNCATE of both tables does to every channel; or, keep_row, the
    channel row's count set back to 0): it counts from 1 again."""
    harness.db_sql(gw.db, "DELETE FROM messages WHERE channel_id = (SELECT id FROM channels"
                   " WHERE name = '%s')" % channel)
    if keep_row:
        harness.db_sql(gw.db, "UPDATE channels SET last_seq = 0, msg_count = 0 WHERE name = '%s'"
                       % channel)
    else:
        harness.db_sql(gw.db, "DELETE FROM channels WHERE name = '%s'" % channel)


@test
def seqs_that_start_again_are_told():
    """rows and count removed by hand, seqs start again at 1: live SUBs and a long-poll past the new top are told invalid_cursor"""
    gw = shared.get()
    ch = 'g-again'
    for i in range(3):
        gw.publish(ch, 'old%d' % i)
    with Session(gw) as s, Session(gw) as low:
        eq(s.request('SUB %s' % ch)['top'], 3, 'SUB at the top')
        eq(low.request('SUB g-again-other')['type'], 'ok', 'a subscriber of another channel')
        polled = []
        t = threading.Thread(target=lambda: polled.append(
            gw.get('/v1/channels/%s/messages?since=3&wait=30' % ch)))
        before = gw.get('/v1/stats').json['open']['longpoll']
        t.start()
        harness.wait_for(lambda: gw.get('/v1/stats').json['open']['longpoll'] > before,
                         'the long-poll held')
        restart_seqs(gw, ch)
        m = gw.publish(ch, 'new1')
        eq(m['seq'], 1, 'the store counts from 1 again')
        err = s.reply()
        eq((err['type'], err['code']), ('error', 'invalid_cursor'), 'the subscriber is told')
        check("went back from 3 to" in err['message'], 'it says how: %s' % err['message'])
        check(s.read_raw(10) is None, 'then its session ends')
        t.join(30)
        check(polled, 'the long-poll was answered')
        eq((polled[0].status, polled[0].json['error']['code']), (400, 'invalid_cursor'),
           'the long-poll past the new top is told too')
        gw.publish('g-again-other', 'x')
        eq(low.push()['body'], 'x', 'a session of another channel goes on')
    with Session(gw) as s:
        eq(s.request('SUB %s 0' % ch)['type'], 'ok', 'SUB from 0 again')
        eq([p['body'] for p in s.messages(1)], ['new1'], 'reads what the channel now holds')
    check(gw.wait_stderr(r"the seqs of 'g-again' went back from 3 to"), 'the log says so')


@test
def seqs_that_start_again_after_a_commit_of_its_own():
    """the gateway committed on the channel since its SUB: the next commit's lower seq ends the SUB at once"""
    gw = shared.get()
    ch = 'g-again-own'
    gw.publish(ch, 'old')
    with Session(gw) as s:
        eq(s.request('SUB %s' % ch)['top'], 1, 'SUB at the top')
        eq(gw.publish(ch, 'seen')['seq'], 2, 'a commit the SUB sees')
        eq(s.push()['seq'], 2, 'pushed')
        restart_seqs(gw, ch)
        eq(gw.publish(ch, 'new1')['seq'], 1, 'the store counts from 1 again')
        err = s.reply()
        eq((err['type'], err['code']), ('error', 'invalid_cursor'), 'the subscriber is told')
        check("went back from 2 to 0" in err['message'], 'from its last commit: %s' % err['message'])
        check(s.read_raw(10) is None, 'then its session ends')


@test
def seqs_counted_back_with_the_channel_row_kept():
    """rows removed and the count set back to 0 by hand, the channel row kept: the next commit has seq 1, and a live SUB past it is told invalid_cursor"""
    gw = shared.get()
    ch = 'g-back-kept'
    for i in range(3):
        gw.publish(ch, 'old%d' % i)
    with Session(gw) as s:
        eq(s.request('SUB %s' % ch)['top'], 3, 'SUB at the top')
        restart_seqs(gw, ch, keep_row=True)
        eq(gw.publish(ch, 'new1')['seq'], 1, 'the store counts from 1 again')
        err = s.reply()
        eq((err['type'], err['code']), ('error', 'invalid_cursor'), 'the subscriber is told')
        check(s.read_raw(10) is None, 'then its session ends')


harness.main()
