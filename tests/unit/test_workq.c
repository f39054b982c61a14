/*
 * test_workq.c - gateway/workq.h: jobs run on the worker and come back to the
 * caller in the order they were submitted; a completion budget leaves the rest
 * for the next call, first in line, with the eventfd readable again; a queue
 * that holds its wakes runs nothing until woken, then all of it at once, and
 * a stop runs what was held.
 */
#include "workq.h"

#include "tap.h"

#include <poll.h>
#include <stdint.h>
#include <time.h>

#define JOBS 12

struct job {
    struct workq_job wq; /* first */
    int index;
};

static int order[JOBS];
static int ndone;

static void run(void *arg, struct workq_job **jobs, size_t n)
{
    (void)arg;
    (void)jobs;
    (void)n;
}

/* Each completion takes a millisecond, as encoding a large page may. */
static void done(struct workq_job *wq)
{
    struct timespec ms = {0, 1000000L};

    order[ndone++] = ((struct job *)wq)->index;
    nanosleep(&ms, NULL);
}

static bool readable(int fd, int timeout_ms)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    return poll(&p, 1, timeout_ms) == 1;
}

static void test_budget(void)
{
    char why[GW_ERRLEN];
    struct workq *q = workq_new("test-workq", run, NULL, 4, why);
    struct job jobs[JOBS];
    size_t first, total;

    ok(q != NULL, "workq_new: %s", q ? "started" : why);
    if (!q)
        return;
    for (int i = 0; i < JOBS; i++) {
        jobs[i] = (struct job){.wq = {.done = done}, .index = i};
        workq_submit(q, &jobs[i].wq);
    }
    /* The worker hands a batch (4 jobs) back at once: more than a 3 ms budget's worth. */
    ok(readable(workq_fd(q), 5000), "the worker says a batch is done");
    first = workq_complete_for(q, 3000);
    ok(first >= 1 && first < JOBS, "a 3 ms budget completes some of %d 1 ms jobs: %zu", JOBS,
       first);
    ok(readable(workq_fd(q), 0), "the eventfd is readable again for the rest");
    total = first;
    while (total < JOBS && readable(workq_fd(q), 1000))
        total += workq_complete_for(q, 3000);
    is_uint(total, JOBS, "every job completes over the next calls");
    int in_order = 1;
    for (int i = 0; i < JOBS; i++)
        in_order &= order[i] == i;
    ok(in_order, "in the order they were submitted");
    is_uint(workq_pending(q), 0, "nothing pending");
    workq_free(q);
}

static size_t batches, batch_jobs;

static void count_batches(void *arg, struct workq_job **jobs, size_t n)
{
    (void)arg;
    (void)jobs;
    batches++; /* read by the test thread only after the eventfd says done */
    batch_jobs += n;
}

static void test_held_wakes(void)
{
    char why[GW_ERRLEN];
    struct workq *q = workq_new("test-held", count_batches, NULL, 64, why);
    struct job jobs[JOBS];
    bool held = false;

    ok(q != NULL, "workq_new: %s", q ? "started" : why);
    if (!q)
        return;
    workq_hold_wakes(q);
    ndone = 0;
    /*
     * A worker that has not yet gone back to sleep takes a held job without a
     * wake (it finds the queue full), so try until the job waits, as it must
     * once the worker sleeps.
     */
    for (int attempt = 0; attempt < 20 && !held; attempt++) {
        jobs[0] = (struct job){.wq = {.done = done}, .index = 0};
        workq_submit(q, &jobs[0].wq);
        held = !readable(workq_fd(q), 100);
        if (!held) {
            workq_complete(q);
            ndone = 0;
        }
    }
    ok(held, "a job submitted to a sleeping worker waits for workq_wake");
    if (!held) {
        workq_free(q);
        return;
    }
    batches = batch_jobs = 0;
    for (int i = 1; i < JOBS / 2; i++) {
        jobs[i] = (struct job){.wq = {.done = done}, .index = i};
        workq_submit(q, &jobs[i].wq);
    }
    workq_wake(q);
    size_t total = 0;
    while (total < JOBS / 2 && readable(workq_fd(q), 5000))
        total += workq_complete(q);
    is_uint(total, JOBS / 2, "woken, the worker runs every held job");
    is_uint(batches, 1, "in one batch");
    /* Held and never woken: the stop runs them all the same. */
    for (int i = JOBS / 2; i < JOBS; i++) {
        jobs[i] = (struct job){.wq = {.done = done}, .index = i};
        workq_submit(q, &jobs[i].wq);
    }
    workq_stop(q);
    is_uint(workq_complete(q), JOBS - JOBS / 2, "a stop runs the jobs still held");
    int in_order = 1;
    for (int i = 0; i < JOBS; i++)
        in_order &= order[i] == i;
    ok(in_order, "every job completed once, in the order submitted");
    workq_free(q);
}

int main(void)
{
    test_budget();
    test_held_wakes();
    return done_testing();
}
