/*
 * front_sio.c - Socket.IO over Engine.IO; see front_sio.h and docs/socketio.md.
 *
 * An Engine.IO session (struct eio) lives from the handshake to its close,
 * whichever transport carries it: polling requests that front_http hands
 * over, or a WebSocket (struct wsc) that front_http upgraded. Its output is
 * two queues, sent in this order whenever the transport can take bytes: the
 * front's own packets (pings, CONNECT_ERROR, the probe's answer, a
 * DISCONNECT), and the session's lines, which the tier writes as Engine.IO
 * packets already (SESSION_SOCKETIO). A held poll is answered with both, the
 * packets separated by 0x1e, as soon as either has something, or with a
 * noop while the client upgrades; pings every ping_interval_ms make sure a
 * poll is never held longer than that.
 *
 * Input, from a POST or a WebSocket text message, goes through one queue of
 * packets the session has yet to take: a session that cannot take a command
 * now (session_line's false) holds the POST unanswered, or stops reading
 * the WebSocket, until it asks for input again. So a client is never read
 * faster than its session answers, as on every front.
 *
 * The WebSocket side keeps wslay's event API without its buffering: a
 * message is put together here, bounded by max_payload as its frames
 * arrive, so the session can say why it closes (line_too_long); a line is
 * read by wslay straight from the head of the session's queue as it sends.
 * Unlike front_ws it keeps its wslay context for the connection's life
 * (about 10 KiB): a Socket.IO connection gets a ping every interval anyway.
 */
#include "front_sio.h"

#include "buf.h"
#include "codec_json.h"
#include "input_budget.h"
#include "log.h"
#include "name_hash.h"
#include "loop.h"
#include "net.h"
#include "session.h"
#include "sio_poll.h"
#include "sio_proto.h"
#include "source_table.h"
#include "ws_proto.h"
#include "ws_wire.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <wslay/wslay.h>

/* Bytes read from one WebSocket per wake-up, so one busy client cannot hold the loop. */
#define READ_BUDGET       (256 * 1024)
/* A probe must end in an upgrade within this (engine.io's upgradeTimeout). */
#define PROBE_TIMEOUT_MS  10000
/* After its close frame, a WebSocket's input is read and dropped this long. */
#define LINGER_MS         2000
/* A closed polling session waits this long for the poll that takes its close packet. */
#define CLOSED_KEEP_MS    5000
/*
 * At the limit a handshake this old that has not sent CONNECT gives way to
 * anyone's: its client sends CONNECT right after the handshake's answer.
 */
#define HANDSHAKE_REST_MS 2000
/* At the limit, how many of the oldest spare sessions a handshake looks at for one to end. */
#define SPARE_SCAN        64
/* The front's own packets a client may leave unpolled, past one --max-line payload. */
#define CTL_SLACK         4096

#define TEXT_PLAIN "text/plain; charset=UTF-8"

/* Engine.IO's error codes in an HTTP answer's body (engine.io's Server.errors). */
enum eio_error {
    EIO_E_TRANSPORT = 0, /* unknown transport */
    EIO_E_SID = 1,       /* unknown session id */
    EIO_E_METHOD = 2,    /* bad handshake method */
    EIO_E_REQUEST = 3,   /* bad request */
    EIO_E_FORBIDDEN = 4,
    EIO_E_VERSION = 5 /* unsupported protocol version */
};

struct eio;

/* A WebSocket carrying an Engine.IO session, or probing to. */
struct wsc {
    struct front_sio *fs;
    struct eio *e;    /* NULL once the session let it go */
    struct ws_wire w; /* the socket: input, the batch, what waits */
    wslay_event_context_ptr ws;
    struct buf msg;      /* the message being put together */
    size_t msg_held;     /* its bytes counted in --max-input-memory (input_budget.h) */
    uint8_t msg_op;      /* its opcode */
    bool msg_on;         /* frames of a data message are arriving */
    bool frame_ctl;      /* the frame arriving is a control frame (a ping between fragments) */
    bool close_one_byte; /* the peer's close frame had a 1-byte body: half a code */
    bool reading, want_write;
    bool held;       /* the session has packets to take first: read nothing */
    bool omsg_open;  /* wslay is reading a line from the session's queue */
    bool input_done; /* nothing more is read (an error, a close) */
    bool closing, lingering;
    bool busy;                /* inside wsc_pump or wsc_send: nested calls only ask again */
    unsigned watching;        /* the LOOP_* events the loop watches fd for */
    bool again;               /* ... and one did */
    unsigned close_code;      /* a close asked for while busy, done on the way out */
    const char *close_reason; /* its reason, a literal */
    struct loop_timer *timer; /* the probe's deadline, then the linger's */
    struct wsc *prev, *next;  /* fs->conns */
};

struct eio {
    struct front_sio *fs;
    char sid[EIO_SID_LEN + 1];
    char peer[64];
    struct eio *hnext;         /* the sid table's chain */
    struct session *s;         /* the Socket.IO connection, after CONNECT */
    bool websocket;            /* the transport is ws; polling otherwise */
    struct wsc *ws;            /* the transport, or a probe while !websocket */
    bool probed;               /* the probe answered 3probe: polls end at once */
    bool closed;               /* over: the close packet is due, then the end */
    bool awaiting_pong;        /* a ping is out */
    bool closed_sent;          /* the close packet went out in a poll */
    bool connected;            /* a Socket.IO connection began: its client polls for its end */
    bool posting;              /* inside the POST's own request: its answer needs no ready */
    unsigned drop_binary;      /* attachments of a refused binary packet still to drop */
    struct sio_poll *get;      /* the held poll */
    struct sio_poll *post;     /* the held POST */
    struct buf ctl;            /* the front's own packets, each with an LF */
    struct buf in;             /* packets the session has yet to take: (size_t, bytes) records */
    size_t in_off;             /* the next record */
    struct loop_timer *ping;   /* the next ping, the pong's deadline, or the closed keep time */
    struct eio *uprev, *unext; /* fs->spare, while it is there */
    struct spare_source *src;  /* ... and its address's count there */
    uint64_t opened_ms;        /* the handshake, on the loop clock */
};

/* The spare sessions of one source address: a handshake flood is judged by its count. */
struct spare_source {
    struct source_node node; /* first: a node is its record */
    size_t n;
};

struct front_sio {
    struct sessions *tier;
    struct loop *loop;
    struct front_sio_options o;
    struct eio **table; /* sid -> session, chained */
    size_t nbuckets, count;
    /*
     * Sessions that give way first at the limit, oldest first: open and not
     * yet CONNECTed, or closed and owing only their close packet to a poll.
     */
    struct eio *spare, *spare_tail;
    struct source_table spare_sources; /* struct spare_source, by address */
    struct wsc *conns;
    size_t nlingering;
    bool quiescing;
    bool touched;   /* a call from front_http, inside libmicrohttpd's run: the tier may have work */
    struct buf out; /* the frames of the WebSocket being sent, gathered for one send() */
};

static void eio_finish(struct eio *e);
static void eio_close(struct eio *e, enum gw_err err, const char *why);
static void wsc_pump(struct wsc *c);
static void wsc_send(struct wsc *c);
static void wsc_close(struct wsc *c, unsigned code, const char *reason);
static void offer(struct eio *e);

/* ---- the sid table ---- */

static size_t bucket_of(const struct front_sio *fs, const char *sid)
{
    return (size_t)(name_hash(sid) & (fs->nbuckets - 1));
}

