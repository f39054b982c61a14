/*
 * gwbench_udp.c - the UDP front from gwbench's side; see gwbench_udp.h.
 */
#include "gwbench_udp.h"

#include "buf.h"
#include "gwbench_fetch.h"
#include "net.h"
#include "server_line.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

const char *const gwbench_udp_drop_names[GWBENCH_UDP_DROPS] = {
    "size", "rate", "utf8", "empty", "answer", "backlog", "overflow", "refused", "store",
};

int udp_resolve(struct client_addr *a, char err[GW_ERRLEN])
{
    char host[NET_HOST_MAX], portstr[8];
    struct addrinfo hints, *res = NULL;
    int port, rc;

    if (net_split_hostport(a->text, host, &port, err) < 0)
        return -1;
    snprintf(portstr, sizeof(portstr), "%d", port);
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, GW_ERRLEN, "%s: %s", a->text, gai_strerror(rc));
        return -1;
    }
    memcpy(&a->ss, res->ai_addr, res->ai_addrlen);
    a->len = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

int udp_open(const struct client_addr *a, char err[GW_ERRLEN])
{
    int fd = socket(a->ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        snprintf(err, GW_ERRLEN, "socket: %s", strerror(errno));
        return -1;
    }
    if (connect(fd, (const struct sockaddr *)&a->ss, a->len) < 0) {
        snprintf(err, GW_ERRLEN, "%s: %s", a->text, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

size_t udp_ping_make(char out[GWBENCH_UDP_PING_SIZE], const char *token)
{
    int n = snprintf(out, GWBENCH_UDP_PING_SIZE, "PING %s", token);

    GW_ASSERT(n > 0 && n < GWBENCH_UDP_PING_SIZE);
    memset(out + n, ' ', GWBENCH_UDP_PING_SIZE - (size_t)n);
    return GWBENCH_UDP_PING_SIZE;
}

bool udp_pong_token(const char *line, size_t len, char *out, size_t cap)
{
    struct server_line l;
    bool ok;

    if (len && line[len - 1] == '\n')
        len--;
    server_line_parse(&l, line, len);
    ok = l.type == SL_PONG && l.token.s && l.token.len < cap;
    if (ok) {
        memcpy(out, l.token.s, l.token.len);
        out[l.token.len] = '\0';
    }
    server_line_release(&l);
    return ok;
}

int udp_check(const struct client_addr *a, double timeout_s, char err[GW_ERRLEN])
{
    char ping[GWBENCH_UDP_PING_SIZE], got[4096], token[64];
    int64_t deadline = client_now_ns() + (int64_t)(timeout_s * 1e9), next = 0;
    size_t n = udp_ping_make(ping, "gwbench-check");
    int fd = udp_open(a, err), rc = -1;

    if (fd < 0)
        return -1;
    for (;;) {
        int64_t now = client_now_ns();
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t k;

        if (now >= deadline) {
            snprintf(err, GW_ERRLEN, "no pong to a PING within %g s", timeout_s);
            break;
        }
        if (now >= next) {
            if (send(fd, ping, n, 0) < 0 && errno != EAGAIN && errno != ENOBUFS) {
                snprintf(err, GW_ERRLEN, "%s", strerror(errno));
                break;
            }
            next = now + 200 * 1000000LL;
        }
        if (poll(&p, 1, (int)((next < deadline ? next : deadline) - now) / 1000000 + 1) < 0 &&
            errno != EINTR) {
            snprintf(err, GW_ERRLEN, "poll: %s", strerror(errno));
            break;
        }
        k = recv(fd, got, sizeof(got), MSG_DONTWAIT);
        if (k < 0) {
            if (errno == EAGAIN || errno == EINTR)
                continue;
            /* A connected UDP socket learns of "port unreachable" this way. */
            snprintf(err, GW_ERRLEN, "%s",
                     errno == ECONNREFUSED ? "nothing receives datagrams there" : strerror(errno));
            break;
        }
        if (udp_pong_token(got, (size_t)k, token, sizeof(token)) &&
            strcmp(token, "gwbench-check") == 0) {
            rc = 0;
            break;
        }
    }
    close(fd);
    return rc;
}

int udp_drops_read(const struct client_addr *http, double timeout_s, double out[GWBENCH_UDP_DROPS],
                   char err[GW_ERRLEN])
{
    struct buf body = BUF_INIT;
    const char *obj, *end;
    int status, rc = -1;

    if (fetch_get(http, "/v1/stats", timeout_s, &status, &body, err) < 0)
        goto out;
    if (status != 200) {
        snprintf(err, GW_ERRLEN, "GET /v1/stats answered %d", status);
        goto out;
    }
    /* {"udp_dropped_total":{"size":0,"rate":12,...}: the numbers of one flat object. */
    obj = body.data ? strstr(body.data, "\"udp_dropped_total\":{") : NULL;
    end = obj ? strchr(obj, '}') : NULL;
    if (!end) {
        snprintf(err, GW_ERRLEN, "GET /v1/stats has no udp_dropped_total");
        goto out;
    }
    for (size_t i = 0; i < GWBENCH_UDP_DROPS; i++) {
        char key[32];
        const char *at;
        snprintf(key, sizeof(key), "\"%s\":", gwbench_udp_drop_names[i]);
        at = strstr(obj, key);
        out[i] = at && at < end ? strtod(at + strlen(key), NULL) : 0;
    }
    rc = 0;
out:
    buf_release(&body);
    return rc;
}
