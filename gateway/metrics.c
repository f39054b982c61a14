/*
 * metrics.c - see metrics.h. The exposition is written by hand: it is a few
 * dozen lines of a simple text format, not worth a library.
 */
#include "metrics.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const double metrics_seconds_bounds[METRICS_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};

const double metrics_size_bounds[METRICS_BUCKETS] = {
    1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768,
};

static const char *const transport_names[GW_T__COUNT] = {
#define TRANSPORT_NAME(id, name, publishes) [GW_T_##id] = name,
    GW_TRANSPORTS(TRANSPORT_NAME)
#undef TRANSPORT_NAME
};

static const char *const udp_drop_names[METRICS_UDP__COUNT] = {
#define UDP_DROP_NAME(id, label, help) [METRICS_UDP_##id] = label,
    METRICS_UDP_DROPS(UDP_DROP_NAME)
#undef UDP_DROP_NAME
};

const char *metrics_udp_drop_name(enum metrics_udp_drop r)
{
    return (unsigned)r < METRICS_UDP__COUNT ? udp_drop_names[r] : "unknown";
}

void metrics_hist_init(struct metrics_hist *h, const double *bounds)
{
    memset(h, 0, sizeof(*h));
    h->bounds = bounds;
}

void metrics_hist_observe(struct metrics_hist *h, double v)
{
    size_t i = 0;
    while (i < METRICS_BUCKETS && v > h->bounds[i])
        i++;
    h->counts[i]++;
    h->n++;
    h->sum += v;
}

double metrics_hist_quantile(const struct metrics_hist *h, double q)
{
    uint64_t want, seen = 0;

    if (!h->n)
        return 0;
    want = (uint64_t)(q * (double)h->n + 0.5);
    if (want < 1)
        want = 1;
    /* The bucket's upper bound: an honest "at most", never a made-up point inside it. */
    for (size_t i = 0; i < METRICS_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= want)
            return h->bounds[i];
    }
    return h->bounds[METRICS_BUCKETS - 1];
}

void metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof(*m));
    for (int t = 0; t < GW_T__COUNT; t++)
        metrics_hist_init(&m->delivery_seconds[t], metrics_seconds_bounds);
    metrics_hist_init(&m->loop_busy_seconds, metrics_seconds_bounds);
}

