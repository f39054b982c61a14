#!/usr/bin/env python3
"""A newcomer's first minutes: a plain-text publish, the 415 that shows the
commands that work, the index at /, a wrong path that names the right one,
a session a person can read (the greeting's hint, HELP in words, NAME,
EXIT), and the README's own "Try it" commands and session transcript run
against a real gateway, so the README cannot drift from it."""

import sys
sys.dont_write_bytecode = True

import json
import os
import re
import shutil
import subprocess
import threading

import harness
from harness import test, check, eq, check_error, check_hello, check_session_error, Session

shared = harness.Shared()
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', 'README.md')


def post_text(gw, channel, body, query='', ct='text/plain'):
    return gw.request('POST', '/v1/channels/%s/messages%s' % (channel, query),
                      body=body.encode('utf-8') if isinstance(body, str) else body,
                      content_type=ct)


@test
def plain_text_publish():
    """a text/plain body is the message, byte for byte; ?sender= names the sender"""
    gw = shared.get()
    r = post_text(gw, 'nc-text', 'hi')
    eq(r.status, 201, 'status (%s)' % r)
    eq((r.json['body'], r.json['sender'], r.json['via']), ('hi', 'anonymous', 'rest'), 'message')
    r = post_text(gw, 'nc-text', 'ça va\nbien ', query='?sender=bob',
                  ct='text/plain; charset=UTF-8')
    eq(r.status, 201, 'status with a charset and a sender')
    eq((r.json['body'], r.json['sender']), ('ça va\nbien ', 'bob'), 'body kept as sent, sender')
    eq([m['body'] for m in gw.read_all('nc-text')], ['hi', 'ça va\nbien '], 'stored')
    check_error(post_text(gw, 'nc-text', b'\xff\xfe'), 400, 'invalid_utf8', 'latin-1 bytes')
    check_error(post_text(gw, 'nc-text', 'x', query='?sender='), 400, 'invalid_field', 'empty sender')
    check_error(post_text(gw, 'nc-text', 'x', ct='text/plain; charset=latin-1'), 415,
                'unsupported_media_type', 'another charset')
    eq(len(gw.read_all('nc-text')), 2, 'nothing more stored after the refusals')
    # An encoded slash is refused in the path only: in the query it is a slash in a value.
    r = post_text(gw, 'nc-text', 'x', query='?sender=a%2Fb')
    eq((r.status, r.json.get('sender')), (201, 'a/b'), 'a sender with %2F (' + str(r) + ')')


@test
def form_body_shows_what_works():
    """curl -d's form body is refused 415, and the message shows the JSON and the text commands"""
    gw = shared.get()
    r = post_text(gw, 'nc-form', 'hi', ct='application/x-www-form-urlencoded')
    check_error(r, 415, 'unsupported_media_type', 'a form')
    msg = r.json['error']['message']
    for want in ("content-type: application/json", '{"body":"hi"}', 'curl --json',
                 "content-type: text/plain"):
        check(want in msg, '415 message names %r: %s' % (want, msg))
    eq(gw.read_all('nc-form'), [], 'nothing stored')


@test
def index_at_root():
    """GET / and /v1 answer a JSON index of the endpoints, with how to open a session"""
    gw = shared.get()
    for path in ('/', '/v1', '/v1/'):
        r = gw.get(path)
        eq(r.status, 200, 'GET %s' % path)
        eq(r.json['name'], 'visavis', 'name')
        paths = [e['path'] for e in r.json['endpoints']]
        check('/v1/channels/{channel}/messages' in paths, 'the publish endpoint listed: %s' % paths)
        check(all(set(e) == {'method', 'path', 'what'} for e in r.json['endpoints']),
              'each endpoint: method, path, what')
        check(str(gw.tcp_port) in r.json['sessions'], 'the session port: %s' % r.json['sessions'])


@test
def wrong_path_names_the_right_one():
    """a trailing slash, a missing /messages or /v1, a word in capitals or without its s: the 404 says which path was meant"""
    gw = shared.get()
    for path, meant in [('/v1/channels/', '/v1/channels'),
                        ('/V1/Channels', '/v1/channels'),
                        ('/v1/channel/General/message', '/v1/channels/General/messages'),
                        ('/v1/channels/general', '/v1/channels/general/messages'),
                        ('/v1/channels/general/messages/', '/v1/channels/general/messages'),
                        ('/channels/general/messages', '/v1/channels/general/messages')]:
        r = gw.get(path)
        check_error(r, 404, 'not_found', path)
        check('did you mean %s)' % meant in r.json['error']['message'],
              '%s suggests %s: %s' % (path, meant, r.json['error']['message']))


