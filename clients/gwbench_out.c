/*
 * gwbench_out.c - the table, the CSV, the winners and the SVG chart; see
 * gwbench_out.h.
 *
 * The chart is written by hand, element by element: two panels, messages/s
 * on a linear axis and p50/p99 latency on a logarithmic one (the styles
 * differ by orders of magnitude there), one row per style, labelled with
 * the values so that the picture can be read without the table.
 */
#include "gwbench_out.h"

#include "buf.h"
#include "gwbench_json.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const struct out_col_info out_cols[COL__COUNT] = {
    [COL_MSGS] = {"msgs_per_s", "msgs/s", true},
    [COL_P50] = {"p50_us", "p50", false},
    [COL_P90] = {"p90_us", "p90", false},
    [COL_P99] = {"p99_us", "p99", false},
    [COL_MAX] = {"max_us", "max", false},
    [COL_BYTES] = {"bytes_per_msg", "bytes/msg", false},
    [COL_CONNS] = {"connections_per_1k", "conns/1k", false},
    [COL_EMPTY] = {"empty_poll_share", "empty polls", false},
};

bool out_value(const struct style_result *r, enum out_col col, double *v)
{
    if (!r->ran || r->failed || r->messages == 0)
        return false;
    switch (col) {
    case COL_MSGS:
        *v = r->msgs_per_s;
        return true;
    case COL_P50:
        *v = r->lat.p50_us;
        return true;
    case COL_P90:
        *v = r->lat.p90_us;
        return true;
    case COL_P99:
        *v = r->lat.p99_us;
        return true;
    case COL_MAX:
        *v = r->lat.max_us;
        return true;
    case COL_BYTES:
        *v = (double)(r->bytes_in + r->bytes_out) / (double)r->messages;
        return true;
    case COL_CONNS:
        *v = (double)r->connections * 1000.0 / (double)r->messages;
        return true;
    case COL_EMPTY:
        if (!gwbench_styles[r->id].polls || r->polls == 0)
            return false;
        *v = (double)r->empty_polls / (double)r->polls;
        return true;
    case COL__COUNT:
        break;
    }
    return false;
}

int out_winner(const struct style_result *res, size_t n, enum out_col col)
{
    int best = -1;
    double bv = 0;

    for (size_t i = 0; i < n; i++) {
        double v;
        if (!out_value(&res[i], col, &v))
            continue;
        if (best < 0 || (out_cols[col].higher_better ? v > bv : v < bv)) {
            best = (int)i;
            bv = v;
        }
    }
    return best;
}

/* How the publish styles' latency was measured. */
static const char *publish_method(const struct gwbench_opts *o)
{
    if (o->rate > 0)
        return "open loop: each publish has an intended send time on a fixed schedule and its "
               "latency counts from then (requests still unsent when time is up count the time "
               "they waited)";
    return "closed loop, corrected for coordinated omission (HdrHistogram's expected-interval "
           "method, the interval being the median service time)";
}

#define DELIVERY_METHOD "from the intended send time carried in each message's body"

const char *out_latency_method(const struct gwbench_opts *o)
{
    static char text[512];

    snprintf(text, sizeof(text), "publish styles: %s; delivery styles: %s", publish_method(o),
             DELIVERY_METHOD);
    return text;
}

/* ---- numbers for people ---- */

/* 1234567 -> "1,234,567" */
static const char *fmt_count(double v, char *out, size_t len)
{
    char digits[32];
    int n = snprintf(digits, sizeof(digits), "%.0f", v < 0 ? 0 : v);
    size_t o = 0;

    for (int i = 0; i < n && o + 2 < len; i++) {
        out[o++] = digits[i];
        if ((n - i - 1) % 3 == 0 && i != n - 1)
            out[o++] = ',';
    }
    out[o] = '\0';
    return out;
}

static const char *fmt_lat(double us, char *out, size_t len)
{
    if (us < 1000)
        snprintf(out, len, "%.0fus", us);
    else if (us < 10000)
        snprintf(out, len, "%.2fms", us / 1e3);
    else if (us < 100000)
        snprintf(out, len, "%.1fms", us / 1e3);
    else if (us < 1e6)
        snprintf(out, len, "%.0fms", us / 1e3);
    else
        snprintf(out, len, "%.2fs", us / 1e6);
    return out;
}

