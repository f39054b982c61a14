/*
 * front_sock.h - the TCP session front (docs/protocol.md): one session per
 * connection, commands parsed by proto_line, replies in command order,
 * pushes from core subscriptions, heartbeats, idle and slow-consumer
 * handling, and the one mapping from enum gw_err to an error line.
 *
 * Calls core, proto_line, codec_json, net, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_SOCK_H
#define GW_FRONT_SOCK_H

#include "gw.h"

#include <stddef.h>

struct core;
struct loop;
struct front_sock;

struct front_sock_options {
    unsigned heartbeat;    /* seconds of silence before a ping */
    unsigned idle_timeout; /* seconds; also TCP_USER_TIMEOUT */
    size_t max_outbuf;     /* bytes queued to one session */
    size_t max_line;       /* bytes in a command line */
    unsigned max_sessions;
    unsigned max_subs; /* per session */
};

/*
 * Serves sessions on listen_fd (taken). core and loop are borrowed and must
 * outlive the front. NULL + why on failure (listen_fd closed).
 */
struct front_sock *front_sock_new(struct core *core, struct loop *loop, int listen_fd,
                                  const struct front_sock_options *opts, char why[GW_ERRLEN]);

/*
 * Stops accepting; every session gets its pending replies, then a bye line,
 * then is closed.
 */
void front_sock_quiesce(struct front_sock *fs);

/* Sessions not yet closed. */
size_t front_sock_sessions(const struct front_sock *fs);

/* Closes every session at once and frees. NULL is a no-op. */
void front_sock_free(struct front_sock *fs);

#endif
