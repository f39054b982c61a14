/*
 * metrics.h - counters, gauges and histograms of what the gateway does, per
 * transport, and their Prometheus text form.
 *
 * Depends on model.h and buf.h. struct metrics is owned by the core and
 * touched by the loop thread only; the writer thread keeps its own
 * struct metrics_commits, read under its lock (writer_stats).
 */
#ifndef GW_METRICS_H
#define GW_METRICS_H

#include "buf.h"
#include "gw.h"
#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A fixed-bucket histogram; bounds are shared by all of one kind. */
#define METRICS_BUCKETS 16
struct metrics_hist {
    const double *bounds;                 /* METRICS_BUCKETS upper bounds, increasing */
    uint64_t counts[METRICS_BUCKETS + 1]; /* the last one is +Inf */
    uint64_t n;
    double sum;
};

/* Bounds for latencies in seconds (100 µs .. 10 s) and for batch sizes (1 .. 32768). */
extern const double metrics_seconds_bounds[METRICS_BUCKETS];
extern const double metrics_size_bounds[METRICS_BUCKETS];

void metrics_hist_init(struct metrics_hist *h, const double *bounds);
void metrics_hist_observe(struct metrics_hist *h, double v);
/* The q-quantile (0..1) estimated from the buckets; 0 when empty. */
double metrics_hist_quantile(const struct metrics_hist *h, double q);

/*
 * Why a UDP datagram was not carried out: X(ID, label, help). The front's
 * limits (size, rate, utf8, empty, answer, backlog, and the kernel's overflow),
 * then the tier's outcomes (refused, store).
 */
#define METRICS_UDP_DROPS(X)                                                                       \
    X(SIZE, "size", "over --max-datagram (the kernel cut it: MSG_TRUNC)")                          \
    X(RATE, "rate", "over its source address's --udp-rate")                                        \
    X(UTF8, "utf8", "not valid UTF-8")                                                             \
    X(EMPTY, "empty", "no bytes, or only a line end")                                              \
    X(ANSWER, "answer", "an answer ({\"type\":...), never answered: two gateways would loop")      \
    X(BACKLOG, "backlog", "too many UDP publishes waiting for their commit")                       \
    X(OVERFLOW, "overflow", "dropped by the kernel: the socket's receive buffer was full")         \
    X(REFUSED, "refused", "a command or publish refused with an error")                            \
    X(STORE, "store", "its publish did not commit")

enum metrics_udp_drop {
#define METRICS_UDP_DROP_ENUM(id, label, help) METRICS_UDP_##id,
    METRICS_UDP_DROPS(METRICS_UDP_DROP_ENUM)
#undef METRICS_UDP_DROP_ENUM
        METRICS_UDP__COUNT
};

/* "size", "rate", ...: the reason label of visavis_udp_dropped_total. */
const char *metrics_udp_drop_name(enum metrics_udp_drop r);

struct metrics {
    uint64_t requests[GW_T__COUNT];  /* HTTP requests, session commands */
    uint64_t published[GW_T__COUNT]; /* by via */
    uint64_t delivered[GW_T__COUNT]; /* messages handed to readers */
    uint64_t bytes_in[GW_T__COUNT];
    uint64_t bytes_out[GW_T__COUNT];
    int64_t open[GW_T__COUNT]; /* HTTP connections, waiting long-polls, sessions */
    /* accepted publish -> message handed to a reader's connection */
    struct metrics_hist delivery_seconds[GW_T__COUNT];
    /* the loop's work per wake-up: what every client may wait behind */
    struct metrics_hist loop_busy_seconds;
    /* UDP datagrams received but not carried out, by reason */
    uint64_t udp_dropped[METRICS_UDP__COUNT];
    /* UDP replies not sent: larger than the datagram that asked, even cut */
    uint64_t udp_withheld;
    /* HIST and CHANNELS replies sessions hold, reserved or built and unsent (--max-reply-memory) */
    uint64_t reply_bytes;
    /* bodies and lines being received, past their free part (--max-input-memory) */
    uint64_t input_bytes;
};

void metrics_init(struct metrics *m);

/* The writer's side, filled by the writer thread. */
struct metrics_commits {
    uint64_t commits;
    uint64_t messages;
    struct metrics_hist batch_size;
    struct metrics_hist commit_seconds;
    /*
     * The store as the last commit left it: GW_OK, or the error that failed
     * it (a row refused alone is not the store failing), and whether only a
     * restart on the database mends it. GET /healthz says so.
     */
    enum gw_err failing;
    bool restart_needed;
    char failing_why[GW_ERRLEN];
};

/* Appends the Prometheus text exposition (version 0.0.4) of both. */
void metrics_render_prometheus(const struct metrics *m, const struct metrics_commits *c,
                               struct buf *out);

/*
 * Every value as (name, label, value), label NULL for none, histograms as
 * _count, _sum, _p50 and _p99: the shape /v1/stats serves as JSON.
 */
typedef void metrics_visit_fn(void *ctx, const char *name, const char *label, double value);
void metrics_visit(const struct metrics *m, const struct metrics_commits *c, metrics_visit_fn *fn,
                   void *ctx);

#endif
