/*
 * gwbench_out.c - the table, the CSV and the SVG chart; see gwbench_out.h.
 *
 * The table has a block per kind of style, publish, delivery and round
 * trips, each with its own columns and its own winners (gwbench_cols.h says
 * why). With
 * --runs, each row is the median of the runs and a second row gives the
 * spread of each column, (max - min) / median.
 *
 * The chart is written by hand, element by element: two panels, the publish
 * and round-trip styles' messages/s on a linear axis (the delivery styles
 * are paced, so their rows say so in words instead of a bar) and every
 * style's p50/p99
 * latency on a logarithmic one (the styles differ by orders of magnitude
 * there), labelled with the values so that the picture can be read without
 * the table.
 */
#include "gwbench_out.h"

#include "buf.h"
#include "gwbench_json.h"
#include "gwbench_progress.h"
#include "gwbench_udp.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_W 17  /* the style column */
#define WRAP_W 100 /* notes under the table are folded to this width */

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

/* The cell of s in col, for the table. */
static const char *cell(const struct style_summary *s, enum out_col col, char *out, size_t len)
{
    double v = s->med[col];

    if (!s->has[col])
        return "-";
    switch (col) {
    case COL_MSGS:
    case COL_OFFERED:
        return fmt_count(v, out, len);
    case COL_GOT:
        snprintf(out, len, "%.0f%%%s", v * 100, s->fell_short ? "*" : "");
        return out;
    case COL_BYTES:
        snprintf(out, len, "%.0f", v);
        return out;
    case COL_CONNS:
        return fmt_small(v, out, len);
    case COL_EMPTY:
    case COL_LOST:
        snprintf(out, len, "%.1f%%", v * 100);
        return out;
    default:
        return fmt_lat(v, out, len);
    }
}

/* ---- the words around the numbers ---- */

/*
 * Appends head and text, folded at spaces to WRAP_W columns, the lines after
 * the first indented by the width of head.
 */
static void wrapped(struct buf *out, const char *head, const char *text)
{
    size_t indent = strlen(head), col = indent;
    const char *p = text;

    buf_appendf(out, "%s", head);
    while (*p) {
        const char *sp = strchr(p, ' ');
        size_t word = sp ? (size_t)(sp - p) : strlen(p);
        if (col > indent && col + 1 + word > WRAP_W) {
            buf_appendf(out, "\n%*s", (int)indent, "");
            col = indent;
        } else if (col > indent) {
            buf_appendf(out, " ");
            col++;
        }
        buf_append(out, p, word);
        col += word;
        p += word;
        while (*p == ' ')
            p++;
    }
    buf_appendf(out, "\n");
}

