/*
 * session.h - the session tier: the rules of a live session (docs/protocol.md)
 * whatever carries it, shared by every session-like front (TCP today;
 * WebSocket and the others next).
 *
 * A front moves bytes, frames or datagrams; the tier does the rest: command
 * dispatch and the one rendering of errors to the wire, replies in command
 * order, the window of PUBs in flight, subscriptions with replay pumped into
 * the room the output bound leaves, the output bound itself (commands are
 * not read while a session's queue is over it; a session whose pushes pass
 * it is a slow consumer, told its last seq per channel on a line of its
 * own), heartbeat and idle rules, the consecutive-error rule, and teardown
 * deferred to the loop's before-sleep pass (redis's beforeSleep and
 * freeClientAsync).
 *
 * Calls core, proto_line, codec_json, outq, loop, log. Loop thread only.
 */
#ifndef GW_SESSION_H
#define GW_SESSION_H

#include "gw.h"
#include "model.h"
#include "outq.h"

#include <stdbool.h>
#include <stddef.h>

struct core;
struct loop;
struct session;
struct sessions;

struct session_options {
    unsigned heartbeat;    /* seconds of silence before a ping */
    unsigned idle_timeout; /* seconds without a command, unsubscribed, before closing */
    size_t max_outbuf;     /* bytes queued to one session */
    unsigned max_subs;     /* subscriptions per session */
    /*
     * A HIST page's bound, reserved in the core's reply budget while one is
     * read (reply_budget.h: past --max-reply-memory a HIST or CHANNELS is
     * answered busy).
     */
    size_t page_bytes;
    /*
     * Milliseconds a session may stay over max_outbuf without taking a byte
     * before it is a slow consumer; 0 for the default, 10 s. A setting for
     * the tier's tests, which have no 10 s to wait.
     */
    unsigned stuck_ms;
};

/*
 * What a front gives the tier for each session: the operations on its
 * connection. io is the front's own pointer, handed back to each.
 */
struct session_io_ops {
    /*
     * Send what the session's queue (session_outq) holds, as far as the peer
     * takes it now, and report it with session_sent. Called whenever output
     * is queued, possibly from inside a fan-out: it must not end anything.
     * Returns false when the connection is broken (the tier then ends the
     * session from its next pass).
     */
    bool (*flush)(void *io);
    /* The session takes commands again: offer the lines held back (session_line). */
    void (*resume_input)(void *io);
    /*
     * The session is over: close the connection and forget the session (it
     * is freed after this returns). err says why, for a transport that has
     * codes of its own (a WebSocket close code): GW_OK for an ordinary end
     * (QUIT, the end of the client's input, the connection lost),
     * GW_E_SHUTDOWN, GW_E_SLOW_CONSUMER, GW_E_IDLE, GW_E_TOO_MANY_ERRORS,
     * GW_E_LINE_TOO_LONG or another input error; why is for a person. Called
     * once, from the tier's pass, never from inside a call the front made.
     */
    void (*close)(void *io, enum gw_err err, const char *why);
    /*
     * Optional: the heartbeat, for a transport that has one of its own (a
     * WebSocket ping frame). NULL: the tier queues a ping line.
     */
    void (*heartbeat)(void *io);
    /*
     * Optional: whether the peer sent what the session has not taken yet
     * (in the front's buffer, or the socket's). A session with input
     * waiting is not an idle one to close for a newcomer. NULL: none.
     */
    bool (*input_waiting)(void *io);
};

/*
 * How a session's lines are written. SESSION_LINES: one JSON object per line
 * (TCP; a WebSocket front sends each line as a text frame). SESSION_SSE: a
 * Server-Sent Events stream (text/event-stream): a message is "id: <seq>",
 * "event: message", "data: <message JSON>"; a gap "event: gap" with the id of
 * its last seq; errors and farewells "event: error" / "event: bye"; replies
 * and heartbeats are comments. Commands still come in as lines (the SSE
 * front subscribes with one).
 */
/*
 * SESSION_SOCKETIO: each line is an Engine.IO message packet carrying a
 * Socket.IO packet (docs/socketio.md): the hello is the CONNECT answer
 * 40{"sid":"<session>"}; a reply whose tag is an ack id (digits, as the
 * Socket.IO front sets it) is the ACK 43<id>[<the reply without its tag>];
 * other replies are dropped (the event asked for none); pushes, gaps and
 * errors are events, 42["message"|"gap"|"error",<the line's other fields>];
 * pings, pongs and byes are dropped (Engine.IO has its own).
 */
enum session_format { SESSION_LINES, SESSION_SSE, SESSION_SOCKETIO };

/* The retry: an SSE stream starts with: an EventSource reconnects this long after an end. */
#define SESSION_SSE_RETRY_MS 2000u

/* The tier: every session of every front. core and loop are borrowed. */
struct sessions *sessions_new(struct core *core, struct loop *loop,
                              const struct session_options *opts);
/* Closes every session at once and frees. NULL is a no-op. */
void sessions_free(struct sessions *t);

/* Sessions not yet closed, of every front. */
size_t sessions_count(const struct sessions *t);

/*
 * Stops every session: each gets its pending replies, then a bye line, then
 * is closed.
 */
void sessions_quiesce(struct sessions *t);

/*
 * A new session on a connection of transport, from peer ("ip:port"). Its
 * hello line is queued at once. io and ops stay the front's; ops->close ends
 * them.
 */
struct session *session_open(struct sessions *t, enum gw_transport transport,
                             enum session_format format, const char *peer,
                             const struct session_io_ops *ops, void *io);

