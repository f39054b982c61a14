/*
 * ws_proto.c - see ws_proto.h.
 */
#include "ws_proto.h"

#include "origin.h"
#include "text.h"

#include <nettle/base64.h>
#include <nettle/sha1.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 6455 1.3: the GUID appended to the client's key before hashing. */
static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

void ws_accept_key(const char *key, char out[WS_ACCEPT_LEN])
{
    struct sha1_ctx sha;
    uint8_t digest[SHA1_DIGEST_SIZE];

    sha1_init(&sha);
    sha1_update(&sha, strlen(key), (const uint8_t *)key);
    sha1_update(&sha, sizeof(ws_guid) - 1, (const uint8_t *)ws_guid);
    sha1_digest(&sha, sizeof(digest), digest);
    base64_encode_raw(out, sizeof(digest), digest);
    out[BASE64_ENCODE_RAW_LENGTH(SHA1_DIGEST_SIZE)] = '\0';
}

static bool is_b64(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

bool ws_key_valid(const char *key)
{
    if (!key || strlen(key) != 24 || strcmp(key + 22, "==") != 0)
        return false;
    for (int i = 0; i < 22; i++) {
        if (!is_b64(key[i]))
            return false;
    }
    /* The last character before the padding holds 2 bits of data: the rest must be zero. */
    return strchr("AQgw", key[21]) != NULL;
}

static bool ows(char c)
{
    return c == ' ' || c == '\t';
}

/* Whether value, a comma-separated list, holds token; case folded or exact. */
static bool list_has(const char *value, const char *token, bool fold)
{
    size_t tlen = strlen(token);

    if (!value)
        return false;
    for (const char *p = value; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p, *e = p + len;
        while (s < e && ows(*s))
            s++;
        while (e > s && ows(e[-1]))
            e--;
        if ((size_t)(e - s) == tlen &&
            (fold ? strncasecmp(s, token, tlen) : strncmp(s, token, tlen)) == 0)
            return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

bool ws_header_has_token(const char *value, const char *token)
{
    return list_has(value, token, true);
}

enum gw_err ws_handshake_judge(const struct ws_request *rq, const char *origins,
                               struct ws_verdict *v, char why[GW_ERRLEN])
{
    const char *endpoint = rq->endpoint ? rq->endpoint : "/v1/ws";
    const char *doc = rq->doc ? rq->doc : "docs/websocket.md";

    memset(v, 0, sizeof(*v));
    if (!rq->get) {
        snprintf(why, GW_ERRLEN, "a WebSocket opens with GET %s (%s)", endpoint, doc);
        return GW_E_METHOD;
    }
    if (!ws_header_has_token(rq->upgrade, "websocket") ||
        !ws_header_has_token(rq->connection, "upgrade")) {
        snprintf(why, GW_ERRLEN,
                 "%s is a WebSocket endpoint: open it with a WebSocket client (headers "
                 "Upgrade: websocket, Connection: Upgrade, Sec-WebSocket-Version: 13, "
                 "Sec-WebSocket-Key), see %s",
                 endpoint, doc);
        return GW_E_UPGRADE_REQUIRED;
    }
    if (!rq->http11) {
        snprintf(why, GW_ERRLEN, "a WebSocket upgrade needs HTTP/1.1");
        return GW_E_UPGRADE_REQUIRED;
    }
    if (!rq->version || strcmp(rq->version, "13") != 0) {
        snprintf(why, GW_ERRLEN, "Sec-WebSocket-Version must be 13 (RFC 6455), got '%.40s'",
                 rq->version ? rq->version : "(none)");
        v->version_hint = true;
        return GW_E_UPGRADE_REQUIRED;
    }
    if (!ws_key_valid(rq->key)) {
        snprintf(why, GW_ERRLEN,
                 "Sec-WebSocket-Key must be 16 random bytes in base64 (24 characters), got "
                 "'%.40s'",
                 rq->key ? rq->key : "(none)");
        return GW_E_PARAM;
    }
    if (rq->origin && !origin_allowed(rq->origin, rq->host, origins)) {
        if (*origins)
            snprintf(why, GW_ERRLEN,
                     "Origin '%.80s' may not open a WebSocket here: it is not in --ws-origins "
                     "(VISAVIS_WS_ORIGINS)",
                     rq->origin);
        else
            snprintf(why, GW_ERRLEN,
                     "Origin '%.60s' may not open a WebSocket here: only pages of this host "
                     "(%.60s) may, unless --ws-origins (VISAVIS_WS_ORIGINS) lists it",
                     rq->origin, rq->host ? rq->host : "no Host header");
        return GW_E_ORIGIN;
    }
    ws_accept_key(rq->key, v->accept);
    /*
     * Exactly as offered: the answer must be one of the client's values
     * (RFC 6455 4.2.2), and a browser fails a connection answered
     * "visavis.v1" to its "VISAVIS.V1". Another spelling is another
     * protocol, served without one.
     */
    v->protocol = list_has(rq->protocol, WS_SUBPROTOCOL, false) ? WS_SUBPROTOCOL : NULL;
    return GW_OK;
}

unsigned ws_close_code(enum gw_err err)
{
    switch (err) {
    case GW_OK:
        return WS_CLOSE_NORMAL;
    case GW_E_SHUTDOWN:
        return WS_CLOSE_GOING_AWAY;
    case GW_E_UTF8:
        return WS_CLOSE_INVALID_DATA;
    case GW_E_MEDIA_TYPE:
        return WS_CLOSE_UNSUPPORTED;
    case GW_E_LINE_TOO_LONG:
    case GW_E_TOO_LARGE:
        return WS_CLOSE_TOO_BIG;
    case GW_E_SLOW_CONSUMER:
        return WS_CLOSE_SLOW_CONSUMER;
    case GW_E_TOO_MANY_SESSIONS:
    case GW_E_BUSY:
        return WS_CLOSE_TRY_AGAIN;
    case GW_E_JSON:
    case GW_E_NOT_OBJECT:
    case GW_E_MISSING_FIELD:
    case GW_E_FIELD:
    case GW_E_PARAM:
    case GW_E_CHANNEL:
    case GW_E_NOT_FOUND:
    case GW_E_METHOD:
    case GW_E_UNKNOWN_COMMAND:
    case GW_E_MISSING_ARGUMENT:
    case GW_E_CURSOR:
    case GW_E_NOT_SUBSCRIBED:
    case GW_E_TOO_MANY_SUBS:
    case GW_E_TOO_MANY_ERRORS:
    case GW_E_IDLE:
    case GW_E_UPGRADE_REQUIRED:
    case GW_E_ORIGIN:
    case GW_E_HOST:
    case GW_E_HEAD_TOO_LARGE:
        return WS_CLOSE_POLICY;
    case GW_E_STORE:
    case GW_E_STORE_BUSY:
    case GW_E_STORE_UNAVAILABLE:
    case GW_E_STORE_FULL:
    case GW_E_STORE_IN_USE:
    case GW_E_SCHEMA:
    case GW_E_CONFIG:
    case GW_E__COUNT:
        break;
    }
    return WS_CLOSE_SERVER_ERROR;
}

/* The longest prefix of (s, len) of whole UTF-8 characters that fits in cap bytes. */
static size_t utf8_fit(const char *s, size_t len, size_t cap)
{
    size_t n = 0;

    while (n < len) {
        size_t k = text_utf8_seq(s + n, len - n);
        if (!k || n + k > cap)
            break;
        n += k;
    }
    return n;
}

/* Appends (s, len) to out at *n if it fits in cap; false otherwise. */
static bool put(char *out, size_t *n, size_t cap, const char *s, size_t len)
{
    if (*n + len > cap)
        return false;
    memcpy(out + *n, s, len);
    *n += len;
    return true;
}

/*
 * "slow consumer; last_seq {"a":1,"b":2}" from the farewell's last_seq
 * object, whose keys are channel names ([A-Za-z0-9._-]) and values
 * integers: it is copied entry by entry, as many as fit.
 */
static size_t slow_reason(const char *line, size_t len, char *out)
{
    static const char key[] = "\"last_seq\":{", head[] = "slow consumer; last_seq {",
                      more[] = ", ...}";
    size_t n = 0;
    const char *p = line ? memmem(line, len, key, sizeof(key) - 1) : NULL;

    if (!p) {
        /*
         * The farewell never went out (the peer read nothing for the linger
         * time): the seqs it named were not all delivered, so none is claimed.
         */
        static const char unsent[] = "slow consumer; resume after the last message received";
        put(out, &n, WS_REASON_MAX, unsent, sizeof(unsent) - 1);
        return n;
    }
    put(out, &n, WS_REASON_MAX, head, sizeof(head) - 1);
    p += sizeof(key) - 1;
    const char *end = memchr(p, '}', len - (size_t)(p - line));
    if (!end)
        end = line + len;
    for (bool first = true; p < end; first = false) {
        const char *comma = memchr(p, ',', (size_t)(end - p));
        const char *stop = comma ? comma : end;
        size_t at = n;
        /* Room for this entry, and for what closes it: ", ...}" should the next one not fit. */
        size_t tail = comma ? sizeof(more) - 1 : 1;
        if (!(first || put(out, &n, WS_REASON_MAX, ",", 1)) ||
            !put(out, &n, WS_REASON_MAX, p, (size_t)(stop - p)) || n + tail > WS_REASON_MAX) {
            n = at;
            put(out, &n, WS_REASON_MAX, more, sizeof(more) - 1);
            return n;
        }
        p = comma ? comma + 1 : end;
    }
    put(out, &n, WS_REASON_MAX, "}", 1);
    return n;
}

size_t ws_close_reason(enum gw_err err, const char *detail, const char *farewell, size_t flen,
                       char out[WS_REASON_MAX + 1])
{
    char text[GW_ERRLEN + 64];
    size_t n;

    if (err == GW_E_SLOW_CONSUMER) {
        n = slow_reason(farewell, flen, out);
        out[n] = '\0';
        return n;
    }
    if (err == GW_OK)
        snprintf(text, sizeof(text), "%s", detail ? detail : "");
    else if (detail && *detail)
        snprintf(text, sizeof(text), "%s: %s", gw_err_code(err), detail);
    else
        snprintf(text, sizeof(text), "%s", gw_err_code(err));
    n = utf8_fit(text, strlen(text), WS_REASON_MAX);
    memcpy(out, text, n);
    out[n] = '\0';
    return n;
}
