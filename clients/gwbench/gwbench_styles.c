/*
 * gwbench_styles.c - the workloads: one style at a time, on one thread,
 * every socket non-blocking on one epoll set.
 *
 * Two kinds of style:
 *
 *   publish (rest-close, rest-keepalive, tcp, tcp-pipelined): --connections
 *   clients publish and each message's latency is publish -> ack. Closed
 *   loop by default (a client sends its next request the moment it may),
 *   open loop with --rate (each request has an intended send time on a fixed
 *   schedule and its latency counts from that time, whether or not the
 *   client could send it then).
 *
 *   udp: --connections UDP sockets send PUB datagrams, fire and forget, as
 *   fast as the sockets take them (or at --rate). Nothing answers; when the
 *   sending is over, the channel is read back over REST until a long-poll
 *   of a second finds nothing more: messages stored, and lost (sent, never
 *   stored). No latency: there is no answer to time.
 *
 *   round trips (tcp-ping, udp-ping): --connections clients PING, one in
 *   flight each, closed or open loop as the publish styles; latency PING ->
 *   pong. A UDP pong not back within UDP_LOST_NS is lost, and its PING's
 *   client goes on.
 *
 *   delivery (tcp-push, ws-push, socketio, sse, rest-longpoll, rest-poll):
 *   one publisher, a TCP session pipelining PUBs on a fixed schedule
 *   (--rate, or the default delivery rate), and --connections receivers
 *   that each receive every message; a message's body carries its intended
 *   send time, so latency is publish -> received on the same monotonic
 *   clock.
 *
 * What the table reports per message (bytes, connections) is counted on
 * the measured side only: the publishing clients, or the receivers. The
 * delivery publisher is the same in every delivery style and is what
 * the tcp style measures.
 *
 * Every reply and every delivery is checked: a publish must be
 * acknowledged as such, every receiver must get seq 1, 2, 3 ... of its
 * channel once, in order, each carrying the body that was sent. Anything
 * else fails the style with a message that says what happened.
 */
#include "gwbench_styles.h"

#include "client_conn.h"
#include "client_http.h"
#include "client_sse.h"
#include "client_text.h"
#include "client_ws.h"
#include "gwbench_fetch.h"
#include "gwbench_progress.h"
#include "gwbench_udp.h"
#include "hist.h"
#include "model.h"
#include "server_line.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define NS_PER_S         1000000000LL
#define NS_PER_MS        1000000LL
/* Delivery styles: time between the receivers being ready and the first publish. */
#define SETTLE_NS        (20 * NS_PER_MS)
/* The delivery publisher's PUBs in flight at most (it never waits for one otherwise). */
#define PUB_INFLIGHT_MAX 65536
/*
 * Bytes a connection may have queued and not yet taken by its socket before
 * no further request is queued on it: the rest of a window (or of a late
 * schedule) waits for the socket to take these, so that what gwbench holds
 * is bounded whatever --window, --connections and --size say. In flight
 * counts what the socket took; a request still to be queued keeps its
 * intended send time (open loop) or is started when there is room (closed
 * loop, as a client that writes to a blocking socket would).
 */
#define QUEUED_MAX       (64 * 1024)
/* The in-flight record of a client starts this small and doubles up to --window as needed. */
#define FIFO_START       16
/* Above this many clients, a connection's buffers are freed whenever they are empty. */
#define TRIM_ABOVE       256
/* A long-poll answered empty sooner than this share of its wait was not held. */
#define EARLY_SHARE      0.5
#define EVENTS_MAX       256
/* How long a long-poll asks the gateway to hold it (docs/api.md: 0-60). */
#define LONGPOLL_WAIT_S  30
/* Where a Socket.IO client opens its WebSocket (transports: ["websocket"]). */
#define SIO_TARGET       "/socket.io/?EIO=4&transport=websocket"
/* Messages per GET page (the API's maximum). */
#define PAGE_LIMIT       1000
/* udp, closed loop: datagrams one socket sends per turn of the loop before the others get theirs.
 */
#define UDP_BURST        64
/* udp-ping: a pong not back this long after its PING is lost (a late one is ignored). */
#define UDP_LOST_NS      (GWBENCH_UDP_LOST_MS * NS_PER_MS)
/* udp: reading back stops when a long-poll of this many seconds finds nothing new. */
#define UDP_SETTLE_S     1

/*
 * The styles, in the order they run and are shown: the one place a style
 * is defined (see gwbench_styles.h). Every delivery style also needs the
 * session front, for its publisher.
 */
const struct style_info gwbench_styles[] = {
    {"rest-close", "POST with a new TCP connection for each message (like curl)", STYLE_PUBLISH,
     ROLE_REST_CLOSE, true, false, false, false, 0},
    {"rest-keepalive", "POST on kept-alive connections, one in flight on each", STYLE_PUBLISH,
     ROLE_REST_KEEP, true, false, false, false, 0},
    {"tcp", "PUB on sessions, one in flight on each", STYLE_PUBLISH, ROLE_TCP, false, true, false,
     false, 0},
    {"tcp-pipelined", "PUB on sessions, --window in flight on each", STYLE_PUBLISH, ROLE_TCP, false,
     true, false, true, 0},
    {"ws", "PUB in text messages on WebSockets, one in flight on each", STYLE_PUBLISH, ROLE_WS,
     true, false, false, false, 0},
    {"udp", "PUB datagrams, fire and forget; what was stored is read back over REST", STYLE_PUBLISH,
     ROLE_UDP, true, false, true, false, 0},
    {"tcp-push", "subscribers get each message pushed (SUB)", STYLE_DELIVERY, ROLE_SUB, false, true,
     false, false, 0},
    {"ws-push", "WebSocket subscribers get each message pushed (SUB in a text message)",
     STYLE_DELIVERY, ROLE_WS_SUB, true, true, false, false, 0},
    {"socketio", "Socket.IO clients (Engine.IO over WebSocket) get each message pushed (emit sub)",
     STYLE_DELIVERY, ROLE_SIO_SUB, true, true, false, false, 0},
    {"sse", "GET .../events: each message pushed as a Server-Sent Event", STYLE_DELIVERY, ROLE_SSE,
     true, true, false, false, 0},
    {"rest-longpoll", "GET ...?since=N&wait=30, held until a message commits", STYLE_DELIVERY,
     ROLE_POLL, true, true, false, false, LONGPOLL_WAIT_S},
    {"rest-poll", "GET ...?since=N every --poll-interval", STYLE_DELIVERY, ROLE_POLL, true, true,
     false, false, 0},
    {"tcp-ping", "PING on sessions, one in flight on each", STYLE_ROUNDTRIP, ROLE_TCP_PING, false,
     true, false, false, 0},
    {"udp-ping", "PING datagrams, one in flight per socket", STYLE_ROUNDTRIP, ROLE_UDP_PING, false,
     false, true, false, 0},
};

const size_t gwbench_nstyles = GW_ARRAY_SIZE(gwbench_styles);

int gwbench_style_find(const char *name, size_t len)
{
    for (size_t i = 0; i < gwbench_nstyles; i++) {
        if (strlen(gwbench_styles[i].name) == len && memcmp(gwbench_styles[i].name, name, len) == 0)
            return (int)i;
    }
    return -1;
}

bool gwbench_style_polls(const struct style_info *si)
{
    return si->role == ROLE_POLL;
}

const char *gwbench_kind_name(enum style_kind kind)
{
    static const char *const names[STYLE__KINDS] = {"publish", "delivery", "roundtrip"};
    return (unsigned)kind < STYLE__KINDS ? names[kind] : "?";
}

static bool role_udp(enum style_role role)
{
    return role == ROLE_UDP || role == ROLE_UDP_PING;
}

struct client {
    enum style_role role;
    size_t idx;
    struct client_conn c;
    struct client_conn closing; /* rest-close: the last connection, until the gateway's FIN is in */
    /* publish: intended send times of the requests in flight, oldest first */
    int64_t *fifo;
    unsigned window, head, inflight;
    unsigned fifo_cap; /* slots allocated: grows up to window */
    uint64_t sent;     /* requests (or, publisher, PUBs) sent */
    uint64_t quota;    /* open loop with --messages: requests this client sends in all */
    int64_t phase_ns;  /* offset of this client's schedule from the run's start */
    /* receivers */
    int64_t last_seq; /* every seq up to this one was received */
    bool polling;     /* a GET is in flight */
    int64_t poll_sent_ns;
    int64_t next_poll_ns;
    struct buf scratch;    /* de-chunked bodies */
    struct client_ws *ws;  /* WebSocket roles: the framing over c */
    struct buf sio;        /* ROLE_SIO_SUB: the line the last packet carried */
    struct client_sse sse; /* sse: the stream over c */
    bool sse_ready;        /* the SUB behind the stream is answered */
    /* udp-ping: the PING in flight, and when it is lost */
    uint64_t ping_seq;
    int64_t lost_at;
};

