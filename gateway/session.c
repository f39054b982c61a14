/*
 * session.c - the session tier; see session.h and docs/protocol.md.
 *
 * The push path follows redis: command handling and deliveries only queue
 * lines and mark the session dirty; one pass before the loop sleeps flushes
 * what the peer takes, pumps catch-up replays into the room left, and ends
 * sessions that died (teardown is always deferred to that pass, so no call
 * chain ever holds a freed session).
 *
 * Ordering: consecutive PUBs are submitted at once (that is what makes
 * pipelining fast) and their replies leave in command order as commits come
 * back. Any other command waits until every earlier reply is out, so HIST
 * sees an earlier PUB, and SUB's reply precedes its replay.
 *
 * The output bound: a command is taken only while the queue, plus what the
 * replies under way may add (reserved when they start), is under
 * --max-outbuf; so replies never pile up, whatever a client pipelines.
 * Pushes cannot wait: a session whose queued pushes pass the bound is a slow
 * consumer. It gets one last line, on a line of its own (a partly sent line
 * is finished first, lines not yet started are dropped), naming per channel
 * the last seq it was really sent, then it is closed.
 */
#include "session.h"

#include "buf.h"
#include "codec_json.h"
#include "core.h"
#include "fair_share.h"
#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "name_index.h"
#include "proto_line.h"
#include "reply_budget.h"
#include "text.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* PUBs in flight per session; past it the session's input waits. */
#define SESSION_WINDOW      256
/* Consecutive error replies after which a session is closed. */
#define SESSION_MAX_ERRORS  10
/* A closing or slow session gets this long to take its last lines. */
#define SESSION_LINGER_MS   10000
/*
 * A session whose queue stays over the bound this long without taking a byte
 * is a slow consumer (unless session_options.stuck_ms says otherwise).
 */
#define SESSION_STUCK_MS    10000
/*
 * Sessions one pass before the loop sleeps services at most: a fan-out to
 * ten thousand subscribers is sent in slices, and the loop hears other
 * clients between them; the first subscribers get their bytes at once.
 */
#define PASS_MAX            512
/* Room a reply is assumed to take besides its message or page. */
#define REPLY_OVERHEAD      256
/*
 * Lines one session may have run in one turn of the loop; the rest wait for
 * the next turn, after every other client's. Bytes read per turn are bounded
 * by the front, but a line can cost far more than its bytes (an empty line
 * costs a parse and answers nothing, so no output bound ever stops it): one
 * client pipelining 64 KiB of them held every other for 10 ms a turn.
 */
#define SESSION_TURN_LINES  64
/*
 * Bytes of lines queued to a session and not yet taken by it, past which
 * its next command waits (--max-outbuf stays the bound of the whole). A
 * client that reads takes them as they come, so this only stops one that
 * does not, before small lines (a `busy` each, 60 bytes and an allocation)
 * fill a whole --max-outbuf: thousands of such sessions grew the gateway by
 * gigabytes. Pushes still have the whole --max-outbuf.
 */
#define SESSION_REPLY_QUEUE 65536

/* The delivery cache slots: one encoding of a message per wire form. */
#define SLOT_JSON_LINE 0 /* TCP, WebSocket */
#define SLOT_SSE       1 /* Server-Sent Events */
#define SLOT_SIO       2 /* Socket.IO */

enum session_state {
    S_OPEN,    /* reading commands */
    S_CLOSING, /* last lines queued: close once they are out */
    S_SLOW,    /* slow consumer: the farewell line is queued */
    S_DEAD     /* ended; closed and freed in the next pass */
};

struct sub_slot;

/* A reply slot, in command order. It outlives its session if a commit or read is still out. */
struct reply {
    struct reply *next;
    struct session *s; /* NULL once the session is gone */
    bool done;
    size_t reserve; /* bytes reserved for it in s->reserved */
    /*
     * A read's page (HIST, CHANNELS): its reserve, then its line, count in
     * the reply budget (--max-reply-memory). Other replies are small or
     * bounded by the output queue and the PUB window alone: a session that
     * pipelines PUBs and never reads holds no more than --max-outbuf.
     */
    bool page;
    struct wline *line;               /* the answer, once done; NULL: none */
    struct sub_slot *slot;            /* SUB: the subscription being set up */
    char channel[GW_CHANNEL_MAX + 1]; /* HIST: the channel read */
    enum proto_op op;
    bool has_tag;
    size_t tag_len;
    char tag[PROTO_TAG_MAX + 1];
};

struct sub_slot {
    struct session *s;
    struct core_sub *sub;
    uint32_t id;
    bool pending;        /* SUB not answered yet */
    struct reply *reply; /* its SUB's reply, until ready */
    char channel[GW_CHANNEL_MAX + 1];
    int64_t last_seq;       /* the last seq queued to the session */
    size_t replay_reserved; /* reply budget held for the replay page being read */
};

struct session {
    struct session *prev, *next; /* all sessions */
    struct session *next_dirty;
    struct sessions *t;
    const struct session_io_ops *ops;
    void *io;
    enum gw_transport transport;
    enum session_format format;
    enum session_state state;
    char id[17];
    char peer[64];
    struct fair_place place; /* among its transport's sessions, by source address */
    const char *end_why;     /* why it ended, once S_DEAD: a string that lives for ever */
    enum gw_err end_err;     /* the same as a code, for ops->close */
    const char *close_why;   /* closing: why, for the log (static) */
    struct outq out;
    struct reply *rhead, *rtail;
    size_t inflight;                /* PUBs submitted, not yet answered */
    size_t reserved;                /* bytes replies under way may add to the queue */
    size_t paged;                   /* of those, the pages' reserves, counted in the reply budget */
    struct reply_source *budget;    /* its address's bytes in the reply budget (reserved, lines) */
    struct sub_slot **subs;         /* in the order they were made */
    size_t nsubs;                   /* the array holds the next power of two at least */
    struct name_index *subs_byname; /* answered ones by channel, past SUB_INDEX_MIN; or NULL */
    uint32_t next_sub_id;
    char *name; /* NAME: the sender of what it publishes without one; NULL: none */
    size_t name_len;
    unsigned errors;     /* consecutive */
    uint64_t turn;       /* the loop turn turn_lines counts in */
    unsigned turn_lines; /* lines run in it (SESSION_TURN_LINES) */
    uint64_t last_send_ms, last_cmd_ms, last_progress_ms, linger_until_ms, opened_ms;
    bool dirty;
    bool input_paused;     /* a line was refused: resume_input when it can go on */
    bool input_ended;      /* the peer sends no more */
    bool bye_when_drained; /* the gateway is stopping */
    bool broken;           /* a flush found the connection broken */
    bool wants_room;       /* a replay waits for the queue to drain below the low water */
    bool wants_budget;     /* a replay waits for room in the reply budget (tried each tick) */
    bool in_transit;       /* the front hands over what it took (session_in_transit) */
};

struct sessions {
    struct core *core;
    struct loop *loop;
    struct session_options o;
    struct metrics *metrics;
    struct session all; /* list head */
    size_t count;
    struct session *dirty, *dirty_tail; /* to service, oldest first */
    size_t ndirty;
    struct session *servicing; /* the pass's, while it is serviced: if it ends, closed at once */
    uint64_t turn;             /* loop turns so far: a session's lines are counted per turn */
    uint64_t next_tick_ms;
    unsigned tick_ms;
    char server[48];
    struct buf scratch;           /* where lines are built before they become wlines */
    struct reply_budget *replies; /* the core's: each session counts into its address's share */
    struct fair_share *share[GW_T__COUNT]; /* each front's sessions, by source address */
};

static const struct core_sub_ops sub_ops;

static uint64_t now_ms(void)
{
    return loop_now_ms();
}

static int64_t realtime_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void mark_dirty(struct session *s)
{
    struct sessions *t = s->t;

    if (s->dirty)
        return;
    s->dirty = true;
    s->next_dirty = NULL;
    if (t->dirty_tail)
        t->dirty_tail->next_dirty = s;
    else
        t->dirty = s;
    t->dirty_tail = s;
    t->ndirty++;
}

static struct session *pop_dirty(struct sessions *t)
{
    struct session *s = t->dirty;

    t->dirty = s->next_dirty;
    if (!t->dirty)
        t->dirty_tail = NULL;
    t->ndirty--;
    s->dirty = false;
    return s;
}

static struct buf *scratch(struct sessions *t)
{
    buf_clear(&t->scratch);
    return &t->scratch;
}

