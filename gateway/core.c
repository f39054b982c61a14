/*
 * core.c - see core.h.
 *
 * Fan-out and catch-up, the heart of guarantees 2 and 3:
 *
 * - A channel's top in the hub is the highest seq known committed. Each
 *   subscription has a cursor, the last seq it was given. A live
 *   subscription gets a commit seq s only if its cursor is s - 1; one whose
 *   cursor is already s or more skips it (it read s from the store); one that
 *   is further behind (a commit the loop never saw: another process, later
 *   another gateway) stops being live and catches up from the store. No
 *   commit is an impossible state.
 * - A subscription that is behind reads pages from the store on the reader
 *   thread. A commit that the loop sees while such a read is under way may or
 *   may not be in the read's snapshot, so the hub keeps those commits
 *   (struct hub_recent) while any read of the channel is under way: the
 *   snapshot and the kept commits together cover everything, and a reader
 *   that reached the end of the snapshot takes the rest from them and goes
 *   live without another round trip.
 * - A commit made elsewhere (another gateway on the same database) reaches
 *   the loop only as a notice, (channel, top): a read of the channel from
 *   the top the hub knew confirms it and fans out what it found, once for
 *   every subscription, before core_channel_moved takes the top. When
 *   notices may have been lost, core_recheck reads the top of every channel
 *   in the hub again. A subscription whose read found the store unavailable
 *   waits (core->stalled) and reads again once the store answers something.
 */
#include "core.h"

#include "hub.h"
#include "log.h"
#include "metrics.h"
#include "reader.h"
#include "reply_budget.h"
#include "source_table.h"
#include "store.h"
#include "text.h"
#include "workq.h"
#include "writer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Messages read per replay page at most (the byte budget usually stops it first). */
#define PUMP_BATCH        256
/* Commits kept per channel while reads of it are under way. */
#define RECENT_MAX_MSGS   1024
#define RECENT_MAX_BYTES  (8u * 1024 * 1024)
/*
 * What a notice's check reads at most (besides PUMP_BATCH messages): one per
 * followed channel may wait for the loop at once; a subscription behind
 * what it left reads the rest itself, paced by its session.
 */
#define NOTICE_PAGE_BYTES (256u * 1024)
/*
 * How long a client's read (a page, a message, the channel list) waits for
 * the store before it is answered store_busy. A read takes milliseconds; one
 * that takes this long is behind a disk or file system that hangs (frozen,
 * failing, a network mount gone), and its client must not wait with it.
 */
#define READ_DEADLINE_MS  10000u

struct core {
    struct workq *reader;
    struct writer *writer;
    struct hub *hub;
    struct hub_link stalled; /* subscriptions waiting for the store to come back */
    bool stall_logged;       /* the wait is logged: once, until the store answers again */
    struct core_options o;
    bool shutting_down;
    struct metrics metrics;
    struct reply_budget replies;
    struct hub_link client_reads; /* clients' reads not yet answered, oldest first */
    bool hang_logged;             /* a read past its deadline is logged: once, until one returns */
};

enum sub_state {
    SUB_PENDING,  /* its first read is under way: no cursor yet */
    SUB_CATCHING, /* behind the top: reads pages from the store */
    SUB_LIVE,     /* in ch->live: gets commits as they happen */
    SUB_DEAD,     /* unsubscribed while a read was under way: freed when it returns */
    SUB_FAILED    /* told ops->failed: idle until its front ends it */
};

struct read;

struct core_sub {
    struct hub_link link; /* first: in ch->live while live */
    struct hub_channel *ch;
    const struct core_sub_ops *ops;
    void *ctx;
    enum sub_state state;
    bool has_since;
    int64_t since; /* as asked */
    int64_t cursor;
    struct read *read; /* under way, or NULL */
    bool stalled;      /* in core->stalled (by link): its last read found no store */
    const char *peer;  /* its caller's, which outlives it: its reads take that address's turns */
};

struct core_watch {
    struct hub_link link; /* first: in ch->watches until it fires */
    struct hub_channel *ch;
    int64_t since;
    core_watch_cb *cb;
    void *ctx;
    bool fired;
};

/* Copies of the commits seen while reads of the channel were under way, oldest first. */
struct hub_recent {
    struct gw_msg *ring;
    size_t head, n; /* ring[head] is the oldest */
    size_t bytes;
};

enum read_kind { R_HISTORY, R_MESSAGE, R_CHANNELS, R_SUB, R_TOP };

/* A reader job and who asked for it. */
struct read {
    struct reader_job job; /* first: the workq job pointer is the read pointer */
    struct core *core;
    enum read_kind kind;
    union {
        core_page_cb *page;
        core_message_cb *message;
        core_channels_cb *channels;
    } cb;
    void *ctx;
    struct core_sub *sub;
    struct hub_channel *ch; /* R_TOP */
    bool notice;            /* R_TOP: the check of a notice (core_channel_notice) */
    /* A client's read: in the core's list until answered; past its deadline, answered busy. */
    struct hub_link queued;
    uint64_t deadline_ms;
    bool expired; /* answered already: its result, when it comes, is dropped */
};

