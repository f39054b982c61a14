/*
 * core.h - the service rules, shared by every front.
 *
 * Validates what fronts hand in, sends publishes to the writer thread and
 * reads to the reader thread, and fans committed messages out to
 * subscriptions. No sockets, no JSON, no HTTP: fronts translate bytes to
 * these calls and results back to bytes. Depends on writer.h, workq.h,
 * reader.h, hub.h, model.h, text.h, gw.h.
 *
 * Loop thread only. Nothing here waits for the store: every call that needs
 * it answers later, through a callback on the loop thread, exactly once
 * (unless the call itself returned an error, in which case nothing follows).
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include "gw.h"
#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct core;
struct workq;
struct writer;
struct metrics;
struct metrics_commits;

/*
 * Who is calling: the front (a publish's via, the metrics label) and the
 * peer, for logs and for the store's queues, which serve addresses in turns
 * (fair_queue.h). Later the authenticated principal joins here, so rights
 * per channel change this type and not every signature. Borrowed for the
 * call, except by core_subscribe: its peer must outlive the subscription.
 */
struct core_caller {
    enum gw_transport transport;
    const char *peer; /* "ip:port"; may be NULL (the gateway's own turns) */
};

struct core_options {
    size_t max_body;   /* bytes in a message body */
    size_t page_bytes; /* encoded bytes in one history or replay page (at least one message) */
    size_t max_reply_memory; /* the replies' budget (reply_budget.h); 0: no bound */
};

/* reader (a workq running reader_run) and writer are borrowed and must outlive the core. */
struct core *core_new(struct workq *reader, struct writer *writer, const struct core_options *o);
/* Every subscription and watch must have ended, and every read completed. NULL is a no-op. */
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
};

/*
 * Called once, on the loop thread, when the publish has committed (err ==
 * GW_OK, msg complete) or failed (err and why set, msg partial). msg is
 * borrowed for the call.
 */
typedef void core_publish_cb(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg);

/*
 * Validates req and queues it for commit, with the caller's transport as its
 * via. GW_OK: cb will be called exactly once, later. Any other value
 * (GW_E_CHANNEL, GW_E_FIELD, GW_E_UTF8, GW_E_TOO_LARGE, GW_E_SHUTDOWN):
 * nothing was queued, cb is never called, and why says what was wrong.
 */
enum gw_err core_publish(struct core *core, const struct core_caller *caller,
                         const struct core_publish_req *req, core_publish_cb *cb, void *ctx,
                         char why[GW_ERRLEN]);

/*
 * Whether (s, len) may be a sender: 1 to 128 bytes of UTF-8 without control
 * characters (C0, DEL, C1). GW_E_FIELD or GW_E_UTF8 with why otherwise.
 */
enum gw_err core_check_sender(const char *s, size_t len, char why[GW_ERRLEN]);

/*
 * A page read: page is borrowed for the call. NULL when err != GW_OK, but
 * for a since beyond the channel's last seq (core_history's GW_E_CURSOR):
 * then a page of no messages whose top is that last seq.
 */
typedef void core_page_cb(void *ctx, enum gw_err err, const char *why, const struct gw_page *page);

/*
 * History page: messages of channel with seq > since, oldest first, at most
 * limit (<= GW_LIMIT_MAX, else GW_E_PARAM) and at most max_bytes of their
 * JSON form (gw_msg_wire_len; 0 or more than page_bytes: page_bytes), at
 * least one, with the holes met (struct gw_page). A since beyond the
 * channel's last seq is answered GW_E_CURSOR through cb, with the page's
 * top (core_page_cb).
 */
enum gw_err core_history(struct core *core, const struct core_caller *caller, const char *channel,
                         size_t channel_len, uint64_t since, uint64_t limit, size_t max_bytes,
                         core_page_cb *cb, void *ctx, char why[GW_ERRLEN]);

typedef void core_message_cb(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m);

/* The message with this id (id >= 1, else GW_E_PARAM); GW_E_NOT_FOUND through cb if none. */
enum gw_err core_message(struct core *core, const struct core_caller *caller, uint64_t id,
                         core_message_cb *cb, void *ctx, char why[GW_ERRLEN]);

/*
 * A page of the channel list: chans borrowed for the call; next_after the
 * name to list after for the next page when this one is full (there may be
 * more), NULL on the last page.
 */
