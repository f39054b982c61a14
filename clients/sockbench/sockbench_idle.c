/*
 * sockbench_idle.c - what idle sessions cost a server: VmRSS of --pid
 * before, then --connections sessions of any kind opened (and subscribed to
 * --channel when given: each has its confirmation; redis without a channel:
 * INFO clients counts them), then VmRSS again. Every session must still be
 * open and quiet when it is read; they are closed with a reset (SO_LINGER 0)
 * so that no TIME_WAIT is left to fill the ephemeral ports.
 */
#include "sockbench.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static long vmrss_kb(long pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", pid);
    FILE *f = fopen(path, "r");
    if (!f)
        die("cannot open %s: %s", path, strerror(errno));
    long kb = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
            break;
    fclose(f);
    if (kb < 0)
        die("no VmRSS in %s", path);
    return kb;
}

int run_idle(void)
{
    long n = opt.connections ? opt.connections : 10000;
    if (opt.pid <= 0)
        die("--pid (the server's process id) is required");
    raise_nofile(n + 16);
    resolve(n);
    struct client_conn ctl;
    long base_clients = 0;
    client_conn_init(&ctl, NULL);
    if (g_kind == SB_REDIS) {
        connect_to(&ctl, sb_pub_addr(), "INFO connection");
        base_clients = redis_connected_clients(&ctl);
    }
    long before = vmrss_kb(opt.pid);
    struct peer *ps = gw_xcalloc((size_t)n, sizeof *ps);
    double open_s = peers_open(ps, n, opt.channel);
    peer_wait_subscribed(opt.channel, n);
    if (g_kind == SB_REDIS) {
        uint64_t until = now_ns() + (uint64_t)(opt.timeout * 1e9);
        long have;
        while ((have = redis_connected_clients(&ctl)) < base_clients + n) {
            if (now_ns() >= until)
                die("redis counts %ld clients, expected %ld", have, base_clients + n);
            struct timespec ts = {0, 10000000};
            nanosleep(&ts, NULL);
        }
    }
    long after = vmrss_kb(opt.pid);
    /* Every session must still be open and quiet (a closed one reads as EOF). */
    struct pollfd *pf = gw_xcalloc((size_t)n, sizeof *pf);
    for (long i = 0; i < n; i++)
        pf[i] = (struct pollfd){ps[i].c.fd, POLLIN, 0};
    int ready = poll(pf, (nfds_t)n, 0);
    if (ready < 0)
        die("poll: %s", strerror(errno));
    for (long i = 0; i < n && ready > 0; i++)
        if (pf[i].revents) {
            const char *body;
            size_t len;
            peer_read(&ps[i], i); /* dies on the server's close */
            if (peer_next_body(&ps[i], &body, &len, i))
                die("session %ld got a message while idle: %s", i, shown(body, len));
        }
    printf("RESULT mode=%s kind=%s sessions=%ld subscribed=%d sources=%ld pid=%ld "
           "rss_before_kb=%ld rss_after_kb=%ld per_session_bytes=%.0f open_s=%.2f errors=0\n",
           g_mode, sb_kind_name(g_kind), n, opt.channel != NULL, sb_sources(), opt.pid, before,
           after, (double)(after - before) * 1024.0 / (double)n, open_s);
    fflush(stdout);
    for (long i = 0; i < n; i++)
        peer_release(&ps[i]);
    client_conn_release(&ctl);
    free(ps);
    free(pf);
    return 0;
}
