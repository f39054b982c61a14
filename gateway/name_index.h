/*
 * name_index.h - things found by their name: a set of (name, value) pairs,
 * open addressing over the keyed name_hash, so that finding one costs the
 * same among ten thousand as among ten, and no client can choose names that
 * make it walk them all.
 *
 * The names are borrowed: each must stay as it was while its pair is in the
 * index (a session's subscription keeps its channel's name in itself).
 * Plain data structure, one thread. Depends on nothing of the gateway's.
 */
#ifndef GW_NAME_INDEX_H
#define GW_NAME_INDEX_H

#include <stddef.h>
#include <stdint.h>

struct name_index_entry {
    const char *name; /* NULL for a free place */
    size_t len;
    uint64_t hash;
    void *value;
};

struct name_index {
    struct name_index_entry *e;
    size_t cap; /* 0, or a power of two */
    size_t n;
};

#define NAME_INDEX_INIT                                                                            \
    {                                                                                              \
        NULL, 0, 0                                                                                 \
    }

void name_index_release(struct name_index *ix);
/* The value put under (name, len), or NULL. */
void *name_index_find(const struct name_index *ix, const char *name, size_t len);
/* Puts value under name (NUL-terminated, borrowed), which must not be there yet. */
void name_index_put(struct name_index *ix, const char *name, void *value);
/* Takes the pair of name out; nothing when it is not there. */
void name_index_del(struct name_index *ix, const char *name);

#endif