typedef void core_channels_cb(void *ctx, enum gw_err err, const char *why,
                              const struct gw_channel_info *chans, size_t n,
                              const char *next_after);

/*
 * The channels whose name comes after (after, after_len) in byte order, by
 * name, at most limit. after is empty for the first page, else a channel
 * name (GW_E_CHANNEL otherwise); limit is 1 to GW_CHANNELS_LIMIT_MAX
 * (GW_E_PARAM otherwise), so that a page's size is bounded whatever the
 * store holds.
 */
enum gw_err core_channels(struct core *core, const struct core_caller *caller, const char *after,
                          size_t after_len, uint64_t limit, core_channels_cb *cb, void *ctx,
                          char why[GW_ERRLEN]);

/*
 * One message handed to a subscription. The fan-out of one commit hands the
 * same delivery to every subscription of the channel, so a front may encode
 * the message once: it keeps its encoding in a cache slot of its own (slot
 * numbers are the fronts' to agree on), with a release function the core
 * calls when the fan-out is over.
 */
#define CORE_DELIVERY_SLOTS 4
struct core_delivery {
    const struct gw_msg *m;
    uint64_t now_us; /* the loop clock, read once per fan-out */
    bool live;       /* a commit as it happens, not a replay from the store */
    struct {
        void *p;
        void (*release)(void *p);
    } cache[CORE_DELIVERY_SLOTS];
};

/*
 * A subscription receives, in seq order and exactly once, every message of
 * its channel after its cursor: first the stored ones (read in pages when
 * the front has room: core_sub_pump), then each new one as its commit comes
 * back to the loop. Messages the store no longer has are reported as gaps,
 * in their place. The callbacks run on the loop thread and must not end the
 * subscription (mark it and end it later).
 */
struct core_sub_ops {
    /*
     * The subscription is set up: since is its cursor, top the channel's last
     * seq; deliveries follow. Or it was refused (err, why; GW_E_CURSOR for a
     * since beyond the top, GW_E_STORE...): it is gone then, do not end it.
     * Called once, before anything else.
     */
    void (*ready)(void *ctx, enum gw_err err, const char *why, int64_t since, int64_t top);
    void (*deliver)(void *ctx, struct core_delivery *d);
    /* Seqs from..to of channel will never come: the store lacks them. */
    void (*gap)(void *ctx, const char *channel, int64_t from, int64_t to);
    /* Stored messages wait to be caught up on: call core_sub_pump when there is room. */
    void (*wake)(void *ctx);
    /*
     * A read for the subscription failed after ready (err, why), or the
     * channel's seqs went back below its cursor (GW_E_CURSOR: its rows were
     * removed by hand); it stays, idle. Not for GW_E_STORE_UNAVAILABLE: such a subscription waits,
     * and is woken to read again once the store answers (a commit, a read, or core_recheck).
     */
    void (*failed)(void *ctx, enum gw_err err, const char *why);
};

struct core_sub;

/*
 * Subscribes to channel from since (has_since false: from now, the current
 * top). GW_OK: *out is the subscription and ops->ready follows; budget is
 * the room the front has for a first page of replay. GW_E_CHANNEL,
 * GW_E_PARAM, GW_E_SHUTDOWN at once otherwise (nothing follows).
 */
enum gw_err core_subscribe(struct core *core, const struct core_caller *caller, const char *channel,
                           size_t channel_len, bool has_since, uint64_t since,
                           const struct core_sub_ops *ops, void *ctx, size_t budget,
                           struct core_sub **out, char why[GW_ERRLEN]);

/* True once the subscription has caught up and receives commits as they happen. */
bool core_sub_live(const struct core_sub *sub);

/* The last seq delivered (or reported as a gap) to the subscription, or its since. */
int64_t core_sub_cursor(const struct core_sub *sub);

/*
 * Reads the next page of stored messages for a subscription that is
 * catching up, up to about max_bytes of their JSON form (at least one
 * message); a no-op while one is being read, before ready, once live,
 * and while it waits for the store (it is woken when it may read again).
 * True: a read started.
 */
bool core_sub_pump(struct core *core, struct core_sub *sub, size_t max_bytes);

/* True while a read for the subscription is under way (its page not yet delivered). */
bool core_sub_reading(const struct core_sub *sub);

