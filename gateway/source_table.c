/*
 * source_table.c - see source_table.h.
 */
#include "source_table.h"

#include "gw.h"
#include "name_hash.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void source_table_init(struct source_table *t)
{
    t->nchains = 16;
    t->chain = gw_xcalloc(t->nchains, sizeof(*t->chain));
    t->n = 0;
}

void source_table_fini(struct source_table *t)
{
    free(t->chain);
    t->chain = NULL;
    t->nchains = t->n = 0;
}

void source_of_peer(const char *peer, char out[SOURCE_MAX])
{
    const char *end;

    if (peer[0] == '[' && (end = strchr(peer, ']'))) {
        peer++;
    } else if (!(end = strrchr(peer, ':')) || strchr(peer, ':') != end) {
        end = peer + strlen(peer); /* no port, or a bare IPv6 address */
    }
    snprintf(out, SOURCE_MAX, "%.*s", (int)(end - peer), peer);
}

static struct source_node **slot_of(const struct source_table *t, const char *name, uint64_t h)
{
    struct source_node **at = &t->chain[h & (t->nchains - 1)];

    while (*at && ((*at)->hash != h || strcmp((*at)->name, name)))
        at = &(*at)->hnext;
    return at;
}

struct source_node *source_table_find(const struct source_table *t, const char *name)
{
    return *slot_of(t, name, name_hash(name));
}

static void grow(struct source_table *t)
{
    size_t n = t->nchains * 2;
    struct source_node **chain = gw_xcalloc(n, sizeof(*chain));

    for (size_t i = 0; i < t->nchains; i++)
        for (struct source_node *s = t->chain[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = chain[s->hash & (n - 1)];
            chain[s->hash & (n - 1)] = s;
        }
    free(t->chain);
    t->chain = chain;
    t->nchains = n;
}

void source_table_add(struct source_table *t, struct source_node *node, const char *name)
{
    snprintf(node->name, sizeof(node->name), "%s", name);
    node->hash = name_hash(node->name);
    struct source_node **at = slot_of(t, node->name, node->hash);
    node->hnext = NULL;
    *at = node;
    if (++t->n > t->nchains)
        grow(t);
}

void source_table_remove(struct source_table *t, struct source_node *node)
{
    struct source_node **at = slot_of(t, node->name, node->hash);

    *at = node->hnext;
    t->n--;
}

struct source_node *source_table_next(const struct source_table *t, const struct source_node *prev)
{
    size_t i = 0;

    if (prev) {
        if (prev->hnext)
            return prev->hnext;
        i = (prev->hash & (t->nchains - 1)) + 1;
    }
    for (; i < t->nchains; i++)
        if (t->chain[i])
            return t->chain[i];
    return NULL;
}