static void table_grow(struct front_sio *fs)
{
    size_t old = fs->nbuckets;
    struct eio **was = fs->table;

    fs->nbuckets = old ? old * 2 : 256;
    fs->table = gw_xcalloc(fs->nbuckets, sizeof(*fs->table));
    for (size_t i = 0; i < old; i++) {
        for (struct eio *e = was[i], *next; e; e = next) {
            next = e->hnext;
            size_t b = bucket_of(fs, e->sid);
            e->hnext = fs->table[b];
            fs->table[b] = e;
        }
    }
    free(was);
}

static struct eio *lookup(struct front_sio *fs, const char *sid)
{
    if (!sid || !fs->nbuckets)
        return NULL;
    for (struct eio *e = fs->table[bucket_of(fs, sid)]; e; e = e->hnext)
        if (strcmp(e->sid, sid) == 0)
            return e;
    return NULL;
}

static void table_remove(struct eio *e)
{
    struct front_sio *fs = e->fs;
    struct eio **at = &fs->table[bucket_of(fs, e->sid)];

    while (*at && *at != e)
        at = &(*at)->hnext;
    if (*at)
        *at = e->hnext;
    fs->count--;
}

/* ---- answers to HTTP requests ---- */

static void answer(struct sio_poll *p, unsigned status, const char *ctype, const char *body,
                   size_t len)
{
    buf_clear(&p->answer);
    buf_append(&p->answer, body, len);
    p->status = status;
    p->ctype = ctype;
}

/* An Engine.IO error: 400 (or status) and {"code","message"}. */
static bool answer_error(struct sio_poll *p, unsigned status, enum eio_error code, const char *why)
{
    buf_clear(&p->answer);
    codec_eio_error(&p->answer, (unsigned)code, why);
    p->status = status;
    p->ctype = "application/json";
    log_info("socket.io %s from %s refused: %s",
             p->kind == SIO_POLL_POST  ? "POST"
             : p->kind == SIO_POLL_GET ? "GET"
                                       : "upgrade",
             p->peer, why);
    return true;
}

/* ---- output ---- */

/*
 * Queues one of the front's own packets: type (a byte, or 0 for none) then
 * (pkt, len). They wait for the client's next poll, so a client that posts
 * pings or refused packets and never polls would have them pile up: past
 * a payload's worth (--max-line) and some, none more is queued and the
 * session ends, as a slow consumer's does.
 */
static void ctl_put(struct eio *e, char type, const char *pkt, size_t len)
{
    /* Over a WebSocket they go out as they come, and reading waits while they cannot. */
    if (!e->websocket && e->ctl.len + len + 2 > e->fs->o.max_payload + CTL_SLACK) {
        if (!e->closed)
            eio_close(e, GW_E_SLOW_CONSUMER,
                      "the client does not poll for the packets the gateway owes it (pongs, "
                      "errors): more than --max-line bytes of them wait");
        return;
    }
    if (type)
        buf_append(&e->ctl, &type, 1);
    buf_append(&e->ctl, pkt, len);
    buf_append(&e->ctl, "\n", 1);
}

static void ctl_add(struct eio *e, const char *pkt, size_t len)
{
    ctl_put(e, 0, pkt, len);
}

/* Whether a held poll has something to take. */
static bool poll_due(const struct eio *e)
{
    return e->closed || e->probed || e->ctl.len || (e->s && session_outq(e->s)->n);
}

/*
 * Moves every packet there is into p's answer, separated by 0x1e: the
 * front's, then the session's lines (wholly: a poll takes the queue), then
 * the close packet if the session is over; a noop if there is nothing.
 */
static void take_into(struct eio *e, struct sio_poll *p)
{
    struct buf *out = &p->answer;

    buf_clear(out);
    buf_append(out, e->ctl.data, e->ctl.len);
    buf_clear(&e->ctl);
    if (e->s) {
        struct outq *q = session_outq(e->s);
        size_t taken = 0;
        for (size_t i = 0; i < q->n; i++) {
            const struct outq_item *it = outq_at(q, i);
            size_t skip = i == 0 ? q->head_sent : 0;
            buf_append(out, it->w->data + skip, it->w->len - skip);
            taken += it->w->len - skip;
        }
        if (taken)
            session_sent(e->s, taken);
        /* Until the next poll (poll_get); a WebSocket sends and counts the rest itself. */
        session_in_transit(e->s, !e->websocket);
    }
    if (e->closed) {
        buf_append(out, "1\n", 2);
        e->closed_sent = true;
    }
    if (!out->len)
        buf_append(out, "6\n", 2);
    /* Lines end with LF (JSON has none inside): in a payload, packets are separated by 0x1e. */
    for (size_t i = 0; i < out->len; i++)
        if (out->data[i] == '\n')
            out->data[i] = EIO_SEP;
    out->len--; /* the last separator */
    p->status = 200;
    p->ctype = TEXT_PLAIN;
    log_trace("sio %s poll answered, %zu bytes", e->sid, out->len);
}

/*
 * Frees a closed session. Only from where no call about e is under way: its
 * timer, a request of its own, the front's end (eio_finish may run deep in
 * e's input and arms the timer instead).
 */
static void unlist(struct eio *e)
{
    struct front_sio *fs = e->fs;

    if (!e->uprev && fs->spare != e)
        return; /* not listed */
    if (e->uprev)
        e->uprev->unext = e->unext;
    else
        fs->spare = e->unext;
    if (e->unext)
        e->unext->uprev = e->uprev;
    else
        fs->spare_tail = e->uprev;
    e->uprev = e->unext = NULL;
    if (--e->src->n == 0) {
        source_table_remove(&fs->spare_sources, &e->src->node);
        free(e->src);
    }
    e->src = NULL;
}

/* The spare sessions source address src holds. */
static size_t spare_held_by(const struct front_sio *fs, const char *src)
{
    const struct source_node *n = source_table_find(&fs->spare_sources, src);
    return n ? ((const struct spare_source *)(const void *)n)->n : 0;
}

/* Last in fs->spare, the sessions that give way first at the limit. */
static void spare_add(struct eio *e)
{
    struct front_sio *fs = e->fs;
    char src[SOURCE_MAX];

    e->uprev = fs->spare_tail;
    e->unext = NULL;
    if (e->uprev)
        e->uprev->unext = e;
    else
        fs->spare = e;
    fs->spare_tail = e;
    source_of_peer(e->peer, src);
    struct source_node *n = source_table_find(&fs->spare_sources, src);
    if (!n) {
        n = gw_xcalloc(1, sizeof(struct spare_source));
        source_table_add(&fs->spare_sources, n, src);
    }
    e->src = (struct spare_source *)(void *)n;
    e->src->n++;
}

static void free_eio(struct eio *e)
{
    struct front_sio *fs = e->fs;

    unlist(e);
    table_remove(e);
    if (e->get)
        e->get->sio = NULL;
    if (e->post)
        e->post->sio = NULL;
    loop_timer_cancel(fs->loop, e->ping);
    if (e->ws)
        e->ws->e = NULL;
    buf_release(&e->ctl);
    buf_release(&e->in);
    free(e);
}

/* Answers the held poll with what there is. */
static void answer_get(struct eio *e)
{
    struct sio_poll *p = e->get;

    e->get = NULL;
    p->sio = NULL;
    take_into(e, p);
    p->ready(p);
}

/* Sends what is queued, on whichever transport carries the session now. */
static void send_pending(struct eio *e)
{
    if (e->websocket)
        wsc_send(e->ws);
    else if (e->get && poll_due(e))
        answer_get(e);
}