/* An axis tick of the latency panel: a power of ten of µs. */
static const char *fmt_decade(double us, char *out, size_t len)
{
    if (us < 1000)
        snprintf(out, len, "%.0fus", us);
    else if (us < 1e6)
        snprintf(out, len, "%.0fms", us / 1e3);
    else
        snprintf(out, len, "%.0fs", us / 1e6);
    return out;
}

static const char *fmt_small(double v, char *out, size_t len)
{
    snprintf(out, len, v >= 100 ? "%.0f" : v >= 10 ? "%.1f" : "%.2f", v);
    return out;
}

/* The cell of r in col, for the table. */
static const char *cell(const struct style_result *r, enum out_col col, char *out, size_t len)
{
    double v;

    if (!out_value(r, col, &v))
        return "-";
    switch (col) {
    case COL_MSGS:
        return fmt_count(v, out, len);
    case COL_BYTES:
        snprintf(out, len, "%.0f", v);
        return out;
    case COL_CONNS:
        return fmt_small(v, out, len);
    case COL_EMPTY:
        snprintf(out, len, "%.1f%%", v * 100);
        return out;
    default:
        return fmt_lat(v, out, len);
    }
}

static void describe(const struct gwbench_opts *o, const struct style_result *res, size_t n,
                     struct buf *out)
{
    char line[1024], num[32];
    bool http = false, tcp = false, publish = false, delivery = false;
    int k;

    for (size_t i = 0; i < n; i++) {
        if (!res[i].ran)
            continue;
        http = http || gwbench_styles[res[i].id].http;
        tcp = tcp || gwbench_styles[res[i].id].tcp;
        if (gwbench_styles[res[i].id].delivery)
            delivery = true;
        else
            publish = true;
    }
    k = snprintf(line, sizeof(line), "gwbench %s against%s%s%s%s; ", VISAVIS_VERSION,
                 http ? " REST " : "", http ? o->http.text : "", tcp ? " TCP " : "",
                 tcp ? o->tcp.text : "");
    if (o->messages)
        k += snprintf(line + k, sizeof(line) - (size_t)k, "%s messages per style",
                      fmt_count((double)o->messages, num, sizeof(num)));
    else
        k += snprintf(line + k, sizeof(line) - (size_t)k, "%g s per style", o->duration_s);
    snprintf(line + k, sizeof(line) - (size_t)k, ", %ld-byte bodies\n", o->size);
    buf_append(out, line, strlen(line));
    if (publish) {
        const char *plural = o->connections == 1 ? "" : "s";
        if (o->rate > 0)
            snprintf(
                line, sizeof(line),
                "publish:  %ld connection%s, open loop at %s msg/s; tcp-pipelined window %ld\n",
                o->connections, plural, fmt_count(o->rate, num, sizeof(num)), o->window);
        else
            snprintf(line, sizeof(line),
                     "publish:  %ld connection%s, closed loop; tcp-pipelined window %ld\n",
                     o->connections, plural, o->window);
        buf_append(out, line, strlen(line));
    }
    if (delivery) {
        snprintf(line, sizeof(line),
                 "delivery: %ld receiver%s; one TCP session publishes %s msg/s; rest-poll every "
                 "%ld ms, rest-longpoll wait=%d\n",
                 o->connections, o->connections == 1 ? "" : "s",
                 fmt_count(o->deliver_rate, num, sizeof(num)), o->poll_ms, GWBENCH_LONGPOLL_WAIT_S);
        buf_append(out, line, strlen(line));
    }
}

/* Notes on results that need a word: they go under the table, or to stderr. */
static void notes(const struct gwbench_opts *o, const struct style_result *res, size_t n,
                  struct buf *out)
{
    char line[512];

