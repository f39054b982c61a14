/*
 * input_budget.c - see input_budget.h.
 */
#include "input_budget.h"

#include <stdint.h>
#include <stdio.h>

void input_budget_init(struct input_budget *b, size_t limit, uint64_t *gauge)
{
    b->limit = limit ? limit : SIZE_MAX;
    b->used = 0;
    b->gauge = gauge;
    if (gauge)
        *gauge = 0;
}

bool input_budget_hold(struct input_budget *b, size_t *held, size_t size, char why[GW_ERRLEN])
{
    size_t want = size > INPUT_BUDGET_FREE ? size - INPUT_BUDGET_FREE : 0;

    if (!b)
        return true;
    if (want > *held) {
        size_t more = want - *held;
        if (b->used > b->limit || more > b->limit - b->used) {
            snprintf(why, GW_ERRLEN,
                     "bodies and lines being received hold %zu KiB, as much as "
                     "--max-input-memory allows: this one (%zu KiB so far) is dropped; send it "
                     "again shortly",
                     b->used / 1024, size / 1024);
            return false;
        }
        b->used += more;
    } else {
        b->used -= *held - want;
    }
    *held = want;
    if (b->gauge)
        *b->gauge = b->used;
    return true;
}

void input_budget_release(struct input_budget *b, size_t *held)
{
    if (!b)
        return;
    b->used -= *held;
    *held = 0;
    if (b->gauge)
        *b->gauge = b->used;
}
