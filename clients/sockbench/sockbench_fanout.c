/*
 * sockbench_fanout.c - one publisher to --subscribers subscribers of one
 * channel, on any kind (sockbench_peer.c), measured the same way for all.
 *
 * The subscribers are opened and subscribed first (and, for Nchan, counted
 * by the server), then read by the main thread while a publisher thread
 * sends, on its own connection:
 *   1. the paced phase: --messages messages at --rate a second on a fixed
 *      schedule (open loop: it does not wait for replies); each --size-byte
 *      body is "<n>:<CLOCK_MONOTONIC ns at send>:xxxx...". Per message, the
 *      latency to the last subscriber to get it and to the first; per
 *      delivery, its own; per publish, its reply.
 *   2. once every paced message reached every subscriber, the burst: --burst
 *      more messages queued at once, sent as fast as the server takes them.
 *      deliveries_per_s is the burst's deliveries over the time from its
 *      first send to its last delivery.
 * Every subscriber must get messages 0, 1, 2 ... each exactly once, in
 * order, with the publisher's bytes; every publish must be acknowledged
 * (redis and Nchan: as reaching every subscriber); nothing may arrive after.
 */
#include "sockbench.h"

#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

/* Body of message i: "<i>:<send ns>:" padded with 'x' to --size bytes. */
static bool parse_body(const char *p, size_t n, uint64_t *idx, uint64_t *ts)
{
    uint64_t a = 0, b = 0;
    size_t i = 0;
    if (i >= n || p[i] < '0' || p[i] > '9')
        return false;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        a = a * 10 + (uint64_t)(p[i++] - '0');
    if (i >= n || p[i++] != ':' || i >= n || p[i] < '0' || p[i] > '9')
        return false;
    while (i < n && p[i] >= '0' && p[i] <= '9')
        b = b * 10 + (uint64_t)(p[i++] - '0');
    if (i >= n || p[i] != ':')
        return false;
    *idx = a;
    *ts = b;
    return true;
}

/* The publisher's side; written by its thread, read by main after the join (or atomics). */
static struct {
    uint64_t paced, total; /* messages: paced, paced + burst */
    uint64_t sent, acked, errors, max_lag_ns, t_first, t_last;
    uint64_t t_burst;      /* when the burst's first message was queued */
    struct hist ack;       /* publish -> its own reply (paced messages) */
    atomic_int paced_done; /* set by main: every paced message reached every subscriber */
} g_pub;

/* Appends message i, stamped t, to c's output. */
static void publish(struct client_conn *c, char *body, uint64_t i, uint64_t t)
{
    int k = snprintf(body, (size_t)opt.size + 1, "%" PRIu64 ":%" PRIu64 ":", i, t);
    if (k < 0 || k >= opt.size)
        die("--size %ld is too small for the timestamp", opt.size);
    memset(body + k, 'x', (size_t)opt.size - (size_t)k);
    pub_request(&c->out, opt.channel, body, (size_t)opt.size);
}

