/*
 * fair_share.c - places per source address; see fair_share.h.
 *
 * Sources sit in a chained hash table (the keyed name hash: no client can
 * aim its addresses at one chain) that doubles when it holds more sources
 * than chains. Each source keeps its places in a list, oldest first, so the
 * newest is at hand.
 */
#include "fair_share.h"

#include "gw.h"
#include "name_hash.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fair_source {
    struct fair_source *hnext;
    uint64_t hash;
    size_t n;
    struct fair_place places; /* list head: next is the oldest, prev the newest */
    char name[FAIR_SHARE_SOURCE_MAX];
};

struct fair_share {
    struct fair_source **chain;
    size_t nchains; /* a power of two */
    size_t nsources;
    struct fair_source *top; /* holds the most, unless top_stale */
    bool top_stale;
};

struct fair_share *fair_share_new(void)
{
    struct fair_share *f = gw_xcalloc(1, sizeof(*f));

    f->nchains = 16;
    f->chain = gw_xcalloc(f->nchains, sizeof(*f->chain));
    return f;
}

void fair_share_free(struct fair_share *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->nchains; i++)
        for (struct fair_source *s = f->chain[i], *next; s; s = next) {
            next = s->hnext;
            free(s);
        }
    free(f->chain);
    free(f);
}

void fair_share_source(const char *peer, char out[FAIR_SHARE_SOURCE_MAX])
{
    const char *end;

    if (peer[0] == '[' && (end = strchr(peer, ']'))) {
        peer++;
    } else if (!(end = strrchr(peer, ':')) || strchr(peer, ':') != end) {
        end = peer + strlen(peer); /* no port, or a bare IPv6 address */
    }
    snprintf(out, FAIR_SHARE_SOURCE_MAX, "%.*s", (int)(end - peer), peer);
}

static struct fair_source **slot_of(const struct fair_share *f, const char *source, uint64_t h)
{
    struct fair_source **at = &f->chain[h & (f->nchains - 1)];

    while (*at && ((*at)->hash != h || strcmp((*at)->name, source)))
        at = &(*at)->hnext;
    return at;
}

static void grow(struct fair_share *f)
{
    size_t n = f->nchains * 2;
    struct fair_source **chain = gw_xcalloc(n, sizeof(*chain));

    for (size_t i = 0; i < f->nchains; i++)
        for (struct fair_source *s = f->chain[i], *next; s; s = next) {
            next = s->hnext;
            s->hnext = chain[s->hash & (n - 1)];
            chain[s->hash & (n - 1)] = s;
        }
    free(f->chain);
    f->chain = chain;
    f->nchains = n;
}

void fair_share_take(struct fair_share *f, struct fair_place *p, const char *source)
{
    uint64_t h = name_hash(source);
    struct fair_source **at = slot_of(f, source, h), *s = *at;

    if (!s) {
        s = gw_xcalloc(1, sizeof(*s));
        s->hash = h;
        snprintf(s->name, sizeof(s->name), "%s", source);
        s->places.next = s->places.prev = &s->places;
        *at = s;
        if (++f->nsources > f->nchains)
            grow(f);
    }
    p->src = s;
    p->next = &s->places;
    p->prev = s->places.prev;
    s->places.prev->next = p;
    s->places.prev = p;
    s->n++;
    if (!f->top_stale && (!f->top || s->n > f->top->n))
        f->top = s;
}

void fair_share_leave(struct fair_share *f, struct fair_place *p)
{
    struct fair_source *s = p->src;

    if (!s)
        return;
    p->prev->next = p->next;
    p->next->prev = p->prev;
    p->src = NULL;
    p->prev = p->next = NULL;
    if (s == f->top) /* another may hold as many now */
        f->top_stale = true;
    if (--s->n)
        return;
    struct fair_source **at = slot_of(f, s->name, s->hash);
    *at = s->hnext;
    f->nsources--;
    if (s == f->top)
        f->top = NULL;
    free(s);
}

size_t fair_share_held(const struct fair_share *f, const char *source)
{
    const struct fair_source *s = *slot_of(f, source, name_hash(source));

    return s ? s->n : 0;
}

struct fair_place *fair_share_older(const struct fair_place *p)
{
    return p->prev == &p->src->places ? NULL : p->prev;
}

const char *fair_share_source_of(const struct fair_place *p)
{
    return p->src->name;
}

struct fair_place *fair_share_victim(struct fair_share *f, const char *source)
{
    if (f->top_stale) {
        f->top = NULL;
        for (size_t i = 0; i < f->nchains; i++)
            for (struct fair_source *s = f->chain[i]; s; s = s->hnext)
                if (!f->top || s->n > f->top->n)
                    f->top = s;
        f->top_stale = false;
    }
    if (!f->top || f->top->n < fair_share_held(f, source) + 2)
        return NULL;
    return f->top->places.prev;
}
