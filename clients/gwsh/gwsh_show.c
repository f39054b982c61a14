/*
 * gwsh_show.c - server lines and messages as text for a person; see
 * gwsh_show.h.
 */
#include "gwsh_show.h"

#include "client_text.h"
#include "gw.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

void gwsh_status(const char *fmt, ...)
{
    va_list ap;

    fputs("gwsh: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void put(struct buf *out, const char *s)
{
    buf_append(out, s, strlen(s));
}

/* A string field, escaped; "?" when absent. */
static void put_text(struct buf *out, struct sl_text t)
{
    if (t.s)
        client_text_safe(out, t.s, t.len);
    else
        put(out, "?");
}

/* An integer field; "?" when absent. */
static void put_int(struct buf *out, int64_t v)
{
    if (v >= 0)
        buf_appendf(out, "%" PRId64, v);
    else
        put(out, "?");
}

/* "2026-11-24T09:15:02.417Z" -> "09:15:02.417"; other forms as they are. */
static void put_ts_short(struct buf *out, struct sl_text ts)
{
    if (ts.s && ts.len == 24 && ts.s[10] == 'T' && ts.s[23] == 'Z')
        ts = (struct sl_text){ts.s + 11, 12}; /* escaped as any text: a server may put anything */
    put_text(out, ts);
}

/* [general #4] ana: salut  (rest, 09:15:02.417) */
static void put_message(struct buf *out, const struct sl_msg *m)
{
    put(out, "[");
    put_text(out, m->channel);
    put(out, " #");
    put_int(out, m->seq);
    put(out, "] ");
    put_text(out, m->sender);
    put(out, ": ");
    put_text(out, m->body);
    put(out, "  (");
    put_text(out, m->via);
    put(out, ", ");
    put_ts_short(out, m->ts);
    put(out, ")");
}

static void put_tag(struct buf *out, const struct server_line *l)
{
    if (l->tag.s) {
        put(out, " (tag ");
        put_text(out, l->tag);
        put(out, ")");
    }
}

/* Server time in microseconds since the epoch, as UTC. */
static void put_time_us(struct buf *out, int64_t us)
{
    time_t secs = (time_t)(us / 1000000);
    struct tm tm;
    char tmp[64];

    if (us < 0 || !gmtime_r(&secs, &tm)) {
        buf_appendf(out, "%" PRId64 " us", us);
        return;
    }
    strftime(tmp, sizeof(tmp), "%Y-%m-%d %H:%M:%S", &tm);
    buf_appendf(out, "%s.%06d UTC", tmp, (int)(us % 1000000));
}

static void show_ok(const struct server_line *l, struct buf *out)
{
    put(out, "ok ");
    put_text(out, l->op_name);
    switch (l->op) {
    case PROTO_PUB:
        put(out, " ");
        put_text(out, l->msg.channel);
        put(out, " #");
        put_int(out, l->msg.seq);
        put_tag(out, l);
        break;
    case PROTO_SUB:
        put(out, " ");
        put_text(out, l->channel);
        put(out, " since ");
        put_int(out, l->since);
        put(out, " (top ");
        put_int(out, l->top);
        put(out, ")");
        put_tag(out, l);
        break;
    case PROTO_UNSUB:
        put(out, " ");
        put_text(out, l->channel);
        put_tag(out, l);
        break;
    case PROTO_HIST:
        put(out, " ");
        put_text(out, l->channel);
        buf_appendf(out, ": %zu message%s, next since ", l->n_messages,
                    l->n_messages == 1 ? "" : "s");
        put_int(out, l->next_since);
        put_tag(out, l);
        for (size_t i = 0; i < l->n_messages; i++) {
            struct sl_msg m;
            server_line_hist_msg(l, i, &m);
            put(out, "\n  ");
            put_message(out, &m);
        }
        if (l->more) {
            /* The channel goes on: what to type for the next page. */
            put(out, "\n  (more: HIST ");
            put_text(out, l->channel);
            put(out, " ");
            put_int(out, l->next_since);
            put(out, ")");
        }
        break;
    case PROTO_CHANNELS:
        buf_appendf(out, ": %zu", l->n_channels);
        put_tag(out, l);
        for (size_t i = 0; i < l->n_channels; i++) {
            struct sl_channel c;
            server_line_channel(l, i, &c);
            put(out, "\n  ");
            put_text(out, c.name);
            put(out, ": ");
            put_int(out, c.messages);
            put(out, c.messages == 1 ? " message" : " messages");
            put(out, ", last #");
            put_int(out, c.last_seq);
            if (c.last_ts.s) {
                put(out, " at ");
                put_text(out, c.last_ts);
            }
        }
        if (l->next_after.s) {
            /* The page was full: what to type for the next one. */
            put(out, "\n  (more: CHANNELS ");
            put_text(out, l->next_after);
            put(out, ")");
        }
        break;
    case PROTO_HELP:
        put_tag(out, l);
        for (size_t i = 0; i < l->n_commands; i++) {
            struct sl_text t;
            server_line_command(l, i, &t);
            put(out, "\n  ");
            put_text(out, t);
        }
        break;
    default:
        put_tag(out, l);
        break;
    }
    put(out, "\n");
}

static void show_error(const struct server_line *l, struct buf *out)
{
    put(out, "error ");
    put_text(out, l->code);
    put(out, ": ");
    put_text(out, l->message);
    put_tag(out, l);
    /* The slow_consumer farewell says where to resume. */
    for (size_t i = 0; i < l->n_last_seq; i++) {
        struct sl_text channel;
        int64_t seq;
        server_line_last_seq(l, i, &channel, &seq);
        put(out, i == 0 ? "; last seq " : ", ");
        put_text(out, channel);
        put(out, " #");
        put_int(out, seq);
    }
    put(out, "\n");
}

void gwsh_show_line(const struct server_line *l, const char *raw, size_t raw_len, struct buf *out)
{
    switch (l->type) {
    case SL_INVALID:
        /* HELP typed as text answers in words: show them as they are. */
        if (raw_len == 0)
            return; /* the empty line that ends them */
        if (!(raw_len >= 2 && raw[0] == ' ' && raw[1] == ' '))
            put(out, "(not a protocol line) ");
        client_text_safe(out, raw, raw_len);
        put(out, "\n");
        return;
    case SL_HELLO:
        put(out, "hello: ");
        put_text(out, l->server);
        put(out, ", session ");
        put_text(out, l->session);
        put(out, ", heartbeat ");
        put_int(out, l->heartbeat);
        put(out, " s\n");
        return;
    case SL_MESSAGE:
        put_message(out, &l->msg);
        put(out, "\n");
        return;
    case SL_PING:
        return; /* heartbeats are the connection's business, not the reader's */
    case SL_GAP:
        put(out, "gap ");
        put_text(out, l->channel);
        if (l->gap_from >= 0 && l->gap_to >= l->gap_from) {
            put(out, ": messages #");
            put_int(out, l->gap_from);
            put(out, " to #");
            put_int(out, l->gap_to);
            put(out, " are not stored\n");
        } else {
            put(out, ": messages before #");
            put_int(out, l->first_seq);
            put(out, " are no longer stored\n");
        }
        return;
    case SL_OK:
        show_ok(l, out);
        return;
    case SL_PONG:
        put(out, "pong ");
        if (l->token.len) {
            put_text(out, l->token);
            put(out, " ");
        }
        put(out, "(server time ");
        put_time_us(out, l->time_us);
        put(out, ")");
        put_tag(out, l);
        put(out, "\n");
        return;
    case SL_BYE:
        put(out, "bye (");
        put_text(out, l->reason);
        put(out, ")");
        put_tag(out, l);
        put(out, "\n");
        return;
    case SL_ERROR:
        show_error(l, out);
        return;
    case SL_OTHER:
        client_text_safe(out, raw, raw_len);
        put(out, "\n");
        return;
    }
}

void gwsh_show_delay(const struct sl_msg *m, int64_t now_us, struct buf *out)
{
    const char *b = m->body.s ? m->body.s : "";
    size_t len = m->body.s ? m->body.len : 0, i = 0, shown = 0;
    int64_t ts_ms;

    put(out, "push seq ");
    put_int(out, m->seq);
    put(out, " \"");
    /*
     * A character at a time, each escaped whole: the cut falls between two
     * of them, never inside an escape; an escape takes its room on the
     * screen, as wide as it is written.
     */
    while (i < len && shown < GWSH_SHOW_BODY_MAX) {
        size_t n = 1, before = out->len;
        while (i + n < len && ((unsigned char)b[i + n] & 0xC0) == 0x80 && n < 4)
            n++; /* the rest of a UTF-8 sequence */
        client_text_safe(out, b + i, n);
        shown += out->data[before] == '\\' ? out->len - before : 1;
        i += n;
    }
    if (i < len)
        put(out, "\xe2\x80\xa6"); /* … */
    put(out, "\"");
    if (server_line_ts_ms(m->ts, &ts_ms)) {
        double ms = (double)(now_us - ts_ms * 1000) / 1000.0;
        if (ms < 1000)
            buf_appendf(out, " %.1f ms after commit", ms);
        else
            buf_appendf(out, " %.2f s after commit", ms / 1000);
    } else {
        put(out, " (no commit time)");
    }
    put(out, "\n");
}