struct run {
    const struct gwbench_opts *o;
    const struct style_info *si;
    char channel[GW_CHANNEL_MAX + 1];
    char path[GW_CHANNEL_MAX + 32]; /* /v1/channels/<channel>/messages */
    int ep;
    struct client *cl;
    size_t ncl;
    struct client pub; /* delivery styles */
    bool delivery;
    struct client_stats wire;     /* the measured side */
    struct client_stats pub_wire; /* the delivery publisher */
    struct hist *lat;
    /* publish styles */
    bool open_loop;
    int64_t interval_ns; /* open loop: between one client's requests */
    uint64_t total;      /* --messages: requests in all; 0: for duration_s */
    uint64_t issued;     /* closed loop: requests started */
    uint64_t inflight;
    uint64_t backlog;
    /* udp, udp-ping */
    uint64_t lost;         /* udp-ping: pongs not back in time; udp: datagrams never stored */
    int64_t t_sent_last;   /* udp: the last datagram sent */
    int64_t wall_start_ms; /* udp: t_start on the wall clock, to read the messages' ts against */
    uint64_t udp_index;    /* udp: datagrams sent, the index in the next one's body */
    double drops_before[GWBENCH_UDP_DROPS];
    bool drops_known;
    /* delivery styles */
    uint64_t to_publish, acked;
    int64_t pub_interval_ns;
    int64_t pub_done_ns; /* when the last PUB was sent; 0 before */
    size_t receivers_done;
    uint64_t polls, empty_polls, early_empty;
    /* both */
    int64_t t_start, t_stop; /* t_stop: no request is started from then on */
    int64_t t_last;          /* the last completion */
    int64_t t_first;         /* delivery styles: the first delivery; 0 before */
    int64_t last_progress_ns;
    int64_t drain_deadline; /* 0 until nothing is left to send */
    int64_t timer_ns;       /* the next time a client has something due */
    uint64_t done;
    bool failed;
    char err[GW_ERRLEN * 2];
    struct buf line; /* a request or a body being built */
};

