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
#define ALLOW_SIO       "GET, POST"

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
    {"GET", "/v1/channels/{channel}/events?since=N",
     "Server-Sent Events: every message after seq N (or Last-Event-ID), then live"},
    {"GET", "/v1/messages/{id}", "one message"},
    {"GET", "/v1/channels?after=NAME&limit=N",
     "the channels by name with their last seq, a page at a time: go on from next_after"},
    {"GET", "/healthz", "liveness"},
    {"GET", "/v1/version", "version and schema"},
    {"GET", "/metrics", "Prometheus metrics"},
    {"GET", "/v1/stats", "the metrics as JSON"},
    {"GET", "/v1/ws", "WebSocket: the session protocol, one command per text message"},
    {"GET", "/socket.io/",
     "Socket.IO (Engine.IO 4: polling and WebSocket): emit sub, pub, unsub, hist; on message"},
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
    } else if (strcmp(path, "/socket.io/") == 0 || strcmp(path, "/socket.io") == 0) {
        out->id = ROUTE_SIO;
        out->allow = ALLOW_SIO;
    } else if (strcmp(path, "/v1/channels") == 0) {
        out->id = ROUTE_CHANNELS;
        out->allow = ALLOW_READ;
    } else if ((rest = skip(path, "/v1/channels/")) && segment(rest, "/messages", out)) {
        out->id = ROUTE_CHANNEL_MESSAGES;
        out->allow = ALLOW_READ_POST;
    } else if ((rest = skip(path, "/v1/channels/")) && segment(rest, "/events", out)) {
        out->id = ROUTE_CHANNEL_EVENTS;
        out->allow = ALLOW_READ;
    } else if ((rest = skip(path, "/v1/messages/")) && segment(rest, "", out)) {
        out->id = ROUTE_MESSAGE;
        out->allow = ALLOW_READ;
    } else {
        return GW_E_NOT_FOUND;
    }
    return GW_OK;
}

/*
 * The words of the paths, as written in them: a segment that is one of
 * them in another case, or without its plural s, is taken for it. The
 * segment after "channels" or "messages" is a channel name or an id, whose
 * case counts, and is left as it is.
 */
static const struct {
    const char *word;
    bool plural; /* "channel" is taken for it too */
} path_words[] = {
    {"v1", false},    {"channels", true},   {"messages", true}, {"events", true},
    {"ws", false},    {"healthz", false},   {"metrics", false}, {"version", false},
    {"stats", false}, {"socket.io", false},
};

/* The path_words entry seg (len bytes) is a form of; NULL if none. */
static const char *path_word(const char *seg, size_t len)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(path_words); i++) {
        size_t w = strlen(path_words[i].word);
        if ((len == w || (path_words[i].plural && len == w - 1)) &&
            strncasecmp(seg, path_words[i].word, len) == 0)
            return path_words[i].word;
    }
    return NULL;
}

/* path with its path_words in another form written as they are; false if none was. */
static bool path_words_mended(const char *path, char *out, size_t cap)
{
    const char *prev = NULL;
    size_t o = 0;
    bool mended = false;

    for (const char *p = path; *p == '/';) {
        size_t len = strcspn(p + 1, "/");
        bool arg = prev && (strcmp(prev, "channels") == 0 || strcmp(prev, "messages") == 0);
        const char *word = arg ? NULL : path_word(p + 1, len);
        int n;

        if (word && (len != strlen(word) || strncmp(p + 1, word, len) != 0))
            mended = true;
        n = word ? snprintf(out + o, cap - o, "/%s", word)
                 : snprintf(out + o, cap - o, "/%.*s", (int)len, p + 1);
        if (n < 0 || (size_t)n >= cap - o)
            return false;
        o += (size_t)n;
        prev = word;
        p += len + 1;
    }
    return mended;
}

/* A path one slip away from one that exists, into hint (empty when none is). */
static void suggest_near(const char *path, char *hint, size_t cap)
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

/* A path close to one that exists, into hint (empty when none is). */
static void suggest(const char *path, char *hint, size_t cap)
{
    char mended[256];
    struct route r;

    suggest_near(path, hint, cap);
    if (hint[0] || path[0] != '/' || !path_words_mended(path, mended, sizeof(mended)))
        return;
    /* /V1/Channels/x/Message: the words in their case and number, and maybe one slip more */
    if (match(mended, &r) == GW_OK)
        snprintf(hint, cap, "%s", mended);
    else
        suggest_near(mended, hint, cap);
}

