/*
 * test_ws_proto.c - gateway/ws_proto.h: the handshake's accept key and
 * verdict, the Origin check, and the close code and reason for each error.
 */
#include "origin.h"
#include "ws_proto.h"

#include "tap.h"
#include "text.h"

#include <string.h>

static void test_accept_key(void)
{
    char out[WS_ACCEPT_LEN];

    /* RFC 6455 1.3 and 4.2.2, the example of the RFC itself. */
    ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out);
    is_str(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "the RFC's example key");
    /* Another, computed with Python's hashlib and base64. */
    ws_accept_key("x3JJHMbDL1EzLkh9GBhXDw==", out);
    is_str(out, "HSmrc0sMlYUkAGmm5OPpG2HaGWk=", "a second key");
}

static void test_key_valid(void)
{
    ok(ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=="), "16 bytes in base64");
    ok(!ws_key_valid(NULL), "no key");
    ok(!ws_key_valid(""), "empty");
    ok(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ="), "one '=' short");
    ok(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==="), "one too many");
    ok(!ws_key_valid("dGhlIHNhbXBsZSBub25jZ!=="), "a character outside base64");
    ok(!ws_key_valid("dGhlIHNhbXBsZSBub25jZR=="), "bits past the 16th byte");
    ok(!ws_key_valid("dGhlIHNhbXBsZSBub25jZQAA"), "no padding");
}

static void test_tokens(void)
{
    ok(ws_header_has_token("websocket", "websocket"), "the token alone");
    ok(ws_header_has_token("WebSocket", "websocket"), "any case");
    ok(ws_header_has_token("keep-alive, Upgrade", "upgrade"), "in a list");
    ok(ws_header_has_token(" keep-alive ,\tupgrade ", "upgrade"), "spaces around");
    ok(!ws_header_has_token("upgrades", "upgrade"), "a longer word");
    ok(!ws_header_has_token("keep-alive", "upgrade"), "absent");
    ok(!ws_header_has_token(NULL, "upgrade"), "no header");
    ok(ws_header_has_token("chat, visavis.v1", WS_SUBPROTOCOL), "the subprotocol in a list");
}

static void test_origin(void)
{
    ok(origin_allowed("http://localhost:8080", "localhost:8080", ""), "same host and port");
    ok(origin_allowed("https://LocalHost:8080/", "localhost:8080", ""), "any case, a slash");
    ok(!origin_allowed("http://localhost:8081", "localhost:8080", ""), "another port");
    ok(!origin_allowed("http://evil.example", "localhost:8080", ""), "another host");
    ok(!origin_allowed("http://localhost:8080", NULL, ""), "no Host header");
    ok(!origin_allowed("null", "localhost:8080", ""), "null: not the same host");
    ok(origin_allowed("null", "localhost:8080", "*"), "null under *");
    ok(origin_allowed("http://evil.example", "localhost:8080", "*"), "anything under *");
    ok(origin_allowed("http://b.example", "x:1", "http://a.example,http://b.example"),
       "listed second");
    ok(origin_allowed("http://A.example", "x:1", "http://a.example/"), "listed, any case");
    ok(!origin_allowed("http://c.example", "x:1", "http://a.example,http://b.example"),
       "not listed");
    ok(!origin_allowed("http://localhost:8080", "localhost:8080", "http://a.example"),
       "a list replaces the same-host rule");
    ok(!origin_allowed("http://a.example.evil", "x:1", "http://a.example"), "a longer name");
}

/* The names the HTTP port answers to (origin.h host_allowed): DNS rebinding is refused. */
static void test_host(void)
{
    static const struct {
        const char *host, *allow;
        bool answered;
        const char *what;
    } cases[] = {
        {"127.0.0.1:8080", "", true, "an IPv4 address"},
        {"10.1.2.3", "", true, "an IPv4 address without a port"},
        {"[::1]:8080", "", true, "an IPv6 address"},
        {"localhost:8080", "", true, "localhost"},
        {"LocalHost.:8080", "", true, "localhost, any case, a trailing dot"},
        {"app.localhost:8080", "", true, "a name under .localhost"},
        {"gateway:8080", "", true, "a name without a dot (a container's)"},
        {"x", "", true, "a one-letter name"},
        {NULL, "", true, "no Host (HTTP/1.0)"},
        {"", "", true, "an empty Host"},
        {"evil.example:8080", "", false, "a DNS name"},
        {"evil.example.:8080", "", false, "a DNS name with a trailing dot"},
        {"127.0.0.1.evil.example", "", false, "a name that begins with an address"},
        {"localhost.evil.example", "", false, "a name that begins with localhost"},
        {"evillocalhost", "", true, "one label, whatever it holds"},
        {"evil.localhost.example", "", false, ".localhost inside a name"},
        {"1.2.3", "", false, "three numbers are a name, not an address"},
        {"gw.example:8080", "a.example,GW.Example", true, "listed second, any case"},
        {"gw.example:8080", "gw.example.", true, "listed with a trailing dot"},
        {"gw.example", "w.example", false, "a list names whole names"},
        {"evil.example", "*", true, "anything under *"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        ok(host_allowed(cases[i].host, cases[i].allow) == cases[i].answered, "Host %s: %s",
           cases[i].answered ? "answered" : "refused", cases[i].what);
}

static struct ws_request good(void)
{
    return (struct ws_request){
        .get = true,
        .http11 = true,
        .upgrade = "websocket",
        .connection = "Upgrade",
        .version = "13",
        .key = "dGhlIHNhbXBsZSBub25jZQ==",
        .host = "127.0.0.1:8080",
    };
}

static void test_judge(void)
{
    struct ws_verdict v;
    char why[GW_ERRLEN];
    struct ws_request rq = good();

    is_int(ws_handshake_judge(&rq, "", &v, why), GW_OK, "a good handshake");
    is_str(v.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", "its accept key");
    ok(v.protocol == NULL, "no subprotocol offered, none chosen");

    rq.protocol = "chat, visavis.v1";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_OK, "subprotocols offered");
    is_str(v.protocol, "visavis.v1", "ours is chosen");
    rq.protocol = "chat";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_OK, "only others offered: still served");
    ok(v.protocol == NULL, "and none chosen (RFC 6455 4.2.2)");
    rq.protocol = "VISAVIS.V1";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_OK, "ours in other letters: still served");
    ok(v.protocol == NULL, "and not answered as ours, which the client did not offer");

    rq = good();
    rq.origin = "http://127.0.0.1:8080";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_OK, "a page of the same host");
    rq.origin = "http://evil.example";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_ORIGIN, "a page of another");
    ok(strstr(why, "evil.example") && strstr(why, "--ws-origins"), "why names it and the flag");
    is_int(ws_handshake_judge(&rq, "http://evil.example", &v, why), GW_OK, "unless listed");

    rq = good();
    rq.upgrade = NULL;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_UPGRADE_REQUIRED, "a plain GET");
    ok(strstr(why, "Upgrade: websocket") != NULL, "why says what to send");
    rq = good();
    rq.connection = "keep-alive";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_UPGRADE_REQUIRED, "no Connection: Upgrade");
    rq = good();
    rq.http11 = false;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_UPGRADE_REQUIRED, "HTTP/1.0");
    rq = good();
    rq.version = "8";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_UPGRADE_REQUIRED, "version 8");
    ok(v.version_hint, "answered with the version we speak");
    rq = good();
    rq.key = "short";
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_PARAM, "a bad key");
    rq.key = NULL;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_PARAM, "no key");
    rq = good();
    rq.get = false;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_METHOD, "not a GET");
    ok(strstr(why, "GET /v1/ws") != NULL, "names /v1/ws: %s", why);

    /* Socket.IO's WebSocket transport is judged the same way, and named for what it is. */
    rq = good();
    rq.endpoint = "/socket.io/?EIO=4&transport=websocket";
    rq.doc = "docs/socketio.md";
    rq.upgrade = NULL;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_UPGRADE_REQUIRED,
           "a plain GET of Socket.IO's");
    ok(strstr(why, "/socket.io/?EIO=4&transport=websocket is a WebSocket endpoint") != NULL &&
           strstr(why, "docs/socketio.md") != NULL && strstr(why, "/v1/ws") == NULL,
       "names Socket.IO's endpoint and its page: %s", why);
    rq.get = false;
    is_int(ws_handshake_judge(&rq, "", &v, why), GW_E_METHOD, "not a GET of Socket.IO's");
    ok(strstr(why, "GET /socket.io/") != NULL, "names it too: %s", why);
}