    for (size_t i = 0; i < n; i++) {
        const struct style_result *r = &res[i];
        if (!r->ran || r->failed)
            continue;
        if (r->id == STYLE_REST_LONGPOLL && r->empty_polls && r->early_empty * 2 > r->empty_polls) {
            snprintf(line, sizeof(line),
                     "note: rest-longpoll: %llu of %llu empty answers came back at once, not after "
                     "wait=%d s: this gateway does not hold long-polls, so the row shows polling "
                     "as fast as it answers\n",
                     (unsigned long long)r->early_empty, (unsigned long long)r->empty_polls,
                     GWBENCH_LONGPOLL_WAIT_S);
            buf_append(out, line, strlen(line));
        }
        /*
         * Up to one request per slot may be due behind one in flight when
         * time is up: that is the schedule, not falling behind.
         */
        if (r->backlog > (uint64_t)(o->connections * o->window) && r->backlog * 100 > r->messages) {
            snprintf(line, sizeof(line),
                     "note: %s could not keep up with --rate %g: %llu publishes were still due "
                     "unsent at the end (counted in the latency with the time they waited)\n",
                     gwbench_styles[r->id].name, o->rate, (unsigned long long)r->backlog);
            buf_append(out, line, strlen(line));
        }
    }
}

static void winners_line(const struct style_result *res, size_t n, struct buf *out)
{
    bool any = false;

    for (int c = 0; c < COL__COUNT; c++) {
        int w = out_winner(res, n, (enum out_col)c);
        if (w < 0)
            continue;
        buf_append(out, any ? ", " : "best: ", any ? 2 : 6);
        buf_append(out, out_cols[c].title, strlen(out_cols[c].title));
        buf_append(out, " ", 1);
        buf_append(out, gwbench_styles[res[w].id].name, strlen(gwbench_styles[res[w].id].name));
        any = true;
    }
    if (any)
        buf_append(out, "\n", 1);
}

static void table(const struct gwbench_opts *o, const struct style_result *res, size_t n,
                  struct buf *out)
{
    static const int width[COL__COUNT] = {10, 8, 8, 8, 8, 10, 9, 12};
    char line[GW_ERRLEN * 3], tmp[64];
    size_t k;
    bool pub = false, del = false;

    describe(o, res, n, out);
    buf_append(out, "\n", 1);
    k = (size_t)snprintf(line, sizeof(line), "%-15s", "style");
    for (int c = 0; c < COL__COUNT; c++)
        k += (size_t)snprintf(line + k, sizeof(line) - k, "%*s", width[c], out_cols[c].title);
    buf_append(out, line, k);
    buf_append(out, "\n", 1);
    for (size_t i = 0; i < n; i++) {
        const struct style_result *r = &res[i];
        if (!r->ran)
            continue;
        if (gwbench_styles[r->id].delivery)
            del = true;
        else
            pub = true;
        k = (size_t)snprintf(line, sizeof(line), "%-15s", gwbench_styles[r->id].name);
        if (r->failed) {
            k += (size_t)snprintf(line + k, sizeof(line) - k, "FAILED: %s", r->error);
        } else {
            for (int c = 0; c < COL__COUNT; c++)
                k += (size_t)snprintf(line + k, sizeof(line) - k, "%*s", width[c],
                                      cell(r, (enum out_col)c, tmp, sizeof(tmp)));
        }
        if (k >= sizeof(line))
            k = sizeof(line) - 1;
        buf_append(out, line, k);
        buf_append(out, "\n", 1);
    }
    buf_append(out, "\n", 1);
    winners_line(res, n, out);
    if (pub || del) {
        snprintf(line, sizeof(line), "latency: %s%s%s%s%s.\n",
                 pub ? "publish -> ack for the publish styles, " : "", pub ? publish_method(o) : "",
                 pub && del ? "; " : "", del ? "publish -> received for the delivery styles, " : "",
                 del ? DELIVERY_METHOD : "");
        buf_append(out, line, strlen(line));
    }
    notes(o, res, n, out);
}

static void csv_field(struct buf *out, const char *s)
{
    bool quote = strpbrk(s, ",\"\n\r") != NULL;

    if (!quote) {
        buf_append(out, s, strlen(s));
        return;
    }
    buf_append(out, "\"", 1);
    for (const char *p = s; *p; p++) {
        if (*p == '"')
            buf_append(out, "\"", 1);
        buf_append(out, p, 1);
    }
    buf_append(out, "\"", 1);
}