const char *router_origin_form(const char *target)
{
    const char *p;

    if (strncasecmp(target, "http://", 7) == 0)
        p = target + 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        p = target + 8;
    else
        return target;
    p += strcspn(p, "/?#");
    return *p == '/' ? p : "/";
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
    if (post && (out->id == ROUTE_CHANNEL_MESSAGES || out->id == ROUTE_SIO)) {
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

/* What follows ct's type (blanks skipped) when that type is type, any case; else NULL. */
static const char *after_type(const char *ct, const char *type)
{
    size_t tlen = strlen(type);

    if (!ct)
        return NULL;
    ct = ows(ct);
    return strncasecmp(ct, type, tlen) == 0 ? ows(ct + tlen) : NULL;
}

/* ct is type, any case, with optional parameters, charset utf-8 if given. */
static bool media_is(const char *ct, const char *type)
{
    const char *p = after_type(ct, type);

    if (!p)
        return false;
    while (*p == ';') {
        const char *name = ows(p + 1), *end = strchr(name, ';');
        size_t plen = end ? (size_t)(end - name) : strlen(name);
        if (!plen) {
            p = name; /* an empty parameter: "text/plain;" is text/plain (RFC 9110 5.6.6) */
            continue;
        }
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

bool router_is_json(const char *ct)
{
    return media_is(ct, "application/json");
}

bool router_is_text(const char *ct)
{
    return media_is(ct, "text/plain");
}

bool router_type_is(const char *ct, const char *type)
{
    const char *p = after_type(ct, type);

    return p && (*p == ';' || *p == '\0');
}

/*
 * The quality of one media range ("type/sub;q=0.5"), from its parameters:
 * 1 without q, -1 when q is not a number from 0 to 1.
 */
static double range_quality(const char *params, size_t len)
{
    const char *p = params, *end = params + len;

    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        const char *stop = semi ? semi : end;
        const char *name = ows(p);
        if (stop - name >= 2 && (name[0] == 'q' || name[0] == 'Q') && name[1] == '=') {
            char num[8];
            size_t n = (size_t)(stop - name - 2);
            while (n && (name[2 + n - 1] == ' ' || name[2 + n - 1] == '\t'))
                n--;
            if (n == 0 || n >= sizeof(num))
                return -1;
            memcpy(num, name + 2, n);
            num[n] = '\0';
            /* RFC 9110 qvalue: 0, 1 or 0.d{1,3}, 1.0{0,3}. */
            if (!(num[0] == '0' || num[0] == '1') || (n > 1 && num[1] != '.'))
                return -1;
            double q = num[0] - '0', scale = 0.1;
            for (size_t i = 2; i < n; i++, scale /= 10) {
                if (num[i] < '0' || num[i] > '9' || i > 4)
                    return -1;
                q += (num[i] - '0') * scale;
            }
            return q > 1 ? -1 : q;
        }
        p = stop + 1;
    }
    return 1;
}

/*
 * How specifically range (len bytes) matches type/sub: 3 exactly, 2 as all
 * of type, 1 as the catch-all, 0 not at all.
 */
static int range_match(const char *range, size_t len, const char *type, const char *sub)
{
    size_t tl = strlen(type), sl = strlen(sub);

    if (len == 3 && memcmp(range, "*/*", 3) == 0)
        return 1;
    if (len < tl + 2 || strncasecmp(range, type, tl) != 0 || range[tl] != '/')
        return 0;
    if (len == tl + 2 && range[tl + 1] == '*')
        return 2;
    return len == tl + 1 + sl && strncasecmp(range + tl + 1, sub, sl) == 0 ? 3 : 0;
}

/*
 * The quality Accept gives type/sub: that of its most specific matching
 * range, 0 if none; *level says how it matched (range_match).
 */
static double accept_quality(const char *accept, const char *type, const char *sub, int *level)
{
    const char *p = accept;
    double q = 0;

    *level = 0;
    while (*p) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        const char *range = ows(p), *end = p + len;
        const char *semi = range < end ? memchr(range, ';', (size_t)(end - range)) : NULL;
        const char *rend = semi ? semi : end;
        while (rend > range && (rend[-1] == ' ' || rend[-1] == '\t'))
            rend--;
        int m = rend > range ? range_match(range, (size_t)(rend - range), type, sub) : 0;
        if (m > *level) {
            double rq = semi ? range_quality(semi + 1, (size_t)(end - semi - 1)) : 1;
            if (rq >= 0) {
                *level = m;
                q = rq;
            }
        }
        if (!comma)
            break;
        p = comma + 1;
    }
    return q;
}

bool router_prefers_html(const char *accept)
{
    int html_level, json_level;

    if (!accept)
        return false;
    double html = accept_quality(accept, "text", "html", &html_level);
    double json = accept_quality(accept, "application", "json", &json_level);
    /* text/html, or all of text, named: a catch-all alone is not a browser asking for a page. */
    return html_level >= 2 && html > 0 && html > json;
}
