#!/usr/bin/env python3
"""The WebSocket upgrade on GET /v1/ws (docs/websocket.md): the handshake's
accept key, the visavis.v1 subprotocol, the Origin allow-list, and the
clear refusals: 426 for a plain request or another version, 400 for a bad
key, 403 for an origin that is not allowed, 405 for another method, 429
past --max-ws-sessions."""

import sys
sys.dont_write_bytecode = True

import json

import harness
from harness import test, check, eq, check_hello
import wsclient
from wsclient import WsSession, handshake_raw, upgrade_headers, frame, OP_TEXT

shared = harness.Shared()


def error_of(status, headers, body, want_status, want_code):
    eq(status, want_status, 'status (headers %s, body %r)' % (headers, body[:300]))
    eq(headers.get('content-type'), ['application/json'], 'Content-Type of the error')
    obj = json.loads(body.decode('utf-8'))
    eq(list(obj.keys()), ['error'], 'error envelope')
    eq(obj['error']['code'], want_code, 'error code')
    check(obj['error']['message'].strip(), 'an empty error message')
    return obj['error']['message']


@test
def handshake_then_hello():
    """101 with the right Sec-WebSocket-Accept, no subprotocol unless offered, then the session's hello as a text message"""
    gw = shared.get()
    ws = WsSession(gw)
    eq(ws.headers.get('connection', [''])[0].lower(), 'upgrade', 'Connection header of the 101')
    check('sec-websocket-protocol' not in ws.headers, 'a subprotocol nobody offered: %s' % ws.headers)
    check_hello(ws.hello)
    eq(ws.frames[0][:2], (True, wsclient.OP_TEXT), 'the hello is one whole text frame')
    r = ws.request('PING x')
    eq((r['type'], r.get('token')), ('pong', 'x'), 'PING over the WebSocket')
    ws.sock.close()


@test
def subprotocol_negotiated():
    """Sec-WebSocket-Protocol: visavis.v1 is chosen when offered among others; only others: served without one"""
    gw = shared.get()
    ws = WsSession(gw, protocol='chat, visavis.v1')
    eq(ws.headers.get('sec-websocket-protocol'), ['visavis.v1'], 'subprotocol chosen')
    ws.sock.close()
    ws = WsSession(gw, protocol='chat')
    check('sec-websocket-protocol' not in ws.headers, 'chose one that was not ours: %s' % ws.headers)
    eq(ws.request('PING')['type'], 'pong', 'still a session')
    ws.sock.close()
    # Other letters are another protocol: answered as ours, a browser fails the connection.
    ws = WsSession(gw, protocol='VISAVIS.V1')
    check('sec-websocket-protocol' not in ws.headers, 'answered a value not offered: %s' % ws.headers)
    eq(ws.request('PING')['type'], 'pong', 'still a session')
    ws.sock.close()
    # A list may come as several fields (RFC 9110 5.3): the offer and Connection's token in the
    # second one count as in one field.
    status, headers, body, sock = wsclient.handshake_raw(gw, wsclient.upgrade_headers(
        protocol='chat', extra={'Connection': 'keep-alive', 'connection': 'Upgrade',
                                'sec-websocket-protocol': 'visavis.v1'}))
    sock.close()
    eq(status, 101, 'an upgrade whose lists come as two fields each: %r' % body)
    eq(headers.get('sec-websocket-protocol'), ['visavis.v1'], 'the offer of the second field')


@test
def plain_get_is_426():
    """GET /v1/ws without an upgrade: 426 Upgrade Required, Upgrade: websocket, a JSON error that says how"""
    gw = shared.get()
    r = gw.get('/v1/ws')
    eq(r.status, 426, 'status of a plain GET /v1/ws')
    eq(r.header('Upgrade'), 'websocket', 'Upgrade header of the 426')
    harness.check_error(r, 426, 'upgrade_required')
    check('Sec-WebSocket-Key' in r.json['error']['message'], 'the message says what to send: %s' % r.json)
    # the connection stays usable
    conn = gw.connect()
    eq(gw.get('/v1/ws', conn=conn).status, 426, 'first')
    eq(gw.get('/healthz', conn=conn).status, 200, 'the same connection goes on')
    conn.close()


@test
def wrong_version_is_426():
    """Sec-WebSocket-Version 8: 426 with Sec-WebSocket-Version: 13"""
    gw = shared.get()
    h = upgrade_headers()
    h['Sec-WebSocket-Version'] = '8'
    status, headers, body, sock = handshake_raw(gw, h)
    sock.close()
    error_of(status, headers, body, 426, 'upgrade_required')
    eq(headers.get('sec-websocket-version'), ['13'], 'the version we speak')


