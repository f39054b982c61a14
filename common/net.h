/*
 * net.h - socket helpers that do not log (after redis anet.c).
 *
 * Each returns -1 on failure and writes the reason into err[GW_ERRLEN]; the
 * caller decides whether and how to report it. Depends on gw.h and libc.
 */
#ifndef GW_NET_H
#define GW_NET_H

#include "gw.h"

#include <stddef.h>
#include <stdint.h>

struct sockaddr;

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

/*
 * Resolves addr ("host:port", port 0 = any free port) and returns a
 * non-blocking, close-on-exec UDP socket bound to it.
 */
int net_bind_udp(const char *addr, char err[GW_ERRLEN]);

/* The local port a bound socket ended up on, or -1. */
int net_local_port(int fd);

/*
 * sa as "ip:port" ("[v6]:port", the port apart from the address) into out
 * (cap bytes); "?:0" for a family that has neither.
 */
void net_addr_name(const struct sockaddr *sa, char *out, size_t cap);
/* The peer of a connected socket, as net_addr_name writes it; "?:0" when unknown. */
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

/*
 * Tunes an accepted session socket, best effort: TCP_NODELAY (whole lines
 * or messages go at once), keepalive probes after idle_s of silence (3 of
 * them, a third of that apart), and TCP_USER_TIMEOUT of user_timeout_s for
 * data the peer does not acknowledge.
 */
void net_tune_session(int fd, unsigned idle_s, unsigned user_timeout_s);

/*
 * A TCP connection's counts so far (TCP_INFO), each where not NULL: *acked,
 * the bytes of fd's output its peer has acknowledged (they grow while the
 * peer takes what is sent); *received, the bytes the peer sent, read or
 * not (whoever read them). -1 when not known (not TCP, an older kernel).
 */
int net_tcp_bytes(int fd, uint64_t *acked, uint64_t *received);

/* Bytes the peer sent that wait unread in fd's receive buffer (FIONREAD); 0 if not known. */
size_t net_unread(int fd);

#endif