/* Lines longer than this are not copied out of the scratch buffer but take its storage. */
#define SCRATCH_KEEP (16 * 1024)

/* The scratch buffer's line as a new wline (one reference, the caller's). */
static struct wline *scratch_line(struct sessions *t)
{
    if (t->scratch.len > SCRATCH_KEEP)
        return wline_take(&t->scratch); /* a page: no second copy of a megabyte */
    return wline_new(t->scratch.data, t->scratch.len);
}

/*
 * Queues w (taking a reference) at now (ms, the loop clock): a push of
 * subscription sub_id whose cursor was prev_seq, or a reply or notice
 * (sub_id 0). A fan-out passes the clock it read once for every subscriber.
 */
static void enqueue_at(struct session *s, struct wline *w, uint32_t sub_id, int64_t prev_seq,
                       uint64_t now)
{
    /* A slow consumer's farewell is its last line: a reply that comes due after it is dropped. */
    if (s->state == S_SLOW)
        return;

    /* Stuck is judged from when the queue last moved, or started to fill. */
    if (!s->out.bytes)
        s->last_progress_ms = now;
    outq_push(&s->out, w, sub_id, prev_seq);
    s->last_send_ms = now;
    mark_dirty(s);
}

static void enqueue(struct session *s, struct wline *w, uint32_t sub_id, int64_t prev_seq)
{
    enqueue_at(s, w, sub_id, prev_seq, now_ms());
}

static void queue(struct session *s, struct wline *w)
{
    enqueue(s, w, 0, 0);
}

/* Whether the JSON line (p, len) starts with {"type":"<type>". */
static bool line_is_at(const char *p, size_t len, const char *type)
{
    size_t n = strlen(type);
    return len > 10 + n && memcmp(p, "{\"type\":\"", 9) == 0 && memcmp(p + 9, type, n) == 0 &&
           p[9 + n] == '"';
}

/* Whether the JSON line starts with {"type":"<type>". */
static bool line_is(const struct buf *b, const char *type)
{
    return line_is_at(b->data, b->len, type);
}

/*
 * The scratch buffer's JSON line in an SSE stream (see enum session_format):
 * which form a line takes follows from its type.
 */
static void sse_of_line(struct sessions *t, struct buf *out)
{
    struct buf *in = &t->scratch;
    size_t len = in->len && in->data[in->len - 1] == '\n' ? in->len - 1 : in->len;

    if (line_is(in, "ping")) {
        buf_append(out, ": ping\n\n", 8);
        return;
    }
    if (line_is(in, "hello"))
        buf_appendf(out, "retry: %u\n", SESSION_SSE_RETRY_MS);
    if (line_is(in, "ok") || line_is(in, "hello") || line_is(in, "pong")) {
        buf_append(out, ": ", 2); /* for a person reading the stream; EventSource skips it */
    } else {
        const char *ev = line_is(in, "error") ? "error" : line_is(in, "bye") ? "bye" : "notice";
        buf_appendf(out, "event: %s\ndata: ", ev);
    }
    buf_append(out, in->data, len);
    buf_append(out, "\n\n", 2);
}

/*
 * A reply the Socket.IO front asked for ends with ,"tag":"<ack id>"} (the
 * front's tags are ack ids, digits only): where that tag starts, and the id.
 */
static bool sio_ack_of(const char *p, size_t len, size_t *at, const char **id, size_t *id_len)
{
    static const char key[] = ",\"tag\":\"";
    size_t end = len - 2, i = end; /* the tag's closing quote, before the final brace */

    if (len < sizeof(key) + 3 || memcmp(p + end, "\"}", 2) != 0)
        return false;
    while (i > 0 && p[i - 1] >= '0' && p[i - 1] <= '9')
        i--;
    if (i == end || i < sizeof(key) - 1 || memcmp(p + i - (sizeof(key) - 1), key, sizeof(key) - 1))
        return false;
    *id = p + i;
    *id_len = end - i;
    *at = i - (sizeof(key) - 1);
    return true;
}

/* One JSON line (p, len, without its LF) in the Socket.IO form, appended to out with its LF. */
static void sio_of_one(struct session *s, const char *p, size_t len, struct buf *out)
{
    size_t at, id_len;
    const char *id, *type = p + 9, *end;

    if (line_is_at(p, len, "hello")) {
        buf_appendf(out, "40{\"sid\":\"%s\"}\n", s->id);
        return;
    }
    if (line_is_at(p, len, "ping") || line_is_at(p, len, "pong") || line_is_at(p, len, "bye"))
        return; /* Engine.IO has heartbeats and closes of its own */
    if (sio_ack_of(p, len, &at, &id, &id_len)) {
        /* The answer to an event sent with an ack: the reply, as on every front. */
        buf_append(out, "43", 2);
        buf_append(out, id, id_len);
        buf_append(out, "[", 1);
        buf_append(out, p, at);
        buf_append(out, "}]\n", 3);
        return;
    }
    if (line_is_at(p, len, "ok") || len < 12)
        return; /* an event sent without an ack wants no answer */
    /* Everything else is an event named by its type: its object is the line's other fields. */
    end = memchr(type, '"', len - 9);
    buf_append(out, "42[\"", 4);
    buf_append(out, type, (size_t)(end - type));
    buf_append(out, "\",{", 3);
    if (end[1] == ',')
        buf_append(out, end + 2, len - (size_t)(end + 2 - p));
    else
        buf_append(out, "}", 1);
    buf_append(out, "]\n", 2);
}

/*
 * The scratch buffer's JSON lines (one, or an error and the one that
 * closes the session) in the Socket.IO form, appended to out; false when
 * none has one.
 */
static bool sio_of_line(struct session *s, struct buf *out)
{
    const struct buf *in = &s->t->scratch;
    size_t off = 0;

    while (off < in->len) {
        const char *p = in->data + off, *nl = memchr(p, '\n', in->len - off);
        size_t len = nl ? (size_t)(nl - p) : in->len - off;
        sio_of_one(s, p, len, out);
        off += len + 1;
    }
    return out->len > 0;
}

/*
 * The scratch buffer's line as a new wline in s's format (one reference,
 * the caller's); NULL when the line has no form in it.
 */
static struct wline *line_for(struct session *s)
{
    struct buf out = BUF_INIT;

    if (s->format == SESSION_LINES)
        return scratch_line(s->t);
    if (s->format == SESSION_SSE)
        sse_of_line(s->t, &out);
    else if (!sio_of_line(s, &out))
        return NULL;
    return wline_take(&out);
}

/* Queues the scratch buffer's line, if it has a form in the session's. */
static void queue_scratch(struct session *s)
{
    struct wline *w = line_for(s);
    if (w)
        queue(s, w);
    wline_unref(w);
}

/* why: for the log line that ends the session (static). */
static void close_after_flush(struct session *s, enum gw_err err, const char *why)
{
    if (s->state != S_OPEN)
        return;
    s->end_err = err;
    s->close_why = why;
    s->state = S_CLOSING;
    s->linger_until_ms = now_ms() + SESSION_LINGER_MS;
    mark_dirty(s);
}

static void drop_subs(struct session *s);

/*
 * Ends the session: it is closed and freed by the pass, right after its
 * service if it ends there, else in the next pass (it may be on a caller's
 * stack now).
 */
static void session_kill(struct session *s, const char *why)
{
    if (s->state == S_DEAD)
        return;
    log_info("%s session %s %s closed: %s (%llu ms)", gw_transport_name(s->transport), s->id,
             s->peer, why, (unsigned long long)(now_ms() - s->opened_ms));
    s->state = S_DEAD;
    s->end_why = why;
    drop_subs(s);
    for (struct reply *r = s->rhead, *next; r; r = next) {
        next = r->next;
        if (r->done || r->slot) {
            /* Done, or a SUB whose subscription just ended: nothing will call back. */
            wline_unref(r->line);
            free(r);
        } else {
            r->s = NULL; /* its commit or read callback frees it */
        }
    }
    s->rhead = s->rtail = NULL;
    reply_budget_release(s->budget, s->paged);
    s->reserved = s->paged = 0;
    reply_budget_leave(s->budget);
    s->budget = NULL;
    s->prev->next = s->next;
    s->next->prev = s->prev;
    fair_share_leave(s->t->share[s->transport], &s->place);
    s->t->count--;
    s->t->metrics->open[s->transport]--;
    /*
     * Closed in this pass when it is the one serviced: a front counts a
     * session on its limit until it is closed, and a place held a turn
     * longer is one a newcomer is refused.
     */
    if (s->t->servicing != s)
        mark_dirty(s);
}

