/*
 * writer.c - group-commit thread; see writer.h.
 *
 * The queue is the one piece of state shared between threads, behind one
 * mutex. Group commit falls out of the shape: while a commit (and its fsync)
 * runs, new jobs pile up, and the next transaction takes them all.
 */
#include "writer.h"

#include "log.h"
#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

/* Bounds one transaction, so one huge burst cannot delay every ack behind it. */
#define WRITER_BATCH_MAX  1024
/* The pause after a full or broken database failed a batch (see back_off). */
#define WRITER_BACKOFF_MS 100

struct job_list {
    struct writer_job *head, *tail;
};

struct writer {
    struct store *store;
    pthread_t thread;
    int started;
    int efd;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct job_list queue; /* submitted, not yet taken by the thread */
    struct job_list done;  /* committed or failed, not yet completed */
    int stopping;
    size_t pending; /* loop thread only */
    struct metrics_commits stats;
    enum gw_err failing; /* writer thread only: the database's error, GW_OK while it works */
    size_t failed;       /* publishes failed since it began */
};

static void list_push(struct job_list *l, struct writer_job *j)
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

/* Takes up to WRITER_BATCH_MAX jobs off the queue (caller holds mu). */
static size_t take_batch(struct writer *w, struct writer_job **batch)
{
    size_t n = 0;
    while (w->queue.head && n < WRITER_BATCH_MAX) {
        struct writer_job *j = w->queue.head;
        w->queue.head = j->next;
        batch[n++] = j;
    }
    if (!w->queue.head)
        w->queue.tail = NULL;
    return n;
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Gives every job of the batch the same error. */
static void fail_all(struct writer_job **batch, size_t n, enum gw_err err, const char *why)
{
    for (size_t i = 0; i < n; i++) {
        batch[i]->err = err;
        snprintf(batch[i]->why, sizeof(batch[i]->why), "%s", why);
    }
}

static void commit_batch(struct writer *w, struct writer_job **batch, size_t n,
                         struct gw_msg **msgs)
{
    char why[GW_ERRLEN];
    enum gw_err err;
    bool refused;

    for (size_t i = 0; i < n; i++)
        msgs[i] = &batch[i]->msg;
    uint64_t t0 = now_us();
    err = store_append(w->store, msgs, n, &refused, why);
    if (err == GW_OK) {
        for (size_t i = 0; i < n; i++)
            batch[i]->err = GW_OK;
        if (w->failing != GW_OK)
            log_info("store: writes work again (%zu publishes failed meanwhile)", w->failed);
        w->failing = GW_OK;
        w->failed = 0;
        pthread_mutex_lock(&w->mu);
        w->stats.commits++;
        w->stats.messages += n;
        metrics_hist_observe(&w->stats.batch_size, (double)n);
        metrics_hist_observe(&w->stats.commit_seconds, (double)(now_us() - t0) / 1e6);
        pthread_mutex_unlock(&w->mu);
        return;
    }
    if (refused && n > 1) {
        /* One bad message must not sink the others: retry each alone. */
        log_warn("store: batch of %zu refused (%s); retrying one by one", n, why);
        for (size_t i = 0; i < n; i++)
            commit_batch(w, &batch[i], 1, &msgs[i]);
        return;
    }
    if (refused) {
        log_error("store: publish to '%s' refused: %s", batch[0]->msg.channel, why);
    } else {
        /* Busy, full or broken: every message would fail alike, so all fail now. */
        if (w->failing != err)
            log_error("store: %s: %s (publishes fail until the cause is gone)", gw_err_code(err),
                      why);
        w->failing = err;
        w->failed += n;
    }
    fail_all(batch, n, err, why);
}

/*
 * After the database failed (busy, full, broken), a short pause before the
 * next batch: jobs that come meanwhile fail together, instead of one fast
 * failed transaction each. Not while stopping (caller holds mu).
 */
static void back_off(struct writer *w)
{
    struct timespec until;

    if (w->failing == GW_OK || w->failing == GW_E_STORE_BUSY || w->stopping)
        return;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_nsec += WRITER_BACKOFF_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (!w->stopping && pthread_cond_timedwait(&w->cv, &w->mu, &until) != ETIMEDOUT)
        ;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    struct writer_job **batch = gw_xmalloc(WRITER_BATCH_MAX * sizeof(*batch));
    struct gw_msg **msgs = gw_xmalloc(WRITER_BATCH_MAX * sizeof(*msgs));

    for (;;) {
        size_t n;
        pthread_mutex_lock(&w->mu);
        back_off(w);
        while (!w->queue.head && !w->stopping)
            pthread_cond_wait(&w->cv, &w->mu);
        if (!w->queue.head && w->stopping) {
            pthread_mutex_unlock(&w->mu);
            break;
        }
        n = take_batch(w, batch);
        pthread_mutex_unlock(&w->mu);

        commit_batch(w, batch, n, msgs);

        struct job_list finished = {NULL, NULL};
        for (size_t i = 0; i < n; i++)
            list_push(&finished, batch[i]);
        pthread_mutex_lock(&w->mu);
        list_splice(&w->done, &finished);
        pthread_mutex_unlock(&w->mu);
        uint64_t one = 1;
        /* Only fails if the counter would overflow: the loop is reading it anyway. */
        ssize_t wr = write(w->efd, &one, sizeof(one));
        (void)wr;
    }
    free(batch);
    free(msgs);
    return NULL;
}

struct writer *writer_new(struct store *store, char why[GW_ERRLEN])
{
    struct writer *w = gw_xcalloc(1, sizeof(*w));
    int rc;

    w->store = store;
    w->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (w->efd < 0) {
        snprintf(why, GW_ERRLEN, "eventfd: %s", strerror(errno));
        free(w);
        return NULL;
    }
    pthread_mutex_init(&w->mu, NULL);
    /* back_off waits on the monotonic clock: a clock step must not stretch it. */
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&w->cv, &ca);
    pthread_condattr_destroy(&ca);
    metrics_hist_init(&w->stats.batch_size, metrics_size_bounds);
    metrics_hist_init(&w->stats.commit_seconds, metrics_seconds_bounds);
    rc = pthread_create(&w->thread, NULL, writer_main, w);
    if (rc != 0) {
        snprintf(why, GW_ERRLEN, "pthread_create: %s", strerror(rc));
        close(w->efd);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
        free(w);
        return NULL;
    }
    w->started = 1;
    return w;
}

