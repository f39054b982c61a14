/*
 * main.c - builds every module in dependency order, runs the loop, and on
 * SIGTERM/SIGINT/SIGQUIT stops the way DESIGN.md promises: stop accepting,
 * finish requests and queued commits, close the database cleanly, exit 0.
 * SIGHUP, SIGUSR1 and SIGUSR2 are logged and ignored (README.md, "Signals").
 *
 * No logic of its own beyond that order.
 */
#include "config.h"
#include "core.h"
#include "front_http.h"
#include "front_sio.h"
#include "front_tcp.h"
#include "front_sse.h"
#include "front_ws.h"
#include "front_udp.h"
#include "input_budget.h"
#include "log.h"
#include "loop.h"
#include "mem_trim.h"
#include "metrics.h"
#include "net.h"
#include "reader.h"
#include "session.h"
#include "store.h"
#include "workq.h"
#include "writer.h"

#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

/* Requests and commits under way get this long after SIGTERM (the promise is 5 s). */
#define STOP_GRACE_MS 4000

/*
 * Descriptors the gateway needs besides one per connection: stdio, the
 * listeners, epoll, eventfds, signalfd, the database and its WAL files,
 * and connections closed to make room but not yet reaped.
 */
#define FD_RESERVE 128

/* The loop's time for read results per turn: pages are encoded there, a megabyte each. */
#define READ_COMPLETE_BUDGET_US 2000
/* How often subscriptions waiting for an unavailable database try again. */
#define STALL_RETRY_MS          1000
/*
 * Reads one wake-up of the reader takes: their pages come back together, so
 * a batch's bytes (each read weighs the most it may read) are what a client
 * whose turn is next waits for.
 */
#define READER_BATCH_MAX        64
#define READER_BATCH_BYTES      (4u * 1024u * 1024u)

/*
 * How often malloc's free memory is looked at, and how much of it is kept
 * for the next burst: a commit batch's churn is far less, so steady load
 * is never trimmed for it (mem_trim.h).
 */
#define TRIM_PERIOD_MS 5000
#define TRIM_KEEP      ((size_t)16 << 20)

struct gateway {
    struct gw_config cfg;
    struct loop *loop;
    struct store *wstore, *rstore;
    struct store_feed *feed; /* other gateways' commits (PostgreSQL), or NULL */
    struct writer *writer;
    struct workq *reader;
    struct core *core;
    struct sessions *sessions;
    struct front_http *http;
    struct front_tcp *tcp;
    struct front_ws *ws;
    struct front_sse *sse;
    struct front_udp *udp; /* NULL when UDP is off */
    struct front_sio *sio;
    struct input_budget inputs; /* --max-input-memory, shared by the fronts that read input */
    struct mem_trim *trim;
    int sigfd;
    uint64_t stop_deadline_ms; /* 0 while running */
    uint64_t stall_retry_ms;   /* when subscriptions waiting for the store try again */
};

static const char *env_lookup(const char *name)
{
    return getenv(name);
}

/* The WebSocket hand-off: front_http's upgrades go to front_ws, which it never calls itself. */
static bool ws_room(void *ctx, const char *peer)
{
    struct gateway *gw = ctx;
    return gw->ws && front_ws_has_room(gw->ws, peer);
}

static void ws_adopt(void *ctx, int fd, const char *head, size_t len, const char *protocol)
{
    struct gateway *gw = ctx;
    front_ws_adopt(gw->ws, fd, head, len, protocol);
}

/* The event streams' hand-off: judged by front_http, served by front_sse. */
static bool sse_room(void *ctx, const char *peer)
{
    struct gateway *gw = ctx;
    return gw->sse && front_sse_has_room(gw->sse, peer);
}

static void sse_adopt(void *ctx, int fd, bool http11, const char *sub, size_t len)
{
    struct gateway *gw = ctx;
    front_sse_adopt(gw->sse, fd, http11, sub, len);
}

/* The Socket.IO hand-off: /socket.io/ requests and upgrades go to front_sio. */
static bool sio_poll(void *ctx, struct sio_poll *p)
{
    struct gateway *gw = ctx;
    return front_sio_poll(gw->sio, p);
}

