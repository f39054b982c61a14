/*
 * test_codec_lines.c - common/codec_json.h, the session lines (codec_line_*)
 * of docs/protocol.md.
 *
 * Every line is checked for the framing (exactly one line, ended by LF), for
 * being one JSON object with "type" first, for its exact set of keys, and for
 * its values, read back with jansson. The lines that answer a command are
 * also checked with and without a tag. Last, bodies go the whole way round:
 * a command line in either form, proto_parse, then the line that pushes the
 * message, parsed back.
 */
#include "codec_json.h"

#include "buf.h"
#include "gw.h"
#include "model.h"
#include "proto_line.h"
#include "rng.h"
#include "tap.h"
#include "text.h"

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B(s) s, sizeof(s) - 1

/* A message whose strings point at static bytes (never released). */
static struct gw_msg msg_of(int64_t id, const char *channel, int64_t seq, const char *sender,
                            size_t sender_len, const char *body, size_t body_len, int64_t ts_ms,
                            enum gw_transport via)
{
    struct gw_msg m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.seq = seq;
    m.ts_ms = ts_ms;
    m.via = via;
    snprintf(m.channel, sizeof(m.channel), "%s", channel);
    m.sender = (char *)sender;
    m.sender_len = sender_len;
    m.body = (char *)body;
    m.body_len = body_len;
    return m;
}

static const char body1[] = "q\"b\\s/n\nt\tz\0e\xc3\xa9 \xf0\x9f\x98\x80\r";
static const char sender1[] = "ana \xc3\xa9";

static struct gw_msg sample_msg(void)
{
    return msg_of(9007199254740993, "a.b_c-D9", 42, B(sender1), B(body1), 1795511702417, GW_T_TCP);
}

/*
 * Checks the framing and the JSON of the one line in (s, len): ends in its
 * only LF, starts with {"type":"<type>", parses to an object whose keys are
 * exactly keys (a NULL-terminated list). Returns the object (json_decref it)
 * or NULL after a failed check.
 */
static json_t *check_line(const char *s, size_t len, const char *type, const char *const *keys,
                          const char *what)
{
    char head[64];
    json_error_t jerr;
    json_t *root;

    bool ends = len > 0 && s[len - 1] == '\n';
    ok(ends, "%s: ends with LF", what);
    if (!ends || len == 0)
        return NULL;
    ok(memchr(s, '\n', len - 1) == NULL, "%s: one line (no other LF)", what);
    ok(memchr(s, '\r', len) == NULL, "%s: no CR anywhere", what);
    snprintf(head, sizeof(head), "{\"type\":\"%s\"", type);
    ok(len > strlen(head) && memcmp(s, head, strlen(head)) == 0, "%s: starts with %s", what, head);
    root = json_loadb(s, len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, &jerr);
    if (!ok(json_is_object(root), "%s: one JSON object", what)) {
        diag("jansson: %s", jerr.text);
        tap_diag_mem("line", s, len);
        json_decref(root);
        return NULL;
    }
    size_t nkeys = 0;
    bool all = true;
    for (; keys[nkeys]; nkeys++) {
        if (!json_object_get(root, keys[nkeys])) {
            all = false;
            diag("%s: key \"%s\" missing", what, keys[nkeys]);
        }
    }
    ok(all && json_object_size(root) == nkeys, "%s: exactly its %zu keys (has %zu)", what, nkeys,
       json_object_size(root));
    return root;
}

static bool str_is(json_t *v, const char *want, size_t want_len)
{
    return json_is_string(v) && json_string_length(v) == want_len &&
           memcmp(json_string_value(v), want, want_len) == 0;
}

static bool int_is(json_t *v, long long want)
{
    return json_is_integer(v) && json_integer_value(v) == want;
}

