/*
 * server_line.c - the gateway's answers, decoded for clients; see
 * server_line.h.
 *
 * The fast way reads the layout common/codec_json.c writes (msg_fields and
 * the session lines): the same keys in the same order, no blanks, strings
 * without a backslash. The moment a line differs from that in any way, it
 * is read with jansson instead, so the fast way is only a shortcut, never a
 * second definition of the protocol.
 */
#include "server_line.h"

#include "client_text.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

bool sl_type_is_push(enum sl_type type)
{
    return type == SL_MESSAGE || type == SL_PING || type == SL_GAP;
}

bool sl_text_is(struct sl_text t, const char *s)
{
    return t.s && t.len == strlen(s) && memcmp(t.s, s, t.len) == 0;
}

static const struct {
    const char *name;
    enum sl_type type;
} types[] = {
    {"hello", SL_HELLO}, {"message", SL_MESSAGE}, {"ping", SL_PING}, {"gap", SL_GAP},
    {"ok", SL_OK},       {"pong", SL_PONG},       {"bye", SL_BYE},   {"error", SL_ERROR},
};

static enum sl_type type_of(struct sl_text t)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(types); i++) {
        if (sl_text_is(t, types[i].name))
            return types[i].type;
    }
    return SL_OTHER;
}

static enum proto_op op_of(struct sl_text t)
{
    for (int op = PROTO_NONE + 1; op < PROTO__COUNT; op++) {
        if (sl_text_is(t, proto_op_name((enum proto_op)op)))
            return (enum proto_op)op;
    }
    return PROTO_NONE;
}

static void clear(struct server_line *l)
{
    memset(l, 0, sizeof(*l));
    l->type = SL_INVALID;
    l->op = PROTO_NONE;
    l->version = l->heartbeat = l->since = l->top = l->next_since = -1;
    l->first_seq = l->time_us = l->gap_from = l->gap_to = -1;
    l->msg.id = l->msg.seq = -1;
}

/* ---- the fast way ---- */

static bool scan_lit(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

/* A non-negative integer of at most 18 digits (what int64_t surely holds). */
static bool scan_int(const char **p, const char *end, int64_t *v)
{
    const char *q = *p;
    int64_t x = 0;

    while (q < end && *q >= '0' && *q <= '9' && q - *p < 18)
        x = x * 10 + (*q++ - '0');
    if (q == *p || (q < end && *q >= '0' && *q <= '9'))
        return false;
    *v = x;
    *p = q;
    return true;
}

/* A string's contents up to its closing quote, which must come before any backslash. */
static bool scan_plain(const char **p, const char *end, struct sl_text *t)
{
    const char *q = *p;

    while (q < end && *q != '"' && *q != '\\')
        q++;
    if (q == end || *q != '"')
        return false;
    t->s = *p;
    t->len = (size_t)(q - *p);
    *p = q + 1;
    return true;
}

/* "id":N,"channel":"c","seq":N,"sender":"s","body":"b","ts":"t","via":"v" */
static bool scan_msg(const char **p, const char *end, struct sl_msg *m)
{
    return scan_lit(p, end, "\"id\":") && scan_int(p, end, &m->id) &&
           scan_lit(p, end, ",\"channel\":\"") && scan_plain(p, end, &m->channel) &&
           scan_lit(p, end, ",\"seq\":") && scan_int(p, end, &m->seq) &&
           scan_lit(p, end, ",\"sender\":\"") && scan_plain(p, end, &m->sender) &&
           scan_lit(p, end, ",\"body\":\"") && scan_plain(p, end, &m->body) &&
           scan_lit(p, end, ",\"ts\":\"") && scan_plain(p, end, &m->ts) &&
           scan_lit(p, end, ",\"via\":\"") && scan_plain(p, end, &m->via);
}

#define PUSH_HEAD   "{\"type\":\"message\","
#define OK_PUB_HEAD "{\"type\":\"ok\",\"op\":\"pub\",\"message\":{"

/* A message push, or the ok of a PUB (with or without a tag), the gateway's way. */
static bool parse_fast(struct server_line *l, const char *line, size_t len)
{
    const char *p = line, *end = line + len;
    struct sl_msg m = {-1, -1, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}, {NULL, 0}};

    if (scan_lit(&p, end, PUSH_HEAD)) {
        if (!scan_msg(&p, end, &m) || !scan_lit(&p, end, "}") || p != end)
            return false;
        l->type = SL_MESSAGE;
        l->channel = m.channel;
    } else if (scan_lit(&p, end, OK_PUB_HEAD)) {
        struct sl_text tag = {NULL, 0};
        if (!scan_msg(&p, end, &m) || !scan_lit(&p, end, "}"))
            return false;
        if (scan_lit(&p, end, ",\"tag\":\"") && !scan_plain(&p, end, &tag))
            return false;
        if (!scan_lit(&p, end, "}") || p != end)
            return false;
        l->type = SL_OK;
        l->op = PROTO_PUB;
        l->op_name.s = "pub";
        l->op_name.len = 3;
        l->tag = tag;
    } else {
        return false;
    }
    l->has_msg = true;
    l->msg = m;
    l->raw = line;
    l->raw_len = len;
    return true;
}

