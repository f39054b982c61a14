/*
 * test_fair_share.c - gateway/fair_share.h: a full pool gives a newcomer the
 * newest place of the address holding the most, only when that address
 * holds at least two more; shares settle equal; places come and go in any
 * order; addresses are hosts without ports.
 */
#include "fair_share.h"

#include "tap.h"

#define N 64

static void test_source(void)
{
    static const struct {
        const char *peer, *source, *what;
    } cases[] = {
        {"127.0.0.1:5000", "127.0.0.1", "IPv4: the port goes"},
        {"[::1]:5000", "::1", "IPv6 in brackets: the port goes"},
        {"::1", "::1", "a bare IPv6 address is kept whole"},
        {"10.0.0.1", "10.0.0.1", "no port: kept whole"},
        {"[2001:db8:1:2:aaaa:bbbb:cccc:dddd]:443", "2001:db8:1:2::/64",
         "a global IPv6 address: its /64, one client"},
        {"2001:db8:1:2::9", "2001:db8:1:2::/64", "bare, the same /64"},
        {"[::ffff:192.0.2.7]:80", "192.0.2.7", "IPv4-mapped: the IPv4 client"},
        {"[fe80::1]:80", "fe80::1", "link-local: kept whole"},
        {"[not an address]:80", "not an address", "not an address: kept as it came"},
    };
    char out[SOURCE_MAX];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        source_of_peer(cases[i].peer, out);
        is_str(out, cases[i].source, "%s", cases[i].what);
    }
}

static void test_victim(void)
{
    struct fair_share *f = fair_share_new();
    struct fair_place a[N] = {{0}}, b[N] = {{0}};

    for (int i = 0; i < 10; i++)
        fair_share_take(f, &a[i], "127.0.0.1");
    is_uint(fair_share_held(f, "127.0.0.1"), 10, "ten places held by one address");
    ok(!fair_share_victim(f, "127.0.0.1"), "the holder itself takes no place from itself");
    ok(fair_share_victim(f, "127.0.0.2") == &a[9], "a newcomer from elsewhere gets the newest");
    ok(fair_share_older(&a[9]) == &a[8], "then the one taken before it");
    ok(fair_share_older(&a[0]) == NULL, "and none before the first");
    is_str(fair_share_source_of(&a[9]), "127.0.0.1", "the place says whose it is");

    /* The newcomer takes places one by one until the shares are equal. */
    int taken = 0;
    struct fair_place *v;
    while ((v = fair_share_victim(f, "127.0.0.2"))) {
        fair_share_leave(f, v);
        fair_share_take(f, &b[taken++], "127.0.0.2");
    }
    is_int(taken, 5, "five places change hands");
    is_uint(fair_share_held(f, "127.0.0.1"), 5, "five left to the first");
    is_uint(fair_share_held(f, "127.0.0.2"), 5, "five to the second");
    ok(!fair_share_victim(f, "127.0.0.1"), "and the first cannot take one back");
    ok(fair_share_victim(f, "127.0.0.3") != NULL, "a third address with none may take one");

    /* Uneven by one: no place moves (it would only move back). */
    fair_share_leave(f, &b[4]);
    ok(!fair_share_victim(f, "127.0.0.2"), "one behind: no place moves");

    /* The top gives places up: the next biggest is found. */
    for (int i = 0; i < 5; i++)
        fair_share_leave(f, &a[i]);
    is_uint(fair_share_held(f, "127.0.0.1"), 0, "the first holds none");
    ok(fair_share_victim(f, "127.0.0.9") == &b[3], "the second is the biggest now: its newest");
    fair_share_leave(f, &a[0]); /* no place held: a no-op */
    for (int i = 0; i < 4; i++)
        fair_share_leave(f, &b[i]);
    ok(!fair_share_victim(f, "127.0.0.9"), "an empty pool has nothing to give");
    fair_share_free(f);
}

/* Many addresses: the table grows, and counts stay right. */
static void test_many(void)
{
    struct fair_share *f = fair_share_new();
    static struct fair_place p[N * 8];
    char src[SOURCE_MAX];

    for (int i = 0; i < N * 8; i++) {
        snprintf(src, sizeof(src), "10.0.%d.%d", i % N, i % 7);
        fair_share_take(f, &p[i], src);
    }
    is_uint(fair_share_held(f, "10.0.3.3"), 2, "an address taken twice holds two");
    ok(fair_share_victim(f, "10.9.9.9") != NULL, "a newcomer finds a place among many");
    for (int i = N * 8 - 1; i >= 0; i -= 2)
        fair_share_leave(f, &p[i]);
    for (int i = 0; i < N * 8; i += 2)
        fair_share_leave(f, &p[i]);
    ok(!fair_share_victim(f, "10.9.9.9"), "all gone");
    fair_share_free(f);
}

int main(void)
{
    test_source();
    test_victim();
    test_many();
    return done_testing();
}
