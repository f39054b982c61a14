/*
 * test_router.c - gateway/router.h: the route table and Content-Type check.
 */
#include "router.h"

#include "tap.h"

#include <string.h>

#define R_OK(m, p, id, rm, arg, allow)                                                             \
    {                                                                                              \
        m, p, GW_OK, id, rm, arg, allow                                                            \
    }
#define R_405(m, p, id, allow)                                                                     \
    {                                                                                              \
        m, p, GW_E_METHOD, id, ROUTE_GET, NULL, allow                                              \
    }
#define R_404(m, p)                                                                                \
    {                                                                                              \
        m, p, GW_E_NOT_FOUND, ROUTE_HEALTH, ROUTE_GET, NULL, NULL                                  \
    }

#define READ      "GET, HEAD"
#define READ_POST "GET, HEAD, POST"

struct route_case {
    const char *method;
    const char *path;
    enum gw_err err;
    enum route_id id; /* for GW_OK and GW_E_METHOD */
    enum route_method rmethod;
    const char *arg; /* the expected {channel}/{id} segment, or NULL */
    const char *allow;
};

static const struct route_case route_cases[] = {
    R_OK("GET", "/healthz", ROUTE_HEALTH, ROUTE_GET, NULL, READ),
    R_OK("HEAD", "/healthz", ROUTE_HEALTH, ROUTE_GET, NULL, READ),
    R_405("POST", "/healthz", ROUTE_HEALTH, READ),
    R_405("PUT", "/healthz", ROUTE_HEALTH, READ),
    R_OK("GET", "/v1/ws", ROUTE_WS, ROUTE_GET, NULL, "GET"),
    R_405("POST", "/v1/ws", ROUTE_WS, "GET"),
    R_404("GET", "/v1/ws/"),
    R_OK("GET", "/v1/version", ROUTE_VERSION, ROUTE_GET, NULL, READ),
    R_OK("HEAD", "/v1/version", ROUTE_VERSION, ROUTE_GET, NULL, READ),
    R_405("POST", "/v1/version", ROUTE_VERSION, READ),
    R_OK("GET", "/v1/channels", ROUTE_CHANNELS, ROUTE_GET, NULL, READ),
    R_OK("HEAD", "/v1/channels", ROUTE_CHANNELS, ROUTE_GET, NULL, READ),
    R_405("POST", "/v1/channels", ROUTE_CHANNELS, READ),
    R_405("DELETE", "/v1/channels", ROUTE_CHANNELS, READ),
    R_OK("GET", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_GET, "news", READ_POST),
    R_OK("HEAD", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_GET, "news",
         READ_POST),
    R_OK("POST", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_POST, "news",
         READ_POST),
    R_OK("POST", "/v1/channels/a.b_c-D9/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_POST, "a.b_c-D9",
         READ_POST),
    /* The router takes any segment; whether it is a valid channel is the core's rule. */
    R_OK("GET", "/v1/channels/a%20b/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_GET, "a%20b",
         READ_POST),
    R_OK("GET", "/v1/channels/messages/messages", ROUTE_CHANNEL_MESSAGES, ROUTE_GET, "messages",
         READ_POST),
    R_405("PUT", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, READ_POST),
    R_405("DELETE", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, READ_POST),
    R_405("PATCH", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, READ_POST),
    R_405("OPTIONS", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, READ_POST),
    R_405("post", "/v1/channels/news/messages", ROUTE_CHANNEL_MESSAGES, READ_POST),
    R_405("get", "/healthz", ROUTE_HEALTH, READ),
    R_OK("GET", "/v1/channels/news/events", ROUTE_CHANNEL_EVENTS, ROUTE_GET, "news", READ),
    R_OK("HEAD", "/v1/channels/news/events", ROUTE_CHANNEL_EVENTS, ROUTE_GET, "news", READ),
    R_405("POST", "/v1/channels/news/events", ROUTE_CHANNEL_EVENTS, READ),
    R_404("GET", "/v1/channels/news/events/"),
    R_404("GET", "/v1/channels//events"),
    R_404("GET", "/v1/channels/news/event"),
    R_OK("GET", "/v1/messages/42", ROUTE_MESSAGE, ROUTE_GET, "42", READ),
    R_OK("HEAD", "/v1/messages/42", ROUTE_MESSAGE, ROUTE_GET, "42", READ),
    R_OK("GET", "/v1/messages/abc", ROUTE_MESSAGE, ROUTE_GET, "abc", READ),
    R_405("POST", "/v1/messages/42", ROUTE_MESSAGE, READ),
    R_405("DELETE", "/v1/messages/42", ROUTE_MESSAGE, READ),
    /* No such path, whatever the method. */
    R_404("GET", ""),
    R_OK("GET", "/", ROUTE_INDEX, ROUTE_GET, NULL, READ),
    R_404("GET", "/healthz/"),
    R_404("GET", "/healthz/x"),
    R_404("GET", "/healthzz"),
    R_404("GET", "//healthz"),
    R_404("GET", "healthz"),
    R_OK("GET", "/v1", ROUTE_INDEX, ROUTE_GET, NULL, READ),
    R_OK("HEAD", "/v1/", ROUTE_INDEX, ROUTE_GET, NULL, READ),
    R_405("POST", "/", ROUTE_INDEX, READ),
    R_404("GET", "/v1/version/"),
    R_404("GET", "/v2/version"),
    R_404("GET", "/V1/channels"),
    R_404("GET", "/v1/channels/"),
    R_404("GET", "/v1//channels"),
    R_404("GET", "/v1/channelsx"),
    R_404("GET", "/v1/channels/news"),
    R_404("GET", "/v1/channels/news/"),
    R_404("POST", "/v1/channels//messages"),
    R_404("GET", "/v1/channels//messages"),
    R_404("GET", "/v1/channels/news//messages"),
    R_404("POST", "/v1/channels/news/messages/"),
    R_404("GET", "/v1/channels/news/messages/extra"),
    R_404("GET", "/v1/channels/news/messagesx"),
    R_404("GET", "/v1/channels/a/b/messages"),
    R_404("GET", "/v1/channels/news/Messages"),
    R_404("GET", "/v1/messages"),
    R_404("GET", "/v1/messages/"),
    R_404("GET", "/v1/messages//42"),
    R_404("GET", "/v1/messages/42/"),
    R_404("GET", "/v1/messages/42/x"),
    R_404("POST", "/nope"),
    R_404("DELETE", "/nope"),
};

