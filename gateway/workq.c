/*
 * workq.c - a worker thread with a job queue and an eventfd; see workq.h.
 *
 * Batching falls out of the shape: while the worker runs one batch, new jobs
 * pile up, and the next call of run takes them all (up to batch_max). For the
 * writer that is group commit; for the reader, one wake-up for many reads.
 */
#include "workq.h"

#include "fair_queue.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

struct job_list {
    struct workq_job *head, *tail;
};

struct workq {
    workq_run_fn *run;
    void *arg;
    size_t batch_max;
    size_t batch_cost; /* 0: no bound */
    char name[16];
    pthread_t thread;
    bool started;
    int efd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct fair_queue queue; /* submitted, not yet taken by the thread */
    struct job_list done;    /* run, not yet completed */
    bool stopping;
    size_t pending;  /* loop thread only */
    bool hold_wakes; /* loop thread only: workq_hold_wakes */
    bool wake_due;   /* loop thread only: a submit found the queue empty */
};

static void list_push(struct job_list *l, struct workq_job *j)
{
    j->next = NULL;
    if (l->tail)
        l->tail->next = j;
    else
        l->head = j;
    l->tail = j;
}

static void list_splice(struct job_list *dst, struct job_list *src)
{
    if (!src->head)
        return;
    if (dst->tail)
        dst->tail->next = src->head;
    else
        dst->head = src->head;
    dst->tail = src->tail;
    src->head = src->tail = NULL;
}

/* Takes up to batch_max jobs, and batch_cost of them past the first, off the queue (caller holds
 * mu). */
static size_t take_batch(struct workq *q, struct workq_job **batch)
{
    size_t n = 0, cost = 0;

    while (n < q->batch_max && !fair_queue_empty(&q->queue)) {
        struct workq_job *j = fair_queue_peek(&q->queue);
        if (n && q->batch_cost && cost + j->cost > q->batch_cost)
            break;
        cost += j->cost;
        batch[n++] = fair_queue_pop(&q->queue);
    }
    return n;
}

static void *workq_main(void *arg)
{
    struct workq *q = arg;
    struct workq_job **batch = gw_xmalloc(q->batch_max * sizeof(*batch));

    pthread_setname_np(pthread_self(), q->name);
    for (;;) {
        size_t n;

        pthread_mutex_lock(&q->mu);
        while (fair_queue_empty(&q->queue) && !q->stopping)
            pthread_cond_wait(&q->cv, &q->mu);
        if (fair_queue_empty(&q->queue) && q->stopping) {
            pthread_mutex_unlock(&q->mu);
            break;
        }
        n = take_batch(q, batch);
        pthread_mutex_unlock(&q->mu);

        q->run(q->arg, batch, n);

        struct job_list finished = {NULL, NULL};
        for (size_t i = 0; i < n; i++)
            list_push(&finished, batch[i]);
        pthread_mutex_lock(&q->mu);
        list_splice(&q->done, &finished);
        pthread_mutex_unlock(&q->mu);
        uint64_t one = 1;
        /* Only fails if the counter would overflow: the loop is reading it anyway. */
        ssize_t wr = write(q->efd, &one, sizeof(one));
        (void)wr;
    }
    free(batch);
    return NULL;
}