/* A queued publish: the writer job plus who to tell. */
struct pub {
    struct writer_job job; /* first: the job pointer is the pub pointer */
    core_publish_cb *cb;
    void *ctx;
    struct core *core;
};

struct core *core_new(struct workq *reader, struct writer *writer, const struct core_options *o)
{
    struct core *core = gw_xcalloc(1, sizeof(*core));
    core->reader = reader;
    core->writer = writer;
    core->o = *o;
    core->hub = hub_new();
    hub_list_init(&core->stalled);
    hub_list_init(&core->client_reads);
    metrics_init(&core->metrics);
    reply_budget_init(&core->replies, o->max_reply_memory);
    return core;
}

void core_free(struct core *core)
{
    if (!core)
        return;
    hub_free(core->hub);
    reply_budget_fini(&core->replies);
    free(core);
}

static uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

enum gw_err core_check_channel(const char *channel, size_t len, char why[GW_ERRLEN])
{
    if (!text_channel_valid(channel, len)) {
        snprintf(why, GW_ERRLEN, "channel name must match [A-Za-z0-9._-]{1,%d}", GW_CHANNEL_MAX);
        return GW_E_CHANNEL;
    }
    return GW_OK;
}

/*
 * A channel a message may be published to. "." and ".." match the pattern but
 * no URL can name them (curl and browsers resolve them away), so a channel of
 * that name would be one only the socket fronts could read. Reading them stays
 * open: a database written before this check may hold one.
 */
static enum gw_err check_new_channel(const char *channel, size_t len, char why[GW_ERRLEN])
{
    if (text_channel_dots(channel, len)) {
        snprintf(why, GW_ERRLEN, "'%.*s' is no channel to publish to: a URL cannot name it",
                 (int)len, channel);
        return GW_E_CHANNEL;
    }
    return GW_OK;
}

static enum gw_err check_since(uint64_t since, char why[GW_ERRLEN])
{
    if (since > INT64_MAX) {
        snprintf(why, GW_ERRLEN, "since must be at most %lld", (long long)INT64_MAX);
        return GW_E_PARAM;
    }
    return GW_OK;
}

static enum gw_err check_shutdown(const struct core *core, char why[GW_ERRLEN])
{
    if (core->shutting_down) {
        snprintf(why, GW_ERRLEN, "the gateway is shutting down");
        return GW_E_SHUTDOWN;
    }
    return GW_OK;
}

enum gw_err core_check_sender(const char *s, size_t len, char why[GW_ERRLEN])
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
        /*
         * C0, DEL, and C1 (U+0080..U+009F, C2 80..C2 9F in valid UTF-8): a
         * terminal takes U+009B for ESC [, so a sender shown as it is could
         * drive the terminal of whoever reads it.
         */
        bool c1 = i + 1 < len && text_is_c1(s + i, 2);
        if (c < 0x20 || c == 0x7f || c1) {
            snprintf(why, GW_ERRLEN, "sender must not contain control characters");
            return GW_E_FIELD;
        }
    }
    return GW_OK;
}

/* The hub's entry for a valid channel name of len bytes, made if needed. */
static struct hub_channel *channel_get(struct core *core, const char *channel, size_t len)
{
    char name[GW_CHANNEL_MAX + 1];
    struct hub_channel *ch;

    memcpy(name, channel, len);
    name[len] = '\0';
    ch = hub_find(core->hub, name);
    return ch ? ch : hub_add(core->hub, name, 0);
}

/* ---- the commits kept while reads are under way ---- */

static void recent_free(struct hub_channel *ch)
{
    struct hub_recent *r = ch->recent;

    if (!r)
        return;
    for (size_t i = 0; i < r->n; i++)
        gw_msg_release(&r->ring[(r->head + i) % RECENT_MAX_MSGS]);
    free(r->ring);
    free(r);
    ch->recent = NULL;
}

static void recent_drop_oldest(struct hub_recent *r)
{
    struct gw_msg *m = &r->ring[r->head];

    r->bytes -= m->body_len + m->sender_len;
    gw_msg_release(m);
    r->head = (r->head + 1) % RECENT_MAX_MSGS;
    r->n--;
}

static void recent_push(struct hub_channel *ch, const struct gw_msg *m)
{
    struct hub_recent *r = ch->recent;

    if (!r) {
        r = ch->recent = gw_xcalloc(1, sizeof(*r));
        r->ring = gw_xcalloc(RECENT_MAX_MSGS, sizeof(*r->ring));
    }
    /* In seq order: another gateway's commits may be read after the loop's own later ones. */
    if (r->n && m->seq <= r->ring[(r->head + r->n - 1) % RECENT_MAX_MSGS].seq)
        return;
    /* Bounded: a reader that needs what was dropped reads it from the store instead. */
    while (r->n && (r->n == RECENT_MAX_MSGS || r->bytes + m->body_len > RECENT_MAX_BYTES))
        recent_drop_oldest(r);
    gw_msg_copy(&r->ring[(r->head + r->n) % RECENT_MAX_MSGS], m);
    r->n++;
    r->bytes += m->body_len + m->sender_len;
}

static void channel_release(struct core *core, struct hub_channel *ch)
{
    if (ch->reads == 0)
        recent_free(ch);
    if (ch->subs == 0 && ch->nwatches == 0 && ch->reads == 0)
        hub_remove(core->hub, ch);
}