/* wrapped() of a printf-formatted text (up to 1 KiB). */
static void wrappedf(struct buf *out, const char *head, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void wrappedf(struct buf *out, const char *head, const char *fmt, ...)
{
    char text[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    wrapped(out, head, text);
}

/* The block of each kind: its title, the head of its winners line, its colour in the chart. */
static const struct {
    const char *title, *best, *colour;
} kind_info[STYLE__KINDS] = {
    [STYLE_PUBLISH] = {"publish styles", "best publish:    ", "#2b6cb0"},
    [STYLE_DELIVERY] = {"delivery styles", "best delivery:   ", "#d9822b"},
    [STYLE_ROUNDTRIP] = {"round trips", "best round trip: ", "#2f855a"},
};

/* The styles of the run: which fronts, which kinds (ran[kind]). */
static void kinds(const struct style_summary *sum, size_t n, bool *http, bool *tcp, bool *udp,
                  bool ran[STYLE__KINDS])
{
    *http = *tcp = *udp = false;
    memset(ran, 0, STYLE__KINDS * sizeof(*ran));
    for (size_t i = 0; i < n; i++) {
        const struct style_info *si = &gwbench_styles[sum[i].id];
        if (!sum[i].ran)
            continue;
        *http = *http || si->http;
        *tcp = *tcp || si->tcp;
        *udp = *udp || si->udp;
        ran[si->kind] = true;
    }
}

/* What was run, where, and when: the head of the table and of the chart, one line each. */
static void describe(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                     struct buf *out)
{
    char num[32];
    bool http, tcp, udp, ran[STYLE__KINDS], any_pipe = false;

    kinds(sum, n, &http, &tcp, &udp, ran);
    buf_appendf(out, "gwbench %s against%s%s%s%s%s%s; ", VISAVIS_VERSION, http ? " REST " : "",
                http ? o->http.text : "", tcp ? " TCP " : "", tcp ? o->tcp.text : "",
                udp ? " UDP " : "", udp ? o->udp.text : "");
    if (o->messages)
        buf_appendf(out, "%s messages per style", fmt_count((double)o->messages, num, sizeof(num)));
    else
        buf_appendf(out, "%g s per style", o->duration_s);
    buf_appendf(out, ", %ld-byte bodies", o->size);
    if (o->runs > 1)
        buf_appendf(out, "; the median of %ld runs", o->runs);
    buf_appendf(out, "\n");
    buf_appendf(out, "on %s; %s\n", o->machine, o->started);
    for (size_t i = 0; i < n; i++)
        any_pipe = any_pipe || (sum[i].ran && gwbench_styles[sum[i].id].pipelined);
    if (ran[STYLE_PUBLISH] || ran[STYLE_ROUNDTRIP]) {
        buf_appendf(out, "%s%ld client%s each, ",
                    ran[STYLE_ROUNDTRIP] ? "publish and round trips: " : "publish:  ",
                    o->connections, o->connections == 1 ? "" : "s");
        if (o->rate > 0)
            buf_appendf(out, "open loop at %s msg/s", fmt_count(o->rate, num, sizeof(num)));
        else
            buf_appendf(out, "closed loop");
        if (any_pipe)
            buf_appendf(out, "; pipelined window %ld", o->window);
        if (o->spawned && udp)
            buf_appendf(out, "; UDP with no rate limit per source (--spawn)");
        buf_appendf(out, "\n");
    }
    if (ran[STYLE_DELIVERY]) {
        buf_appendf(out, "delivery: %ld receiver%s; one TCP session publishes %s msg/s",
                    o->connections, o->connections == 1 ? "" : "s",
                    fmt_count(o->deliver_rate, num, sizeof(num)));
        for (size_t i = 0; i < n; i++) {
            const struct style_info *si = &gwbench_styles[sum[i].id];
            if (!sum[i].ran || !gwbench_style_polls(si))
                continue;
            if (si->wait_s)
                buf_appendf(out, "; %s wait=%d", si->name, si->wait_s);
            else
                buf_appendf(out, "; %s every %ld ms", si->name, o->poll_ms);
        }
        buf_appendf(out, "\n");
    }
}

/* Notes on results that need a word: they go under the table, or to stderr. */
static void notes(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                  struct buf *out)
{
    bool any = false;

    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        const struct style_info *si = &gwbench_styles[s->id];
        any = any || s->ran;
        if (!s->ran || s->failed)
            continue;
        if (si->wait_s && s->empty_polls && s->early_empty * 2 > s->empty_polls)
            wrappedf(out, "note: ",
                     "%s: %llu of %llu empty answers came back at once, not after wait=%d s: "
                     "this gateway does not hold long-polls, so the row shows polling as fast "
                     "as it answers",
                     si->name, (unsigned long long)s->early_empty,
                     (unsigned long long)s->empty_polls, si->wait_s);
        /*
         * Up to one request per slot may be due behind one in flight when
         * time is up: that is the schedule, not falling behind.
         */
        if (s->backlog_max > (uint64_t)(o->connections * o->window) &&
            s->backlog_max * 100 > s->messages_med)
            wrappedf(out, "note: ",
                     "%s could not keep up with --rate %g: %llu publishes were still due unsent "
                     "at the end (counted in the latency with the time they waited)",
                     si->name, o->rate, (unsigned long long)s->backlog_max);
        if (s->fell_short)
            wrappedf(out, "note: ",
                     "%s* fell short of the offered rate: its receivers kept up with %.0f%% of "
                     "it, falling further behind the publisher as the run went on",
                     si->name, s->med[COL_GOT] * 100);
        /* Where the lost datagrams went, as the gateway counted them (the first run's). */
        if (si->udp && s->first && s->first->drops[0])
            wrappedf(out, "note: ",
                     "%s%s: the gateway dropped datagrams (visavis_udp_dropped_total, by reason): "
                     "%s",
                     si->name, o->runs > 1 ? " (first run)" : "", s->first->drops);
    }
    if (any && !o->spawned)
        wrappedf(out, "channels: ",
                 "%s%s-* stay on the gateway (it has no way to delete a channel yet); --spawn "
                 "runs on a database of its own, removed afterwards",
                 GWBENCH_CHANNEL_PREFIX, o->run_id);
}

static void winners_line(const struct style_summary *sum, size_t n, enum style_kind kind,
                         struct buf *out)
{
    bool any = false;

    for (int c = 0; c < COL__COUNT; c++) {
        int w = out_winner(sum, n, (enum out_col)c, kind);
        if (w < 0)
            continue;
        if (!any)
            buf_appendf(out, "%s", kind_info[kind].best);
        buf_appendf(out, "%s %s %s", any ? "," : "", out_cols[c].title,
                    gwbench_styles[sum[w].id].name);
        any = true;
    }
    if (any)
        buf_appendf(out, "\n");
}

/* ---- the table ---- */

static const int widths[COL__COUNT] = {
    [COL_MSGS] = 11, [COL_OFFERED] = 12, [COL_GOT] = 7,  [COL_P50] = 8,
    [COL_P90] = 8,   [COL_P99] = 8,      [COL_MAX] = 8,  [COL_BYTES] = 10,
    [COL_CONNS] = 9, [COL_EMPTY] = 12,   [COL_LOST] = 7,
};

static bool shown_in(enum out_col c, enum style_kind kind)
{
    return out_col_in(c, kind);
}

/* One block: the header, a row per style of the kind (and its spread row with --runs). */
static void block(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                  enum style_kind kind, struct buf *out)
{
    char tmp[64];

    buf_appendf(out, "%-*s", NAME_W, kind_info[kind].title);
    for (int c = 0; c < COL__COUNT; c++) {
        if (shown_in((enum out_col)c, kind))
            buf_appendf(out, "%*s", widths[c], out_cols[c].title);
    }
    buf_appendf(out, "\n");
    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        if (!s->ran || gwbench_styles[s->id].kind != kind)
            continue;
        buf_appendf(out, "%-*s", NAME_W, gwbench_styles[s->id].name);
        if (s->failed) {
            if (o->runs > 1)
                buf_appendf(out, "FAILED in run %ld: %s\n", s->failed_run, s->failure->error);
            else
                buf_appendf(out, "FAILED: %s\n", s->failure->error);
            continue;
        }
        for (int c = 0; c < COL__COUNT; c++) {
            if (shown_in((enum out_col)c, kind))
                buf_appendf(out, "%*s", widths[c], cell(s, (enum out_col)c, tmp, sizeof(tmp)));
        }
        buf_appendf(out, "\n");
        if (o->runs < 2)
            continue;
        buf_appendf(out, "%-*s", NAME_W, "  spread");
        for (int c = 0; c < COL__COUNT; c++) {
            double sp;
            if (!shown_in((enum out_col)c, kind))
                continue;
            sp = out_spread(s, (enum out_col)c);
            if (sp < 0 || c == COL_OFFERED)
                snprintf(tmp, sizeof(tmp), "-");
            else
                snprintf(tmp, sizeof(tmp), "%.*f%%", sp < 0.1 ? 1 : 0, sp * 100);
            buf_appendf(out, "%*s", widths[c], tmp);
        }
        buf_appendf(out, "\n");
    }
}

