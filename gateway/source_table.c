/*
 * source_table.c - see source_table.h.
 */
#include "source_table.h"

#include "gw.h"
#include "name_hash.h"

#include <arpa/inet.h>
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

bool source_v6_by_prefix(const struct in6_addr *a)
{
    return !IN6_IS_ADDR_V4MAPPED(a) && !IN6_IS_ADDR_LOOPBACK(a) && !IN6_IS_ADDR_LINKLOCAL(a) &&
           !IN6_IS_ADDR_UNSPECIFIED(a);
}

void source_of_peer(const char *peer, char out[SOURCE_MAX])
{
    const char *end;
    char host[INET6_ADDRSTRLEN];
    struct in6_addr a;

    if (peer[0] == '[' && (end = strchr(peer, ']'))) {
        peer++;
    } else if (!(end = strrchr(peer, ':')) || strchr(peer, ':') != end) {
        end = peer + strlen(peer); /* no port, or a bare IPv6 address */
    }
    snprintf(out, SOURCE_MAX, "%.*s", (int)(end - peer), peer);
    if ((size_t)(end - peer) >= sizeof(host))
        return;
    memcpy(host, peer, (size_t)(end - peer));
    host[end - peer] = '\0';
    if (inet_pton(AF_INET6, host, &a) != 1)
        return;
    if (IN6_IS_ADDR_V4MAPPED(&a)) {
        /* A dual-stack socket's IPv4 client: the same client as on an IPv4 socket. */
        inet_ntop(AF_INET, &a.s6_addr[12], out, SOURCE_MAX);
    } else if (source_v6_by_prefix(&a)) {
        memset(&a.s6_addr[8], 0, 8);
        inet_ntop(AF_INET6, &a, host, sizeof(host));
        snprintf(out, SOURCE_MAX, "%s/64", host);
    }
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
