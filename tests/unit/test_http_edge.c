/*
 * test_http_edge.c - gateway/http_edge.h: the framing verdicts of RFC 9112
 * section 6 as the gateway applies them, the body deadline, and the error
 * answer written on the socket.
 */
#include "http_edge.h"

#include "buf.h"
#include "gw.h"
#include "tap.h"

#include <string.h>

#define MAX_FIELDS 4

struct framing_case {
    const char *name;
    const char *fields[MAX_FIELDS][2]; /* name, value; NULL name ends */
    bool http10;
    enum gw_err want;
    uint64_t length;
    bool chunked;
};

static const struct framing_case cases[] = {
    {"no body fields", {{NULL, NULL}}, false, GW_OK, 0, false},
    {"unrelated fields only",
     {{"Host", "x"}, {"Content-Type", "application/json"}},
     false,
     GW_OK,
     0,
     false},
    {"Content-Length 0", {{"Content-Length", "0"}}, false, GW_OK, 0, false},
    {"Content-Length 42", {{"Content-Length", "42"}}, false, GW_OK, 42, false},
    {"name matched without case", {{"content-LENGTH", "7"}}, false, GW_OK, 7, false},
    {"leading zeros", {{"Content-Length", "0007"}}, false, GW_OK, 7, false},
    {"2^63 - 1", {{"Content-Length", "9223372036854775807"}}, false, GW_OK, INT64_MAX, false},
    {"chunked", {{"Transfer-Encoding", "chunked"}}, false, GW_OK, 0, true},
    {"chunked, any case", {{"transfer-encoding", "Chunked"}}, false, GW_OK, 0, true},
    /* smuggling shapes */
    {"TE and CL",
     {{"Transfer-Encoding", "chunked"}, {"Content-Length", "5"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"CL and TE",
     {{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two CL, different",
     {{"Content-Length", "5"}, {"Content-Length", "12"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two CL, equal",
     {{"Content-Length", "5"}, {"Content-Length", "5"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"CL list", {{"Content-Length", "5, 5"}}, false, GW_E_PARAM, 0, false},
    {"CL empty", {{"Content-Length", ""}}, false, GW_E_PARAM, 0, false},
    {"CL sign", {{"Content-Length", "+5"}}, false, GW_E_PARAM, 0, false},
    {"CL negative", {{"Content-Length", "-1"}}, false, GW_E_PARAM, 0, false},
    {"CL hex", {{"Content-Length", "0x10"}}, false, GW_E_PARAM, 0, false},
    {"CL with a space inside", {{"Content-Length", "1 0"}}, false, GW_E_PARAM, 0, false},
    {"CL 2^63", {{"Content-Length", "9223372036854775808"}}, false, GW_E_TOO_LARGE, 0, false},
    {"CL 2^64", {{"Content-Length", "18446744073709551616"}}, false, GW_E_TOO_LARGE, 0, false},
    {"CL 23 nines",
     {{"Content-Length", "99999999999999999999999"}},
     false,
     GW_E_TOO_LARGE,
     0,
     false},
    {"CL overflowing then junk",
     {{"Content-Length", "99999999999999999999999x"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"TE gzip", {{"Transfer-Encoding", "gzip"}}, false, GW_E_PARAM, 0, false},
    {"TE identity", {{"Transfer-Encoding", "identity"}}, false, GW_E_PARAM, 0, false},
    {"TE gzip, chunked", {{"Transfer-Encoding", "gzip, chunked"}}, false, GW_E_PARAM, 0, false},
    {"TE chunked, chunked",
     {{"Transfer-Encoding", "chunked, chunked"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two TE fields",
     {{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"TE empty", {{"Transfer-Encoding", ""}}, false, GW_E_PARAM, 0, false},
    {"TE in HTTP/1.0", {{"Transfer-Encoding", "chunked"}}, true, GW_E_PARAM, 0, false},
    {"CL in HTTP/1.0", {{"Content-Length", "3"}}, true, GW_OK, 3, false},
    /* Names a proxy may read as a framing field that libmicrohttpd does not. */
    {"CL name with a blank", {{"Content-Length ", "5"}}, false, GW_E_PARAM, 0, false},
    {"CL name with a tab", {{"Content-Length\t", "5"}}, false, GW_E_PARAM, 0, false},
    {"CL folded into its name", {{"Content-Length42", ""}}, false, GW_E_PARAM, 0, false},
    {"TE name with a blank",
     {{"Transfer-Encoding ", "chunked"}, {"Content-Length", "5"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"TE folded into its name", {{"transfer-encodingchunked", ""}}, false, GW_E_PARAM, 0, false},
    {"a name with a blank inside", {{"X Foo", "1"}}, false, GW_E_PARAM, 0, false},
    {"a name with a colon", {{"X:Foo", "1"}}, false, GW_E_PARAM, 0, false},
    {"a name of every tchar", {{"!#$%&'*+-.^_`|~Az09", "1"}}, false, GW_OK, 0, false},
    {"Content-Location is no CL", {{"Content-Location", "/x"}}, false, GW_OK, 0, false},
    {"two Content-Type fields",
     {{"Content-Type", "text/plain"},
      {"content-type", "application/json"},
      {"Content-Length", "2"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two Origin fields",
     {{"Origin", "http://a"}, {"origin", "http://b"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two Sec-WebSocket-Key fields",
     {{"Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="},
      {"Sec-WebSocket-Key", "AQIDBAUGBwgJCgsMDQ4PEA=="}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two Sec-WebSocket-Version fields",
     {{"Sec-WebSocket-Version", "13"}, {"Sec-WebSocket-Version", "8"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"two Last-Event-ID fields",
     {{"Last-Event-ID", "3"}, {"Last-Event-Id", "4"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"Origin and Sec-WebSocket-Key once each",
     {{"Origin", "http://a"},
      {"Sec-WebSocket-Key", "x"},
      {"Sec-WebSocket-Protocol", "a"},
      {"Sec-WebSocket-Protocol", "b"}},
     false,
     GW_OK,
     0,
     false},
    /* A fold onto a field the gateway reads: libmicrohttpd joins it to the name. */
    {"Content-Type folded into its name",
     {{"Content-Typejson", "application/"}},
     false,
     GW_E_PARAM,
     0,
     false},
    {"Host folded into its name", {{"Hosty", "x"}}, false, GW_E_PARAM, 0, false},
    {"Host- is no Host", {{"Host-", "x"}}, false, GW_E_PARAM, 0, false},
    {"Accept-Encoding is a field of its own",
     {{"Accept-Encoding", "gzip"}},
     false,
     GW_OK,
     0,
     false},
    {"Upgrade-Insecure-Requests too", {{"Upgrade-Insecure-Requests", "1"}}, false, GW_OK, 0, false},
    {"Originx is a fold", {{"Originx", "1"}}, false, GW_E_PARAM, 0, false},
};

static void framing_table(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        const struct framing_case *c = &cases[i];
        struct http_framing f = {0};
        char why[GW_ERRLEN] = "";
        uint64_t length = 99;
        bool chunked = true;

        for (int k = 0; k < MAX_FIELDS && c->fields[k][0]; k++)
            http_framing_add(&f, c->fields[k][0], c->fields[k][1]);
        enum gw_err err = http_framing_judge(&f, c->http10, &length, &chunked, why);
        is_str(gw_err_code(err), gw_err_code(c->want), "%s: verdict", c->name);
        is_uint(length, c->length, "%s: length", c->name);
        ok(chunked == c->chunked, "%s: chunked is %d", c->name, c->chunked);
        if (c->want != GW_OK)
            ok(why[0] != '\0', "%s: says why (%s)", c->name, why);
    }
}

/* A bare CR inside a name or a value (libmicrohttpd keeps it): refused. */
static void bare_cr(void)
{
    static const char *const fields[][2] = {
        {"X", "a\rContent-Length: 52"},
        {"Transfer-Encoding", "chunked\r"},
        {"X\rY", "1"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(fields); i++) {
        struct http_framing f = {0};
        char why[GW_ERRLEN] = "";
        uint64_t length;
        bool chunked;
        http_framing_add(&f, "Host", "x");
        http_framing_add(&f, fields[i][0], fields[i][1]);
        is_str(gw_err_code(http_framing_judge(&f, false, &length, &chunked, why)),
               gw_err_code(GW_E_PARAM), "a bare CR in field %zu is refused", i);
        ok(strstr(why, "bare CR") && !strchr(why, '\r'), "and says so (%s)", why);
    }
}

static void host_fields(void)
{
    struct {
        const char *name;
        unsigned hosts; /* Host fields given */
        bool http10;
        enum gw_err want;
    } hc[] = {
        {"HTTP/1.1, one Host", 1, false, GW_OK},      {"HTTP/1.1, no Host", 0, false, GW_E_PARAM},
        {"HTTP/1.1, two Host", 2, false, GW_E_PARAM}, {"HTTP/1.0, no Host", 0, true, GW_OK},
        {"HTTP/1.0, two Host", 2, true, GW_E_PARAM},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(hc); i++) {
        struct http_framing f = {0};
        char why[GW_ERRLEN] = "";
        for (unsigned k = 0; k < hc[i].hosts; k++)
            http_framing_add(&f, k ? "host" : "Host", "127.0.0.1:8080");
        enum gw_err err = http_host_judge(&f, hc[i].http10, why);
        is_str(gw_err_code(err), gw_err_code(hc[i].want), "%s", hc[i].name);
        if (err != GW_OK)
            ok(strstr(why, "Host") != NULL, "%s: says why (%s)", hc[i].name, why);
    }
}

static void body_deadline(void)
{
    is_uint(http_body_deadline_ms(0, 10, 4096), 10000, "no body: the floor");
    is_uint(http_body_deadline_ms(40960, 10, 4096), 10000, "10 s worth at the rate: the floor");
    is_uint(http_body_deadline_ms(81920, 10, 4096), 20000, "20 s worth at the rate: 20 s");
    is_uint(http_body_deadline_ms(5011, 1, 2000), 2505, "5011 bytes at 2000 B/s: 2.505 s");
    is_uint(http_body_deadline_ms(UINT64_MAX, 1, 1), UINT64_MAX, "saturates instead of wrapping");
    is_uint(http_body_deadline_ms(UINT64_MAX / 1000 + 1, 1, 1), UINT64_MAX, "just past the edge");
}

static void error_response(void)
{
    struct buf b = BUF_INIT;
    static const char body[] = "{\"error\":{\"code\":\"idle_timeout\",\"message\":\"m\"}}";

    http_edge_response(&b, 408, "Request Timeout", "Retry-After: 1", body, strlen(body), 0);
    ok(strncmp(b.data, "HTTP/1.1 408 Request Timeout\r\n", 30) == 0, "status line: %.30s", b.data);
    ok(strstr(b.data, "\r\nDate: Thu, 01 Jan 1970 00:00:00 GMT\r\n") != NULL, "Date");
    ok(strstr(b.data, "\r\nContent-Type: application/json\r\n") != NULL, "Content-Type");
    ok(strstr(b.data, "\r\nConnection: close\r\n") != NULL, "Connection: close");
    ok(strstr(b.data, "\r\nRetry-After: 1\r\n") != NULL, "the extra header");
    char *end = strstr(b.data, "\r\n\r\n");
    ok(end != NULL, "a head that ends");
    if (end) {
        char want[64];
        snprintf(want, sizeof(want), "\r\nContent-Length: %zu\r\n", strlen(body) + 1);
        ok(strstr(b.data, want) != NULL, "Content-Length counts the body and its newline");
        char full[sizeof(body) + 1];
        snprintf(full, sizeof(full), "%s\n", body);
        is_mem(end + 4, b.len - (size_t)(end + 4 - b.data), full, strlen(full),
               "the body, then a newline");
    }
    buf_release(&b);
    http_edge_response(&b, 429, "Too Many Requests", NULL, body, strlen(body), 0);
    ok(strstr(b.data, "Retry-After") == NULL && strstr(b.data, "\r\n\r\n{") != NULL,
       "no extra header: none written, and no blank line before the end of the head");
    buf_release(&b);
}

int main(void)
{
    framing_table();
    bare_cr();
    host_fields();
    body_deadline();
    error_response();
    return done_testing();
}
