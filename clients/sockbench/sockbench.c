/*
 * sockbench.c - load generator for bench/socket.sh: the visavis session
 * protocol (docs/protocol.md) and, as the reference, redis (RESP).
 *
 *   ninja -C build-release clients/sockbench/sockbench     (bench/socket.sh does it)
 *
 * Built by meson beside the other clients, on common/'s client connection
 * (client_conn), server-line decoder (server_line) and histogram (hist); the
 * RESP reader is its own, since nothing else speaks to redis. Non-blocking
 * sockets on epoll; one thread, plus one publisher thread in the fan-out
 * modes, each with its own connections. Latencies are CLOCK_MONOTONIC
 * differences kept in the log-linear histogram (under 0.8 % error). Each run
 * prints one line
 *
 *   RESULT mode=<mode> key=value ...
 *
 * on stdout and exits 0; any error (a reply that is not the expected one, a
 * closed connection, a missing or repeated push, a time limit) prints
 * "sockbench: FAILED: ..." on stderr and exits 1, with no RESULT line.
 *
 * Modes (gateway / redis):
 *   ping   / redis-ping    PING, --pipeline in flight on each of --connections
 *   pub    / redis-set     PUB <channel> <--size bytes> / SET key <--size bytes>
 *   fanout / redis-fanout  --subscribers sessions SUB/SUBSCRIBE one channel; one
 *                          publisher sends --messages at --rate per second, its
 *                          monotonic send time in the body; reports publish ->
 *                          delivery latency, per delivery and per message (the
 *                          last of the subscribers to get it)
 *   idle   / redis-idle    opens --connections sessions that stay idle (gateway:
 *                          each has read its hello line; redis: INFO clients
 *                          counts them), reads VmRSS of --pid before and after
 *
 * --ports P1,P2,... spreads the connections of ping and pub, and the
 * subscribers of fanout, over several servers of --host in turn (gateways on
 * one database, bench/cluster.sh); fanout's publisher stays on --port.
 */
#include "client_conn.h"
#include "gw.h"
#include "hist.h"
#include "server_line.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------ */
/* basics                                                                   */

static uint64_t now_ns(void)
{
    return (uint64_t)client_now_ns();
}

static const char *g_mode = "?";

__attribute__((noreturn, format(printf, 1, 2))) static void die(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "sockbench %s: FAILED: ", g_mode);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    fflush(stderr);
    _exit(1);
}

/* A line for an error message: printable ASCII, at most 160 bytes. */
static const char *shown(const char *p, size_t n)
{
    static __thread char buf[200];
    size_t o = 0;
    for (size_t i = 0; i < n && o < 160; i++)
        buf[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '.';
    if (n > 160) {
        memcpy(buf + o, "...", 3);
        o += 3;
    }
    buf[o] = 0;
    return buf;
}

/* " <pfx>avg_us=… <pfx>p50_us=… …" */
static void h_print(const struct hist *h, const char *pfx)
{
    printf(" %savg_us=%.1f %sp50_us=%.1f %sp90_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f",
           pfx, hist_mean(h) / 1e3, pfx, (double)hist_quantile(h, 0.50) / 1e3, pfx,
           (double)hist_quantile(h, 0.90) / 1e3, pfx, (double)hist_quantile(h, 0.99) / 1e3, pfx,
           (double)hist_quantile(h, 0.999) / 1e3, pfx, h->n ? (double)h->max / 1e3 : 0.0);
}

static struct hist *hist_new(void)
{
    struct hist *h = gw_xmalloc(sizeof(*h));
    hist_init(h);
    return h;
}

/* This process's CPU time (all threads), in seconds. */
static double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* ------------------------------------------------------------------------ */
/* options                                                                  */

static struct {
    const char *host;
    int port;
    long connections;
    long pipeline;
    double duration;
    long messages;
    double rate;
    long size;
    long subscribers;
    const char *channel;
    long pid;
    double timeout; /* s: connects, handshakes, drains */
} opt = {"127.0.0.1", 0, 0, 1, 5.0, 0, 2000.0, 100, 100, NULL, 0, 15.0};

static bool g_redis;

static void usage(void)
{
    fputs("usage: sockbench MODE --port P [--host 127.0.0.1] [--connections N] [--pipeline N]\n"
          "                 [--duration S] [--messages N] [--rate R] [--size B]\n"
          "                 [--subscribers N] [--channel NAME] [--pid PID] [--timeout S]\n"
          "                 [--ports P1,P2,...]\n"
          "modes: ping pub fanout idle  redis-ping redis-set redis-fanout redis-idle\n",
          stderr);
    exit(2);
}

static long num_arg(const char *name, const char *v, long lo, long hi)
{
    char *end;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || end == v || x < lo || x > hi) {
        fprintf(stderr, "sockbench: %s must be an integer in %ld..%ld, not '%s'\n", name, lo, hi,
                v);
        exit(2);
    }
    return x;
}