static void sio_cancel(void *ctx, struct sio_poll *p)
{
    struct gateway *gw = ctx;
    front_sio_cancel(gw->sio, p);
}

static bool sio_answer_now(void *ctx, struct sio_poll *p)
{
    struct gateway *gw = ctx;
    return front_sio_answer_now(gw->sio, p);
}

static bool sio_owed(void *ctx)
{
    struct gateway *gw = ctx;
    return front_sio_polls_owed(gw->sio);
}

static void sio_lost(void *ctx, const char *sid, const char *why)
{
    struct gateway *gw = ctx;
    front_sio_lost(gw->sio, sid, why);
}

static void sio_adopt(void *ctx, int fd, const char *head, size_t len, const char *sid)
{
    struct gateway *gw = ctx;
    front_sio_adopt(gw->sio, fd, head, len, sid);
}

static void on_writer_done(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct gateway *gw = ctx;
    (void)loop;
    (void)fd;
    (void)events;
    writer_complete(gw->writer);
}

static void on_reader_done(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct gateway *gw = ctx;
    (void)loop;
    (void)fd;
    (void)events;
    workq_complete_for(gw->reader, READ_COMPLETE_BUDGET_US);
}

/*
 * The writer is woken at most twice a turn (before and after the other
 * hooks), with all the publishes submitted so far: a group commit as large
 * as the turn, one wake-up instead of one per request. The reader is woken
 * at once: a page read on the other CPU while the loop goes on is worth more
 * than a larger batch (held too, reads on two CPUs went 43k/s -> 36k/s).
 */
static int wake_writer(struct loop *loop, void *ctx)
{
    struct gateway *gw = ctx;
    (void)loop;
    writer_wake(gw->writer);
    return -1;
}

static void on_moved(void *ctx, const char *channel, int64_t top)
{
    struct gateway *gw = ctx;
    core_channel_notice(gw->core, channel, top);
}

static void on_feed(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct gateway *gw = ctx;
    (void)loop;
    (void)fd;
    (void)events;
    if (store_feed_drain(gw->feed, on_moved, gw))
        core_recheck(gw->core);
}

static void on_signal(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct gateway *gw = ctx;
    struct signalfd_siginfo si;

    (void)events;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return;
    if (si.ssi_signo == SIGHUP || si.ssi_signo == SIGUSR1 || si.ssi_signo == SIGUSR2) {
        /* A terminal closing, a supervisor's nudge: no reason to drop work. */
        log_info("%s (from pid %u): ignored", strsignal((int)si.ssi_signo), si.ssi_pid);
        return;
    }
    if (gw->stop_deadline_ms) {
        log_warn("second signal %s: stopping now", strsignal((int)si.ssi_signo));
        loop_stop(loop);
        return;
    }
    log_info("%s: stopping (no new connections; finishing %zu requests and %zu sessions)",
             strsignal((int)si.ssi_signo), front_http_in_flight(gw->http),
             sessions_count(gw->sessions));
    gw->stop_deadline_ms = loop_now_ms() + STOP_GRACE_MS;
    /*
     * A commit or a read waiting on a lock, or on a database server that
     * does not answer, fails now instead of holding up the stop.
     */
    store_stop_waiting(gw->wstore);
    store_stop_waiting(gw->rstore);
    front_http_quiesce(gw->http);
    front_tcp_quiesce(gw->tcp);
    front_ws_quiesce(gw->ws);
    front_sse_quiesce(gw->sse);
    front_udp_quiesce(gw->udp);
    front_sio_quiesce(gw->sio);
    sessions_quiesce(gw->sessions);
}

/*
 * Subscriptions that found the database unavailable read again every
 * STALL_RETRY_MS, for a database that came back while nothing else asked it.
 */
static int retry_stalled(struct loop *loop, void *ctx)
{
    struct gateway *gw = ctx;
    uint64_t now;

    (void)loop;
    if (!core_stalled(gw->core))
        return -1;
    now = loop_now_ms();
    if (now >= gw->stall_retry_ms) {
        core_retry_stalled(gw->core);
        gw->stall_retry_ms = now + STALL_RETRY_MS;
    }
    return (int)(gw->stall_retry_ms - now);
}