static void *publisher(void *arg)
{
    struct client_conn c;
    char err[GW_ERRLEN], text[200];
    uint64_t *sent = gw_xcalloc(g_pub.total, sizeof *sent);
    char *body = gw_xmalloc((size_t)opt.size + 1);
    uint64_t period = (uint64_t)(1e9 / opt.rate), ack_deadline = 0;

    (void)arg;
    pub_open(&c);
    uint64_t t0 = now_ns() + 1000000u;
    g_pub.t_first = t0;
    while (g_pub.acked < g_pub.total) {
        uint64_t t = now_ns(), until;
        if (g_pub.sent < g_pub.paced) {
            uint64_t due = t0 + g_pub.sent * period;
            if (t >= due) {
                publish(&c, body, g_pub.sent, t);
                sent[g_pub.sent] = t;
                if (client_conn_flush(&c, err) < 0)
                    die("publisher: %s", err);
                if (t - due > g_pub.max_lag_ns)
                    g_pub.max_lag_ns = t - due;
                g_pub.t_last = t;
                g_pub.sent++;
                continue;
            }
            until = due;
        } else if (g_pub.sent < g_pub.total) {
            if (atomic_load(&g_pub.paced_done)) {
                g_pub.t_burst = t;
                for (uint64_t i = g_pub.sent; i < g_pub.total; i++) {
                    publish(&c, body, i, t);
                    sent[i] = t;
                }
                g_pub.sent = g_pub.total;
                if (client_conn_flush(&c, err) < 0)
                    die("publisher: %s", err);
                continue;
            }
            until = t + 1000000u; /* main is still counting the paced deliveries */
        } else {
            if (!ack_deadline)
                ack_deadline = t + (uint64_t)(opt.timeout * 1e9);
            if (t >= ack_deadline)
                die("publisher: %" PRIu64 " publish replies missing after %.0f s",
                    g_pub.total - g_pub.acked, opt.timeout);
            until = ack_deadline;
        }
        struct pollfd p = {c.fd, (short)(POLLIN | (client_conn_want_write(&c) ? POLLOUT : 0)), 0};
        struct timespec ts = {(time_t)((until - t) / 1000000000u),
                              (long)((until - t) % 1000000000u)};
        int r = ppoll(&p, 1, &ts, NULL);
        if (r <= 0)
            continue;
        if ((p.revents & POLLOUT) && client_conn_flush(&c, err) < 0)
            die("publisher: %s", err);
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        r = client_conn_fill(&c, err);
        if (r < 0)
            die("publisher: %s", err);
        if (r == 0)
            die("publisher: the server closed the publisher's connection");
        uint64_t tr = now_ns();
        bool ok;
        while ((r = pub_reply(&c, opt.subscribers, &ok, text, sizeof text, err)) > 0) {
            if (g_pub.acked >= g_pub.sent)
                die("publisher: a reply with no publish in flight: %s", text);
            if (!ok && g_pub.errors++ < 5)
                fprintf(stderr, "sockbench %s: publisher: unexpected reply: %s\n", g_mode, text);
            if (g_pub.acked < g_pub.paced)
                hist_add(&g_pub.ack, (int64_t)(tr - sent[g_pub.acked]));
            g_pub.acked++;
        }
        if (r < 0)
            die("publisher: %s", err);
        if (client_conn_want_write(&c) && client_conn_flush(&c, err) < 0)
            die("publisher: %s", err);
    }
    client_conn_release(&c);
    free(sent);
    free(body);
    return NULL;
}