static void run_fail(struct run *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void run_fail(struct run *r, const char *fmt, ...)
{
    va_list ap;

    if (r->failed)
        return; /* the first failure is the one that explains */
    r->failed = true;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
}

/* Short and escaped: for quoting what the gateway said in an error message. */
static const char *shown(const char *p, size_t n, char *out, size_t outlen)
{
    return client_text_shown(p, n, out, outlen);
}

/* ---- message bodies: "<index>:<intended send time, ns>:" padded with 'x' ---- */

static void body_make(struct run *r, uint64_t index, int64_t intended_ns)
{
    char head[64];
    int n = snprintf(head, sizeof(head), "%" PRIu64 ":%" PRId64 ":", index, intended_ns);
    size_t size = (size_t)r->o->size;

    GW_ASSERT(n > 0 && (size_t)n < size);
    buf_clear(&r->line);
    buf_grow(&r->line, size);
    buf_append(&r->line, head, (size_t)n);
    memset(r->line.data + n, 'x', size - (size_t)n);
    r->line.len = size;
    r->line.data[size] = '\0';
}

static bool body_parse(const char *p, size_t n, uint64_t *index, int64_t *ts)
{
    uint64_t a = 0, b = 0;
    size_t i = 0, start;

    for (start = i; i < n && p[i] >= '0' && p[i] <= '9' && i - start < 19; i++)
        a = a * 10 + (uint64_t)(p[i] - '0');
    if (i == start || i >= n || p[i++] != ':')
        return false;
    for (start = i; i < n && p[i] >= '0' && p[i] <= '9' && i - start < 19; i++)
        b = b * 10 + (uint64_t)(p[i] - '0');
    if (i == start || i >= n || p[i] != ':')
        return false;
    *index = a;
    *ts = (int64_t)b;
    return true;
}

/* ---- requests ---- */

/* Queues a POST (REST roles) or a PUB line (sessions) of one message; a PING for tcp-ping. */
static void queue_publish(struct run *r, struct client *cl, uint64_t index, int64_t intended)
{
    struct client_conn *c = &cl->c;

    if (cl->role == ROLE_TCP_PING) {
        char ping[48];
        int n = snprintf(ping, sizeof(ping), "PING p%" PRIu64 "\n", index);
        client_conn_queue(c, ping, (size_t)n);
        return;
    }
    body_make(r, index, intended);
    if (cl->role == ROLE_REST_CLOSE || cl->role == ROLE_REST_KEEP) {
        /* {"body":"..."}: the body is digits, ':' and 'x', nothing to escape. */
        struct buf json = BUF_INIT;
        buf_grow(&json, r->line.len + 16);
        buf_append(&json, "{\"body\":\"", 9);
        buf_append(&json, r->line.data, r->line.len);
        buf_append(&json, "\"}", 2);
        client_http_post(&c->out, r->o->http.text, r->path, json.data, json.len,
                         cl->role == ROLE_REST_CLOSE);
        buf_release(&json);
    } else if (cl->ws) {
        /* One command per text message, no line end. */
        struct buf cmd = BUF_INIT;
        buf_appendf(&cmd, "PUB %s ", r->channel);
        buf_append(&cmd, r->line.data, r->line.len);
        client_ws_send(cl->ws, cmd.data, cmd.len);
        buf_release(&cmd);
    } else {
        char head[GW_CHANNEL_MAX + 8];
        int n = snprintf(head, sizeof(head), "PUB %s ", r->channel);
        client_conn_queue(c, head, (size_t)n);
        client_conn_queue(c, r->line.data, r->line.len);
        client_conn_queue(c, "\n", 1);
    }
}

/*
 * Whether cl may start a request now, and its intended send time. Closed
 * loop: now, while the run lasts. Open loop: the next one on the client's
 * schedule, once it is due.
 */
static bool next_request(struct run *r, struct client *cl, int64_t now, int64_t *intended)
{
    if (!r->open_loop) {
        if (r->total ? r->issued >= r->total : now >= r->t_stop)
            return false;
        r->issued++;
        *intended = now;
        return true;
    }
    if (r->total ? cl->sent >= cl->quota : now >= r->t_stop)
        return false; /* time is up: what is still due stays unsent (account_backlog) */
    int64_t due = r->t_start + cl->phase_ns + (int64_t)cl->sent * r->interval_ns;
    if (due >= r->t_stop || due > now)
        return false;
    *intended = due;
    return true;
}

/* Bytes queued on cl's connection that its socket has not taken yet. */
static size_t queued(const struct client *cl)
{
    return cl->c.out.len - cl->c.out_off;
}

/* When cl will next have something to do on its own (not in answer to the gateway). */
static int64_t next_due(struct run *r, struct client *cl)
{
    /* udp, closed loop: always more to send, until the run is over. */
    if (cl->role == ROLE_UDP && !r->open_loop)
        return (r->total ? r->issued < r->total : client_now_ns() < r->t_stop) ? 0 : INT64_MAX;
    /* udp-ping: its PING in flight is lost at lost_at; closed loop, the next goes with the pong. */
    if (cl->role == ROLE_UDP_PING && cl->inflight)
        return cl->lost_at;
    switch (cl->role) {
    case ROLE_UDP:
    case ROLE_UDP_PING:
    case ROLE_REST_CLOSE:
    case ROLE_REST_KEEP:
    case ROLE_TCP:
    case ROLE_WS:
    case ROLE_TCP_PING: {
        if (!r->open_loop || cl->inflight >= cl->window || (r->total && cl->sent >= cl->quota))
            return INT64_MAX;
        if (queued(cl) >= QUEUED_MAX)
            return INT64_MAX; /* the socket's writability says when */
        if (cl->role == ROLE_REST_CLOSE && cl->c.fd >= 0)
            return INT64_MAX;
        int64_t due = r->t_start + cl->phase_ns + (int64_t)cl->sent * r->interval_ns;
        return due >= r->t_stop ? INT64_MAX : due;
    }
    case ROLE_PUBLISHER:
        if (cl->sent >= r->to_publish || cl->sent - r->acked >= PUB_INFLIGHT_MAX ||
            queued(cl) >= QUEUED_MAX)
            return INT64_MAX;
        return r->t_start + (int64_t)cl->sent * r->pub_interval_ns;
    case ROLE_POLL:
        if (cl->polling || cl->last_seq >= (int64_t)r->to_publish)
            return INT64_MAX;
        return cl->next_poll_ns;
    case ROLE_SUB:
    case ROLE_SSE:
    case ROLE_WS_SUB:
    case ROLE_SIO_SUB:
        break;
    }
    return INT64_MAX;
}

/* Sends what cl has queued and keeps its epoll registration in step. */
static void client_sync(struct run *r, struct client *cl)
{
    char err[GW_ERRLEN];

    if (cl->c.fd < 0)
        return;
    if (client_conn_flush(&cl->c, err) < 0) {
        run_fail(r, "%s: %s", cl->role == ROLE_PUBLISHER ? "the publisher" : "a client", err);
        return;
    }
    if (client_conn_watch(&cl->c, r->ep, err) < 0)
        run_fail(r, "%s", err);
}

static void fifo_push(struct client *cl, int64_t t)
{
    GW_ASSERT(cl->inflight < cl->window);
    if (cl->inflight == cl->fifo_cap) {
        /* Full: twice the room (at most the window), oldest first from slot 0. */
        unsigned cap = cl->fifo_cap > cl->window / 2 ? cl->window : cl->fifo_cap * 2;
        int64_t *grown = gw_xcalloc(cap, sizeof(*grown));
        for (unsigned i = 0; i < cl->inflight; i++)
            grown[i] = cl->fifo[(cl->head + i) % cl->fifo_cap];
        free(cl->fifo);
        cl->fifo = grown;
        cl->fifo_cap = cap;
        cl->head = 0;
    }
    cl->fifo[(cl->head + cl->inflight) % cl->fifo_cap] = t;
    cl->inflight++;
}

static int64_t fifo_pop(struct client *cl)
{
    int64_t t;

    GW_ASSERT(cl->inflight > 0);
    t = cl->fifo[cl->head];
    cl->head = (cl->head + 1) % cl->fifo_cap;
    cl->inflight--;
    return t;
}

/* Opens cl's connection if it has none (REST roles: lazily, inside the measured time). */
static bool ensure_connected(struct run *r, struct client *cl, const struct client_addr *a)
{
    char err[GW_ERRLEN];

    if (cl->c.fd >= 0)
        return true;
    if (client_conn_start(&cl->c, a, err) < 0) {
        run_fail(r, "%s", err);
        return false;
    }
    return true;
}

static void poll_send(struct run *r, struct client *cl, int64_t now)
{
    char target[GW_CHANNEL_MAX + 128];

    if (!ensure_connected(r, cl, &r->o->http))
        return;
    if (r->si->wait_s)
        snprintf(target, sizeof(target), "%s?since=%" PRId64 "&limit=%d&wait=%d", r->path,
                 cl->last_seq, PAGE_LIMIT, r->si->wait_s);
    else
        snprintf(target, sizeof(target), "%s?since=%" PRId64 "&limit=%d", r->path, cl->last_seq,
                 PAGE_LIMIT);
    client_http_get(&cl->c.out, r->o->http.text, target);
    cl->polling = true;
    cl->poll_sent_ns = now;
}

/* Sends a datagram on cl's socket; false when it did not leave (the reason is r's, or a drop). */
static bool udp_send(struct run *r, struct client *cl, const char *p, size_t n)
{
    ssize_t k = send(cl->c.fd, p, n, MSG_DONTWAIT);

    if (k < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return false; /* the host's own buffers are full: lost before it left */
        if (errno == ECONNREFUSED)
            run_fail(r, "%s: nothing receives datagrams there (ICMP port unreachable)",
                     r->o->udp.text);
        else
            run_fail(r, "sending to %s: %s", r->o->udp.text, strerror(errno));
        return false;
    }
    cl->c.stats->bytes_out += (uint64_t)k;
    return true;
}

/* udp: PUB datagrams, a burst per turn (closed loop) or what the schedule says is due. */
static void udp_pump(struct run *r, struct client *cl, int64_t now)
{
    char head[GW_CHANNEL_MAX + 8];
    int hn = snprintf(head, sizeof(head), "PUB %s ", r->channel);
    struct buf *d = &cl->scratch;
    int64_t intended;
    int k;

    for (k = 0; k < UDP_BURST && !r->failed && next_request(r, cl, now, &intended); k++) {
        /* One count across the run's sockets, so that the read-back can tell each one. */
        body_make(r, r->udp_index++, intended);
        buf_clear(d);
        buf_append(d, head, (size_t)hn);
        buf_append(d, r->line.data, r->line.len);
        udp_send(r, cl, d->data, d->len); /* lost or not, it was offered */
        cl->sent++;
    }
    if (k)
        r->t_sent_last = client_now_ns(); /* the burst is out */
}

/* udp-ping: a pong not back in time is lost; then the next PING, when one may go. */
static void ping_pump(struct run *r, struct client *cl, int64_t now)
{
    char ping[GWBENCH_UDP_PING_SIZE], token[48];
    int64_t intended;

    if (cl->inflight && now >= cl->lost_at) {
        fifo_pop(cl);
        r->inflight--;
        r->lost++;
    }
    if (cl->inflight || r->failed || !next_request(r, cl, now, &intended))
        return;
    cl->ping_seq = cl->sent++;
    snprintf(token, sizeof(token), "u%zu-%" PRIu64, cl->idx, cl->ping_seq);
    if (!udp_send(r, cl, ping, udp_ping_make(ping, token))) {
        r->lost++;
        return;
    }
    fifo_push(cl, intended);
    r->inflight++;
    cl->lost_at = now + UDP_LOST_NS;
}

/* Starts whatever cl may start now; returns when it next has something due. */
static int64_t client_pump(struct run *r, struct client *cl, int64_t now)
{
    int64_t intended;

    if (r->failed)
        return INT64_MAX;
    switch (cl->role) {
    case ROLE_REST_CLOSE:
    case ROLE_REST_KEEP:
        /* One request in flight; rest-close also waits for its last connection to be retired. */
        if (cl->inflight == 0 && (cl->role == ROLE_REST_KEEP || cl->c.fd < 0) &&
            next_request(r, cl, now, &intended)) {
            if (!ensure_connected(r, cl, &r->o->http))
                return INT64_MAX;
            queue_publish(r, cl, cl->sent++, intended);
            fifo_push(cl, intended);
            r->inflight++;
        }
        break;
    case ROLE_TCP:
    case ROLE_WS:
    case ROLE_TCP_PING:
        /*
         * The window, QUEUED_MAX bytes at a time: while the socket takes all
         * that was queued, queue more; once it does not, its writability
         * brings the rest (on_event).
         */
        for (;;) {
            while (cl->inflight < cl->window && queued(cl) < QUEUED_MAX &&
                   next_request(r, cl, now, &intended)) {
                queue_publish(r, cl, cl->sent++, intended);
                fifo_push(cl, intended);
                r->inflight++;
            }
            if (queued(cl) < QUEUED_MAX)
                break; /* the window is full, or nothing more is due */
            client_sync(r, cl);
            if (r->failed || queued(cl))
                break;
        }
        break;
    case ROLE_UDP:
        udp_pump(r, cl, now);
        return next_due(r, cl);
    case ROLE_UDP_PING:
        ping_pump(r, cl, now);
        return next_due(r, cl);
    case ROLE_PUBLISHER:
        while (cl->sent < r->to_publish && cl->sent - r->acked < PUB_INFLIGHT_MAX &&
               queued(cl) < QUEUED_MAX) {
            int64_t due = r->t_start + (int64_t)cl->sent * r->pub_interval_ns;
            if (due > now)
                break;
            queue_publish(r, cl, cl->sent, due);
            if (++cl->sent == r->to_publish)
                r->pub_done_ns = now;
        }
        break;
    case ROLE_POLL:
        if (!cl->polling && cl->last_seq < (int64_t)r->to_publish && now >= cl->next_poll_ns)
            poll_send(r, cl, now);
        break;
    case ROLE_SUB:
    case ROLE_SSE:
    case ROLE_WS_SUB:
    case ROLE_SIO_SUB:
        break;
    }
    client_sync(r, cl);
    return next_due(r, cl);
}

/* ---- what comes back ---- */

static void record(struct run *r, int64_t intended, int64_t now)
{
    hist_add(r->lat, now - intended);
    r->done++;
    r->t_last = now;
    r->last_progress_ns = now;
}

/* A decoded string, escaped, for "%s": "?" when absent. */
#define TEXT(t, out) ((t).s ? shown((t).s, (t).len, out, sizeof(out)) : "?")

/* The text of a session error line, for a failure message. */
static void session_error(struct run *r, const char *who, const char *line, size_t len)
{
    struct server_line l;
    char tmp[160], tmp2[160];

    server_line_parse(&l, line, len);
    if (l.type == SL_ERROR)
        run_fail(r, "%s: the gateway answered error %s: %s", who, TEXT(l.code, tmp),
                 TEXT(l.message, tmp2));
    else if (l.type == SL_BYE)
        run_fail(r, "%s: the gateway ended the session (bye: %s)", who, TEXT(l.reason, tmp));
    else
        run_fail(r, "%s: unexpected line from the gateway: %s", who,
                 shown(line, len, tmp, sizeof(tmp)));
    server_line_release(&l);
}

static bool is_push(const char *line, size_t len)
{
    return sl_type_is_push(server_line_type(line, len, NULL));
}

/* Is this line the ok of a PUB? Read from its head alone, the fast way, when it can be. */
static bool is_pub_ok(const char *line, size_t len)
{
    enum proto_op op;

    return server_line_type(line, len, &op) == SL_OK && op == PROTO_PUB;
}

/* The next line of a session, or false (framing lost fails the run). */
static bool next_line(struct run *r, struct client_conn *c, char **line, size_t *len)
{
    switch (client_conn_line(c, line, len)) {
    case CLIENT_LINE:
        return true;
    case CLIENT_TOO_LONG:
        run_fail(r, "%s sent a line longer than %zu bytes", c->peer, c->line_max);
        return false;
    case CLIENT_MORE:
        break;
    }
    return false;
}

/*
 * A Socket.IO packet as the session line it carries, in cl->sio (the rest
 * of gwbench reads lines): the CONNECT answer as a hello, an ACK as its
 * reply, an event as {"type":"<event>",...}. A ping is answered and
 * skipped, as is the open packet; anything else stays as it is (and is
 * no line gwbench expects: the run fails on it, showing it).
 */
static bool sio_line(struct client *cl, char **line, size_t *len)
{
    char *p = *line;
    size_t n = *len;
    struct buf *b = &cl->sio;

    buf_clear(b);
    if (n == 1 && p[0] == '2') {
        client_ws_send(cl->ws, "3", 1);
        return false;
    }
    if (n && p[0] == '0')
        return false;
    if (n > 2 && memcmp(p, "40", 2) == 0) {
        buf_appendf(b, "{\"type\":\"hello\"}");
    } else if (n > 4 && memcmp(p, "43", 2) == 0 && p[n - 1] == ']') {
        const char *open = memchr(p, '[', n);
        buf_append(b, open + 1, (size_t)(p + n - 1 - (open + 1)));
    } else if (n > 6 && memcmp(p, "42[\"", 4) == 0 && p[n - 1] == ']') {
        const char *q = memchr(p + 4, '"', n - 4);
        if (!q || q + 3 > p + n || q[1] != ',' || q[2] != '{')
            return true;
        buf_appendf(b, "{\"type\":\"%.*s\"%s", (int)(q - (p + 4)), p + 4, q[3] == '}' ? "" : ",");
        buf_append(b, q + 3, (size_t)(p + n - 1 - (q + 3)));
    } else {
        return true;
    }
    buf_append(b, "", 1);
    *line = b->data;
    *len = b->len - 1;
    return true;
}

/*
 * The next line of cl's session: a line on TCP, a text message on a
 * WebSocket, the line a Socket.IO packet carries.
 */
static bool client_line(struct run *r, struct client *cl, char **line, size_t *len)
{
    if (!cl->ws)
        return next_line(r, &cl->c, line, len);
    while (client_ws_line(cl->ws, line, len)) {
        if (cl->role != ROLE_SIO_SUB || sio_line(cl, line, len))
            return true;
    }
    return false;
}

/* Session lines of a publishing client (role tcp) or of the delivery publisher. */
static void on_pub_lines(struct run *r, struct client *cl, int64_t now)
{
    const char *who = cl->role == ROLE_PUBLISHER ? "the publisher" : "a session";
    char *line;
    size_t len;

    while (!r->failed && client_line(r, cl, &line, &len)) {
        if (len == 0 || is_push(line, len))
            continue;
        if (cl->role == ROLE_TCP_PING ? server_line_type(line, len, NULL) != SL_PONG
                                      : !is_pub_ok(line, len)) {
            session_error(r, who, line, len);
            return;
        }
        if (cl->role == ROLE_PUBLISHER) {
            if (r->acked >= cl->sent) {
                run_fail(r, "the publisher got more replies than it sent PUBs");
                return;
            }
            r->acked++;
            r->last_progress_ns = now;
            continue;
        }
        if (cl->inflight == 0) {
            run_fail(r, "%s got a reply with no PUB in flight", who);
            return;
        }
        r->inflight--;
        record(r, fifo_pop(cl), now);
    }
}

/* One delivered message (seq, body) for receiver cl. */
static void deliver(struct run *r, struct client *cl, int64_t seq, const char *body, size_t len,
                    int64_t now)
{
    uint64_t index;
    int64_t ts;
    char tmp[80];

    if (seq != cl->last_seq + 1) {
        run_fail(r, "receiver %zu got seq %" PRId64 " after %" PRId64 " (%s)", cl->idx, seq,
                 cl->last_seq, seq <= cl->last_seq ? "a repeat" : "a gap");
        return;
    }
    if (!body_parse(body, len, &index, &ts) || (int64_t)index != seq - 1 ||
        len != (size_t)r->o->size) {
        run_fail(r,
                 "receiver %zu: seq %" PRId64 " is not the message gwbench published as #%" PRId64
                 " (body %s, %zu bytes)",
                 cl->idx, seq, seq - 1, shown(body, len, tmp, sizeof(tmp)), len);
        return;
    }
    cl->last_seq = seq;
    if (!r->t_first)
        r->t_first = now;
    record(r, ts, now);
    if (cl->last_seq == (int64_t)r->to_publish)
        r->receivers_done++;
}

static void on_sub_lines(struct run *r, struct client *cl, int64_t now)
{
    char *line;
    size_t len;

    while (!r->failed && client_line(r, cl, &line, &len)) {
        struct server_line l;

        if (len == 0)
            continue;
        /* A push the gateway's way is read without jansson: receivers must keep up. */
        server_line_parse(&l, line, len);
        if (l.type == SL_MESSAGE) {
            if (l.msg.seq < 1 || !l.msg.body.s)
                run_fail(r, "receiver %zu: a message push without seq or body", cl->idx);
            else
                deliver(r, cl, l.msg.seq, l.msg.body.s, l.msg.body.len, now);
        } else if (l.type != SL_PING) {
            session_error(r, "a subscriber", line, len);
        }
        server_line_release(&l);
    }
}

/* ---- Server-Sent Events ---- */

/* One event of the stream (common/client_sse cuts them). */
static void sse_event(struct run *r, struct client *cl, const struct client_sse_event *ev,
                      int64_t now)
{
    char tmp[160], name[64];

    if (!cl->sse_ready && ev->comment) {
        /* The replies are comments: the SUB's says the stream is set up. */
        enum proto_op op;
        if (server_line_type(ev->comment, ev->comment_len, &op) == SL_OK && op == PROTO_SUB)
            cl->sse_ready = true;
    }
    if (!ev->data)
        return; /* comments only: the greeting, a reply, a heartbeat */
    if (ev->event_len != 7 || memcmp(ev->event, "message", 7) != 0) {
        run_fail(r, "receiver %zu: SSE event %s: %s", cl->idx,
                 shown(ev->event, ev->event_len, name, sizeof(name)),
                 shown(ev->data, ev->data_len, tmp, sizeof(tmp)));
        return;
    }
    /* The data is the message object; as a push line it reads the fast way. */
    struct server_line l;
    buf_clear(&r->line);
    static const char push[] = "{\"type\":\"message\",";
    buf_append(&r->line, push, sizeof(push) - 1);
    buf_append(&r->line, ev->data + 1, ev->data_len - 1);
    server_line_parse(&l, r->line.data, r->line.len);
    if (l.type != SL_MESSAGE || l.msg.seq < 1 || !l.msg.body.s)
        run_fail(r, "receiver %zu: an SSE message without seq or body: %s", cl->idx,
                 shown(ev->data, ev->data_len, tmp, sizeof(tmp)));
    else
        deliver(r, cl, l.msg.seq, l.msg.body.s, l.msg.body.len, now);
    server_line_release(&l);
}

/* What came in on an SSE stream: the head, then the body cut into events. */
static void on_sse_input(struct run *r, struct client *cl, int64_t now)
{
    struct client_sse_event ev;
    char err[GW_ERRLEN];

    if (client_sse_input(&cl->sse, &cl->c, err) < 0) {
        run_fail(r, "receiver %zu: GET /v1/channels/%s/events: %s", cl->idx, r->channel, err);
        return;
    }
    while (!r->failed && client_sse_event(&cl->sse, &ev))
        sse_event(r, cl, &ev, now);
}

/* One whole HTTP response on a REST client. */
static void on_response(struct run *r, struct client *cl, const struct client_http_resp *h,
                        int64_t now)
{
    char text[GW_ERRLEN];

    if (cl->role == ROLE_POLL) {
        struct server_line pg;
        char err[GW_ERRLEN];

        if (h->status != 200) {
            server_line_rest_error(h->body, h->body_len, text, sizeof(text));
            run_fail(r, "GET %s?since=%" PRId64 " answered %d (%s)", r->path, cl->last_seq,
                     h->status, text);
            return;
        }
        if (server_line_page(&pg, h->body, h->body_len, err) < 0) {
            server_line_release(&pg);
            run_fail(r, "GET %s: %s", r->path, err);
            return;
        }
        r->polls++;
        if (pg.n_messages == 0) {
            r->empty_polls++;
            if (r->si->wait_s &&
                (double)(now - cl->poll_sent_ns) < EARLY_SHARE * r->si->wait_s * (double)NS_PER_S)
                r->early_empty++;
        }
        for (size_t i = 0; i < pg.n_messages && !r->failed; i++) {
            struct sl_msg m;
            server_line_hist_msg(&pg, i, &m);
            if (m.seq < 0 || !m.body.s)
                run_fail(r, "GET %s: message %zu of the page has no seq or body", r->path, i);
            else
                deliver(r, cl, m.seq, m.body.s, m.body.len, now);
        }
        if (!r->failed && pg.next_since != cl->last_seq)
            run_fail(r, "GET %s: next_since %" PRId64 " after seq %" PRId64, r->path, pg.next_since,
                     cl->last_seq);
        cl->polling = false;
        if (r->si->wait_s || pg.more) {
            /* At once: a long-poll, or the page was cut (by its limit or its bytes). */
            cl->next_poll_ns = now;
        } else {
            int64_t base = r->t_start + cl->phase_ns, p = r->o->poll_ms * NS_PER_MS;
            int64_t k = now < base ? 0 : (now - base) / p + 1;
            cl->next_poll_ns = base + k * p;
        }
        server_line_release(&pg);
        return;
    }
    if (h->status != 201) {
        server_line_rest_error(h->body, h->body_len, text, sizeof(text));
        run_fail(r, "POST %s answered %d (%s)", r->path, h->status, text);
        return;
    }
    if (cl->inflight == 0) {
        run_fail(r, "a response with no request in flight");
        return;
    }
    r->inflight--;
    record(r, fifo_pop(cl), now);
}

/*
 * rest-close, the answer in: done with the connection, as curl would be.
 * The gateway closes it too (the request said Connection: close), and its
 * FIN usually is in already; closing only once it is leaves the TIME_WAIT
 * on the gateway's side instead of using up this host's ephemeral ports.
 * A connection whose FIN is late waits in cl->closing, at most until the
 * next one retires.
 */
static void retire(struct run *r, struct client *cl)
{
    char err[GW_ERRLEN];
    struct client_conn tmp;
    struct epoll_event ev;

    if (!cl->c.eof && client_conn_fill(&cl->c, err) == 1 && !cl->c.eof) {
        client_conn_close(&cl->closing);
        tmp = cl->closing;
        cl->closing = cl->c;
        cl->c = tmp;
        memset(&ev, 0, sizeof(ev));
        ev.events = EPOLLIN;
        ev.data.ptr = &cl->closing;
        if (epoll_ctl(r->ep, EPOLL_CTL_MOD, cl->closing.fd, &ev) == 0) {
            cl->closing.watched = EPOLLIN;
            return;
        }
        client_conn_close(&cl->closing);
        return;
    }
    client_conn_close(&cl->c);
}

/* The gateway's FIN (or anything else) on a retired connection: close it now. */
static void on_closing(struct client *cl)
{
    char err[GW_ERRLEN];

    if (client_conn_fill(&cl->closing, err) == 1 && !cl->closing.eof &&
        cl->closing.in.len == cl->closing.in_off)
        return; /* nothing after all */
    client_conn_close(&cl->closing);
}

static void on_http_input(struct run *r, struct client *cl, int64_t now)
{
    for (;;) {
        struct client_http_resp h;
        const char *p;
        size_t len;
        char err[GW_ERRLEN];
        enum client_http_parse rc;

        p = client_conn_data(&cl->c, &len);
        if (len == 0 && !cl->c.eof)
            return;
        if (len == 0 && cl->c.eof) {
            /* Closed with nothing pending is a kept-alive connection ending: open another. */
            if (cl->inflight || cl->polling)
                run_fail(r, "the gateway closed the connection before answering");
            client_conn_close(&cl->c);
            return;
        }
        rc = client_http_parse(p, len, cl->c.eof, &cl->scratch, &h, err);
        if (rc == CLIENT_HTTP_PARTIAL)
            return;
        if (rc == CLIENT_HTTP_BAD) {
            run_fail(r, "reading an HTTP response: %s", err);
            return;
        }
        if (!cl->inflight && !cl->polling) {
            run_fail(r, "an HTTP response with no request in flight (status %d)", h.status);
            return;
        }
        client_conn_consume(&cl->c, h.consumed);
        on_response(r, cl, &h, now);
        if (r->failed)
            return;
        if (cl->role == ROLE_REST_CLOSE) {
            retire(r, cl);
            return;
        }
        if (h.close) {
            client_conn_close(&cl->c); /* the next request opens another */
            return;
        }
    }
}

/* Datagrams on a UDP client's socket: pongs for udp-ping; nothing is due to a udp sender. */
static void on_datagrams(struct run *r, struct client *cl)
{
    char got[4096], token[48], want[48];

    while (!r->failed) {
        ssize_t k = recv(cl->c.fd, got, sizeof(got), MSG_DONTWAIT);
        int64_t now = client_now_ns();
        if (k < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
                return;
            if (errno == ECONNREFUSED)
                run_fail(r, "%s: nothing receives datagrams there (ICMP port unreachable)",
                         r->o->udp.text);
            else
                run_fail(r, "receiving from %s: %s", r->o->udp.text, strerror(errno));
            return;
        }
        cl->c.stats->bytes_in += (uint64_t)k;
        if (cl->role != ROLE_UDP_PING || !udp_pong_token(got, (size_t)k, token, sizeof(token))) {
            session_error(r, "a UDP client", got,
                          k && got[k - 1] == '\n' ? (size_t)k - 1 : (size_t)k);
            return;
        }
        snprintf(want, sizeof(want), "u%zu-%" PRIu64, cl->idx, cl->ping_seq);
        if (!cl->inflight || strcmp(token, want) != 0)
            continue; /* the pong of a PING already counted lost */
        r->inflight--;
        record(r, fifo_pop(cl), now);
    }
}

static void on_event(struct run *r, struct client_conn *b, uint32_t events)
{
    struct client *cl = b->owner;
    char err[GW_ERRLEN];
    const struct client_addr *a = cl->role == ROLE_REST_CLOSE || cl->role == ROLE_REST_KEEP ||
                                          cl->role == ROLE_POLL || cl->role == ROLE_SSE || cl->ws
                                      ? &r->o->http
                                      : &r->o->tcp;
    int rc;
    int64_t now;

    if (b == &cl->closing) {
        on_closing(cl);
        return;
    }
    if (role_udp(cl->role)) {
        on_datagrams(r, cl);
        if (!r->failed) {
            int64_t due = client_pump(r, cl, client_now_ns());
            if (due < r->timer_ns)
                r->timer_ns = due;
        }
        return;
    }
    if (cl->c.connecting) {
        if (client_conn_finish(&cl->c, err) < 0) {
            run_fail(r, "%s", err);
            return;
        }
        client_sync(r, cl);
        return;
    }
    if (events & EPOLLOUT)
        client_sync(r, cl);
    if (r->failed)
        return;
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
        /* The socket took what was queued: what waited for room may go now. */
        int64_t due = client_pump(r, cl, client_now_ns());
        if (due < r->timer_ns)
            r->timer_ns = due;
        return;
    }
    rc = client_conn_fill(&cl->c, err);
    now = client_now_ns();
    if (rc < 0) {
        run_fail(r, "connection to %s: %s", a->text, err);
        return;
    }
    switch (cl->role) {
    case ROLE_REST_CLOSE:
    case ROLE_REST_KEEP:
    case ROLE_POLL:
        on_http_input(r, cl, now);
        break;
    case ROLE_TCP:
    case ROLE_TCP_PING:
    case ROLE_PUBLISHER:
        on_pub_lines(r, cl, now);
        if (rc == 0)
            run_fail(r, "the gateway closed %s",
                     cl->role == ROLE_PUBLISHER ? "the publisher's session" : "a session");
        break;
    case ROLE_SUB:
        on_sub_lines(r, cl, now);
        if (rc == 0)
            run_fail(r, "the gateway closed a subscriber's session");
        break;
    case ROLE_SSE:
        on_sse_input(r, cl, now);
        if (rc == 0)
            run_fail(r, "the gateway closed an SSE stream");
        break;
    case ROLE_WS:
    case ROLE_WS_SUB:
    case ROLE_SIO_SUB:
        if (client_ws_input(cl->ws, err) < 0) {
            run_fail(r, "%s", err);
            return;
        }
        if (cl->role == ROLE_WS)
            on_pub_lines(r, cl, now);
        else
            on_sub_lines(r, cl, now);
        if (rc == 0)
            run_fail(r, "the gateway closed a WebSocket");
        break;
    case ROLE_UDP:
    case ROLE_UDP_PING:
        break;
    }
    if (r->failed)
        return;
    int64_t due = client_pump(r, cl, now);
    if (due < r->timer_ns)
        r->timer_ns = due;
    /* Thousands of connections: each keeps its socket, not its buffers, between events. */
    if (r->ncl > TRIM_ABOVE)
        client_conn_trim(&cl->c);
}

