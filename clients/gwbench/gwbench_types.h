/*
 * gwbench_types.h - the types gwbench's parts share: the options, one
 * style's result in one run, the exit codes. Types only, no functions, so
 * that every part can include it and none depends on main (gwbench.c).
 *
 * gwbench (docs/comparison.md) runs one workload against a running gateway
 * over every interaction style and prints one table. Its parts:
 *   gwbench.c           main: the options, the gateway checks, the runs, the exit status
 *   gwbench_styles.c    the table of styles, and the workloads that play them
 *   gwbench_spawn.c     --spawn: a gateway of its own for the run
 *   gwbench_cols.c      the columns, the median and spread of the runs, the winners
 *   gwbench_out.c       the table, the CSV and the SVG chart
 *   gwbench_json.c      the --json report
 *   gwbench_progress.c  progress and messages on stderr
 *   gwbench_fetch.c     one GET waited for, around a run (checks, read-back)
 *   gwbench_udp.c       datagrams: PING, pong tokens, the gateway's drop counters
 * The connections, HTTP, event streams, WebSocket framing, the reading of
 * the gateway's lines and the histograms are common/'s (client_conn,
 * client_http, client_sse, client_ws, server_line, hist). It talks to the
 * gateway only through its public protocols, never through its code.
 */
#ifndef GWBENCH_TYPES_H
#define GWBENCH_TYPES_H

#include "client_conn.h"
#include "gw.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GWBENCH_DEFAULT_HTTP   "127.0.0.1:8080"
#define GWBENCH_DEFAULT_TCP    "127.0.0.1:12345"
#define GWBENCH_DEFAULT_UDP    "127.0.0.1:12345"
/* What every channel gwbench makes starts with, then the run's id. */
#define GWBENCH_CHANNEL_PREFIX "gwbench-"

enum gwbench_exit {
    GWBENCH_EXIT_OK = 0,
    GWBENCH_EXIT_FAILED = 1,  /* a style failed mid-run, an output could not be written */
    GWBENCH_EXIT_USAGE = 2,   /* bad command line */
    GWBENCH_EXIT_CONNECT = 3, /* the gateway could not be reached (or started) */
};

struct gwbench_opts {
    struct client_addr http, tcp; /* the two fronts, resolved once at the start */
    struct client_addr udp;       /* the UDP front, resolved once (no connect: datagrams) */
    long connections;             /* clients per style (receivers for delivery styles) */
    double duration_s;            /* per style, when messages == 0 */
    long messages;                /* per style: publishes to complete; 0: run for duration_s */
    long size;                    /* message body bytes */
    long window;                  /* pipelined styles: PUBs in flight per session */
    long poll_ms;                 /* polling styles without a wait: the interval */
    double rate;                  /* msgs/s; 0: publish styles run closed-loop */
    double deliver_rate;          /* the delivery styles' publisher: rate, or the default */
    double timeout_s;             /* connects, setup, and the drain at the end of a style */
    long runs;                    /* every style this many times (--runs) */
    bool *run;                    /* per style (gwbench_styles[]): run it */
    enum { OUT_TABLE, OUT_JSON, OUT_CSV } format;
    const char *svg;   /* NULL: no chart */
    bool progress;     /* stderr is a terminal */
    bool spawned;      /* the gateway is gwbench's own (--spawn): its channels go with it */
    char run_id[16];   /* this invocation's: in every channel name, gwbench-<run_id>-... */
    char machine[160]; /* where the numbers come from: CPUs, kernel, load */
    char started[32];  /* when, UTC */
    volatile sig_atomic_t
        *stop; /* set by SIGINT/SIGTERM: the style running fails, no other starts */
};

/* Latencies in µs, as the table shows them; all 0 when there was no sample. */
struct lat_summary {
    uint64_t n;
    double p50_us, p90_us, p99_us, max_us;
};

/* One style's outcome in one run; everything is zero when it did not run. */
struct style_result {
    size_t id; /* in gwbench_styles[] */
    bool ran;
    bool failed;
    char error[GW_ERRLEN * 2 + 64]; /* when failed: what went wrong, for a person */
    char channel[64];               /* the channel it used */
    uint64_t messages;  /* acks (publish styles; stored, for udp), pongs, or deliveries */
    uint64_t sent;      /* publish and round-trip styles: requests sent (datagrams, for udp) */
    uint64_t lost;      /* of those, never answered (udp-ping) or never stored (udp) */
    char drops[160];    /* udp: the gateway's drops during the run, by reason ("rate 12, ...") */
    uint64_t published; /* delivery styles: messages the publisher sent */
    double seconds;     /* from the first intended send to the last completion */
    double msgs_per_s;
    double offered_per_s; /* delivery styles: the publisher's schedule, per receiver */
    double got_share;     /* delivery styles: the share of that rate the receivers kept up with */
    struct lat_summary lat;
    bool lat_corrected; /* closed loop: corrected for coordinated omission */
    uint64_t backlog;   /* open loop: requests due but not sent when time was up */
    uint64_t bytes_in, bytes_out, connections;
    uint64_t polls, empty_polls;
    uint64_t early_empty; /* long-polls: empty answers long before the wait ended */
};

#endif
