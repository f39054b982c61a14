/*
 * http_edge.c - see http_edge.h.
 *
 * The framing rules refuse rather than repair: a message whose length two
 * parties could read differently (RFC 9112 section 6.3: Transfer-Encoding
 * with Content-Length, or conflicting lengths) is the shape of request
 * smuggling, and no client the gateway serves needs one. RFC 9112 would let
 * a recipient accept repeated identical Content-Length values; refusing
 * them as well keeps one rule and matches libmicrohttpd, which already
 * refuses the list form "5, 5".
 */
#include "http_edge.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

/* RFC 9110 5.6.2: tchar. */
static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              (c && strchr("!#$%&'*+-.^_`|~", c))))
            return false;
    }
    return true;
}

/*
 * The fields the gateway reads. libmicrohttpd 0.9.75 joins a folded line
 * (obs-fold) to the field's name, not its value ("Content-Type: a/" then
 * "<TAB>json" is a field "Content-Typejson"): a name that begins as one of
 * these and goes on is such a fold, or a name made to look like one. The
 * framing fields allow nothing after; the others a '-' (Accept-Encoding,
 * Upgrade-Insecure-Requests are fields of their own).
 */
static const char *const framing_fields[] = {"Content-Length", "Transfer-Encoding", "Host"};
static const char *const read_fields[] = {
    "Content-Type",
    "Connection",
    "Upgrade",
    "Expect",
    "Origin",
    "Accept",
    "Last-Event-ID",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
    "Sec-WebSocket-Protocol",
};

/*
 * Fields a request may hold once (RFC 6455 11.3.1, 11.3.5; RFC 6454 7;
 * WHATWG HTML 9.2 for Last-Event-ID): libmicrohttpd hands the first of
 * two, and a proxy in front may have read the other, so which one counts
 * is ambiguous and neither does, as with a query parameter given twice.
 */
static const char *const once_fields[] = {
    "Origin",
    "Last-Event-ID",
    "Sec-WebSocket-Key",
    "Sec-WebSocket-Version",
};

static bool goes_on(const char *name, const char *const *fields, size_t n, bool dash_ok)
{
    for (size_t i = 0; i < n; i++) {
        size_t len = strlen(fields[i]);
        if (strncasecmp(name, fields[i], len) == 0 && name[len] && !(dash_ok && name[len] == '-'))
            return true;
    }
    return false;
}

static bool looks_like_a_read_field(const char *name)
{
    return goes_on(name, framing_fields, sizeof(framing_fields) / sizeof(framing_fields[0]),
                   false) ||
           goes_on(name, read_fields, sizeof(read_fields) / sizeof(read_fields[0]), true);
}

void http_framing_add(struct http_framing *f, const char *name, const char *value)
{
    if (!f->cr_name && (strchr(name, '\r') || strchr(value, '\r')))
        f->cr_name = name;
    if (!f->odd_name && (!is_token(name) || looks_like_a_read_field(name)))
        f->odd_name = name;
    if (strcasecmp(name, "Host") == 0)
        f->hosts++;
    if (strcasecmp(name, "Content-Type") == 0)
        f->content_types++;
    for (unsigned i = 0; i < sizeof(once_fields) / sizeof(once_fields[0]); i++) {
        if (strcasecmp(name, once_fields[i]) == 0) {
            if ((f->once_seen & 1u << i) && !f->repeated)
                f->repeated = once_fields[i];
            f->once_seen |= 1u << i;
        }
    }
    if (strcasecmp(name, "Content-Length") == 0) {
        if (f->content_lengths++ == 0)
            f->content_length = value;
    } else if (strcasecmp(name, "Transfer-Encoding") == 0) {
        if (f->transfer_encodings++ == 0)
            f->transfer_encoding = value;
    }
}

/* Parses a run of decimal digits; false when it is empty, has another byte, or passes max. */
static bool parse_decimal(const char *s, uint64_t max, uint64_t *out, bool *overflow)
{
    uint64_t v = 0;

    *overflow = false;
    if (!*s)
        return false;
    for (; *s; s++) {
        if (*s < '0' || *s > '9')
            return false;
        unsigned d = (unsigned)(*s - '0');
        if (*overflow)
            continue; /* still must be all digits */
        if (v > (max - d) / 10)
            *overflow = true;
        else
            v = v * 10 + d;
    }
    *out = v;
    return true;
}

