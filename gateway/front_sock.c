/*
 * front_sock.c - TCP sessions; see front_sock.h and docs/protocol.md.
 *
 * The push path follows redis: command handling and deliveries only append
 * to a session's output buffer and mark the session dirty; one pass before
 * the loop sleeps flushes what it can, pumps catch-up replays into the room
 * left, and frees sessions that died (teardown is always deferred to that
 * pass, so no call chain ever holds a freed session).
 *
 * Ordering: consecutive PUBs are submitted at once (that is what makes
 * pipelining fast) and their replies leave in command order as commits come
 * back. Any other command waits until every earlier reply is out, so HIST
 * sees an earlier PUB, and SUB's reply precedes its replay.
 */
#include "front_sock.h"

#include "acceptor.h"
#include "buf.h"
#include "codec_json.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "proto_line.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* PUBs in flight per session; past it the session's input waits. */
#define SESSION_WINDOW     256
/* Consecutive error replies after which a session is closed. */
#define SESSION_MAX_ERRORS 10
/* A closing or slow session gets this long to take its last lines. */
#define SESSION_LINGER_MS  10000
/* Unparsed input held per session before reading pauses. */
#define SESSION_INPUT_HOLD (256 * 1024)
/* Stored messages read per catch-up step. */
#define PUMP_BATCH         256
#define READ_CHUNK         (64 * 1024)

enum session_state {
    S_OPEN,    /* reading commands */
    S_CLOSING, /* last lines queued: close once they are out */
    S_SLOW,    /* slow consumer: the farewell line is queued */
    S_DEAD     /* closed; freed in the next pass */
};

struct session;

/* A reply slot, in command order. It outlives its session if a commit is still out. */
struct reply {
    struct reply *next;
    struct session *s; /* NULL once the session is gone */
    bool done;
    struct buf line;
    size_t tag_len;
    char tag[PROTO_TAG_MAX + 1];
    bool has_tag;
};

struct sub_slot {
    struct session *s;
    struct core_sub *sub;
    char channel[GW_CHANNEL_MAX + 1];
    int64_t last_seq; /* the last seq queued to the session */
};

struct session {
    struct session *prev, *next; /* all sessions */
    struct session *next_dirty;
    struct front_sock *fs;
    int fd;
    enum session_state state;
    char id[17];
    char peer[64];
    struct buf in;
    size_t in_off;
    struct buf out;
    size_t out_off;
    struct reply *rhead, *rtail;
    size_t inflight; /* PUBs submitted, not yet answered */
    struct sub_slot **subs;
    size_t nsubs;
    unsigned errors; /* consecutive */
    uint64_t last_send_ms, last_cmd_ms, linger_until_ms, opened_ms;
    bool dirty;
    bool want_write; /* EPOLLOUT is on */
    bool reading;    /* EPOLLIN is on */
    bool bye_when_drained;
    int send_errno; /* the connection broke during a send that could not close it */
};

struct front_sock {
    struct core *core;
    struct loop *loop;
    struct acceptor *acceptor; /* NULL once quiescing */
    struct front_sock_options o;
    struct metrics *metrics;
    struct session all; /* list head */
    size_t nsessions;
    struct session *dirty;
    uint64_t next_tick_ms;
    unsigned tick_ms;
    bool quiescing;
    char server[48];
};

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
    if (s->dirty)
        return;
    s->dirty = true;
    s->next_dirty = s->fs->dirty;
    s->fs->dirty = s;
}

static size_t out_pending(const struct session *s)
{
    return s->out.len - s->out_off;
}

/* After appending a line to s->out. */
static void sent_line(struct session *s)
{
    s->last_send_ms = now_ms();
    mark_dirty(s);
}

static void update_events(struct session *s)
{
    unsigned ev = (s->reading ? LOOP_READ : 0) | (s->want_write ? LOOP_WRITE : 0);
    loop_mod_fd(s->fs->loop, s->fd, ev);
}

