/*
 * gwbench.c - the comparison client of visavis (docs/comparison.md): the
 * same workload against a running gateway over every interaction style,
 * one table at the end.
 *
 * This file holds main: the options, the checks that the gateway is there
 * and is a visavis gateway, the order of the runs (with --runs, every style
 * once per run, the runs one after the other, so that a slow minute of the
 * machine touches every style alike), and the exit status. The styles are
 * gwbench_styles.c, the report gwbench_out.c.
 */
#include "gwbench_types.h"

#include "client_conn.h"
#include "client_text.h"
#include "gwbench_cols.h"
#include "gwbench_fetch.h"
#include "gwbench_out.h"
#include "gwbench_progress.h"
#include "gwbench_spawn.h"
#include "gwbench_styles.h"
#include "gwbench_udp.h"
#include "net.h"
#include "proto_line.h"
#include "server_line.h"

#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
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
#define RUNS_MAX             100
/* How long the session front gets to greet. */
#define HELLO_WAIT_S         3.0

static volatile sig_atomic_t stop_signal;

static void on_stop_signal(int sig)
{
    stop_signal = sig;
}

static void signals_init(void)
{
    /*
     * Every signal that ends a run from outside stops it the same way, so
     * that --spawn's gateway and database go with it: a closed terminal
     * (SIGHUP) and Ctrl-\ (SIGQUIT) as much as Ctrl-C and kill.
     */
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGQUIT};
    struct sigaction sa;

    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < GW_ARRAY_SIZE(sigs); i++)
        sigaction(sigs[i], &sa, NULL); /* no SA_RESTART: the wait must end */
    signal(SIGPIPE, SIG_IGN);
}

/* ---- the command line ---- */

static const char usage_head[] =
    "usage: gwbench [--http HOST:PORT] [--tcp HOST:PORT] [--udp HOST:PORT] [options]\n"
    "       gwbench --spawn GATEWAY [options]\n"
    "\n"
    "Runs the same workload against a running visavis gateway over each interaction\n"
    "style and prints one table (docs/comparison.md). Styles, in the order they run:\n";

static const char usage_tail[] =
    "Publish styles: --connections clients publish; latency is publish -> ack and\n"
    "msgs/s their capacity. Delivery styles: one TCP session publishes on a fixed\n"
    "schedule to --connections receivers; latency is publish -> received, and the\n"
    "rate is the one offered, not a capacity (the table says how much of it the\n"
    "receivers got). udp sends PUB datagrams, fire and forget, and reads back over\n"
    "REST what was stored: offered, stored, lost. Round trips: --connections clients\n"
    "PING; latency is PING -> pong, nothing is stored.\n"
    "\n"
    "      --http HOST:PORT     the REST front (default $VISAVIS_HTTP_ADDR, "
    "else " GWBENCH_DEFAULT_HTTP ")\n"
    "      --tcp HOST:PORT      the session front (default $VISAVIS_TCP_ADDR, "
    "else " GWBENCH_DEFAULT_TCP ")\n"
    "      --udp HOST:PORT      the UDP front (default $VISAVIS_UDP_ADDR, "
    "else " GWBENCH_DEFAULT_UDP "); its\n"
    "                           per-source rate limit (--udp-rate) holds gwbench's\n"
    "                           sockets, which share one address, to it\n"
    "      --spawn GATEWAY      start this gateway binary (a path, or a name on PATH,\n"
    "                           e.g. visavis-gateway) on free ports with a fresh\n"
    "                           database under $TMPDIR (else /var/tmp), removed after,\n"
    "                           and no UDP rate limit; its whole process group (a\n"
    "                           wrapper script's gateway too) is stopped at the end\n"
    "  -c, --connections N      clients per style; receivers for delivery styles (4;\n"
    "                           1 to 10000, within the open-file limit)\n"
    "  -d, --duration S         seconds per style (5)\n"
    "  -n, --messages N         instead: messages each style publishes\n"
    "  -r, --runs N             run every style N times (1 to 100); show the median\n"
    "                           and the spread of the runs\n"
    "  -s, --size B             message body bytes (100; 40 to 60000)\n"
    "  -w, --window W           pipelined styles: PUBs in flight per session (16;\n"
    "                           1 to 100000)\n"
    "      --poll-interval MS   polling styles without a wait: time between polls (250)\n"
    "      --rate R             messages/s: publish styles run open loop at R in all\n"
    "                           (default: closed loop, as fast as answers come); the\n"
    "                           delivery publisher's rate (default 1000)\n"
    "      --styles LIST        comma-separated styles to run (default: all)\n"
    "      --json               the results as one JSON document\n"
    "      --csv                the results as CSV: a header, a row per style and run\n"
    "      --svg FILE           also draw throughput and p50/p99 latency to FILE\n"
    "      --timeout S          for connects, setup, and answers at the end (10)\n"
    "  -h, --help               this text\n"
    "      --version            gwbench's version\n"
    "\n"
    "Against a running gateway, each style publishes on a channel of its own,\n"
    "gwbench-<run id>-<style>; they stay there (the gateway cannot delete a channel\n"
    "yet). --spawn leaves nothing behind.\n"
    "\n"
    "Exit status: 0 every style ran; 1 a style failed (the table says which and why)\n"
    "or an output could not be written; 2 a bad command line; 3 the gateway could\n"
    "not be reached.\n";

