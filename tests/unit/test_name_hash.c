/*
 * test_name_hash.c - gateway/name_hash.h: the same name hashes the same way,
 * the key decides the hash, and names built to share their low bits under
 * an unkeyed FNV-1a (the hash the tables had, which a client could aim)
 * spread over the buckets like any others.
 */
#include "name_hash.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STAGES 12 /* 2^12 names */
#define MASK   0xffffu
#define NAMES  (1u << STAGES)

static uint64_t fnv_step(uint64_t h, const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        h ^= (unsigned char)s[i];
        h *= 1099511628211u;
    }
    return h;
}

/*
 * A multicollision: at each stage two 3-byte blocks that take the same low
 * 16 bits of FNV state to the same value, so every choice of one block per
 * stage gives a name with the same low 16 bits of hash.
 */
static char (*colliding_names(void))[3 * STAGES + 1]
{
    static const char alph[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._";
    char pairs[STAGES][2][3];
    uint64_t h = 1469598103934665603u;
    static uint32_t seen_at[MASK + 1];
    static char seen[MASK + 1][3];
    uint32_t round = 0;

    srand(7);
    for (int st = 0; st < STAGES; st++) {
        round++;
        for (;;) {
            char b[3] = {alph[rand() % 64], alph[rand() % 64], alph[rand() % 64]};
            uint64_t x = fnv_step(h, b, 3) & MASK;
            if (seen_at[x] == round && memcmp(seen[x], b, 3) != 0) {
                memcpy(pairs[st][0], seen[x], 3);
                memcpy(pairs[st][1], b, 3);
                h = fnv_step(h, b, 3);
                break;
            }
            seen_at[x] = round;
            memcpy(seen[x], b, 3);
        }
    }
    char(*names)[3 * STAGES + 1] = calloc(NAMES, sizeof(*names));
    for (uint32_t i = 0; i < NAMES; i++)
        for (int st = 0; st < STAGES; st++)
            memcpy(names[i] + 3 * st, pairs[st][(i >> st) & 1], 3);
    return names;
}

int main(void)
{
    const uint64_t k1[2] = {1, 2}, k2[2] = {3, 4};

    is_uint(name_hash("general"), name_hash("general"), "the same name, the same hash");
    ok(name_hash("general") != name_hash("generam"), "one byte apart, another hash");
    ok(name_hash_keyed(k1, "general", 7) != name_hash_keyed(k2, "general", 7),
       "another key, another hash");
    is_uint(name_hash_keyed(k1, "general", 7), name_hash_keyed(k1, "general", 7),
            "under one key, the same");

    char(*names)[3 * STAGES + 1] = colliding_names();
    uint64_t low = fnv_step(1469598103934665603u, names[0], 3 * STAGES) & MASK;
    unsigned same = 0;
    for (uint32_t i = 0; i < NAMES; i++)
        same += (fnv_step(1469598103934665603u, names[i], 3 * STAGES) & MASK) == low;
    is_uint(same, NAMES, "the %u names share the low 16 bits of FNV-1a (one bucket there)", NAMES);

    static unsigned load[NAMES];
    unsigned most = 0, distinct = 0;
    for (uint32_t i = 0; i < NAMES; i++) {
        unsigned *b = &load[name_hash(names[i]) & (NAMES - 1)];
        if (!*b)
            distinct++;
        if (++*b > most)
            most = *b;
    }
    /* Random placement of 4096 names in 4096 buckets: about 2,600 used, the fullest 6 or 7. */
    ok(distinct > NAMES / 2, "keyed, they spread: %u of %u buckets used", distinct, NAMES);
    ok(most <= 16, "the fullest bucket holds %u (not %u)", most, NAMES);
    free(names);
    return done_testing();
}
