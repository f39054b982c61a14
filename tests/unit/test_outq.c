/*
 * test_outq.c - gateway/outq.h: shared lines and their reference counts, the
 * ring of queued lines across partial sends, growth and wrap-around, the
 * byte counts the output bound is judged on, and the slow consumer's
 * drop of the lines not yet started.
 *
 * Freed lines are not looked at: a count that is one too low is a
 * use-after-free and one too high a leak, both of which the sanitized build
 * reports.
 */
#include "outq.h"
#include "reply_budget.h"

#include "buf.h"
#include "gw.h"
#include "tap.h"

#include <stdio.h>
#include <string.h>

static struct wline *line(const char *s)
{
    return wline_new(s, strlen(s));
}

/* The unsent bytes of q, concatenated as outq_iov gives them, into out (NUL-terminated). */
static size_t unsent(const struct outq *q, char *out, size_t cap)
{
    struct iovec iov[64];
    size_t n = outq_iov(q, iov, GW_ARRAY_SIZE(iov)), len = 0;

    for (size_t i = 0; i < n && len + iov[i].iov_len < cap; i++) {
        memcpy(out + len, iov[i].iov_base, iov[i].iov_len);
        len += iov[i].iov_len;
    }
    out[len] = '\0';
    return len;
}

static void test_wline(void)
{
    struct wline *w = wline_new("abc\n", 4);

    is_uint(w->refs, 1, "wline_new: one reference, the caller's");
    is_mem(w->data, w->len, "abc\n", 4, "wline_new: the bytes are copied");
    ok(wline_ref(w) == w, "wline_ref returns the line");
    is_uint(w->refs, 2, "wline_ref: two references");
    wline_unref(w);
    is_uint(w->refs, 1, "wline_unref: back to one");
    wline_unref(w); /* frees: the sanitized build says so if it does not */
    wline_unref(NULL);
    ok(1, "wline_unref(NULL) is a no-op");

    struct wline *empty = wline_new("", 0);
    is_uint(empty->len, 0, "an empty line can be made");
    wline_unref(empty);
}

/* One line queued to two sessions: each queue holds its own reference. */
static void test_shared(void)
{
    struct outq a, b;
    struct wline *w = line("{\"type\":\"message\"}\n");

    outq_init(&a);
    outq_init(&b);
    outq_push(&a, w, 1, 0);
    outq_push(&b, w, 7, 0);
    is_uint(w->refs, 3, "pushed to two queues: the caller's reference and one per queue");
    wline_unref(w);
    is_uint(w->refs, 2, "the caller let go: the queues keep it");
    outq_consume(&a, w->len);
    is_uint(w->refs, 1, "sent on one queue: that queue's reference is dropped");
    is_uint(a.n, 0, "a is empty");
    ok(outq_at(&b, 0) && outq_at(&b, 0)->w == w, "b still holds the very same line");
    outq_release(&b); /* the last reference: frees the line */
    is_uint(b.n + b.bytes + b.cap, 0, "outq_release leaves an empty queue");
    ok(b.ring == NULL, "outq_release frees the ring");
    outq_release(&a);
}

