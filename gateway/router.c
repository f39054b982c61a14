/*
 * router.c - see router.h.
 */
#include "router.h"

#include "gw.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ALLOW_READ      "GET, HEAD"
#define ALLOW_READ_POST "GET, HEAD, POST"
#define ALLOW_UPGRADE   "GET"

/* If path starts with prefix, returns what follows it, else NULL. */
static const char *skip(const char *path, const char *prefix)
{
    size_t n = strlen(prefix);
    return strncmp(path, prefix, n) == 0 ? path + n : NULL;
}

/* Matches "<seg><suffix>" exactly, where seg is non-empty and has no '/'. */
static bool segment(const char *rest, const char *suffix, struct route *out)
{
    const char *slash = strchr(rest, '/');
    size_t seg = slash ? (size_t)(slash - rest) : strlen(rest);

    if (seg == 0 || strcmp(rest + seg, suffix) != 0)
        return false;
    out->arg = rest;
    out->arg_len = seg;
    return true;
}

static const struct router_endpoint endpoints[] = {
    {"POST", "/v1/channels/{channel}/messages", "publish a message (JSON or text/plain body)"},
    {"GET", "/v1/channels/{channel}/messages?since=N&limit=M&wait=S",
     "read a channel after seq N; wait=S holds the request until a message comes (long-poll)"},
    {"GET", "/v1/messages/{id}", "one message"},
    {"GET", "/v1/channels", "every channel, with its last seq"},
    {"GET", "/healthz", "liveness"},
    {"GET", "/v1/version", "version and schema"},
    {"GET", "/metrics", "Prometheus metrics"},
    {"GET", "/v1/stats", "the metrics as JSON"},
    {"GET", "/v1/ws", "WebSocket: the session protocol, one command per text message"},
};

const struct router_endpoint *router_endpoints(size_t *n)
{
    *n = GW_ARRAY_SIZE(endpoints);
    return endpoints;
}

static enum gw_err match(const char *path, struct route *out)
{
    const char *rest;

    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/") == 0 || strcmp(path, "/v1") == 0 || strcmp(path, "/v1/") == 0) {
        out->id = ROUTE_INDEX;
        out->allow = ALLOW_READ;
    } else if (strcmp(path, "/healthz") == 0) {
        out->id = ROUTE_HEALTH;
        out->allow = ALLOW_READ;
    } else if (strcmp(path, "/metrics") == 0) {
        out->id = ROUTE_METRICS;
        out->allow = ALLOW_READ;
    } else if (strcmp(path, "/v1/stats") == 0) {
        out->id = ROUTE_STATS;
        out->allow = ALLOW_READ;
    } else if (strcmp(path, "/v1/version") == 0) {
        out->id = ROUTE_VERSION;
        out->allow = ALLOW_READ;
    } else if (strcmp(path, "/v1/ws") == 0) {
        out->id = ROUTE_WS;
        out->allow = ALLOW_UPGRADE;
    } else if (strcmp(path, "/v1/channels") == 0) {
        out->id = ROUTE_CHANNELS;
        out->allow = ALLOW_READ;
    } else if ((rest = skip(path, "/v1/channels/")) && segment(rest, "/messages", out)) {
        out->id = ROUTE_CHANNEL_MESSAGES;
        out->allow = ALLOW_READ_POST;
    } else if ((rest = skip(path, "/v1/messages/")) && segment(rest, "", out)) {
        out->id = ROUTE_MESSAGE;
        out->allow = ALLOW_READ;
    } else {
        return GW_E_NOT_FOUND;
    }
    return GW_OK;
}

/* A path close to one that exists, into hint (empty when none is). */
static void suggest(const char *path, char *hint, size_t cap)
{
    char try[256];
    size_t len = strlen(path);
    struct route r;

    hint[0] = '\0';
    if (len == 0 || len + sizeof("/messages") + 3 > sizeof(try))
        return;
    /* a trailing slash */
    if (len > 1 && path[len - 1] == '/') {
        snprintf(try, sizeof(try), "%.*s", (int)len - 1, path);
        if (match(try, &r) == GW_OK && r.id != ROUTE_INDEX) {
            snprintf(hint, cap, "%s", try);
            return;
        }
    }
    /* a channel without /messages */
    snprintf(try, sizeof(try), "%s%s", path, path[len - 1] == '/' ? "messages" : "/messages");
    if (match(try, &r) == GW_OK && r.id == ROUTE_CHANNEL_MESSAGES) {
        snprintf(hint, cap, "%s", try);
        return;
    }
    /* no /v1 */
    snprintf(try, sizeof(try), "/v1%s", path);
    if (match(try, &r) == GW_OK && r.id != ROUTE_INDEX)
        snprintf(hint, cap, "%s", try);
}

enum gw_err router_match(const char *method, const char *path, struct route *out,
                         char why[GW_ERRLEN])
{
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;

    if (match(path, out) != GW_OK) {
        char hint[256];
        suggest(path, hint, sizeof(hint));
        if (hint[0])
            snprintf(why, GW_ERRLEN, "no such path: %.100s (did you mean %.120s)", path, hint);
        else
            snprintf(why, GW_ERRLEN, "no such path: %.200s (GET / lists the endpoints)", path);
        return GW_E_NOT_FOUND;
    }
    if (get) {
        out->method = ROUTE_GET;
        return GW_OK;
    }
    if (post && out->id == ROUTE_CHANNEL_MESSAGES) {
        out->method = ROUTE_POST;
        return GW_OK;
    }
    snprintf(why, GW_ERRLEN, "%.16s is not allowed on %.180s (allowed: %s)", method, path,
             out->allow);
    return GW_E_METHOD;
}

/* Skips optional whitespace (OWS in RFC 9110). */
static const char *ows(const char *p)
{
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

bool router_is_json(const char *ct)
{
    static const char type[] = "application/json";
    const char *p;

    if (!ct)
        return false;
    p = ows(ct);
    if (strncasecmp(p, type, sizeof(type) - 1) != 0)
        return false;
    p = ows(p + sizeof(type) - 1);
    while (*p == ';') {
        const char *name = ows(p + 1), *end = strchr(name, ';');
        size_t plen = end ? (size_t)(end - name) : strlen(name);
        const char *eq = memchr(name, '=', plen);
        if (!eq)
            return false; /* a parameter is name=value, nothing else */
        const char *val = eq + 1;
        size_t vlen = plen - (size_t)(val - name);
        while (vlen && (val[vlen - 1] == ' ' || val[vlen - 1] == '\t'))
            vlen--;
        if (eq - name == 7 && strncasecmp(name, "charset", 7) == 0) {
            if (vlen >= 2 && val[0] == '"' && val[vlen - 1] == '"') {
                val++;
                vlen -= 2;
            }
            if (!(vlen == 5 && strncasecmp(val, "utf-8", 5) == 0))
                return false;
        }
        p = name + plen;
    }
    return *p == '\0';
}