/* ---- deliveries ---- */

static void delivery_release(struct core_delivery *d)
{
    for (size_t i = 0; i < CORE_DELIVERY_SLOTS; i++) {
        if (d->cache[i].p && d->cache[i].release)
            d->cache[i].release(d->cache[i].p);
        d->cache[i].p = NULL;
    }
}

static void deliver_one(struct core_sub *sub, const struct gw_msg *m, uint64_t now, bool live)
{
    struct core_delivery d;

    memset(&d, 0, sizeof(d));
    d.m = m;
    d.now_us = now;
    d.live = live;
    sub->cursor = m->seq;
    sub->ops->deliver(sub->ctx, &d);
    delivery_release(&d);
}

static void go_live(struct core_sub *sub)
{
    sub->state = SUB_LIVE;
    hub_list_push(&sub->ch->live, &sub->link);
}

/* A live subscription that missed a commit: it reads the rest from the store. */
static void fall_behind(struct core_sub *sub)
{
    hub_list_remove(&sub->link);
    sub->state = SUB_CATCHING;
    sub->ops->wake(sub->ctx);
}

/* Hands a page to a subscription, messages and holes in their places. */
static void deliver_page(struct core_sub *sub, const struct gw_page *p)
{
    uint64_t now = now_us();
    size_t g = 0;

    for (size_t i = 0; i <= p->n; i++) {
        for (; g < p->ngaps && p->gaps[g].before == i; g++) {
            const struct gw_gap *gap = &p->gaps[g];
            if (gap->to <= sub->cursor)
                continue;
            int64_t from = gap->from > sub->cursor ? gap->from : sub->cursor + 1;
            log_warn("core: '%s' lacks seqs %lld to %lld: told to a reader", sub->ch->name,
                     (long long)from, (long long)gap->to);
            sub->cursor = gap->to;
            sub->ops->gap(sub->ctx, sub->ch->name, from, gap->to);
        }
        if (i < p->n && p->msgs[i].seq > sub->cursor)
            deliver_one(sub, &p->msgs[i], now, false);
    }
}

/* The commits kept while the read ran, from the subscription's cursor on, as long as they follow.
 */
static void deliver_recent(struct core_sub *sub)
{
    struct hub_recent *r = sub->ch->recent;
    uint64_t now = now_us();

    for (size_t i = 0; r && i < r->n; i++) {
        const struct gw_msg *m = &r->ring[(r->head + i) % RECENT_MAX_MSGS];
        if (m->seq <= sub->cursor)
            continue;
        if (m->seq != sub->cursor + 1)
            break;
        deliver_one(sub, m, now, true);
    }
}

/* Hands a committed message to the subscriptions and watches of its channel. */
static void fan_out_on(struct hub_channel *ch, const struct gw_msg *m)
{
    struct core_delivery d;

    if (ch->reads)
        recent_push(ch, m);
    if (m->seq > ch->top)
        ch->top = m->seq;
    memset(&d, 0, sizeof(d));
    d.m = m;
    d.now_us = now_us();
    d.live = true;
    for (struct hub_link *l = ch->live.next, *next; l != &ch->live; l = next) {
        struct core_sub *sub = (struct core_sub *)l;
        next = l->next;
        if (sub->cursor == m->seq - 1) {
            sub->cursor = m->seq;
            sub->ops->deliver(sub->ctx, &d);
        } else if (sub->cursor < m->seq) {
            fall_behind(sub);
        }
    }
    delivery_release(&d);
    size_t m_bytes = 0; /* found at the first watch it fires */
    for (struct hub_link *l = ch->watches.next, *next; l != &ch->watches; l = next) {
        struct core_watch *w = (struct core_watch *)l;
        next = l->next;
        if (m->seq > w->since) {
            hub_list_remove(&w->link);
            w->fired = true;
            if (!m_bytes)
                m_bytes = gw_msg_wire_len(m);
            w->cb(w->ctx, m, m_bytes);
        }
    }
}

/* The reason given to whoever is told that the seqs of ch went back from before to top. */
static void went_back_why(char why[GW_ERRLEN], const struct hub_channel *ch, int64_t top,
                          int64_t before)
{
    snprintf(why, GW_ERRLEN,
             "the seqs of '%s' went back from %lld to %lld: its messages were removed from the "
             "store; subscribe again from a seq up to %lld",
             ch->name, (long long)before, (long long)top, (long long)top);
}

/*
 * The store's seqs of ch went back to top, below before, a seq the loop
 * knew committed: the channel's rows were removed by hand (a TRUNCATE, a
 * DELETE from its tables, a restore of an older copy while gateways ran),
 * and it counts again from top. A cursor beyond top would skip, unseen,
 * the messages that now take its seqs: each live subscription past it is
 * told, as a SUB from such a cursor is (invalid_cursor), and each watch
 * past it fires, so that its read says the same. Subscriptions catching up
 * find it at their next read (sub_read_done).
 */
