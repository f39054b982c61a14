/*
 * client_sse.h - the clients' reading of a Server-Sent Events stream
 * (gwbench's sse style; sockbench's EventSource subscribers of the gateway
 * and of Nchan): the response head (200, text/event-stream), then the body,
 * de-chunked when it is chunked, cut into events at their blank lines.
 *
 * No I/O of its own: it takes the bytes a client_conn has read, so a stream
 * lives in its program's epoll loop like any other connection. Depends on
 * client_conn, buf and libc.
 */
#ifndef GW_CLIENT_SSE_H
#define GW_CLIENT_SSE_H

#include "buf.h"
#include "client_conn.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct client_sse {
    bool head;         /* the response head is in */
    bool chunked;      /* Transfer-Encoding: chunked (else the body runs to the close) */
    size_t chunk_left; /* bytes of the current chunk still to come */
    bool chunk_crlf;   /* the CRLF after a chunk is due */
    struct buf text;   /* the body, de-chunked, from the first event not yet handed out */
    size_t text_off;   /* text[0, text_off): events handed out, dropped at the next input */
};

/* One event, its fields borrowed from the stream until the next client_sse_input. */
struct client_sse_event {
    const char *event; /* the event: field, "message" when it has none */
    size_t event_len;
    const char *data; /* the last data: field (the streams read here carry one); NULL: none */
    size_t data_len;
    const char *id; /* the id: field; NULL: none */
    size_t id_len;
    const char *comment; /* the last comment line, without its ':' and one space; NULL: none */
    size_t comment_len;
};

/* An empty stream, before its head. */
void client_sse_init(struct client_sse *s);
/* Frees the buffered text; s may be initialised again. */
void client_sse_release(struct client_sse *s);

/*
 * Takes what c has read (and consumes it from c): the head first, then the
 * body. 0: go on (client_sse_event may have events); -1 with the reason in
 * err: the head was not 200 text/event-stream (err quotes the status line
 * and the start of the answer), the framing is broken, or the stream ended
 * (its last chunk, or the server's close: err quotes what was left).
 */
int client_sse_input(struct client_sse *s, struct client_conn *c, char err[GW_ERRLEN]);

/* The next whole event received, or false when none is whole yet. */
bool client_sse_event(struct client_sse *s, struct client_sse_event *ev);

#endif
