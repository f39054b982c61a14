/*
 * sockbench.c - load generator for bench/socket.sh and bench/fanout.sh: the
 * visavis session protocol over TCP, WebSocket and Server-Sent Events
 * (docs/protocol.md, docs/websocket.md, docs/sse.md) and, as references,
 * redis (RESP), NATS (its text protocol) and Nchan (nginx's pub/sub module:
 * WebSocket and EventSource subscribers, HTTP POST publisher).
 *
 *   ninja -C build-release clients/sockbench/sockbench     (the scripts do it)
 *
 * Built by meson beside the other clients, on common/'s client pieces (see
 * sockbench.h for its parts). Non-blocking sockets on epoll; one thread,
 * plus one publisher thread in the fan-out modes, each with its own
 * connections. Latencies are CLOCK_MONOTONIC differences kept in the
 * log-linear histogram (under 0.8 % error). Each run prints one line
 *
 *   RESULT mode=<mode> key=value ...
 *
 * on stdout and exits 0; any error (a reply that is not the expected one, a
 * closed connection, a missing or repeated push, a time limit) prints
 * "sockbench <mode>: FAILED: ..." on stderr and exits 1, with no RESULT line.
 *
 * Modes: <kind>-<run>, the kind left out for the gateway's TCP front.
 *   ping   / redis-ping    PING, --pipeline in flight on each of --connections
 *   pub    / redis-set     PUB <channel> <--size bytes> / SET key <--size bytes>
 *   fanout, ws-fanout, sse-fanout, redis-fanout, nats-fanout, nchan-ws-fanout,
 *   nchan-sse-fanout       --subscribers subscribe one channel; one publisher
 *                          sends --messages at --rate per second, its
 *                          monotonic send time in the body, then --burst more
 *                          at once; reports publish -> delivery latency (to
 *                          the last subscriber, the first, each) and the
 *                          deliveries per second of the burst
 *   idle, ws-idle, sse-idle, redis-idle, nats-idle, nchan-ws-idle,
 *   nchan-sse-idle         opens --connections sessions that stay idle
 *                          (subscribed to --channel when given), reads VmRSS
 *                          of --pid before and after
 *
 * --ports P1,P2,... spreads the connections of ping and pub, and the
 * subscribers of a fan-out, over several servers of --host in turn (gateways
 * on one database, bench/cluster.sh); the fan-out's publisher stays on
 * --pub-port (or --port). Not for idle: it measures one server's memory.
 */
#include "sockbench.h"

#include "server_line.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

struct sb_opt opt = {
    .host = "127.0.0.1",
    .pipeline = 1,
    .duration = 5.0,
    .rate = 2000.0,
    .size = 100,
    .subscribers = 100,
    .timeout = 15.0,
};
const char *g_mode = "?";
enum sb_kind g_kind = SB_GW_TCP;

/* ------------------------------------------------------------------------ */
/* kinds                                                                    */

static const struct {
    const char *prefix; /* of the mode: "" for the gateway's TCP front */
    const char *name;
} kinds[] = {
    [SB_GW_TCP] = {"", "gateway-tcp"},
    [SB_GW_WS] = {"ws-", "gateway-ws"},
    [SB_GW_SSE] = {"sse-", "gateway-sse"},
    [SB_REDIS] = {"redis-", "redis"},
    [SB_NATS] = {"nats-", "nats"},
    [SB_NCHAN_WS] = {"nchan-ws-", "nchan-ws"},
    [SB_NCHAN_SSE] = {"nchan-sse-", "nchan-sse"},
};

const char *sb_kind_name(enum sb_kind k)
{
    return kinds[k].name;
}

bool sb_kind_is_gateway(enum sb_kind k)
{
    return k == SB_GW_TCP || k == SB_GW_WS || k == SB_GW_SSE;
}

/* ------------------------------------------------------------------------ */
/* basics                                                                   */

uint64_t now_ns(void)
{
    return (uint64_t)client_now_ns();
}

uint64_t deadline_from_now(void)
{
    return now_ns() + (uint64_t)(opt.timeout * 1e9);
}

void die(const char *fmt, ...)
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

const char *shown(const char *p, size_t n)
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

void h_print(const struct hist *h, const char *pfx)
{
    printf(" %savg_us=%.1f %sp50_us=%.1f %sp90_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f",
           pfx, hist_mean(h) / 1e3, pfx, (double)hist_quantile(h, 0.50) / 1e3, pfx,
           (double)hist_quantile(h, 0.90) / 1e3, pfx, (double)hist_quantile(h, 0.99) / 1e3, pfx,
           (double)hist_quantile(h, 0.999) / 1e3, pfx, h->n ? (double)h->max / 1e3 : 0.0);
}

