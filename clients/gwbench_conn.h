/*
 * gwbench_conn.h - one client socket of gwbench: a non-blocking connect,
 * an input and an output buffer, and the count of every byte and every
 * connection, which the table reports per message.
 *
 * Depends on common/ (buf) and libc. Nothing here blocks except
 * bconn_wait, which setup code uses before a style's clock starts; the
 * workloads poll the socket themselves (bconn_events says what for).
 * Unlike gwsh's connection, a connect here never waits: rest-close opens
 * one for every request, inside the measured loop.
 */
#ifndef GWBENCH_CONN_H
#define GWBENCH_CONN_H

#include "buf.h"
#include "gw.h"
#include "gwbench.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What a group of connections cost: counted on the client's side of the sockets. */
struct wire {
    uint64_t bytes_in, bytes_out; /* application bytes: HTTP headers and bodies, lines */
    uint64_t opened;              /* connect() calls that succeeded */
};

struct bconn {
    int fd;           /* -1 when closed */
    bool connecting;  /* connect() in progress: wait for writability */
    uint32_t watched; /* epoll events registered; 0: not registered */
    struct buf in;
    size_t in_off; /* start of the unread bytes in in */
    struct buf out;
    size_t out_off;
    bool eof;          /* the peer closed its side */
    struct wire *wire; /* borrowed: where this connection's bytes are counted */
    void *owner;       /* the caller's, to find its own state from an epoll event */
};

void bconn_init(struct bconn *c, struct wire *w);

/*
 * Starts a connect to a (non-blocking, close-on-exec, TCP_NODELAY). 0: the
 * connection is up or c->connecting; -1 with the reason in err. c must be
 * closed.
 */
int bconn_connect(struct bconn *c, const struct gwbench_addr *a, char err[GW_ERRLEN]);

/* After the socket became writable while connecting: 0 connected, -1 with err. */
int bconn_connected(struct bconn *c, const struct gwbench_addr *a, char err[GW_ERRLEN]);

/* Closes the socket (removing it from any epoll set) and empties both buffers. */
void bconn_close(struct bconn *c);
/* bconn_close, and frees the buffers' storage. */
void bconn_release(struct bconn *c);

/* Queues (p, len) for bconn_flush. */
void bconn_queue(struct bconn *c, const char *p, size_t len);
bool bconn_want_write(const struct bconn *c);
/* Sends what the socket takes now. 0 (all or part sent), -1 with err. */
int bconn_flush(struct bconn *c, char err[GW_ERRLEN]);

/*
 * Reads all that has arrived. 1: read (or nothing there yet); 0: the peer
 * closed (c->eof, the bytes before the close are in the buffer); -1 with err.
 */
int bconn_fill(struct bconn *c, char err[GW_ERRLEN]);

/* The unread bytes, borrowed until the next fill or consume. */
const char *bconn_data(const struct bconn *c, size_t *len);
void bconn_consume(struct bconn *c, size_t n);

/*
 * The next whole line, without its LF (or CRLF), NUL-terminated in place and
 * consumed; borrowed until the next fill. False when none is buffered.
 */
bool bconn_line(struct bconn *c, char **line, size_t *len);

/* The epoll events c needs now: EPOLLOUT while connecting or with bytes queued, else EPOLLIN. */
uint32_t bconn_events(const struct bconn *c);

/*
 * Registers c in ep (or updates its events), with data.ptr = c, when they
 * changed. 0, or -1 with err.
 */
int bconn_watch(struct bconn *c, int ep, char err[GW_ERRLEN]);

/*
 * For setup, before a style's clock starts: finishes the connect, sends
 * what is queued, then waits for input and reads it. 0 once new bytes (or
 * the peer's close: c->eof) came in; -1 with err on timeout (deadline_ns),
 * error, or a stop signal. Callers loop until they have what they need.
 */
int bconn_wait(struct bconn *c, const struct gwbench_addr *a, int64_t deadline_ns,
               char err[GW_ERRLEN]);

#endif
