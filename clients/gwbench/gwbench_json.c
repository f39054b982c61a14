/*
 * gwbench_json.c - the --json report; see gwbench_json.h and
 * docs/comparison.md for its fields.
 */
#include "gwbench_json.h"

#include "buf.h"
#include "gwbench_udp.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const int places[COL__COUNT] = {
    [COL_MSGS] = 1,  [COL_OFFERED] = 1, [COL_GOT] = 4,  [COL_P50] = 1,
    [COL_P90] = 1,   [COL_P99] = 1,     [COL_MAX] = 1,  [COL_BYTES] = 1,
    [COL_CONNS] = 3, [COL_EMPTY] = 4,   [COL_LOST] = 4,
};

/* What a style's latency is the time of. */
static json_t *latency_of(const struct style_info *si)
{
    if (si->role == ROLE_UDP)
        return json_null(); /* fire and forget: nothing answers */
    return json_string(si->kind == STYLE_DELIVERY    ? "publish->received"
                       : si->kind == STYLE_ROUNDTRIP ? "ping->pong"
                                                     : "publish->ack");
}

/* x rounded to places decimals, as a JSON number. */
static json_t *num(double x, int decimals)
{
    double f = pow(10.0, decimals);
    return json_real(round(x * f) / f);
}

/* Every detail of one run of one style. */
static json_t *run_json(const struct gwbench_opts *o, const struct style_result *r, long run)
{
    const struct style_info *si = &gwbench_styles[r->id];
    bool delivery = si->kind == STYLE_DELIVERY;
    json_t *j = json_object();

    json_object_set_new(j, "run", json_integer(run));
    for (int c = 0; c < COL__COUNT; c++) {
        double v;
        json_object_set_new(j, out_cols[c].key,
                            out_value(r, (enum out_col)c, &v) ? num(v, places[c]) : json_null());
    }
    json_object_set_new(j, "messages", json_integer((json_int_t)r->messages));
    json_object_set_new(j, "channel", json_string(r->channel));
    if (r->failed) {
        json_object_set_new(j, "error", json_string(r->error));
        return j;
    }
    json_object_set_new(j, "published",
                        delivery ? json_integer((json_int_t)r->published) : json_null());
    json_object_set_new(j, "sent", delivery ? json_null() : json_integer((json_int_t)r->sent));
    json_object_set_new(j, "lost", delivery ? json_null() : json_integer((json_int_t)r->lost));
    json_object_set_new(j, "udp_drops", si->udp ? json_string(r->drops) : json_null());
    json_object_set_new(j, "seconds", num(r->seconds, 3));
    json_object_set_new(j, "bytes_out", json_integer((json_int_t)r->bytes_out));
    json_object_set_new(j, "bytes_in", json_integer((json_int_t)r->bytes_in));
    json_object_set_new(j, "connections", json_integer((json_int_t)r->connections));
    json_object_set_new(j, "polls",
                        gwbench_style_polls(si) ? json_integer((json_int_t)r->polls) : json_null());
    json_object_set_new(j, "empty_polls",
                        gwbench_style_polls(si) ? json_integer((json_int_t)r->empty_polls)
                                                : json_null());
    if (si->wait_s)
        json_object_set_new(j, "early_empty_polls", json_integer((json_int_t)r->early_empty));
    json_object_set_new(j, "latency_corrected", json_boolean(r->lat_corrected));
    if (!delivery && o->rate > 0)
        json_object_set_new(j, "backlog", json_integer((json_int_t)r->backlog));
    json_object_set_new(j, "error", json_null());
    return j;
}

static json_t *style_json(const struct gwbench_opts *o, const struct style_summary *s,
                          const struct style_result *res, size_t n, size_t runs)
{
    const struct style_info *si = &gwbench_styles[s->id];
    bool delivery = si->kind == STYLE_DELIVERY;
    json_t *j = json_object(), *per_run = json_array();

    json_object_set_new(j, "name", json_string(si->name));
    json_object_set_new(j, "kind", json_string(gwbench_kind_name(si->kind)));
    json_object_set_new(j, "latency_of", latency_of(si));
    for (int c = 0; c < COL__COUNT; c++)
        json_object_set_new(j, out_cols[c].key,
                            s->has[c] ? num(s->med[c], places[c]) : json_null());
    json_object_set_new(j, "fell_short",
                        delivery && !s->failed ? json_boolean(s->fell_short) : json_null());
    json_object_set_new(j, "messages", json_integer((json_int_t)s->messages_med));
    json_object_set_new(j, "published",
                        delivery && s->first && !s->failed
                            ? json_integer((json_int_t)s->first->published)
                            : json_null());
    json_object_set_new(j, "receivers", delivery ? json_integer(o->connections) : json_null());
    json_object_set_new(j, "runs", json_integer((json_int_t)runs));
    if (runs > 1 && !s->failed) {
        json_t *spread = json_object();
        for (int c = 0; c < COL__COUNT; c++) {
            json_t *mm;
            if (!s->has[c])
                continue;
            mm = json_object();
            json_object_set_new(mm, "min", num(s->lo[c], places[c]));
            json_object_set_new(mm, "max", num(s->hi[c], places[c]));
            json_object_set_new(spread, out_cols[c].key, mm);
        }
        json_object_set_new(j, "spread", spread);
    }
    for (size_t k = 0; k < runs; k++) {
        const struct style_result *r = &res[k * n + s->id];
        if (r->ran)
            json_array_append_new(per_run, run_json(o, r, (long)k + 1));
    }
    json_object_set_new(j, "per_run", per_run);
    if (s->failed) {
        char what[sizeof(s->failure->error) + 32];
        snprintf(what, sizeof(what), "run %ld: %s", s->failed_run, s->failure->error);
        json_object_set_new(j, "error", json_string(runs > 1 ? what : s->failure->error));
    } else {
        json_object_set_new(j, "error", json_null());
    }
    return j;
}

