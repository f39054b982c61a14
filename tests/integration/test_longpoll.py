#!/usr/bin/env python3
"""REST long-poll: GET /v1/channels/{ch}/messages?since=N&wait=S.

Waits are long (30 s) where a test proves a request was released by a
commit or by shutdown, so an answer well before the deadline cannot be the
timeout's doing; the bounds are generous, for slow sanitizer builds.
"""

import sys
sys.dont_write_bytecode = True

import json
import threading
import time

import harness
from harness import test, check, eq, check_error, check_message

shared = harness.Shared()


def poll(gw, ch, since, wait, timeout=70):
    """One long-poll on its own connection: (status, body, seconds taken)."""
    c = gw.connect(timeout=timeout)
    t0 = time.monotonic()
    try:
        c.request('GET', '/v1/channels/%s/messages?since=%d&wait=%d' % (ch, since, wait))
        r = c.getresponse()
        body = r.read()
        return r.status, json.loads(body), time.monotonic() - t0
    finally:
        c.close()


class Waiters:
    """n long-polls in threads, started and known to be waiting."""

    def __init__(self, gw, ch, since, wait, n):
        self.results = []
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._one, args=(gw, ch, since, wait))
                        for _ in range(n)]
        for t in self.threads:
            t.start()

    def _one(self, gw, ch, since, wait):
        try:
            res = poll(gw, ch, since, wait)
        except Exception as e:  # reported by join()
            res = e
        with self.lock:
            self.results.append(res)

    def join(self, timeout=60):
        deadline = time.monotonic() + timeout
        for t in self.threads:
            t.join(max(0.1, deadline - time.monotonic()))
        check(not any(t.is_alive() for t in self.threads), 'long-polls still waiting')
        for r in self.results:
            check(not isinstance(r, Exception), 'a long-poll failed: %r' % (r,))
        return self.results


def held(gw):
    """Long-polls the gateway holds right now (its open{longpoll} gauge)."""
    return gw.get('/v1/stats').json['open']['longpoll']


def settle(gw, n, before):
    """Returns once the gateway holds n more long-polls than before."""
    harness.wait_for(lambda: held(gw) >= before + n, '%d long-polls held' % n, timeout=30)


@test
def answers_at_once_when_messages_exist():
    """with messages after since, a long-poll answers at once, like a plain read"""
    gw = shared.get()
    gw.publish('lp-now', 'one')
    st, body, took = poll(gw, 'lp-now', 0, 30)
    eq(st, 200, 'status')
    eq([m['body'] for m in body['messages']], ['one'], 'messages')
    eq(body['next_since'], 1, 'next_since')
    check(took < 10, 'answered in %.2f s, not held for the 30 s wait' % took)


@test
def released_by_a_post():
    """a waiting long-poll is answered with the message soon after a POST commits"""
    gw = shared.get()
    before = held(gw)
    w = Waiters(gw, 'lp-post', 0, 30, 1)
    settle(gw, 1, before)
    t0 = time.monotonic()
    msg = gw.publish('lp-post', 'wake up')
    (st, body, took), = w.join()
    eq(st, 200, 'status')
    eq(len(body['messages']), 1, 'one message')
    check_message(body['messages'][0], channel='lp-post', body='wake up')
    eq(body['messages'][0]['id'], msg['id'], 'the message just posted')
    eq(body['next_since'], 1, 'next_since')
    check(time.monotonic() - t0 < 10, 'released by the post, not by the 30 s deadline')


@test
def released_by_a_session_publish():
    """a PUB in a TCP session releases a REST long-poll too (one hub for both fronts)"""
    gw = shared.get()
    before = held(gw)
    w = Waiters(gw, 'lp-tcp', 0, 30, 1)
    settle(gw, 1, before)
    s = harness.Session(gw)
    s.cmd('PUB lp-tcp from a session')
    (st, body, _), = w.join()
    eq(st, 200, 'status')
    eq([(m['body'], m['via']) for m in body['messages']], [('from a session', 'tcp')], 'message')
    s.close()


