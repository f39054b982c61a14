/*
 * fuzz_proto_line.c - libFuzzer target for common/proto_line.h: proto_frame
 * over a byte stream, proto_parse on every line it yields, and the session
 * lines built from the result.
 *
 * Input: byte 0 picks max_line (1..128, or the default 65536 when its top bit
 * is set), byte 1 where to cut the stream in two, the rest is the stream.
 *
 * Invariants:
 *   - framing: each LINE is at most max_line bytes, ends at the first LF,
 *     drops exactly one CR before it; NEED_MORE and TOO_LONG only when the
 *     bytes say so;
 *   - the stream fed whole, cut in two, or one byte at a time gives the same
 *     lines and the same end state;
 *   - parse: codes and ops in range, why set on errors, strings valid UTF-8
 *     and within the limits, text-form strings inside the line;
 *   - round trip: parse -> the JSON form (jansson) -> parse gives the same
 *     command, and for the text form parse -> text -> parse too;
 *   - the reply and push lines built from a command are one line of valid
 *     JSON that gives back the same bytes.
 */
#include "buf.h"
#include "codec_json.h"
#include "gw.h"
#include "model.h"
#include "proto_line.h"
#include "text.h"

#include "fuzz_util.h"

#include <jansson.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- framing ---- */

enum ev_kind { EV_LINE, EV_TOO_LONG };

struct ev {
    enum ev_kind kind;
    size_t off, len; /* the line, as offsets into the whole stream */
};

struct reader {
    struct buf in;
    size_t off; /* consumed so far: in.data[0] is the stream's first byte */
    size_t max_line;
    int dead;
    struct ev *evs;
    size_t nev, cap;
};

static void push_ev(struct reader *r, enum ev_kind k, size_t off, size_t len)
{
    if (r->nev == r->cap) {
        r->cap = r->cap ? r->cap * 2 : 16;
        r->evs = gw_xrealloc(r->evs, r->cap * sizeof(*r->evs));
    }
    r->evs[r->nev].kind = k;
    r->evs[r->nev].off = off;
    r->evs[r->nev].len = len;
    r->nev++;
}

/* Checks one proto_frame answer against the bytes it was given. */
static void check_frame(const char *at, size_t avail, size_t max_line, enum proto_frame f,
                        size_t line_len, size_t consumed)
{
    const char *nl = memchr(at, '\n', avail);
    size_t content = 0;

    if (nl) {
        content = (size_t)(nl - at);
        if (content && at[content - 1] == '\r')
            content--;
    }
    switch (f) {
    case PROTO_LINE:
        FUZZ_CHECK(nl != NULL, "LINE without a LF");
        FUZZ_CHECK(consumed == (size_t)(nl - at) + 1, "LINE consumes through the first LF");
        FUZZ_CHECK(line_len == content, "LINE drops the LF and one CR before it");
        FUZZ_CHECK(line_len <= max_line, "LINE within max_line");
        break;
    case PROTO_NEED_MORE:
        FUZZ_CHECK(nl == NULL, "NEED_MORE although a LF is there");
        FUZZ_CHECK(avail <= max_line + 1, "NEED_MORE beyond max_line");
        FUZZ_CHECK(avail <= max_line || at[max_line] == '\r', "NEED_MORE: the byte past max is CR");
        break;
    case PROTO_TOO_LONG:
        FUZZ_CHECK(nl ? content > max_line : avail > max_line, "TOO_LONG for a line that fits");
        break;
    default:
        FUZZ_CHECK(0, "proto_frame result out of range");
    }
}

static void reader_feed(struct reader *r, const char *p, size_t n)
{
    if (r->dead)
        return;
    buf_append(&r->in, p, n);
    for (;;) {
        const char *at = r->in.data + r->off;
        size_t avail = r->in.len - r->off, line_len = SIZE_MAX, consumed = SIZE_MAX;
        enum proto_frame f = proto_frame(at, avail, r->max_line, &line_len, &consumed);

        check_frame(at, avail, r->max_line, f, line_len, consumed);
        if (f == PROTO_NEED_MORE)
            break;
        if (f == PROTO_TOO_LONG) {
            push_ev(r, EV_TOO_LONG, r->off, 0);
            r->dead = 1;
            break;
        }
        push_ev(r, EV_LINE, r->off, line_len);
        r->off += consumed;
    }
}

