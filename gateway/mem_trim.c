/*
 * mem_trim.c - hands the memory a burst took back to the system; see mem_trim.h.
 */
#include "mem_trim.h"

#include "gw.h"
#include "log.h"
#include "loop.h"

#include <malloc.h>
#include <stdlib.h>

struct mem_trim {
    struct loop *loop;
    struct loop_timer *timer;
    uint64_t period_ms;
    size_t keep;
};

static void on_period(struct loop *loop, void *ctx)
{
    struct mem_trim *m = ctx;

    m->timer = NULL; /* a timer is gone once it has run */
    /* Free bytes in every arena's chunks, the tops included: one walk of their bins. */
    struct mallinfo2 mi = mallinfo2();
    if (mi.fordblks > m->keep) {
        int given = malloc_trim(0);
        log_debug("memory: %zu bytes free in malloc's arenas, more than %zu: trimmed%s",
                  mi.fordblks, m->keep, given ? "" : " (nothing to give back)");
    }
    m->timer = loop_timer_add(loop, m->period_ms, on_period, m);
}

struct mem_trim *mem_trim_start(struct loop *loop, uint64_t period_ms, size_t keep)
{
    struct mem_trim *m = gw_xcalloc(1, sizeof(*m));

    m->loop = loop;
    m->period_ms = period_ms;
    m->keep = keep;
    m->timer = loop_timer_add(loop, period_ms, on_period, m);
    return m;
}

void mem_trim_stop(struct mem_trim *m)
{
    if (!m)
        return;
    loop_timer_cancel(m->loop, m->timer);
    free(m);
}