/* ---- replies ---- */

/* A reply slot for cmd, not in the session's queue yet (reply_push). */
static struct reply *reply_alloc(struct session *s, const struct proto_cmd *cmd, size_t reserve)
{
    struct reply *r = gw_xcalloc(1, sizeof(*r));

    r->s = s;
    r->reserve = reserve;
    r->op = cmd ? cmd->op : PROTO_NONE;
    if (cmd && cmd->tag) {
        r->has_tag = true;
        r->tag_len = cmd->tag_len;
        memcpy(r->tag, cmd->tag, cmd->tag_len);
    }
    return r;
}

static void reply_push(struct session *s, struct reply *r)
{
    s->reserved += r->reserve;
    if (r->page) {
        s->paged += r->reserve;
        reply_budget_add(s->budget, r->reserve);
    }
    if (s->rtail)
        s->rtail->next = r;
    else
        s->rhead = r;
    s->rtail = r;
}

static struct reply *reply_new(struct session *s, const struct proto_cmd *cmd, size_t reserve)
{
    struct reply *r = reply_alloc(s, cmd, reserve);
    reply_push(s, r);
    return r;
}

static const char *reply_tag(const struct reply *r)
{
    return r->has_tag ? r->tag : NULL;
}

/* Moves every finished reply at the head of the queue to the output. */
static void flush_replies(struct session *s)
{
    while (s->rhead && s->rhead->done) {
        struct reply *r = s->rhead;
        s->rhead = r->next;
        if (!s->rhead)
            s->rtail = NULL;
        s->reserved -= r->reserve;
        if (r->page) {
            s->paged -= r->reserve;
            reply_budget_release(s->budget, r->reserve);
        }
        if (r->line) {
            queue(s, r->line);
            wline_unref(r->line);
        }
        free(r);
    }
    mark_dirty(s);
}

/*
 * A reply under way is answered with the scratch line: in place, and out at
 * once if it is the oldest (so a SUB's reply goes before its replay). Frees
 * r when its session is gone.
 */
static void reply_complete(struct reply *r)
{
    if (!r->s) {
        free(r);
        return;
    }
    r->line = line_for(r->s);
    if (r->line && r->page)
        wline_account(r->line, r->s->budget);
    r->done = true;
    flush_replies(r->s);
}

/*
 * The one rendering of an error to the wire: an error line in the command's
 * place (its slot r, or a new slot after the replies under way, or straight
 * out when there are none), counted; the session closes after
 * SESSION_MAX_ERRORS in a row.
 */
static void render_error(struct session *s, struct reply *r, const struct proto_cmd *cmd,
                         enum gw_err err, const char *why)
{
    if (!r && s->rhead)
        r = reply_new(s, cmd, 0);
    struct buf *b = scratch(s->t);
    const char *tag = cmd ? cmd->tag : (r ? reply_tag(r) : NULL);
    size_t tag_len = cmd ? cmd->tag_len : (r ? r->tag_len : 0);

    enum proto_op op = cmd ? cmd->op : r ? r->op : PROTO_NONE;

    codec_line_error(b, err, why, proto_op_name(op), tag, tag ? tag_len : 0);
    /*
     * The rule is for a client that sends what cannot work. An answer that
     * says "try again" (busy, the store's), or that the gateway is stopping,
     * is about the gateway's state: a client that retries as told must not
     * be closed for other clients' load.
     */
    bool clients_own = err != GW_E_BUSY && err != GW_E_STORE_BUSY &&
                       err != GW_E_STORE_UNAVAILABLE && err != GW_E_STORE_FULL &&
                       err != GW_E_STORE && err != GW_E_SHUTDOWN;
    if (clients_own && ++s->errors >= SESSION_MAX_ERRORS) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%d errors in a row: closing the session", SESSION_MAX_ERRORS);
        codec_line_error(b, GW_E_TOO_MANY_ERRORS, msg, NULL, NULL, 0);
        close_after_flush(s, GW_E_TOO_MANY_ERRORS, "too many errors in a row");
    }
    if (r)
        reply_complete(r);
    else
        queue_scratch(s);
}

/* ---- commands ---- */

static void on_published(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    struct reply *r = ctx;
    struct sessions *t;

    if (!r->s) {
        free(r);
        return;
    }
    t = r->s->t;
    r->s->inflight--;
    if (err == GW_OK) {
        codec_line_ok_pub(scratch(t), m, reply_tag(r), r->tag_len);
        reply_complete(r);
    } else {
        codec_line_error(scratch(t), err, why, "pub", reply_tag(r), r->tag_len);
        reply_complete(r);
    }
}

static struct core_caller caller_of(const struct session *s)
{
    return (struct core_caller){.transport = s->transport, .peer = s->peer};
}

/* What a PUB asks the core for, in a session (its NAME, if any, when the PUB names no sender) or a
 * datagram (name NULL). */
static struct core_publish_req pub_req_of(const struct proto_cmd *cmd, const char *name,
                                          size_t name_len)
{
    return (struct core_publish_req){
        .channel = cmd->channel,
        .channel_len = cmd->channel_len,
        .sender = cmd->sender ? cmd->sender : name,
        .sender_len = cmd->sender ? cmd->sender_len : name_len,
        .body = cmd->body,
        .body_len = cmd->body_len,
    };
}

/* PING's answer, in a session or a datagram: the server's clock, for round trips. */
static void put_pong(struct buf *b, const struct proto_cmd *cmd)
{
    codec_line_pong(b, cmd->token, cmd->token_len, realtime_us(), cmd->tag, cmd->tag_len);
}

static enum gw_err cmd_pub(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    struct core_publish_req req = pub_req_of(cmd, s->name, s->name_len);
    struct core_caller caller = caller_of(s);
    /* The ok line carries the message: room for its escaped body and sender. */
    size_t reserve = REPLY_OVERHEAD + text_json_len(cmd->body, cmd->body_len) +
                     text_json_len(req.sender ? req.sender : "", req.sender_len);
    struct reply *r = reply_alloc(s, cmd, reserve);
    enum gw_err err = core_publish(s->t->core, &caller, &req, on_published, r, why);

    if (err != GW_OK) {
        free(r);
        return err;
    }
    reply_push(s, r);
    s->inflight++;
    return GW_OK;
}

/*
 * Past this many subscriptions a session finds one by its channel in an
 * index, not by a walk over all of them: with --max-subs raised to tens of
 * thousands, a walk per SUB made subscribing quadratic, on the loop.
 */
#define SUB_INDEX_MIN 16

/* The answered subscription to channel (ch, len), or NULL. */
static struct sub_slot *find_sub(struct session *s, const char *ch, size_t len)
{
    if (s->subs_byname)
        return name_index_find(s->subs_byname, ch, len);
    for (size_t i = 0; i < s->nsubs; i++) {
        if (!s->subs[i]->pending && strlen(s->subs[i]->channel) == len &&
            memcmp(s->subs[i]->channel, ch, len) == 0)
            return s->subs[i];
    }
    return NULL;
}

/* slot was answered: into the index, which is made once there are enough. */
static void index_sub(struct session *s, struct sub_slot *slot)
{
    if (!s->subs_byname) {
        if (s->nsubs < SUB_INDEX_MIN)
            return;
        s->subs_byname = gw_xcalloc(1, sizeof(*s->subs_byname));
        for (size_t i = 0; i < s->nsubs; i++) {
            if (!s->subs[i]->pending && s->subs[i] != slot)
                name_index_put(s->subs_byname, s->subs[i]->channel, s->subs[i]);
        }
    }
    name_index_put(s->subs_byname, slot->channel, slot);
}

/* Frees a slot whose subscription has ended, and the budget its replay held. */
static void slot_free(struct session *s, struct sub_slot *slot)
{
    reply_budget_release(s->budget, slot->replay_reserved);
    free(slot);
}

/* Ends and frees every subscription of s. */
static void drop_subs(struct session *s)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        core_unsubscribe(s->t->core, s->subs[i]->sub);
        slot_free(s, s->subs[i]);
    }
    s->nsubs = 0;
    if (s->subs_byname) {
        name_index_release(s->subs_byname);
        free(s->subs_byname);
        s->subs_byname = NULL;
    }
}

