#!/usr/bin/env python3
"""Every documented error: status, {"error":{"code","message"}} body, nothing
stored, and the gateway still serving afterwards on the same connection
(unless it said Connection: close) and on a new one."""

import sys
sys.dont_write_bytecode = True

import http.client
import json

import harness
from harness import test, check, eq, check_error

shared = harness.Shared()

POST_ERRS = '/v1/channels/errs/messages'
POST_NEW = '/v1/channels/errs-new/messages'
VALID = b'{"sender":"ana","body":"valid"}'


def ensure_base(gw):
    """The channel 'errs' exists, so a stray store would change its count."""
    if not getattr(gw, '_errs_ready', False):
        gw.publish('errs', 'seed')
        gw._errs_ready = True


def state(gw):
    """Every channel with its counts (the pages of GET /v1/channels)."""
    return gw.channels()


def matches(r, expect):
    """expect: (status, code) or a list of acceptable (status, code)."""
    alts = expect if isinstance(expect, list) else [expect]
    for status, code in alts:
        if r.status == status and isinstance(r.json, dict) and \
                isinstance(r.json.get('error'), dict) and r.json['error'].get('code') == code:
            return status, code
    return alts[0]


def check_allow(r, allow, method):
    if allow is None:
        return
    got = {m.strip().upper() for m in (r.header('Allow') or '').split(',') if m.strip()}
    check(r.header('Allow') is not None, 'no Allow header on a 405: %s' % r)
    check(set(allow) <= got, 'Allow %r lacks some of %s' % (r.header('Allow'), sorted(allow)))
    check(method not in got, 'Allow %r lists the refused method %s' % (r.header('Allow'), method))


def still_serving(gw, before, conn, r):
    """Nothing stored; the same connection (when kept) and a new one work."""
    closing = 'close' in (r.header('Connection') or '').lower()
    if conn is not None and not closing:
        try:
            again = gw.get('/v1/channels', conn=conn)
        except (http.client.HTTPException, OSError) as e:
            raise harness.Failure('the connection was dropped after the error response, which '
                                  'did not say Connection: close (%r); response was %s' % (e, r))
        eq(again.status, 200, 'GET /v1/channels on the same connection (%s)' % again)
        eq(again.json.get('channels'), before[:1000],
           'channel list after the error (same connection): nothing stored')
    eq(state(gw), before, 'channel list after the error (new connection): nothing stored')
    m = gw.publish('errs-after', 'still here')
    check(m['id'] > 0, 'a valid publish after the error')
    return m


def run_case(method, path, body, ct, headers, expect, allow):
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    conn = gw.connect()
    try:
        r = gw.request(method, path, body=body, headers=headers, conn=conn, content_type=ct)
        status, code = matches(r, expect)
        check_error(r, status, code, '%s %s %s' % (method, path, _show(body)))
        check_allow(r, allow, method)
        still_serving(gw, before, conn, r)
    finally:
        conn.close()


def _show(body):
    if body is None:
        return ''
    return repr(body if len(body) < 80 else body[:80] + b'...')


def case(name, method, path, expect, body=None, ct='application/json', headers=None, allow=None):
    harness.add_test(name, run_case, method, path, body, ct, headers, expect, allow)


# -- invalid_json ------------------------------------------------------------
IJ = (400, 'invalid_json')
for _b in [b'{"body":', b'{body:"x"}', b"{'body':'x'}", b'{"body":"x"} trailing', b'{"body":"x",}',
           b'{"body":"x"}{"body":"y"}', b'{"body":"unterminated}', b'{"body":"bad escape \\q"}',
           b'   ', b'NaN', b'{"body":"x"}\x00', b'{"body":"raw\nnewline"}', b'{"body":"raw\ttab"}',
           b'{"body" "x"}', b'{"body":"x"', b'}']:
    case('invalid_json: %r' % _b, 'POST', POST_ERRS, IJ, body=_b)
case('invalid_json or missing_field: empty request body', 'POST', POST_ERRS,
     [IJ, (400, 'missing_field')], body=b'')
case('invalid_json (or invalid_utf8): lone surrogate escape \\ud800', 'POST', POST_ERRS,
     [IJ, (400, 'invalid_utf8')], body=b'{"body":"a\\ud800b"}')
