#!/usr/bin/env python3
"""The channel listing in pages (docs/api.md, docs/protocol.md): with 2,500
channels, GET /v1/channels and CHANNELS answer at most `limit` (default and
most 1000) channels with a name after `after`, in byte order, with
`next_after` while a page is full; following it lists every channel exactly
once. Bad `limit` and `after` values are refused and change nothing. A
session that pipelines CHANNELS without reading is answered page by page:
no reply holds the whole listing, and the gateway's memory stays within the
sessions' output bounds.

Backend-neutral: runs on PostgreSQL too (VISAVIS_TEST_BACKEND=postgres)."""

import sys
sys.dont_write_bytecode = True

import json
import time
import urllib.parse

import harness
from harness import test, check, eq, check_error, check_session_error, Session

COUNT = 2500
PAGE = 1000
MAX_OUTBUF = 64 * 1024
# The largest a channel entry may be on the wire: a 64-byte name, three 64-bit
# numbers and a timestamp, with their keys. A page of 1000 is bounded by it.
ENTRY_MAX = 200


def names():
    """COUNT valid names of every length up to 64 bytes, starting with each
    kind of character a name may hold, so byte order differs from any
    case-insensitive or locale order (uppercase before '_' before lowercase)."""
    first = 'Aa-Z_z.09'
    out = []
    for i in range(COUNT):
        n = '%s%04d' % (first[i % len(first)], i)
        out.append(n.ljust(5 + i % 60, 'xY_.-'[i % 5]) if i % 3 else n.ljust(64, 'q'))
    return out


NAMES = names()
SORTED = sorted(NAMES)  # ASCII: code-point order is byte order


def seed(gw):
    """One message on each of NAMES, pipelined over one session in bursts
    within the publish window."""
    with Session(gw, timeout=120) as s:
        for at in range(0, COUNT, 200):
            burst = NAMES[at:at + 200]
            s.send(''.join('PUB %s m\n' % n for n in burst))
            for n in burst:
                r = s.reply(timeout=120)
                check(r.get('type') == 'ok', 'seed PUB on %s: %s' % (n, harness._short(r)))


class Seeded(harness.Shared):
    def get(self):
        gw = super().get()
        if not getattr(gw, '_seeded', False):
            seed(gw)
            gw._seeded = True
        return gw


shared = Seeded(args=['--sync', 'normal', '--max-outbuf', str(MAX_OUTBUF)],
                env=harness.small_asan_quarantine(), prefix=harness.address_limit(1024))


def rest_page(gw, after=None, limit=None):
    q = {}
    if after is not None:
        q['after'] = after
    if limit is not None:
        q['limit'] = limit
    path = '/v1/channels' + ('?' + urllib.parse.urlencode(q) if q else '')
    r = gw.get(path)
    eq(r.status, 200, 'GET %s status (%s)' % (path, r))
    check(isinstance(r.json, dict), 'GET %s: not a JSON object: %s' % (path, r))
    return r


def check_page(page, after, limit, what):
    """page: a decoded answer (REST body or session reply). Its channels are
    the next `limit` of SORTED after `after`, with next_after iff full."""
    start = 0 if not after else next((i for i, n in enumerate(SORTED) if n > after), COUNT)
    want = SORTED[start:start + limit]
    got = [c['name'] for c in page['channels']]
    eq(got, want, '%s: the names after %r' % (what, after))
    for c in page['channels']:
        eq(list(c.keys()), ['name', 'messages', 'last_seq', 'last_ts'], what + ': entry keys')
        eq((c['messages'], c['last_seq']), (1, 1), what + ': counts of ' + c['name'])
    if len(want) == limit:
        eq(page.get('next_after'), want[-1], what + ': next_after of a full page')
    else:
        check('next_after' not in page, '%s: a page of %d < %d has next_after %r'
              % (what, len(want), limit, page.get('next_after')))


