/*
 * fair_share.h - who gives up a place when a limited pool is full: the
 * places of one limit (a front's sessions, its waiting long-polls), counted
 * per source address.
 *
 * A limit such as --max-sessions protects the gateway, but a single source
 * could fill it and lock every other client out; a fixed cap per address
 * would refuse a lone client what nobody else wants. So a pool is shared
 * only when it is full: a newcomer from another address takes the newest
 * place of the address holding the most, when that address holds at least
 * two more than the newcomer's (then neither can take the place back, and
 * the pool settles at equal shares instead of going back and forth). While
 * there is room, any address may hold any number of places.
 *
 * An address is the peer's host without its port (a client picks any
 * port). On loopback every 127.0.0.0/8 address is anyone's, so this keeps a
 * clumsy client (a script opening sessions in a loop) from hurting others;
 * it is no defence against one that spreads over many addresses.
 *
 * Memory: one node per address holding places, freed with its last place.
 * The address holding the most is kept as places are taken; after it gives
 * one up it is found again by a walk over the addresses, only when a full
 * pool asks. Loop thread only.
 */
#ifndef GW_FAIR_SHARE_H
#define GW_FAIR_SHARE_H

#include "source_table.h"

#include <stdbool.h>
#include <stddef.h>

struct fair_share;
struct fair_source;

/* One place in a pool, kept inside its holder (a session, a request). */
struct fair_place {
    struct fair_source *src; /* NULL: holds no place */
    struct fair_place *prev, *next;
};

struct fair_share *fair_share_new(void);
/* Every place must have left. NULL is a no-op. */
void fair_share_free(struct fair_share *f);

/* p takes a place for source (as source_of_peer gives it). p must hold none. */
void fair_share_take(struct fair_share *f, struct fair_place *p, const char *source);
/* p gives its place up; a no-op when it holds none. */
void fair_share_leave(struct fair_share *f, struct fair_place *p);

/* Places source holds now. */
size_t fair_share_held(const struct fair_share *f, const char *source);
/* The source of place p (it must hold one). */
const char *fair_share_source_of(const struct fair_place *p);

/*
 * The pool is full and a newcomer from source asks: the place it may take
 * (the newest of the address holding the most, at least two more than
 * source holds), or NULL (the newcomer is refused). The place is still held:
 * the caller ends its holder, which leaves.
 */
struct fair_place *fair_share_victim(struct fair_share *f, const char *source);

/*
 * The place its source took before p, or NULL: for a pool whose newest
 * place may not be able to give way now, the next to ask.
 */
struct fair_place *fair_share_older(const struct fair_place *p);

#endif