static double dbl_arg(const char *name, const char *v, double lo, double hi)
{
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (errno || *end || end == v || !(x >= lo && x <= hi)) {
        fprintf(stderr, "sockbench: %s must be a number in %g..%g, not '%s'\n", name, lo, hi, v);
        exit(2);
    }
    return x;
}

/* ------------------------------------------------------------------------ */
/* sockets                                                                  */

static void raise_nofile(long need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("getrlimit: %s", strerror(errno));
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want)
        die("needs %ld open files, the hard limit is %llu (raise it: ulimit -Hn)", (long)want,
            (unsigned long long)rl.rlim_max);
    rl.rlim_cur = want;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
        die("setrlimit(RLIMIT_NOFILE, %ld): %s", (long)want, strerror(errno));
}

#define MAX_PORTS 16

static struct client_addr g_addr;
static char g_addr_text[80];
/* --ports: where the spread connections go, in turn (g_addr alone without it). */
static struct client_addr g_spread[MAX_PORTS];
static char g_spread_text[MAX_PORTS][80];
static int g_ports[MAX_PORTS], g_nports;

static void address_of(struct client_addr *a, char *text, int port)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

    memset(a, 0, sizeof *a);
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, opt.host, &sin->sin_addr) != 1)
        die("--host must be an IPv4 address, not '%s'", opt.host);
    a->len = sizeof(*sin);
    snprintf(text, 80, "%s:%d", opt.host, port);
    a->text = text;
}

/*
 * The server's address, from --host (IPv4) and --port, without connecting:
 * a connection made only to resolve would be one more client for redis's
 * INFO to count. And those of --ports.
 */
static void resolve(void)
{
    address_of(&g_addr, g_addr_text, opt.port);
    for (int i = 0; i < g_nports; i++)
        address_of(&g_spread[i], g_spread_text[i], g_ports[i]);
}

/* The address of spread connection i: --ports in turn, else --port. */
static const struct client_addr *spread_addr(long i)
{
    return g_nports ? &g_spread[i % g_nports] : &g_addr;
}

/* Closes with a RST: no TIME_WAIT left behind to eat the ephemeral ports. */
static void close_abort(struct client_conn *c)
{
    struct linger lg = {1, 0};
    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_conn_release(c);
}

/* Waits for fd to be readable (POLLIN) or writable (POLLOUT) until deadline. */
static void wait_fd(int fd, short events, uint64_t deadline, const char *what)
{
    for (;;) {
        uint64_t t = now_ns();
        if (t >= deadline)
            die("%s: no answer within %.0f s", what, opt.timeout);
        struct pollfd p = {fd, events, 0};
        struct timespec ts = {(time_t)((deadline - t) / 1000000000u),
                              (long)((deadline - t) % 1000000000u)};
        int r = ppoll(&p, 1, &ts, NULL);
        if (r > 0)
            return;
        if (r < 0 && errno != EINTR)
            die("%s: poll: %s", what, strerror(errno));
    }
}

static uint64_t deadline_from_now(void)
{
    return now_ns() + (uint64_t)(opt.timeout * 1e9);
}

/* Connects c to the server at a within --timeout. */
static void connect_addr(struct client_conn *c, const struct client_addr *a, const char *what)
{
    char err[GW_ERRLEN];

    if (client_conn_start(c, a, err) < 0)
        die("%s: %s", what, err);
    if (c->connecting) {
        wait_fd(c->fd, POLLOUT, deadline_from_now(), what);
        if (client_conn_finish(c, err) < 0)
            die("%s: %s", what, err);
    }
}

/* Connects c to the server (--port) within --timeout. */
static void connect_to(struct client_conn *c, const char *what)
{
    connect_addr(c, &g_addr, what);
}

/* Queues (p, n) on c and sends it all within --timeout. */
static void send_all(struct client_conn *c, const char *p, size_t n, const char *what)
{
    uint64_t deadline = deadline_from_now();
    char err[GW_ERRLEN];

    client_conn_queue(c, p, n);
    for (;;) {
        if (client_conn_flush(c, err) < 0)
            die("%s: %s", what, err);
        if (!client_conn_want_write(c))
            return;
        wait_fd(c->fd, POLLOUT, deadline, what);
    }
}

