/*
 * test_acceptor.c - gateway/acceptor.h: the back-off arithmetic, and a real
 * listening socket whose process runs out of descriptors: accepting pauses
 * without spinning, one warning says so, and every waiting client is
 * accepted once descriptors are back.
 */
#include "acceptor.h"

#include "gw.h"
#include "loop.h"
#include "net.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#define CLIENTS 5

struct seen {
    int fds[CLIENTS + 8];
    int n;
    struct loop *loop;
};

static void on_conn(void *ctx, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct seen *s = ctx;

    (void)addr;
    (void)addrlen;
    if (s->n < (int)GW_ARRAY_SIZE(s->fds))
        s->fds[s->n++] = fd;
    else
        close(fd);
    if (s->n == CLIENTS)
        loop_stop(s->loop);
}

static void on_stop(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
}

static void backoff_arithmetic(void)
{
    unsigned d = acceptor_backoff_next(0), prev = 0;
    int steps = 0;

    is_uint(d, ACCEPTOR_BACKOFF_MIN_MS, "the first retry waits the minimum");
    while (d < ACCEPTOR_BACKOFF_MAX_MS && steps < 64) {
        prev = d;
        d = acceptor_backoff_next(d);
        steps++;
        if (d != prev * 2 && d != ACCEPTOR_BACKOFF_MAX_MS)
            break;
    }
    is_uint(d, ACCEPTOR_BACKOFF_MAX_MS, "doubling reaches the maximum");
    ok(steps > 1 && steps < 16, "in a few steps (%d)", steps);
    is_uint(acceptor_backoff_next(ACCEPTOR_BACKOFF_MAX_MS), ACCEPTOR_BACKOFF_MAX_MS,
            "and stays there");
    is_uint(acceptor_backoff_next(ACCEPTOR_BACKOFF_MAX_MS - 1), ACCEPTOR_BACKOFF_MAX_MS,
            "never past it");
}

static double cpu_seconds(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6;
}

/* Lines of text in f that contain needle. */
static int count_lines(FILE *f, const char *needle)
{
    char line[1024];
    int n = 0;

    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        if (strstr(line, needle))
            n++;
    }
    return n;
}

static void out_of_descriptors(void)
{
    char why[GW_ERRLEN];
    struct seen seen = {.n = 0};
    struct loop *loop = loop_new(why);
    int lfd = net_listen("127.0.0.1:0", 64, why), port = net_local_port(lfd);
    char addr[64];
    int clients[CLIENTS];
    struct rlimit saved, tight;
    FILE *log = tmpfile();
    int saved_err = dup(STDERR_FILENO);

    if (!loop || lfd < 0 || !log || saved_err < 0 || getrlimit(RLIMIT_NOFILE, &saved) < 0) {
        bail_out("setting up: %s", why);
    }
    seen.loop = loop;
    struct acceptor *a = acceptor_new(loop, lfd, "test", on_conn, &seen, why);
    ok(a != NULL, "acceptor_new: %s", a ? "ok" : why);
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", port);
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = net_connect(addr, 2000, why);
        if (clients[i] < 0)
            bail_out("connect: %s", why);
    }
    /* stderr to a file, so that however many lines come they cannot block. */
    fflush(stderr);
    dup2(fileno(log), STDERR_FILENO);

    /* The next descriptor number is the limit: accept4 now fails with EMFILE. */
    int probe = dup(0);
    close(probe);
    tight = saved;
    tight.rlim_cur = (rlim_t)probe;
    if (setrlimit(RLIMIT_NOFILE, &tight) < 0)
        bail_out("setrlimit: %s", strerror(errno));

    double cpu0 = cpu_seconds();
    struct loop_timer *t = loop_timer_add(loop, 400, on_stop, NULL);
    loop_run(loop);
    loop_timer_cancel(loop, seen.n == CLIENTS ? t : NULL);
    double cpu = cpu_seconds() - cpu0;

    is_int(seen.n, 0, "no connection accepted while out of descriptors");
    ok(acceptor_backing_off(a), "the acceptor says it is backing off");
    ok(cpu < 0.2, "400 ms out of descriptors cost %.3f s of CPU (no spinning)", cpu);
    is_int(count_lines(log, "test: cannot accept"), 1, "one warning for the episode");

    /* Descriptors back: every waiting client is accepted, and the episode ends. */
    setrlimit(RLIMIT_NOFILE, &saved);
    t = loop_timer_add(loop, 5000, on_stop, NULL);
    loop_run(loop);
    if (seen.n == CLIENTS)
        loop_timer_cancel(loop, t);
    fflush(stderr);
    dup2(saved_err, STDERR_FILENO);
    close(saved_err);

    is_int(seen.n, CLIENTS, "every waiting client accepted once descriptors are back");
    ok(!acceptor_backing_off(a), "the episode is over");
    is_int(count_lines(log, "test: accepting again after"), 1, "one line ends the episode");
    is_int(count_lines(log, "cannot accept"), 1, "and no other warning");

    for (int i = 0; i < seen.n; i++)
        close(seen.fds[i]);
    for (int i = 0; i < CLIENTS; i++)
        close(clients[i]);
    acceptor_free(a);
    loop_free(loop);
    fclose(log);
}

int main(void)
{
    backoff_arithmetic();
    out_of_descriptors();
    return done_testing();
}