static json_t *config_json(const struct gwbench_opts *o, const struct style_summary *sum, size_t n)
{
    json_t *c = json_object(), *names = json_array();
    bool http = false, tcp = false, udp = false;

    for (size_t i = 0; i < n; i++) {
        const struct style_info *si = &gwbench_styles[sum[i].id];
        if (!sum[i].ran)
            continue;
        http = http || si->http;
        tcp = tcp || si->tcp;
        udp = udp || si->udp;
        json_array_append_new(names, json_string(si->name));
    }
    json_object_set_new(c, "http", http ? json_string(o->http.text) : json_null());
    json_object_set_new(c, "tcp", tcp ? json_string(o->tcp.text) : json_null());
    json_object_set_new(c, "udp", udp ? json_string(o->udp.text) : json_null());
    json_object_set_new(c, "udp_ping_lost_ms", json_integer(GWBENCH_UDP_LOST_MS));
    json_object_set_new(c, "connections", json_integer(o->connections));
    json_object_set_new(c, "duration_s", o->messages ? json_null() : num(o->duration_s, 3));
    json_object_set_new(c, "messages", o->messages ? json_integer(o->messages) : json_null());
    json_object_set_new(c, "size", json_integer(o->size));
    json_object_set_new(c, "window", json_integer(o->window));
    json_object_set_new(c, "poll_interval_ms", json_integer(o->poll_ms));
    json_object_set_new(c, "rate", o->rate > 0 ? num(o->rate, 3) : json_null());
    json_object_set_new(c, "delivery_rate", num(o->deliver_rate, 3));
    json_object_set_new(c, "delivery_publisher", json_string("one TCP session, PUBs pipelined"));
    json_object_set_new(c, "runs", json_integer(o->runs));
    json_object_set_new(c, "latency_method", json_string(out_latency_method(o)));
    json_object_set_new(c, "styles", names);
    json_object_set_new(c, "channel_prefix",
                        json_sprintf("%s%s-", GWBENCH_CHANNEL_PREFIX, o->run_id));
    json_object_set_new(c, "channels_kept", json_boolean(!o->spawned));
    json_object_set_new(c, "machine", json_string(o->machine));
    json_object_set_new(c, "started", json_string(o->started));
    json_object_set_new(c, "gwbench", json_string(VISAVIS_VERSION));
    return c;
}

static json_t *winners_json(const struct style_summary *sum, size_t n, enum style_kind kind)
{
    json_t *w = json_object();

    for (int c = 0; c < COL__COUNT; c++) {
        int i;
        if (!out_cols[c].ranked || !out_col_in((enum out_col)c, kind))
            continue;
        i = out_winner(sum, n, (enum out_col)c, kind);
        json_object_set_new(w, out_cols[c].key,
                            i < 0 ? json_null() : json_string(gwbench_styles[sum[i].id].name));
    }
    return w;
}

char *gj_report(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                const struct style_result *res, size_t runs)
{
    json_t *root = json_object(), *styles = json_array(), *win = json_object();
    struct buf out = BUF_INIT;
    char *text;

    for (size_t i = 0; i < n; i++) {
        if (sum[i].ran)
            json_array_append_new(styles, style_json(o, &sum[i], res, n, runs));
    }
    for (int k = 0; k < STYLE__KINDS; k++)
        json_object_set_new(win, gwbench_kind_name((enum style_kind)k),
                            winners_json(sum, n, (enum style_kind)k));
    json_object_set_new(root, "styles", styles);
    json_object_set_new(root, "config", config_json(o, sum, n));
    json_object_set_new(root, "winners", win);
    text = json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(15));
    json_decref(root);
    if (!text)
        return NULL;
    buf_append(&out, text, strlen(text));
    buf_append(&out, "\n", 1);
    free(text);
    return buf_detach(&out, NULL);
}
