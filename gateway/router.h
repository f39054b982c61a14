/*
 * router.h - the REST route table and request classification, as pure
 * functions over method, path and header strings.
 *
 * Kept apart from front_http so it can be tested without a socket or
 * libmicrohttpd. Depends on gw.h only.
 */
#ifndef GW_ROUTER_H
#define GW_ROUTER_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

enum route_id {
    ROUTE_INDEX,            /* / and /v1: what there is */
    ROUTE_HEALTH,           /* /healthz */
    ROUTE_VERSION,          /* /v1/version */
    ROUTE_CHANNELS,         /* /v1/channels */
    ROUTE_CHANNEL_MESSAGES, /* /v1/channels/{channel}/messages */
    ROUTE_MESSAGE,          /* /v1/messages/{id} */
    ROUTE_METRICS,          /* /metrics */
    ROUTE_STATS,            /* /v1/stats */
    ROUTE_CHANNEL_EVENTS,   /* /v1/channels/{channel}/events: Server-Sent Events */
    ROUTE_WS,               /* /v1/ws: the WebSocket upgrade */
    ROUTE_SIO               /* /socket.io/: Engine.IO polling and its WebSocket (Socket.IO) */
};

enum route_method {
    ROUTE_GET, /* HEAD is routed as GET: the HTTP library drops the body */
    ROUTE_POST
};

struct route {
    enum route_id id;
    enum route_method method;
    const char *arg; /* the {channel} or {id} segment, borrowed from path */
    size_t arg_len;
    const char *allow; /* the methods the path takes, for Allow on a 405 */
};

/*
 * Matches method and path. GW_OK fills *out. GW_E_NOT_FOUND: no such path
 * (why suggests the path that was likely meant: a trailing slash, a missing
 * /messages or /v1). GW_E_METHOD: the path exists (out->allow says for
 * what). why says which.
 */
enum gw_err router_match(const char *method, const char *path, struct route *out,
                         char why[GW_ERRLEN]);

/*
 * The path of a request target: target itself in origin form ("/v1/..."),
 * or what follows the authority of the absolute form RFC 9112 3.2.2 says a
 * server must accept ("http://host:port/v1/...", the scheme in any case),
 * "/" when the authority is all there is. Pure.
 */
const char *router_origin_form(const char *target);

/* One endpoint of the API, for the index at / (the same table the router matches). */
struct router_endpoint {
    const char *method;
    const char *path;
    const char *what;
};

/* The endpoints, in the order the index lists them; *n is set. */
const struct router_endpoint *router_endpoints(size_t *n);

/* True for "application/json", any case, with optional parameters, charset utf-8 if given. */
bool router_is_json(const char *content_type);

/* True for "text/plain" under the same rules. */
bool router_is_text(const char *content_type);

/* True when content_type's type is type (any case), whatever its parameters say. */
bool router_type_is(const char *content_type, const char *type);

/*
 * Whether an Accept header asks for the page rather than the JSON index:
 * text/html named (or "text/" + "*") with a quality above the one
 * application/json gets (named, through "application/" + "*", or through the
 * catch-all). A browser's Accept does; curl's (the catch-all alone), a
 * program's (application/json) and none at all do not, nor a tie.
 */
bool router_prefers_html(const char *accept);

#endif