/* The JSON codec_msg_encode gives for m, parsed. */
static json_t *msg_json(const struct gw_msg *m)
{
    size_t len;
    char *s = codec_msg_encode(m, &len);
    json_t *v = json_loadb(s, len, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
    free(s);
    return v;
}

/* ---- lines that answer a command: a table, each with and without a tag ---- */

static struct gw_msg hist_msgs[3];
static struct gw_channel_info chan_infos[2];

static void emit_ok_pub(struct buf *b, const char *tag, size_t tag_len)
{
    struct gw_msg m = sample_msg();
    codec_line_ok_pub(b, &m, tag, tag_len);
}

static void emit_ok_sub(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_ok_sub(b, "general", 3, 17, tag, tag_len);
}

static void emit_ok_unsub(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_ok_unsub(b, "general", tag, tag_len);
}

static void emit_ok_hist(struct buf *b, const char *tag, size_t tag_len)
{
    struct gw_page p = {.msgs = hist_msgs, .n = 3, .next_since = 12};
    codec_line_ok_hist(b, "hist-ch", &p, tag, tag_len);
}

static void emit_ok_channels(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_ok_channels(b, chan_infos, 2, chan_infos[1].name, tag, tag_len);
}

static void emit_ok_channels_last(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_ok_channels(b, chan_infos, 1, NULL, tag, tag_len);
}

static void emit_ok_help(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_ok_help(b, proto_usage, tag, tag_len);
}

static void emit_pong(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_pong(b, "tk", 2, 1795496580634662, tag, tag_len);
}

static void emit_bye(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_bye(b, "quit", tag, tag_len);
}

static void emit_error(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_error(b, GW_E_CURSOR, "since 9 is beyond", "sub", tag, tag_len);
}

static void emit_error_no_op(struct buf *b, const char *tag, size_t tag_len)
{
    codec_line_error(b, GW_E_JSON, "malformed", NULL, tag, tag_len);
}

/* The ones without a tag argument, wrapped to fit the table; tag ignored. */
static void emit_hello(struct buf *b, const char *tag, size_t tag_len)
{
    (void)tag;
    (void)tag_len;
    codec_line_hello(b, "5f0c9e31a2b4d6e8", "visavis 0.1.0", 30, true);
}

static void emit_message(struct buf *b, const char *tag, size_t tag_len)
{
    struct gw_msg m = sample_msg();
    (void)tag;
    (void)tag_len;
    codec_line_message(b, &m);
}

static void emit_ping(struct buf *b, const char *tag, size_t tag_len)
{
    (void)tag;
    (void)tag_len;
    codec_line_ping(b, 1795496580634662);
}

static void emit_slow(struct buf *b, const char *tag, size_t tag_len)
{
    static const char *const chans[] = {"a", "b.c"};
    static const int64_t seqs[] = {7, 0};
    (void)tag;
    (void)tag_len;
    codec_line_slow_consumer(b, "too slow", chans, seqs, 2);
}

#define KEYS(...) ((const char *const[]){__VA_ARGS__, NULL})

static const struct line_kind {
    const char *name;
    void (*emit)(struct buf *, const char *, size_t);
    const char *type;
    const char *op; /* for "ok" lines: "op" comes second */
    bool tagged;
    const char *const *keys; /* without "tag" */
} kinds[] = {
    {"ok_pub", emit_ok_pub, "ok", "pub", true, KEYS("type", "op", "message")},
    {"ok_sub", emit_ok_sub, "ok", "sub", true, KEYS("type", "op", "channel", "since", "top")},
    {"ok_unsub", emit_ok_unsub, "ok", "unsub", true, KEYS("type", "op", "channel")},
    {"ok_hist", emit_ok_hist, "ok", "hist", true,
     KEYS("type", "op", "channel", "messages", "next_since")},
    {"ok_channels", emit_ok_channels, "ok", "channels", true,
     KEYS("type", "op", "channels", "next_after")},
    {"ok_channels, the last page", emit_ok_channels_last, "ok", "channels", true,
     KEYS("type", "op", "channels")},
    {"ok_help", emit_ok_help, "ok", "help", true, KEYS("type", "op", "commands")},
    {"pong", emit_pong, "pong", NULL, true, KEYS("type", "token", "time_us")},
    {"bye", emit_bye, "bye", NULL, true, KEYS("type", "reason")},
    {"error", emit_error, "error", NULL, true, KEYS("type", "code", "message", "op")},
    {"error without op", emit_error_no_op, "error", NULL, true, KEYS("type", "code", "message")},
    {"hello", emit_hello, "hello", NULL, false,
     KEYS("type", "protocol", "version", "server", "session", "heartbeat", "hint")},
    {"message", emit_message, "message", NULL, false,
     KEYS("type", "id", "channel", "seq", "sender", "body", "ts", "via")},
    {"ping", emit_ping, "ping", NULL, false, KEYS("type", "time_us")},
    {"slow_consumer", emit_slow, "error", NULL, false, KEYS("type", "code", "message", "last_seq")},
};

static void setup_fixtures(void)
{
    hist_msgs[0] = msg_of(3, "hist-ch", 10, B("a"), B("one"), 1000, GW_T_REST);
    hist_msgs[1] = msg_of(5, "hist-ch", 11, B("b"), B("t\0w\"o"), 2001, GW_T_TCP);
    hist_msgs[2] = msg_of(8, "hist-ch", 12, B(sender1), B(body1), -1, GW_T_REST);
    memset(chan_infos, 0, sizeof(chan_infos));
    snprintf(chan_infos[0].name, sizeof(chan_infos[0].name), "alpha");
    chan_infos[0].messages = 2;
    chan_infos[0].last_seq = 2;
    chan_infos[0].last_ts_ms = 1795511702417;
    snprintf(chan_infos[1].name, sizeof(chan_infos[1].name), "beta");
    chan_infos[1].messages = 1;
    chan_infos[1].last_seq = 9;
    chan_infos[1].last_ts_ms = 0;
}

static void test_kinds(void)
{
    static const struct {
        const char *name;
        const char *tag;
        size_t tag_len;
        const char *want; /* the decoded "tag" */
        size_t want_len;
    } tags[] = {
        {"no tag", NULL, 0, NULL, 0},
        {"tag p1", B("p1"), B("p1")},
        {"empty tag", B(""), B("")},
        {"tag with quote, backslash, NUL, newline, UTF-8", B("a\"b\\c\0d\ne\xc3\xa9"),
         B("a\"b\\c\0d\ne\xc3\xa9")},
        {"tag_len shorter than the string", "abcdef", 3, B("abc")},
    };

    for (size_t k = 0; k < GW_ARRAY_SIZE(kinds); k++) {
        const struct line_kind *kd = &kinds[k];
        size_t ntags = kd->tagged ? GW_ARRAY_SIZE(tags) : 1;

        for (size_t t = 0; t < ntags; t++) {
            struct buf b = BUF_INIT;
            const char *keys[16];
            char what[160];
            size_t n = 0;

            snprintf(what, sizeof(what), "%s, %s", kd->name, tags[t].name);
            for (; kd->keys[n]; n++)
                keys[n] = kd->keys[n];
            if (tags[t].tag)
                keys[n++] = "tag";
            keys[n] = NULL;

            kd->emit(&b, tags[t].tag, tags[t].tag_len);
            json_t *root = check_line(b.data, b.len, kd->type, keys, what);
            if (kd->op) {
                char head[64];
                int hn = snprintf(head, sizeof(head), "{\"type\":\"ok\",\"op\":\"%s\",", kd->op);
                ok(b.len > (size_t)hn && memcmp(b.data, head, (size_t)hn) == 0,
                   "%s: starts with %s", what, head);
            }
            if (root && tags[t].tag)
                ok(str_is(json_object_get(root, "tag"), tags[t].want, tags[t].want_len),
                   "%s: tag echoed byte for byte", what);
            json_decref(root);

            /* Lines are appended: a second one follows the first unchanged. */
            struct buf two = BUF_INIT;
            kd->emit(&two, tags[t].tag, tags[t].tag_len);
            kd->emit(&two, tags[t].tag, tags[t].tag_len);
            ok(two.len == 2 * b.len && memcmp(two.data, b.data, b.len) == 0 &&
                   memcmp(two.data + b.len, b.data, b.len) == 0,
               "%s: appended to what the buffer holds", what);
            buf_release(&two);
            buf_release(&b);
        }
    }
}

/* ---- values, line by line ---- */

static void test_hello(void)
{
    struct buf b = BUF_INIT;

    codec_line_hello(&b, "c9e75ce930b543d0", "visavis 0.1.0", 30, true);
    is_str(b.data,
           "{\"type\":\"hello\",\"protocol\":\"visavis\",\"version\":1,\"server\":\"visavis "
           "0.1.0\",\"session\":\"c9e75ce930b543d0\",\"heartbeat\":30,\"hint\":\"type HELP for "
           "the commands\"}\n",
           "hello: exactly the documented greeting");
    buf_release(&b);

    codec_line_hello(&b, "c9e75ce930b543d0", "visavis 0.1.0", 30, false);
    is_str(b.data,
           "{\"type\":\"hello\",\"protocol\":\"visavis\",\"version\":1,\"server\":\"visavis "
           "0.1.0\",\"session\":\"c9e75ce930b543d0\",\"heartbeat\":30}\n",
           "hello of a stream that takes no commands: no hint");
    buf_release(&b);

    codec_line_hello(&b, "s\"x", "srv\\1", 3600, true);
    json_t *root =
        check_line(b.data, b.len, "hello",
                   KEYS("type", "protocol", "version", "server", "session", "heartbeat", "hint"),
                   "hello with odd strings");
    if (root) {
        ok(str_is(json_object_get(root, "protocol"), B(PROTO_PROTOCOL)), "hello: protocol visavis");
        ok(int_is(json_object_get(root, "version"), PROTO_VERSION), "hello: version %d",
           PROTO_VERSION);
        ok(str_is(json_object_get(root, "server"), B("srv\\1")), "hello: server escaped");
        ok(str_is(json_object_get(root, "session"), B("s\"x")), "hello: session escaped");
        ok(int_is(json_object_get(root, "heartbeat"), 3600), "hello: heartbeat 3600");
    }
    json_decref(root);
    buf_release(&b);
}

static void test_message(void)
{
    struct gw_msg msgs[4];
    msgs[0] = sample_msg();
    msgs[1] = msg_of(1, "c", 1, B("anonymous"), B(""), 0, GW_T_REST);
    msgs[2] = msg_of(INT64_MAX, "x", INT64_MAX, B("s"), B("\0"), -1, GW_T_REST);
    msgs[3] = msg_of(0, "y", -1, B("s"), B("</script>\x7f\x01"), 253402300799999, GW_T_TCP);

    for (size_t i = 0; i < GW_ARRAY_SIZE(msgs); i++) {
        struct buf b = BUF_INIT;
        size_t elen;
        char *enc = codec_msg_encode(&msgs[i], &elen);
        char what[64];

        snprintf(what, sizeof(what), "message %zu", i);
        codec_line_message(&b, &msgs[i]);
        /* Exactly {"type":"message", then codec_msg_encode's fields, then LF. */
        static const char head[] = "{\"type\":\"message\",";
        bool same = b.len == sizeof(head) - 1 + elen - 1 + 1 &&
                    memcmp(b.data, head, sizeof(head) - 1) == 0 &&
                    memcmp(b.data + sizeof(head) - 1, enc + 1, elen - 1) == 0 &&
                    b.data[b.len - 1] == '\n';
        if (!ok(same, "%s: {\"type\":\"message\"} + codec_msg_encode's fields", what)) {
            tap_diag_mem("line", b.data, b.len);
            tap_diag_mem("codec_msg_encode", enc, elen);
        }
        json_t *root =
            check_line(b.data, b.len, "message",
                       KEYS("type", "id", "channel", "seq", "sender", "body", "ts", "via"), what);
        json_t *want = msg_json(&msgs[i]);
        if (root) {
            json_object_del(root, "type");
            ok(json_equal(root, want), "%s: without type, equal to codec_msg_encode", what);
            ok(str_is(json_object_get(root, "body"), msgs[i].body, msgs[i].body_len),
               "%s: body byte for byte", what);
            ok(int_is(json_object_get(root, "seq"), msgs[i].seq), "%s: seq", what);
        }
        json_decref(root);
        json_decref(want);
        free(enc);
        buf_release(&b);
    }
}

static void test_ping(void)
{
    static const int64_t times[] = {0, 1, 1795496580634662, INT64_MAX, INT64_MIN, -5};
    for (size_t i = 0; i < GW_ARRAY_SIZE(times); i++) {
        struct buf b = BUF_INIT;
        char what[64];
        snprintf(what, sizeof(what), "ping %lld", (long long)times[i]);
        codec_line_ping(&b, times[i]);
        json_t *root = check_line(b.data, b.len, "ping", KEYS("type", "time_us"), what);
        if (root)
            ok(int_is(json_object_get(root, "time_us"), times[i]), "%s: time_us", what);
        json_decref(root);
        buf_release(&b);
    }
}

static void test_ok_pub(void)
{
    struct gw_msg m = sample_msg();
    struct buf b = BUF_INIT;

    codec_line_ok_pub(&b, &m, B("p1"));
    json_t *root = check_line(b.data, b.len, "ok", KEYS("type", "op", "message", "tag"), "ok_pub");
    json_t *want = msg_json(&m);
    if (root) {
        ok(str_is(json_object_get(root, "op"), B("pub")), "ok_pub: op pub");
        ok(json_equal(json_object_get(root, "message"), want),
           "ok_pub: message equal to codec_msg_encode");
    }
    json_decref(root);
    json_decref(want);
    buf_release(&b);
}

static void test_ok_sub_unsub(void)
{
    static const struct {
        int64_t since, top;
    } cases[] = {{0, 0}, {3, 17}, {17, 17}, {INT64_MAX, INT64_MAX}};
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct buf b = BUF_INIT;
        char what[96];
        snprintf(what, sizeof(what), "ok_sub since %lld top %lld", (long long)cases[i].since,
                 (long long)cases[i].top);
        codec_line_ok_sub(&b, "general", cases[i].since, cases[i].top, NULL, 0);
        json_t *root =
            check_line(b.data, b.len, "ok", KEYS("type", "op", "channel", "since", "top"), what);
        if (root) {
            ok(str_is(json_object_get(root, "op"), B("sub")), "%s: op", what);
            ok(str_is(json_object_get(root, "channel"), B("general")), "%s: channel", what);
            ok(int_is(json_object_get(root, "since"), cases[i].since), "%s: since", what);
            ok(int_is(json_object_get(root, "top"), cases[i].top), "%s: top", what);
        }
        json_decref(root);
        buf_release(&b);
    }
    struct buf b = BUF_INIT;
    codec_line_ok_sub(&b, "general", 3, 17, NULL, 0);
    is_str(b.data,
           "{\"type\":\"ok\",\"op\":\"sub\",\"channel\":\"general\",\"since\":3,\"top\":17}\n",
           "ok_sub: exactly as documented");
    buf_clear(&b);
    codec_line_ok_unsub(&b, "a.b_c-D9", B("u1"));
    is_str(b.data, "{\"type\":\"ok\",\"op\":\"unsub\",\"channel\":\"a.b_c-D9\",\"tag\":\"u1\"}\n",
           "ok_unsub: exactly as documented, tag last");
    buf_release(&b);
}