/* A path that does not exist, and the one its message suggests ("" for none). */
static const struct {
    const char *path, *hint;
} hints[] = {
    {"/v1/channels/", "/v1/channels)"},
    {"/v1/channels/news", "/v1/channels/news/messages)"},
    {"/v1/channels/news/", "/v1/channels/news/messages)"},
    {"/v1/channels/news/messages/", "/v1/channels/news/messages)"},
    {"/channels/news/messages", "/v1/channels/news/messages)"},
    {"/healthz/", "/healthz)"},
    {"/version", "/v1/version)"},
    {"/v1/messages/42/", "/v1/messages/42)"},
    /* the words of a path in another case, or without their plural s */
    {"/V1/Channels", "/v1/channels)"},
    {"/v1/channel", "/v1/channels)"},
    {"/v1/channel/News/message", "/v1/channels/News/messages)"},
    {"/v1/CHANNELS/Events/EVENT", "/v1/channels/Events/events)"},
    {"/v1/channels/Messages", "/v1/channels/Messages/messages)"},
    {"/v1/message/42", "/v1/messages/42)"},
    {"/V1/WS", "/v1/ws)"},
    {"/Healthz", "/healthz)"},
    {"/Socket.IO/", "/socket.io/)"},
    {"/channel/news/Messages", "/v1/channels/news/messages)"},
    {"/nope", ""},
    {"/v2/version", ""},
    {"/v1/w", ""},
    {"/v1/stat", ""},
    {"/NOPE/channels", ""},
};