static void usage(void)
{
    fputs(usage_head, stdout);
    for (size_t i = 0; i < gwbench_nstyles; i++)
        printf("  %-15s %s%s\n", gwbench_styles[i].name,
               gwbench_styles[i].kind == STYLE_DELIVERY    ? "delivery: "
               : gwbench_styles[i].kind == STYLE_ROUNDTRIP ? "round trip: "
                                                           : "",
               gwbench_styles[i].help);
    fputs(usage_tail, stdout);
}

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

    memset(o->run, 0, gwbench_nstyles * sizeof(*o->run));
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
                struct buf names = BUF_INIT;
                int rc;
                for (size_t i = 0; i < gwbench_nstyles; i++)
                    buf_appendf(&names, "%s%s", i ? ", " : "", gwbench_styles[i].name);
                rc = usage_error("--styles: unknown style '%.*s' (styles: %s)", (int)len, p,
                                 names.data);
                buf_release(&names);
                return rc;
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

/*
 * An output file (--svg) is written after the whole run: whether it can be
 * is checked now, so that a mistyped folder costs no benchmark. The file
 * itself is not made yet (a run that fails leaves none behind).
 */
static int check_output(const char *opt, const char *path)
{
    char dir[4096];
    const char *slash = strrchr(path, '/');
    struct stat st;

    if (!*path)
        return usage_error("%s: an empty file name", opt);
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            return usage_error("%s %s: is a directory, not a file", opt, path);
        if (access(path, W_OK) != 0)
            return usage_error("%s %s: cannot write it: %s", opt, path, strerror(errno));
        return GWBENCH_EXIT_OK;
    }
    if (errno != ENOENT)
        return usage_error("%s %s: %s", opt, path, strerror(errno));
    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == path)
        snprintf(dir, sizeof(dir), "/");
    else if ((size_t)(slash - path) >= sizeof(dir))
        return usage_error("%s: the folder's name is too long", opt);
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - path), path);
    if (stat(dir, &st) != 0)
        return usage_error("%s %s: cannot create it: the folder %s: %s", opt, path, dir,
                           strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return usage_error("%s %s: cannot create it: %s is not a folder", opt, path, dir);
    if (access(dir, W_OK | X_OK) != 0)
        return usage_error("%s %s: cannot create it in %s: %s", opt, path, dir, strerror(errno));
    return GWBENCH_EXIT_OK;
}