/*
 * Fair shares at a front's limit (gateway/fair_share.h): each front's
 * sessions are counted per source address. A front at its limit of
 * sessions of transport asks for a newcomer from peer ("ip:port"):
 * sessions_make_room ends the newest session of the address holding the
 * most, when it holds at least two more than peer's address, with a
 * too_many_sessions error that says why (limit is for that message), and
 * returns true: the front takes the newcomer, over its limit until that
 * close comes in the tier's next pass. False: no session gives way, and
 * the newcomer is refused. sessions_can_make_room says the same without
 * ending anything (for a front that must answer before it takes the
 * newcomer).
 */
bool sessions_can_make_room(struct sessions *t, enum gw_transport transport, const char *peer);
bool sessions_make_room(struct sessions *t, enum gw_transport transport, const char *peer,
                        unsigned limit);

/* The session's id (16 hex digits), for the front's traces. */
const char *session_id(const struct session *s);

/*
 * One command line from the peer, without its line end. Returns false when
 * the session cannot take it now (replies outstanding, the PUB window full,
 * the output queue over its bound): the front keeps it and offers it again
 * after ops->resume_input. True: consumed (run, queued, or answered).
 */
bool session_line(struct session *s, const char *line, size_t len);

/*
 * A command the front could not translate into a line (a Socket.IO packet
 * that is not a command): answered with err and why in its place, as a
 * line that does not parse would be, tagged with (tag, tag_len) when tag is
 * not NULL, and counted as an error. Returns false, as session_line, when
 * it cannot be answered now.
 */
bool session_refuse(struct session *s, enum gw_err err, const char *why, const char *tag,
                    size_t tag_len);

/*
 * Input that cannot be framed: a line over the front's limit (err
 * GW_E_LINE_TOO_LONG) and the like. The session answers err with why after
 * its pending replies, and closes.
 */
void session_input_error(struct session *s, enum gw_err err, const char *why);

/*
 * The peer sends no more (end of stream on its side): the session answers
 * what it was sent, then closes.
 */
void session_input_end(struct session *s);

/*
 * Whether what the peer sends now can still run: false once the session is
 * closing (its last lines on their way), when input is dropped unread.
 */
bool session_takes_input(const struct session *s);

/* The connection broke: the session ends (ops->close follows from the tier's pass). */
void session_abort(struct session *s, const char *why);
/* (why, here and in ops->close, is a string that lives for ever: a literal, strerror()'s.) */

/* The lines waiting to be sent; the front sends from its head. */
struct outq *session_outq(struct session *s);
/* The front sent bytes from the head of the queue. */
void session_sent(struct session *s, size_t bytes);
/*
 * The front took lines off the queue (session_sent) that reach the peer in
 * a piece of their own: a Socket.IO poll's answer, which a client on a slow
 * link takes a while to download. While on (true), the stuck rule waits
 * (the transport's own deadlines judge that client); off (false) when the
 * peer is back for more, which counts as progress.
 */
void session_in_transit(struct session *s, bool on);
/* Counts bytes received from the peer (metrics). */
void session_received(struct session *s, size_t bytes);

/*
 * ---- Datagrams: one command, no session ----
 *
 * A datagram front (UDP) has no connection to hold a session on: each
 * datagram is one command, run by the same parser, the same core calls and
 * rendered as the same ok and error lines as in a session, with no session
 * state around it (no order, window, subscription or heartbeat). Only
 * commands that write are offered, PUB and PING; the others (and nothing
 * that reads the store) are answered unknown_command. A datagram that is not
 * a command (its first word, or its JSON "op", is none of the verbs) is the
 * body of a message published on the front's channel, its sender the peer.
 *
 * Answers (docs/udp.md): PING gets its pong; a PUB gets its ok or error only
 * when it carries a tag (the JSON form), after the commit; another command
 * gets its error; a bare body gets nothing. An answer is never longer than
 * the datagram that asked for it: it is cut as its kind allows
 * (codec_line_*_within), or withheld.
 */

/* Bytes of the front's reply route (a socket address) the tier keeps while a publish commits. */
#define SESSION_ROUTE_MAX 128

/* How a datagram ended, for the front's counters. */
enum session_dgram_end {
    SESSION_DGRAM_DONE,    /* carried out: a PING answered, a message committed */
    SESSION_DGRAM_REFUSED, /* an error: a malformed command, one not offered, a publish refused */
    SESSION_DGRAM_STORE    /* its publish reached the store and did not commit */
};

/* The end of one datagram, as the tier hands it to the front. */
struct session_dgram_result {
    enum session_dgram_end end;
    const char *why;   /* the error, for a person; NULL when done */
    const char *line;  /* the answer to send (len bytes, LF included), or NULL */
    size_t len;        /* never more than the datagram's max_reply */
    bool withheld;     /* an answer was due but does not fit, even cut: not sent */
    const void *route; /* the datagram's route, as the front gave it */
    size_t route_len;
};

/*
 * Called exactly once per session_datagram, on the loop thread: from inside
 * it, or later for a publish (once committed or failed). r and what it
 * points to are borrowed for the call.
 */
typedef void session_dgram_done_fn(void *front, const struct session_dgram_result *r);

/* One datagram as a front hands it over; every pointer is borrowed for the call. */
struct session_dgram {
    enum gw_transport transport; /* the via of what it publishes */
    const char *peer;            /* "ip:port", the sender of a bare body */
    const char *channel;         /* where a datagram that is not a command is published */
    size_t max_reply;            /* bytes an answer may take: the datagram's size */
    const void *route;           /* where the answer goes: copied (at most SESSION_ROUTE_MAX) */
    size_t route_len;
    session_dgram_done_fn *done;
    void *front;
};

/*
 * Runs the command in (line, len), one datagram without its line end, valid
 * UTF-8 (the front drops the rest). d->done follows, exactly once.
 */
void session_datagram(struct sessions *t, const struct session_dgram *d, const char *line,
                      size_t len);

#endif
