/*
 * seqcache.h - the writer's memory of channel rows: name -> (row id, last
 * seq), so that a publish costs one INSERT instead of a read-modify-write of
 * its channel row.
 *
 * Plain data structure for the store's writer connection (one thread).
 * Depends on model.h. Entries hold committed values plus a pending seq for
 * the transaction under way; seqcache_commit makes those the new values,
 * and after a rollback the whole cache is cleared and refilled from disk.
 */
#ifndef GW_SEQCACHE_H
#define GW_SEQCACHE_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

struct seqcache_entry {
    char name[GW_CHANNEL_MAX + 1]; /* "" for a free slot */
    int64_t id;                    /* channels.id */
    int64_t last_seq;              /* committed */
    int64_t pending_seq;           /* within the transaction under way */
    int64_t pending_count;         /* messages added in it */
    uint64_t txn;                  /* the transaction pending_* belong to */
};

struct seqcache {
    struct seqcache_entry *slots;
    size_t cap; /* a power of two */
    size_t count;
    uint64_t txn;
};

void seqcache_init(struct seqcache *c);
void seqcache_release(struct seqcache *c);
/* Forgets every entry (after a rollback, or to bound memory). */
void seqcache_clear(struct seqcache *c);

/*
 * Starts a transaction that may add up to n channels: makes room first, so
 * entry pointers stay valid until the next seqcache_begin.
 */
void seqcache_begin(struct seqcache *c, size_t n);

/* The entry for name, or NULL. */
struct seqcache_entry *seqcache_find(struct seqcache *c, const char *name);
/* Adds name, which must not be there, with its committed values. */
struct seqcache_entry *seqcache_add(struct seqcache *c, const char *name, int64_t id,
                                    int64_t last_seq);

/*
 * The next seq for e in this transaction. *first is set when this is e's
 * first message in it, so the caller can list the channels to update.
 */
int64_t seqcache_next(struct seqcache *c, struct seqcache_entry *e, int *first);

/* The transaction committed: its pending seqs are the channels' last seqs now. */
void seqcache_commit(struct seqcache *c, struct seqcache_entry *const *touched, size_t n);

#endif