/* The held POST is done with: "ok", every packet of it taken. */
static void answer_post(struct eio *e)
{
    struct sio_poll *p = e->post;

    if (!p)
        return;
    e->post = NULL;
    p->sio = NULL;
    answer(p, 200, TEXT_PLAIN, "ok", 2);
    if (!e->posting)
        p->ready(p);
}

/*
 * Packets the session has not taken are dropped, and the held POST says
 * so, why (cause, then after the count) and how many (an "ok" would tell
 * the client its events ran). drop_input: the session closed first; its
 * last packets (an error event, the close) wait for the next poll.
 */
static void drop_input_saying(struct eio *e, const char *cause, const char *after)
{
    struct sio_poll *p = e->post;
    size_t n = 0;
    char why[256];

    for (size_t off = e->in_off, len; off < e->in.len; off += sizeof(len) + len, n++)
        memcpy(&len, e->in.data + off, sizeof(len));
    buf_clear(&e->in);
    e->in_off = 0;
    if (!p)
        return;
    e->post = NULL;
    p->sio = NULL;
    snprintf(why, sizeof(why), "%s: the last %zu were not run%s", cause, n, after);
    answer_error(p, 400, EIO_E_SID, why);
    if (!e->posting)
        p->ready(p);
}

static void drop_input(struct eio *e)
{
    drop_input_saying(e, "the session closed before it took every packet of this POST",
                      " (a poll gets why)");
}

static void queue_ctl(struct wsc *c, struct eio *e);

/* ---- heartbeats ---- */

static void on_ping_timer(struct loop *loop, void *ctx);

static void arm(struct eio *e, unsigned ms)
{
    loop_timer_cancel(e->fs->loop, e->ping);
    e->ping = loop_timer_add(e->fs->loop, ms, on_ping_timer, e);
}

/*
 * The Engine.IO session ends: through its Socket.IO session, when there is
 * one (err and why become its last error event; GW_OK: no event), or at
 * once. why lives for ever when err is GW_OK (session_abort keeps it).
 */
static void eio_close(struct eio *e, enum gw_err err, const char *why)
{
    if (e->closed)
        return;
    if (!e->s) {
        log_debug("sio %s %s closed: %s", e->sid, e->peer, why);
        eio_finish(e);
    } else if (err == GW_OK) {
        session_abort(e->s, why);
    } else {
        session_input_error(e->s, err, why);
    }
}

static void on_ping_timer(struct loop *loop, void *ctx)
{
    struct eio *e = ctx;
    char why[96];

    (void)loop;
    e->ping = NULL; /* a timer is gone once it has run */
    if (e->closed) {
        if (e->get)
            answer_get(e);
        free_eio(e);
        return;
    }
    if (e->awaiting_pong && e->in_off < e->in.len) {
        /* Input waits for the session: the pong may be behind it; its queue is the judge. */
        arm(e, e->fs->o.ping_timeout_ms);
        return;
    }
    if (e->awaiting_pong) {
        snprintf(why, sizeof(why), "no pong within %u ms of a ping: closing",
                 e->fs->o.ping_timeout_ms);
        log_info("sio %s %s: %s", e->sid, e->peer, why);
        if (e->s)
            session_input_error(e->s, GW_E_IDLE, why);
        else
            eio_close(e, GW_E_IDLE, "ping timeout");
        return;
    }
    e->awaiting_pong = true;
    ctl_add(e, "2", 1);
    arm(e, e->fs->o.ping_timeout_ms);
    log_trace("sio %s send ping", e->sid);
    send_pending(e);
}

/* ---- the session's operations ---- */

/* session_io_ops.flush */
static bool sio_flush(void *io)
{
    struct eio *e = io;

    /* Closing with packets held (a POST waits on them): they will never run; say so now. */
    if (e->s && e->in_off < e->in.len && !session_takes_input(e->s))
        drop_input(e);
    send_pending(e);
    return !(e->websocket && e->ws && e->ws->w.broken);
}

/* session_io_ops.resume_input */
static void sio_resume(void *io)
{
    offer(io);
}

/* session_io_ops.heartbeat: Engine.IO pings on its own clock, whatever the session sends. */
static void sio_heartbeat(void *io)
{
    (void)io;
}

/* session_io_ops.close: the Socket.IO connection is over, and with it the Engine.IO session. */
static void sio_close(void *io, enum gw_err err, const char *why)
{
    struct eio *e = io;

    e->s = NULL;
    log_trace("sio %s session closed: %s", e->sid, why);
    /* A misbehaving client is told not to come back on its own (io server disconnect). */
    if (err == GW_E_TOO_MANY_ERRORS)
        ctl_add(e, "41", 2);
    eio_finish(e);
}

static const struct session_io_ops sio_ops = {
    .flush = sio_flush,
    .resume_input = sio_resume,
    .close = sio_close,
    .heartbeat = sio_heartbeat,
};

/*
 * Closes the transport: a WebSocket gets what is queued and a close frame;
 * a held poll gets the close packet (a later one, within CLOSED_KEEP_MS, if
 * none is held). A held POST is answered: its packets are dropped.
 */
static void eio_finish(struct eio *e)
{
    struct front_sio *fs = e->fs;

    if (e->closed)
        return;
    e->closed = true;
    unlist(e);
    if (e->in_off < e->in.len)
        drop_input(e);
    else
        answer_post(e);
    if (e->ws) {
        /* The transport (what is queued goes first), or a probe that never became it. */
        struct wsc *c = e->ws;
        if (e->websocket && e->ctl.len && !c->closing)
            queue_ctl(c, e);
        e->ws = NULL;
        c->e = NULL;
        wsc_close(c, fs->quiescing ? WS_CLOSE_GOING_AWAY : WS_CLOSE_NORMAL, "session closed");
    }
    if (e->get)
        answer_get(e);
    /* Freed from its timer: at once when nothing more is due, else when the next poll took it. */
    arm(e, e->websocket || e->closed_sent ? 0 : CLOSED_KEEP_MS);
    /*
     * Kept for its close packet, it still counts on --max-sio-sessions, and
     * its client may never poll for it: at the limit it gives way first, or
     * a client that disconnects and leaves would hold every place for
     * CLOSED_KEEP_MS, and another address be refused with no session to end.
     */
    if (!e->websocket && !e->closed_sent)
        spare_add(e);
}

/* ---- input: Engine.IO and Socket.IO packets ---- */

/*
 * Answers a packet that is not a command: through the session (an error
 * event, or the ack when tag is set), or, before CONNECT, with a
 * CONNECT_ERROR. False: not now (see session_refuse).
 */
static bool refuse(struct eio *e, enum gw_err err, const char *why, const char *tag, size_t tag_len)
{
    struct buf b = BUF_INIT;

    log_debug("sio %s %s: packet refused: %s", e->sid, e->peer, why);
    if (e->s)
        return session_refuse(e->s, err, why, tag, tag_len);
    buf_append(&b, "44", 2);
    codec_sio_error_data(&b, why);
    ctl_add(e, b.data, b.len);
    buf_release(&b);
    return true;
}

