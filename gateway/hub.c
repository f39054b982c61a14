/*
 * hub.c - channel table; see hub.h.
 *
 * Chained hash table on name_hash (keyed: no client can aim names at one bucket), doubled when it
 * holds more channels than buckets, so lookups stay O(1) with thousands of subscribed channels.
 */
#include "hub.h"

#include "gw.h"
#include "name_hash.h"

#include <stdlib.h>
#include <string.h>

struct hub {
    struct hub_channel **buckets;
    size_t nbuckets; /* a power of two */
    size_t count;
};

void hub_list_init(struct hub_link *head)
{
    head->prev = head->next = head;
}

void hub_list_push(struct hub_link *head, struct hub_link *link)
{
    link->prev = head->prev;
    link->next = head;
    head->prev->next = link;
    head->prev = link;
}

void hub_list_remove(struct hub_link *link)
{
    link->prev->next = link->next;
    link->next->prev = link->prev;
    link->prev = link->next = link;
}

struct hub *hub_new(void)
{
    struct hub *hub = gw_xcalloc(1, sizeof(*hub));
    hub->nbuckets = 64;
    hub->buckets = gw_xcalloc(hub->nbuckets, sizeof(*hub->buckets));
    return hub;
}

void hub_free(struct hub *hub)
{
    if (!hub)
        return;
    GW_ASSERT(hub->count == 0);
    free(hub->buckets);
    free(hub);
}

struct hub_channel *hub_find(struct hub *hub, const char *name)
{
    struct hub_channel *ch = hub->buckets[name_hash(name) & (hub->nbuckets - 1)];
    while (ch && strcmp(ch->name, name) != 0)
        ch = ch->next_in_bucket;
    return ch;
}

static void grow(struct hub *hub)
{
    size_t n = hub->nbuckets * 2;
    struct hub_channel **b = gw_xcalloc(n, sizeof(*b));

    for (size_t i = 0; i < hub->nbuckets; i++) {
        struct hub_channel *ch = hub->buckets[i];
        while (ch) {
            struct hub_channel *next = ch->next_in_bucket;
            size_t k = name_hash(ch->name) & (n - 1);
            ch->next_in_bucket = b[k];
            b[k] = ch;
            ch = next;
        }
    }
    free(hub->buckets);
    hub->buckets = b;
    hub->nbuckets = n;
}

struct hub_channel *hub_add(struct hub *hub, const char *name, int64_t top)
{
    struct hub_channel *ch = gw_xcalloc(1, sizeof(*ch));
    size_t k;

    GW_ASSERT(strlen(name) <= GW_CHANNEL_MAX);
    strcpy(ch->name, name);
    ch->top = top;
    hub_list_init(&ch->live);
    hub_list_init(&ch->watches);
    if (hub->count >= hub->nbuckets)
        grow(hub);
    k = name_hash(name) & (hub->nbuckets - 1);
    ch->next_in_bucket = hub->buckets[k];
    hub->buckets[k] = ch;
    hub->count++;
    return ch;
}

void hub_remove(struct hub *hub, struct hub_channel *ch)
{
    struct hub_channel **p = &hub->buckets[name_hash(ch->name) & (hub->nbuckets - 1)];

    GW_ASSERT(ch->subs == 0 && ch->nwatches == 0 && ch->reads == 0 && !ch->recent);
    while (*p != ch)
        p = &(*p)->next_in_bucket;
    *p = ch->next_in_bucket;
    hub->count--;
    free(ch);
}

size_t hub_channels(const struct hub *hub)
{
    return hub->count;
}

void hub_each(struct hub *hub, void (*fn)(struct hub_channel *ch, void *ctx), void *ctx)
{
    for (size_t i = 0; i < hub->nbuckets; i++) {
        for (struct hub_channel *ch = hub->buckets[i]; ch; ch = ch->next_in_bucket)
            fn(ch, ctx);
    }
}
