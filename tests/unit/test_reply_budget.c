/*
 * test_reply_budget.c - gateway/reply_budget.h: what fits, what is busy (with
 * a reason naming the setting), one reply alone always passing, and no
 * bound at limit 0.
 */
#include "reply_budget.h"

#include "tap.h"

#include <stdint.h>

int main(void)
{
    struct reply_budget b;
    char why[GW_ERRLEN];

    reply_budget_init(&b, 1000);
    is_int(reply_budget_room(&b, 5000, why), GW_OK,
           "an empty budget lets one reply in, however big");
    b.reserved = 600;
    is_int(reply_budget_room(&b, 400, why), GW_OK, "an exact fit passes");
    is_int(reply_budget_room(&b, 401, why), GW_E_BUSY, "one byte over is busy");
    ok(strstr(why, "--max-reply-memory") != NULL, "the reason names the setting: %s", why);
    b.held = 500; /* over the bound: a page larger than the room left was let in alone */
    is_uint(reply_budget_used(&b), 1100, "used is reserved + held");
    is_int(reply_budget_room(&b, 0, why), GW_E_BUSY, "past the bound even a read of nothing waits");
    b.reserved = 0;
    is_int(reply_budget_room(&b, 0, why), GW_OK,
           "at the bound a read that reserves nothing passes");
    b.held = 0;

    reply_budget_init(&b, 0);
    b.held = SIZE_MAX / 2;
    is_int(reply_budget_room(&b, SIZE_MAX / 4, why), GW_OK, "limit 0: no bound");
    return done_testing();
}
