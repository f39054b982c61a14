/*
 * test_codec_json.c - common/codec_json.h: timestamps, the encoders' exact
 * output, and the publish decoder's error table.
 *
 * The decoder is not incremental (it takes the whole body), so instead of
 * replaying split input every table row is decoded twice, to show that no
 * state leaks from one call to the next, and every proper prefix of a good
 * request must fail cleanly.
 */
#include "codec_json.h"

#include "gw.h"
#include "model.h"
#include "rng.h"
#include "tap.h"
#include "text.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define B(s) s, sizeof(s) - 1

static void test_ts_format(void)
{
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "1970-01-01T00:00:00.000Z"},
        {1, "1970-01-01T00:00:00.001Z"},
        {999, "1970-01-01T00:00:00.999Z"},
        {1000, "1970-01-01T00:00:01.000Z"},
        {1795511702417, "2026-11-24T09:15:02.417Z"},
        {1700000000000, "2023-11-14T22:13:20.000Z"},
        {951782400000, "2000-02-29T00:00:00.000Z"},
        {253402300799999, "9999-12-31T23:59:59.999Z"},
        {-1, "1969-12-31T23:59:59.999Z"},
        {-999, "1969-12-31T23:59:59.001Z"},
        {-1000, "1969-12-31T23:59:59.000Z"},
        {-1001, "1969-12-31T23:59:58.999Z"},
        {-86400000, "1969-12-31T00:00:00.000Z"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char out[CODEC_TS_LEN];
        memset(out, 'X', sizeof(out));
        codec_ts_format(cases[i].ms, out);
        is_str(out, cases[i].want, "ts_format(%lld)", (long long)cases[i].ms);
    }
    /* The extremes stay inside the buffer and keep the shape. */
    static const int64_t extremes[] = {INT64_MAX, INT64_MIN};
    for (size_t i = 0; i < GW_ARRAY_SIZE(extremes); i++) {
        char out[CODEC_TS_LEN];
        memset(out, 'X', sizeof(out));
        codec_ts_format(extremes[i], out);
        size_t n = strnlen(out, sizeof(out));
        ok(n < sizeof(out) && n >= 24 && out[n - 1] == 'Z' && out[n - 5] == '.',
           "ts_format(%lld) fits and ends in .mmmZ (\"%.*s\")", (long long)extremes[i], (int)n,
           out);
    }
}

/* codec_ts_format against gmtime_r, day by day from 1900 to 2100, at varying times of day. */
static void test_ts_against_gmtime(void)
{
    unsigned long checked = 0, wrong = 0;

    for (int64_t day = -25567; day <= 47482; day++) {
        int64_t ms = day * 86400000 + (day * 7919 * 1009 % 86400000 + 86400000) % 86400000;
        time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
        int64_t frac = ms - (int64_t)secs * 1000;
        struct tm tm;
        char want[CODEC_TS_LEN], got[CODEC_TS_LEN];

        gmtime_r(&secs, &tm);
        snprintf(want, sizeof(want), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)frac);
        codec_ts_format(ms, got);
        checked++;
        if (strcmp(got, want) != 0 && wrong++ < 5)
            diag("ts_format(%lld): got %s, want %s", (long long)ms, got, want);
    }
    is_uint(wrong, 0, "ts_format agrees with gmtime_r on %lu days from 1900 to 2100", checked);
}

/* A message whose strings point at static bytes (never released). */
static struct gw_msg msg_of(int64_t id, const char *channel, int64_t seq, const char *sender,
                            const char *body, size_t body_len, int64_t ts_ms, enum gw_transport via)
{
    struct gw_msg m;
    memset(&m, 0, sizeof(m));
    m.id = id;
    m.seq = seq;
    m.ts_ms = ts_ms;
    m.via = via;
    snprintf(m.channel, sizeof(m.channel), "%s", channel);
    m.sender = (char *)sender;
    m.sender_len = strlen(sender);
    m.body = (char *)body;
    m.body_len = body_len;
    return m;
}

static void test_msg_encode(void)
{
    struct gw_msg m = msg_of(42, "news", 7, "ann", B("hi"), 1795511702417, GW_T_REST);
    size_t len = 0;
    char *s = codec_msg_encode(&m, &len);
    static const char want[] =
        "{\"id\":42,\"channel\":\"news\",\"seq\":7,\"sender\":\"ann\","
        "\"body\":\"hi\",\"ts\":\"2026-11-24T09:15:02.417Z\",\"via\":\"rest\"}";
    is_str(s, want, "msg_encode: exact output, keys in order id channel seq sender body ts via");
    is_uint(len, strlen(want), "msg_encode: *len is the string length");
    free(s);

    static const char body[] = "q\"b\\s/n\nt\tz\0e\xc3\xa9";
    m = msg_of(9007199254740993, "a.b_c-d", 1, "x", B(body), 0, GW_T_TCP);
    s = codec_msg_encode(&m, &len);
    static const char want2[] =
        "{\"id\":9007199254740993,\"channel\":\"a.b_c-d\",\"seq\":1,\"sender\":\"x\","
        "\"body\":\"q\\\"b\\\\s/n\\nt\\tz\\u0000e\xc3\xa9\",\"ts\":\"1970-01-01T00:00:00.000Z\","
        "\"via\":\"tcp\"}";
    is_str(s, want2, "msg_encode: escapes quote, backslash, newline, tab, NUL; keeps UTF-8");
    is_uint(len, strlen(want2), "msg_encode: *len with escapes");
    free(s);
}

