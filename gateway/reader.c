/*
 * reader.c - runs store reads on the reader thread; see reader.h.
 */
#include "reader.h"

#include "store.h"

#include <stdlib.h>
#include <string.h>

static void run_one(struct store *store, struct reader_job *j)
{
    j->why[0] = '\0';
    switch (j->op) {
    case READER_PAGE:
        j->err = store_page(store, j->channel, j->since, j->upto, j->limit, j->max_bytes, &j->page,
                            j->why);
        return;
    case READER_TOP:
        memset(&j->page, 0, sizeof(j->page));
        j->err = store_channel_top(store, j->channel, &j->page.top, j->why);
        return;
    case READER_MESSAGE:
        j->err = store_message(store, j->id, &j->msg, j->why);
        return;
    case READER_CHANNELS:
        j->err = store_channels(store, j->channel, j->limit, &j->chans, &j->nchans, j->why);
        return;
    }
}

void reader_run(void *arg, struct workq_job **jobs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        run_one(arg, (struct reader_job *)jobs[i]);
}

void reader_job_release(struct reader_job *job)
{
    gw_page_release(&job->page);
    gw_msg_release(&job->msg);
    free(job->chans);
    job->chans = NULL;
    job->nchans = 0;
}
