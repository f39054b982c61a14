/*
 * seqcache.c - see seqcache.h. Open addressing with linear probing; never
 * deletes single entries, only clears, so probing needs no tombstones.
 */
#include "seqcache.h"

#include "gw.h"
#include "name_hash.h"

#include <stdlib.h>
#include <string.h>

/* Past this many channels the cache starts over rather than grow without end. */
#define SEQCACHE_MAX 65536

void seqcache_init(struct seqcache *c)
{
    memset(c, 0, sizeof(*c));
}

void seqcache_release(struct seqcache *c)
{
    free(c->slots);
    seqcache_init(c);
}

void seqcache_clear(struct seqcache *c)
{
    if (c->slots)
        memset(c->slots, 0, c->cap * sizeof(*c->slots));
    c->count = 0;
}

static struct seqcache_entry *probe(struct seqcache_entry *slots, size_t cap, const char *name)
{
    size_t i = name_hash(name) & (cap - 1);
    while (slots[i].name[0] && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

static void rehash(struct seqcache *c, size_t cap)
{
    struct seqcache_entry *slots = gw_xcalloc(cap, sizeof(*slots));

    for (size_t i = 0; i < c->cap; i++) {
        if (c->slots[i].name[0])
            *probe(slots, cap, c->slots[i].name) = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
}

void seqcache_begin(struct seqcache *c, size_t n)
{
    size_t cap = c->cap ? c->cap : 64;

    c->txn++;
    if (c->count + n > SEQCACHE_MAX)
        seqcache_clear(c);
    /* At most half full, so probes stay short. */
    while (2 * (c->count + n) > cap)
        cap *= 2;
    if (cap != c->cap)
        rehash(c, cap);
}

struct seqcache_entry *seqcache_find(struct seqcache *c, const char *name)
{
    if (!c->cap)
        return NULL;
    struct seqcache_entry *e = probe(c->slots, c->cap, name);
    return e->name[0] ? e : NULL;
}

struct seqcache_entry *seqcache_add(struct seqcache *c, const char *name, int64_t id,
                                    int64_t last_seq)
{
    struct seqcache_entry *e = probe(c->slots, c->cap, name);

    GW_ASSERT(!e->name[0] && 2 * (c->count + 1) <= c->cap);
    GW_ASSERT(strlen(name) <= GW_CHANNEL_MAX);
    strcpy(e->name, name);
    e->id = id;
    e->last_seq = last_seq;
    e->txn = 0;
    c->count++;
    return e;
}

int64_t seqcache_next(struct seqcache *c, struct seqcache_entry *e, int *first)
{
    *first = e->txn != c->txn;
    if (*first) {
        e->txn = c->txn;
        e->pending_seq = e->last_seq;
        e->pending_count = 0;
    }
    e->pending_count++;
    return ++e->pending_seq;
}

void seqcache_commit(struct seqcache *c, struct seqcache_entry *const *touched, size_t n)
{
    (void)c;
    for (size_t i = 0; i < n; i++)
        touched[i]->last_seq = touched[i]->pending_seq;
}