static void add_sub(struct session *s, struct sub_slot *slot)
{
    /* Doubled at each power of two: subscribing n channels copies O(n) pointers, not O(n^2). */
    if ((s->nsubs & (s->nsubs - 1)) == 0) {
        struct sub_slot **grown =
            gw_xrealloc(s->subs, (s->nsubs ? 2 * s->nsubs : 1) * sizeof(*grown));
        s->subs = grown;
    }
    s->subs[s->nsubs++] = slot;
}

static void remove_sub(struct session *s, struct sub_slot *slot)
{
    if (s->subs_byname && !slot->pending)
        name_index_del(s->subs_byname, slot->channel);
    for (size_t i = 0; i < s->nsubs; i++) {
        if (s->subs[i] == slot) {
            memmove(&s->subs[i], &s->subs[i + 1], (s->nsubs - i - 1) * sizeof(*s->subs));
            s->nsubs--;
            return;
        }
    }
}

/*
 * A replay's pages count in the reply budget, as HIST pages do: each page
 * read reserves its bound there first, and its lines count from then until
 * they are sent. Without it, thousands of sessions that subscribe from far
 * back and read nothing (Socket.IO polling sessions cost their client no
 * socket) held a quarter of --max-outbuf each, gigabytes together. True:
 * reserved; false: the budget is full, the page waits (wants_budget).
 */
static bool replay_reserve(struct session *s, struct sub_slot *slot, size_t room)
{
    char why[GW_ERRLEN];

    if (reply_budget_reserve(s->budget, room, why) != GW_OK) {
        s->wants_budget = true;
        return false;
    }
    slot->replay_reserved += room;
    return true;
}

/* What a replay page reserved and did not fill, once its read is over. */
static void replay_settle(struct session *s, struct sub_slot *slot)
{
    if (slot->replay_reserved && !core_sub_reading(slot->sub)) {
        reply_budget_release(s->budget, slot->replay_reserved);
        slot->replay_reserved = 0;
    }
}

static enum gw_err cmd_sub(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    struct sub_slot *old = find_sub(s, cmd->channel, cmd->channel_len);
    struct core_caller caller = caller_of(s);
    size_t low_water = s->t->o.max_outbuf / 4;
    struct sub_slot *slot;
    enum gw_err err;

    /* A name that is none is that, whatever the count: the count only bounds real ones. */
    if ((err = core_check_channel(cmd->channel, cmd->channel_len, why)) != GW_OK)
        return err;
    if (!old && s->nsubs >= s->t->o.max_subs) {
        snprintf(why, GW_ERRLEN, "at most %u subscriptions per session", s->t->o.max_subs);
        return GW_E_TOO_MANY_SUBS;
    }
    slot = gw_xcalloc(1, sizeof(*slot));
    slot->s = s;
    slot->id = ++s->next_sub_id ? s->next_sub_id : ++s->next_sub_id; /* never 0 */
    slot->pending = true;
    size_t room = s->out.bytes < low_water ? low_water - s->out.bytes : 1;
    /* The first page of a replay counts in the reply budget as a HIST page does; or one message. */
    if (cmd->has_since && !replay_reserve(s, slot, room))
        room = 1;
    err = core_subscribe(s->t->core, &caller, cmd->channel, cmd->channel_len, cmd->has_since,
                         cmd->since, &sub_ops, slot, room, &slot->sub, why);
    if (err != GW_OK) {
        slot_free(s, slot);
        return err;
    }
    /* core_subscribe took the name: it fits (ready comes later, from the loop). */
    memcpy(slot->channel, cmd->channel, cmd->channel_len);
    slot->channel[cmd->channel_len] = '\0';
    /* Answered when the subscription is set up (sub_ready); the old one, if any, goes then. */
    slot->reply = reply_new(s, cmd, REPLY_OVERHEAD);
    slot->reply->slot = slot;
    add_sub(s, slot);
    return GW_OK;
}

static enum gw_err cmd_unsub(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    struct sub_slot *slot = find_sub(s, cmd->channel, cmd->channel_len);
    enum gw_err err;

    /* As SUB and every other command say of a name that is none, rather than echo it back. */
    if (!slot && (err = core_check_channel(cmd->channel, cmd->channel_len, why)) != GW_OK)
        return err;
    if (!slot) {
        snprintf(why, GW_ERRLEN, "not subscribed to '%.*s'", (int)cmd->channel_len, cmd->channel);
        return GW_E_NOT_SUBSCRIBED;
    }
    core_unsubscribe(s->t->core, slot->sub);
    remove_sub(s, slot);
    codec_line_ok_unsub(scratch(s->t), slot->channel, cmd->tag, cmd->tag_len);
    queue_scratch(s);
    slot_free(s, slot);
    return GW_OK;
}

/* NAME: the session's sender from now on, checked as any sender is. */
static enum gw_err cmd_name(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    enum gw_err err = core_check_sender(cmd->sender, cmd->sender_len, why);

    if (err != GW_OK)
        return err;
    free(s->name);
    s->name = gw_xmemdup(cmd->sender, cmd->sender_len);
    s->name_len = cmd->sender_len;
    codec_line_ok_name(scratch(s->t), s->name, s->name_len, cmd->tag, cmd->tag_len);
    queue_scratch(s);
    return GW_OK;
}

static void on_hist(void *ctx, enum gw_err err, const char *why, const struct gw_page *page)
{
    struct reply *r = ctx;
    struct session *s = r->s;
    struct sessions *t;

    if (!s) {
        free(r);
        return;
    }
    t = s->t;
    if (err != GW_OK) {
        render_error(s, r, NULL, err, why);
        return;
    }
    codec_line_ok_hist(scratch(t), r->channel, page, reply_tag(r), r->tag_len);
    /* Larger than it reserved (escaped): it must fit as a read of its size would. */
    char busy[GW_ERRLEN];
    err = reply_budget_room_instead(s->budget, r->reserve, t->scratch.len, busy);
    if (err != GW_OK) {
        render_error(s, r, NULL, err, busy);
        return;
    }
    reply_complete(r);
}

static enum gw_err cmd_hist(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    struct core_caller caller = caller_of(s);
    size_t reserve = core_page_most(s->t->core) + REPLY_OVERHEAD;
    enum gw_err err = reply_budget_room(s->budget, reserve, why);

    if (err != GW_OK)
        return err;
    struct reply *r = reply_alloc(s, cmd, reserve);
    r->page = true;
    err = core_history(s->t->core, &caller, cmd->channel, cmd->channel_len,
                       cmd->has_since ? cmd->since : 0,
                       cmd->has_limit ? cmd->limit : GW_LIMIT_DEFAULT, 0, on_hist, r, why);

    if (err != GW_OK) {
        free(r);
        return err;
    }
    /* core_history took the name: it fits. */
    memcpy(r->channel, cmd->channel, cmd->channel_len);
    reply_push(s, r);
    return GW_OK;
}

static void on_channels(void *ctx, enum gw_err err, const char *why,
                        const struct gw_channel_info *chans, size_t n, const char *next_after)
{
    struct reply *r = ctx;
    struct session *s = r->s;

    if (!s) {
        free(r);
        return;
    }
    if (err != GW_OK) {
        render_error(s, r, NULL, err, why);
        return;
    }
    codec_line_ok_channels(scratch(s->t), chans, n, next_after, reply_tag(r), r->tag_len);
    reply_complete(r);
}

static enum gw_err cmd_channels(struct session *s, const struct proto_cmd *cmd, char why[GW_ERRLEN])
{
    struct core_caller caller = caller_of(s);
    uint64_t limit = cmd->has_limit ? cmd->limit : GW_CHANNELS_LIMIT_DEFAULT;
    /* What the page may take, from its count (a limit out of range is refused below). */
    size_t reserve =
        REPLY_OVERHEAD + codec_channels_max_len(limit <= GW_CHANNELS_LIMIT_MAX ? limit : 0);
    enum gw_err err = reply_budget_room(s->budget, reserve, why);

    if (err != GW_OK)
        return err;
    struct reply *r = reply_alloc(s, cmd, reserve);
    r->page = true;
    err =
        core_channels(s->t->core, &caller, cmd->after, cmd->after_len, limit, on_channels, r, why);

    if (err != GW_OK) {
        free(r);
        return err;
    }
    reply_push(s, r);
    return GW_OK;
}

/*
 * Runs one parsed command. Handlers return an error for the one rendering
 * in render_error, or queue their own answer (at once, or a reply slot
 * filled later).
 */
