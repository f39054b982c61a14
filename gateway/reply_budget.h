/*
 * reply_budget.h - the one bound on replies read from the store and not yet
 * taken by their readers, across every front (--max-reply-memory).
 *
 * Each session is bounded by its output queue and each HTTP connection by
 * one page, but thousands of sessions and connections that ask for pages
 * and read none would hold thousands of pages. A read that may build a
 * page reserves its bound before it starts (reserved), and the reply it
 * builds counts from then until it is freed (held): sent, or its reader
 * gone. Past the bound a new read is answered busy, and the reader tries
 * again shortly. The core owns the budget; the session tier and the HTTP
 * front count into it. Loop thread only.
 */
#ifndef GW_REPLY_BUDGET_H
#define GW_REPLY_BUDGET_H

#include "gw.h"

#include <stddef.h>

struct reply_budget {
    size_t limit;    /* --max-reply-memory */
    size_t reserved; /* bounds of reads under way */
    size_t held;     /* bytes of replies built and not yet freed */
};

/* limit 0: no bound. */
void reply_budget_init(struct reply_budget *b, size_t limit);

/*
 * Whether n more bytes fit: GW_OK, or GW_E_BUSY with why. One reply alone
 * always fits, even one larger than the whole bound.
 */
enum gw_err reply_budget_room(const struct reply_budget *b, size_t n, char why[GW_ERRLEN]);

/* reserved + held: the gauge visavis_reply_bytes. */
size_t reply_budget_used(const struct reply_budget *b);

#endif
