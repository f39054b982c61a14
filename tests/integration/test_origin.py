#!/usr/bin/env python3
"""What a page of another site can make a browser send: refused, nothing of it run.

A browser sends a page's requests to any address the page names, the
gateway's loopback ports included: a text/plain POST without asking first,
and on the TCP port an HTTP request whose body lines the page chooses. The
same-host rule of the WebSocket (docs/websocket.md) holds for every HTTP
route, the HTTP port answers no DNS name a page's site may point at this
machine, and the session port runs nothing of an HTTP request.

usage: test_origin.py <gateway binary> [name-filter]
"""
import socket
import sys

import harness
from harness import test, check, eq, check_error

EVIL = 'http://evil.example'


def cross_site_post(gw, channel, origin, body='from a page'):
    return gw.request('POST', '/v1/channels/%s/messages' % channel, body=body.encode(),
                      content_type='text/plain', headers={'Origin': origin})


@test
def a_foreign_page_cannot_publish():
    """a text/plain POST from a page of another site (or 'null') is 403 origin_not_allowed, and nothing is stored; the same host's page, and clients with no Origin, publish"""
    gw = harness.Gateway()
    for origin in [EVIL, 'null', 'http://127.0.0.1:%d' % (gw.http_port + 1),
                   'http://localhost:%d' % gw.http_port]:
        r = cross_site_post(gw, 'o-pub', origin)
        check_error(r, 403, 'origin_not_allowed', 'a POST from %s' % origin)
        check(origin in r.json['error']['message'] and '--ws-origins' in r.json['error']['message'],
              'the message names the origin and the setting: %s' % r.json['error']['message'])
    eq(gw.read('o-pub')['messages'], [], 'nothing stored from the refused pages')
    eq(cross_site_post(gw, 'o-pub', 'http://127.0.0.1:%d' % gw.http_port, 'own').status, 201,
       'a page of the gateway itself')
    eq(gw.request('POST', '/v1/channels/o-pub/messages', obj={'body': 'curl'}).status, 201,
       'a client with no Origin')
    eq([m['body'] for m in gw.read('o-pub')['messages']], ['own', 'curl'], 'what was stored')
    gw.stop()


@test
def a_foreign_page_is_refused_on_every_route():
    """reads, long-polls, event streams and Socket.IO polling from a page of another site are 403 before any work; the index and health too"""
    gw = harness.Gateway()
    gw.publish('o-read', 'x')
    for path in ['/v1/channels/o-read/messages?since=0', '/v1/channels/o-read/messages?since=1&wait=5',
                 '/v1/channels/o-read/events?since=0', '/v1/messages/1', '/v1/channels', '/healthz',
                 '/socket.io/?EIO=4&transport=polling', '/metrics']:
        r = gw.get(path, headers={'Origin': EVIL})
        check_error(r, 403, 'origin_not_allowed', 'GET %s from %s' % (path, EVIL))
    eq(gw.get('/v1/channels/o-read/messages?since=0',
              headers={'Origin': 'http://127.0.0.1:%d' % gw.http_port}).status, 200,
       'a read from the gateway\'s own page')
    gw.stop()


@test
def ws_origins_lets_pages_in():
    """--ws-origins listing a site lets its pages publish (others still 403); --ws-origins '*' lets any"""
    gw = harness.Gateway(args=['--ws-origins', 'http://app.example:3000'])
    eq(cross_site_post(gw, 'o-list', 'http://app.example:3000').status, 201, 'a listed origin')
    check_error(cross_site_post(gw, 'o-list', EVIL), 403, 'origin_not_allowed', 'an unlisted one')
    # Listed, the same-host rule is replaced: the gateway's own origin must be listed too.
    check_error(cross_site_post(gw, 'o-list', 'http://127.0.0.1:%d' % gw.http_port), 403,
                'origin_not_allowed', 'the gateway\'s own origin, not listed')
    gw.stop()
    gw = harness.Gateway(args=['--ws-origins', '*'])
    eq(cross_site_post(gw, 'o-any', EVIL).status, 201, 'any origin with *')
    gw.stop()