static void test_ok_hist(void)
{
    for (size_t n = 0; n <= 3; n++) {
        struct buf b = BUF_INIT;
        char what[64];
        snprintf(what, sizeof(what), "ok_hist with %zu messages", n);
        struct gw_page p = {.msgs = n ? hist_msgs : NULL, .n = n, .next_since = 10 + (int64_t)n};
        codec_line_ok_hist(&b, "hist-ch", &p, NULL, 0);
        json_t *root = check_line(b.data, b.len, "ok",
                                  KEYS("type", "op", "channel", "messages", "next_since"), what);
        if (!root) {
            buf_release(&b);
            continue;
        }
        ok(str_is(json_object_get(root, "op"), B("hist")), "%s: op hist", what);
        ok(str_is(json_object_get(root, "channel"), B("hist-ch")), "%s: channel", what);
        ok(int_is(json_object_get(root, "next_since"), 10 + (long long)n), "%s: next_since", what);
        json_t *arr = json_object_get(root, "messages");
        if (ok(json_is_array(arr) && json_array_size(arr) == n, "%s: %zu in messages", what, n)) {
            bool same = true;
            for (size_t i = 0; i < n; i++) {
                json_t *want = msg_json(&hist_msgs[i]);
                same &= json_equal(json_array_get(arr, i), want);
                json_decref(want);
            }
            ok(same, "%s: each as codec_msg_encode, in order", what);
        }
        json_decref(root);
        buf_release(&b);
    }
}