/* CONNECT: the main namespace opens the session; any other is refused. */
static void on_connect(struct eio *e, const struct sio_packet *pk)
{
    struct buf b = BUF_INIT;
    char why[GW_ERRLEN];

    if (!sio_nsp_is_main(pk->nsp, pk->nsp_len)) {
        snprintf(why, sizeof(why),
                 "namespace '%.*s' does not exist: visavis serves the main namespace '/' only",
                 (int)pk->nsp_len, pk->nsp);
        buf_append(&b, "44", 2);
        buf_append(&b, pk->nsp, pk->nsp_len);
        buf_append(&b, ",", 1);
        codec_sio_error_data(&b, why);
        ctl_add(e, b.data, b.len);
        buf_release(&b);
        log_info("sio %s %s: CONNECT refused: %s", e->sid, e->peer, why);
        return;
    }
    if (e->s || e->fs->quiescing)
        return; /* connected already; or stopping: the close follows */
    unlist(e);
    e->s = session_open(e->fs->tier, GW_T_SOCKETIO, SESSION_SOCKETIO, e->peer, &sio_ops, e);
    e->connected = true;
    log_trace("sio %s connect: session %s", e->sid, session_id(e->s));
}

/* One Socket.IO packet (an Engine.IO message without its '4'). False: not now. */
static bool sio_packet(struct eio *e, const char *p, size_t len)
{
    struct sio_packet pk;
    char why[GW_ERRLEN], tag[24];
    size_t tag_len = 0;
    enum gw_err err = sio_packet_parse(p, len, &pk, why);
    const char *t;

    if (pk.has_id)
        tag_len = (size_t)snprintf(tag, sizeof(tag), "%llu", (unsigned long long)pk.id);
    t = pk.has_id ? tag : NULL;
    if (err != GW_OK)
        return refuse(e, err, why, t, tag_len);
    switch (pk.type) {
    case SIO_CONNECT:
        on_connect(e, &pk);
        return true;
    case SIO_DISCONNECT:
        if (e->s && sio_nsp_is_main(pk.nsp, pk.nsp_len))
            session_abort(e->s, "the client disconnected");
        return true;
    case SIO_EVENT:
        break;
    case SIO_BINARY_EVENT:
    case SIO_BINARY_ACK:
        e->drop_binary = pk.attachments;
        return refuse(e, GW_E_MEDIA_TYPE,
                      "binary packets (attachments) are not taken: send the event's data as JSON",
                      t, tag_len);
    case SIO_ACK:
        return refuse(e, GW_E_PARAM, "an ACK answers nothing here: the gateway asks for none", t,
                      tag_len);
    case SIO_CONNECT_ERROR:
        return refuse(e, GW_E_PARAM, "CONNECT_ERROR is the server's to send", t, tag_len);
    }
    if (!e->s)
        return refuse(e, GW_E_PARAM, "not connected: send CONNECT (40) first", NULL, 0);
    if (!sio_nsp_is_main(pk.nsp, pk.nsp_len)) {
        snprintf(why, sizeof(why), "namespace '%.*s' is not connected: events go to '/'",
                 (int)pk.nsp_len, pk.nsp);
        return refuse(e, GW_E_NOT_FOUND, why, t, tag_len);
    }
    struct buf line = BUF_INIT;
    bool taken;
    err = codec_sio_event_line(pk.data, pk.data_len, t, tag_len, &line, why);
    if (err != GW_OK)
        taken = refuse(e, err, why, t, tag_len);
    else
        taken = session_line(e->s, line.data, line.len);
    buf_release(&line);
    return taken;
}

/* A binary Engine.IO message: an attachment of a refused packet, or refused itself. */
static bool binary_packet(struct eio *e)
{
    if (e->drop_binary) {
        e->drop_binary--;
        return true;
    }
    return refuse(e, GW_E_MEDIA_TYPE, "binary messages are not taken: send JSON in text packets",
                  NULL, 0);
}

/* One Engine.IO packet from the client. False: the session cannot take it now. */
static bool eio_packet(struct eio *e, const char *p, size_t len)
{
    if (!len)
        return refuse(e, GW_E_PARAM, "an empty Engine.IO packet", NULL, 0);
    switch (p[0]) {
    case EIO_PONG:
        return true; /* taken as it came (take_packet) */
    case EIO_PING:
        /* v4 clients do not ping; an older habit gets its pong all the same. */
        ctl_put(e, EIO_PONG, p + 1, memchr(p, '\n', len) ? 0 : len - 1);
        return true;
    case EIO_MESSAGE:
        return sio_packet(e, p + 1, len - 1);
    case EIO_CLOSE:
        eio_close(e, GW_OK, "the client closed the session");
        return true;
    case EIO_NOOP:
        return true;
    case EIO_BINARY:
        return binary_packet(e);
    default:
        return refuse(e, GW_E_PARAM,
                      "not an Engine.IO packet: the first byte is its type (2 ping, 3 pong, 4 "
                      "message, 1 close, 6 noop)",
                      NULL, 0);
    }
}

/*
 * A packet from the client, queued for the session in order; a pong is
 * taken at once (it answers the front, whatever the session is busy with).
 */
static void take_packet(struct eio *e, const char *p, size_t len)
{
    if (len == 1 && p[0] == EIO_PONG) {
        if (e->awaiting_pong && !e->closed) {
            e->awaiting_pong = false;
            arm(e, e->fs->o.ping_interval_ms);
        }
        return;
    }
    buf_append(&e->in, &len, sizeof(len));
    buf_append(&e->in, p, len);
}

/* Offers the packets held, in order, as far as the session takes them; then lets input go on. */
static void offer(struct eio *e)
{
    while (!e->closed && e->in_off < e->in.len) {
        if (e->s && !session_takes_input(e->s)) {
            drop_input(e); /* closing (a packet just ended it, or the tier did) */
            return;
        }
        size_t len, at = e->in_off;
        memcpy(&len, e->in.data + at, sizeof(len));
        /* Past it first: a packet that ends the session must not count as one left unrun. */
        e->in_off += sizeof(len) + len;
        if (!eio_packet(e, e->in.data + at + sizeof(len), len)) {
            if (e->in.len) /* not dropped meanwhile */
                e->in_off = at;
            break;
        }
    }
    if (e->closed)
        return;
    if (e->in_off < e->in.len) {
        if (e->websocket && e->ws)
            e->ws->held = true;
        return;
    }
    buf_clear(&e->in);
    e->in_off = 0;
    answer_post(e);
    if (e->websocket && e->ws && e->ws->held) {
        e->ws->held = false;
        wsc_pump(e->ws); /* reads again: what wslay holds is not in the socket's readiness */
    }
    send_pending(e); /* the front's own answers (pongs, CONNECT_ERRORs) */
}

/* ---- polling ---- */

static struct eio *eio_new(struct front_sio *fs, const char *peer)
{
    struct eio *e = gw_xcalloc(1, sizeof(*e));

    e->fs = fs;
    do
        eio_sid_new(e->sid);
    while (lookup(fs, e->sid));
    snprintf(e->peer, sizeof(e->peer), "%s", peer ? peer : "-");
    e->opened_ms = loop_now_ms();
    if (fs->count + 1 > fs->nbuckets)
        table_grow(fs);
    size_t b = bucket_of(fs, e->sid);
    e->hnext = fs->table[b];
    fs->table[b] = e;
    fs->count++;
    spare_add(e); /* until its CONNECT */
    arm(e, fs->o.ping_interval_ms);
    log_debug("sio %s %s opened", e->sid, e->peer);
    return e;
}

/* The query's EIO and transport, judged. */
static bool judge_query(struct sio_poll *p, const char *want_transport)
{
    if (!p->eio || strcmp(p->eio, EIO_VERSION) != 0)
        return !answer_error(p, 400, EIO_E_VERSION,
                             "unsupported protocol version: this is Engine.IO 4 (EIO=4), "
                             "socket.io-client 3 or 4");
    if (!p->transport || strcmp(p->transport, want_transport) != 0)
        return !answer_error(p, 400, EIO_E_TRANSPORT,
                             "unknown transport: transport=polling or transport=websocket");
    return true;
}