static void set_reading(struct session *s, bool on)
{
    if (s->reading == on)
        return;
    s->reading = on;
    update_events(s);
}

/* Closes the connection now; the struct is freed in the next pass. */
static void session_kill(struct session *s, const char *why)
{
    if (s->state == S_DEAD)
        return;
    log_info("tcp session %s %s closed: %s (%llu ms)", s->id, s->peer, why,
             (unsigned long long)(now_ms() - s->opened_ms));
    s->state = S_DEAD;
    log_trace("tcp conn %s close fd %d: %s", s->id, s->fd, why);
    loop_del_fd(s->fs->loop, s->fd);
    close(s->fd);
    s->fd = -1;
    for (size_t i = 0; i < s->nsubs; i++) {
        core_unsubscribe(s->fs->core, s->subs[i]->sub);
        free(s->subs[i]);
    }
    s->nsubs = 0;
    for (struct reply *r = s->rhead, *next; r; r = next) {
        next = r->next;
        if (r->done) {
            buf_release(&r->line);
            free(r);
        } else {
            r->s = NULL; /* its commit callback frees it */
        }
    }
    s->rhead = s->rtail = NULL;
    s->prev->next = s->next;
    s->next->prev = s->prev;
    s->fs->nsessions--;
    s->fs->metrics->open[MT_TCP]--;
    mark_dirty(s);
}

static void session_free(struct session *s)
{
    buf_release(&s->in);
    buf_release(&s->out);
    free(s->subs);
    free(s);
}

/* The last line is queued: close once it is out (or after the linger time). */
static void session_close_after_flush(struct session *s)
{
    if (s->state != S_OPEN)
        return;
    s->state = S_CLOSING;
    s->linger_until_ms = now_ms() + SESSION_LINGER_MS;
    set_reading(s, false);
    mark_dirty(s);
}

/* ---- replies ---- */

/* A reply slot, not yet in the session's queue. */
static struct reply *reply_alloc(struct session *s, const struct proto_cmd *cmd)
{
    struct reply *r = gw_xcalloc(1, sizeof(*r));
    r->s = s;
    buf_init(&r->line);
    if (cmd && cmd->tag) {
        r->has_tag = true;
        r->tag_len = cmd->tag_len;
        memcpy(r->tag, cmd->tag, cmd->tag_len);
    }
    return r;
}

static void reply_push(struct session *s, struct reply *r)
{
    if (s->rtail)
        s->rtail->next = r;
    else
        s->rhead = r;
    s->rtail = r;
}

static struct reply *reply_new(struct session *s, const struct proto_cmd *cmd)
{
    struct reply *r = reply_alloc(s, cmd);
    reply_push(s, r);
    return r;
}

/* Moves every finished reply at the head of the queue to the output. */
static void flush_replies(struct session *s)
{
    while (s->rhead && s->rhead->done) {
        struct reply *r = s->rhead;
        s->rhead = r->next;
        if (!s->rhead)
            s->rtail = NULL;
        buf_append(&s->out, r->line.data, r->line.len);
        buf_release(&r->line);
        free(r);
        sent_line(s);
    }
}

/*
 * Answers a command with an error, in order; counts it, and closes the
 * session at SESSION_MAX_ERRORS in a row.
 */
static void reply_error(struct session *s, const struct proto_cmd *cmd, enum gw_err err,
                        const char *why)
{
    struct buf *out = &s->out;
    struct reply *r = NULL;
    const char *tag = cmd && cmd->tag ? cmd->tag : NULL;

    if (s->rhead) {
        r = reply_new(s, cmd);
        out = &r->line;
        r->done = true;
    }
    codec_line_error(out, err, why, cmd ? proto_op_name(cmd->op) : NULL, tag,
                     tag ? cmd->tag_len : 0);
    if (++s->errors >= SESSION_MAX_ERRORS) {
        char msg[96];
        snprintf(msg, sizeof(msg), "%d errors in a row: closing the session", SESSION_MAX_ERRORS);
        codec_line_error(out, GW_E_TOO_MANY_ERRORS, msg, NULL, NULL, 0);
        session_close_after_flush(s);
    }
    if (!r)
        sent_line(s);
}