enum {
    OPT_HTTP = 256,
    OPT_TCP,
    OPT_UDP,
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
        {"udp", required_argument, NULL, OPT_UDP},
        {"spawn", required_argument, NULL, OPT_SPAWN},
        {"connections", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"messages", required_argument, NULL, 'n'},
        {"runs", required_argument, NULL, 'r'},
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
    bool has_duration = false, http_given = false, tcp_given = false, udp_given = false;
    int opt, port, rc;

    *done = false;
    opterr = 0;
    o->connections = DEFAULT_CONNECTIONS;
    o->duration_s = DEFAULT_DURATION_S;
    o->size = DEFAULT_SIZE;
    o->window = DEFAULT_WINDOW;
    o->poll_ms = DEFAULT_POLL_MS;
    o->timeout_s = DEFAULT_TIMEOUT_S;
    o->runs = 1;
    for (size_t i = 0; i < gwbench_nstyles; i++)
        o->run[i] = true;
    env = getenv("VISAVIS_HTTP_ADDR");
    o->http.text = env && *env ? env : GWBENCH_DEFAULT_HTTP;
    env = getenv("VISAVIS_TCP_ADDR");
    o->tcp.text = env && *env ? env : GWBENCH_DEFAULT_TCP;
    env = getenv("VISAVIS_UDP_ADDR");
    o->udp.text = env && *env ? env : GWBENCH_DEFAULT_UDP;