/* ---- with jansson ---- */

static struct sl_text text_of(const json_t *v)
{
    struct sl_text t = {NULL, 0};

    if (json_is_string(v)) {
        t.s = json_string_value(v);
        t.len = json_string_length(v);
    }
    return t;
}

static struct sl_text get_text(const json_t *obj, const char *key)
{
    return text_of(json_object_get(obj, key));
}

static int64_t get_int(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    return json_is_integer(v) ? (int64_t)json_integer_value(v) : -1;
}

static void msg_of(const json_t *obj, struct sl_msg *m)
{
    m->id = get_int(obj, "id");
    m->seq = get_int(obj, "seq");
    m->channel = get_text(obj, "channel");
    m->sender = get_text(obj, "sender");
    m->body = get_text(obj, "body");
    m->ts = get_text(obj, "ts");
    m->via = get_text(obj, "via");
}

static void parse_json(struct server_line *l, const char *line, size_t len)
{
    json_error_t jerr;
    json_t *root, *v;
    struct sl_text type;

    /* Bodies may hold U+0000: the server escapes it, and it must come back. */
    root = json_loadb(line, len, JSON_ALLOW_NUL, &jerr);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    l->json = root;
    type = get_text(root, "type");
    if (!type.s)
        return;
    l->type = type_of(type);
    l->op_name = get_text(root, "op");
    l->op = op_of(l->op_name);
    l->code = get_text(root, "code");
    l->message = get_text(root, "message");
    l->tag = get_text(root, "tag");
    l->channel = get_text(root, "channel");
    l->token = get_text(root, "token");
    l->reason = get_text(root, "reason");
    l->next_after = get_text(root, "next_after");
    l->server = get_text(root, "server");
    l->session = get_text(root, "session");
    l->protocol = get_text(root, "protocol");
    l->version = get_int(root, "version");
    l->heartbeat = get_int(root, "heartbeat");
    l->since = get_int(root, "since");
    l->top = get_int(root, "top");
    l->next_since = get_int(root, "next_since");
    l->more = json_is_true(json_object_get(root, "more"));
    l->first_seq = get_int(root, "first_seq");
    l->gap_from = get_int(root, "from");
    l->gap_to = get_int(root, "to");
    l->time_us = get_int(root, "time_us");
    if (l->type == SL_MESSAGE) {
        l->has_msg = true;
        msg_of(root, &l->msg);
    } else if (json_is_object(v = json_object_get(root, "message"))) {
        l->has_msg = true;
        msg_of(v, &l->msg);
    }
    if (json_is_array(v = json_object_get(root, "messages")))
        l->n_messages = json_array_size(v);
    if (json_is_array(v = json_object_get(root, "channels")))
        l->n_channels = json_array_size(v);
    if (json_is_array(v = json_object_get(root, "commands")))
        l->n_commands = json_array_size(v);
    if (json_is_object(v = json_object_get(root, "last_seq")))
        l->n_last_seq = json_object_size(v);
}

