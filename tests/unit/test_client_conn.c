/*
 * test_client_conn.c - common/client_conn.h on real loopback sockets: the
 * connect (waited for, and not), lines cut the same whatever the reads,
 * CRLF, the line limit, the raw bytes, EOF, the output queue, the counters,
 * the bounded read per call, the wait's deadline and the source address.
 */
#include "client_conn.h"

#include "net.h"
#include "tap.h"

#include <arpa/inet.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int listener(int *port)
{
    char err[GW_ERRLEN];
    int fd = net_listen("127.0.0.1:0", 16, err);

    if (fd < 0)
        bail_out("%s", err);
    *port = net_local_port(fd);
    return fd;
}

/* The server's end of the next connection (the listener is non-blocking). */
static int accept_one(int lfd)
{
    struct pollfd p = {lfd, POLLIN, 0};
    int fd;

    if (poll(&p, 1, 5000) != 1)
        bail_out("no connection to accept");
    fd = accept(lfd, NULL, NULL);
    if (fd < 0)
        bail_out("accept: %s", strerror(errno));
    return fd;
}

static void send_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w <= 0)
            bail_out("send: %s", strerror(errno));
        p += w;
        n -= (size_t)w;
    }
}

/* Reads until `want` bytes came or the peer closed; returns how many. */
static size_t recv_n(int fd, char *out, size_t want)
{
    size_t got = 0;

    while (got < want) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t r;
        if (poll(&p, 1, 5000) != 1)
            break;
        r = recv(fd, out + got, want - got, 0);
        if (r <= 0)
            break;
        got += (size_t)r;
    }
    return got;
}

/* Waits until c has input and reads it; bails out on a failure. */
static int fill(struct client_conn *c)
{
    char err[GW_ERRLEN];
    int rc;

    if (client_conn_wait(c, client_now_ns() + 5000000000LL, NULL, err) < 0)
        bail_out("wait: %s", err);
    rc = client_conn_fill(c, err);
    if (rc < 0)
        bail_out("fill: %s", err);
    return rc;
}

