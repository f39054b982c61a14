/*
 * server_line.h - what a client makes of the gateway's answers: a session
 * line (docs/protocol.md) into a small struct, its type, op, code, message,
 * tag and the message it carries; and the two REST bodies clients read back
 * (docs/api.md), a history page and an error.
 *
 * Part of libgwcodec, the one library that links jansson; depends on gw.h,
 * buf.h and proto_line.h (the ops), and on nothing of the gateway. Pure: no
 * I/O, no globals. A line written the way the gateway writes it
 * (common/codec_json.c) whose strings need no escape is read without jansson
 * when it is a message push or the ok of a PUB, and so is the head of any
 * line (server_line_type): a load generator reading 100,000 lines a second
 * then spends its time on the gateway, not on parsing. Anything else goes
 * through jansson, so the result never depends on the layout.
 *
 * sl_ is the short prefix of this module's small types.
 */
#ifndef GW_SERVER_LINE_H
#define GW_SERVER_LINE_H

#include "buf.h"
#include "gw.h"
#include "proto_line.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum sl_type {
    SL_INVALID, /* not a JSON object with a string "type" */
    SL_HELLO,   /* the greeting */
    SL_MESSAGE, /* push: a message */
    SL_PING,    /* push: the heartbeat */
    SL_GAP,     /* push: messages no longer stored */
    SL_OK,      /* reply */
    SL_PONG,    /* reply to PING */
    SL_BYE,     /* reply to QUIT, or the farewell at shutdown */
    SL_ERROR,   /* reply, or a farewell before the server closes */
    SL_OTHER    /* a type this client does not know: taken as a reply */
};

/* True for the types that never answer a command. */
bool sl_type_is_push(enum sl_type type);

/*
 * A string of the line: (s, len), borrowed (see struct server_line), not
 * NUL-terminated, and it may hold NULs (a body). s is NULL when the field is
 * absent or not a string.
 */
struct sl_text {
    const char *s;
    size_t len;
};

/* True when t is present and equal to the NUL-terminated string s. */
bool sl_text_is(struct sl_text t, const char *s);

/* {"id","channel","seq","sender","body","ts","via"}; integers are -1 when absent. */
struct sl_msg {
    int64_t id, seq;
    struct sl_text channel, sender, body, ts, via;
};

/* One entry of CHANNELS: {"name","messages","last_seq","last_ts"}. */
struct sl_channel {
    struct sl_text name, last_ts;
    int64_t messages, last_seq;
};

/*
 * One decoded line. Its strings are borrowed from the line given to
 * server_line_parse and from the struct itself: valid while both are, until
 * server_line_release. Integers are -1 when absent (or not integers).
 */
struct server_line {
    enum sl_type type;
    enum proto_op op;       /* ok, error: the command answered; PROTO_NONE when absent or unknown */
    struct sl_text op_name; /* ok, error: the op as sent */
    struct sl_text code;    /* error */
    struct sl_text message; /* error: for a person */
    struct sl_text tag;     /* any reply: the tag the command carried */
    struct sl_text channel; /* gap; ok of sub, unsub, hist */
    struct sl_text token;   /* pong */
    struct sl_text reason;  /* bye */
    struct sl_text next_after; /* ok of channels: the page was full, more may follow it */
    struct sl_text server, session, protocol; /* hello */
    int64_t version, heartbeat;               /* hello */
    int64_t since, top;                       /* ok of sub */
    int64_t next_since;                       /* ok of hist */
    int64_t first_seq;                        /* gap: the next seq that can come */
    int64_t gap_from, gap_to;                 /* gap: the seqs not stored */
    int64_t time_us;                          /* ping, pong */
    bool more;                                /* ok of hist: the channel goes on after next_since */
    bool has_msg;
    struct sl_msg msg; /* a message push's message, or the ok of a PUB's */
    /* How many entries the accessors below give: */
    size_t n_messages; /* ok of hist: the page */
    size_t n_channels; /* ok of channels */
    size_t n_commands; /* ok of help */
    size_t n_last_seq; /* the slow_consumer error: where to resume */
    /* private */
    const char *raw; /* the line read the fast way (for server_line_msg_json) */
    size_t raw_len;
    void *json;          /* json_t *, owned; NULL when read the fast way */
    struct sl_msg *msgs; /* owned: a page read the fast way */
};

/* Decodes (line, len) into *l. Never fails: a line that cannot be read is SL_INVALID. */
void server_line_parse(struct server_line *l, const char *line, size_t len);
void server_line_release(struct server_line *l);

/*
 * The type of a line and, for ok and error, its op, with nothing else
 * decoded: read from the first bytes when the line starts the gateway's way
 * ({"type":"…","op":"…"), else by a full decode. For hot paths that only
 * tell replies from pushes. op may be NULL.
 */
enum sl_type server_line_type(const char *line, size_t len, enum proto_op *op);

/* Message i of an ok of HIST (or of a page, server_line_page). False when i is out of range. */
bool server_line_hist_msg(const struct server_line *l, size_t i, struct sl_msg *m);
/* Channel i of an ok of CHANNELS. */
bool server_line_channel(const struct server_line *l, size_t i, struct sl_channel *c);
/* Usage line i of an ok of HELP. */
bool server_line_command(const struct server_line *l, size_t i, struct sl_text *t);
/* Entry i of the slow_consumer error's "last_seq": a channel and its last seq sent. */
bool server_line_last_seq(const struct server_line *l, size_t i, struct sl_text *channel,
                          int64_t *seq);

/*
 * Appends a message push's message, its fields as the server sent them
 * without "type", as one line of compact JSON and a LF: valid UTF-8, safe
 * for a terminal (client_text_json_safe: every control character escaped,
 * invalid UTF-8 as U+FFFD), whatever the server sent. l must be an
 * SL_MESSAGE.
 */
void server_line_msg_json(const struct server_line *l, struct buf *out);

/*
 * A REST history page (GET /v1/channels/{ch}/messages: {"channel",
 * "messages":[…],"next_since"}), decoded as the ok of a HIST carries it:
 * *l gets type SL_OK, op PROTO_HIST, channel, next_since and n_messages,
 * read with server_line_hist_msg. 0, or -1 with the reason in err (*l is
 * then empty but must still be released). Its strings are borrowed from
 * (body, len).
 */
int server_line_page(struct server_line *l, const char *body, size_t len, char err[GW_ERRLEN]);

/*
 * A REST error body ({"error":{"code","message"}}) as "code: message" in
 * out (outlen bytes, NUL-terminated); anything else as its first bytes,
 * made printable, or "no body".
 */
void server_line_rest_error(const char *body, size_t len, char *out, size_t outlen);

/*
 * A message's ts ("2026-11-24T09:15:02.417Z", RFC 3339 UTC with
 * milliseconds) in milliseconds since the epoch. False for any other form.
 */
bool server_line_ts_ms(struct sl_text ts, int64_t *ms);

#endif
