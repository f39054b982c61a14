/*
 * gwbench.h - what gwbench's parts share: the styles it compares, the
 * options, one style's result, the exit codes and the clock.
 *
 * gwbench (docs/comparison.md) runs one workload against a running gateway
 * over every interaction style and prints one table. gwbench.c holds main,
 * the options and the order of the run; gwbench_styles.c the workloads;
 * gwbench_out.c the table, CSV and SVG; gwbench_json.c everything JSON. The
 * sockets are gwbench_conn.c, HTTP framing gwbench_http.c, latency
 * statistics gwbench_lat.c. Depends on common/ and libc; it talks to the
 * gateway only through its two public protocols, never through its code.
 */
#ifndef GWBENCH_H
#define GWBENCH_H

#include "gw.h"
#include "gwbench_lat.h"
#include "model.h"

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#define GWBENCH_DEFAULT_HTTP "127.0.0.1:8080"
#define GWBENCH_DEFAULT_TCP  "127.0.0.1:12345"

enum gwbench_exit {
    GWBENCH_EXIT_OK = 0,
    GWBENCH_EXIT_FAILED = 1,  /* a style failed mid-run, an output could not be written */
    GWBENCH_EXIT_USAGE = 2,   /* bad command line */
    GWBENCH_EXIT_CONNECT = 3, /* the gateway could not be reached (or started) */
};

/* The styles, in the order they run and are shown. */
enum style_id {
    STYLE_REST_CLOSE,     /* POST, a new TCP connection for each (like curl) */
    STYLE_REST_KEEPALIVE, /* POST on kept-alive connections, one in flight each */
    STYLE_TCP,            /* PUB on sessions, one in flight each */
    STYLE_TCP_PIPELINED,  /* PUB on sessions, --window in flight each */
    STYLE_TCP_PUSH,       /* delivery: SUB, the gateway pushes each message */
    STYLE_REST_LONGPOLL,  /* delivery: GET ...&wait=S, held until a message commits */
    STYLE_REST_POLL,      /* delivery: GET every --poll-interval */
    STYLE__COUNT
};

struct style_info {
    const char *name;
    bool delivery; /* latency is publish -> received, not publish -> ack */
    bool polls;    /* counts empty polls */
    bool http;     /* needs the REST front (delivery styles also use the TCP publisher) */
    bool tcp;      /* needs the session front */
};

extern const struct style_info gwbench_styles[STYLE__COUNT];

/* The style named (name, len), or -1. */
int gwbench_style_find(const char *name, size_t len);

/* One front of the gateway, checked and resolved once at the start. */
struct gwbench_addr {
    const char *text; /* "host:port" as given: the Host header, messages */
    struct sockaddr_storage ss;
    socklen_t len;
};

struct gwbench_opts {
    struct gwbench_addr http, tcp;
    long connections;    /* clients per style (receivers for delivery styles) */
    double duration_s;   /* per style, when messages == 0 */
    long messages;       /* per style: publishes to complete; 0: run for duration_s */
    long size;           /* message body bytes */
    long window;         /* tcp-pipelined: PUBs in flight per session */
    long poll_ms;        /* rest-poll: interval */
    double rate;         /* msgs/s; 0: publish styles run closed-loop */
    double deliver_rate; /* the delivery styles' publisher: rate, or the default */
    double timeout_s;    /* connects, setup, and the drain at the end of a style */
    bool run[STYLE__COUNT];
    enum { OUT_TABLE, OUT_JSON, OUT_CSV } format;
    const char *svg; /* NULL: no chart */
    bool progress;   /* stderr is a terminal */
};

/* How long a long-poll asks the gateway to hold it (docs/api.md: 0-60). */
#define GWBENCH_LONGPOLL_WAIT_S 30
/* Messages per GET page (the API's maximum). */
#define GWBENCH_PAGE_LIMIT      1000

/* One style's outcome; everything but name is zero when it did not run. */
struct style_result {
    enum style_id id;
    bool ran;
    bool failed;
    char error[GW_ERRLEN * 2 + 64]; /* when failed: what went wrong, for a person */
    uint64_t messages;              /* acks (publish styles) or deliveries (delivery styles) */
    uint64_t published;             /* delivery styles: messages the publisher sent */
    double seconds;                 /* from the first intended send to the last completion */
    double msgs_per_s;
    struct lat_summary lat; /* µs */
    bool lat_corrected;     /* closed loop: corrected for coordinated omission */
    uint64_t backlog;       /* open loop: requests due but not sent when time was up */
    uint64_t bytes_in, bytes_out, connections;
    uint64_t polls, empty_polls;
    uint64_t early_empty; /* rest-longpoll: empty answers long before the wait ended */
};

/* Set by SIGINT/SIGTERM: the style running stops and fails, no other starts. */
extern volatile sig_atomic_t gwbench_stop;

/* CLOCK_MONOTONIC in nanoseconds. */
int64_t gwbench_now_ns(void);

/* "gwbench: <message>" on stderr (after erasing a progress line). */
void gwbench_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Progress on stderr, for a terminal only (opts->progress): the style that
 * runs, seconds, and messages so far. Called often; draws at most every
 * 200 ms, and only once the whole run has taken over 2 s or is expected to.
 * gwbench_progress_end erases the line.
 */
void gwbench_progress(const struct gwbench_opts *o, enum style_id id, int64_t t_start_ns,
                      uint64_t done, uint64_t total);
void gwbench_progress_end(void);

/*
 * Runs one style against the gateway (gwbench_styles.c) and fills *res.
 * Returns 0, or -1 when the style failed (res->failed, res->error set). The
 * channel is gwbench-<style>-<pid>-<nonce>, fresh for each style and run.
 */
int gwbench_style_run(const struct gwbench_opts *o, enum style_id id, struct style_result *res);

#endif
