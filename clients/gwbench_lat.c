/*
 * gwbench_lat.c - latency histogram; see gwbench_lat.h.
 *
 * Bucket i < 2 * LAT_SUB is the value i itself. Above, a value v with its
 * highest bit at position e (e >= LAT_SUB_BITS + 1) keeps its top
 * LAT_SUB_BITS + 1 bits, m = v >> (e - LAT_SUB_BITS), in [LAT_SUB, 2 LAT_SUB):
 * bucket (e - LAT_SUB_BITS + 1) * LAT_SUB + (m - LAT_SUB). Each bucket is
 * then [m << s, (m + 1) << s) with s = e - LAT_SUB_BITS: a width of at most
 * 1/LAT_SUB of its lower end.
 */
#include "gwbench_lat.h"

#include <string.h>

static unsigned bucket_of(int64_t ns)
{
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
    unsigned e, shift;

    if (v < 2 * LAT_SUB)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v);
    shift = e - LAT_SUB_BITS;
    return (e - LAT_SUB_BITS + 1) * LAT_SUB + (unsigned)((v >> shift) - LAT_SUB);
}

/* [lo, hi) of bucket i. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
    unsigned row, shift;
    uint64_t m;

    if (i < 2 * LAT_SUB) {
        *lo = i;
        *hi = (uint64_t)i + 1;
        return;
    }
    row = i / LAT_SUB;
    shift = row - 1;
    m = LAT_SUB + i % LAT_SUB;
    *lo = m << shift;
    *hi = (m + 1) << shift;
}

/* The value a bucket stands for: its middle. */
static int64_t bucket_value(unsigned i)
{
    uint64_t lo, hi;

    bucket_range(i, &lo, &hi);
    return (int64_t)(lo + (hi - lo - 1) / 2);
}

void lat_init(struct lat *l)
{
    memset(l, 0, sizeof(*l));
}

void lat_add_n(struct lat *l, int64_t ns, uint64_t n)
{
    if (ns < 0)
        ns = 0;
    if (n == 0)
        return;
    l->count[bucket_of(ns)] += n;
    if (l->n == 0 || ns < l->min)
        l->min = ns;
    if (l->n == 0 || ns > l->max)
        l->max = ns;
    l->n += n;
}

void lat_add(struct lat *l, int64_t ns)
{
    lat_add_n(l, ns, 1);
}

void lat_merge(struct lat *dst, const struct lat *src)
{
    if (src->n == 0)
        return;
    for (unsigned i = 0; i < LAT_BUCKETS; i++)
        dst->count[i] += src->count[i];
    if (dst->n == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->n == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
}

int64_t lat_quantile(const struct lat *l, double q)
{
    uint64_t rank, seen = 0;

    if (l->n == 0)
        return 0;
    if (q >= 1.0)
        return l->max;
    rank = (uint64_t)(q * (double)l->n);
    if ((double)rank < q * (double)l->n)
        rank++;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < LAT_BUCKETS; i++) {
        seen += l->count[i];
        if (seen >= rank) {
            int64_t v = bucket_value(i);
            return v < l->min ? l->min : v > l->max ? l->max : v;
        }
    }
    return l->max;
}

/* Terms of v - k*step (k >= 1) that are >= x. */
static uint64_t terms_at_least(int64_t v, int64_t step, int64_t x)
{
    return v < x ? 0 : (uint64_t)((v - x) / step);
}

void lat_correct(const struct lat *src, int64_t interval_ns, struct lat *out)
{
    *out = *src;
    if (interval_ns <= 0 || src->n == 0)
        return;
    for (unsigned i = 0; i < LAT_BUCKETS; i++) {
        int64_t v;
        unsigned first, last;

        if (!src->count[i])
            continue;
        v = bucket_value(i);
        if (i == bucket_of(src->max))
            v = src->max; /* the worst stall, exactly: it carries the most */
        if (v < 2 * interval_ns)
            continue;
        /*
         * The missing samples v - interval, v - 2 interval, ... >= interval,
         * counted per bucket rather than one by one: a long stall stands
         * for millions of them.
         */
        first = bucket_of(interval_ns);
        last = bucket_of(v - interval_ns);
        for (unsigned j = first; j <= last; j++) {
            uint64_t lo, hi, k;
            int64_t from;

            bucket_range(j, &lo, &hi);
            from = (int64_t)lo < interval_ns ? interval_ns : (int64_t)lo;
            k = terms_at_least(v, interval_ns, from) - terms_at_least(v, interval_ns, (int64_t)hi);
            if (k) {
                out->count[j] += k * src->count[i];
                out->n += k * src->count[i];
            }
        }
        if (interval_ns < out->min)
            out->min = interval_ns;
    }
}

void lat_summarize(const struct lat *l, struct lat_summary *s)
{
    s->n = l->n;
    s->p50_us = (double)lat_quantile(l, 0.50) / 1e3;
    s->p90_us = (double)lat_quantile(l, 0.90) / 1e3;
    s->p99_us = (double)lat_quantile(l, 0.99) / 1e3;
    s->max_us = l->n ? (double)l->max / 1e3 : 0.0;
}