static void test_ok_channels(void)
{
    for (size_t n = 0; n <= 2; n++) {
        struct buf b = BUF_INIT;
        char what[64];
        /* A full page (here: two) names the last channel to go on after. */
        const char *next = n == 2 ? chan_infos[1].name : NULL;
        snprintf(what, sizeof(what), "ok_channels with %zu", n);
        codec_line_ok_channels(&b, n ? chan_infos : NULL, n, next, B("c"));
        json_t *root = check_line(b.data, b.len, "ok",
                                  next ? KEYS("type", "op", "channels", "next_after", "tag")
                                       : KEYS("type", "op", "channels", "tag"),
                                  what);
        if (!root) {
            buf_release(&b);
            continue;
        }
        ok(str_is(json_object_get(root, "op"), B("channels")), "%s: op channels", what);
        if (next)
            ok(str_is(json_object_get(root, "next_after"), next, strlen(next)), "%s: next_after %s",
               what, next);
        json_t *arr = json_object_get(root, "channels");
        if (ok(json_is_array(arr) && json_array_size(arr) == n, "%s: %zu entries", what, n)) {
            for (size_t i = 0; i < n; i++) {
                json_t *e = json_array_get(arr, i);
                char ts[CODEC_TS_LEN];
                codec_ts_format(chan_infos[i].last_ts_ms, ts);
                ok(json_object_size(e) == 4 &&
                       str_is(json_object_get(e, "name"), chan_infos[i].name,
                              strlen(chan_infos[i].name)) &&
                       int_is(json_object_get(e, "messages"), chan_infos[i].messages) &&
                       int_is(json_object_get(e, "last_seq"), chan_infos[i].last_seq) &&
                       str_is(json_object_get(e, "last_ts"), ts, strlen(ts)),
                   "%s: entry %zu is {name, messages, last_seq, last_ts} of %s", what, i,
                   chan_infos[i].name);
            }
        }
        json_decref(root);
        buf_release(&b);
    }
}

