/*
 * gwbench_cols.c - columns, summaries over runs, winners; see
 * gwbench_cols.h.
 */
#include "gwbench_cols.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct out_col_info out_cols[COL__COUNT] = {
    /* key, title, higher_better, {publish, delivery, round trip}, ranked */
    [COL_MSGS] = {"msgs_per_s", "msgs/s", true, {true, false, true}, true},
    [COL_OFFERED] = {"offered_per_s", "offered", true, {true, true, true}, false},
    [COL_GOT] = {"delivered_share", "got", true, {false, true, false}, false},
    [COL_P50] = {"p50_us", "p50", false, {true, true, true}, true},
    [COL_P90] = {"p90_us", "p90", false, {true, true, true}, true},
    [COL_P99] = {"p99_us", "p99", false, {true, true, true}, true},
    [COL_MAX] = {"max_us", "max", false, {true, true, true}, true},
    [COL_BYTES] = {"bytes_per_msg", "bytes/msg", false, {true, true, true}, true},
    [COL_CONNS] = {"connections_per_1k", "conns/1k", false, {true, true, true}, true},
    [COL_EMPTY] = {"empty_poll_share", "empty polls", false, {false, true, false}, true},
    /* Not ranked: every reliable style loses nothing, and would win by being first. */
    [COL_LOST] = {"lost_share", "lost", false, {true, false, true}, false},
};

bool out_col_in(enum out_col col, enum style_kind kind)
{
    return (unsigned)kind < STYLE__KINDS && out_cols[col].in[kind];
}

bool out_value(const struct style_result *r, enum out_col col, double *v)
{
    const struct style_info *si = &gwbench_styles[r->id];
    bool delivery = si->kind == STYLE_DELIVERY;

    if (!r->ran || r->failed)
        return false;
    /* What was offered and lost is known even when nothing came through. */
    if (r->messages == 0 && col != COL_OFFERED && col != COL_LOST)
        return false;
    switch (col) {
    case COL_MSGS:
        *v = r->msgs_per_s;
        return true;
    case COL_OFFERED:
        *v = r->offered_per_s;
        return true;
    case COL_GOT:
        *v = r->got_share;
        return delivery;
    /* Fire and forget has no answer, so no latency. */
    case COL_P50:
        *v = r->lat.p50_us;
        return r->lat.n > 0;
    case COL_P90:
        *v = r->lat.p90_us;
        return r->lat.n > 0;
    case COL_P99:
        *v = r->lat.p99_us;
        return r->lat.n > 0;
    case COL_MAX:
        *v = r->lat.max_us;
        return r->lat.n > 0;
    case COL_BYTES:
        *v = (double)(r->bytes_in + r->bytes_out) / (double)r->messages;
        return true;
    case COL_CONNS:
        *v = (double)r->connections * 1000.0 / (double)r->messages;
        return true;
    case COL_EMPTY:
        if (!gwbench_style_polls(si) || r->polls == 0)
            return false;
        *v = (double)r->empty_polls / (double)r->polls;
        return true;
    case COL_LOST:
        *v = r->sent ? (double)r->lost / (double)r->sent : 0.0;
        return !delivery;
    case COL__COUNT:
        break;
    }
    return false;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The median of v[0..n) (sorted in place): the middle one, or the mean of the two middle ones. */
static double median(double *v, size_t n)
{
    qsort(v, n, sizeof(*v), cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

static void summarize_one(const struct style_result *res, size_t n, size_t runs, size_t id,
                          struct style_summary *s)
{
    double *vals = gw_xcalloc(runs, sizeof(*vals));
    uint64_t *msgs = gw_xcalloc(runs, sizeof(*msgs));

    memset(s, 0, sizeof(*s));
    s->id = id;
    for (size_t k = 0; k < runs; k++) {
        const struct style_result *r = &res[k * n + id];
        if (!r->ran)
            continue;
        if (!s->ran)
            s->first = r;
        s->ran = true;
        if (r->failed && !s->failed) {
            s->failed = true;
            s->failure = r;
            s->failed_run = (long)k + 1;
        }
        if (r->failed)
            continue;
        msgs[s->runs++] = r->messages;
        if (r->backlog > s->backlog_max)
            s->backlog_max = r->backlog;
        s->empty_polls += r->empty_polls;
        s->early_empty += r->early_empty;
    }
    if (s->failed || s->runs == 0) {
        free(vals);
        free(msgs);
        return;
    }
    qsort(msgs, s->runs, sizeof(*msgs), cmp_u64);
    s->messages_med = msgs[s->runs / 2];
    for (int c = 0; c < COL__COUNT; c++) {
        size_t m = 0;
        for (size_t k = 0; k < runs; k++) {
            const struct style_result *r = &res[k * n + id];
            if (r->ran && !r->failed && out_value(r, (enum out_col)c, &vals[m]))
                m++;
        }
        if (m == 0)
            continue;
        s->has[c] = true;
        s->med[c] = median(vals, m); /* sorts vals */
        s->lo[c] = vals[0];
        s->hi[c] = vals[m - 1];
    }
    s->fell_short = s->has[COL_GOT] && s->med[COL_GOT] < OUT_GOT_SHORT;
    free(vals);
    free(msgs);
}

void out_summarize(const struct style_result *res, size_t n, size_t runs, struct style_summary *sum)
{
    for (size_t i = 0; i < n; i++)
        summarize_one(res, n, runs, i, &sum[i]);
}

double out_spread(const struct style_summary *s, enum out_col col)
{
    if (!s->has[col] || s->runs < 2 || s->med[col] <= 0)
        return -1;
    return (s->hi[col] - s->lo[col]) / s->med[col];
}

int out_winner(const struct style_summary *sum, size_t n, enum out_col col, enum style_kind kind)
{
    const struct out_col_info *ci = &out_cols[col];
    int best = -1;
    double bv = 0;

    if (!ci->ranked || !out_col_in(col, kind))
        return -1;
    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        double v;
        if (gwbench_styles[s->id].kind != kind || s->failed || !s->has[col])
            continue;
        v = s->med[col];
        if (best < 0 || (ci->higher_better ? v > bv : v < bv)) {
            best = (int)i;
            bv = v;
        }
    }
    return best;
}

const char *out_publish_method(const struct gwbench_opts *o)
{
    if (o->rate > 0)
        return "open loop: each publish has an intended send time on a fixed schedule and its "
               "latency counts from then (requests still unsent when time is up count the time "
               "they waited)";
    return "closed loop, corrected for coordinated omission (HdrHistogram's expected-interval "
           "method, the interval being the median service time)";
}

const char *out_latency_method(const struct gwbench_opts *o)
{
    static char text[512];

    snprintf(text, sizeof(text), "publish styles and round trips: %s; delivery styles: %s",
             out_publish_method(o), OUT_DELIVERY_METHOD);
    return text;
}