int writer_fd(const struct writer *w)
{
    return w->efd;
}

void writer_submit(struct writer *w, struct writer_job *job)
{
    job->err = GW_OK;
    job->why[0] = '\0';
    w->pending++;
    pthread_mutex_lock(&w->mu);
    GW_ASSERT(!w->stopping);
    list_push(&w->queue, job);
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
}

size_t writer_complete(struct writer *w)
{
    struct job_list done;
    uint64_t count;
    size_t n = 0;

    /* Reset the counter first: a signal racing with us then wakes the loop again. */
    ssize_t rd = read(w->efd, &count, sizeof(count));
    (void)rd;
    pthread_mutex_lock(&w->mu);
    done = w->done;
    w->done.head = w->done.tail = NULL;
    pthread_mutex_unlock(&w->mu);
    while (done.head) {
        struct writer_job *j = done.head;
        done.head = j->next;
        w->pending--;
        n++;
        j->done(j); /* may free j */
    }
    return n;
}

size_t writer_pending(const struct writer *w)
{
    return w->pending;
}

void writer_stop(struct writer *w)
{
    if (!w->started)
        return;
    pthread_mutex_lock(&w->mu);
    w->stopping = 1;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    pthread_join(w->thread, NULL);
    w->started = 0;
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    writer_stop(w);
    GW_ASSERT(!w->done.head && !w->queue.head);
    close(w->efd);
    pthread_mutex_destroy(&w->mu);
    pthread_cond_destroy(&w->cv);
    free(w);
}

void writer_stats(struct writer *w, struct metrics_commits *out)
{
    pthread_mutex_lock(&w->mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->mu);
}
