/*
 * test_metrics.c - histogram buckets and quantiles, and the Prometheus text
 * of a known state.
 */
#include "metrics.h"
#include "tap.h"

#include <string.h>

static void test_hist(void)
{
    struct metrics_hist h;

    metrics_hist_init(&h, metrics_seconds_bounds);
    ok(metrics_hist_quantile(&h, 0.5) == 0, "an empty histogram has quantile 0");
    for (int i = 0; i < 90; i++)
        metrics_hist_observe(&h, 0.0003); /* the 0.0005 bucket */
    for (int i = 0; i < 10; i++)
        metrics_hist_observe(&h, 0.02); /* the 0.025 bucket */
    is_int((long long)h.n, 100, "count");
    ok(h.sum > 0.227 - 1e-9 && h.sum < 0.227 + 1e-9, "sum of 90 x 0.3 ms and 10 x 20 ms");
    ok(metrics_hist_quantile(&h, 0.5) == 0.0005, "p50 is the upper bound of its bucket");
    ok(metrics_hist_quantile(&h, 0.99) == 0.025, "p99 falls in the slow bucket");
    metrics_hist_observe(&h, 1e6);
    is_int((long long)h.counts[METRICS_BUCKETS], 1, "values past the last bound go to +Inf");
}

static void test_render(void)
{
    struct metrics m;
    struct metrics_commits c;
    struct buf out = BUF_INIT;

    metrics_init(&m);
    memset(&c, 0, sizeof(c));
    metrics_hist_init(&c.batch_size, metrics_size_bounds);
    metrics_hist_init(&c.commit_seconds, metrics_seconds_bounds);
    m.published[GW_T_TCP] = 7;
    m.open[GW_T_LONGPOLL] = 3;
    metrics_hist_observe(&c.batch_size, 3);
    metrics_render_prometheus(&m, &c, &out);
    ok(strstr(out.data, "visavis_messages_published_total{via=\"tcp\"} 7\n") != NULL,
       "a counter with its label");
    ok(strstr(out.data, "visavis_open{transport=\"longpoll\"} 3\n") != NULL, "a gauge");
    ok(strstr(out.data, "visavis_commit_batch_size_bucket{le=\"2\"} 0\n") != NULL,
       "an unlabelled histogram bucket below the value");
    ok(strstr(out.data, "visavis_commit_batch_size_bucket{le=\"4\"} 1\n") != NULL,
       "the bucket holding it");
    ok(strstr(out.data, "visavis_commit_batch_size_bucket{le=\"+Inf\"} 1\n") != NULL, "+Inf");
    ok(strstr(out.data, "# TYPE visavis_delivery_seconds histogram\n") != NULL, "TYPE line");
    ok(out.data[out.len - 1] == '\n', "ends with a newline");
    buf_release(&out);
}

int main(void)
{
    test_hist();
    test_render();
    return done_testing();
}