struct hist *hist_new(void)
{
    struct hist *h = gw_xmalloc(sizeof(*h));
    hist_init(h);
    return h;
}

double cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

void raise_nofile(long need)
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

char *make_body(size_t size)
{
    char *s = gw_xmalloc(size + 1);
    for (size_t i = 0; i < size; i++)
        s[i] = (char)('0' + i % 10);
    s[size] = 0;
    return s;
}

/* ------------------------------------------------------------------------ */
/* addresses and sockets                                                    */

/* Ports a source address is given for one server, leaving the rest of the range to others. */
#define PORTS_PER_SOURCE 20000
#define SOURCES_MAX      64

/* Server s (--ports, or --port alone) from source k: g_addrs[k * g_nservers + s]. */
static struct client_addr g_addrs[SOURCES_MAX * SB_PORTS_MAX], g_pub;
static long g_nsources = 1, g_nservers = 1;
static char g_addr_text[SB_PORTS_MAX][80], g_pub_text[80];

/*
 * An IPv4 address from --host and a port, without connecting: a connection
 * made only to resolve would be one more client for redis's INFO to count.
 */
static void make_addr(struct client_addr *a, int port, char *text, size_t cap)
{
    struct sockaddr_in *sin = (struct sockaddr_in *)&a->ss;

    memset(a, 0, sizeof(*a));
    sin->sin_family = AF_INET;
    sin->sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, opt.host, &sin->sin_addr) != 1)
        die("--host must be an IPv4 address, not '%s'", opt.host);
    a->len = sizeof(*sin);
    snprintf(text, cap, "%s:%d", opt.host, port);
    a->text = text;
}

void resolve(long n)
{
    long m = opt.nports ? opt.nports : 1;
    /* Each server gets its share of the n connections: that is what a source's ports serve. */
    long per_server = (n + m - 1) / m;
    long k = opt.sources ? opt.sources : (per_server + PORTS_PER_SOURCE - 1) / PORTS_PER_SOURCE;
    if (k < 1)
        k = 1;
    if (k > SOURCES_MAX)
        die("%ld source addresses needed, at most %d", k, SOURCES_MAX);
    for (long s = 0; s < m; s++)
        make_addr(&g_addrs[s], opt.nports ? opt.ports[s] : opt.port, g_addr_text[s],
                  sizeof g_addr_text[s]);
    make_addr(&g_pub, opt.pub_port ? opt.pub_port : opt.port, g_pub_text, sizeof g_pub_text);
    if (k > 1 && strncmp(opt.host, "127.", 4) != 0)
        die("several source addresses need a loopback --host (127.x.y.z)");
    /* One source: the kernel picks it. More: 127.0.0.1, 127.0.0.2 ..., all on the loopback. */
    for (long i = 0; k > 1 && i < k; i++) {
        for (long s = 0; s < m; s++) {
            struct client_addr *a = &g_addrs[i * m + s];
            struct sockaddr_in *src = (struct sockaddr_in *)&a->src;
            if (i)
                *a = g_addrs[s];
            memset(src, 0, sizeof(*src));
            src->sin_family = AF_INET;
            src->sin_addr.s_addr = htonl(INADDR_LOOPBACK + (uint32_t)i);
            a->src_len = sizeof(*src);
        }
    }
    g_nsources = k;
    g_nservers = m;
}

const struct client_addr *sb_addr(long i)
{
    /* The servers in turn, and each server's connections over the sources in turn. */
    return &g_addrs[((i / g_nservers) % g_nsources) * g_nservers + i % g_nservers];
}

const struct client_addr *sb_pub_addr(void)
{
    return &g_pub;
}

long sb_sources(void)
{
    return g_nsources;
}

void close_abort(struct client_conn *c)
{
    struct linger lg = {1, 0};
    if (c->fd >= 0)
        setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    client_conn_release(c);
}

void wait_fd(int fd, short events, uint64_t deadline, const char *what)
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

void connect_to(struct client_conn *c, const struct client_addr *a, const char *what)
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

void send_all(struct client_conn *c, const char *p, size_t n, const char *what)
{
    uint64_t deadline = deadline_from_now();
    char err[GW_ERRLEN];

    if (n)
        client_conn_queue(c, p, n);
    for (;;) {
        if (client_conn_flush(c, err) < 0)
            die("%s: %s", what, err);
        if (!client_conn_want_write(c))
            return;
        wait_fd(c->fd, POLLOUT, deadline, what);
    }
}

void fill(struct client_conn *c, const char *what, bool eof_ok)
{
    char err[GW_ERRLEN];
    int r = client_conn_fill(c, err);

    if (r < 0)
        die("%s: %s", what, err);
    if (r == 0 && !eof_ok)
        die("%s: the server closed the connection", what);
}

