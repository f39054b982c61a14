/*
 * fair_queue.h - the jobs of a worker's queue, taken in turns by source
 * address: one job of each address that has any, round and round. An
 * address with a thousand publishes or page reads queued delays another
 * address's next job by one of its own, not by the thousand; the jobs of one
 * address keep their order. The gateway's own jobs (no client behind them)
 * are one more source.
 *
 * Not thread-safe: workq holds its mutex around every call. Depends on
 * workq.h (the job) and source_table.h (the addresses).
 */
#ifndef GW_FAIR_QUEUE_H
#define GW_FAIR_QUEUE_H

#include "source_table.h"
#include "workq.h"

#include <stdbool.h>
#include <stddef.h>

struct fq_flow;

struct fair_queue {
    struct source_table flows; /* the addresses with a job queued */
    struct fq_flow *turn;      /* the one whose job goes next; the flows are a ring */
    struct fq_flow *last;      /* the one before it (whose next is turn) */
    size_t n;                  /* jobs queued */
};

void fair_queue_init(struct fair_queue *q);
/* Frees what is left of the flows; their jobs are dropped, not run. */
void fair_queue_fini(struct fair_queue *q);

/*
 * Queues job behind the earlier jobs of source (a source address, as
 * source_of_peer gives it; NULL or "": the gateway's own). A source new to
 * the queue takes its turn after every source already waiting.
 */
void fair_queue_push(struct fair_queue *q, struct workq_job *job, const char *source);

/* The job whose turn it is, or NULL: left queued. */
struct workq_job *fair_queue_peek(const struct fair_queue *q);

/* Takes the job whose turn it is (NULL when empty); the next source's turn comes. */
struct workq_job *fair_queue_pop(struct fair_queue *q);

static inline bool fair_queue_empty(const struct fair_queue *q)
{
    return q->n == 0;
}

#endif