/* ---- deliveries ---- */

static bool try_send(struct session *s);

static void go_slow(struct session *s)
{
    const char **names = gw_xcalloc(s->nsubs ? s->nsubs : 1, sizeof(*names));
    int64_t *seqs = gw_xcalloc(s->nsubs ? s->nsubs : 1, sizeof(*seqs));
    char msg[160];

    for (size_t i = 0; i < s->nsubs; i++) {
        names[i] = s->subs[i]->channel;
        seqs[i] = s->subs[i]->last_seq;
    }
    snprintf(msg, sizeof(msg),
             "more than %zu bytes queued for this session: closing; resume with SUB <channel> "
             "<last_seq>",
             s->fs->o.max_outbuf);
    codec_line_slow_consumer(&s->out, msg, names, seqs, s->nsubs);
    free(names);
    free(seqs);
    /* Subscriptions end in the next pass: we may be inside a fan-out now. */
    s->state = S_SLOW;
    s->linger_until_ms = now_ms() + SESSION_LINGER_MS;
    log_warn("tcp session %s %s: slow consumer, %zu bytes queued", s->id, s->peer, out_pending(s));
    sent_line(s);
}

static void on_deliver(void *ctx, const struct gw_msg *m)
{
    struct sub_slot *slot = ctx;
    struct session *s = slot->s;

    /* A closing session's last line is its farewell: nothing follows it. */
    if (s->state != S_OPEN)
        return;
    codec_line_message(&s->out, m);
    slot->last_seq = m->seq;
    s->fs->metrics->delivered[MT_TCP]++;
    if (m->accepted_us) /* live, not a replay from the store */
        metrics_hist_observe(&s->fs->metrics->delivery_seconds[MT_TCP],
                             (double)(loop_now_us() - m->accepted_us) / 1e6);
    sent_line(s);
    /* Over the limit is what the peer has not taken: let the socket take what it can first. */
    if (out_pending(s) > s->fs->o.max_outbuf && try_send(s) && out_pending(s) > s->fs->o.max_outbuf)
        go_slow(s);
}

/* ---- commands ---- */

static void on_published(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    struct reply *r = ctx;
    struct session *s = r->s;
    const char *tag = r->has_tag ? r->tag : NULL;

    if (!s) {
        buf_release(&r->line);
        free(r);
        return;
    }
    if (err == GW_OK)
        codec_line_ok_pub(&r->line, m, tag, r->tag_len);
    else
        codec_line_error(&r->line, err, why, "pub", tag, r->tag_len);
    r->done = true;
    s->inflight--;
    mark_dirty(s);
}

static struct sub_slot *find_sub(struct session *s, const char *ch, size_t len, size_t *index)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        if (strlen(s->subs[i]->channel) == len && memcmp(s->subs[i]->channel, ch, len) == 0) {
            if (index)
                *index = i;
            return s->subs[i];
        }
    }
    return NULL;
}

static void cmd_pub(struct session *s, const struct proto_cmd *cmd)
{
    struct core_publish_req req = {
        .channel = cmd->channel,
        .channel_len = cmd->channel_len,
        .sender = cmd->sender,
        .sender_len = cmd->sender_len,
        .body = cmd->body,
        .body_len = cmd->body_len,
        .via = GW_VIA_TCP,
    };
    char why[GW_ERRLEN];
    struct reply *r = reply_alloc(s, cmd);
    enum gw_err err = core_publish(s->fs->core, &req, on_published, r, why);

    if (err != GW_OK) {
        free(r);
        reply_error(s, cmd, err, why);
        return;
    }
    reply_push(s, r);
    s->inflight++;
    s->errors = 0;
}

