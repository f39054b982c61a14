/*
 * model.h - the domain as plain data: a message, a channel summary, and the
 * size limits every front checks before it allocates.
 *
 * Depends on nothing but libc; gw_msg_release (model.c) is the only function.
 */
#ifndef GW_MODEL_H
#define GW_MODEL_H

#include <stddef.h>
#include <stdint.h>

#define GW_CHANNEL_MAX    64          /* bytes in a channel name */
#define GW_SENDER_MAX     128         /* bytes in a sender name */
#define GW_BODY_MAX       (64 * 1024) /* default request/message body limit */
#define GW_LIMIT_DEFAULT  100         /* messages per history page by default */
#define GW_LIMIT_MAX      1000        /* messages per history page at most */
#define GW_SENDER_DEFAULT "anonymous"
#define GW_WAIT_MAX       60 /* seconds a long-poll may wait */

/* The interface a message came in through; its name goes on the wire. */
enum gw_via { GW_VIA_REST = 0, GW_VIA_TCP, GW_VIA__COUNT };

const char *gw_via_name(enum gw_via via);
/* Returns 0 and sets *out when name is a known interface, -1 otherwise. */
int gw_via_parse(const char *name, enum gw_via *out);

/*
 * One message. sender and body are owned by the struct (free them with
 * gw_msg_release) and are NUL-terminated, but body may also hold NULs: its
 * length is body_len.
 */
struct gw_msg {
    int64_t id;    /* global, unique, increasing in commit order */
    int64_t seq;   /* 1, 2, 3 ... within the channel */
    int64_t ts_ms; /* commit time, milliseconds since the epoch, UTC */
    enum gw_via via;
    char channel[GW_CHANNEL_MAX + 1];
    char *sender;
    size_t sender_len;
    char *body;
    size_t body_len;
    /* CLOCK_MONOTONIC µs when the core accepted it; 0 when read from the store */
    uint64_t accepted_us;
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

#endif