static void reader_run(struct reader *r, const char *s, size_t len, size_t max_line,
                       const size_t *cuts, size_t ncuts)
{
    size_t from = 0;

    memset(r, 0, sizeof(*r));
    r->max_line = max_line;
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : len;
        reader_feed(r, s + from, to - from);
        from = to;
    }
}

static void reader_same(const struct reader *a, const struct reader *b, const char *what)
{
    FUZZ_CHECK(a->nev == b->nev, what);
    FUZZ_CHECK(a->dead == b->dead, what);
    FUZZ_CHECK(a->off == b->off, what);
    for (size_t i = 0; i < a->nev; i++) {
        FUZZ_CHECK(a->evs[i].kind == b->evs[i].kind, what);
        FUZZ_CHECK(a->evs[i].off == b->evs[i].off, what);
        FUZZ_CHECK(a->evs[i].len == b->evs[i].len, what);
    }
}

static void reader_release(struct reader *r)
{
    buf_release(&r->in);
    free(r->evs);
}

/* ---- commands ---- */

static int mem_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (!a || !b)
        return a == b;
    return alen == blen && (alen == 0 || memcmp(a, b, alen) == 0);
}

static int cmd_eq(const struct proto_cmd *a, const struct proto_cmd *b)
{
    return a->op == b->op && mem_eq(a->channel, a->channel_len, b->channel, b->channel_len) &&
           mem_eq(a->body, a->body_len, b->body, b->body_len) &&
           mem_eq(a->sender, a->sender_len, b->sender, b->sender_len) &&
           mem_eq(a->token, a->token_len, b->token, b->token_len) &&
           mem_eq(a->after, a->after_len, b->after, b->after_len) &&
           mem_eq(a->tag, a->tag_len, b->tag, b->tag_len) && a->has_since == b->has_since &&
           (!a->has_since || a->since == b->since) && a->has_limit == b->has_limit &&
           (!a->has_limit || a->limit == b->limit);
}

static int blank(char c)
{
    return c == ' ' || c == '\t';
}

static int has_blank(const char *p, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (blank(p[i]))
            return 1;
    }
    return 0;
}

/*
 * An oracle for the text form: the line's own words. The verb is the op's
 * name in any case and of the same length; a since or limit is that word's
 * digits and nothing else.
 */
static void check_text_words(const char *line, size_t len, const struct proto_cmd *cmd)
{
    const char *w[4];
    size_t wl[4], nw = 0, i = 0;

    while (nw < 4) {
        while (i < len && blank(line[i]))
            i++;
        if (i == len)
            break;
        w[nw] = line + i;
        while (i < len && !blank(line[i]))
            i++;
        wl[nw] = (size_t)(line + i - w[nw]);
        nw++;
    }
    const char *name = proto_op_name(cmd->op);
    /* EXIT is QUIT's other name. */
    FUZZ_CHECK(nw >= 1 &&
                   ((wl[0] == strlen(name) && strncasecmp(w[0], name, wl[0]) == 0) ||
                    (cmd->op == PROTO_QUIT && wl[0] == 4 && strncasecmp(w[0], "exit", 4) == 0)),
               "the verb is the op's name (or EXIT for QUIT), every byte of it");
    /* HIST <channel> <since> <limit>; CHANNELS <after> <limit>. */
    const uint64_t *nums[2] = {cmd->has_since ? &cmd->since : NULL,
                               cmd->has_limit ? &cmd->limit : NULL};
    const size_t at[2] = {2, cmd->op == PROTO_CHANNELS ? 2 : 3};
    for (size_t k = 0; k < 2; k++) {
        if (!nums[k])
            continue;
        size_t j = at[k];
        FUZZ_CHECK(nw >= j + 1, "a number comes from a word");
        uint64_t v = 0;
        for (size_t c = 0; c < wl[j]; c++) {
            FUZZ_CHECK(w[j][c] >= '0' && w[j][c] <= '9', "a number is digits only");
            v = v * 10 + (uint64_t)(w[j][c] - '0');
        }
        FUZZ_CHECK(v == *nums[k], "a number has the word's value");
    }
    if (cmd->after)
        FUZZ_CHECK(nw >= 2 && cmd->after == w[1] && cmd->after_len == wl[1],
                   "CHANNELS' after is its second word");
}