/* Reads what is there; dies on an error or, unless eof_ok, on the server's close. */
static void fill(struct client_conn *c, const char *what, bool eof_ok)
{
    char err[GW_ERRLEN];
    int r = client_conn_fill(c, err);

    if (r < 0)
        die("%s: %s", what, err);
    if (r == 0 && !eof_ok)
        die("%s: the server closed the connection", what);
}

/* Waits for more input within deadline. */
static void wait_input(struct client_conn *c, uint64_t deadline, const char *what)
{
    char err[GW_ERRLEN];

    if (c->eof)
        die("%s: the server closed the connection", what);
    if (client_conn_wait(c, (int64_t)deadline, NULL, err) < 0)
        die("%s: %s", what, err);
    if (c->eof && c->in.len == c->in_off)
        die("%s: the server closed the connection", what);
}

/* The next server line (gateway), or NULL when none is whole yet; dies when framing is lost. */
static char *next_line(struct client_conn *c, size_t *n, const char *what)
{
    char *l;

    switch (client_conn_line(c, &l, n)) {
    case CLIENT_LINE:
        return l;
    case CLIENT_TOO_LONG:
        die("%s: a line longer than %zu bytes", what, c->line_max);
    case CLIENT_MORE:
        break;
    }
    return NULL;
}

/* ------------------------------------------------------------------------ */
/* the two reply syntaxes                                                   */

/* RESP: one value. type is its first byte; for arrays, the first 4 elements
 * are kept (scalars only). */
struct resp {
    char type;
    long long i;
    const char *s;
    size_t slen;
    int nel;
    struct {
        char type;
        long long i;
        const char *s;
        size_t slen;
    } el[4];
};

/* Length of the line starting at p (without CRLF), or -1 if no CRLF yet. */
static long resp_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return (long)i;
    return -1;
}