/*
 * True until the subscription has delivered every message stored when it
 * began (or failed): its replay is not over, whether a page is being read,
 * waits for room, or waits for the database.
 */
bool core_sub_catching_up(const struct core_sub *sub);

/* Ends a subscription (at any time after core_subscribe returned GW_OK); no callback follows. */
void core_unsubscribe(struct core *core, struct core_sub *sub);

/*
 * A watch: a one-shot call of cb as soon as the loop sees a commit of
 * channel with seq > since (a long-poll waiting for what comes after its
 * cursor). Set it before reading the store: whatever committed before is in
 * the read, whatever commits after fires the watch. m is the message that
 * fired it, or NULL when the channel moved on without one in hand (another
 * gateway's commits); m_bytes its JSON form's length in a page
 * (gw_msg_wire_len, found once for every watch it fires), 0 without m. End
 * it with core_unwatch, fired or not.
 */
struct core_watch;
typedef void core_watch_cb(void *ctx, const struct gw_msg *m, size_t m_bytes);

enum gw_err core_watch(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                       core_watch_cb *cb, void *ctx, struct core_watch **out, char why[GW_ERRLEN]);
void core_unwatch(struct core *core, struct core_watch *w);

/*
 * A commit this loop did not see: the store says channel's last seq is top
 * now (another gateway on the same database committed it; its backend
 * tells). Subscriptions behind it read the rest from the store, watches past
 * their cursor fire. Coalesced or late notices cost latency, never a
 * message: a subscription catches up from wherever it is.
 */
void core_channel_moved(struct core *core, const char *channel, int64_t top);

/*
 * A notice from the store's feed says channel's last seq is top now: when
 * that is past what the hub knows, the store is asked for the messages
 * after it (one read at a time per channel, a page at most): they are
 * fanned out once, as this loop's own commits are, and the page's top goes
 * to core_channel_moved for the subscriptions still behind. A top the hub
 * knows already (a subscription's page saw it first) goes there at once. A
 * notice anyone could have sent costs a read, never a wrong top.
 */
void core_channel_notice(struct core *core, const char *channel, int64_t top);

/*
 * Commits made elsewhere may have gone unannounced (the store's feed lost
 * its connection, or had too much to tell): reads the last seq of every
 * channel with subscriptions or watches again, and hands each to
 * core_channel_moved; wakes the subscriptions waiting for the store.
 */
void core_recheck(struct core *core);

/* Whether subscriptions wait for the store (their read found it unavailable). */
bool core_stalled(const struct core *core);

/*
 * Wakes them to read again; those whose store still does not answer wait
 * again. The core retries by itself on every answer of the store; the
 * caller also retries now and then, for a store that came back in silence.
 */
void core_retry_stalled(struct core *core);

/* GW_OK when a reader may wait wait_s seconds (at most GW_WAIT_MAX), else GW_E_PARAM. */
enum gw_err core_check_wait(uint64_t wait_s, char why[GW_ERRLEN]);

/* A channel name as every call here checks it: GW_E_CHANNEL with why when it is not one. */
enum gw_err core_check_channel(const char *channel, size_t len, char why[GW_ERRLEN]);

/* Channels with subscribers or watches, for logs and metrics. */
size_t core_subscribed_channels(const struct core *core);

/* The gateway's counters, for the fronts to update and render; lives as long as core. */
struct metrics *core_metrics(struct core *core);

/* The budget of replies read and not yet taken, which every front counts into. */
struct reply_budget *core_replies(struct core *core);

/*
 * The most a history page may take, as its read reserves it: page_bytes,
 * or one message of max_body when that is larger (a page holds at least
 * one message).
 */
size_t core_page_most(const struct core *core);
/* A copy of the writer's commit statistics. */
void core_commit_stats(struct core *core, struct metrics_commits *out);

/* The database schema version this gateway writes. */
int core_schema_version(void);

/* From now on publishes and subscriptions are refused with GW_E_SHUTDOWN; queued ones go on. */
void core_begin_shutdown(struct core *core);

/* Publishes and reads accepted whose callback has not run yet. */
size_t core_pending(const struct core *core);

/*
 * Answers store_busy every client read (core_history, core_message,
 * core_channels) that has waited for the store past its deadline; its
 * result is dropped when it comes. Returns the ms until the next deadline,
 * or -1 with none: a loop hook's answer.
 */
int core_expire_reads(struct core *core);

#endif