static void cmd_sub(struct session *s, const struct proto_cmd *cmd, const char *tag)
{
    struct sub_slot *slot = find_sub(s, cmd->channel, cmd->channel_len, NULL);
    struct core_sub *sub;
    int64_t since, top;
    char why[GW_ERRLEN];
    enum gw_err err;

    if (!slot && s->nsubs >= s->fs->o.max_subs) {
        snprintf(why, sizeof(why), "at most %u subscriptions per session", s->fs->o.max_subs);
        reply_error(s, cmd, GW_E_TOO_MANY_SUBS, why);
        return;
    }
    if (!slot) {
        slot = gw_xcalloc(1, sizeof(*slot));
        slot->s = s;
    }
    err = core_subscribe(s->fs->core, cmd->channel, cmd->channel_len, cmd->has_since, cmd->since,
                         on_deliver, slot, &sub, &since, &top, why);
    if (err != GW_OK) {
        if (!slot->sub)
            free(slot);
        reply_error(s, cmd, err, why);
        return;
    }
    if (slot->sub) {
        /* SUB again: start over from the new cursor. */
        core_unsubscribe(s->fs->core, slot->sub);
    } else {
        struct sub_slot **grown = gw_xrealloc(s->subs, (s->nsubs + 1) * sizeof(*grown));
        s->subs = grown;
        s->subs[s->nsubs++] = slot;
        memcpy(slot->channel, cmd->channel, cmd->channel_len);
        slot->channel[cmd->channel_len] = '\0';
    }
    slot->sub = sub;
    slot->last_seq = since;
    codec_line_ok_sub(&s->out, slot->channel, since, top, tag, cmd->tag_len);
}

static void cmd_unsub(struct session *s, const struct proto_cmd *cmd, const char *tag)
{
    size_t i;
    struct sub_slot *slot = find_sub(s, cmd->channel, cmd->channel_len, &i);
    char why[GW_ERRLEN];

    if (!slot) {
        snprintf(why, sizeof(why), "not subscribed to '%.*s'", (int)cmd->channel_len, cmd->channel);
        reply_error(s, cmd, GW_E_NOT_SUBSCRIBED, why);
        return;
    }
    core_unsubscribe(s->fs->core, slot->sub);
    s->subs[i] = s->subs[--s->nsubs];
    codec_line_ok_unsub(&s->out, slot->channel, tag, cmd->tag_len);
    free(slot);
}

static void cmd_hist(struct session *s, const struct proto_cmd *cmd, const char *tag)
{
    char why[GW_ERRLEN], channel[GW_CHANNEL_MAX + 1];
    struct gw_msg *msgs;
    size_t n;
    int64_t next;
    enum gw_err err =
        core_history(s->fs->core, cmd->channel, cmd->channel_len, cmd->has_since ? cmd->since : 0,
                     cmd->has_limit ? cmd->limit : GW_LIMIT_DEFAULT, &msgs, &n, &next, why);

    if (err != GW_OK) {
        reply_error(s, cmd, err, why);
        return;
    }
    memcpy(channel, cmd->channel, cmd->channel_len);
    channel[cmd->channel_len] = '\0';
    codec_line_ok_hist(&s->out, channel, msgs, n, next, tag, cmd->tag_len);
    gw_msgs_free(msgs, n);
}

static void cmd_channels(struct session *s, const struct proto_cmd *cmd, const char *tag)
{
    struct gw_channel_info *chans;
    size_t n;
    char why[GW_ERRLEN];
    enum gw_err err = core_channels(s->fs->core, &chans, &n, why);

    if (err != GW_OK) {
        reply_error(s, cmd, err, why);
        return;
    }
    codec_line_ok_channels(&s->out, chans, n, tag, cmd->tag_len);
    free(chans);
}

/*
 * Runs a command that is not a PUB; only called with no reply outstanding,
 * so its reply goes straight to the output.
 */
