/*
 * gwbench.c - the comparison client of visavis (docs/comparison.md): the
 * same workload against a running gateway over every interaction style,
 * one table at the end.
 *
 * This file holds main: the options, the checks that the gateway is there
 * and is a visavis gateway, --spawn (start one for the run), the order in
 * which the styles run, progress on a terminal and the exit status. The
 * workloads are gwbench_styles.c, the report gwbench_out.c.
 */
#include "gwbench.h"

#include "gwbench_conn.h"
#include "gwbench_http.h"
#include "gwbench_out.h"
#include "net.h"
#include "proto_line.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_CONNECTIONS  4
#define DEFAULT_DURATION_S   5.0
#define DEFAULT_SIZE         100
#define DEFAULT_WINDOW       16
#define DEFAULT_POLL_MS      250
#define DEFAULT_TIMEOUT_S    10.0
/* The delivery styles' publishing rate without --rate: well under what any of them can carry. */
#define DEFAULT_DELIVER_RATE 1000.0
/* Room for "<index>:<send time>:" in every body. */
#define SIZE_MIN             40
#define SIZE_MAX_            60000
/* How long the session front gets to greet. */
#define HELLO_WAIT_S         3.0
#define PROGRESS_AFTER_NS    (2 * 1000000000LL)
#define PROGRESS_EVERY_NS    (200 * 1000000LL)

volatile sig_atomic_t gwbench_stop;

int64_t gwbench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- progress and messages on stderr ---- */

static struct {
    int64_t t0;       /* the start of the whole run */
    int64_t last;     /* the last time a line was drawn */
    bool shown;       /* a line is on the screen */
    bool expect_long; /* the run is expected to last over 2 s */
    int index, count; /* the style running, of how many */
} prog;

void gwbench_progress_end(void)
{
    if (prog.shown)
        fputs("\r\033[K", stderr);
    prog.shown = false;
}

void gwbench_progress(const struct gwbench_opts *o, enum style_id id, int64_t t_start_ns,
                      uint64_t done, uint64_t total)
{
    int64_t now;
    char line[160];
    double el;

    if (!o->progress)
        return;
    now = gwbench_now_ns();
    if (now - prog.last < PROGRESS_EVERY_NS)
        return;
    if (!prog.expect_long && now - prog.t0 < PROGRESS_AFTER_NS)
        return;
    prog.last = now;
    el = now > t_start_ns ? (double)(now - t_start_ns) / 1e9 : 0.0;
    if (total)
        snprintf(line, sizeof(line),
                 "gwbench: [%d/%d] %-15s %5.1f s  %" PRIu64 " of %" PRIu64 " %s", prog.index,
                 prog.count, gwbench_styles[id].name, el, done, total,
                 gwbench_styles[id].delivery ? "deliveries" : "messages");
    else
        snprintf(line, sizeof(line), "gwbench: [%d/%d] %-15s %5.1f of %g s  %" PRIu64 " %s",
                 prog.index, prog.count, gwbench_styles[id].name, el, o->duration_s, done,
                 gwbench_styles[id].delivery ? "deliveries" : "messages");
    fprintf(stderr, "\r\033[K%s", line);
    prog.shown = true;
}

