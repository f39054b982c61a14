/*
 * client_http.h - the little of HTTP/1.1 the clients need (gwbench's REST
 * styles, sockbench's Nchan publisher): requests written the way a plain
 * client writes them, and a response parser for Content-Length, chunked and
 * read-until-close bodies.
 *
 * Pure: no I/O, no globals; depends on common/ (buf, gw.h) and libc. The
 * parser is handed the bytes received so far and says whether a whole
 * response is there; it may be called again with more.
 */
#ifndef GW_CLIENT_HTTP_H
#define GW_CLIENT_HTTP_H

#include "buf.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

/* The longest response head and body accepted (a full GET page is ~250 KiB). */
#define CLIENT_HTTP_HEAD_MAX (64 * 1024)
#define CLIENT_HTTP_BODY_MAX ((size_t)64 << 20)

/*
 * Appends a POST of a JSON body to out: request line, Host, Content-Type,
 * Content-Length (and "Connection: close" when close), blank line, body.
 */
void client_http_post(struct buf *out, const char *host, const char *path, const char *body,
                      size_t len, bool close);

/* Appends a GET of target (path and query) to out. */
void client_http_get(struct buf *out, const char *host, const char *target);

enum client_http_parse {
    CLIENT_HTTP_PARTIAL, /* not a whole response yet */
    CLIENT_HTTP_DONE,    /* *r holds one response */
    CLIENT_HTTP_BAD      /* not a response we can read: the reason in err */
};

struct client_http_resp {
    int status;
    bool close;       /* the server closes the connection after this response */
    const char *body; /* borrowed: from the input, or from scratch for a chunked body */
    size_t body_len;
    size_t consumed; /* bytes of the input the response took */
};

/*
 * Parses the response at the start of (p, len). eof: the server has closed
 * the connection, so a body without a length ends here. A chunked body is
 * put together in scratch (cleared first). Interim 1xx responses are
 * skipped; a response to HEAD does not occur here.
 */
enum client_http_parse client_http_parse(const char *p, size_t len, bool eof, struct buf *scratch,
                                         struct client_http_resp *r, char err[GW_ERRLEN]);

#endif
