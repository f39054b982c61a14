/*
 * http_edge.h - the rules the REST front holds a request to before any
 * handler sees it: how its body is framed (RFC 9112 section 6), how long it
 * may take to arrive, and the error answer the front writes on the socket
 * itself when libmicrohttpd cannot give one.
 *
 * Pure: no sockets, no libmicrohttpd, no clock. Depends on gw.h and buf.h.
 * front_http feeds it the request's header fields and acts on its verdicts.
 */
#ifndef GW_HTTP_EDGE_H
#define GW_HTTP_EDGE_H

#include "buf.h"
#include "gw.h"

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* What a request's header fields say about its body, gathered field by field. */
struct http_framing {
    unsigned content_lengths;      /* Content-Length fields */
    unsigned transfer_encodings;   /* Transfer-Encoding fields */
    const char *content_length;    /* the first one's value (borrowed) */
    const char *transfer_encoding; /* the first one's value (borrowed) */
    const char *odd_name;          /* the first name that could hide a framing field (borrowed) */
    const char *cr_name;           /* the first field whose name or value holds a bare CR */
    unsigned hosts;                /* Host fields */
    unsigned content_types;        /* Content-Type fields */
    unsigned once_seen;            /* which of the fields allowed once were seen (a bit each) */
    const char *repeated;          /* the first of them seen twice (static), or NULL */
};

/*
 * Notes one header field (name matched without regard to case; value as
 * libmicrohttpd keeps it, without surrounding blanks). The strings are
 * borrowed and must outlive the verdict. A name that is not a token (RFC
 * 9110 5.1: "Content-Length " with a blank before the colon), or that begins
 * as a framing field's does without being one (libmicrohttpd 0.9.75 appends
 * an obs-fold continuation line to the field's name, so "Content-Length:"
 * folded onto " 42" reaches us as "Content-Length42"), is noted as odd: a
 * proxy in front may have read it as the framing field it looks like.
 * A CR inside a name or value (libmicrohttpd keeps it there) is noted too:
 * a proxy that ends a line at a bare CR reads the rest as a field of its
 * own, "X: a\rContent-Length: 52" as a length (RFC 9112 2.2).
 */
void http_framing_add(struct http_framing *f, const char *name, const char *value);

/*
 * The verdict on a request's framing. GW_OK with the body's length in
 * *length (0 without a body) and *chunked set when Transfer-Encoding is
 * chunked. Otherwise the request cannot be read safely and the connection
 * must be closed after the answer (why says what was wrong):
 *   GW_E_PARAM      an odd field name or a bare CR (http_framing_add); Transfer-Encoding
 *                   together with Content-Length; more
 *                   than one Content-Length (equal or not); a Content-Length
 *                   that is not a decimal number; a Transfer-Encoding other
 *                   than exactly one "chunked"; any Transfer-Encoding in an
 *                   HTTP/1.0 request (http10)
 *   GW_E_TOO_LARGE  a Content-Length too large for 63 bits
 */
enum gw_err http_framing_judge(const struct http_framing *f, bool http10, uint64_t *length,
                               bool *chunked, char why[GW_ERRLEN]);

/*
 * The verdict on the request's Host fields (RFC 9112 3.2): GW_E_PARAM with
 * why for two or more, or for none in an HTTP/1.1 request; GW_OK otherwise.
 */
enum gw_err http_host_judge(const struct http_framing *f, bool http10, char why[GW_ERRLEN]);

/*
 * Milliseconds a body of `bytes` may take to arrive: floor_s seconds, or
 * longer at `rate` bytes per second for a large one. rate > 0.
 */
uint64_t http_body_deadline_ms(uint64_t bytes, unsigned floor_s, unsigned rate);

/*
 * Appends a whole HTTP/1.1 response that ends the connection: the status
 * line (status, reason), Date (now), Content-Type: application/json,
 * Content-Length, Connection: close, one optional extra header line
 * ("Name: value", NULL for none), then body[0..len) and a newline.
 */
void http_edge_response(struct buf *out, unsigned status, const char *reason, const char *extra,
                        const char *body, size_t len, time_t now);

#endif
