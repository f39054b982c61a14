/*
 * front_ws.c - WebSocket sessions as frames; see front_ws.h.
 *
 * wslay's event API does the framing: unmasked client frames, bad opcodes,
 * bad continuation, control frames too long or fragmented (close 1002),
 * text that is not UTF-8 (1007), pings answered with pongs, the close
 * handshake. It runs without buffering: this file puts each text message
 * together itself, bounded by --max-line before its end arrives (1009), so
 * the close says why; a binary message is refused (1003). Messages the
 * session cannot take yet are kept in order and reading stops (wslay reads
 * nothing while they wait) until the session asks for input again.
 *
 * Output: the session's queue is the only buffer. Each queued line becomes
 * one text message. While wslay has nothing under way (no control frame
 * queued, no message half sent), whole lines are framed here: a 2-10 byte
 * header (RFC 6455 5.2, unmasked, FIN) and the line, gathered for one
 * send, so a subscriber that keeps up costs neither wslay's context nor a
 * second copy per message. A line over 4 KiB, or one behind a control
 * frame, is read by wslay from the head of the queue as it sends (a
 * "fragmented" message source): a text frame and continuations, sent as
 * the session counts them out. Either way a line of up to 4 KiB is one
 * frame, a longer one a text frame and continuations.
 *
 * An idle connection costs little: wslay's context holds two 4 KiB buffers,
 * so it exists only while frames move. It is dropped whenever nothing is
 * half read or half sent (after a read, a send, a heartbeat), and made
 * again on the next byte either way. Whether wslay holds part of a frame is known by counting: the
 * bytes it was given against the bytes of the whole frames it reported
 * (RFC 6455 5.2 fixes a frame's header length from its payload length, and
 * wslay refuses lengths not written the shortest way).
 *
 * Close: the tier's reason (ws_proto.h) becomes the close frame; once it is
 * out, the socket goes to the lingering close (linger.h) as front_tcp's do:
 * our side shut, the peer's input dropped until it closes. Sending the frame
 * and lingering share one LINGER_CLOSE_MS from the session's end.
 */
#include "front_ws.h"

#include "buf.h"
#include "input_budget.h"
#include "linger.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "session.h"
#include "ws_proto.h"
#include "ws_wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <wslay/wslay.h>

/* Bytes read from one connection per wake-up, so one busy client cannot hold the loop. */
#define READ_BUDGET     (256 * 1024)
/* Bytes of messages held for the session before input stops (wants_input). */
#define HELD_MAX        (16 * 1024)
/* From the session's end, the close frame goes out and input is dropped this long at most. */
#define LINGER_CLOSE_MS 2000
/* The longest line framed here as one frame: wslay's own frame size, so the wire is the same. */
#define OWN_FRAME_MAX   4096
/* Heartbeats without a frame from the peer after which it is taken for gone. */
#define SILENT_BEATS    3
/* The farewell a slow consumer gets as its last text message (codec_line_slow_consumer). */
#define SLOW_FAREWELL   "{\"type\":\"error\",\"code\":\"slow_consumer\""

/* What a record of c->held is: a message for the session, or the error that ended input. */
enum rec_kind { REC_MESSAGE, REC_ERROR };

struct rec_head {
    size_t len; /* bytes that follow; an error's why is NUL-terminated */
    enum rec_kind kind;
    enum gw_err err;
};

struct wconn {
    struct front_ws *fw;
    struct session *s; /* NULL once the tier closed it */
    wslay_event_context_ptr ws;
    struct ws_wire w; /* the socket: input, the batch, what waits */
    char sid[17];     /* the session's id, for traces after it is gone */
    struct buf msg;   /* the text message being put together */
    size_t msg_held;  /* its bytes counted in --max-input-memory (input_budget.h) */
    struct buf held;  /* records (struct rec_head + bytes) the session has yet to take */
    size_t held_off;
    uint64_t in_fed, in_framed; /* bytes given to wslay; bytes of the whole frames it reported */
    uint64_t frame_len;         /* the current frame's bytes, header included */
    uint64_t last_recv_ms;      /* the peer's last byte */
    uint8_t frame_op;
    bool frame_fin;
    bool in_fragmented;  /* a text message's continuation frames are due */
    bool close_one_byte; /* the peer's close frame had a 1-byte body: half a code */
    bool reading;        /* EPOLLIN is on */
    bool want_write;     /* EPOLLOUT is on */
    bool held_back;      /* the session refused a message: wait for resume_input */
    bool pongs_waiting;  /* reading stopped for WS_CONTROL_BACKLOG: resumes once they are out */
    bool input_done;     /* no more input is offered: an error, a close, the end */
    bool end_when_taken; /* the peer closed: the session ends once it took the messages held */
    bool end_of_stream;  /* ... by ending its stream, no close frame: it may still read replies */
    bool omsg_open;      /* wslay is reading a line from the session's queue */
    bool omsg_started;   /* ... and has read its first bytes */
    bool closing;        /* the tier closed the session: the close frame is under way */
    char *why;           /* why the front ended input, for the close reason */
    char *farewell;      /* a slow consumer's last line, for its close reason */
    size_t farewell_len;
    struct loop_timer *linger; /* closing: the end of LINGER_CLOSE_MS */
    uint64_t linger_end_ms;    /* ... when that is, on the loop clock */
    struct wconn *prev, *next; /* fw->conns */
};

