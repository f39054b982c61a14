/*
 * gwsh_conn.h - gwsh's end of one session connection: the socket, a queue of
 * outgoing lines, and the framing of what the server sends into lines.
 *
 * Depends on common/ (buf, net) and libc; no JSON, no terminal. Nothing here
 * blocks: the caller polls conn->fd (for writing too while
 * conn_want_write() says so) and calls conn_fill / conn_flush when it is
 * ready, so a shell can type, read pushes and send at the same time.
 */
#ifndef GWSH_CONN_H
#define GWSH_CONN_H

#include "buf.h"
#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

/*
 * The longest server line accepted. A line is one message push (64 KiB of
 * body, up to six bytes each once escaped) or a HIST page of up to 1000 of
 * them, so this is generous; it exists so that a broken server cannot make
 * gwsh take all memory.
 */
#define CONN_LINE_MAX ((size_t)1 << 30)

struct conn {
    int fd; /* -1 when closed */
    struct buf in;
    size_t in_off;  /* start of the first unread line in in */
    size_t in_scan; /* bytes after in_off already searched for LF */
    struct buf out;
    size_t out_off;
    int saved_errno; /* of the last failure, for the caller's messages */
};

void conn_init(struct conn *c);

/*
 * Connects to addr ("host:port") within timeout_ms (negative: no limit).
 * Returns 0, or -1 with "cannot connect to <addr>: <reason>" in err and errno
 * set (EINTR when a signal interrupted the wait). c must be closed.
 */
int conn_open(struct conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN]);

/* Closes the socket, drops both queues; c may be opened again. No-op when closed. */
void conn_close(struct conn *c);

/* Queues (line, len) and a LF; conn_flush sends them. */
void conn_send(struct conn *c, const char *line, size_t len);

/* True while queued bytes wait for the socket to take them. */
bool conn_want_write(const struct conn *c);

/* Sends what the socket takes now. 0, or -1 with the reason in err. */
int conn_flush(struct conn *c, char err[GW_ERRLEN]);

/*
 * Reads what has arrived. 1: got bytes (or none yet), 0: the server closed
 * the connection, -1: error (the reason in err, "server line longer than ..."
 * included). Lines handed out by conn_line before are invalid afterwards.
 */
int conn_fill(struct conn *c, char err[GW_ERRLEN]);

/*
 * The next complete line, without its LF (or CRLF), borrowed: valid until
 * the next conn_fill or conn_close. The line is NUL-terminated in place.
 * False when no whole line is buffered.
 */
bool conn_line(struct conn *c, char **line, size_t *len);

/* Bytes of an unfinished line buffered (at EOF: the server cut a line short). */
size_t conn_partial(const struct conn *c);

#endif
