/*
 * sockbench_reqresp.c - the request/response runs: ping, pub (the gateway's
 * TCP sessions) and redis-ping, redis-set. --pipeline commands in flight on
 * each of --connections for --duration; each reply matched to the send
 * time of its command (replies come in command order).
 */
#include "sockbench.h"

#include "server_line.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

struct conn {
    struct client_conn c;
    uint64_t *sent; /* ring of send times, --pipeline long */
    unsigned head, inflight, unstamped;
};

static const char *g_req;
static size_t g_req_len;
static const char *g_expect;       /* what a good reply is, for messages */
static enum sl_type g_expect_type; /* gateway: the reply's type ... */
static enum proto_op g_expect_op;  /* ... and op (PROTO_NONE: any) */
static uint64_t g_errors;

static void queue_req(struct conn *c)
{
    client_conn_queue(&c->c, g_req, g_req_len);
    c->inflight++;
    c->unstamped++;
}

static void flush_conn(struct conn *c, int ep)
{
    char err[GW_ERRLEN];

    if (c->unstamped) {
        uint64_t t = now_ns();
        unsigned cap = (unsigned)opt.pipeline;
        for (; c->unstamped; c->unstamped--)
            c->sent[(c->head + c->inflight - c->unstamped) % cap] = t;
    }
    if (client_conn_flush(&c->c, err) < 0)
        die("%s", err);
    if (client_conn_watch(&c->c, ep, err) < 0)
        die("%s", err);
}

static void bad_reply(const char *p, size_t n)
{
    if (g_errors < 5)
        fprintf(stderr, "sockbench %s: unexpected reply: %s\n", g_mode, shown(p, n));
    g_errors++;
}

int run_reqresp(void)
{
    long nc = opt.connections ? opt.connections : 1;
    raise_nofile(nc + 16);
    resolve(nc);
    char *body = make_body((size_t)opt.size);
    char *req;
    const char *channel = opt.channel ? opt.channel : "bench";
    size_t cap = (size_t)opt.size + 256;
    req = gw_xmalloc(cap);
    bool is_pub = !strcmp(g_mode, "pub") || !strcmp(g_mode, "redis-set");
    if (!strcmp(g_mode, "ping")) {
        snprintf(req, cap, "PING\n");
        g_expect = "a pong";
        g_expect_type = SL_PONG;
        g_expect_op = PROTO_NONE;
    } else if (!strcmp(g_mode, "pub")) {
        snprintf(req, cap, "PUB %s %s\n", channel, body);
        g_expect = "the ok of a PUB";
        g_expect_type = SL_OK;
        g_expect_op = PROTO_PUB;
    } else if (!strcmp(g_mode, "redis-ping")) {
        snprintf(req, cap, "PING\r\n"); /* inline, as redis-benchmark's PING_INLINE */
        g_expect = "PONG";
    } else {
        snprintf(req, cap, "*3\r\n$3\r\nSET\r\n$%zu\r\n%s\r\n$%ld\r\n%s\r\n", strlen(channel),
                 channel, opt.size, body);
        g_expect = "OK";
    }
    g_req = req;
    g_req_len = strlen(req);

    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct conn *cs = gw_xcalloc((size_t)nc, sizeof *cs);
    for (long i = 0; i < nc; i++) {
        struct conn *c = &cs[i];
        client_conn_init(&c->c, NULL);
        c->c.owner = c;
        connect_to(&c->c, sb_addr(i), "connect");
        c->sent = gw_xcalloc((size_t)opt.pipeline, sizeof *c->sent);
        if (g_kind != SB_REDIS)
            expect_hello(&c->c, "hello");
    }

    struct hist *h = hist_new();
    uint64_t done = 0, pushes = 0, inflight = 0, last = 0;
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns(), deadline = t0 + (uint64_t)(opt.duration * 1e9), drain_until = 0;
    bool sending = true;
    for (long i = 0; i < nc; i++) {
        for (long k = 0; k < opt.pipeline; k++)
            queue_req(&cs[i]);
        inflight += (uint64_t)opt.pipeline;
        flush_conn(&cs[i], ep);
    }
    struct epoll_event evs[128];
    for (;;) {
        uint64_t t = now_ns();
        if (sending && t >= deadline) {
            sending = false;
            drain_until = t + (uint64_t)(opt.timeout * 1e9);
        }
        if (!sending) {
            if (inflight == 0)
                break;
            if (t >= drain_until)
                die("%" PRIu64 " replies still missing %.0f s after the end of the run", inflight,
                    opt.timeout);
        }
        uint64_t until = sending ? deadline : drain_until;
        int to = (int)((until - t) / 1000000u) + 1;
        if (to > 100)
            to = 100;
        int n = epoll_wait(ep, evs, 128, to);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct conn *c = ((struct client_conn *)evs[e].data.ptr)->owner;
            if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                fill(&c->c, "read", false);
                uint64_t tr = now_ns();
                bool more = sending && tr < deadline;
                for (;;) {
                    const char *l = NULL;
                    size_t ln = 0;
                    bool ok;
                    if (g_kind == SB_REDIS) {
                        struct resp v;
                        if (!next_resp(&c->c, &v))
                            break;
                        ok = v.type == '+' && v.slen == strlen(g_expect) &&
                             !memcmp(v.s, g_expect, v.slen);
                        l = v.s ? v.s - 1 : "?";
                        ln = v.s ? v.slen + 1 : 1;
                    } else {
                        enum proto_op op;
                        enum sl_type type;
                        l = next_line(&c->c, &ln, "read");
                        if (!l)
                            break;
                        type = ln ? server_line_type(l, ln, &op) : SL_PING;
                        if (sl_type_is_push(type)) {
                            pushes++;
                            continue;
                        }
                        ok = type == g_expect_type &&
                             (g_expect_op == PROTO_NONE || op == g_expect_op);
                    }
                    if (!c->inflight)
                        die("a reply with no command in flight: %s", shown(l, ln));
                    if (!ok)
                        bad_reply(l, ln);
                    hist_add(h, (int64_t)(tr - c->sent[c->head]));
                    c->head = (c->head + 1) % (unsigned)opt.pipeline;
                    c->inflight--;
                    inflight--;
                    done++;
                    last = tr;
                    if (more) {
                        queue_req(c);
                        inflight++;
                    }
                }
            }
            flush_conn(c, ep);
        }
    }
    if (g_errors)
        die("%" PRIu64 " of %" PRIu64 " replies were not %s", g_errors, done, g_expect);
    double el = (double)(last - t0) / 1e9;
    printf("RESULT mode=%s connections=%ld pipeline=%ld size=%ld ops=%" PRIu64
           " errors=0 pushes=%" PRIu64 " elapsed_s=%.3f client_cpu_pct=%.0f %s=%.0f",
           g_mode, nc, opt.pipeline, is_pub ? opt.size : 0, done, pushes, el,
           100.0 * (cpu_s() - cpu0) / el, is_pub ? "msgs_per_s" : "ops_per_s", (double)done / el);
    h_print(h, "");
    printf("\n");
    for (long i = 0; i < nc; i++) {
        client_conn_release(&cs[i].c);
        free(cs[i].sent);
    }
    free(cs);
    free(h);
    free(body);
    free(req);
    close(ep);
    return 0;
}
