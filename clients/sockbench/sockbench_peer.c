/*
 * sockbench_peer.c - each server's way of being subscribed to and published
 * to, for the fan-out and idle runs: the opening of a subscriber (connect,
 * handshake, subscribe, its confirmation), the bodies of what is pushed to
 * it, and the publisher's requests and replies.
 *
 *   kind          subscriber                                publisher
 *   gateway-tcp   hello, SUB ch, its ok; message lines     PUB ch body over TCP, its ok
 *   gateway-ws    GET /v1/ws (visavis.v1), the same lines   the same (TCP)
 *                 in text messages
 *   gateway-sse   GET /v1/channels/ch/events?since=0, the   the same (TCP)
 *                 SUB's ok comment; message events
 *   redis         SUBSCRIBE ch, its reply; message arrays   PUBLISH ch body: the count
 *   nats          INFO, CONNECT, SUB ch 1, PING, PONG; MSG  PUB ch len body, verbose: +OK
 *   nchan-ws      GET /sub/ch, 101; a text message each     POST /pub/ch: 201 and the count
 *   nchan-sse     GET /sub/ch (text/event-stream), 200;     the same
 *                 data: body events
 *
 * Nchan confirms nothing on the subscriber's connection, so the opening of
 * its subscribers ends with peer_wait_subscribed, which asks the channel how
 * many it has. Every body is the publisher's, unescaped: digits, ':' and
 * 'x' (sockbench_fanout.c), the same bytes on every server.
 */
#include "sockbench.h"

#include "client_http.h"
#include "server_line.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* The gateway's SSE data as a push line (server_line reads those the fast way); main thread. */
static struct buf g_sse_line;

static bool is_sse(void)
{
    return g_kind == SB_GW_SSE || g_kind == SB_NCHAN_SSE;
}

