/*
 * writer.c - group-commit thread; see writer.h.
 *
 * The thread and its queue are a workq (workq.h). Group commit falls out of
 * the shape: while a commit (and its fsync) runs, new jobs pile up, and the
 * next transaction takes them all.
 */
#include "writer.h"

#include "log.h"
#include "store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Bound one transaction, so one huge burst cannot delay every ack behind it. */
#define WRITER_BATCH_MAX   1024
/* ... in bytes of bodies too: a client's next publish waits for one such commit, not 60 MB. */
#define WRITER_BATCH_BYTES (1024u * 1024u)
/* The pause after a full or broken database failed a batch (see back_off). */
#define WRITER_BACKOFF_MS  100

struct writer {
    struct store *store;
    struct workq *q;
    pthread_mutex_t stats_mu;
    struct metrics_commits stats;
    /* writer thread only */
    struct writer_job **batch;
    struct gw_msg **msgs;
    enum gw_err failing; /* the database's error, GW_OK while it works */
    size_t failed;       /* publishes failed since it began */
};

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
        pthread_mutex_lock(&w->stats_mu);
        w->stats.failing = GW_OK;
        w->stats.restart_needed = false;
        w->stats.commits++;
        w->stats.messages += n;
        metrics_hist_observe(&w->stats.batch_size, (double)n);
        metrics_hist_observe(&w->stats.commit_seconds, (double)(now_us() - t0) / 1e6);
        pthread_mutex_unlock(&w->stats_mu);
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
        bool restart = store_needs_restart(w->store);
        pthread_mutex_lock(&w->stats_mu);
        w->stats.failing = err;
        w->stats.restart_needed = restart;
        snprintf(w->stats.failing_why, sizeof(w->stats.failing_why), "%s", why);
        pthread_mutex_unlock(&w->stats_mu);
    }
    fail_all(batch, n, err, why);
}

/*
 * The workq's run function: one transaction for the batch. After a full or
 * broken database failed the last one, a short pause first, so that a
 * database that cannot write is not sent one failing transaction per
 * publish (a busy one has waited already, in the store; an unavailable one
 * is retried on the store's own back-off, and fails at once in between).
 */
static void run(void *arg, struct workq_job **jobs, size_t n)
{
    struct writer *w = arg;

    if (w->failing != GW_OK && w->failing != GW_E_STORE_BUSY &&
        w->failing != GW_E_STORE_UNAVAILABLE)
        workq_pause(w->q, WRITER_BACKOFF_MS);
    for (size_t i = 0; i < n; i++)
        w->batch[i] = (struct writer_job *)jobs[i];
    commit_batch(w, w->batch, n, w->msgs);
}

static void job_done(struct workq_job *wq)
{
    struct writer_job *job = (struct writer_job *)wq;
    job->done(job); /* may free job */
}

struct writer *writer_new(struct store *store, char why[GW_ERRLEN])
{
    struct writer *w = gw_xcalloc(1, sizeof(*w));

    w->store = store;
    w->batch = gw_xmalloc(WRITER_BATCH_MAX * sizeof(*w->batch));
    w->msgs = gw_xmalloc(WRITER_BATCH_MAX * sizeof(*w->msgs));
    pthread_mutex_init(&w->stats_mu, NULL);
    metrics_hist_init(&w->stats.batch_size, metrics_size_bounds);
    metrics_hist_init(&w->stats.commit_seconds, metrics_seconds_bounds);
    if (!(w->q = workq_new("visavis-writer", run, w, WRITER_BATCH_MAX, WRITER_BATCH_BYTES, why))) {
        writer_free(w);
        return NULL;
    }
    return w;
}

int writer_fd(const struct writer *w)
{
    return workq_fd(w->q);
}

void writer_submit(struct writer *w, struct writer_job *job, const char *source)
{
    job->err = GW_OK;
    job->why[0] = '\0';
    job->wq.done = job_done;
    job->wq.cost = job->msg.body_len + job->msg.sender_len;
    GW_ASSERT(!workq_stopping(w->q));
    workq_submit_from(w->q, &job->wq, source);
}

void writer_hold_wakes(struct writer *w)
{
    workq_hold_wakes(w->q);
}

void writer_wake(struct writer *w)
{
    workq_wake(w->q);
}

size_t writer_complete(struct writer *w)
{
    return workq_complete(w->q);
}

size_t writer_pending(const struct writer *w)
{
    return workq_pending(w->q);
}

void writer_stop(struct writer *w)
{
    workq_stop(w->q);
}

void writer_free(struct writer *w)
{
    if (!w)
        return;
    workq_free(w->q);
    pthread_mutex_destroy(&w->stats_mu);
    free(w->batch);
    free(w->msgs);
    free(w);
}

void writer_stats(struct writer *w, struct metrics_commits *out)
{
    pthread_mutex_lock(&w->stats_mu);
    *out = w->stats;
    pthread_mutex_unlock(&w->stats_mu);
}