static void test_partial_sends(void)
{
    struct outq q;
    struct iovec iov[8];
    char buf[256];

    outq_init(&q);
    is_uint(outq_iov(&q, iov, 8), 0, "an empty queue has nothing to send");
    ok(outq_at(&q, 0) == NULL, "outq_at on an empty queue is NULL");
    ok(!outq_head_started(&q), "an empty queue has no started head");

    struct wline *l1 = line("one\n"), *l2 = line("second\n"), *l3 = line("3\n");
    outq_push(&q, l1, 0, 0);
    outq_push(&q, l2, 4, 10);
    outq_push(&q, l3, 0, 0);
    wline_unref(l1);
    wline_unref(l2);
    wline_unref(l3);
    is_uint(q.n, 3, "three lines queued");
    is_uint(q.bytes, 13, "bytes: 4 + 7 + 2");
    is_uint(q.push_bytes, 7, "push_bytes counts the push only");
    ok(outq_at(&q, 1)->sub_id == 4 && outq_at(&q, 1)->prev_seq == 10,
       "an item keeps its subscription and the cursor before it");
    ok(outq_at(&q, 3) == NULL, "outq_at past the end is NULL");

    is_uint(outq_iov(&q, iov, 8), 3, "three iovecs");
    unsent(&q, buf, sizeof(buf));
    is_str(buf, "one\nsecond\n3\n", "the iovecs hold the lines in order");
    is_uint(outq_iov(&q, iov, 2), 2, "outq_iov stops at max");

    outq_consume(&q, 2);
    ok(outq_head_started(&q), "2 bytes sent: the head is started");
    is_uint(q.head_sent, 2, "head_sent 2");
    is_uint(q.n, 3, "nothing dropped yet");
    is_uint(q.bytes, 11, "bytes: 11 left");
    unsent(&q, buf, sizeof(buf));
    is_str(buf, "e\nsecond\n3\n", "the first iovec starts after what was sent");

    outq_consume(&q, 2 + 3); /* the rest of "one\n" and "sec" */
    is_uint(q.n, 2, "the head, wholly sent, is dropped");
    is_uint(q.head_sent, 3, "3 bytes of the next line are sent");
    is_uint(q.push_bytes, 7, "a push partly sent still counts whole in push_bytes");
    unsent(&q, buf, sizeof(buf));
    is_str(buf, "ond\n3\n", "sending resumes mid-line");

    outq_consume(&q, 4);
    is_uint(q.push_bytes, 0, "the push wholly sent: push_bytes 0");
    ok(!outq_head_started(&q), "a line boundary: the new head is not started");
    is_uint(q.bytes, 2, "2 bytes left");
    outq_consume(&q, 0);
    is_uint(q.bytes, 2, "consuming 0 bytes changes nothing");
    outq_consume(&q, 2);
    is_uint(q.n + q.bytes + q.push_bytes + q.head_sent, 0, "all sent: the queue is empty");
    ok(q.ring != NULL, "all sent: the ring is kept for the next line (no malloc per message)");
    outq_trim(&q);
    ok(q.ring == NULL && q.cap == 0, "trimmed: the ring is freed (an idle session keeps none)");
    outq_trim(&q);
    ok(q.ring == NULL, "trimming an empty queue again is a no-op");
    outq_release(&q);
}

/* Pushes bodies "<tag><i>\n" for i in [from, to). */
static void push_range(struct outq *q, char tag, int from, int to, uint32_t sub_id)
{
    for (int i = from; i < to; i++) {
        char s[16];
        int n = snprintf(s, sizeof(s), "%c%d\n", tag, i);
        struct wline *w = wline_new(s, (size_t)n);
        outq_push(q, w, sub_id, i);
        wline_unref(w);
    }
}

/* Whether q holds "<tag><i>\n" for i in [from, to), in order, through outq_at and outq_iov. */
static int holds_range(const struct outq *q, char tag, int from, int to)
{
    char want[1024], got[1024];
    size_t len = 0;
    int good = q->n == (size_t)(to - from);

    for (int i = from; i < to; i++) {
        char s[16];
        int n = snprintf(s, sizeof(s), "%c%d\n", tag, i);
        const struct outq_item *it = outq_at(q, (size_t)(i - from));
        good &= it && it->w->len == (size_t)n && memcmp(it->w->data, s, (size_t)n) == 0 &&
                it->prev_seq == i;
        memcpy(want + len, s, (size_t)n);
        len += (size_t)n;
    }
    want[len] = '\0';
    unsent(q, got, sizeof(got));
    return good && strcmp(got, want) == 0;
}

