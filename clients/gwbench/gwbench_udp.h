/*
 * gwbench_udp.h - what gwbench needs to talk to the UDP front
 * (docs/udp.md): its address, sockets, a PING whose pong fits, the check
 * that a visavis gateway answers there, and the gateway's UDP drops by
 * reason from /v1/stats, to say where lost datagrams went.
 *
 * Depends on common/ (client_conn for the address type, server_line) and
 * gwbench_fetch.h.
 */
#ifndef GWBENCH_UDP_H
#define GWBENCH_UDP_H

#include "client_conn.h"
#include "gw.h"

#include <stddef.h>

/*
 * A PING padded to this many bytes: the gateway never answers with more
 * bytes than it received, and a pong is 54 bytes plus its token.
 */
#define GWBENCH_UDP_PING_SIZE 100

/* udp-ping: a pong not back this long after its PING counts as lost. */
#define GWBENCH_UDP_LOST_MS 200

/* The reasons of visavis_udp_dropped_total (docs/udp.md), in the gateway's order. */
#define GWBENCH_UDP_DROPS 9
extern const char *const gwbench_udp_drop_names[GWBENCH_UDP_DROPS];

/* Resolves a->text ("host:port") as a UDP address (nothing is sent). 0, or -1 and err. */
int udp_resolve(struct client_addr *a, char err[GW_ERRLEN]);

/*
 * A non-blocking, close-on-exec UDP socket connected to a: send() goes
 * there, only its datagrams come back, and a port where nothing listens
 * shows as ECONNREFUSED. The fd, or -1 and err.
 */
int udp_open(const struct client_addr *a, char err[GW_ERRLEN]);

/* "PING <token>" padded with blanks to GWBENCH_UDP_PING_SIZE bytes into out; returns its size. */
size_t udp_ping_make(char out[GWBENCH_UDP_PING_SIZE], const char *token);

/* The token of a pong datagram (line, len) into out (cap bytes); false for anything else. */
bool udp_pong_token(const char *line, size_t len, char *out, size_t cap);

/*
 * A PING to a, answered by a pong within timeout_s (sent again every
 * 200 ms: a datagram may be lost). 0, or -1 and err.
 */
int udp_check(const struct client_addr *a, double timeout_s, char err[GW_ERRLEN]);

/*
 * The gateway's udp_dropped_total by reason (GET /v1/stats on http) into
 * out. 0, or -1 and err (no such counters: a gateway without a UDP front).
 */
int udp_drops_read(const struct client_addr *http, double timeout_s, double out[GWBENCH_UDP_DROPS],
                   char err[GW_ERRLEN]);

#endif
