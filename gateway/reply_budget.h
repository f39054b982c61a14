/*
 * reply_budget.h - the one bound on replies read from the store and not yet
 * taken by their readers, across every front (--max-reply-memory), shared
 * between source addresses.
 *
 * Each session is bounded by its output queue and each HTTP connection by
 * one page, but thousands of sessions and connections that ask for pages
 * and read none would hold thousands of pages. A read that may build a
 * page reserves its bound before it starts, and the reply it builds counts
 * from then until it is freed: sent, or its reader gone. Past the bound a
 * new read is answered busy, and the reader tries again shortly.
 *
 * One address must not hold the whole bound while others wait: the bytes
 * are counted per source address. An address that holds at least as much
 * as a read asks for may start it only while the bound is less than three
 * quarters full; the last quarter is kept for addresses that hold less,
 * so that any address gets its page while addresses that do not read hold
 * the rest. (A share of what the others leave, three quarters each in
 * turn, left nothing for anyone after five addresses.) As with fair_share,
 * every 127.0.0.0/8 address is anyone's on loopback: this keeps a clumsy
 * client from locking others out, not one that spreads over many
 * addresses (each holding one page, they fill the last quarter).
 *
 * The core owns the budget; the session tier and the HTTP front count into
 * it through a source's record. Loop thread only.
 */
#ifndef GW_REPLY_BUDGET_H
#define GW_REPLY_BUDGET_H

#include "gw.h"
#include "source_table.h"

#include <stddef.h>

struct reply_budget {
    size_t limit; /* --max-reply-memory; SIZE_MAX: no bound */
    size_t used;  /* bytes reserved or held, every source */
    struct source_table sources;
};

/* One source address's bytes, shared by its holders (a session, an HTTP connection). */
struct reply_source {
    struct source_node node; /* first: a node is its record */
    struct reply_budget *b;
    size_t bytes;  /* reserved or held from this address */
    unsigned refs; /* holders joined; freed when none is left and bytes is 0 */
};

/* limit 0: no bound. */
void reply_budget_init(struct reply_budget *b, size_t limit);
/* Frees what is left. */
void reply_budget_fini(struct reply_budget *b);

/* The record of source (as source_of_peer gives it), for a new holder; reply_budget_leave ends it.
 */
struct reply_source *reply_budget_join(struct reply_budget *b, const char *source);
void reply_budget_leave(struct reply_source *s);

/*
 * Whether a read of n bytes from s may start: GW_OK, or GW_E_BUSY with why
 * (the bound, or this address's share of it, is taken). One reply alone
 * always fits, even one larger than the whole bound.
 */
enum gw_err reply_budget_room(const struct reply_source *s, size_t n, char why[GW_ERRLEN]);
/*
 * A reply turned out larger than the held bytes s reserved for it (one
 * message whose escaping made it up to six times its size): whether it
 * fits as a read of n would, were those bytes released first.
 */
enum gw_err reply_budget_room_instead(const struct reply_source *s, size_t held, size_t n,
                                      char why[GW_ERRLEN]);
/* reply_budget_room, and counts n for s when it fits. */
enum gw_err reply_budget_reserve(struct reply_source *s, size_t n, char why[GW_ERRLEN]);

/*
 * Counts n bytes for s whatever the bound: a reply already read, or a
 * small one already promised. The caller holds s (joined, or bytes it
 * counted and has not released).
 */
void reply_budget_add(struct reply_source *s, size_t n);
/* Those n bytes are freed. Frees s when its last holder has gone with them. NULL: a no-op. */
void reply_budget_release(struct reply_source *s, size_t n);

/* Every source's bytes: the gauge visavis_reply_bytes. */
size_t reply_budget_used(const struct reply_budget *b);
/* The bytes source holds now (0 when it holds none). */
size_t reply_budget_held_by(const struct reply_budget *b, const char *source);

#endif