static void dispatch(struct session *s, const struct proto_cmd *cmd)
{
    char why[GW_ERRLEN];
    enum gw_err err = GW_OK;
    struct buf *b;

    switch (cmd->op) {
    case PROTO_PUB:
        err = cmd_pub(s, cmd, why);
        break;
    case PROTO_SUB:
        err = cmd_sub(s, cmd, why);
        break;
    case PROTO_UNSUB:
        err = cmd_unsub(s, cmd, why);
        break;
    case PROTO_HIST:
        err = cmd_hist(s, cmd, why);
        break;
    case PROTO_CHANNELS:
        err = cmd_channels(s, cmd, why);
        break;
    case PROTO_HELP:
        if (cmd->text_form && s->format == SESSION_LINES) {
            /* Typed by a person: words to read, not a JSON array. */
            struct wline *w;
            codec_text_help(b = scratch(s->t), proto_usage);
            w = scratch_line(s->t);
            queue(s, w);
            wline_unref(w);
        } else {
            codec_line_ok_help(b = scratch(s->t), proto_usage, cmd->tag, cmd->tag_len);
            queue_scratch(s);
        }
        break;
    case PROTO_NAME:
        err = cmd_name(s, cmd, why);
        break;
    case PROTO_PING:
        put_pong(b = scratch(s->t), cmd);
        queue_scratch(s);
        break;
    case PROTO_PONG:
        break;
    case PROTO_QUIT:
        codec_line_bye(b = scratch(s->t), "quit", cmd->tag, cmd->tag_len);
        queue_scratch(s);
        close_after_flush(s, GW_OK, "quit");
        break;
    case PROTO_NONE:
    case PROTO__COUNT:
        break;
    }
    if (err != GW_OK)
        render_error(s, NULL, cmd, err, why);
    else if (cmd->op != PROTO_PONG)
        s->errors = 0;
}

/* Whether a command may run now; see the ordering and bound rules at the top. */
static bool can_run(const struct session *s, const struct proto_cmd *cmd)
{
    size_t committed = s->out.bytes + s->reserved;

    if (committed > 0 && committed >= s->t->o.max_outbuf)
        return false;
    if (s->out.bytes >= SESSION_REPLY_QUEUE) /* what it has not read, not what is under way */
        return false;
    if (cmd->op == PROTO_PUB)
        return s->inflight < SESSION_WINDOW && (!s->rhead || s->inflight > 0);
    return s->rhead == NULL;
}

bool session_line(struct session *s, const char *line, size_t len)
{
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    enum gw_err err;

    if (s->state != S_OPEN || s->bye_when_drained)
        return s->state != S_OPEN; /* closing: input is dropped; stopping: held */
    if (s->turn != s->t->turn) {
        s->turn = s->t->turn;
        s->turn_lines = 0;
    }
    if (s->turn_lines >= SESSION_TURN_LINES) {
        /* The rest next turn: the pass before the loop sleeps asks for it again. */
        s->input_paused = true;
        mark_dirty(s);
        return false;
    }
    s->turn_lines++;
    err = proto_parse(line, len, &cmd, why);
    if (err == GW_OK && cmd.op == PROTO_NONE) {
        proto_cmd_release(&cmd);
        return true;
    }
    if (err == GW_OK ? !can_run(s, &cmd) : s->rhead != NULL) {
        proto_cmd_release(&cmd);
        s->input_paused = true;
        return false;
    }
    /* A PONG answers the gateway's heartbeat: it keeps no idle session open (--idle-timeout). */
    if (err != GW_OK || cmd.op != PROTO_PONG)
        s->last_cmd_ms = now_ms();
    s->t->metrics->requests[s->transport]++;
    if (err != GW_OK)
        render_error(s, NULL, &cmd, err, why);
    else
        dispatch(s, &cmd);
    proto_cmd_release(&cmd);
    return true;
}

bool session_takes_input(const struct session *s)
{
    return s->state == S_OPEN;
}

bool session_refuse(struct session *s, enum gw_err err, const char *why, const char *tag,
                    size_t tag_len)
{
    struct proto_cmd cmd = {.tag = tag, .tag_len = tag_len};

    if (s->state != S_OPEN || s->bye_when_drained)
        return s->state != S_OPEN;
    if (s->rhead) {
        s->input_paused = true;
        return false;
    }
    s->last_cmd_ms = now_ms();
    s->t->metrics->requests[s->transport]++;
    render_error(s, NULL, &cmd, err, why);
    return true;
}

void session_input_error(struct session *s, enum gw_err err, const char *why)
{
    if (s->state != S_OPEN)
        return;
    if (s->rhead) {
        struct reply *r = reply_new(s, NULL, 0);
        codec_line_error(scratch(s->t), err, why, NULL, NULL, 0);
        reply_complete(r);
    } else {
        codec_line_error(scratch(s->t), err, why, NULL, NULL, 0);
        queue_scratch(s);
    }
    close_after_flush(s, err, gw_err_code(err));
}

void session_input_end(struct session *s)
{
    s->input_ended = true;
    mark_dirty(s);
}

void session_abort(struct session *s, const char *why)
{
    session_kill(s, why);
}

/* ---- subscriptions ---- */

static void go_slow(struct session *s, const char *why);

static void sub_ready(void *ctx, enum gw_err err, const char *why, int64_t since, int64_t top)
{
    struct sub_slot *slot = ctx;
    struct session *s = slot->s;
    struct reply *r = slot->reply;

    slot->reply = NULL;
    r->slot = NULL;
    if (err != GW_OK) {
        remove_sub(s, slot);
        slot_free(s, slot);
        render_error(s, r, NULL, err, why);
        return;
    }
    struct sub_slot *old = find_sub(s, slot->channel, strlen(slot->channel));
    if (old) {
        /* SUB again: start over from the new cursor. */
        core_unsubscribe(s->t->core, old->sub);
        remove_sub(s, old);
        slot_free(s, old);
    }
    slot->pending = false;
    index_sub(s, slot);
    slot->last_seq = since;
    s->errors = 0;
    codec_line_ok_sub(scratch(s->t), slot->channel, since, top, reply_tag(r), r->tag_len);
    reply_complete(r);
}

static void wline_release(void *p)
{
    wline_unref(p);
}

static void sub_deliver(void *ctx, struct core_delivery *d)
{
    struct sub_slot *slot = ctx;
    struct session *s = slot->s;
    struct sessions *t = s->t;
    int form = s->format == SESSION_SSE        ? SLOT_SSE
               : s->format == SESSION_SOCKETIO ? SLOT_SIO
                                               : SLOT_JSON_LINE;
    struct wline *w = d->cache[form].p;

    /* A closing session's last line is its farewell: nothing follows it. */
    if (s->state != S_OPEN)
        return;
    if (!w) {
        /* Encoded once per fan-out and form: every subscriber's queue points at this line. */
        struct buf *b = scratch(t);
        if (form == SLOT_SSE) {
            size_t len;
            char *json = codec_msg_encode(d->m, &len);
            buf_appendf(b, "id: %lld\nevent: message\ndata: ", (long long)d->m->seq);
            buf_append(b, json, len);
            buf_append(b, "\n\n", 2);
            free(json);
        } else if (form == SLOT_SIO) {
            codec_sio_message_event(b, d->m);
        } else {
            codec_line_message(b, d->m);
        }
        w = scratch_line(t);
        d->cache[form].p = w;
        d->cache[form].release = wline_release;
        if (!d->live) {
            /*
             * A replay's line is this session's alone: it counts until it
             * is sent, and its page's reserve gives up as much.
             */
            size_t part = w->len < slot->replay_reserved ? w->len : slot->replay_reserved;
            wline_account(w, s->budget);
            reply_budget_release(s->budget, part);
            slot->replay_reserved -= part;
        }
    }
    enqueue_at(s, w, slot->id, slot->last_seq, d->now_us ? d->now_us / 1000 : now_ms());
    slot->last_seq = d->m->seq;
    t->metrics->delivered[s->transport]++;
    if (d->live && d->m->accepted_us)
        metrics_hist_observe(&t->metrics->delivery_seconds[s->transport],
                             (double)(d->now_us - d->m->accepted_us) / 1e6);
    /*
     * Over the bound is what the peer has not taken: let the connection take
     * what it can first. Only for a commit as it happens: a replay is paced
     * by the session itself (pump reads while the queue is under a quarter of
     * the bound), so it cannot outrun the bound by more than its one message;
     * a reader that takes none of it is judged by the stuck rule (tick).
     */
    if (d->live && s->out.push_bytes > t->o.max_outbuf) {
        if (!s->ops->flush(s->io))
            s->broken = true;
        if (s->out.push_bytes > t->o.max_outbuf) {
            char why[96];
            snprintf(why, sizeof(why), "more than %zu bytes queued for this session",
                     t->o.max_outbuf);
            go_slow(s, why);
        }
    }
}