static void table(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                  struct buf *out)
{
    bool http, tcp, udp, ran[STYLE__KINDS], fire = false;

    kinds(sum, n, &http, &tcp, &udp, ran);
    for (size_t i = 0; i < n; i++)
        fire = fire || (sum[i].ran && gwbench_styles[sum[i].id].role == ROLE_UDP);
    describe(o, sum, n, out);
    for (int k = 0; k < STYLE__KINDS; k++) {
        if (!ran[k])
            continue;
        buf_appendf(out, "\n");
        block(o, sum, n, (enum style_kind)k, out);
    }
    buf_appendf(out, "\n");
    for (int k = 0; k < STYLE__KINDS; k++)
        winners_line(sum, n, (enum style_kind)k, out);
    buf_appendf(out, "\n");
    if (ran[STYLE_PUBLISH])
        wrappedf(out, "publish:  ",
                 "msgs/s is acks per second, a capacity; offered, requests sent per second; "
                 "latency publish -> ack, %s.",
                 out_publish_method(o));
    if (fire)
        wrapped(out, "udp:      ",
                "fire and forget: nothing answers, so msgs/s is messages stored per second "
                "(read back over REST), offered the datagrams sent per second, lost the "
                "share never stored, and there is no latency.");
    if (ran[STYLE_ROUNDTRIP])
        wrappedf(out, "ping:     ",
                 "round trips PING -> pong, nothing stored; msgs/s is pongs per second; lost, "
                 "PINGs whose pong did not come back (UDP: within %d ms).",
                 GWBENCH_UDP_LOST_MS);
    if (ran[STYLE_DELIVERY])
        wrappedf(out, "delivery: ",
                 "paced on purpose, so no msgs/s: \"offered\" is the publisher's rate to each "
                 "receiver, \"got\" the share of it the receivers kept up with (* under "
                 "%.0f%%); latency publish -> received, %s.",
                 OUT_GOT_SHORT * 100, OUT_DELIVERY_METHOD);
    if (o->runs > 1)
        wrappedf(out, "spread:   ", "(max - min) / median of the %ld runs.", o->runs);
    wrapped(out, "numbers:  ",
            "they vary with what else the machine does: compare styles within one run, "
            "repeat with --runs.");
    notes(o, sum, n, out);
}

