/*
 * test_name_index.c - things found by name: finds within a longer line,
 * growth, and a long run of random puts and deletions checked against a
 * plain array after every step (deletion shifts pairs back: a mistake there
 * loses a pair that is still in).
 */
#include "name_index.h"
#include "rng.h"
#include "tap.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

static void test_basics(void)
{
    struct name_index ix = NAME_INDEX_INIT;
    int a, b;

    ok(name_index_find(&ix, "a", 1) == NULL, "an empty index finds nothing");
    name_index_del(&ix, "a");
    is_uint(ix.n, 0, "deleting from an empty index does nothing");
    name_index_put(&ix, "alpha", &a);
    name_index_put(&ix, "beta", &b);
    ok(name_index_find(&ix, "alpha", 5) == &a, "alpha");
    ok(name_index_find(&ix, "beta and more", 4) == &b, "a name inside a longer line");
    ok(name_index_find(&ix, "alph", 4) == NULL, "a prefix is another name");
    ok(name_index_find(&ix, "alphabet", 8) == NULL, "so is a longer one");
    name_index_del(&ix, "gamma");
    is_uint(ix.n, 2, "deleting a name not in it does nothing");
    name_index_del(&ix, "alpha");
    ok(name_index_find(&ix, "alpha", 5) == NULL && name_index_find(&ix, "beta", 4) == &b,
       "alpha gone, beta still there");
    name_index_release(&ix);
    ok(ix.e == NULL && ix.n == 0, "release empties it");
}

#define NAMES 3000

static uint64_t rng_state = 0x2545f4914f6cdd1dull;

static uint64_t rng(void)
{
    return xorshift64(&rng_state);
}

static void test_random_against_an_array(void)
{
    static char names[NAMES][16];
    static int in[NAMES];
    struct name_index ix = NAME_INDEX_INIT;
    unsigned bad = 0, steps = 200000;
    size_t n = 0;

    for (int i = 0; i < NAMES; i++)
        snprintf(names[i], sizeof(names[i]), "ch-%d", i);
    for (unsigned s = 0; s < steps; s++) {
        int k = (int)(rng() % NAMES);
        /* Mostly puts while small, mostly deletions while large: the index grows and shrinks. */
        if (!in[k] && rng() % NAMES >= n) {
            name_index_put(&ix, names[k], names[k]);
            in[k] = 1;
            n++;
        } else if (in[k]) {
            name_index_del(&ix, names[k]);
            in[k] = 0;
            n--;
        }
        int probe = (int)(rng() % NAMES);
        void *got = name_index_find(&ix, names[probe], strlen(names[probe]));
        if (got != (in[probe] ? names[probe] : NULL) || ix.n != n)
            bad++;
    }
    for (int i = 0; i < NAMES; i++)
        if (name_index_find(&ix, names[i], strlen(names[i])) != (in[i] ? names[i] : NULL))
            bad++;
    is_uint(bad, 0, "%u random puts and deletions: every find agrees with the array", steps);
    ok(ix.cap >= 2 * ix.n, "at most half full (%zu of %zu)", ix.n, ix.cap);
    name_index_release(&ix);
}

int main(void)
{
    test_basics();
    test_random_against_an_array();
    return done_testing();
}