static void test_ring(void)
{
    struct outq q;

    outq_init(&q);
    push_range(&q, 'a', 0, 8, 0);
    is_uint(q.cap, 8, "8 lines: a ring of 8");
    ok(holds_range(&q, 'a', 0, 8), "8 lines in order");

    /* Move the head to slot 3, then fill the ring again: the tail wraps to the front. */
    outq_consume(&q, 3 * 3);
    is_uint(q.head, 3, "3 sent: the head moved to slot 3");
    push_range(&q, 'a', 8, 11, 0);
    is_uint(q.cap, 8, "refilled to 8 lines: no growth");
    ok(holds_range(&q, 'a', 3, 11), "wrapped around: still in order");

    /* Growth from a wrapped ring lays the lines out again in order. */
    push_range(&q, 'a', 11, 12, 0);
    is_uint(q.cap, 16, "a ninth line: the ring doubles");
    is_uint(q.head, 0, "growth puts the head at slot 0");
    ok(holds_range(&q, 'a', 3, 12), "grown from a wrapped ring: still in order");
    push_range(&q, 'a', 12, 40, 0);
    is_uint(q.cap, 64, "37 lines: a ring of 64");
    ok(holds_range(&q, 'a', 3, 40), "37 lines in order");

    /* Drain in uneven steps that cut lines; then the big ring is given back. */
    size_t total = q.bytes, sent = 0, step = 5;
    while (sent < total) {
        size_t k = total - sent < step ? total - sent : step;
        outq_consume(&q, k);
        sent += k;
        step = step % 7 + 1;
    }
    is_uint(q.n + q.bytes, 0, "drained in cut steps: empty");
    outq_trim(&q);
    ok(q.ring == NULL && q.cap == 0 && q.head == 0,
       "an empty queue gives back a ring that had grown (idle sessions stay small)");

    push_range(&q, 'b', 0, 3, 0);
    ok(holds_range(&q, 'b', 0, 3), "usable again after giving back its ring");
    outq_release(&q);
}

static void test_drop_unstarted(void)
{
    struct outq q;

    /* Nothing started: everything goes. */
    outq_init(&q);
    push_range(&q, 'r', 0, 2, 0);
    push_range(&q, 'p', 2, 6, 3);
    is_uint(q.push_bytes, 12, "push_bytes of four pushes");
    outq_drop_unstarted(&q);
    is_uint(q.n + q.bytes + q.push_bytes, 0, "nothing started: every line is dropped");
    outq_release(&q);

    /* A partly sent push at the head is kept, and only its unsent bytes count. */
    outq_init(&q);
    push_range(&q, 'p', 0, 3, 3);
    push_range(&q, 'r', 3, 5, 0);
    outq_consume(&q, 1);
    outq_drop_unstarted(&q);
    is_uint(q.n, 1, "a partly sent head stays");
    is_uint(q.bytes, 2, "bytes: what is left of the head");
    is_uint(q.push_bytes, 3, "push_bytes: the head, a push not wholly sent");
    is_uint(q.head_sent, 1, "the head's progress is kept");
    char buf[64];
    unsent(&q, buf, sizeof(buf));
    is_str(buf, "0\n", "the rest of the head is still to send");
    outq_consume(&q, 2);
    is_uint(q.n + q.bytes + q.push_bytes, 0, "head finished: empty");

    /* After a wrap: the drop walks back over the ring's end. */
    push_range(&q, 'r', 0, 8, 0);
    outq_consume(&q, 3 * 6 + 1);
    push_range(&q, 'p', 8, 13, 9);
    ok(q.head + q.n > q.cap, "the queue wraps around the ring's end");
    outq_drop_unstarted(&q);
    is_uint(q.n, 1, "after a wrap: only the started head stays");
    is_uint(q.push_bytes, 0, "after a wrap: no push left");
    is_uint(q.bytes, 2, "after a wrap: the rest of the head");
    outq_release(&q);

    /* Sent up to a line boundary: the next line is not started, so it goes too. */
    outq_init(&q);
    push_range(&q, 'r', 0, 1, 0);
    push_range(&q, 'p', 1, 2, 5);
    outq_consume(&q, 3);
    ok(!outq_head_started(&q), "sent up to a line boundary: the head is not started");
    outq_drop_unstarted(&q);
    is_uint(q.n + q.bytes + q.push_bytes, 0, "a line not started is dropped, whatever came before");
    outq_release(&q);
}