case('invalid_json on a new channel creates nothing', 'POST', POST_NEW, IJ, body=b'{"body":')

# -- invalid_utf8 ------------------------------------------------------------
IU = (400, 'invalid_utf8')
for _b in [b'{"body":"\xff"}', b'{"body":"\xc3\x28"}', b'{"body":"\xc0\xaf"}', b'{"body":"\xed\xa0\x80"}',
           b'{"body":"\xf4\x90\x80\x80"}', b'{"body":"ok","sender":"\xe2\x82"}', b'{"body":"abc\xe2"}',
           b'\xff{"body":"x"}', b'{"body":"x","extra":"\xfe"}']:
    case('invalid_utf8: %r' % _b, 'POST', POST_ERRS, IU, body=_b)
case('invalid_utf8 on a new channel creates nothing', 'POST', POST_NEW, IU, body=b'{"body":"\xff"}')

# -- not_an_object -----------------------------------------------------------
for _b in [b'[1]', b'"x"', b'3', b'null', b'true', b'[]', b'[{"body":"x"}]', b'-0.5']:
    case('not_an_object: %r' % _b, 'POST', POST_ERRS, (400, 'not_an_object'), body=_b)

# -- missing_field -----------------------------------------------------------
for _b in [b'{}', b'{"sender":"ana"}', b'{"Body":"x"}', b'{"bodyx":"x","sender":"s"}']:
    case('missing_field: %r' % _b, 'POST', POST_ERRS, (400, 'missing_field'), body=_b)
case('missing_field on a new channel creates nothing', 'POST', POST_NEW, (400, 'missing_field'),
     body=b'{}')

# -- invalid_field -----------------------------------------------------------
IF = (400, 'invalid_field')
for _label, _obj in [
        ('body 5', {'body': 5}),
        ('body null', {'body': None}),
        ('body true', {'body': True}),
        ('body 1.5', {'body': 1.5}),
        ('body array', {'body': ['x']}),
        ('body object', {'body': {'t': 'x'}}),
        ('sender 5', {'body': 'x', 'sender': 5}),
        ('sender ""', {'body': 'x', 'sender': ''}),
        ('sender true', {'body': 'x', 'sender': True}),
        ('sender array', {'body': 'x', 'sender': ['a']}),
        ('sender object', {'body': 'x', 'sender': {}}),
        ('sender of 129 ASCII bytes', {'body': 'x', 'sender': 'a' * 129}),
        ('sender of 129 UTF-8 bytes (64 x e-acute + a)', {'body': 'x', 'sender': '\u00e9' * 64 + 'a'}),
        ('sender of 130 UTF-8 bytes (65 x e-acute)', {'body': 'x', 'sender': '\u00e9' * 65}),
        ('sender of 132 UTF-8 bytes (33 emoji)', {'body': 'x', 'sender': '\U0001F600' * 33}),
        ('sender of 4000 bytes', {'body': 'x', 'sender': 's' * 4000}),
        ('sender with a tab', {'body': 'x', 'sender': 'a\tb'}),
        ('sender with ESC', {'body': 'x', 'sender': 'a\x1b[2Jb'}),
        ('sender with DEL', {'body': 'x', 'sender': 'a\x7fb'}),
        # C1 controls: a terminal takes U+009B for ESC [ and U+009D for ESC ].
        ('sender with U+009B', {'body': 'x', 'sender': 'a\u009b2Jb'}),
        ('sender with U+0080', {'body': 'x', 'sender': '\u0080a'}),
        ('sender with U+009F', {'body': 'x', 'sender': 'a\u009f'})]:
    case('invalid_field: %s' % _label, 'POST', POST_ERRS, IF,
         body=json.dumps(_obj, ensure_ascii=False).encode('utf-8'))
case('invalid_field on a new channel creates nothing', 'POST', POST_NEW, IF, body=b'{"body":5}')

# -- invalid_parameter -------------------------------------------------------
IP = (400, 'invalid_parameter')
for _q in ['since=-1', 'since=abc', 'limit=x', 'limit=1001', 'limit=-1', 'since=99999999999999999999999',
           'since=1.5', 'since=', 'limit=', 'since=1abc', 'since=%201', 'limit=1001&since=0',
           'since=0&limit=abc']:
    case('invalid_parameter: ?%s' % _q, 'GET', '/v1/channels/errs/messages?' + _q, IP)
