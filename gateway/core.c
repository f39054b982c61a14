/*
 * core.c - see core.h.
 */
#include "core.h"

#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "store.h"
#include "text.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct core {
    struct store *reader;
    struct writer *writer;
    struct hub *hub;
    size_t max_body;
    bool shutting_down;
    struct metrics metrics;
};

struct core_sub {
    struct hub_link link; /* in ch->live once live */
    struct hub_channel *ch;
    core_deliver_fn *deliver;
    void *ctx;
    int64_t cursor;  /* the last seq delivered */
    int64_t min_seq; /* deliver only later seqs (watches) */
    bool live;
};

/* A queued publish: the writer job plus who to tell. */
struct pub {
    struct writer_job job; /* first: the job pointer is the pub pointer */
    core_publish_cb *cb;
    void *ctx;
    struct core *core;
};

struct core *core_new(struct store *reader, struct writer *writer, size_t max_body)
{
    struct core *core = gw_xcalloc(1, sizeof(*core));
    core->reader = reader;
    core->writer = writer;
    core->max_body = max_body;
    core->hub = hub_new();
    metrics_init(&core->metrics);
    return core;
}

void core_free(struct core *core)
{
    if (!core)
        return;
    hub_free(core->hub);
    free(core);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static enum gw_err check_channel(const char *channel, size_t len, char why[GW_ERRLEN])
{
    if (!text_channel_valid(channel, len)) {
        snprintf(why, GW_ERRLEN, "channel name must match [A-Za-z0-9._-]{1,%d}", GW_CHANNEL_MAX);
        return GW_E_CHANNEL;
    }
    return GW_OK;
}

static enum gw_err check_sender(const char *s, size_t len, char why[GW_ERRLEN])
{
    if (len == 0 || len > GW_SENDER_MAX) {
        snprintf(why, GW_ERRLEN, "sender must be 1 to %d bytes long, got %zu", GW_SENDER_MAX, len);
        return GW_E_FIELD;
    }
    if (!text_utf8_valid(s, len)) {
        snprintf(why, GW_ERRLEN, "sender is not valid UTF-8");
        return GW_E_UTF8;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c == 0x7f) {
            snprintf(why, GW_ERRLEN, "sender must not contain control characters");
            return GW_E_FIELD;
        }
    }
    return GW_OK;
}

/* Hands a committed message to the live subscriptions of its channel. */
static void fan_out(struct core *core, const struct gw_msg *m)
{
    struct hub_channel *ch = hub_find(core->hub, m->channel);

    /* A seq at or below top was stored before the channel entered the hub:
     * subscribers read it from the store instead. */
    if (!ch || m->seq <= ch->top)
        return;
    GW_ASSERT(m->seq == ch->top + 1);
    ch->top = m->seq;
    for (struct hub_link *l = ch->live.next, *next; l != &ch->live; l = next) {
        struct core_sub *sub = (struct core_sub *)l;
        next = l->next;
        sub->cursor = m->seq;
        if (m->seq > sub->min_seq)
            sub->deliver(sub->ctx, m);
    }
}

static void pub_done(struct writer_job *job)
{
    struct pub *p = (struct pub *)job;
    p->cb(p->ctx, job->err, job->why, &job->msg);
    if (job->err == GW_OK) {
        p->core->metrics.published[job->msg.via]++;
        fan_out(p->core, &job->msg);
    }
    gw_msg_release(&job->msg);
    free(p);
}

enum gw_err core_publish(struct core *core, const struct core_publish_req *req, core_publish_cb *cb,
                         void *ctx, char why[GW_ERRLEN])
{
    const char *sender = req->sender ? req->sender : GW_SENDER_DEFAULT;
    size_t sender_len = req->sender ? req->sender_len : strlen(GW_SENDER_DEFAULT);
    enum gw_err err;
    struct pub *p;

    if (core->shutting_down) {
        snprintf(why, GW_ERRLEN, "the gateway is shutting down");
        return GW_E_SHUTDOWN;
    }
    if ((err = check_channel(req->channel, req->channel_len, why)) != GW_OK ||
        (err = check_sender(sender, sender_len, why)) != GW_OK)
        return err;
    if (req->body_len > core->max_body) {
        snprintf(why, GW_ERRLEN, "body is %zu bytes, the limit is %zu", req->body_len,
                 core->max_body);
        return GW_E_TOO_LARGE;
    }
    if (!text_utf8_valid(req->body, req->body_len)) {
        snprintf(why, GW_ERRLEN, "body is not valid UTF-8");
        return GW_E_UTF8;
    }

    p = gw_xcalloc(1, sizeof(*p));
    memcpy(p->job.msg.channel, req->channel, req->channel_len);
    p->job.msg.channel[req->channel_len] = '\0';
    p->job.msg.sender = gw_xmemdup(sender, sender_len);
    p->job.msg.sender_len = sender_len;
    p->job.msg.body = gw_xmemdup(req->body, req->body_len);
    p->job.msg.body_len = req->body_len;
    p->job.msg.via = req->via;
    p->job.msg.accepted_us = now_us();
    p->job.done = pub_done;
    p->cb = cb;
    p->ctx = ctx;
    p->core = core;
    writer_submit(core->writer, &p->job);
    return GW_OK;
}