/* ---- setup: sessions open and greeted, subscriptions confirmed, before the clock starts ---- */

/* The next line on a session being set up, skipping pushes. */
static int setup_line(struct run *r, struct client *cl, int64_t deadline, char **line, size_t *len,
                      const char *what)
{
    struct client_conn *c = &cl->c;
    char err[GW_ERRLEN];

    for (;;) {
        while (client_line(r, cl, line, len)) {
            if (*len && !is_push(*line, *len))
                return 0;
        }
        if (r->failed)
            return -1;
        if (c->eof) {
            run_fail(r, "%s: the gateway closed the session", what);
            return -1;
        }
        if (client_conn_wait(c, deadline, NULL, err) < 0 ||
            (cl->ws && client_ws_input(cl->ws, err) < 0)) {
            run_fail(r, "%s: %s", what, err);
            return -1;
        }
    }
}

/* Connects cl as a session and reads its hello. */
static int session_open(struct run *r, struct client *cl, int64_t deadline)
{
    char err[GW_ERRLEN], *line;
    size_t len;

    bool ws = cl->role == ROLE_WS || cl->role == ROLE_WS_SUB || cl->role == ROLE_SIO_SUB;

    if (client_conn_start(&cl->c, ws ? &r->o->http : &r->o->tcp, err) < 0) {
        run_fail(r, "%s", err);
        return -1;
    }
    if (ws)
        cl->ws = cl->role == ROLE_SIO_SUB
                     ? client_ws_new(&cl->c, r->o->http.text, SIO_TARGET, NULL)
                     : client_ws_new(&cl->c, r->o->http.text, "/v1/ws", "visavis.v1");
    if (cl->role == ROLE_SIO_SUB)
        client_ws_send(cl->ws, "40", 2); /* CONNECT: answered after the open packet */
    if (setup_line(r, cl, deadline, &line, &len, "opening a session") < 0)
        return -1;
    if (server_line_type(line, len, NULL) != SL_HELLO) {
        session_error(r, "opening a session", line, len);
        return -1;
    }
    return 0;
}