# A name without '=' is there, with no number: not the same as absent.
for _q in ['since', 'limit', 'wait', 'limit=2&since', 'since&wait=1']:
    case('invalid_parameter: a name alone ?%s' % _q, 'GET', '/v1/channels/errs/messages?' + _q, IP)
case('invalid_parameter: a name alone GET /v1/channels?limit', 'GET', '/v1/channels?limit', IP)
for _id in ['abc', '0', '-1', '1.5', '1x', '0x10', '%201']:
    case('invalid_parameter: GET /v1/messages/%s' % _id, 'GET', '/v1/messages/' + _id, IP)
# A parameter given twice is ambiguous (which one counts?): refused, whatever the values.
for _q in ['since=1&since=2', 'since=0&limit=5&since=0', 'limit=5&limit=6', 'wait=0&wait=1',
           'Since=1&since=2', 'wait=1&WAIT=70']:
    case('invalid_parameter: given twice ?%s' % _q, 'GET', '/v1/channels/errs/messages?' + _q, IP)
for _q in ['after=a&after=b', 'limit=1&limit=2']:
    case('invalid_parameter: given twice GET /v1/channels?%s' % _q, 'GET', '/v1/channels?' + _q, IP)
case('invalid_parameter: sender given twice stores nothing', 'POST',
     POST_ERRS + '?sender=ana&sender=bob', IP, body=b'hi', ct='text/plain')
case('invalid_parameter: sender given twice creates nothing', 'POST',
     POST_NEW + '?sender=ana&sender=ana', IP, body=b'hi', ct='text/plain')
# A JSON body names its sender in the body: ?sender= beside it would be dropped unseen.
for _q in ['sender=zed', 'sender', 'Sender=zed']:
    case('invalid_parameter: ?%s with a JSON body stores nothing' % _q, 'POST',
         POST_ERRS + '?' + _q, IP, body=VALID)
# %00 decodes to the NUL that ends libmicrohttpd's strings: what follows it would be lost.
for _q in ['since=1%00', 'limit=5%00x', 'x=%00']:
    case('invalid_parameter: ?%s' % _q, 'GET', '/v1/channels/errs/messages?' + _q, IP)
case('invalid_parameter: a channel with %00 stores nothing', 'POST', POST_ERRS + '%00x', IP,
     body=VALID)
case('invalid_parameter: a sender with %00 stores nothing', 'POST', POST_ERRS + '?sender=a%00b', IP,
     body=b'hi', ct='text/plain')
# Decoded, the path ends at the NUL and names a path that does not exist: the NUL is still why.
case('invalid_parameter: %00 inside a channel of a path', 'POST', '/v1/channels/a%00/messages', IP,
     body=VALID)
case('invalid_parameter or not_found: id beyond 64 bits', 'GET', '/v1/messages/99999999999999999999999',
     [IP, (404, 'not_found')])

# -- invalid_channel ---------------------------------------------------------
IC = (400, 'invalid_channel')
for _ch, _label in [('c' * 65, '65 characters'), ('a%20b', '"a b" (%20)'), ('a*', 'a*'),
                    ('caf%C3%A9', 'non-ASCII'), ('a+b', 'a+b'), ('a:b', 'a:b'), ('a%22b', 'a"b'),
                    ('%E2%82%AC', 'euro sign')]:
    case('invalid_channel: POST to %s' % _label, 'POST', '/v1/channels/%s/messages' % _ch, IC,
         body=VALID)
    case('invalid_channel: GET %s' % _label, 'GET', '/v1/channels/%s/messages' % _ch, IC)
# "." and ".." match the pattern, but a URL cannot name them (clients resolve them as path
# steps): nothing is published there, however the path spells them.
for _ch in ['.', '..', '%2E', '%2e%2E', '.%2e']:
    case('invalid_channel: POST to %s stores nothing' % _ch, 'POST', '/v1/channels/%s/messages' % _ch,
         IC, body=VALID)
case('invalid_channel or not_found: empty channel name', 'POST', '/v1/channels//messages',
     [IC, (404, 'not_found')], body=VALID)