static void went_back(struct hub_channel *ch, int64_t top, int64_t before)
{
    char why[GW_ERRLEN];
    size_t subs = 0, watches = 0;

    went_back_why(why, ch, top, before);
    ch->top = top;
    ch->committed = top;
    for (struct hub_link *l = ch->live.next, *next; l != &ch->live; l = next) {
        struct core_sub *sub = (struct core_sub *)l;
        next = l->next;
        if (sub->cursor > top) {
            hub_list_remove(&sub->link);
            sub->state = SUB_FAILED;
            sub->ops->failed(sub->ctx, GW_E_CURSOR, why);
            subs++;
        }
    }
    for (struct hub_link *l = ch->watches.next, *next; l != &ch->watches; l = next) {
        struct core_watch *w = (struct core_watch *)l;
        next = l->next;
        if (w->since > top) {
            hub_list_remove(&w->link);
            w->fired = true;
            w->cb(w->ctx, NULL, 0);
            watches++;
        }
    }
    log_error("core: %s (%zu subscriptions and %zu waiting reads past it told)", why, subs,
              watches);
}

static void check_top(struct core *core, struct hub_channel *ch);

/*
 * A commit of the loop's own. Its seqs come in commit order, so one at or
 * below the last it committed means the seqs went back. One at or below a
 * top a read saw may be that read seeing this commit before its completion
 * came (two threads), or the seqs gone back under a top the loop knew only
 * from reads: the store's top tells which (check_top, then R_TOP).
 */
static void fan_out(struct core *core, const struct gw_msg *m)
{
    struct hub_channel *ch = hub_find(core->hub, m->channel);

    if (!ch)
        return;
    if (m->seq <= ch->committed)
        went_back(ch, m->seq - 1, ch->committed);
    else if (m->seq <= ch->top)
        check_top(core, ch);
    ch->committed = m->seq;
    fan_out_on(ch, m);
}

/* Live subscriptions of ch whose cursor is below top read the rest from the store. */
static void behind(struct hub_channel *ch, int64_t top)
{
    for (struct hub_link *l = ch->live.next, *next; l != &ch->live; l = next) {
        struct core_sub *sub = (struct core_sub *)l;
        next = l->next;
        if (sub->cursor < top)
            fall_behind(sub);
    }
}

/*
 * The store confirmed ch at top, for a commit the loop did not make: the
 * live subscriptions and watches behind it read the rest. Even when a
 * subscriber's page already showed that top: a page does not tell the live
 * subscriptions (what it sees beyond them is most often the loop's own
 * commits, whose completions are on their way and push them), so the notice
 * that confirms it must.
 */
static void moved(struct hub_channel *ch, int64_t top)
{
    if (top > ch->top)
        ch->top = top;
    behind(ch, top);
    for (struct hub_link *l = ch->watches.next, *next; l != &ch->watches; l = next) {
        struct core_watch *w = (struct core_watch *)l;
        next = l->next;
        if (top > w->since) {
            hub_list_remove(&w->link);
            w->fired = true;
            w->cb(w->ctx, NULL, 0);
        }
    }
}

void core_channel_moved(struct core *core, const char *channel, int64_t top)
{
    struct hub_channel *ch = hub_find(core->hub, channel);

    if (ch)
        moved(ch, top);
}

/*
 * Subscriptions that found the store unavailable read again (each is woken,
 * and pumps when its front has room): the store answered, or it is time to
 * try.
 */
static void unstall(struct core *core)
{
    while (core->stalled.next != &core->stalled) {
        struct core_sub *sub = (struct core_sub *)core->stalled.next;
        hub_list_remove(&sub->link);
        sub->stalled = false;
        sub->ops->wake(sub->ctx);
    }
}

/* The store answered something: the subscriptions waiting for it read again. */
static void store_answered(struct core *core)
{
    if (core->stall_logged)
        log_warn("core: the database answers again: the subscriptions that waited read on");
    core->stall_logged = false;
    unstall(core);
}

/* ---- reads ---- */

static void read_done(struct workq_job *job);
static struct read *read_new(struct core *core, enum read_kind kind, enum reader_op op, void *ctx);

/*
 * Queues a read on the reader in its client's turns (fair_queue.h), weighed
 * by the most it may read; peer NULL: the gateway's own.
 */
static void submit_read(struct core *core, struct read *r, const char *peer)
{
    char source[SOURCE_MAX] = "";

    if (peer)
        source_of_peer(peer, source);
    r->job.wq.cost = r->job.max_bytes;
    workq_submit_from(core->reader, &r->job.wq, source);
}

/*
 * Reads ch's top; for a notice to live subscriptions, with the messages
 * after the top the loop knew: they are fanned out once, as the loop's own
 * commits are, where each subscription reading them for itself would cost
 * a read per subscriber and gateway. Without one (watches only), the top
 * alone: the loop may not know the top of a channel only watched, and a
 * page from there would be read for nobody.
 */
static void read_top(struct core *core, struct hub_channel *ch, bool notice)
{
    bool page = notice && ch->live.next != &ch->live;
    struct read *r = read_new(core, R_TOP, page ? READER_PAGE : READER_TOP, NULL);

    r->ch = ch;
    r->notice = notice;
    snprintf(r->job.channel, sizeof(r->job.channel), "%s", ch->name);
    r->job.since = ch->top;
    r->job.upto = INT64_MAX;
    r->job.limit = PUMP_BATCH;
    r->job.max_bytes =
        core->o.page_bytes < NOTICE_PAGE_BYTES ? core->o.page_bytes : NOTICE_PAGE_BYTES;
    ch->reads++;
    submit_read(core, r, NULL);
}