void server_line_parse(struct server_line *l, const char *line, size_t len)
{
    clear(l);
    if (parse_fast(l, line, len))
        return;
    clear(l);
    parse_json(l, line, len);
}

void server_line_release(struct server_line *l)
{
    json_decref(l->json);
    free(l->msgs);
    clear(l);
}

enum sl_type server_line_type(const char *line, size_t len, enum proto_op *op)
{
    const char *p = line, *end = line + len;
    struct sl_text t, o;
    struct server_line l;
    enum sl_type type;

    if (op)
        *op = PROTO_NONE;
    if (scan_lit(&p, end, "{\"type\":\"") && scan_plain(&p, end, &t)) {
        type = type_of(t);
        if (!op || (type != SL_OK && type != SL_ERROR))
            return type;
        if (scan_lit(&p, end, ",\"op\":\"") && scan_plain(&p, end, &o)) {
            *op = op_of(o);
            return type;
        }
    }
    /* Another layout (or an error, whose op comes last): read it all. */
    server_line_parse(&l, line, len);
    type = l.type;
    if (op)
        *op = l.op;
    server_line_release(&l);
    return type;
}

/* ---- the parts of a reply ---- */

bool server_line_hist_msg(const struct server_line *l, size_t i, struct sl_msg *m)
{
    const json_t *v;

    if (i >= l->n_messages)
        return false;
    if (l->msgs) {
        *m = l->msgs[i];
        return true;
    }
    v = json_array_get(json_object_get(l->json, "messages"), i);
    msg_of(v, m);
    return true;
}

bool server_line_channel(const struct server_line *l, size_t i, struct sl_channel *c)
{
    const json_t *v;

    if (i >= l->n_channels)
        return false;
    v = json_array_get(json_object_get(l->json, "channels"), i);
    c->name = get_text(v, "name");
    c->last_ts = get_text(v, "last_ts");
    c->messages = get_int(v, "messages");
    c->last_seq = get_int(v, "last_seq");
    return true;
}

bool server_line_command(const struct server_line *l, size_t i, struct sl_text *t)
{
    if (i >= l->n_commands)
        return false;
    *t = text_of(json_array_get(json_object_get(l->json, "commands"), i));
    return true;
}

bool server_line_last_seq(const struct server_line *l, size_t i, struct sl_text *channel,
                          int64_t *seq)
{
    json_t *obj = json_object_get(l->json, "last_seq");
    void *it;

    if (i >= l->n_last_seq)
        return false;
    /* jansson keeps an object's keys in the order they were read. */
    it = json_object_iter(obj);
    while (it && i--)
        it = json_object_iter_next(obj, it);
    if (!it)
        return false;
    channel->s = json_object_iter_key(it);
    channel->len = strlen(channel->s);
    *seq = json_is_integer(json_object_iter_value(it))
               ? (int64_t)json_integer_value(json_object_iter_value(it))
               : -1;
    return true;
}

void server_line_msg_json(const struct server_line *l, struct buf *out)
{
    json_t *m;
    char *s;

    GW_ASSERT(l->type == SL_MESSAGE);
    if (!l->json) {
        /*
         * Read the fast way: the line is {"type":"message", and the fields as they go out; its
         * strings were taken as they came, raw controls and invalid UTF-8 included.
         */
        buf_append(out, "{", 1);
        client_text_json_safe(out, l->raw + strlen(PUSH_HEAD), l->raw_len - strlen(PUSH_HEAD));
        buf_append(out, "\n", 1);
        return;
    }
    m = json_copy(l->json); /* shallow: the values stay shared, the key list is ours */
    GW_ASSERT(m);
    json_object_del(m, "type");
    s = json_dumps(m, JSON_COMPACT | JSON_PRESERVE_ORDER);
    GW_ASSERT(s);
    /* jansson escapes C0 only: C1 and DEL would reach a terminal raw. */
    client_text_json_safe(out, s, strlen(s));
    buf_append(out, "\n", 1);
    free(s);
    json_decref(m);
}