static void test_hints(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(hints); i++) {
        struct route r;
        char why[GW_ERRLEN] = "";
        enum gw_err err = router_match("GET", hints[i].path, &r, why);
        is_str(gw_err_code(err), "not_found", "'%s' does not exist", hints[i].path);
        if (hints[i].hint[0]) {
            char want[128];
            snprintf(want, sizeof(want), "did you mean %s", hints[i].hint);
            ok(strstr(why, want) != NULL, "'%s' suggests %.*s (%s)", hints[i].path,
               (int)strlen(hints[i].hint) - 1, hints[i].hint, why);
        } else {
            ok(strstr(why, "did you mean") == NULL && strstr(why, "GET / lists") != NULL,
               "'%s' suggests nothing but the index (%s)", hints[i].path, why);
        }
    }
}

static void test_routes(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(route_cases); i++) {
        const struct route_case *c = &route_cases[i];
        struct route r;
        char why[GW_ERRLEN];
        enum gw_err err;

        memset(&r, 0x5a, sizeof(r));
        why[0] = '\0';
        err = router_match(c->method, c->path, &r, why);
        is_str(gw_err_code(err), gw_err_code(c->err), "%s '%s': %s", c->method, c->path,
               gw_err_code(c->err));
        if (err != c->err)
            continue;
        if (c->err == GW_E_NOT_FOUND) {
            ok(why[0] != '\0', "%s '%s': why set (\"%s\")", c->method, c->path, why);
            continue;
        }
        is_int(r.id, c->id, "%s '%s': route id", c->method, c->path);
        is_str(r.allow, c->allow, "%s '%s': allow", c->method, c->path);
        if (c->err == GW_E_METHOD) {
            ok(why[0] != '\0' && strstr(why, c->method),
               "%s '%s': why set and names the method (\"%s\")", c->method, c->path, why);
            continue;
        }
        is_int(r.method, c->rmethod, "%s '%s': method", c->method, c->path);
        if (c->arg) {
            /* The segment is borrowed from path: same bytes, at the right place. */
            const char *at = strstr(c->path, c->arg);
            ok(r.arg == at, "%s '%s': arg points into path at offset %td", c->method, c->path,
               at - c->path);
            is_mem(r.arg, r.arg_len, c->arg, strlen(c->arg), "%s '%s': arg bytes", c->method,
                   c->path);
        } else {
            ok(r.arg == NULL && r.arg_len == 0, "%s '%s': no arg", c->method, c->path);
        }
    }
}

/* The arg is a view into a longer buffer: the bytes after it are not part of it. */
static void test_arg_is_borrowed(void)
{
    char path[] = "/v1/channels/room-7/messages";
    struct route r;
    char why[GW_ERRLEN];

    is_int(router_match("POST", path, &r, why), GW_OK, "borrowed arg: match");
    ok(r.arg == path + 13, "borrowed arg: arg is path + 13");
    is_uint(r.arg_len, 6, "borrowed arg: arg_len 6");
    path[13] = 'R';
    is_mem(r.arg, r.arg_len, "Room-7", 6, "borrowed arg: sees later changes to the path");
}

struct json_case {
    const char *ct;
    bool want;
};

static const struct json_case json_cases[] = {
    {"application/json", true},
    {"APPLICATION/JSON", true},
    {"Application/Json", true},
    {"application/json; charset=utf-8", true},
    {"application/json;charset=utf-8", true},
    {"application/json; charset=UTF-8", true},
    {"application/json; CHARSET=Utf-8", true},
    {"application/json;charset=\"UTF-8\"", true},
    {"application/json; charset=\"utf-8\"", true},
    {"application/json ; charset=utf-8", true},
    {"application/json; charset=utf-8 ", true},
    {"application/json; foo=bar", true},
    {"application/json;foo=bar", true},
    {"application/json; foo=bar; charset=utf-8", true},
    {"application/json; charset=utf-8; foo=bar", true},
    {"application/json;", true},
    {"application/json; ", true},
    {"application/json; ;charset=utf-8", true},
    {"application/json;;", true},
    {"application/json; ; charset=latin1", false},
    {"application/json; charset=latin1", false},
    {"APPLICATION/JSON; CHARSET=LATIN1", false},
    {"application/json; charset=\"latin1\"", false},
    {"application/json; charset=iso-8859-1", false},
    {"application/json; charset=utf-16", false},
    {"application/json; charset=utf-8x", false},
    {"application/json; charset=", false},
    {"application/json; charset=\"utf-8", false},
    {"application/json; foo=bar; charset=latin1", false},
    {"application/json; charset=utf-8; charset=latin1", false},
    {"application/json charset=utf-8", false},
    {"application/jsonx", false},
    {"application/json-patch+json", false},
    {"application/json5", false},
    {"application/jso", false},
    {"application/", false},
    {"text/plain", false},
    {"text/json", false},
    {"application/javascript", false},
    {"application/x-www-form-urlencoded", false},
    {"multipart/form-data; boundary=x", false},
    {"", false},
    {" ", false},
};