static void run_sync(struct session *s, const struct proto_cmd *cmd)
{
    const char *tag = cmd->tag;
    size_t before = s->out.len;
    unsigned errors = s->errors;

    switch (cmd->op) {
    case PROTO_HELP:
        codec_line_ok_help(&s->out, proto_usage, tag, cmd->tag_len);
        break;
    case PROTO_SUB:
        cmd_sub(s, cmd, tag);
        break;
    case PROTO_UNSUB:
        cmd_unsub(s, cmd, tag);
        break;
    case PROTO_HIST:
        cmd_hist(s, cmd, tag);
        break;
    case PROTO_CHANNELS:
        cmd_channels(s, cmd, tag);
        break;
    case PROTO_PING:
        codec_line_pong(&s->out, cmd->token, cmd->token_len, realtime_us(), tag, cmd->tag_len);
        break;
    case PROTO_PONG:
        break;
    case PROTO_QUIT:
        codec_line_bye(&s->out, "quit", tag, cmd->tag_len);
        session_close_after_flush(s);
        break;
    case PROTO_PUB:
    case PROTO_NONE:
    case PROTO__COUNT:
        GW_ASSERT(0);
    }
    if (s->errors == errors)
        s->errors = 0; /* it succeeded */
    if (s->out.len != before)
        sent_line(s);
}

/*
 * Consumes complete lines from the input while they can run now. Stops at a
 * non-PUB command while replies are outstanding, or when the PUB window is
 * full; the line stays in the buffer for later.
 */
static void process_input(struct session *s)
{
    while (s->state == S_OPEN && !s->bye_when_drained) {
        size_t line_len, consumed;
        const char *p = s->in.data ? s->in.data + s->in_off : ""; /* no arithmetic on NULL */
        enum proto_frame f =
            proto_frame(p, s->in.len - s->in_off, s->fs->o.max_line, &line_len, &consumed);
        struct proto_cmd cmd;
        char why[GW_ERRLEN];
        enum gw_err err;

        if (f == PROTO_NEED_MORE)
            break;
        if (f == PROTO_TOO_LONG) {
            snprintf(why, sizeof(why), "a line is at most %zu bytes: closing the session",
                     s->fs->o.max_line);
            if (s->rhead) {
                struct reply *r = reply_new(s, NULL);
                codec_line_error(&r->line, GW_E_LINE_TOO_LONG, why, NULL, NULL, 0);
                r->done = true;
            } else {
                codec_line_error(&s->out, GW_E_LINE_TOO_LONG, why, NULL, NULL, 0);
                sent_line(s);
            }
            s->in_off = s->in.len;
            session_close_after_flush(s);
            break;
        }
        err = proto_parse(p, line_len, &cmd, why);
        if (err == GW_OK && cmd.op == PROTO_NONE) {
            proto_cmd_release(&cmd);
            s->in_off += consumed;
            continue;
        }
        bool wait = err == GW_OK &&
                    (cmd.op == PROTO_PUB ? s->inflight >= SESSION_WINDOW : s->rhead != NULL);
        if (wait) {
            proto_cmd_release(&cmd);
            break; /* wait for the replies before it */
        }
        s->in_off += consumed;
        s->last_cmd_ms = now_ms();
        s->fs->metrics->requests[MT_TCP]++;
        if (err != GW_OK)
            reply_error(s, &cmd, err, why);
        else if (cmd.op == PROTO_PUB)
            cmd_pub(s, &cmd);
        else
            run_sync(s, &cmd);
        proto_cmd_release(&cmd);
    }
    if (s->in_off == s->in.len) {
        buf_clear(&s->in);
        s->in_off = 0;
    } else if (s->in_off > READ_CHUNK) {
        memmove(s->in.data, s->in.data + s->in_off, s->in.len - s->in_off);
        s->in.len -= s->in_off;
        s->in_off = 0;
    }
    if (s->state == S_OPEN)
        set_reading(s, s->in.len - s->in_off < SESSION_INPUT_HOLD);
}

/* ---- I/O ---- */

/*
 * Sends what the socket takes now. Returns false on a broken connection
 * without closing it: callers inside a fan-out must not end subscriptions,
 * so only the top-level callers (flush_out) act on it.
 */
