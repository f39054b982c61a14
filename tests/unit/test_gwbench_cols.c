/*
 * test_gwbench_cols.c - clients/gwbench/gwbench_cols.h: what the table,
 * the chart and the reports show. Medians and spreads over runs; a failed
 * run fails its style; publish, delivery and round-trip styles are ranked
 * apart, and a delivery style's rate (the one offered) never wins msgs/s; a
 * delivery style that kept up with less than 90 % of its offered rate is
 * flagged; fire and forget (udp) has no latency, and what it lost is a
 * share of what it sent.
 */
#include "gwbench_cols.h"

#include "gwbench_styles.h"
#include "tap.h"

#include <math.h>
#include <string.h>

static size_t style(const char *name)
{
    int id = gwbench_style_find(name, strlen(name));

    if (id < 0)
        bail_out("no style %s", name);
    return (size_t)id;
}

/* One successful run of a style: msgs/s, p50 µs, and for delivery styles the share got. */
static void put(struct style_result *res, size_t run, const char *name, double msgs, double p50,
                double got)
{
    size_t id = style(name);
    struct style_result *r = &res[run * gwbench_nstyles + id];

    memset(r, 0, sizeof(*r));
    r->id = id;
    r->ran = true;
    r->messages = 1000;
    r->sent = 1000;
    r->msgs_per_s = msgs;
    r->offered_per_s = msgs;
    r->lat.n = gwbench_styles[id].role == ROLE_UDP ? 0 : 1000; /* fire and forget: no answer */
    r->lat.p50_us = p50;
    r->lat.p90_us = p50 * 2;
    r->lat.p99_us = p50 * 3;
    r->lat.max_us = p50 * 4;
    r->bytes_in = r->bytes_out = 100000;
    r->connections = 4;
    if (gwbench_styles[id].kind == STYLE_DELIVERY) {
        r->offered_per_s = 1000;
        r->got_share = got;
    }
}

static bool near(double a, double b)
{
    return fabs(a - b) < 1e-9;
}

int main(void)
{
    enum { RUNS = 3 };
    static struct style_result res[RUNS * 16];
    static struct style_summary sum[16];
    size_t n = gwbench_nstyles, tcp = style("tcp"), push = style("tcp-push"),
           poll = style("rest-poll"), close = style("rest-close");
    double v;

    if (n > 16)
        bail_out("more styles than this test has room for");
    for (size_t k = 0; k < RUNS; k++) {
        put(res, k, "tcp", k == 0 ? 90 : k == 1 ? 110 : 100, 300, 0);
        put(res, k, "tcp-pipelined", 5000, 800, 0);
        /* Delivery styles: 4 receivers x 1,000/s offered is 4,000 deliveries/s, more than tcp. */
        put(res, k, "tcp-push", 8000, 200, 0.99);
        put(res, k, "rest-poll", 7000, 100000, k == 2 ? 0.95 : 0.85);
        put(res, k, "rest-close", 50, 700, 0);
        /* udp: 1,000 stored of 4,000 sent, and nothing to time (its p50 would win otherwise). */
        put(res, k, "udp", 20000, 1, 0);
        res[k * n + style("udp")].sent = 4000;
        res[k * n + style("udp")].lost = 3000;
        res[k * n + style("udp")].offered_per_s = 80000;
        put(res, k, "tcp-ping", 30000, 40, 0);
        put(res, k, "udp-ping", 28000, 35, 0);
        res[k * n + style("udp-ping")].lost = 10;
    }
    res[1 * n + close].failed = true;
    strcpy(res[1 * n + close].error, "the gateway closed the connection");

    out_summarize(res, n, RUNS, sum);

    ok(sum[tcp].ran && !sum[tcp].failed && sum[tcp].runs == RUNS, "tcp: ran 3 times");
    ok(near(sum[tcp].med[COL_MSGS], 100) && near(sum[tcp].lo[COL_MSGS], 90) &&
           near(sum[tcp].hi[COL_MSGS], 110),
       "tcp msgs/s: median 100 of 90, 110, 100; min 90, max 110");
    ok(near(out_spread(&sum[tcp], COL_MSGS), 0.2), "spread (max - min) / median = 0.2");
    ok(sum[tcp].has[COL_OFFERED] && !sum[tcp].has[COL_GOT],
       "a publish style shows what it offered, and no share got");
    ok(!out_value(&res[tcp], COL_GOT, &v), "out_value agrees");
    ok(sum[tcp].has[COL_LOST] && near(sum[tcp].med[COL_LOST], 0), "tcp lost nothing");
    ok(!sum[push].has[COL_LOST], "a delivery style has no lost column");
    {
        size_t udp = style("udp"), uping = style("udp-ping");
        ok(near(sum[udp].med[COL_LOST], 0.75) && near(sum[udp].med[COL_OFFERED], 80000),
           "udp: 3,000 of 4,000 lost; offered 80,000/s");
        ok(!sum[udp].has[COL_P50] && !sum[udp].has[COL_MAX], "udp: no latency");
        ok(near(sum[uping].med[COL_LOST], 0.01), "udp-ping: 10 of 1,000 pongs lost");
        is_int(out_winner(sum, n, COL_P50, STYLE_ROUNDTRIP), (long long)uping,
               "round-trip p50: ranked among round trips");
        is_int(out_winner(sum, n, COL_MSGS, STYLE_ROUNDTRIP), (long long)style("tcp-ping"),
               "round-trip msgs/s: among round trips, not against publishes");
        is_int(out_winner(sum, n, COL_LOST, STYLE_PUBLISH), -1, "lost is not a race");
        ok(out_col_in(COL_LOST, STYLE_ROUNDTRIP) && !out_col_in(COL_LOST, STYLE_DELIVERY) &&
               !out_col_in(COL_MSGS, STYLE_DELIVERY) && out_col_in(COL_OFFERED, STYLE_PUBLISH),
           "the columns of each block");
    }

    ok(sum[close].failed && sum[close].failed_run == 2 &&
           strcmp(sum[close].failure->error, "the gateway closed the connection") == 0,
       "a style that failed in run 2 is failed, and says which run and why");
    ok(!sum[close].has[COL_MSGS], "a failed style shows no numbers");

    ok(sum[push].has[COL_OFFERED] && near(sum[push].med[COL_OFFERED], 1000) &&
           !sum[push].fell_short,
       "tcp-push: offered 1,000/s, kept up (99 %%)");
    ok(sum[poll].fell_short && near(sum[poll].med[COL_GOT], 0.85),
       "rest-poll: 85 %% in two runs of three fell short");

    is_int(out_winner(sum, n, COL_MSGS, STYLE_PUBLISH), (long long)style("udp"),
           "msgs/s: the best publish style (udp's stored per second) wins, although delivery "
           "and round-trip rows carry more");
    is_int(out_winner(sum, n, COL_MSGS, STYLE_DELIVERY), -1,
           "msgs/s is never ranked among delivery styles");
    is_int(out_winner(sum, n, COL_P50, STYLE_PUBLISH), (long long)tcp,
           "publish p50: the lowest publish style, not the delivery one below it");
    is_int(out_winner(sum, n, COL_P50, STYLE_DELIVERY), (long long)push, "delivery p50: tcp-push");
    is_int(out_winner(sum, n, COL_EMPTY, STYLE_PUBLISH), -1, "empty polls: not a publish column");
    is_int(out_winner(sum, n, COL_GOT, STYLE_DELIVERY), -1, "the share got is a flag, not a race");
    ok(strstr(out_latency_method(&(struct gwbench_opts){.rate = 0}), "closed loop") != NULL,
       "the latency method names the loop");
    return done_testing();
}
