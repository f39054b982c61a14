/*
 * test_workq.c - gateway/workq.h: jobs run on the worker and come back to the
 * caller in the order they were submitted; a completion budget leaves the rest
 * for the next call, first in line, with the eventfd readable again.
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

int main(void)
{
    test_budget();
    return done_testing();
}