static bool try_send(struct session *s)
{
    while (out_pending(s)) {
        ssize_t n = send(s->fd, s->out.data + s->out_off, out_pending(s), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            s->send_errno = errno;
            return false;
        }
        s->out_off += (size_t)n;
        s->fs->metrics->bytes_out[MT_TCP] += (size_t)n;
        log_trace("tcp conn %s send %zd bytes", s->id, n);
    }
    if (!out_pending(s)) {
        buf_clear(&s->out);
        s->out_off = 0;
    } else if (s->out_off > READ_CHUNK && s->out_off > s->out.len / 2) {
        memmove(s->out.data, s->out.data + s->out_off, out_pending(s));
        s->out.len -= s->out_off;
        s->out_off = 0;
    }
    return true;
}

static void flush_out(struct session *s)
{
    if (s->send_errno || !try_send(s)) {
        session_kill(s, strerror(s->send_errno));
        return;
    }
    bool want = out_pending(s) > 0;
    if (want != s->want_write) {
        s->want_write = want;
        update_events(s);
    }
    if (!want && (s->state == S_CLOSING || s->state == S_SLOW))
        session_kill(s, s->state == S_SLOW ? "slow consumer" : "closed by the server");
}

static void read_input(struct session *s)
{
    size_t got = 0;

    while (s->state == S_OPEN && got < 4 * READ_CHUNK) {
        buf_grow(&s->in, READ_CHUNK);
        ssize_t n = recv(s->fd, s->in.data + s->in.len, READ_CHUNK, 0);
        if (n == 0) {
            log_trace("tcp conn %s recv end of stream", s->id);
            session_kill(s, "closed by the client");
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                session_kill(s, strerror(errno));
            break;
        }
        s->in.len += (size_t)n;
        s->in.data[s->in.len] = '\0';
        s->fs->metrics->bytes_in[MT_TCP] += (size_t)n;
        log_trace("tcp conn %s recv %zd bytes", s->id, n);
        got += (size_t)n;
        process_input(s);
    }
}

static void on_session_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct session *s = ctx;

    (void)loop;
    (void)fd;
    if (events & LOOP_READ) {
        if (!s->reading) {
            /* Not watching input: only an error or a hang-up gets here. */
            session_kill(s, "connection lost");
            return;
        }
        read_input(s);
    }
    if ((events & LOOP_WRITE) && s->state != S_DEAD)
        flush_out(s);
    if (s->state != S_DEAD)
        mark_dirty(s);
}

/* Catch-up replay for subscriptions that are not live yet, into the room left. */
static void pump(struct session *s)
{
    size_t low_water = s->fs->o.max_outbuf / 4;

    for (size_t i = 0; i < s->nsubs && s->state == S_OPEN; i++) {
        struct sub_slot *slot = s->subs[i];
        char why[GW_ERRLEN];

        while (!core_sub_live(slot->sub) && out_pending(s) < low_water && s->state == S_OPEN) {
            if (core_sub_pump(s->fs->core, slot->sub, PUMP_BATCH, low_water - out_pending(s),
                              why) != GW_OK) {
                log_error("tcp session %s: replay of '%s' failed: %s", s->id, slot->channel, why);
                codec_line_error(&s->out, GW_E_STORE, why, "sub", NULL, 0);
                sent_line(s);
                session_close_after_flush(s);
            }
        }
        if (!core_sub_live(slot->sub))
            mark_dirty(s); /* more when there is room */
    }
}

static bool catching_up(const struct session *s)
{
    for (size_t i = 0; i < s->nsubs; i++) {
        if (!core_sub_live(s->subs[i]->sub))
            return true;
    }
    return false;
}

static void service(struct session *s)
{
    if (s->state == S_SLOW && s->nsubs) {
        for (size_t i = 0; i < s->nsubs; i++) {
            core_unsubscribe(s->fs->core, s->subs[i]->sub);
            free(s->subs[i]);
        }
        s->nsubs = 0;
        set_reading(s, false);
    }
    if (s->state == S_OPEN || s->state == S_CLOSING)
        flush_replies(s);
    if (s->state == S_OPEN) {
        process_input(s);
        if (s->bye_when_drained && !s->rhead) {
            codec_line_bye(&s->out, "shutdown", NULL, 0);
            sent_line(s);
            session_close_after_flush(s);
        }
    }
    flush_out(s);
    if (s->state == S_OPEN && catching_up(s)) {
        pump(s);
        flush_out(s);
    }
}