void gwbench_status(const char *fmt, ...)
{
    va_list ap;

    gwbench_progress_end();
    fputs("gwbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void on_stop_signal(int sig)
{
    gwbench_stop = sig;
}

static void signals_init(void)
{
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL); /* no SA_RESTART: the wait must end */
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
}

/* ---- the command line ---- */

static const char usage_text[] =
    "usage: gwbench [--http HOST:PORT] [--tcp HOST:PORT] [options]\n"
    "       gwbench --spawn GATEWAY [options]\n"
    "\n"
    "Runs the same workload against a running visavis gateway over each interaction\n"
    "style and prints one table (docs/comparison.md). Styles, in the order they run:\n"
    "  rest-close      POST with a new TCP connection for each message (like curl)\n"
    "  rest-keepalive  POST on kept-alive connections, one in flight on each\n"
    "  tcp             PUB on sessions, one in flight on each\n"
    "  tcp-pipelined   PUB on sessions, --window in flight on each\n"
    "  tcp-push        delivery: subscribers get each message pushed (SUB)\n"
    "  rest-longpoll   delivery: GET ...?since=N&wait=30, held until a message commits\n"
    "  rest-poll       delivery: GET ...?since=N every --poll-interval\n"
    "Latency is publish -> ack for the first four, publish -> received for the\n"
    "others, whose publisher is one TCP session pipelining PUBs on a fixed schedule.\n"
    "\n"
    "      --http HOST:PORT     the REST front (default $VISAVIS_HTTP_ADDR, "
    "else " GWBENCH_DEFAULT_HTTP ")\n"
    "      --tcp HOST:PORT      the session front (default $VISAVIS_TCP_ADDR, "
    "else " GWBENCH_DEFAULT_TCP ")\n"
    "      --spawn GATEWAY      start this gateway binary on free ports with a fresh\n"
    "                           database under $TMPDIR (else /var/tmp) for the run\n"
    "  -c, --connections N      clients per style; receivers for delivery styles (4)\n"
    "  -d, --duration S         seconds per style (5)\n"
    "  -n, --messages N         instead: messages each style publishes\n"
    "  -s, --size B             message body bytes (100; 40 to 60000)\n"
    "  -w, --window W           tcp-pipelined: PUBs in flight per session (16)\n"
    "      --poll-interval MS   rest-poll: time between polls (250)\n"
    "      --rate R             messages/s: publish styles run open loop at R in all\n"
    "                           (default: closed loop, as fast as answers come); the\n"
    "                           delivery publisher's rate (default 1000)\n"
    "      --styles LIST        comma-separated styles to run (default: all)\n"
    "      --json               the results as one JSON document\n"
    "      --csv                the results as CSV: a header, one row per style\n"
    "      --svg FILE           also draw throughput and p50/p99 latency to FILE\n"
    "      --timeout S          for connects, setup, and answers at the end (10)\n"
    "  -h, --help               this text\n"
    "      --version            gwbench's version\n"
    "\n"
    "Exit status: 0 every style ran; 1 a style failed (the table says which and why)\n"
    "or an output could not be written; 2 a bad command line; 3 the gateway could\n"
    "not be reached.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fputs("gwbench: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\n(gwbench --help for usage)\n", stderr);
    return GWBENCH_EXIT_USAGE;
}

static bool parse_long(const char *s, long lo, long hi, long *out)
{
    char *end;
    long v;

    errno = 0;
    v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi)
        return false;
    *out = v;
    return true;
}

static bool parse_double(const char *s, double lo, double hi, double *out)
{
    char *end;
    double v;

    errno = 0;
    v = strtod(s, &end);
    if (errno || end == s || *end || !(v >= lo && v <= hi))
        return false;
    *out = v;
    return true;
}

