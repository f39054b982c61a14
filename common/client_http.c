/*
 * client_http.c - HTTP/1.1 requests and responses; see client_http.h.
 *
 * The parser starts over from the first byte at each call: responses here
 * are one read or a few, and a stateless parser cannot get out of step
 * with the buffer it is given. It is strict where a mistake would change
 * the framing (Content-Length, chunk sizes) and lenient elsewhere (bare
 * LF line ends, unknown headers).
 */
#include "client_http.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

void client_http_post(struct buf *out, const char *host, const char *path, const char *body,
                      size_t len, bool close)
{
    char head[512];
    int n = snprintf(head, sizeof(head),
                     "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n%s\r\n",
                     path, host, len, close ? "Connection: close\r\n" : "");

    GW_ASSERT(n > 0 && (size_t)n < sizeof(head));
    buf_append(out, head, (size_t)n);
    buf_append(out, body, len);
}

void client_http_get(struct buf *out, const char *host, const char *target)
{
    char head[512];
    int n = snprintf(head, sizeof(head), "GET %s HTTP/1.1\r\nHost: %s\r\n\r\n", target, host);

    GW_ASSERT(n > 0 && (size_t)n < sizeof(head));
    buf_append(out, head, (size_t)n);
}

/* The end of the line starting at p (its CR or LF), or NULL when there is none before end. */
static const char *line_end(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));

    if (!nl)
        return NULL;
    *next = nl + 1;
    return nl > p && nl[-1] == '\r' ? nl - 1 : nl;
}

/* Case-insensitive: does (p, n), a comma-separated list, hold token? */
static bool has_token(const char *p, size_t n, const char *token)
{
    size_t tl = strlen(token), i = 0;

    while (i < n) {
        size_t s, e;
        while (i < n && (p[i] == ' ' || p[i] == '\t' || p[i] == ','))
            i++;
        s = i;
        while (i < n && p[i] != ',')
            i++;
        e = i;
        while (e > s && (p[e - 1] == ' ' || p[e - 1] == '\t'))
            e--;
        if (e - s == tl && strncasecmp(p + s, token, tl) == 0)
            return true;
    }
    return false;
}

/* The last coding of a Transfer-Encoding value is chunked. */
static bool last_is_chunked(const char *p, size_t n)
{
    const char *comma = NULL;

    for (size_t i = 0; i < n; i++) {
        if (p[i] == ',')
            comma = p + i;
    }
    if (comma) {
        n -= (size_t)(comma + 1 - p);
        p = comma + 1;
    }
    return has_token(p, n, "chunked");
}

static bool parse_size(const char *p, size_t n, int base, uint64_t *out)
{
    uint64_t v = 0;
    size_t i = 0;

    while (i < n && (p[i] == ' ' || p[i] == '\t'))
        i++;
    while (n > i && (p[n - 1] == ' ' || p[n - 1] == '\t'))
        n--;
    if (i == n)
        return false;
    for (; i < n; i++) {
        int d;
        if (p[i] >= '0' && p[i] <= '9')
            d = p[i] - '0';
        else if (base == 16 && isxdigit((unsigned char)p[i]))
            d = tolower((unsigned char)p[i]) - 'a' + 10;
        else
            return false;
        if (v > (UINT64_MAX - (uint64_t)d) / (uint64_t)base)
            return false;
        v = v * (uint64_t)base + (uint64_t)d;
    }
    *out = v;
    return true;
}

/*
 * A chunked body starting at p: 0 and the decoded body in scratch and the
 * bytes used in *used; 1 when incomplete; -1 with err when malformed.
 */
static int dechunk(const char *p, const char *end, struct buf *scratch, size_t *used,
                   char err[GW_ERRLEN])
{
    const char *q = p, *next, *le;

    buf_clear(scratch);
    for (;;) {
        uint64_t size;
        const char *semi;

        le = line_end(q, end, &next);
        if (!le) {
            if ((size_t)(end - q) <= 1024)
                return 1;
            snprintf(err, GW_ERRLEN, "chunk size line too long");
            return -1;
        }
        semi = memchr(q, ';', (size_t)(le - q));
        if (!parse_size(q, (size_t)((semi ? semi : le) - q), 16, &size)) {
            snprintf(err, GW_ERRLEN, "bad chunk size line");
            return -1;
        }
        q = next;
        if (size == 0)
            break;
        if (size > CLIENT_HTTP_BODY_MAX || scratch->len + size > CLIENT_HTTP_BODY_MAX) {
            snprintf(err, GW_ERRLEN, "chunked body over %zu bytes", CLIENT_HTTP_BODY_MAX);
            return -1;
        }
        if ((uint64_t)(end - q) < size + 1)
            return 1;
        buf_append(scratch, q, (size_t)size);
        q += size;
        le = line_end(q, end, &next);
        if (!le)
            return 1;
        if (le != q) {
            snprintf(err, GW_ERRLEN, "chunk data longer than its size");
            return -1;
        }
        q = next;
    }
    /* Trailers, up to an empty line. */
    for (;;) {
        const char *line = q;

        le = line_end(q, end, &next);
        if (!le)
            return 1;
        q = next;
        if (le == line)
            break;
    }
    *used = (size_t)(q - p);
    return 0;
}