/* Clients' reads the store has not answered by their deadline are answered busy. */
static int expire_reads(struct loop *loop, void *ctx)
{
    struct gateway *gw = ctx;

    (void)loop;
    return core_expire_reads(gw->core);
}

/* While stopping: ends the loop once nothing is under way, or at the deadline. */
static int stop_when_idle(struct loop *loop, void *ctx)
{
    struct gateway *gw = ctx;
    uint64_t now;

    if (!gw->stop_deadline_ms)
        return -1;
    now = loop_now_ms();
    if ((front_http_in_flight(gw->http) == 0 && sessions_count(gw->sessions) == 0 &&
         front_tcp_lingering(gw->tcp) == 0 && front_ws_lingering(gw->ws) == 0 &&
         front_sse_lingering(gw->sse) == 0 && front_sio_lingering(gw->sio) == 0 &&
         core_pending(gw->core) == 0) ||
        now >= gw->stop_deadline_ms) {
        if (now >= gw->stop_deadline_ms)
            log_warn("stop: grace period over with %zu requests and %zu sessions still open",
                     front_http_in_flight(gw->http), sessions_count(gw->sessions));
        loop_stop(loop);
        return 0;
    }
    return (int)(gw->stop_deadline_ms - now);
}

/* The five connection limits, as fit_fd_limit cuts them. */
struct fd_limit {
    const char *flag;
    unsigned *value;
};

/*
 * Raises the soft RLIMIT_NOFILE to the hard limit. When the connection
 * limits cannot all be open at once, those left at their defaults are cut
 * in proportion to what the ones given leave: every front then reaches its
 * own limit, where its fair share works (a newcomer from another address
 * takes the place of the address holding the most), before the process
 * runs out of descriptors, where nobody new gets in and one address could
 * keep every other out. Limits given are kept as given; past the
 * descriptors the acceptors pause (acceptor.h).
 */
static void fit_fd_limit(struct gw_config *cfg)
{
    struct fd_limit limits[] = {
        {"max-sessions", &cfg->max_sessions},       {"max-ws-sessions", &cfg->max_ws_sessions},
        {"max-sse-streams", &cfg->max_sse_streams}, {"max-sio-sessions", &cfg->max_sio_sessions},
        {"max-connections", &cfg->max_connections},
    };
    unsigned was[GW_ARRAY_SIZE(limits)];
    bool kept[GW_ARRAY_SIZE(limits)]; /* given by flag or environment: never cut */
    unsigned long long need = FD_RESERVE, given = FD_RESERVE, defaulted = 0;
    struct rlimit rl;

    for (size_t i = 0; i < GW_ARRAY_SIZE(limits); i++) {
        was[i] = *limits[i].value;
        need += was[i];
        kept[i] = config_given(cfg, limits[i].flag);
        if (kept[i])
            given += was[i];
        else
            defaulted += was[i];
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return;
    if (rl.rlim_cur != rl.rlim_max) {
        struct rlimit raised = {.rlim_cur = rl.rlim_max, .rlim_max = rl.rlim_max};
        if (setrlimit(RLIMIT_NOFILE, &raised) == 0)
            rl.rlim_cur = rl.rlim_max;
    }
    if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= need)
        return;
    bool cut = defaulted && rl.rlim_cur > given;
    char fitted[256] = "";
    if (cut) {
        unsigned long long room = rl.rlim_cur - given;
        for (size_t i = 0; i < GW_ARRAY_SIZE(limits); i++) {
            if (kept[i])
                continue;
            unsigned long long v = (unsigned long long)was[i] * room / defaulted;
            *limits[i].value = v ? (unsigned)v : 1;
        }
        snprintf(fitted, sizeof(fitted),
                 ": serving at most %u, %u, %u, %u and %u, the defaults cut to fit, so that each "
                 "front meets its own limit first",
                 cfg->max_sessions, cfg->max_ws_sessions, cfg->max_sse_streams,
                 cfg->max_sio_sessions, cfg->max_connections);
    } else {
        snprintf(fitted, sizeof(fitted), ": beyond them new connections wait until others close");
    }
    log_warn("only %llu file descriptors (RLIMIT_NOFILE) for --max-sessions %u + "
             "--max-ws-sessions %u + --max-sse-streams %u + --max-sio-sessions %u + "
             "--max-connections %u + %u for the gateway itself = %llu%s; lower --max-sessions "
             "(VISAVIS_MAX_SESSIONS), --max-ws-sessions (VISAVIS_MAX_WS_SESSIONS), "
             "--max-sse-streams (VISAVIS_MAX_SSE_STREAMS), --max-sio-sessions "
             "(VISAVIS_MAX_SIO_SESSIONS) or --max-connections (VISAVIS_MAX_CONNECTIONS), or "
             "raise the limit (ulimit -n, systemd LimitNOFILE=, docker --ulimit nofile=)",
             (unsigned long long)rl.rlim_cur, was[0], was[1], was[2], was[3], was[4], FD_RESERVE,
             need, fitted);
}

