/*
 * client_conn.h - a client's end of one TCP connection to the gateway (or
 * to any server a client measures against): the connect, an output queue,
 * the input buffered and cut into lines with a length limit, and the bytes
 * and connections it cost.
 *
 * Shared by every client (gwsh, gwbench, sockbench); depends on gw.h, buf.h,
 * net.h and libc. Nothing here blocks but client_conn_open and
 * client_conn_wait: a client with many connections polls the sockets itself
 * (client_conn_events says for what, client_conn_watch keeps an epoll set in
 * step) and calls client_conn_flush and client_conn_fill when they are ready.
 * A connection belongs to one thread.
 *
 * Input is read into one buffer. client_conn_line hands out whole lines
 * (server lines of the session protocol), client_conn_data and
 * client_conn_consume the raw bytes (HTTP, RESP). Whatever they hand out is
 * borrowed until the next client_conn_fill, client_conn_close or
 * client_conn_release: the buffer moves when it grows.
 */
#ifndef GW_CLIENT_CONN_H
#define GW_CLIENT_CONN_H

#include "buf.h"
#include "gw.h"

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/*
 * The longest line accepted by default. A server line is one message push
 * (64 KiB of body, up to six bytes each once escaped) or a HIST page of up
 * to 1000 of them, so this is generous; it exists so that a broken server
 * cannot make a client take all memory.
 */
#define CLIENT_LINE_MAX ((size_t)1 << 30)

/* What connections cost, counted on the client's side: shared by a group of them. */
struct client_stats {
    uint64_t bytes_in, bytes_out; /* application bytes: HTTP heads and bodies, lines */
    uint64_t opened;              /* connects that succeeded */
};

/*
 * A server's address, resolved once so that later connects are only a
 * connect(); and, optionally, the local address to connect from (a client
 * with more connections than one source address has ports spreads them over
 * several: 127.0.0.2, 127.0.0.3 ... all reach a server on 127.0.0.1).
 */
struct client_addr {
    const char *text; /* "host:port" as given; borrowed, for messages and Host headers */
    struct sockaddr_storage ss;
    socklen_t len; /* 0 until resolved */
    struct sockaddr_storage src;
    socklen_t src_len; /* 0: the kernel picks the source address */
};

struct client_conn {
    int fd;           /* -1 when closed */
    bool connecting;  /* a connect is under way: wait for writability, then client_conn_finish */
    bool eof;         /* the peer closed its side; what it sent before is still buffered */
    uint32_t watched; /* the epoll events registered (client_conn_watch); 0: none */
    size_t line_max;  /* the longest line client_conn_line accepts (CLIENT_LINE_MAX) */
    const char *peer; /* "host:port", borrowed from the caller, for messages */
    struct buf in;
    size_t in_off;  /* the first unread byte of in */
    size_t in_scan; /* bytes after in_off already searched for a LF */
    struct buf out;
    size_t out_off;             /* the first unsent byte of out */
    struct client_stats *stats; /* borrowed; NULL: nothing is counted */
    void *owner;                /* the caller's, to find its state from an epoll event */
};

/* CLOCK_MONOTONIC in nanoseconds: the clock of every deadline here. */
int64_t client_now_ns(void);

/*
 * Resolves a->text ("host:port") by connecting to it once within
 * timeout_ms, and keeps the address that answered for every later
 * client_conn_start, with no source address (set a->src after). 0, or -1
 * with "cannot connect to <addr>: <reason>" in err.
 */
int client_addr_resolve(struct client_addr *a, const char *text, int timeout_ms,
                        char err[GW_ERRLEN]);

/* An empty, closed connection whose costs go to stats (borrowed; NULL: not counted). */
void client_conn_init(struct client_conn *c, struct client_stats *stats);

/*
 * Resolves addr ("host:port") and connects within timeout_ms (negative: no
 * limit), for a client with one connection. 0, or -1 with errno set and
 * "cannot connect to <addr>: <reason>" in err; a signal that interrupts the
 * wait fails it with errno EINTR. c must be closed; addr is borrowed for as
 * long as c is open.
 */