@test
def released_by_a_commit_of_many_says_more():
    """a long-poll woken by a commit of 20 pipelined PUBs answers the first after its cursor, with "more":true while the channel goes on; following next_since at once reads the rest, the last page without more"""
    gw = shared.get()
    gw.publish('lp-batch', 'zero')
    before = held(gw)
    w = Waiters(gw, 'lp-batch', 1, 30, 1)
    settle(gw, 1, before)
    s = harness.Session(gw)
    s.send(''.join('PUB lp-batch m%d\n' % i for i in range(20)).encode())
    for _ in range(20):
        eq(s.reply()['type'], 'ok', 'a PUB answered')
    s.close()
    (st, body, took), = w.join()
    eq(st, 200, 'status')
    check(took < 10, 'released by the commit, not by the 30 s deadline')
    seqs = [m['seq'] for m in body['messages']]
    check(seqs and seqs[0] == 2, 'the answer starts after its cursor: %s' % seqs)
    eq(body.get('more', False), body['next_since'] < 21,
       '"more" with next_since %d of 21' % body['next_since'])
    pages = 0
    while body.get('more'):
        pages += 1
        check(pages < 25, 'more than 25 pages for 20 messages')
        st, body, took = poll(gw, 'lp-batch', body['next_since'], 30)
        eq(st, 200, 'status of the next page')
        check(took < 10, 'a page that said more is followed at once (%.2f s)' % took)
        seqs += [m['seq'] for m in body['messages']]
    eq(seqs, list(range(2, 22)), 'every message once, in order')

@test
def empty_after_the_wait():
    """with nothing new, the answer is an empty list after about wait seconds"""
    gw = shared.get()
    gw.publish('lp-empty', 'old')
    st, body, took = poll(gw, 'lp-empty', 1, 1)
    eq(st, 200, 'status')
    eq(body, {'channel': 'lp-empty', 'messages': [], 'next_since': 1}, 'body')
    check(0.8 <= took < 10, 'answered after about 1 s (took %.2f s)' % took)


@test
def past_the_top_is_refused():
    """a long-poll past the top is refused at once (invalid_cursor), not held: a stale cursor is told"""
    gw = shared.get()
    gw.publish('lp-ahead', 'seq 1')
    for since in (2, 100):
        t0 = time.monotonic()
        r = gw.get('/v1/channels/lp-ahead/messages?since=%d&wait=30' % since)
        check_error(r, 400, 'invalid_cursor', 'since=%d&wait=30' % since)
        check(time.monotonic() - t0 < 5, 'answered at once (took %.2f s)' % (time.monotonic() - t0))
    st, body, _ = poll(gw, 'lp-ahead', 0, 30)
    eq([m['seq'] for m in body['messages']], [1], 'since 0 still reads seq 1')


@test
def wait_over_the_maximum():
    """wait above 60 is 400 invalid_parameter, and so is a malformed wait"""
    gw = shared.get()
    check_error(gw.get('/v1/channels/lp/messages?since=0&wait=61'), 400, 'invalid_parameter',
                'wait=61')
    check_error(gw.get('/v1/channels/lp/messages?since=0&wait=-1'), 400, 'invalid_parameter',
                'wait=-1')
    check_error(gw.get('/v1/channels/lp/messages?wait=x'), 400, 'invalid_parameter', 'wait=x')
    gw.publish('lp-max', 'x')
    check_error(gw.get('/v1/channels/lp-max/messages?since=0&wait=61'), 400,
                'invalid_parameter', 'wait=61 even with messages to return')
    r = gw.get('/v1/channels/lp/messages?since=0&wait=0')
    eq(r.status, 200, 'wait=0 is a plain read')


@test
def many_waiters_one_post():
    """200 waiters on one channel are all released by one POST, each with the message"""
    gw = shared.get()
    before = held(gw)
    w = Waiters(gw, 'lp-many', 0, 30, 200)
    settle(gw, 200, before)
    msg = gw.publish('lp-many', 'to everyone')
    res = w.join()
    eq(len(res), 200, 'answers')
    for st, body, _ in res:
        eq(st, 200, 'status')
        eq([m['id'] for m in body['messages']], [msg['id']], 'each got the message')


@test
def released_on_shutdown():
    """SIGTERM answers every waiting long-poll (empty list) and the gateway exits 0"""
    gw = harness.Gateway()
    before = held(gw)
    w = Waiters(gw, 'lp-stop', 0, 30, 20)
    settle(gw, 20, before)
    t0 = time.monotonic()
    gw.stop()
    res = w.join()
    check(time.monotonic() - t0 < 10, 'waiters released at shutdown, not at their deadline')
    eq(len(res), 20, 'answers')
    for st, body, _ in res:
        eq(st, 200, 'status')
        eq(body['messages'], [], 'empty list')


harness.main()