int run_fanout(void)
{
    long ns = opt.subscribers;
    if (!opt.messages)
        opt.messages = (long)(opt.rate * opt.duration + 0.5);
    if (opt.messages < 1)
        die("no message to publish (--messages or --rate x --duration)");
    char chbuf[64];
    if (!opt.channel) {
        snprintf(chbuf, sizeof chbuf, "fan-%ld-%" PRIu64, (long)getpid(), now_ns() % 1000000000u);
        opt.channel = chbuf;
    }
    raise_nofile(ns + 16);
    resolve(ns);

    struct peer *subs = gw_xcalloc((size_t)ns, sizeof *subs);
    double open_s = peers_open(subs, ns, opt.channel);
    peer_wait_subscribed(opt.channel, ns);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    for (long i = 0; i < ns; i++)
        peer_flush(&subs[i], ep); /* registers it for input */

    g_pub.paced = (uint64_t)opt.messages;
    g_pub.total = g_pub.paced + (uint64_t)opt.burst;
    uint64_t nm = g_pub.total, np = g_pub.paced;
    uint64_t *maxlat = gw_xcalloc(np, sizeof *maxlat), *minlat = gw_xcalloc(np, sizeof *minlat);
    uint32_t *got = gw_xcalloc(nm, sizeof *got);
    struct hist *each = hist_new(), *last = hist_new(), *first = hist_new();
    uint64_t want = nm * (uint64_t)ns, deliveries = 0, complete = 0, burst_deliveries = 0;
    uint64_t t_burst_last = 0;
    double cpu_burst = 0;

    hist_init(&g_pub.ack);
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns();
    pthread_t th;
    int rc = pthread_create(&th, NULL, publisher, NULL);
    if (rc)
        die("pthread_create: %s", strerror(rc));
    uint64_t limit = now_ns() + (uint64_t)((double)np / opt.rate * 1e9) +
                     (uint64_t)(opt.timeout * 1e9) * (opt.burst ? 3 : 2);
    struct epoll_event evs[256];
    while (deliveries < want) {
        if (now_ns() >= limit)
            die("%" PRIu64 " of %" PRIu64 " deliveries missing at the time limit (%" PRIu64
                " of %" PRIu64 " paced messages complete)",
                want - deliveries, want, complete, np);
        int n = epoll_wait(ep, evs, 256, 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct peer *s = ((struct client_conn *)evs[e].data.ptr)->owner;
            long si = (long)(s - subs);
            const char *body;
            size_t blen;
            peer_read(s, si);
            uint64_t tr = now_ns();
            while (peer_next_body(s, &body, &blen, si)) {
                uint64_t idx, ts;
                if (blen != (size_t)opt.size || !parse_body(body, blen, &idx, &ts) || idx >= nm)
                    die("subscriber %ld: a message this run did not publish: %s", si,
                        shown(body, blen));
                if ((int64_t)idx != s->next)
                    die("subscriber %ld: got message %" PRIu64 ", expected %" PRId64
                        " (lost, repeated or out of order)",
                        si, idx, s->next);
                s->next++;
                deliveries++;
                got[idx]++;
                if (idx >= np) {
                    burst_deliveries++;
                    t_burst_last = tr;
                    continue;
                }
                uint64_t lat = tr > ts ? tr - ts : 0;
                hist_add(each, (int64_t)lat);
                if (lat > maxlat[idx])
                    maxlat[idx] = lat;
                if (got[idx] == 1 || lat < minlat[idx])
                    minlat[idx] = lat;
                if (got[idx] == (uint32_t)ns) {
                    hist_add(last, (int64_t)maxlat[idx]);
                    hist_add(first, (int64_t)minlat[idx]);
                    if (++complete == np) {
                        cpu_burst = cpu_s();
                        atomic_store(&g_pub.paced_done, 1);
                    }
                }
            }
            peer_flush(s, ep);
        }
    }
    double cpu_end = cpu_s();
    pthread_join(th, NULL);
    if (g_pub.errors)
        die("%" PRIu64 " of %" PRIu64 " publish replies were not acknowledgements", g_pub.errors,
            g_pub.acked);
    /* Nothing more may come: a repeat would show up here. */
    for (long i = 0; i < ns; i++) {
        const char *body;
        size_t blen;
        struct pollfd pf = {subs[i].c.fd, POLLIN, 0};
        if (poll(&pf, 1, 0) == 1) {
            peer_read(&subs[i], i);
            if (peer_next_body(&subs[i], &body, &blen, i))
                die("subscriber %ld: got more than every message once: %s", i, shown(body, blen));
        }
    }
    double span = (double)(g_pub.t_last - g_pub.t_first) / 1e9;
    double el = (double)(now_ns() - t0) / 1e9;
    double burst_s = opt.burst ? (double)(t_burst_last - g_pub.t_burst) / 1e9 : 0;
    printf("RESULT mode=%s kind=%s subscribers=%ld sources=%ld open_s=%.2f messages=%" PRIu64
           " size=%ld rate=%.0f pub_rate=%.0f deliveries=%" PRIu64
           " errors=0 elapsed_s=%.3f client_cpu_pct=%.0f pub_max_lag_us=%.1f",
           g_mode, sb_kind_name(g_kind), ns, sb_sources(), open_s, np, opt.size, opt.rate,
           span > 0 ? (double)(np - 1) / span : 0.0, deliveries, el, 100.0 * (cpu_s() - cpu0) / el,
           (double)g_pub.max_lag_ns / 1e3);
    h_print(last, "");           /* per message: the last of the subscribers */
    h_print(first, "first_");    /* per message: the first of the subscribers */
    h_print(each, "each_");      /* per delivery */
    h_print(&g_pub.ack, "ack_"); /* publish -> its reply */
    printf(" burst=%ld burst_deliveries=%" PRIu64 " burst_s=%.4f deliveries_per_s=%.0f"
           " burst_client_cpu_pct=%.0f\n",
           opt.burst, burst_deliveries, burst_s,
           burst_s > 0 ? (double)burst_deliveries / burst_s : 0.0,
           burst_s > 0 ? 100.0 * (cpu_end - cpu_burst) / burst_s : 0.0);
    fflush(stdout);
    for (long i = 0; i < ns; i++)
        peer_release(&subs[i]);
    free(subs);
    free(maxlat);
    free(minlat);
    free(got);
    free(each);
    free(last);
    free(first);
    close(ep);
    return 0;
}
