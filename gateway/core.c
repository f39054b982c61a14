/*
 * core.c - see core.h.
 */
#include "core.h"

#include "store.h"
#include "text.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct core {
    struct store *reader;
    struct writer *writer;
    size_t max_body;
    bool shutting_down;
};

/* A queued publish: the writer job plus who to tell. */
struct pub {
    struct writer_job job; /* first: the job pointer is the pub pointer */
    core_publish_cb *cb;
    void *ctx;
};

struct core *core_new(struct store *reader, struct writer *writer, size_t max_body)
{
    struct core *core = gw_xcalloc(1, sizeof(*core));
    core->reader = reader;
    core->writer = writer;
    core->max_body = max_body;
    return core;
}

void core_free(struct core *core)
{
    free(core);
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

static void pub_done(struct writer_job *job)
{
    struct pub *p = (struct pub *)job;
    p->cb(p->ctx, job->err, job->why, &job->msg);
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
    p->job.done = pub_done;
    p->cb = cb;
    p->ctx = ctx;
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