static void head(struct buf *out, const char *name, const char *type, const char *help)
{
    buf_appendf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void per_transport(struct buf *out, const char *name, const char *type, const char *help,
                          const uint64_t *v)
{
    head(out, name, type, help);
    for (int t = 0; t < GW_T__COUNT; t++)
        buf_appendf(out, "%s{transport=\"%s\"} %llu\n", name, transport_names[t],
                    (unsigned long long)v[t]);
}

static void hist(struct buf *out, const char *name, const char *label, const struct metrics_hist *h)
{
    uint64_t cum = 0;

    for (size_t i = 0; i <= METRICS_BUCKETS; i++) {
        cum += h->counts[i];
        char le[32];
        if (i < METRICS_BUCKETS)
            snprintf(le, sizeof(le), "%g", h->bounds[i]);
        else
            snprintf(le, sizeof(le), "+Inf");
        buf_appendf(out, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, label ? label : "",
                    label ? "," : "", le, (unsigned long long)cum);
    }
    buf_appendf(out, "%s_sum%s%s%s %.9g\n", name, label ? "{" : "", label ? label : "",
                label ? "}" : "", h->sum);
    buf_appendf(out, "%s_count%s%s%s %llu\n", name, label ? "{" : "", label ? label : "",
                label ? "}" : "", (unsigned long long)h->n);
}

void metrics_render_prometheus(const struct metrics *m, const struct metrics_commits *c,
                               struct buf *out)
{
    uint64_t open[GW_T__COUNT];
    char label[48];

    per_transport(out, "visavis_requests_total", "counter",
                  "HTTP requests and session commands, by transport", m->requests);
    head(out, "visavis_messages_published_total", "counter",
         "messages committed, by the interface they came in through");
    for (int v = 0; v < GW_T__COUNT; v++)
        if (gw_transport_publishes((enum gw_transport)v))
            buf_appendf(out, "visavis_messages_published_total{via=\"%s\"} %llu\n",
                        gw_transport_name((enum gw_transport)v),
                        (unsigned long long)m->published[v]);
    per_transport(out, "visavis_messages_delivered_total", "counter",
                  "messages handed to readers, by transport", m->delivered);
    per_transport(out, "visavis_bytes_received_total", "counter",
                  "bytes received (HTTP: request bodies; sessions: everything)", m->bytes_in);
    per_transport(out, "visavis_bytes_sent_total", "counter",
                  "bytes sent (HTTP: response bodies; sessions: everything)", m->bytes_out);
    for (int t = 0; t < GW_T__COUNT; t++)
        open[t] = m->open[t] > 0 ? (uint64_t)m->open[t] : 0;
    per_transport(out, "visavis_open", "gauge",
                  "open HTTP connections (rest), waiting long-polls, open sessions (tcp, sse)",
                  open);
    head(out, "visavis_delivery_seconds", "histogram",
         "from an accepted publish to the message handed to a reader's connection");
    for (int t = 0; t < GW_T__COUNT; t++) {
        snprintf(label, sizeof(label), "transport=\"%s\"", transport_names[t]);
        hist(out, "visavis_delivery_seconds", label, &m->delivery_seconds[t]);
    }
    head(out, "visavis_loop_busy_seconds", "histogram",
         "the event loop's work per wake-up: the longest any client may wait behind others");
    hist(out, "visavis_loop_busy_seconds", NULL, &m->loop_busy_seconds);
    head(out, "visavis_udp_dropped_total", "counter",
         "UDP datagrams received but not carried out, by reason");
    for (int r = 0; r < METRICS_UDP__COUNT; r++)
        buf_appendf(out, "visavis_udp_dropped_total{reason=\"%s\"} %llu\n", udp_drop_names[r],
                    (unsigned long long)m->udp_dropped[r]);
    head(out, "visavis_udp_replies_withheld_total", "counter",
         "UDP replies not sent: larger than the datagram that asked for them, even cut");
    buf_appendf(out, "visavis_udp_replies_withheld_total %llu\n",
                (unsigned long long)m->udp_withheld);
    head(
        out, "visavis_reply_bytes", "gauge",
        "bytes of replies sessions hold, reserved or not yet sent (bounded by --max-reply-memory)");
    buf_appendf(out, "visavis_reply_bytes %llu\n", (unsigned long long)m->reply_bytes);
    head(out, "visavis_input_bytes", "gauge",
         "bytes of request bodies and command lines being received, past the first 64 KiB of "
         "each (bounded by --max-input-memory)");
    buf_appendf(out, "visavis_input_bytes %llu\n", (unsigned long long)m->input_bytes);
    head(out, "visavis_commits_total", "counter", "store transactions committed");
    buf_appendf(out, "visavis_commits_total %llu\n", (unsigned long long)c->commits);
    head(out, "visavis_commit_batch_size", "histogram", "messages per committed transaction");
    hist(out, "visavis_commit_batch_size", NULL, &c->batch_size);
    head(out, "visavis_commit_seconds", "histogram", "time to write and commit one transaction");
    hist(out, "visavis_commit_seconds", NULL, &c->commit_seconds);
}

/* _count, _sum, _p50, _p99 of n histograms, one name at a time (labels may be NULL). */
static void visit_hists(const char *name, const char *const *labels,
                        const struct metrics_hist *const *h, size_t n, metrics_visit_fn *fn,
                        void *ctx)
{
    static const char *const parts[] = {"count", "sum", "p50", "p99"};
    char full[96];

    for (size_t p = 0; p < 4; p++) {
        snprintf(full, sizeof(full), "%s_%s", name, parts[p]);
        for (size_t i = 0; i < n; i++) {
            double v = p == 0   ? (double)h[i]->n
                       : p == 1 ? h[i]->sum
                                : metrics_hist_quantile(h[i], p == 2 ? 0.5 : 0.99);
            fn(ctx, full, labels[i], v);
        }
    }
}

void metrics_visit(const struct metrics *m, const struct metrics_commits *c, metrics_visit_fn *fn,
                   void *ctx)
{
    static const struct {
        const char *name;
        size_t offset;
    } counters[] = {
        {"requests_total", offsetof(struct metrics, requests)},
        {"messages_delivered_total", offsetof(struct metrics, delivered)},
        {"bytes_received_total", offsetof(struct metrics, bytes_in)},
        {"bytes_sent_total", offsetof(struct metrics, bytes_out)},
    };

    for (size_t k = 0; k < sizeof(counters) / sizeof(counters[0]); k++) {
        const uint64_t *v = (const uint64_t *)(const void *)((const char *)m + counters[k].offset);
        for (int t = 0; t < GW_T__COUNT; t++)
            fn(ctx, counters[k].name, transport_names[t], (double)v[t]);
    }
    for (int v = 0; v < GW_T__COUNT; v++)
        if (gw_transport_publishes((enum gw_transport)v))
            fn(ctx, "messages_published_total", gw_transport_name((enum gw_transport)v),
               (double)m->published[v]);
    for (int t = 0; t < GW_T__COUNT; t++)
        fn(ctx, "open", transport_names[t], (double)m->open[t]);
    const struct metrics_hist *delivery[GW_T__COUNT];
    for (int t = 0; t < GW_T__COUNT; t++)
        delivery[t] = &m->delivery_seconds[t];
    visit_hists("delivery_seconds", transport_names, delivery, GW_T__COUNT, fn, ctx);
    const char *no_label[] = {NULL};
    const struct metrics_hist *busy[] = {&m->loop_busy_seconds};
    visit_hists("loop_busy_seconds", no_label, busy, 1, fn, ctx);
    for (int r = 0; r < METRICS_UDP__COUNT; r++)
        fn(ctx, "udp_dropped_total", udp_drop_names[r], (double)m->udp_dropped[r]);
    fn(ctx, "udp_replies_withheld_total", NULL, (double)m->udp_withheld);
    fn(ctx, "reply_bytes", NULL, (double)m->reply_bytes);
    fn(ctx, "input_bytes", NULL, (double)m->input_bytes);
    fn(ctx, "commits_total", NULL, (double)c->commits);
    const char *none[] = {NULL};
    const struct metrics_hist *batch[] = {&c->batch_size}, *commit[] = {&c->commit_seconds};
    visit_hists("commit_batch_size", none, batch, 1, fn, ctx);
    visit_hists("commit_seconds", none, commit, 1, fn, ctx);
}
