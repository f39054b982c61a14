/*
 * gwbench_conn.c - gwbench's client sockets; see gwbench_conn.h.
 */
#include "gwbench_conn.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_CHUNK (64 * 1024)
/* A buffer whose read part passes this is compacted before it grows. */
#define COMPACT_AT (256 * 1024)

void bconn_init(struct bconn *c, struct wire *w)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    buf_init(&c->in);
    buf_init(&c->out);
    c->wire = w;
}

int bconn_connect(struct bconn *c, const struct gwbench_addr *a, char err[GW_ERRLEN])
{
    int one = 1;

    GW_ASSERT(c->fd < 0);
    c->eof = false;
    c->connecting = false;
    c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, GW_ERRLEN, "socket: %s", strerror(errno));
        return -1;
    }
    /* Requests are small and each waits for its answer: never hold one back (Nagle). */
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
        c->wire->opened++;
        return 0;
    }
    if (errno == EINPROGRESS) {
        c->connecting = true;
        return 0;
    }
    snprintf(err, GW_ERRLEN, "cannot connect to %s: %s", a->text, strerror(errno));
    close(c->fd);
    c->fd = -1;
    return -1;
}

int bconn_connected(struct bconn *c, const struct gwbench_addr *a, char err[GW_ERRLEN])
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (!c->connecting)
        return 0;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        snprintf(err, GW_ERRLEN, "cannot connect to %s: %s", a->text, strerror(soerr));
        return -1;
    }
    c->connecting = false;
    c->wire->opened++;
    return 0;
}

void bconn_close(struct bconn *c)
{
    if (c->fd >= 0)
        close(c->fd); /* also leaves any epoll set it was in */
    c->fd = -1;
    c->connecting = false;
    c->watched = 0;
    buf_clear(&c->in);
    buf_clear(&c->out);
    c->in_off = c->out_off = 0;
}

void bconn_release(struct bconn *c)
{
    bconn_close(c);
    buf_release(&c->in);
    buf_release(&c->out);
}

void bconn_queue(struct bconn *c, const char *p, size_t len)
{
    if (c->out_off && c->out_off == c->out.len) {
        buf_clear(&c->out);
        c->out_off = 0;
    }
    buf_append(&c->out, p, len);
}

bool bconn_want_write(const struct bconn *c)
{
    return c->out_off < c->out.len;
}

int bconn_flush(struct bconn *c, char err[GW_ERRLEN])
{
    if (c->connecting)
        return 0;
    while (c->out_off < c->out.len) {
        /* MSG_NOSIGNAL: a gateway gone away is a failure to report, not a reason to die. */
        ssize_t n = send(c->fd, c->out.data + c->out_off, c->out.len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            snprintf(err, GW_ERRLEN, "send: %s", strerror(errno));
            return -1;
        }
        c->out_off += (size_t)n;
        c->wire->bytes_out += (uint64_t)n;
    }
    buf_clear(&c->out);
    c->out_off = 0;
    return 0;
}

int bconn_fill(struct bconn *c, char err[GW_ERRLEN])
{
    if (c->in_off == c->in.len) {
        buf_clear(&c->in);
        c->in_off = 0;
    }
    for (;;) {
        ssize_t n;

        if (c->in_off >= COMPACT_AT) {
            memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
            c->in.len -= c->in_off;
            c->in.data[c->in.len] = '\0';
            c->in_off = 0;
        }
        buf_grow(&c->in, READ_CHUNK);
        n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len - 1, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 1;
            snprintf(err, GW_ERRLEN, "recv: %s", strerror(errno));
            return -1;
        }
        if (n == 0) {
            c->eof = true;
            return 0;
        }
        c->in.len += (size_t)n;
        c->in.data[c->in.len] = '\0';
        c->wire->bytes_in += (uint64_t)n;
        if ((size_t)n < READ_CHUNK)
            return 1; /* very likely drained; level-triggered polling says so if not */
    }
}

const char *bconn_data(const struct bconn *c, size_t *len)
{
    *len = c->in.len - c->in_off;
    return c->in.data ? c->in.data + c->in_off : "";
}

void bconn_consume(struct bconn *c, size_t n)
{
    GW_ASSERT(n <= c->in.len - c->in_off);
    c->in_off += n;
}

bool bconn_line(struct bconn *c, char **line, size_t *len)
{
    char *start, *nl;
    size_t n;

    if (c->in_off >= c->in.len)
        return false;
    start = c->in.data + c->in_off;
    nl = memchr(start, '\n', c->in.len - c->in_off);
    if (!nl)
        return false;
    n = (size_t)(nl - start);
    c->in_off += n + 1;
    if (n && start[n - 1] == '\r')
        n--;
    start[n] = '\0';
    *line = start;
    *len = n;
    return true;
}

uint32_t bconn_events(const struct bconn *c)
{
    if (c->connecting)
        return EPOLLOUT;
    return EPOLLIN | (bconn_want_write(c) ? EPOLLOUT : 0);
}

int bconn_watch(struct bconn *c, int ep, char err[GW_ERRLEN])
{
    struct epoll_event ev;
    uint32_t want = bconn_events(c);

    if (c->fd < 0 || want == c->watched)
        return 0;
    memset(&ev, 0, sizeof(ev));
    ev.events = want;
    ev.data.ptr = c;
    if (epoll_ctl(ep, c->watched ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c->fd, &ev) < 0) {
        snprintf(err, GW_ERRLEN, "epoll_ctl: %s", strerror(errno));
        return -1;
    }
    c->watched = want;
    return 0;
}

int bconn_wait(struct bconn *c, const struct gwbench_addr *a, int64_t deadline_ns,
               char err[GW_ERRLEN])
{
    for (;;) {
        struct pollfd pfd;
        int64_t left;
        int rc;

        if (gwbench_stop) {
            snprintf(err, GW_ERRLEN, "interrupted");
            return -1;
        }
        if (!c->connecting && bconn_flush(c, err) < 0)
            return -1;
        left = deadline_ns - gwbench_now_ns();
        if (left <= 0) {
            snprintf(err, GW_ERRLEN, "%s did not answer in time",
                     c->connecting ? "the connect" : a->text);
            return -1;
        }
        pfd.fd = c->fd;
        pfd.events = (short)(c->connecting || bconn_want_write(c) ? POLLOUT : POLLIN);
        rc = poll(&pfd, 1, (int)((left + 999999) / 1000000));
        if (rc < 0 && errno != EINTR) {
            snprintf(err, GW_ERRLEN, "poll: %s", strerror(errno));
            return -1;
        }
        if (rc <= 0)
            continue;
        if (c->connecting) {
            if (bconn_connected(c, a, err) < 0)
                return -1;
            continue;
        }
        if (pfd.events & POLLOUT)
            continue;
        {
            size_t before = c->in.len - c->in_off;
            rc = bconn_fill(c, err);
            if (rc < 0)
                return -1;
            if (rc == 0 || c->in.len - c->in_off > before)
                return 0;
        }
    }
}
