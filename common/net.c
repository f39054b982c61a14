/*
 * net.c - listening and connecting sockets; see net.h.
 */
#include "net.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netdb.h>
#include <arpa/inet.h>
#include <netinet/in.h>
/* The kernel's own: its struct tcp_info has tcpi_bytes_acked, glibc's stops short of it. */
#include <linux/tcp.h>
#include <poll.h>
#include <stdint.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

int net_split_hostport(const char *addr, char host[NET_HOST_MAX], int *port, char err[GW_ERRLEN])
{
    const char *colon, *hstart = addr, *hend;
    char *end;
    long p;

    if (addr[0] == '[') {
        hend = strchr(addr, ']');
        if (!hend || hend[1] != ':') {
            snprintf(err, GW_ERRLEN, "'%s': expected [address]:port", addr);
            return -1;
        }
        hstart = addr + 1;
        colon = hend + 1;
    } else {
        colon = strrchr(addr, ':');
        if (!colon) {
            snprintf(err, GW_ERRLEN, "'%s': expected host:port", addr);
            return -1;
        }
        if (memchr(addr, ':', (size_t)(colon - addr))) {
            snprintf(err, GW_ERRLEN, "'%s': write IPv6 addresses as [address]:port", addr);
            return -1;
        }
        hend = colon;
    }
    if (hend == hstart) {
        snprintf(err, GW_ERRLEN, "'%s': the host is empty", addr);
        return -1;
    }
    if ((size_t)(hend - hstart) >= NET_HOST_MAX) {
        snprintf(err, GW_ERRLEN, "'%s': the host is too long", addr);
        return -1;
    }
    errno = 0;
    p = strtol(colon + 1, &end, 10);
    if (colon[1] < '0' || colon[1] > '9' || *end || errno || p < 0 || p > 65535) {
        snprintf(err, GW_ERRLEN, "'%s': the port must be a number from 0 to 65535", addr);
        return -1;
    }
    memcpy(host, hstart, (size_t)(hend - hstart));
    host[hend - hstart] = '\0';
    *port = (int)p;
    return 0;
}

int net_set_nonblock(int fd, char err[GW_ERRLEN])
{
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) {
        snprintf(err, GW_ERRLEN, "fcntl(O_NONBLOCK): %s", strerror(errno));
        return -1;
    }
    return 0;
}

/*
 * A non-blocking, close-on-exec socket of type bound to the first address
 * addr resolves to that takes it; listening (backlog) when it is a stream.
 */
static int bind_first(const char *addr, int type, int backlog, char err[GW_ERRLEN])
{
    char host[NET_HOST_MAX], portstr[8];
    struct addrinfo hints, *res = NULL, *ai;
    int port, rc, fd = -1, saved = 0, one = 1;

    if (net_split_hostport(addr, host, &port, err) < 0)
        return -1;
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = type;
    hints.ai_flags = AI_PASSIVE;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, GW_ERRLEN, "%s: %s", addr, gai_strerror(rc));
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
        if (fd < 0) {
            saved = errno;
            continue;
        }
        /*
         * SO_REUSEADDR lets a listener restart past TIME_WAIT; on UDP it would
         * let a second gateway share the port and take half the datagrams.
         */
        if ((type != SOCK_STREAM ||
             setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0) &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
            (type != SOCK_STREAM || listen(fd, backlog) == 0))
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, GW_ERRLEN, "cannot %s on %s: %s", type == SOCK_STREAM ? "listen" : "bind",
                 addr, strerror(saved));
        errno = saved;
    }
    return fd;
}

void net_addr_name(const struct sockaddr *sa, char *out, size_t cap)
{
    char host[INET6_ADDRSTRLEN] = "?";

    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)(const void *)sa;
        inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
        snprintf(out, cap, "%s:%d", host, ntohs(a->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)(const void *)sa;
        inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
        snprintf(out, cap, "[%s]:%d", host, ntohs(a->sin6_port));
    } else {
        snprintf(out, cap, "?:0");
    }
}

void net_peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getpeername(fd, (struct sockaddr *)&ss, &len) != 0)
        ss.ss_family = AF_UNSPEC;
    net_addr_name((struct sockaddr *)&ss, out, cap);
}