enum client_http_parse client_http_parse(const char *p, size_t len, bool eof, struct buf *scratch,
                                         struct client_http_resp *r, char err[GW_ERRLEN])
{
    const char *end = p + len, *q, *next, *le, *body;
    size_t skipped = 0;

again:
    memset(r, 0, sizeof(*r));
    q = p;
    le = line_end(q, end, &next);
    if (!le) {
        if (len > CLIENT_HTTP_HEAD_MAX) {
            snprintf(err, GW_ERRLEN, "no status line in the first %d bytes", CLIENT_HTTP_HEAD_MAX);
            return CLIENT_HTTP_BAD;
        }
        if (eof && len) {
            snprintf(err, GW_ERRLEN, "the connection closed within a status line");
            return CLIENT_HTTP_BAD;
        }
        return CLIENT_HTTP_PARTIAL;
    }
    /* HTTP/1.x SSS reason */
    if (le - q < 12 || memcmp(q, "HTTP/1.", 7) != 0 || !isdigit((unsigned char)q[7]) ||
        q[8] != ' ' || !isdigit((unsigned char)q[9]) || !isdigit((unsigned char)q[10]) ||
        !isdigit((unsigned char)q[11]) || (le - q > 12 && q[12] != ' ')) {
        snprintf(err, GW_ERRLEN, "not an HTTP/1.x status line: '%.*s'",
                 (int)(le - q > 60 ? 60 : le - q), q);
        return CLIENT_HTTP_BAD;
    }
    r->status = (q[9] - '0') * 100 + (q[10] - '0') * 10 + (q[11] - '0');
    r->close = q[7] == '0'; /* HTTP/1.0 closes unless told otherwise */
    q = next;

    bool has_len = false, chunked = false;
    uint64_t clen = 0;
    for (;;) {
        const char *colon, *v;
        size_t nlen, vlen;

        le = line_end(q, end, &next);
        if (!le) {
            if (len > CLIENT_HTTP_HEAD_MAX) {
                snprintf(err, GW_ERRLEN, "response head over %d bytes", CLIENT_HTTP_HEAD_MAX);
                return CLIENT_HTTP_BAD;
            }
            if (eof) {
                snprintf(err, GW_ERRLEN, "the connection closed within the response head");
                return CLIENT_HTTP_BAD;
            }
            return CLIENT_HTTP_PARTIAL;
        }
        if (le == q) {
            q = next;
            break;
        }
        colon = memchr(q, ':', (size_t)(le - q));
        if (!colon) {
            snprintf(err, GW_ERRLEN, "header line without a colon");
            return CLIENT_HTTP_BAD;
        }
        nlen = (size_t)(colon - q);
        v = colon + 1;
        while (v < le && (*v == ' ' || *v == '\t'))
            v++;
        vlen = (size_t)(le - v);
        if (nlen == 14 && strncasecmp(q, "Content-Length", 14) == 0) {
            uint64_t n;
            if (!parse_size(v, vlen, 10, &n) || (has_len && n != clen)) {
                snprintf(err, GW_ERRLEN, "bad Content-Length: '%.*s'", (int)(vlen > 40 ? 40 : vlen),
                         v);
                return CLIENT_HTTP_BAD;
            }
            has_len = true;
            clen = n;
        } else if (nlen == 17 && strncasecmp(q, "Transfer-Encoding", 17) == 0) {
            chunked = last_is_chunked(v, vlen);
        } else if (nlen == 10 && strncasecmp(q, "Connection", 10) == 0) {
            if (has_token(v, vlen, "close"))
                r->close = true;
            else if (has_token(v, vlen, "keep-alive"))
                r->close = false;
        }
        q = next;
    }

    if (r->status >= 100 && r->status < 200) {
        /* An interim response (100 Continue): the real one follows. */
        skipped += (size_t)(q - p);
        len -= (size_t)(q - p);
        p = q;
        goto again;
    }
    body = q;
    if (r->status == 204 || r->status == 304) {
        r->body = body;
        r->body_len = 0;
        r->consumed = skipped + (size_t)(body - p);
        return CLIENT_HTTP_DONE;
    }
    if (chunked) {
        size_t used = 0;
        int rc = dechunk(body, end, scratch, &used, err);
        if (rc < 0)
            return CLIENT_HTTP_BAD;
        if (rc > 0) {
            if (eof) {
                snprintf(err, GW_ERRLEN, "the connection closed within a chunked body");
                return CLIENT_HTTP_BAD;
            }
            return CLIENT_HTTP_PARTIAL;
        }
        r->body = scratch->data ? scratch->data : "";
        r->body_len = scratch->len;
        r->consumed = skipped + (size_t)(body - p) + used;
        return CLIENT_HTTP_DONE;
    }
    if (has_len) {
        if (clen > CLIENT_HTTP_BODY_MAX) {
            snprintf(err, GW_ERRLEN, "Content-Length %" PRIu64 " is over %zu", clen,
                     CLIENT_HTTP_BODY_MAX);
            return CLIENT_HTTP_BAD;
        }
        if ((uint64_t)(end - body) < clen) {
            if (eof) {
                snprintf(err, GW_ERRLEN,
                         "the connection closed %" PRIu64 " bytes into a %" PRIu64 "-byte body",
                         (uint64_t)(end - body), clen);
                return CLIENT_HTTP_BAD;
            }
            return CLIENT_HTTP_PARTIAL;
        }
        r->body = body;
        r->body_len = (size_t)clen;
        r->consumed = skipped + (size_t)(body - p) + (size_t)clen;
        return CLIENT_HTTP_DONE;
    }
    /* No length: the body runs to the close. */
    r->close = true;
    if ((size_t)(end - body) > CLIENT_HTTP_BODY_MAX) {
        snprintf(err, GW_ERRLEN, "body over %zu bytes", CLIENT_HTTP_BODY_MAX);
        return CLIENT_HTTP_BAD;
    }
    if (!eof)
        return CLIENT_HTTP_PARTIAL;
    r->body = body;
    r->body_len = (size_t)(end - body);
    r->consumed = skipped + (size_t)(end - p);
    return CLIENT_HTTP_DONE;
}
