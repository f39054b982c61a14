/*
 * hist.h - a log-linear histogram of durations in nanoseconds: record,
 * merge, quantiles, mean, and the correction for coordinated omission that
 * closed-loop load needs.
 *
 * Pure: no I/O, no clock, no allocation; depends on libc only. Values below
 * 256 ns are kept exactly; above, each power of two is cut into 128 buckets,
 * so a quantile is within 0.8 % of the true value. The minimum, maximum and
 * sum are kept exactly. A struct hist is large (about 58 KiB): allocate one
 * per measured series, not one per sample source, and merge.
 */
#ifndef GW_HIST_H
#define GW_HIST_H

#include <stdint.h>

#define HIST_SUB_BITS 7
#define HIST_SUB      (1 << HIST_SUB_BITS)
/* 0 .. 255 ns one bucket each, then one row of HIST_SUB buckets per octave up to 2^63. */
#define HIST_BUCKETS  ((64 - HIST_SUB_BITS) * HIST_SUB)

struct hist {
    uint64_t count[HIST_BUCKETS];
    uint64_t n;
    int64_t min, max; /* exact; meaningless while n == 0 */
    double sum;       /* of every sample, for the mean */
};

void hist_init(struct hist *h);

/* Records a duration n times; a negative one counts as 0. */
void hist_add_n(struct hist *h, int64_t ns, uint64_t n);
void hist_add(struct hist *h, int64_t ns);

/* Adds every sample of src to dst. */
void hist_merge(struct hist *dst, const struct hist *src);

/*
 * The q-quantile (0 < q <= 1) in ns: the smallest recorded value with at
 * least q * n samples at or below it (as a bucket's middle, clamped to the
 * exact minimum and maximum). 0 when h is empty.
 */
int64_t hist_quantile(const struct hist *h, double q);

/* The mean in ns; 0 when h is empty. */
double hist_mean(const struct hist *h);

/*
 * HdrHistogram's correction for coordinated omission (its
 * recordValueWithExpectedInterval, applied after the fact): out becomes
 * src, plus, for every sample v at least twice interval_ns, the samples
 * v - interval, v - 2 interval, ... down to interval. They stand for the
 * requests a client that meant to send one every interval_ns could not
 * send while it waited for v. interval_ns <= 0 copies src unchanged. out
 * and src may not be the same.
 */
void hist_correct(const struct hist *src, int64_t interval_ns, struct hist *out);

#endif
