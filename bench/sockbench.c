/*
 * sockbench.c - load generator for bench/socket.sh: the visavis session
 * protocol (docs/protocol.md) and, as the reference, redis (RESP).
 *
 *   cc -O2 -Wall -Wextra -Werror -std=c17 -D_GNU_SOURCE -o sockbench bench/sockbench.c
 *
 * libc only. Non-blocking sockets on epoll; one thread, plus one publisher
 * thread in the fan-out modes. Latencies are CLOCK_MONOTONIC differences kept
 * in a log-linear histogram (128 sub-buckets per power of two: under 0.8 %
 * error). Each run prints one line
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
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
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
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
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

static void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
}

static void *xcalloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size ? size : 1);
    if (!p)
        die("out of memory (%zu x %zu bytes)", n, size);
    return p;
}

static void *xrealloc(void *p, size_t n)
{
    p = realloc(p, n);
    if (!p)
        die("out of memory (%zu bytes)", n);
    return p;
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

static bool starts(const char *p, size_t n, const char *prefix)
{
    size_t k = strlen(prefix);
    return n >= k && memcmp(p, prefix, k) == 0;
}

/* ------------------------------------------------------------------------ */
/* histogram: values in ns; exact below 256, then 128 sub-buckets per octave */

#define H_SUB     128
#define H_BUCKETS (256 + 56 * H_SUB)

struct hist {
    uint64_t count[H_BUCKETS];
    uint64_t n, min, max;
    double sum;
};

static unsigned h_index(uint64_t v)
{
    if (v < 256)
        return (unsigned)v;
    unsigned b = 63u - (unsigned)__builtin_clzll(v); /* >= 8 */
    unsigned shift = b - 7;
    unsigned m = (unsigned)(v >> shift); /* 128..255 */
    unsigned i = 256 + (b - 8) * H_SUB + (m - 128);
    return i < H_BUCKETS ? i : H_BUCKETS - 1;
}

static uint64_t h_value(unsigned i) /* middle of bucket i */
{
    if (i < 256)
        return i;
    unsigned b = (i - 256) / H_SUB + 8, m = (i - 256) % H_SUB + 128, shift = b - 7;
    return ((uint64_t)m << shift) + ((1ull << shift) >> 1);
}

static void h_add(struct hist *h, uint64_t v)
{
    h->count[h_index(v)]++;
    if (h->n == 0 || v < h->min)
        h->min = v;
    if (v > h->max)
        h->max = v;
    h->n++;
    h->sum += (double)v;
}

