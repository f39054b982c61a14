/*
 * gwsh_sig.c - stop signals and the waits they end; see gwsh_sig.h.
 */
#include "gwsh_sig.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

volatile sig_atomic_t gwsh_stop;
static sigset_t wait_mask; /* the mask while waiting: the stop signals let in */

static void on_stop_signal(int sig)
{
    gwsh_stop = sig;
}

void gwsh_sig_init(void)
{
    static const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    struct sigaction sa;
    sigset_t block;

    sigemptyset(&block);
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_stop_signal;
    sigemptyset(&sa.sa_mask);
    for (size_t i = 0; i < GW_ARRAY_SIZE(sigs); i++) {
        sigaddset(&block, sigs[i]);
        sigaction(sigs[i], &sa, NULL); /* no SA_RESTART: the wait must end */
    }
    sigprocmask(SIG_BLOCK, &block, &wait_mask);
    for (size_t i = 0; i < GW_ARRAY_SIZE(sigs); i++)
        sigdelset(&wait_mask, sigs[i]);
}

const sigset_t *gwsh_sig_wait_mask(void)
{
    return &wait_mask;
}

bool gwsh_sig_deliver(void)
{
    sigset_t pending, blocked;

    /*
     * ppoll lets the stop signals in only while it waits: one that came
     * while a descriptor was ready at once stays pending when it returns,
     * and a peer that always has data ready would keep it so for ever.
     */
    if (!gwsh_stop && sigpending(&pending) == 0 &&
        (sigismember(&pending, SIGINT) == 1 || sigismember(&pending, SIGTERM) == 1 ||
         sigismember(&pending, SIGHUP) == 1)) {
        sigprocmask(SIG_SETMASK, &wait_mask, &blocked); /* its handler runs here */
        sigprocmask(SIG_SETMASK, &blocked, NULL);
    }
    return gwsh_stop != 0;
}

int gwsh_poll(struct pollfd *fds, nfds_t n, int timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    int rc;

    if (gwsh_stop) {
        errno = EINTR;
        return -1;
    }
    if (timeout_ms >= 0) {
        ts.tv_sec = timeout_ms / 1000;
        ts.tv_nsec = (long)(timeout_ms % 1000) * 1000000L;
        tsp = &ts;
    }
    rc = ppoll(fds, n, tsp, &wait_mask);
    if (rc >= 0 && gwsh_sig_deliver()) {
        errno = EINTR;
        return -1;
    }
    return rc;
}

int gwsh_connect(struct client_conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN])
{
    sigset_t blocked;
    int rc;

    /* A stop signal already pending is delivered here, before the check. */
    sigprocmask(SIG_SETMASK, &wait_mask, &blocked);
    if (gwsh_stop) {
        snprintf(err, GW_ERRLEN, "interrupted");
        errno = EINTR;
        rc = -1;
    } else {
        rc = client_conn_open(c, addr, timeout_ms, err);
    }
    sigprocmask(SIG_SETMASK, &blocked, NULL);
    return rc;
}

int gwsh_ms_until(int64_t deadline_ns)
{
    int64_t left = deadline_ns - client_now_ns();
    return left <= 0 ? 0 : (int)((left + 999999) / 1000000);
}
