/*
 * input_budget.h - the one bound on input received and not yet whole,
 * across the fronts (--max-input-memory): HTTP request bodies being
 * received, and command lines a TCP or WebSocket session is assembling.
 *
 * Each is bounded on its own (--max-body, --max-line), but thousands of
 * connections that each send most of a large body or line, and never its
 * end, would hold thousands of them: the product of two limits an operator
 * raised for one large message, not memory the machine has. The first
 * INPUT_BUDGET_FREE bytes of each buffer are free, so that a command or a
 * body within the defaults never asks; past them a buffer counts here as
 * it grows, and one that does not fit is refused (busy) and dropped, its
 * sender told so. Loop thread only.
 */
#ifndef GW_INPUT_BUDGET_H
#define GW_INPUT_BUDGET_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

/* Bytes of each buffer that never count: a line or a body of the default limits. */
#define INPUT_BUDGET_FREE (64 * 1024)

#include <stdint.h>

struct input_budget {
    size_t limit;    /* --max-input-memory; SIZE_MAX: no bound */
    size_t used;     /* bytes counted, every buffer */
    uint64_t *gauge; /* kept equal to used (visavis_input_bytes), or NULL */
};

/* limit 0: no bound. gauge (or NULL) is kept equal to what is counted. */
void input_budget_init(struct input_budget *b, size_t limit, uint64_t *gauge);

/*
 * A buffer whose count is *held is now size bytes: true when that fits
 * (*held is its new count), false with why when it does not (nothing
 * changes). Shrinking always fits. NULL b: no bound.
 */
bool input_budget_hold(struct input_budget *b, size_t *held, size_t size, char why[GW_ERRLEN]);

/* The buffer is freed: its count goes (*held becomes 0). NULL b: a no-op. */
void input_budget_release(struct input_budget *b, size_t *held);

#endif
