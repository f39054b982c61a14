/*
 * name_index.c - things found by their name; see name_index.h.
 *
 * Linear probing, at most half full, and deletion by shifting back the
 * pairs that follow (no tombstones: a session that subscribes and
 * unsubscribes for ever must not fill its index with them).
 */
#include "name_index.h"

#include "gw.h"
#include "name_hash.h"

#include <stdlib.h>
#include <string.h>

void name_index_release(struct name_index *ix)
{
    free(ix->e);
    ix->e = NULL;
    ix->cap = ix->n = 0;
}

/* The place of (name, len, hash), or the free place where it would go. */
static size_t place(const struct name_index *ix, const char *name, size_t len, uint64_t hash)
{
    size_t mask = ix->cap - 1, i = (size_t)hash & mask;

    while (ix->e[i].name &&
           !(ix->e[i].hash == hash && ix->e[i].len == len && memcmp(ix->e[i].name, name, len) == 0))
        i = (i + 1) & mask;
    return i;
}

void *name_index_find(const struct name_index *ix, const char *name, size_t len)
{
    if (!ix->n)
        return NULL;
    size_t i = place(ix, name, len, name_hash_n(name, len));
    return ix->e[i].name ? ix->e[i].value : NULL;
}

static void grow(struct name_index *ix)
{
    struct name_index_entry *old = ix->e;
    size_t old_cap = ix->cap;

    ix->cap = old_cap ? old_cap * 2 : 16;
    ix->e = gw_xcalloc(ix->cap, sizeof(*ix->e));
    for (size_t i = 0; i < old_cap; i++) {
        if (old[i].name)
            ix->e[place(ix, old[i].name, old[i].len, old[i].hash)] = old[i];
    }
    free(old);
}

void name_index_put(struct name_index *ix, const char *name, void *value)
{
    size_t len = strlen(name);
    uint64_t hash = name_hash_n(name, len);

    if (2 * (ix->n + 1) > ix->cap)
        grow(ix);
    size_t i = place(ix, name, len, hash);
    GW_ASSERT(!ix->e[i].name);
    ix->e[i] = (struct name_index_entry){name, len, hash, value};
    ix->n++;
}

void name_index_del(struct name_index *ix, const char *name)
{
    if (!ix->n)
        return;
    size_t len = strlen(name), mask = ix->cap - 1;
    size_t i = place(ix, name, len, name_hash_n(name, len));

    if (!ix->e[i].name)
        return;
    /* Shift back each pair of the run after i whose home is not between i and where it sits. */
    for (size_t j = (i + 1) & mask; ix->e[j].name; j = (j + 1) & mask) {
        size_t home = (size_t)ix->e[j].hash & mask;
        if (((j - home) & mask) >= ((j - i) & mask)) {
            ix->e[i] = ix->e[j];
            i = j;
        }
    }
    ix->e[i].name = NULL;
    ix->n--;
}