static void csv(const struct style_result *res, size_t n, struct buf *out)
{
    static const char *const fmt[COL__COUNT] = {"%.1f", "%.1f", "%.1f", "%.1f",
                                                "%.1f", "%.1f", "%.3f", "%.4f"};
    char tmp[64];

    buf_append(out, "style", 5);
    for (int c = 0; c < COL__COUNT; c++) {
        buf_append(out, ",", 1);
        buf_append(out, out_cols[c].key, strlen(out_cols[c].key));
    }
    buf_append(out, ",messages,error\n", 16);
    for (size_t i = 0; i < n; i++) {
        const struct style_result *r = &res[i];
        if (!r->ran)
            continue;
        buf_append(out, gwbench_styles[r->id].name, strlen(gwbench_styles[r->id].name));
        for (int c = 0; c < COL__COUNT; c++) {
            double v;
            buf_append(out, ",", 1);
            if (out_value(r, (enum out_col)c, &v)) {
                snprintf(tmp, sizeof(tmp), fmt[c], v);
                buf_append(out, tmp, strlen(tmp));
            }
        }
        snprintf(tmp, sizeof(tmp), ",%llu,", (unsigned long long)r->messages);
        buf_append(out, tmp, strlen(tmp));
        if (r->failed)
            csv_field(out, r->error);
        buf_append(out, "\n", 1);
    }
}

int out_report(const struct gwbench_opts *o, const struct style_result *res, size_t n)
{
    struct buf out = BUF_INIT, side = BUF_INIT;
    int rc = 0;

    switch (o->format) {
    case OUT_TABLE:
        table(o, res, n, &out);
        break;
    case OUT_CSV:
        csv(res, n, &out);
        notes(o, res, n, &side);
        break;
    case OUT_JSON: {
        char *text = gj_report(o, res, n);
        GW_ASSERT(text);
        buf_append(&out, text, strlen(text));
        free(text);
        notes(o, res, n, &side);
        break;
    }
    }
    if (side.len)
        fputs(side.data, stderr);
    if (out.len && fwrite(out.data, 1, out.len, stdout) != out.len)
        rc = -1;
    if (fflush(stdout) != 0)
        rc = -1;
    if (rc < 0)
        gwbench_status("cannot write the report to stdout: %s", strerror(errno));
    buf_release(&out);
    buf_release(&side);
    return rc;
}

/* ---- SVG ---- */

#define SVG_W       960
#define SVG_LABEL_W 150 /* style names */
#define SVG_PLOT_W  620
#define SVG_ROW_H   26
#define SVG_LEFT    (20 + SVG_LABEL_W)

/* Text content with &, <, > (and quotes, for attributes) escaped. */
static void svg_text(struct buf *out, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            buf_append(out, "&amp;", 5);
            break;
        case '<':
            buf_append(out, "&lt;", 4);
            break;
        case '>':
            buf_append(out, "&gt;", 4);
            break;
        case '"':
            buf_append(out, "&quot;", 6);
            break;
        default:
            if ((unsigned char)*s >= 0x20 || *s == '\t')
                buf_append(out, s, 1);
        }
    }
}

/*
 * A round upper end for a linear axis with four intervals: the least of
 * 1, 1.2, 2, 2.4, 4, 6, 8 times a power of ten that is at least v, so that
 * each quarter is a round number too.
 */
static double nice_max(double v)
{
    static const double steps[] = {1, 1.2, 2, 2.4, 4, 6, 8, 10};
    double p = 1;

    if (v <= 0)
        return 1;
    while (p * 10 <= v)
        p *= 10;
    while (p > v)
        p /= 10;
    for (size_t i = 0; i < GW_ARRAY_SIZE(steps); i++) {
        if (v <= steps[i] * p)
            return steps[i] * p;
    }
    return 10 * p;
}

static const char *style_colour(const struct style_result *r)
{
    return gwbench_styles[r->id].delivery ? "#d9822b" : "#2b6cb0";
}

