/*
 * net.c - listening sockets; see net.h.
 */
#include "net.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
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

int net_listen(const char *addr, int backlog, char err[GW_ERRLEN])
{
    char host[NET_HOST_MAX], portstr[8];
    struct addrinfo hints, *res = NULL, *ai;
    int port, rc, fd = -1, saved = 0, one = 1;

    if (net_split_hostport(addr, host, &port, err) < 0)
        return -1;
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
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
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
            bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, backlog) == 0)
            break;
        saved = errno;
        close(fd);
        fd = -1;
    }
    freeaddrinfo(res);
    if (fd < 0) {
        snprintf(err, GW_ERRLEN, "cannot listen on %s: %s", addr, strerror(saved));
        errno = saved;
    }
    return fd;
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
