/*
 * gwbench_json.c - gwbench's JSON, in and out; see gwbench_json.h.
 */
#include "gwbench_json.h"

#include "buf.h"
#include "gwbench_out.h"

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *str_field(json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_string(v) ? json_string_value(v) : NULL;
}

void gj_line_parse(const char *line, size_t len, struct gj_line *l)
{
    static const struct {
        const char *type;
        enum gj_kind kind;
    } kinds[] = {{"hello", GJ_HELLO}, {"message", GJ_MESSAGE}, {"ping", GJ_PING},
                 {"ok", GJ_OK},       {"error", GJ_ERROR},     {"bye", GJ_BYE}};
    json_t *root, *seq, *body;
    const char *type;

    memset(l, 0, sizeof(*l));
    l->kind = GJ_INVALID;
    l->seq = -1;
    root = json_loadb(line, len, 0, NULL);
    if (!json_is_object(root)) {
        json_decref(root);
        return;
    }
    l->json = root;
    type = str_field(root, "type");
    if (!type)
        return;
    l->kind = GJ_OTHER;
    for (size_t i = 0; i < GW_ARRAY_SIZE(kinds); i++) {
        if (strcmp(type, kinds[i].type) == 0)
            l->kind = kinds[i].kind;
    }
    l->op = str_field(root, "op");
    l->code = str_field(root, "code");
    l->message = str_field(root, "message");
    l->reason = str_field(root, "reason");
    seq = json_object_get(root, "seq");
    if (json_is_integer(seq))
        l->seq = (int64_t)json_integer_value(seq);
    body = json_object_get(root, "body");
    if (json_is_string(body)) {
        l->body = json_string_value(body);
        l->body_len = json_string_length(body);
    }
}

void gj_line_release(struct gj_line *l)
{
    json_decref(l->json);
    l->json = NULL;
}

/* ---- the fast way: the gateway's own layout (common/codec_json.c, msg_fields) ---- */

static bool scan_lit(const char **p, const char *end, const char *lit)
{
    size_t n = strlen(lit);

    if ((size_t)(end - *p) < n || memcmp(*p, lit, n) != 0)
        return false;
    *p += n;
    return true;
}

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
static bool scan_plain(const char **p, const char *end, const char **s, size_t *n)
{
    const char *q = *p;

    while (q < end && *q != '"' && *q != '\\')
        q++;
    if (q == end || *q != '"')
        return false;
    *s = *p;
    *n = (size_t)(q - *p);
    *p = q + 1;
    return true;
}

/* "id":N,"channel":"c","seq":N,"sender":"s","body":"b","ts":"t","via":"v" */
static bool scan_fields(const char **p, const char *end, int64_t *seq, const char **body,
                        size_t *body_len)
{
    const char *s;
    size_t n;
    int64_t id;

    return scan_lit(p, end, "\"id\":") && scan_int(p, end, &id) &&
           scan_lit(p, end, ",\"channel\":\"") && scan_plain(p, end, &s, &n) &&
           scan_lit(p, end, ",\"seq\":") && scan_int(p, end, seq) &&
           scan_lit(p, end, ",\"sender\":\"") && scan_plain(p, end, &s, &n) &&
           scan_lit(p, end, ",\"body\":\"") && scan_plain(p, end, body, body_len) &&
           scan_lit(p, end, ",\"ts\":\"") && scan_plain(p, end, &s, &n) &&
           scan_lit(p, end, ",\"via\":\"") && scan_plain(p, end, &s, &n);
}

bool gj_push_fast(const char *line, size_t len, int64_t *seq, const char **body, size_t *body_len)
{
    const char *p = line, *end = line + len;

    return scan_lit(&p, end, "{\"type\":\"message\",") &&
           scan_fields(&p, end, seq, body, body_len) && scan_lit(&p, end, "}") && p == end;
}

