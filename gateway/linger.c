/*
 * linger.c - see linger.h.
 */
#include "linger.h"

#include "gw.h"
#include "loop.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

struct one {
    struct lingering *l;
    int fd;
    struct loop_timer *timer;
    struct one *prev, *next;
};

struct lingering {
    struct loop *loop;
    unsigned ms;
    struct one *all, *oldest; /* newest first; oldest is the last */
    size_t count;
};

struct lingering *lingering_new(struct loop *loop, unsigned ms)
{
    struct lingering *l = gw_xcalloc(1, sizeof(*l));

    l->loop = loop;
    l->ms = ms;
    return l;
}

static void one_free(struct one *o)
{
    struct lingering *l = o->l;

    if (o->prev)
        o->prev->next = o->next;
    else
        l->all = o->next;
    if (o->next)
        o->next->prev = o->prev;
    else
        l->oldest = o->prev;
    l->count--;
    loop_timer_cancel(l->loop, o->timer);
    loop_del_fd(l->loop, o->fd);
    close(o->fd);
    free(o);
}

static void on_time_over(struct loop *loop, void *ctx)
{
    struct one *o = ctx;

    (void)loop;
    o->timer = NULL; /* a timer is gone once it has run */
    one_free(o);
}

/* Reads and drops what the peer still sends; closes at its end, or on an error. */
static void on_input(struct loop *loop, int fd, unsigned events, void *ctx)
{
    char sink[16384];

    (void)loop;
    (void)events;
    for (int i = 0; i < 16; i++) {
        ssize_t n = recv(fd, sink, sizeof(sink), 0);
        if (n > 0)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        one_free(ctx);
        return;
    }
}

void lingering_add(struct lingering *l, int fd, bool now)
{
    lingering_add_within(l, fd, now ? 0 : l->ms);
}

void lingering_add_within(struct lingering *l, int fd, unsigned ms)
{
    struct one *o;

    if (ms == 0 || shutdown(fd, SHUT_WR) < 0) {
        close(fd);
        return;
    }
    o = gw_xcalloc(1, sizeof(*o));
    o->l = l;
    o->fd = fd;
    if (loop_add_fd(l->loop, fd, LOOP_READ, on_input, o) < 0) {
        close(fd);
        free(o);
        return;
    }
    o->next = l->all;
    if (o->next)
        o->next->prev = o;
    else
        l->oldest = o;
    l->all = o;
    l->count++;
    o->timer = loop_timer_add(l->loop, ms, on_time_over, o);
}

void lingering_trim(struct lingering *l, size_t keep)
{
    while (l->count > keep)
        one_free(l->oldest);
}

size_t lingering_count(const struct lingering *l)
{
    return l ? l->count : 0;
}

void lingering_free(struct lingering *l)
{
    if (!l)
        return;
    while (l->all)
        one_free(l->all);
    free(l);
}
