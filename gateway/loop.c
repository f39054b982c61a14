/*
 * loop.c - epoll event loop; see loop.h.
 *
 * Handlers live in an array indexed by fd: fds are small and dense, and the
 * lookup on every event is then one load.
 */
#include "loop.h"

#include "metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>
#include <unistd.h>

#define LOOP_MAX_EVENTS 256

struct handler {
    loop_fd_cb *cb;
    void *ctx;
};

struct hook {
    loop_hook_cb *cb;
    void *ctx;
};

struct loop_timer {
    uint64_t due_ms;
    size_t index; /* in the heap */
    loop_timer_cb *cb;
    void *ctx;
};

struct loop {
    int epfd;
    int stop;
    struct loop_timer **heap; /* min-heap on due_ms */
    size_t ntimers, cap_timers;
    struct handler *handlers;
    size_t nhandlers;
    struct hook *hooks;
    size_t nhooks;
    struct metrics_hist *busy; /* per wake-up work, when measured */
};

uint64_t loop_now_ms(void)
{
    return loop_now_us() / 1000;
}

uint64_t loop_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

struct loop *loop_new(char err[GW_ERRLEN])
{
    struct loop *loop;
    int epfd = epoll_create1(EPOLL_CLOEXEC);

    if (epfd < 0) {
        snprintf(err, GW_ERRLEN, "epoll_create1: %s", strerror(errno));
        return NULL;
    }
    loop = gw_xcalloc(1, sizeof(*loop));
    loop->epfd = epfd;
    return loop;
}

void loop_free(struct loop *loop)
{
    if (!loop)
        return;
    close(loop->epfd);
    for (size_t i = 0; i < loop->ntimers; i++)
        free(loop->heap[i]);
    free(loop->heap);
    free(loop->handlers);
    free(loop->hooks);
    free(loop);
}

static uint32_t to_epoll(unsigned events)
{
    return ((events & LOOP_READ) ? EPOLLIN : 0u) | ((events & LOOP_WRITE) ? EPOLLOUT : 0u) |
           ((events & LOOP_HUP) ? EPOLLRDHUP : 0u);
}

int loop_add_fd(struct loop *loop, int fd, unsigned events, loop_fd_cb *cb, void *ctx)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};

    GW_ASSERT(fd >= 0);
    if ((size_t)fd >= loop->nhandlers) {
        size_t n = loop->nhandlers ? loop->nhandlers : 64;
        while (n <= (size_t)fd)
            n *= 2;
        struct handler *grown = gw_xrealloc(loop->handlers, n * sizeof(*grown));
        memset(grown + loop->nhandlers, 0, (n - loop->nhandlers) * sizeof(*grown));
        loop->handlers = grown;
        loop->nhandlers = n;
    }
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return -1;
    loop->handlers[fd].cb = cb;
    loop->handlers[fd].ctx = ctx;
    return 0;
}

int loop_mod_fd(struct loop *loop, int fd, unsigned events)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.fd = fd};
    return epoll_ctl(loop->epfd, EPOLL_CTL_MOD, fd, &ev);
}

void loop_del_fd(struct loop *loop, int fd)
{
    if (fd < 0 || (size_t)fd >= loop->nhandlers || !loop->handlers[fd].cb)
        return;
    epoll_ctl(loop->epfd, EPOLL_CTL_DEL, fd, NULL);
    loop->handlers[fd].cb = NULL;
    loop->handlers[fd].ctx = NULL;
}

void loop_add_hook(struct loop *loop, loop_hook_cb *cb, void *ctx)
{
    struct hook *grown = gw_xrealloc(loop->hooks, (loop->nhooks + 1) * sizeof(*grown));
    loop->hooks = grown;
    loop->hooks[loop->nhooks].cb = cb;
    loop->hooks[loop->nhooks].ctx = ctx;
    loop->nhooks++;
}

static void heap_swap(struct loop *loop, size_t a, size_t b)
{
    struct loop_timer *t = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = t;
    loop->heap[a]->index = a;
    loop->heap[b]->index = b;
}