static void recheck_one(struct hub_channel *ch, void *ctx)
{
    read_top(ctx, ch, false);
}

/* Reads ch's top (and what follows it) from the store: one read at a time, one more after it. */
static void check_top(struct core *core, struct hub_channel *ch)
{
    if (ch->top_checking) {
        /* The read under way may have begun before this commit: one more after it. */
        ch->top_check_again = true;
        return;
    }
    ch->top_checking = true;
    read_top(core, ch, true);
}

/*
 * A notice is a hint, not a top: any role that can connect to the database
 * can send one, and a top taken on its word (a million, say) would have
 * subscribers read for seqs that never come, over and over, and SUB take
 * cursors beyond the real top. The store's own answer is what counts.
 */
void core_channel_notice(struct core *core, const char *channel, int64_t top)
{
    struct hub_channel *ch = hub_find(core->hub, channel);

    if (!ch)
        return;
    if (top <= ch->top) {
        /* A top a read confirmed already (a subscriber's page saw it first). */
        moved(ch, top);
        /*
         * Below it: an older commit's notice that came late, or the seqs
         * went back under the top the loop knew (went_back). The store's
         * top tells which; one read at a time, as for any notice.
         */
        if (top < ch->top)
            check_top(core, ch);
        return;
    }
    check_top(core, ch);
}

bool core_stalled(const struct core *core)
{
    return core->stalled.next != &core->stalled;
}

void core_retry_stalled(struct core *core)
{
    unstall(core);
}

void core_recheck(struct core *core)
{
    log_info("core: reading the last seq of %zu followed channels again", hub_channels(core->hub));
    hub_each(core->hub, recheck_one, core);
    unstall(core);
}

static struct read *read_new(struct core *core, enum read_kind kind, enum reader_op op, void *ctx)
{
    struct read *r = gw_xcalloc(1, sizeof(*r));

    r->core = core;
    r->kind = kind;
    r->job.op = op;
    r->job.wq.done = read_done;
    r->ctx = ctx;
    return r;
}

/* Frees sub; the caller then calls channel_release on its channel. */
static void sub_free(struct core_sub *sub)
{
    sub->ch->subs--;
    free(sub);
}

static void sub_read(struct core *core, struct core_sub *sub, enum reader_op op, size_t max_bytes)
{
    struct read *r = read_new(core, R_SUB, op, NULL);

    r->sub = sub;
    snprintf(r->job.channel, sizeof(r->job.channel), "%s", sub->ch->name);
    r->job.since = sub->state == SUB_PENDING ? sub->since : sub->cursor;
    r->job.upto = INT64_MAX;
    r->job.limit = PUMP_BATCH;
    r->job.max_bytes = max_bytes < core->o.page_bytes ? max_bytes : core->o.page_bytes;
    sub->read = r;
    sub->ch->reads++;
    submit_read(core, r, sub->peer);
}

/* A subscription's read came back: set it up, hand it the page, then live or more reading. */
static void sub_read_done(struct core *core, struct core_sub *sub, struct reader_job *job)
{
    struct hub_channel *ch = sub->ch;
    const struct gw_page *p = &job->page;

    if (job->err == GW_E_STORE_UNAVAILABLE && sub->state == SUB_CATCHING) {
        /* Not a failure of the subscription: it goes on once the database is back. */
        /* Once per outage, not once per subscription and retry: thousands may wait. */
        if (!core->stall_logged)
            log_warn("core: reading '%s' for a subscriber: %s; it waits for the database, as "
                     "do others that need it until it answers",
                     ch->name, job->why);
        else
            log_debug("core: reading '%s' for a subscriber: %s; it waits for the database",
                      ch->name, job->why);
        core->stall_logged = true;
        sub->stalled = true;
        hub_list_push(&core->stalled, &sub->link);
        return;
    }
    if (job->err != GW_OK) {
        log_error("core: reading '%s' for a subscriber failed: %s", ch->name, job->why);
        if (sub->state == SUB_PENDING) {
            sub->ops->ready(sub->ctx, job->err, job->why, 0, 0);
            sub_free(sub);
        } else {
            sub->ops->failed(sub->ctx, job->err, job->why);
        }
        return;
    }
    if (sub->state == SUB_CATCHING && job->since > p->top) {
        /* Its cursor was committed before the read began: the seqs went back (went_back). */
        char why[GW_ERRLEN];
        went_back_why(why, ch, p->top, job->since);
        log_error("core: %s (a subscription catching up told)", why);
        sub->state = SUB_FAILED;
        sub->ops->failed(sub->ctx, GW_E_CURSOR, why);
        return;
    }
    if (p->top > ch->top)
        ch->top = p->top;
    if (sub->state == SUB_PENDING) {
        if (sub->has_since && sub->since > ch->top) {
            char why[GW_ERRLEN];
            snprintf(why, sizeof(why), "since %lld is beyond the last seq of '%s' (%lld)",
                     (long long)sub->since, ch->name, (long long)ch->top);
            sub->ops->ready(sub->ctx, GW_E_CURSOR, why, 0, 0);
            sub_free(sub);
            return;
        }
        /* From now: the snapshot's top; what committed after it comes from the kept commits. */
        sub->cursor = sub->has_since ? sub->since : p->top;
        sub->state = SUB_CATCHING;
        sub->ops->ready(sub->ctx, GW_OK, NULL, sub->cursor, ch->top);
    }
    deliver_page(sub, p);
    if (!p->full)
        deliver_recent(sub);
    if (sub->cursor >= ch->top)
        go_live(sub);
    else
        sub->ops->wake(sub->ctx);
}

