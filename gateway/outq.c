/*
 * outq.c - see outq.h.
 */
#include "outq.h"

#include "buf.h"
#include "gw.h"
#include "reply_budget.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

struct wline *wline_new(const char *data, size_t len)
{
    struct wline *w = gw_xmalloc(sizeof(*w) + len);

    w->refs = 1;
    w->len = len;
    w->account = NULL;
    w->data = w->inline_data;
    memcpy(w->data, data, len);
    return w;
}

struct wline *wline_take(struct buf *b)
{
    struct wline *w = gw_xmalloc(sizeof(*w));
    size_t cap = b->cap;

    w->refs = 1;
    w->account = NULL;
    w->data = buf_detach(b, &w->len);
    /* A buffer grows by doubling: a page may have up to twice its size behind it. Not kept. */
    if (w->len && cap - w->len > w->len / 8)
        w->data = gw_xrealloc(w->data, w->len);
    return w;
}

struct wline *wline_ref(struct wline *w)
{
    w->refs++;
    return w;
}

void wline_account(struct wline *w, struct reply_source *s)
{
    if (w->account || !w->len)
        return;
    w->account = s;
    reply_budget_add(s, w->len);
}

void wline_unref(struct wline *w)
{
    if (w && --w->refs == 0) {
        reply_budget_release(w->account, w->len);
        if (w->data != w->inline_data)
            free(w->data);
        free(w);
    }
}

void outq_init(struct outq *q)
{
    memset(q, 0, sizeof(*q));
}

void outq_release(struct outq *q)
{
    for (size_t i = 0; i < q->n; i++)
        wline_unref(q->ring[(q->head + i) & (q->cap - 1)].w);
    free(q->ring);
    outq_init(q);
}

static void grow(struct outq *q)
{
    size_t cap = q->cap ? q->cap * 2 : 8;
    struct outq_item *ring = gw_xmalloc(cap * sizeof(*ring));

    for (size_t i = 0; i < q->n; i++)
        ring[i] = q->ring[(q->head + i) & (q->cap - 1)];
    free(q->ring);
    q->ring = ring;
    q->cap = cap;
    q->head = 0;
}

void outq_push(struct outq *q, struct wline *w, uint32_t sub_id, int64_t prev_seq)
{
    if (q->n == q->cap)
        grow(q);
    q->ring[(q->head + q->n) & (q->cap - 1)] =
        (struct outq_item){.w = wline_ref(w), .sub_id = sub_id, .prev_seq = prev_seq};
    q->n++;
    q->bytes += w->len;
    if (sub_id)
        q->push_bytes += w->len;
}

const struct outq_item *outq_at(const struct outq *q, size_t i)
{
    return i < q->n ? &q->ring[(q->head + i) & (q->cap - 1)] : NULL;
}

size_t outq_iov(const struct outq *q, struct iovec *iov, size_t max)
{
    size_t k = 0;

    for (size_t i = 0; i < q->n && k < max; i++, k++) {
        const struct wline *w = q->ring[(q->head + i) & (q->cap - 1)].w;
        size_t skip = i == 0 ? q->head_sent : 0;
        iov[k].iov_base = (char *)w->data + skip;
        iov[k].iov_len = w->len - skip;
    }
    return k;
}

/* Takes the head off the ring. */
static void pop(struct outq *q)
{
    struct outq_item *it = &q->ring[q->head];

    if (it->sub_id)
        q->push_bytes -= it->w->len;
    wline_unref(it->w);
    q->head = (q->head + 1) & (q->cap - 1);
    q->n--;
    q->head_sent = 0;
}

void outq_consume(struct outq *q, size_t bytes)
{
    GW_ASSERT(bytes <= q->bytes);
    q->bytes -= bytes;
    q->promised = bytes < q->promised ? q->promised - bytes : 0;
    while (bytes) {
        size_t left = q->ring[q->head].w->len - q->head_sent;
        if (bytes < left) {
            q->head_sent += bytes;
            return;
        }
        bytes -= left;
        pop(q);
    }
}

void outq_trim(struct outq *q)
{
    if (q->n == 0 && q->cap) {
        free(q->ring);
        q->ring = NULL;
        q->cap = 0;
        q->head = 0;
    }
}

void outq_promise(struct outq *q, size_t n)
{
    GW_ASSERT(n <= q->bytes);
    q->promised = n;
}

size_t outq_kept(const struct outq *q)
{
    size_t keep = 0, covered = 0;

    while (keep < q->n) {
        const struct outq_item *it = &q->ring[(q->head + keep) & (q->cap - 1)];
        bool started = keep == 0 && q->head_sent > 0;
        if (!started && covered >= q->promised)
            break;
        covered += it->w->len - (keep == 0 ? q->head_sent : 0);
        keep++;
    }
    return keep;
}

void outq_drop_unstarted(struct outq *q)
{
    size_t keep = outq_kept(q);

    while (q->n > keep) {
        struct outq_item *it = &q->ring[(q->head + q->n - 1) & (q->cap - 1)];
        q->bytes -= it->w->len;
        if (it->sub_id)
            q->push_bytes -= it->w->len;
        wline_unref(it->w);
        q->n--;
    }
}
