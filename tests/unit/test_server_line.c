/*
 * test_server_line.c - common/server_line.h: every kind of session line,
 * read the fast way and with jansson alike; the head-only read; the parts
 * of a reply (HIST, CHANNELS, HELP, slow_consumer); a message as JSON; REST
 * pages and errors; timestamps. The fast way is pinned to what
 * common/codec_json.c really writes.
 */
#include "server_line.h"

#include "buf.h"
#include "codec_json.h"
#include "model.h"
#include "tap.h"

#include <stdlib.h>
#include <string.h>

#define MSG_A                                                                                      \
    "\"id\":7,\"channel\":\"general\",\"seq\":3,\"sender\":\"ana\",\"body\":\"salut\","            \
    "\"ts\":\"2026-11-24T09:15:02.417Z\",\"via\":\"rest\""

static bool text_is(struct sl_text t, const char *s)
{
    return sl_text_is(t, s);
}

/* The same line with a blank after its first brace: same meaning, not the gateway's layout. */
static char *respaced(const char *line)
{
    size_t n = strlen(line);
    char *s = malloc(n + 2);

    if (!s)
        bail_out("out of memory");
    s[0] = '{';
    s[1] = ' ';
    memcpy(s + 2, line + 1, n);
    return s;
}

static void check_msg_a(const struct sl_msg *m, const char *how)
{
    ok(m->id == 7 && m->seq == 3, "%s: id and seq", how);
    ok(text_is(m->channel, "general") && text_is(m->sender, "ana") && text_is(m->body, "salut") &&
           text_is(m->ts, "2026-11-24T09:15:02.417Z") && text_is(m->via, "rest"),
       "%s: channel, sender, body, ts, via", how);
}

static void test_push_both_ways(void)
{
    static const char line[] = "{\"type\":\"message\"," MSG_A "}";
    struct server_line l;
    struct buf b = BUF_INIT;
    char *other = respaced(line);

    server_line_parse(&l, line, strlen(line));
    is_int(l.type, SL_MESSAGE, "push: type");
    ok(l.json == NULL, "push: read the fast way");
    ok(l.has_msg, "push: has a message");
    check_msg_a(&l.msg, "push, fast");
    ok(text_is(l.channel, "general"), "push: channel");
    server_line_msg_json(&l, &b);
    is_str(b.data, "{" MSG_A "}\n", "push, fast: the message as JSON, without type");
    server_line_release(&l);

    buf_clear(&b);
    server_line_parse(&l, other, strlen(other));
    is_int(l.type, SL_MESSAGE, "push, other layout: type");
    ok(l.json != NULL, "push, other layout: read with jansson");
    check_msg_a(&l.msg, "push, jansson");
    server_line_msg_json(&l, &b);
    is_str(b.data, "{" MSG_A "}\n", "push, jansson: the same JSON");
    server_line_release(&l);
    buf_release(&b);
    free(other);
}

static void test_escapes_go_to_jansson(void)
{
    static const char line[] = "{\"type\":\"message\",\"id\":1,\"channel\":\"c\",\"seq\":1,"
                               "\"sender\":\"a\",\"body\":\"x\\\"y\\n\\u0000z\",\"ts\":"
                               "\"2026-11-24T09:15:02.417Z\",\"via\":\"tcp\"}";
    struct server_line l;

    server_line_parse(&l, line, strlen(line));
    is_int(l.type, SL_MESSAGE, "escaped body: a message");
    ok(l.json != NULL, "escaped body: read with jansson");
    is_mem(l.msg.body.s, l.msg.body.len, "x\"y\n\0z", 6, "escaped body: unescaped, NUL kept");
    server_line_release(&l);
}