static void svg_build(const struct gwbench_opts *o, const struct style_result *res, size_t n,
                      struct buf *out)
{
    struct buf head = BUF_INIT;
    char num[64];
    size_t rows = 0;
    double tmax = 0, lmin = 0, lmax = 0;
    int y, top1, top2, h;

    for (size_t i = 0; i < n; i++) {
        double v;
        if (!res[i].ran)
            continue;
        rows++;
        if (out_value(&res[i], COL_MSGS, &v) && v > tmax)
            tmax = v;
        if (out_value(&res[i], COL_P50, &v) && v > 0 && (lmin == 0 || v < lmin))
            lmin = v;
        if (out_value(&res[i], COL_P99, &v) && v > lmax)
            lmax = v;
    }
    tmax = nice_max(tmax);
    /* Latency axis: whole decades of µs around every p50 and p99. */
    double dlo = 1, dhi = 10;
    if (lmin > 0) {
        while (dlo * 10 <= lmin)
            dlo *= 10;
        while (dlo > lmin)
            dlo /= 10;
    }
    dhi = dlo * 10;
    while (dhi < lmax)
        dhi *= 10;
    double decades = log10(dhi / dlo);

    describe(o, res, n, &head);
    top1 = 54;
    for (const char *p = head.data; p && *p; p++)
        top1 += *p == '\n' ? 17 : 0;
    top1 += 22;
    top2 = top1 + 30 + (int)rows * SVG_ROW_H + 60;
    h = top2 + 30 + (int)rows * (SVG_ROW_H + 8) + 90;

    buf_appendf(out, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    buf_appendf(
        out,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
        "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"13\">\n",
        SVG_W, h, SVG_W, h);
    buf_appendf(out, "<title>gwbench: throughput and latency per interaction style</title>\n");
    buf_appendf(out, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", SVG_W,
                h);
    buf_appendf(out, "<text x=\"20\" y=\"32\" font-size=\"18\" font-weight=\"bold\">visavis: one "
                     "message service, seven ways to use it</text>\n");
    y = 54;
    for (char *line = head.data, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        buf_appendf(out, "<text x=\"20\" y=\"%d\" fill=\"#444444\">", y);
        svg_text(out, line);
        buf_appendf(out, "</text>\n");
        y += 17;
    }
    buf_release(&head);

    /* Panel 1: messages/s, linear. */
    buf_appendf(out,
                "<text x=\"20\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">Throughput "
                "(messages/s; delivery styles: deliveries/s)</text>\n",
                top1);
    for (int t = 0; t <= 4; t++) {
        double v = tmax * t / 4;
        int x = SVG_LEFT + (int)(SVG_PLOT_W * t / 4);
        buf_appendf(out,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666666\" "
                    "font-size=\"11\">%s</text>\n",
                    x, top1 + 12, x, top1 + 14 + (int)rows * SVG_ROW_H, x,
                    top1 + 28 + (int)rows * SVG_ROW_H, fmt_count(v, num, sizeof(num)));
    }
    y = top1 + 14;
    for (size_t i = 0; i < n; i++) {
        const struct style_result *r = &res[i];
        double v;
        if (!r->ran)
            continue;
        buf_appendf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", SVG_LEFT - 8,
                    y + 16, gwbench_styles[r->id].name);
        if (out_value(r, COL_MSGS, &v)) {
            int w = (int)(SVG_PLOT_W * v / tmax);
            buf_appendf(out,
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n"
                        "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n",
                        SVG_LEFT, y + 3, w < 1 ? 1 : w, SVG_ROW_H - 6, style_colour(r),
                        SVG_LEFT + (w < 1 ? 1 : w) + 6, y + 16, fmt_count(v, num, sizeof(num)));
        } else {
            buf_appendf(out, "<text x=\"%d\" y=\"%d\" fill=\"#b00020\">%s</text>\n", SVG_LEFT + 6,
                        y + 16, r->failed ? "failed" : "no data");
        }
        y += SVG_ROW_H;
    }

