/*
 * acceptor.c - see acceptor.h.
 *
 * accept4 in a bounded loop on a level-triggered socket: what is left after
 * ACCEPTOR_BATCH is picked up on the next turn, so one busy listener cannot
 * hold the loop. Failures that say the pending connection itself went wrong
 * (the peer reset it, a network error) skip that connection; failures that
 * say this process cannot take one now (no descriptor, no buffer) would
 * fail again at once, so they pause accepting instead.
 */
#include "acceptor.h"

#include "log.h"
#include "loop.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct acceptor {
    struct loop *loop;
    int fd;
    char name[16];
    acceptor_cb *cb;
    void *ctx;
    bool watching; /* the listening socket is in the loop */
    /* the current back-off episode: backoff_ms is 0 outside one */
    struct loop_timer *retry;
    unsigned backoff_ms;
    unsigned attempts;
    uint64_t episode_start_ms;
};

enum accept_outcome {
    ACCEPT_DRAINED, /* nothing pending, or the batch is done */
    ACCEPT_STARVED  /* out of descriptors or memory */
};

unsigned acceptor_backoff_next(unsigned prev_ms)
{
    if (prev_ms < ACCEPTOR_BACKOFF_MIN_MS)
        return ACCEPTOR_BACKOFF_MIN_MS;
    if (prev_ms >= ACCEPTOR_BACKOFF_MAX_MS / 2)
        return ACCEPTOR_BACKOFF_MAX_MS;
    return prev_ms * 2;
}

/* The process, not the pending connection, is short of something. */
static bool starved(int err)
{
    return err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM;
}

static enum accept_outcome accept_batch(struct acceptor *a, int *err)
{
    for (int i = 0; i < ACCEPTOR_BATCH; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        int c = accept4(a->fd, (struct sockaddr *)&ss, &len, SOCK_NONBLOCK | SOCK_CLOEXEC);

        if (c >= 0) {
            a->cb(a->ctx, c, (struct sockaddr *)&ss, len);
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return ACCEPT_DRAINED;
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO || errno == EPERM ||
            errno == ENETDOWN || errno == ENETUNREACH || errno == EHOSTDOWN ||
            errno == EHOSTUNREACH || errno == ENONET || errno == ENOPROTOOPT ||
            errno == EOPNOTSUPP || errno == ETIMEDOUT)
            continue; /* that connection is gone; the next may be fine (accept(2)) */
        *err = errno;
        if (starved(errno))
            return ACCEPT_STARVED;
        /* Anything else is a bug or a broken socket: pause too rather than spin. */
        log_error("%s: accept: %s", a->name, strerror(errno));
        return ACCEPT_STARVED;
    }
    return ACCEPT_DRAINED;
}

static void on_readable(struct loop *loop, int fd, unsigned events, void *ctx);

static void on_retry(struct loop *loop, void *ctx);

/* Out of resources: leave the loop and try again after the next delay. */
static void back_off(struct acceptor *a, int err)
{
    if (a->backoff_ms == 0) { /* a new episode */
        a->episode_start_ms = loop_now_ms();
        a->attempts = 0;
        log_warn("%s: cannot accept: %s; pausing new connections (retrying every %u to %u ms) "
                 "while the open ones are served",
                 a->name, strerror(err), ACCEPTOR_BACKOFF_MIN_MS, ACCEPTOR_BACKOFF_MAX_MS);
    }
    if (a->watching) {
        loop_del_fd(a->loop, a->fd);
        a->watching = false;
    }
    a->attempts++;
    a->backoff_ms = acceptor_backoff_next(a->backoff_ms);
    a->retry = loop_timer_add(a->loop, a->backoff_ms, on_retry, a);
}

/* Resources were found again: back in the loop, episode over. */
static void recovered(struct acceptor *a)
{
    if (a->backoff_ms) {
        log_warn("%s: accepting again after %.1f s (%u attempts)", a->name,
                 (double)(loop_now_ms() - a->episode_start_ms) / 1000.0, a->attempts);
        a->backoff_ms = 0;
    }
    if (!a->watching) {
        if (loop_add_fd(a->loop, a->fd, LOOP_READ, on_readable, a) < 0) {
            /* Cannot happen for a socket we watched before; retry rather than go deaf. */
            log_error("%s: cannot watch the listening socket: %s", a->name, strerror(errno));
            a->backoff_ms = ACCEPTOR_BACKOFF_MAX_MS;
            a->retry = loop_timer_add(a->loop, a->backoff_ms, on_retry, a);
            return;
        }
        a->watching = true;
    }
}

static void on_retry(struct loop *loop, void *ctx)
{
    struct acceptor *a = ctx;
    int err = 0;

    (void)loop;
    a->retry = NULL; /* a timer is gone once it has run */
    if (accept_batch(a, &err) == ACCEPT_STARVED)
        back_off(a, err);
    else
        recovered(a);
}

static void on_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct acceptor *a = ctx;
    int err = 0;

    (void)loop;
    (void)fd;
    (void)events;
    if (accept_batch(a, &err) == ACCEPT_STARVED)
        back_off(a, err);
}

struct acceptor *acceptor_new(struct loop *loop, int listen_fd, const char *name, acceptor_cb *cb,
                              void *ctx, char why[GW_ERRLEN])
{
    struct acceptor *a = gw_xcalloc(1, sizeof(*a));

    a->loop = loop;
    a->fd = listen_fd;
    snprintf(a->name, sizeof(a->name), "%s", name);
    a->cb = cb;
    a->ctx = ctx;
    if (loop_add_fd(loop, listen_fd, LOOP_READ, on_readable, a) < 0) {
        snprintf(why, GW_ERRLEN, "cannot watch the %s listener: %s", name, strerror(errno));
        close(listen_fd);
        free(a);
        return NULL;
    }
    a->watching = true;
    return a;
}

bool acceptor_backing_off(const struct acceptor *a)
{
    return a->backoff_ms != 0;
}

void acceptor_free(struct acceptor *a)
{
    if (!a)
        return;
    loop_timer_cancel(a->loop, a->retry);
    if (a->watching)
        loop_del_fd(a->loop, a->fd);
    close(a->fd);
    free(a);
}