/* A listener that cannot open says which setting chooses its address. */
static int listen_on(const char *addr, const char *flag, const char *env, char why[GW_ERRLEN])
{
    char reason[GW_ERRLEN];
    int fd = net_listen(addr, 1024, reason);

    if (fd < 0)
        snprintf(why, GW_ERRLEN, "%.150s (choose another address with --%s or %s)", reason, flag,
                 env);
    return fd;
}

#if defined(__SANITIZE_ADDRESS__)
#define GW_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define GW_ASAN 1
#endif
#endif

#ifndef GW_ASAN /* ASan's own handler reports a SIGBUS, with a stack */
/* Written by on_sigbus, made before any thread starts. */
static char sigbus_note[512];
static size_t sigbus_note_len;

/*
 * SQLite maps the database's -shm file: another program that truncates it
 * (or the like) makes the next access a SIGBUS, and the process would end
 * without a word. Say what it most likely was, then die of it all the same:
 * nothing can go on safely past it, and what was acknowledged is in the
 * database file and its WAL, for the next start.
 */
static void on_sigbus(int sig)
{
    (void)sig;
    ssize_t n = write(STDERR_FILENO, sigbus_note, sigbus_note_len);
    (void)n;
    /* SA_RESETHAND: returning re-runs the access, which now ends the process. */
}

#endif

static void note_sigbus(const char *db_path)
{
#ifndef GW_ASAN
    struct sigaction sa = {.sa_handler = on_sigbus, .sa_flags = SA_RESETHAND};
    int n = snprintf(sigbus_note, sizeof(sigbus_note),
                     "fatal: SIGBUS: a file the gateway maps was cut short under it, most likely "
                     "the database's shared-memory file %.300s-shm (truncated, or made unwritable, "
                     "by another program, or a disk of small blocks full); stopping. What was "
                     "acknowledged is in the database and "
                     "its WAL: start the gateway again.\n",
                     db_path);
    sigbus_note_len = n < 0                             ? 0
                      : (size_t)n < sizeof(sigbus_note) ? (size_t)n
                                                        : sizeof(sigbus_note) - 1;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGBUS, &sa, NULL);
#else
    (void)db_path;
#endif
}

static int setup_signals(char why[GW_ERRLEN])
{
    sigset_t set;

    signal(SIGPIPE, SIG_IGN);
    /* Past a file size limit a write fails (EFBIG: store_full) instead of killing us. */
    signal(SIGXFSZ, SIG_IGN);
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGUSR2);
    /* Blocked before any thread starts, so only the signalfd ever sees them. */
    if (pthread_sigmask(SIG_BLOCK, &set, NULL) != 0) {
        snprintf(why, GW_ERRLEN, "cannot block signals");
        return -1;
    }
    int fd = signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
    if (fd < 0)
        snprintf(why, GW_ERRLEN, "signalfd: %s", strerror(errno));
    return fd;
}

