/*
 * reader.h - store reads off the loop thread: what a read asks and answers,
 * and the function the reader's workq runs (on its own store connection).
 *
 * The loop never waits for the store: history pages, replay pages, channel
 * tops, single messages and the channel list are jobs on a workq whose
 * worker owns the reader connection, and whose done callbacks run back on
 * the loop (workq.h). Depends on store.h, workq.h, model.h.
 */
#ifndef GW_READER_H
#define GW_READER_H

#include "gw.h"
#include "model.h"
#include "workq.h"

#include <stddef.h>
#include <stdint.h>

enum reader_op {
    READER_PAGE,    /* store_page(channel, since, upto, limit, max_bytes) */
    READER_TOP,     /* the channel's last seq only, into page.top */
    READER_MESSAGE, /* store_message(id) */
    READER_CHANNELS /* store_channels(channel as the name to list after, limit) */
};

struct reader_job {
    struct workq_job wq; /* first: a workq_job pointer is a reader_job pointer */
    enum reader_op op;
    /* in */
    char channel[GW_CHANNEL_MAX + 1];
    int64_t since, upto, id;
    unsigned limit;
    size_t max_bytes;
    /* out, set on the reader thread */
    enum gw_err err;
    char why[GW_ERRLEN];
    struct gw_page page;
    struct gw_msg msg;
    struct gw_channel_info *chans;
    size_t nchans;
};

/* The workq run function; arg is the reader's struct store (borrowed). */
void reader_run(void *arg, struct workq_job **jobs, size_t n);

/* Frees what a job's results own (page, message, channels); the job itself is the caller's. */
void reader_job_release(struct reader_job *job);

#endif