/* ---- CSV ---- */

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

static const char *const csv_fmt[COL__COUNT] = {
    [COL_MSGS] = "%.1f",  [COL_OFFERED] = "%.1f", [COL_GOT] = "%.4f",  [COL_P50] = "%.1f",
    [COL_P90] = "%.1f",   [COL_P99] = "%.1f",     [COL_MAX] = "%.1f",  [COL_BYTES] = "%.1f",
    [COL_CONNS] = "%.3f", [COL_EMPTY] = "%.4f",   [COL_LOST] = "%.4f",
};

/* One row of CSV: a run's values (r), or the medians (s) when r is NULL. */
static void csv_row(const struct style_summary *s, const struct style_result *r, const char *run,
                    struct buf *out)
{
    const struct style_info *si = &gwbench_styles[s->id];

    buf_appendf(out, "%s,%s,%s", si->name, gwbench_kind_name(si->kind), run);
    for (int c = 0; c < COL__COUNT; c++) {
        double v;
        bool has = r ? out_value(r, (enum out_col)c, &v) : s->has[c];
        if (!r)
            v = s->med[c];
        buf_appendf(out, ",");
        if (has)
            buf_appendf(out, csv_fmt[c], v);
    }
    buf_appendf(out, ",%llu,", (unsigned long long)(r ? r->messages : s->messages_med));
    if (r && r->failed)
        csv_field(out, r->error);
    buf_appendf(out, "\n");
}

static void csv(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                const struct style_result *res, struct buf *out)
{
    char run[24];

    buf_appendf(out, "style,kind,run");
    for (int c = 0; c < COL__COUNT; c++)
        buf_appendf(out, ",%s", out_cols[c].key);
    buf_appendf(out, ",messages,error\n");
    for (size_t i = 0; i < n; i++) {
        if (!sum[i].ran)
            continue;
        for (long k = 0; k < o->runs; k++) {
            const struct style_result *r = &res[(size_t)k * n + i];
            if (!r->ran)
                continue;
            snprintf(run, sizeof(run), "%ld", k + 1);
            csv_row(&sum[i], r, run, out);
        }
        if (o->runs > 1 && !sum[i].failed)
            csv_row(&sum[i], NULL, "median", out);
    }
}

