/*
 * outq.h - a session's outgoing queue: whole lines, each held by reference,
 * sent in order, with the byte counts the output bound is judged on.
 *
 * A pushed message is encoded once per fan-out into a struct wline that
 * every subscriber's queue points at (a reference count, no copy); replies
 * are lines of their own. The queue is a ring of (line, subscription, seq)
 * items: what a front needs to send with writev or frame line by line, and
 * what a slow consumer's farewell needs to name the last seq really sent.
 *
 * Plain data structure; depends on gw.h, libc, and the reply budget its
 * reply lines count in. Loop thread only.
 */
#ifndef GW_OUTQ_H
#define GW_OUTQ_H

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

/* One line of output, LF included, shared by reference. */
struct wline {
    unsigned refs;
    size_t len;
    struct reply_source *account; /* counts len while the line lives (wline_account), or NULL */
    char *data;                   /* inline_data, or storage of its own */
    char inline_data[];
};

struct buf;
struct reply_source;

/* A new line of (data, len) with one reference, the caller's. */
struct wline *wline_new(const char *data, size_t len);
/* A new line that takes b's storage without copying it (b is left empty). */
struct wline *wline_take(struct buf *b);
struct wline *wline_ref(struct wline *w);
/* Counts w's bytes for s in the reply budget from now until w is freed (once per line). */
void wline_account(struct wline *w, struct reply_source *s);
/* Drops a reference; frees the line with the last. NULL is a no-op. */
void wline_unref(struct wline *w);

struct outq_item {
    struct wline *w;  /* a reference owned by the queue */
    uint32_t sub_id;  /* the subscription a push is for; 0 for a reply */
    int64_t prev_seq; /* a push: the subscription's cursor before it */
};

struct outq {
    struct outq_item *ring;
    size_t head, n, cap; /* ring[head] is the oldest; cap is 0 or a power of two */
    size_t head_sent;    /* bytes of ring[head] already sent */
    size_t bytes;        /* bytes not yet sent */
    size_t push_bytes;   /* bytes of pushes (sub_id != 0) not yet wholly sent */
    size_t promised;     /* unsent bytes from the head the front has announced (outq_promise) */
};

void outq_init(struct outq *q);
/* Drops every line; q is empty and reusable (its storage freed). */
void outq_release(struct outq *q);

/* Queues w, taking a new reference to it. */
void outq_push(struct outq *q, struct wline *w, uint32_t sub_id, int64_t prev_seq);

/* The i-th queued item (0: the head), or NULL. */
const struct outq_item *outq_at(const struct outq *q, size_t i);

/* Fills at most max iovecs with the unsent bytes, in order; returns how many. */
size_t outq_iov(const struct outq *q, struct iovec *iov, size_t max);

/* bytes were sent from the front of the queue: drops what is wholly sent. */
void outq_consume(struct outq *q, size_t bytes);

/*
 * Frees the ring of an empty queue. Not done by outq_consume: a subscriber
 * that keeps up would allocate and free it for every message; the tier trims
 * its idle sessions' queues once per tick instead, so that an idle session
 * keeps no ring.
 */
void outq_trim(struct outq *q);

/* Whether the head line is partly sent (it must then be finished before anything else). */
static inline int outq_head_started(const struct outq *q)
{
    return q->n && q->head_sent > 0;
}

/*
 * The front has announced the next n unsent bytes (an HTTP chunk's size
 * line says how many follow): the lines they fall in are kept by
 * outq_drop_unstarted, whatever else is dropped. n <= q->bytes; sending
 * counts the promise down.
 */
void outq_promise(struct outq *q, size_t n);

/* How many items from the head must be sent whole: a partly sent head, and every promised line. */
size_t outq_kept(const struct outq *q);

/* Drops every item not yet started: everything but outq_kept's. */
void outq_drop_unstarted(struct outq *q);

#endif