@test
def a_page_whose_name_points_here_is_refused():
    """DNS rebinding: a page of evil.example whose name now points at 127.0.0.1 sends Host and Origin of evil.example, which agree; refused 403 host_not_allowed on every route, the WebSocket included, nothing stored"""
    import wsclient
    gw = harness.Gateway()
    site = 'evil.example:%d' % gw.http_port
    hdrs = {'Host': site, 'Origin': 'http://' + site}
    r = gw.request('POST', '/v1/channels/o-dns/messages', body=b'rebound', content_type='text/plain',
                   headers=hdrs)
    check_error(r, 403, 'host_not_allowed', 'a publish for Host %s' % site)
    check('evil.example' in r.json['error']['message'] and '--http-hosts' in r.json['error']['message'],
          'the message names the Host and the setting: %s' % r.json['error']['message'])
    for path in ['/v1/channels/o-dns/messages?since=0', '/v1/channels/o-dns/events',
                 '/socket.io/?EIO=4&transport=polling', '/']:
        check_error(gw.get(path, headers=hdrs), 403, 'host_not_allowed', 'GET %s' % path)
    status, _, body, sock = wsclient.handshake_raw(
        gw, wsclient.upgrade_headers(origin='http://' + site, extra={'Host': site}))
    sock.close()
    eq(status, 403, 'the WebSocket upgrade for Host %s (%r)' % (site, body[:200]))
    check(b'host_not_allowed' in body, 'its code: %r' % body[:200])
    eq(gw.read('o-dns')['messages'], [], 'nothing stored')
    # The names no outside site controls are answered, with a page of their own.
    for host in ['127.0.0.1', 'localhost', 'app.localhost', 'gateway', '[::1]']:
        h = '%s:%d' % (host, gw.http_port)
        r = gw.request('POST', '/v1/channels/o-dns/messages', body=host.encode(),
                       content_type='text/plain', headers={'Host': h, 'Origin': 'http://' + h})
        eq(r.status, 201, 'a publish for Host %s' % h)
    gw.stop()


@test
def http_hosts_lists_names():
    """--http-hosts names the DNS names the gateway answers to (any case); '*' answers any"""
    gw = harness.Gateway(args=['--http-hosts', 'gw.example,other.example'])
    for host, status in [('GW.Example:1', 200), ('other.example', 200), ('evil.example', 403)]:
        eq(gw.get('/healthz', headers={'Host': host}).status, status, 'Host %s' % host)
    gw.stop()
    gw = harness.Gateway(args=['--http-hosts', '*'])
    eq(gw.get('/healthz', headers={'Host': 'evil.example'}).status, 200, 'any Host with *')
    gw.stop()


def session_port_lines(gw, data):
    """Sends data on a fresh session connection; the lines until the server closes."""
    s = socket.create_connection(('127.0.0.1', gw.tcp_port), timeout=harness.HTTP_TIMEOUT)
    try:
        s.sendall(data)
        got = harness.recv_until_close(s)
    finally:
        s.close()
    return got.decode('utf-8', 'replace').splitlines()


@test
def an_http_request_on_the_session_port_runs_nothing():
    """an HTTP request on the TCP session port (what a page's fetch() makes a browser send) gets an error line and a close; the PUB in its body is not run"""
    gw = harness.Gateway()
    for first in [b'POST / HTTP/1.1', b'GET /v1/channels HTTP/1.0', b'OPTIONS * HTTP/1.1',
                  b'PRI * HTTP/2.0']:
        body = b'PUB o-tcp from a page\r\n'
        req = (first + b'\r\nHost: 127.0.0.1:%d\r\nOrigin: %s\r\nContent-Type: text/plain\r\n'
               b'Content-Length: %d\r\n\r\n' % (gw.tcp_port, EVIL.encode(), len(body)) + body)
        lines = session_port_lines(gw, req)
        check(len(lines) == 2 and '"hello"' in lines[0] and '"unknown_command"' in lines[1]
              and 'not HTTP' in lines[1], '%r: the hello, one error line, then the close: %r'
              % (first, lines))
    eq(gw.read('o-tcp')['messages'], [], 'no PUB of a request body was run')
    gw.wait_stderr(r'tcp: an HTTP request line on the session port: closed, none of it run')
    # A command line that only looks like one runs: the first word is no HTTP method.
    lines = session_port_lines(gw, b'PUB o-tcp HTTP/1.1\nQUIT\n')
    check(any('"ok"' in ln and '"pub"' in ln for ln in lines), 'PUB o-tcp HTTP/1.1 ran: %r' % lines)
    eq([m['body'] for m in gw.read('o-tcp')['messages']], ['HTTP/1.1'], 'what was stored')
    # Only the first line is judged: later, an HTTP-looking line is an unknown command.
    lines = session_port_lines(gw, b'PING\nGET / HTTP/1.1\nQUIT\n')
    check(any('unknown command' in ln for ln in lines) and any('"bye"' in ln for ln in lines),
          'a later request line is an unknown command, and the session goes on: %r' % lines)
    gw.stop()


harness.main()