static void test_ok_help(void)
{
    struct buf b = BUF_INIT;
    size_t n = 0;

    codec_line_ok_help(&b, proto_usage, NULL, 0);
    json_t *root = check_line(b.data, b.len, "ok", KEYS("type", "op", "commands"), "ok_help");
    while (proto_usage[n])
        n++;
    if (root) {
        json_t *arr = json_object_get(root, "commands");
        bool same = json_is_array(arr) && json_array_size(arr) == n;
        for (size_t i = 0; same && i < n; i++)
            same = str_is(json_array_get(arr, i), proto_usage[i], strlen(proto_usage[i]));
        ok(same, "ok_help: commands are the %zu usage lines, in order", n);
    }
    json_decref(root);
    buf_release(&b);

    static const char *const none[] = {NULL};
    codec_line_ok_help(&b, none, NULL, 0);
    is_str(b.data, "{\"type\":\"ok\",\"op\":\"help\",\"commands\":[]}\n", "ok_help: no usage");
    buf_release(&b);
}

static void test_pong(void)
{
    struct buf b = BUF_INIT;

    codec_line_pong(&b, NULL, 0, 1795496580634662, NULL, 0);
    is_str(b.data, "{\"type\":\"pong\",\"token\":\"\",\"time_us\":1795496580634662}\n",
           "pong without a token: token \"\", as documented");
    buf_clear(&b);

    codec_line_pong(&b, "tok-XYZ", 3, -1, B("t"));
    json_t *root = check_line(b.data, b.len, "pong", KEYS("type", "token", "time_us", "tag"),
                              "pong with a token");
    if (root) {
        ok(str_is(json_object_get(root, "token"), B("tok")), "pong: token is token_len bytes");
        ok(int_is(json_object_get(root, "time_us"), -1), "pong: time_us");
    }
    json_decref(root);
    buf_clear(&b);

    codec_line_pong(&b, "a\"\\\0\xc3\xa9", 6, 0, NULL, 0);
    root = check_line(b.data, b.len, "pong", KEYS("type", "token", "time_us"), "pong odd token");
    if (root)
        ok(str_is(json_object_get(root, "token"), "a\"\\\0\xc3\xa9", 6),
           "pong: odd token byte for byte");
    json_decref(root);
    buf_release(&b);
}

static void test_bye(void)
{
    struct buf b = BUF_INIT;

    codec_line_bye(&b, "quit", NULL, 0);
    is_str(b.data, "{\"type\":\"bye\",\"reason\":\"quit\"}\n", "bye quit: exactly as documented");
    buf_clear(&b);
    codec_line_bye(&b, "shutdown", B("q1"));
    is_str(b.data, "{\"type\":\"bye\",\"reason\":\"shutdown\",\"tag\":\"q1\"}\n",
           "bye shutdown with a tag");
    buf_release(&b);
}

