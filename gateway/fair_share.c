/*
 * fair_share.c - places per source address; see fair_share.h.
 *
 * Sources sit in a source_table. Each keeps its places in a list, oldest
 * first, so the newest is at hand.
 */
#include "fair_share.h"

#include "gw.h"
#include "source_table.h"

#include <stdlib.h>

struct fair_source {
    struct source_node node; /* first: a node is its record */
    size_t n;
    struct fair_place places; /* list head: next is the oldest, prev the newest */
};

struct fair_share {
    struct source_table sources;
    struct fair_source *top; /* holds the most, unless top_stale */
    bool top_stale;
};

struct fair_share *fair_share_new(void)
{
    struct fair_share *f = gw_xcalloc(1, sizeof(*f));

    source_table_init(&f->sources);
    return f;
}

void fair_share_free(struct fair_share *f)
{
    if (!f)
        return;
    for (struct source_node *n = source_table_next(&f->sources, NULL), *next; n; n = next) {
        next = source_table_next(&f->sources, n);
        free(n);
    }
    source_table_fini(&f->sources);
    free(f);
}

static struct fair_source *find(const struct fair_share *f, const char *source)
{
    return (struct fair_source *)(void *)source_table_find(&f->sources, source);
}

void fair_share_take(struct fair_share *f, struct fair_place *p, const char *source)
{
    struct fair_source *s = find(f, source);

    if (!s) {
        s = gw_xcalloc(1, sizeof(*s));
        s->places.next = s->places.prev = &s->places;
        source_table_add(&f->sources, &s->node, source);
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
    source_table_remove(&f->sources, &s->node);
    if (s == f->top)
        f->top = NULL;
    free(s);
}

size_t fair_share_held(const struct fair_share *f, const char *source)
{
    const struct fair_source *s = find(f, source);

    return s ? s->n : 0;
}

struct fair_place *fair_share_older(const struct fair_place *p)
{
    return p->prev == &p->src->places ? NULL : p->prev;
}

const char *fair_share_source_of(const struct fair_place *p)
{
    return p->src->node.name;
}

struct fair_place *fair_share_victim(struct fair_share *f, const char *source)
{
    if (f->top_stale) {
        f->top = NULL;
        for (struct source_node *n = source_table_next(&f->sources, NULL); n;
             n = source_table_next(&f->sources, n)) {
            struct fair_source *s = (struct fair_source *)(void *)n;
            if (!f->top || s->n > f->top->n)
                f->top = s;
        }
        f->top_stale = false;
    }
    if (!f->top || f->top->n < fair_share_held(f, source) + 2)
        return NULL;
    return f->top->places.prev;
}
