/*
 * codec_json.c - JSON <-> model structs; see codec_json.h.
 *
 * Input is parsed with jansson (JSON_ALLOW_NUL, so a body may carry \u0000).
 * Output is written by hand into a struct buf: it is the hot path of every
 * read and every acknowledgement, and building a jansson tree per message
 * cost more than the query that fetched it.
 */
#include "codec_json.h"

#include "buf.h"
#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>

static void put(struct buf *b, const char *s, size_t len)
{
    buf_append(b, s, len);
}

#define PUT(b, lit) put((b), (lit), sizeof(lit) - 1)

static void put_u64(struct buf *b, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[sizeof(tmp) - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(b, tmp + sizeof(tmp) - n, n);
}

static void put_i64(struct buf *b, int64_t v)
{
    if (v < 0) {
        PUT(b, "-");
        put_u64(b, (uint64_t)0 - (uint64_t)v);
    } else {
        put_u64(b, (uint64_t)v);
    }
}

/*
 * A JSON string of (s, len). Invalid UTF-8 becomes U+FFFD, so the output is
 * valid JSON whatever the input (error reasons may quote client bytes).
 */
static void put_str(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0;

    buf_grow(b, len + 2);
    PUT(b, "\"");
    while (i < len) {
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t esclen = 2;

        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0x80) {
            size_t n = text_utf8_seq(s + i, len - i);
            if (n) {
                i += n;
                continue;
            }
        }
        put(b, s + run, i - run);
        switch (c) {
        case '"':
        case '\\':
            esc[1] = (char)c;
            break;
        case '\n':
            esc[1] = 'n';
            break;
        case '\r':
            esc[1] = 'r';
            break;
        case '\t':
            esc[1] = 't';
            break;
        case '\b':
            esc[1] = 'b';
            break;
        case '\f':
            esc[1] = 'f';
            break;
        default:
            if (c >= 0x80) {
                memcpy(esc, "\\ufffd", 6);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
            }
            esclen = 6;
        }
        put(b, esc, esclen);
        i++;
        run = i;
    }
    put(b, s + run, len - run);
    PUT(b, "\"");
}

static void put_cstr(struct buf *b, const char *s)
{
    put_str(b, s, strlen(s));
}

/* Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's civil_from_days). */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;

    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

static void digits(char *p, unsigned v, int n)
{
    while (n--) {
        p[n] = (char)('0' + v % 10);
        v /= 10;
    }
}

void codec_ts_format(int64_t ts_ms, char out[CODEC_TS_LEN])
{
    int64_t secs = ts_ms / 1000, ms = ts_ms % 1000, days, y;
    unsigned m, d, sod;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    days = secs / 86400;
    if (secs % 86400 < 0)
        days -= 1;
    sod = (unsigned)(secs - days * 86400);
    civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999) {
        snprintf(out, CODEC_TS_LEN, "%lld-%02u-%02uT%02u:%02u:%02u.%03uZ", (long long)y, m, d,
                 sod / 3600, sod / 60 % 60, sod % 60, (unsigned)ms);
        return;
    }
    memcpy(out, "0000-00-00T00:00:00.000Z", 25);
    digits(out, (unsigned)y, 4);
    digits(out + 5, m, 2);
    digits(out + 8, d, 2);
    digits(out + 11, sod / 3600, 2);
    digits(out + 14, sod / 60 % 60, 2);
    digits(out + 17, sod % 60, 2);
    digits(out + 20, (unsigned)ms, 3);
}

static void put_ts(struct buf *b, int64_t ts_ms)
{
    char ts[CODEC_TS_LEN];

    codec_ts_format(ts_ms, ts);
    PUT(b, "\"");
    put(b, ts, strlen(ts));
    PUT(b, "\"");
}

static void msg_append(struct buf *b, const struct gw_msg *m)
{
    buf_grow(b, m->body_len + m->sender_len + 160);
    PUT(b, "{\"id\":");
    put_i64(b, m->id);
    PUT(b, ",\"channel\":");
    put_cstr(b, m->channel);
    PUT(b, ",\"seq\":");
    put_i64(b, m->seq);
    PUT(b, ",\"sender\":");
    put_str(b, m->sender, m->sender_len);
    PUT(b, ",\"body\":");
    put_str(b, m->body, m->body_len);
    PUT(b, ",\"ts\":");
    put_ts(b, m->ts_ms);
    PUT(b, ",\"via\":");
    put_cstr(b, gw_via_name(m->via));
    PUT(b, "}");
}