    while ((opt = getopt_long(argc, argv, ":c:d:n:r:s:w:h", longopts, NULL)) != -1) {
        switch (opt) {
        case OPT_HTTP:
            o->http.text = optarg;
            http_given = true;
            break;
        case OPT_TCP:
            o->tcp.text = optarg;
            tcp_given = true;
            break;
        case OPT_UDP:
            o->udp.text = optarg;
            udp_given = true;
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
        case 'r':
            if (!parse_long(optarg, 1, RUNS_MAX, &o->runs))
                return usage_error("--runs '%s': expected 1 to %d", optarg, RUNS_MAX);
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
            usage();
            *done = true;
            return GWBENCH_EXIT_OK;
        case OPT_VERSION:
            printf("gwbench (visavis %s), protocol %s version %d, REST API v1\n", VISAVIS_VERSION,
                   PROTO_PROTOCOL, PROTO_VERSION);
            *done = true;
            return GWBENCH_EXIT_OK;
        case ':':
            return usage_error("%s needs a value", argv[optind - 1]);
        default:
            return usage_error("unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return usage_error("unexpected argument '%s' (addresses go with --http, --tcp and --udp)",
                           argv[optind]);
    if (has_duration && o->messages)
        return usage_error("--duration and --messages do not go together");
    if (*spawn && (http_given || tcp_given || udp_given))
        return usage_error("--spawn chooses the addresses: no --http, --tcp or --udp with it");
    if (o->svg && (rc = check_output("--svg", o->svg)) != GWBENCH_EXIT_OK)
        return rc;
    if (!*spawn) {
        if (net_split_hostport(o->http.text, host, &port, err) < 0)
            return usage_error("--http %s", err);
        if (port == 0)
            return usage_error("--http '%s': port 0 names no server", o->http.text);
        if (net_split_hostport(o->tcp.text, host, &port, err) < 0)
            return usage_error("--tcp %s", err);
        if (port == 0)
            return usage_error("--tcp '%s': port 0 names no server", o->tcp.text);
        if (net_split_hostport(o->udp.text, host, &port, err) < 0)
            return usage_error("--udp %s", err);
        if (port == 0)
            return usage_error("--udp '%s': port 0 names no server", o->udp.text);
    }
    o->deliver_rate = o->rate > 0 ? o->rate : DEFAULT_DELIVER_RATE;
    return GWBENCH_EXIT_OK;
}

/* ---- where and when ---- */

/* The run's id: 8 hex digits, so that its channels are told from any other run's. */
static void make_run_id(struct gwbench_opts *o)
{
    uint32_t r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (uint32_t)client_now_ns() ^ ((uint32_t)getpid() << 16);
    snprintf(o->run_id, sizeof(o->run_id), "%08x", (unsigned)r);
}

/* What the numbers depend on besides the gateway: CPUs, kernel, load, date. */
static void describe_machine(struct gwbench_opts *o)
{
    struct utsname u;
    double load = -1;
    FILE *f = fopen("/proc/loadavg", "r");
    time_t now = time(NULL);
    struct tm tm;

    if (f) {
        if (fscanf(f, "%lf", &load) != 1)
            load = -1;
        fclose(f);
    }
    if (uname(&u) != 0) {
        strcpy(u.sysname, "?");
        strcpy(u.release, "?");
        strcpy(u.machine, "?");
    }
    /* Cut if need be (the return value is checked, which says so to the compiler too). */
    if (snprintf(o->machine, sizeof(o->machine), "%ld CPUs, %s %s %s, load %.2f at the start",
                 sysconf(_SC_NPROCESSORS_ONLN), u.sysname, u.release, u.machine,
                 load) >= (int)sizeof(o->machine))
        o->machine[sizeof(o->machine) - 1] = '\0';
    gmtime_r(&now, &tm);
    strftime(o->started, sizeof(o->started), "%Y-%m-%d %H:%M UTC", &tm);
}

/* ---- the gateway: there, and a visavis gateway ---- */

/* Resolves a front once, saying clearly why it cannot be reached. */
static int reach(struct client_addr *a, const char *front, int timeout_ms)
{
    char err[GW_ERRLEN];

    if (client_addr_resolve(a, a->text, timeout_ms, err) < 0) {
        gwbench_status("%s (the %s)", err, front);
        return -1;
    }
    return 0;
}

/* GET /healthz must answer 200. */
static int check_rest(const struct gwbench_opts *o, bool quiet)
{
    struct buf body = BUF_INIT;
    char err[GW_ERRLEN];
    int status, rc = -1;

    if (fetch_get(&o->http, "/healthz", o->timeout_s, &status, &body, err) < 0)
        goto out;
    if (status != 200) {
        snprintf(err, sizeof(err), "GET /healthz answered %d", status);
        goto out;
    }
    rc = 0;
out:
    if (rc < 0 && !quiet)
        gwbench_status("%s does not answer as a visavis REST front (--http): %s", o->http.text,
                       err);
    buf_release(&body);
    return rc;
}

/* The session front greets with {"type":"hello","protocol":"visavis",...}. */
static int check_tcp(const struct gwbench_opts *o, bool quiet)
{
    struct client_conn c;
    struct server_line l;
    char err[GW_ERRLEN], *line = NULL;
    size_t len = 0;
    /* The greeting comes at once; a server that says nothing first (HTTP) should not take long. */
    double wait_s = o->timeout_s < HELLO_WAIT_S ? o->timeout_s : HELLO_WAIT_S;
    int64_t deadline = client_now_ns() + (int64_t)(wait_s * 1e9);
    enum client_line got;
    int rc = -1;

    client_conn_init(&c, NULL);
    c.line_max = 65536; /* a greeting is short: anything else is not a visavis gateway */
    if (client_conn_start(&c, &o->tcp, err) < 0)
        goto out;
    while ((got = client_conn_line(&c, &line, &len)) != CLIENT_LINE) {
        if (got == CLIENT_TOO_LONG) {
            snprintf(err, sizeof(err), "no greeting line");
            goto out;
        }
        if (c.eof) {
            snprintf(err, sizeof(err), "the connection closed before a greeting");
            goto out;
        }
        if (client_conn_wait(&c, deadline, NULL, err) < 0) {
            if (!*o->stop && client_now_ns() >= deadline)
                snprintf(err, sizeof(err), "no greeting line within %g s", wait_s);
            goto out;
        }
    }
    server_line_parse(&l, line, len);
    rc = l.type == SL_HELLO && sl_text_is(l.protocol, PROTO_PROTOCOL) ? 0 : -1;
    server_line_release(&l);
    if (rc < 0) {
        char shown[96];
        snprintf(err, sizeof(err), "its first line is not a visavis hello: %s",
                 client_text_shown(line, len, shown, sizeof(shown)));
    }
out:
    if (rc < 0 && !quiet)
        gwbench_status("%s does not answer as a visavis session front (--tcp): %s", o->tcp.text,
                       err);
    client_conn_release(&c);
    return rc;
}

/*
 * The open files the chosen styles need at most: a connection per client
 * (rest-close two: the next one opens while the last one's close is
 * awaited), and room for the delivery publisher, the checks, stdio and the
 * chart.
 */
static long files_needed(const struct gwbench_opts *o)
{
    long per_client = 1;

    for (size_t i = 0; i < gwbench_nstyles; i++) {
        if (o->run[i] && gwbench_styles[i].role == ROLE_REST_CLOSE)
            per_client = 2;
    }
    return o->connections * per_client + 64;
}

/*
 * Raises the soft limit on open files to what the run needs, as far as the
 * hard limit lets it. 0, or -1 with the limit in *have when it cannot be
 * raised that far (the run would fail to open its connections midway).
 */
static int raise_nofile(long need, long *have)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
        rl.rlim_cur >= (rlim_t)need)
        return 0;
    rl.rlim_cur =
        rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= (rlim_t)need ? (rlim_t)need : rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return 0;
    if (rl.rlim_cur >= (rlim_t)need)
        return 0;
    *have = (long)rl.rlim_cur;
    return -1;
}