static void check_str(const char *p, size_t n, size_t max, const char *what)
{
    if (!p)
        return;
    FUZZ_CHECK(text_utf8_valid(p, n), what);
    FUZZ_CHECK(max == 0 || n <= max, what);
}

static void set_str(json_t *o, const char *key, const char *p, size_t n)
{
    if (!p)
        return;
    json_t *v = json_stringn(p, n);
    FUZZ_CHECK(v != NULL, "a parsed string is valid UTF-8 for jansson");
    json_object_set_new(o, key, v);
}

/* parse -> the JSON form -> parse: the same command. */
static void json_round_trip(const struct proto_cmd *cmd)
{
    json_t *o = json_object();
    struct proto_cmd again;
    char why[GW_ERRLEN];

    json_object_set_new(o, "op", json_string(proto_op_name(cmd->op)));
    set_str(o, "channel", cmd->channel, cmd->channel_len);
    set_str(o, "body", cmd->body, cmd->body_len);
    /* NAME's JSON form calls its sender "name". */
    set_str(o, cmd->op == PROTO_NAME ? "name" : "sender", cmd->sender, cmd->sender_len);
    set_str(o, "token", cmd->token, cmd->token_len);
    set_str(o, "after", cmd->after, cmd->after_len);
    set_str(o, "tag", cmd->tag, cmd->tag_len);
    if (cmd->has_since)
        json_object_set_new(o, "since", json_integer((json_int_t)cmd->since));
    if (cmd->has_limit)
        json_object_set_new(o, "limit", json_integer((json_int_t)cmd->limit));
    char *s = json_dumps(o, JSON_COMPACT);
    FUZZ_CHECK(s != NULL, "json_dumps");
    enum gw_err err = proto_parse(s, strlen(s), &again, why);
    FUZZ_CHECK(err == GW_OK, "the JSON form of a parsed command parses");
    FUZZ_CHECK(cmd_eq(cmd, &again), "parse -> JSON form -> parse is the same command");
    proto_cmd_release(&again);
    free(s);
    json_decref(o);
}

static void put_u(struct buf *b, uint64_t v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), " %llu", (unsigned long long)v);
    buf_append(b, tmp, (size_t)n);
}

/* parse -> the text form -> parse: the same command (text-form commands only). */
static void text_round_trip(const struct proto_cmd *cmd)
{
    struct buf b = BUF_INIT;
    struct proto_cmd again;
    char why[GW_ERRLEN];
    const char *name = proto_op_name(cmd->op);

    buf_append(&b, name, strlen(name));
    if (cmd->channel) {
        buf_append(&b, " ", 1);
        buf_append(&b, cmd->channel, cmd->channel_len);
    }
    if (cmd->op == PROTO_PUB) {
        buf_append(&b, " ", 1);
        buf_append(&b, cmd->body, cmd->body_len);
    }
    if (cmd->op == PROTO_NAME) {
        buf_append(&b, " ", 1);
        buf_append(&b, cmd->sender, cmd->sender_len);
    }
    if (cmd->after) {
        buf_append(&b, " ", 1);
        buf_append(&b, cmd->after, cmd->after_len);
    }
    if (cmd->has_since)
        put_u(&b, cmd->since);
    if (cmd->has_limit)
        put_u(&b, cmd->limit);
    if (cmd->token) {
        buf_append(&b, " ", 1);
        buf_append(&b, cmd->token, cmd->token_len);
    }
    enum gw_err err = proto_parse(b.data, b.len, &again, why);
    FUZZ_CHECK(err == GW_OK, "the text form of a parsed text command parses");
    FUZZ_CHECK(cmd_eq(cmd, &again), "parse -> text form -> parse is the same command");
    proto_cmd_release(&again);
    buf_release(&b);
}

/* One line of JSON in b: parsed (json_decref it), or an abort. */
static json_t *one_line(const struct buf *b, const char *what)
{
    FUZZ_CHECK(b->len > 0 && b->data[b->len - 1] == '\n', what);
    FUZZ_CHECK(memchr(b->data, '\n', b->len - 1) == NULL, what);
    json_t *v = json_loadb(b->data, b->len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(v), what);
    FUZZ_CHECK(json_is_string(json_object_get(v, "type")), what);
    return v;
}