@test
def bad_key_is_400():
    """a Sec-WebSocket-Key that is not 16 bytes in base64, or none: 400 invalid_parameter"""
    gw = shared.get()
    for key in ('short', None):
        h = upgrade_headers()
        if key is None:
            del h['Sec-WebSocket-Key']
        else:
            h['Sec-WebSocket-Key'] = key
        status, headers, body, sock = handshake_raw(gw, h)
        sock.close()
        msg = error_of(status, headers, body, 400, 'invalid_parameter')
        check('Sec-WebSocket-Key' in msg, 'the message names the header: %s' % msg)


@test
def fields_allowed_once():
    """two Sec-WebSocket-Key, Sec-WebSocket-Version or Origin fields (RFC 6455 11.3): 400 invalid_parameter naming the field, not the first one silently"""
    gw = shared.get()
    for name, first, second in (('Sec-WebSocket-Key', wsclient.new_key(), wsclient.new_key()),
                                ('Sec-WebSocket-Version', '13', '8'),
                                ('Origin', 'http://127.0.0.1:%d' % gw.http_port, 'http://evil')):
        h = upgrade_headers()
        h[name] = first
        h[name.lower()] = second  # a second field: the dict keys differ in case
        status, headers, body, sock = handshake_raw(gw, h)
        sock.close()
        msg = error_of(status, headers, body, 400, 'invalid_parameter')
        check(name in msg, 'the message names the field: %s' % msg)


@test
def other_methods_are_405():
    """POST /v1/ws: 405 with Allow: GET"""
    gw = shared.get()
    r = gw.request('POST', '/v1/ws', body=b'{}')
    eq(r.status, 405, 'POST /v1/ws')
    eq(r.header('Allow'), 'GET', 'Allow')


@test
def origin_checked():
    """a page of this host may open a WebSocket, a page of another may not (403), unless --ws-origins lists it or is *"""
    gw = shared.get()
    host = '127.0.0.1:%d' % gw.http_port
    ws = WsSession(gw, origin='http://' + host)
    eq(ws.request('PING')['type'], 'pong', 'same-origin page')
    ws.sock.close()
    status, headers, body, sock = handshake_raw(gw, upgrade_headers(origin='http://evil.example'))
    sock.close()
    msg = error_of(status, headers, body, 403, 'origin_not_allowed')
    check('evil.example' in msg and '--ws-origins' in msg, 'the message says why and how: %s' % msg)
    status, headers, body, sock = handshake_raw(gw, upgrade_headers(origin='null'))
    sock.close()
    error_of(status, headers, body, 403, 'origin_not_allowed')

    listed = harness.Gateway(args=['--ws-origins', 'http://evil.example,http://other.example'])
    ws = WsSession(listed, origin='http://other.example')
    eq(ws.request('PING')['type'], 'pong', 'a listed origin')
    ws.sock.close()
    status, headers, body, sock = handshake_raw(listed, upgrade_headers(origin='http://' + host))
    sock.close()
    error_of(status, headers, body, 403, 'origin_not_allowed')

    anyone = harness.Gateway(env={'VISAVIS_WS_ORIGINS': '*'})
    ws = WsSession(anyone, origin='http://evil.example')
    eq(ws.request('PING')['type'], 'pong', 'any origin under *')
    ws.sock.close()


@test
def frames_sent_with_the_request():
    """frames written in the same packet as the upgrade request (read ahead by the HTTP front) are served"""
    gw = shared.get()
    ws = WsSession(gw, first=frame(OP_TEXT, 'PING early') + frame(OP_TEXT, 'PING later'))
    eq([ws.reply()['token'], ws.reply()['token']], ['early', 'later'], 'both answered, in order')
    ws.sock.close()


@test
def max_ws_sessions():
    """--max-ws-sessions 2: a third upgrade gets 429 with Retry-After, and one more fits once one closes"""
    gw = harness.Gateway(args=['--max-ws-sessions', '2'])
    a, b = WsSession(gw), WsSession(gw)
    status, headers, body, sock = handshake_raw(gw, upgrade_headers())
    sock.close()
    error_of(status, headers, body, 429, 'too_many_sessions')
    eq(headers.get('retry-after'), ['1'], 'Retry-After')
    a.request('QUIT')  # the session ends: its place is free once the close is done
    code, _, _ = a.expect_close()
    eq(code, 1000, 'QUIT closes with 1000')
    a.sock.close()
    c = harness.wait_for(lambda: _try(gw), 'room for a new WebSocket session')
    eq(c.request('PING')['type'], 'pong', 'the new session')
    b.sock.close()
    c.sock.close()


def _try(gw):
    try:
        return WsSession(gw)
    except harness.Failure:
        return None


@test
def index_lists_ws():
    """GET / lists GET /v1/ws"""
    gw = shared.get()
    r = gw.get('/')
    check(any(e.get('path') == '/v1/ws' for e in r.json.get('endpoints', [])),
          'no /v1/ws in the index: %s' % r.json)


harness.main()
