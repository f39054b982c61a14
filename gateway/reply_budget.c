/*
 * reply_budget.c - see reply_budget.h.
 */
#include "reply_budget.h"

#include <stdint.h>
#include <stdio.h>

void reply_budget_init(struct reply_budget *b, size_t limit)
{
    b->limit = limit ? limit : SIZE_MAX;
    b->reserved = b->held = 0;
}

size_t reply_budget_used(const struct reply_budget *b)
{
    return b->reserved + b->held;
}

enum gw_err reply_budget_room(const struct reply_budget *b, size_t n, char why[GW_ERRLEN])
{
    size_t used = reply_budget_used(b);

    if (used == 0 || (used <= b->limit && n <= b->limit - used))
        return GW_OK;
    snprintf(why, GW_ERRLEN,
             "replies read from the store and not yet taken by their readers hold %zu KiB, as "
             "much as --max-reply-memory allows: try again shortly",
             used / 1024);
    return GW_E_BUSY;
}