static void test_ok_pub(void)
{
    static const char plain[] = "{\"type\":\"ok\",\"op\":\"pub\",\"message\":{" MSG_A "}}";
    static const char tagged[] =
        "{\"type\":\"ok\",\"op\":\"pub\",\"message\":{" MSG_A "},\"tag\":\"p1\"}";
    static const char odd_tag[] =
        "{\"type\":\"ok\",\"op\":\"pub\",\"message\":{" MSG_A "},\"tag\":\"p\\\"1\"}";
    const char *lines[] = {plain, tagged, odd_tag};
    const char *tags[] = {NULL, "p1", "p\"1"};

    for (size_t i = 0; i < 3; i++) {
        struct server_line l;
        server_line_parse(&l, lines[i], strlen(lines[i]));
        ok(l.type == SL_OK && l.op == PROTO_PUB && text_is(l.op_name, "pub"),
           "ok pub %zu: type and op", i);
        ok((l.json == NULL) == (i < 2), "ok pub %zu: fast unless the tag needs an escape", i);
        ok(l.has_msg, "ok pub %zu: carries the message", i);
        check_msg_a(&l.msg, "ok pub");
        ok(tags[i] ? text_is(l.tag, tags[i]) : l.tag.s == NULL, "ok pub %zu: tag", i);
        server_line_release(&l);
    }
}

/* The fast way must follow what the gateway's codec writes, or every push goes to jansson. */
static void test_pinned_to_codec(void)
{
    struct gw_msg m;
    struct buf b = BUF_INIT;
    struct server_line l;

    memset(&m, 0, sizeof(m));
    m.id = 42;
    m.seq = 9;
    m.ts_ms = 1795000000123;
    m.via = GW_T_TCP;
    strcpy(m.channel, "bench-1");
    m.sender = (char *)"gwbench";
    m.sender_len = 7;
    m.body = (char *)"0:123:xxxx";
    m.body_len = 10;

    codec_line_message(&b, &m);
    server_line_parse(&l, b.data, b.len - 1);
    ok(l.type == SL_MESSAGE && l.json == NULL && l.msg.seq == 9 && l.msg.id == 42 &&
           text_is(l.msg.body, "0:123:xxxx"),
       "codec_line_message is read the fast way");
    {
        int64_t ms;
        ok(server_line_ts_ms(l.msg.ts, &ms) && ms == 1795000000123, "its ts back in ms");
    }
    server_line_release(&l);

    buf_clear(&b);
    codec_line_ok_pub(&b, &m, "t", 1);
    server_line_parse(&l, b.data, b.len - 1);
    ok(l.type == SL_OK && l.op == PROTO_PUB && l.json == NULL && l.msg.seq == 9 &&
           text_is(l.tag, "t"),
       "codec_line_ok_pub (with a tag) is read the fast way");
    server_line_release(&l);
    buf_release(&b);
}

struct head_case {
    const char *line;
    enum sl_type type;
    enum proto_op op;
};