@test
def a_session_for_a_person():
    """the greeting says to type HELP; HELP in words; NAME makes the sender; EXIT leaves"""
    gw = shared.get()
    with Session(gw) as s:
        check_hello(s.hello)
        eq(s.hello.get('hint'), 'type HELP for the commands', 'the greeting says how to start')
        s.cmd('HELP')
        s.cmd('PING end')
        r = s.reply()
        eq(r['type'], 'help-text', 'HELP typed as text answers in words')
        words = r['lines']
        check(len(words) >= 10, 'HELP in words: %d lines' % len(words))
        check(all(w.startswith('  ') for w in words), 'each line starts with two blanks')
        check(any(w.strip().startswith('PUB <channel> <text>') for w in words), 'PUB explained')
        check(any('NAME' in w for w in words) and any('EXIT' in w for w in words), 'NAME, EXIT')
        eq(s.reply()['type'], 'pong', 'after the words (and their empty line), the next reply')
    with Session(gw) as s:
        r = s.request_json({'op': 'help', 'tag': 'h'})
        eq((r['type'], r['op'], r['tag']), ('ok', 'help', 'h'), 'HELP in JSON stays structured')
        check(len(r['commands']) >= 10, 'commands')
        eq(s.request('NAME Ana Lopez'), {'type': 'ok', 'op': 'name', 'name': 'Ana Lopez'}, 'NAME')
        r = s.request('PUB nc-name salut')
        eq(r['message']['sender'], 'Ana Lopez', 'text PUB after NAME')
        check_session_error(s.request('NAME \x01'), 'invalid_field', op='name')
        eq(s.request('exit'), {'type': 'bye', 'reason': 'quit'}, 'exit works like QUIT')
        eq(s.until_eof(), [], 'then the server closes')


def readme_block(after):
    """The first fenced block of README.md after the line containing `after`."""
    text = open(README, encoding='utf-8').read()
    at = text.index(after)
    m = re.search(r'```[a-z]*\n(.*?)```', text[at:], re.S)
    return m.group(1)


def readme_commands():
    """The "Try it" block's commands, continuation lines joined, comments dropped."""
    out, cur = [], ''
    for line in readme_block('## Try it').splitlines():
        if not cur and (not line.strip() or line.lstrip().startswith('#')):
            continue
        cur += line.rstrip('\\').rstrip() + ' ' if line.endswith('\\') else line
        if not line.endswith('\\'):
            out.append(re.sub(r'\s+#.*$', '', cur).strip())
            cur = ''
    return out


@test
def readme_try_it_runs():
    """every command of the README's "Try it" runs against a gateway as written (host and port aside)"""
    if not shutil.which('curl'):
        return harness.skip('curl is not installed')
    gw = harness.Gateway()
    cmds = readme_commands()
    check(len(cmds) >= 10, 'the Try it block has %d commands' % len(cmds))
    base = '127.0.0.1:%d' % gw.http_port
    for cmd in cmds:
        check(cmd.startswith('curl '), 'a Try it command that is not curl: %s' % cmd)
        cmd = cmd.replace('localhost:8080', base)
        holder = None
        if 'wait=' in cmd:
            # the long-poll: released by a post "from another terminal"
            holder = threading.Timer(0.5, lambda: gw.publish('general', 'from another terminal'))
            holder.start()
        p = subprocess.run(['sh', '-c', cmd + ' --max-time 20 -sS'], capture_output=True,
                           timeout=40)
        if holder:
            holder.join()
        eq(p.returncode, 0, 'exit status of %s (stderr %s)' % (cmd, p.stderr))
        out = p.stdout.decode('utf-8', 'replace')
        if ' -i ' in cmd:
            status = int(out.split(' ', 2)[1])
            want = 400 if '{"body":' in cmd and '"}' not in cmd.split('-d', 1)[1] else 201
            eq(status, want, 'status of %s' % cmd)
        elif '/metrics' not in cmd:
            try:
                json.loads(out)
            except ValueError:
                raise harness.Failure('%s did not answer JSON: %s' % (cmd, out[:300]))
    eq([m['sender'] for m in gw.read_all('general')], ['ana', 'bob', 'anonymous'],
       'the two publishes of Try it, then the post that released the long-poll')


@test
def readme_session_transcript_holds():
    """the README's nc transcript, typed into a session after its Try it publishes, gets the same kinds of lines back"""
    gw = harness.Gateway()
    gw.publish('general', 'salut', sender='ana')
    gw.publish('general', 'bonjour', sender='bob')
    lines = readme_block('The gateway greets you at once').strip().splitlines()
    want = [json.loads(x) for x in lines if x.startswith('{')]
    typed = [x for x in lines if not x.startswith('{')]
    with Session(gw) as s:
        got = [s.hello]
        for t in typed:
            s.cmd(t)
        while len(got) < len(want):
            got.append(s.read_line())
    eq([(g['type'], g.get('op')) for g in got], [(w['type'], w.get('op')) for w in want],
       'the kinds of lines, in order')
    for g, w in zip(got, want):
        eq(list(g.keys()), list(w.keys()), 'keys of a %s line' % w['type'])
        for k in ('name', 'since', 'top', 'reason', 'hint'):
            if k in w:
                eq(g[k], w[k], '%s of a %s line' % (k, w['type']))
        m, wm = g.get('message', g), w.get('message', w)
        if 'body' in wm:
            eq((m['seq'], m['sender'], m['body'], m['via']),
               (wm['seq'], wm['sender'], wm['body'], wm['via']), 'a message as the README shows it')


harness.main()