/*
 * The spare session that gives way to a handshake from peer at the limit,
 * looking at the SPARE_SCAN oldest: the oldest closed one (it owes only its
 * close packet: its next poll learns the sid is gone); else, of those that
 * never sent CONNECT and are peer's own address's, or of an address holding
 * more spare sessions than peer's, or have rested HANDSHAKE_REST_MS, the
 * oldest of the address holding the most. So a handshake flood from one
 * address ends its own handshakes, and not another client's between its
 * handshake and its CONNECT. NULL: none may.
 */
static struct eio *spare_to_end(struct front_sio *fs, const char *peer)
{
    uint64_t now = loop_now_ms();
    char src[SOURCE_MAX];
    struct eio *best = NULL;
    int seen = 0;

    source_of_peer(peer, src);
    size_t mine = spare_held_by(fs, src);
    for (struct eio *e = fs->spare; e && seen < SPARE_SCAN; e = e->unext, seen++) {
        if (e->closed)
            return e;
        bool may = e->src->n > mine || strcmp(e->src->node.name, src) == 0 ||
                   now - e->opened_ms >= HANDSHAKE_REST_MS;
        if (may && (!best || e->src->n > best->src->n))
            best = e;
    }
    return best;
}

/* Room for a new session, or p answered why not. */
static bool room(struct front_sio *fs, struct sio_poll *p)
{
    if (fs->quiescing)
        return !answer_error(p, 503, EIO_E_REQUEST, "the gateway is stopping");
    /*
     * At the limit a spare session makes room (spare_to_end): a handshake
     * costs a client nothing, so handshakes alone must not lock out those
     * that come to use a session.
     */
    struct eio *old;
    if (fs->count >= fs->o.max_sessions && (old = spare_to_end(fs, p->peer))) {
        if (old->closed) {
            log_info("sio %s %s freed: closed, its close packet not polled for, and "
                     "--max-sio-sessions are open",
                     old->sid, old->peer);
        } else {
            log_info("sio %s %s evicted: never connected, and --max-sio-sessions are open",
                     old->sid, old->peer);
            eio_finish(old); /* answers what it holds; a WebSocket of its gets its close */
        }
        free_eio(old);
    }
    /* Then the newest session of an address holding far more than this client's. */
    if (fs->count >= fs->o.max_sessions &&
        !sessions_make_room(fs->tier, GW_T_SOCKETIO, p->peer, fs->o.max_sessions))
        return !answer_error(p, 429, EIO_E_REQUEST,
                             "as many Socket.IO sessions as --max-sio-sessions allows are open: "
                             "try again later");
    return true;
}

/* The session of a request's sid, still on polling, or p answered why not. */
static struct eio *polled(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e = lookup(fs, p->sid);

    if (!e) {
        answer_error(p, 400, EIO_E_SID, "session ID unknown (closed, or never opened here)");
        return NULL;
    }
    if (e->websocket) {
        answer_error(p, 400, EIO_E_REQUEST,
                     "the session has moved to its WebSocket: polling is over for it");
        return NULL;
    }
    return e;
}

static bool handshake(struct front_sio *fs, struct sio_poll *p)
{
    char open[256];

    if (!room(fs, p))
        return true;
    struct eio *e = eio_new(fs, p->peer);
    int n = eio_open_packet(open, sizeof(open), e->sid, true, fs->o.ping_interval_ms,
                            fs->o.ping_timeout_ms, fs->o.max_payload);
    answer(p, 200, TEXT_PLAIN, open, (size_t)n);
    return true;
}

static bool poll_get(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e = polled(fs, p);

    if (!e)
        return true;
    /*
     * Its client polls again: it has the last answer. Until it did, it was
     * taking that answer (a large one takes a while on a slow link) or
     * about to poll, and the session was not stuck: engine.io's heartbeat
     * judges a client that does not come back (no pong, no session).
     */
    if (e->s)
        session_in_transit(e->s, false);
    if (e->get) {
        /* Two polls at once: the client lost track; engine.io closes the session too. */
        answer_error(p, 400, EIO_E_REQUEST, "a poll is under way for this session already");
        eio_close(e, GW_OK, "two polls at once");
        return true;
    }
    if (poll_due(e)) {
        take_into(e, p);
        if (e->closed)
            free_eio(e);
        return true;
    }
    e->get = p;
    p->sio = e;
    log_trace("sio %s poll held", e->sid);
    return false;
}

static bool poll_post(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e = polled(fs, p);
    size_t off = 0, len;
    const char *pkt;

    if (!e)
        return true;
    if (e->closed || (e->s && !session_takes_input(e->s)))
        return answer_error(p, 400, EIO_E_SID,
                            "the session is closed: nothing of this POST was run (a poll gets "
                            "why)");
    if (e->post)
        return answer_error(p, 400, EIO_E_REQUEST,
                            "a POST is under way for this session already: one at a time");
    if (e->s)
        session_received(e->s, p->body_len);
    while (eio_payload_next(p->body, p->body_len, &off, &pkt, &len))
        take_packet(e, pkt, len);
    e->post = p;
    p->sio = e;
    e->posting = true;
    offer(e); /* answers the POST once every packet is taken */
    e->posting = false;
    if (e->post == p)
        log_trace("sio %s POST held: its packets wait for the session", e->sid);
    return e->post != p;
}

static bool judge_upgrade(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e;

    if (!p->sid)
        return room(fs, p);
    if (!(e = lookup(fs, p->sid)) || e->closed)
        return !answer_error(p, 400, EIO_E_SID,
                             "session ID unknown (closed, or never opened here)");
    if (e->websocket || e->ws)
        return !answer_error(p, 400, EIO_E_REQUEST, "this session has a WebSocket already");
    return true;
}

bool front_sio_poll(struct front_sio *fs, struct sio_poll *p)
{
    fs->touched = true;
    p->status = 0;
    if (!judge_query(p, p->kind == SIO_POLL_UPGRADE ? "websocket" : "polling"))
        return true;
    switch (p->kind) {
    case SIO_POLL_UPGRADE:
        judge_upgrade(fs, p);
        return true;
    case SIO_POLL_GET:
        return p->sid ? poll_get(fs, p) : handshake(fs, p);
    case SIO_POLL_POST:
        if (!p->sid)
            return answer_error(p, 400, EIO_E_METHOD, "a session begins with a GET (handshake)");
        return poll_post(fs, p);
    }
    return true;
}

void front_sio_cancel(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e = p->sio;

    (void)fs;
    if (!e)
        return;
    if (e->get == p)
        e->get = NULL;
    if (e->post == p)
        e->post = NULL;
    p->sio = NULL;
}

bool front_sio_answer_now(struct front_sio *fs, struct sio_poll *p)
{
    struct eio *e = p->sio;

    (void)fs;
    if (e && e->get == p) {
        log_trace("sio %s poll answered early", e->sid);
        answer_get(e);
        return true;
    }
    if (!e || e->post != p)
        return false;
    /* The HTTP front logs why, once; the trace ties the request to its session. */
    log_trace("sio %s POST answered early", e->sid);
    drop_input_saying(e,
                      "this connection was needed for a client of another address, and the "
                      "session had not taken every packet of this POST",
                      " (poll for the answers of those sent before sending more)");
    return true;
}