# -- not_found ---------------------------------------------------------------
NF = (404, 'not_found')
for _p in ['/nope', '/v1/channel', '/v1/channels/errs', '/v1/channels/errs/messages/1',
           '/v1/channels/errs/messagesx', '/v2/channels', '/V1/channels', '/healthz/x', '/v1/messages',
           '/v1/messages/999999', '/v1/messages/1/x']:
    case('not_found: GET %s' % _p, 'GET', _p, NF)
# An encoded slash would split a segment once decoded: a proxy matching the path as sent would
# see another route than the gateway.
case('not_found: POST /v1/channels/errs%2Fmessages stores nothing', 'POST',
     '/v1/channels/errs%2Fmessages', NF, body=VALID)
for _p in ['/v1/channels/errs%2fmessages', '/v1/channels/errs%2Fevents', '/v1%2Fchannels',
           '/v1/channels/a%2Fb/messages']:
    case('not_found: GET %s' % _p, 'GET', _p, NF)
case('not_found: POST /nope with a valid body stores nothing', 'POST', '/nope', NF, body=VALID)
case('not_found: POST /v1/channels/errs (no /messages) stores nothing', 'POST', '/v1/channels/errs',
     NF, body=VALID)

# -- method_not_allowed ------------------------------------------------------
MNA = (405, 'method_not_allowed')
CH_METHODS = {'GET', 'HEAD', 'POST'}
RO_METHODS = {'GET', 'HEAD'}
for _m, _p, _allow, _body in [
        ('DELETE', POST_ERRS, CH_METHODS, None),
        ('PUT', POST_ERRS, CH_METHODS, VALID),
        ('PATCH', POST_ERRS, CH_METHODS, VALID),
        ('PUT', POST_NEW, CH_METHODS, VALID),
        ('POST', '/healthz', RO_METHODS, VALID),
        ('DELETE', '/healthz', RO_METHODS, None),
        ('PUT', '/v1/channels', RO_METHODS, VALID),
        ('POST', '/v1/channels', RO_METHODS, VALID),
        ('DELETE', '/v1/messages/1', RO_METHODS, None),
        ('POST', '/v1/messages/1', RO_METHODS, VALID),
        ('PUT', '/v1/version', RO_METHODS, VALID),
        ('POST', '/v1/version', RO_METHODS, VALID)]:
    case('method_not_allowed: %s %s' % (_m, _p), _m, _p, MNA, body=_body, allow=_allow)

# -- unsupported_media_type --------------------------------------------------
UMT = (415, 'unsupported_media_type')
for _ct in ['text/plain; charset=latin-1', None, 'application/x-www-form-urlencoded',
            'application/jsonx', 'text/json', 'text/plainx', 'application/json-patch+json',
            'multipart/form-data; boundary=x', '']:
    case('unsupported_media_type: Content-Type %r' % _ct, 'POST', POST_ERRS, UMT, body=VALID, ct=_ct,
         headers={'Content-Type': _ct} if _ct == '' else None)
case('unsupported_media_type on a new channel creates nothing', 'POST', POST_NEW, UMT, body=VALID,
     ct='application/json; charset=utf8')


@test
def messages_say_what_to_change():
    """the error says what is wrong: a charset that is not utf-8 (not "send JSON"), a since too large for a seq (not "not an integer"), a wait's own range, a SUB without its channel in the usage's letters"""
    gw = shared.get()
    for ct in ('application/json; charset=utf8', 'text/plain; charset=latin1'):
        r = gw.request('POST', POST_ERRS, body=VALID, content_type=ct)
        check_error(r, 415, 'unsupported_media_type', ct)
        said = r.json['error']['message']
        check('charset' in said and 'send JSON' not in said, '%s: %s' % (ct, said))
    r = gw.get('/v1/channels/errs/messages?since=99999999999999999999999')
    check_error(r, 400, 'invalid_parameter', 'a since past 2^63')
    check('from 0 to 9223372036854775807' in r.json['error']['message'], r.json['error']['message'])
    r = gw.get('/v1/channels/errs/messages?since=0&wait=1.5')
    check_error(r, 400, 'invalid_parameter', 'a wait that is no integer')
    check('from 0 to 60,' in r.json['error']['message'], 'its own range: %s'
          % r.json['error']['message'])
    with harness.Session(gw) as s:
        e = s.request('SUB')
        eq(e.get('message'), 'SUB needs a channel (see HELP)', 'SUB without a channel')