char *codec_msg_encode(const struct gw_msg *m, size_t *len)
{
    struct buf b = BUF_INIT;

    msg_append(&b, m);
    return buf_detach(&b, len);
}

char *codec_history_encode(const char *channel, const struct gw_msg *msgs, size_t n,
                           int64_t next_since, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"channel\":");
    put_cstr(&b, channel);
    PUT(&b, ",\"messages\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT(&b, ",");
        msg_append(&b, &msgs[i]);
    }
    PUT(&b, "],\"next_since\":");
    put_i64(&b, next_since);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

char *codec_channels_encode(const struct gw_channel_info *chans, size_t n, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT(&b, ",");
        PUT(&b, "{\"name\":");
        put_cstr(&b, chans[i].name);
        PUT(&b, ",\"messages\":");
        put_i64(&b, chans[i].messages);
        PUT(&b, ",\"last_seq\":");
        put_i64(&b, chans[i].last_seq);
        PUT(&b, ",\"last_ts\":");
        put_ts(&b, chans[i].last_ts_ms);
        PUT(&b, "}");
    }
    PUT(&b, "]");
    return buf_detach(&b, len);
}

char *codec_error_encode(enum gw_err err, const char *message, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"error\":{\"code\":");
    put_cstr(&b, gw_err_code(err));
    PUT(&b, ",\"message\":");
    put_cstr(&b, message);
    PUT(&b, "}}");
    return buf_detach(&b, len);
}

char *codec_status_encode(const char *status, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"status\":");
    put_cstr(&b, status);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

char *codec_version_encode(const char *name, const char *version, const char *api,
                           int schema_version, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"name\":");
    put_cstr(&b, name);
    PUT(&b, ",\"version\":");
    put_cstr(&b, version);
    PUT(&b, ",\"api\":");
    put_cstr(&b, api);
    PUT(&b, ",\"schema_version\":");
    put_i64(&b, schema_version);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

enum gw_err codec_publish_decode(const char *buf, size_t len, struct codec_publish *out,
                                 char why[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *body, *sender;
    enum gw_err err = GW_OK;

    memset(out, 0, sizeof(*out));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            snprintf(why, GW_ERRLEN, "request body is not valid UTF-8 (byte %d)", jerr.position);
            return GW_E_UTF8;
        }
        snprintf(why, GW_ERRLEN, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return GW_E_JSON;
    }
    if (!json_is_object(root)) {
        snprintf(why, GW_ERRLEN, "request body must be a JSON object, got %s", type_name(root));
        err = GW_E_NOT_OBJECT;
        goto out;
    }
    body = json_object_get(root, "body");
    if (!body) {
        snprintf(why, GW_ERRLEN, "field \"body\" is required");
        err = GW_E_MISSING_FIELD;
        goto out;
    }
    if (!json_is_string(body)) {
        snprintf(why, GW_ERRLEN, "field \"body\" must be a string, got %s", type_name(body));
        err = GW_E_FIELD;
        goto out;
    }
    sender = json_object_get(root, "sender");
    if (sender && !json_is_string(sender)) {
        snprintf(why, GW_ERRLEN, "field \"sender\" must be a string, got %s", type_name(sender));
        err = GW_E_FIELD;
        goto out;
    }
    out->body_len = json_string_length(body);
    out->body = gw_xmemdup(json_string_value(body), out->body_len);
    if (sender) {
        out->sender_len = json_string_length(sender);
        out->sender = gw_xmemdup(json_string_value(sender), out->sender_len);
    }
out:
    json_decref(root);
    return err;
}

void codec_publish_release(struct codec_publish *p)
{
    GW_FREE_AND_NULL(p->sender);
    GW_FREE_AND_NULL(p->body);
    p->sender_len = 0;
    p->body_len = 0;
}
