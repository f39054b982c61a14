/*
 * acceptor.h - one listening socket in the loop, shared by both fronts:
 * accepts a bounded number of connections per wake-up and hands each new
 * socket to the front's callback.
 *
 * Out of descriptors (EMFILE, ENFILE) or kernel memory (ENOBUFS, ENOMEM),
 * it stops accepting for a short back-off instead of retrying at once: the
 * listening socket leaves the loop, a timer retries with a growing delay,
 * and the connections already open are served meanwhile. New clients wait
 * in the kernel's backlog until a retry succeeds. One warning starts such an
 * episode and one line ends it, with its length and the attempts it took.
 *
 * Depends on loop, log and libc. Loop thread only.
 */
#ifndef GW_ACCEPTOR_H
#define GW_ACCEPTOR_H

#include "gw.h"

#include <stdbool.h>
#include <sys/socket.h>

/* Connections accepted per wake-up at most; the rest wait for the next turn. */
#define ACCEPTOR_BATCH 64

/* The back-off between retries while accepting fails for lack of resources. */
#define ACCEPTOR_BACKOFF_MIN_MS 10
#define ACCEPTOR_BACKOFF_MAX_MS 500

struct loop;
struct acceptor;

/*
 * A new connection: fd is non-blocking and close-on-exec, and the callback
 * owns it. addr (borrowed, valid during the call) is the peer's address.
 * The callback must not free the acceptor.
 */
typedef void acceptor_cb(void *ctx, int fd, const struct sockaddr *addr, socklen_t addrlen);

/*
 * Accepts on listen_fd (taken: closed by acceptor_free, or here on failure).
 * name ("http", "tcp") starts its log lines. loop is borrowed and must
 * outlive the acceptor. NULL + why when the socket cannot be watched.
 */
struct acceptor *acceptor_new(struct loop *loop, int listen_fd, const char *name, acceptor_cb *cb,
                              void *ctx, char why[GW_ERRLEN]);

/* Stops accepting and closes the listening socket. NULL is a no-op. */
void acceptor_free(struct acceptor *a);

/* True while accepting is paused for lack of descriptors or memory. */
bool acceptor_backing_off(const struct acceptor *a);

/*
 * The delay before the next retry, given the previous one (0: the first):
 * ACCEPTOR_BACKOFF_MIN_MS, then doubling up to ACCEPTOR_BACKOFF_MAX_MS.
 * Pure.
 */
unsigned acceptor_backoff_next(unsigned prev_ms);

#endif