/* The UDP front answers a PING with a pong (a datagram may be lost: it is sent again). */
static int check_udp(struct gwbench_opts *o)
{
    char err[GW_ERRLEN];

    if (udp_resolve(&o->udp, err) < 0) {
        gwbench_status("%s (the UDP front; choose it with --udp)", err);
        return -1;
    }
    if (udp_check(&o->udp, o->timeout_s < HELLO_WAIT_S ? o->timeout_s : HELLO_WAIT_S, err) < 0) {
        gwbench_status("%s does not answer as a visavis UDP front (--udp): %s", o->udp.text, err);
        return -1;
    }
    return 0;
}

/* The fronts the chosen styles need: reached and answering as visavis. */
static int check_gateway(struct gwbench_opts *o)
{
    bool http = false, tcp = false, udp = false;
    int timeout_ms = (int)(o->timeout_s * 1000);

    for (size_t i = 0; i < gwbench_nstyles; i++) {
        if (!o->run[i])
            continue;
        http = http || gwbench_styles[i].http;
        tcp = tcp || gwbench_styles[i].tcp;
        udp = udp || gwbench_styles[i].udp;
    }
    if (udp && !o->udp.text[0]) {
        gwbench_status("the gateway has no UDP front (its READY line has no udp=): leave the "
                       "udp styles out with --styles");
        return -1;
    }
    if (http && (reach(&o->http, "REST front; choose it with --http", timeout_ms) < 0 ||
                 check_rest(o, false) < 0))
        return -1;
    if (tcp && (reach(&o->tcp, "session front; choose it with --tcp", timeout_ms) < 0 ||
                check_tcp(o, false) < 0))
        return -1;
    if (udp && check_udp(o) < 0)
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
    if (*o->stop)
        return true;
    if (o->http.len && check_rest(o, true) < 0)
        return true;
    return o->tcp.len && check_tcp(o, true) < 0;
}

/* ---- main ---- */

/* gwbench-<run id>-<style>, and -r<k>- before the style when there are runs to tell apart. */
static void channel_of(const struct gwbench_opts *o, size_t style, long run, char *out, size_t len)
{
    if (o->runs > 1)
        snprintf(out, len, "%s%s-r%ld-%s", GWBENCH_CHANNEL_PREFIX, o->run_id, run + 1,
                 gwbench_styles[style].name);
    else
        snprintf(out, len, "%s%s-%s", GWBENCH_CHANNEL_PREFIX, o->run_id,
                 gwbench_styles[style].name);
}