enum gw_err http_framing_judge(const struct http_framing *f, bool http10, uint64_t *length,
                               bool *chunked, char why[GW_ERRLEN])
{
    *length = 0;
    *chunked = false;
    if (f->cr_name) {
        snprintf(why, GW_ERRLEN,
                 "the header field '%.*s' holds a bare CR: a line ends with CRLF (RFC 9112 2.2), "
                 "and a proxy could read what follows the CR as a field of its own",
                 (int)strcspn(f->cr_name, "\r") < 40 ? (int)strcspn(f->cr_name, "\r") : 40,
                 f->cr_name);
        return GW_E_PARAM;
    }
    if (f->odd_name) {
        snprintf(why, GW_ERRLEN,
                 "a header field named '%.40s' (blanks before its colon, a line folded onto it, or "
                 "a character a name cannot have): its request's length could be read two ways",
                 f->odd_name);
        return GW_E_PARAM;
    }
    if (f->content_types > 1) {
        /* libmicrohttpd hands the first; a proxy may read the last: text to one, JSON to the other.
         */
        snprintf(why, GW_ERRLEN,
                 "%u Content-Type fields: a body has one type (RFC 9110 8.3), or how it is read "
                 "is ambiguous",
                 f->content_types);
        return GW_E_PARAM;
    }
    if (f->repeated) {
        snprintf(why, GW_ERRLEN,
                 "two %s fields: a request has one, or which one counts is ambiguous", f->repeated);
        return GW_E_PARAM;
    }
    if (f->transfer_encodings) {
        if (http10) {
            snprintf(why, GW_ERRLEN,
                     "Transfer-Encoding is not allowed in an HTTP/1.0 request: send "
                     "Content-Length");
            return GW_E_PARAM;
        }
        if (f->transfer_encodings > 1 || strcasecmp(f->transfer_encoding, "chunked") != 0) {
            snprintf(why, GW_ERRLEN,
                     "Transfer-Encoding '%.60s' is not supported: the body must be sent as is "
                     "with Content-Length, or as one 'chunked'",
                     f->transfer_encodings > 1 ? "(several fields)" : f->transfer_encoding);
            return GW_E_PARAM;
        }
        if (f->content_lengths) {
            snprintf(why, GW_ERRLEN,
                     "a request cannot have both Transfer-Encoding and Content-Length: its "
                     "length would be ambiguous");
            return GW_E_PARAM;
        }
        *chunked = true;
        return GW_OK;
    }
    if (f->content_lengths == 0)
        return GW_OK;
    if (f->content_lengths > 1) {
        snprintf(why, GW_ERRLEN, "%u Content-Length fields: a request may have only one",
                 f->content_lengths);
        return GW_E_PARAM;
    }
    bool overflow;
    if (!parse_decimal(f->content_length, INT64_MAX, length, &overflow)) {
        snprintf(why, GW_ERRLEN, "Content-Length '%.40s' is not a decimal number",
                 f->content_length);
        *length = 0;
        return GW_E_PARAM;
    }
    if (overflow) {
        snprintf(why, GW_ERRLEN, "Content-Length %.30s%s is larger than any body the gateway takes",
                 f->content_length, strlen(f->content_length) > 30 ? "..." : "");
        *length = 0;
        return GW_E_TOO_LARGE;
    }
    return GW_OK;
}

enum gw_err http_host_judge(const struct http_framing *f, bool http10, char why[GW_ERRLEN])
{
    if (f->hosts > 1) {
        snprintf(why, GW_ERRLEN,
                 "%u Host fields: a request names its host once (RFC 9112 3.2), or which one it "
                 "is for is ambiguous",
                 f->hosts);
        return GW_E_PARAM;
    }
    if (!f->hosts && !http10) {
        snprintf(why, GW_ERRLEN,
                 "an HTTP/1.1 request needs a Host field (RFC 9112 3.2): send Host: <host>:<port>");
        return GW_E_PARAM;
    }
    return GW_OK;
}

uint64_t http_body_deadline_ms(uint64_t bytes, unsigned floor_s, unsigned rate)
{
    uint64_t floor_ms = (uint64_t)floor_s * 1000;

    if (bytes / rate > (UINT64_MAX - 1000) / 1000)
        return UINT64_MAX;
    uint64_t at_rate_ms = bytes / rate * 1000 + (bytes % rate) * 1000 / rate;

    return at_rate_ms > floor_ms ? at_rate_ms : floor_ms;
}

void http_edge_response(struct buf *out, unsigned status, const char *reason, const char *extra,
                        const char *body, size_t len, time_t now)
{
    struct tm tm;
    char date[64];

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    buf_appendf(out,
                "HTTP/1.1 %u %s\r\nDate: %s\r\nContent-Type: application/json\r\n"
                "Content-Length: %zu\r\nConnection: close\r\n%s%s\r\n",
                status, reason, date, len + 1, extra ? extra : "", extra ? "\r\n" : "");
    buf_append(out, body, len);
    buf_append(out, "\n", 1);
}
