/*
 * gwsh_json.c - server lines read with jansson and shown to a person; see
 * gwsh_json.h.
 */
#include "gwsh_json.h"

#include "gw.h"
#include "text.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool gwsh_kind_is_push(enum gwsh_kind kind)
{
    return kind == GWSH_MESSAGE || kind == GWSH_PING || kind == GWSH_GAP;
}

static const char *get_str(const json_t *obj, const char *key)
{
    return json_string_value(json_object_get(obj, key)); /* NULL unless a string */
}

static int64_t get_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

void gwsh_line_parse(const char *line, size_t len, struct gwsh_line *l)
{
    static const struct {
        const char *type;
        enum gwsh_kind kind;
    } kinds[] = {
        {"hello", GWSH_HELLO}, {"message", GWSH_MESSAGE}, {"ping", GWSH_PING},
        {"gap", GWSH_GAP},     {"ok", GWSH_OK},           {"pong", GWSH_PONG},
        {"bye", GWSH_BYE},     {"error", GWSH_ERROR},
    };
    json_error_t jerr;
    json_t *root;
    const char *type;

    memset(l, 0, sizeof(*l));
    l->kind = GWSH_INVALID;
    l->seq = l->since = l->heartbeat = -1;
    /* Bodies may hold U+0000: the server escapes it, and we must take it back. */
    root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (!root)
        return;
    l->json = root;
    type = get_str(root, "type");
    if (!json_is_object(root) || !type)
        return;
    l->kind = GWSH_OTHER;
    for (size_t i = 0; i < GW_ARRAY_SIZE(kinds); i++) {
        if (strcmp(type, kinds[i].type) == 0)
            l->kind = kinds[i].kind;
    }
    l->op = get_str(root, "op");
    l->code = get_str(root, "code");
    l->channel = get_str(root, "channel");
    l->token = get_str(root, "token");
    l->reason = get_str(root, "reason");
    l->server = get_str(root, "server");
    l->session = get_str(root, "session");
    l->seq = get_int(root, "seq");
    l->since = get_int(root, "since");
    l->heartbeat = get_int(root, "heartbeat");
}

void gwsh_line_release(struct gwsh_line *l)
{
    json_decref(l->json);
    l->json = NULL;
}

/* ---- text for a person ---- */

static void put(struct buf *out, const char *s)
{
    buf_append(out, s, strlen(s));
}

void gwsh_put_safe(struct buf *out, const char *s, size_t len)
{
    size_t i = 0;

    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        size_t n;

        if (c >= 0x20 && c < 0x7f) {
            buf_append(out, s + i, 1);
            i++;
            continue;
        }
        if (c == '\n' || c == '\t' || c == '\r') {
            put(out, c == '\n' ? "\\n" : c == '\t' ? "\\t" : "\\r");
            i++;
            continue;
        }
        n = c >= 0x80 ? text_utf8_seq(s + i, len - i) : 0;
        if (n == 0) {
            buf_appendf(out, "\\x%02x", c); /* C0, DEL, or not UTF-8 */
            i++;
        } else if (n == 2 && c == 0xC2 && (unsigned char)s[i + 1] < 0xA0) {
            /* U+0080..U+009F: C1 controls, which some terminals obey (CSI is U+009B). */
            buf_appendf(out, "\\u%04x", (unsigned char)s[i + 1]);
            i += 2;
        } else {
            buf_append(out, s + i, n);
            i += n;
        }
    }
}

static void put_json_str(struct buf *out, const json_t *v)
{
    if (json_is_string(v))
        gwsh_put_safe(out, json_string_value(v), json_string_length(v));
    else if (json_is_integer(v))
        buf_appendf(out, "%" PRId64, (int64_t)json_integer_value(v));
    else
        put(out, "?");
}

/* "2026-11-24T09:15:02.417Z" -> "09:15:02.417"; other forms as they are. */
static void put_ts_short(struct buf *out, const json_t *v)
{
    const char *ts = json_string_value(v);

    if (ts && strlen(ts) == 24 && ts[10] == 'T' && ts[23] == 'Z')
        buf_append(out, ts + 11, 12);
    else
        put_json_str(out, v);
}

/* [general #4] ana: salut  (rest, 09:15:02.417) */
static void put_message(struct buf *out, const json_t *m)
{
    put(out, "[");
    put_json_str(out, json_object_get(m, "channel"));
    put(out, " #");
    put_json_str(out, json_object_get(m, "seq"));
    put(out, "] ");
    put_json_str(out, json_object_get(m, "sender"));
    put(out, ": ");
    put_json_str(out, json_object_get(m, "body"));
    put(out, "  (");
    put_json_str(out, json_object_get(m, "via"));
    put(out, ", ");
    put_ts_short(out, json_object_get(m, "ts"));
    put(out, ")");
}

