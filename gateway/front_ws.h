/*
 * front_ws.h - the WebSocket session front (docs/websocket.md): serves the
 * connections front_http upgraded on GET /v1/ws. Each text message from the
 * peer is one command line for the session tier, each line the tier queues
 * is one text message back; heartbeats are ping frames, and the tier's
 * reason to close becomes a close frame's code and reason (ws_proto.h).
 * Framing is wslay's (event API); the rules of a session live in session.h.
 *
 * The front never calls front_http: main hands it each upgraded socket
 * (front_ws_adopt) and asks it whether there is room for one more
 * (front_ws_has_room), through the callbacks of front_http_options.
 *
 * Calls session, ws_proto, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_WS_H
#define GW_FRONT_WS_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct sessions;
struct front_ws;
struct input_budget;

struct front_ws_options {
    unsigned heartbeat;    /* seconds: a ping after this much silence; about 3 unanswered close */
    size_t max_line;       /* bytes in a message (a command line); 1009 above */
    unsigned max_sessions; /* WebSocket sessions at once */
    struct input_budget *inputs; /* --max-input-memory, for messages being received; borrowed */
};

/* A front serving sessions through the tier (borrowed, as is loop; both outlive it). */
struct front_ws *front_ws_new(struct sessions *tier, struct loop *loop,
                              const struct front_ws_options *opts);

/*
 * Whether one more session may open now for a client at peer ("ip:port"):
 * not stopping, and below max_sessions or at it with a session of another
 * address to give way (sessions_make_room).
 */
bool front_ws_has_room(const struct front_ws *fw, const char *peer);

/*
 * Takes an upgraded connection: fd is the front's from now on (it closes
 * it), head holds the len bytes the client sent after its request (its
 * first frames; copied), protocol is the subprotocol agreed or NULL. The
 * session opens at once (its hello is the first text message); past
 * max_sessions, or while stopping, the connection is closed with 1013 or
 * 1001 instead.
 */
void front_ws_adopt(struct front_ws *fw, int fd, const char *head, size_t len,
                    const char *protocol);

/* Sessions open on this front. */
size_t front_ws_count(const struct front_ws *fw);

/* Connections whose session is over, still reading the peer's last input before they close. */
size_t front_ws_lingering(const struct front_ws *fw);

/* Stops taking connections; the sessions themselves are stopped through the tier. */
void front_ws_quiesce(struct front_ws *fw);

/* Closes what is left and frees; the tier must have closed every session first. NULL is a no-op. */
void front_ws_free(struct front_ws *fw);

#endif
