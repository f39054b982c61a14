/*
 * gwbench_ws.h - gwbench's WebSocket client: the upgrade on GET /v1/ws and
 * wslay (client side) for the framing, over a client_conn that owns the
 * socket and its buffers. wslay reads the connection's input buffer and
 * writes to its output queue; it never touches the socket, so a WebSocket
 * client lives in gwbench's epoll loop like any other. Each text message
 * from the gateway comes out as a line, as on a TCP session.
 *
 * Depends on common/ (client_conn, buf) and wslay.
 */
#ifndef GWBENCH_WS_H
#define GWBENCH_WS_H

#include "client_conn.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct gwbench_ws;

/*
 * A WebSocket on c (connected or connecting): queues the upgrade request
 * for target ("/v1/ws") on host ("host:port"), offering protocol (NULL:
 * none).
 */
struct gwbench_ws *gwbench_ws_new(struct client_conn *c, const char *host, const char *target,
                                  const char *protocol);
/* NULL is a no-op. */
void gwbench_ws_free(struct gwbench_ws *w);

/*
 * Takes what c has read: the 101 first, then frames (pings are answered).
 * 0, or -1 with the reason in err (a refused upgrade, a protocol error, the
 * gateway's close frame).
 */
int gwbench_ws_input(struct gwbench_ws *w, char err[GW_ERRLEN]);

/* The next text message received, NUL-terminated, borrowed until the next call; false: none. */
bool gwbench_ws_line(struct gwbench_ws *w, char **line, size_t *len);

/* Queues (p, len) as one text message (masked) on c's output. */
void gwbench_ws_send(struct gwbench_ws *w, const char *p, size_t len);

#endif
