/*
 * test_input_budget.c - gateway/input_budget.h: the free part of each
 * buffer, growth that fits and growth that does not (nothing counted, a
 * reason naming the setting), shrinking and release giving the bytes back,
 * and no bound at limit 0 or for a NULL budget.
 */
#include "input_budget.h"

#include "tap.h"

#include <stdint.h>
#include <string.h>

static void test_bound(void)
{
    struct input_budget b;
    size_t x = 0, y = 0;
    char why[GW_ERRLEN] = "";

    uint64_t gauge = 7;

    input_budget_init(&b, 1000, &gauge);
    ok(gauge == 0, "the gauge starts at 0");
    ok(input_budget_hold(&b, &x, INPUT_BUDGET_FREE, why) && x == 0 && b.used == 0,
       "a buffer within the free part counts nothing");
    ok(input_budget_hold(&b, &x, INPUT_BUDGET_FREE + 600, why) && x == 600 && b.used == 600,
       "past the free part it counts");
    ok(gauge == 600, "the gauge follows");
    ok(input_budget_hold(&b, &y, INPUT_BUDGET_FREE + 400, why) && b.used == 1000,
       "an exact fit passes");
    ok(!input_budget_hold(&b, &y, INPUT_BUDGET_FREE + 401, why) && y == 400 && b.used == 1000,
       "one byte over is refused, and nothing changes");
    ok(strstr(why, "--max-input-memory") != NULL, "the reason names the setting: %s", why);
    ok(input_budget_hold(&b, &x, INPUT_BUDGET_FREE + 100, why) && x == 100 && b.used == 500,
       "shrinking gives bytes back");
    ok(input_budget_hold(&b, &y, INPUT_BUDGET_FREE + 900, why) && b.used == 1000,
       "which another buffer may take");
    input_budget_release(&b, &x);
    input_budget_release(&b, &y);
    ok(x == 0 && y == 0 && b.used == 0 && gauge == 0, "released: nothing used");
}

static void test_no_bound(void)
{
    struct input_budget b;
    size_t x = 0;
    char why[GW_ERRLEN];

    input_budget_init(&b, 0, NULL);
    ok(input_budget_hold(&b, &x, (size_t)1 << 40, why), "limit 0: no bound");
    input_budget_release(&b, &x);
    ok(b.used == 0, "and its count goes back");
    ok(input_budget_hold(NULL, &x, (size_t)1 << 40, why) && x == 0, "a NULL budget: no bound");
    input_budget_release(NULL, &x);
}

int main(void)
{
    test_bound();
    test_no_bound();
    return done_testing();
}
