/*
 * gwbench_cols.h - what gwbench reports, before any format: the columns, a
 * style's value in each, its median and spread over the runs, whether a
 * delivery style kept up, and which style wins a column within its kind.
 *
 * Pure: no I/O. Depends on gwbench_types.h and gwbench_styles.h. The table, CSV
 * and chart (gwbench_out.c) and the JSON report (gwbench_json.c) all read
 * this, so that they cannot disagree.
 *
 * Publish styles and delivery styles measure different things: a publish
 * style's msgs/s is a capacity (as fast as acks come, or the open-loop
 * rate), a delivery style's is the rate its publisher offered, paced on
 * purpose. So msgs/s is ranked among publish styles only; a delivery style
 * shows the rate it was offered and the share of it its receivers got; and
 * latencies, bytes and connections are ranked within each kind, never across.
 * Round trips (PING -> pong) store nothing: their rate is ranked among
 * themselves. A publish or round-trip style shows what it offered (requests
 * sent per second) and what was lost (never answered, or, for the fire and
 * forget udp style, never stored).
 */
#ifndef GWBENCH_COLS_H
#define GWBENCH_COLS_H

#include "gwbench_types.h"
#include "gwbench_styles.h"

#include <stdbool.h>
#include <stddef.h>

enum out_col {
    COL_MSGS,    /* messages/s: acks (publish; stored, udp), pongs, deliveries to all receivers */
    COL_OFFERED, /* requests sent per second; delivery: the publisher's rate, per receiver */
    COL_GOT,     /* delivery: the share of the offered rate the receivers got */
    COL_P50,     /* latency, µs */
    COL_P90,
    COL_P99,
    COL_MAX,
    COL_BYTES, /* bytes on the wire per message, both directions */
    COL_CONNS, /* TCP connections opened per 1,000 messages */
    COL_EMPTY, /* share of polls that returned nothing (polling styles) */
    COL_LOST,  /* publish, round trip: the share of requests never answered (udp: never stored) */
    COL__COUNT
};

struct out_col_info {
    const char *key;   /* in --json and --csv */
    const char *title; /* in the table */
    bool higher_better;
    bool in[STYLE__KINDS]; /* in the block of each kind (enum style_kind), ranked within it */
    bool ranked;           /* has a winner */
};

extern const struct out_col_info out_cols[COL__COUNT];

/* A delivery style whose receivers got less than this share of the offered rate fell short. */
#define OUT_GOT_SHORT 0.90

/* Whether col is shown (and ranked, when it is) for styles of kind. */
bool out_col_in(enum out_col col, enum style_kind kind);

/* r's value in col; false when it has none (did not run, failed, not that kind of style). */
bool out_value(const struct style_result *r, enum out_col col, double *v);

/* One style over every run: what the outputs show. */
struct style_summary {
    size_t id;                          /* in gwbench_styles[] */
    bool ran;                           /* in at least one run */
    bool failed;                        /* in at least one run: no numbers are shown */
    const struct style_result *failure; /* the first run that failed */
    long failed_run;                    /* its number, from 1 */
    size_t runs;                        /* runs counted (all of them, when none failed) */
    const struct style_result *first;   /* the first run */
    bool has[COL__COUNT];
    double med[COL__COUNT]; /* the median over the runs */
    double lo[COL__COUNT], hi[COL__COUNT];
    bool fell_short;                   /* delivery: the median share got is under OUT_GOT_SHORT */
    uint64_t backlog_max;              /* open loop: the most left unsent in a run */
    uint64_t messages_med;             /* acks or deliveries, the median run */
    uint64_t empty_polls, early_empty; /* over every run */
};

/*
 * Summarizes res, runs x n results (res[run * n + style]), into sum[n],
 * one per style of gwbench_styles[].
 */
void out_summarize(const struct style_result *res, size_t n, size_t runs,
                   struct style_summary *sum);

/* (hi - lo) / median of a column, or -1 when it has no spread to speak of (one run, median 0). */
double out_spread(const struct style_summary *s, enum out_col col);

/*
 * The index in sum of the style that wins col among the styles of kind
 * (ties: the first), or -1 when the column is not ranked for that kind or no
 * style has a value.
 */
int out_winner(const struct style_summary *sum, size_t n, enum out_col col, enum style_kind kind);

/* How latency was measured in this run, in one sentence (table footnote, --json config). */
const char *out_latency_method(const struct gwbench_opts *o);
/* The same, for the publish styles alone. */
const char *out_publish_method(const struct gwbench_opts *o);
#define OUT_DELIVERY_METHOD "from the intended send time carried in each message's body"

#endif
