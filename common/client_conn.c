/*
 * client_conn.c - a client's TCP connection; see client_conn.h.
 */
#include "client_conn.h"

#include "net.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define READ_CHUNK  (64 * 1024)
/* What one client_conn_fill reads at most before it lets the caller serve others. */
#define READ_BUDGET (16 * READ_CHUNK)

int64_t client_now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The socket options every client connection gets. */
static void tune(int fd)
{
    int one = 1;

    /* Requests are small and each is waited for: never hold one back (Nagle). */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A server that vanishes without a FIN is noticed eventually, even by an idle client. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

int client_addr_resolve(struct client_addr *a, const char *text, int timeout_ms,
                        char err[GW_ERRLEN])
{
    int fd;

    a->text = text;
    a->len = 0;
    a->src_len = 0;
    fd = net_connect(text, timeout_ms, err);
    if (fd < 0)
        return -1;
    a->len = sizeof(a->ss);
    if (getpeername(fd, (struct sockaddr *)&a->ss, &a->len) < 0) {
        snprintf(err, GW_ERRLEN, "cannot connect to %s: getpeername: %s", text, strerror(errno));
        a->len = 0;
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

void client_conn_init(struct client_conn *c, struct client_stats *stats)
{
    memset(c, 0, sizeof(*c));
    c->fd = -1;
    c->line_max = CLIENT_LINE_MAX;
    c->peer = "the server";
    buf_init(&c->in);
    buf_init(&c->out);
    c->stats = stats;
}

static void opened(struct client_conn *c)
{
    if (c->stats)
        c->stats->opened++;
}

int client_conn_open(struct client_conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN])
{
    GW_ASSERT(c->fd < 0);
    c->eof = c->connecting = false;
    c->peer = addr;
    c->fd = net_connect(addr, timeout_ms, err);
    if (c->fd < 0)
        return -1;
    tune(c->fd);
    opened(c);
    return 0;
}

int client_conn_start(struct client_conn *c, const struct client_addr *a, char err[GW_ERRLEN])
{
    GW_ASSERT(c->fd < 0 && a->len > 0);
    c->eof = c->connecting = false;
    c->peer = a->text;
    c->fd = socket(a->ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        snprintf(err, GW_ERRLEN, "socket: %s", strerror(errno));
        return -1;
    }
    tune(c->fd);
    if (a->src_len) {
        /* Without this, bind() would take a port for any peer: 28k connections per address. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
        if (bind(c->fd, (const struct sockaddr *)&a->src, a->src_len) != 0) {
            snprintf(err, GW_ERRLEN, "cannot bind a connection to %s: %s", a->text,
                     strerror(errno));
            close(c->fd);
            c->fd = -1;
            return -1;
        }
    }
    if (connect(c->fd, (const struct sockaddr *)&a->ss, a->len) == 0) {
        opened(c);
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

int client_conn_finish(struct client_conn *c, char err[GW_ERRLEN])
{
    int soerr = 0;
    socklen_t len = sizeof(soerr);

    if (!c->connecting)
        return 0;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        soerr = errno;
    if (soerr) {
        snprintf(err, GW_ERRLEN, "cannot connect to %s: %s", c->peer, strerror(soerr));
        return -1;
    }
    c->connecting = false;
    opened(c);
    return 0;
}

void client_conn_close(struct client_conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->connecting = false;
    c->watched = 0;
    buf_clear(&c->in);
    buf_clear(&c->out);
    c->in_off = c->in_scan = c->out_off = 0;
}

void client_conn_release(struct client_conn *c)
{
    client_conn_close(c);
    buf_release(&c->in);
    buf_release(&c->out);
}

void client_conn_trim(struct client_conn *c)
{
    if (c->in_off == c->in.len) {
        buf_release(&c->in);
        c->in_off = c->in_scan = 0;
    }
    if (c->out_off == c->out.len) {
        buf_release(&c->out);
        c->out_off = 0;
    }
}

void client_conn_queue(struct client_conn *c, const void *p, size_t len)
{
    if (c->out_off && c->out_off == c->out.len) {
        buf_clear(&c->out);
        c->out_off = 0;
    }
    buf_append(&c->out, p, len);
}

void client_conn_send_line(struct client_conn *c, const char *line, size_t len)
{
    client_conn_queue(c, line, len);
    client_conn_queue(c, "\n", 1);
}

bool client_conn_want_write(const struct client_conn *c)
{
    return c->out_off < c->out.len;
}

int client_conn_flush(struct client_conn *c, char err[GW_ERRLEN])
{
    if (c->connecting)
        return 0;
    while (c->out_off < c->out.len) {
        /* MSG_NOSIGNAL: a server gone away is a failure to report, not a reason to die. */
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
        if (c->stats)
            c->stats->bytes_out += (uint64_t)n;
    }
    buf_clear(&c->out);
    c->out_off = 0;
    return 0;
}

int client_conn_fill(struct client_conn *c, char err[GW_ERRLEN])
{
    size_t budget = READ_BUDGET;

    /* Drop what was handed out: the buffer then holds only unread bytes (a line at most, for a
     * reader of lines). */
    if (c->in_off) {
        memmove(c->in.data, c->in.data + c->in_off, c->in.len - c->in_off);
        c->in.len -= c->in_off;
        c->in.data[c->in.len] = '\0';
        c->in_off = 0;
    }
    for (;;) {
        size_t room;
        ssize_t n;

        buf_grow(&c->in, READ_CHUNK);
        room = c->in.cap - c->in.len - 1; /* the NUL that buf keeps after the bytes */
        if (room > budget)
            room = budget;
        n = recv(c->fd, c->in.data + c->in.len, room, 0);
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
        if (c->stats)
            c->stats->bytes_in += (uint64_t)n;
        /* A short read very likely drained the socket; level-triggered polling says if not. */
        budget -= (size_t)n;
        if ((size_t)n < room || budget == 0)
            return 1;
    }
}

const char *client_conn_data(const struct client_conn *c, size_t *len)
{
    *len = c->in.len - c->in_off;
    return c->in.data ? c->in.data + c->in_off : "";
}

void client_conn_consume(struct client_conn *c, size_t n)
{
    GW_ASSERT(n <= c->in.len - c->in_off);
    c->in_off += n;
    c->in_scan = 0;
}

enum client_line client_conn_line(struct client_conn *c, char **line, size_t *len)
{
    size_t avail = c->in.len - c->in_off, n;
    char *start, *nl;

    if (avail == 0)
        return CLIENT_MORE;
    start = c->in.data + c->in_off;
    nl = memchr(start + c->in_scan, '\n', avail - c->in_scan);
    if (!nl) {
        /* Remember how far we looked: a long line arrives in many reads. */
        c->in_scan = avail;
        /* line_max bytes and a CR may still be followed by the LF. */
        return avail > c->line_max + 1 ? CLIENT_TOO_LONG : CLIENT_MORE;
    }
    n = (size_t)(nl - start);
    if (n && start[n - 1] == '\r')
        n--;
    if (n > c->line_max)
        return CLIENT_TOO_LONG;
    c->in_off += (size_t)(nl - start) + 1;
    c->in_scan = 0;
    start[n] = '\0';
    *line = start;
    *len = n;
    return CLIENT_LINE;
}

uint32_t client_conn_events(const struct client_conn *c)
{
    if (c->connecting)
        return EPOLLOUT;
    return EPOLLIN | (client_conn_want_write(c) ? EPOLLOUT : 0);
}

int client_conn_watch(struct client_conn *c, int ep, char err[GW_ERRLEN])
{
    struct epoll_event ev;
    uint32_t want = client_conn_events(c);

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

int client_conn_wait(struct client_conn *c, int64_t deadline_ns, const sigset_t *sigmask,
                     char err[GW_ERRLEN])
{
    for (;;) {
        struct pollfd pfd;
        struct timespec ts;
        int64_t left;
        size_t before;
        int rc;

        if (client_conn_flush(c, err) < 0)
            return -1;
        left = deadline_ns - client_now_ns();
        if (left <= 0) {
            if (c->connecting)
                snprintf(err, GW_ERRLEN, "the connect to %s did not finish in time", c->peer);
            else
                snprintf(err, GW_ERRLEN, "%s did not answer in time", c->peer);
            return -1;
        }
        pfd.fd = c->fd;
        pfd.events = (short)(c->connecting || client_conn_want_write(c) ? POLLOUT : POLLIN);
        pfd.revents = 0;
        ts.tv_sec = (time_t)(left / 1000000000LL);
        ts.tv_nsec = (long)(left % 1000000000LL);
        rc = ppoll(&pfd, 1, &ts, sigmask);
        if (rc < 0) {
            int saved = errno;
            if (saved == EINTR)
                snprintf(err, GW_ERRLEN, "interrupted");
            else
                snprintf(err, GW_ERRLEN, "poll: %s", strerror(saved));
            errno = saved;
            return -1;
        }
        if (rc == 0)
            continue;
        if (c->connecting) {
            if (client_conn_finish(c, err) < 0)
                return -1;
            continue;
        }
        if (pfd.events & POLLOUT)
            continue;
        before = c->in.len - c->in_off;
        rc = client_conn_fill(c, err);
        if (rc < 0)
            return -1;
        if (rc == 0 || c->in.len - c->in_off > before)
            return 0;
    }
}