static int start(struct gateway *gw, char why[GW_ERRLEN])
{
    struct front_http_options hopts = {
        .max_body = gw->cfg.max_body,
        .max_connections = gw->cfg.max_connections,
        .idle_timeout = gw->cfg.http_idle_timeout,
        .header_timeout = gw->cfg.http_header_timeout,
        .body_timeout = gw->cfg.http_body_timeout,
        .body_rate = gw->cfg.http_body_rate,
        .page_bytes = gw->cfg.page_bytes,
        .inputs = &gw->inputs,
        .hosts = gw->cfg.http_hosts,
        .ws = {.room = ws_room, .adopt = ws_adopt, .ctx = gw, .origins = gw->cfg.ws_origins},
        .sse = {.room = sse_room, .adopt = sse_adopt, .ctx = gw},
        .sio = {.poll = sio_poll,
                .cancel = sio_cancel,
                .answer_now = sio_answer_now,
                .lost = sio_lost,
                .owed = sio_owed,
                .adopt = sio_adopt,
                .ctx = gw,
                .max_payload = gw->cfg.max_line},
    };
    struct session_options sopts = {
        .heartbeat = gw->cfg.heartbeat,
        .idle_timeout = gw->cfg.idle_timeout,
        .max_outbuf = gw->cfg.max_outbuf,
        .max_subs = gw->cfg.max_subs,
        .page_bytes = gw->cfg.page_bytes,
    };
    struct front_tcp_options topts = {
        .heartbeat = gw->cfg.heartbeat,
        .max_line = gw->cfg.max_line,
        .max_sessions = gw->cfg.max_sessions,
        .inputs = &gw->inputs,
    };
    struct front_ws_options wopts = {
        .heartbeat = gw->cfg.heartbeat,
        .max_line = gw->cfg.max_line,
        .max_sessions = gw->cfg.max_ws_sessions,
        .inputs = &gw->inputs,
    };
    struct front_sse_options eopts = {
        .heartbeat = gw->cfg.heartbeat,
        .max_streams = gw->cfg.max_sse_streams,
    };
    struct front_sio_options iopts = {
        .ping_interval_ms = gw->cfg.heartbeat * 1000,
        .ping_timeout_ms = gw->cfg.sio_ping_timeout * 1000,
        .max_payload = gw->cfg.max_line,
        .max_sessions = gw->cfg.max_sio_sessions,
        .inputs = &gw->inputs,
    };
    struct core_options copts = {
        .max_body = gw->cfg.max_body,
        .page_bytes = gw->cfg.page_bytes,
        .max_reply_memory = gw->cfg.max_reply_memory,
    };
    struct front_udp_options uopts = {
        .channel = gw->cfg.udp_channel,
        .max_datagram = gw->cfg.max_datagram,
        .rate = gw->cfg.udp_rate,
        .burst = gw->cfg.udp_burst,
    };
    char reason[GW_ERRLEN], db[200], udp_ready[32] = "";
    int http_fd, http_port, tcp_fd, tcp_port, udp_fd = -1, udp_port = 0;
    enum gw_err err;

    if (strcmp(store_backend_name(gw->cfg.db_path), "sqlite") == 0)
        note_sigbus(gw->cfg.db_path);
    if ((gw->sigfd = setup_signals(why)) < 0)
        return -1;
    /*
     * The addresses before the store: a start refused for a port taken (a
     * mistyped one, in a folder without --db) must not leave a new
     * database behind. Connections that come before READY wait in the
     * backlog.
     */
    if ((http_fd = listen_on(gw->cfg.http_addr, "http-addr", "VISAVIS_HTTP_ADDR", why)) < 0)
        return -1;
    http_port = net_local_port(http_fd);
    log_trace("http bind %s (port %d), listen fd %d", gw->cfg.http_addr, http_port, http_fd);
    if ((tcp_fd = listen_on(gw->cfg.tcp_addr, "tcp-addr", "VISAVIS_TCP_ADDR", why)) < 0) {
        close(http_fd);
        return -1;
    }
    tcp_port = net_local_port(tcp_fd);
    log_trace("tcp bind %s (port %d), listen fd %d", gw->cfg.tcp_addr, tcp_port, tcp_fd);
    if (gw->cfg.udp_addr[0]) {
        if ((udp_fd = net_bind_udp(gw->cfg.udp_addr, reason)) < 0) {
            snprintf(why, GW_ERRLEN,
                     "%.150s (choose another address with --udp-addr or "
                     "VISAVIS_UDP_ADDR, or none to turn UDP off)",
                     reason);
            close(http_fd);
            close(tcp_fd);
            return -1;
        }
        udp_port = net_local_port(udp_fd);
        log_trace("udp bind %s (port %d), fd %d", gw->cfg.udp_addr, udp_port, udp_fd);
    }
    store_target_describe(gw->cfg.db_path, db, sizeof(db));
    if ((err = store_open(&gw->wstore, gw->cfg.db_path, STORE_WRITER, gw->cfg.sync_full, reason)) !=
            GW_OK ||
        (err = store_open(&gw->rstore, gw->cfg.db_path, STORE_READER, false, reason)) != GW_OK ||
        (err = store_feed_open(&gw->feed, gw->wstore, reason)) != GW_OK) {
        if (err == GW_E_STORE_IN_USE)
            snprintf(why, GW_ERRLEN,
                     "database %.100s is in use: %.50s; one gateway per database file: "
                     "give this one its own with --db (or VISAVIS_DB)",
                     db, reason);
        else
            snprintf(why, GW_ERRLEN, "database %.100s: %.140s", db, reason);
        return -1;
    }
    if (!(gw->writer = writer_new(gw->wstore, why)) ||
        !(gw->reader = workq_new("visavis-reader", reader_run, gw->rstore, READER_BATCH_MAX,
                                 READER_BATCH_BYTES, why)))
        return -1;
    gw->core = core_new(gw->reader, gw->writer, &copts);
    input_budget_init(&gw->inputs, gw->cfg.max_input_memory, &core_metrics(gw->core)->input_bytes);
    if (!(gw->loop = loop_new(why)))
        return -1;
    loop_measure_busy(gw->loop, &core_metrics(gw->core)->loop_busy_seconds);
    /*
     * First: the publishes the turn's sockets brought are being committed
     * while the session tier's hook writes a fan-out to every subscriber.
     */
    writer_hold_wakes(gw->writer);
    loop_add_hook(gw->loop, wake_writer, gw);
    gw->sessions = sessions_new(gw->core, gw->loop, &sopts);
    hopts.tcp_port = tcp_port;
    if (!(gw->http = front_http_new(gw->core, gw->loop, http_fd, &hopts, why))) {
        close(tcp_fd);
        return -1;
    }
    if (!(gw->tcp = front_tcp_new(gw->sessions, gw->loop, tcp_fd, &topts, why)))
        return -1;
    /* After front_http: its hook runs after libmicrohttpd's, which hands it new sessions. */
    gw->ws = front_ws_new(gw->sessions, gw->loop, &wopts);
    gw->sse = front_sse_new(gw->sessions, gw->loop, &eopts);
    if (udp_fd >= 0) {
        if (!(gw->udp = front_udp_new(gw->sessions, gw->loop, core_metrics(gw->core), udp_fd,
                                      &uopts, why)))
            return -1;
        snprintf(udp_ready, sizeof(udp_ready), " udp=%d", udp_port);
    }
    gw->sio = front_sio_new(gw->sessions, gw->loop, &iopts);
    if (loop_add_fd(gw->loop, writer_fd(gw->writer), LOOP_READ, on_writer_done, gw) < 0 ||
        loop_add_fd(gw->loop, workq_fd(gw->reader), LOOP_READ, on_reader_done, gw) < 0 ||
        loop_add_fd(gw->loop, gw->sigfd, LOOP_READ, on_signal, gw) < 0 ||
        (gw->feed && loop_add_fd(gw->loop, store_feed_fd(gw->feed), LOOP_READ, on_feed, gw) < 0)) {
        snprintf(why, GW_ERRLEN, "cannot watch internal descriptors: %s", strerror(errno));
        return -1;
    }
    loop_add_hook(gw->loop, stop_when_idle, gw);
    gw->trim = mem_trim_start(gw->loop, TRIM_PERIOD_MS, TRIM_KEEP);
    loop_add_hook(gw->loop, retry_stalled, gw);
    loop_add_hook(gw->loop, expire_reads, gw);
    /* And last: after the hooks that submit too (libmicrohttpd's requests run in one). */
    loop_add_hook(gw->loop, wake_writer, gw);

    log_info("visavis %s: http on %s (port %d), tcp on %s (port %d), udp %s%s (port %d), "
             "database %s (schema %d, sync %s)",
             VISAVIS_VERSION, gw->cfg.http_addr, http_port, gw->cfg.tcp_addr, tcp_port,
             gw->udp ? "on " : "off", gw->udp ? gw->cfg.udp_addr : "", udp_port, db,
             store_schema_version(), store_sync_name(gw->wstore, gw->cfg.sync_full));
    /* udp= last, so that parsers of "READY http=<port> tcp=<port>" go on working. */
    printf("READY http=%d tcp=%d%s\n", http_port, tcp_port, udp_ready);
    fflush(stdout);
    return 0;
}