static bool page_fast(const char *text, size_t len, struct gj_page *pg)
{
    const char *p = text, *end = text + len, *s;
    size_t n, cap = 0;

    if (!scan_lit(&p, end, "{\"channel\":\"") || !scan_plain(&p, end, &s, &n) ||
        !scan_lit(&p, end, ",\"messages\":["))
        return false;
    while (p < end && *p == '{') {
        struct gj_ref ref;
        p++;
        if (!scan_fields(&p, end, &ref.seq, &ref.body, &ref.body_len) || !scan_lit(&p, end, "}"))
            return false;
        if (pg->n == cap) {
            cap = cap ? cap * 2 : 64;
            pg->refs = gw_xrealloc(pg->refs, cap * sizeof(*pg->refs));
        }
        pg->refs[pg->n++] = ref;
        if (p < end && *p == ',')
            p++;
        else
            break;
    }
    if (!scan_lit(&p, end, "],\"next_since\":") || !scan_int(&p, end, &pg->next_since) ||
        !scan_lit(&p, end, "}"))
        return false;
    while (p < end && (*p == '\n' || *p == '\r' || *p == ' ' || *p == '\t'))
        p++; /* the gateway ends its bodies with a LF */
    return p == end;
}

int gj_page_parse(const char *body, size_t len, struct gj_page *pg, char err[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *msgs, *next;

    memset(pg, 0, sizeof(*pg));
    if (page_fast(body, len, pg))
        return 0;
    free(pg->refs);
    memset(pg, 0, sizeof(*pg));
    root = json_loadb(body, len, 0, &jerr);
    if (!root) {
        snprintf(err, GW_ERRLEN, "the page is not JSON: %s", jerr.text);
        return -1;
    }
    msgs = json_object_get(root, "messages");
    next = json_object_get(root, "next_since");
    if (!json_is_array(msgs) || !json_is_integer(next)) {
        snprintf(err, GW_ERRLEN, "the page has no messages array or no next_since");
        json_decref(root);
        return -1;
    }
    pg->json = root;
    pg->n = json_array_size(msgs);
    pg->next_since = (int64_t)json_integer_value(next);
    return 0;
}

bool gj_page_msg(const struct gj_page *pg, size_t i, int64_t *seq, const char **body,
                 size_t *body_len)
{
    json_t *m, *s, *b;

    if (pg->refs) {
        *seq = pg->refs[i].seq;
        *body = pg->refs[i].body;
        *body_len = pg->refs[i].body_len;
        return true;
    }
    m = json_array_get(json_object_get(pg->json, "messages"), i);
    s = json_object_get(m, "seq");
    b = json_object_get(m, "body");
    if (!json_is_integer(s) || !json_is_string(b))
        return false;
    *seq = (int64_t)json_integer_value(s);
    *body = json_string_value(b);
    *body_len = json_string_length(b);
    return true;
}

void gj_page_release(struct gj_page *pg)
{
    json_decref(pg->json);
    pg->json = NULL;
    free(pg->refs);
    pg->refs = NULL;
}

void gj_error_text(const char *body, size_t len, char *out, size_t outlen)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *e = json_object_get(root, "error");
    const char *code = str_field(e, "code"), *msg = str_field(e, "message");
    size_t o = 0;

    if (code) {
        snprintf(out, outlen, "%s: %s", code, msg ? msg : "");
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

/* ---- the report ---- */

/* x rounded to places decimals, as a JSON number. */
static json_t *num(double x, int places)
{
    double f = pow(10.0, places);
    return json_real(round(x * f) / f);
}

static json_t *style_json(const struct gwbench_opts *o, const struct style_result *r)
{
    const struct style_info *si = &gwbench_styles[r->id];
    json_t *s = json_object();
    static const int places[COL__COUNT] = {
        [COL_MSGS] = 1, [COL_P50] = 1,   [COL_P90] = 1,   [COL_P99] = 1,
        [COL_MAX] = 1,  [COL_BYTES] = 1, [COL_CONNS] = 3, [COL_EMPTY] = 4,
    };

    json_object_set_new(s, "name", json_string(si->name));
    json_object_set_new(s, "kind", json_string(si->delivery ? "delivery" : "publish"));
    json_object_set_new(s, "latency_of",
                        json_string(si->delivery ? "publish->received" : "publish->ack"));
    for (int c = 0; c < COL__COUNT; c++) {
        double v;
        json_object_set_new(s, out_cols[c].key,
                            out_value(r, (enum out_col)c, &v) ? num(v, places[c]) : json_null());
    }
    json_object_set_new(s, "messages", json_integer((json_int_t)r->messages));
    if (r->failed) {
        json_object_set_new(s, "error", json_string(r->error));
        return s;
    }
    json_object_set_new(s, "published",
                        si->delivery ? json_integer((json_int_t)r->published) : json_null());
    json_object_set_new(s, "receivers", si->delivery ? json_integer(o->connections) : json_null());
    json_object_set_new(s, "seconds", num(r->seconds, 3));
    json_object_set_new(s, "bytes_out", json_integer((json_int_t)r->bytes_out));
    json_object_set_new(s, "bytes_in", json_integer((json_int_t)r->bytes_in));
    json_object_set_new(s, "connections", json_integer((json_int_t)r->connections));
    json_object_set_new(s, "polls", si->polls ? json_integer((json_int_t)r->polls) : json_null());
    json_object_set_new(s, "empty_polls",
                        si->polls ? json_integer((json_int_t)r->empty_polls) : json_null());
    if (r->id == STYLE_REST_LONGPOLL)
        json_object_set_new(s, "early_empty_polls", json_integer((json_int_t)r->early_empty));
    json_object_set_new(s, "latency_corrected", json_boolean(r->lat_corrected));
    if (!si->delivery && o->rate > 0)
        json_object_set_new(s, "backlog", json_integer((json_int_t)r->backlog));
    json_object_set_new(s, "error", json_null());
    return s;
}

static json_t *config_json(const struct gwbench_opts *o, const struct style_result *res, size_t n)
{
    json_t *c = json_object(), *names = json_array();
    bool http = false, tcp = false;

    for (size_t i = 0; i < n; i++) {
        if (!res[i].ran)
            continue;
        http = http || gwbench_styles[res[i].id].http;
        tcp = tcp || gwbench_styles[res[i].id].tcp;
        json_array_append_new(names, json_string(gwbench_styles[res[i].id].name));
    }
    json_object_set_new(c, "http", http ? json_string(o->http.text) : json_null());
    json_object_set_new(c, "tcp", tcp ? json_string(o->tcp.text) : json_null());
    json_object_set_new(c, "connections", json_integer(o->connections));
    json_object_set_new(c, "duration_s", o->messages ? json_null() : num(o->duration_s, 3));
    json_object_set_new(c, "messages", o->messages ? json_integer(o->messages) : json_null());
    json_object_set_new(c, "size", json_integer(o->size));
    json_object_set_new(c, "window", json_integer(o->window));
    json_object_set_new(c, "poll_interval_ms", json_integer(o->poll_ms));
    json_object_set_new(c, "rate", o->rate > 0 ? num(o->rate, 3) : json_null());
    json_object_set_new(c, "delivery_rate", num(o->deliver_rate, 3));
    json_object_set_new(c, "delivery_publisher", json_string("one TCP session, PUBs pipelined"));
    json_object_set_new(c, "longpoll_wait_s", json_integer(GWBENCH_LONGPOLL_WAIT_S));
    json_object_set_new(c, "latency_method", json_string(out_latency_method(o)));
    json_object_set_new(c, "styles", names);
    json_object_set_new(c, "gwbench", json_string(VISAVIS_VERSION));
    return c;
}

char *gj_report(const struct gwbench_opts *o, const struct style_result *res, size_t n)
{
    json_t *root = json_object(), *styles = json_array(), *win = json_object();
    char *text;
    struct buf out = BUF_INIT;

    for (size_t i = 0; i < n; i++) {
        if (res[i].ran)
            json_array_append_new(styles, style_json(o, &res[i]));
    }
    for (int c = 0; c < COL__COUNT; c++) {
        int w = out_winner(res, n, (enum out_col)c);
        json_object_set_new(win, out_cols[c].key,
                            w < 0 ? json_null() : json_string(gwbench_styles[res[w].id].name));
    }
    json_object_set_new(root, "styles", styles);
    json_object_set_new(root, "config", config_json(o, res, n));
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
