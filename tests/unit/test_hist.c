/*
 * test_hist.c - common/hist.h: exact small values, bounded error above,
 * exact min/max/mean, merge, and the correction for coordinated omission.
 */
#include "hist.h"

#include "tap.h"

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

static struct hist *hist_new(void)
{
    struct hist *h = malloc(sizeof(*h));

    if (!h)
        bail_out("out of memory");
    hist_init(h);
    return h;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* The exact q-quantile of sorted values: the smallest with at least q * n at or below. */
static int64_t exact_quantile(const int64_t *v, size_t n, double q)
{
    size_t rank = (size_t)ceil(q * (double)n);

    return v[(rank < 1 ? 1 : rank) - 1];
}

static void test_empty(void)
{
    struct hist *h = hist_new();

    is_int(h->n, 0, "empty: no samples");
    is_int(hist_quantile(h, 0.5), 0, "empty: p50 is 0");
    is_int(hist_quantile(h, 1.0), 0, "empty: max is 0");
    ok(hist_mean(h) == 0.0, "empty: mean is 0");
    free(h);
}

static void test_exact_below_256(void)
{
    struct hist *h = hist_new();
    bool all = true;

    for (int64_t v = 0; v < 256; v++)
        hist_add(h, v);
    for (int k = 1; k <= 256; k++) {
        double q = k / 256.0;
        if (hist_quantile(h, q) != k - 1) {
            all = false;
            diag("q %d/256: got %lld, want %d", k, (long long)hist_quantile(h, q), k - 1);
        }
    }
    ok(all, "0..255 ns: every quantile is exact");
    is_int(h->min, 0, "min");
    is_int(h->max, 255, "max");
    ok(fabs(hist_mean(h) - 127.5) < 1e-9, "mean is exact: %f", hist_mean(h));
    free(h);
}

static void test_relative_error(void)
{
    enum { N = 5000 };
    static int64_t v[N];
    struct hist *h = hist_new();
    double worst = 0;
    uint64_t seed = 42;

    for (size_t i = 0; i < N; i++) {
        /* Spread over nine decades: 100 ns to 100 s. */
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        v[i] = (int64_t)(100.0 * pow(10.0, 9.0 * (double)(seed >> 11) / 9007199254740992.0));
        hist_add(h, v[i]);
    }
    qsort(v, N, sizeof(v[0]), cmp_i64);
    for (int k = 1; k <= 1000; k++) {
        double q = k / 1000.0;
        int64_t want = exact_quantile(v, N, q), got = hist_quantile(h, q);
        double err = fabs((double)(got - want)) / (double)want;
        if (err > worst)
            worst = err;
    }
    ok(worst < 0.008, "every quantile within 0.8 %% of the exact one (worst %.4f %%)", worst * 100);
    is_int(h->min, v[0], "min is exact");
    is_int(h->max, v[N - 1], "max is exact");
    is_int(hist_quantile(h, 1.0), v[N - 1], "q = 1 is the max");
    free(h);
}

static void test_negative_and_huge(void)
{
    struct hist *h = hist_new();

    hist_add(h, -5);
    is_int(h->min, 0, "a negative duration counts as 0");
    hist_add(h, INT64_MAX);
    is_int(h->max, INT64_MAX, "the largest value is recorded");
    is_int(hist_quantile(h, 1.0), INT64_MAX, "and is the max");
    is_int(hist_quantile(h, 0.5), 0, "p50 of {0, max} is 0");
    free(h);
}

static void test_merge_and_add_n(void)
{
    struct hist *a = hist_new(), *b = hist_new(), *all = hist_new(), *n = hist_new();
    bool same = true;

    for (int64_t i = 1; i <= 1000; i++) {
        hist_add(i % 2 ? a : b, i * 997);
        hist_add(all, i * 997);
    }
    hist_merge(a, b);
    is_int(a->n, all->n, "merge: counts add up");
    is_int(a->min, all->min, "merge: min");
    is_int(a->max, all->max, "merge: max");
    ok(a->sum == all->sum, "merge: sum");
    for (int k = 1; k <= 100; k++)
        same = same && hist_quantile(a, k / 100.0) == hist_quantile(all, k / 100.0);
    ok(same, "merge: the quantiles of the merged halves are those of the whole");

    hist_add_n(n, 5000, 3);
    hist_add_n(n, 7000, 0);
    is_int(n->n, 3, "add_n: 3 samples (and 0 adds none)");
    is_int(n->max, 5000, "add_n of 0 samples leaves max alone");
    ok(n->sum == 15000.0, "add_n: sum");
    hist_init(b);
    hist_merge(n, b);
    is_int(n->n, 3, "merging an empty histogram changes nothing");
    free(a);
    free(b);
    free(all);
    free(n);
}

static void test_correct(void)
{
    struct hist *h = hist_new(), *c = hist_new();
    const int64_t ms = 1000000;

    /* One stall of 10 ms on a client that meant to send every 1 ms. */
    hist_add_n(h, ms, 99);
    hist_add(h, 10 * ms);
    hist_correct(h, ms, c);
    is_int(c->n, 100 + 9, "the stall stands for the 9 sends it held back");
    is_int(c->max, 10 * ms, "max unchanged");
    is_int(c->min, ms, "min is the interval");
    /* 100 at 1 ms (99 sent, 1 held back), then 2, 3, ... 9 and the 10 ms stall: #104 is 5 ms. */
    ok(llabs(hist_quantile(c, 103.5 / 109) - 5 * ms) <= 5 * ms / 100,
       "the held-back sends waited 9, 8, ..., 1 ms: sample 104 of 109 is about 5 ms (%lld)",
       (long long)hist_quantile(c, 103.5 / 109));

    hist_correct(h, 0, c);
    is_int(c->n, h->n, "interval 0: a copy");
    hist_correct(h, 20 * ms, c);
    is_int(c->n, h->n, "no sample at least twice the interval: a copy");
    free(h);
    free(c);
}

int main(void)
{
    test_empty();
    test_exact_below_256();
    test_relative_error();
    test_negative_and_huge();
    test_merge_and_add_n();
    test_correct();
    return done_testing();
}
