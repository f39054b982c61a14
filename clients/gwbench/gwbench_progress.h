/*
 * gwbench_progress.h - what gwbench says on stderr while it runs: a
 * progress line on a terminal, and messages.
 *
 * Depends on gwbench_types.h (the options) and libc. One run of gwbench at a time
 * per process: the state is this file's.
 */
#ifndef GWBENCH_PROGRESS_H
#define GWBENCH_PROGRESS_H

#include "gwbench_types.h"

#include <stdint.h>

/* "gwbench: <message>" on stderr, after erasing a progress line. */
void gwbench_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The whole run starts: count styles to run in all (styles times runs). */
void gwbench_progress_begin(const struct gwbench_opts *o, int count);

/* The next style starts (1, 2, ... count). */
void gwbench_progress_next(void);

/*
 * Progress of the style running: its name, seconds, and messages so far.
 * Called often; draws at most every 200 ms, on a terminal only
 * (o->progress), and only once the whole run has taken over 2 s or is
 * expected to. delivery: count deliveries rather than messages.
 */
void gwbench_progress(const struct gwbench_opts *o, const char *style, bool delivery,
                      int64_t t_start_ns, uint64_t done, uint64_t total);

/* Erases the progress line, if one is shown. */
void gwbench_progress_end(void);

#endif
