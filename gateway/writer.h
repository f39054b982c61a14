/*
 * writer.h - the store writer thread: group commit, and the hand-back of
 * committed messages to the loop.
 *
 * Depends on store.h, workq.h, model.h, gw.h. Jobs are queued from the loop
 * thread; the writer thread (a workq) commits what was queued while its
 * previous commit ran in one transaction (up to a bound, taken from every
 * client address in turns), and hands the jobs back through an
 * eventfd. The loop watches writer_fd() and calls writer_complete(), which
 * runs each job's done callback on the loop thread, in commit order. A job
 * belongs to the writer from writer_submit until its done callback starts.
 *
 * When a transaction fails, only a message the database refused (a
 * constraint, too big) sends the batch back one message at a time; a busy,
 * full or broken database (store.h) fails every job of the batch with the
 * same error at once, and the next batch tries again.
 */
#ifndef GW_WRITER_H
#define GW_WRITER_H

#include "gw.h"
#include "metrics.h"
#include "model.h"
#include "workq.h"

#include <stddef.h>
#include <stdint.h>

struct store;
struct writer;

struct writer_job {
    struct workq_job wq; /* the writer's; first */
    /* in: channel, sender, body, via; out on success: id, seq, ts_ms */
    struct gw_msg msg;
    enum gw_err err; /* set before done runs */
    char why[GW_ERRLEN];
    void (*done)(struct writer_job *job);
    void *ctx; /* the submitter's */
};

/* Starts the thread on store (borrowed; must outlive writer_free). NULL + why on failure. */
struct writer *writer_new(struct store *store, char why[GW_ERRLEN]);

/* The eventfd that turns readable when jobs are done. */
int writer_fd(const struct writer *w);

/*
 * Loop thread. Takes job until its done callback runs. source: the client's
 * address (source_of_peer; NULL or "": the gateway's own), whose jobs take
 * their turns in the next transactions beside other addresses' (workq.h).
 */
void writer_submit(struct writer *w, struct writer_job *job, const char *source);

/* Loop thread. As workq_hold_wakes and workq_wake, for the writer's thread. */
void writer_hold_wakes(struct writer *w);
void writer_wake(struct writer *w);

/* Loop thread. Runs done() of every finished job; returns how many. */
size_t writer_complete(struct writer *w);

/* Jobs submitted whose done callback has not run yet. */
size_t writer_pending(const struct writer *w);

/* Commits what is queued, then ends the thread. Call writer_complete after. */
void writer_stop(struct writer *w);

/* Stops if needed and frees. NULL is a no-op. */
void writer_free(struct writer *w);

/* Transactions committed, their sizes and durations, for metrics (copied under the lock). */
void writer_stats(struct writer *w, struct metrics_commits *out);

#endif