# -- hand-made requests on a raw socket --------------------------------------

def raw_headers(method, path, extra):
    lines = ['%s %s HTTP/1.1' % (method, path), 'Host: 127.0.0.1'] + extra
    return ('\r\n'.join(lines) + '\r\n\r\n').encode('ascii')


@test
def too_large_headers_only():
    """Content-Length 10000000 with no body sent: 413 body_too_large before any body byte"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw() as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: 10000000']))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 413, 'body_too_large', 'headers only, Content-Length 10000000')
        # docs/api.md: the unread body is still on the connection, so it is closed.
        check(rc.closed_by_peer(timeout=10), 'connection still open after the 413, got %r' % rc.buf[:200])
    still_serving(gw, before, None, r)


@test
def too_large_on_any_route():
    """Content-Length 10000000 with no body sent, on routes that take no body or none of that method (GET /v1/version, PUT to messages, POST to a path that is none): 413 at once, before any body byte, and close"""
    gw = shared.get()
    for method, path in (('GET', '/v1/version'), ('PUT', POST_ERRS), ('POST', '/nope'),
                         ('GET', '/v1/channels/errs/messages?wait=5')):
        with gw.raw(timeout=5) as rc:
            rc.send(raw_headers(method, path, ['Content-Length: 10000000']))
            r = rc.read_response()
            check(r is not None, '%s %s: closed without a response' % (method, path))
            check_error(r, 413, 'body_too_large', '%s %s, Content-Length 10000000' % (method, path))
            check(rc.closed_by_peer(timeout=10), '%s %s: still open after the 413' % (method, path))


@test
def too_large_expect_continue():
    """Expect: 100-continue with a too large Content-Length: 413, never 100 Continue"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw() as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: 10000000',
                                                'Expect: 100-continue']))
        r = rc.read_response(skip_100=False)
        check(r is not None, 'connection closed without a response')
        check(r.status != 100, 'the gateway asked for the body (100 Continue) it must refuse')
        check_error(r, 413, 'body_too_large', 'Expect: 100-continue, Content-Length 10000000')
    still_serving(gw, before, None, r)


@test
def too_large_just_over_default():
    """Content-Length 65537 (default --max-body + 1), headers only: 413 body_too_large"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw() as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: 65537']))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 413, 'body_too_large', 'Content-Length 65537')
    still_serving(gw, before, None, r)


@test
def content_length_shorter_than_body():
    """a Content-Length shorter than the JSON: the cut body is invalid_json, nothing stored"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    body = b'{"sender":"cut","body":"hello"}'
    with gw.raw() as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: 10']) + body)
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 400, 'invalid_json', 'Content-Length 10 for %d bytes' % len(body))
    still_serving(gw, before, None, r)


@test
def content_length_longer_than_body():
    """a body shorter than its Content-Length, then EOF: no message stored, gateway fine"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw(timeout=10) as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: 100']) + VALID)
        rc.shutdown_write()
        r = rc.read_response()
        check(r is None or 400 <= r.status < 500,
              'a truncated request must not succeed; got %s' % r)
    still_serving(gw, before, None, r or harness.Resp(0, '', [], b''))


@test
def content_length_not_a_number():
    """Content-Length: abc is refused with a 4xx, nothing stored"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw(timeout=10) as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Content-Length: abc']) + VALID)
        r = rc.read_response()
        check(r is not None and 400 <= r.status < 500, 'want a 4xx, got %s' % r)
    still_serving(gw, before, None, r)


