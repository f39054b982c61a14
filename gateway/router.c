/*
 * router.c - see router.h.
 */
#include "router.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#define ALLOW_READ      "GET, HEAD"
#define ALLOW_READ_POST "GET, HEAD, POST"

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

enum gw_err router_match(const char *method, const char *path, struct route *out,
                         char why[GW_ERRLEN])
{
    const char *rest;
    bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
    bool post = strcmp(method, "POST") == 0;

    memset(out, 0, sizeof(*out));
    if (strcmp(path, "/healthz") == 0) {
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
        snprintf(why, GW_ERRLEN, "no such path: %.200s", path);
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