struct front_ws {
    struct sessions *tier;
    struct loop *loop;
    struct front_ws_options o;
    struct wconn *conns; /* every connection, open or sending its close frame */
    size_t nsessions;
    size_t nlingering;           /* connections sending their close frame */
    struct lingering *lingering; /* the close frame is out: draining input until the peer closes */
    bool quiescing;
    bool adopted;   /* a session opened since the tier's last pass */
    struct buf out; /* the frames of the connection being sent, gathered for one send() */
};

static bool pump_out(struct wconn *c);
static void maybe_drop_ctx(struct wconn *c);
static void conn_free(struct wconn *c);

static const char *op_name(uint8_t op)
{
    switch (op) {
    case WSLAY_CONTINUATION_FRAME:
        return "continuation";
    case WSLAY_TEXT_FRAME:
        return "text";
    case WSLAY_BINARY_FRAME:
        return "binary";
    case WSLAY_CONNECTION_CLOSE:
        return "close";
    case WSLAY_PING:
        return "ping";
    case WSLAY_PONG:
        return "pong";
    }
    return "reserved";
}

/* Whether the control frames waiting to be sent hold reading back (WS_CONTROL_BACKLOG). */
static bool control_backlog(const struct wconn *c)
{
    return c->ws &&
           ws_control_weight(wslay_event_get_queued_msg_length(c->ws),
                             wslay_event_get_queued_msg_count(c->ws)) >= WS_CONTROL_BACKLOG;
}

/* Whether input is wanted: the session takes it, it has not ended, the peer reads its pongs. */
static bool wants_input(const struct wconn *c)
{
    /*
     * Messages held past HELD_MAX: read no more until the session takes
     * them. A socket read's worth of small frames would otherwise become
     * tens of thousands of held messages at once.
     */
    return !c->held_back && !c->input_done && !control_backlog(c) &&
           c->held.len - c->held_off < HELD_MAX;
}

static void update_events(struct wconn *c)
{
    unsigned ev = (c->reading ? LOOP_READ : 0) | (c->want_write ? LOOP_WRITE : 0);
    loop_mod_fd(c->fw->loop, c->w.fd, ev);
}

static void set_reading(struct wconn *c, bool on)
{
    if (c->reading == on)
        return;
    c->reading = on;
    update_events(c);
}

static void set_writing(struct wconn *c, bool on)
{
    if (c->want_write == on)
        return;
    c->want_write = on;
    update_events(c);
}

/* ---- wslay's callbacks ---- */

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct wconn *c = user;
    bool from_socket;
    ssize_t n;

    (void)flags;
    if (control_backlog(c))
        c->pongs_waiting = true;
    if (!wants_input(c)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if ((n = ws_wire_recv(&c->w, ctx, buf, len, READ_BUDGET, &from_socket)) <= 0) {
        if (c->w.eof) {
            log_trace("ws conn %s recv end of stream", c->sid);
            /*
             * Not a failure to wslay, which would queue a close frame at
             * once and send nothing after it: the peer may have only
             * half-closed, and the replies to what it sent go first.
             */
            wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        }
        return n;
    }
    c->in_fed += (uint64_t)n;
    if (from_socket) {
        c->last_recv_ms = loop_now_ms();
        if (c->s)
            session_received(c->s, (size_t)n);
        log_trace("ws conn %s recv %zd bytes", c->sid, n);
    }
    return n;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct wconn *c = user;

    (void)flags;
    return ws_wire_gather(&c->w, ctx, data, len);
}

/* Whether frames wait to be sent: on the wire, or in wslay. */
static bool out_waiting(const struct wconn *c)
{
    return ws_wire_waiting(&c->w) || (c->ws && wslay_event_want_write(c->ws));
}

/* Adds a record to the messages the session has yet to take. */
static void hold(struct wconn *c, enum rec_kind kind, enum gw_err err, const char *p, size_t len)
{
    struct rec_head h = {.len = len, .kind = kind, .err = err};

    buf_append(&c->held, &h, sizeof(h));
    buf_append(&c->held, p, len);
}

/* Input ends with err: the session answers it after the messages before it. */
static void refuse(struct wconn *c, wslay_event_context_ptr ctx, enum gw_err err, const char *why)
{
    c->input_done = true;
    wslay_event_shutdown_read(ctx);
    hold(c, REC_ERROR, err, why, strlen(why) + 1);
    free(c->why);
    c->why = gw_xstrdup(why);
    buf_release(&c->msg);
    input_budget_release(c->fw->o.inputs, &c->msg_held);
}