static void sub_gap(void *ctx, const char *channel, int64_t from, int64_t to)
{
    struct sub_slot *slot = ctx;
    struct session *s = slot->s;
    struct wline *w;

    if (s->state != S_OPEN)
        return;
    if (s->format == SESSION_SSE) {
        /* Its id is the hole's last seq: a reconnecting EventSource resumes after it. */
        struct buf *b = scratch(s->t);
        buf_appendf(b, "id: %lld\nevent: gap\ndata: ", (long long)to);
        codec_line_gap(b, channel, from, to);
        b->len--; /* its LF: the event ends with a blank line instead */
        buf_append(b, "\n\n", 2);
        w = scratch_line(s->t);
    } else {
        codec_line_gap(scratch(s->t), channel, from, to);
        w = line_for(s);
    }
    enqueue(s, w, slot->id, slot->last_seq);
    wline_unref(w);
    slot->last_seq = to;
}

static void sub_wake(void *ctx)
{
    struct sub_slot *slot = ctx;
    mark_dirty(slot->s);
}

static void sub_failed(void *ctx, enum gw_err err, const char *why)
{
    struct sub_slot *slot = ctx;
    struct session *s = slot->s;

    if (s->state != S_OPEN)
        return;
    log_error("%s session %s: its subscription to '%s' ended: %s", gw_transport_name(s->transport),
              s->id, slot->channel, why);
    codec_line_error(scratch(s->t), err, why, "sub", NULL, 0);
    queue_scratch(s);
    close_after_flush(s, err, gw_err_code(err));
}

static const struct core_sub_ops sub_ops = {
    .ready = sub_ready,
    .deliver = sub_deliver,
    .gap = sub_gap,
    .wake = sub_wake,
    .failed = sub_failed,
};

/*
 * The slow consumer's farewell. Lines not yet started (nor promised by the
 * front: outq_promise) are dropped, so the farewell follows at once what the
 * peer is being sent; last_seq names, per
 * channel, the last seq it was really sent: the cursor before the first
 * dropped push of that channel, or the last one queued. A SUB not answered
 * yet gave the peer no cursor: it is left out (a SUB again keeps its
 * channel named once, by the subscription it replaces).
 */
/* A subscription's id and its place in go_slow's lists, sorted by id to be found by it. */
struct slow_entry {
    uint32_t id;
    size_t at;
};

static int slow_entry_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct slow_entry *)a)->id, y = ((const struct slow_entry *)b)->id;
    return (x > y) - (x < y);
}

/* why: what made it one, the start of the farewell's message. */
static void go_slow(struct session *s, const char *why)
{
    size_t n = 0, first = outq_kept(&s->out), cap = s->nsubs ? s->nsubs : 1;
    const char **names = gw_xcalloc(cap, sizeof(*names));
    int64_t *seqs = gw_xcalloc(cap, sizeof(*seqs));
    struct slow_entry *by_id = gw_xcalloc(cap, sizeof(*by_id));
    bool *dropped = gw_xcalloc(cap, sizeof(*dropped));
    char msg[GW_ERRLEN];

    for (size_t i = 0; i < s->nsubs; i++) {
        const struct sub_slot *slot = s->subs[i];
        if (slot->pending)
            continue;
        names[n] = slot->channel;
        seqs[n] = slot->last_seq;
        by_id[n] = (struct slow_entry){slot->id, n};
        n++;
    }
    /*
     * One pass over the pushes to be dropped: each channel's first one gives
     * the cursor before it. (A pass per subscription held the loop for
     * seconds with thousands of them and a large --max-outbuf.)
     */
    qsort(by_id, n, sizeof(*by_id), slow_entry_cmp);
    for (size_t k = first; k < s->out.n; k++) {
        const struct outq_item *it = outq_at(&s->out, k);
        struct slow_entry key = {it->sub_id, 0}, *e;
        if (it->sub_id && (e = bsearch(&key, by_id, n, sizeof(*by_id), slow_entry_cmp)) &&
            !dropped[e->at]) {
            dropped[e->at] = true;
            seqs[e->at] = it->prev_seq;
        }
    }
    free(by_id);
    free(dropped);
    log_warn("%s session %s %s: slow consumer, %zu bytes queued: %s",
             gw_transport_name(s->transport), s->id, s->peer, s->out.bytes, why);
    outq_drop_unstarted(&s->out);
    snprintf(msg, sizeof(msg), "%.160s: closing; resume with SUB <channel> <last_seq>", why);
    codec_line_slow_consumer(scratch(s->t), msg, names, seqs, n);
    queue_scratch(s);
    free(names);
    free(seqs);
    /* Subscriptions end in the next pass: we may be inside a fan-out now. */
    s->state = S_SLOW;
    s->end_err = GW_E_SLOW_CONSUMER;
    s->linger_until_ms = now_ms() + SESSION_LINGER_MS;
}

/* Catch-up replay for subscriptions that are not live yet, into the room left. */
static void pump(struct session *s)
{
    size_t low_water = s->t->o.max_outbuf / 4;

    s->wants_room = false;
    s->wants_budget = false;
    for (size_t i = 0; i < s->nsubs && s->state == S_OPEN; i++) {
        struct sub_slot *slot = s->subs[i];
        if (slot->pending)
            continue;
        replay_settle(s, slot);
        if (core_sub_live(slot->sub) || core_sub_reading(slot->sub))
            continue;
        if (s->out.bytes >= low_water) {
            s->wants_room = true; /* session_sent calls again when there is room */
            continue;
        }
        size_t room = low_water - s->out.bytes;
        if (replay_reserve(s, slot, room) && !core_sub_pump(s->t->core, slot->sub, room))
            replay_settle(s, slot); /* nothing to read now */
    }
}

/* ---- the pass before the loop sleeps ---- */

static void session_free(struct session *s)
{
    free(s->name);
    outq_release(&s->out);
    free(s->subs);
    if (s->subs_byname)
        name_index_release(s->subs_byname);
    free(s->subs_byname);
    free(s);
}

/* A subscription of this session still replays what was stored: the SUB's answer is not over. */
static bool replaying(const struct session *s)
{
    for (size_t i = 0; i < s->nsubs; i++)
        if (s->subs[i]->pending || (s->subs[i]->sub && core_sub_catching_up(s->subs[i]->sub)))
            return true;
    return false;
}

static void service(struct session *s)
{
    if (s->broken) {
        session_kill(s, "connection lost");
        return;
    }
    if (s->state == S_SLOW && s->nsubs)
        drop_subs(s);
    if (s->state == S_OPEN) {
        if (s->input_paused) {
            s->input_paused = false;
            s->ops->resume_input(s->io);
        }
        /*
         * Input ended: every reply is due first, and a SUB's replay is part
         * of its reply (echo 'SUB ch 0' | nc -N reads the channel whole).
         * A stop does not wait for replays.
         */
        if ((s->bye_when_drained || (s->input_ended && !replaying(s))) && !s->rhead &&
            !s->input_paused && s->state == S_OPEN) {
            codec_line_bye(scratch(s->t), s->bye_when_drained ? "shutdown" : "end of input", NULL,
                           0);
            queue_scratch(s);
            close_after_flush(s, s->bye_when_drained ? GW_E_SHUTDOWN : GW_OK,
                              s->bye_when_drained ? "shutdown" : "end of input");
        }
    }
    if (s->state == S_OPEN)
        pump(s);
    if (s->state != S_DEAD && !s->ops->flush(s->io)) {
        session_kill(s, "connection lost");
        return;
    }
    /* A closing session sends every reply due first: the line that closes it is the last one. */
    if (s->out.n == 0 && (s->state == S_SLOW || (s->state == S_CLOSING && !s->rhead)))
        session_kill(s, s->state == S_SLOW ? "slow consumer" : s->close_why);
}