static void test_is_json(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(json_cases); i++)
        is_int(router_is_json(json_cases[i].ct), json_cases[i].want, "is_json('%s') is %s",
               json_cases[i].ct, json_cases[i].want ? "true" : "false");
    ok(!router_is_json(NULL), "is_json(NULL) is false");

    /* A parameter without a value must not hide a charset that is not UTF-8. */
    ok(!router_is_json("application/json; x; charset=latin1"),
       "is_json('application/json; x; charset=latin1') is false");

    /* The type alone, so that a wrong charset can be named as the reason. */
    ok(router_type_is("application/json; charset=utf8", "application/json"),
       "type_is: a JSON type whose charset is refused");
    ok(router_type_is(" Text/Plain ;charset=latin1", "text/plain"), "type_is: text, any case");
    ok(router_type_is("application/json", "application/json"), "type_is: no parameters");
    ok(!router_type_is("application/jsonx", "application/json"), "type_is: a longer type");
    ok(!router_type_is("application/json charset=utf-8", "application/json"),
       "type_is: a parameter without its ';'");
    ok(!router_type_is(NULL, "text/plain"), "type_is: no Content-Type");
}

struct accept_case {
    const char *accept;
    bool html;
};

static const struct accept_case accept_cases[] = {
    /* Chromium's and Firefox's for a page. */
    {"text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;"
     "q=0.8,application/signed-exchange;v=b3;q=0.7",
     true},
    {"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", true},
    {"text/html", true},
    {"TEXT/HTML", true},
    {"text/*", true},
    {"text/html;q=0.5", true},
    {"text/html, application/json;q=0.9", true},
    {" text/html ; q=1.0 , */*;q=0.1", true},
    /* Programs: the JSON index. */
    {"*/*", false},
    {"application/json", false},
    {"application/json, text/html;q=0.9", false},
    {"application/json, text/html", false}, /* a tie: the form for programs */
    {"text/html, */*", false},              /* a tie again: JSON by */
    {"text/html;q=0.5, application/*", false},
    {"text/html;q=0", false},
    {"text/plain", false},
    {"text/htmlx", false},
    {"application/xhtml+xml", false},
    {"", false},
    {",,,", false},
    {"text/html;q=2", false},   /* not a quality: the range is ignored */
    {"text/html;q=abc", false}, /* likewise */
};

static void test_prefers_html(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(accept_cases); i++)
        is_int(router_prefers_html(accept_cases[i].accept), accept_cases[i].html, "Accept '%s': %s",
               accept_cases[i].accept, accept_cases[i].html ? "the page" : "the JSON index");
    ok(!router_prefers_html(NULL), "no Accept: the JSON index");
}

static const struct {
    const char *target, *path;
} target_cases[] = {
    {"/v1/channels", "/v1/channels"},
    {"http://127.0.0.1:8080/v1/channels/a/messages", "/v1/channels/a/messages"},
    {"HTTPS://gw.example/healthz", "/healthz"},
    {"http://gw.example", "/"},
    {"http://gw.example?since=1", "/"},
    {"http:/v1", "http:/v1"}, /* not the absolute form: a path the router refuses */
    {"ftp://x/v1", "ftp://x/v1"},
    {"*", "*"},
};

static void test_origin_form(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(target_cases); i++)
        is_str(router_origin_form(target_cases[i].target), target_cases[i].path, "target '%s'",
               target_cases[i].target);
}

int main(void)
{
    test_prefers_html();
    test_origin_form();
    test_routes();
    test_hints();
    test_arg_is_borrowed();
    test_is_json();
    return done_testing();
}