/* A message over --max-line: its session ends with line_too_long (1009). */
static void refuse_too_long(struct wconn *c, wslay_event_context_ptr ctx)
{
    char why[GW_ERRLEN];

    snprintf(why, sizeof(why), "a message (one command) is at most %zu bytes: closing the session",
             c->fw->o.max_line);
    refuse(c, ctx, GW_E_LINE_TOO_LONG, why);
}

static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
    struct wconn *c = user;
    uint64_t len = a->payload_length;

    /* RFC 6455 5.2: 2 bytes, the extended length if any, the mask key (wslay refuses no mask). */
    c->frame_len = 2 + (len < 126 ? 0 : len <= 0xffff ? 2 : 8) + 4 + len;
    c->frame_op = a->opcode;
    c->frame_fin = a->fin;
    log_trace("ws conn %s recv frame %s%s, %llu bytes", c->sid, op_name(a->opcode),
              a->fin ? "" : " (more follow)", (unsigned long long)len);
    /* wslay reads a 1-byte close body as no code and echoes an empty close (read_input). */
    if (a->opcode == WSLAY_CONNECTION_CLOSE && len == 1)
        c->close_one_byte = true;
    if (c->input_done)
        return;
    switch (a->opcode) {
    case WSLAY_BINARY_FRAME:
        refuse(c, ctx, GW_E_MEDIA_TYPE,
               "binary messages are not taken: send each command as a text message (UTF-8)");
        return;
    case WSLAY_TEXT_FRAME:
    case WSLAY_CONTINUATION_FRAME:
        c->in_fragmented = !a->fin;
        /* Refused from its header, before the rest arrives; a CRLF after the command is free. */
        if (c->msg.len + len > c->fw->o.max_line + 2) {
            refuse_too_long(c, ctx);
        } else {
            /* Counted from its header too: messages under way fill --max-input-memory. */
            char why[GW_ERRLEN];
            if (!input_budget_hold(c->fw->o.inputs, &c->msg_held, c->msg.len + (size_t)len, why))
                refuse(c, ctx, GW_E_BUSY, why);
        }
        return;
    default:
        return; /* control frames: wslay answers pings and closes */
    }
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *a, void *user)
{
    struct wconn *c = user;

    (void)ctx;
    if (!c->input_done &&
        (c->frame_op == WSLAY_TEXT_FRAME || c->frame_op == WSLAY_CONTINUATION_FRAME))
        buf_append(&c->msg, a->data, a->data_length);
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    struct wconn *c = user;
    size_t len = c->msg.len;

    c->in_framed += c->frame_len;
    if (c->input_done || !c->frame_fin ||
        (c->frame_op != WSLAY_TEXT_FRAME && c->frame_op != WSLAY_CONTINUATION_FRAME))
        return;
    /* One command per message; a LF or CRLF after it is not part of it (a lone CR is). */
    if (len && c->msg.data[len - 1] == '\n') {
        len--;
        if (len && c->msg.data[len - 1] == '\r')
            len--;
    }
    if (len > c->fw->o.max_line) {
        refuse_too_long(c, ctx);
        return;
    }
    hold(c, REC_MESSAGE, GW_OK, c->msg.data ? c->msg.data : "", len);
    /* A large message's buffer goes with its count; a small one is kept for the next. */
    if (c->msg.cap > INPUT_BUDGET_FREE)
        buf_release(&c->msg);
    else
        buf_clear(&c->msg);
    input_budget_release(c->fw->o.inputs, &c->msg_held);
}

/* A line about to go out as a message: a slow consumer's farewell is kept for the close reason. */
static void keep_farewell(struct wconn *c, const char *p, size_t rest)
{
    if (rest >= sizeof(SLOW_FAREWELL) - 1 &&
        memcmp(p, SLOW_FAREWELL, sizeof(SLOW_FAREWELL) - 1) == 0) {
        const char *nl = memchr(p, '\n', rest);
        size_t len = nl ? (size_t)(nl - p) : rest;
        free(c->farewell);
        c->farewell = gw_xmemdup(p, len);
        c->farewell_len = len;
    }
}

/*
 * wslay reads a text message from the head of the session's queue: one
 * line, without its LF (a queued item may hold several lines: an error and
 * the one that closes the session; each is a message of its own).
 */
