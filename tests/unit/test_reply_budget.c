/*
 * test_reply_budget.c - gateway/reply_budget.h: what fits, what is busy (with
 * a reason naming the setting), one reply alone always passing, no bound at
 * limit 0, and the bound shared between addresses: one address cannot take
 * it all, a newcomer gets its page, and a source's record lives as long as
 * its holders and its bytes; a page larger than it reserved judged once.
 */
#include "reply_budget.h"

#include "tap.h"

#include <stdint.h>
#include <string.h>

static void test_bound(void)
{
    struct reply_budget b;
    char why[GW_ERRLEN];

    reply_budget_init(&b, 1000);
    struct reply_source *a = reply_budget_join(&b, "127.0.0.2");
    struct reply_source *c = reply_budget_join(&b, "127.0.0.3");
    is_int(reply_budget_room(a, 5000, why), GW_OK,
           "an empty budget lets one reply in, however big");
    reply_budget_add(c, 600);
    is_int(reply_budget_room(a, 400, why), GW_OK, "an exact fit passes");
    is_int(reply_budget_room(a, 401, why), GW_E_BUSY, "one byte over is busy");
    ok(strstr(why, "--max-reply-memory") != NULL, "the reason names the setting: %s", why);
    reply_budget_add(a,
                     500); /* over the bound: a page larger than the room left was let in alone */
    is_uint(reply_budget_used(&b), 1100, "used counts every source");
    is_int(reply_budget_room(a, 0, why), GW_OK,
           "past the bound a read that reserves nothing (an empty long-poll answer) passes");
    is_int(reply_budget_room(a, 1, why), GW_E_BUSY, "past the bound a read of a byte waits");
    reply_budget_release(c, 600);
    is_int(reply_budget_room(c, 0, why), GW_OK, "at the bound a read that reserves nothing passes");
    reply_budget_release(a, 500);
    is_uint(reply_budget_used(&b), 0, "released: nothing used");
    reply_budget_leave(a);
    reply_budget_leave(c);
    is_uint(b.sources.n, 0, "no holder and no bytes: no record");
    reply_budget_fini(&b);

    reply_budget_init(&b, 0);
    a = reply_budget_join(&b, "127.0.0.2");
    reply_budget_add(a, SIZE_MAX / 2);
    is_int(reply_budget_room(a, SIZE_MAX / 8, why), GW_OK, "limit 0: no bound");
    reply_budget_release(a, SIZE_MAX / 2);
    reply_budget_leave(a);
    reply_budget_fini(&b);
}

static void test_share(void)
{
    struct reply_budget b;
    char why[GW_ERRLEN];
    size_t taken = 0;

    reply_budget_init(&b, 1000);
    struct reply_source *a = reply_budget_join(&b, "127.0.0.2");
    while (reply_budget_reserve(a, 100, why) == GW_OK)
        taken += 100;
    is_uint(taken, 700, "alone, an address holding a page fills three quarters of the bound");
    ok(strstr(why, "127.0.0.2") && strstr(why, "last quarter"),
       "the reason names the address and the rule: %s", why);
    is_uint(reply_budget_held_by(&b, "127.0.0.2"), 700, "held_by counts the address");

    struct reply_source *c = reply_budget_join(&b, "127.0.0.3");
    is_int(reply_budget_reserve(c, 250, why), GW_OK,
           "a newcomer's page comes from the last quarter");
    is_int(reply_budget_room(c, 50, why), GW_E_BUSY, "holding a page, it waits as the first does");
    struct reply_source *d = reply_budget_join(&b, "127.0.0.4");
    is_int(reply_budget_room(d, 50, why), GW_OK, "a third address's page fits in what is left");
    is_int(reply_budget_room(d, 51, why), GW_E_BUSY, "past the bound, no one");
    ok(strstr(why, "as much as --max-reply-memory allows") != NULL, "the bound's reason: %s", why);
    reply_budget_leave(d);

    reply_budget_release(c, 250);
    reply_budget_release(a, 300);
    is_int(reply_budget_room(a, 100, why), GW_OK, "below three quarters, a holder reads again");

    struct reply_source *a2 = reply_budget_join(&b, "127.0.0.2");
    ok(a2 == a, "one record per address, whoever joins");
    reply_budget_leave(a2);
    reply_budget_leave(a);
    is_uint(b.sources.n, 2, "a record with bytes outlives its holders");
    reply_budget_release(a, 400);
    is_uint(b.sources.n, 1, "and goes with its last bytes");
    reply_budget_leave(c);
    is_uint(b.sources.n, 0, "every record gone");
    is_uint(reply_budget_used(&b), 0, "nothing used");
    reply_budget_fini(&b);
}

/* A page built larger than its read reserved fits as a read of its size would. */
static void test_larger_than_reserved(void)
{
    struct reply_budget b;
    char why[GW_ERRLEN];

    reply_budget_init(&b, 1000);
    struct reply_source *a = reply_budget_join(&b, "127.0.0.2");
    struct reply_source *c = reply_budget_join(&b, "127.0.0.3");
    reply_budget_add(c, 500);
    reply_budget_add(a, 300); /* the read's reservation */
    is_int(reply_budget_room_instead(a, 300, 200, why), GW_OK, "smaller than reserved: fits");
    is_int(reply_budget_room_instead(a, 300, 500, why), GW_OK,
           "500 fits where the 300 reserved are counted once, not twice");
    is_int(reply_budget_room_instead(a, 300, 501, why), GW_E_BUSY, "one byte more is busy");
    is_uint(reply_budget_used(&b), 800, "asking changes nothing");
    is_uint(reply_budget_held_by(&b, "127.0.0.2"), 300, "nor what the address holds");
    reply_budget_release(a, 300);
    reply_budget_release(c, 500);
    reply_budget_leave(a);
    reply_budget_leave(c);
    reply_budget_fini(&b);
}

int main(void)
{
    test_bound();
    test_share();
    test_larger_than_reserved();
    return done_testing();
}
