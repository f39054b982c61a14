/*
 * fair_queue.c - see fair_queue.h.
 *
 * A flow per source address with jobs queued, found through the keyed
 * source table (no client can aim its addresses at one chain), and linked in
 * a ring walked one job at a time. A flow lives only while it has jobs: the
 * table holds the addresses waiting now, not every address ever seen.
 */
#include "fair_queue.h"

#include "gw.h"

#include <stdlib.h>

struct fq_flow {
    struct source_node node; /* first: a node pointer is a flow pointer */
    struct workq_job *head, *tail;
    struct fq_flow *next; /* in the ring */
};

void fair_queue_init(struct fair_queue *q)
{
    source_table_init(&q->flows);
    q->turn = q->last = NULL;
    q->n = 0;
}

void fair_queue_fini(struct fair_queue *q)
{
    if (q->turn) {
        q->last->next = NULL; /* the ring, opened */
        for (struct fq_flow *f = q->turn, *next; f; f = next) {
            next = f->next;
            source_table_remove(&q->flows, &f->node);
            free(f);
        }
    }
    source_table_fini(&q->flows);
    q->turn = q->last = NULL;
    q->n = 0;
}

void fair_queue_push(struct fair_queue *q, struct workq_job *job, const char *source)
{
    const char *name = source ? source : "";
    struct fq_flow *f = (struct fq_flow *)source_table_find(&q->flows, name);

    if (!f) {
        f = gw_xcalloc(1, sizeof(*f));
        source_table_add(&q->flows, &f->node, name);
        /* Last in the round: after every source already waiting. */
        if (q->turn) {
            f->next = q->turn;
            q->last->next = f;
        } else {
            f->next = f;
            q->turn = f;
        }
        q->last = f;
    }
    job->next = NULL;
    if (f->tail)
        f->tail->next = job;
    else
        f->head = job;
    f->tail = job;
    q->n++;
}

struct workq_job *fair_queue_peek(const struct fair_queue *q)
{
    return q->turn ? q->turn->head : NULL;
}

struct workq_job *fair_queue_pop(struct fair_queue *q)
{
    struct fq_flow *f = q->turn;

    if (!f)
        return NULL;
    struct workq_job *job = f->head;
    f->head = job->next;
    job->next = NULL;
    q->n--;
    if (f->head) {
        q->last = f; /* its next job waits for a round */
        q->turn = f->next;
        return job;
    }
    /* Its last job: out of the ring and the table. */
    f->tail = NULL;
    if (f->next == f) {
        q->turn = q->last = NULL;
    } else {
        q->last->next = f->next;
        q->turn = f->next;
    }
    source_table_remove(&q->flows, &f->node);
    free(f);
    return job;
}
