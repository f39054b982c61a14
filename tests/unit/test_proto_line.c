/*
 * test_proto_line.c - common/proto_line.h: framing a byte stream into lines,
 * and a line (text or JSON form) into a struct proto_cmd.
 *
 * Every table row is parsed from an exact-size heap copy of its bytes (no
 * terminating NUL), so a read past len shows up under ASan. The framing is
 * also driven like the session reader drives it (append a chunk, take every
 * complete line, keep the rest), and a stream of commands fed split at every
 * byte boundary, and one byte at a time, must give the same lines and the
 * same commands as the stream fed whole.
 */
#include "proto_line.h"

#include "buf.h"
#include "codec_json.h"
#include "gw.h"
#include "tap.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "Any error will do": for inputs where more than one code is defensible. */
#define ANY_ERR GW_E__COUNT

static char *dup_exact(const char *p, size_t len)
{
    char *q = gw_xmalloc(len ? len : 1);
    if (len)
        memcpy(q, p, len);
    return q;
}

static bool inside(const char *p, const char *base, size_t len)
{
    return p && p >= base && p <= base + len;
}

/* ---- proto_frame ---- */

struct frame_case {
    const char *name;
    const char *in;
    size_t len;
    size_t max_line;
    enum proto_frame want;
    size_t line_len; /* for PROTO_LINE */
    size_t consumed; /* for PROTO_LINE */
    const char *todo;
};

#define IN(s) s, sizeof(s) - 1

static const char *const frame_names[] = {"PROTO_LINE", "PROTO_NEED_MORE", "PROTO_TOO_LONG"};

static const char *frame_name(enum proto_frame f)
{
    return (unsigned)f < GW_ARRAY_SIZE(frame_names) ? frame_names[f] : "?";
}

