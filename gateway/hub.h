/*
 * hub.h - the table of channels that have subscribers: for each, the
 * subscriptions that are live and the highest seq already fanned out.
 *
 * Plain data structure, used by core only; depends on model.h. Loop thread
 * only. A channel is in the hub exactly while it has subscriptions, watches
 * or reads under way.
 */
#ifndef GW_HUB_H
#define GW_HUB_H

#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Intrusive list link; a list head is a link whose prev and next point at itself. */
struct hub_link {
    struct hub_link *prev, *next;
};

void hub_list_init(struct hub_link *head);
void hub_list_push(struct hub_link *head, struct hub_link *link);
void hub_list_remove(struct hub_link *link);

struct hub_recent;

struct hub_channel {
    char name[GW_CHANNEL_MAX + 1];
    /*
     * The highest seq known to be committed (every lower one is too: seqs
     * are given in commit order), from commits the loop has seen and from
     * store reads.
     */
    int64_t top;
    /* The highest seq of the loop's own commits: the next one must be above it (core.c went_back).
     */
    int64_t committed;
    struct hub_link live;    /* subscriptions that receive commits as they happen */
    struct hub_link watches; /* one-shot waiters for a seq past their cursor */
    size_t subs;             /* subscriptions, whatever their state */
    size_t nwatches;
    size_t reads; /* store reads of this channel under way */
    /*
     * A notice's top is checked by a read of the store before it counts
     * (core_channel_notice): one such read at a time, and one more after it
     * when another notice came meanwhile.
     */
    bool top_checking, top_check_again;
    /* Commits seen while reads were under way, for readers to catch up from (core.c). */
    struct hub_recent *recent;
    struct hub_channel *next_in_bucket;
};

struct hub;

struct hub *hub_new(void);
/* Frees the table; every channel must have been removed. NULL is a no-op. */
void hub_free(struct hub *hub);

struct hub_channel *hub_find(struct hub *hub, const char *name);
/* Adds a channel that is not in the hub yet, with its top. */
struct hub_channel *hub_add(struct hub *hub, const char *name, int64_t top);
/* Removes and frees a channel that has no subscriptions, watches or reads left. */
void hub_remove(struct hub *hub, struct hub_channel *ch);
size_t hub_channels(const struct hub *hub);
/* Calls fn for every channel; fn must not add or remove channels. */
void hub_each(struct hub *hub, void (*fn)(struct hub_channel *ch, void *ctx), void *ctx);

#endif