/* Lines a front has announced (an HTTP chunk's size) are kept by a slow consumer's drop. */
static void test_promise(void)
{
    struct outq q;
    char buf[64];

    /* Five lines "p0\n".."p4\n" of 3 bytes; 7 bytes promised reach into the third. */
    outq_init(&q);
    push_range(&q, 'p', 0, 5, 1);
    outq_promise(&q, 7);
    is_uint(outq_kept(&q), 3, "7 promised bytes fall in 3 lines");
    outq_consume(&q, 4); /* p0 and one byte of p1 sent: 3 promised left */
    is_uint(q.promised, 3, "sending counts the promise down");
    is_uint(outq_kept(&q), 2, "the started head and the line the promise reaches");
    outq_drop_unstarted(&q);
    is_uint(q.n, 2, "a slow consumer's drop keeps the promised lines");
    unsent(&q, buf, sizeof(buf));
    is_str(buf, "1\np2\n", "what the promise covers, whole");
    outq_consume(&q, 3);
    is_uint(q.promised, 0, "the promise is kept: nothing more is owed");
    outq_release(&q);

    /* A promise that ends on a line boundary keeps nothing beyond it. */
    outq_init(&q);
    push_range(&q, 'p', 0, 4, 1);
    outq_promise(&q, 6);
    outq_drop_unstarted(&q);
    is_uint(q.n, 2, "6 bytes: two whole lines, the third goes");
    outq_release(&q);

    /* No promise: as before, only a started head stays. */
    outq_init(&q);
    push_range(&q, 'p', 0, 4, 1);
    is_uint(outq_kept(&q), 0, "nothing started, nothing promised: nothing kept");
    outq_release(&q);
}

/* A line counted in the reply budget while it lives, shared or not, once; a taken buffer is
 * trimmed. */
static void test_account(void)
{
    struct reply_budget budget;
    struct outq a, b;
    struct buf page = BUF_INIT;
    struct wline *w = line("0123456789\n");

    reply_budget_init(&budget, 0);
    struct reply_source *src = reply_budget_join(&budget, "127.0.0.1");
    outq_init(&a);
    outq_init(&b);
    wline_account(w, src);
    is_uint(reply_budget_used(&budget), 11, "wline_account: the line's bytes are counted");
    wline_account(w, src);
    is_uint(reply_budget_used(&budget), 11, "a second wline_account counts nothing more");
    outq_push(&a, w, 0, 0);
    outq_push(&b, w, 0, 0);
    wline_unref(w);
    is_uint(reply_budget_used(&budget), 11,
            "queued twice, the caller's reference gone: still counted once");
    outq_consume(&a, 11);
    is_uint(reply_budget_used(&budget), 11, "sent on one queue: still held by the other");
    outq_release(&b);
    is_uint(reply_budget_used(&budget), 0, "the last reference gone: uncounted");

    for (int i = 0; i < 1000; i++)
        buf_append(&page, "0123456789abcdef", 16);
    size_t cap = page.cap;
    w = wline_take(&page);
    is_uint(w->len, 16000, "wline_take: the buffer's bytes");
    ok(cap > 16000, "the buffer had room beyond its bytes (%zu)", cap);
    wline_account(w, src);
    is_uint(reply_budget_used(&budget), 16000, "a taken line counts its bytes");
    wline_unref(w);
    is_uint(reply_budget_used(&budget), 0, "and uncounts them when freed");
    outq_release(&a);
    reply_budget_leave(src);
    is_uint(budget.sources.n, 0, "the source's record goes with its last holder");
    reply_budget_fini(&budget);
}

int main(void)
{
    test_wline();
    test_shared();
    test_partial_sends();
    test_ring();
    test_drop_unstarted();
    test_promise();
    test_account();
    return done_testing();
}