void front_sio_lost(struct front_sio *fs, const char *sid, const char *why)
{
    struct eio *e = lookup(fs, sid);

    if (!e || e->closed)
        return;
    log_info("sio %s %s: %s", e->sid, e->peer, why);
    eio_close(e, GW_OK, why);
}

/* ---- the WebSocket transport ---- */

static void wsc_events(struct wsc *c)
{
    unsigned ev = (c->reading ? LOOP_READ : 0) | (c->want_write ? LOOP_WRITE : 0);

    if (ev == c->watching)
        return;
    c->watching = ev;
    loop_mod_fd(c->fs->loop, c->w.fd, ev);
}

/* Whether the control frames waiting to be sent hold reading back (WS_CONTROL_BACKLOG). */
static bool pongs_backlog(const struct wsc *c)
{
    return ws_control_weight(wslay_event_get_queued_msg_length(c->ws),
                             wslay_event_get_queued_msg_count(c->ws)) >= WS_CONTROL_BACKLOG;
}

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct wsc *c = user;
    bool from_socket;
    ssize_t n;

    (void)flags;
    if (c->held || c->input_done || pongs_backlog(c)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    n = ws_wire_recv(&c->w, ctx, buf, len, READ_BUDGET, &from_socket);
    if (from_socket && c->e && c->e->s)
        session_received(c->e->s, (size_t)n);
    return n;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct wsc *c = user;

    (void)flags;
    return ws_wire_gather(&c->w, ctx, data, len);
}

/* Runs wslay's sending and puts what it wrote on the socket, batch by batch. False: broken. */
static bool drive_send(struct wsc *c)
{
    for (;;) {
        c->w.batch_full = false;
        if (wslay_event_send(c->ws) != 0) {
            buf_clear(&c->fs->out);
            c->w.broken = true;
            return false;
        }
        if (!ws_wire_flush(&c->w))
            return false;
        if (!c->w.batch_full || ws_wire_waiting(&c->w))
            return true;
    }
}

/* Whether there is anything to send: bytes waiting, or frames wslay has queued. */
static bool wants_write(const struct wsc *c)
{
    return ws_wire_waiting(&c->w) || wslay_event_want_write(c->ws);
}

/* Input ends with an error the session answers (or, before CONNECT, a close). */
static void wsc_refuse(struct wsc *c, wslay_event_context_ptr ctx, enum gw_err err, const char *why)
{
    c->input_done = true;
    c->msg_on = false;
    buf_release(&c->msg);
    input_budget_release(c->fs->o.inputs, &c->msg_held);
    wslay_event_shutdown_read(ctx);
    if (c->e && !c->e->closed && c->e->websocket)
        eio_close(c->e, err, why);
    else if (err == GW_E_BUSY)
        wsc_close(c, WS_CLOSE_TRY_AGAIN, "busy: try again");
    else
        wsc_close(c, WS_CLOSE_TOO_BIG, "message too big");
}

/* A message over maxPayload: refused as Engine.IO refuses a payload too large. */
static void refuse_too_big(struct wsc *c, wslay_event_context_ptr ctx)
{
    char why[GW_ERRLEN];

    snprintf(why, sizeof(why), "a packet is at most %zu bytes (maxPayload): closing",
             c->fs->o.max_payload);
    wsc_refuse(c, ctx, GW_E_LINE_TOO_LONG, why);
}

static void ws_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
    struct wsc *c = user;

    /*
     * Control frames may come between a message's fragments (RFC 6455 5.4):
     * wslay answers pings and closes, and their bytes are no part of the
     * message being put together.
     */
    c->frame_ctl = (a->opcode & 0x8) != 0;
    /* wslay reads a 1-byte close body as no code and echoes an empty close (read_some). */
    if (a->opcode == WSLAY_CONNECTION_CLOSE && a->payload_length == 1)
        c->close_one_byte = true;
    if (c->input_done || c->frame_ctl)
        return;
    if (a->opcode != WSLAY_CONTINUATION_FRAME)
        c->msg_op = a->opcode;
    c->msg_on = true;
    char why[GW_ERRLEN];
    if (c->msg.len + a->payload_length > c->fs->o.max_payload)
        refuse_too_big(c, ctx);
    else if (!input_budget_hold(c->fs->o.inputs, &c->msg_held,
                                c->msg.len + (size_t)a->payload_length, why))
        wsc_refuse(c, ctx, GW_E_BUSY, why); /* messages under way fill --max-input-memory */
}

static void ws_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *a, void *user)
{
    struct wsc *c = user;

    if (!c->msg_on || c->input_done || c->frame_ctl)
        return;
    /* Judged from each frame's header already; kept here too, where memory is spent. */
    if (c->msg.len + a->data_length > c->fs->o.max_payload) {
        refuse_too_big(c, ctx);
        return;
    }
    buf_append(&c->msg, a->data, a->data_length);
}

static void probe_packet(struct wsc *c, const char *p, size_t len);

/* A whole message: one Engine.IO packet. */
static void ws_message(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                       void *user)
{
    struct wsc *c = user;
    struct eio *e = c->e;

    (void)ctx;
    if ((a->opcode & 0x8) || !c->msg_on || c->input_done)
        return;
    c->msg_on = false;
    if (e && !e->websocket) {
        probe_packet(c, c->msg.data ? c->msg.data : "", c->msg.len);
    } else if (e && !e->closed) {
        if (c->msg_op == WSLAY_BINARY_FRAME)
            take_packet(e, "b", 1);
        else
            take_packet(e, c->msg.data ? c->msg.data : "", c->msg.len);
        offer(e);
    }
    /* A large message's buffer goes with its count; a small one is kept for the next. */
    if (c->msg.cap > INPUT_BUDGET_FREE)
        buf_release(&c->msg);
    else
        buf_clear(&c->msg);
    input_budget_release(c->fs->o.inputs, &c->msg_held);
}

/*
 * wslay reads a text message from the head of the session's queue: one
 * packet, without its LF (an item may hold two: an error and the one that
 * closes the session).
 */
static ssize_t ws_read_line(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                            const union wslay_event_msg_source *source, int *eof, void *user)
{
    struct wsc *c = user;
    struct session *s = c->e ? c->e->s : NULL;
    struct outq *q = s ? session_outq(s) : NULL;
    const struct outq_item *it = q ? outq_at(q, 0) : NULL;

    (void)ctx;
    (void)source;
    if (!it) {
        *eof = 1; /* the session ended with the line unfinished */
        c->omsg_open = false;
        return 0;
    }
    const char *p = it->w->data + q->head_sent;
    size_t rest = it->w->len - q->head_sent;
    const char *nl = memchr(p, '\n', rest);
    size_t body = nl ? (size_t)(nl - p) : rest;
    size_t n = body < len ? body : len;

    memcpy(buf, p, n);
    if (n == body) {
        *eof = 1;
        c->omsg_open = false;
    }
    session_sent(s, n + (n == body && nl ? 1 : 0));
    return (ssize_t)n;
}

static const struct wslay_event_callbacks wsc_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_frame_recv_start_callback = ws_frame_start,
    .on_frame_recv_chunk_callback = ws_frame_chunk,
    .on_msg_recv_callback = ws_message,
};

