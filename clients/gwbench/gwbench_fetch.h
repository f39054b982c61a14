/*
 * gwbench_fetch.h - one GET to the REST front, waited for: what gwbench
 * asks around a style's run (is the gateway there, what was stored, what
 * the gateway dropped), never inside its measured part.
 *
 * Depends on common/ (client_conn, client_http, buf). Blocks the
 * calling thread, up to its deadline.
 */
#ifndef GWBENCH_FETCH_H
#define GWBENCH_FETCH_H

#include "buf.h"
#include "client_conn.h"
#include "gw.h"

/*
 * GETs target (path and query) from a (resolved) on a connection of its
 * own within timeout_s. 0 with the status in *status and the body in body
 * (cleared first), or -1 with the reason in err (a refused connect, no
 * whole answer in time, an answer that is not HTTP).
 */
int fetch_get(const struct client_addr *a, const char *target, double timeout_s, int *status,
              struct buf *body, char err[GW_ERRLEN]);

#endif
