/*
 * client_ws.h - the clients' WebSocket end (gwbench's ws styles, sockbench's
 * WebSocket subscribers of the gateway and of Nchan): the upgrade request,
 * then wslay (client side) for the framing, over a client_conn that owns the
 * socket and its buffers. wslay reads the connection's input buffer and
 * writes to its output queue; it never touches the socket, so a WebSocket
 * client lives in its program's epoll loop like any other connection. Each
 * text message received comes out as a line, as on a TCP session.
 *
 * Depends on common/ (client_conn, buf) and wslay; libgwclientws, apart
 * from libgwclient so that only the programs that speak WebSocket link wslay.
 */
#ifndef GW_CLIENT_WS_H
#define GW_CLIENT_WS_H

#include "client_conn.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct client_ws;

/*
 * A WebSocket on c (connected or connecting): queues the upgrade request,
 * GET path on host ("host:port", borrowed for the call), asking for the
 * subprotocol protocol (NULL: none asked for). Caller frees with
 * client_ws_free, before c is released.
 */
struct client_ws *client_ws_new(struct client_conn *c, const char *host, const char *path,
                                const char *protocol);
/* NULL is a no-op. */
void client_ws_free(struct client_ws *w);

/*
 * Takes what c has read: the 101 first, then frames (pings are answered).
 * 0, or -1 with the reason in err (a refused upgrade, a protocol error, the
 * server's close frame).
 */
int client_ws_input(struct client_ws *w, char err[GW_ERRLEN]);

/* True once the server's 101 is in: the connection speaks WebSocket. */
bool client_ws_upgraded(const struct client_ws *w);

/* The next text message received, NUL-terminated, borrowed until the next call; false: none. */
bool client_ws_line(struct client_ws *w, char **line, size_t *len);

/* Queues (p, len) as one text message (masked) on c's output. */
void client_ws_send(struct client_ws *w, const char *p, size_t len);

#endif