@test
def garbage_request_line():
    """a garbage request line gets a 400 (or a close), and the gateway goes on"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    for junk in [b'GARBAGE\r\n\r\n', b'\x01\x02\xff junk\r\n\r\n', b'GET /healthz\r\n\r\n',
                 b'GET /healthz HTTP/1.1\r\nno colon here\r\n\r\n', b'GET /healthz HTTP/9.9\r\n\r\n',
                 b'GET\r\n\r\n']:
        with gw.raw(timeout=10) as rc:
            rc.send(junk)
            try:
                r = rc.read_response()
            except harness.Failure:
                r = None
            check(r is None or 400 <= r.status < 600, '%r: want an error or a close, got %s' % (junk, r))
    eq(state(gw), before, 'nothing stored')
    gw.publish('errs-after', 'after garbage')


@test
def huge_header():
    """a 200 KB header is refused (or the connection closed); the gateway goes on"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw(timeout=10) as rc:
        try:
            rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                    'X-Big: ' + 'x' * 200000,
                                                    'Content-Length: %d' % len(VALID)]) + VALID)
            r = rc.read_response()
        except (OSError, harness.Failure):
            r = None
        check(r is None or 400 <= r.status < 500, 'want a 4xx or a close, got %s' % r)
    eq(state(gw), before, 'nothing stored')
    gw.publish('errs-after', 'after huge header')


def chunked(body, size=7):
    out = b''
    for i in range(0, len(body), size):
        piece = body[i:i + size]
        out += b'%x\r\n' % len(piece) + piece + b'\r\n'
    return out + b'0\r\n\r\n'


@test
def chunked_body_accepted():
    """a valid body sent with Transfer-Encoding: chunked is published"""
    gw = shared.get()
    ensure_base(gw)
    body = json.dumps({'sender': 'chunky', 'body': 'in \u00e9 pieces ' * 20}).encode()
    with gw.raw() as rc:
        rc.send(raw_headers('POST', '/v1/channels/errs-chunked/messages',
                            ['Content-Type: application/json', 'Transfer-Encoding: chunked'])
                + chunked(body))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        eq(r.status, 201, 'status (%s)' % r)
        eq(r.json['body'], 'in \u00e9 pieces ' * 20, 'body')
        # The connection stays usable for a second request.
        rc.send(raw_headers('GET', '/v1/channels/errs-chunked/messages', []))
        r2 = rc.read_response()
        check(r2 is not None, 'connection closed after the chunked request')
        eq(r2.status, 200, 'second request on the connection (%s)' % r2)
        eq([m['body'] for m in r2.json['messages']], ['in \u00e9 pieces ' * 20], 'stored bodies')


@test
def chunked_body_too_large_on_any_route():
    """a chunked body over --max-body on a route that takes none (GET): 413 body_too_large, as with its Content-Length, and close"""
    gw = shared.get()
    with gw.raw(timeout=10) as rc:
        rc.send(raw_headers('GET', '/v1/version', ['Transfer-Encoding: chunked'])
                + chunked(b'z' * 70000, size=4096))
        r = rc.read_response()
        check(r is not None, 'closed without a response')
        check_error(r, 413, 'body_too_large', 'GET with a chunked body of 70000 bytes')
        check(rc.closed_by_peer(timeout=10), 'still open after the 413')


