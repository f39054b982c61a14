/*
 * test_seqcache.c - the writer's channel cache: lookups across growth,
 * pending seqs that only become last seqs on commit, and clearing.
 */
#include "seqcache.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static void test_pending_and_commit(void)
{
    struct seqcache c;
    struct seqcache_entry *e, *touched[2];
    int first;

    seqcache_init(&c);
    seqcache_begin(&c, 2);
    ok(seqcache_find(&c, "a") == NULL, "an empty cache finds nothing");
    e = seqcache_add(&c, "a", 7, 41);
    is_int(seqcache_next(&c, e, &first), 42, "the first seq follows the committed last seq");
    ok(first, "the first message of a channel in a transaction is flagged");
    is_int(seqcache_next(&c, e, &first), 43, "the next seq counts on");
    ok(!first, "later messages are not flagged");
    is_int(e->pending_count, 2, "pending count");
    is_int(e->last_seq, 41, "nothing is committed before seqcache_commit");

    /* A transaction that is not committed leaves last_seq alone. */
    seqcache_begin(&c, 1);
    is_int(seqcache_next(&c, e, &first), 42, "an uncommitted transaction is forgotten");
    ok(first, "a new transaction starts its own pending count");
    touched[0] = e;
    seqcache_commit(&c, touched, 1);
    is_int(e->last_seq, 42, "commit makes the pending seq the last seq");
    is_int(seqcache_find(&c, "a")->id, 7, "the row id is kept");

    seqcache_clear(&c);
    ok(seqcache_find(&c, "a") == NULL, "clear forgets every channel");
    seqcache_release(&c);
}

static void test_growth(void)
{
    struct seqcache c;
    char name[32];
    int bad = 0;

    seqcache_init(&c);
    for (int i = 0; i < 5000; i++) {
        seqcache_begin(&c, 1);
        snprintf(name, sizeof(name), "ch-%d", i);
        seqcache_add(&c, name, i + 1, i * 10);
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(name, sizeof(name), "ch-%d", i);
        struct seqcache_entry *e = seqcache_find(&c, name);
        if (!e || e->id != i + 1 || e->last_seq != i * 10)
            bad++;
    }
    is_int(bad, 0, "5000 channels added across growth are all found with their values");
    is_int((long long)c.count, 5000, "count");
    ok(2 * c.count <= c.cap, "the table stays at most half full");
    ok(seqcache_find(&c, "absent") == NULL, "an absent name is not found");
    seqcache_release(&c);
}

int main(void)
{
    test_pending_and_commit();
    test_growth();
    return done_testing();
}