static void heap_up(struct loop *loop, size_t i)
{
    while (i > 0 && loop->heap[(i - 1) / 2]->due_ms > loop->heap[i]->due_ms) {
        heap_swap(loop, i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(struct loop *loop, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < loop->ntimers && loop->heap[l]->due_ms < loop->heap[m]->due_ms)
            m = l;
        if (r < loop->ntimers && loop->heap[r]->due_ms < loop->heap[m]->due_ms)
            m = r;
        if (m == i)
            return;
        heap_swap(loop, i, m);
        i = m;
    }
}

struct loop_timer *loop_timer_add(struct loop *loop, uint64_t delay_ms, loop_timer_cb *cb,
                                  void *ctx)
{
    struct loop_timer *t = gw_xmalloc(sizeof(*t));

    if (loop->ntimers == loop->cap_timers) {
        size_t cap = loop->cap_timers ? 2 * loop->cap_timers : 64;
        struct loop_timer **grown = gw_xrealloc(loop->heap, cap * sizeof(*grown));
        loop->heap = grown;
        loop->cap_timers = cap;
    }
    t->due_ms = loop_now_ms() + delay_ms;
    t->cb = cb;
    t->ctx = ctx;
    t->index = loop->ntimers;
    loop->heap[loop->ntimers++] = t;
    heap_up(loop, t->index);
    return t;
}

/* Takes t out of the heap without freeing it. */
static void heap_remove(struct loop *loop, struct loop_timer *t)
{
    size_t i = t->index, last = --loop->ntimers;

    if (i != last) {
        heap_swap(loop, i, last);
        heap_down(loop, i);
        heap_up(loop, i);
    }
}

void loop_timer_cancel(struct loop *loop, struct loop_timer *t)
{
    if (!t)
        return;
    GW_ASSERT(t->index < loop->ntimers && loop->heap[t->index] == t);
    heap_remove(loop, t);
    free(t);
}

/* Runs every timer that is due; returns ms until the next one, or -1. */
static int run_timers(struct loop *loop)
{
    uint64_t now = loop_now_ms();

    while (loop->ntimers && loop->heap[0]->due_ms <= now && !loop->stop) {
        struct loop_timer *t = loop->heap[0];
        heap_remove(loop, t);
        t->cb(loop, t->ctx);
        free(t);
    }
    if (!loop->ntimers)
        return -1;
    uint64_t wait = loop->heap[0]->due_ms > now ? loop->heap[0]->due_ms - now : 0;
    return wait > INT32_MAX ? INT32_MAX : (int)wait;
}

void loop_measure_busy(struct loop *loop, struct metrics_hist *h)
{
    loop->busy = h;
}

void loop_stop(struct loop *loop)
{
    loop->stop = 1;
}

int loop_run(struct loop *loop)
{
    struct epoll_event events[LOOP_MAX_EVENTS];
    uint64_t woke_us = 0;

    loop->stop = 0;
    while (!loop->stop) {
        int timeout = run_timers(loop);
        for (size_t i = 0; i < loop->nhooks && !loop->stop; i++) {
            int t = loop->hooks[i].cb(loop, loop->hooks[i].ctx);
            if (t >= 0 && (timeout < 0 || t < timeout))
                timeout = t;
        }
        if (loop->stop)
            break;
        if (loop->busy && woke_us)
            metrics_hist_observe(loop->busy, (double)(loop_now_us() - woke_us) / 1e6);
        int n = epoll_wait(loop->epfd, events, LOOP_MAX_EVENTS, timeout);
        woke_us = loop->busy ? loop_now_us() : 0;
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        for (int i = 0; i < n; i++) {
            int fd = events[i].data.fd;
            unsigned ev = 0;
            if (events[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                ev |= LOOP_READ;
            if (events[i].events & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                ev |= LOOP_WRITE;
            if (events[i].events & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                ev |= LOOP_HUP;
            /* A callback earlier in this batch may have removed fd. */
            if ((size_t)fd < loop->nhandlers && loop->handlers[fd].cb)
                loop->handlers[fd].cb(loop, fd, ev, loop->handlers[fd].ctx);
        }
    }
    return 0;
}
