/*
 * front_http.h - the REST front: libmicrohttpd in external-epoll mode inside
 * our loop, the routes of docs/api.md, bodies capped before buffering, and
 * the one mapping from enum gw_err to an HTTP status.
 *
 * The front owns the listening socket (acceptor.h) and hands each accepted
 * connection to libmicrohttpd. Around it, the front holds every connection
 * to the rules of http_edge.h: a request's head and body must arrive within
 * their deadlines, framing that could be read two ways is refused, and at
 * --max-connections a newcomer gets the place of the connection that has
 * waited longest without a request under way (docs/api.md).
 *
 * The only module that includes microhttpd.h. Calls core, codec_json,
 * router, http_edge, acceptor, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_HTTP_H
#define GW_FRONT_HTTP_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct core;
struct loop;
struct front_http;
struct input_budget;

/*
 * Where GET /v1/ws leads (main wires it to the WebSocket front). room:
 * whether one more WebSocket session may open for a client at peer
 * ("ip:port"; false: 429, or 503 while stopping). adopt: the handshake is answered (101); fd is the
 * callee's from now on, head holds the len bytes the client sent after its request, protocol is the
 * subprotocol agreed or NULL. Both run on the loop thread, inside libmicrohttpd's run. NULL adopt:
 * /v1/ws answers 503.
 */
struct front_http_ws {
    bool (*room)(void *ctx, const char *peer);
    void (*adopt)(void *ctx, int fd, const char *head, size_t len, const char *protocol);
    void *ctx;
    const char *origins; /* --ws-origins (origin.h): every route, the upgrades included; borrowed */
};

/*
 * Where /socket.io/ leads (main wires it to the Socket.IO front). poll: a
 * polling request, or the verdict on a WebSocket handshake (sio_poll.h):
 * true when p's answer is set, false when p is held and answered later
 * through p->ready. cancel: a held request ends unanswered (its client
 * left, the front stops). adopt: as front_http_ws.adopt, with the session
 * id the upgrade is for (NULL: a new session). NULL poll: /socket.io/
 * answers 404.
 */
struct sio_poll;
struct front_http_sio {
    bool (*poll)(void *ctx, struct sio_poll *p);
    void (*cancel)(void *ctx, struct sio_poll *p);
    bool (*answer_now)(void *ctx,
                       struct sio_poll *p); /* a held poll or POST, at once (share_room) */
    /* The answer to a request of session sid was cut before it was taken: the session ends. */
    void (*lost)(void *ctx, const char *sid, const char *why);
    /*
     * Whether a polling session's client has yet to poll for its acks and its
     * end: while the gateway stops, the port stays open for those polls alone.
     */
    bool (*owed)(void *ctx);
    void (*adopt)(void *ctx, int fd, const char *head, size_t len, const char *sid);
    void *ctx;
    size_t max_payload; /* bytes in a POST to /socket.io/; 413 above */
};

/*
 * Where GET /v1/channels/{ch}/events leads once its channel and cursor are
 * judged (main wires it to the SSE front). room: whether one more stream may
 * open for a client at peer ("ip:port"; false: 429). adopt: fd (the callee's from now on) is the
 * stream's connection, with nothing of the response sent yet; http11 whether the request was
 * HTTP/1.1; sub the SUB line of len bytes its session starts with. Both run on the loop thread,
 * inside libmicrohttpd's run. NULL adopt: the path answers 404.
 */
struct front_http_sse {
    bool (*room)(void *ctx, const char *peer);
    void (*adopt)(void *ctx, int fd, bool http11, const char *sub, size_t len);
    void *ctx;
};

struct front_http_options {
    size_t max_body;             /* bytes; larger bodies get 413 */
    unsigned max_connections;    /* connections at once */
    unsigned idle_timeout;       /* seconds an idle keep-alive connection is kept */
    unsigned header_timeout;     /* seconds from a request's first byte to its whole head */
    unsigned body_timeout;       /* seconds any body may take */
    unsigned body_rate;          /* bytes per second a larger body must keep up, > 0 */
    size_t page_bytes;           /* a history page's bound, reserved in the reply budget */
    struct input_budget *inputs; /* --max-input-memory, for bodies being received; borrowed */
    int tcp_port;                /* the session port, for the index at /; 0: none */
    const char *hosts;           /* --http-hosts (origin.h host_allowed), borrowed */
    struct front_http_ws ws;     /* the WebSocket hand-off */
    struct front_http_sse sse;   /* the event streams' hand-off */

    /* the Socket.IO hand-off */
    struct front_http_sio sio;
};

/*
 * Serves HTTP on listen_fd (taken: closed when the front stops accepting).
 * core and loop are borrowed and must outlive the front. NULL + why on
 * failure (listen_fd is then closed too).
 */
struct front_http *front_http_new(struct core *core, struct loop *loop, int listen_fd,
                                  const struct front_http_options *opts, char why[GW_ERRLEN]);

/*
 * Stops accepting connections and closes those with no request under way
 * (or only part of one's head); requests under way go on, answered with
 * Connection: close.
 */
void front_http_quiesce(struct front_http *fh);

/* Requests received and not yet completely answered. */
size_t front_http_in_flight(const struct front_http *fh);

/*
 * Closes every connection and frees. Publishes must all have completed
 * first (core_pending() == 0): a connection waiting for its commit cannot
 * be closed. NULL is a no-op.
 */
void front_http_free(struct front_http *fh);

#endif