/* The oldest client read not yet answered, or NULL. */
static struct read *oldest_client_read(struct core *core)
{
    struct hub_link *l = core->client_reads.next;
    return l == &core->client_reads ? NULL
                                    : (struct read *)((char *)l - offsetof(struct read, queued));
}

/* A client's read: listed with its deadline (reads keep their order), then queued. */
static void client_read_submit(struct core *core, struct read *r, const struct core_caller *caller)
{
    r->deadline_ms = now_us() / 1000u + READ_DEADLINE_MS;
    hub_list_push(&core->client_reads, &r->queued);
    submit_read(core, r, caller->peer);
}

int core_expire_reads(struct core *core)
{
    struct read *r = oldest_client_read(core);
    char why[GW_ERRLEN];

    if (!r)
        return -1; /* every loop turn: no clock read while no read waits */
    uint64_t now = now_us() / 1000u;
    snprintf(why, sizeof(why),
             "the database did not answer within %u s (a disk or file system that hangs?)",
             READ_DEADLINE_MS / 1000);
    for (; r && r->deadline_ms <= now; r = oldest_client_read(core)) {
        hub_list_remove(&r->queued);
        r->expired = true;
        /* Once per hang, not once per read: thousands may wait behind it. */
        if (!core->hang_logged)
            log_warn("core: a read: %s; reads are answered store_busy until it answers", why);
        core->hang_logged = true;
        switch (r->kind) {
        case R_HISTORY:
            r->cb.page(r->ctx, GW_E_STORE_BUSY, why, NULL);
            break;
        case R_MESSAGE:
            r->cb.message(r->ctx, GW_E_STORE_BUSY, why, NULL);
            break;
        case R_CHANNELS:
            r->cb.channels(r->ctx, GW_E_STORE_BUSY, why, NULL, 0, NULL);
            break;
        default:
            break;
        }
    }
    if (!r)
        return -1;
    uint64_t left = r->deadline_ms - now;
    return left < INT32_MAX ? (int)left : INT32_MAX;
}

static void read_done(struct workq_job *wq)
{
    struct read *r = (struct read *)wq;
    struct reader_job *job = &r->job;
    struct core *core = r->core;

    core->hang_logged = false; /* the store answers again */
    if (r->expired) {
        reader_job_release(job); /* its client was answered at its deadline */
        free(r);
        return;
    }
    if (r->kind == R_HISTORY || r->kind == R_MESSAGE || r->kind == R_CHANNELS)
        hub_list_remove(&r->queued);
    switch (r->kind) {
    case R_HISTORY: {
        bool beyond = job->err == GW_OK && job->since > job->page.top;

        if (beyond) {
            /* A front may word it for its own cursor (SSE: Last-Event-ID), from the top. */
            job->err = GW_E_CURSOR; /* no message is past the top: the page is empty */
            snprintf(job->why, GW_ERRLEN, "since %lld is beyond the last seq of '%s' (%lld)",
                     (long long)job->since, job->channel, (long long)job->page.top);
        }
        r->cb.page(r->ctx, job->err, job->why, job->err == GW_OK || beyond ? &job->page : NULL);
        break;
    }
    case R_MESSAGE:
        r->cb.message(r->ctx, job->err, job->why, job->err == GW_OK ? &job->msg : NULL);
        break;
    case R_CHANNELS: {
        size_t n = job->err == GW_OK ? job->nchans : 0;
        /* A full page: there may be more after its last name. */
        const char *next = n && n == job->limit ? job->chans[n - 1].name : NULL;
        r->cb.channels(r->ctx, job->err, job->why, job->chans, n, next);
        break;
    }
    case R_SUB: {
        struct core_sub *sub = r->sub;
        struct hub_channel *ch = sub->ch;
        ch->reads--;
        sub->read = NULL;
        if (sub->state == SUB_DEAD)
            sub_free(sub);
        else
            sub_read_done(core, sub, job);
        channel_release(core, ch);
        break;
    }
    case R_TOP: {
        struct hub_channel *ch = r->ch;
        ch->reads--;
        /* job->since is the top the loop knew as the read began. */
        if (job->err == GW_OK && job->page.top < job->since)
            went_back(ch, job->page.top, job->since);
        /* A hole (rows removed by hand) is told by each subscription's own read. */
        for (size_t i = 0; job->err == GW_OK && job->page.ngaps == 0 && i < job->page.n; i++)
            fan_out_on(ch, &job->page.msgs[i]);
        if (job->err == GW_OK)
            moved(ch, job->page.top);
        if (r->notice) {
            /*
             * Unconfirmed (the store unavailable, say): the live
             * subscriptions read for themselves, and wait for the store as
             * any read does; what their pages say is the top, not the notice.
             */
            if (job->err != GW_OK)
                behind(ch, INT64_MAX);
            ch->top_checking = ch->top_check_again;
            ch->top_check_again = false;
            if (ch->top_checking)
                read_top(core, ch, true);
        }
        channel_release(core, ch);
        break;
    }
    }
    if (job->err == GW_OK)
        store_answered(core);
    reader_job_release(job);
    free(r);
}