int client_conn_open(struct client_conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN]);

/*
 * Starts a connect to a resolved address without waiting, from a->src when
 * set (its port chosen at the connect, so each source address has the
 * whole ephemeral range for each server). 0: connected, or c->connecting
 * (wait until the socket is writable, then client_conn_finish); -1 with the
 * reason in err. c must be closed; a is borrowed for as long as c is open.
 */
int client_conn_start(struct client_conn *c, const struct client_addr *a, char err[GW_ERRLEN]);

/* After a connect under way made the socket writable: 0 connected, -1 with the reason in err. */
int client_conn_finish(struct client_conn *c, char err[GW_ERRLEN]);

/*
 * Closes the socket (which also takes it out of any epoll set) and empties
 * both buffers, keeping their storage; c may be opened again. No-op when
 * closed.
 */
void client_conn_close(struct client_conn *c);
/* client_conn_close, and frees the buffers' storage. */
void client_conn_release(struct client_conn *c);
/*
 * Frees the storage of whichever buffer is empty (nothing unread, nothing
 * unsent), keeping the connection: a client that holds thousands of quiet
 * connections then pays for their sockets only. The next fill or queue
 * allocates again.
 */
void client_conn_trim(struct client_conn *c);

/* Queues (p, len) for client_conn_flush. */
void client_conn_queue(struct client_conn *c, const void *p, size_t len);
/* Queues (line, len) and a LF. */
void client_conn_send_line(struct client_conn *c, const char *line, size_t len);
/* True while queued bytes wait for the socket. */
bool client_conn_want_write(const struct client_conn *c);
/* Sends what the socket takes now (nothing while connecting). 0, or -1 with the reason in err. */
int client_conn_flush(struct client_conn *c, char err[GW_ERRLEN]);

/*
 * Reads what has arrived, up to about 1 MiB per call so that one busy
 * connection cannot starve the others of a caller that polls them
 * level-triggered. 1: read (or nothing there yet); 0: the peer closed
 * (c->eof; the bytes before the close are buffered); -1 with the reason in
 * err.
 */
int client_conn_fill(struct client_conn *c, char err[GW_ERRLEN]);

/* The unread bytes, borrowed (see above). */
const char *client_conn_data(const struct client_conn *c, size_t *len);
void client_conn_consume(struct client_conn *c, size_t n);

enum client_line {
    CLIENT_LINE,    /* *line holds the next line */
    CLIENT_MORE,    /* no whole line is buffered */
    CLIENT_TOO_LONG /* the next line is longer than c->line_max: framing is lost */
};

/*
 * The next line, without its LF (or CRLF), NUL-terminated in place and
 * consumed; borrowed (see above). A line over c->line_max is
 * CLIENT_TOO_LONG as soon as that many bytes arrived without a LF.
 */
enum client_line client_conn_line(struct client_conn *c, char **line, size_t *len);

/* The epoll events c needs now: EPOLLOUT while connecting or with bytes queued, else EPOLLIN. */
uint32_t client_conn_events(const struct client_conn *c);

/*
 * Registers c in the epoll set ep, with data.ptr = c, or updates its events
 * when they changed. 0, or -1 with the reason in err.
 */
int client_conn_watch(struct client_conn *c, int ep, char err[GW_ERRLEN]);

/*
 * For a caller that waits on this one connection: finishes a connect under
 * way, sends what is queued, then waits until input arrives and reads it.
 * 0 once new bytes (or the peer's close, c->eof) came in; -1 with the
 * reason in err at deadline_ns (client_now_ns), on an error, or when a
 * signal interrupts the wait (errno EINTR, "interrupted"). sigmask, when not
 * NULL, is the signal mask during the wait (ppoll), so that a caller that
 * blocks its stop signals elsewhere cannot miss one.
 */
int client_conn_wait(struct client_conn *c, int64_t deadline_ns, const sigset_t *sigmask,
                     char err[GW_ERRLEN]);

#endif