/* ---- REST bodies ---- */

static bool page_fast(struct server_line *l, const char *body, size_t len)
{
    const char *p = body, *end = body + len;
    size_t cap = 0;

    if (!scan_lit(&p, end, "{\"channel\":\"") || !scan_plain(&p, end, &l->channel) ||
        !scan_lit(&p, end, ",\"messages\":["))
        return false;
    while (p < end && *p == '{') {
        struct sl_msg m;
        p++;
        if (!scan_msg(&p, end, &m) || !scan_lit(&p, end, "}"))
            return false;
        if (l->n_messages == cap) {
            cap = cap ? cap * 2 : 64;
            l->msgs = gw_xrealloc(l->msgs, cap * sizeof(*l->msgs));
        }
        l->msgs[l->n_messages++] = m;
        if (p < end && *p == ',')
            p++;
        else
            break;
    }
    if (!scan_lit(&p, end, "],\"next_since\":") || !scan_int(&p, end, &l->next_since))
        return false;
    l->more = scan_lit(&p, end, ",\"more\":true");
    if (!scan_lit(&p, end, "}"))
        return false;
    while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
        p++; /* the gateway ends its bodies with a LF */
    return p == end;
}

int server_line_page(struct server_line *l, const char *body, size_t len, char err[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *msgs;

    clear(l);
    if (page_fast(l, body, len)) {
        /* An empty page needs an array to tell it from a failed read. */
        if (!l->msgs)
            l->msgs = gw_xmalloc(sizeof(*l->msgs));
    } else {
        free(l->msgs);
        clear(l);
        root = json_loadb(body, len, JSON_ALLOW_NUL, &jerr);
        if (!root) {
            snprintf(err, GW_ERRLEN, "the page is not JSON: %s", jerr.text);
            return -1;
        }
        msgs = json_object_get(root, "messages");
        if (!json_is_array(msgs) || !json_is_integer(json_object_get(root, "next_since"))) {
            snprintf(err, GW_ERRLEN, "the page has no messages array or no next_since");
            json_decref(root);
            return -1;
        }
        l->json = root;
        l->channel = get_text(root, "channel");
        l->next_since = get_int(root, "next_since");
        l->more = json_is_true(json_object_get(root, "more"));
        l->n_messages = json_array_size(msgs);
    }
    l->type = SL_OK;
    l->op = PROTO_HIST;
    l->op_name.s = "hist";
    l->op_name.len = 4;
    return 0;
}

void server_line_rest_error(const char *body, size_t len, char *out, size_t outlen)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    struct sl_text code = get_text(e, "code"), msg = get_text(e, "message");
    size_t o = 0;

    if (code.s) {
        snprintf(out, outlen, "%.*s: %.*s", (int)code.len, code.s, msg.s ? (int)msg.len : 0,
                 msg.s ? msg.s : "");
        json_decref(root);
        return;
    }
    json_decref(root);
    for (size_t i = 0; i < len && o + 1 < outlen && o < 120; i++)
        out[o++] = (body[i] >= 0x20 && body[i] < 0x7f) ? body[i] : '.';
    out[o] = '\0';
    if (o == 0)
        snprintf(out, outlen, "no body");
}

/* (s, n) as a decimal number of exactly n digits. */
static bool digits(const char *s, size_t n, int *v)
{
    *v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        *v = *v * 10 + (s[i] - '0');
    }
    return true;
}

bool server_line_ts_ms(struct sl_text ts, int64_t *ms)
{
    const char *s = ts.s;
    struct tm tm;
    int y, mo, d, h, mi, sec, milli;
    time_t t;

    /* 2026-11-24T09:15:02.417Z */
    if (!s || ts.len != 24 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' ||
        s[16] != ':' || s[19] != '.' || s[23] != 'Z')
        return false;
    if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
        !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec) ||
        !digits(s + 20, 3, &milli))
        return false;
    if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        return false;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = sec;
    t = timegm(&tm);
    *ms = (int64_t)t * 1000 + milli;
    return true;
}