static void test_open_and_lines(void)
{
    static const char stream[] = "{\"type\":\"hello\"}\nsecond\r\n\nthird line, longer\nlast";
    const char *want[] = {"{\"type\":\"hello\"}", "second", "", "third line, longer"};
    struct client_stats st = {0, 0, 0};
    struct client_conn c;
    char err[GW_ERRLEN], addr[64];
    int lfd, port, s;
    bool all = true;

    lfd = listener(&port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    client_conn_init(&c, &st);
    ok(client_conn_open(&c, addr, 2000, err) == 0, "open %s (%s)", addr, err);
    is_uint(st.opened, 1, "the connect is counted");
    s = accept_one(lfd);

    /* The stream cut at every byte: the same lines come out whatever the reads. */
    for (size_t cut = 1; cut < sizeof(stream) - 1 && all; cut++) {
        size_t k = 0, n;
        char *line;
        size_t len;
        enum client_line r;

        send_all(s, stream, cut);
        do {
            fill(&c);
            client_conn_data(&c, &n);
        } while (n < cut);
        for (;;) {
            r = client_conn_line(&c, &line, &len);
            if (r == CLIENT_MORE) {
                if (k == 4)
                    break;
                if (cut < sizeof(stream) - 1 && n == cut) {
                    send_all(s, stream + cut, sizeof(stream) - 1 - cut);
                    n = 0;
                }
                fill(&c);
                continue;
            }
            if (r != CLIENT_LINE || k >= 4 || len != strlen(want[k]) ||
                memcmp(line, want[k], len) != 0 || line[len] != '\0') {
                all = false;
                diag("cut %zu: line %zu is %.*s", cut, k, r == CLIENT_LINE ? (int)len : 0,
                     r == CLIENT_LINE ? line : "");
                break;
            }
            k++;
        }
        /* "last" has no LF: it stays buffered, whole. */
        if (n == cut) {
            send_all(s, stream + cut, sizeof(stream) - 1 - cut);
            fill(&c);
        }
        do {
            client_conn_data(&c, &n);
            if (n < 4)
                fill(&c);
        } while (n < 4);
        client_conn_data(&c, &n);
        if (n != 4) {
            all = false;
            diag("cut %zu: %zu bytes left, not 4", cut, n);
        }
        client_conn_consume(&c, n);
    }
    ok(all, "lines (LF, CRLF, empty) are the same however the bytes are cut");
    is_uint(st.bytes_in, (sizeof(stream) - 1) * (sizeof(stream) - 2), "bytes in are counted");

    client_conn_send_line(&c, "PING a", 6);
    client_conn_queue(&c, "PING b\n", 7);
    ok(client_conn_want_write(&c), "queued bytes want the socket");
    ok(client_conn_flush(&c, err) == 0, "flush");
    ok(!client_conn_want_write(&c), "nothing left to send");
    {
        char got[32];
        size_t n = recv_n(s, got, 14);
        is_mem(got, n, "PING a\nPING b\n", 14, "the server got both lines, in order");
    }
    is_uint(st.bytes_out, 14, "bytes out are counted");

    /* Trim: an idle connection keeps no buffer, and works as before afterwards. */
    client_conn_send_line(&c, "x", 1);
    client_conn_trim(&c);
    ok(c.in.data == NULL && c.out.data != NULL, "trim frees the empty input, keeps unsent output");
    ok(client_conn_flush(&c, err) == 0, "flush after trim");
    client_conn_trim(&c);
    ok(c.in.data == NULL && c.out.data == NULL, "trim frees both once empty");
    {
        char got[4];
        is_uint(recv_n(s, got, 2), 2, "the server got the line queued before the trim");
    }

    /* The server closes after one more line: it can still be read, then EOF. */
    send_all(s, "bye\n", 4);
    close(s);
    {
        char *line;
        size_t len;
        int rc;
        while ((rc = fill(&c)) == 1 && !c.eof)
            ;
        ok(rc == 0 && c.eof, "the close is EOF");
        ok(client_conn_line(&c, &line, &len) == CLIENT_LINE && len == 3 &&
               memcmp(line, "bye", 3) == 0,
           "the line sent before the close is still there");
    }
    client_conn_release(&c);
    ok(c.fd == -1 && c.in.data == NULL, "release closes and frees");
    close(lfd);
}

static void test_line_limit(void)
{
    struct client_conn c;
    char err[GW_ERRLEN], addr[64], *line;
    size_t len;
    int lfd, port, s;

    lfd = listener(&port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    client_conn_init(&c, NULL);
    c.line_max = 8;
    if (client_conn_open(&c, addr, 2000, err) < 0)
        bail_out("%s", err);
    s = accept_one(lfd);

    send_all(s, "12345678\r\n", 10);
    while (client_conn_line(&c, &line, &len) == CLIENT_MORE)
        fill(&c);
    is_mem(line, len, "12345678", 8, "a line of line_max bytes (and CRLF) is a line");

    send_all(s, "123456789", 9);
    while (fill(&c) == 1 && c.in.len - c.in_off < 9)
        ;
    is_int(client_conn_line(&c, &line, &len), CLIENT_MORE,
           "line_max + 1 bytes without LF: it may still end with CRLF");
    send_all(s, "0", 1);
    while (fill(&c) == 1 && c.in.len - c.in_off < 10)
        ;
    is_int(client_conn_line(&c, &line, &len), CLIENT_TOO_LONG,
           "line_max + 2 bytes without a LF: too long, before the LF ever comes");
    client_conn_release(&c);
    close(s);

    /* A longer line that does end: too long as well. */
    client_conn_init(&c, NULL);
    c.line_max = 4;
    if (client_conn_open(&c, addr, 2000, err) < 0)
        bail_out("%s", err);
    s = accept_one(lfd);
    send_all(s, "12345\n", 6);
    while (fill(&c) == 1 && c.in.len - c.in_off < 6)
        ;
    is_int(client_conn_line(&c, &line, &len), CLIENT_TOO_LONG, "a whole line over the limit");
    client_conn_release(&c);
    close(s);
    close(lfd);
}

static void test_start_raw_and_budget(void)
{
    struct client_stats st = {0, 0, 0};
    struct client_addr a;
    struct client_conn c;
    char err[GW_ERRLEN], addr[64];
    static char big[3 << 20];
    const char *p;
    size_t len, total = 0;
    int lfd, port, s, fills = 0;

    lfd = listener(&port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    ok(client_addr_resolve(&a, addr, 2000, err) == 0 && a.len > 0, "resolve %s", addr);
    close(accept_one(lfd)); /* the resolving connect */
    client_conn_init(&c, &st);
    ok(client_conn_start(&c, &a, err) == 0, "start a connect without waiting (%s)", err);
    s = accept_one(lfd);
    if (c.connecting) {
        struct pollfd pfd = {c.fd, POLLOUT, 0};
        poll(&pfd, 1, 5000);
        ok(client_conn_finish(&c, err) == 0, "finish the connect");
    } else {
        ok(1, "connected at once (loopback)");
    }
    is_uint(st.opened, 1, "counted once connected");

    /* 3 MiB at once: each fill takes at most about 1 MiB, the rest waits for the next. */
    memset(big, 'x', sizeof(big));
    {
        size_t sent = 0;
        while (total < sizeof(big)) {
            size_t before;
            struct pollfd pfd = {s, POLLOUT, 0};
            if (sent < sizeof(big) && poll(&pfd, 1, 0) == 1) {
                ssize_t w = send(s, big + sent, sizeof(big) - sent, MSG_DONTWAIT);
                if (w > 0)
                    sent += (size_t)w;
            }
            client_conn_data(&c, &before);
            if (client_conn_wait(&c, client_now_ns() + 5000000000LL, NULL, err) < 0)
                bail_out("wait: %s", err);
            p = client_conn_data(&c, &len);
            if (len > (1 << 20) + (64 << 10)) {
                diag("one fill read %zu bytes", len);
                break;
            }
            total += len;
            fills++;
            client_conn_consume(&c, len);
        }
    }
    is_uint(total, sizeof(big), "3 MiB read as raw bytes, %d fills, none over ~1 MiB", fills);
    (void)p;
    close(s);
    client_conn_release(&c);
    close(lfd);
}

static void test_failures(void)
{
    struct client_conn c;
    char err[GW_ERRLEN], addr[64];
    int lfd, port, s;
    int64_t t0;

    /* A port nothing listens on. */
    lfd = listener(&port);
    close(lfd);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    client_conn_init(&c, NULL);
    ok(client_conn_open(&c, addr, 2000, err) < 0 && strstr(err, "cannot connect to 127.0.0.1:") &&
           strstr(err, "Connection refused"),
       "a refused connect says so: %s", err);

    /* A server that says nothing: the wait ends at its deadline. */
    lfd = listener(&port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    if (client_conn_open(&c, addr, 2000, err) < 0)
        bail_out("%s", err);
    s = accept_one(lfd);
    t0 = client_now_ns();
    ok(client_conn_wait(&c, t0 + 200000000LL, NULL, err) < 0 && strstr(err, "did not answer"),
       "silence ends the wait at its deadline: %s", err);
    ok(client_now_ns() - t0 >= 190000000LL && client_now_ns() - t0 < 3000000000LL,
       "after about 200 ms");
    client_conn_release(&c);
    close(s);
    close(lfd);
}

/* A source address: the server sees the connection come from it; a bad one fails the start. */
static void test_source_address(void)
{
    struct client_addr a;
    struct client_conn c;
    struct sockaddr_in *src = (struct sockaddr_in *)&a.src, peer;
    socklen_t plen = sizeof(peer);
    char err[GW_ERRLEN], addr[64], text[INET_ADDRSTRLEN];
    int lfd, port, s;

    lfd = listener(&port);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    if (client_addr_resolve(&a, addr, 2000, err) < 0)
        bail_out("%s", err);
    close(accept_one(lfd));
    memset(&a.src, 0, sizeof(a.src));
    src->sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.3", &src->sin_addr);
    a.src_len = sizeof(*src);
    client_conn_init(&c, NULL);
    ok(client_conn_start(&c, &a, err) == 0, "start a connect from 127.0.0.3 (%s)", err);
    s = accept_one(lfd);
    if (getpeername(s, (struct sockaddr *)&peer, &plen) != 0)
        bail_out("getpeername: %s", strerror(errno));
    inet_ntop(AF_INET, &peer.sin_addr, text, sizeof(text));
    is_str(text, "127.0.0.3", "the server sees the source address");
    ok(ntohs(peer.sin_port) != 0, "with a port the kernel chose");
    client_conn_close(&c);
    close(s);

    /* An address this machine does not have cannot be bound. */
    inet_pton(AF_INET, "192.0.2.1", &src->sin_addr);
    ok(client_conn_start(&c, &a, err) < 0 && strstr(err, "cannot bind") && c.fd < 0,
       "a foreign source address fails the start: %s", err);
    client_conn_release(&c);
    close(lfd);
}

int main(void)
{
    test_open_and_lines();
    test_line_limit();
    test_start_raw_and_budget();
    test_source_address();
    test_failures();
    return done_testing();
}