static void test_integers(void)
{
    struct gw_msg m = msg_of(INT64_MAX, "c", INT64_MIN, "s", "b", 1, 0, GW_T_REST);
    size_t len;
    char *s = codec_msg_encode(&m, &len);

    ok(s && strstr(s, "\"id\":9223372036854775807,") != NULL, "msg_encode: id INT64_MAX");
    ok(s && strstr(s, "\"seq\":-9223372036854775808,") != NULL, "msg_encode: seq INT64_MIN");
    free(s);
    m = msg_of(0, "c", -1, "s", "b", 1, 0, GW_T_REST);
    s = codec_msg_encode(&m, &len);
    ok(s && strstr(s, "{\"id\":0,") == s && strstr(s, "\"seq\":-1,") != NULL,
       "msg_encode: id 0, seq -1");
    free(s);

    static const struct {
        int64_t v;
        const char *text;
    } cases[] = {
        {0, "0"},
        {9, "9"},
        {10, "10"},
        {-10, "-10"},
        {1000000007, "1000000007"},
        {INT64_MAX, "9223372036854775807"},
        {INT64_MIN, "-9223372036854775808"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char want[96];
        snprintf(want, sizeof(want), "{\"channel\":\"c\",\"messages\":[],\"next_since\":%s}",
                 cases[i].text);
        struct gw_page p = {.next_since = cases[i].v, .top = cases[i].v};
        s = codec_history_encode("c", &p, &len);
        is_str(s, want, "history_encode: next_since %s", cases[i].text);
        free(s);
    }
    s = codec_version_encode("n", "v", "a", -3, &len);
    is_str(s, "{\"name\":\"n\",\"version\":\"v\",\"api\":\"a\",\"schema_version\":-3}",
           "version_encode: negative schema_version");
    free(s);
}

/* Parses s with jansson, failing the check (and returning NULL) if it is not JSON. */
static json_t *parse(const char *s, size_t len, const char *what)
{
    json_error_t jerr;
    json_t *root = json_loadb(s, len, JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    ok(root != NULL, "%s is valid JSON", what);
    if (!root)
        diag("jansson: %s", jerr.text);
    return root;
}

static void test_history_encode(void)
{
    struct gw_msg msgs[2];
    size_t len;
    char *s;

    msgs[0] = msg_of(3, "c", 4, "a", B("one"), 1000, GW_T_REST);
    msgs[1] = msg_of(5, "c", 5, "b", B("two"), 2001, GW_T_TCP);
    struct gw_page p = {.msgs = msgs, .n = 2, .next_since = 5};
    s = codec_history_encode("c", &p, &len);
    is_str(s,
           "{\"channel\":\"c\",\"messages\":["
           "{\"id\":3,\"channel\":\"c\",\"seq\":4,\"sender\":\"a\",\"body\":\"one\","
           "\"ts\":\"1970-01-01T00:00:01.000Z\",\"via\":\"rest\"},"
           "{\"id\":5,\"channel\":\"c\",\"seq\":5,\"sender\":\"b\",\"body\":\"two\","
           "\"ts\":\"1970-01-01T00:00:02.001Z\",\"via\":\"tcp\"}],\"next_since\":5}",
           "history_encode: two messages, exact output");
    is_uint(len, s ? strlen(s) : 0, "history_encode: *len");
    free(s);

    struct gw_page empty = {.next_since = 17};
    s = codec_history_encode("empty", &empty, &len);
    is_str(s, "{\"channel\":\"empty\",\"messages\":[],\"next_since\":17}",
           "history_encode: no messages gives an empty array and keeps next_since");
    free(s);

    /* Holes are said in "gaps", between "messages" and "next_since". */
    struct gw_gap gaps[2] = {{.from = 1, .to = 3, .before = 0}, {.from = 6, .to = 9, .before = 2}};
    struct gw_page holed = {.msgs = msgs, .n = 2, .gaps = gaps, .ngaps = 2, .next_since = 9};
    s = codec_history_encode("c", &holed, &len);
    is_str(s,
           "{\"channel\":\"c\",\"messages\":["
           "{\"id\":3,\"channel\":\"c\",\"seq\":4,\"sender\":\"a\",\"body\":\"one\","
           "\"ts\":\"1970-01-01T00:00:01.000Z\",\"via\":\"rest\"},"
           "{\"id\":5,\"channel\":\"c\",\"seq\":5,\"sender\":\"b\",\"body\":\"two\","
           "\"ts\":\"1970-01-01T00:00:02.001Z\",\"via\":\"tcp\"}],"
           "\"gaps\":[{\"from\":1,\"to\":3},{\"from\":6,\"to\":9}],\"next_since\":9}",
           "history_encode: gaps between messages and next_since");
    free(s);

    /* "more" only when the channel goes on after next_since: a page cut by a bound. */
    struct gw_page cut = {.msgs = msgs, .n = 2, .next_since = 5, .top = 6};
    s = codec_history_encode("c", &cut, &len);
    ok(s && strstr(s, "],\"next_since\":5,\"more\":true}") && len == strlen(s),
       "history_encode: a page short of the top says more after next_since");
    free(s);
    struct gw_page last = {.msgs = msgs, .n = 2, .next_since = 5, .top = 5};
    s = codec_history_encode("c", &last, &len);
    ok(s && !strstr(s, "more"), "history_encode: the page that reaches the top has no more");
    free(s);
    struct gw_page unread = {.next_since = 0, .top = 3}; /* limit=0 */
    s = codec_history_encode("c", &unread, &len);
    is_str(s, "{\"channel\":\"c\",\"messages\":[],\"next_since\":0,\"more\":true}",
           "history_encode: an empty page before the top (limit=0) says more");
    free(s);
}

/* gw_msg_wire_len is what byte bounds count: it must be the encoder's length exactly. */
static void test_wire_len(void)
{
    static const struct {
        const char *sender, *body;
        size_t body_len;
        int64_t id, seq, ts;
    } cases[] = {
        {"a", "plain", 5, 1, 1, 0},
        {"ana", "", 0, 9223372036854775807, 9223372036854775807, 1795511702417},
        {"s\"q", "quote \" back \\ slash", 20, 10, 99, 1},
        {"x", "\n\r\t\b\f", 5, 123, 7, 1000},
        {"ctl", "\x01\x02\x1f\x7f", 4, 5, 5, 5},
        {"c1\xc2\x9b", "\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0", 8, 5, 5, 5},
        {"utf",
         "\xc3\xa7"
         "a va \xe2\x82\xac \xf0\x9f\x98\x80",
         15, 1, 2, 3},
        {"bad", "\xff\xc3(\xed\xa0\x80", 6, 1, 2, 3},
        {"nul", "a\0b", 3, 1, 1, 1},
        {"neg", "x", 1, -1, -5, -1},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct gw_msg m = msg_of(cases[i].id, "chan-._9", cases[i].seq, cases[i].sender,
                                 cases[i].body, cases[i].body_len, cases[i].ts, GW_T_TCP);
        size_t len;
        char *s = codec_msg_encode(&m, &len);
        is_uint(gw_msg_wire_len(&m), len, "wire_len matches the encoder for case %zu", i);
        free(s);
    }
}

static void test_channels_encode(void)
{
    struct gw_channel_info chans[2];
    size_t len;
    char *s;

    memset(chans, 0, sizeof(chans));
    snprintf(chans[0].name, sizeof(chans[0].name), "alpha");
    chans[0].messages = 2;
    chans[0].last_seq = 2;
    chans[0].last_ts_ms = 1795511702417;
    snprintf(chans[1].name, sizeof(chans[1].name), "beta");
    chans[1].messages = 1;
    chans[1].last_seq = 9;
    chans[1].last_ts_ms = 0;
    s = codec_channels_encode(chans, 2, NULL, &len);
    is_str(s,
           "{\"channels\":[{\"name\":\"alpha\",\"messages\":2,\"last_seq\":2,"
           "\"last_ts\":\"2026-11-24T09:15:02.417Z\"},"
           "{\"name\":\"beta\",\"messages\":1,\"last_seq\":9,"
           "\"last_ts\":\"1970-01-01T00:00:00.000Z\"}]}",
           "channels_encode: exact output of a last page");
    is_uint(len, s ? strlen(s) : 0, "channels_encode: *len");
    free(s);

    s = codec_channels_encode(chans, 1, "alpha", &len);
    is_str(s,
           "{\"channels\":[{\"name\":\"alpha\",\"messages\":2,\"last_seq\":2,"
           "\"last_ts\":\"2026-11-24T09:15:02.417Z\"}],\"next_after\":\"alpha\"}",
           "channels_encode: a full page says where to go on");
    free(s);

    s = codec_channels_encode(NULL, 0, NULL, &len);
    is_str(s, "{\"channels\":[]}", "channels_encode: none gives an empty list");
    is_uint(len, 15, "channels_encode: *len of an empty list");
    free(s);
}

/*
 * codec_channels_max_len bounds a page of n in both forms, whatever the
 * numbers: entries with 64-byte names and the widest numbers and times.
 */
static void test_channels_bound(void)
{
    enum { N = 50 };
    static struct gw_channel_info chans[N];
    static const int64_t widest[] = {INT64_MIN, INT64_MAX, -1, 0};
    char name[GW_CHANNEL_MAX + 1];
    size_t len, worst = 0;

    memset(name, 'n', GW_CHANNEL_MAX);
    name[GW_CHANNEL_MAX] = '\0';
    for (size_t w = 0; w < GW_ARRAY_SIZE(widest); w++) {
        for (size_t i = 0; i < N; i++) {
            snprintf(chans[i].name, sizeof(chans[i].name), "%s", name);
            chans[i].messages = chans[i].last_seq = widest[w];
            chans[i].last_ts_ms = widest[(w + i) % GW_ARRAY_SIZE(widest)];
        }
        char *s = codec_channels_encode(chans, N, name, &len);
        free(s);
        worst = len > worst ? len : worst;
        ok(len <= codec_channels_max_len(N), "REST page of %d, numbers %lld: %zu <= %zu bytes", N,
           (long long)widest[w], len, codec_channels_max_len(N));
        struct buf b = BUF_INIT;
        codec_line_ok_channels(&b, chans, N, name, NULL, 0);
        ok(b.len <= codec_channels_max_len(N) + 64,
           "session page of %d, numbers %lld: %zu <= %zu bytes and the reply's head", N,
           (long long)widest[w], b.len, codec_channels_max_len(N) + 64);
        buf_release(&b);
    }
    ok(codec_channels_max_len(N) < worst + worst / 10, "the bound is close: %zu for at most %zu",
       codec_channels_max_len(N), worst);
    ok(codec_channels_max_len(1000) < 256 * 1024, "a page of 1000 is under 256 KiB: %zu",
       codec_channels_max_len(1000));
}

static void test_small_encoders(void)
{
    size_t len;
    char *s;

    s = codec_status_encode("ok", &len);
    is_str(s, "{\"status\":\"ok\"}", "status_encode");
    is_uint(len, 15, "status_encode: *len");
    free(s);

    s = codec_version_encode("visavis", "0.1.0", "v1", 3, &len);
    is_str(s, "{\"name\":\"visavis\",\"version\":\"0.1.0\",\"api\":\"v1\",\"schema_version\":3}",
           "version_encode");
    free(s);

    s = codec_error_encode(GW_E_JSON, "bad \"thing\"", &len);
    is_str(s, "{\"error\":{\"code\":\"invalid_json\",\"message\":\"bad \\\"thing\\\"\"}}",
           "error_encode: exact output");
    is_uint(len, s ? strlen(s) : 0, "error_encode: *len");
    free(s);

    /* A reason quoting client bytes that are not UTF-8 must still give valid JSON. */
    s = codec_error_encode(GW_E_UTF8, "bad byte \xff\xfe here \xc0\x80", &len);
    ok(s != NULL, "error_encode with invalid UTF-8 message returns a string");
    if (s) {
        json_t *root = parse(s, len, "error_encode with invalid UTF-8 message");
        json_t *e = root ? json_object_get(root, "error") : NULL;
        is_str(json_string_value(json_object_get(e, "code")), "invalid_utf8",
               "error_encode with invalid UTF-8 message keeps the code");
        ok(json_is_string(json_object_get(e, "message")),
           "error_encode with invalid UTF-8 message still has a string message");
        json_decref(root);
    }
    free(s);

    s = codec_error_encode(GW_E_NOT_FOUND, "", &len);
    is_str(s, "{\"error\":{\"code\":\"not_found\",\"message\":\"\"}}",
           "error_encode: empty reason");
    free(s);
}

struct decode_case {
    const char *name;
    const char *in;
    size_t len;
    enum gw_err err;
    /* For GW_OK rows: the expected fields (sender NULL = absent). */
    const char *body;
    size_t body_len;
    const char *sender;
    size_t sender_len;
};

#define BAD(name, in, e)                                                                           \
    {                                                                                              \
        name, B(in), e, NULL, 0, NULL, 0                                                           \
    }

static const struct decode_case decode_cases[] = {
    /* Accepted. */
    {"body only", B("{\"body\":\"hi\"}"), GW_OK, B("hi"), NULL, 0},
    {"body and sender", B("{\"sender\":\"ann\",\"body\":\"hi\"}"), GW_OK, B("hi"), B("ann")},
    {"empty body, empty sender", B("{\"body\":\"\",\"sender\":\"\"}"), GW_OK, B(""), B("")},
    {"unknown fields ignored", B("{\"x\":[1,{\"y\":null}],\"body\":\"b\",\"n\":1.5,\"t\":true}"),
     GW_OK, B("b"), NULL, 0},
    {"whitespace around", B(" \n\t{ \"body\" : \"b\" }\r\n "), GW_OK, B("b"), NULL, 0},
    {"escaped NUL in body", B("{\"body\":\"a\\u0000b\"}"), GW_OK, B("a\0b"), NULL, 0},
    {"escaped NUL in sender", B("{\"body\":\"x\",\"sender\":\"\\u0000\"}"), GW_OK, B("x"), B("\0")},
    {"escapes", B("{\"body\":\"q\\\"b\\\\s\\/n\\nr\\rt\\tb\\bf\\f\"}"), GW_OK,
     B("q\"b\\s/n\nr\rt\tb\bf\f"), NULL, 0},
    {"raw UTF-8", B("{\"body\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}"), GW_OK,
     B("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"), NULL, 0},
    {"escaped UTF-16 and surrogate pair", B("{\"body\":\"\\u00e9\\u20ac\\ud83d\\ude00\"}"), GW_OK,
     B("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80"), NULL, 0},
    /* Not JSON. */
    BAD("empty input", "", GW_E_JSON),
    BAD("only whitespace", "  \n", GW_E_JSON),
    BAD("unterminated object", "{\"body\":\"x\"", GW_E_JSON),
    BAD("unterminated string", "{\"body\":\"x}", GW_E_JSON),
    BAD("single quotes", "{'body':'x'}", GW_E_JSON),
    BAD("trailing comma", "{\"body\":\"x\",}", GW_E_JSON),
    BAD("trailing garbage", "{\"body\":\"x\"} x", GW_E_JSON),
    BAD("two objects", "{\"body\":\"x\"}{}", GW_E_JSON),
    BAD("bare word", "body", GW_E_JSON),
    BAD("raw newline in string", "{\"body\":\"a\nb\"}", GW_E_JSON),
    BAD("raw NUL in string", "{\"body\":\"a\0b\"}", GW_E_JSON),
    BAD("NUL after the object", "{\"body\":\"x\"}\0", GW_E_JSON),
    BAD("bad escape", "{\"body\":\"\\x41\"}", GW_E_JSON),
    BAD("duplicate body", "{\"body\":\"a\",\"body\":\"b\"}", GW_E_JSON),
    BAD("duplicate sender", "{\"body\":\"a\",\"sender\":\"s\",\"sender\":\"t\"}", GW_E_JSON),
    BAD("duplicate unknown key", "{\"body\":\"a\",\"k\":1,\"k\":2}", GW_E_JSON),
    /* Not UTF-8. */
    BAD("0xFF in string", "{\"body\":\"\xff\"}", GW_E_UTF8),
    BAD("overlong C0 80 in string", "{\"body\":\"\xc0\x80\"}", GW_E_UTF8),
    BAD("surrogate ED A0 80 in string", "{\"body\":\"\xed\xa0\x80\"}", GW_E_UTF8),
    BAD("above U+10FFFF in string", "{\"body\":\"\xf4\x90\x80\x80\"}", GW_E_UTF8),
    BAD("truncated sequence in string", "{\"body\":\"\xe2\x82\"}", GW_E_UTF8),
    BAD("lone continuation in sender", "{\"body\":\"x\",\"sender\":\"\x80\"}", GW_E_UTF8),
    BAD("invalid byte in key", "{\"\xff\":1,\"body\":\"x\"}", GW_E_UTF8),
    BAD("invalid byte before the object", "\xff{\"body\":\"x\"}", GW_E_UTF8),
    /* JSON, not an object. */
    BAD("array", "[1]", GW_E_NOT_OBJECT),
    BAD("empty array", "[]", GW_E_NOT_OBJECT),
    BAD("string", "\"x\"", GW_E_NOT_OBJECT),
    BAD("number", "3", GW_E_NOT_OBJECT),
    BAD("null", "null", GW_E_NOT_OBJECT),
    BAD("true", "true", GW_E_NOT_OBJECT),
    /* Objects without what they need. */
    BAD("empty object", "{}", GW_E_MISSING_FIELD),
    BAD("sender only", "{\"sender\":\"ann\"}", GW_E_MISSING_FIELD),
    BAD("body in wrong case", "{\"Body\":\"x\"}", GW_E_MISSING_FIELD),
    BAD("body nested", "{\"data\":{\"body\":\"x\"}}", GW_E_MISSING_FIELD),
    /* Fields of the wrong type. */
    BAD("body number", "{\"body\":5}", GW_E_FIELD),
    BAD("body null", "{\"body\":null}", GW_E_FIELD),
    BAD("body array", "{\"body\":[]}", GW_E_FIELD),
    BAD("body object", "{\"body\":{}}", GW_E_FIELD),
    BAD("body boolean", "{\"body\":false}", GW_E_FIELD),
    BAD("body real", "{\"body\":1.5}", GW_E_FIELD),
    BAD("sender number", "{\"body\":\"x\",\"sender\":5}", GW_E_FIELD),
    BAD("sender array", "{\"body\":\"x\",\"sender\":[\"a\"]}", GW_E_FIELD),
    BAD("sender object", "{\"body\":\"x\",\"sender\":{}}", GW_E_FIELD),
    BAD("sender boolean", "{\"body\":\"x\",\"sender\":true}", GW_E_FIELD),
    /* JSON, with a number out of range: not malformed, wherever it stands. */
    BAD("integer past 64 bits, ignored field", "{\"body\":\"x\",\"n\":18446744073709551616}",
        GW_E_FIELD),
    BAD("integer past 64 bits, nested", "{\"body\":\"x\",\"a\":[{\"n\":-9223372036854775809}]}",
        GW_E_FIELD),
    BAD("real past a double", "{\"body\":\"x\",\"r\":1e400}", GW_E_FIELD),
};

/* Runs one decode and checks its result against the row; returns the error. */
static enum gw_err check_decode(const struct decode_case *c, const char *pass, char why[GW_ERRLEN])
{
    struct codec_publish p;
    enum gw_err err;

    memset(&p, 0x5a, sizeof(p)); /* garbage in: the decoder must set every field */
    memset(why, 0, GW_ERRLEN);
    err = codec_publish_decode(c->in, c->len, &p, why);
    is_str(gw_err_code(err), gw_err_code(c->err), "decode %s (%s): %s", c->name, pass,
           gw_err_code(c->err));
    if (c->err == GW_OK) {
        is_mem(p.body, p.body_len, c->body, c->body_len, "decode %s (%s): body", c->name, pass);
        ok(p.body && p.body[p.body_len] == '\0', "decode %s (%s): body NUL-terminated", c->name,
           pass);
        if (c->sender)
            is_mem(p.sender, p.sender_len, c->sender, c->sender_len, "decode %s (%s): sender",
                   c->name, pass);
        else
            ok(p.sender == NULL && p.sender_len == 0, "decode %s (%s): sender absent is NULL",
               c->name, pass);
    } else {
        ok(why[0] != '\0', "decode %s (%s): why is set (\"%s\")", c->name, pass, why);
        ok(p.body == NULL && p.sender == NULL && p.body_len == 0 && p.sender_len == 0,
           "decode %s (%s): *out left empty", c->name, pass);
    }
    codec_publish_release(&p);
    return err;
}

static void test_decode_table(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(decode_cases); i++) {
        const struct decode_case *c = &decode_cases[i];
        char why1[GW_ERRLEN], why2[GW_ERRLEN];
        enum gw_err e1 = check_decode(c, "first", why1);
        enum gw_err e2 = check_decode(c, "again", why2);
        ok(e1 == e2 && strcmp(why1, why2) == 0, "decode %s: same result twice", c->name);
    }
}

/* An escaped lone surrogate cannot become UTF-8: refused, as bad JSON or bad UTF-8. */
static void test_decode_lone_surrogates(void)
{
    static const char *const inputs[] = {
        "{\"body\":\"\\ud800\"}",
        "{\"body\":\"x\\udc00y\"}",
        "{\"body\":\"\\ud83d\\u0041\"}",
        "{\"body\":\"x\",\"sender\":\"\\udfff\"}",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(inputs); i++) {
        struct codec_publish p;
        char why[GW_ERRLEN] = "";
        enum gw_err err = codec_publish_decode(inputs[i], strlen(inputs[i]), &p, why);
        ok((err == GW_E_JSON || err == GW_E_UTF8) && why[0] && !p.body && !p.sender,
           "decode %s: refused (%s)", inputs[i], gw_err_code(err));
        codec_publish_release(&p);
    }
}

/* Every proper prefix of a good request is an error, with a reason, and leaks nothing. */
static void test_decode_prefixes(void)
{
    static const char good[] =
        "{\"sender\":\"s\\u00e9\",\"body\":\"a\\u0000\xc3\xa9\xf0\x9f\x98\x80\\n\",\"x\":[1]}";
    size_t n = sizeof(good) - 1, bad = 0;
    struct codec_publish p;
    char why[GW_ERRLEN];

    for (size_t cut = 0; cut < n; cut++) {
        why[0] = '\0';
        enum gw_err err = codec_publish_decode(good, cut, &p, why);
        if (err == GW_OK || why[0] == '\0' || p.body || p.sender) {
            if (bad++ < 3)
                diag("prefix of %zu bytes: %s (%s)", cut, gw_err_code(err), why);
            codec_publish_release(&p);
        }
    }
    is_uint(bad, 0, "decode: each of the %zu proper prefixes fails with a reason", n);
    enum gw_err err = codec_publish_decode(good, n, &p, why);
    is_int(err, GW_OK, "decode: the whole request is accepted");
    static const char want_body[] = "a\0\xc3\xa9\xf0\x9f\x98\x80\n";
    is_mem(p.body, p.body_len, want_body, sizeof(want_body) - 1, "decode: the whole body");
    codec_publish_release(&p);
    ok(p.body == NULL && p.sender == NULL && p.body_len == 0 && p.sender_len == 0,
       "publish_release empties the struct");
    codec_publish_release(&p);
    ok(1, "publish_release twice is harmless");
}

/*
 * jansson alone, as the decoder's rule reads it: accepted when the body is a
 * JSON object with a string "body" and, if present, a string "sender".
 */
static bool jansson_publish(const char *in, size_t n, struct codec_publish *out)
{
    json_t *root =
        json_loadb(in, n, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    json_t *body = json_object_get(root, "body"), *sender = json_object_get(root, "sender");
    bool ok = json_is_string(body) && (!sender || json_is_string(sender));

    memset(out, 0, sizeof(*out));
    if (ok) {
        out->body_len = json_string_length(body);
        out->body = gw_xmemdup(json_string_value(body), out->body_len);
        if (sender) {
            out->sender_len = json_string_length(sender);
            out->sender = gw_xmemdup(json_string_value(sender), out->sender_len);
        }
    }
    json_decref(root);
    return ok;
}

/* One input through the decoder and through jansson alone; 1 when they differ. */
static unsigned decode_differs(const char *in, size_t n)
{
    struct codec_publish got, want;
    char why[GW_ERRLEN];
    bool accepted = codec_publish_decode(in, n, &got, why) == GW_OK;
    bool same = accepted == jansson_publish(in, n, &want) &&
                (!accepted ||
                 (got.body_len == want.body_len && memcmp(got.body, want.body, got.body_len) == 0 &&
                  !got.sender == !want.sender && got.sender_len == want.sender_len &&
                  (!got.sender || memcmp(got.sender, want.sender, got.sender_len) == 0)));

    if (!same)
        diag("decoder and jansson differ on %.*s", (int)n, in);
    codec_publish_release(&got);
    codec_publish_release(&want);
    return !same;
}

/*
 * The plain bodies the decoder reads without jansson, each cut short, and
 * each with every byte replaced by, or preceded by, a byte that matters to
 * JSON: every result is jansson's own.
 */
static void test_decode_plain_is_jansson(void)
{
    static const char *const seeds[] = {
        "{\"body\":\"hello\"}",
        "{\"sender\":\"ann\",\"body\":\"hi there\"}",
        " {\t\"body\" :\"b\" ,\r\n\"sender\": \"s\" } ",
        "{\"body\":\"\",\"sender\":\"\"}",
    };
    static const char marks[] = {'"',  '\\', ',',        ':',        '{', '}', ' ', '\n',
                                 '\0', 0x7f, (char)0x80, (char)0xc3, 'x', '[', 'u'};
    unsigned differ = 0, tried = 0;

    for (size_t i = 0; i < GW_ARRAY_SIZE(seeds); i++) {
        size_t n = strlen(seeds[i]);
        char in[128];

        for (size_t cut = 0; cut <= n; cut++, tried++)
            differ += decode_differs(seeds[i], cut);
        for (size_t at = 0; at <= n; at++) {
            for (size_t k = 0; k < sizeof(marks); k++, tried += 2) {
                memcpy(in, seeds[i], n);
                if (at < n) {
                    in[at] = marks[k];
                    differ += decode_differs(in, n);
                }
                memcpy(in, seeds[i], at);
                in[at] = marks[k];
                memcpy(in + at + 1, seeds[i] + at, n - at);
                differ += decode_differs(in, n + 1);
            }
        }
    }
    is_uint(differ, 0, "decode: the same as jansson on %u plain bodies cut or with a byte changed",
            tried);
}

/* Bodies that go in through the decoder come out of the encoder as the same bytes. */
static void test_round_trip(void)
{
    static const struct {
        const char *name;
        const char *json_body; /* as a JSON string literal's inside */
        const char *raw;
        size_t raw_len;
    } cases[] = {
        {"NULs", "\\u0000a\\u0000\\u0000", B("\0a\0\0")},
        {"only NUL", "\\u0000", B("\0")},
        {"unicode", "\xc3\xa9\\u00e9\xe2\x82\xac\\ud83d\\ude00\xf4\x8f\xbf\xbf",
         B("\xc3\xa9\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf")},
        {"quotes", "\\\"quoted\\\" 'single'", B("\"quoted\" 'single'")},
        {"backslashes", "\\\\ \\\\\\\\ C:\\\\dir\\\\", B("\\ \\\\ C:\\dir\\")},
        {"newlines", "a\\nb\\r\\nc\\n", B("a\nb\r\nc\n")},
        {"control chars", "\\u0001\\u001f\\u007f\\t\\b\\f", B("\x01\x1f\x7f\t\b\f")},
        {"empty", "", B("")},
        {"slash and html", "</script> & <b>", B("</script> & <b>")},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char in[256], why[GW_ERRLEN];
        struct codec_publish p;
        int n = snprintf(in, sizeof(in), "{\"body\":\"%s\",\"sender\":\"%s\"}", cases[i].json_body,
                         cases[i].json_body);
        enum gw_err err = codec_publish_decode(in, (size_t)n, &p, why);
        if (!is_int(err, GW_OK, "round trip %s: decode", cases[i].name)) {
            diag("why: %s", why);
            continue;
        }
        is_mem(p.body, p.body_len, cases[i].raw, cases[i].raw_len, "round trip %s: decoded body",
               cases[i].name);

        struct gw_msg m;
        memset(&m, 0, sizeof(m));
        m.id = 1;
        m.seq = 1;
        snprintf(m.channel, sizeof(m.channel), "rt");
        m.sender = p.sender;
        m.sender_len = p.sender_len;
        m.body = p.body;
        m.body_len = p.body_len;
        size_t len;
        char *s = codec_msg_encode(&m, &len);
        json_t *root = parse(s, len, "round trip encoded message");
        json_t *body = json_object_get(root, "body");
        json_t *sender = json_object_get(root, "sender");
        is_mem(json_string_value(body), json_string_length(body), p.body, p.body_len,
               "round trip %s: body bytes survive encode", cases[i].name);
        is_mem(json_string_value(sender), json_string_length(sender), p.sender, p.sender_len,
               "round trip %s: sender bytes survive encode", cases[i].name);
        json_decref(root);
        free(s);
        codec_publish_release(&p);
    }
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    return xorshift64(&rng_state);
}

/*
 * For any bytes as body and sender, the encoder's output is valid JSON; when
 * the bytes are valid UTF-8 they come back exactly, and when they are not,
 * what comes back is valid UTF-8 with U+FFFD where the bad bytes were.
 */
static void test_encode_any_bytes(void)
{
    static const unsigned char pieces[][4] = {
        {1, 'a'},
        {1, '"'},
        {1, '\\'},
        {1, '/'},
        {1, 0x00},
        {1, 0x01},
        {1, 0x1f},
        {1, '\n'},
        {1, '\r'},
        {1, '\t'},
        {1, 0x7f},
        {1, 0x80},
        {1, 0xbf},
        {1, 0xc0},
        {1, 0xff},
        {2, 0xc3, 0xa9},
        {1, 0xc3},
        {1, 0xe2},
        {2, 0xe2, 0x82},
        {3, 0xe2, 0x82, 0xac},
        {3, 0xed, 0xa0, 0x80},
        {3, 0xef, 0xbf, 0xbd},
        {1, 0xf0},
        {3, 0xf4, 0x90, 0x80},
        {1, ' '},
    };
    unsigned long bad_json = 0, bad_valid = 0, bad_invalid = 0, runs = 3000;

    for (unsigned long r = 0; r < runs; r++) {
        unsigned char body[160];
        size_t len = 0, parts = rng() % 40;
        for (size_t k = 0; k < parts; k++) {
            const unsigned char *pc = pieces[rng() % GW_ARRAY_SIZE(pieces)];
            memcpy(body + len, pc + 1, pc[0]);
            len += pc[0];
        }
        struct gw_msg m = msg_of(1, "c", 1, "", (const char *)body, len, 0, GW_T_REST);
        m.sender = (char *)body;
        m.sender_len = len;
        size_t olen;
        char *s = codec_msg_encode(&m, &olen);
        json_error_t jerr;
        json_t *root = s ? json_loadb(s, olen, JSON_ALLOW_NUL, &jerr) : NULL;
        json_t *b = json_object_get(root, "body"), *snd = json_object_get(root, "sender");
        if (!json_is_string(b) || !json_is_string(snd)) {
            if (bad_json++ < 3) {
                diag("not JSON (%s):", root ? "no body/sender string" : jerr.text);
                tap_diag_mem("input", body, len);
                tap_diag_mem("output", s, s ? olen : 0);
            }
        } else if (text_utf8_valid((const char *)body, len)) {
            if ((json_string_length(b) != len || memcmp(json_string_value(b), body, len) != 0 ||
                 json_string_length(snd) != len ||
                 memcmp(json_string_value(snd), body, len) != 0) &&
                bad_valid++ < 3)
                tap_diag_mem("valid UTF-8 changed", body, len);
        } else {
            const char *v = json_string_value(b);
            size_t vlen = json_string_length(b);
            if ((!text_utf8_valid(v, vlen) || !memmem(v, vlen, "\xef\xbf\xbd", 3)) &&
                bad_invalid++ < 3)
                tap_diag_mem("invalid UTF-8 not replaced", body, len);
        }
        json_decref(root);
        free(s);
    }
    is_uint(bad_json, 0, "encode any bytes: %lu messages are valid JSON", runs);
    is_uint(bad_valid, 0, "encode any bytes: valid UTF-8 comes back byte for byte");
    is_uint(bad_invalid, 0, "encode any bytes: invalid UTF-8 comes back as U+FFFD");

    /* Every byte below 0x80, alone, survives encode and parse. */
    unsigned wrong = 0;
    for (int c = 0; c < 0x80; c++) {
        char one = (char)c;
        struct gw_msg m = msg_of(1, "c", 1, "s", &one, 1, 0, GW_T_REST);
        size_t olen;
        char *s = codec_msg_encode(&m, &olen);
        json_t *root = json_loadb(s, olen, JSON_ALLOW_NUL, NULL);
        json_t *b = json_object_get(root, "body");
        if ((json_string_length(b) != 1 || json_string_value(b)[0] != one) && wrong++ < 3)
            diag("byte 0x%02x: encoded as %s", c, s);
        json_decref(root);
        free(s);
    }
    is_uint(wrong, 0, "each ASCII byte, controls included, round-trips through the encoder");
}

/* DEL and C1 reach the wire escaped: U+009B is ESC [ to a terminal reading the session raw. */
static void test_encode_escapes_terminal_controls(void)
{
    static const char body[] = "a\xc2\x9b[2J\x7f\xc2\x85\xc2\xa0z";
    struct gw_msg m = msg_of(1, "c", 1, "s\xc2\x9d", body, sizeof(body) - 1, 0, GW_T_TCP);
    size_t len;
    char *s = codec_msg_encode(&m, &len);

    is_int(s != NULL, 1, "encoded");
    if (!s)
        return;
    if (!ok(strstr(s, "\"body\":\"a\\u009b[2J\\u007f\\u0085\xc2\xa0z\"") != NULL,
            "body: C1 and DEL as \\u00XX, U+00A0 as it is"))
        diag("encoded as %.*s", (int)len, s);
    ok(strstr(s, "\"sender\":\"s\\u009d\"") != NULL, "sender: C1 escaped too");
    is_uint(gw_msg_wire_len(&m), len, "wire_len counts the escapes");
    free(s);
}

static void test_err_codes(void)
{
    static const char *const want[GW_E__COUNT] = {
        [GW_OK] = "ok",
        [GW_E_JSON] = "invalid_json",
        [GW_E_UTF8] = "invalid_utf8",
        [GW_E_NOT_OBJECT] = "not_an_object",
        [GW_E_MISSING_FIELD] = "missing_field",
        [GW_E_FIELD] = "invalid_field",
        [GW_E_PARAM] = "invalid_parameter",
        [GW_E_CHANNEL] = "invalid_channel",
        [GW_E_NOT_FOUND] = "not_found",
        [GW_E_METHOD] = "method_not_allowed",
        [GW_E_TOO_LARGE] = "body_too_large",
        [GW_E_MEDIA_TYPE] = "unsupported_media_type",
        [GW_E_STORE] = "store_failed",
        [GW_E_STORE_BUSY] = "store_busy",
        [GW_E_STORE_FULL] = "store_full",
        [GW_E_STORE_UNAVAILABLE] = "store_unavailable",
        [GW_E_STORE_IN_USE] = "store_in_use",
        [GW_E_SHUTDOWN] = "shutting_down",
        [GW_E_SCHEMA] = "schema_mismatch",
        [GW_E_CONFIG] = "invalid_config",
        [GW_E_UNKNOWN_COMMAND] = "unknown_command",
        [GW_E_MISSING_ARGUMENT] = "missing_argument",
        [GW_E_CURSOR] = "invalid_cursor",
        [GW_E_NOT_SUBSCRIBED] = "not_subscribed",
        [GW_E_TOO_MANY_SUBS] = "too_many_subscriptions",
        [GW_E_LINE_TOO_LONG] = "line_too_long",
        [GW_E_TOO_MANY_ERRORS] = "too_many_errors",
        [GW_E_IDLE] = "idle_timeout",
        [GW_E_SLOW_CONSUMER] = "slow_consumer",
        [GW_E_TOO_MANY_SESSIONS] = "too_many_sessions",
        [GW_E_BUSY] = "busy",
        [GW_E_UPGRADE_REQUIRED] = "upgrade_required",
        [GW_E_ORIGIN] = "origin_not_allowed",
        [GW_E_HOST] = "host_not_allowed",
        [GW_E_HEAD_TOO_LARGE] = "head_too_large",
    };
    for (int e = 0; e < GW_E__COUNT; e++) {
        if (want[e])
            is_str(gw_err_code((enum gw_err)e), want[e], "gw_err_code(%d)", e);
        else
            ok(0, "gw_err_code(%d): error value without a wire name in this test", e);
    }
    is_str(gw_err_code(GW_E__COUNT), "internal_error", "gw_err_code out of range");
}

int main(void)
{
    test_ts_format();
    test_ts_against_gmtime();
    test_msg_encode();
    test_integers();
    test_history_encode();
    test_wire_len();
    test_encode_escapes_terminal_controls();
    test_channels_encode();
    test_channels_bound();
    test_small_encoders();
    test_decode_table();
    test_decode_lone_surrogates();
    test_decode_prefixes();
    test_decode_plain_is_jansson();
    test_round_trip();
    test_encode_any_bytes();
    test_err_codes();
    return done_testing();
}