static ssize_t read_line(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         const union wslay_event_msg_source *source, int *eof, void *user)
{
    struct wconn *c = user;
    struct outq *q = c->s ? session_outq(c->s) : NULL;
    const struct outq_item *it = q ? outq_at(q, 0) : NULL;

    (void)ctx;
    (void)source;
    if (!it) {
        /* The session is gone with the line unfinished: end the message here. */
        *eof = 1;
        c->omsg_open = false;
        return 0;
    }
    const char *p = it->w->data + q->head_sent;
    size_t rest = it->w->len - q->head_sent;
    /*
     * Only this frame's bytes and the one after them are looked at: wslay
     * asks once per frame, and a search to the line's end each time would
     * cost a long line the square of its length.
     */
    size_t look = rest <= len ? rest : len + 1;
    const char *nl = memchr(p, '\n', look);
    size_t body = nl ? (size_t)(nl - p) : look; /* what is left of this line, or more than len */
    size_t n = body < len ? body : len, taken = n;
    bool first = !c->omsg_started;

    if (first)
        keep_farewell(c, p, rest);
    memcpy(buf, p, n);
    c->omsg_started = true;
    if (n == body) {
        *eof = 1;
        c->omsg_open = false;
        taken += nl ? 1 : 0; /* the LF too */
    }
    log_trace("ws conn %s send frame %s%s, %zu bytes", c->sid, first ? "text" : "continuation",
              *eof ? "" : " (more follow)", n);
    session_sent(c->s, taken);
    return (ssize_t)n;
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_frame_recv_end_callback = on_frame_end,
};

/* ---- the framing context, there only while frames move ---- */

static bool ensure_ctx(struct wconn *c)
{
    if (c->ws)
        return true;
    /* Messages are put together here, bounded by --max-line with a reason given. */
    if (!(c->ws = ws_wire_new_ctx(&ws_callbacks, c))) {
        log_error("ws conn %s: no memory for its framing", c->sid);
        c->w.broken = true;
        return false;
    }
    c->in_fed = c->in_framed = 0;
    return true;
}

/*
 * Drops the framing context of a connection that has nothing in flight.
 * At once, not after a quiet time: connections opened in a burst would
 * otherwise each hold one for that time, and the heap would keep the peak.
 */
static void maybe_drop_ctx(struct wconn *c)
{
    if (!c->ws || c->closing || c->input_done || c->in_fragmented || c->omsg_open ||
        c->w.batch_full || c->in_fed != c->in_framed || c->msg.len || wslay_event_want_write(c->ws))
        return;
    wslay_event_context_free(c->ws);
    c->ws = NULL;
    buf_release(&c->msg);
    input_budget_release(c->fw->o.inputs, &c->msg_held);
    if (c->held_off == c->held.len)
        buf_release(&c->held);
}

/*
 * Whether whole lines may be framed here rather than by wslay: nothing of
 * wslay's is under way (a frame of ours between its bytes would break both),
 * and no close was queued or sent (nothing may follow one).
 */
static bool may_frame_here(const struct wconn *c)
{
    return c->s && !c->closing && !c->omsg_open && !c->w.batch_full &&
           !(c->ws && (wslay_event_want_write(c->ws) || wslay_event_get_close_sent(c->ws) ||
                       !wslay_event_get_write_enabled(c->ws)));
}

/* The header of a final, unmasked text frame of n payload bytes (RFC 6455 5.2); its length. */
static size_t text_frame_head(uint8_t h[10], uint64_t n)
{
    h[0] = 0x80 | WSLAY_TEXT_FRAME;
    if (n < 126) {
        h[1] = (uint8_t)n;
        return 2;
    }
    if (n <= UINT16_MAX) {
        h[1] = 126;
        h[2] = (uint8_t)(n >> 8);
        h[3] = (uint8_t)n;
        return 4;
    }
    h[1] = 127;
    for (int i = 0; i < 8; i++)
        h[2 + i] = (uint8_t)(n >> (56 - 8 * i));
    return 10;
}

/*
 * Frames the whole lines at the head of the session's queue into fw->out,
 * one text message each, as long as they fit in the batch. Stops at a line
 * over OWN_FRAME_MAX (wslay sends that one in fragments) or one the batch
 * has no room for (the next batch takes it).
 */
static void frame_lines(struct wconn *c)
{
    struct buf *out = &c->fw->out;
    struct outq *q = session_outq(c->s);
    const struct outq_item *it;

    while ((it = outq_at(q, 0)) != NULL) {
        const char *p = it->w->data + q->head_sent;
        size_t rest = it->w->len - q->head_sent;
        const char *nl = memchr(p, '\n', rest);
        size_t body = nl ? (size_t)(nl - p) : rest;
        uint8_t h[10];

        if (body > OWN_FRAME_MAX || out->len + sizeof(h) + body > WS_WIRE_BATCH)
            return;
        keep_farewell(c, p, body);
        buf_append(out, h, text_frame_head(h, body));
        buf_append(out, p, body);
        log_trace("ws conn %s send frame text, %zu bytes", c->sid, body);
        session_sent(c->s, body + (nl ? 1 : 0));
    }
}

/* ---- input ---- */

/*
 * The peer closed and the session took every message before it. After a
 * close frame the session ends at once (its close is echoed); after the end
 * of the stream alone the peer may still be reading, half-closed, so the
 * session answers what it was sent first, as on TCP.
 */
static void end_session(struct wconn *c)
{
    if (c->end_of_stream)
        session_input_end(c->s);
    else
        session_abort(c->s, c->why);
}