static bool parse_ll(const char *p, long n, long long *out)
{
    char tmp[32];
    if (n <= 0 || n >= (long)sizeof tmp)
        return false;
    memcpy(tmp, p, (size_t)n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return !errno && *end == 0;
}

/* Bytes taken by one whole value at p, 0 if incomplete; dies if malformed. */
static size_t resp_parse(const char *p, size_t n, struct resp *v, int depth)
{
    if (n < 3)
        return 0;
    long l = resp_crlf(p, n);
    if (l < 0)
        return 0;
    memset(v, 0, sizeof *v);
    v->type = p[0];
    size_t used = (size_t)l + 2;
    switch (p[0]) {
    case '+':
    case '-':
        v->s = p + 1;
        v->slen = (size_t)l - 1;
        return used;
    case ':':
        if (!parse_ll(p + 1, l - 1, &v->i))
            die("malformed RESP integer: %s", shown(p, (size_t)l));
        return used;
    case '$':
        if (!parse_ll(p + 1, l - 1, &v->i))
            die("malformed RESP bulk length: %s", shown(p, (size_t)l));
        if (v->i < 0)
            return used; /* null bulk */
        if (n < used + (size_t)v->i + 2)
            return 0;
        v->s = p + used;
        v->slen = (size_t)v->i;
        return used + (size_t)v->i + 2;
    case '*': {
        long long k;
        if (!parse_ll(p + 1, l - 1, &k) || depth > 4)
            die("malformed RESP array: %s", shown(p, (size_t)l));
        v->nel = k < 0 ? 0 : (int)k;
        for (long long e = 0; e < k; e++) {
            struct resp sub;
            size_t u = resp_parse(p + used, n - used, &sub, depth + 1);
            if (!u)
                return 0;
            if (e < 4) {
                v->el[e].type = sub.type;
                v->el[e].i = sub.i;
                v->el[e].s = sub.s;
                v->el[e].slen = sub.slen;
            }
            used += u;
        }
        return used;
    }
    default:
        die("malformed RESP reply: %s", shown(p, n < 40 ? n : 40));
    }
}

/* The next whole RESP value of c, consumed; its strings are borrowed until the next fill. */
static bool next_resp(struct client_conn *c, struct resp *v)
{
    size_t n;
    const char *p = client_conn_data(c, &n);
    size_t u = resp_parse(p, n, v, 0);

    client_conn_consume(c, u);
    return u != 0;
}

/* Reads one line (gateway) within --timeout, skipping heartbeats. */
static char *read_line_blocking(struct client_conn *c, size_t *n, const char *what)
{
    uint64_t deadline = deadline_from_now();
    for (;;) {
        char *l;
        while ((l = next_line(c, n, what)))
            if (server_line_type(l, *n, NULL) != SL_PING)
                return l;
        wait_input(c, deadline, what);
    }
}

static void read_resp_blocking(struct client_conn *c, struct resp *v, const char *what)
{
    uint64_t deadline = deadline_from_now();
    while (!next_resp(c, v))
        wait_input(c, deadline, what);
}

static void expect_hello(struct client_conn *c, const char *what)
{
    size_t n;
    const char *l = read_line_blocking(c, &n, what);
    if (server_line_type(l, n, NULL) != SL_HELLO)
        die("%s: the first line is not a hello: %s", what, shown(l, n));
}

static char *make_body(size_t size)
{
    char *s = gw_xmalloc(size + 1);
    for (size_t i = 0; i < size; i++)
        s[i] = (char)('0' + i % 10);
    s[size] = 0;
    return s;
}

/* ------------------------------------------------------------------------ */
/* request/response: ping, pub, redis-ping, redis-set                       */

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

static int run_reqresp(void)
{
    long nc = opt.connections ? opt.connections : 1;
    raise_nofile(nc + 16);
    resolve();
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
        connect_addr(&c->c, spread_addr(i), "connect");
        c->sent = gw_xcalloc((size_t)opt.pipeline, sizeof *c->sent);
        if (!g_redis)
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
                    if (g_redis) {
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

/* ------------------------------------------------------------------------ */
/* fan-out                                                                  */

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

struct pubstats {
    uint64_t sent, acked, errors, max_lag_ns, t_first, t_last;
    struct hist ack; /* publish -> its own reply */
};

static struct pubstats g_pub;
static volatile int g_pub_failed;
static char g_pub_err[256];

static void *pub_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The publisher thread's failure: said by the main thread, which stops the run. */
static void *pub_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_pub_err, sizeof g_pub_err, fmt, ap);
    va_end(ap);
    g_pub_failed = 1;
    return NULL;
}

static void *publisher(void *arg)
{
    (void)arg;
    const char *ch = opt.channel;
    struct client_conn c;
    char err[GW_ERRLEN];
    client_conn_init(&c, NULL);
    connect_to(&c, "publisher connect");
    if (!g_redis)
        expect_hello(&c, "publisher hello");
    uint64_t n = (uint64_t)opt.messages;
    uint64_t *sent = gw_xcalloc(n, sizeof *sent);
    size_t cap = (size_t)opt.size + 256;
    char *body = gw_xmalloc((size_t)opt.size + 1), *req = gw_xmalloc(cap);
    uint64_t period = (uint64_t)(1e9 / opt.rate);
    uint64_t t0 = now_ns() + 1000000u, ack_deadline = 0;
    struct pubstats *s = &g_pub;
    s->t_first = t0;
    while (s->acked < n) {
        uint64_t t = now_ns();
        if (s->sent < n) {
            uint64_t due = t0 + s->sent * period;
            if (t >= due) {
                int k =
                    snprintf(body, (size_t)opt.size + 1, "%" PRIu64 ":%" PRIu64 ":", s->sent, t);
                if (k < 0 || k >= opt.size)
                    return pub_fail("--size %ld is too small for the timestamp", opt.size);
                memset(body + k, 'x', (size_t)opt.size - (size_t)k);
                body[opt.size] = 0;
                int len;
                if (g_redis)
                    len = snprintf(req, cap, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%ld\r\n%s\r\n",
                                   strlen(ch), ch, opt.size, body);
                else
                    len = snprintf(req, cap, "PUB %s %s\n", ch, body);
                sent[s->sent] = t;
                client_conn_queue(&c, req, (size_t)len);
                if (client_conn_flush(&c, err) < 0)
                    return pub_fail("%s", err);
                if (t - due > s->max_lag_ns)
                    s->max_lag_ns = t - due;
                s->t_last = t;
                if (++s->sent == n)
                    ack_deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
                continue;
            }
        } else if (t >= ack_deadline) {
            return pub_fail("%" PRIu64 " publish replies missing after %.0f s", n - s->acked,
                            opt.timeout);
        }
        uint64_t until = s->sent < n ? t0 + s->sent * period : ack_deadline;
        struct pollfd p = {c.fd, (short)(POLLIN | (client_conn_want_write(&c) ? POLLOUT : 0)), 0};
        struct timespec ts = {(time_t)((until - t) / 1000000000u),
                              (long)((until - t) % 1000000000u)};
        int r = ppoll(&p, 1, &ts, NULL);
        if (r <= 0)
            continue;
        if ((p.revents & POLLOUT) && client_conn_flush(&c, err) < 0)
            return pub_fail("%s", err);
        if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        r = client_conn_fill(&c, err);
        if (r < 0)
            return pub_fail("%s", err);
        if (r == 0)
            return pub_fail("the server closed the publisher's connection");
        uint64_t tr = now_ns();
        for (;;) {
            bool ok;
            const char *l;
            size_t ln;
            if (g_redis) {
                struct resp v;
                if (!next_resp(&c, &v))
                    break;
                ok = v.type == ':' && v.i == opt.subscribers;
                l = v.s ? v.s : "(integer)";
                ln = v.s ? v.slen : 9;
                if (v.type == ':' && !ok)
                    return pub_fail("PUBLISH reached %lld subscribers, not %ld", v.i,
                                    opt.subscribers);
            } else {
                enum proto_op op;
                enum sl_type type;
                char *line;
                enum client_line got = client_conn_line(&c, &line, &ln);
                if (got == CLIENT_TOO_LONG)
                    return pub_fail("a line longer than %zu bytes", c.line_max);
                if (got == CLIENT_MORE)
                    break;
                l = line;
                type = ln ? server_line_type(l, ln, &op) : SL_PING;
                if (type == SL_PING)
                    continue;
                ok = type == SL_OK && op == PROTO_PUB;
            }
            if (s->acked >= s->sent)
                return pub_fail("a reply with no publish in flight: %s", shown(l, ln));
            if (!ok) {
                if (s->errors < 5)
                    fprintf(stderr, "sockbench %s: publisher: unexpected reply: %s\n", g_mode,
                            shown(l, ln));
                s->errors++;
            }
            hist_add(&s->ack, (int64_t)(tr - sent[s->acked]));
            s->acked++;
        }
    }
    client_conn_release(&c);
    free(sent);
    free(body);
    free(req);
    return NULL;
}

struct sub {
    struct client_conn c;
    int64_t next; /* index of the next message it must get */
};

static int run_fanout(void)
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
    resolve();
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct sub *subs = gw_xcalloc((size_t)ns, sizeof *subs);
    char cmd[160], err[GW_ERRLEN];
    for (long i = 0; i < ns; i++) {
        struct sub *s = &subs[i];
        client_conn_init(&s->c, NULL);
        s->c.owner = s;
        connect_addr(&s->c, spread_addr(i), "subscriber connect");
        if (g_redis) {
            int k = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                             strlen(opt.channel), opt.channel);
            send_all(&s->c, cmd, (size_t)k, "SUBSCRIBE");
            struct resp v;
            read_resp_blocking(&s->c, &v, "SUBSCRIBE");
            if (v.type != '*' || v.nel != 3 || v.el[0].slen != 9 ||
                memcmp(v.el[0].s, "subscribe", 9))
                die("SUBSCRIBE %s: unexpected reply (type %c)", opt.channel, v.type);
        } else {
            enum proto_op op;
            expect_hello(&s->c, "subscriber hello");
            int k = snprintf(cmd, sizeof cmd, "SUB %s\n", opt.channel);
            send_all(&s->c, cmd, (size_t)k, "SUB");
            size_t n;
            const char *l = read_line_blocking(&s->c, &n, "SUB");
            if (server_line_type(l, n, &op) != SL_OK || op != PROTO_SUB)
                die("SUB %s: unexpected reply: %s", opt.channel, shown(l, n));
        }
        if (client_conn_watch(&s->c, ep, err) != 0)
            die("%s", err);
    }

    uint64_t nm = (uint64_t)opt.messages;
    uint64_t *maxlat = gw_xcalloc(nm, sizeof *maxlat);
    uint32_t *got = gw_xcalloc(nm, sizeof *got);
    struct hist *each = hist_new(), *last = hist_new();
    uint64_t want = nm * (uint64_t)ns, deliveries = 0, complete = 0;

    hist_init(&g_pub.ack);
    double cpu0 = cpu_s();
    uint64_t t0 = now_ns();
    pthread_t th;
    int rc = pthread_create(&th, NULL, publisher, NULL);
    if (rc)
        die("pthread_create: %s", strerror(rc));
    uint64_t limit =
        now_ns() + (uint64_t)((double)nm / opt.rate * 1e9) + (uint64_t)(opt.timeout * 1e9) * 2;
    struct epoll_event evs[128];
    while (deliveries < want) {
        if (g_pub_failed)
            die("publisher: %s", g_pub_err);
        if (now_ns() >= limit)
            die("%" PRIu64 " of %" PRIu64 " deliveries missing at the time limit (%" PRIu64
                " messages complete)",
                want - deliveries, want, complete);
        int n = epoll_wait(ep, evs, 128, 100);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < n; e++) {
            struct sub *s = ((struct client_conn *)evs[e].data.ptr)->owner;
            fill(&s->c, "subscriber", false);
            uint64_t tr = now_ns();
            for (;;) {
                const char *body = NULL;
                size_t blen = 0;
                if (g_redis) {
                    struct resp v;
                    if (!next_resp(&s->c, &v))
                        break;
                    if (v.type != '*' || v.nel != 3 || v.el[0].slen != 7 ||
                        memcmp(v.el[0].s, "message", 7) || v.el[2].type != '$')
                        die("subscriber: not a message push (type %c, %d elements)", v.type, v.nel);
                    body = v.el[2].s;
                    blen = v.el[2].slen;
                } else {
                    struct server_line sl;
                    size_t ln;
                    const char *l = next_line(&s->c, &ln, "subscriber");
                    if (!l)
                        break;
                    if (ln == 0)
                        continue;
                    /* Pushes the gateway's way are read without jansson (server_line.h). */
                    server_line_parse(&sl, l, ln);
                    if (sl.type == SL_PING) {
                        server_line_release(&sl);
                        continue;
                    }
                    if (sl.type != SL_MESSAGE || !sl.msg.body.s)
                        die("subscriber: not a message push: %s", shown(l, ln));
                    body = sl.msg.body.s;
                    blen = sl.msg.body.len;
                    server_line_release(&sl); /* body stays: it points into the line */
                    if (body < l || body >= l + ln)
                        die("subscriber: a message with an escaped body: %s", shown(l, ln));
                }
                uint64_t idx, ts;
                if (!parse_body(body, blen, &idx, &ts) || idx >= nm)
                    die("subscriber: a message this run did not publish: %s", shown(body, blen));
                if ((int64_t)idx != s->next)
                    die("subscriber %ld: got message %" PRIu64 ", expected %" PRId64
                        " (lost, repeated or out of order)",
                        (long)(s - subs), idx, s->next);
                s->next++;
                uint64_t lat = tr > ts ? tr - ts : 0;
                hist_add(each, (int64_t)lat);
                if (lat > maxlat[idx])
                    maxlat[idx] = lat;
                deliveries++;
                if (++got[idx] == (uint32_t)ns) {
                    hist_add(last, (int64_t)maxlat[idx]);
                    complete++;
                }
            }
        }
    }
    pthread_join(th, NULL);
    if (g_pub_failed)
        die("publisher: %s", g_pub_err);
    if (g_pub.errors)
        die("%" PRIu64 " of %" PRIu64 " publish replies were errors", g_pub.errors, g_pub.acked);
    /* Nothing more may come: a repeat would show up here. */
    for (long i = 0; i < ns; i++) {
        size_t n;
        const char *p;
        fill(&subs[i].c, "subscriber", true);
        p = client_conn_data(&subs[i].c, &n);
        if (n && (g_redis || server_line_type(p, n, NULL) != SL_PING))
            die("subscriber %ld: got more than every message once: %s", i, shown(p, n));
    }
    double span = (double)(g_pub.t_last - g_pub.t_first) / 1e9;
    double el = (double)(now_ns() - t0) / 1e9;
    printf("RESULT mode=%s subscribers=%ld messages=%" PRIu64 " size=%ld rate=%.0f pub_rate=%.0f "
           "deliveries=%" PRIu64 " errors=0 elapsed_s=%.3f client_cpu_pct=%.0f pub_max_lag_us=%.1f",
           g_mode, ns, nm, opt.size, opt.rate, span > 0 ? (double)(nm - 1) / span : 0.0, deliveries,
           el, 100.0 * (cpu_s() - cpu0) / el, (double)g_pub.max_lag_ns / 1e3);
    h_print(last, "");           /* per message: the last of the subscribers */
    h_print(each, "each_");      /* per delivery */
    h_print(&g_pub.ack, "ack_"); /* publish -> its reply */
    printf("\n");
    for (long i = 0; i < ns; i++)
        client_conn_release(&subs[i].c);
    free(subs);
    free(maxlat);
    free(got);
    free(each);
    free(last);
    close(ep);
    return 0;
}

