/*
 * codec_json.c - JSON <-> model structs; see codec_json.h.
 *
 * Input is parsed with jansson (JSON_ALLOW_NUL, so a body may carry \u0000),
 * but for the plain publish body (publish_plain): building a tree for it was
 * a tenth of a REST publish's CPU.
 *
 * Output is written by hand into a struct buf: it is the hot path of every
 * read and every acknowledgement, and building a jansson tree per message
 * cost more than the query that fetched it.
 */
#include "codec_json.h"

#include "text.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

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
 * valid JSON whatever the input (error reasons may quote client bytes); DEL
 * and C1 controls are escaped like C0 (text_json_len).
 */
static void put_str(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t run = 0, i = 0;

    buf_grow(b, len + 2);
    PUT(b, "\"");
    while (i < len) {
        i += text_json_plain_run(s + i, len - i);
        if (i == len)
            break;
        unsigned char c = (unsigned char)s[i];
        char esc[6] = {'\\', 0, 0, 0, 0, 0};
        size_t esclen = 2;

        size_t n = 1;
        if (c >= 0x80) {
            n = text_utf8_seq(s + i, len - i);
            if (n && !text_is_c1(s + i, n)) {
                i += n;
                continue;
            }
            if (n) /* C1: escaped as the code point its second byte is */
                c = (unsigned char)s[i + 1];
            else
                n = 1;
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
            if (c >= 0x80 && n == 1) {
                memcpy(esc, "\\ufffd", 6);
            } else {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 0xf];
            }
            esclen = 6;
        }
        put(b, esc, esclen);
        i += n;
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

/* The message's fields, without braces, so a push can put "type" first; body false leaves it out.
 */
static void msg_fields_of(struct buf *b, const struct gw_msg *m, bool body)
{
    buf_grow(b, m->body_len + m->sender_len + 160);
    PUT(b, "\"id\":");
    put_i64(b, m->id);
    PUT(b, ",\"channel\":");
    put_cstr(b, m->channel);
    PUT(b, ",\"seq\":");
    put_i64(b, m->seq);
    PUT(b, ",\"sender\":");
    put_str(b, m->sender, m->sender_len);
    if (body) {
        PUT(b, ",\"body\":");
        put_str(b, m->body, m->body_len);
    }
    PUT(b, ",\"ts\":");
    put_ts(b, m->ts_ms);
    PUT(b, ",\"via\":");
    put_cstr(b, gw_transport_name(m->via));
}

static void msg_fields(struct buf *b, const struct gw_msg *m)
{
    msg_fields_of(b, m, true);
}

static void msg_append(struct buf *b, const struct gw_msg *m)
{
    PUT(b, "{");
    msg_fields(b, m);
    PUT(b, "}");
}

char *codec_msg_encode(const struct gw_msg *m, size_t *len)
{
    struct buf b = BUF_INIT;

    msg_append(&b, m);
    return buf_detach(&b, len);
}

/*
 * "messages":[...], "gaps" (only when the page met holes), "next_since" and
 * "more" (only when the channel went on after next_since as it was read:
 * messages, or a hole up to its top; the page was cut by its count or byte
 * bound) after "channel", shared by REST and HIST.
 */
static void history_fields(struct buf *b, const char *channel, const struct gw_page *p)
{
    PUT(b, "\"channel\":");
    put_cstr(b, channel);
    PUT(b, ",\"messages\":[");
    for (size_t i = 0; i < p->n; i++) {
        if (i)
            PUT(b, ",");
        msg_append(b, &p->msgs[i]);
    }
    PUT(b, "]");
    if (p->ngaps) {
        PUT(b, ",\"gaps\":[");
        for (size_t i = 0; i < p->ngaps; i++) {
            if (i)
                PUT(b, ",");
            PUT(b, "{\"from\":");
            put_i64(b, p->gaps[i].from);
            PUT(b, ",\"to\":");
            put_i64(b, p->gaps[i].to);
            PUT(b, "}");
        }
        PUT(b, "]");
    }
    PUT(b, ",\"next_since\":");
    put_i64(b, p->next_since);
    if (p->next_since < p->top)
        PUT(b, ",\"more\":true");
}

char *codec_history_encode(const char *channel, const struct gw_page *p, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{");
    history_fields(&b, channel, p);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

static void channel_list(struct buf *b, const struct gw_channel_info *chans, size_t n)
{
    PUT(b, "[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT(b, ",");
        PUT(b, "{\"name\":");
        put_cstr(b, chans[i].name);
        PUT(b, ",\"messages\":");
        put_i64(b, chans[i].messages);
        PUT(b, ",\"last_seq\":");
        put_i64(b, chans[i].last_seq);
        PUT(b, ",\"last_ts\":");
        put_ts(b, chans[i].last_ts_ms);
        PUT(b, "}");
    }
    PUT(b, "]");
}

/* ,"channels":[...] and ,"next_after":<name> when there is one, without the braces. */
static void channel_page(struct buf *b, const struct gw_channel_info *chans, size_t n,
                         const char *next_after)
{
    PUT(b, "\"channels\":");
    channel_list(b, chans, n);
    if (next_after) {
        PUT(b, ",\"next_after\":");
        put_cstr(b, next_after);
    }
}

char *codec_channels_encode(const struct gw_channel_info *chans, size_t n, const char *next_after,
                            size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{");
    channel_page(&b, chans, n, next_after);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

/* The longest an int64 is in decimal (INT64_MIN), and a time (the year of INT64_MIN ms). */
#define I64_WIRE_MAX (sizeof("-9223372036854775808") - 1)
#define TS_WIRE_MAX  (sizeof("-292275055-05-16T16:47:04.192Z") - 1)
#define STR_WIRE_MAX (GW_CHANNEL_MAX + 2) /* a name in quotes: no byte of it is escaped */

size_t codec_channels_max_len(size_t n)
{
    const size_t entry = sizeof("{\"name\":,\"messages\":,\"last_seq\":,\"last_ts\":\"\"},") - 1 +
                         STR_WIRE_MAX + 2 * I64_WIRE_MAX + TS_WIRE_MAX;

    return sizeof("{\"channels\":[],\"next_after\":}") - 1 + STR_WIRE_MAX + n * entry;
}

/* "error":{"code","message"}, the member every error answer has. */
static void put_error_member(struct buf *b, enum gw_err err, const char *message)
{
    PUT(b, "\"error\":{\"code\":");
    put_cstr(b, gw_err_code(err));
    PUT(b, ",\"message\":");
    put_cstr(b, message);
    PUT(b, "}");
}

char *codec_error_encode(enum gw_err err, const char *message, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{");
    put_error_member(&b, err, message);
    PUT(&b, "}");
    return buf_detach(&b, len);
}

char *codec_index_encode(const char *name, const char *version, const char *docs,
                         const struct codec_endpoint *eps, size_t n, const char *sessions,
                         size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"name\":");
    put_cstr(&b, name);
    PUT(&b, ",\"version\":");
    put_cstr(&b, version);
    PUT(&b, ",\"docs\":");
    put_cstr(&b, docs);
    PUT(&b, ",\"endpoints\":[");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT(&b, ",");
        PUT(&b, "{\"method\":");
        put_cstr(&b, eps[i].method);
        PUT(&b, ",\"path\":");
        put_cstr(&b, eps[i].path);
        PUT(&b, ",\"what\":");
        put_cstr(&b, eps[i].what);
        PUT(&b, "}");
    }
    PUT(&b, "],\"sessions\":");
    put_cstr(&b, sessions);
    PUT(&b, "}");
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

char *codec_health_encode(const char *status, enum gw_err err, const char *message, size_t *len)
{
    struct buf b = BUF_INIT;

    PUT(&b, "{\"status\":");
    put_cstr(&b, status);
    PUT(&b, ",");
    put_error_member(&b, err, message);
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

/*
 * A number jansson cannot hold, an integer past 64 bits or a real past a
 * double, anywhere in the text: it is JSON, so not invalid_json, but a
 * value out of range, wherever it stands (jansson stops there).
 */
static bool number_out_of_range(const json_error_t *jerr, char why[GW_ERRLEN])
{
    if (json_error_code(jerr) != json_error_numeric_overflow)
        return false;
    snprintf(why, GW_ERRLEN,
             "the number at column %d is out of range (%.80s): integers are read as 64-bit, reals "
             "as doubles, in any field",
             jerr->column, jerr->text);
    return true;
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

/* The blanks JSON allows between tokens. */
static const char *skip_blanks(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
        p++;
    return p;
}

/* A string at *p of printable ASCII without quote or backslash: its contents in (*s, *n). */
static bool plain_string(const char **p, const char *end, const char **s, size_t *n)
{
    const char *q = *p;
    size_t run;

    if (q == end || *q++ != '"')
        return false;
    run = text_json_plain_run(q, (size_t)(end - q));
    if (q + run == end || q[run] != '"')
        return false;
    *s = q;
    *n = run;
    *p = q + run + 1;
    return true;
}

/*
 * The body nearly every publisher sends, {"body":"…"} with or without a
 * sender, read without building jansson's tree (its allocations were a tenth
 * of a REST publish's CPU): blanks between tokens, the two keys once each in
 * either order, strings of printable ASCII without an escape. For these the
 * strings' JSON text is their value. Anything else, an escape, UTF-8, another
 * field, a mistake, returns false and is read with jansson, which stays the
 * one definition of what a body may be and of every error.
 */
static bool publish_plain(const char *buf, size_t len, struct codec_publish *out)
{
    const char *p = skip_blanks(buf, buf + len), *end = buf + len;
    const char *body = NULL, *sender = NULL;
    size_t body_len = 0, sender_len = 0;

    if (p == end || *p++ != '{')
        return false;
    for (;;) {
        const char *key, *val;
        size_t key_len, val_len;

        p = skip_blanks(p, end);
        if (!plain_string(&p, end, &key, &key_len))
            return false;
        p = skip_blanks(p, end);
        if (p == end || *p++ != ':')
            return false;
        p = skip_blanks(p, end);
        if (!plain_string(&p, end, &val, &val_len))
            return false;
        if (!body && key_len == 4 && memcmp(key, "body", 4) == 0) {
            body = val;
            body_len = val_len;
        } else if (!sender && key_len == 6 && memcmp(key, "sender", 6) == 0) {
            sender = val;
            sender_len = val_len;
        } else {
            return false;
        }
        p = skip_blanks(p, end);
        if (p == end)
            return false;
        if (*p == '}')
            break;
        if (*p++ != ',')
            return false;
    }
    if (!body || skip_blanks(p + 1, end) != end)
        return false;
    out->body = gw_xmemdup(body, body_len);
    out->body_len = body_len;
    if (sender) {
        out->sender = gw_xmemdup(sender, sender_len);
        out->sender_len = sender_len;
    }
    return true;
}

enum gw_err codec_publish_decode(const char *buf, size_t len, struct codec_publish *out,
                                 char why[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *body, *sender;
    enum gw_err err = GW_OK;

    memset(out, 0, sizeof(*out));
    if (publish_plain(buf, len, out))
        return GW_OK;
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            snprintf(why, GW_ERRLEN, "request body is not valid UTF-8 (byte %d)", jerr.position);
            return GW_E_UTF8;
        }
        if (number_out_of_range(&jerr, why))
            return GW_E_FIELD;
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

/* ---- session commands, JSON form ---- */

/* A string field that must be a string when present; *out NULL when absent. */
static enum gw_err opt_string(json_t *root, const char *name, size_t max, json_t **out,
                              char why[GW_ERRLEN])
{
    json_t *v = json_object_get(root, name);

    *out = NULL;
    if (!v)
        return GW_OK;
    if (!json_is_string(v)) {
        snprintf(why, GW_ERRLEN, "field \"%s\" must be a string, got %s", name, type_name(v));
        return GW_E_FIELD;
    }
    if (max && json_string_length(v) > max) {
        snprintf(why, GW_ERRLEN, "field \"%s\" is at most %zu bytes", name, max);
        return GW_E_FIELD;
    }
    *out = v;
    return GW_OK;
}

static enum gw_err opt_count(json_t *root, const char *name, bool *has, uint64_t *out,
                             char why[GW_ERRLEN])
{
    json_t *v = json_object_get(root, name);

    if (!v)
        return GW_OK;
    if (!json_is_integer(v) || json_integer_value(v) < 0) {
        snprintf(why, GW_ERRLEN, "field \"%s\" must be a non-negative integer, got %s", name,
                 type_name(v));
        return GW_E_FIELD;
    }
    *has = true;
    *out = (uint64_t)json_integer_value(v);
    return GW_OK;
}

/* Copies the strings of v into the block at *at and points (*ptr, *len) there. */
static void keep(json_t *v, char **at, const char **ptr, size_t *len)
{
    if (!v)
        return;
    *len = json_string_length(v);
    memcpy(*at, json_string_value(v), *len);
    (*at)[*len] = '\0';
    *ptr = *at;
    *at += *len + 1;
}

/*
 * The op named (n bytes: "pub\u0000x" is not pub), or PROTO_NONE. Ops are
 * lower case; with any_case, "PUB" names pub too (for the error that says
 * so: a command with a mistake is still that command).
 */
static enum proto_op op_named_in(const char *name, size_t n, bool any_case)
{
    for (unsigned i = 1; i < PROTO__COUNT; i++) {
        const char *op = proto_op_name((enum proto_op)i);
        if (n == strlen(op) &&
            (any_case ? strncasecmp(op, name, n) == 0 : memcmp(op, name, n) == 0))
            return (enum proto_op)i;
    }
    return PROTO_NONE;
}

static enum proto_op op_named(const char *name, size_t n)
{
    return op_named_in(name, n, false);
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
        p++;
    return p;
}

/* After a key at p: its colon, blanks around it; NULL when p is no key's end. */
static const char *after_colon(const char *p, const char *end)
{
    p = skip_ws(p, end);
    return p < end && *p == ':' ? skip_ws(p + 1, end) : NULL;
}

/*
 * JSON that jansson cannot read: the verb its first "op" key names, read
 * from the text as written ("op" : "pub"), and whether a "tag" key is there.
 * A guess, used only to tell a broken command from a body.
 */
static enum proto_op op_in_text(const char *line, size_t len, bool *tag_given)
{
    const char *end = line + len, *p = line, *v;
    enum proto_op found = PROTO_NONE;
    bool op_seen = false;

    *tag_given = false;
    while (p < end && (p = memchr(p, '"', (size_t)(end - p))) != NULL) {
        if (!op_seen && end - p >= 4 && memcmp(p, "\"op\"", 4) == 0 &&
            (v = after_colon(p + 4, end)) != NULL) {
            op_seen = true;
            const char *q = v < end && *v == '"' ? memchr(v + 1, '"', (size_t)(end - v - 1)) : NULL;
            if (q)
                found = op_named_in(v + 1, (size_t)(q - v - 1), true);
        } else if (end - p >= 5 && memcmp(p, "\"tag\"", 5) == 0 && after_colon(p + 5, end)) {
            *tag_given = true;
        }
        p++;
    }
    return found;
}

enum gw_err codec_cmd_decode(const char *line, size_t len, struct proto_cmd *cmd,
                             char why[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *op, *tag = NULL, *channel = NULL, *body = NULL, *sender = NULL, *token = NULL,
                       *after = NULL;
    enum gw_err err = GW_OK;
    const char *opname;

    root = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        cmd->op = op_in_text(line, len, &cmd->tag_given);
        if (number_out_of_range(&jerr, why))
            return GW_E_FIELD;
        snprintf(why, GW_ERRLEN, "malformed JSON at column %d: %s", jerr.column, jerr.text);
        return GW_E_JSON;
    }
    if (!json_is_object(root)) {
        snprintf(why, GW_ERRLEN, "a JSON command must be an object, got %s", type_name(root));
        err = GW_E_NOT_OBJECT;
        goto out;
    }
    /* What it is before what is wrong with it: the op even when the tag is bad. */
    op = json_object_get(root, "op");
    cmd->op =
        json_is_string(op) ? op_named(json_string_value(op), json_string_length(op)) : PROTO_NONE;
    cmd->tag_given = json_object_get(root, "tag") != NULL;
    /* The tag first, so that every later error can echo it. */
    if ((err = opt_string(root, "tag", PROTO_TAG_MAX, &tag, why)) != GW_OK)
        goto out;
    if (!op) {
        snprintf(why, GW_ERRLEN, "field \"op\" is required");
        err = GW_E_MISSING_FIELD;
        goto keep_tag;
    }
    if (!json_is_string(op)) {
        snprintf(why, GW_ERRLEN, "field \"op\" must be a string, got %s", type_name(op));
        err = GW_E_FIELD;
        goto keep_tag;
    }
    opname = json_string_value(op);
    if (cmd->op == PROTO_NONE &&
        (cmd->op = op_named_in(opname, json_string_length(op), true)) != PROTO_NONE) {
        snprintf(why, GW_ERRLEN, "op '%.40s' is written in lower case: \"%s\"", opname,
                 proto_op_name(cmd->op));
        err = GW_E_UNKNOWN_COMMAND;
        goto keep_tag;
    }
    if (cmd->op == PROTO_NONE) {
        snprintf(why, GW_ERRLEN, "unknown op '%.40s' (see HELP)", opname);
        err = GW_E_UNKNOWN_COMMAND;
        goto keep_tag;
    }
    if ((err = opt_string(root, "channel", 0, &channel, why)) != GW_OK ||
        (err = opt_string(root, "body", 0, &body, why)) != GW_OK ||
        (err = opt_string(root, cmd->op == PROTO_NAME ? "name" : "sender", 0, &sender, why)) !=
            GW_OK ||
        (err = opt_string(root, "token", PROTO_TOKEN_MAX, &token, why)) != GW_OK ||
        (err = opt_string(root, "after", 0, &after, why)) != GW_OK ||
        (err = opt_count(root, "since", &cmd->has_since, &cmd->since, why)) != GW_OK ||
        (err = opt_count(root, "limit", &cmd->has_limit, &cmd->limit, why)) != GW_OK)
        goto keep_tag;
    switch (cmd->op) {
    case PROTO_PUB:
    case PROTO_SUB:
    case PROTO_UNSUB:
    case PROTO_HIST:
        if (!channel) {
            snprintf(why, GW_ERRLEN, "field \"channel\" is required for %s", opname);
            err = GW_E_MISSING_FIELD;
            goto keep_tag;
        }
        if (cmd->op == PROTO_PUB && !body) {
            snprintf(why, GW_ERRLEN, "field \"body\" is required for pub");
            err = GW_E_MISSING_FIELD;
            goto keep_tag;
        }
        break;
    case PROTO_NAME:
        if (!sender) {
            snprintf(why, GW_ERRLEN, "field \"name\" is required for name");
            err = GW_E_MISSING_FIELD;
            goto keep_tag;
        }
        break;
    default:
        break;
    }
keep_tag : {
    size_t total = 0;
    json_t *all[] = {tag, channel, body, sender, token, after};
    for (size_t i = 0; i < GW_ARRAY_SIZE(all); i++)
        total += all[i] ? json_string_length(all[i]) + 1 : 0;
    char *at = cmd->owned = gw_xmalloc(total ? total : 1);
    keep(tag, &at, &cmd->tag, &cmd->tag_len);
    if (err == GW_OK) {
        keep(channel, &at, &cmd->channel, &cmd->channel_len);
        keep(body, &at, &cmd->body, &cmd->body_len);
        keep(sender, &at, &cmd->sender, &cmd->sender_len);
        keep(token, &at, &cmd->token, &cmd->token_len);
        keep(after, &at, &cmd->after, &cmd->after_len);
    }
}
out:
    json_decref(root);
    return err;
}

/* ---- session lines ---- */

static void put_tag(struct buf *b, const char *tag, size_t tag_len)
{
    if (tag) {
        PUT(b, ",\"tag\":");
        put_str(b, tag, tag_len);
    }
}

static void ok_head(struct buf *b, const char *op)
{
    PUT(b, "{\"type\":\"ok\",\"op\":\"");
    put(b, op, strlen(op));
    PUT(b, "\"");
}

static void end_line(struct buf *b, const char *tag, size_t tag_len)
{
    put_tag(b, tag, tag_len);
    PUT(b, "}\n");
}

void codec_text_help(struct buf *out, const char *const *usage)
{
    for (size_t i = 0; usage[i]; i++) {
        const char *colon = strstr(usage[i], ": ");
        int cmd = colon ? (int)(colon - usage[i]) : (int)strlen(usage[i]);
        buf_appendf(out, "  %-36.*s %s\n", cmd, usage[i], colon ? colon + 2 : "");
    }
    PUT(out,
        "  Replies and pushes are JSON, one per line. Try: SUB general 0, then PUB general hi\n");
    PUT(out, "\n"); /* an empty line ends the words: a program reading them knows where */
}

void codec_line_ok_name(struct buf *out, const char *name, size_t name_len, const char *tag,
                        size_t tag_len)
{
    ok_head(out, "name");
    PUT(out, ",\"name\":");
    put_str(out, name, name_len);
    end_line(out, tag, tag_len);
}

void codec_line_hello(struct buf *out, const char *session, const char *server, unsigned heartbeat,
                      bool takes_commands)
{
    PUT(out, "{\"type\":\"hello\",\"protocol\":\"" PROTO_PROTOCOL "\",\"version\":");
    put_i64(out, PROTO_VERSION);
    PUT(out, ",\"server\":");
    put_cstr(out, server);
    PUT(out, ",\"session\":");
    put_cstr(out, session);
    PUT(out, ",\"heartbeat\":");
    put_i64(out, heartbeat);
    if (takes_commands)
        PUT(out, ",\"hint\":\"type HELP for the commands\"");
    PUT(out, "}\n");
}

void codec_line_message(struct buf *out, const struct gw_msg *m)
{
    PUT(out, "{\"type\":\"message\",");
    msg_fields(out, m);
    PUT(out, "}\n");
}

void codec_line_ping(struct buf *out, int64_t time_us)
{
    PUT(out, "{\"type\":\"ping\",\"time_us\":");
    put_i64(out, time_us);
    PUT(out, "}\n");
}

void codec_line_ok_pub(struct buf *out, const struct gw_msg *m, const char *tag, size_t tag_len)
{
    ok_head(out, "pub");
    PUT(out, ",\"message\":");
    msg_append(out, m);
    end_line(out, tag, tag_len);
}

void codec_line_ok_sub(struct buf *out, const char *channel, int64_t since, int64_t top,
                       const char *tag, size_t tag_len)
{
    ok_head(out, "sub");
    PUT(out, ",\"channel\":");
    put_cstr(out, channel);
    PUT(out, ",\"since\":");
    put_i64(out, since);
    PUT(out, ",\"top\":");
    put_i64(out, top);
    end_line(out, tag, tag_len);
}

void codec_line_ok_unsub(struct buf *out, const char *channel, const char *tag, size_t tag_len)
{
    ok_head(out, "unsub");
    PUT(out, ",\"channel\":");
    put_cstr(out, channel);
    end_line(out, tag, tag_len);
}

void codec_line_ok_hist(struct buf *out, const char *channel, const struct gw_page *page,
                        const char *tag, size_t tag_len)
{
    ok_head(out, "hist");
    PUT(out, ",");
    history_fields(out, channel, page);
    end_line(out, tag, tag_len);
}

void codec_line_gap(struct buf *out, const char *channel, int64_t from, int64_t to)
{
    PUT(out, "{\"type\":\"gap\",\"channel\":");
    put_cstr(out, channel);
    PUT(out, ",\"from\":");
    put_i64(out, from);
    PUT(out, ",\"to\":");
    put_i64(out, to);
    PUT(out, ",\"first_seq\":");
    put_i64(out, to + 1);
    PUT(out, "}\n");
}

void codec_line_ok_channels(struct buf *out, const struct gw_channel_info *chans, size_t n,
                            const char *next_after, const char *tag, size_t tag_len)
{
    ok_head(out, "channels");
    PUT(out, ",");
    channel_page(out, chans, n, next_after);
    end_line(out, tag, tag_len);
}

void codec_line_ok_help(struct buf *out, const char *const *usage, const char *tag, size_t tag_len)
{
    ok_head(out, "help");
    PUT(out, ",\"commands\":[");
    for (size_t i = 0; usage[i]; i++) {
        if (i)
            PUT(out, ",");
        put_cstr(out, usage[i]);
    }
    PUT(out, "]");
    end_line(out, tag, tag_len);
}

void codec_line_pong(struct buf *out, const char *token, size_t token_len, int64_t time_us,
                     const char *tag, size_t tag_len)
{
    PUT(out, "{\"type\":\"pong\",\"token\":");
    put_str(out, token ? token : "", token ? token_len : 0);
    PUT(out, ",\"time_us\":");
    put_i64(out, time_us);
    end_line(out, tag, tag_len);
}

void codec_line_bye(struct buf *out, const char *reason, const char *tag, size_t tag_len)
{
    PUT(out, "{\"type\":\"bye\",\"reason\":");
    put_cstr(out, reason);
    end_line(out, tag, tag_len);
}

void codec_line_error(struct buf *out, enum gw_err err, const char *message, const char *op,
                      const char *tag, size_t tag_len)
{
    PUT(out, "{\"type\":\"error\",\"code\":");
    put_cstr(out, gw_err_code(err));
    PUT(out, ",\"message\":");
    put_cstr(out, message);
    if (op) {
        PUT(out, ",\"op\":");
        put_cstr(out, op);
    }
    end_line(out, tag, tag_len);
}

/* Drops what was appended to b after its first len bytes. */
static void cut(struct buf *b, size_t len)
{
    b->len = len;
    if (b->data)
        b->data[len] = '\0';
}

bool codec_line_ok_pub_fits(const char *tag, size_t tag_len, size_t max)
{
    struct buf b = BUF_INIT;

    ok_head(&b, "pub");
    end_line(&b, tag, tag_len);
    bool fits = b.len <= max;
    buf_release(&b);
    return fits;
}

bool codec_line_ok_pub_within(struct buf *out, const struct gw_msg *m, const char *tag,
                              size_t tag_len, size_t max)
{
    size_t start = out->len;

    /* The whole line, then the message without its body, then no message. */
    for (int form = 0; form < 3; form++) {
        cut(out, start);
        ok_head(out, "pub");
        if (form < 2) {
            PUT(out, ",\"message\":{");
            msg_fields_of(out, m, form == 0);
            PUT(out, "}");
        }
        end_line(out, tag, tag_len);
        if (out->len - start <= max)
            return true;
    }
    cut(out, start);
    return false;
}

bool codec_line_error_within(struct buf *out, enum gw_err err, const char *message, const char *op,
                             const char *tag, size_t tag_len, size_t max)
{
    size_t start = out->len, len = strlen(message), keep = 0, room, used = 0;

    codec_line_error(out, err, message, op, tag, tag_len);
    if (out->len - start <= max)
        return true;
    cut(out, start);
    codec_line_error(out, err, "", op, tag, tag_len);
    if (out->len - start > max) {
        cut(out, start);
        return false;
    }
    /* The longest prefix of whole characters whose escaped form fits in the room left. */
    room = max - (out->len - start);
    while (keep < len) {
        size_t n = text_utf8_seq(message + keep, len - keep);
        size_t w;
        if (!n)
            n = 1; /* a stray byte: written as \ufffd */
        w = text_json_len(message + keep, n) - 2;
        if (used + w > room)
            break;
        used += w;
        keep += n;
    }
    cut(out, start);
    PUT(out, "{\"type\":\"error\",\"code\":");
    put_cstr(out, gw_err_code(err));
    PUT(out, ",\"message\":");
    put_str(out, message, keep);
    if (op) {
        PUT(out, ",\"op\":");
        put_cstr(out, op);
    }
    end_line(out, tag, tag_len);
    return true;
}

void codec_line_slow_consumer(struct buf *out, const char *message, const char *const *channels,
                              const int64_t *seqs, size_t n)
{
    PUT(out, "{\"type\":\"error\",\"code\":");
    put_cstr(out, gw_err_code(GW_E_SLOW_CONSUMER));
    PUT(out, ",\"message\":");
    put_cstr(out, message);
    PUT(out, ",\"last_seq\":{");
    for (size_t i = 0; i < n; i++) {
        if (i)
            PUT(out, ",");
        put_cstr(out, channels[i]);
        PUT(out, ":");
        put_i64(out, seqs[i]);
    }
    PUT(out, "}}\n");
}

/* ---- /v1/stats ---- */

static void put_number(struct buf *b, double v)
{
    char num[40];
    int n;

    if (v == (double)(int64_t)v && v > -9e15 && v < 9e15) {
        put_i64(b, (int64_t)v);
        return;
    }
    n = snprintf(num, sizeof(num), "%.6g", v);
    put(b, num, (size_t)n);
}

void codec_stats_begin(struct codec_stats *st, struct buf *out)
{
    memset(st, 0, sizeof(*st));
    st->out = out;
    PUT(out, "{");
}

void codec_stats_sample(struct codec_stats *st, const char *name, const char *label, double value)
{
    struct buf *out = st->out;
    bool same_group = st->in_group && label && strcmp(st->group, name) == 0;

    if (st->in_group && !same_group) {
        PUT(out, "}");
        st->in_group = false;
    }
    if (same_group) {
        PUT(out, ",");
    } else {
        if (st->count)
            PUT(out, ",");
        put_cstr(out, name);
        PUT(out, ":");
        if (label) {
            PUT(out, "{");
            st->in_group = true;
            snprintf(st->group, sizeof(st->group), "%s", name);
        }
    }
    if (label) {
        put_cstr(out, label);
        PUT(out, ":");
    }
    put_number(out, value);
    st->count++;
}

void codec_stats_end(struct codec_stats *st)
{
    if (st->in_group)
        PUT(st->out, "}");
    PUT(st->out, "}");
}

/* ---- Socket.IO (docs/socketio.md) ---- */

/* The events a Socket.IO client may emit, each the session command of the same name. */
static const char *const sio_events[] = {"sub", "unsub", "pub", "hist", "channels"};

enum gw_err codec_sio_event_line(const char *json, size_t len, const char *tag, size_t tag_len,
                                 struct buf *out, char why[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *name, *arg, *cmd = NULL;
    enum gw_err err = GW_OK;
    const char *event = NULL;

    root = json_loadb(json, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (number_out_of_range(&jerr, why))
            return GW_E_FIELD;
        snprintf(why, GW_ERRLEN, "an EVENT's data is not JSON (column %d: %s)", jerr.column,
                 jerr.text);
        return GW_E_JSON;
    }
    if (!json_is_array(root) || !json_array_size(root) ||
        !json_is_string(name = json_array_get(root, 0))) {
        snprintf(why, GW_ERRLEN,
                 "an EVENT's data is an array that starts with the event's name: "
                 "[\"sub\",{\"channel\":\"general\"}]");
        err = GW_E_PARAM;
        goto out;
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(sio_events); i++)
        if (json_string_length(name) == strlen(sio_events[i]) &&
            memcmp(json_string_value(name), sio_events[i], strlen(sio_events[i])) == 0)
            event = sio_events[i];
    if (!event) {
        snprintf(why, GW_ERRLEN,
                 "unknown event '%.40s': the events are sub, unsub, pub, hist and channels",
                 json_string_value(name));
        err = GW_E_UNKNOWN_COMMAND;
        goto out;
    }
    arg = json_array_get(root, 1);
    if (arg && !json_is_object(arg)) {
        snprintf(why, GW_ERRLEN, "the argument of '%s' must be an object, got %s", event,
                 type_name(arg));
        err = GW_E_NOT_OBJECT;
        goto out;
    }
    /* The command: the argument's fields, its op the event, its tag the ack id. */
    cmd = arg ? json_deep_copy(arg) : json_object();
    json_object_del(cmd, "tag");
    json_object_set_new(cmd, "op", json_string(event));
    if (tag)
        json_object_set_new(cmd, "tag", json_stringn(tag, tag_len));
    char *line = json_dumps(cmd, JSON_COMPACT);
    if (!line) {
        snprintf(why, GW_ERRLEN, "the event could not be re-encoded");
        err = GW_E_JSON;
        goto out;
    }
    buf_append(out, line, strlen(line));
    free(line);
out:
    json_decref(cmd);
    json_decref(root);
    return err;
}

void codec_sio_message_event(struct buf *out, const struct gw_msg *m)
{
    PUT(out, "42[\"message\",");
    msg_append(out, m);
    PUT(out, "]\n");
}

void codec_sio_error_data(struct buf *out, const char *message)
{
    PUT(out, "{\"message\":");
    put_cstr(out, message);
    PUT(out, "}");
}

void codec_eio_error(struct buf *out, unsigned code, const char *message)
{
    PUT(out, "{\"code\":");
    put_u64(out, code);
    PUT(out, ",\"message\":");
    put_cstr(out, message);
    PUT(out, "}");
}