static void queue_text(struct buf *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void queue_text(struct buf *out, const char *fmt, ...)
{
    char tmp[1024];
    va_list ap;

    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    GW_ASSERT(n > 0 && (size_t)n < sizeof tmp);
    buf_append(out, tmp, (size_t)n);
}

/* The connection is up: the first request of its kind. */
static void opened(struct peer *p, const struct client_addr *a, const char *channel)
{
    char path[160];

    p->state = PEER_OPENING;
    switch (g_kind) {
    case SB_GW_TCP:
    case SB_NATS:
        break; /* the server speaks first */
    case SB_GW_WS:
        p->ws = client_ws_new(&p->c, a->text, "/v1/ws", "visavis.v1");
        break;
    case SB_GW_SSE:
        snprintf(path, sizeof path, "/v1/channels/%s/events?since=0", channel);
        client_http_get(&p->c.out, a->text, path);
        break;
    case SB_REDIS:
        if (!channel) {
            p->state = PEER_READY;
            break;
        }
        queue_text(&p->c.out, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n", strlen(channel), channel);
        p->state = PEER_SUBSCRIBING;
        break;
    case SB_NCHAN_WS:
        snprintf(path, sizeof path, "/sub/%s", channel);
        p->ws = client_ws_new(&p->c, a->text, path, NULL);
        break;
    case SB_NCHAN_SSE:
        /* Nchan serves an EventSource to whoever accepts text/event-stream. */
        queue_text(&p->c.out,
                   "GET /sub/%s HTTP/1.1\r\nHost: %s\r\nAccept: text/event-stream\r\n\r\n", channel,
                   a->text);
        break;
    }
}

void peer_start(struct peer *p, long i, const char *channel)
{
    const struct client_addr *a = sb_addr(i);
    char err[GW_ERRLEN];

    if (!channel && (g_kind == SB_GW_SSE || g_kind == SB_NCHAN_WS || g_kind == SB_NCHAN_SSE))
        die("%s subscribers need a --channel", sb_kind_name(g_kind));
    memset(p, 0, sizeof(*p));
    client_conn_init(&p->c, NULL);
    client_sse_init(&p->sse);
    p->c.owner = p;
    p->state = PEER_CONNECTING;
    if (client_conn_start(&p->c, a, err) < 0)
        die("connection %ld: %s", i, err);
    if (!p->c.connecting)
        opened(p, a, channel);
}

/* A gateway line while opening (TCP and WebSocket alike). */
static void gw_opening_line(struct peer *p, const char *l, size_t n, const char *channel, long i)
{
    enum proto_op op;
    enum sl_type t = n ? server_line_type(l, n, &op) : SL_PING;
    char cmd[160];

    if (t == SL_PING)
        return;
    if (p->state == PEER_OPENING) {
        if (t != SL_HELLO)
            die("session %ld: the first line is not a hello: %s", i, shown(l, n));
        if (!channel) {
            p->state = PEER_READY;
            return;
        }
        int k = snprintf(cmd, sizeof cmd, "SUB %s", channel);
        if (p->ws)
            client_ws_send(p->ws, cmd, (size_t)k);
        else
            client_conn_send_line(&p->c, cmd, (size_t)k);
        p->state = PEER_SUBSCRIBING;
        return;
    }
    if (t != SL_OK || op != PROTO_SUB)
        die("session %ld: SUB %s: unexpected reply: %s", i, channel, shown(l, n));
    p->state = PEER_READY;
}

/* A NATS line (CRLF cut) while opening. */
static void nats_opening_line(struct peer *p, const char *l, size_t n, const char *channel, long i)
{
    if (n == 4 && !memcmp(l, "PING", 4)) {
        client_conn_queue(&p->c, "PONG\r\n", 6);
        return;
    }
    if (p->state == PEER_OPENING) {
        if (n < 5 || memcmp(l, "INFO ", 5))
            die("connection %ld: NATS said %s before its INFO", i, shown(l, n));
        queue_text(&p->c.out, "CONNECT {\"verbose\":false,\"pedantic\":false}\r\n");
        if (channel)
            queue_text(&p->c.out, "SUB %s 1\r\n", channel);
        /* The PONG comes after the SUB is in place: the subscription is confirmed by it. */
        client_conn_queue(&p->c, "PING\r\n", 6);
        p->state = PEER_SUBSCRIBING;
        return;
    }
    if (n == 4 && !memcmp(l, "PONG", 4))
        p->state = PEER_READY;
    else if (!(n == 3 && !memcmp(l, "+OK", 3)))
        die("connection %ld: NATS answered %s", i, shown(l, n));
}

/* What came in while opening, by kind. */
static void opening_input(struct peer *p, const char *channel, long i)
{
    char err[GW_ERRLEN], *l;
    size_t n;
    struct client_sse_event ev;

    switch (g_kind) {
    case SB_GW_TCP:
        while (p->state != PEER_READY && (l = next_line(&p->c, &n, "opening")))
            gw_opening_line(p, l, n, channel, i);
        break;
    case SB_GW_WS:
    case SB_NCHAN_WS:
        if (client_ws_input(p->ws, err) < 0)
            die("WebSocket %ld: %s", i, err);
        if (g_kind == SB_NCHAN_WS) {
            if (client_ws_upgraded(p->ws))
                p->state = PEER_READY;
            break;
        }
        while (p->state != PEER_READY && client_ws_line(p->ws, &l, &n))
            gw_opening_line(p, l, n, channel, i);
        break;
    case SB_GW_SSE:
    case SB_NCHAN_SSE:
        if (client_sse_input(&p->sse, &p->c, err) < 0)
            die("event stream %ld: %s", i, err);
        if (g_kind == SB_NCHAN_SSE && p->sse.head)
            p->state = PEER_READY;
        while (p->state != PEER_READY && client_sse_event(&p->sse, &ev)) {
            enum proto_op op;
            if (ev.data)
                die("event stream %ld: an event before the subscription: %s", i,
                    shown(ev.data, ev.data_len));
            /* The replies are comments: the SUB's says the stream is live. */
            if (ev.comment && server_line_type(ev.comment, ev.comment_len, &op) == SL_OK &&
                op == PROTO_SUB)
                p->state = PEER_READY;
        }
        break;
    case SB_REDIS: {
        struct resp v;
        if (p->state == PEER_SUBSCRIBING && next_resp(&p->c, &v)) {
            if (v.type != '*' || v.nel != 3 || v.el[0].slen != 9 ||
                memcmp(v.el[0].s, "subscribe", 9))
                die("connection %ld: SUBSCRIBE %s: unexpected reply (type %c) %s", i, channel,
                    v.type, v.s ? shown(v.s, v.slen) : "");
            p->state = PEER_READY;
        }
        break;
    }
    case SB_NATS:
        while (p->state != PEER_READY && (l = next_line(&p->c, &n, "opening")))
            nats_opening_line(p, l, n, channel, i);
        break;
    }
}

bool peer_step(struct peer *p, uint32_t events, const char *channel, long i)
{
    char err[GW_ERRLEN];

    if (p->state == PEER_CONNECTING) {
        if (client_conn_finish(&p->c, err) < 0)
            die("connection %ld: %s", i, err);
        opened(p, sb_addr(i), channel);
    }
    if (p->state != PEER_READY && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        if (client_conn_fill(&p->c, err) < 0)
            die("connection %ld: %s", i, err);
        opening_input(p, channel, i);
        if (p->state != PEER_READY && p->c.eof)
            die("connection %ld: closed by the server while it was being opened", i);
    }
    if (client_conn_flush(&p->c, err) < 0)
        die("connection %ld: %s", i, err);
    if (p->state != PEER_READY)
        return false;
    /* It stays open, quiet: it costs its socket, not a buffer. */
    client_conn_trim(&p->c);
    if (p->sse.text.len == 0)
        buf_release(&p->sse.text);
    return true;
}

void peer_read(struct peer *p, long i)
{
    char err[GW_ERRLEN];
    int r = client_conn_fill(&p->c, err);

    if (r < 0)
        die("subscriber %ld: %s", i, err);
    if (r == 0)
        die("subscriber %ld: the server closed the connection", i);
    if (p->ws && client_ws_input(p->ws, err) < 0)
        die("subscriber %ld: %s", i, err);
    if (is_sse() && client_sse_input(&p->sse, &p->c, err) < 0)
        die("subscriber %ld: %s", i, err);
}

/* The body of a gateway push line; dies on anything but a message or a ping (0). */
static int gw_body(const char *l, size_t n, const char **body, size_t *len, long i)
{
    struct server_line sl;

    if (n == 0)
        return 0;
    /* Pushes the gateway's way are read without jansson (server_line.h). */
    server_line_parse(&sl, l, n);
    if (sl.type == SL_PING) {
        server_line_release(&sl);
        return 0;
    }
    if (sl.type != SL_MESSAGE || !sl.msg.body.s)
        die("subscriber %ld: not a message push: %s", i, shown(l, n));
    *body = sl.msg.body.s;
    *len = sl.msg.body.len;
    server_line_release(&sl); /* body stays: it points into the line */
    if (*body < l || *body >= l + n)
        die("subscriber %ld: a message with an escaped body: %s", i, shown(l, n));
    return 1;
}

/* One NATS protocol message from c's input: 1 a MSG's payload, 0 none whole; -1 taken, not a MSG.
 */
static int nats_next(struct client_conn *c, const char **body, size_t *len, long i)
{
    size_t have;
    const char *p = client_conn_data(c, &have);
    const char *nl = have >= 2 ? memmem(p, have, "\r\n", 2) : NULL;

    if (!nl)
        return 0;
    size_t hl = (size_t)(nl - p);
    if (hl >= 4 && !memcmp(p, "MSG ", 4)) {
        /* MSG <subject> <sid> [reply-to] <#bytes>: the size is the last field. */
        const char *sp = nl;
        while (sp > p && sp[-1] != ' ')
            sp--;
        char *end;
        unsigned long n = strtoul(sp, &end, 10);
        if (end != nl || sp == nl)
            die("subscriber %ld: a NATS MSG without a size: %s", i, shown(p, hl));
        if (have < hl + 2 + n + 2)
            return 0;
        *body = nl + 2;
        *len = n;
        client_conn_consume(c, hl + 2 + n + 2);
        return 1;
    }
    if (hl == 4 && !memcmp(p, "PING", 4))
        client_conn_queue(c, "PONG\r\n", 6);
    else if (!(hl == 4 && !memcmp(p, "PONG", 4)) && !(hl == 3 && !memcmp(p, "+OK", 3)))
        die("subscriber %ld: NATS said %s", i, shown(p, hl));
    client_conn_consume(c, hl + 2);
    return -1;
}

int peer_next_body(struct peer *p, const char **body, size_t *len, long i)
{
    char *l;
    size_t n;
    struct client_sse_event ev;

    for (;;) {
        switch (g_kind) {
        case SB_GW_TCP:
            if (!(l = next_line(&p->c, &n, "subscriber")))
                return 0;
            if (gw_body(l, n, body, len, i))
                return 1;
            continue;
        case SB_GW_WS:
            if (!client_ws_line(p->ws, &l, &n))
                return 0;
            if (gw_body(l, n, body, len, i))
                return 1;
            continue;
        case SB_NCHAN_WS:
            if (!client_ws_line(p->ws, &l, &n))
                return 0;
            *body = l;
            *len = n;
            return 1;
        case SB_GW_SSE:
        case SB_NCHAN_SSE:
            if (!client_sse_event(&p->sse, &ev))
                return 0;
            if (!ev.data)
                continue; /* a comment: a heartbeat */
            if (ev.event_len != 7 || memcmp(ev.event, "message", 7))
                die("subscriber %ld: event %.*s: %s", i, (int)ev.event_len, ev.event,
                    shown(ev.data, ev.data_len));
            if (g_kind == SB_NCHAN_SSE) {
                *body = ev.data;
                *len = ev.data_len;
                return 1;
            }
            if (ev.data_len < 2 || ev.data[0] != '{')
                die("subscriber %ld: a message event that is not an object: %s", i,
                    shown(ev.data, ev.data_len));
            /* The data is the message object; as a push line it reads the fast way. */
            buf_clear(&g_sse_line);
            buf_append(&g_sse_line, "{\"type\":\"message\",", 18);
            buf_append(&g_sse_line, ev.data + 1, ev.data_len - 1);
            return gw_body(g_sse_line.data, g_sse_line.len, body, len, i);
        case SB_REDIS: {
            struct resp v;
            if (!next_resp(&p->c, &v))
                return 0;
            if (v.type != '*' || v.nel != 3 || v.el[0].slen != 7 ||
                memcmp(v.el[0].s, "message", 7) || v.el[2].type != '$')
                die("subscriber %ld: not a message push (type %c, %d elements)", i, v.type, v.nel);
            *body = v.el[2].s;
            *len = v.el[2].slen;
            return 1;
        }
        case SB_NATS: {
            int r = nats_next(&p->c, body, len, i);
            if (r >= 0)
                return r;
            continue;
        }
        }
    }
}

double peers_open(struct peer *ps, long n, const char *channel)
{
    enum { WINDOW = 256 }; /* openings under way at once: never overflow a server's backlog */
    int ep = epoll_create1(EPOLL_CLOEXEC);
    long next = 0, pending = 0, done = 0;
    uint64_t t0 = now_ns(), limit = t0 + (uint64_t)(opt.timeout * 4 * 1e9);
    struct epoll_event evs[WINDOW];
    char err[GW_ERRLEN];

    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    while (done < n) {
        while (pending < WINDOW && next < n) {
            struct peer *p = &ps[next];
            peer_start(p, next, channel);
            if (peer_step(p, 0, channel, next)) {
                next++;
                done++;
                continue;
            }
            if (client_conn_watch(&p->c, ep, err) != 0)
                die("%s", err);
            next++;
            pending++;
        }
        if (now_ns() >= limit)
            die("%ld of %ld connections opened after %.0f s", done, n, opt.timeout * 4);
        int k = epoll_wait(ep, evs, WINDOW, 100);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < k; e++) {
            struct peer *p = ((struct client_conn *)evs[e].data.ptr)->owner;
            long i = (long)(p - ps);
            if (!peer_step(p, evs[e].events, channel, i)) {
                if (client_conn_watch(&p->c, ep, err) != 0)
                    die("%s", err);
                continue;
            }
            epoll_ctl(ep, EPOLL_CTL_DEL, p->c.fd, NULL);
            p->c.watched = 0;
            pending--;
            done++;
        }
    }
    close(ep);
    return (double)(now_ns() - t0) / 1e9;
}

void peer_flush(struct peer *p, int ep)
{
    char err[GW_ERRLEN];

    if (client_conn_want_write(&p->c) && client_conn_flush(&p->c, err) < 0)
        die("%s", err);
    if (client_conn_watch(&p->c, ep, err) < 0)
        die("%s", err);
}

void peer_release(struct peer *p)
{
    client_ws_free(p->ws);
    p->ws = NULL;
    client_sse_release(&p->sse);
    close_abort(&p->c);
}

/* Nchan's count of a channel's subscribers, from GET /pub/<channel> over c; -1: no channel yet. */
static long nchan_subscribers(struct client_conn *c, const char *channel, struct buf *scratch)
{
    char path[160], err[GW_ERRLEN];
    struct client_http_resp r;
    uint64_t deadline = deadline_from_now();

    snprintf(path, sizeof path, "/pub/%s", channel);
    client_http_get(&c->out, sb_pub_addr()->text, path);
    send_all(c, NULL, 0, "GET /pub");
    for (;;) {
        size_t len;
        const char *p = client_conn_data(c, &len);
        enum client_http_parse st = client_http_parse(p, len, c->eof, scratch, &r, err);
        if (st == CLIENT_HTTP_BAD)
            die("GET %s: %s", path, err);
        if (st == CLIENT_HTTP_DONE)
            break;
        wait_input(c, deadline, "GET /pub");
    }
    long n = -1;
    if (r.status == 200) {
        const char *k = memmem(r.body, r.body_len, "subscribers: ", 13);
        if (!k)
            die("GET %s: no subscriber count in %s", path, shown(r.body, r.body_len));
        n = strtol(k + 13, NULL, 10);
    } else if (r.status != 404) {
        die("GET %s answered %d: %s", path, r.status, shown(r.body, r.body_len));
    }
    client_conn_consume(c, r.consumed);
    return n;
}

void peer_wait_subscribed(const char *channel, long n)
{
    if (g_kind != SB_NCHAN_WS && g_kind != SB_NCHAN_SSE)
        return;
    struct client_conn c;
    struct buf scratch = BUF_INIT;
    uint64_t deadline = deadline_from_now();
    long have;

    client_conn_init(&c, NULL);
    connect_to(&c, sb_pub_addr(), "connect (channel info)");
    while ((have = nchan_subscribers(&c, channel, &scratch)) != n) {
        if (have > n)
            die("Nchan counts %ld subscribers on %s, more than the %ld opened", have, channel, n);
        if (now_ns() >= deadline)
            die("Nchan counts %ld of %ld subscribers on %s after %.0f s", have, n, channel,
                opt.timeout);
        struct timespec ts = {0, 5000000};
        nanosleep(&ts, NULL);
    }
    buf_release(&scratch);
    client_conn_release(&c);
}

/* ------------------------------------------------------------------------ */
/* the publisher                                                            */

void pub_open(struct client_conn *c)
{
    char *l;
    size_t n;

    client_conn_init(c, NULL);
    connect_to(c, sb_pub_addr(), "publisher connect");
    if (sb_kind_is_gateway(g_kind)) {
        expect_hello(c, "publisher hello");
    } else if (g_kind == SB_NATS) {
        uint64_t deadline = deadline_from_now();
        /* verbose: each PUB is answered +OK, the publisher's acknowledgement. */
        static const char hello[] = "CONNECT {\"verbose\":true,\"pedantic\":false}\r\nPING\r\n";
        bool info = false;
        send_all(c, hello, sizeof hello - 1, "publisher CONNECT");
        for (;;) {
            while ((l = next_line(c, &n, "publisher CONNECT"))) {
                if (n >= 5 && !memcmp(l, "INFO ", 5))
                    info = true;
                else if (n == 4 && !memcmp(l, "PONG", 4) && info)
                    return;
                else if (!(n == 3 && !memcmp(l, "+OK", 3)))
                    die("publisher: NATS answered %s", shown(l, n));
            }
            wait_input(c, deadline, "publisher CONNECT");
        }
    }
}

void pub_request(struct buf *out, const char *channel, const char *body, size_t len)
{
    char path[160];

    switch (g_kind) {
    case SB_GW_TCP:
    case SB_GW_WS:
    case SB_GW_SSE:
        queue_text(out, "PUB %s ", channel);
        buf_append(out, body, len);
        buf_append(out, "\n", 1);
        break;
    case SB_REDIS:
        queue_text(out, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%zu\r\n", strlen(channel), channel,
                   len);
        buf_append(out, body, len);
        buf_append(out, "\r\n", 2);
        break;
    case SB_NATS:
        queue_text(out, "PUB %s %zu\r\n", channel, len);
        buf_append(out, body, len);
        buf_append(out, "\r\n", 2);
        break;
    case SB_NCHAN_WS:
    case SB_NCHAN_SSE:
        snprintf(path, sizeof path, "/pub/%s", channel);
        client_http_post(out, sb_pub_addr()->text, path, body, len, false);
        break;
    }
}

/* Nchan's reply to a POST: 201 with "active subscribers: N" (or 202: queued for nobody). */
static int nchan_reply(struct client_conn *c, long subscribers, bool *ok, char *text, size_t cap,
                       char err[GW_ERRLEN])
{
    static __thread struct buf scratch;
    struct client_http_resp r;
    size_t len;
    const char *p = client_conn_data(c, &len);

    switch (client_http_parse(p, len, c->eof, &scratch, &r, err)) {
    case CLIENT_HTTP_PARTIAL:
        return 0;
    case CLIENT_HTTP_BAD:
        return -1;
    case CLIENT_HTTP_DONE:
        break;
    }
    const char *k = r.body ? memmem(r.body, r.body_len, "subscribers: ", 13) : NULL;
    long n = k ? strtol(k + 13, NULL, 10) : -1;
    *ok = r.status == 201 && n == subscribers;
    if (!*ok)
        snprintf(text, cap, "%d, %ld subscribers: %s", r.status, n, shown(r.body, r.body_len));
    client_conn_consume(c, r.consumed);
    return 1;
}

int pub_reply(struct client_conn *c, long subscribers, bool *ok, char *text, size_t cap,
              char err[GW_ERRLEN])
{
    char *l;
    size_t n;

    for (;;) {
        switch (g_kind) {
        case SB_GW_TCP:
        case SB_GW_WS:
        case SB_GW_SSE: {
            enum proto_op op;
            enum client_line got = client_conn_line(c, &l, &n);
            if (got == CLIENT_TOO_LONG) {
                snprintf(err, GW_ERRLEN, "a line longer than %zu bytes", c->line_max);
                return -1;
            }
            if (got == CLIENT_MORE)
                return 0;
            enum sl_type type = n ? server_line_type(l, n, &op) : SL_PING;
            if (type == SL_PING)
                continue;
            *ok = type == SL_OK && op == PROTO_PUB;
            snprintf(text, cap, "%s", shown(l, n));
            return 1;
        }
        case SB_REDIS: {
            struct resp v;
            if (!next_resp(c, &v))
                return 0;
            *ok = v.type == ':' && v.i == subscribers;
            if (v.type == ':')
                snprintf(text, cap, "PUBLISH reached %lld subscribers, not %ld", v.i, subscribers);
            else
                snprintf(text, cap, "a reply of type %c: %s", v.type,
                         v.s ? shown(v.s, v.slen) : "");
            return 1;
        }
        case SB_NATS: {
            enum client_line got = client_conn_line(c, &l, &n);
            if (got != CLIENT_LINE)
                return 0;
            if (n == 4 && !memcmp(l, "PING", 4)) {
                client_conn_queue(c, "PONG\r\n", 6);
                continue;
            }
            if (n == 4 && !memcmp(l, "PONG", 4))
                continue;
            *ok = n == 3 && !memcmp(l, "+OK", 3);
            snprintf(text, cap, "%s", shown(l, n));
            return 1;
        }
        case SB_NCHAN_WS:
        case SB_NCHAN_SSE:
            return nchan_reply(c, subscribers, ok, text, cap, err);
        }
    }
}
