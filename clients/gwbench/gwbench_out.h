/*
 * gwbench_out.h - what gwbench prints: the report in each format (the
 * table, --json, --csv) and the --svg chart.
 *
 * Depends on gwbench_types.h and gwbench_cols.h (what to show), gwbench_json.h
 * (the --json text) and libc. Writes to stdout, stderr (notes that do not
 * belong in a machine-read report) and the chart's file only.
 */
#ifndef GWBENCH_OUT_H
#define GWBENCH_OUT_H

#include "gwbench_types.h"
#include "gwbench_cols.h"

#include <stddef.h>

/*
 * Prints the report in o->format on stdout: the table with its winners
 * and notes, the JSON document, or the CSV. sum holds n styles
 * (out_summarize), res the runs x n results behind them. Returns 0, or -1
 * when stdout could not be written.
 */
int out_report(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
               const struct style_result *res, size_t runs);

/*
 * Writes the chart (publish throughput; p50 and p99 latency of every
 * style) as SVG to path. Returns 0, or -1 with the reason in err.
 */
int out_svg(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
            const char *path, char err[GW_ERRLEN]);

#endif