static void test_error(void)
{
    static const enum gw_err errs[] = {
        GW_E_JSON,
        GW_E_UTF8,
        GW_E_NOT_OBJECT,
        GW_E_MISSING_FIELD,
        GW_E_FIELD,
        GW_E_PARAM,
        GW_E_CHANNEL,
        GW_E_NOT_FOUND,
        GW_E_TOO_LARGE,
        GW_E_STORE,
        GW_E_SHUTDOWN,
        GW_E_UNKNOWN_COMMAND,
        GW_E_MISSING_ARGUMENT,
        GW_E_CURSOR,
        GW_E_NOT_SUBSCRIBED,
        GW_E_TOO_MANY_SUBS,
        GW_E_LINE_TOO_LONG,
        GW_E_TOO_MANY_ERRORS,
        GW_E_IDLE,
        GW_E_TOO_MANY_SESSIONS,
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(errs); i++) {
        struct buf b = BUF_INIT;
        char what[96];
        const char *code = gw_err_code(errs[i]);
        snprintf(what, sizeof(what), "error %s", code);
        codec_line_error(&b, errs[i], "why \"this\"\n", i % 2 ? "pub" : NULL, i % 3 ? "t" : NULL,
                         1);
        const char *keys[6] = {"type", "code", "message", NULL, NULL, NULL};
        size_t n = 3;
        if (i % 2)
            keys[n++] = "op";
        if (i % 3)
            keys[n++] = "tag";
        json_t *root = check_line(b.data, b.len, "error", keys, what);
        if (root) {
            ok(str_is(json_object_get(root, "code"), code, strlen(code)), "%s: code", what);
            ok(str_is(json_object_get(root, "message"), B("why \"this\"\n")), "%s: message", what);
            if (i % 2)
                ok(str_is(json_object_get(root, "op"), B("pub")), "%s: op", what);
            else
                ok(json_object_get(root, "op") == NULL, "%s: op NULL: no \"op\" key", what);
        }
        json_decref(root);
        buf_release(&b);
    }

    /* The documented shape, exactly: op before tag. */
    struct buf b = BUF_INIT;
    codec_line_error(&b, GW_E_MISSING_ARGUMENT, "PUB needs a channel", "pub", B("x"));
    is_str(b.data,
           "{\"type\":\"error\",\"code\":\"missing_argument\",\"message\":\"PUB needs a "
           "channel\",\"op\":\"pub\",\"tag\":\"x\"}\n",
           "error: exact line with op and tag");
    buf_clear(&b);

    /* A reason quoting a client's bytes that are not UTF-8 still makes a valid line. */
    codec_line_error(&b, GW_E_UNKNOWN_COMMAND, "unknown command '\xff\xfe\xc3'", NULL, NULL, 0);
    json_t *root = check_line(b.data, b.len, "error", KEYS("type", "code", "message"),
                              "error quoting invalid UTF-8");
    if (root) {
        json_t *m = json_object_get(root, "message");
        ok(json_is_string(m) && strstr(json_string_value(m), "\xef\xbf\xbd") != NULL,
           "error quoting invalid UTF-8: U+FFFD in its place");
    }
    json_decref(root);
    buf_release(&b);
}

static void test_slow_consumer(void)
{
    static const char *const chans[] = {"general", "a.b_c-D9", "z"};
    static const int64_t seqs[] = {1042, 0, INT64_MAX};

    for (size_t n = 0; n <= 3; n++) {
        struct buf b = BUF_INIT;
        char what[64];
        snprintf(what, sizeof(what), "slow_consumer with %zu channels", n);
        codec_line_slow_consumer(&b, "outgoing queue over 1048576 bytes", chans, seqs, n);
        json_t *root =
            check_line(b.data, b.len, "error", KEYS("type", "code", "message", "last_seq"), what);
        if (root) {
            ok(str_is(json_object_get(root, "code"), B("slow_consumer")), "%s: code", what);
            ok(str_is(json_object_get(root, "message"), B("outgoing queue over 1048576 bytes")),
               "%s: message", what);
            json_t *ls = json_object_get(root, "last_seq");
            bool good = json_is_object(ls) && json_object_size(ls) == n;
            for (size_t i = 0; good && i < n; i++)
                good = int_is(json_object_get(ls, chans[i]), seqs[i]);
            ok(good, "%s: last_seq is {channel: seq} for each", what);
        }
        json_decref(root);
        buf_release(&b);
    }
    struct buf b = BUF_INIT;
    codec_line_slow_consumer(&b, "slow", chans, seqs, 2);
    is_str(b.data,
           "{\"type\":\"error\",\"code\":\"slow_consumer\",\"message\":\"slow\","
           "\"last_seq\":{\"general\":1042,\"a.b_c-D9\":0}}\n",
           "slow_consumer: exact line");
    buf_release(&b);
}

/* ---- round trip: a command line, proto_parse, the push line, jansson ---- */

static uint64_t rng_state = 0x2545f4914f6cdd1du;

static uint64_t rng(void)
{
    return xorshift64(&rng_state);
}

static size_t utf8_put(char *out, uint32_t cp)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | (cp >> 6));
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | (cp >> 12));
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | (cp >> 18));
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

/* A random code point, any plane, no surrogate; never LF when no_lf. */
static uint32_t random_cp(bool no_lf)
{
    for (;;) {
        uint32_t cp;
        switch (rng() % 5) {
        case 0:
            cp = (uint32_t)(rng() % 0x20); /* controls, NUL included */
            break;
        case 1:
            cp = (uint32_t)(0x20 + rng() % 0x60); /* printable ASCII and DEL */
            break;
        case 2:
            cp = (uint32_t)(0x80 + rng() % 0x780);
            break;
        case 3:
            cp = (uint32_t)(0x800 + rng() % 0xf800);
            break;
        default:
            cp = (uint32_t)(0x10000 + rng() % 0x100000);
            break;
        }
        if ((cp >= 0xd800 && cp <= 0xdfff) || (no_lf && cp == '\n'))
            continue;
        return cp;
    }
}

/*
 * Pushes the body the parser produced through codec_line_message and checks
 * that jansson reads back the same bytes. Returns false on any difference.
 */
static bool pushes_back(const char *body, size_t body_len, const char *want, size_t want_len)
{
    struct gw_msg m = msg_of(1, "rt", 1, B("anonymous"), body, body_len, 0, GW_T_TCP);
    struct buf b = BUF_INIT;
    bool good;

    codec_line_message(&b, &m);
    json_t *root = b.len && b.data[b.len - 1] == '\n' && !memchr(b.data, '\n', b.len - 1)
                       ? json_loadb(b.data, b.len - 1, JSON_ALLOW_NUL, NULL)
                       : NULL;
    good = root && str_is(json_object_get(root, "body"), want, want_len);
    json_decref(root);
    buf_release(&b);
    return good;
}

