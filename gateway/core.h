/*
 * core.h - the service rules, shared by every front.
 *
 * Validates what fronts hand in, sends publishes to the writer thread and
 * reads through the reader connection. No sockets, no JSON, no HTTP: fronts
 * translate bytes to these calls and results back to bytes. Depends on
 * store.h, writer.h, model.h, text.h, gw.h.
 *
 * Loop thread only.
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include "gw.h"
#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct store;
struct writer;
struct metrics;
struct metrics_commits;

/* reader and writer are borrowed and must outlive the core. */
struct core *core_new(struct store *reader, struct writer *writer, size_t max_body);
void core_free(struct core *core);

/*
 * A publish as a front received it; every pointer is borrowed for the call.
 * sender may be NULL (then "anonymous").
 */
struct core_publish_req {
    const char *channel;
    size_t channel_len;
    const char *sender;
    size_t sender_len;
    const char *body;
    size_t body_len;
    enum gw_via via;
};

/*
 * Called once, on the loop thread, when the publish has committed (err ==
 * GW_OK, msg complete) or failed (err and why set, msg partial). msg is
 * borrowed for the call.
 */
typedef void core_publish_cb(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg);

/*
 * Validates req and queues it for commit. GW_OK: cb will be called exactly
 * once, later. Any other value (GW_E_CHANNEL, GW_E_FIELD, GW_E_UTF8,
 * GW_E_TOO_LARGE, GW_E_SHUTDOWN): nothing was queued, cb is never called,
 * and why says what was wrong.
 */
enum gw_err core_publish(struct core *core, const struct core_publish_req *req, core_publish_cb *cb,
                         void *ctx, char why[GW_ERRLEN]);

/*
 * History page: messages of channel with seq > since, oldest first, at most
 * limit (<= GW_LIMIT_MAX, else GW_E_PARAM). *out as store_history. next_since
 * is the cursor to ask with next: the last seq returned, or since.
 */
enum gw_err core_history(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                         uint64_t limit, struct gw_msg **out, size_t *n, int64_t *next_since,
                         char why[GW_ERRLEN]);

/* The message with this id (id >= 1, else GW_E_PARAM); GW_E_NOT_FOUND if none. */
enum gw_err core_message(struct core *core, uint64_t id, struct gw_msg *out, char why[GW_ERRLEN]);

/* Every channel, by name; *out as store_channels. */
enum gw_err core_channels(struct core *core, struct gw_channel_info **out, size_t *n,
                          char why[GW_ERRLEN]);

/*
 * Subscriptions. A subscription receives, through its deliver callback and in
 * seq order, every message of its channel after its cursor, exactly once:
 * first the stored ones (pulled in pages by core_sub_pump, so a front only
 * takes what it has room for), then, once caught up, each new one as soon as
 * its commit comes back to the loop.
 */
struct core_sub;

/* m is borrowed for the call. The callback must not unsubscribe. */
typedef void core_deliver_fn(void *ctx, const struct gw_msg *m);

/*
 * Subscribes to channel from since (has_since false: from the current top).
 * GW_OK: *out is the subscription, *since_out its cursor, *top_out the
 * channel's last seq now. GW_E_CHANNEL, GW_E_CURSOR (since beyond the top),
 * GW_E_SHUTDOWN, GW_E_STORE with why otherwise.
 */
enum gw_err core_subscribe(struct core *core, const char *channel, size_t channel_len,
                           bool has_since, uint64_t since, core_deliver_fn *deliver, void *ctx,
                           struct core_sub **out, int64_t *since_out, int64_t *top_out,
                           char why[GW_ERRLEN]);

/* GW_OK when a reader may wait wait_s seconds (at most GW_WAIT_MAX), else GW_E_PARAM. */
enum gw_err core_check_wait(uint64_t wait_s, char why[GW_ERRLEN]);

/*
 * A watch: a live subscription from now that delivers only messages with
 * seq > since, for a reader that waits for what comes after its cursor
 * (long-poll). wait_s is the time the reader means to wait; over
 * GW_WAIT_MAX is GW_E_PARAM. Ended with core_unsubscribe.
 *
 * *ready is set when messages after since have committed already but will
 * not be delivered to the watch (a commit can land between the reader's look
 * at the store and the watch): the reader should read the store again now.
 */
enum gw_err core_watch(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                       uint64_t wait_s, core_deliver_fn *deliver, void *ctx, struct core_sub **out,
                       bool *ready, char why[GW_ERRLEN]);

/* True once the subscription has caught up and receives commits live. */
bool core_sub_live(const struct core_sub *sub);

/*
 * Delivers stored messages to a subscription that is catching up, up to max
 * of them and until about max_bytes of sender and body were delivered (at
 * least one message, so a huge one still gets through), and makes it live
 * when it reaches the top. A no-op for a live one.
 */
enum gw_err core_sub_pump(struct core *core, struct core_sub *sub, unsigned max, size_t max_bytes,
                          char why[GW_ERRLEN]);

/* Ends and frees a subscription; no delivery follows. */
void core_unsubscribe(struct core *core, struct core_sub *sub);

/* Channels with subscribers, for logs and metrics. */
size_t core_subscribed_channels(const struct core *core);

/* The gateway's counters, for the fronts to update and render; lives as long as core. */
struct metrics *core_metrics(struct core *core);
/* A copy of the writer's commit statistics. */
void core_commit_stats(struct core *core, struct metrics_commits *out);

/* The database schema version this gateway writes. */
int core_schema_version(void);

/* From now on publishes are refused with GW_E_SHUTDOWN; queued ones still commit. */
void core_begin_shutdown(struct core *core);

/* Publishes accepted whose callback has not run yet. */
size_t core_pending(const struct core *core);

#endif
