/*
 * gwbench_json.h - the --json report.
 *
 * The one gwbench file that uses jansson (gwbench's own output format; what
 * it reads from the gateway is common/server_line's). Depends on
 * gwbench_types.h, gwbench_cols.h and libc; no I/O.
 */
#ifndef GWBENCH_JSON_H
#define GWBENCH_JSON_H

#include "gwbench_types.h"
#include "gwbench_cols.h"

#include <stddef.h>

/*
 * {"styles":[...], "config":{...}, "winners":{"publish":{...},
 * "delivery":{...}}} and a LF (docs/comparison.md). Caller frees with
 * free().
 */
char *gj_report(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                const struct style_result *res, size_t runs);

#endif