/* Runs every chosen style o->runs times into res (runs x n). Returns 0, or -1 if any failed. */
static int run_all(struct gwbench_opts *o, struct style_result *res)
{
    size_t n = gwbench_nstyles;
    int count = 0, rc = 0;
    bool gone = false;

    for (size_t i = 0; i < n; i++)
        count += o->run[i] ? (int)o->runs : 0;
    gwbench_progress_begin(o, count);
    for (long k = 0; k < o->runs && !gone; k++) {
        for (size_t i = 0; i < n && !gone; i++) {
            struct style_result *r = &res[(size_t)k * n + i];
            char channel[64];

            r->id = i;
            if (!o->run[i])
                continue;
            gwbench_progress_next();
            channel_of(o, i, k, channel, sizeof(channel));
            if (gwbench_style_run(o, i, channel, r) == 0)
                continue;
            rc = -1;
            gwbench_status("%s failed%s: %s", gwbench_styles[i].name,
                           o->runs > 1 ? " in a run" : "", r->error);
            if (gateway_gone(o)) {
                gone = true;
                if (!*o->stop)
                    gwbench_status("the gateway does not answer any more: the styles after %s "
                                   "were not run",
                                   gwbench_styles[i].name);
            }
        }
    }
    gwbench_progress_end();
    return rc;
}

int main(int argc, char **argv)
{
    struct gwbench_opts o;
    struct style_result *res = NULL;
    struct style_summary *sum = NULL;
    struct spawned sp;
    const char *spawn = NULL;
    char err[GW_ERRLEN];
    bool done, failed = false;
    int rc;

    memset(&o, 0, sizeof(o));
    memset(&sp, 0, sizeof(sp));
    sp.pid = -1;
    o.run = gw_xcalloc(gwbench_nstyles, sizeof(*o.run));
    o.stop = &stop_signal;
    rc = parse_args(argc, argv, &o, &spawn, &done);
    if (rc != GWBENCH_EXIT_OK || done) {
        free(o.run);
        return rc;
    }
    {
        long need = files_needed(&o), have = 0;
        if (raise_nofile(need, &have) < 0) {
            free(o.run);
            return usage_error(
                "--connections %ld: the chosen styles need up to %ld open files, and "
                "this process may open %ld (RLIMIT_NOFILE, its hard limit): lower "
                "--connections, or raise the limit (ulimit -n)",
                o.connections, need, have);
        }
    }
    signals_init();
    o.progress = isatty(STDERR_FILENO);
    make_run_id(&o);
    describe_machine(&o);

    if (spawn) {
        if (spawn_gateway(spawn, &o, &sp) < 0) {
            spawn_stop(&sp);
            free(o.run);
            return GWBENCH_EXIT_CONNECT;
        }
        o.http.text = sp.http;
        o.tcp.text = sp.tcp;
        o.udp.text = sp.udp;
        o.spawned = true;
    }
    if (check_gateway(&o) < 0) {
        spawn_stop(&sp);
        free(o.run);
        return GWBENCH_EXIT_CONNECT;
    }
    if (!o.spawned)
        gwbench_status("this run's channels: %s%s-*", GWBENCH_CHANNEL_PREFIX, o.run_id);

    res = gw_xcalloc((size_t)o.runs * gwbench_nstyles, sizeof(*res));
    sum = gw_xcalloc(gwbench_nstyles, sizeof(*sum));
    if (run_all(&o, res) < 0)
        failed = true;
    out_summarize(res, gwbench_nstyles, (size_t)o.runs, sum);
    if (out_report(&o, sum, gwbench_nstyles, res, (size_t)o.runs) < 0)
        failed = true;
    if (o.svg && out_svg(&o, sum, gwbench_nstyles, o.svg, err) < 0) {
        gwbench_status("--svg: %s", err);
        failed = true;
    }
    spawn_stop(&sp);
    free(res);
    free(sum);
    free(o.run);
    return failed ? GWBENCH_EXIT_FAILED : GWBENCH_EXIT_OK;
}
