/*
 * ws_wire.c - see ws_wire.h.
 */
#include "ws_wire.h"

#include "gw.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

void ws_wire_init(struct ws_wire *w, int fd, struct buf *batch, const char *head, size_t len)
{
    memset(w, 0, sizeof(*w));
    w->fd = fd;
    w->batch = batch;
    if (len) {
        w->head = gw_xmemdup(head, len);
        w->head_len = len;
    }
}

void ws_wire_release(struct ws_wire *w)
{
    buf_release(&w->pend);
    GW_FREE_AND_NULL(w->head);
    w->head_len = w->head_off = 0;
}

ssize_t ws_wire_recv(struct ws_wire *w, wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                     size_t budget, bool *from_socket)
{
    ssize_t n;

    *from_socket = false;
    if (w->head) {
        size_t k = w->head_len - w->head_off < len ? w->head_len - w->head_off : len;
        memcpy(buf, w->head + w->head_off, k);
        w->head_off += k;
        if (w->head_off == w->head_len)
            GW_FREE_AND_NULL(w->head);
        return (ssize_t)k;
    }
    if (w->pass_bytes >= budget) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    do
        n = recv(w->fd, buf, len, 0);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        w->pass_bytes += (size_t)n;
        *from_socket = true;
        return n;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (n == 0)
        w->eof = true;
    else
        w->broken = true;
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
}

ssize_t ws_wire_gather(struct ws_wire *w, wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len)
{
    struct buf *b = w->batch;

    if (ws_wire_waiting(w) || (b->len && b->len + len > WS_WIRE_BATCH)) {
        w->batch_full = true;
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    buf_append(b, data, len);
    return (ssize_t)len;
}

/* Sends (p, len) as far as the socket takes it: the bytes sent, or -1 when it failed. */
static ssize_t send_some(int fd, const char *p, size_t len)
{
    size_t done = 0;

    while (done < len) {
        ssize_t n = send(fd, p + done, len - done, MSG_NOSIGNAL);
        if (n >= 0)
            done += (size_t)n;
        else if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
        else if (errno != EINTR)
            return -1;
    }
    return (ssize_t)done;
}

bool ws_wire_waiting(const struct ws_wire *w)
{
    return w->pend.len > w->pend_off;
}

bool ws_wire_flush(struct ws_wire *w)
{
    struct buf *b = w->batch;
    ssize_t n;

    if (ws_wire_waiting(w)) {
        if ((n = send_some(w->fd, w->pend.data + w->pend_off, w->pend.len - w->pend_off)) < 0)
            goto broken;
        w->pend_off += (size_t)n;
        if (ws_wire_waiting(w)) {
            /* The batch is shared: whatever of w's it holds waits behind pend. */
            if (b->len)
                buf_append(&w->pend, b->data, b->len);
            buf_clear(b);
            return true;
        }
        buf_release(&w->pend);
        w->pend_off = 0;
    }
    if (!b->len)
        return true;
    if ((n = send_some(w->fd, b->data, b->len)) < 0)
        goto broken;
    if ((size_t)n < b->len)
        buf_append(&w->pend, b->data + n, b->len - (size_t)n);
    buf_clear(b);
    return true;
broken:
    buf_clear(b);
    w->broken = true;
    return false;
}

wslay_event_context_ptr ws_wire_new_ctx(const struct wslay_event_callbacks *cb, void *user)
{
    wslay_event_context_ptr ctx;

    if (wslay_event_context_server_init(&ctx, cb, user) != 0)
        return NULL;
    wslay_event_config_set_no_buffering(ctx, 1);
    wslay_event_config_set_max_recv_msg_length(ctx, UINT64_MAX);
    return ctx;
}

bool ws_wire_renew_ctx(wslay_event_context_ptr *ctx, const struct wslay_event_callbacks *cb,
                       void *user)
{
    wslay_event_context_ptr fresh = ws_wire_new_ctx(cb, user);

    if (!fresh)
        return false;
    wslay_event_context_free(*ctx);
    *ctx = fresh;
    return true;
}
