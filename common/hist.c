/*
 * hist.c - the log-linear histogram; see hist.h.
 *
 * Bucket i < 2 * HIST_SUB is the value i itself. Above, a value v whose
 * highest bit is at position e (e >= HIST_SUB_BITS + 1) keeps its top
 * HIST_SUB_BITS + 1 bits, m = v >> (e - HIST_SUB_BITS), in
 * [HIST_SUB, 2 HIST_SUB): bucket (e - HIST_SUB_BITS + 1) * HIST_SUB +
 * (m - HIST_SUB). Bucket i then holds [m << s, (m + 1) << s) with
 * s = e - HIST_SUB_BITS: a width of at most 1/HIST_SUB of its lower end.
 */
#include "hist.h"

#include <string.h>

static unsigned bucket_of(int64_t ns)
{
    uint64_t v = ns < 0 ? 0 : (uint64_t)ns;
    unsigned e, shift;

    if (v < 2 * HIST_SUB)
        return (unsigned)v;
    e = 63u - (unsigned)__builtin_clzll(v);
    shift = e - HIST_SUB_BITS;
    return (e - HIST_SUB_BITS + 1) * HIST_SUB + (unsigned)((v >> shift) - HIST_SUB);
}

/* [lo, hi) of bucket i. */
static void bucket_range(unsigned i, uint64_t *lo, uint64_t *hi)
{
    unsigned row, shift;
    uint64_t m;

    if (i < 2 * HIST_SUB) {
        *lo = i;
        *hi = (uint64_t)i + 1;
        return;
    }
    row = i / HIST_SUB;
    shift = row - 1;
    m = HIST_SUB + i % HIST_SUB;
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

void hist_init(struct hist *h)
{
    memset(h, 0, sizeof(*h));
}

void hist_add_n(struct hist *h, int64_t ns, uint64_t n)
{
    if (ns < 0)
        ns = 0;
    if (n == 0)
        return;
    h->count[bucket_of(ns)] += n;
    if (h->n == 0 || ns < h->min)
        h->min = ns;
    if (h->n == 0 || ns > h->max)
        h->max = ns;
    h->n += n;
    h->sum += (double)ns * (double)n;
}

void hist_add(struct hist *h, int64_t ns)
{
    hist_add_n(h, ns, 1);
}

void hist_merge(struct hist *dst, const struct hist *src)
{
    if (src->n == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++)
        dst->count[i] += src->count[i];
    if (dst->n == 0 || src->min < dst->min)
        dst->min = src->min;
    if (dst->n == 0 || src->max > dst->max)
        dst->max = src->max;
    dst->n += src->n;
    dst->sum += src->sum;
}

int64_t hist_quantile(const struct hist *h, double q)
{
    uint64_t rank, seen = 0;

    if (h->n == 0)
        return 0;
    if (q >= 1.0)
        return h->max;
    rank = (uint64_t)(q * (double)h->n);
    if ((double)rank < q * (double)h->n)
        rank++;
    if (rank < 1)
        rank = 1;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        seen += h->count[i];
        if (seen >= rank) {
            int64_t v = bucket_value(i);
            return v < h->min ? h->min : v > h->max ? h->max : v;
        }
    }
    return h->max;
}

double hist_mean(const struct hist *h)
{
    return h->n ? h->sum / (double)h->n : 0.0;
}

/* Terms of v - k*step (k >= 1) that are >= x. */
static uint64_t terms_at_least(int64_t v, int64_t step, int64_t x)
{
    return v < x ? 0 : (uint64_t)((v - x) / step);
}

void hist_correct(const struct hist *src, int64_t interval_ns, struct hist *out)
{
    *out = *src;
    if (interval_ns <= 0 || src->n == 0)
        return;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
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
                out->sum += (double)bucket_value(j) * (double)(k * src->count[i]);
            }
        }
        if (interval_ns < out->min)
            out->min = interval_ns;
    }
}