static const struct frame_case frame_cases[] = {
    {"LF", IN("abc\n"), 8, PROTO_LINE, 3, 4, NULL},
    {"CRLF", IN("abc\r\n"), 8, PROTO_LINE, 3, 5, NULL},
    {"lone CR inside a line is kept", IN("a\rb\n"), 8, PROTO_LINE, 3, 4, NULL},
    {"lone CR inside, CRLF end", IN("a\rb\r\n"), 8, PROTO_LINE, 3, 5, NULL},
    {"CR CR LF: the first CR is the line's", IN("ab\r\r\n"), 8, PROTO_LINE, 3, 5, NULL},
    {"empty line LF", IN("\n"), 8, PROTO_LINE, 0, 1, NULL},
    {"empty line CRLF", IN("\r\n"), 8, PROTO_LINE, 0, 2, NULL},
    {"only the first line", IN("ab\ncd\n"), 8, PROTO_LINE, 2, 3, NULL},
    {"first line empty, more after", IN("\nabc\n"), 8, PROTO_LINE, 0, 1, NULL},
    {"NUL bytes are line bytes", IN("a\0b\n"), 8, PROTO_LINE, 3, 4, NULL},
    {"nothing yet", IN(""), 8, PROTO_NEED_MORE, 0, 0, NULL},
    {"no newline yet", IN("abc"), 8, PROTO_NEED_MORE, 0, 0, NULL},
    {"CR but no LF yet", IN("abc\r"), 8, PROTO_NEED_MORE, 0, 0, NULL},
    {"exactly max_line bytes, no LF yet", IN("12345678"), 8, PROTO_NEED_MORE, 0, 0, NULL},
    {"exactly max_line bytes then LF", IN("12345678\n"), 8, PROTO_LINE, 8, 9, NULL},
    {"exactly max_line bytes then CRLF (CR is byte max_line+1)", IN("12345678\r\n"), 8, PROTO_LINE,
     8, 10, NULL},
    {"max_line bytes ending in CR, then CRLF", IN("1234567\r\r\n"), 8, PROTO_LINE, 8, 10, NULL},
    {"exactly max_line bytes then LF, more after", IN("12345678\nxyz"), 8, PROTO_LINE, 8, 9, NULL},
    {"max_line+1 bytes without LF", IN("123456789"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"max_line+1 bytes then LF", IN("123456789\n"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"max_line+1 bytes then CRLF", IN("123456789\r\n"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"far over max_line, LF at the end", IN("123456789012345\n"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"max_line+2 bytes without LF", IN("1234567890"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"max_line bytes + CR, LF not yet here", IN("12345678\r"), 8, PROTO_NEED_MORE, 0, 0, NULL},
    {"max_line bytes + CR + another byte", IN("12345678\rx"), 8, PROTO_TOO_LONG, 0, 0, NULL},
    {"max_line 1: one byte", IN("a\n"), 1, PROTO_LINE, 1, 2, NULL},
    {"max_line 1: two bytes", IN("ab\n"), 1, PROTO_TOO_LONG, 0, 0, NULL},
};

static void test_frame_table(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(frame_cases); i++) {
        const struct frame_case *c = &frame_cases[i];
        char *in = dup_exact(c->in, c->len);
        size_t line_len = 12345, consumed = 67890;
        enum proto_frame f = proto_frame(in, c->len, c->max_line, &line_len, &consumed);

        if (c->todo)
            todo_start(c->todo);
        if (!is_str(frame_name(f), frame_name(c->want), "frame %s: %s", c->name,
                    frame_name(c->want))) {
            if (c->todo)
                todo_end();
            free(in);
            continue;
        }
        if (c->todo)
            todo_end();
        if (c->want == PROTO_LINE) {
            is_uint(line_len, c->line_len, "frame %s: line_len %zu", c->name, c->line_len);
            is_uint(consumed, c->consumed, "frame %s: consumed %zu", c->name, c->consumed);
        }
        free(in);
    }
}

/* The default limit (64 KiB) with buffers of that size. */
static void test_frame_big(void)
{
    const size_t max = 64 * 1024;
    char *b = gw_xmalloc(max + 100);
    size_t line_len = 0, consumed = 0;

    /* An empty buffer that was never allocated. */
    is_int(proto_frame(NULL, 0, max, &line_len, &consumed), PROTO_NEED_MORE,
           "NULL buffer of 0 bytes: NEED_MORE");
    memset(b, 'a', max + 100);
    is_int(proto_frame(b, max, max, &line_len, &consumed), PROTO_NEED_MORE,
           "64 KiB: max bytes, no LF: NEED_MORE");
    b[max] = '\n';
    is_int(proto_frame(b, max + 1, max, &line_len, &consumed), PROTO_LINE,
           "64 KiB: max bytes + LF: LINE");
    ok(line_len == max && consumed == max + 1, "64 KiB: line_len %zu consumed %zu", line_len,
       consumed);
    b[max] = 'a';
    is_int(proto_frame(b, max + 1, max, &line_len, &consumed), PROTO_TOO_LONG,
           "64 KiB: max + 1 bytes, no LF: TOO_LONG");
    b[max + 1] = '\n';
    is_int(proto_frame(b, max + 2, max, &line_len, &consumed), PROTO_TOO_LONG,
           "64 KiB: max + 1 bytes + LF: TOO_LONG");
    b[max + 1] = 'a';
    b[max + 99] = '\n';
    is_int(proto_frame(b, max + 100, max, &line_len, &consumed), PROTO_TOO_LONG,
           "64 KiB: LF far beyond the limit: TOO_LONG");
    free(b);
}

/* ---- the reader: chunks in, lines out ---- */

static void put_s(struct buf *b, const char *s)
{
    buf_append(b, s, strlen(s));
}

static void put_field(struct buf *b, const char *name, const char *p, size_t len)
{
    char tmp[64];

    if (!p) {
        snprintf(tmp, sizeof(tmp), " %s=NULL", name);
        put_s(b, tmp);
        return;
    }
    snprintf(tmp, sizeof(tmp), " %s=%zu:", name, len);
    put_s(b, tmp);
    buf_append(b, p, len);
}

/* A line and what proto_parse made of it, as comparable bytes. */
static void describe(struct buf *b, const char *line, size_t len)
{
    struct proto_cmd cmd;
    char why[GW_ERRLEN], tmp[160];
    char *copy = dup_exact(line, len);
    enum gw_err err;

    put_field(b, "LINE", line, len);
    err = proto_parse(copy, len, &cmd, why);
    const char *op = proto_op_name(cmd.op);
    snprintf(tmp, sizeof(tmp), " err=%s op=%s", gw_err_code(err), op ? op : "none");
    put_s(b, tmp);
    if (err == GW_OK) {
        put_field(b, "channel", cmd.channel, cmd.channel_len);
        put_field(b, "body", cmd.body, cmd.body_len);
        put_field(b, "sender", cmd.sender, cmd.sender_len);
        put_field(b, "token", cmd.token, cmd.token_len);
        put_field(b, "after", cmd.after, cmd.after_len);
        snprintf(tmp, sizeof(tmp), " since=%d:%llu limit=%d:%llu", cmd.has_since,
                 (unsigned long long)cmd.since, cmd.has_limit, (unsigned long long)cmd.limit);
        put_s(b, tmp);
    }
    put_field(b, "tag", cmd.tag, cmd.tag_len);
    put_s(b, "\n");
    proto_cmd_release(&cmd);
    free(copy);
}

struct reader {
    struct buf in;
    size_t off;
    size_t max_line;
    bool dead;      /* TOO_LONG seen: framing lost */
    bool sane;      /* every LINE result was self-consistent */
    struct buf out; /* the transcript */
};

static void reader_init(struct reader *r, size_t max_line)
{
    buf_init(&r->in);
    buf_init(&r->out);
    r->off = 0;
    r->max_line = max_line;
    r->dead = false;
    r->sane = true;
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

        if (f == PROTO_NEED_MORE)
            break;
        if (f == PROTO_TOO_LONG) {
            put_s(&r->out, "TOO_LONG\n");
            r->dead = true;
            break;
        }
        if (f != PROTO_LINE || consumed > avail || line_len > r->max_line ||
            (consumed != line_len + 1 && consumed != line_len + 2) || at[consumed - 1] != '\n' ||
            memchr(at, '\n', line_len) != NULL) {
            r->sane = false;
            r->dead = true;
            put_s(&r->out, "INSANE\n");
            break;
        }
        describe(&r->out, at, line_len);
        r->off += consumed;
    }
}

/* The transcript so far plus what is left unframed; r is released. */
static void reader_finish(struct reader *r, struct buf *out)
{
    if (!r->dead)
        put_field(&r->out, "REST", r->in.data ? r->in.data + r->off : "", r->in.len - r->off);
    buf_release(out);
    *out = r->out;
    buf_release(&r->in);
}

struct split_stream {
    const char *name;
    const char *data;
    size_t len;
    size_t max_line;
    /* The lines it holds, and the unfinished rest, or NULL with too_long. */
    const char *const *lines;
    const size_t *line_lens;
    size_t nlines;
    bool too_long;
    const char *rest;
    const char *split_todo;
};

static void transcript_of(const struct split_stream *s, const size_t *cuts, size_t ncuts,
                          struct buf *out, bool *sane)
{
    struct reader r;
    size_t from = 0;

    reader_init(&r, s->max_line);
    for (size_t i = 0; i <= ncuts; i++) {
        size_t to = i < ncuts ? cuts[i] : s->len;
        char *chunk = dup_exact(s->data + from, to - from);
        reader_feed(&r, chunk, to - from);
        free(chunk);
        from = to;
    }
    *sane = r.sane;
    reader_finish(&r, out);
}

static void test_split_stream(const struct split_stream *s)
{
    struct buf want = BUF_INIT, whole = BUF_INIT, got = BUF_INIT;
    bool sane;

    for (size_t i = 0; i < s->nlines; i++)
        describe(&want, s->lines[i], s->line_lens[i]);
    if (s->too_long)
        put_s(&want, "TOO_LONG\n");
    else
        put_field(&want, "REST", s->rest, strlen(s->rest));

    transcript_of(s, NULL, 0, &whole, &sane);
    ok(sane, "%s: fed whole: every LINE result consistent", s->name);
    is_mem(whole.data, whole.len, want.data, want.len, "%s: fed whole: the expected %zu lines%s",
           s->name, s->nlines, s->too_long ? " then TOO_LONG" : " and the rest");

    size_t bad = 0, first_bad = 0;
    bool all_sane = true;
    for (size_t cut = 0; cut <= s->len; cut++) {
        transcript_of(s, &cut, 1, &got, &sane);
        all_sane &= sane;
        if (got.len != whole.len || memcmp(got.data, whole.data, got.len) != 0) {
            if (bad++ == 0)
                first_bad = cut;
        }
    }
    if (s->split_todo)
        todo_start(s->split_todo);
    if (!ok(bad == 0 && all_sane, "%s: split in two at each of %zu boundaries: same transcript",
            s->name, s->len + 1)) {
        diag("%zu splits differ, the first at byte %zu", bad, first_bad);
        transcript_of(s, &first_bad, 1, &got, &sane);
        tap_diag_mem("got", got.data, got.len);
        tap_diag_mem("want", whole.data, whole.len);
    }

    size_t *cuts = gw_xmalloc((s->len + 1) * sizeof(*cuts));
    for (size_t i = 0; i < s->len; i++)
        cuts[i] = i + 1;
    transcript_of(s, cuts, s->len ? s->len - 1 : 0, &got, &sane);
    is_mem(got.data, got.len, whole.data, whole.len, "%s: one byte at a time: same transcript",
           s->name);

    /* Three chunks: every pair of cuts a few bytes apart. */
    bad = 0;
    for (size_t a = 0; a <= s->len; a++) {
        for (size_t d = 1; d <= 3 && a + d <= s->len; d++) {
            size_t two[2] = {a, a + d};
            transcript_of(s, two, 2, &got, &sane);
            if (got.len != whole.len || memcmp(got.data, whole.data, got.len) != 0)
                bad++;
        }
    }
    ok(bad == 0, "%s: three chunks (cuts 1-3 bytes apart): same transcript (%zu differ)", s->name,
       bad);
    if (s->split_todo)
        todo_end();
    free(cuts);
    buf_release(&want);
    buf_release(&whole);
    buf_release(&got);
}

static void test_split(void)
{
    /* A session's worth of commands, in both forms, LF and CRLF, multi-byte UTF-8. */
    static const char stream_a[] =
        "PUB general hello world\n"
        "\n"
        "sub general 5\r\n"
        "PUB general  a\rb  \r\n"
        "   \t\r\n"
        "{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\\ny\\u0000z\",\"tag\":\"t1\"}\n"
        "HIST general 1 2\n"
        "PING tok\r\n"
        "BOGUS\n"
        "PUB ch \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\n"
        "{\"op\":\"sub\",\"channel\":\"c\",\"since\":-1,\"tag\":\"t2\"}\r\n"
        "QUIT\n"
        "PING unfinished";
    static const char *const lines_a[] = {
        "PUB general hello world",
        "",
        "sub general 5",
        "PUB general  a\rb  ",
        "   \t",
        "{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\\ny\\u0000z\",\"tag\":\"t1\"}",
        "HIST general 1 2",
        "PING tok",
        "BOGUS",
        "PUB ch \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80",
        "{\"op\":\"sub\",\"channel\":\"c\",\"since\":-1,\"tag\":\"t2\"}",
        "QUIT",
    };
    size_t lens_a[GW_ARRAY_SIZE(lines_a)];
    for (size_t i = 0; i < GW_ARRAY_SIZE(lines_a); i++)
        lens_a[i] = strlen(lines_a[i]);
    const struct split_stream a = {
        .name = "stream of commands",
        .data = stream_a,
        .len = sizeof(stream_a) - 1,
        .max_line = 80,
        .lines = lines_a,
        .line_lens = lens_a,
        .nlines = GW_ARRAY_SIZE(lines_a),
        .rest = "PING unfinished",
    };
    test_split_stream(&a);

    /* NUL bytes inside lines. */
    static const char stream_n[] = "PUB c a\0b\nPING\0\nPUB c \0\r\n";
    static const char *const lines_n[] = {"PUB c a\0b", "PING\0", "PUB c \0"};
    static const size_t lens_n[] = {9, 5, 7};
    const struct split_stream n = {
        .name = "stream with NUL bytes",
        .data = stream_n,
        .len = sizeof(stream_n) - 1,
        .max_line = 80,
        .lines = lines_n,
        .line_lens = lens_n,
        .nlines = GW_ARRAY_SIZE(lines_n),
        .rest = "",
    };
    test_split_stream(&n);

    /* A line over the limit: framing is lost at the same place however it arrives. */
    static const char stream_t[] = "PING a\r\n"
                                   "PUB general 0123456789012345678901234567890123456789\n"
                                   "PING b\n";
    static const char *const lines_t[] = {"PING a"};
    static const size_t lens_t[] = {6};
    const struct split_stream t = {
        .name = "stream with a line over max_line",
        .data = stream_t,
        .len = sizeof(stream_t) - 1,
        .max_line = 40,
        .lines = lines_t,
        .line_lens = lens_t,
        .nlines = 1,
        .too_long = true,
    };
    test_split_stream(&t);

    /* Lines of exactly max_line bytes, with LF and with CRLF. */
    static const char stream_m[] = "PUB general 0123456789012345678901234567\n"
                                   "PUB general 0123456789012345678901234567\r\n"
                                   "PING\n";
    static const char *const lines_m[] = {"PUB general 0123456789012345678901234567",
                                          "PUB general 0123456789012345678901234567", "PING"};
    static const size_t lens_m[] = {40, 40, 4};
    const struct split_stream m = {
        .name = "stream with lines of exactly max_line bytes",
        .data = stream_m,
        .len = sizeof(stream_m) - 1,
        .max_line = 40,
        .lines = lines_m,
        .line_lens = lens_m,
        .nlines = GW_ARRAY_SIZE(lines_m),
        .rest = "",
    };
    test_split_stream(&m);
}

/* ---- proto_parse ---- */

struct parse_case {
    const char *name;
    const char *line;
    size_t len;
    enum gw_err err; /* ANY_ERR: any error */
    enum proto_op op;
    const char *channel;
    size_t channel_len;
    const char *body;
    size_t body_len;
    const char *sender;
    size_t sender_len;
    const char *token;
    size_t token_len;
    const char *after;
    size_t after_len;
    const char *tag;
    size_t tag_len;
    bool has_since;
    uint64_t since;
    bool has_limit;
    uint64_t limit;
    const char *todo;
};

#define L(s)      .line = s, .len = sizeof(s) - 1
#define CH(s)     .channel = s, .channel_len = sizeof(s) - 1
#define BODY(s)   .body = s, .body_len = sizeof(s) - 1
#define SENDER(s) .sender = s, .sender_len = sizeof(s) - 1
#define TOKEN(s)  .token = s, .token_len = sizeof(s) - 1
#define TAG(s)    .tag = s, .tag_len = sizeof(s) - 1
#define AFTER(s)  .after = s, .after_len = sizeof(s) - 1
#define SINCE(n)  .has_since = true, .since = n
#define LIMIT(n)  .has_limit = true, .limit = n

static const struct parse_case text_cases[] = {
    /* blank lines */
    {.name = "empty line", L(""), .op = PROTO_NONE},
    {.name = "blanks only", L("  \t \t"), .op = PROTO_NONE},
    /* verbs, case and blanks */
    {.name = "HELP", L("HELP"), .op = PROTO_HELP},
    {.name = "help", L("help"), .op = PROTO_HELP},
    {.name = "hElP", L("hElP"), .op = PROTO_HELP},
    {.name = "HELP with blanks around", L(" \t HELP \t "), .op = PROTO_HELP},
    {.name = "HELP extra", L("HELP me"), .err = GW_E_PARAM, .op = PROTO_HELP},
    {.name = "CHANNELS", L("CHANNELS"), .op = PROTO_CHANNELS},
    /* CHANNELS [<after> [<limit>]]: the names are judged by the core, as a channel's are */
    {.name = "CHANNELS after", L("channels all"), .op = PROTO_CHANNELS, AFTER("all")},
    {.name = "CHANNELS after limit",
     L("CHANNELS \tgen-1.x  25 "),
     .op = PROTO_CHANNELS,
     AFTER("gen-1.x"),
     LIMIT(25)},
    {.name = "CHANNELS digits are an after", L("CHANNELS 10"), .op = PROTO_CHANNELS, AFTER("10")},
    {.name = "CHANNELS after not judged here",
     L("CHANNELS bad!name 0"),
     .op = PROTO_CHANNELS,
     AFTER("bad!name"),
     LIMIT(0)},
    {.name = "CHANNELS limit not judged here",
     L("CHANNELS a 5000"),
     .op = PROTO_CHANNELS,
     AFTER("a"),
     LIMIT(5000)},
    {.name = "CHANNELS limit garbage", L("CHANNELS a x"), .err = GW_E_PARAM, .op = PROTO_CHANNELS},
    {.name = "CHANNELS limit -1", L("CHANNELS a -1"), .err = GW_E_PARAM, .op = PROTO_CHANNELS},
    {.name = "CHANNELS too many arguments",
     L("CHANNELS a 1 2"),
     .err = GW_E_PARAM,
     .op = PROTO_CHANNELS},
    {.name = "PONG", L("PONG"), .op = PROTO_PONG},
    {.name = "pong extra", L("pong 1"), .err = GW_E_PARAM, .op = PROTO_PONG},
    {.name = "QUIT", L("Quit"), .op = PROTO_QUIT},
    {.name = "QUIT extra", L("QUIT now"), .err = GW_E_PARAM, .op = PROTO_QUIT},
    /* PUB */
    {.name = "PUB",
     L("PUB general hello world"),
     .op = PROTO_PUB,
     CH("general"),
     BODY("hello world")},
    {.name = "pub, blanks before text dropped, inner and trailing kept",
     L("pub  general \t  hello   world  \t "),
     .op = PROTO_PUB,
     CH("general"),
     BODY("hello   world  \t ")},
    {.name = "PUB tabs as separators",
     L("PUB\tgeneral\ttab\tbody\t"),
     .op = PROTO_PUB,
     CH("general"),
     BODY("tab\tbody\t")},
    {.name = "PUB one-byte text", L("PUB c x"), .op = PROTO_PUB, CH("c"), BODY("x")},
    {.name = "PUB text with NUL bytes",
     L("PUB c a\0b\0"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("a\0b\0")},
    {.name = "PUB text that is one NUL", L("PUB c \0"), .op = PROTO_PUB, CH("c"), BODY("\0")},
    {.name = "PUB text with CR", L("PUB c a\rb\r"), .op = PROTO_PUB, CH("c"), BODY("a\rb\r")},
    {.name = "PUB UTF-8 text",
     L("PUB c \xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("\xc3\xa9t\xc3\xa9 \xf0\x9f\x98\x80")},
    {.name = "PUB text that looks like JSON",
     L("PUB c {\"op\":\"quit\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("{\"op\":\"quit\"}")},
    {.name = "PUB text that looks like a command",
     L("PUB c SUB c 5"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("SUB c 5")},
    {.name = "PUB channel not judged here", L("PUB a/b x"), .op = PROTO_PUB, CH("a/b"), BODY("x")},
    {.name = "PUB alone", L("PUB"), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_PUB},
    {.name = "PUB blanks", L("PUB  \t"), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_PUB},
    {.name = "PUB channel, no text",
     L("PUB general"),
     .err = GW_E_MISSING_ARGUMENT,
     .op = PROTO_PUB},
    {.name = "PUB channel, blanks, no text",
     L("PUB general  \t "),
     .err = GW_E_MISSING_ARGUMENT,
     .op = PROTO_PUB},
    /* SUB */
    {.name = "SUB", L("SUB general"), .op = PROTO_SUB, CH("general")},
    {.name = "sub since 0", L("sub general 0"), .op = PROTO_SUB, CH("general"), SINCE(0)},
    {.name = "SUB since 42, blanks",
     L("SUB\t general \t42\t"),
     .op = PROTO_SUB,
     CH("general"),
     SINCE(42)},
    {.name = "SUB since INT64_MAX",
     L("SUB c 9223372036854775807"),
     .op = PROTO_SUB,
     CH("c"),
     SINCE(INT64_MAX)},
    {.name = "SUB since INT64_MAX+1",
     L("SUB c 9223372036854775808"),
     .err = GW_E_PARAM,
     .op = PROTO_SUB},
    {.name = "SUB since 2^64", L("SUB c 18446744073709551616"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since 30 digits",
     L("SUB c 999999999999999999999999999999"),
     .err = GW_E_PARAM,
     .op = PROTO_SUB},
    {.name = "SUB since -1", L("SUB c -1"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since +1", L("SUB c +1"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since 1x", L("SUB c 1x"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since 0x10", L("SUB c 0x10"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since 1.5", L("SUB c 1.5"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since abc", L("SUB c abc"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB since with a NUL then garbage",
     L("SUB c 5\0garbage"),
     .err = GW_E_PARAM,
     .op = PROTO_SUB},
    {.name = "SUB since with a trailing NUL", L("SUB c 7\0"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB too many arguments", L("SUB c 1 2"), .err = GW_E_PARAM, .op = PROTO_SUB},
    {.name = "SUB alone", L("SUB"), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_SUB},
    {.name = "SUB blanks", L("SUB \t "), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_SUB},
    /* UNSUB */
    {.name = "UNSUB", L("unsub general"), .op = PROTO_UNSUB, CH("general")},
    {.name = "UNSUB with a since", L("UNSUB general 5"), .err = GW_E_PARAM, .op = PROTO_UNSUB},
    {.name = "UNSUB alone", L("UNSUB"), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_UNSUB},
    /* HIST */
    {.name = "HIST", L("HIST general"), .op = PROTO_HIST, CH("general")},
    {.name = "HIST since", L("hist general 10"), .op = PROTO_HIST, CH("general"), SINCE(10)},
    {.name = "HIST since limit",
     L("HIST general 10 20"),
     .op = PROTO_HIST,
     CH("general"),
     SINCE(10),
     LIMIT(20)},
    {.name = "HIST limit not judged here",
     L("HIST c 0 5000"),
     .op = PROTO_HIST,
     CH("c"),
     SINCE(0),
     LIMIT(5000)},
    {.name = "HIST limit -1", L("HIST c 0 -1"), .err = GW_E_PARAM, .op = PROTO_HIST},
    {.name = "HIST limit overflow",
     L("HIST c 0 99999999999999999999"),
     .err = GW_E_PARAM,
     .op = PROTO_HIST},
    {.name = "HIST since garbage", L("HIST c x 5"), .err = GW_E_PARAM, .op = PROTO_HIST},
    {.name = "HIST too many arguments", L("HIST c 1 2 3"), .err = GW_E_PARAM, .op = PROTO_HIST},
    {.name = "HIST alone", L("HIST"), .err = GW_E_MISSING_ARGUMENT, .op = PROTO_HIST},
    /* PING */
    {.name = "PING", L("PING"), .op = PROTO_PING},
    {.name = "PING token", L("ping abc"), .op = PROTO_PING, TOKEN("abc")},
    {.name = "PING UTF-8 token", L("PING \xc3\xa9"), .op = PROTO_PING, TOKEN("\xc3\xa9")},
    {.name = "PING two tokens", L("PING a b"), .err = GW_E_PARAM, .op = PROTO_PING},
    /* unknown */
    {.name = "unknown verb", L("FOO"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb prefix", L("PU c x"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb longer", L("PUBX c x"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb longer HELPP", L("HELPP"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb with a NUL", L("HELP\0"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "NUL then verb", L("\0HELP"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb glued to JSON", L("HELP{}"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "JSON array is not the JSON form", L("[\"help\"]"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "verb in UTF-8", L("\xc3\xa9"), .err = GW_E_UNKNOWN_COMMAND},
    /* UTF-8 */
    {.name = "invalid byte 0xff", L("\xff"), .err = GW_E_UTF8},
    {.name = "PUB invalid UTF-8 text", L("PUB c ok \xff"), .err = GW_E_UTF8},
    {.name = "PUB truncated sequence", L("PUB c \xe2\x82"), .err = GW_E_UTF8},
    {.name = "PUB overlong NUL", L("PUB c \xc0\x80"), .err = GW_E_UTF8},
    {.name = "PUB surrogate", L("PUB c \xed\xa0\x80"), .err = GW_E_UTF8},
    {.name = "PUB above U+10FFFF", L("PUB c \xf4\x90\x80\x80"), .err = GW_E_UTF8},
    {.name = "invalid UTF-8 in the channel", L("SUB \xc3"), .err = GW_E_UTF8},
};

static const struct parse_case json_cases[] = {
    {.name = "help", L("{\"op\":\"help\"}"), .op = PROTO_HELP},
    {.name = "blanks around", L(" \t{ \"op\" : \"help\" }\t "), .op = PROTO_HELP},
    {.name = "pub, every field",
     L("{\"op\":\"pub\",\"channel\":\"general\",\"body\":\"two\\nlines\",\"sender\":\"ana\","
       "\"tag\":\"p1\"}"),
     .op = PROTO_PUB,
     CH("general"),
     BODY("two\nlines"),
     SENDER("ana"),
     TAG("p1")},
    {.name = "pub, fields in another order",
     L("{\"tag\":\"p2\",\"body\":\"b\",\"channel\":\"c\",\"op\":\"pub\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("b"),
     TAG("p2")},
    {.name = "pub body with \\u0000",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"a\\u0000b\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("a\0b")},
    {.name = "pub body only \\u0000",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\\u0000\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("\0")},
    {.name = "pub body escapes",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\\u00e9\\ud83d"
       "\\ude00\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("\"\\/\b\f\n\r\t\xc3\xa9\xf0\x9f\x98\x80")},
    {.name = "pub body raw UTF-8",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\xe2\x82\xac\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("\xe2\x82\xac")},
    {.name = "pub empty body (the core decides)",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("")},
    {.name = "pub body leading blanks kept",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"  x  \"}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("  x  ")},
    {.name = "sub since, tag",
     L("{\"op\":\"sub\",\"channel\":\"general\",\"since\":10,\"tag\":\"s1\"}"),
     .op = PROTO_SUB,
     CH("general"),
     SINCE(10),
     TAG("s1")},
    {.name = "sub without since",
     L("{\"op\":\"sub\",\"channel\":\"g\"}"),
     .op = PROTO_SUB,
     CH("g")},
    {.name = "sub since 0",
     L("{\"op\":\"sub\",\"channel\":\"g\",\"since\":0}"),
     .op = PROTO_SUB,
     CH("g"),
     SINCE(0)},
    {.name = "sub since INT64_MAX",
     L("{\"op\":\"sub\",\"channel\":\"g\",\"since\":9223372036854775807}"),
     .op = PROTO_SUB,
     CH("g"),
     SINCE(INT64_MAX)},
    {.name = "unsub",
     L("{\"op\":\"unsub\",\"channel\":\"general\"}"),
     .op = PROTO_UNSUB,
     CH("general")},
    {.name = "hist since limit",
     L("{\"op\":\"hist\",\"channel\":\"general\",\"since\":0,\"limit\":10}"),
     .op = PROTO_HIST,
     CH("general"),
     SINCE(0),
     LIMIT(10)},
    {.name = "channels", L("{\"op\":\"channels\"}"), .op = PROTO_CHANNELS},
    {.name = "channels after limit",
     L("{\"op\":\"channels\",\"after\":\"gen\",\"limit\":10,\"tag\":\"c\"}"),
     .op = PROTO_CHANNELS,
     AFTER("gen"),
     LIMIT(10),
     TAG("c")},
    {.name = "channels after empty",
     L("{\"op\":\"channels\",\"after\":\"\"}"),
     .op = PROTO_CHANNELS,
     AFTER("")},
    {.name = "channels after with a NUL kept whole",
     L("{\"op\":\"channels\",\"after\":\"a\\u0000b\"}"),
     .op = PROTO_CHANNELS,
     AFTER("a\0b")},
    {.name = "channels after not a string",
     L("{\"op\":\"channels\",\"after\":5,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_CHANNELS,
     TAG("t")},
    {.name = "channels after null",
     L("{\"op\":\"channels\",\"after\":null}"),
     .err = GW_E_FIELD,
     .op = PROTO_CHANNELS},
    {.name = "channels limit negative",
     L("{\"op\":\"channels\",\"limit\":-1}"),
     .err = GW_E_FIELD,
     .op = PROTO_CHANNELS},
    {.name = "ping token", L("{\"op\":\"ping\",\"token\":\"t1\"}"), .op = PROTO_PING, TOKEN("t1")},
    {.name = "ping token with blanks",
     L("{\"op\":\"ping\",\"token\":\"a b\"}"),
     .op = PROTO_PING,
     TOKEN("a b")},
    {.name = "ping", L("{\"op\":\"ping\"}"), .op = PROTO_PING},
    {.name = "pong", L("{\"op\":\"pong\"}"), .op = PROTO_PONG},
    {.name = "quit", L("{\"op\":\"quit\",\"tag\":\"q\"}"), .op = PROTO_QUIT, TAG("q")},
    {.name = "tag with NUL and quote",
     L("{\"op\":\"help\",\"tag\":\"a\\u0000\\\"b\"}"),
     .op = PROTO_HELP,
     TAG("a\0\"b")},
    {.name = "empty tag", L("{\"op\":\"help\",\"tag\":\"\"}"), .op = PROTO_HELP, TAG("")},
    {.name = "unknown fields ignored",
     L("{\"op\":\"help\",\"x\":[1,{\"y\":null}],\"z\":true,\"since2\":-1}"),
     .op = PROTO_HELP},
    {.name = "unknown fields ignored around pub",
     L("{\"a\":1,\"op\":\"pub\",\"b\":\"x\",\"channel\":\"c\",\"body\":\"y\",\"c\":{}}"),
     .op = PROTO_PUB,
     CH("c"),
     BODY("y")},
    /* errors, with the tag echoed once it was read */
    {.name = "unknown op, tag",
     L("{\"op\":\"nope\",\"tag\":\"t9\"}"),
     .err = GW_E_UNKNOWN_COMMAND,
     TAG("t9")},
    /* A verb in another case is still that command, with an error that says so. */
    {.name = "op in upper case",
     L("{\"op\":\"HELP\",\"tag\":\"u\"}"),
     .op = PROTO_HELP,
     .err = GW_E_UNKNOWN_COMMAND,
     TAG("u")},
    {.name = "pub in mixed case",
     L("{\"op\":\"Pub\",\"channel\":\"c\",\"body\":\"x\",\"tag\":\"m\"}"),
     .op = PROTO_PUB,
     .err = GW_E_UNKNOWN_COMMAND,
     TAG("m")},
    {.name = "PUB in malformed JSON",
     L("{\"op\":\"PUB\",\"channel\":\"c\",}"),
     .op = PROTO_PUB,
     .err = GW_E_JSON},
    {.name = "op empty", L("{\"op\":\"\"}"), .err = GW_E_UNKNOWN_COMMAND},
    {.name = "op with a NUL after a verb",
     L("{\"op\":\"pub\\u0000x\",\"tag\":\"n\"}"),
     .err = GW_E_UNKNOWN_COMMAND,
     TAG("n")},
    {.name = "op missing, tag",
     L("{\"tag\":\"t\",\"channel\":\"c\"}"),
     .err = GW_E_MISSING_FIELD,
     TAG("t")},
    {.name = "op not a string, tag", L("{\"op\":1,\"tag\":\"t\"}"), .err = GW_E_FIELD, TAG("t")},
    {.name = "op null", L("{\"op\":null}"), .err = GW_E_FIELD},
    {.name = "pub without channel",
     L("{\"op\":\"pub\",\"body\":\"x\",\"tag\":\"t\"}"),
     .err = GW_E_MISSING_FIELD,
     .op = PROTO_PUB,
     TAG("t")},
    {.name = "pub without body",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"tag\":\"t\"}"),
     .err = GW_E_MISSING_FIELD,
     .op = PROTO_PUB,
     TAG("t")},
    {.name = "sub without channel",
     L("{\"op\":\"sub\",\"since\":1,\"tag\":\"t\"}"),
     .err = GW_E_MISSING_FIELD,
     .op = PROTO_SUB,
     TAG("t")},
    {.name = "unsub without channel",
     L("{\"op\":\"unsub\"}"),
     .err = GW_E_MISSING_FIELD,
     .op = PROTO_UNSUB},
    {.name = "hist without channel",
     L("{\"op\":\"hist\",\"tag\":\"h\"}"),
     .err = GW_E_MISSING_FIELD,
     .op = PROTO_HIST,
     TAG("h")},
    {.name = "channel a number",
     L("{\"op\":\"sub\",\"channel\":5,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB,
     TAG("t")},
    {.name = "channel null",
     L("{\"op\":\"unsub\",\"channel\":null}"),
     .err = GW_E_FIELD,
     .op = PROTO_UNSUB},
    {.name = "body a number",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":1,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_PUB,
     TAG("t")},
    {.name = "body an array",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":[\"x\"]}"),
     .err = GW_E_FIELD,
     .op = PROTO_PUB},
    {.name = "body null",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":null}"),
     .err = GW_E_FIELD,
     .op = PROTO_PUB},
    {.name = "sender a number",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\",\"sender\":5}"),
     .err = GW_E_FIELD,
     .op = PROTO_PUB},
    {.name = "token a number",
     L("{\"op\":\"ping\",\"token\":5,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_PING,
     TAG("t")},
    {.name = "since -1, tag",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":-1,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB,
     TAG("t")},
    {.name = "since a string",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":\"5\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB},
    {.name = "since a real",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":1.0}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB},
    {.name = "since a boolean",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":true}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB},
    {.name = "since null",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":null}"),
     .err = GW_E_FIELD,
     .op = PROTO_SUB},
    {.name = "since above INT64_MAX",
     L("{\"op\":\"sub\",\"channel\":\"c\",\"since\":9223372036854775808}"),
     .err = ANY_ERR},
    {.name = "limit -5",
     L("{\"op\":\"hist\",\"channel\":\"c\",\"limit\":-5,\"tag\":\"t\"}"),
     .err = GW_E_FIELD,
     .op = PROTO_HIST,
     TAG("t")},
    /* The op is known whatever else is wrong: a datagram with a bad tag is a command (udp.md). */
    {.name = "tag a number", L("{\"op\":\"help\",\"tag\":5}"), .err = GW_E_FIELD, .op = PROTO_HELP},
    {.name = "tag null", L("{\"op\":\"help\",\"tag\":null}"), .err = GW_E_FIELD, .op = PROTO_HELP},
    /* not JSON, or not the JSON form */
    {.name = "lone brace", L("{"), .err = GW_E_JSON},
    /* Malformed, the op is read from the text, so that a datagram is not taken for a body. */
    {.name = "unclosed object", L("{\"op\":\"help\""), .err = GW_E_JSON, .op = PROTO_HELP},
    {.name = "trailing garbage", L("{\"op\":\"help\"}x"), .err = GW_E_JSON, .op = PROTO_HELP},
    {.name = "two objects",
     L("{\"op\":\"help\"}{\"op\":\"quit\"}"),
     .err = GW_E_JSON,
     .op = PROTO_HELP},
    {.name = "duplicate key",
     L("{\"op\":\"help\",\"op\":\"quit\"}"),
     .err = GW_E_JSON,
     .op = PROTO_HELP},
    {.name = "single quotes", L("{'op':'help'}"), .err = GW_E_JSON},
    {.name = "trailing comma", L("{\"op\":\"help\",}"), .err = GW_E_JSON, .op = PROTO_HELP},
    {.name = "malformed, op spaced",
     L("{ \"op\" :\t\"ping\", \"tag\" : 5,}"),
     .err = GW_E_JSON,
     .op = PROTO_PING},
    {.name = "malformed, op no verb", L("{\"op\":\"nope\",}"), .err = GW_E_JSON},
    {.name = "malformed, op not a string", L("{\"op\":5,}"), .err = GW_E_JSON},
    {.name = "malformed, op only in a value",
     L("{\"body\":\"\\\"op\\\":\\\"pub\\\"\",}"),
     .err = GW_E_JSON},
    {.name = "raw newline in a string",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"a\nb\"}"),
     .err = GW_E_JSON,
     .op = PROTO_PUB},
    {.name = "raw NUL in the object", L("{\"op\":\"help\"\0}"), .err = ANY_ERR},
    {.name = "lone surrogate escape",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\\ud800\"}"),
     .err = ANY_ERR},
    {.name = "invalid UTF-8 in a string",
     L("{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\xff\"}"),
     .err = GW_E_UTF8},
};

static void check_case(const struct parse_case *c, const char *form)
{
    char *line = dup_exact(c->line, c->len);
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    enum gw_err err;
    bool json = strcmp(form, "json") == 0;

    memset(&cmd, 0x5a, sizeof(cmd));
    memset(why, 0, sizeof(why));
    err = proto_parse(line, c->len, &cmd, why);

    if (c->todo)
        todo_start(c->todo);
    if (c->err == ANY_ERR)
        ok(err != GW_OK, "%s %s: an error (%s)", form, c->name, gw_err_code(err));
    else
        is_str(gw_err_code(err), gw_err_code(c->err), "%s %s: %s", form, c->name,
               gw_err_code(c->err));
    if (c->todo)
        todo_end();
    if (err != GW_OK) {
        ok(why[0] != '\0' && memchr(why, '\0', GW_ERRLEN) != NULL, "%s %s: why set (\"%s\")", form,
           c->name, why);
    }
    if (c->err != ANY_ERR && (err == GW_OK) == (c->err == GW_OK)) {
        if (c->todo)
            todo_start(c->todo);
        is_str(proto_op_name(cmd.op), proto_op_name(c->op), "%s %s: op %s", form, c->name,
               proto_op_name(c->op) ? proto_op_name(c->op) : "none");
        if (c->todo)
            todo_end();
        is_mem(cmd.tag, cmd.tag_len, c->tag, c->tag_len, "%s %s: tag", form, c->name);
    }
    if (err == GW_OK && c->err == GW_OK) {
        is_mem(cmd.channel, cmd.channel_len, c->channel, c->channel_len, "%s %s: channel", form,
               c->name);
        is_mem(cmd.body, cmd.body_len, c->body, c->body_len, "%s %s: body", form, c->name);
        is_mem(cmd.sender, cmd.sender_len, c->sender, c->sender_len, "%s %s: sender", form,
               c->name);
        is_mem(cmd.token, cmd.token_len, c->token, c->token_len, "%s %s: token", form, c->name);
        is_mem(cmd.after, cmd.after_len, c->after, c->after_len, "%s %s: after", form, c->name);
        ok(cmd.has_since == c->has_since && (!c->has_since || cmd.since == c->since),
           "%s %s: since %d:%llu", form, c->name, c->has_since, (unsigned long long)c->since);
        ok(cmd.has_limit == c->has_limit && (!c->has_limit || cmd.limit == c->limit),
           "%s %s: limit %d:%llu", form, c->name, c->has_limit, (unsigned long long)c->limit);
        const char *ptrs[] = {cmd.channel, cmd.body, cmd.sender, cmd.token, cmd.after, cmd.tag};
        bool where = true;
        for (size_t i = 0; i < GW_ARRAY_SIZE(ptrs); i++) {
            if (!ptrs[i])
                continue;
            /* Text form: views into the line. JSON form: copies, not in the line. */
            if (json ? inside(ptrs[i], line, c->len) : !inside(ptrs[i], line, c->len))
                where = false;
        }
        ok(where, "%s %s: strings %s", form, c->name,
           json ? "copied out of the line" : "borrowed from the line");
        if (!json)
            ok(cmd.owned == NULL, "%s %s: text form owns nothing", form, c->name);
    }
    proto_cmd_release(&cmd);
    ok(cmd.owned == NULL, "%s %s: release leaves owned NULL", form, c->name);
    proto_cmd_release(&cmd); /* twice is safe */
    free(line);
}

static void test_parse_tables(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(text_cases); i++)
        check_case(&text_cases[i], "text");
    for (size_t i = 0; i < GW_ARRAY_SIZE(json_cases); i++)
        check_case(&json_cases[i], "json");
}

/* Every verb, in three spellings, alone and as the JSON op. */
static void test_every_verb(void)
{
    static const struct {
        enum proto_op op;
        const char *name;
        bool needs_channel;
    } ops[] = {
        {PROTO_HELP, "help", false}, {PROTO_PUB, "pub", true},
        {PROTO_SUB, "sub", true},    {PROTO_UNSUB, "unsub", true},
        {PROTO_HIST, "hist", true},  {PROTO_CHANNELS, "channels", false},
        {PROTO_PING, "ping", false}, {PROTO_PONG, "pong", false},
        {PROTO_QUIT, "quit", false}, {PROTO_NAME, "name", true},
    };

    is_int(GW_ARRAY_SIZE(ops), PROTO__COUNT - 1, "the table covers every op");
    ok(proto_op_name(PROTO_NONE) == NULL, "proto_op_name(PROTO_NONE) is NULL");
    ok(proto_op_name(PROTO__COUNT) == NULL, "proto_op_name(PROTO__COUNT) is NULL");
    ok(proto_op_name((enum proto_op) - 1) == NULL, "proto_op_name(-1) is NULL");
    for (size_t i = 0; i < GW_ARRAY_SIZE(ops); i++) {
        char spell[3][16], line[64];
        size_t n = strlen(ops[i].name);
        struct proto_cmd cmd;
        char why[GW_ERRLEN];
        enum gw_err err;

        is_str(proto_op_name(ops[i].op), ops[i].name, "proto_op_name(%d) is %s", ops[i].op,
               ops[i].name);
        for (size_t k = 0; k < n; k++) {
            char ch = ops[i].name[k];
            spell[0][k] = ch;
            spell[1][k] = (char)(ch - 'a' + 'A');
            spell[2][k] = k % 2 ? ch : (char)(ch - 'a' + 'A');
        }
        for (size_t s = 0; s < 3; s++) {
            spell[s][n] = '\0';
            err = proto_parse(spell[s], n, &cmd, why);
            is_str(
                gw_err_code(err), gw_err_code(ops[i].needs_channel ? GW_E_MISSING_ARGUMENT : GW_OK),
                "text '%s' alone: %s", spell[s], ops[i].needs_channel ? "missing_argument" : "ok");
            is_int(cmd.op, ops[i].op, "text '%s': op %s", spell[s], ops[i].name);
            proto_cmd_release(&cmd);
        }
        int len = snprintf(line, sizeof(line),
                           "{\"op\":\"%s\",\"channel\":\"c\",\"body\":\"b\",\"name\":\"n\"}",
                           ops[i].name);
        err = proto_parse(line, (size_t)len, &cmd, why);
        is_int(err, GW_OK, "json op %s: ok", ops[i].name);
        is_int(cmd.op, ops[i].op, "json op %s: op", ops[i].name);
        proto_cmd_release(&cmd);
    }
    /* HELP's usage names every verb. */
    size_t lines = 0;
    for (; proto_usage[lines]; lines++)
        ;
    ok(lines >= GW_ARRAY_SIZE(ops), "proto_usage has %zu lines", lines);
    for (size_t i = 0; i < GW_ARRAY_SIZE(ops); i++) {
        char up[16] = {0};
        size_t n = strlen(ops[i].name);
        bool found = false;
        if (n >= sizeof(up))
            n = sizeof(up) - 1; /* verbs are short; keeps the compiler sure of it too */
        for (size_t k = 0; k < n; k++)
            up[k] = (char)(ops[i].name[k] - 'a' + 'A');
        for (size_t l = 0; l < lines && !found; l++)
            found = strncmp(proto_usage[l], up, n) == 0 &&
                    (proto_usage[l][n] == ' ' || proto_usage[l][n] == ':');
        ok(found, "proto_usage has a line for %s", up);
    }
}

/* Limits on sizes: PING token, tag; and (ptr, len) respected. */
static void test_sizes(void)
{
    char line[512], why[GW_ERRLEN];
    struct proto_cmd cmd;
    enum gw_err err;
    int n;

    /* PING token of PROTO_TOKEN_MAX bytes is fine, one more is not. */
    memcpy(line, "PING ", 5);
    memset(line + 5, 't', PROTO_TOKEN_MAX + 1);
    err = proto_parse(line, 5 + PROTO_TOKEN_MAX, &cmd, why);
    is_int(err, GW_OK, "PING token of %d bytes: ok", PROTO_TOKEN_MAX);
    is_uint(cmd.token_len, PROTO_TOKEN_MAX, "PING token of %d bytes: kept whole", PROTO_TOKEN_MAX);
    proto_cmd_release(&cmd);
    err = proto_parse(line, 5 + PROTO_TOKEN_MAX + 1, &cmd, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "PING token of %d bytes: invalid_parameter",
           PROTO_TOKEN_MAX + 1);
    is_int(cmd.op, PROTO_PING, "PING token too long: op still ping");
    proto_cmd_release(&cmd);

    /* JSON token and tag. */
    char big[PROTO_TAG_MAX + 2];
    for (int extra = 0; extra <= 1; extra++) {
        memset(big, 'g', sizeof(big));
        big[PROTO_TOKEN_MAX + extra] = '\0';
        n = snprintf(line, sizeof(line), "{\"op\":\"ping\",\"token\":\"%s\",\"tag\":\"t\"}", big);
        err = proto_parse(line, (size_t)n, &cmd, why);
        if (extra) {
            ok(err != GW_OK, "json token of %d bytes: an error (%s)", PROTO_TOKEN_MAX + 1,
               gw_err_code(err));
            is_mem(cmd.tag, cmd.tag_len, "t", 1, "json token too long: tag echoed");
        } else {
            is_int(err, GW_OK, "json token of %d bytes: ok", PROTO_TOKEN_MAX);
            is_uint(cmd.token_len, PROTO_TOKEN_MAX, "json token kept whole");
        }
        proto_cmd_release(&cmd);

        memset(big, 'g', sizeof(big));
        big[PROTO_TAG_MAX + extra] = '\0';
        n = snprintf(line, sizeof(line), "{\"op\":\"help\",\"tag\":\"%s\"}", big);
        err = proto_parse(line, (size_t)n, &cmd, why);
        if (extra) {
            ok(err != GW_OK, "json tag of %d bytes: an error (%s)", PROTO_TAG_MAX + 1,
               gw_err_code(err));
            ok(cmd.tag == NULL || cmd.tag_len <= PROTO_TAG_MAX,
               "json tag too long: not echoed as it is");
        } else {
            is_int(err, GW_OK, "json tag of %d bytes: ok", PROTO_TAG_MAX);
            is_uint(cmd.tag_len, PROTO_TAG_MAX, "json tag of %d bytes kept whole", PROTO_TAG_MAX);
        }
        proto_cmd_release(&cmd);
    }
    /* A tag of 128 bytes that takes 2 bytes per character in UTF-8 counts bytes. */
    n = snprintf(line, sizeof(line), "{\"op\":\"help\",\"tag\":\"");
    for (int i = 0; i < PROTO_TAG_MAX / 2 + 1; i++)
        n += snprintf(line + n, sizeof(line) - (size_t)n, "\xc3\xa9");
    n += snprintf(line + n, sizeof(line) - (size_t)n, "\"}");
    err = proto_parse(line, (size_t)n, &cmd, why);
    ok(err != GW_OK, "json tag of %d characters but %d bytes: an error", PROTO_TAG_MAX / 2 + 1,
       PROTO_TAG_MAX + 2);
    proto_cmd_release(&cmd);

    /* Bytes past len are not part of the line. */
    static const char sub[] = "SUB general 12";
    err = proto_parse(sub, sizeof(sub) - 2, &cmd, why);
    ok(err == GW_OK && cmd.has_since && cmd.since == 1, "SUB with len cut before the last digit");
    proto_cmd_release(&cmd);
    static const char pub[] = "PUB general hello";
    err = proto_parse(pub, sizeof(pub) - 3, &cmd, why);
    ok(err == GW_OK && cmd.body_len == 3 && memcmp(cmd.body, "hel", 3) == 0,
       "PUB with len cut inside the text");
    proto_cmd_release(&cmd);
    static const char js[] = "{\"op\":\"help\"}garbage";
    err = proto_parse(js, sizeof(js) - 8, &cmd, why);
    ok(err == GW_OK && cmd.op == PROTO_HELP, "JSON with len cut before trailing bytes");
    proto_cmd_release(&cmd);

    /* The JSON form's strings are copies: they outlive the line. */
    char *l = gw_xstrdup("{\"op\":\"pub\",\"channel\":\"chan\",\"body\":\"text\",\"tag\":\"tg\"}");
    size_t ll = strlen(l);
    err = proto_parse(l, ll, &cmd, why);
    memset(l, 'X', ll);
    free(l);
    ok(err == GW_OK && cmd.channel_len == 4 && memcmp(cmd.channel, "chan", 4) == 0 &&
           cmd.body_len == 4 && memcmp(cmd.body, "text", 4) == 0 && cmd.tag_len == 2 &&
           memcmp(cmd.tag, "tg", 2) == 0,
       "JSON form: strings survive the line being freed");
    proto_cmd_release(&cmd);

    /* A stale cmd from a previous parse leaves nothing behind. */
    err = proto_parse("SUB a 5", 7, &cmd, why);
    proto_cmd_release(&cmd);
    err = proto_parse("UNSUB b", 7, &cmd, why);
    ok(err == GW_OK && !cmd.has_since && !cmd.has_limit && cmd.tag == NULL && cmd.body == NULL,
       "a second parse into the same cmd starts from zero");
    proto_cmd_release(&cmd);
    static const char js2[] = "{\"op\":\"sub\",\"channel\":\"c\",\"since\":3,\"tag\":\"x\"}";
    err = proto_parse(js2, sizeof(js2) - 1, &cmd, why);
    proto_cmd_release(&cmd);
    err = proto_parse("PING", 4, &cmd, why);
    ok(err == GW_OK && !cmd.has_since && cmd.tag == NULL && cmd.owned == NULL,
       "text after JSON into the same cmd: nothing of the JSON left");
    proto_cmd_release(&cmd);

    /* Release of a never-parsed, zeroed cmd. */
    memset(&cmd, 0, sizeof(cmd));
    proto_cmd_release(&cmd);
    ok(cmd.owned == NULL, "release of a zeroed cmd is a no-op");
}

/* codec_cmd_decode on its own: values that are JSON but not an object. */
static void test_not_object(void)
{
    static const struct {
        const char *json;
        enum gw_err err;
    } cases[] = {
        {"[1,2]", GW_E_NOT_OBJECT},
        {"\"op\"", GW_E_NOT_OBJECT},
        {"42", GW_E_NOT_OBJECT},
        {"null", GW_E_NOT_OBJECT},
        {"true", GW_E_NOT_OBJECT},
        {"[{\"op\":\"help\"}]", GW_E_NOT_OBJECT},
        {"", GW_E_JSON},
        {"{", GW_E_JSON},
        {"nul", GW_E_JSON},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct proto_cmd cmd;
        char why[GW_ERRLEN] = "";
        char *in = dup_exact(cases[i].json, strlen(cases[i].json));

        memset(&cmd, 0, sizeof(cmd));
        enum gw_err err = codec_cmd_decode(in, strlen(cases[i].json), &cmd, why);
        is_str(gw_err_code(err), gw_err_code(cases[i].err), "codec_cmd_decode '%s': %s",
               cases[i].json, gw_err_code(cases[i].err));
        ok(why[0] != '\0', "codec_cmd_decode '%s': why set", cases[i].json);
        ok(cmd.op == PROTO_NONE && cmd.tag == NULL, "codec_cmd_decode '%s': no op, no tag",
           cases[i].json);
        proto_cmd_release(&cmd);
        free(in);
    }
}

/*
 * A number past what the JSON reader holds is a field out of range, not
 * malformed JSON: in a field read (since) or one ignored. The op is still
 * named, for the error to say which command it was.
 */
static void test_number_out_of_range(void)
{
    static const char *const cases[] = {
        "{\"op\":\"sub\",\"channel\":\"c\",\"since\":9223372036854775808}",
        "{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\",\"trace\":18446744073709551616}",
        "{\"op\":\"hist\",\"channel\":\"c\",\"x\":-1e999}",
    };
    static const enum proto_op ops[] = {PROTO_SUB, PROTO_PUB, PROTO_HIST};
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct proto_cmd cmd;
        char why[GW_ERRLEN] = "";
        char *in = dup_exact(cases[i], strlen(cases[i]));

        memset(&cmd, 0, sizeof(cmd));
        enum gw_err err = codec_cmd_decode(in, strlen(cases[i]), &cmd, why);
        is_str(gw_err_code(err), gw_err_code(GW_E_FIELD), "codec_cmd_decode '%s': invalid_field",
               cases[i]);
        ok(strstr(why, "out of range") != NULL, "codec_cmd_decode '%s': why says so (%s)", cases[i],
           why);
        ok(cmd.op == ops[i], "codec_cmd_decode '%s': the op is named", cases[i]);
        proto_cmd_release(&cmd);
        free(in);
    }
}

/* A NUL inside a number is shown in the error, not where the message stops. */
static void test_nul_in_a_number_is_shown(void)
{
    static const char line[] = "HIST c 1\0x 2";
    struct proto_cmd cmd;
    char why[GW_ERRLEN] = "";
    char *in = dup_exact(line, sizeof(line) - 1);

    memset(&cmd, 0, sizeof(cmd));
    enum gw_err err = proto_parse(in, sizeof(line) - 1, &cmd, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM),
           "HIST with a NUL in since: invalid_parameter");
    ok(strstr(why, "got '1\\0x'") != NULL, "the argument is shown whole: %s", why);
    proto_cmd_release(&cmd);
    free(in);
}

/* A NUL inside the verb likewise: "PUB<NUL>" is not shown as the command PUB. */
static void test_nul_in_a_verb_is_shown(void)
{
    static const char line[] = "PUB\0 odd x";
    struct proto_cmd cmd;
    char why[GW_ERRLEN] = "";
    char *in = dup_exact(line, sizeof(line) - 1);

    memset(&cmd, 0, sizeof(cmd));
    enum gw_err err = proto_parse(in, sizeof(line) - 1, &cmd, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_UNKNOWN_COMMAND), "PUB<NUL>: unknown_command");
    ok(strstr(why, "unknown command 'PUB\\0'") != NULL, "the verb is shown whole: %s", why);
    proto_cmd_release(&cmd);
    free(in);
}

/* Framing and parsing together: a frame's line parses like the bare line. */
static void test_frame_then_parse(void)
{
    static const char in[] = "PUB c body with \r inside\r\n";
    size_t line_len, consumed;
    struct proto_cmd cmd;
    char why[GW_ERRLEN];

    is_int(proto_frame(in, sizeof(in) - 1, 64, &line_len, &consumed), PROTO_LINE,
           "frame then parse: a line");
    is_int(proto_parse(in, line_len, &cmd, why), GW_OK, "frame then parse: ok");
    is_mem(cmd.body, cmd.body_len, "body with \r inside", 18,
           "frame then parse: the CRLF is gone, the inner CR kept");
    proto_cmd_release(&cmd);
}

/* Whether a "tag" was asked for, readable or not: a datagram's error is answered by it. */
static void test_tag_given(void)
{
    static const struct {
        const char *line;
        bool given;
    } cases[] = {
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\",\"tag\":\"t\"}", true},
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\",\"tag\":5}", true},
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\",\"tag\":null}", true},
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"x\"}", false},
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"\\ud800\",\"tag\":\"t\"}", true},
        {"{\"op\":\"pub\",\"channel\":\"c\",\"body\":\"tag\",}", false},
        {"PUB c \"tag\": x", false},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct proto_cmd cmd;
        char why[GW_ERRLEN];
        char *in = dup_exact(cases[i].line, strlen(cases[i].line));

        (void)proto_parse(in, strlen(cases[i].line), &cmd, why);
        is_int(cmd.tag_given, cases[i].given, "tag given in '%s': %d", cases[i].line,
               cases[i].given);
        is_str(proto_op_name(cmd.op), "pub", "op of '%s': pub", cases[i].line);
        proto_cmd_release(&cmd);
        free(in);
    }
}

int main(void)
{
    test_frame_table();
    test_frame_big();
    test_split();
    test_parse_tables();
    test_every_verb();
    test_sizes();
    test_not_object();
    test_number_out_of_range();
    test_nul_in_a_number_is_shown();
    test_nul_in_a_verb_is_shown();
    test_tag_given();
    test_frame_then_parse();
    return done_testing();
}
