/*
 * net.h - socket helpers that do not log (after redis anet.c).
 *
 * Each returns -1 on failure and writes the reason into err[GW_ERRLEN]; the
 * caller decides whether and how to report it. Depends on gw.h and libc.
 */
#ifndef GW_NET_H
#define GW_NET_H

#include "gw.h"

/* Room for "host" of "host:port", IPv6 literals included. */
#define NET_HOST_MAX 256

/*
 * Splits "host:port" or "[v6addr]:port" into host and port (0..65535). Pure:
 * no resolution. Returns 0, or -1 with the reason in err.
 */
int net_split_hostport(const char *addr, char host[NET_HOST_MAX], int *port, char err[GW_ERRLEN]);

/*
 * Resolves addr ("host:port", port 0 = any free port) and returns a
 * non-blocking, close-on-exec socket listening on it with SO_REUSEADDR.
 */
int net_listen(const char *addr, int backlog, char err[GW_ERRLEN]);

/* The local port a bound socket ended up on, or -1. */
int net_local_port(int fd);

/* The peer of a connected socket as "ip:port" into out (cap bytes); "?:0" when unknown. */
void net_peer_name(int fd, char *out, size_t cap);

int net_set_nonblock(int fd, char err[GW_ERRLEN]);

/*
 * Resolves addr ("host:port", port 1..65535) and connects to the first of its
 * addresses that accepts, within timeout_ms in all (negative: no limit).
 * Returns a connected socket, non-blocking and close-on-exec, or -1 with
 * errno set and err = "cannot connect to <addr>: <reason>". A signal that
 * interrupts the wait is not retried: it fails the call with errno EINTR, so
 * a client can stop while a connect is under way.
 */
int net_connect(const char *addr, int timeout_ms, char err[GW_ERRLEN]);

#endif