static void test_close_codes(void)
{
    static const struct {
        enum gw_err err;
        unsigned code;
    } cases[] = {
        {GW_OK, 1000},
        {GW_E_SHUTDOWN, 1001},
        {GW_E_MEDIA_TYPE, 1003},
        {GW_E_UTF8, 1007},
        {GW_E_IDLE, 1008},
        {GW_E_TOO_MANY_ERRORS, 1008},
        {GW_E_LINE_TOO_LONG, 1009},
        {GW_E_STORE, 1011},
        {GW_E_STORE_FULL, 1011},
        {GW_E_TOO_MANY_SESSIONS, 1013},
        {GW_E_SLOW_CONSUMER, 4001},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        is_uint(ws_close_code(cases[i].err), cases[i].code, "close code for %s",
                gw_err_code(cases[i].err));
    for (int e = 0; e < GW_E__COUNT; e++) {
        unsigned c = ws_close_code((enum gw_err)e);
        ok((c >= 1000 && c <= 1013 && c != 1004 && c != 1005 && c != 1006) ||
               (c >= 4000 && c <= 4999),
           "%s: %u may be sent", gw_err_code((enum gw_err)e), c);
    }
}

static void test_close_reason(void)
{
    char out[WS_REASON_MAX + 1], why[300];
    static const char farewell[] =
        "{\"type\":\"error\",\"code\":\"slow_consumer\",\"message\":\"more than 4096 bytes\","
        "\"last_seq\":{\"general\":42,\"news\":7}}\n";
    size_t n;

    n = ws_close_reason(GW_OK, "closed by the server", NULL, 0, out);
    is_str(out, "closed by the server", "an ordinary end: the detail as it is");
    is_uint(n, strlen(out), "its length");
    ws_close_reason(GW_E_TOO_MANY_ERRORS, NULL, NULL, 0, out);
    is_str(out, "too_many_errors", "an error: its code");
    ws_close_reason(GW_E_MEDIA_TYPE, "send text", NULL, 0, out);
    is_str(out, "unsupported_media_type: send text", "an error: its code and the detail");

    n = ws_close_reason(GW_E_SLOW_CONSUMER, "slow consumer", farewell, sizeof(farewell) - 1, out);
    is_str(out, "slow consumer; last_seq {\"general\":42,\"news\":7}", "the last seqs");

    /* Many channels: as many as fit, then ", ...}". */
    struct {
        char line[2048];
    } big;
    size_t len = (size_t)snprintf(big.line, sizeof(big.line),
                                  "{\"type\":\"error\",\"code\":\"slow_consumer\",\"message\":"
                                  "\"x\",\"last_seq\":{");
    for (int i = 0; i < 20; i++)
        len += (size_t)snprintf(big.line + len, sizeof(big.line) - len, "%s\"channel-%02d\":%d",
                                i ? "," : "", i, 1000 + i);
    len += (size_t)snprintf(big.line + len, sizeof(big.line) - len, "}}\n");
    n = ws_close_reason(GW_E_SLOW_CONSUMER, "slow consumer", big.line, len, out);
    ok(n <= WS_REASON_MAX, "fits in a close frame (%zu bytes)", n);
    ok(strstr(out, "\"channel-00\":1000") != NULL, "the first channel is there");
    ok(n > 5 && strcmp(out + n - 6, ", ...}") == 0, "the rest is said to be elided: %s", out);
    ok(strstr(out, "channel-19") == NULL, "the last is not");

    n = ws_close_reason(GW_E_SLOW_CONSUMER, "slow consumer", NULL, 0, out);
    is_str(out, "slow consumer; resume after the last message received",
           "no farewell seen: no seq is claimed");

    /* A long why is cut on a character boundary. */
    memset(why, 0, sizeof(why));
    for (int i = 0; i < 100; i++)
        memcpy(why + 2 * i, "\xc3\xa9", 2); /* é */
    n = ws_close_reason(GW_OK, why, NULL, 0, out);
    ok(n <= WS_REASON_MAX && n % 2 == 0, "cut to %zu bytes, between characters", n);
    ok(text_utf8_valid(out, n), "still UTF-8");
}

int main(void)
{
    test_accept_key();
    test_key_valid();
    test_tokens();
    test_origin();
    test_host();
    test_judge();
    test_close_codes();
    test_close_reason();
    return done_testing();
}