static void put_tag(struct buf *out, const json_t *root)
{
    const json_t *tag = json_object_get(root, "tag");

    if (tag) {
        put(out, " (tag ");
        put_json_str(out, tag);
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

static void format_ok(const json_t *root, const char *op, struct buf *out)
{
    const json_t *v;
    size_t i;

    put(out, "ok ");
    gwsh_put_safe(out, op ? op : "?", op ? strlen(op) : 1);
    if (!op) {
        put_tag(out, root);
    } else if (strcmp(op, "pub") == 0) {
        const json_t *m = json_object_get(root, "message");
        put(out, " ");
        put_json_str(out, json_object_get(m, "channel"));
        put(out, " #");
        put_json_str(out, json_object_get(m, "seq"));
        put_tag(out, root);
    } else if (strcmp(op, "sub") == 0) {
        put(out, " ");
        put_json_str(out, json_object_get(root, "channel"));
        put(out, " since ");
        put_json_str(out, json_object_get(root, "since"));
        put(out, " (top ");
        put_json_str(out, json_object_get(root, "top"));
        put(out, ")");
        put_tag(out, root);
    } else if (strcmp(op, "unsub") == 0) {
        put(out, " ");
        put_json_str(out, json_object_get(root, "channel"));
        put_tag(out, root);
    } else if (strcmp(op, "hist") == 0) {
        v = json_object_get(root, "messages");
        put(out, " ");
        put_json_str(out, json_object_get(root, "channel"));
        buf_appendf(out, ": %zu message%s, next since ", json_array_size(v),
                    json_array_size(v) == 1 ? "" : "s");
        put_json_str(out, json_object_get(root, "next_since"));
        put_tag(out, root);
        for (i = 0; i < json_array_size(v); i++) {
            put(out, "\n  ");
            put_message(out, json_array_get(v, i));
        }
    } else if (strcmp(op, "channels") == 0) {
        v = json_object_get(root, "channels");
        buf_appendf(out, ": %zu", json_array_size(v));
        put_tag(out, root);
        for (i = 0; i < json_array_size(v); i++) {
            const json_t *c = json_array_get(v, i);
            const json_t *ts = json_object_get(c, "last_ts");
            put(out, "\n  ");
            put_json_str(out, json_object_get(c, "name"));
            put(out, ": ");
            put_json_str(out, json_object_get(c, "messages"));
            put(out,
                json_integer_value(json_object_get(c, "messages")) == 1 ? " message" : " messages");
            put(out, ", last #");
            put_json_str(out, json_object_get(c, "last_seq"));
            if (json_is_string(ts)) {
                put(out, " at ");
                put_json_str(out, ts);
            }
        }
    } else if (strcmp(op, "help") == 0) {
        v = json_object_get(root, "commands");
        put_tag(out, root);
        for (i = 0; i < json_array_size(v); i++) {
            put(out, "\n  ");
            put_json_str(out, json_array_get(v, i));
        }
    } else {
        put_tag(out, root);
    }
    put(out, "\n");
}

static void format_error(const json_t *root, struct buf *out)
{
    const json_t *last = json_object_get(root, "last_seq");
    const char *key;
    json_t *v;
    bool first = true;

    put(out, "error ");
    put_json_str(out, json_object_get(root, "code"));
    put(out, ": ");
    put_json_str(out, json_object_get(root, "message"));
    put_tag(out, root);
    /* The slow_consumer farewell says where to resume. */
    json_object_foreach((json_t *)last, key, v)
    {
        put(out, first ? "; last seq " : ", ");
        gwsh_put_safe(out, key, strlen(key));
        put(out, " #");
        put_json_str(out, v);
        first = false;
    }
    put(out, "\n");
}

void gwsh_line_format(const struct gwsh_line *l, const char *raw, size_t raw_len, struct buf *out)
{
    const json_t *root = l->json;

    switch (l->kind) {
    case GWSH_INVALID:
        put(out, "(not a protocol line) ");
        gwsh_put_safe(out, raw, raw_len);
        put(out, "\n");
        return;
    case GWSH_HELLO:
        put(out, "hello: ");
        put_json_str(out, json_object_get(root, "server"));
        put(out, ", session ");
        put_json_str(out, json_object_get(root, "session"));
        put(out, ", heartbeat ");
        put_json_str(out, json_object_get(root, "heartbeat"));
        put(out, " s\n");
        return;
    case GWSH_MESSAGE:
        put_message(out, root);
        put(out, "\n");
        return;
    case GWSH_PING:
        return; /* heartbeats are the connection's business, not the reader's */
    case GWSH_GAP:
        put(out, "gap ");
        put_json_str(out, json_object_get(root, "channel"));
        put(out, ": messages before #");
        put_json_str(out, json_object_get(root, "first_seq"));
        put(out, " are no longer stored\n");
        return;
    case GWSH_OK:
        format_ok(root, l->op, out);
        return;
    case GWSH_PONG:
        put(out, "pong ");
        if (l->token && *l->token) {
            gwsh_put_safe(out, l->token, strlen(l->token));
            put(out, " ");
        }
        put(out, "(server time ");
        put_time_us(out, get_int(root, "time_us"));
        put(out, ")");
        put_tag(out, root);
        put(out, "\n");
        return;
    case GWSH_BYE:
        put(out, "bye (");
        put_json_str(out, json_object_get(root, "reason"));
        put(out, ")");
        put_tag(out, root);
        put(out, "\n");
        return;
    case GWSH_ERROR:
        format_error(root, out);
        return;
    case GWSH_OTHER:
        gwsh_put_safe(out, raw, raw_len);
        put(out, "\n");
        return;
    }
}

void gwsh_line_message_json(const struct gwsh_line *l, struct buf *out)
{
    json_t *m = json_copy(l->json); /* shallow: the values stay shared, the key list is ours */
    char *s;

    GW_ASSERT(l->kind == GWSH_MESSAGE && m);
    json_object_del(m, "type");
    /* Compact, UTF-8 as it is, keys in the server's order (jansson keeps insertion order). */
    s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    GW_ASSERT(s);
    put(out, s);
    put(out, "\n");
    free(s);
    json_decref(m);
}
