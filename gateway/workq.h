/*
 * workq.h - a worker thread fed by the loop: jobs go in on the loop thread,
 * run on the worker in batches, and come back to the loop through an eventfd,
 * where their done callbacks run in the order they ran.
 *
 * The shape the store writer and the store reader share (DESIGN.md: "Reads
 * run on reader thread(s) the same way"). Jobs are taken in turns by source
 * address (fair_queue.h): those of one address run in the order they were
 * submitted, and an address that queues many delays another's by one job
 * at a time, not by all of them. A job belongs to the queue from
 * workq_submit until its done callback starts; the queue's mutex is the one
 * piece of state both threads touch. Depends on gw.h and pthreads.
 */
#ifndef GW_WORKQ_H
#define GW_WORKQ_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct workq_job {
    struct workq_job *next;
    /* Loop thread, once the job has run; may free the job. */
    void (*done)(struct workq_job *job);
    /* What the job weighs against the batch's bound (workq_new's batch_cost): bytes, say. */
    size_t cost;
};

/*
 * Worker thread: runs jobs[0..n-1], in order (n >= 1, at most the batch size
 * given to workq_new). arg is workq_new's.
 */
typedef void workq_run_fn(void *arg, struct workq_job **jobs, size_t n);

struct workq;

/*
 * Starts the thread (named name, for ps and debuggers). batch_max bounds how
 * many queued jobs one call of run takes, and batch_cost (0: no bound) what
 * their costs add up to, past the first: a batch's results come back
 * together, so what a batch holds is what the first job of the next one
 * waits for. NULL + why on failure.
 */
struct workq *workq_new(const char *name, workq_run_fn *run, void *arg, size_t batch_max,
                        size_t batch_cost, char why[GW_ERRLEN]);

/* The eventfd that turns readable when jobs are done: the loop watches it. */
int workq_fd(const struct workq *q);

/* Loop thread. Takes job until its done callback runs; the gateway's own (no client behind it). */
void workq_submit(struct workq *q, struct workq_job *job);

/* The same for a client's job: source is its address (source_of_peer), its turns its own. */
void workq_submit_from(struct workq *q, struct workq_job *job, const char *source);

/*
 * Loop thread. From now on a submit that finds the worker idle leaves it
 * asleep until workq_wake: the loop wakes it once, at the end of its turn,
 * with everything the turn submitted. On one CPU the worker would otherwise
 * run at the first submit, for a batch of one, while the loop's other
 * requests of that turn wait for the CPU.
 */
void workq_hold_wakes(struct workq *q);

/* Loop thread. Wakes the worker if a held submit is waiting for it. */
void workq_wake(struct workq *q);

/* Loop thread. Runs done() of every finished job, in order; returns how many. */
size_t workq_complete(struct workq *q);

/*
 * The same, but stops once budget_us microseconds have gone (after one job
 * at least), with the eventfd readable again for the rest: a burst of large
 * results (pages of a megabyte to encode) is spread over loop turns instead
 * of holding every other client for its whole length. 0: no budget.
 */
size_t workq_complete_for(struct workq *q, uint64_t budget_us);

/* Jobs submitted whose done callback has not run yet. */
size_t workq_pending(const struct workq *q);

/*
 * Worker thread: waits ms milliseconds, or less if workq_stop is called
 * meanwhile (a back-off that must not hold up a stop).
 */
void workq_pause(struct workq *q, unsigned ms);

/* Whether workq_stop has been called. */
bool workq_stopping(const struct workq *q);

/* Runs what is queued, then ends the thread. Call workq_complete after. */
void workq_stop(struct workq *q);

/* Stops if needed and frees; every job must have completed. NULL is a no-op. */
void workq_free(struct workq *q);

#endif