/* The q-quantile (0 < q <= 1) in ns, clamped to the exact min and max. */
static uint64_t h_q(const struct hist *h, double q)
{
    if (!h->n)
        return 0;
    uint64_t rank = (uint64_t)(q * (double)h->n + 0.5);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (unsigned i = 0; i < H_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            uint64_t v = h_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

/* " <pfx>p50_us=… <pfx>p90_us=… …" */
static void h_print(const struct hist *h, const char *pfx)
{
    printf(" %savg_us=%.1f %sp50_us=%.1f %sp90_us=%.1f %sp99_us=%.1f %sp999_us=%.1f %smax_us=%.1f",
           pfx, h->n ? h->sum / (double)h->n / 1e3 : 0.0, pfx, (double)h_q(h, 0.50) / 1e3, pfx,
           (double)h_q(h, 0.90) / 1e3, pfx, (double)h_q(h, 0.99) / 1e3, pfx,
           (double)h_q(h, 0.999) / 1e3, pfx, (double)h->max / 1e3);
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

static void usage(void)
{
    fputs("usage: sockbench MODE --port P [--host 127.0.0.1] [--connections N] [--pipeline N]\n"
          "                 [--duration S] [--messages N] [--rate R] [--size B]\n"
          "                 [--subscribers N] [--channel NAME] [--pid PID] [--timeout S]\n"
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

static struct sockaddr_in g_addr;

static void resolve(void)
{
    memset(&g_addr, 0, sizeof g_addr);
    g_addr.sin_family = AF_INET;
    g_addr.sin_port = htons((uint16_t)opt.port);
    if (inet_pton(AF_INET, opt.host, &g_addr.sin_addr) != 1)
        die("--host must be an IPv4 address, not '%s'", opt.host);
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
        die("fcntl(O_NONBLOCK): %s", strerror(errno));
}

static int new_socket(void)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        die("socket: %s", strerror(errno));
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

/* Closes with a RST: no TIME_WAIT left behind to eat the ephemeral ports. */
static void close_abort(int fd)
{
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
    close(fd);
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

/* A non-blocking connected socket, connected within --timeout. */
static int connect_to(const char *what)
{
    int fd = new_socket();
    set_nonblock(fd);
    if (connect(fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0) {
        if (errno != EINPROGRESS)
            die("%s: connect to %s:%d: %s", what, opt.host, opt.port, strerror(errno));
        wait_fd(fd, POLLOUT, now_ns() + (uint64_t)(opt.timeout * 1e9), what);
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err)
            die("%s: connect to %s:%d: %s", what, opt.host, opt.port, strerror(err));
    }
    return fd;
}

/* Writes all of (p, n) to a non-blocking socket within --timeout. */
static void write_all(int fd, const char *p, size_t n, const char *what)
{
    uint64_t deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w > 0) {
            p += w;
            n -= (size_t)w;
        } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            wait_fd(fd, POLLOUT, deadline, what);
        } else if (w < 0 && errno != EINTR) {
            die("%s: write: %s", what, strerror(errno));
        }
    }
}

/* ------------------------------------------------------------------------ */
/* input buffers and the two reply syntaxes                                 */

struct rbuf {
    char *p;
    size_t len, off, cap; /* unread bytes are p[off..len) */
};

/* Reads what is there (non-blocking), with one recv. 2: filled the free
 * space (there may be more), 1: read less (the socket is very likely empty:
 * epoll, level-triggered, says so if not), 0: nothing now (EAGAIN), -1: EOF.
 * Dies on a socket error. */
static int rb_fill(struct rbuf *b, int fd, const char *what)
{
    if (b->off && b->off == b->len)
        b->off = b->len = 0;
    if (b->cap - b->len < 4096) {
        if (b->off) {
            memmove(b->p, b->p + b->off, b->len - b->off);
            b->len -= b->off;
            b->off = 0;
        }
        if (b->cap - b->len < 4096) {
            b->cap = b->cap ? b->cap * 2 : 16384;
            b->p = xrealloc(b->p, b->cap);
        }
    }
    for (;;) {
        size_t room = b->cap - b->len;
        ssize_t r = recv(fd, b->p + b->len, room, 0);
        if (r > 0) {
            b->len += (size_t)r;
            return (size_t)r == room ? 2 : 1;
        }
        if (r == 0)
            return -1;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR)
            die("%s: read: %s", what, strerror(errno));
    }
}

/* The next whole line (without its LF) or NULL. */
static const char *rb_line(struct rbuf *b, size_t *n)
{
    const char *s = b->p + b->off;
    const char *nl = memchr(s, '\n', b->len - b->off);
    if (!nl)
        return NULL;
    *n = (size_t)(nl - s);
    b->off += *n + 1;
    return s;
}

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

static bool rb_resp(struct rbuf *b, struct resp *v)
{
    size_t u = resp_parse(b->p + b->off, b->len - b->off, v, 0);
    b->off += u;
    return u != 0;
}

/* Reads one line (gateway) within --timeout, skipping ping pushes. */
static const char *read_line_blocking(int fd, struct rbuf *b, size_t *n, const char *what)
{
    uint64_t deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    for (;;) {
        const char *l;
        while ((l = rb_line(b, n)))
            if (!starts(l, *n, "{\"type\":\"ping\""))
                return l;
        int r = rb_fill(b, fd, what);
        if (r < 0)
            die("%s: the server closed the connection", what);
        if (r == 0)
            wait_fd(fd, POLLIN, deadline, what);
    }
}

static void read_resp_blocking(int fd, struct rbuf *b, struct resp *v, const char *what)
{
    uint64_t deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
    for (;;) {
        if (rb_resp(b, v))
            return;
        int r = rb_fill(b, fd, what);
        if (r < 0)
            die("%s: the server closed the connection", what);
        if (r == 0)
            wait_fd(fd, POLLIN, deadline, what);
    }
}

static void expect_hello(int fd, struct rbuf *b, const char *what)
{
    size_t n;
    const char *l = read_line_blocking(fd, b, &n, what);
    if (!starts(l, n, "{\"type\":\"hello\""))
        die("%s: the first line is not a hello: %s", what, shown(l, n));
}

static char *make_body(size_t size)
{
    char *s = xmalloc(size + 1);
    for (size_t i = 0; i < size; i++)
        s[i] = (char)('0' + i % 10);
    s[size] = 0;
    return s;
}

/* ------------------------------------------------------------------------ */
/* request/response: ping, pub, redis-ping, redis-set                       */

struct conn {
    int fd;
    struct rbuf in;
    char *out;
    size_t olen, ooff, ocap;
    uint64_t *sent; /* ring of send times, --pipeline long */
    unsigned head, inflight, unstamped;
    bool want_out;
};

static bool g_redis;
static const char *g_req;
static size_t g_req_len;
static const char *g_expect; /* prefix of a good reply line (gateway) or status (redis) */
static uint64_t g_errors;

static void queue_req(struct conn *c)
{
    if (c->ocap - c->olen < g_req_len) {
        if (c->ooff) {
            memmove(c->out, c->out + c->ooff, c->olen - c->ooff);
            c->olen -= c->ooff;
            c->ooff = 0;
        }
        while (c->ocap - c->olen < g_req_len) {
            c->ocap = c->ocap ? c->ocap * 2 : 4096;
            c->out = xrealloc(c->out, c->ocap);
        }
    }
    memcpy(c->out + c->olen, g_req, g_req_len);
    c->olen += g_req_len;
    c->inflight++;
    c->unstamped++;
}

static void flush_conn(struct conn *c, int ep)
{
    if (c->unstamped) {
        uint64_t t = now_ns();
        unsigned cap = (unsigned)opt.pipeline;
        for (; c->unstamped; c->unstamped--)
            c->sent[(c->head + c->inflight - c->unstamped) % cap] = t;
    }
    while (c->ooff < c->olen) {
        ssize_t w = send(c->fd, c->out + c->ooff, c->olen - c->ooff, MSG_NOSIGNAL);
        if (w > 0) {
            c->ooff += (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        die("write: %s", strerror(errno));
    }
    if (c->ooff == c->olen)
        c->ooff = c->olen = 0;
    bool want = c->olen != 0;
    if (want != c->want_out) {
        struct epoll_event ev = {.events = EPOLLIN | (want ? EPOLLOUT : 0), .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
        c->want_out = want;
    }
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
    req = xmalloc(cap);
    bool is_pub = !strcmp(g_mode, "pub") || !strcmp(g_mode, "redis-set");
    if (!strcmp(g_mode, "ping")) {
        snprintf(req, cap, "PING\n");
        g_expect = "{\"type\":\"pong\"";
    } else if (!strcmp(g_mode, "pub")) {
        snprintf(req, cap, "PUB %s %s\n", channel, body);
        g_expect = "{\"type\":\"ok\",\"op\":\"pub\"";
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
    struct conn *cs = xcalloc((size_t)nc, sizeof *cs);
    for (long i = 0; i < nc; i++) {
        struct conn *c = &cs[i];
        c->fd = connect_to("connect");
        c->sent = xcalloc((size_t)opt.pipeline, sizeof *c->sent);
        if (!g_redis)
            expect_hello(c->fd, &c->in, "hello");
    }
    for (long i = 0; i < nc; i++) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &cs[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
    }

    struct hist *h = xcalloc(1, sizeof *h);
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
            struct conn *c = evs[e].data.ptr;
            if (evs[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
                for (int r = 2; r == 2;) {
                    r = rb_fill(&c->in, c->fd, "read");
                    if (r < 0)
                        die("the server closed a connection (%" PRIu64 " replies done)", done);
                    if (r == 0)
                        break;
                    uint64_t tr = now_ns();
                    bool more = sending && tr < deadline;
                    for (;;) {
                        const char *l = NULL;
                        size_t ln = 0;
                        bool ok;
                        if (g_redis) {
                            struct resp v;
                            if (!rb_resp(&c->in, &v))
                                break;
                            ok = v.type == '+' && v.slen == strlen(g_expect) &&
                                 !memcmp(v.s, g_expect, v.slen);
                            l = v.s ? v.s - 1 : "?";
                            ln = v.s ? v.slen + 1 : 1;
                        } else {
                            l = rb_line(&c->in, &ln);
                            if (!l)
                                break;
                            if (ln == 0 || starts(l, ln, "{\"type\":\"ping\"") ||
                                starts(l, ln, "{\"type\":\"message\"")) {
                                pushes++;
                                continue;
                            }
                            ok = starts(l, ln, g_expect);
                        }
                        if (!c->inflight)
                            die("a reply with no command in flight: %s", shown(l, ln));
                        if (!ok)
                            bad_reply(l, ln);
                        h_add(h, tr - c->sent[c->head]);
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
            }
            flush_conn(c, ep);
        }
    }
    if (g_errors)
        die("%" PRIu64 " of %" PRIu64 " replies were not '%s...'", g_errors, done, g_expect);
    double el = (double)(last - t0) / 1e9;
    printf("RESULT mode=%s connections=%ld pipeline=%ld size=%ld ops=%" PRIu64
           " errors=0 pushes=%" PRIu64 " elapsed_s=%.3f client_cpu_pct=%.0f %s=%.0f",
           g_mode, nc, opt.pipeline, is_pub ? opt.size : 0, done, pushes, el,
           100.0 * (cpu_s() - cpu0) / el, is_pub ? "msgs_per_s" : "ops_per_s", (double)done / el);
    h_print(h, "");
    printf("\n");
    for (long i = 0; i < nc; i++)
        close(cs[i].fd);
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

static void *publisher(void *arg)
{
    (void)arg;
    const char *ch = opt.channel;
    struct rbuf in = {0};
    int fd = connect_to("publisher connect");
    if (!g_redis)
        expect_hello(fd, &in, "publisher hello");
    uint64_t n = (uint64_t)opt.messages;
    uint64_t *sent = xcalloc(n, sizeof *sent);
    size_t cap = (size_t)opt.size + 256;
    char *body = xmalloc((size_t)opt.size + 1), *req = xmalloc(cap);
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
                if (k < 0 || k >= opt.size) {
                    snprintf(g_pub_err, sizeof g_pub_err,
                             "--size %ld is too small for the timestamp", opt.size);
                    g_pub_failed = 1;
                    return NULL;
                }
                memset(body + k, 'x', (size_t)opt.size - (size_t)k);
                body[opt.size] = 0;
                int len;
                if (g_redis)
                    len = snprintf(req, cap, "*3\r\n$7\r\nPUBLISH\r\n$%zu\r\n%s\r\n$%ld\r\n%s\r\n",
                                   strlen(ch), ch, opt.size, body);
                else
                    len = snprintf(req, cap, "PUB %s %s\n", ch, body);
                sent[s->sent] = t;
                write_all(fd, req, (size_t)len, "publisher");
                if (t - due > s->max_lag_ns)
                    s->max_lag_ns = t - due;
                s->t_last = t;
                if (++s->sent == n)
                    ack_deadline = now_ns() + (uint64_t)(opt.timeout * 1e9);
                continue;
            }
        } else if (t >= ack_deadline) {
            snprintf(g_pub_err, sizeof g_pub_err,
                     "%" PRIu64 " publish replies missing after %.0f s", n - s->acked, opt.timeout);
            g_pub_failed = 1;
            return NULL;
        }
        uint64_t until = s->sent < n ? t0 + s->sent * period : ack_deadline;
        struct pollfd p = {fd, POLLIN, 0};
        struct timespec ts = {(time_t)((until - t) / 1000000000u),
                              (long)((until - t) % 1000000000u)};
        int r = ppoll(&p, 1, &ts, NULL);
        if (r <= 0)
            continue;
        r = rb_fill(&in, fd, "publisher");
        if (r < 0) {
            snprintf(g_pub_err, sizeof g_pub_err, "the server closed the publisher's connection");
            g_pub_failed = 1;
            return NULL;
        }
        uint64_t tr = now_ns();
        for (;;) {
            bool ok;
            const char *l;
            size_t ln;
            if (g_redis) {
                struct resp v;
                if (!rb_resp(&in, &v))
                    break;
                ok = v.type == ':' && v.i == opt.subscribers;
                l = v.s ? v.s : "(integer)";
                ln = v.s ? v.slen : 9;
                if (v.type == ':' && !ok) {
                    snprintf(g_pub_err, sizeof g_pub_err,
                             "PUBLISH reached %lld subscribers, not %ld", v.i, opt.subscribers);
                    g_pub_failed = 1;
                    return NULL;
                }
            } else {
                l = rb_line(&in, &ln);
                if (!l)
                    break;
                if (ln == 0 || starts(l, ln, "{\"type\":\"ping\""))
                    continue;
                ok = starts(l, ln, "{\"type\":\"ok\",\"op\":\"pub\"");
            }
            if (s->acked >= s->sent) {
                snprintf(g_pub_err, sizeof g_pub_err, "a reply with no publish in flight: %s",
                         shown(l, ln));
                g_pub_failed = 1;
                return NULL;
            }
            if (!ok) {
                if (s->errors < 5)
                    fprintf(stderr, "sockbench %s: publisher: unexpected reply: %s\n", g_mode,
                            shown(l, ln));
                s->errors++;
            }
            h_add(&s->ack, tr - sent[s->acked]);
            s->acked++;
        }
    }
    close(fd);
    free(sent);
    return NULL;
}

struct sub {
    int fd;
    struct rbuf in;
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
    struct sub *subs = xcalloc((size_t)ns, sizeof *subs);
    char cmd[160];
    for (long i = 0; i < ns; i++) {
        struct sub *s = &subs[i];
        s->fd = connect_to("subscriber connect");
        if (g_redis) {
            int k = snprintf(cmd, sizeof cmd, "*2\r\n$9\r\nSUBSCRIBE\r\n$%zu\r\n%s\r\n",
                             strlen(opt.channel), opt.channel);
            write_all(s->fd, cmd, (size_t)k, "SUBSCRIBE");
            struct resp v;
            read_resp_blocking(s->fd, &s->in, &v, "SUBSCRIBE");
            if (v.type != '*' || v.nel != 3 || v.el[0].slen != 9 ||
                memcmp(v.el[0].s, "subscribe", 9))
                die("SUBSCRIBE %s: unexpected reply (type %c)", opt.channel, v.type);
        } else {
            expect_hello(s->fd, &s->in, "subscriber hello");
            int k = snprintf(cmd, sizeof cmd, "SUB %s\n", opt.channel);
            write_all(s->fd, cmd, (size_t)k, "SUB");
            size_t n;
            const char *l = read_line_blocking(s->fd, &s->in, &n, "SUB");
            if (!starts(l, n, "{\"type\":\"ok\",\"op\":\"sub\""))
                die("SUB %s: unexpected reply: %s", opt.channel, shown(l, n));
        }
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = s};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, s->fd, &ev) != 0)
            die("epoll_ctl: %s", strerror(errno));
    }

    uint64_t nm = (uint64_t)opt.messages;
    uint64_t *maxlat = xcalloc(nm, sizeof *maxlat);
    uint32_t *got = xcalloc(nm, sizeof *got);
    struct hist *each = xcalloc(1, sizeof *each), *last = xcalloc(1, sizeof *last);
    uint64_t want = nm * (uint64_t)ns, deliveries = 0, complete = 0;

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
            struct sub *s = evs[e].data.ptr;
            for (int r = 2; r == 2;) {
                r = rb_fill(&s->in, s->fd, "subscriber");
                if (r < 0)
                    die("the server closed a subscriber's connection");
                if (r == 0)
                    break;
                uint64_t tr = now_ns();
                for (;;) {
                    const char *body = NULL;
                    size_t blen = 0;
                    if (g_redis) {
                        struct resp v;
                        if (!rb_resp(&s->in, &v))
                            break;
                        if (v.type != '*' || v.nel != 3 || v.el[0].slen != 7 ||
                            memcmp(v.el[0].s, "message", 7) || v.el[2].type != '$')
                            die("subscriber: not a message push (type %c, %d elements)", v.type,
                                v.nel);
                        body = v.el[2].s;
                        blen = v.el[2].slen;
                    } else {
                        size_t ln;
                        const char *l = rb_line(&s->in, &ln);
                        if (!l)
                            break;
                        if (ln == 0 || starts(l, ln, "{\"type\":\"ping\""))
                            continue;
                        if (!starts(l, ln, "{\"type\":\"message\""))
                            die("subscriber: not a message push: %s", shown(l, ln));
                        const char *k = memmem(l, ln, "\"body\":\"", 8);
                        if (!k)
                            die("subscriber: a message with no body: %s", shown(l, ln));
                        body = k + 8;
                        blen = ln - (size_t)(body - l);
                    }
                    uint64_t idx, ts;
                    if (!parse_body(body, blen, &idx, &ts) || idx >= nm)
                        die("subscriber: a message this run did not publish: %s",
                            shown(body, blen));
                    if ((int64_t)idx != s->next)
                        die("subscriber %ld: got message %" PRIu64 ", expected %" PRId64
                            " (lost, repeated or out of order)",
                            (long)(s - subs), idx, s->next);
                    s->next++;
                    uint64_t lat = tr > ts ? tr - ts : 0;
                    h_add(each, lat);
                    if (lat > maxlat[idx])
                        maxlat[idx] = lat;
                    deliveries++;
                    if (++got[idx] == (uint32_t)ns) {
                        h_add(last, maxlat[idx]);
                        complete++;
                    }
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
        int r = rb_fill(&subs[i].in, subs[i].fd, "subscriber");
        if (r > 0 && subs[i].in.len > subs[i].in.off) {
            const char *p = subs[i].in.p + subs[i].in.off;
            size_t n = subs[i].in.len - subs[i].in.off;
            if (!(starts(p, n, "{\"type\":\"ping\"")))
                die("subscriber %ld: got more than every message once: %s", i, shown(p, n));
        }
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
        close(subs[i].fd);
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
    int fd;
    int state;
    unsigned hlen;
    char hello[16];
};

static long redis_connected_clients(int fd, struct rbuf *b)
{
    static const char q[] = "*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n";
    write_all(fd, q, sizeof q - 1, "INFO clients");
    struct resp v;
    read_resp_blocking(fd, b, &v, "INFO clients");
    if (v.type != '$' || !v.s)
        die("INFO clients: unexpected reply (type %c)", v.type);
    const char *k = memmem(v.s, v.slen, "connected_clients:", 18);
    if (!k)
        die("INFO clients: no connected_clients");
    return strtol(k + 18, NULL, 10);
}

static int run_idle(void)
{
    long n = opt.connections ? opt.connections : 10000;
    if (opt.pid <= 0)
        die("--pid (the server's process id) is required");
    raise_nofile(n + 16);
    resolve();
    int ctl = -1;
    struct rbuf cin = {0};
    long base_clients = 0;
    if (g_redis) {
        ctl = connect_to("INFO connection");
        base_clients = redis_connected_clients(ctl, &cin);
    }
    long before = vmrss_kb(opt.pid);
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        die("epoll_create1: %s", strerror(errno));
    struct idle *cs = xcalloc((size_t)n, sizeof *cs);
    long next = 0, pending = 0, done = 0;
    const long window = 256; /* handshakes in progress at once: never overflow the backlog */
    uint64_t t0 = now_ns(), limit = t0 + (uint64_t)(opt.timeout * 4 * 1e9);
    struct epoll_event evs[256];
    static const char hello[] = "{\"type\":\"hello\"";
    while (done < n) {
        while (pending < window && next < n) {
            struct idle *c = &cs[next++];
            c->fd = new_socket();
            set_nonblock(c->fd);
            c->state = I_CONNECTING;
            if (connect(c->fd, (struct sockaddr *)&g_addr, sizeof g_addr) != 0 &&
                errno != EINPROGRESS)
                die("connect %ld: %s", next, strerror(errno));
            struct epoll_event ev = {.events = EPOLLOUT | EPOLLIN, .data.ptr = c};
            if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) != 0)
                die("epoll_ctl: %s", strerror(errno));
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
            struct idle *c = evs[e].data.ptr;
            if (c->state == I_CONNECTING) {
                int err = 0;
                socklen_t len = sizeof err;
                getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
                if (err)
                    die("connection %ld: %s", (long)(c - cs), strerror(err));
                if (!(evs[e].events & (EPOLLOUT | EPOLLIN)))
                    continue;
                c->state = g_redis ? I_DONE : I_HELLO;
                if (c->state == I_HELLO) {
                    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (c->state == I_HELLO && (evs[e].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                /* Reads the hello line byte-exactly: never past its LF. */
                char buf[512];
                ssize_t r = recv(c->fd, buf, sizeof buf, MSG_PEEK);
                if (r == 0)
                    die("session %ld: closed before its hello (after %ld sessions)", (long)(c - cs),
                        done);
                if (r < 0) {
                    if (errno == EAGAIN || errno == EINTR)
                        continue;
                    die("session %ld: read: %s", (long)(c - cs), strerror(errno));
                }
                char *nl = memchr(buf, '\n', (size_t)r);
                size_t take = nl ? (size_t)(nl - buf) + 1 : (size_t)r;
                if (recv(c->fd, buf, take, 0) != (ssize_t)take)
                    die("session %ld: read", (long)(c - cs));
                for (size_t i = 0; i < take && c->hlen < sizeof hello - 1; i++)
                    c->hello[c->hlen++] = buf[i];
                if (memcmp(c->hello, hello, c->hlen))
                    die("session %ld (after %ld sessions): the first line is not a hello: %s",
                        (long)(c - cs), done, shown(buf, take));
                if (nl) {
                    if (c->hlen < sizeof hello - 1)
                        die("session %ld: short first line", (long)(c - cs));
                    c->state = I_DONE;
                }
            }
            if (c->state == I_DONE) {
                epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                pending--;
                done++;
            }
        }
    }
    double open_s = (double)(now_ns() - t0) / 1e9;
    if (g_redis) {
        uint64_t until = now_ns() + (uint64_t)(opt.timeout * 1e9);
        long have;
        while ((have = redis_connected_clients(ctl, &cin)) < base_clients + n) {
            if (now_ns() >= until)
                die("redis counts %ld clients, expected %ld", have, base_clients + n);
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    long after = vmrss_kb(opt.pid);
    /* Every session must still be open and quiet (a closed one reads as EOF). */
    struct pollfd *pf = xcalloc((size_t)n, sizeof *pf);
    for (long i = 0; i < n; i++)
        pf[i] = (struct pollfd){cs[i].fd, POLLIN, 0};
    int ready = poll(pf, (nfds_t)n, 0);
    if (ready < 0)
        die("poll: %s", strerror(errno));
    for (long i = 0; i < n && ready > 0; i++)
        if (pf[i].revents) {
            char buf[256];
            ssize_t r = recv(cs[i].fd, buf, sizeof buf, MSG_DONTWAIT);
            if (r == 0)
                die("session %ld was closed by the server while idle", i);
            if (r > 0 && !starts(buf, (size_t)r, "{\"type\":\"ping\""))
                die("session %ld got a line while idle: %s", i, shown(buf, (size_t)r));
        }
    printf("RESULT mode=%s sessions=%ld pid=%ld rss_before_kb=%ld rss_after_kb=%ld "
           "per_session_bytes=%.0f open_s=%.2f errors=0\n",
           g_mode, n, opt.pid, before, after, (double)(after - before) * 1024.0 / (double)n,
           open_s);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        close_abort(cs[i].fd);
    if (ctl >= 0)
        close(ctl);
    return 0;
}

/* ------------------------------------------------------------------------ */

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