/* Offers the messages held, in order, as far as the session takes them. */
static void offer(struct wconn *c)
{
    c->held_back = false;
    while (c->s && c->held_off < c->held.len) {
        struct rec_head h;
        memcpy(&h, c->held.data + c->held_off, sizeof(h));
        const char *p = c->held.data + c->held_off + sizeof(h);
        if (h.kind == REC_ERROR) {
            log_trace("ws conn %s input refused: %s", c->sid, p);
            session_input_error(c->s, h.err, p);
        } else if (!session_line(c->s, p, h.len)) {
            c->held_back = true;
            break;
        }
        c->held_off += sizeof(h) + h.len;
    }
    if (c->held_off == c->held.len) {
        buf_clear(&c->held);
        c->held_off = 0;
        if (c->end_when_taken && c->s) {
            c->end_when_taken = false;
            end_session(c);
        }
    }
}

/*
 * Input broke RFC 6455 where wslay closes without a code, or with an echo:
 * when no frame of ours is half sent (out_idle before wslay read), a fresh
 * context queues 1002 with why instead of wslay's close.
 */
static void close_protocol_error(struct wconn *c, bool out_idle, const char *why)
{
    if (out_idle && ws_wire_renew_ctx(&c->ws, &ws_callbacks, c)) {
        c->in_fed = c->in_framed = 0;
        wslay_event_queue_close(c->ws, WS_CLOSE_PROTOCOL, (const uint8_t *)why, strlen(why));
    }
    log_trace("ws conn %s send close %u (%s)", c->sid, WS_CLOSE_PROTOCOL, why);
}

/*
 * Ends the session for why, a text made for the moment: session_abort keeps
 * the pointer until the close (ws_close), so the text is kept in c, which
 * outlives it.
 */
static void abort_for(struct wconn *c, const char *why)
{
    char *kept = gw_xstrdup(why);

    free(c->why);
    c->why = kept;
    session_abort(c->s, kept);
}

static void read_input(struct wconn *c)
{
    if (!c->s || !ensure_ctx(c))
        return;
    c->w.pass_bytes = 0;
    bool out_idle = !c->omsg_open && !wslay_event_want_write(c->ws);
    int rv = wslay_event_recv(c->ws);
    offer(c);
    if (c->w.broken || (rv != 0 && rv != WSLAY_ERR_CALLBACK_FAILURE)) {
        set_reading(c, false);
        session_abort(c->s, "connection lost");
        return;
    }
    if (rv != 0 && !c->w.eof) {
        /*
         * wslay's frame parser refused a header (a control frame over 125
         * bytes or fragmented, a length not written the shortest way) and
         * queued a close without a code.
         */
        static const char why[] = WS_WHY_FRAME_HEADER;
        close_protocol_error(c, out_idle, why);
        c->input_done = true;
        pump_out(c);
        set_reading(c, false);
        session_abort(c->s, why);
        return;
    }
    if (!c->input_done && (c->w.eof || !wslay_event_want_read(c->ws))) {
        c->input_done = true;
        if (c->close_one_byte && wslay_event_get_close_received(c->ws)) {
            static const char why[] = WS_WHY_CLOSE_ONE_BYTE;
            close_protocol_error(c, out_idle, why);
            pump_out(c);
            set_reading(c, false);
            session_abort(c->s, why);
            return;
        }
        pump_out(c); /* wslay's close frame, if it queued one */
        if (c->w.eof || wslay_event_get_close_received(c->ws)) {
            /*
             * A close frame, or the end of the stream without one (RFC 6455
             * 7.1.5: abnormal, 1006): either way the messages that came
             * before it run first (websocket.md), as a TCP session's
             * commands before its end do; then the session ends.
             */
            char why[64];
            c->end_of_stream = !wslay_event_get_close_received(c->ws);
            if (!c->end_of_stream) {
                snprintf(why, sizeof(why), "the peer closed the WebSocket (%u)",
                         wslay_event_get_status_code_received(c->ws));
                log_trace("ws conn %s recv close %u", c->sid,
                          wslay_event_get_status_code_received(c->ws));
            } else {
                snprintf(why, sizeof(why), "the peer closed the connection without a close frame");
            }
            free(c->why);
            c->why = gw_xstrdup(why);
            if (c->held_off < c->held.len)
                c->end_when_taken = true;
            else
                end_session(c);
        } else {
            /* wslay refused a frame and queued its close (1002, or 1007 for bad UTF-8). */
            unsigned code = wslay_event_get_status_code_sent(c->ws);
            char why[96];
            snprintf(why, sizeof(why), "%s: closed with %u",
                     code == WS_CLOSE_INVALID_DATA ? "a text message that is not UTF-8"
                                                   : "a frame that breaks RFC 6455",
                     code);
            log_trace("ws conn %s send close %u", c->sid, code);
            abort_for(c, why);
        }
        set_reading(c, false);
        return;
    }
    if (!pump_out(c)) {
        session_abort(c->s, "connection lost");
        return;
    }
    set_reading(c, wants_input(c));
    maybe_drop_ctx(c);
}

