/*
 * sio_poll.h - one HTTP request to /socket.io/ as front_http hands it to the
 * Socket.IO front, and the answer that front gives (docs/socketio.md).
 *
 * The contract between the two fronts, which never call each other: main
 * wires front_http's struct front_http_sio callbacks to front_sio. Plain
 * data; depends on buf.h. Loop thread only.
 */
#ifndef GW_SIO_POLL_H
#define GW_SIO_POLL_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>

enum sio_poll_kind {
    SIO_POLL_GET,    /* a poll, or the handshake when it has no sid */
    SIO_POLL_POST,   /* packets from the client */
    SIO_POLL_UPGRADE /* a WebSocket handshake (transport=websocket), judged before the 101 */
};

struct sio_poll {
    /* Set by front_http, valid while the request lives. */
    enum sio_poll_kind kind;
    const char *eio;       /* the EIO query parameter, or NULL */
    const char *transport; /* the transport query parameter, or NULL */
    const char *sid;       /* the sid query parameter, or NULL */
    const char *body;      /* POST: the payload */
    size_t body_len;
    const char *peer; /* "ip:port" */
    /*
     * A request the Socket.IO front held (poll returned false) is answered
     * later: the front fills the answer below, then calls ready, once.
     */
    void (*ready)(struct sio_poll *p);
    void *http; /* front_http's own */
    void *sio;  /* the Socket.IO front's own, while it holds the request */

    /* The answer, set by the Socket.IO front. */
    unsigned status;   /* HTTP status; 0 for an UPGRADE that may go on */
    const char *ctype; /* its content type (a literal) */
    struct buf answer; /* its body, exactly (no line end is added) */
};

#endif