static void tick(struct sessions *t, uint64_t now)
{
    uint64_t hb = (uint64_t)t->o.heartbeat * 1000, idle = (uint64_t)t->o.idle_timeout * 1000;

    for (struct session *s = t->all.next, *next; s != &t->all; s = next) {
        next = s->next;
        outq_trim(&s->out); /* an idle session keeps no ring */
        if ((s->state == S_CLOSING || s->state == S_SLOW) && now >= s->linger_until_ms) {
            session_kill(s, "did not read its last lines in time");
            continue;
        }
        if (s->state != S_OPEN)
            continue;
        if (s->wants_budget)
            mark_dirty(s); /* its replay tries the reply budget again */
        /*
         * Stuck: nothing taken for stuck_ms while the queue is full, while
         * commands wait for the answers before them to be read, or while
         * a replay waits for it to drain. A replay fills it to a quarter only
         * (pump), so a subscriber that reads none of its replay would
         * otherwise hold its session, and a replay's worth of memory, for ever.
         */
        bool waits = s->out.bytes >= t->o.max_outbuf || s->wants_room ||
                     (s->input_paused && s->out.bytes >= SESSION_REPLY_QUEUE);
        bool stuck = waits && !s->in_transit && now - s->last_progress_ms >= t->o.stuck_ms;
        if (stuck) {
            /*
             * Before judging, ask the socket itself: this pass may come
             * before the loop has heard that the peer read (the first pass
             * after the gateway itself was stopped, by SIGSTOP or a frozen
             * machine, runs before the events that came meanwhile).
             */
            uint64_t before = s->last_progress_ms;
            if (!s->ops->flush(s->io)) {
                s->broken = true;
                mark_dirty(s); /* service ends it */
                continue;
            }
            stuck = s->last_progress_ms == before;
        }
        if (stuck) {
            char why[128];
            snprintf(why, sizeof(why), "this session took no byte for %.1f s while %s",
                     (double)t->o.stuck_ms / 1000.0,
                     s->out.bytes >= t->o.max_outbuf ? "its queue was full"
                     : s->wants_room                 ? "its replay waited for room"
                                                     : "its commands waited behind their answers");
            go_slow(s, why);
            mark_dirty(s);
        } else if (s->nsubs == 0 && !s->rhead && now - s->last_cmd_ms >= idle) {
            char why[96];
            snprintf(why, sizeof(why), "no command and no subscription for %u s: closing",
                     t->o.idle_timeout);
            codec_line_error(scratch(t), GW_E_IDLE, why, NULL, NULL, 0);
            queue_scratch(s);
            close_after_flush(s, GW_E_IDLE, gw_err_code(GW_E_IDLE));
        } else if (now - s->last_send_ms >= hb) {
            if (s->ops->heartbeat) {
                s->ops->heartbeat(s->io); /* the transport's own */
                s->last_send_ms = now;
            } else {
                codec_line_ping(scratch(t), realtime_us());
                queue_scratch(s);
            }
        }
    }
}

static int before_sleep(struct loop *loop, void *ctx)
{
    struct sessions *t = ctx;
    uint64_t now = now_ms();

    (void)loop;
    t->metrics->reply_bytes = reply_budget_used(t->replies);
    if (now >= t->next_tick_ms) {
        tick(t, now);
        t->next_tick_ms = now + t->tick_ms;
    }
    /* Those marked before this pass, up to PASS_MAX; the others (and those
     * marked again meanwhile, a replay with more to do) on the next turn. */
    for (size_t n = t->ndirty < PASS_MAX ? t->ndirty : PASS_MAX; n; n--) {
        struct session *s = pop_dirty(t);
        if (s->state != S_DEAD) {
            t->servicing = s;
            service(s);
            t->servicing = NULL;
        }
        if (s->state == S_DEAD && !s->dirty) {
            s->ops->close(s->io, s->end_err, s->end_why);
            session_free(s);
        }
    }
    t->turn++; /* a session held back for its line count was marked again: it goes on next turn */
    return t->ndirty ? 0 : (int)(t->next_tick_ms - now);
}

/* ---- the tier ---- */

struct sessions *sessions_new(struct core *core, struct loop *loop,
                              const struct session_options *opts)
{
    struct sessions *t = gw_xcalloc(1, sizeof(*t));
    unsigned shortest = opts->heartbeat < opts->idle_timeout ? opts->heartbeat : opts->idle_timeout;

    t->core = core;
    t->loop = loop;
    t->o = *opts;
    if (!t->o.stuck_ms)
        t->o.stuck_ms = SESSION_STUCK_MS;
    t->metrics = core_metrics(core);
    t->replies = core_replies(core);
    t->all.next = t->all.prev = &t->all;
    buf_init(&t->scratch);
    /* Timers fire within a quarter of the shortest period, at most once a second. */
    t->tick_ms = shortest * 250 < 1000 ? shortest * 250 : 1000;
    if (t->o.stuck_ms / 4 < t->tick_ms)
        t->tick_ms = t->o.stuck_ms / 4 ? t->o.stuck_ms / 4 : 1;
    t->next_tick_ms = now_ms() + t->tick_ms;
    snprintf(t->server, sizeof(t->server), "visavis %s", VISAVIS_VERSION);
    for (size_t i = 0; i < GW_T__COUNT; i++)
        t->share[i] = fair_share_new();
    loop_add_hook(loop, before_sleep, t);
    return t;
}

void sessions_free(struct sessions *t)
{
    if (!t)
        return;
    while (t->all.next != &t->all)
        session_kill(t->all.next, "gateway stopped");
    while (t->dirty) {
        struct session *s = pop_dirty(t);
        s->ops->close(s->io, s->end_err, s->end_why);
        session_free(s);
    }
    buf_release(&t->scratch);
    for (size_t i = 0; i < GW_T__COUNT; i++)
        fair_share_free(t->share[i]);
    free(t);
}

size_t sessions_count(const struct sessions *t)
{
    return t->count;
}

void sessions_quiesce(struct sessions *t)
{
    for (struct session *s = t->all.next; s != &t->all; s = s->next) {
        s->bye_when_drained = true;
        mark_dirty(s);
    }
}

struct session *session_open(struct sessions *t, enum gw_transport transport,
                             enum session_format format, const char *peer,
                             const struct session_io_ops *ops, void *io)
{
    struct session *s = gw_xcalloc(1, sizeof(*s));
    unsigned char rnd[8];
    char src[SOURCE_MAX];

    s->t = t;
    s->ops = ops;
    s->io = io;
    s->transport = transport;
    s->format = format;
    s->state = S_OPEN;
    outq_init(&s->out);
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        uint64_t x = loop_now_us() ^ ((uint64_t)(uintptr_t)s << 16);
        memcpy(rnd, &x, sizeof(rnd));
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    snprintf(s->peer, sizeof(s->peer), "%s", peer);
    source_of_peer(peer, src);
    fair_share_take(t->share[transport], &s->place, src);
    s->budget = reply_budget_join(t->replies, src);
    s->opened_ms = s->last_cmd_ms = s->last_progress_ms = now_ms();
    s->next = &t->all;
    s->prev = t->all.prev;
    t->all.prev->next = s;
    t->all.prev = s;
    t->count++;
    t->metrics->open[transport]++;
    codec_line_hello(scratch(t), s->id, t->server, t->o.heartbeat, transport != GW_T_SSE);
    queue_scratch(s);
    log_debug("%s session %s %s opened", gw_transport_name(transport), s->id, s->peer);
    return s;
}

/* Older sessions of the victim's address looked at for one that owes nothing. */
#define VICTIM_SCAN 64

static struct session *session_of_place(struct fair_place *p)
{
    return (struct session *)(void *)((char *)p - offsetof(struct session, place));
}

/*
 * The session that makes room for a newcomer from peer: of the address
 * fair_share names, its newest session that owes its peer nothing (no
 * command waiting to be read or under way, no reply queued), since a reply
 * dropped with it would leave its client unable to tell whether a PUB was
 * stored; else that address's newest. NULL: none may.
 */
static struct session *victim_for(struct sessions *t, enum gw_transport transport, const char *peer)
{
    char src[SOURCE_MAX];
    struct fair_place *newest, *p;
    int seen = 0;

    source_of_peer(peer, src);
    if (!(newest = fair_share_victim(t->share[transport], src)))
        return NULL;
    for (p = newest; p && seen < VICTIM_SCAN; p = fair_share_older(p), seen++) {
        struct session *s = session_of_place(p);
        if (!s->rhead && s->out.n == 0 && !(s->ops->input_waiting && s->ops->input_waiting(s->io)))
            return s;
    }
    return session_of_place(newest);
}

bool sessions_can_make_room(struct sessions *t, enum gw_transport transport, const char *peer)
{
    return victim_for(t, transport, peer) != NULL;
}