/* ---- timers ---- */

static void tick(struct front_sock *fs, uint64_t now)
{
    uint64_t hb = (uint64_t)fs->o.heartbeat * 1000, idle = (uint64_t)fs->o.idle_timeout * 1000;

    for (struct session *s = fs->all.next, *next; s != &fs->all; s = next) {
        next = s->next;
        if ((s->state == S_CLOSING || s->state == S_SLOW) && now >= s->linger_until_ms) {
            session_kill(s, "did not read its last lines in time");
            continue;
        }
        if (s->state != S_OPEN)
            continue;
        if (s->nsubs == 0 && !s->rhead && now - s->last_cmd_ms >= idle) {
            char why[96];
            snprintf(why, sizeof(why), "no command and no subscription for %u s: closing",
                     fs->o.idle_timeout);
            codec_line_error(&s->out, GW_E_IDLE, why, NULL, NULL, 0);
            sent_line(s);
            session_close_after_flush(s);
        } else if (now - s->last_send_ms >= hb) {
            codec_line_ping(&s->out, realtime_us());
            sent_line(s);
        }
    }
}

static int before_sleep(struct loop *loop, void *ctx)
{
    struct front_sock *fs = ctx;
    uint64_t now = now_ms();
    struct session *list;
    int timeout;

    (void)loop;
    if (now >= fs->next_tick_ms) {
        tick(fs, now);
        fs->next_tick_ms = now + fs->tick_ms;
    }
    list = fs->dirty;
    fs->dirty = NULL;
    while (list) {
        struct session *s = list;
        list = s->next_dirty;
        s->dirty = false;
        if (s->state != S_DEAD)
            service(s);
        if (s->state == S_DEAD && !s->dirty)
            session_free(s);
    }
    /* Sessions marked again above (replay left to do) run on the next turn. */
    timeout = (int)(fs->next_tick_ms - now);
    return fs->dirty ? 0 : timeout;
}

/* ---- accepting ---- */

static void tune_socket(struct front_sock *fs, int fd)
{
    int one = 1, idle = (int)fs->o.heartbeat, intvl = idle / 3 ? idle / 3 : 1, cnt = 3;
    unsigned user_timeout = fs->o.idle_timeout * 1000u;

    /* Replies and pushes are whole lines: send them now. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    /* A vanished peer: keepalive probes when silent, unacknowledged data otherwise. */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl));
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt));
    setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &user_timeout, sizeof(user_timeout));
}

static void peer_name(int fd, char *out, size_t cap)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    char host[INET6_ADDRSTRLEN] = "?";
    int port = 0;

    if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0) {
        if (ss.ss_family == AF_INET) {
            struct sockaddr_in *a = (struct sockaddr_in *)&ss;
            inet_ntop(AF_INET, &a->sin_addr, host, sizeof(host));
            port = ntohs(a->sin_port);
        } else if (ss.ss_family == AF_INET6) {
            struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
            inet_ntop(AF_INET6, &a->sin6_addr, host, sizeof(host));
            port = ntohs(a->sin6_port);
        }
    }
    snprintf(out, cap, "%s:%d", host, port);
}