/* Queues the front's own packets as text messages. */
static void queue_ctl(struct wsc *c, struct eio *e)
{
    size_t at = 0;

    while (at < e->ctl.len) {
        const char *p = e->ctl.data + at;
        const char *nl = memchr(p, '\n', e->ctl.len - at);
        size_t n = (size_t)(nl - p);
        struct wslay_event_msg m = {
            .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)p, .msg_length = n};
        wslay_event_queue_msg(c->ws, &m);
        at += n + 1;
    }
    buf_clear(&e->ctl);
}

static void wsc_close_now(struct wsc *c, unsigned code, const char *reason);

/*
 * Sends what is queued: the front's packets, and the session's lines one
 * text message at a time, as far as the socket takes them. Safe inside a
 * fan-out: it reads nothing.
 */
static void send_queued(struct wsc *c)
{
    struct eio *e = c->e;

    if (!e || !e->websocket || e->closed || c->closing) {
        drive_send(c);
        return;
    }
    if (e->ctl.len)
        queue_ctl(c, e);
    for (;;) {
        if (!c->omsg_open && e->s && session_outq(e->s)->n) {
            struct wslay_event_fragmented_msg m = {
                .opcode = WSLAY_TEXT_FRAME,
                .read_callback = ws_read_line,
            };
            if (wslay_event_queue_fragmented_msg(c->ws, &m) != 0)
                break;
            c->omsg_open = true;
        }
        /* Frames gather in fs->out: one send() for a batch, not one per message. */
        c->w.batch_full = false;
        if (wslay_event_send(c->ws) != 0) {
            buf_clear(&c->fs->out);
            c->w.broken = true;
            return;
        }
        if (c->w.batch_full) {
            if (!ws_wire_flush(&c->w) || ws_wire_waiting(&c->w))
                break;
            continue;
        }
        if (c->omsg_open || wslay_event_get_queued_msg_count(c->ws) ||
            !(e->s && session_outq(e->s)->n))
            break; /* the socket is full, or nothing is left */
    }
    ws_wire_flush(&c->w);
}

/* Reads what the socket has, unless the session holds input back. */
static void read_some(struct wsc *c)
{
    if (c->closing || c->input_done || c->held || c->w.broken)
        return;
    c->w.pass_bytes = 0;
    bool out_idle = !c->omsg_open && !wslay_event_want_write(c->ws);
    int rv = wslay_event_recv(c->ws);
    if (rv == 0 && !c->w.broken && !c->w.eof && wslay_event_want_read(c->ws))
        return;
    c->input_done = true;
    if (!c->w.broken && !c->w.eof) {
        /*
         * wslay refused a frame header (a control frame over 125 bytes or
         * fragmented, a length not written the shortest way), or took a
         * 1-byte close body for none, and queued a close without a code.
         * With nothing of ours half sent, a fresh context says 1002 and why,
         * as /v1/ws does; the session ends below all the same.
         */
        const char *why = rv == WSLAY_ERR_CALLBACK_FAILURE ? WS_WHY_FRAME_HEADER
                          : c->close_one_byte && wslay_event_get_close_received(c->ws)
                              ? WS_WHY_CLOSE_ONE_BYTE
                              : NULL;
        if (why && out_idle && ws_wire_renew_ctx(&c->ws, &wsc_callbacks, c))
            wsc_close(c, WS_CLOSE_PROTOCOL, why);
    }
    struct eio *e = c->e;
    if (!e || e->closed) {
        wsc_close(c, WS_CLOSE_NORMAL, "");
    } else if (e->websocket) {
        /* The tier closes the session; its close op closes c. */
        eio_close(e, GW_OK, c->w.broken ? "connection lost" : "the client closed its WebSocket");
    } else {
        /* A probe that failed: polling goes on. */
        e->ws = NULL;
        e->probed = false;
        c->e = NULL;
        wsc_close(c, WS_CLOSE_NORMAL, "");
    }
}

/* What a pass leaves: a close asked for meanwhile, a broken connection, the events to watch. */
static void pass_end(struct wsc *c)
{
    c->busy = false;
    if (c->close_code) {
        unsigned code = c->close_code;
        c->close_code = 0;
        wsc_close_now(c, code, c->close_reason);
        return;
    }
    if (c->closing)
        return;
    if (c->w.broken) {
        struct eio *e = c->e;
        if (e && e->websocket && e->s)
            session_abort(e->s, "connection lost"); /* its close op closes c */
        else if (e && e->websocket)
            eio_close(e, GW_OK, "connection lost");
        else
            wsc_close_now(c, WS_CLOSE_NORMAL, "");
        return;
    }
    c->reading = !c->input_done && !c->held && !pongs_backlog(c);
    c->want_write = wants_write(c);
    wsc_events(c);
}

/* Reads, then sends; a call made while one is under way only asks it to go round again. */
static void wsc_pump(struct wsc *c)
{
    if (c->busy) {
        c->again = true;
        return;
    }
    if (c->closing && !c->close_code)
        return;
    c->busy = true;
    do {
        c->again = false;
        read_some(c);
        send_queued(c);
    } while (c->again && !c->close_code && !c->w.broken && !c->closing);
    pass_end(c);
}

/* Sends only (the session's flush). */
static void wsc_send(struct wsc *c)
{
    if (c->busy) {
        c->again = true;
        return;
    }
    if (c->closing)
        return;
    c->busy = true;
    send_queued(c);
    pass_end(c);
}

/* The probe of an upgrade: 2probe, answered 3probe; then 5, and the WebSocket is the transport. */
static void probe_packet(struct wsc *c, const char *p, size_t len)
{
    struct eio *e = c->e;

    if (len == 6 && memcmp(p, "2probe", 6) == 0 && !e->probed) {
        struct wslay_event_msg m = {
            .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)"3probe", .msg_length = 6};
        wslay_event_queue_msg(c->ws, &m);
        e->probed = true;
        log_trace("sio %s probe answered", e->sid);
        if (e->get)
            answer_get(e); /* what there is, or a noop: the client pauses polling */
        return;
    }
    if (len == 1 && p[0] == EIO_UPGRADE && e->probed) {
        loop_timer_cancel(c->fs->loop, c->timer);
        c->timer = NULL;
        e->websocket = true;
        e->probed = false;
        if (e->get)
            answer_get(e);
        if (e->s)
            session_in_transit(e->s, false); /* no poll follows: the WebSocket takes it all */
        log_debug("sio %s %s upgraded to websocket", e->sid, e->peer);
        return; /* wsc_pump sends what waited, as it returns from reading */
    }
    log_info("sio %s %s: probe refused: not 2probe then 5", e->sid, e->peer);
    e->ws = NULL;
    e->probed = false;
    c->e = NULL;
    c->input_done = true;
    wsc_close(c, WS_CLOSE_PROTOCOL, "an upgrade probe is 2probe, then 5");
}

static void wsc_free(struct wsc *c)
{
    struct front_sio *fs = c->fs;

    if (c->lingering || c->closing)
        fs->nlingering--;
    if (c->prev)
        c->prev->next = c->next;
    else
        fs->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->e)
        c->e->ws = NULL;
    loop_timer_cancel(fs->loop, c->timer);
    loop_del_fd(fs->loop, c->w.fd);
    close(c->w.fd);
    wslay_event_context_free(c->ws);
    buf_release(&c->msg);
    input_budget_release(c->fs->o.inputs, &c->msg_held);
    ws_wire_release(&c->w);
    free(c);
}