/* ---- output ---- */

/*
 * Sends what wslay has queued (control frames) and the session's lines, one
 * text message at a time, until the socket is full. False when the
 * connection is broken.
 */
static bool pump_out(struct wconn *c)
{
    if (c->w.broken || !ws_wire_flush(&c->w))
        return false;
    if (ws_wire_waiting(&c->w)) {
        set_writing(c, true);
        return true;
    }
    /* Whole lines framed here, batch after batch, while the socket takes them all. */
    while (may_frame_here(c) && session_outq(c->s)->n) {
        frame_lines(c);
        if (!c->fw->out.len)
            break; /* a line over OWN_FRAME_MAX: wslay sends it in fragments */
        if (!ws_wire_flush(&c->w))
            return false;
        if (ws_wire_waiting(&c->w)) {
            set_writing(c, true);
            maybe_drop_ctx(c);
            return true;
        }
    }
    if (!c->ws && !(c->s && session_outq(c->s)->n)) {
        set_writing(c, false);
        return true;
    }
    if (!ensure_ctx(c))
        return false;
    for (;;) {
        if (c->s && !c->omsg_open && session_outq(c->s)->n) {
            struct wslay_event_fragmented_msg m = {
                .opcode = WSLAY_TEXT_FRAME,
                .read_callback = read_line,
            };
            if (wslay_event_queue_fragmented_msg(c->ws, &m) == 0) {
                c->omsg_open = true;
                c->omsg_started = false;
            } else {
                /* A close frame is queued: nothing may follow it, so the lines go nowhere. */
                session_sent(c->s, session_outq(c->s)->bytes);
            }
        }
        c->w.batch_full = false;
        if (wslay_event_send(c->ws) != 0 || c->w.broken) {
            buf_clear(&c->fw->out);
            return false;
        }
        if (c->w.batch_full) {
            /* A batch is gathered: send it, and go on while the socket takes it all. */
            if (!ws_wire_flush(&c->w))
                return false;
            if (ws_wire_waiting(&c->w))
                break;
            continue;
        }
        if (c->omsg_open || !c->s || !session_outq(c->s)->n ||
            !wslay_event_get_write_enabled(c->ws))
            break;
    }
    if (!ws_wire_flush(&c->w))
        return false;
    set_writing(c, out_waiting(c));
    if (c->pongs_waiting && !control_backlog(c)) {
        /* The peer read its pongs: read its frames again. */
        c->pongs_waiting = false;
        if (c->s && !c->closing && wants_input(c))
            set_reading(c, true);
    }
    maybe_drop_ctx(c);
    return true;
}

/* session_io_ops.flush */
static bool ws_flush(void *io)
{
    struct wconn *c = io;

    return c->closing || pump_out(c);
}

/* session_io_ops.resume_input */
static void ws_resume(void *io)
{
    struct wconn *c = io;

    offer(c);
    if (wants_input(c))
        read_input(c); /* what wslay has buffered is not in the socket's readiness */
}