bool sessions_make_room(struct sessions *t, enum gw_transport transport, const char *peer,
                        unsigned limit)
{
    struct session *s = victim_for(t, transport, peer);
    char why[256];

    if (!s)
        return false;
    snprintf(why, sizeof(why),
             "%s holds %zu of the %u %s sessions and a client from another address needs one: "
             "its newest session, this one, is closed to make room",
             fair_share_source_of(&s->place),
             fair_share_held(t->share[transport], fair_share_source_of(&s->place)), limit,
             gw_transport_name(transport));
    log_warn("%s session %s %s: %s", gw_transport_name(transport), s->id, s->peer, why);
    fair_share_leave(t->share[transport], &s->place);
    outq_drop_unstarted(&s->out);
    codec_line_error(scratch(t), GW_E_TOO_MANY_SESSIONS, why, NULL, NULL, 0);
    queue_scratch(s);
    /*
     * What the socket takes now, then closed in this turn's pass, whatever
     * is left: were it to linger for a peer that does not read (or polls),
     * it would hold its place on the front's limit meanwhile, and a
     * newcomer that connects and leaves at once would find the limit full
     * again and take another place, and another.
     */
    if (s->state == S_OPEN)
        s->ops->flush(s->io);
    s->end_err = GW_E_TOO_MANY_SESSIONS;
    session_kill(s, "closed to make room for a client from another address");
    return true;
}

const char *session_id(const struct session *s)
{
    return s->id;
}

struct outq *session_outq(struct session *s)
{
    return &s->out;
}

void session_in_transit(struct session *s, bool on)
{
    if (s->in_transit && !on)
        s->last_progress_ms = now_ms(); /* taken: the stuck rule counts from here */
    s->in_transit = on;
}

void session_sent(struct session *s, size_t bytes)
{
    if (!bytes)
        return;
    outq_consume(&s->out, bytes);
    s->t->metrics->bytes_out[s->transport] += bytes;
    s->last_progress_ms = now_ms();
    /*
     * The front may send on its own (EPOLLOUT): the next pass must look at
     * the session when that matters, for input held back for the bound, a
     * replay waiting for room, or a closing session whose last line is out
     * (unless this is its service's flush: the service ends it next).
     */
    if (s->input_paused || (s->wants_room && s->out.bytes < s->t->o.max_outbuf / 4) ||
        (s->state != S_OPEN && s->out.n == 0 && s->t->servicing != s))
        mark_dirty(s);
}

void session_received(struct session *s, size_t bytes)
{
    s->t->metrics->bytes_in[s->transport] += bytes;
}

/* ---- datagrams ---- */

/* One datagram: where its answer goes, and whether it wants one. */
struct dgram {
    struct sessions *t;
    session_dgram_done_fn *done;
    void *front;
    size_t max_reply;
    bool ack; /* a PUB that carries a tag: answered after its commit */
    bool has_tag;
    size_t tag_len;
    char tag[PROTO_TAG_MAX + 1];
    size_t route_len;
    unsigned char route[SESSION_ROUTE_MAX];
};

/* Hands the datagram's end to its front; answer is the scratch buffer holding the reply, or NULL.
 */
static void dgram_finish(struct dgram *g, enum session_dgram_end end, const char *why,
                         const struct buf *answer, bool withheld)
{
    struct session_dgram_result r = {
        .end = end,
        .why = why,
        .line = answer ? answer->data : NULL,
        .len = answer ? answer->len : 0,
        .withheld = withheld,
        .route = g->route,
        .route_len = g->route_len,
    };

    g->done(g->front, &r);
}

/* Ends the datagram with an error; answered (as far as it fits) when answer is true. */
static void dgram_error(struct dgram *g, enum session_dgram_end end, enum gw_err err,
                        const char *why, enum proto_op op, bool answer)
{
    struct buf *b = scratch(g->t);
    bool fits =
        answer && codec_line_error_within(b, err, why, proto_op_name(op),
                                          g->has_tag ? g->tag : NULL, g->tag_len, g->max_reply);

    dgram_finish(g, end, why, fits ? b : NULL, answer && !fits);
}

static void on_dgram_published(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    struct dgram *g = ctx;

    if (err != GW_OK) {
        dgram_error(g, SESSION_DGRAM_STORE, err, why, PROTO_PUB, g->ack);
    } else if (g->ack) {
        struct buf *b = scratch(g->t);
        bool fits = codec_line_ok_pub_within(b, m, g->tag, g->tag_len, g->max_reply);
        dgram_finish(g, SESSION_DGRAM_DONE, NULL, fits ? b : NULL, !fits);
    } else {
        dgram_finish(g, SESSION_DGRAM_DONE, NULL, NULL, false);
    }
    free(g);
}

/* Publishes req for g; what follows comes through on_dgram_published, or at once on a refusal. */
static void dgram_publish(struct dgram *g, enum gw_transport transport, const char *peer,
                          const struct core_publish_req *req)
{
    struct core_caller caller = {.transport = transport, .peer = peer};
    struct dgram *p = gw_xmalloc(sizeof(*p));
    char why[GW_ERRLEN];
    enum gw_err err;

    *p = *g;
    err = core_publish(g->t->core, &caller, req, on_dgram_published, p, why);
    if (err != GW_OK) {
        free(p);
        dgram_error(g, SESSION_DGRAM_REFUSED, err, why, PROTO_PUB, g->ack);
    }
}

void session_datagram(struct sessions *t, const struct session_dgram *d, const char *line,
                      size_t len)
{
    struct proto_cmd cmd;
    char why[GW_ERRLEN];
    enum gw_err err = proto_parse(line, len, &cmd, why);
    struct dgram g = {
        .t = t,
        .done = d->done,
        .front = d->front,
        .max_reply = d->max_reply,
        .route_len = d->route_len < SESSION_ROUTE_MAX ? d->route_len : SESSION_ROUTE_MAX,
    };

    if (g.route_len)
        memcpy(g.route, d->route, g.route_len);
    if (cmd.tag) {
        g.has_tag = true;
        g.tag_len = cmd.tag_len;
        memcpy(g.tag, cmd.tag, cmd.tag_len);
        g.tag[cmd.tag_len] = '\0';
    }
    g.ack = g.has_tag && cmd.op == PROTO_PUB;
    t->metrics->requests[d->transport]++;
    if (cmd.op == PROTO_NONE) {
        /*
         * Not a command (or a blank one): the datagram is a message body, as
         * it came. A command with a mistake has its op (codec_cmd_decode).
         */
        struct core_publish_req req = {
            .channel = d->channel,
            .channel_len = strlen(d->channel),
            .sender = d->peer,
            .sender_len = strlen(d->peer),
            .body = line,
            .body_len = len,
        };
        g.ack = g.has_tag = false;
        dgram_publish(&g, d->transport, d->peer, &req);
    } else if (err != GW_OK) {
        /* A PUB without a tag asked for no answer, not even an error; one with a bad tag did. */
        dgram_error(&g, SESSION_DGRAM_REFUSED, err, why, cmd.op,
                    cmd.op != PROTO_PUB || cmd.tag_given);
    } else if (cmd.op == PROTO_PUB && g.ack &&
               !codec_line_ok_pub_fits(g.tag, g.tag_len, g.max_reply)) {
        /*
         * Its ok could not be sent (never more bytes than the question): a
         * PUB stored unacknowledged would be sent again, and stored twice.
         * Not stored, and no error either, which would not fit.
         */
        dgram_finish(&g, SESSION_DGRAM_REFUSED,
                     "not stored: its tag, escaped, makes even the shortest ok larger than the "
                     "datagram",
                     NULL, true);
    } else if (cmd.op == PROTO_PUB) {
        struct core_publish_req req = pub_req_of(&cmd, NULL, 0);
        dgram_publish(&g, d->transport, d->peer, &req);
    } else if (cmd.op == PROTO_PING) {
        struct buf *b = scratch(t);
        put_pong(b, &cmd);
        if (b->len <= g.max_reply)
            dgram_finish(&g, SESSION_DGRAM_DONE, NULL, b, false);
        else
            dgram_finish(&g, SESSION_DGRAM_DONE, NULL, NULL, true);
    } else {
        char verb[16];
        const char *name = proto_op_name(cmd.op);
        size_t i;
        for (i = 0; name[i] && i < sizeof(verb) - 1; i++)
            verb[i] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
        verb[i] = '\0';
        snprintf(why, sizeof(why), "%s is not offered over %s: only PUB and PING are", verb,
                 gw_transport_name(d->transport));
        dgram_error(&g, SESSION_DGRAM_REFUSED, GW_E_UNKNOWN_COMMAND, why, cmd.op, true);
    }
    proto_cmd_release(&cmd);
}