/* ---- publishing ---- */

static void pub_done(struct writer_job *job)
{
    struct pub *p = (struct pub *)job;
    p->cb(p->ctx, job->err, job->why, &job->msg);
    if (job->err == GW_OK) {
        p->core->metrics.published[job->msg.via]++;
        fan_out(p->core, &job->msg);
        store_answered(p->core);
    }
    gw_msg_release(&job->msg);
    free(p);
}

enum gw_err core_publish(struct core *core, const struct core_caller *caller,
                         const struct core_publish_req *req, core_publish_cb *cb, void *ctx,
                         char why[GW_ERRLEN])
{
    const char *sender = req->sender ? req->sender : GW_SENDER_DEFAULT;
    size_t sender_len = req->sender ? req->sender_len : strlen(GW_SENDER_DEFAULT);
    enum gw_err err;
    struct pub *p;

    if ((err = check_shutdown(core, why)) != GW_OK ||
        (err = core_check_channel(req->channel, req->channel_len, why)) != GW_OK ||
        (err = check_new_channel(req->channel, req->channel_len, why)) != GW_OK ||
        (err = core_check_sender(sender, sender_len, why)) != GW_OK)
        return err;
    if (req->body_len > core->o.max_body) {
        snprintf(why, GW_ERRLEN, "body is %zu bytes, the limit is %zu", req->body_len,
                 core->o.max_body);
        return GW_E_TOO_LARGE;
    }
    if (!text_utf8_valid(req->body, req->body_len)) {
        snprintf(why, GW_ERRLEN, "body is not valid UTF-8");
        return GW_E_UTF8;
    }
    GW_ASSERT(gw_transport_publishes(caller->transport));

    p = gw_xcalloc(1, sizeof(*p));
    memcpy(p->job.msg.channel, req->channel, req->channel_len);
    p->job.msg.channel[req->channel_len] = '\0';
    p->job.msg.sender = gw_xmemdup(sender, sender_len);
    p->job.msg.sender_len = sender_len;
    p->job.msg.body = gw_xmemdup(req->body, req->body_len);
    p->job.msg.body_len = req->body_len;
    p->job.msg.via = caller->transport;
    p->job.msg.accepted_us = now_us();
    p->job.done = pub_done;
    p->cb = cb;
    p->ctx = ctx;
    p->core = core;
    char source[SOURCE_MAX] = "";
    if (caller->peer)
        source_of_peer(caller->peer, source);
    writer_submit(core->writer, &p->job, source);
    return GW_OK;
}

/* ---- reading ---- */

enum gw_err core_history(struct core *core, const struct core_caller *caller, const char *channel,
                         size_t channel_len, uint64_t since, uint64_t limit, size_t max_bytes,
                         core_page_cb *cb, void *ctx, char why[GW_ERRLEN])
{
    enum gw_err err;
    struct read *r;

    if ((err = core_check_channel(channel, channel_len, why)) != GW_OK ||
        (err = check_since(since, why)) != GW_OK)
        return err;
    if (limit > GW_LIMIT_MAX) {
        snprintf(why, GW_ERRLEN, "limit must be from 0 to %d", GW_LIMIT_MAX);
        return GW_E_PARAM;
    }
    r = read_new(core, R_HISTORY, READER_PAGE, ctx);
    r->cb.page = cb;
    memcpy(r->job.channel, channel, channel_len);
    r->job.channel[channel_len] = '\0';
    r->job.since = (int64_t)since;
    r->job.upto = INT64_MAX;
    r->job.limit = (unsigned)limit;
    r->job.max_bytes = max_bytes && max_bytes < core->o.page_bytes ? max_bytes : core->o.page_bytes;
    client_read_submit(core, r, caller);
    return GW_OK;
}

enum gw_err core_message(struct core *core, const struct core_caller *caller, uint64_t id,
                         core_message_cb *cb, void *ctx, char why[GW_ERRLEN])
{
    struct read *r;

    if (id == 0 || id > INT64_MAX) {
        snprintf(why, GW_ERRLEN, "message id must be a positive integer");
        return GW_E_PARAM;
    }
    r = read_new(core, R_MESSAGE, READER_MESSAGE, ctx);
    r->cb.message = cb;
    r->job.id = (int64_t)id;
    client_read_submit(core, r, caller);
    return GW_OK;
}