int out_report(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
               const struct style_result *res, size_t runs)
{
    struct buf out = BUF_INIT, side = BUF_INIT;
    int rc = 0;

    switch (o->format) {
    case OUT_TABLE:
        table(o, sum, n, &out);
        break;
    case OUT_CSV:
        csv(o, sum, n, res, &out);
        notes(o, sum, n, &side);
        break;
    case OUT_JSON: {
        char *text = gj_report(o, sum, n, res, runs);
        GW_ASSERT(text);
        buf_append(&out, text, strlen(text));
        free(text);
        notes(o, sum, n, &side);
        break;
    }
    }
    if (side.len) {
        gwbench_progress_end();
        fputs(side.data, stderr);
    }
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
#define SVG_HEAD_Y  54 /* the first line of the description */
#define SVG_LINE_H  17

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

static const char *style_colour(const struct style_summary *s)
{
    return kind_info[gwbench_styles[s->id].kind].colour;
}

static void svg_label(struct buf *out, int y, const struct style_summary *s)
{
    buf_appendf(out, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", SVG_LEFT - 8, y,
                gwbench_styles[s->id].name);
}

static void svg_missing(struct buf *out, int y, const struct style_summary *s)
{
    buf_appendf(out, "<text x=\"%d\" y=\"%d\" fill=\"#b00020\">%s</text>\n", SVG_LEFT + 6, y,
                s->failed ? "failed" : "no data");
}

/* Panel 1: the publish styles' messages/s, linear; the delivery styles say they are paced. */
static void svg_throughput(const struct style_summary *sum, size_t n, size_t rows, int top,
                           struct buf *out)
{
    char num[64];
    double tmax = 0;
    int y;

    for (size_t i = 0; i < n; i++) {
        if (sum[i].ran && gwbench_styles[sum[i].id].kind != STYLE_DELIVERY &&
            sum[i].has[COL_MSGS] && sum[i].hi[COL_MSGS] > tmax)
            tmax = sum[i].hi[COL_MSGS];
    }
    tmax = nice_max(tmax);
    buf_appendf(out,
                "<text x=\"20\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">Throughput "
                "(publishes acknowledged, or stored for udp, and PINGs answered per second)"
                "</text>\n",
                top);
    for (int t = 0; t <= 4; t++) {
        double v = tmax * t / 4;
        int x = SVG_LEFT + (int)(SVG_PLOT_W * t / 4);
        buf_appendf(out,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666666\" "
                    "font-size=\"11\">%s</text>\n",
                    x, top + 12, x, top + 14 + (int)rows * SVG_ROW_H, x,
                    top + 28 + (int)rows * SVG_ROW_H, fmt_count(v, num, sizeof(num)));
    }
    y = top + 14;
    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        if (!s->ran)
            continue;
        svg_label(out, y + 16, s);
        if (gwbench_styles[s->id].kind == STYLE_DELIVERY) {
            if (s->has[COL_OFFERED])
                buf_appendf(out,
                            "<text x=\"%d\" y=\"%d\" fill=\"#666666\" font-size=\"12\">paced, not "
                            "a capacity: %s msgs/s offered to each receiver, %.0f%% got%s</text>\n",
                            SVG_LEFT + 6, y + 16, fmt_count(s->med[COL_OFFERED], num, sizeof(num)),
                            s->med[COL_GOT] * 100, s->fell_short ? " (fell short)" : "");
            else
                svg_missing(out, y + 16, s);
        } else if (s->has[COL_MSGS]) {
            int w = (int)(SVG_PLOT_W * s->med[COL_MSGS] / tmax), right;
            char med[32], lo[32], hi[32], label[128];
            w = w < 1 ? 1 : w;
            right = w;
            buf_appendf(out, "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\" fill=\"%s\"/>\n",
                        SVG_LEFT, y + 3, w, SVG_ROW_H - 6, style_colour(s));
            fmt_count(s->med[COL_MSGS], med, sizeof(med));
            snprintf(label, sizeof(label), "%s", med);
            if (s->runs > 1) {
                /* The range of the runs, as a whisker. */
                int x1 = (int)(SVG_PLOT_W * s->lo[COL_MSGS] / tmax);
                int x2 = (int)(SVG_PLOT_W * s->hi[COL_MSGS] / tmax);
                buf_appendf(out,
                            "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#222222\" "
                            "stroke-width=\"1.5\"/>\n",
                            SVG_LEFT + x1, y + SVG_ROW_H / 2, SVG_LEFT + x2, y + SVG_ROW_H / 2);
                right = x2 > right ? x2 : right;
                snprintf(label, sizeof(label), "%s (%s to %s)", med,
                         fmt_count(s->lo[COL_MSGS], lo, sizeof(lo)),
                         fmt_count(s->hi[COL_MSGS], hi, sizeof(hi)));
            }
            buf_appendf(out, "<text x=\"%d\" y=\"%d\" font-size=\"12\">%s</text>\n",
                        SVG_LEFT + right + 6, y + 16, label);
        } else {
            svg_missing(out, y + 16, s);
        }
        y += SVG_ROW_H;
    }
}