int net_listen(const char *addr, int backlog, char err[GW_ERRLEN])
{
    return bind_first(addr, SOCK_STREAM, backlog, err);
}

int net_bind_udp(const char *addr, char err[GW_ERRLEN])
{
    return bind_first(addr, SOCK_DGRAM, 0, err);
}

int net_local_port(int fd)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0)
        return -1;
    if (ss.ss_family == AF_INET)
        return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6)
        return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return -1;
}

static int64_t monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * One non-blocking connect, waited for until deadline_ms (< 0: for ever).
 * Returns the socket, or -1 with errno set.
 */
static int connect_one(const struct addrinfo *ai, int64_t deadline_ms)
{
    int fd, saved, rc, wait_ms = -1, soerr = 0;
    socklen_t len = sizeof(soerr);
    struct pollfd pfd;

    fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0)
        return -1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
        return fd;
    if (errno != EINPROGRESS)
        goto fail;
    pfd.fd = fd;
    pfd.events = POLLOUT;
    if (deadline_ms >= 0) {
        int64_t left = deadline_ms - monotonic_ms();
        wait_ms = left <= 0 ? 0 : left > INT_MAX ? INT_MAX : (int)left;
    }
    rc = poll(&pfd, 1, wait_ms);
    if (rc == 0)
        errno = ETIMEDOUT;
    if (rc <= 0)
        goto fail; /* EINTR included: the caller wants to know */
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
        goto fail;
    if (soerr) {
        errno = soerr;
        goto fail;
    }
    return fd;

fail:
    saved = errno;
    close(fd);
    errno = saved;
    return -1;
}

int net_connect(const char *addr, int timeout_ms, char err[GW_ERRLEN])
{
    char host[NET_HOST_MAX], portstr[8];
    struct addrinfo hints, *res = NULL, *ai;
    int port, rc, fd = -1, saved = ECONNREFUSED;
    int64_t deadline_ms = timeout_ms < 0 ? -1 : monotonic_ms() + timeout_ms;

    if (net_split_hostport(addr, host, &port, err) < 0) {
        errno = EINVAL;
        return -1;
    }
    if (port == 0) {
        snprintf(err, GW_ERRLEN, "cannot connect to %s: port 0 names no server", addr);
        errno = EINVAL;
        return -1;
    }
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, GW_ERRLEN, "cannot connect to %s: %s", addr,
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        errno = rc == EAI_SYSTEM ? errno : EHOSTUNREACH;
        return -1;
    }
    for (ai = res; ai; ai = ai->ai_next) {
        fd = connect_one(ai, deadline_ms);
        if (fd >= 0)
            break;
        saved = errno;
        /* The next address gets a chance, unless time is up or we were told to stop. */
        if (saved == EINTR || saved == ETIMEDOUT)
            break;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        if (saved == ETIMEDOUT && timeout_ms >= 0)
            snprintf(err, GW_ERRLEN, "cannot connect to %s: no answer within %d ms", addr,
                     timeout_ms);
        else
            snprintf(err, GW_ERRLEN, "cannot connect to %s: %s", addr, strerror(saved));
        errno = saved;
    }
    return fd;
}

void net_tune_session(int fd, unsigned idle_s, unsigned user_timeout_s)
{
    int one = 1, idle = (int)idle_s, intvl = idle / 3 ? idle / 3 : 1, cnt = 3;
    unsigned user_timeout = user_timeout_s * 1000u;

    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

size_t net_unread(int fd)
{
    int n = 0;

    return ioctl(fd, FIONREAD, &n) == 0 && n > 0 ? (size_t)n : 0;
}

int net_tcp_bytes(int fd, uint64_t *acked, uint64_t *received)
{
    struct tcp_info ti;
    socklen_t len = sizeof(ti);

    memset(&ti, 0, sizeof(ti));
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) != 0 ||
        len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof(ti.tcpi_bytes_received))
        return -1;
    if (acked)
        *acked = ti.tcpi_bytes_acked;
    if (received)
        *received = ti.tcpi_bytes_received;
    return 0;
}