void wait_input(struct client_conn *c, uint64_t deadline, const char *what)
{
    char err[GW_ERRLEN];

    if (c->eof)
        die("%s: the server closed the connection", what);
    if (client_conn_wait(c, (int64_t)deadline, NULL, err) < 0)
        die("%s: %s", what, err);
    if (c->eof && c->in.len == c->in_off)
        die("%s: the server closed the connection", what);
}

char *next_line(struct client_conn *c, size_t *n, const char *what)
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

char *read_line_blocking(struct client_conn *c, size_t *n, const char *what)
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

void expect_hello(struct client_conn *c, const char *what)
{
    size_t n;
    const char *l = read_line_blocking(c, &n, what);
    if (server_line_type(l, n, NULL) != SL_HELLO)
        die("%s: the first line is not a hello: %s", what, shown(l, n));
}

/* ------------------------------------------------------------------------ */
/* options                                                                  */

static void usage(void)
{
    fputs("usage: sockbench MODE --port P [--host 127.0.0.1] [--pub-port P] [--connections N]\n"
          "                 [--pipeline N] [--duration S] [--messages N] [--rate R] [--size B]\n"
          "                 [--subscribers N] [--burst N] [--channel NAME] [--pid PID]\n"
          "                 [--sources N] [--timeout S] [--ports P1,P2,...]\n"
          "modes: ping pub redis-ping redis-set\n"
          "       [KIND-]fanout [KIND-]idle, KIND: ws sse redis nats nchan-ws nchan-sse\n",
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

/* --ports P1,P2,...: up to SB_PORTS_MAX ports. */
static void parse_ports(const char *v)
{
    char buf[256], *save = NULL;

    if (strlen(v) >= sizeof buf) {
        fprintf(stderr, "sockbench: --ports: too long\n");
        exit(2);
    }
    strcpy(buf, v);
    opt.nports = 0;
    for (char *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (opt.nports == SB_PORTS_MAX) {
            fprintf(stderr, "sockbench: --ports: at most %d\n", SB_PORTS_MAX);
            exit(2);
        }
        opt.ports[opt.nports++] = (int)num_arg("--ports", t, 1, 65535);
    }
    if (!opt.nports) {
        fprintf(stderr, "sockbench: --ports: no port in '%s'\n", v);
        exit(2);
    }
}

/* The kind named by the mode's prefix; *run gets what follows it. */
static bool parse_mode(const char *mode, const char **run)
{
    /* Longest prefix first: "nchan-ws-" before "" */
    int best = -1;
    size_t best_len = 0;
    for (size_t k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t n = strlen(kinds[k].prefix);
        if (!strncmp(mode, kinds[k].prefix, n) && (best < 0 || n > best_len)) {
            best = (int)k;
            best_len = n;
        }
    }
    if (best < 0)
        return false;
    g_kind = (enum sb_kind)best;
    *run = mode + best_len;
    return true;
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
        else if (!strcmp(a, "--pub-port"))
            opt.pub_port = (int)num_arg(a, v, 1, 65535);
        else if (!strcmp(a, "--connections"))
            opt.connections = num_arg(a, v, 1, 1000000);
        else if (!strcmp(a, "--pipeline"))
            opt.pipeline = num_arg(a, v, 1, 100000);
        else if (!strcmp(a, "--duration"))
            opt.duration = dbl_arg(a, v, 0.01, 3600);
        else if (!strcmp(a, "--messages"))
            opt.messages = num_arg(a, v, 1, 100000000);
        else if (!strcmp(a, "--rate"))
            opt.rate = dbl_arg(a, v, 0.1, 1e7);
        else if (!strcmp(a, "--size"))
            opt.size = num_arg(a, v, 1, 1 << 20);
        else if (!strcmp(a, "--subscribers"))
            opt.subscribers = num_arg(a, v, 1, 1000000);
        else if (!strcmp(a, "--burst"))
            opt.burst = num_arg(a, v, 0, 10000000);
        else if (!strcmp(a, "--sources"))
            opt.sources = num_arg(a, v, 1, SOURCES_MAX);
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
    if (!strcmp(g_mode, "ping") || !strcmp(g_mode, "pub") || !strcmp(g_mode, "redis-ping") ||
        !strcmp(g_mode, "redis-set")) {
        g_kind = g_mode[0] == 'r' ? SB_REDIS : SB_GW_TCP;
        return run_reqresp();
    }
    const char *run;
    if (!parse_mode(g_mode, &run))
        usage();
    if (!strcmp(run, "fanout"))
        return run_fanout();
    if (!strcmp(run, "idle")) {
        if (opt.nports) {
            fprintf(stderr, "sockbench: --ports: idle measures one server (--pid), on --port\n");
            exit(2);
        }
        return run_idle();
    }
    usage();
}