static void test_type_and_head(void)
{
    static const struct head_case cases[] = {
        {"{\"type\":\"hello\",\"protocol\":\"visavis\",\"version\":1}", SL_HELLO, PROTO_NONE},
        {"{\"type\":\"ping\",\"time_us\":5}", SL_PING, PROTO_NONE},
        {"{\"type\":\"pong\",\"token\":\"x\",\"time_us\":5}", SL_PONG, PROTO_NONE},
        {"{\"type\":\"gap\",\"channel\":\"c\",\"first_seq\":4}", SL_GAP, PROTO_NONE},
        {"{\"type\":\"bye\",\"reason\":\"quit\"}", SL_BYE, PROTO_NONE},
        {"{\"type\":\"ok\",\"op\":\"sub\",\"channel\":\"c\",\"since\":0,\"top\":2}", SL_OK,
         PROTO_SUB},
        {"{\"type\":\"ok\",\"op\":\"hist\",\"channel\":\"c\",\"messages\":[],\"next_since\":0}",
         SL_OK, PROTO_HIST},
        {"{\"type\":\"error\",\"code\":\"invalid_channel\",\"message\":\"m\",\"op\":\"pub\"}",
         SL_ERROR, PROTO_PUB},
        {"{\"op\":\"unsub\",\"type\":\"ok\"}", SL_OK, PROTO_UNSUB},
        {"{\"type\":\"ok\",\"op\":\"teleport\"}", SL_OK, PROTO_NONE},
        {"{\"type\":\"news\"}", SL_OTHER, PROTO_NONE},
        {"{\"type\":1}", SL_INVALID, PROTO_NONE},
        {"{\"kind\":\"ok\"}", SL_INVALID, PROTO_NONE},
        {"[\"type\",\"ok\"]", SL_INVALID, PROTO_NONE},
        {"not json", SL_INVALID, PROTO_NONE},
        {"", SL_INVALID, PROTO_NONE},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        const struct head_case *c = &cases[i];
        struct server_line l;
        enum proto_op op = PROTO__COUNT;
        enum sl_type t = server_line_type(c->line, strlen(c->line), &op);

        ok(t == c->type && op == c->op, "head of %s: type %d op %d", c->line, t, op);
        server_line_parse(&l, c->line, strlen(c->line));
        ok(l.type == c->type && l.op == c->op, "full read of %s: the same", c->line);
        server_line_release(&l);
    }
    ok(sl_type_is_push(SL_MESSAGE) && sl_type_is_push(SL_PING) && sl_type_is_push(SL_GAP) &&
           !sl_type_is_push(SL_OK) && !sl_type_is_push(SL_ERROR) && !sl_type_is_push(SL_OTHER),
       "pushes are message, ping and gap");
}

static void test_fields(void)
{
    static const char hello[] =
        "{\"type\":\"hello\",\"protocol\":\"visavis\",\"version\":1,"
        "\"server\":\"visavis 0.1.0\",\"session\":\"5f0c\",\"heartbeat\":30}";
    static const char sub[] =
        "{\"type\":\"ok\",\"op\":\"sub\",\"channel\":\"c\",\"since\":2,\"top\":5,\"tag\":\"s\"}";
    static const char err[] = "{\"type\":\"error\",\"code\":\"invalid_cursor\",\"message\":"
                              "\"since 9 is past 5\",\"op\":\"sub\",\"tag\":\"s2\"}";
    static const char pong[] = "{\"type\":\"pong\",\"token\":\"t\",\"time_us\":1795000000123456}";
    static const char gap[] = "{\"type\":\"gap\",\"channel\":\"c\",\"first_seq\":40}";
    static const char bye[] = "{\"type\":\"bye\",\"reason\":\"shutdown\"}";
    struct server_line l;

    server_line_parse(&l, hello, strlen(hello));
    ok(text_is(l.protocol, "visavis") && l.version == 1 && text_is(l.server, "visavis 0.1.0") &&
           text_is(l.session, "5f0c") && l.heartbeat == 30,
       "hello: protocol, version, server, session, heartbeat");
    ok(!l.has_msg && l.since == -1 && l.first_seq == -1, "hello: absent fields are absent");
    server_line_release(&l);
    server_line_parse(&l, sub, strlen(sub));
    ok(text_is(l.channel, "c") && l.since == 2 && l.top == 5 && text_is(l.tag, "s"),
       "ok sub: channel, since, top, tag");
    server_line_release(&l);
    server_line_parse(&l, err, strlen(err));
    ok(text_is(l.code, "invalid_cursor") && text_is(l.message, "since 9 is past 5") &&
           l.op == PROTO_SUB && text_is(l.tag, "s2"),
       "error: code, message, op, tag");
    server_line_release(&l);
    server_line_parse(&l, pong, strlen(pong));
    ok(text_is(l.token, "t") && l.time_us == 1795000000123456, "pong: token, time_us");
    server_line_release(&l);
    server_line_parse(&l, gap, strlen(gap));
    ok(text_is(l.channel, "c") && l.first_seq == 40, "gap: channel, first_seq");
    server_line_release(&l);
    server_line_parse(&l, bye, strlen(bye));
    ok(text_is(l.reason, "shutdown"), "bye: reason");
    server_line_release(&l);
}