/* Text form: "PUB rt <body>". The body must not start with a blank nor hold LF. */
static bool text_round_trip(const char *body, size_t len)
{
    char *line = gw_xmalloc(len + 7);
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    bool good;

    memcpy(line, "PUB rt ", 7);
    memcpy(line + 7, body, len);
    good = proto_parse(line, len + 7, &cmd, why) == GW_OK && cmd.op == PROTO_PUB &&
           cmd.body_len == len && memcmp(cmd.body, body, len) == 0 &&
           pushes_back(cmd.body, cmd.body_len, body, len);
    proto_cmd_release(&cmd);
    free(line);
    return good;
}

/* JSON form, the body encoded by jansson: any valid UTF-8 at all. */
static bool json_round_trip(const char *body, size_t len)
{
    json_t *o = json_pack("{s:s, s:s, s:s%}", "op", "pub", "channel", "rt", "body", body, len);
    char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    bool good = false;

    if (line) {
        good = proto_parse(line, strlen(line), &cmd, why) == GW_OK && cmd.op == PROTO_PUB &&
               cmd.body_len == len && memcmp(cmd.body, body, len) == 0 &&
               pushes_back(cmd.body, cmd.body_len, body, len);
        proto_cmd_release(&cmd);
    }
    free(line);
    json_decref(o);
    return good;
}

static void test_round_trip_random(void)
{
    unsigned long bad_text = 0, bad_json = 0, runs = 3000;

    for (unsigned long r = 0; r < runs; r++) {
        char body[400];
        size_t len = 0, cps = 1 + rng() % 60;
        for (size_t k = 0; k < cps; k++) {
            uint32_t cp = random_cp(true);
            if (k == 0 && (cp == ' ' || cp == '\t'))
                cp = 'x';
            len += utf8_put(body + len, cp);
        }
        if (!text_round_trip(body, len) && bad_text++ < 3)
            tap_diag_mem("text round trip failed for", body, len);
        /* The JSON form also takes LF, and leading blanks. */
        body[rng() % len] = (char)(rng() % 2 ? '\n' : ' ');
        if (text_utf8_valid(body, len) && !json_round_trip(body, len) && bad_json++ < 3)
            tap_diag_mem("json round trip failed for", body, len);
    }
    is_uint(bad_text, 0, "PUB text form: %lu random UTF-8 bodies come back byte for byte", runs);
    is_uint(bad_json, 0, "PUB JSON form: %lu random UTF-8 bodies come back byte for byte", runs);
}

/* Every code point on its own, after a letter, in both forms. */
static void test_round_trip_each_cp(void)
{
    unsigned long bad_text = 0, bad_json = 0, checked = 0;

    for (uint32_t cp = 0; cp <= 0x10ffff; cp += cp < 0x10000 ? 1 : 61) {
        char body[8];
        size_t len;
        if (cp >= 0xd800 && cp <= 0xdfff)
            continue;
        body[0] = 'x';
        len = 1 + utf8_put(body + 1, cp);
        checked++;
        if (cp != '\n' && !text_round_trip(body, len) && bad_text++ < 3)
            diag("text form: U+%04X does not come back", (unsigned)cp);
        if (!json_round_trip(body, len) && bad_json++ < 3)
            diag("json form: U+%04X does not come back", (unsigned)cp);
    }
    is_uint(bad_text, 0, "text form: each of %lu code points comes back", checked);
    is_uint(bad_json, 0, "json form: each of %lu code points comes back", checked);
}

/* ---- answers that must fit a size (UDP: never more bytes than the request) ---- */

/*
 * codec_line_ok_pub_within at every max from 0 to past the whole line: the
 * whole line, then the message without its body, then no message; false
 * below that, with out as it was. Appends after what out holds.
 */