/* session_io_ops.heartbeat: a ping, unless the peer has been silent for too long. */
static void ws_heartbeat(void *io)
{
    struct wconn *c = io;
    uint64_t now = loop_now_ms(), beat = (uint64_t)c->fw->o.heartbeat * 1000;
    char why[GW_ERRLEN], stamp[24];
    struct timespec ts;

    if (c->input_done || c->closing)
        return;
    /* A session holding input back reads nothing, pongs included: its queue is the judge. */
    if (!c->held_back && now - c->last_recv_ms >= SILENT_BEATS * beat + beat / 2) {
        if (c->pongs_waiting)
            snprintf(why, sizeof(why),
                     "the peer has read none of its pongs for %llu s (%d heartbeats): closing",
                     (unsigned long long)(now - c->last_recv_ms) / 1000, SILENT_BEATS);
        else
            snprintf(why, sizeof(why),
                     "no frame from the peer for %llu s (%d heartbeats unanswered): closing",
                     (unsigned long long)(now - c->last_recv_ms) / 1000, SILENT_BEATS);
        c->input_done = true;
        free(c->why);
        c->why = gw_xstrdup(why);
        session_input_error(c->s, GW_E_IDLE, why);
        return;
    }
    if (!ensure_ctx(c))
        return;
    /* The payload is the send time (ms since the epoch): the pong brings it back. */
    clock_gettime(CLOCK_REALTIME, &ts);
    int n =
        snprintf(stamp, sizeof(stamp), "%lld", (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
    struct wslay_event_msg ping = {
        .opcode = WSLAY_PING, .msg = (const uint8_t *)stamp, .msg_length = (size_t)n};
    if (wslay_event_queue_msg(c->ws, &ping) == 0)
        log_trace("ws conn %s send frame ping, %d bytes", c->sid, n);
    if (!pump_out(c)) {
        session_abort(c->s, "connection lost");
        return;
    }
    maybe_drop_ctx(c);
}

/* ---- closing ---- */

static void unlink_conn(struct wconn *c)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        c->fw->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void conn_free(struct wconn *c)
{
    struct front_ws *fw = c->fw;

    if (c->closing)
        fw->nlingering--;
    unlink_conn(c);
    loop_timer_cancel(fw->loop, c->linger);
    if (c->w.fd >= 0) {
        loop_del_fd(fw->loop, c->w.fd);
        close(c->w.fd);
    }
    if (c->ws)
        wslay_event_context_free(c->ws);
    buf_release(&c->msg);
    input_budget_release(c->fw->o.inputs, &c->msg_held);
    buf_release(&c->held);
    ws_wire_release(&c->w);
    free(c->why);
    free(c->farewell);
    free(c);
}

static void on_linger_over(struct loop *loop, void *ctx)
{
    struct wconn *c = ctx;

    (void)loop;
    c->linger = NULL; /* a timer is gone once it has run */
    log_trace("ws conn %s close fd %d: linger time over", c->sid, c->w.fd);
    conn_free(c);
}

/* The close frame is out: the socket lingers for the rest of LINGER_CLOSE_MS, the rest is freed. */
static void start_linger(struct wconn *c)
{
    struct front_ws *fw = c->fw;
    uint64_t now = loop_now_ms();
    unsigned left = c->linger_end_ms > now ? (unsigned)(c->linger_end_ms - now) : 0;
    int fd = c->w.fd;

    log_trace("ws conn %s close fd %d: lingering %u ms at most", c->sid, fd, left);
    loop_del_fd(fw->loop, fd);
    c->w.fd = -1;
    /* The peer's end already came: nothing to drain. */
    lingering_add_within(fw->lingering, fd, c->w.eof ? 0 : left);
    conn_free(c);
}

/* session_io_ops.close: the close frame with the tier's reason, then the lingering close. */
static void ws_close(void *io, enum gw_err err, const char *why)
{
    struct wconn *c = io;
    char reason[WS_REASON_MAX + 1];

    c->s = NULL;
    c->fw->nsessions--;
    c->fw->nlingering++;
    c->closing = true;
    c->input_done = true;
    if (c->w.broken || !ensure_ctx(c)) {
        log_trace("ws conn %s close fd %d: %s", c->sid, c->w.fd, why);
        conn_free(c);
        return;
    }
    unsigned code = ws_close_code(err);
    size_t rlen =
        ws_close_reason(err, err == GW_OK ? why : c->why, c->farewell, c->farewell_len, reason);
    /* A close the peer sent, or one wslay queued for a bad frame, is answered already. */
    if (wslay_event_queue_close(c->ws, (uint16_t)code, (const uint8_t *)reason, rlen) == 0)
        log_trace("ws conn %s send close %u (%s)", c->sid, code, reason);
    c->linger = loop_timer_add(c->fw->loop, LINGER_CLOSE_MS, on_linger_over, c);
    c->linger_end_ms = loop_now_ms() + LINGER_CLOSE_MS;
    if (!pump_out(c)) {
        conn_free(c);
        return;
    }
    if (!out_waiting(c))
        start_linger(c);
}

/* session_io_ops.input_waiting */
static bool ws_input_waiting(void *io)
{
    const struct wconn *c = io;

    return c->held_off < c->held.len || net_unread(c->w.fd) > 0;
}

static const struct session_io_ops ws_ops = {
    .flush = ws_flush,
    .resume_input = ws_resume,
    .close = ws_close,
    .heartbeat = ws_heartbeat,
    .input_waiting = ws_input_waiting,
};

static void on_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct wconn *c = ctx;

    (void)loop;
    (void)fd;
    if (c->closing) {
        /* The close frame is on its way: nothing else is read. */
        if (!pump_out(c) || (events & LOOP_HUP)) {
            conn_free(c);
            return;
        }
        if (!out_waiting(c))
            start_linger(c);
        return;
    }
    if (events & LOOP_READ) {
        if (!c->reading) {
            /* Not watching input: only an error or a hang-up gets here. */
            set_writing(c, false);
            loop_mod_fd(c->fw->loop, c->w.fd, 0);
            session_abort(c->s, "connection lost");
            return;
        }
        read_input(c);
        if (!c->s)
            return;
    }
    if ((events & LOOP_WRITE) && c->want_write && c->s && !c->closing && !pump_out(c)) {
        loop_mod_fd(c->fw->loop, c->w.fd, 0);
        session_abort(c->s, "connection lost");
    }
}

/* ---- taking connections ---- */

/* Best effort on a fresh socket: a close frame fits in its send buffer. */
static ssize_t refuse_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                           void *user)
{
    ssize_t n = send(*(int *)user, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);

    (void)flags;
    if (n < 0)
        wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return n;
}

static ssize_t refuse_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags,
                           void *user)
{
    (void)buf;
    (void)len;
    (void)flags;
    (void)user;
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
}

