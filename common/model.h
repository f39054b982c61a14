/*
 * model.h - the domain as plain data: a message, a channel summary, and the
 * size limits every front checks before it allocates.
 *
 * Depends on nothing but libc; model.c has the few functions the structs need.
 */
#ifndef GW_MODEL_H
#define GW_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define GW_CHANNEL_MAX        64          /* bytes in a channel name */
#define GW_SENDER_MAX         128         /* bytes in a sender name */
#define GW_BODY_MAX           (64 * 1024) /* default request/message body limit */
#define GW_LIMIT_DEFAULT      100         /* messages per history page by default */
#define GW_LIMIT_MAX          1000        /* messages per history page at most */
#define GW_SENDER_DEFAULT     "anonymous"
#define GW_WAIT_MAX           60 /* seconds a long-poll may wait */
/* Encoded bytes of messages in one page (history, replay) by default; a page holds at least one. */
#define GW_PAGE_BYTES_DEFAULT (1024 * 1024)

/* Channels per page of the channel list, by default and at most: bounds its bytes too. */
#define GW_CHANNELS_LIMIT_DEFAULT 1000
#define GW_CHANNELS_LIMIT_MAX     1000

/*
 * Every way in or out of the gateway, once: X(ID, name, publishes). A front
 * that is added adds one row here; the via names, the store's via column and
 * every per-transport metric follow from it. `publishes` says whether
 * messages can come in through it (and so be a message's `via`).
 */
#define GW_TRANSPORTS(X)                                                                           \
    X(REST, "rest", 1)         /* plain HTTP requests */                                           \
    X(LONGPOLL, "longpoll", 0) /* HTTP reads that waited */                                        \
    X(TCP, "tcp", 1)           /* TCP sessions */                                                  \
    X(SSE, "sse", 0)           /* Server-Sent Events streams (read only) */                        \
    X(WS, "ws", 1)             /* WebSocket sessions (GET /v1/ws) */                               \
    X(UDP, "udp", 1)           /* UDP datagrams */                                                 \
    X(SOCKETIO, "socketio", 1) /* Socket.IO sessions (/socket.io/) */

enum gw_transport {
#define GW_TRANSPORT_ENUM(id, name, publishes) GW_T_##id,
    GW_TRANSPORTS(GW_TRANSPORT_ENUM)
#undef GW_TRANSPORT_ENUM
        GW_T__COUNT
};

/* "rest", "tcp", ...; "unknown" out of range. */
const char *gw_transport_name(enum gw_transport t);
/* Whether messages can come in through t. */
int gw_transport_publishes(enum gw_transport t);
/* Returns 0 and sets *out when name is a transport that publishes, -1 otherwise. */
int gw_via_parse(const char *name, enum gw_transport *out);

/*
 * One message. sender and body are owned by the struct (free them with
 * gw_msg_release) and are NUL-terminated, but body may also hold NULs: its
 * length is body_len.
 */
struct gw_msg {
    int64_t id;            /* global, unique, increasing in commit order */
    int64_t seq;           /* 1, 2, 3 ... within the channel */
    int64_t ts_ms;         /* commit time, milliseconds since the epoch, UTC */
    enum gw_transport via; /* the transport it came in through */
    char channel[GW_CHANNEL_MAX + 1];
    char *sender;
    size_t sender_len;
    char *body;
    size_t body_len;
    /* CLOCK_MONOTONIC µs when the core accepted it; 0 when read from the store */
    uint64_t accepted_us;
};

/*
 * A hole in a channel's seqs: messages from..to (inclusive) are not in the
 * store (removed by retention, or by hand). It stands before msgs[before] of
 * the page it belongs to (before == n: after the last message).
 */
struct gw_gap {
    int64_t from, to;
    size_t before;
};

/*
 * One read of a channel: messages with seq > since, oldest first, bounded in
 * count and in encoded bytes (at least one message), the holes met on the
 * way, and the channel's last seq in the same snapshot. next_since is where
 * the next read starts: the last seq covered by a message or a hole, or
 * since when the page is empty.
 */
struct gw_page {
    struct gw_msg *msgs; /* owned */
    size_t n;
    struct gw_gap *gaps; /* owned */
    size_t ngaps;
    int64_t top;
    int64_t next_since;
    int full; /* stopped by the count or byte bound: more may follow */
};

struct gw_channel_info {
    char name[GW_CHANNEL_MAX + 1];
    int64_t messages;
    int64_t last_seq;
    int64_t last_ts_ms;
};

/* Frees sender and body; m may then be reused. */
void gw_msg_release(struct gw_msg *m);
/* Releases n messages and the array itself (as returned by the store). */
void gw_msgs_free(struct gw_msg *msgs, size_t n);
/* A deep copy of m into *out. */
void gw_msg_copy(struct gw_msg *out, const struct gw_msg *m);
/* Frees a page's messages and gaps and empties it. */
void gw_page_release(struct gw_page *p);
/*
 * Appends the hole from..to to p, before the message that comes next
 * (msgs[n]); *cap is the room p->gaps has (0 at first), grown as needed.
 */
void gw_page_add_gap(struct gw_page *p, size_t *cap, int64_t from, int64_t to);

/*
 * The bytes m takes in its JSON form (the message object of the REST API and
 * of a session push), exactly: what byte bounds on pages and queues count.
 */
size_t gw_msg_wire_len(const struct gw_msg *m);

/*
 * The most the message published with these fields takes in its JSON form,
 * whatever id and seq it is given: what is reserved for its answer before
 * it is stored.
 */
size_t gw_msg_wire_len_most(const char *channel, size_t channel_len, const char *sender,
                            size_t sender_len, const char *body, size_t body_len,
                            enum gw_transport via);

#endif