static int json_str_eq(json_t *v, const char *p, size_t n)
{
    return json_is_string(v) && mem_eq(json_string_value(v), json_string_length(v), p, n);
}

/* The lines a session would send for this result. */
static void check_replies(enum gw_err err, const char *why, const struct proto_cmd *cmd)
{
    struct buf b = BUF_INIT;
    json_t *v;

    if (err != GW_OK) {
        codec_line_error(&b, err, why, proto_op_name(cmd->op), cmd->tag, cmd->tag_len);
        v = one_line(&b, "error line");
        FUZZ_CHECK(
            json_str_eq(json_object_get(v, "code"), gw_err_code(err), strlen(gw_err_code(err))),
            "error line: code");
        if (cmd->tag)
            FUZZ_CHECK(json_str_eq(json_object_get(v, "tag"), cmd->tag, cmd->tag_len),
                       "error line: tag echoed");
        json_decref(v);
        buf_release(&b);
        return;
    }
    if (cmd->op == PROTO_PUB) {
        struct gw_msg m;
        memset(&m, 0, sizeof(m));
        m.id = 1;
        m.seq = 1;
        m.via = GW_T_TCP;
        if (cmd->channel_len <= GW_CHANNEL_MAX)
            memcpy(m.channel, cmd->channel, cmd->channel_len); /* may hold NULs: fine here */
        m.sender = (char *)(cmd->sender ? cmd->sender : GW_SENDER_DEFAULT);
        m.sender_len = cmd->sender ? cmd->sender_len : strlen(GW_SENDER_DEFAULT);
        m.body = (char *)cmd->body;
        m.body_len = cmd->body_len;
        codec_line_message(&b, &m);
        v = one_line(&b, "message line");
        FUZZ_CHECK(json_str_eq(json_object_get(v, "body"), cmd->body, cmd->body_len),
                   "message line: body byte for byte");
        FUZZ_CHECK(json_str_eq(json_object_get(v, "sender"), m.sender, m.sender_len),
                   "message line: sender byte for byte");
        json_decref(v);
        buf_clear(&b);
        codec_line_ok_pub(&b, &m, cmd->tag, cmd->tag_len);
        v = one_line(&b, "ok pub line");
        FUZZ_CHECK(json_str_eq(json_object_get(json_object_get(v, "message"), "body"), cmd->body,
                               cmd->body_len),
                   "ok pub line: body byte for byte");
        json_decref(v);
    } else if (cmd->op == PROTO_PING) {
        codec_line_pong(&b, cmd->token, cmd->token_len, 1, cmd->tag, cmd->tag_len);
        v = one_line(&b, "pong line");
        FUZZ_CHECK(json_str_eq(json_object_get(v, "token"), cmd->token ? cmd->token : "",
                               cmd->token ? cmd->token_len : 0),
                   "pong line: token byte for byte");
        json_decref(v);
    }
    buf_release(&b);
}