    /* Panel 2: p50 and p99, logarithmic. */
    buf_appendf(out,
                "<text x=\"20\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">Latency p50 and "
                "p99 (log scale; publish -&gt; ack, or publish -&gt; received)</text>\n",
                top2);
    for (double d = dlo; d <= dhi * 1.0001; d *= 10) {
        int x = SVG_LEFT + (int)(SVG_PLOT_W * log10(d / dlo) / decades);
        buf_appendf(out,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666666\" "
                    "font-size=\"11\">%s</text>\n",
                    x, top2 + 12, x, top2 + 14 + (int)rows * (SVG_ROW_H + 8), x,
                    top2 + 28 + (int)rows * (SVG_ROW_H + 8), fmt_decade(d, num, sizeof(num)));
    }
    y = top2 + 14;
    for (size_t i = 0; i < n; i++) {
        const struct style_result *r = &res[i];
        double p50, p99;
        if (!r->ran)
            continue;
        buf_appendf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", SVG_LEFT - 8,
                    y + 19, gwbench_styles[r->id].name);
        if (out_value(r, COL_P50, &p50) && out_value(r, COL_P99, &p99)) {
            double a = p50 < dlo ? dlo : p50, b = p99 < dlo ? dlo : p99;
            int w50 = (int)(SVG_PLOT_W * log10(a / dlo) / decades);
            int w99 = (int)(SVG_PLOT_W * log10(b / dlo) / decades);
            char n50[32], n99[32];
            buf_appendf(out,
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"13\" fill=\"%s\"/>\n"
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"13\" fill=\"%s\" "
                        "fill-opacity=\"0.45\"/>\n"
                        "<text x=\"%d\" y=\"%d\" font-size=\"12\">p50 %s, p99 %s</text>\n",
                        SVG_LEFT, y + 3, w50 < 1 ? 1 : w50, style_colour(r), SVG_LEFT, y + 17,
                        w99 < 1 ? 1 : w99, style_colour(r), SVG_LEFT + (w99 < 1 ? 1 : w99) + 6,
                        y + 19, fmt_lat(p50, n50, sizeof(n50)), fmt_lat(p99, n99, sizeof(n99)));
        } else {
            buf_appendf(out, "<text x=\"%d\" y=\"%d\" fill=\"#b00020\">%s</text>\n", SVG_LEFT + 6,
                        y + 19, r->failed ? "failed" : "no data");
        }
        y += SVG_ROW_H + 8;
    }

    /* Legend and footnote. */
    y = top2 + 50 + (int)rows * (SVG_ROW_H + 8);
    buf_appendf(
        out,
        "<rect x=\"20\" y=\"%d\" width=\"14\" height=\"12\" fill=\"#2b6cb0\"/>\n"
        "<text x=\"40\" y=\"%d\">publish styles (latency: publish -&gt; ack)</text>\n"
        "<rect x=\"340\" y=\"%d\" width=\"14\" height=\"12\" fill=\"#d9822b\"/>\n"
        "<text x=\"360\" y=\"%d\">delivery styles (latency: publish -&gt; received)</text>\n"
        "<text x=\"680\" y=\"%d\" fill=\"#444444\">solid: p50, light: p99</text>\n",
        y, y + 11, y, y + 11, y + 11);
    buf_appendf(out, "<text x=\"20\" y=\"%d\" fill=\"#666666\" font-size=\"11\">", y + 34);
    svg_text(out, o->rate > 0 ? "Open loop: latency from each publish's intended send time."
                              : "Closed loop; latency corrected for coordinated omission. "
                                "Delivery latency from the send time carried in each body.");
    buf_appendf(out, "</text>\n</svg>\n");
}

int out_svg(const struct gwbench_opts *o, const struct style_result *res, size_t n,
            const char *path, char err[GW_ERRLEN])
{
    struct buf out = BUF_INIT;
    FILE *f;
    int rc = 0;

    svg_build(o, res, n, &out);
    f = fopen(path, "w");
    if (!f) {
        snprintf(err, GW_ERRLEN, "cannot write %s: %s", path, strerror(errno));
        buf_release(&out);
        return -1;
    }
    if (fwrite(out.data, 1, out.len, f) != out.len)
        rc = -1;
    if (fclose(f) != 0)
        rc = -1;
    if (rc < 0)
        snprintf(err, GW_ERRLEN, "cannot write %s: %s", path, strerror(errno));
    buf_release(&out);
    return rc;
}