static void test_reply_parts(void)
{
    static const char hist[] =
        "{\"type\":\"ok\",\"op\":\"hist\",\"channel\":\"general\",\"messages\":[{" MSG_A "},{"
        "\"id\":8,\"channel\":\"general\",\"seq\":4,\"sender\":\"bo\",\"body\":\"b\",\"ts\":"
        "\"2026-11-24T09:15:03.000Z\",\"via\":\"tcp\"}],\"next_since\":4}";
    static const char chans[] =
        "{\"type\":\"ok\",\"op\":\"channels\",\"channels\":[{\"name\":\"a\",\"messages\":2,"
        "\"last_seq\":2,\"last_ts\":\"2026-11-24T09:15:02.417Z\"},{\"name\":\"b\",\"messages\":"
        "0,\"last_seq\":0,\"last_ts\":null}],\"next_after\":\"b\"}";
    static const char help[] =
        "{\"type\":\"ok\",\"op\":\"help\",\"commands\":[\"HELP: this list\",\"PING [token]\"]}";
    static const char slow[] = "{\"type\":\"error\",\"code\":\"slow_consumer\",\"message\":\"m\","
                               "\"last_seq\":{\"zeta\":12,\"alpha\":3}}";
    struct server_line l;
    struct sl_msg m;
    struct sl_channel c;
    struct sl_text t;
    int64_t seq;

    server_line_parse(&l, hist, strlen(hist));
    is_uint(l.n_messages, 2, "ok hist: two messages");
    ok(l.next_since == 4 && text_is(l.channel, "general"), "ok hist: channel, next_since");
    ok(server_line_hist_msg(&l, 0, &m), "ok hist: message 0");
    check_msg_a(&m, "ok hist, message 0");
    ok(server_line_hist_msg(&l, 1, &m) && m.seq == 4 && text_is(m.sender, "bo"),
       "ok hist: message 1");
    ok(!server_line_hist_msg(&l, 2, &m), "ok hist: no message 2");
    server_line_release(&l);

    server_line_parse(&l, chans, strlen(chans));
    is_uint(l.n_channels, 2, "ok channels: two");
    ok(server_line_channel(&l, 0, &c) && text_is(c.name, "a") && c.messages == 2 &&
           c.last_seq == 2 && text_is(c.last_ts, "2026-11-24T09:15:02.417Z"),
       "ok channels: the first");
    ok(server_line_channel(&l, 1, &c) && text_is(c.name, "b") && c.last_ts.s == NULL,
       "ok channels: the second, no last_ts");
    ok(!server_line_channel(&l, 2, &c), "ok channels: no third");
    ok(text_is(l.next_after, "b"), "ok channels: next_after, the page was full");
    server_line_release(&l);
    static const char last[] = "{\"type\":\"ok\",\"op\":\"channels\",\"channels\":[]}";
    server_line_parse(&l, last, strlen(last));
    ok(l.n_channels == 0 && l.next_after.s == NULL, "ok channels, the last page: no next_after");
    server_line_release(&l);

    server_line_parse(&l, help, strlen(help));
    ok(l.n_commands == 2 && server_line_command(&l, 1, &t) && text_is(t, "PING [token]"),
       "ok help: the usage lines");
    server_line_release(&l);

    server_line_parse(&l, slow, strlen(slow));
    ok(l.n_last_seq == 2 && server_line_last_seq(&l, 0, &t, &seq) && text_is(t, "zeta") &&
           seq == 12 && server_line_last_seq(&l, 1, &t, &seq) && text_is(t, "alpha") && seq == 3,
       "slow_consumer: last seqs in the order sent");
    ok(!server_line_last_seq(&l, 2, &t, &seq), "slow_consumer: no third");
    server_line_release(&l);
}