static void check_line(const char *line, size_t len)
{
    /* An exact-size copy, so that a read past len is caught by ASan. */
    char *copy = gw_xmalloc(len ? len : 1);
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    size_t i = 0;

    if (len)
        memcpy(copy, line, len);
    memset(why, 0x7f, sizeof(why));
    enum gw_err err = proto_parse(copy, len, &cmd, why);

    FUZZ_CHECK((unsigned)err < GW_E__COUNT, "error code in range");
    FUZZ_CHECK((unsigned)cmd.op < PROTO__COUNT, "op in range");
    if (err != GW_OK) {
        FUZZ_CHECK(memchr(why, '\0', sizeof(why)) != NULL && why[0] != '\0', "why set");
    }
    check_str(cmd.tag, cmd.tag_len, PROTO_TAG_MAX, "tag");
    while (i < len && blank(copy[i]))
        i++;
    int json_form = i < len && copy[i] == '{';
    if (!json_form)
        FUZZ_CHECK(cmd.tag == NULL, "the text form has no tag");

    if (err == GW_OK) {
        FUZZ_CHECK(cmd.op != PROTO_NONE || i == len, "PROTO_NONE only for a blank line");
        check_str(cmd.channel, cmd.channel_len, 0, "channel");
        check_str(cmd.body, cmd.body_len, 0, "body");
        check_str(cmd.sender, cmd.sender_len, 0, "sender");
        check_str(cmd.token, cmd.token_len, PROTO_TOKEN_MAX, "token");
        FUZZ_CHECK(!cmd.has_since || cmd.since <= INT64_MAX, "since <= INT64_MAX");
        FUZZ_CHECK(!cmd.has_limit || cmd.limit <= INT64_MAX, "limit <= INT64_MAX");
        switch (cmd.op) {
        case PROTO_PUB:
            FUZZ_CHECK(cmd.body != NULL, "PUB has a body");
            /* fall through */
        case PROTO_SUB:
        case PROTO_UNSUB:
        case PROTO_HIST:
            FUZZ_CHECK(cmd.channel != NULL, "a channel where one is required");
            break;
        default:
            break;
        }
        if (!json_form) {
            const char *ptrs[] = {cmd.channel, cmd.body, cmd.token, cmd.sender, cmd.after};
            const size_t lens[] = {cmd.channel_len, cmd.body_len, cmd.token_len, cmd.sender_len,
                                   cmd.after_len};
            FUZZ_CHECK(cmd.owned == NULL, "the text form owns nothing");
            FUZZ_CHECK(cmd.sender == NULL || cmd.op == PROTO_NAME,
                       "the text form has a sender in NAME only");
            FUZZ_CHECK(cmd.after == NULL || cmd.op == PROTO_CHANNELS,
                       "the text form has an after in CHANNELS only");
            for (size_t k = 0; k < 5; k++) {
                if (ptrs[k])
                    FUZZ_CHECK(ptrs[k] >= copy && ptrs[k] + lens[k] <= copy + len,
                               "text-form strings are inside the line");
            }
            if (cmd.channel)
                FUZZ_CHECK(cmd.channel_len > 0 && !has_blank(cmd.channel, cmd.channel_len),
                           "a text channel is one word");
            if (cmd.token)
                FUZZ_CHECK(cmd.token_len > 0 && !has_blank(cmd.token, cmd.token_len),
                           "a text token is one word");
            if (cmd.op == PROTO_PUB)
                FUZZ_CHECK(cmd.body_len > 0 && !blank(cmd.body[0]),
                           "a text body is not empty and starts after the blanks");
            FUZZ_CHECK(!cmd.has_limit || cmd.has_since || cmd.after,
                       "a text limit comes after a since or an after");
            if (cmd.op != PROTO_NONE)
                check_text_words(copy, len, &cmd);
        }
        if (cmd.op != PROTO_NONE) {
            json_round_trip(&cmd);
            if (!json_form)
                text_round_trip(&cmd);
        }
    }
    check_replies(err, why, &cmd);
    proto_cmd_release(&cmd);
    FUZZ_CHECK(cmd.owned == NULL, "release clears owned");
    proto_cmd_release(&cmd);
    free(copy);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    size_t max_line = data[0] & 0x80 ? 64 * 1024 : 1 + (size_t)(data[0] & 0x7f);
    const char *s = (const char *)data + 2;
    size_t len = size - 2;
    size_t cut = len * data[1] / 255;
    struct reader whole, two, bytes;

    reader_run(&whole, s, len, max_line, NULL, 0);
    reader_run(&two, s, len, max_line, &cut, 1);
    reader_same(&whole, &two, "the stream cut in two frames as the whole");
    reader_release(&two);
    if (len <= 4096) {
        size_t *cuts = gw_xmalloc((len + 1) * sizeof(*cuts));
        for (size_t i = 0; i < len; i++)
            cuts[i] = i + 1;
        reader_run(&bytes, s, len, max_line, cuts, len ? len - 1 : 0);
        reader_same(&whole, &bytes, "the stream one byte at a time frames as the whole");
        reader_release(&bytes);
        free(cuts);
    }
    for (size_t i = 0; i < whole.nev; i++) {
        if (whole.evs[i].kind == EV_LINE)
            check_line(s + whole.evs[i].off, whole.evs[i].len);
    }
    /* Whatever was framed or not, the whole input as one line must not break the parser. */
    check_line(s, len);
    reader_release(&whole);
    return 0;
}
