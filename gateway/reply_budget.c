/*
 * reply_budget.c - see reply_budget.h.
 */
#include "reply_budget.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

void reply_budget_init(struct reply_budget *b, size_t limit)
{
    b->limit = limit ? limit : SIZE_MAX;
    b->used = 0;
    source_table_init(&b->sources);
}

void reply_budget_fini(struct reply_budget *b)
{
    for (struct source_node *n = source_table_next(&b->sources, NULL), *next; n; n = next) {
        next = source_table_next(&b->sources, n);
        free(n);
    }
    source_table_fini(&b->sources);
}

struct reply_source *reply_budget_join(struct reply_budget *b, const char *source)
{
    struct reply_source *s = (struct reply_source *)(void *)source_table_find(&b->sources, source);

    if (!s) {
        s = gw_xcalloc(1, sizeof(*s));
        s->b = b;
        source_table_add(&b->sources, &s->node, source);
    }
    s->refs++;
    return s;
}

static void drop_if_unused(struct reply_source *s)
{
    if (s->refs || s->bytes)
        return;
    source_table_remove(&s->b->sources, &s->node);
    free(s);
}

void reply_budget_leave(struct reply_source *s)
{
    if (!s)
        return;
    s->refs--;
    drop_if_unused(s);
}

size_t reply_budget_used(const struct reply_budget *b)
{
    return b->used;
}

size_t reply_budget_held_by(const struct reply_budget *b, const char *source)
{
    const struct reply_source *s =
        (const struct reply_source *)(const void *)source_table_find(&b->sources, source);

    return s ? s->bytes : 0;
}

/* Whether a read of n from s may start with used and mine counted (the bound's rules). */
static enum gw_err room_for(const struct reply_source *s, size_t used, size_t mine, size_t n,
                            char why[GW_ERRLEN])
{
    const struct reply_budget *b = s->b;

    /* A read that reserves nothing (a long-poll whose wait ran out answers an empty page). */
    if (used == 0 || n == 0)
        return GW_OK;
    if (used > b->limit || n > b->limit - used) {
        snprintf(why, GW_ERRLEN,
                 "replies read from the store and not yet taken by their readers hold %zu KiB, as "
                 "much as --max-reply-memory allows: try again shortly",
                 used / 1024);
        return GW_E_BUSY;
    }
    /* The last quarter is for addresses that hold less than this read: their first page. */
    if (mine < n || used + n <= b->limit - b->limit / 4)
        return GW_OK;
    snprintf(why, GW_ERRLEN,
             "replies not yet taken by readers at %s hold %zu KiB, and the last quarter of "
             "--max-reply-memory is kept for addresses that hold less than a page: take them, or "
             "try again shortly",
             s->node.name, mine / 1024);
    return GW_E_BUSY;
}

enum gw_err reply_budget_room(const struct reply_source *s, size_t n, char why[GW_ERRLEN])
{
    return room_for(s, s->b->used, s->bytes, n, why);
}

enum gw_err reply_budget_room_instead(const struct reply_source *s, size_t held, size_t n,
                                      char why[GW_ERRLEN])
{
    if (n <= held)
        return GW_OK;
    return room_for(s, s->b->used - held, s->bytes - held, n, why);
}

enum gw_err reply_budget_reserve(struct reply_source *s, size_t n, char why[GW_ERRLEN])
{
    enum gw_err err = reply_budget_room(s, n, why);

    if (err == GW_OK)
        reply_budget_add(s, n);
    return err;
}

void reply_budget_add(struct reply_source *s, size_t n)
{
    s->bytes += n;
    s->b->used += n;
}

void reply_budget_release(struct reply_source *s, size_t n)
{
    if (!s)
        return;
    s->bytes -= n;
    s->b->used -= n;
    drop_if_unused(s);
}