/* ------------------------------------------------------------------------ */
/* idle sessions and RSS                                                    */

static long vmrss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    if (kb < 0)
        die("no VmRSS in %s", path);
    return kb;
}

enum { I_CONNECTING, I_HELLO, I_DONE };

struct idle {
    struct client_conn c;
    int state;
};

static long redis_connected_clients(struct client_conn *c)
{
    static const char q[] = "*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n";
    send_all(c, q, sizeof q - 1, "INFO clients");
    struct resp v;
    read_resp_blocking(c, &v, "INFO clients");
    if (v.type != '$' || !v.s)
        die("INFO clients: unexpected reply (type %c)", v.type);
    const char *k = memmem(v.s, v.slen, "connected_clients:", 18);
    if (!k)
        die("INFO clients: no connected_clients");
    return strtol(k + 18, NULL, 10);
}

/* One event on a session being opened; returns true once it is open and quiet (I_DONE). */
static bool idle_step(struct idle *c, uint32_t events, long done, long index)
{
    char err[GW_ERRLEN], *line;
    size_t len;

    if (c->state == I_CONNECTING) {
        if (client_conn_finish(&c->c, err) < 0)
            die("connection %ld: %s", index, err);
        c->state = g_redis ? I_DONE : I_HELLO;
    }
    if (c->state == I_HELLO && (events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
        int r = client_conn_fill(&c->c, err);
        if (r < 0)
            die("session %ld: %s", index, err);
        switch (client_conn_line(&c->c, &line, &len)) {
        case CLIENT_LINE:
            if (server_line_type(line, len, NULL) != SL_HELLO)
                die("session %ld (after %ld sessions): the first line is not a hello: %s", index,
                    done, shown(line, len));
            c->state = I_DONE;
            break;
        case CLIENT_TOO_LONG:
            die("session %ld: its first line is longer than %zu bytes", index, c->c.line_max);
        case CLIENT_MORE:
            if (r == 0)
                die("session %ld: closed before its hello (after %ld sessions)", index, done);
            break;
        }
    }
    return c->state == I_DONE;
}

static int run_idle(void)
{
    long n = opt.connections ? opt.connections : 10000;
    if (opt.pid <= 0)
        die("--pid (the server's process id) is required");
    raise_nofile(n + 16);
    resolve();
    struct client_conn ctl;
    long base_clients = 0;
    char err[GW_ERRLEN];
    client_conn_init(&ctl, NULL);
    if (g_redis) {
        connect_to(&ctl, "INFO connection");
        base_clients = redis_connected_clients(&ctl);
    }
    long before = vmrss_kb(opt.pid);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct idle *cs = gw_xcalloc((size_t)n, sizeof *cs);
    long next = 0, pending = 0, done = 0;
    const long window = 256; /* handshakes in progress at once: never overflow the backlog */
    uint64_t t0 = now_ns(), limit = t0 + (uint64_t)(opt.timeout * 4 * 1e9);
    struct epoll_event evs[256];
    while (done < n) {
        while (pending < window && next < n) {
            struct idle *c = &cs[next++];
            client_conn_init(&c->c, NULL);
            c->c.owner = c;
            c->state = I_CONNECTING;
            if (client_conn_start(&c->c, &g_addr, err) < 0)
                die("connect %ld: %s", next, err);
            if (!c->c.connecting)
                c->state = g_redis ? I_DONE : I_HELLO; /* connected at once */
            if (c->state == I_DONE) {
                client_conn_trim(&c->c);
                done++;
                continue;
            }
            if (client_conn_watch(&c->c, ep, err) != 0)
                die("%s", err);
            pending++;
        }
        if (now_ns() >= limit)
            die("%ld of %ld sessions established after %.0f s", done, n, opt.timeout * 4);
        int k = epoll_wait(ep, evs, 256, 100);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait: %s", strerror(errno));
        }
        for (int e = 0; e < k; e++) {
            struct idle *c = ((struct client_conn *)evs[e].data.ptr)->owner;
            if (!idle_step(c, evs[e].events, done, (long)(c - cs))) {
                if (client_conn_watch(&c->c, ep, err) != 0)
                    die("%s", err);
                continue;
            }
            epoll_ctl(ep, EPOLL_CTL_DEL, c->c.fd, NULL);
            c->c.watched = 0;
            /* It stays open, quiet: it costs its socket, not a buffer. */
            client_conn_trim(&c->c);
            pending--;
            done++;
        }
    }
    double open_s = (double)(now_ns() - t0) / 1e9;
    if (g_redis) {
        uint64_t until = now_ns() + (uint64_t)(opt.timeout * 1e9);
        long have;
        while ((have = redis_connected_clients(&ctl)) < base_clients + n) {
            if (now_ns() >= until)
                die("redis counts %ld clients, expected %ld", have, base_clients + n);
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    long after = vmrss_kb(opt.pid);
    /* Every session must still be open and quiet (a closed one reads as EOF). */
    struct pollfd *pf = gw_xcalloc((size_t)n, sizeof *pf);
    for (long i = 0; i < n; i++)
        pf[i] = (struct pollfd){cs[i].c.fd, POLLIN, 0};
    int ready = poll(pf, (nfds_t)n, 0);
    if (ready < 0)
        die("poll: %s", strerror(errno));
    for (long i = 0; i < n && ready > 0; i++)
        if (pf[i].revents) {
            size_t len;
            const char *p;
            if (client_conn_fill(&cs[i].c, err) < 0)
                die("session %ld: %s", i, err);
            if (cs[i].c.eof)
                die("session %ld was closed by the server while idle", i);
            p = client_conn_data(&cs[i].c, &len);
            if (len && server_line_type(p, len, NULL) != SL_PING)
                die("session %ld got a line while idle: %s", i, shown(p, len));
        }
    printf("RESULT mode=%s sessions=%ld pid=%ld rss_before_kb=%ld rss_after_kb=%ld "
           "per_session_bytes=%.0f open_s=%.2f errors=0\n",
           g_mode, n, opt.pid, before, after, (double)(after - before) * 1024.0 / (double)n,
           open_s);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        close_abort(&cs[i].c);
    client_conn_release(&ctl);
    free(cs);
    free(pf);
    close(ep);
    return 0;
}

/* ------------------------------------------------------------------------ */

/* --ports P1,P2,...: up to MAX_PORTS ports. */
static void parse_ports(const char *v)
{
    char buf[256], *save = NULL;

    if (strlen(v) >= sizeof buf)
        die("--ports: too long");
    strcpy(buf, v);
    g_nports = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (g_nports == MAX_PORTS)
            die("--ports: at most %d", MAX_PORTS);
        g_ports[g_nports++] = (int)num_arg("--ports", t, 1, 65535);
    }
    if (!g_nports)
        die("--ports: no port in '%s'", v);
}

int main(int argc, char **argv)
{
    if (argc < 2)
        usage();
    g_mode = argv[1];
    signal(SIGPIPE, SIG_IGN);
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        if (i + 1 >= argc)
            usage();
        const char *v = argv[++i];
        if (!strcmp(a, "--host"))
            opt.host = v;
        else if (!strcmp(a, "--port"))
            opt.port = (int)num_arg(a, v, 1, 65535);
        else if (!strcmp(a, "--connections"))
            opt.connections = num_arg(a, v, 1, 1000000);
        else if (!strcmp(a, "--pipeline"))
            opt.pipeline = num_arg(a, v, 1, 100000);
        else if (!strcmp(a, "--duration"))
            opt.duration = dbl_arg(a, v, 0.01, 3600);
        else if (!strcmp(a, "--messages"))
            opt.messages = num_arg(a, v, 1, 100000000);
        else if (!strcmp(a, "--rate"))
            opt.rate = dbl_arg(a, v, 1, 1e7);
        else if (!strcmp(a, "--size"))
            opt.size = num_arg(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--subscribers"))
            opt.subscribers = num_arg(a, v, 1, 100000);
        else if (!strcmp(a, "--channel"))
            opt.channel = v;
        else if (!strcmp(a, "--pid"))
            opt.pid = num_arg(a, v, 1, LONG_MAX);
        else if (!strcmp(a, "--timeout"))
            opt.timeout = dbl_arg(a, v, 0.1, 3600);
        else if (!strcmp(a, "--ports"))
            parse_ports(v);
        else
            usage();
    }
    if (!opt.port)
        usage();
    if (!strncmp(g_mode, "redis-", 6))
        g_redis = true;
    const char *m = g_redis ? g_mode + 6 : g_mode;
    if (!strcmp(g_mode, "ping") || !strcmp(g_mode, "pub") || !strcmp(g_mode, "redis-ping") ||
        !strcmp(g_mode, "redis-set"))
        return run_reqresp();
    if (!strcmp(m, "fanout"))
        return run_fanout();
    if (!strcmp(m, "idle"))
        return run_idle();
    usage();
}