enum gw_err core_history(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                         uint64_t limit, struct gw_msg **out, size_t *n, int64_t *next_since,
                         char why[GW_ERRLEN])
{
    char name[GW_CHANNEL_MAX + 1];
    enum gw_err err;

    *out = NULL;
    *n = 0;
    if ((err = check_channel(channel, channel_len, why)) != GW_OK)
        return err;
    if (since > INT64_MAX) {
        snprintf(why, GW_ERRLEN, "since must be at most %lld", (long long)INT64_MAX);
        return GW_E_PARAM;
    }
    if (limit > GW_LIMIT_MAX) {
        snprintf(why, GW_ERRLEN, "limit must be from 0 to %d", GW_LIMIT_MAX);
        return GW_E_PARAM;
    }
    memcpy(name, channel, channel_len);
    name[channel_len] = '\0';
    *next_since = (int64_t)since;
    if (limit == 0)
        return GW_OK;
    err = store_history(core->reader, name, (int64_t)since, (unsigned)limit, out, n, why);
    if (err == GW_OK && *n > 0)
        *next_since = (*out)[*n - 1].seq;
    return err;
}

enum gw_err core_message(struct core *core, uint64_t id, struct gw_msg *out, char why[GW_ERRLEN])
{
    if (id == 0 || id > INT64_MAX) {
        snprintf(why, GW_ERRLEN, "message id must be a positive integer");
        return GW_E_PARAM;
    }
    return store_message(core->reader, (int64_t)id, out, why);
}

enum gw_err core_channels(struct core *core, struct gw_channel_info **out, size_t *n,
                          char why[GW_ERRLEN])
{
    return store_channels(core->reader, out, n, why);
}

enum gw_err core_subscribe(struct core *core, const char *channel, size_t channel_len,
                           bool has_since, uint64_t since, core_deliver_fn *deliver, void *ctx,
                           struct core_sub **out, int64_t *since_out, int64_t *top_out,
                           char why[GW_ERRLEN])
{
    char name[GW_CHANNEL_MAX + 1];
    struct hub_channel *ch;
    struct core_sub *sub;
    enum gw_err err;

    if (core->shutting_down) {
        snprintf(why, GW_ERRLEN, "the gateway is shutting down");
        return GW_E_SHUTDOWN;
    }
    if ((err = check_channel(channel, channel_len, why)) != GW_OK)
        return err;
    memcpy(name, channel, channel_len);
    name[channel_len] = '\0';
    ch = hub_find(core->hub, name);
    if (!ch) {
        /*
         * The store may already hold commits whose completion has not reached
         * the loop yet; counting them in top makes fan_out skip them later,
         * and subscribers read them from the store instead. Either way once.
         */
        int64_t top;
        if ((err = store_channel_top(core->reader, name, &top, why)) != GW_OK)
            return err;
        ch = hub_add(core->hub, name, top);
    }
    if (!has_since)
        since = (uint64_t)ch->top;
    int64_t floor = 0;
    if (since > (uint64_t)ch->top) {
        /*
         * A reader may know a seq the loop has not fanned out yet (it read it
         * over REST first). If the store has it, go live from the hub's top and
         * skip up to the cursor; only a cursor past the store's top is wrong.
         */
        int64_t stored = 0;
        if ((err = store_channel_top(core->reader, name, &stored, why)) != GW_OK ||
            since > (uint64_t)stored) {
            if (err == GW_OK) {
                snprintf(why, GW_ERRLEN, "since %llu is beyond the last seq of '%s' (%lld)",
                         (unsigned long long)since, name, (long long)stored);
                err = GW_E_CURSOR;
            }
            if (ch->subs == 0)
                hub_remove(core->hub, ch);
            return err;
        }
        floor = (int64_t)since;
        since = (uint64_t)ch->top;
    }
    sub = gw_xcalloc(1, sizeof(*sub));
    hub_list_init(&sub->link);
    sub->ch = ch;
    sub->deliver = deliver;
    sub->ctx = ctx;
    sub->cursor = (int64_t)since;
    sub->min_seq = floor;
    ch->subs++;
    if (sub->cursor == ch->top) {
        sub->live = true;
        hub_list_push(&ch->live, &sub->link);
    }
    *out = sub;
    *since_out = floor ? floor : sub->cursor;
    *top_out = floor > ch->top ? floor : ch->top;
    return GW_OK;
}