static int parse_styles(const char *list, struct gwbench_opts *o)
{
    const char *p = list;
    bool any = false;

    memset(o->run, 0, sizeof(o->run));
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        int id;

        while (len && *p == ' ') {
            p++;
            len--;
        }
        while (len && p[len - 1] == ' ')
            len--;
        if (len) {
            id = gwbench_style_find(p, len);
            if (id < 0) {
                char names[256] = "";
                for (int i = 0; i < STYLE__COUNT; i++) {
                    strcat(names, i ? ", " : "");
                    strcat(names, gwbench_styles[i].name);
                }
                return usage_error("--styles: unknown style '%.*s' (styles: %s)", (int)len, p,
                                   names);
            }
            o->run[id] = true;
            any = true;
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    if (!any)
        return usage_error("--styles: name at least one style");
    return GWBENCH_EXIT_OK;
}

enum {
    OPT_HTTP = 256,
    OPT_TCP,
    OPT_SPAWN,
    OPT_POLL,
    OPT_RATE,
    OPT_STYLES,
    OPT_JSON,
    OPT_CSV,
    OPT_SVG,
    OPT_TIMEOUT,
    OPT_VERSION
};

static int parse_args(int argc, char **argv, struct gwbench_opts *o, const char **spawn, bool *done)
{
    static const struct option longopts[] = {
        {"http", required_argument, NULL, OPT_HTTP},
        {"tcp", required_argument, NULL, OPT_TCP},
        {"spawn", required_argument, NULL, OPT_SPAWN},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"messages", required_argument, NULL, 'n'},
        {"size", required_argument, NULL, 's'},
        {"window", required_argument, NULL, 'w'},
        {"poll-interval", required_argument, NULL, OPT_POLL},
        {"rate", required_argument, NULL, OPT_RATE},
        {"styles", required_argument, NULL, OPT_STYLES},
        {"json", no_argument, NULL, OPT_JSON},
        {"csv", no_argument, NULL, OPT_CSV},
        {"svg", required_argument, NULL, OPT_SVG},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0},
    };
    char host[NET_HOST_MAX], err[GW_ERRLEN];
    const char *env;
    bool has_duration = false, http_given = false, tcp_given = false;
    int opt, port, rc;

    *done = false;
    opterr = 0;
    o->connections = DEFAULT_CONNECTIONS;
    o->duration_s = DEFAULT_DURATION_S;
    o->size = DEFAULT_SIZE;
    o->window = DEFAULT_WINDOW;
    o->poll_ms = DEFAULT_POLL_MS;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    for (int i = 0; i < STYLE__COUNT; i++)
        o->run[i] = true;
    env = getenv("VISAVIS_HTTP_ADDR");
    o->http.text = env && *env ? env : GWBENCH_DEFAULT_HTTP;
    env = getenv("VISAVIS_TCP_ADDR");
    o->tcp.text = env && *env ? env : GWBENCH_DEFAULT_TCP;

    while ((opt = getopt_long(argc, argv, ":c:d:n:s:w:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HTTP:
            o->http.text = optarg;
            http_given = true;
            break;
        case OPT_TCP:
            o->tcp.text = optarg;
            tcp_given = true;
            break;
        case OPT_SPAWN:
            *spawn = optarg;
            break;
        case 'c':
            if (!parse_long(optarg, 1, 10000, &o->connections))
                return usage_error("--connections '%s': expected 1 to 10000", optarg);
            break;
        case 'd':
            if (!parse_double(optarg, 0.1, 3600, &o->duration_s))
                return usage_error("--duration '%s': expected seconds, 0.1 to 3600", optarg);
            has_duration = true;
            break;
        case 'n':
            if (!parse_long(optarg, 1, 100000000, &o->messages))
                return usage_error("--messages '%s': expected 1 to 100000000", optarg);
            break;
        case 's':
            if (!parse_long(optarg, SIZE_MIN, SIZE_MAX_, &o->size))
                return usage_error("--size '%s': expected bytes, %d to %d", optarg, SIZE_MIN,
                                   SIZE_MAX_);
            break;
        case 'w':
            if (!parse_long(optarg, 1, 100000, &o->window))
                return usage_error("--window '%s': expected 1 to 100000", optarg);
            break;
        case OPT_POLL:
            if (!parse_long(optarg, 1, 60000, &o->poll_ms))
                return usage_error("--poll-interval '%s': expected milliseconds, 1 to 60000",
                                   optarg);
            break;
        case OPT_RATE:
            if (!parse_double(optarg, 0.1, 10000000, &o->rate))
                return usage_error("--rate '%s': expected messages/s, 0.1 to 10000000", optarg);
            break;
        case OPT_STYLES:
            rc = parse_styles(optarg, o);
            if (rc != GWBENCH_EXIT_OK)
                return rc;
            break;
        case OPT_JSON:
        case OPT_CSV:
            if (o->format != OUT_TABLE)
                return usage_error("--json and --csv do not go together");
            o->format = opt == OPT_JSON ? OUT_JSON : OUT_CSV;
            break;
        case OPT_SVG:
            o->svg = optarg;
            break;
        case OPT_TIMEOUT:
            if (!parse_double(optarg, 0.1, 600, &o->timeout_s))
                return usage_error("--timeout '%s': expected seconds, 0.1 to 600", optarg);
            break;
        case 'h':
            fputs(usage_text, stdout);
            *done = true;
            return GWBENCH_EXIT_OK;
        case OPT_VERSION:
            printf("gwbench (visavis %s), protocol %s version %d, REST API v1\n", VISAVIS_VERSION,
                   PROTO_NAME, PROTO_VERSION);
            *done = true;
            return GWBENCH_EXIT_OK;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s' (addresses go with --http and --tcp)",
                           argv[optind]);
    if (has_duration && o->messages)
        return usage_error("--duration and --messages do not go together");
    if (*spawn && (http_given || tcp_given))
        return usage_error("--spawn chooses the addresses: no --http or --tcp with it");
    if (!*spawn) {
        if (net_split_hostport(o->http.text, host, &port, err) < 0)
            return usage_error("--http %s", err);
        if (port == 0)
            return usage_error("--http '%s': port 0 names no server", o->http.text);
        if (net_split_hostport(o->tcp.text, host, &port, err) < 0)
            return usage_error("--tcp %s", err);
        if (port == 0)
            return usage_error("--tcp '%s': port 0 names no server", o->tcp.text);
    }
    o->deliver_rate = o->rate > 0 ? o->rate : DEFAULT_DELIVER_RATE;
    return GWBENCH_EXIT_OK;
}

/* ---- the gateway: there, and a visavis gateway ---- */

/*
 * Connects once to a front with net_connect, which says clearly why it could
 * not, and keeps the address that answered for every later connect.
 */
static int reach(struct gwbench_addr *a, const char *front, int timeout_ms)
{
    char err[GW_ERRLEN];
    int fd = net_connect(a->text, timeout_ms, err);

    if (fd < 0) {
        gwbench_status("%s (the %s)", err, front);
        return -1;
    }
    a->len = sizeof(a->ss);
    if (getpeername(fd, (struct sockaddr *)&a->ss, &a->len) < 0) {
        gwbench_status("cannot connect to %s: getpeername: %s (the %s)", a->text, strerror(errno),
                       front);
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* GET /healthz must answer 200 {"status":"ok"}. */
static int check_rest(const struct gwbench_opts *o, bool quiet)
{
    struct wire w = {0, 0, 0};
    struct bconn c;
    struct buf scratch = BUF_INIT;
    struct http_resp h;
    char err[GW_ERRLEN];
    int64_t deadline = gwbench_now_ns() + (int64_t)(o->timeout_s * 1e9);
    int rc = -1;

    bconn_init(&c, &w);
    if (bconn_connect(&c, &o->http, err) < 0)
        goto out;
    http_get(&c.out, o->http.text, "/healthz");
    for (;;) {
        const char *p;
        size_t len;
        enum http_parse pr;

        if (bconn_wait(&c, &o->http, deadline, err) < 0)
            goto out;
        p = bconn_data(&c, &len);
        pr = http_parse_response(p, len, c.eof, &scratch, &h, err);
        if (pr == HTTP_BAD)
            goto out;
        if (pr == HTTP_DONE)
            break;
        if (c.eof) {
            snprintf(err, sizeof(err), "the connection closed without an answer");
            goto out;
        }
    }
    if (h.status != 200) {
        snprintf(err, sizeof(err), "GET /healthz answered %d", h.status);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && !quiet)
        gwbench_status("%s does not answer as a visavis REST front (--http): %s", o->http.text,
                       err);
    bconn_release(&c);
    buf_release(&scratch);
    return rc;
}

/* The session front greets with {"type":"hello","protocol":"visavis",...}. */
static int check_tcp(const struct gwbench_opts *o, bool quiet)
{
    struct wire w = {0, 0, 0};
    struct bconn c;
    char err[GW_ERRLEN], *line;
    size_t len;
    /* The greeting comes at once; a server that says nothing first (HTTP) should not take long. */
    double wait_s = o->timeout_s < HELLO_WAIT_S ? o->timeout_s : HELLO_WAIT_S;
    int64_t deadline = gwbench_now_ns() + (int64_t)(wait_s * 1e9);
    int rc = -1;

    bconn_init(&c, &w);
    if (bconn_connect(&c, &o->tcp, err) < 0)
        goto out;
    while (!bconn_line(&c, &line, &len)) {
        if (c.eof) {
            snprintf(err, sizeof(err), "the connection closed before a greeting");
            goto out;
        }
        if (c.in.len - c.in_off > 65536) {
            snprintf(err, sizeof(err), "no greeting line");
            goto out;
        }
        if (bconn_wait(&c, &o->tcp, deadline, err) < 0) {
            if (!gwbench_stop && gwbench_now_ns() >= deadline)
                snprintf(err, sizeof(err), "no greeting line within %g s", wait_s);
            goto out;
        }
    }
    if (strncmp(line, "{\"type\":\"hello\"", 15) != 0 ||
        !strstr(line, "\"protocol\":\"visavis\"")) {
        snprintf(err, sizeof(err), "its first line is not a visavis hello: %.80s", line);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && !quiet)
        gwbench_status("%s does not answer as a visavis session front (--tcp): %s", o->tcp.text,
                       err);
    bconn_release(&c);
    return rc;
}

/* ---- --spawn: a gateway of our own for the run ---- */

struct spawned {
    pid_t pid;
    char dir[256];
    char http[64], tcp[64];
};

static int spawn_gateway(const char *path, const struct gwbench_opts *o, struct spawned *s)
{
    const char *tmp = getenv("TMPDIR");
    char db[300], line[256];
    size_t used = 0;
    int pfd[2];
    int64_t deadline = gwbench_now_ns() + (int64_t)(o->timeout_s * 2e9);

    memset(s, 0, sizeof(s->http) + sizeof(s->tcp));
    s->pid = -1;
    /* Not tmpfs if we can help it: there an fsync costs nothing and the publish numbers lie. */
    snprintf(s->dir, sizeof(s->dir), "%s/gwbench-XXXXXX", tmp && *tmp ? tmp : "/var/tmp");
    if (!mkdtemp(s->dir)) {
        gwbench_status("--spawn: cannot make a directory %s: %s", s->dir, strerror(errno));
        s->dir[0] = '\0';
        return -1;
    }
    snprintf(db, sizeof(db), "%s/gwbench.db", s->dir);
    if (pipe2(pfd, O_CLOEXEC) < 0) {
        gwbench_status("--spawn: pipe: %s", strerror(errno));
        return -1;
    }
    s->pid = fork();
    if (s->pid < 0) {
        gwbench_status("--spawn: fork: %s", strerror(errno));
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    if (s->pid == 0) {
        /* Its own process group: a ^C stops gwbench, which then stops the gateway. */
        setpgid(0, 0);
        /* And should gwbench die without stopping it, it goes too. */
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        dup2(pfd[1], STDOUT_FILENO);
        execl(path, path, "--http-addr", "127.0.0.1:0", "--tcp-addr", "127.0.0.1:0", "--db", db,
              "--log-level", "warn", (char *)NULL);
        fprintf(stderr, "gwbench: --spawn: cannot run %s: %s\n", path, strerror(errno));
        _exit(127);
    }
    close(pfd[1]);
    for (;;) {
        struct pollfd p = {pfd[0], POLLIN, 0};
        int64_t left = deadline - gwbench_now_ns();
        char *nl;
        ssize_t n;
        int hp, tp;

        if (left <= 0 || gwbench_stop) {
            gwbench_status("--spawn: %s did not print READY in time", path);
            break;
        }
        if (poll(&p, 1, (int)(left / 1000000 + 1)) <= 0)
            continue;
        n = read(pfd[0], line + used, sizeof(line) - 1 - used);
        if (n <= 0) {
            gwbench_status("--spawn: %s exited before it was ready", path);
            break;
        }
        used += (size_t)n;
        line[used] = '\0';
        while ((nl = strchr(line, '\n')) != NULL) {
            *nl = '\0';
            if (sscanf(line, "READY http=%d tcp=%d", &hp, &tp) == 2) {
                snprintf(s->http, sizeof(s->http), "127.0.0.1:%d", hp);
                snprintf(s->tcp, sizeof(s->tcp), "127.0.0.1:%d", tp);
                close(pfd[0]); /* it writes nothing more there; a late write gets EPIPE, harmless */
                return 0;
            }
            memmove(line, nl + 1, used - (size_t)(nl + 1 - line) + 1);
            used -= (size_t)(nl + 1 - line);
        }
        if (used == sizeof(line) - 1)
            used = 0;
    }
    close(pfd[0]);
    return -1;
}

static void spawn_stop(struct spawned *s)
{
    static const char *const files[] = {"gwbench.db", "gwbench.db-wal", "gwbench.db-shm"};
    char path[320];

    if (s->pid > 0) {
        int status;
        int64_t deadline = gwbench_now_ns() + 10 * 1000000000LL;
        kill(s->pid, SIGTERM);
        while (waitpid(s->pid, &status, WNOHANG) == 0) {
            struct timespec ts = {0, 20 * 1000000L};
            if (gwbench_now_ns() > deadline) {
                kill(s->pid, SIGKILL);
                waitpid(s->pid, &status, 0);
                break;
            }
            nanosleep(&ts, NULL);
        }
        s->pid = -1;
    }
    if (s->dir[0]) {
        for (size_t i = 0; i < GW_ARRAY_SIZE(files); i++) {
            snprintf(path, sizeof(path), "%s/%s", s->dir, files[i]);
            unlink(path);
        }
        rmdir(s->dir);
        s->dir[0] = '\0';
    }
}

/* ---- main ---- */

static void raise_nofile(long need)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= (rlim_t)need)
        return;
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)need ? (rlim_t)need : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
}

/* Both fronts the chosen styles need: reached and answering as visavis. */
static int check_gateway(struct gwbench_opts *o)
{
    bool http = false, tcp = false;
    int timeout_ms = (int)(o->timeout_s * 1000);

    for (int i = 0; i < STYLE__COUNT; i++) {
        if (!o->run[i])
            continue;
        http = http || gwbench_styles[i].http;
        tcp = tcp || gwbench_styles[i].tcp;
    }
    if (http && (reach(&o->http, "REST front; choose it with --http", timeout_ms) < 0 ||
                 check_rest(o, false) < 0))
        return -1;
    if (tcp && (reach(&o->tcp, "session front; choose it with --tcp", timeout_ms) < 0 ||
                check_tcp(o, false) < 0))
        return -1;
    return 0;
}

/*
 * After a failure: is the gateway still there? (If not, the other styles
 * would only fail too.) A connect alone does not tell: a gateway that is
 * being killed may still accept for a moment, so it must answer, as at the
 * start.
 */
static bool gateway_gone(const struct gwbench_opts *o)
{
    if (gwbench_stop)
        return true;
    if (o->http.len && check_rest(o, true) < 0)
        return true;
    return o->tcp.len && check_tcp(o, true) < 0;
}

int main(int argc, char **argv)
{
    struct gwbench_opts o;
    struct style_result res[STYLE__COUNT];
    struct spawned sp;
    const char *spawn = NULL;
    char err[GW_ERRLEN];
    bool done, failed = false, gone = false;
    int rc;

    memset(&o, 0, sizeof(o));
    memset(res, 0, sizeof(res));
    memset(&sp, 0, sizeof(sp));
    sp.pid = -1;
    rc = parse_args(argc, argv, &o, &spawn, &done);
    if (rc != GWBENCH_EXIT_OK || done)
        return rc;
    signals_init();
    o.progress = isatty(STDERR_FILENO);
    raise_nofile(o.connections * 2 + 64);

    if (spawn) {
        if (spawn_gateway(spawn, &o, &sp) < 0) {
            spawn_stop(&sp);
            return GWBENCH_EXIT_CONNECT;
        }
        o.http.text = sp.http;
        o.tcp.text = sp.tcp;
    }
    if (check_gateway(&o) < 0) {
        spawn_stop(&sp);
        return GWBENCH_EXIT_CONNECT;
    }

    prog.t0 = gwbench_now_ns();
    for (int i = 0; i < STYLE__COUNT; i++) {
        if (o.run[i])
            prog.count++;
    }
    prog.expect_long = !o.messages && o.duration_s * prog.count > 2.0;
    for (int i = 0; i < STYLE__COUNT; i++) {
        res[i].id = (enum style_id)i;
        if (!o.run[i] || gone)
            continue;
        prog.index++;
        if (gwbench_style_run(&o, (enum style_id)i, &res[i]) < 0) {
            failed = true;
            gwbench_status("%s failed: %s", gwbench_styles[i].name, res[i].error);
            if (gateway_gone(&o)) {
                gone = true;
                if (!gwbench_stop && prog.index < prog.count)
                    gwbench_status("the gateway does not answer any more: the styles after %s "
                                   "were not run",
                                   gwbench_styles[i].name);
            }
        }
    }
    gwbench_progress_end();

    if (out_report(&o, res, STYLE__COUNT) < 0)
        failed = true;
    if (o.svg && out_svg(&o, res, STYLE__COUNT, o.svg, err) < 0) {
        gwbench_status("--svg: %s", err);
        failed = true;
    }
    spawn_stop(&sp);
    return failed ? GWBENCH_EXIT_FAILED : GWBENCH_EXIT_OK;
}
