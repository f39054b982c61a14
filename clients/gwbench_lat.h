/*
 * gwbench_lat.h - latency statistics: a log-linear histogram of durations
 * in nanoseconds, its quantiles, and the correction for coordinated
 * omission that closed-loop runs need.
 *
 * Pure: no I/O, no clock; depends on libc and gw.h. 128 buckets per power
 * of two, so a quantile is within 0.8 % of the true value (exact below
 * 256 ns); the minimum and maximum are kept exactly. A struct lat is large
 * (about 58 KiB): embed one per style, not one per sample source.
 */
#ifndef GWBENCH_LAT_H
#define GWBENCH_LAT_H

#include <stdint.h>

#define LAT_SUB_BITS 7
#define LAT_SUB      (1 << LAT_SUB_BITS)
/* Indices 0 .. 255 hold 0 .. 255 ns exactly; then one row of LAT_SUB per octave up to 2^63. */
#define LAT_BUCKETS  ((64 - LAT_SUB_BITS) * LAT_SUB)

struct lat {
    uint64_t count[LAT_BUCKETS];
    uint64_t n;
    int64_t min, max; /* exact; meaningless while n == 0 */
};

/* What the table shows, in microseconds; all 0 when there was no sample. */
struct lat_summary {
    uint64_t n;
    double p50_us, p90_us, p99_us, max_us;
};

void lat_init(struct lat *l);

/* Records a duration (negative ones count as 0) n times. */
void lat_add_n(struct lat *l, int64_t ns, uint64_t n);
void lat_add(struct lat *l, int64_t ns);

/* Adds every sample of src to dst. */
void lat_merge(struct lat *dst, const struct lat *src);

/* The q-quantile (0 < q <= 1) in ns: the smallest value with at least q*n samples at or below. */
int64_t lat_quantile(const struct lat *l, double q);

/*
 * HdrHistogram's correction for coordinated omission (its
 * recordValueWithExpectedInterval, applied after the fact): out becomes
 * src, plus, for every sample v longer than interval_ns, the samples
 * v - interval, v - 2 interval, ... down to interval. They stand for the
 * requests a client that meant to send one every interval_ns could not
 * send while it waited for v. interval_ns <= 0 copies src unchanged.
 */
void lat_correct(const struct lat *src, int64_t interval_ns, struct lat *out);

void lat_summarize(const struct lat *l, struct lat_summary *s);

#endif