@test
def chunked_invalid_json():
    """a chunked body that is not JSON: 400 invalid_json, nothing stored"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    with gw.raw() as rc:
        rc.send(raw_headers('POST', POST_ERRS, ['Content-Type: application/json',
                                                'Transfer-Encoding: chunked'])
                + chunked(b'{"body": nope'))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 400, 'invalid_json', 'chunked invalid JSON')
    still_serving(gw, before, None, r)


# -- --max-body 1000 ------------------------------------------------------------

def sized(n, ch='mb'):
    prefix, suffix = b'{"sender":"mb","body":"', b'"}'
    raw = prefix + b'z' * (n - len(prefix) - len(suffix)) + suffix
    assert len(raw) == n
    return raw


@test
def max_body_flag_boundary():
    """--max-body 1000: a 1000-byte body is published, 1001 bytes is 413 body_too_large"""
    gw = harness.Gateway(args=['--max-body', '1000'])
    r = gw.request('POST', '/v1/channels/mb/messages', body=sized(1000))
    eq(r.status, 201, '1000 bytes: status (%s)' % r)
    before = state(gw)
    conn = gw.connect()
    r = gw.request('POST', '/v1/channels/mb/messages', body=sized(1001), conn=conn)
    check_error(r, 413, 'body_too_large', '1001 bytes')
    conn.close()
    eq(state(gw), before, 'nothing stored by the 1001-byte request')
    r = gw.request('POST', '/v1/channels/mb/messages', body=sized(999))
    eq(r.status, 201, '999 bytes after the refusal: status (%s)' % r)
    eq([m['seq'] for m in gw.read('mb')['messages']], [1, 2], 'seqs stored on mb')


@test
def max_body_headers_only():
    """--max-body 1000: Content-Length 1001 with no body is refused at once with 413"""
    gw = harness.Gateway(args=['--max-body', '1000'])
    with gw.raw() as rc:
        rc.send(raw_headers('POST', '/v1/channels/mb/messages',
                            ['Content-Type: application/json', 'Content-Length: 1001']))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 413, 'body_too_large', 'Content-Length 1001')
    eq(state(gw), [], 'nothing stored')


@test
def max_body_chunked():
    """--max-body 1000 with chunked bodies: 1000 bytes published, 1001 bytes 413"""
    gw = harness.Gateway(args=['--max-body', '1000'])
    with gw.raw() as rc:
        rc.send(raw_headers('POST', '/v1/channels/mb/messages',
                            ['Content-Type: application/json', 'Transfer-Encoding: chunked'])
                + chunked(sized(1000), 100))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        eq(r.status, 201, 'chunked 1000 bytes: status (%s)' % r)
    before = state(gw)
    with gw.raw() as rc:
        rc.send(raw_headers('POST', '/v1/channels/mb/messages',
                            ['Content-Type: application/json', 'Transfer-Encoding: chunked'])
                + chunked(sized(1001), 100))
        r = rc.read_response()
        check(r is not None, 'connection closed without a response')
        check_error(r, 413, 'body_too_large', 'chunked 1001 bytes')
        # docs/api.md: a chunked body is read to its end, so the connection goes on.
        rc.send(raw_headers('GET', '/v1/channels/mb/messages', []))
        r2 = rc.read_response()
        check(r2 is not None, 'connection closed after the chunked 413')
        eq(r2.status, 200, 'request after the chunked 413 on the same connection (%s)' % r2)
        eq([m['seq'] for m in r2.json['messages']], [1], 'seqs on mb')
    eq(state(gw), before, 'nothing stored by the chunked 1001-byte request')
    gw.publish('mb', 'still fine')


@test
def max_body_chunked_huge():
    """--max-body 1000, a 2 MiB chunked body: 413 or a close, nothing stored, gateway fine"""
    gw = harness.Gateway(args=['--max-body', '1000'])
    gw.publish('mb', 'seed')
    before = state(gw)
    with gw.raw(timeout=20) as rc:
        try:
            rc.send(raw_headers('POST', '/v1/channels/mb/messages',
                                ['Content-Type: application/json', 'Transfer-Encoding: chunked'])
                    + chunked(sized(2 * 1024 * 1024), 65536))
            r = rc.read_response()
        except (ConnectionResetError, BrokenPipeError):
            r = None
        check(r is None or r.status == 413, 'want 413 or a close, got %s' % r)
        if r is not None:
            check_error(r, 413, 'body_too_large', 'chunked 2 MiB')
    eq(state(gw), before, 'nothing stored')
    gw.publish('mb', 'still fine')


@test
def get_with_body_ignored():
    """a body sent with a GET is read and ignored; the connection goes on"""
    gw = shared.get()
    ensure_base(gw)
    before = state(gw)
    conn = gw.connect()
    r = gw.request('GET', '/v1/channels/errs/messages', body=VALID, conn=conn)
    eq(r.status, 200, 'status (%s)' % r)
    eq([m['body'] for m in r.json['messages']], ['seed'], 'bodies')
    r = gw.request('GET', '/healthz', body=b'x' * 5000, conn=conn, content_type='text/plain')
    eq(r.status, 200, 'healthz with a body (%s)' % r)
    eq(gw.get('/v1/channels', conn=conn).json.get('channels'), before[:1000],
       'nothing stored (same connection)')
    conn.close()


@test
def errors_leave_store_untouched_overall():
    """after every error case above, only valid publishes are in the store"""
    gw = shared.get()
    ensure_base(gw)
    names = [c['name'] for c in state(gw)]
    for n in names:
        check(n in ('errs', 'errs-after', 'errs-chunked'), 'unexpected channel %r in %s' % (n, names))
    eq([m['body'] for m in gw.read_all('errs')], ['seed'], 'bodies on errs')


harness.main()