def follow(fetch, limit, what):
    """Every name, following next_after from the start; the pages' sizes."""
    seen, sizes, after = [], [], None
    for _ in range(COUNT // max(limit, 1) + 3):
        page = fetch(after)
        check_page(page, after, limit, '%s page %d' % (what, len(sizes) + 1))
        seen += [c['name'] for c in page['channels']]
        sizes.append(len(page['channels']))
        if 'next_after' not in page:
            break
        after = page['next_after']
    eq(len(seen), len(set(seen)), what + ': no name twice')
    eq(seen, SORTED, what + ': every name once, in byte order')
    return sizes


# --------------------------------------------------------------------------
# REST

@test
def rest_pages_follow_next_after():
    """GET /v1/channels: 2,500 channels in pages of 1000 by default; next_after chains through every name once, in byte order; the last page has none"""
    gw = shared.get()
    r = rest_page(gw)
    eq(list(r.json.keys()), ['channels', 'next_after'], 'keys of a full page')
    eq(len(r.json['channels']), PAGE, 'the first page without limit')
    check(len(r.raw) <= PAGE * ENTRY_MAX, 'a page of %d is %d bytes' % (PAGE, len(r.raw)))
    sizes = follow(lambda a: rest_page(gw, after=a).json, PAGE, 'REST')
    eq(sizes, [1000, 1000, 500], 'page sizes')
    eq(list(rest_page(gw, after=SORTED[-2]).json.keys()), ['channels'], 'keys of the last page')


@test
def rest_limit_and_after():
    """GET /v1/channels?after=&limit=: a page exactly full still says next_after and the next is empty; an after between names, past the end, or empty"""
    gw = shared.get()
    eq(follow(lambda a: rest_page(gw, after=a, limit=500).json, 500, 'REST limit 500'),
       [500] * 5 + [0], 'limit 500: five full pages, then an empty one')
    check_page(rest_page(gw, after='', limit=3).json, '', 3, 'after empty')
    check_page(rest_page(gw, limit=1000).json, None, 1000, 'limit 1000')
    # an after that is no channel's name: the names after it
    between = next(n for n in SORTED[1234:] if len(n) < 64) + '-'
    for after in ['M', 'a0500', 'Z', 'zzzz', between]:
        check_page(rest_page(gw, after=after, limit=7).json, after, 7, 'after %r' % after)
    r = rest_page(gw, after='z' * 64, limit=10)
    eq(r.json, {'channels': []}, 'after past the last name')
    r = rest_page(gw, after=SORTED[-1])
    eq(r.json, {'channels': []}, 'after the last name')


@test
def rest_refusals():
    """GET /v1/channels: limit over 1000, 0, negative or not a number is 400 invalid_parameter; an after that is not a channel name 400 invalid_channel"""
    gw = shared.get()
    for q in ['limit=1001', 'limit=0', 'limit=-1', 'limit=abc', 'limit=', 'limit=1e3',
              'limit=99999999999999999999', 'after=a&limit=5000']:
        r = gw.get('/v1/channels?' + q)
        check_error(r, 400, 'invalid_parameter', q)
        check('limit' in r.json['error']['message'], '%s: the message names limit: %s'
              % (q, r.json['error']['message']))
    for q in ['after=bad!name', 'after=' + 'a' * 65, 'after=a%20b', 'after=%C3%A9', 'after=a/b']:
        r = gw.get('/v1/channels?' + q)
        check_error(r, 400, 'invalid_channel', q)
    # %00 anywhere in a request target is refused whole (docs/api.md): no name may hold a NUL.
    check_error(gw.get('/v1/channels?after=a%00b'), 400, 'invalid_parameter', 'after=a%00b')
    check_page(rest_page(gw, limit=5).json, None, 5, 'after the refusals')


@test
def pages_read_through_the_name_index():
    """PostgreSQL: a page is read through the index on name COLLATE "C" (the server counts its scans), not by sorting every channel"""
    gw = shared.get()
    if not harness.is_postgres(gw.db):
        harness.skip('PostgreSQL only (VISAVIS_TEST_BACKEND=postgres); SQLite reads a page '
                     'through the UNIQUE index on name, which sorts in byte order already')

    def scans():
        rows = harness.db_sql(gw.db, "SELECT idx_scan FROM pg_stat_user_indexes"
                                     " WHERE indexrelname = 'channels_name_bytes'")
        check(rows, 'no index channels_name_bytes on channels')
        return int(rows[0][0])

    def page_then_scans():
        check_page(rest_page(gw, after='M', limit=5).json, 'M', 5, 'after M')
        return scans()

    before = scans()
    # A backend publishes its counts as it goes idle, at most once a second
    # (else 10 s later): pages keep coming until a scan is counted.
    harness.wait_for(lambda: page_then_scans() > before, 'a scan of channels_name_bytes counted',
                     timeout=20, interval=0.2)


# --------------------------------------------------------------------------
# Sessions

def session_page(s, after=None, limit=None, tag=None, text=True):
    # The text form has no way to give a limit to the first page (no after):
    # the JSON form does.
    if text and not (after is None and limit is not None):
        line = 'CHANNELS' + ('' if after is None else ' ' + after) + \
            ('' if limit is None else ' %d' % limit)
        r = s.request(line)
    else:
        cmd = {'op': 'channels'}
        if after is not None:
            cmd['after'] = after
        if limit is not None:
            cmd['limit'] = limit
        if tag is not None:
            cmd['tag'] = tag
        r = s.request_json(cmd)
    check(r.get('type') == 'ok' and r.get('op') == 'channels',
          'CHANNELS %r %r: %s' % (after, limit, harness._short(r)))
    if tag is not None:
        eq(r.get('tag'), tag, 'tag echoed')
    return r


@test
def session_pages_follow_next_after():
    """CHANNELS [<after> [<limit>]] and its JSON form page as REST does: next_after chains through every name once; the same pages as REST"""
    gw = shared.get()
    with Session(gw, timeout=60) as s:
        r = session_page(s)
        eq(list(r.keys()), ['type', 'op', 'channels', 'next_after'], 'keys of a full page')
        eq(r, dict({'type': 'ok', 'op': 'channels'}, **rest_page(gw).json), 'CHANNELS vs REST')
        eq(follow(lambda a: session_page(s, after=a), PAGE, 'CHANNELS'), [1000, 1000, 500],
           'page sizes')
        eq(follow(lambda a: session_page(s, after=a, limit=700, text=True), 700, 'CHANNELS 700'),
           [700, 700, 700, 400], 'page sizes, text limit 700')
        eq(follow(lambda a: session_page(s, after=a, limit=625, tag='t', text=False), 625,
                  'JSON channels'), [625] * 4 + [0], 'page sizes, JSON limit 625')
        r = session_page(s, after='', limit=2, text=False)
        check_page(r, '', 2, 'JSON after ""')
        r = session_page(s, after=SORTED[-1], tag='end', text=False)
        eq(list(r.keys()), ['type', 'op', 'channels', 'tag'], 'keys of the last page')


@test
def session_refusals():
    """CHANNELS refusals: a bad limit is invalid_parameter (text) or invalid_field (JSON), a bad after invalid_channel; the session goes on"""
    gw = shared.get()
    with Session(gw) as s:
        for line, code in [('CHANNELS a 1001', 'invalid_parameter'),
                           ('CHANNELS a 0', 'invalid_parameter'),
                           ('CHANNELS a x', 'invalid_parameter'),
                           ('CHANNELS a -1', 'invalid_parameter'),
                           ('CHANNELS a 5 6', 'invalid_parameter'),
                           ('CHANNELS bad!name', 'invalid_channel'),
                           ('CHANNELS ' + 'a' * 65, 'invalid_channel'),
                           ('CHANNELS é 5', 'invalid_channel')]:
            check_session_error(s.request(line), code, op='channels', what=line)
            eq(s.request('PING').get('type'), 'pong', 'the session goes on')
        for cmd, code in [({'limit': 1001}, 'invalid_parameter'),
                          ({'limit': 0}, 'invalid_parameter'),
                          ({'limit': -1}, 'invalid_field'),
                          ({'limit': '5'}, 'invalid_field'),
                          ({'after': 5}, 'invalid_field'),
                          ({'after': None}, 'invalid_field'),
                          ({'after': 'a\u0000b'}, 'invalid_channel'),
                          ({'after': 'bad name'}, 'invalid_channel')]:
            cmd = dict(cmd, op='channels', tag='r')
            check_session_error(s.request_json(cmd), code, op='channels', tag='r',
                                what=json.dumps(cmd))
            eq(s.request('PING').get('type'), 'pong', 'the session goes on')
        check_page(session_page(s, limit=4), None, 4, 'CHANNELS after the refusals')


@test
def pipelined_channels_by_non_readers_are_bounded():
    """8 sessions each send CHANNELS 50 times without reading: every reply is one page of 1000, and the gateway holds at most an output bound and a page each (RSS)"""
    gw = shared.get()
    sessions = 8
    rss0 = harness.rss_kb(gw)
    hogs = [Session(gw, rcvbuf=4096, timeout=120) for _ in range(sessions)]
    for h in hogs:
        h.send('CHANNELS\n' * 50)
    # Each hog is paused once its queue passes the bound (the kernel's socket
    # buffers, up to a few MB, take the first replies): sample the RSS for a
    # while, a bystander's PING pacing the samples.
    peak = rss0
    with Session(gw) as bystander:
        t_end = time.monotonic() + 1.5
        while time.monotonic() < t_end:
            eq(bystander.request('PING').get('type'), 'pong', 'bystander PING')
            peak = max(peak, harness.rss_kb(gw))
            time.sleep(0.02)
    listing = sum(len(n) + 90 for n in NAMES)
    page = PAGE * ENTRY_MAX
    bound = sessions * (MAX_OUTBUF + page) // 1024 + 8 * 1024
    if harness.sanitized():
        bound += 16 * 1024  # the quarantine of freed memory (small_asan_quarantine)
    print('# RSS %d -> peak %d kB (+%d kB); bound %d kB; a whole listing is %d kB, 50 are %d kB'
          % (rss0, peak, peak - rss0, bound, listing // 1024, 50 * listing // 1024))
    replies = []
    for k, h in enumerate(hogs):
        for i in range(50):
            raw = h.read_raw(timeout=120)
            check(raw is not None, 'hog %d: the session closed after %d replies' % (k, i))
            check(len(raw) <= page, 'hog %d reply %d is %d bytes: more than a page of %d'
                  % (k, i, len(raw), PAGE))
            if i in (0, 49):
                replies.append(Session.parse(raw))
        h.close()
    check(peak - rss0 < bound, 'RSS grew by %d kB for %d non-readers (bound %d kB)'
          % (peak - rss0, sessions, bound))
    first = dict({'type': 'ok', 'op': 'channels'}, **rest_page(gw).json)
    for r in replies:
        eq(r, first, 'a reply of a non-reader: the first page')


harness.main()