static int subscribe(struct run *r, struct client *cl, int64_t deadline)
{
    char cmd[GW_CHANNEL_MAX + 48], *line;
    size_t len;
    int n = snprintf(cmd, sizeof(cmd), "SUB %s 0\n", r->channel);
    enum proto_op op;

    if (cl->role == ROLE_SIO_SUB)
        n = snprintf(cmd, sizeof(cmd), "421[\"sub\",{\"channel\":\"%s\",\"since\":0}]\n",
                     r->channel);
    if (cl->ws)
        client_ws_send(cl->ws, cmd, (size_t)n - 1);
    else
        client_conn_queue(&cl->c, cmd, (size_t)n);
    if (setup_line(r, cl, deadline, &line, &len, "subscribing") < 0)
        return -1;
    if (server_line_type(line, len, &op) != SL_OK || op != PROTO_SUB) {
        session_error(r, "SUB", line, len);
        return -1;
    }
    return 0;
}

/* Opens an SSE stream from the channel's start, and waits until its SUB is answered. */
static int sse_open(struct run *r, struct client *cl, int64_t deadline)
{
    char err[GW_ERRLEN], target[GW_CHANNEL_MAX + 48];

    if (client_conn_start(&cl->c, &r->o->http, err) < 0) {
        run_fail(r, "%s", err);
        return -1;
    }
    snprintf(target, sizeof(target), "/v1/channels/%s/events?since=0", r->channel);
    client_http_get(&cl->c.out, r->o->http.text, target);
    while (!cl->sse_ready) {
        if (client_conn_wait(&cl->c, deadline, NULL, err) < 0) {
            run_fail(r, "opening an SSE stream: %s", err);
            return -1;
        }
        on_sse_input(r, cl, client_now_ns());
        if (r->failed)
            return -1;
        if (cl->c.eof) {
            run_fail(r, "opening an SSE stream: the gateway closed the connection");
            return -1;
        }
    }
    return 0;
}