/* Closes a connection that gets no session, with code and why in a close frame. */
static void refuse_conn(int fd, unsigned code, const char *why)
{
    static const struct wslay_event_callbacks cb = {.recv_callback = refuse_recv,
                                                    .send_callback = refuse_send};
    wslay_event_context_ptr ctx;
    char sink[4096];

    if (wslay_event_context_server_init(&ctx, &cb, &fd) == 0) {
        wslay_event_queue_close(ctx, (uint16_t)code, (const uint8_t *)why, strlen(why));
        wslay_event_send(ctx);
        wslay_event_context_free(ctx);
    }
    shutdown(fd, SHUT_WR);
    /* Read what the client sent already, so that the close does not reset the frame away. */
    for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
}

void front_ws_adopt(struct front_ws *fw, int fd, const char *head, size_t len, const char *protocol)
{
    char peer[64];

    net_peer_name(fd, peer, sizeof(peer));
    /* Sessions and connections still closing stay within the limit together (lingering_trim). */
    size_t busy = fw->nsessions + fw->nlingering;
    lingering_trim(fw->lingering, busy < fw->o.max_sessions ? fw->o.max_sessions - busy - 1 : 0);
    if (fw->quiescing || (fw->nsessions >= fw->o.max_sessions &&
                          !sessions_make_room(fw->tier, GW_T_WS, peer, fw->o.max_sessions))) {
        char why[WS_REASON_MAX + 1];
        if (fw->quiescing)
            snprintf(why, sizeof(why), "the gateway is stopping");
        else
            snprintf(why, sizeof(why), "%u WebSocket sessions are open already: try again later",
                     fw->o.max_sessions);
        log_info("ws: refused a connection: %s", why);
        refuse_conn(fd, fw->quiescing ? WS_CLOSE_GOING_AWAY : WS_CLOSE_TRY_AGAIN, why);
        return;
    }
    struct wconn *c = gw_xcalloc(1, sizeof(*c));
    char why[GW_ERRLEN];
    c->fw = fw;
    ws_wire_init(&c->w, fd, &fw->out, head, len);
    if (net_set_nonblock(fd, why) < 0)
        log_warn("ws: %s", why);
    /* As a TCP session: unacknowledged data for three heartbeats, 30 s at least. */
    net_tune_session(fd, fw->o.heartbeat, fw->o.heartbeat * 3 > 30 ? fw->o.heartbeat * 3 : 30);
    if (loop_add_fd(fw->loop, fd, LOOP_READ, on_io, c) < 0) {
        log_error("ws: cannot watch a new session: %s", strerror(errno));
        close(fd);
        ws_wire_release(&c->w);
        free(c);
        return;
    }
    c->reading = true;
    c->last_recv_ms = loop_now_ms();
    c->next = fw->conns;
    if (c->next)
        c->next->prev = c;
    fw->conns = c;
    fw->nsessions++;
    fw->adopted = true;
    c->s = session_open(fw->tier, GW_T_WS, SESSION_LINES, peer, &ws_ops, c);
    snprintf(c->sid, sizeof(c->sid), "%s", session_id(c->s));
    log_trace("ws conn %s adopt fd %d from %s, subprotocol %s, %zu bytes read ahead", c->sid, fd,
              peer, protocol ? protocol : "none", len);
    if (len)
        read_input(c); /* frames that came with the request: the socket will not tell of them */
}

/* A session opened inside libmicrohttpd's run, after the tier's pass: the loop must not sleep. */
static int before_sleep(struct loop *loop, void *ctx)
{
    struct front_ws *fw = ctx;

    (void)loop;
    if (!fw->adopted)
        return -1;
    fw->adopted = false;
    return 0;
}

struct front_ws *front_ws_new(struct sessions *tier, struct loop *loop,
                              const struct front_ws_options *opts)
{
    struct front_ws *fw = gw_xcalloc(1, sizeof(*fw));

    fw->tier = tier;
    fw->loop = loop;
    fw->o = *opts;
    fw->lingering = lingering_new(loop, LINGER_CLOSE_MS);
    loop_add_hook(loop, before_sleep, fw);
    return fw;
}

bool front_ws_has_room(const struct front_ws *fw, const char *peer)
{
    return !fw->quiescing &&
           (fw->nsessions < fw->o.max_sessions || sessions_can_make_room(fw->tier, GW_T_WS, peer));
}

size_t front_ws_count(const struct front_ws *fw)
{
    return fw->nsessions;
}

size_t front_ws_lingering(const struct front_ws *fw)
{
    return fw->nlingering + lingering_count(fw->lingering);
}

void front_ws_quiesce(struct front_ws *fw)
{
    fw->quiescing = true;
}

void front_ws_free(struct front_ws *fw)
{
    if (!fw)
        return;
    while (fw->conns)
        conn_free(fw->conns);
    lingering_free(fw->lingering); /* those still lingering are closed now */
    buf_release(&fw->out);
    free(fw);
}