enum gw_err core_channels(struct core *core, const struct core_caller *caller, const char *after,
                          size_t after_len, uint64_t limit, core_channels_cb *cb, void *ctx,
                          char why[GW_ERRLEN])
{
    enum gw_err err;
    struct read *r;

    if (after_len && (err = core_check_channel(after, after_len, why)) != GW_OK)
        return err;
    if (limit < 1 || limit > GW_CHANNELS_LIMIT_MAX) {
        snprintf(why, GW_ERRLEN, "limit must be from 1 to %d", GW_CHANNELS_LIMIT_MAX);
        return GW_E_PARAM;
    }
    r = read_new(core, R_CHANNELS, READER_CHANNELS, ctx);
    r->cb.channels = cb;
    if (after_len) /* after may be NULL then */
        memcpy(r->job.channel, after, after_len);
    r->job.channel[after_len] = '\0';
    r->job.limit = (unsigned)limit;
    client_read_submit(core, r, caller);
    return GW_OK;
}

/* ---- subscriptions ---- */

enum gw_err core_subscribe(struct core *core, const struct core_caller *caller, const char *channel,
                           size_t channel_len, bool has_since, uint64_t since,
                           const struct core_sub_ops *ops, void *ctx, size_t budget,
                           struct core_sub **out, char why[GW_ERRLEN])
{
    struct core_sub *sub;
    enum gw_err err;

    if ((err = check_shutdown(core, why)) != GW_OK ||
        (err = core_check_channel(channel, channel_len, why)) != GW_OK ||
        (err = check_since(since, why)) != GW_OK)
        return err;
    sub = gw_xcalloc(1, sizeof(*sub));
    hub_list_init(&sub->link);
    sub->ch = channel_get(core, channel, channel_len);
    sub->ch->subs++;
    sub->ops = ops;
    sub->ctx = ctx;
    sub->peer = caller->peer;
    sub->state = SUB_PENDING;
    sub->has_since = has_since;
    sub->since = (int64_t)since;
    /*
     * In the hub before the read starts: a commit the loop sees from now on
     * is kept for it; one seen before is in the read's snapshot.
     */
    sub_read(core, sub, has_since ? READER_PAGE : READER_TOP, budget);
    *out = sub;
    return GW_OK;
}

bool core_sub_live(const struct core_sub *sub)
{
    return sub->state == SUB_LIVE;
}

int64_t core_sub_cursor(const struct core_sub *sub)
{
    return sub->cursor;
}

bool core_sub_pump(struct core *core, struct core_sub *sub, size_t max_bytes)
{
    /* A waiting one reads when the store answers or at the next retry, and stays in one list. */
    if (sub->state != SUB_CATCHING || sub->read || sub->stalled)
        return false;
    sub_read(core, sub, READER_PAGE, max_bytes);
    return true;
}

bool core_sub_reading(const struct core_sub *sub)
{
    return sub->read != NULL;
}

bool core_sub_catching_up(const struct core_sub *sub)
{
    return sub->state == SUB_PENDING || sub->state == SUB_CATCHING;
}

void core_unsubscribe(struct core *core, struct core_sub *sub)
{
    if (!sub)
        return;
    if (sub->state == SUB_LIVE || sub->stalled)
        hub_list_remove(&sub->link);
    if (sub->read) {
        sub->state = SUB_DEAD; /* freed when its read returns */
        return;
    }
    struct hub_channel *ch = sub->ch;
    sub_free(sub);
    channel_release(core, ch);
}

enum gw_err core_watch(struct core *core, const char *channel, size_t channel_len, uint64_t since,
                       core_watch_cb *cb, void *ctx, struct core_watch **out, char why[GW_ERRLEN])
{
    struct core_watch *w;
    enum gw_err err;

    if ((err = core_check_channel(channel, channel_len, why)) != GW_OK ||
        (err = check_since(since, why)) != GW_OK)
        return err;
    w = gw_xcalloc(1, sizeof(*w));
    w->ch = channel_get(core, channel, channel_len);
    w->since = (int64_t)since;
    w->cb = cb;
    w->ctx = ctx;
    hub_list_push(&w->ch->watches, &w->link);
    w->ch->nwatches++;
    *out = w;
    return GW_OK;
}

void core_unwatch(struct core *core, struct core_watch *w)
{
    struct hub_channel *ch;

    if (!w)
        return;
    ch = w->ch;
    if (!w->fired)
        hub_list_remove(&w->link);
    ch->nwatches--;
    free(w);
    channel_release(core, ch);
}

enum gw_err core_check_wait(uint64_t wait_s, char why[GW_ERRLEN])
{
    if (wait_s > GW_WAIT_MAX) {
        snprintf(why, GW_ERRLEN, "wait is at most %d seconds", GW_WAIT_MAX);
        return GW_E_PARAM;
    }
    return GW_OK;
}

size_t core_subscribed_channels(const struct core *core)
{
    return hub_channels(core->hub);
}

struct metrics *core_metrics(struct core *core)
{
    return &core->metrics;
}

size_t core_page_most(const struct core *core)
{
    size_t one = core->o.max_body + GW_SENDER_MAX;

    return one > core->o.page_bytes ? one : core->o.page_bytes;
}

struct reply_budget *core_replies(struct core *core)
{
    return &core->replies;
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
    return writer_pending(core->writer) + workq_pending(core->reader);
}