static void on_wsc_timer(struct loop *loop, void *ctx)
{
    struct wsc *c = ctx;

    (void)loop;
    c->timer = NULL;
    if (c->e && !c->e->websocket) {
        /* A probe that did not end in an upgrade in time: polling goes on. */
        log_info("sio %s %s: the upgrade probe timed out", c->e->sid, c->e->peer);
        c->e->ws = NULL;
        c->e->probed = false;
        c->e = NULL;
        c->input_done = true;
        wsc_close(c, WS_CLOSE_POLICY, "upgrade timed out");
        return;
    }
    wsc_free(c); /* the linger is over */
}

/*
 * Sends the close frame, then reads and drops until the peer closes or
 * LINGER_MS pass. Inside a pass (wslay's callbacks, a nested call), only
 * asks for it: the pass closes on its way out.
 */
static void wsc_close(struct wsc *c, unsigned code, const char *reason)
{
    if (c->closing || c->close_code)
        return;
    if (c->busy) {
        c->close_code = code;
        c->close_reason = reason;
        c->input_done = true;
        return;
    }
    wsc_close_now(c, code, reason);
}

static void wsc_close_now(struct wsc *c, unsigned code, const char *reason)
{
    if (c->closing)
        return;
    c->closing = true;
    c->input_done = true;
    c->fs->nlingering++;
    wslay_event_queue_close(c->ws, (uint16_t)code, (const uint8_t *)reason, strlen(reason));
    drive_send(c);
    loop_timer_cancel(c->fs->loop, c->timer);
    c->timer = loop_timer_add(c->fs->loop, LINGER_MS, on_wsc_timer, c);
    if (c->w.broken || c->w.eof) {
        wsc_free(c);
        return;
    }
    if (!wants_write(c)) {
        c->lingering = true;
        shutdown(c->w.fd, SHUT_WR);
    }
    c->reading = c->lingering;
    c->want_write = !c->lingering;
    wsc_events(c);
}

static void on_wsc_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct wsc *c = ctx;
    char sink[4096];

    (void)loop;
    (void)fd;
    if (c->closing) {
        if (!c->lingering) {
            if (!drive_send(c) || (events & LOOP_HUP)) {
                wsc_free(c);
                return;
            }
            if (!wants_write(c)) {
                c->lingering = true;
                shutdown(c->w.fd, SHUT_WR);
                c->reading = true;
                c->want_write = false;
                wsc_events(c);
            }
            return;
        }
        for (int i = 0; i < 16; i++) {
            ssize_t n = recv(c->w.fd, sink, sizeof(sink), 0);
            if (n > 0)
                continue;
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                return;
            wsc_free(c);
            return;
        }
        return;
    }
    wsc_pump(c);
}

void front_sio_adopt(struct front_sio *fs, int fd, const char *head, size_t len, const char *sid)
{
    struct wsc *c = gw_xcalloc(1, sizeof(*c));
    char peer[64], why[GW_ERRLEN];
    struct eio *e = NULL;

    c->fs = fs;
    ws_wire_init(&c->w, fd, &fs->out, head, len);
    if (net_set_nonblock(fd, why) < 0)
        log_warn("sio: %s", why);
    net_tune_session(fd, fs->o.ping_interval_ms / 1000 + 1, fs->o.ping_timeout_ms / 1000 + 30);
    net_peer_name(fd, peer, sizeof(peer));
    if (!(c->ws = ws_wire_new_ctx(&wsc_callbacks, c)) ||
        loop_add_fd(fs->loop, fd, LOOP_READ, on_wsc_io, c) < 0) {
        log_error("sio: cannot serve a new WebSocket");
        if (c->ws)
            wslay_event_context_free(c->ws);
        close(fd);
        ws_wire_release(&c->w);
        free(c);
        return;
    }
    c->next = fs->conns;
    if (c->next)
        c->next->prev = c;
    fs->conns = c;
    c->reading = true;
    c->watching = LOOP_READ;
    fs->touched = true;
    if (sid) {
        e = lookup(fs, sid);
        if (!e || e->closed || e->websocket || e->ws) {
            wsc_close(c, WS_CLOSE_POLICY, "session ID unknown");
            return;
        }
        e->ws = c;
        c->e = e;
        c->timer = loop_timer_add(fs->loop, PROBE_TIMEOUT_MS, on_wsc_timer, c);
        log_trace("sio %s probe on fd %d from %s", sid, fd, peer);
    } else {
        char open[256];
        if (fs->quiescing ||
            (fs->count >= fs->o.max_sessions &&
             !sessions_make_room(fs->tier, GW_T_SOCKETIO, peer, fs->o.max_sessions))) {
            wsc_close(c, fs->quiescing ? WS_CLOSE_GOING_AWAY : WS_CLOSE_TRY_AGAIN,
                      fs->quiescing ? "the gateway is stopping" : "too many sessions");
            return;
        }
        e = eio_new(fs, peer);
        e->websocket = true;
        e->ws = c;
        c->e = e;
        int n = eio_open_packet(open, sizeof(open), e->sid, false, fs->o.ping_interval_ms,
                                fs->o.ping_timeout_ms, fs->o.max_payload);
        ctl_add(e, open, (size_t)n);
        log_trace("sio %s websocket on fd %d from %s", e->sid, fd, peer);
    }
    wsc_pump(c);
}

/*
 * Requests and WebSockets come in inside libmicrohttpd's run, after the
 * tier's pass: a session they opened or fed must get one before the loop
 * sleeps.
 */
static int before_sleep(struct loop *loop, void *ctx)
{
    struct front_sio *fs = ctx;

    (void)loop;
    if (!fs->touched)
        return -1;
    fs->touched = false;
    return 0;
}

struct front_sio *front_sio_new(struct sessions *tier, struct loop *loop,
                                const struct front_sio_options *opts)
{
    struct front_sio *fs = gw_xcalloc(1, sizeof(*fs));

    fs->tier = tier;
    fs->loop = loop;
    fs->o = *opts;
    source_table_init(&fs->spare_sources);
    table_grow(fs);
    loop_add_hook(loop, before_sleep, fs);
    return fs;
}

size_t front_sio_count(const struct front_sio *fs)
{
    return fs->count;
}

/*
 * Polling sessions whose client has yet to poll for their end: what their
 * session still sends (the acks of what it ran, the bye) and the close
 * packet. A handshake that never connected owes nothing anyone waits for.
 */
static size_t polls_owed(const struct front_sio *fs)
{
    size_t n = 0;

    for (size_t b = 0; b < fs->nbuckets; b++)
        for (const struct eio *e = fs->table[b]; e; e = e->hnext)
            n += !e->websocket && e->connected && !e->closed_sent;
    return n;
}

size_t front_sio_lingering(const struct front_sio *fs)
{
    /* Only asked while the gateway stops: the walk costs nothing otherwise. */
    return fs->nlingering + polls_owed(fs);
}

bool front_sio_polls_owed(const struct front_sio *fs)
{
    return polls_owed(fs) > 0;
}

void front_sio_quiesce(struct front_sio *fs)
{
    fs->quiescing = true;
    for (size_t b = 0; b < fs->nbuckets; b++) {
        for (struct eio *e = fs->table[b], *next; e; e = next) {
            next = e->hnext;
            if (!e->s)
                eio_close(e, GW_OK, "the gateway is stopping");
        }
    }
}

void front_sio_free(struct front_sio *fs)
{
    if (!fs)
        return;
    for (size_t b = 0; b < fs->nbuckets; b++)
        while (fs->table[b])
            free_eio(fs->table[b]);
    while (fs->conns)
        wsc_free(fs->conns);
    buf_release(&fs->out);
    free(fs->table);
    source_table_fini(&fs->spare_sources);
    free(fs);
}