static void refuse(int fd, unsigned max)
{
    struct buf line = BUF_INIT;
    char why[96];

    snprintf(why, sizeof(why), "%u sessions are open already: try again later", max);
    codec_line_error(&line, GW_E_TOO_MANY_SESSIONS, why, NULL, NULL, 0);
    /* Best effort on a fresh socket: the line fits in its send buffer. */
    ssize_t n = send(fd, line.data, line.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
    close(fd);
    buf_release(&line);
}

static void session_open(struct front_sock *fs, int fd)
{
    struct session *s = gw_xcalloc(1, sizeof(*s));
    unsigned char rnd[8];

    s->fs = fs;
    s->fd = fd;
    s->state = S_OPEN;
    buf_init(&s->in);
    buf_init(&s->out);
    if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != (ssize_t)sizeof(rnd)) {
        uint64_t x = loop_now_us() ^ ((uint64_t)(uintptr_t)s << 16);
        memcpy(rnd, &x, sizeof(rnd));
    }
    for (size_t i = 0; i < sizeof(rnd); i++)
        snprintf(s->id + 2 * i, 3, "%02x", rnd[i]);
    peer_name(fd, s->peer, sizeof(s->peer));
    s->opened_ms = s->last_cmd_ms = now_ms();
    tune_socket(fs, fd);
    if (loop_add_fd(fs->loop, fd, LOOP_READ, on_session_io, s) < 0) {
        log_error("tcp: cannot watch a new session: %s", strerror(errno));
        close(fd);
        free(s);
        return;
    }
    s->reading = true;
    s->next = &fs->all;
    s->prev = fs->all.prev;
    fs->all.prev->next = s;
    fs->all.prev = s;
    fs->nsessions++;
    fs->metrics->open[MT_TCP]++;
    log_trace("tcp conn %s accept fd %d from %s", s->id, fd, s->peer);
    codec_line_hello(&s->out, s->id, fs->server, fs->o.heartbeat);
    sent_line(s);
    log_debug("tcp session %s %s opened", s->id, s->peer);
}

static void on_accept(void *ctx, int c, const struct sockaddr *addr, socklen_t addrlen)
{
    struct front_sock *fs = ctx;

    (void)addr;
    (void)addrlen;
    if (fs->nsessions >= fs->o.max_sessions) {
        log_trace("tcp accept fd %d, refused (%u sessions open), close", c, fs->o.max_sessions);
        refuse(c, fs->o.max_sessions);
    } else {
        session_open(fs, c);
    }
}

struct front_sock *front_sock_new(struct core *core, struct loop *loop, int listen_fd,
                                  const struct front_sock_options *opts, char why[GW_ERRLEN])
{
    struct front_sock *fs = gw_xcalloc(1, sizeof(*fs));
    unsigned shortest = opts->heartbeat < opts->idle_timeout ? opts->heartbeat : opts->idle_timeout;

    fs->core = core;
    fs->metrics = core_metrics(core);
    fs->loop = loop;
    fs->o = *opts;
    fs->all.next = fs->all.prev = &fs->all;
    /* Timers fire within a quarter of the shortest period, at most once a second. */
    fs->tick_ms = shortest * 250 < 1000 ? shortest * 250 : 1000;
    fs->next_tick_ms = now_ms() + fs->tick_ms;
    snprintf(fs->server, sizeof(fs->server), "visavis %s", VISAVIS_VERSION);
    if (!(fs->acceptor = acceptor_new(loop, listen_fd, "tcp", on_accept, fs, why))) {
        free(fs);
        return NULL;
    }
    loop_add_hook(loop, before_sleep, fs);
    return fs;
}

void front_sock_quiesce(struct front_sock *fs)
{
    if (fs->quiescing)
        return;
    fs->quiescing = true;
    acceptor_free(fs->acceptor);
    fs->acceptor = NULL;
    for (struct session *s = fs->all.next; s != &fs->all; s = s->next) {
        s->bye_when_drained = true;
        mark_dirty(s);
    }
}

size_t front_sock_sessions(const struct front_sock *fs)
{
    return fs->nsessions;
}

void front_sock_free(struct front_sock *fs)
{
    if (!fs)
        return;
    while (fs->all.next != &fs->all)
        session_kill(fs->all.next, "gateway stopped");
    while (fs->dirty) {
        struct session *s = fs->dirty;
        fs->dirty = s->next_dirty;
        session_free(s);
    }
    acceptor_free(fs->acceptor);
    free(fs);
}