/*
 * The longest session line a run takes. The longest the gateway sends it is
 * a push, or the ok of a PUB, carrying one of its --size bodies escaped at up
 * to six bytes a byte, with the message's other fields: 64 KiB more is a wide
 * margin (an error or a bye is far shorter). Anything longer fails the run
 * instead of taking gwbench's memory, --connections times over.
 */
static size_t run_line_max(const struct gwbench_opts *o)
{
    return (size_t)o->size * 6 + 64 * 1024;
}

static void client_init(struct client *cl, enum style_role role, size_t idx, unsigned window,
                        struct client_stats *w, size_t line_max)
{
    memset(cl, 0, sizeof(*cl));
    cl->role = role;
    cl->idx = idx;
    client_conn_init(&cl->c, w);
    client_conn_init(&cl->closing, w);
    cl->c.line_max = cl->closing.line_max = line_max;
    cl->c.owner = cl->closing.owner = cl;
    cl->window = window;
    cl->fifo_cap = window < FIFO_START ? window : FIFO_START;
    cl->fifo = gw_xcalloc(cl->fifo_cap, sizeof(*cl->fifo));
    buf_init(&cl->scratch);
    client_sse_init(&cl->sse);
}

static void client_release(struct client *cl)
{
    client_ws_free(cl->ws);
    cl->ws = NULL;
    buf_release(&cl->sio);
    client_conn_release(&cl->c);
    client_conn_release(&cl->closing);
    free(cl->fifo);
    cl->fifo = NULL;
    buf_release(&cl->scratch);
    client_sse_release(&cl->sse);
}

/* ---- the loop ---- */

static bool finished(struct run *r, int64_t now)
{
    if (r->delivery)
        return r->acked == r->to_publish && r->receivers_done == r->ncl;
    if (r->inflight)
        return false;
    if (!r->open_loop)
        return r->total ? r->issued >= r->total : now >= r->t_stop;
    if (!r->total)
        return now >= r->t_stop;
    for (size_t i = 0; i < r->ncl; i++) {
        if (r->cl[i].sent < r->cl[i].quota)
            return false;
    }
    return true;
}

/* Nothing more will be started: from here on, only answers are awaited. */
static bool sending_over(struct run *r, int64_t now)
{
    if (r->delivery)
        return r->pub.sent == r->to_publish;
    if (!r->total || !r->open_loop)
        return r->total ? r->issued >= r->total : now >= r->t_stop;
    for (size_t i = 0; i < r->ncl; i++) {
        if (r->cl[i].sent < r->cl[i].quota)
            return false;
    }
    return true;
}

static void scan(struct run *r, int64_t now)
{
    r->timer_ns = INT64_MAX;
    if (r->delivery) {
        int64_t due = client_pump(r, &r->pub, now);
        if (due < r->timer_ns)
            r->timer_ns = due;
    }
    for (size_t i = 0; i < r->ncl && !r->failed; i++) {
        int64_t due = client_pump(r, &r->cl[i], now);
        if (due < r->timer_ns)
            r->timer_ns = due;
    }
}

static void missing_report(struct run *r, int64_t now)
{
    double waited = (double)(now - (r->pub_done_ns ? r->pub_done_ns : now)) / 1e9;

    if (r->delivery) {
        size_t worst = 0;
        for (size_t i = 1; i < r->ncl; i++) {
            if (r->cl[i].last_seq < r->cl[worst].last_seq)
                worst = i;
        }
        if (r->acked < r->to_publish)
            run_fail(r, "%" PRIu64 " of %" PRIu64 " PUBs unanswered %.1f s after the last was sent",
                     r->to_publish - r->acked, r->to_publish, waited);
        else if (r->cl[worst].role == ROLE_POLL && r->cl[worst].polling)
            run_fail(r,
                     "%zu of %zu receivers still miss messages %.1f s after the last publish "
                     "(receiver %zu has seq %" PRId64 " of %" PRIu64 "; its GET ?since=%" PRId64
                     " has waited %.1f s for an answer)",
                     r->ncl - r->receivers_done, r->ncl, waited, worst, r->cl[worst].last_seq,
                     r->to_publish, r->cl[worst].last_seq,
                     (double)(now - r->cl[worst].poll_sent_ns) / 1e9);
        else
            run_fail(r,
                     "%zu of %zu receivers still miss messages %.1f s after the last publish "
                     "(receiver %zu has seq %" PRId64 " of %" PRIu64 ")",
                     r->ncl - r->receivers_done, r->ncl, waited, worst, r->cl[worst].last_seq,
                     r->to_publish);
    } else {
        run_fail(r, "%" PRIu64 " replies still missing %.0f s after the last request or answer",
                 r->inflight, r->o->timeout_s);
    }
}

