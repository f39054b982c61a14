/*
 * test_workq.c - gateway/workq.h: jobs run on the worker and come back to the
 * caller in the order they were submitted; a completion budget leaves the rest
 * for the next call, first in line, with the eventfd readable again; a queue
 * that holds its wakes runs nothing until woken, then all of it at once, and
 * a stop runs what was held. Jobs are taken in turns by source address, one
 * of each in turn, each address's in the order submitted; a batch holds no
 * more than its cost bound past its first job.
 */
#include "workq.h"

#include "tap.h"

#include <poll.h>
#include <semaphore.h>
#include <stdint.h>
#include <time.h>

#define JOBS 12

struct job {
    struct workq_job wq; /* first */
    int index;
};

static int order[32]; /* JOBS, or the 14 jobs of test_turns */
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
    struct workq *q = workq_new("test-workq", run, NULL, 4, 0, why);
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
    struct workq *q = workq_new("test-held", count_batches, NULL, 64, 0, why);
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

/*
 * A worker held inside its first job (the gate) while the test queues the
 * rest, so that what it takes next is decided by the queue alone.
 */
#define GATE  (-1)
#define TURNS 32
static sem_t gate_started, gate_open;
static int ran[TURNS], nran;
static size_t batch_sizes[TURNS], nbatches;

static void run_gated(void *arg, struct workq_job **jobs, size_t n)
{
    (void)arg;
    if (nbatches < TURNS)
        batch_sizes[nbatches++] = n;
    for (size_t i = 0; i < n; i++) {
        int index = ((struct job *)jobs[i])->index;
        if (index == GATE) {
            sem_post(&gate_started);
            sem_wait(&gate_open);
            continue;
        }
        if (nran < TURNS)
            ran[nran++] = index;
    }
}

static void quiet_done(struct workq_job *wq)
{
    order[ndone++] = ((struct job *)wq)->index;
}

static struct workq *gated_queue(const char *name, size_t batch_cost, struct job *gate)
{
    char why[GW_ERRLEN];
    struct workq *q = workq_new(name, run_gated, NULL, 64, batch_cost, why);

    ok(q != NULL, "workq_new: %s", q ? "started" : why);
    if (!q)
        return NULL;
    nran = ndone = 0;
    nbatches = 0;
    *gate = (struct job){.wq = {.done = quiet_done}, .index = GATE};
    workq_submit(q, &gate->wq);
    sem_wait(&gate_started); /* the worker holds the gate: what follows queues */
    return q;
}

static void complete_all(struct workq *q, int n)
{
    int total = 0;
    while (total < n && readable(workq_fd(q), 5000))
        total += (int)workq_complete(q);
    is_int(total, n, "every job completes");
}

static void test_turns(void)
{
    struct job gate, a[10], b[2], c;
    struct workq *q = gated_queue("test-turns", 0, &gate);

    if (!q)
        return;
    for (int i = 0; i < 10; i++) {
        a[i] = (struct job){.wq = {.done = quiet_done}, .index = i};
        workq_submit_from(q, &a[i].wq, "10.0.0.1");
    }
    for (int i = 0; i < 2; i++) {
        b[i] = (struct job){.wq = {.done = quiet_done}, .index = 100 + i};
        workq_submit_from(q, &b[i].wq, "10.0.0.2");
    }
    c = (struct job){.wq = {.done = quiet_done}, .index = 200};
    workq_submit(q, &c.wq); /* the gateway's own: one more source */
    sem_post(&gate_open);
    complete_all(q, 14);
    /* In turns, the sources in the order they came: the one with ten waits its turn after each job.
     */
    static const int want[] = {0, 100, 200, 1, 101, 2, 3, 4, 5, 6, 7, 8, 9};
    is_int(nran, 13, "thirteen jobs ran after the gate");
    int same = nran == 13;
    for (int i = 0; same && i < 13; i++)
        same = ran[i] == want[i];
    ok(same,
       "taken in turns: 10.0.0.2's first job second, the gateway's third, each source's in order");
    same = ndone == 14 && order[0] == GATE;
    for (int i = 0; same && i < 13; i++)
        same = order[i + 1] == want[i];
    ok(same, "completed in the order they ran");
    workq_free(q);
}

/* Many sources at once: every one's first job before any one's second. */
enum { SOURCES = 500 };
static int many_ran[2 * SOURCES], nmany;

static void many_done(struct workq_job *wq)
{
    if (nmany < 2 * SOURCES)
        many_ran[nmany++] = ((struct job *)wq)->index;
}

static void test_many_sources(void)
{
    static struct job jobs[2 * SOURCES];
    struct job gate;
    struct workq *q = gated_queue("test-many", 0, &gate);

    if (!q)
        return;
    nmany = 0;
    for (int i = 0; i < 2 * SOURCES; i++) {
        char source[32];
        snprintf(source, sizeof(source), "10.0.%d.%d", (i % SOURCES) / 256, (i % SOURCES) % 256);
        jobs[i] = (struct job){.wq = {.done = many_done}, .index = i};
        workq_submit_from(q, &jobs[i].wq, source);
    }
    sem_post(&gate_open);
    complete_all(q, 2 * SOURCES + 1);
    int firsts = nmany == 2 * SOURCES;
    for (int i = 0; firsts && i < 2 * SOURCES; i++)
        firsts = many_ran[i] == i;
    ok(firsts, "each of %d sources' first job, in the order they came, then each one's second",
       SOURCES);
    workq_free(q);
}

static void test_batch_cost(void)
{
    struct job gate, jobs[8];
    struct workq *q = gated_queue("test-cost", 1000, &gate);

    if (!q)
        return;
    for (int i = 0; i < 8; i++) {
        jobs[i] = (struct job){.wq = {.done = quiet_done, .cost = i < 6 ? 300 : 1500}, .index = i};
        workq_submit_from(q, &jobs[i].wq, "10.0.0.1");
    }
    sem_post(&gate_open);
    complete_all(q, 9);
    static const size_t want[] = {1, 3, 3, 1, 1};
    int same = nbatches == 5;
    for (size_t i = 0; same && i < 5; i++)
        same = batch_sizes[i] == want[i];
    ok(same,
       "batches of at most 1000 in cost past the first job: 3 of 300, 3 of 300, then a 1500 "
       "alone, twice (got %zu batches)",
       nbatches);
    workq_free(q);
}

int main(void)
{
    sem_init(&gate_started, 0, 0);
    sem_init(&gate_open, 0, 0);
    test_budget();
    test_held_wakes();
    test_turns();
    test_many_sources();
    test_batch_cost();
    return done_testing();
}