/* Panel 2: p50 and p99 of every style, logarithmic. */
static void svg_latency(const struct style_summary *sum, size_t n, size_t rows, int top,
                        struct buf *out)
{
    char num[64];
    double lmin = 0, lmax = 0, dlo = 1, dhi, decades;
    int y;

    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        if (s->has[COL_P50] && s->med[COL_P50] > 0 && (lmin == 0 || s->med[COL_P50] < lmin))
            lmin = s->med[COL_P50];
        if (s->has[COL_P99] && s->med[COL_P99] > lmax)
            lmax = s->med[COL_P99];
    }
    /* Whole decades of µs around every p50 and p99. */
    if (lmin > 0) {
        while (dlo * 10 <= lmin)
            dlo *= 10;
        while (dlo > lmin)
            dlo /= 10;
    }
    dhi = dlo * 10;
    while (dhi < lmax)
        dhi *= 10;
    decades = log10(dhi / dlo);

    buf_appendf(out,
                "<text x=\"20\" y=\"%d\" font-size=\"15\" font-weight=\"bold\">Latency p50 and "
                "p99 (log scale; publish -&gt; ack, publish -&gt; received, or PING -&gt; "
                "pong)</text>\n",
                top);
    for (double d = dlo; d <= dhi * 1.0001; d *= 10) {
        int x = SVG_LEFT + (int)(SVG_PLOT_W * log10(d / dlo) / decades);
        buf_appendf(out,
                    "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#dddddd\"/>\n"
                    "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\" fill=\"#666666\" "
                    "font-size=\"11\">%s</text>\n",
                    x, top + 12, x, top + 14 + (int)rows * (SVG_ROW_H + 8), x,
                    top + 28 + (int)rows * (SVG_ROW_H + 8), fmt_decade(d, num, sizeof(num)));
    }
    y = top + 14;
    for (size_t i = 0; i < n; i++) {
        const struct style_summary *s = &sum[i];
        if (!s->ran)
            continue;
        svg_label(out, y + 19, s);
        if (gwbench_styles[s->id].role == ROLE_UDP && !s->failed) {
            buf_appendf(out,
                        "<text x=\"%d\" y=\"%d\" fill=\"#666666\" font-size=\"12\">fire and "
                        "forget: no answer to time</text>\n",
                        SVG_LEFT + 6, y + 19);
        } else if (s->has[COL_P50] && s->has[COL_P99]) {
            double p50 = s->med[COL_P50], p99 = s->med[COL_P99];
            double a = p50 < dlo ? dlo : p50, b = p99 < dlo ? dlo : p99;
            int w50 = (int)(SVG_PLOT_W * log10(a / dlo) / decades);
            int w99 = (int)(SVG_PLOT_W * log10(b / dlo) / decades);
            char n50[32], n99[32];
            w50 = w50 < 1 ? 1 : w50;
            w99 = w99 < 1 ? 1 : w99;
            buf_appendf(out,
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"13\" fill=\"%s\"/>\n"
                        "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"13\" fill=\"%s\" "
                        "fill-opacity=\"0.45\"/>\n"
                        "<text x=\"%d\" y=\"%d\" font-size=\"12\">p50 %s, p99 %s</text>\n",
                        SVG_LEFT, y + 3, w50, style_colour(s), SVG_LEFT, y + 17, w99,
                        style_colour(s), SVG_LEFT + w99 + 6, y + 19, fmt_lat(p50, n50, sizeof(n50)),
                        fmt_lat(p99, n99, sizeof(n99)));
        } else {
            svg_missing(out, y + 19, s);
        }
        y += SVG_ROW_H + 8;
    }
}

