/*
 * stack.h - what a core stands on, for the unit tests of core and session: a
 * SQLite file in a temporary directory with its writer and reader
 * connections, the writer thread and the reader's workq; and the loop's side
 * of the two threads (their eventfds, their completions), which the tests
 * play by hand.
 *
 * Header-only like tap.h and tmpdir.h, which it needs: include it after them,
 * from one .c file per test program.
 */
#ifndef STACK_H
#define STACK_H

#include "reader.h"
#include "store.h"
#include "workq.h"
#include "writer.h"

#include <poll.h>
#include <stdio.h>

#define WR 1u /* the writer's completions */
#define RD 2u /* the reader's completions */

struct stack {
    char dir[64];
    char path[128]; /* the database file */
    struct store *wstore, *rstore;
    struct writer *writer;
    struct workq *reader;
};

/*
 * Opens the file in a new temporary directory (named after name) and starts
 * the threads; run is the reader workq's run function (reader_run, or a
 * test's wrapper around it). Bails out on failure.
 */
static inline void stack_open(struct stack *st, const char *name, workq_run_fn *run)
{
    char why[GW_ERRLEN];

    memset(st, 0, sizeof(*st));
    tmpdir_make(st->dir, sizeof(st->dir), name);
    snprintf(st->path, sizeof(st->path), "%s/%s.db", st->dir, name);
    if (store_open(&st->wstore, st->path, STORE_WRITER, false, why) == GW_OK &&
        store_open(&st->rstore, st->path, STORE_READER, false, why) == GW_OK &&
        (st->writer = writer_new(st->wstore, why)) != NULL &&
        (st->reader = workq_new("test-reader", run, st->rstore, 64, 4u << 20, why)) != NULL)
        return;
    writer_free(st->writer);
    store_close(st->rstore);
    store_close(st->wstore);
    tmpdir_remove(st->dir);
    bail_out("opening the store and its threads: %s", why);
}

/*
 * Waits up to ms for the eventfds of the sides in which, then completes those
 * sides. The completion runs whatever the poll said: an eventfd may have been
 * read by a test's own wait, or signalled for jobs an earlier completion
 * already took.
 */
static inline void stack_turn(struct stack *st, unsigned which, int ms)
{
    struct pollfd p[2];
    nfds_t n = 0;

    if (which & WR)
        p[n++] = (struct pollfd){.fd = writer_fd(st->writer), .events = POLLIN};
    if (which & RD)
        p[n++] = (struct pollfd){.fd = workq_fd(st->reader), .events = POLLIN};
    poll(p, n, ms);
    if (which & WR)
        writer_complete(st->writer);
    if (which & RD)
        workq_complete(st->reader);
}

/* Stops both threads once their queues are done, and completes what they did: free the core next.
 */
static inline void stack_drain(struct stack *st)
{
    writer_stop(st->writer);
    writer_complete(st->writer);
    workq_stop(st->reader);
    workq_complete(st->reader);
}

/* After stack_drain and core_free: frees the threads, closes the file, removes the directory. */
static inline void stack_close(struct stack *st)
{
    writer_free(st->writer);
    workq_free(st->reader);
    store_close(st->rstore);
    store_close(st->wstore);
    tmpdir_remove(st->dir);
}

#endif
