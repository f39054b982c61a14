/*
 * ws_proto.h - the rules of RFC 6455 that the WebSocket upgrade and the
 * WebSocket front share, as pure functions: the handshake's verdict (with
 * the Sec-WebSocket-Accept key and the subprotocol), the Origin check, and
 * the close code and reason that end a session for an enum gw_err.
 *
 * Kept apart from front_http and front_ws so they can be tested without a
 * socket. Depends on gw.h, text.h and nettle (SHA-1, base64).
 */
#ifndef GW_WS_PROTO_H
#define GW_WS_PROTO_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

/* The subprotocol of docs/websocket.md: the session protocol, one command per text message. */
#define WS_SUBPROTOCOL "visavis.v1"

/*
 * Control frames (pongs, mostly) waiting to be sent past which a WebSocket
 * front reads nothing more from the peer: one that pings without reading
 * would otherwise have wslay queue a pong for every ping, without limit.
 * Reading resumes once they are out. Each frame counts for its payload and
 * WS_CONTROL_FRAME_COST: wslay's record of it and the allocator's share,
 * which an empty ping costs as much as any (counted by payload alone, a
 * flood of them grew the gateway by half a gigabyte a second).
 */
#define WS_CONTROL_BACKLOG    16384
#define WS_CONTROL_FRAME_COST 128

/* What frames queued in wslay, count of them with len bytes of payload, weigh for
 * WS_CONTROL_BACKLOG. */
static inline size_t ws_control_weight(size_t len, size_t count)
{
    return len + count * WS_CONTROL_FRAME_COST;
}

/* Close codes (RFC 6455 7.4.1; 1013 from the IANA registry; 4001 is ours). */
#define WS_CLOSE_NORMAL        1000
#define WS_CLOSE_GOING_AWAY    1001 /* the gateway is stopping */
#define WS_CLOSE_PROTOCOL      1002
#define WS_CLOSE_UNSUPPORTED   1003 /* a binary message */
#define WS_CLOSE_INVALID_DATA  1007 /* a text message that is not UTF-8 */
#define WS_CLOSE_POLICY        1008 /* idle, too many errors */
#define WS_CLOSE_TOO_BIG       1009 /* a message over --max-line */
#define WS_CLOSE_SERVER_ERROR  1011
#define WS_CLOSE_TRY_AGAIN     1013 /* --max-ws-sessions are open */
#define WS_CLOSE_SLOW_CONSUMER 4001 /* the reason names the last seq sent per channel */

/* Bytes of a close frame's reason at most (125 bytes of payload less the code). */
#define WS_REASON_MAX 123

/* The length of "Sec-WebSocket-Accept" values: base64 of a SHA-1, and its NUL. */
#define WS_ACCEPT_LEN 29

/* The request's headers the handshake reads; NULL for a header that is absent. */
struct ws_request {
    bool get;    /* the method is GET (not HEAD, not anything else) */
    bool http11; /* HTTP/1.1 or later */
    const char *upgrade, *connection, *version, *key, *protocol, *origin, *host;
    /* What the errors name: the endpoint and its page (NULL: /v1/ws, docs/websocket.md). */
    const char *endpoint, *doc;
};

/* What the handshake decided. */
struct ws_verdict {
    char accept[WS_ACCEPT_LEN]; /* GW_OK: the Sec-WebSocket-Accept value */
    const char *protocol;       /* GW_OK: WS_SUBPROTOCOL when offered, else NULL */
    bool version_hint;          /* an error: send Sec-WebSocket-Version: 13 with it */
};

/*
 * Judges an upgrade request against origins (the --ws-origins setting,
 * see origin_allowed). GW_OK fills *v. Otherwise the error and why:
 * GW_E_METHOD (not GET), GW_E_UPGRADE_REQUIRED (no Upgrade: websocket or
 * Connection: Upgrade, HTTP/1.0, a version other than 13:
 * v->version_hint), GW_E_PARAM (no usable Sec-WebSocket-Key),
 * GW_E_ORIGIN (an Origin that is not allowed).
 */
enum gw_err ws_handshake_judge(const struct ws_request *rq, const char *origins,
                               struct ws_verdict *v, char why[GW_ERRLEN]);

/* The Sec-WebSocket-Accept value for key (as sent, NUL-terminated) into out. */
void ws_accept_key(const char *key, char out[WS_ACCEPT_LEN]);

/* Whether key is 16 bytes in base64: 22 characters of the alphabet and "==". */
bool ws_key_valid(const char *key);

/* Whether the comma-separated header value lists token (any case, spaces around it). */
bool ws_header_has_token(const char *value, const char *token);

/* The close code that ends a session for err (the session tier's reason to close). */
unsigned ws_close_code(enum gw_err err);

/*
 * The close frame's reason, at most WS_REASON_MAX bytes of whole UTF-8
 * characters, into out; returns its length. GW_OK: detail as it is (the
 * tier's "closed by the server", "end of input"). GW_E_SLOW_CONSUMER with
 * the farewell line (the session's last, {"type":"error",
 * "code":"slow_consumer",...,"last_seq":{...}}): "slow consumer; last_seq
 * {...}" with as many channels as fit (", ..." when some do not: the
 * farewell, sent as the last text message, has them all). Any other error:
 * its code (gw_err_code), then ": " and detail when there is one. Cut to
 * fit either way.
 */
size_t ws_close_reason(enum gw_err err, const char *detail, const char *farewell, size_t flen,
                       char out[WS_REASON_MAX + 1]);

#endif