static void test_pages(void)
{
    static const char page[] = "{\"channel\":\"general\",\"messages\":[{" MSG_A "}],"
                               "\"next_since\":3}\n";
    static const char empty[] = "{\"channel\":\"general\",\"messages\":[],\"next_since\":3}";
    static const char more[] = "{\"channel\":\"general\",\"messages\":[{" MSG_A "}],"
                               "\"next_since\":3,\"gap\":null}";
    static const char hist[] = "{\"type\":\"ok\",\"op\":\"hist\",\"channel\":\"c\","
                               "\"messages\":[],\"next_since\":0,\"more\":true}";
    static const char cut[] = "{\"channel\":\"general\",\"messages\":[{" MSG_A "}],"
                              "\"next_since\":3,\"more\":true}\n";
    struct server_line l;
    struct sl_msg m;
    char err[GW_ERRLEN];

    ok(server_line_page(&l, page, strlen(page), err) == 0 && l.json == NULL, "page: fast");
    ok(l.type == SL_OK && l.op == PROTO_HIST && l.n_messages == 1 && l.next_since == 3 &&
           server_line_hist_msg(&l, 0, &m),
       "page: read as the ok of a HIST");
    check_msg_a(&m, "page, fast");
    server_line_release(&l);
    ok(l.more == false, "page: no more after it");
    server_line_release(&l);
    ok(server_line_page(&l, empty, strlen(empty), err) == 0 && l.n_messages == 0 &&
           l.next_since == 3,
       "empty page");
    server_line_release(&l);
    ok(server_line_page(&l, cut, strlen(cut), err) == 0 && l.json == NULL && l.more &&
           l.next_since == 3 && l.n_messages == 1,
       "a page cut short of the top: more, read the fast way");
    server_line_release(&l);
    server_line_parse(&l, hist, strlen(hist));
    ok(l.type == SL_OK && l.op == PROTO_HIST && l.more, "hist line: more");
    server_line_release(&l);
    ok(server_line_page(&l, more, strlen(more), err) == 0 && l.json != NULL && l.n_messages == 1,
       "a page with a field more: read with jansson");
    ok(server_line_hist_msg(&l, 0, &m), "its message");
    check_msg_a(&m, "page, jansson");
    server_line_release(&l);
    ok(server_line_page(&l, "{\"messages\":1}", 14, err) < 0 && strstr(err, "no messages"),
       "not a page: %s", err);
    server_line_release(&l);
    ok(server_line_page(&l, "<html>", 6, err) < 0 && strstr(err, "not JSON"), "not JSON: %s", err);
    server_line_release(&l);
}

static void test_rest_error_and_ts(void)
{
    char out[128];
    int64_t ms;
    struct sl_text t;
    static const char *bad[] = {"2026-11-24T09:15:02Z", "2026-11-24 09:15:02.417Z",
                                "2026-13-24T09:15:02.417Z", "2026-11-24T09:15:02.41xZ"};

    static const char rest_err[] = "{\"error\":{\"code\":\"invalid_json\",\"message\":\"bad\"}}";

    server_line_rest_error(rest_err, strlen(rest_err), out, sizeof(out));
    is_str(out, "invalid_json: bad", "REST error: code: message");
    server_line_rest_error("<h1>502\n</h1>", 13, out, sizeof(out));
    is_str(out, "<h1>502.</h1>", "not JSON: printable bytes");
    server_line_rest_error("", 0, out, sizeof(out));
    is_str(out, "no body", "empty");

    t.s = "1970-01-01T00:00:01.500Z";
    t.len = strlen(t.s);
    ok(server_line_ts_ms(t, &ms) && ms == 1500, "ts: epoch + 1.5 s");
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        t.s = bad[i];
        t.len = strlen(t.s);
        ok(!server_line_ts_ms(t, &ms), "ts refused: %s", bad[i]);
    }
    t.s = NULL;
    t.len = 0;
    ok(!server_line_ts_ms(t, &ms), "ts absent");
}

int main(void)
{
    test_push_both_ways();
    test_escapes_go_to_jansson();
    test_ok_pub();
    test_pinned_to_codec();
    test_type_and_head();
    test_fields();
    test_reply_parts();
    test_pages();
    test_rest_error_and_ts();
    return done_testing();
}