enum gw_err core_check_wait(uint64_t wait_s, char why[GW_ERRLEN])
{
    if (wait_s > GW_WAIT_MAX) {
        snprintf(why, GW_ERRLEN, "wait is at most %d seconds", GW_WAIT_MAX);
        return GW_E_PARAM;
    }
    return GW_OK;
}

enum gw_err core_watch(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                       uint64_t wait_s, core_deliver_fn *deliver, void *ctx, struct core_sub **out,
                       bool *ready, char why[GW_ERRLEN])
{
    int64_t from, top;
    enum gw_err err;

    if ((err = core_check_wait(wait_s, why)) != GW_OK)
        return err;
    if (since > INT64_MAX) {
        snprintf(why, GW_ERRLEN, "since must be at most %lld", (long long)INT64_MAX);
        return GW_E_PARAM;
    }
    /* From now: the reader has read up to since already, and since may be past top. */
    err = core_subscribe(core, channel, channel_len, false, 0, deliver, ctx, out, &from, &top, why);
    if (err == GW_OK) {
        (*out)->min_seq = (int64_t)since;
        /* Seqs up to top will not be fanned out to it: if any is past since, say so. */
        *ready = top > (int64_t)since;
    }
    return err;
}

bool core_sub_live(const struct core_sub *sub)
{
    return sub->live;
}

enum gw_err core_sub_pump(struct core *core, struct core_sub *sub, unsigned max, size_t max_bytes,
                          char why[GW_ERRLEN])
{
    struct gw_msg *msgs;
    size_t n, bytes = 0;
    enum gw_err err;

    if (sub->live || max == 0)
        return GW_OK; /* nothing read must not look like a hole */
    /* Never past top: later commits come through fan_out. */
    err = store_history_upto(core->reader, sub->ch->name, sub->cursor, sub->ch->top, max, &msgs, &n,
                             why);
    if (err != GW_OK)
        return err;
    /* Rows past the budget are read again next time: the cursor says where we are. */
    for (size_t i = 0; i < n && (i == 0 || bytes < max_bytes); i++) {
        sub->cursor = msgs[i].seq;
        bytes += msgs[i].body_len + msgs[i].sender_len;
        sub->deliver(sub->ctx, &msgs[i]);
    }
    gw_msgs_free(msgs, n);
    if (n == 0 && sub->cursor < sub->ch->top) {
        /* NEEDSWORK: with retention this becomes a gap event. */
        log_warn("core: '%s' has no messages after %lld up to %lld", sub->ch->name,
                 (long long)sub->cursor, (long long)sub->ch->top);
        sub->cursor = sub->ch->top;
    }
    if (sub->cursor == sub->ch->top) {
        sub->live = true;
        hub_list_push(&sub->ch->live, &sub->link);
    }
    return GW_OK;
}

void core_unsubscribe(struct core *core, struct core_sub *sub)
{
    struct hub_channel *ch;

    if (!sub)
        return;
    ch = sub->ch;
    if (sub->live)
        hub_list_remove(&sub->link);
    if (--ch->subs == 0)
        hub_remove(core->hub, ch);
    free(sub);
}

size_t core_subscribed_channels(const struct core *core)
{
    return hub_channels(core->hub);
}

struct metrics *core_metrics(struct core *core)
{
    return &core->metrics;
}

void core_commit_stats(struct core *core, struct metrics_commits *out)
{
    writer_stats(core->writer, out);
}

int core_schema_version(void)
{
    return store_schema_version();
}

void core_begin_shutdown(struct core *core)
{
    core->shutting_down = true;
}

size_t core_pending(const struct core *core)
{
    return writer_pending(core->writer);
}