/* Tears down whatever start() built, in reverse; every step takes NULL. */
static void stop(struct gateway *gw)
{
    /* No more notices: what other gateways commit from now on is theirs to push. */
    store_feed_close(gw->feed);
    gw->feed = NULL;
    if (gw->core) {
        /* Whatever is still queued commits or reads, and is answered before connections close. */
        core_begin_shutdown(gw->core);
        if (gw->http)
            front_http_quiesce(gw->http);
        writer_stop(gw->writer);
        writer_complete(gw->writer);
        workq_stop(gw->reader);
        workq_complete(gw->reader);
    }
    front_http_free(gw->http);
    sessions_free(gw->sessions);
    front_tcp_free(gw->tcp);
    front_ws_free(gw->ws);
    front_sse_free(gw->sse);
    /* After the writer's last callbacks: they may still answer datagrams. */
    front_udp_free(gw->udp);
    front_sio_free(gw->sio);
    core_free(gw->core);
    writer_free(gw->writer);
    workq_free(gw->reader);
    store_close(gw->rstore);
    store_close(gw->wstore);
    mem_trim_stop(gw->trim);
    loop_free(gw->loop);
    if (gw->sigfd >= 0)
        close(gw->sigfd);
}

int main(int argc, char **argv)
{
    struct gateway gw = {.sigfd = -1};
    enum config_action action;
    char why[GW_ERRLEN];
    int rc = 0;

    if (config_parse(&gw.cfg, argc, argv, env_lookup, &action, why) != GW_OK) {
        fprintf(stderr, "visavis-gateway: %s\n", why);
        return 2;
    }
    if (action == CONFIG_HELP) {
        config_usage(stdout, "visavis-gateway");
        return 0;
    }
    if (action == CONFIG_VERSION) {
        printf("visavis %s (schema %d)\n", VISAVIS_VERSION, store_schema_version());
        return 0;
    }
    log_set_level(gw.cfg.log_level);
    log_set_trace(gw.cfg.trace);
    /*
     * glibc hands freed memory at the top of a thread's arena back to the
     * kernel past the trim threshold; with the writer thread freeing
     * SQLite's memory after every commit, the default (dynamic) threshold
     * made that an madvise, and a TLB shootdown on every core, per batch.
     * A fixed one keeps what a batch takes (a commit holds 1 MiB of bodies
     * at most, a reader batch 4 MiB of pages) for the next. It is also all
     * a reader or writer arena keeps of a burst: malloc_trim returns the
     * main arena's free memory and its free chunks, never a thread arena's
     * top (mem_trim.h), which only a free past this threshold gives back.
     */
    mallopt(M_TRIM_THRESHOLD, (int)TRIM_KEEP);
    mallopt(M_MMAP_THRESHOLD, 4 * 1024 * 1024);
    fit_fd_limit(&gw.cfg); /* before the fronts take their limits from it */

    if (start(&gw, why) < 0) {
        log_error("cannot start: %s", why);
        rc = 1;
    } else if (loop_run(gw.loop) < 0) {
        log_error("event loop failed: %s", strerror(errno));
        rc = 1;
    }
    stop(&gw);
    if (rc == 0)
        log_info("stopped");
    return rc;
}
