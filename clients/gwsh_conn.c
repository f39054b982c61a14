/*
 * gwsh_conn.c - the connection of a gwsh session; see gwsh_conn.h.
 */
#include "gwsh_conn.h"

#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)

void conn_init(struct conn *c)
{
    c->fd = -1;
    buf_init(&c->in);
    buf_init(&c->out);
    c->in_off = c->in_scan = c->out_off = 0;
    c->saved_errno = 0;
}

int conn_open(struct conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN])
{
    int one = 1;

    GW_ASSERT(c->fd < 0);
    c->fd = net_connect(addr, timeout_ms, err);
    if (c->fd < 0) {
        c->saved_errno = errno;
        return -1;
    }
    /* Commands are small lines typed one at a time: do not hold them back (and /ping measures). */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A gateway that vanishes without a FIN is noticed eventually even when idle. */
    setsockopt(c->fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return 0;
}

void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    buf_release(&c->in);
    buf_release(&c->out);
    c->in_off = c->in_scan = c->out_off = 0;
}

void conn_send(struct conn *c, const char *line, size_t len)
{
    buf_append(&c->out, line, len);
    buf_append(&c->out, "\n", 1);
}

bool conn_want_write(const struct conn *c)
{
    return c->out_off < c->out.len;
}

int conn_flush(struct conn *c, char err[GW_ERRLEN])
{
    while (c->out_off < c->out.len) {
        /* MSG_NOSIGNAL: a closed connection is an error to report, not a reason to die. */
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            c->saved_errno = errno;
            snprintf(err, GW_ERRLEN, "send: %s", strerror(errno));
            return -1;
        }
        c->out_off += (size_t)n;
    }
    buf_clear(&c->out);
    c->out_off = 0;
    return 0;
}

int conn_fill(struct conn *c, char err[GW_ERRLEN])
{
    ssize_t n;

    /* Drop the lines already handed out, so the buffer holds one line at most. */
    if (c->in_off) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in.data[c->in.len] = '\0';
        c->in_off = 0;
    }
    if (c->in.len > CONN_LINE_MAX) {
        c->saved_errno = EMSGSIZE;
        snprintf(err, GW_ERRLEN, "the server sent a line longer than %zu bytes", CONN_LINE_MAX);
        return -1;
    }
    buf_grow(&c->in, READ_CHUNK);
    for (;;) {
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n >= 0 || errno != EINTR)
            break;
    }
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 1;
        c->saved_errno = errno;
        snprintf(err, GW_ERRLEN, "%s", strerror(errno));
        return -1;
    }
    if (n == 0)
        return 0;
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    return 1;
}

bool conn_line(struct conn *c, char **line, size_t *len)
{
    size_t avail = c->in.len - c->in_off;
    char *start, *nl;
    size_t n;

    if (avail == 0)
        return false;
    start = c->in.data + c->in_off;
    nl = memchr(start + c->in_scan, '\n', avail - c->in_scan);
    if (!nl) {
        /* Remember how far we looked: a long line arrives in many reads. */
        c->in_scan = avail;
        return false;
    }
    n = (size_t)(nl - start);
    c->in_off += n + 1;
    c->in_scan = 0;
    if (n && start[n - 1] == '\r')
        n--;
    start[n] = '\0';
    *line = start;
    *len = n;
    return true;
}

size_t conn_partial(const struct conn *c)
{
    return c->in.len - c->in_off;
}