static void test_ok_pub_within(void)
{
    struct gw_msg m = sample_msg();
    struct buf whole = BUF_INIT, b = BUF_INIT;
    json_t *want = msg_json(&m);
    size_t nobody_len = 0, bare_len = 0, wrong = 0, checked = 0;
    int forms[3] = {0, 0, 0};

    codec_line_ok_pub(&whole, &m, B("p1"));
    json_object_del(want, "body");
    for (size_t max = 0; max <= whole.len + 4; max++) {
        buf_clear(&b);
        buf_append(&b, "PREFIX", 6);
        bool fits = codec_line_ok_pub_within(&b, &m, B("p1"), max);
        const char *line = b.data + 6;
        size_t len = b.len - 6;
        if (!fits) {
            if (b.len != 6 || memcmp(b.data, "PREFIX", 7) != 0)
                wrong++;
            if (bare_len)
                wrong++; /* a shorter max fitted: this one must too */
            continue;
        }
        checked++;
        if (len > max)
            wrong++;
        json_t *root = json_loadb(line, len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
        json_t *msg = json_object_get(root, "message");
        if (!root || line[len - 1] != '\n' || !str_is(json_object_get(root, "tag"), B("p1")) ||
            !str_is(json_object_get(root, "op"), B("pub"))) {
            wrong++;
        } else if (max >= whole.len) {
            forms[0]++;
            if (len != whole.len || memcmp(line, whole.data, len) != 0)
                wrong++;
        } else if (msg) {
            forms[1]++;
            if (!nobody_len)
                nobody_len = len;
            if (!json_equal(msg, want) || json_object_size(root) != 4)
                wrong++;
        } else {
            forms[2]++;
            if (!bare_len)
                bare_len = len;
            if (json_object_size(root) != 3)
                wrong++;
        }
        json_decref(root);
    }
    is_uint(wrong, 0, "ok_pub_within: %zu sizes, each the largest form that fits, or none",
            checked);
    ok(forms[0] && forms[1] && forms[2], "ok_pub_within: all three forms met (%d, %d, %d)",
       forms[0], forms[1], forms[2]);
    buf_clear(&b);
    ok(codec_line_ok_pub_within(&b, &m, NULL, 0, SIZE_MAX), "ok_pub_within: no tag");
    ok(strncmp(b.data, "{\"type\":\"ok\",\"op\":\"pub\",\"message\":{", 35) == 0 &&
           strstr(b.data, "\"tag\"") == NULL,
       "ok_pub_within: no tag, the whole line");
    buf_clear(&b);
    ok(codec_line_ok_pub_within(&b, &m, NULL, 0, 25), "ok_pub_within: bare, no tag, 25 bytes");
    is_str(b.data, "{\"type\":\"ok\",\"op\":\"pub\"}\n", "ok_pub_within: the bare ok, exactly");
    /* ok_pub_fits: exactly the bare form's length, a tag echoed escaped. */
    ok(codec_line_ok_pub_fits(B("p1"), bare_len) && !codec_line_ok_pub_fits(B("p1"), bare_len - 1),
       "ok_pub_fits: at the bare ok's %zu bytes, not one less", bare_len);
    ok(codec_line_ok_pub_fits(B("\x7f"), 40) && !codec_line_ok_pub_fits(B("\x7f"), 39),
       "ok_pub_fits: a raw DEL in the tag counts as its six-byte escape");
    ok(codec_line_ok_pub_fits(NULL, 0, 25) && !codec_line_ok_pub_fits(NULL, 0, 24),
       "ok_pub_fits: no tag");
    json_decref(want);
    buf_release(&whole);
    buf_release(&b);
}

/*
 * codec_line_error_within at every max: the message cut at a character
 * boundary to the longest prefix that fits, whatever its escapes; false
 * below the line with an empty message, with out as it was.
 */
static void test_error_within(void)
{
    /* Quotes, a newline, 2- and 4-byte characters, a control and a stray byte: escapes of every
     * width. */
    static const char msg[] = "\xc3\xa9t\xc3\xa9 \"q\"\n\xf0\x9f\x98\x80 \x01 \xff end";
    struct buf whole = BUF_INIT, empty = BUF_INIT, b = BUF_INIT;
    size_t wrong = 0, cut = 0, last = 0;

    codec_line_error(&whole, GW_E_UNKNOWN_COMMAND, msg, "hist", B("t"));
    codec_line_error(&empty, GW_E_UNKNOWN_COMMAND, "", "hist", B("t"));
    for (size_t max = 0; max <= whole.len + 2; max++) {
        buf_clear(&b);
        buf_append(&b, "P", 1);
        bool fits = codec_line_error_within(&b, GW_E_UNKNOWN_COMMAND, msg, "hist", B("t"), max);
        if (fits != (max >= empty.len)) {
            wrong++;
            continue;
        }
        if (!fits) {
            if (b.len != 1)
                wrong++;
            continue;
        }
        const char *line = b.data + 1;
        size_t len = b.len - 1;
        json_t *root = json_loadb(line, len - 1, JSON_ALLOW_NUL | JSON_REJECT_DUPLICATES, NULL);
        json_t *m = json_object_get(root, "message");
        if (len > max || !root || json_object_size(root) != 5 || !json_is_string(m) ||
            !str_is(json_object_get(root, "op"), B("hist")) ||
            !str_is(json_object_get(root, "tag"), B("t"))) {
            wrong++;
        } else {
            size_t n = json_string_length(m);
            /* The cut copy of the original: its bytes, the stray one as U+FFFD. */
            json_t *w = json_loadb(whole.data, whole.len - 1, JSON_ALLOW_NUL, NULL);
            const char *full = json_string_value(json_object_get(w, "message"));
            if (n > strlen(full) || memcmp(json_string_value(m), full, n) != 0 || n < last)
                wrong++;
            if (max >= whole.len && (len != whole.len || memcmp(line, whole.data, len) != 0))
                wrong++;
            /* Longest: one byte more room would not have fitted the next character, unless whole.
             */
            if (n < strlen(full) && len + 6 <= max)
                wrong++;
            if (n < strlen(full))
                cut++;
            last = n;
            json_decref(w);
        }
        json_decref(root);
    }
    is_uint(wrong, 0, "error_within: every size from 0 to %zu", whole.len + 2);
    ok(cut > 10, "error_within: %zu sizes cut the message", cut);
    buf_release(&whole);
    buf_release(&empty);
    buf_release(&b);
}

int main(void)
{
    setup_fixtures();
    test_kinds();
    test_hello();
    test_message();
    test_ping();
    test_ok_pub();
    test_ok_sub_unsub();
    test_ok_hist();
    test_ok_channels();
    test_ok_help();
    test_pong();
    test_bye();
    test_error();
    test_slow_consumer();
    test_ok_pub_within();
    test_error_within();
    test_round_trip_random();
    test_round_trip_each_cp();
    return done_testing();
}