struct workq *workq_new(const char *name, workq_run_fn *run, void *arg, size_t batch_max,
                        size_t batch_cost, char why[GW_ERRLEN])
{
    struct workq *q = gw_xcalloc(1, sizeof(*q));
    int rc;

    q->run = run;
    q->arg = arg;
    q->batch_max = batch_max ? batch_max : 1;
    q->batch_cost = batch_cost;
    fair_queue_init(&q->queue);
    snprintf(q->name, sizeof(q->name), "%s", name);
    q->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (q->efd < 0) {
        snprintf(why, GW_ERRLEN, "eventfd: %s", strerror(errno));
        free(q);
        return NULL;
    }
    pthread_mutex_init(&q->mu, NULL);
    /* workq_pause waits on the monotonic clock: a clock step must not stretch it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->cv, &ca);
    pthread_condattr_destroy(&ca);
    rc = pthread_create(&q->thread, NULL, workq_main, q);
    if (rc != 0) {
        snprintf(why, GW_ERRLEN, "pthread_create: %s", strerror(rc));
        close(q->efd);
        fair_queue_fini(&q->queue);
        pthread_mutex_destroy(&q->mu);
        pthread_cond_destroy(&q->cv);
        free(q);
        return NULL;
    }
    q->started = true;
    return q;
}

int workq_fd(const struct workq *q)
{
    return q->efd;
}

void workq_submit(struct workq *q, struct workq_job *job)
{
    workq_submit_from(q, job, NULL);
}

void workq_submit_from(struct workq *q, struct workq_job *job, const char *source)
{
    q->pending++;
    pthread_mutex_lock(&q->mu);
    bool was_empty = fair_queue_empty(&q->queue);
    fair_queue_push(&q->queue, job, source);
    pthread_mutex_unlock(&q->mu);
    /*
     * Only a worker that found the queue empty waits: one that has yet to
     * take what was there takes this too. Woken after the unlock, so that a
     * worker on this CPU does not run only to wait for the mutex.
     */
    if (!was_empty)
        return;
    if (q->hold_wakes)
        q->wake_due = true;
    else
        pthread_cond_signal(&q->cv);
}

void workq_hold_wakes(struct workq *q)
{
    q->hold_wakes = true;
}

void workq_wake(struct workq *q)
{
    if (!q->wake_due)
        return;
    q->wake_due = false;
    pthread_cond_signal(&q->cv);
}

static uint64_t mono_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

size_t workq_complete(struct workq *q)
{
    return workq_complete_for(q, 0);
}

size_t workq_complete_for(struct workq *q, uint64_t budget_us)
{
    struct job_list done;
    uint64_t count, start = budget_us ? mono_us() : 0;
    size_t n = 0;

    /* Reset the counter first: a signal racing with us then wakes the loop again. */
    ssize_t rd = read(q->efd, &count, sizeof(count));
    (void)rd;
    pthread_mutex_lock(&q->mu);
    done = q->done;
    q->done.head = q->done.tail = NULL;
    pthread_mutex_unlock(&q->mu);
    while (done.head) {
        struct workq_job *j = done.head;
        done.head = j->next;
        q->pending--;
        n++;
        j->done(j); /* may free j */
        if (budget_us && done.head && mono_us() - start >= budget_us) {
            /* The rest goes first next turn; the loop serves its other clients meanwhile. */
            uint64_t one = 1;
            pthread_mutex_lock(&q->mu);
            done.tail->next = q->done.head;
            if (!q->done.head)
                q->done.tail = done.tail;
            q->done.head = done.head;
            pthread_mutex_unlock(&q->mu);
            rd = write(q->efd, &one, sizeof(one));
            break;
        }
    }
    return n;
}

size_t workq_pending(const struct workq *q)
{
    return q->pending;
}

void workq_pause(struct workq *q, unsigned ms)
{
    struct timespec until;

    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&q->mu);
    /* Woken by every submit too: only the deadline or a stop end the pause. */
    while (!q->stopping && pthread_cond_timedwait(&q->cv, &q->mu, &until) != ETIMEDOUT)
        ;
    pthread_mutex_unlock(&q->mu);
}

bool workq_stopping(const struct workq *q)
{
    return q->stopping;
}

void workq_stop(struct workq *q)
{
    if (!q->started)
        return;
    pthread_mutex_lock(&q->mu);
    q->stopping = true;
    pthread_cond_signal(&q->cv);
    pthread_mutex_unlock(&q->mu);
    pthread_join(q->thread, NULL);
    q->started = false;
}

void workq_free(struct workq *q)
{
    if (!q)
        return;
    workq_stop(q);
    workq_complete(q);
    close(q->efd);
    fair_queue_fini(&q->queue); /* empty: a stop runs what was queued */
    pthread_mutex_destroy(&q->mu);
    pthread_cond_destroy(&q->cv);
    free(q);
}
