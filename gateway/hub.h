/*
 * hub.h - the table of channels that have subscribers: for each, the
 * subscriptions that are live and the highest seq already fanned out.
 *
 * Plain data structure, used by core only; depends on model.h. Loop thread
 * only. A channel is in the hub exactly while it has subscriptions.
 */
#ifndef GW_HUB_H
#define GW_HUB_H

#include "model.h"

#include <stddef.h>
#include <stdint.h>

/* Intrusive list link; a list head is a link whose prev and next point at itself. */
struct hub_link {
    struct hub_link *prev, *next;
};

void hub_list_init(struct hub_link *head);
void hub_list_push(struct hub_link *head, struct hub_link *link);
void hub_list_remove(struct hub_link *link);

struct hub_channel {
    char name[GW_CHANNEL_MAX + 1];
    /*
     * The highest seq that subscribers have been, or will have been, given:
     * every later commit is fanned out, every earlier one is read from the
     * store.
     */
    int64_t top;
    struct hub_link live; /* subscriptions that receive commits as they happen */
    size_t subs;          /* live ones and ones still catching up */
    struct hub_channel *next_in_bucket;
};

struct hub;

struct hub *hub_new(void);
/* Frees the table; every channel must have been removed. NULL is a no-op. */
void hub_free(struct hub *hub);

struct hub_channel *hub_find(struct hub *hub, const char *name);
/* Adds a channel that is not in the hub yet, with its top. */
struct hub_channel *hub_add(struct hub *hub, const char *name, int64_t top);
/* Removes and frees a channel that has no subscriptions left. */
void hub_remove(struct hub *hub, struct hub_channel *ch);
size_t hub_channels(const struct hub *hub);

#endif