static void run_loop(struct run *r)
{
    struct epoll_event evs[EVENTS_MAX];
    int64_t timeout_ns = (int64_t)(r->o->timeout_s * (double)NS_PER_S);
    /* A plain poller may see the last message only at its next poll. */
    bool interval_poll = r->si->role == ROLE_POLL && !r->si->wait_s;
    int64_t grace_ns = timeout_ns + (interval_poll ? r->o->poll_ms * NS_PER_MS : 0);
    uint64_t expect = r->delivery ? r->to_publish * r->ncl : r->total;

    r->last_progress_ns = client_now_ns();
    scan(r, r->last_progress_ns);
    while (!r->failed) {
        int64_t now = client_now_ns(), wake;
        int n, wait_ms;

        if (*r->o->stop) {
            run_fail(r, "interrupted");
            break;
        }
        if (!r->delivery && !r->open_loop && !r->total && now >= r->t_stop)
            r->timer_ns = now; /* closed loop: the end of the run is a timer too */
        if (now >= r->timer_ns)
            scan(r, now);
        if (r->failed || finished(r, now))
            break;
        if (!r->drain_deadline && sending_over(r, now))
            r->drain_deadline = now + grace_ns;
        /*
         * Publish styles: a window may leave many requests in flight at the
         * end (what the sockets held), answered in order: the wait goes on
         * while answers come, and ends --timeout after the last one.
         */
        if (r->drain_deadline && !r->delivery && r->last_progress_ns + grace_ns > r->drain_deadline)
            r->drain_deadline = r->last_progress_ns + grace_ns;
        if (r->drain_deadline && now >= r->drain_deadline) {
            missing_report(r, now);
            break;
        }
        if (!r->drain_deadline && (r->inflight || (r->delivery && r->pub.sent > r->acked)) &&
            now - r->last_progress_ns > timeout_ns && now > r->t_start) {
            run_fail(r, "no answer from the gateway for %.0f s (%" PRIu64 " done)", r->o->timeout_s,
                     r->done);
            break;
        }
        gwbench_progress(r->o, r->si->name, r->delivery, r->t_start, r->done, expect);

        wake = now + 200 * NS_PER_MS; /* progress, and the checks above */
        if (r->timer_ns < wake)
            wake = r->timer_ns;
        if (!r->delivery && !r->open_loop && !r->total && r->t_stop > now && r->t_stop < wake)
            wake = r->t_stop;
        if (r->drain_deadline && r->drain_deadline < wake)
            wake = r->drain_deadline;
        wait_ms = wake <= now ? 0 : (int)((wake - now + NS_PER_MS - 1) / NS_PER_MS);
        n = epoll_wait(r->ep, evs, EVENTS_MAX, wait_ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            run_fail(r, "epoll_wait: %s", strerror(errno));
            break;
        }
        for (int i = 0; i < n && !r->failed; i++)
            on_event(r, evs[i].data.ptr, evs[i].events);
    }
}

/* Open loop, time up: requests that were due but never sent wait for ever; count what they had
 * waited. */
static void account_backlog(struct run *r, int64_t end)
{
    /* Fire and forget has no latency to charge: what was never sent was never offered. */
    if (!r->open_loop || r->total || r->delivery || r->si->role == ROLE_UDP)
        return;
    for (size_t i = 0; i < r->ncl; i++) {
        struct client *cl = &r->cl[i];
        for (uint64_t j = cl->sent;; j++) {
            int64_t due = r->t_start + cl->phase_ns + (int64_t)j * r->interval_ns;
            if (due >= r->t_stop)
                break;
            hist_add(r->lat, end - due);
            r->backlog++;
        }
    }
}

/* CLOCK_REALTIME in ms: the clock of a message's ts. */
static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int setup(struct run *r)
{
    const struct gwbench_opts *o = r->o;
    int64_t now = client_now_ns();
    int64_t deadline = now + (int64_t)(o->timeout_s * (double)NS_PER_S);
    int64_t n = o->connections;
    enum style_role role = r->si->role;
    unsigned window = r->si->pipelined ? (unsigned)o->window : 1;

    r->ncl = (size_t)n;
    r->cl = gw_xcalloc(r->ncl, sizeof(*r->cl));
    for (size_t i = 0; i < r->ncl; i++)
        client_init(&r->cl[i], role, i, window, &r->wire, run_line_max(o));
    if (r->delivery)
        client_init(&r->pub, ROLE_PUBLISHER, 0, 1, &r->pub_wire, run_line_max(o));

    /*
     * Sessions and SSE streams are opened and subscribed before the clock
     * starts; the other HTTP connections are not.
     */
    for (size_t i = 0; i < r->ncl; i++) {
        if (role == ROLE_TCP || role == ROLE_SUB || role == ROLE_TCP_PING || role == ROLE_WS ||
            role == ROLE_WS_SUB || role == ROLE_SIO_SUB) {
            if (session_open(r, &r->cl[i], deadline) < 0)
                return -1;
        }
        if (role_udp(role)) {
            struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &r->cl[i].c};
            if ((r->cl[i].c.fd = udp_open(&o->udp, r->err)) < 0)
                return -1;
            /* Its own registration: a datagram socket is not a client_conn's stream. */
            if (epoll_ctl(r->ep, EPOLL_CTL_ADD, r->cl[i].c.fd, &ev) < 0) {
                snprintf(r->err, sizeof(r->err), "epoll_ctl: %s", strerror(errno));
                return -1;
            }
        }
        if ((role == ROLE_SUB || role == ROLE_WS_SUB || role == ROLE_SIO_SUB) &&
            subscribe(r, &r->cl[i], deadline) < 0)
            return -1;
        if (role == ROLE_SSE && sse_open(r, &r->cl[i], deadline) < 0)
            return -1;
        if (r->ncl > TRIM_ABOVE)
            client_conn_trim(&r->cl[i].c); /* quiet until the clock starts */
    }
    if (r->delivery && session_open(r, &r->pub, deadline) < 0)
        return -1;

    now = client_now_ns();
    if (r->delivery) {
        double rate = o->deliver_rate;
        r->to_publish =
            o->messages ? (uint64_t)o->messages : (uint64_t)(rate * o->duration_s + 0.5);
        if (r->to_publish == 0)
            r->to_publish = 1;
        r->pub_interval_ns = (int64_t)((double)NS_PER_S / rate);
        r->t_start = now + SETTLE_NS;
        r->t_stop = INT64_MAX;
        for (size_t i = 0; i < r->ncl; i++) {
            struct client *cl = &r->cl[i];
            cl->phase_ns = (int64_t)i * o->poll_ms * NS_PER_MS / n;
            /* A long-poll is parked before the first publish; a short poll keeps its beat. */
            cl->next_poll_ns = r->si->wait_s ? now : r->t_start + cl->phase_ns;
        }
    } else {
        r->open_loop = o->rate > 0;
        r->total = (uint64_t)o->messages;
        r->t_start = now;
        r->wall_start_ms = wall_ms();
        r->t_stop = r->total ? INT64_MAX : now + (int64_t)(o->duration_s * (double)NS_PER_S);
        if (r->open_loop) {
            r->interval_ns = (int64_t)((double)NS_PER_S * (double)n / o->rate);
            if (r->interval_ns < 1)
                r->interval_ns = 1;
            for (size_t i = 0; i < r->ncl; i++) {
                r->cl[i].phase_ns = (int64_t)i * r->interval_ns / n;
                if (r->total)
                    r->cl[i].quota = r->total / r->ncl + (i < r->total % r->ncl ? 1 : 0);
            }
        }
    }
    r->timer_ns = now;
    for (size_t i = 0; i < r->ncl; i++) {
        if (r->cl[i].c.fd >= 0 && !role_udp(role) &&
            client_conn_watch(&r->cl[i].c, r->ep, r->err) < 0)
            return -1;
    }
    if (r->delivery && client_conn_watch(&r->pub.c, r->ep, r->err) < 0)
        return -1;
    return 0;
}

/*
 * Whether the receivers kept up with the publisher: the time the schedule
 * took to publish, over the time from the first delivery to the last. A
 * style that keeps up delivers over the same span, only later; one that
 * cannot falls further behind with every message, and its span grows. A
 * receiver that polls every P ms may see the last message up to P ms late,
 * so that much is not counted against it. 1 at most.
 */