static void svg_build(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
                      struct buf *out)
{
    struct buf head = BUF_INIT;
    size_t rows = 0;
    int y, top1, top2, h;

    for (size_t i = 0; i < n; i++)
        rows += sum[i].ran ? 1 : 0;
    describe(o, sum, n, &head);
    top1 = SVG_HEAD_Y;
    for (const char *p = head.data; p && *p; p++)
        top1 += *p == '\n' ? SVG_LINE_H : 0;
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
    buf_appendf(out,
                "<text x=\"20\" y=\"32\" font-size=\"18\" font-weight=\"bold\">visavis: one "
                "message service, %zu ways to use it</text>\n",
                rows);
    y = SVG_HEAD_Y;
    for (char *line = head.data, *nl; line && *line; line = nl + 1) {
        nl = strchr(line, '\n');
        if (!nl)
            break;
        *nl = '\0';
        buf_appendf(out, "<text x=\"20\" y=\"%d\" fill=\"#444444\">", y);
        svg_text(out, line);
        buf_appendf(out, "</text>\n");
        y += SVG_LINE_H;
    }
    buf_release(&head);

    svg_throughput(sum, n, rows, top1, out);
    svg_latency(sum, n, rows, top2, out);

    /* Legend and footnote. */
    y = top2 + 50 + (int)rows * (SVG_ROW_H + 8);
    buf_appendf(out,
                "<rect x=\"20\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n"
                "<text x=\"40\" y=\"%d\">publish (publish -&gt; ack)</text>\n"
                "<rect x=\"250\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n"
                "<text x=\"270\" y=\"%d\">delivery (publish -&gt; received)</text>\n"
                "<rect x=\"500\" y=\"%d\" width=\"14\" height=\"12\" fill=\"%s\"/>\n"
                "<text x=\"520\" y=\"%d\">round trips (PING -&gt; pong)</text>\n"
                "<text x=\"740\" y=\"%d\" fill=\"#444444\">solid: p50, light: p99</text>\n",
                y, kind_info[STYLE_PUBLISH].colour, y + 11, y, kind_info[STYLE_DELIVERY].colour,
                y + 11, y, kind_info[STYLE_ROUNDTRIP].colour, y + 11, y + 11);
    buf_appendf(out, "<text x=\"20\" y=\"%d\" fill=\"#666666\" font-size=\"11\">", y + 34);
    svg_text(out, o->rate > 0 ? "Open loop: latency from each publish's intended send time. "
                                "Delivery latency from the send time carried in each body."
                              : "Closed loop; latency corrected for coordinated omission. "
                                "Delivery latency from the send time carried in each body.");
    if (o->runs > 1)
        svg_text(out, " Medians of the runs; whiskers: their range.");
    buf_appendf(out, "</text>\n</svg>\n");
}

int out_svg(const struct gwbench_opts *o, const struct style_summary *sum, size_t n,
            const char *path, char err[GW_ERRLEN])
{
    struct buf out = BUF_INIT;
    FILE *f;
    int rc = 0;

    svg_build(o, sum, n, &out);
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
