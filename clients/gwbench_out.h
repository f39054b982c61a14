/*
 * gwbench_out.h - what gwbench shows: the columns, which style wins each,
 * and the report in each format (table, --json, --csv) and the --svg chart.
 *
 * Depends on gwbench.h and libc (gwbench_json.c for the JSON text). Writes
 * to stdout or to the chart's file only.
 */
#ifndef GWBENCH_OUT_H
#define GWBENCH_OUT_H

#include "gwbench.h"

#include <stdbool.h>
#include <stddef.h>

enum out_col {
    COL_MSGS, /* messages/s */
    COL_P50,  /* latency, µs */
    COL_P90,
    COL_P99,
    COL_MAX,
    COL_BYTES, /* bytes on the wire per message, both directions */
    COL_CONNS, /* TCP connections opened per 1,000 messages */
    COL_EMPTY, /* share of polls that returned nothing (polling styles) */
    COL__COUNT
};

struct out_col_info {
    const char *key;   /* in --json and --csv */
    const char *title; /* in the table */
    bool higher_better;
};

extern const struct out_col_info out_cols[COL__COUNT];

/* r's value in col; false when it has none (did not run, failed, not a polling style). */
bool out_value(const struct style_result *r, enum out_col col, double *v);

/* The index in res of the style that wins col (ties: the first), or -1 when none has a value. */
int out_winner(const struct style_result *res, size_t n, enum out_col col);

/* How latency was measured in this run, in one sentence (table footnote, --json config). */
const char *out_latency_method(const struct gwbench_opts *o);

/*
 * Prints the report in o->format on stdout: the table with its winners
 * line, the JSON document, or the CSV header and one row per style that
 * ran. Returns 0, or -1 when stdout could not be written.
 */
int out_report(const struct gwbench_opts *o, const struct style_result *res, size_t n);

/*
 * Writes the chart (throughput, p50 and p99 per style) as SVG to path.
 * Returns 0, or -1 with the reason in err.
 */
int out_svg(const struct gwbench_opts *o, const struct style_result *res, size_t n,
            const char *path, char err[GW_ERRLEN]);

#endif