static double got_share(const struct run *r)
{
    int64_t offered = (int64_t)(r->to_publish - 1) * r->pub_interval_ns;
    int64_t span = r->t_last - r->t_first;

    if (r->si->role == ROLE_POLL && !r->si->wait_s)
        span -= r->o->poll_ms * NS_PER_MS;
    if (offered <= 0 || span <= offered)
        return 1.0;
    return (double)offered / (double)span;
}

/*
 * udp: what was stored, read back over REST page by page until a long-poll
 * of UDP_SETTLE_S finds nothing new (the last commits are in). Every message
 * must be one this run sent, once. Returns how many there are; *last_ts_ms
 * is the latest commit time among them (the messages' ts; 0 when none).
 */
static uint64_t udp_read_back(struct run *r, uint64_t sent, int64_t *last_ts_ms)
{
    struct buf body = BUF_INIT;
    uint8_t *seen = gw_xcalloc(sent ? sent : 1, 1);
    char target[GW_CHANNEL_MAX + 96], tmp[80];
    uint64_t stored = 0;
    int64_t since = 0;
    int status;

    while (!r->failed) {
        struct server_line pg;
        char err[GW_ERRLEN];
        snprintf(target, sizeof(target), "%s?since=%" PRId64 "&limit=%d&wait=%d", r->path, since,
                 PAGE_LIMIT, UDP_SETTLE_S);
        if (*r->o->stop) {
            run_fail(r, "interrupted");
            break;
        }
        if (fetch_get(&r->o->http, target, r->o->timeout_s + UDP_SETTLE_S, &status, &body, err) <
            0) {
            run_fail(r, "reading back %s: %s", r->path, err);
            break;
        }
        if (status != 200) {
            server_line_rest_error(body.data, body.len, tmp, sizeof(tmp));
            run_fail(r, "reading back: GET %s answered %d (%s)", r->path, status, tmp);
            break;
        }
        if (server_line_page(&pg, body.data, body.len, err) < 0) {
            server_line_release(&pg);
            run_fail(r, "reading back %s: %s", r->path, err);
            break;
        }
        for (size_t i = 0; i < pg.n_messages && !r->failed; i++) {
            struct sl_msg m;
            uint64_t index;
            int64_t ts, ms;
            server_line_hist_msg(&pg, i, &m);
            if (server_line_ts_ms(m.ts, &ms) && ms > *last_ts_ms)
                *last_ts_ms = ms;
            if (!m.body.s || !body_parse(m.body.s, m.body.len, &index, &ts) || index >= sent ||
                seen[index]++)
                run_fail(r, "reading back: seq %" PRId64 " is not a message gwbench sent once (%s)",
                         m.seq, m.body.s ? shown(m.body.s, m.body.len, tmp, sizeof(tmp)) : "?");
            stored++;
        }
        since = pg.next_since;
        bool empty = pg.n_messages == 0;
        server_line_release(&pg);
        if (empty)
            break;
    }
    buf_release(&body);
    free(seen);
    return stored;
}

/* The UDP drops of the run (the gateway's counters after, less before) as "rate 12, ..." text. */
static void udp_drops_text(struct run *r, struct style_result *res)
{
    double after[GWBENCH_UDP_DROPS];
    char err[GW_ERRLEN];
    size_t o = 0;

    /*
     * The kernel's drops reach the gateway's count with the next datagram it
     * reads (SO_RXQ_OVFL): a PING answered first brings the last of them in.
     */
    if (!r->drops_known || udp_check(&r->o->udp, r->o->timeout_s, err) < 0 ||
        udp_drops_read(&r->o->http, r->o->timeout_s, after, err) < 0)
        return;
    for (size_t i = 0; i < GWBENCH_UDP_DROPS; i++) {
        double d = after[i] - r->drops_before[i];
        if (d > 0 && o < sizeof(res->drops))
            o += (size_t)snprintf(res->drops + o, sizeof(res->drops) - o, "%s%s %.0f",
                                  o ? ", " : "", gwbench_udp_drop_names[i], d);
    }
}

/* What the table shows of a histogram, in µs. */
static void summarize(const struct hist *h, struct lat_summary *s)
{
    s->n = h->n;
    s->p50_us = (double)hist_quantile(h, 0.50) / 1e3;
    s->p90_us = (double)hist_quantile(h, 0.90) / 1e3;
    s->p99_us = (double)hist_quantile(h, 0.99) / 1e3;
    s->max_us = h->n ? (double)h->max / 1e3 : 0.0;
}

int gwbench_style_run(const struct gwbench_opts *o, size_t id, const char *channel,
                      struct style_result *res)
{
    struct run r;
    int rc = 0;

    memset(&r, 0, sizeof(r));
    memset(res, 0, sizeof(*res));
    res->id = id;
    res->ran = true;
    r.o = o;
    r.si = &gwbench_styles[id];
    r.delivery = r.si->kind == STYLE_DELIVERY;
    r.lat = gw_xmalloc(sizeof(*r.lat));
    hist_init(r.lat);
    buf_init(&r.line);
    /* A channel of its own for each style and run, so that nothing else is in it. */
    snprintf(r.channel, sizeof(r.channel), "%s", channel);
    snprintf(res->channel, sizeof(res->channel), "%s", channel);
    snprintf(r.path, sizeof(r.path), "/v1/channels/%s/messages", r.channel);
    r.ep = epoll_create1(EPOLL_CLOEXEC);
    /* The gateway's own account of the datagrams it dropped, when its REST front is known. */
    if (r.si->udp && o->http.len) {
        char err[GW_ERRLEN];
        r.drops_known = udp_drops_read(&o->http, o->timeout_s, r.drops_before, err) == 0;
    }
    if (r.ep < 0) {
        run_fail(&r, "epoll_create1: %s", strerror(errno));
    } else if (setup(&r) == 0 && !r.failed) {
        run_loop(&r);
    } else if (!r.failed) {
        r.failed = true; /* setup wrote r.err */
    }
    gwbench_progress_end();
    for (size_t i = 0; i < r.ncl; i++)
        res->sent += r.cl[i].sent;
    if (r.si->role == ROLE_UDP && !r.failed) {
        int64_t last_ts_ms = 0, read_back = client_now_ns(), end;
        r.done = udp_read_back(&r, res->sent, &last_ts_ms);
        r.lost = res->sent - r.done;
        /*
         * Stored per second counts to the last commit: its ts, on the wall
         * clock, put on this run's clock. The gateway's clock is trusted no
         * further than the run's own bounds: after the last send, before
         * the read-back began.
         */
        end = r.t_start + (last_ts_ms - r.wall_start_ms) * NS_PER_MS;
        r.t_last = end < r.t_sent_last ? r.t_sent_last : end > read_back ? read_back : end;
    }
    if (r.si->udp && !r.failed)
        udp_drops_text(&r, res);

    if (!r.failed) {
        int64_t end = r.t_last > r.t_start ? r.t_last : client_now_ns();
        struct hist *corrected;

        account_backlog(&r, end);
        res->messages = r.done;
        res->published = r.to_publish;
        res->seconds = (double)(end - r.t_start) / 1e9;
        res->msgs_per_s = res->seconds > 0 ? (double)r.done / res->seconds : 0.0;
        res->backlog = r.backlog;
        res->lost = r.lost;
        if (r.delivery) {
            res->offered_per_s = (double)NS_PER_S / (double)r.pub_interval_ns;
            res->got_share = got_share(&r);
        } else {
            /* What was offered is the sending's: for udp, until its last datagram left. */
            double sending = r.si->role == ROLE_UDP && r.t_sent_last > r.t_start
                                 ? (double)(r.t_sent_last - r.t_start) / 1e9
                                 : res->seconds;
            res->offered_per_s = sending > 0 ? (double)res->sent / sending : 0.0;
        }
        if (!r.delivery && !r.open_loop && r.lat->n) {
            /*
             * Closed loop: each connection meant to send again as soon as it
             * could, so one expected interval is the typical service time.
             */
            corrected = gw_xmalloc(sizeof(*corrected));
            hist_correct(r.lat, hist_quantile(r.lat, 0.5), corrected);
            summarize(corrected, &res->lat);
            free(corrected);
            res->lat_corrected = true;
        } else {
            summarize(r.lat, &res->lat);
        }
        res->polls = r.polls;
        res->empty_polls = r.empty_polls;
        res->early_empty = r.early_empty;
    } else {
        res->failed = true;
        snprintf(res->error, sizeof(res->error), "%s (after %" PRIu64 " messages)", r.err, r.done);
        rc = -1;
    }
    res->bytes_in = r.wire.bytes_in;
    res->bytes_out = r.wire.bytes_out;
    res->connections = r.wire.opened;

    for (size_t i = 0; i < r.ncl; i++)
        client_release(&r.cl[i]);
    if (r.delivery)
        client_release(&r.pub);
    free(r.cl);
    if (r.ep >= 0)
        close(r.ep);
    buf_release(&r.line);
    free(r.lat);
    return rc;
}
