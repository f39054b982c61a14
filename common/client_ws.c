/*
 * client_ws.c - see client_ws.h.
 */
#include "client_ws.h"

#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <wslay/wslay.h>

struct client_ws {
    struct client_conn *c;
    wslay_event_context_ptr ctx;
    bool upgraded; /* the 101 is in */
    bool closed;   /* the gateway's close frame is in */
    uint16_t close_code;
    struct buf lines; /* messages received, each ended by a NUL; then part of the next */
    size_t complete;  /* lines[0, complete): whole messages */
    uint8_t op;       /* the frame being received */
    bool fin;
    size_t lines_off;
    uint64_t rng;  /* masks: xorshift, seeded from getrandom */
    bool too_long; /* a message over the connection's line_max came in */
};

static ssize_t on_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, int flags, void *user)
{
    struct client_ws *w = user;
    size_t have;
    const char *p = client_conn_data(w->c, &have);

    (void)flags;
    if (!have) {
        wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
        return -1;
    }
    if (have > len)
        have = len;
    memcpy(buf, p, have);
    client_conn_consume(w->c, have);
    return (ssize_t)have;
}

static ssize_t on_send(wslay_event_context_ptr ctx, const uint8_t *data, size_t len, int flags,
                       void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    (void)flags;
    client_conn_queue(w->c, data, len);
    return (ssize_t)len;
}

static int on_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len, void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        w->rng ^= w->rng << 13;
        w->rng ^= w->rng >> 7;
        w->rng ^= w->rng << 17;
        buf[i] = (uint8_t)(w->rng >> 24);
    }
    return 0;
}

/*
 * Text is taken frame by frame, straight into the lines (wslay runs without
 * its buffering: a receiver must keep up with the gateway's pushes).
 */
static void on_frame_start(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_start_arg *a, void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    w->op = a->opcode;
    w->fin = a->fin;
}

static void on_frame_chunk(wslay_event_context_ptr ctx,
                           const struct wslay_event_on_frame_recv_chunk_arg *a, void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    if (w->op != WSLAY_TEXT_FRAME && w->op != WSLAY_CONTINUATION_FRAME)
        return;
    /* A message is a line: no longer than the connection takes one (c->line_max). */
    if (w->too_long || w->lines.len - w->complete + a->data_length > w->c->line_max) {
        w->too_long = true;
        return;
    }
    buf_append(&w->lines, a->data, a->data_length);
}

static void on_frame_end(wslay_event_context_ptr ctx, void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    if (w->fin && (w->op == WSLAY_TEXT_FRAME || w->op == WSLAY_CONTINUATION_FRAME)) {
        buf_append(&w->lines, "", 1);
        w->complete = w->lines.len;
    }
}

static void on_msg(wslay_event_context_ptr ctx, const struct wslay_event_on_msg_recv_arg *a,
                   void *user)
{
    struct client_ws *w = user;

    (void)ctx;
    if (a->opcode == WSLAY_CONNECTION_CLOSE) {
        w->closed = true;
        w->close_code = a->status_code;
    }
}

static const struct wslay_event_callbacks callbacks = {
    .recv_callback = on_recv,
    .send_callback = on_send,
    .genmask_callback = on_genmask,
    .on_frame_recv_start_callback = on_frame_start,
    .on_frame_recv_chunk_callback = on_frame_chunk,
    .on_frame_recv_end_callback = on_frame_end,
    .on_msg_recv_callback = on_msg,
};

struct client_ws *client_ws_new(struct client_conn *c, const char *host, const char *path,
                                const char *protocol)
{
    struct client_ws *w = gw_xcalloc(1, sizeof(*w));
    uint8_t key[16];
    char req[1024];

    w->c = c;
    buf_init(&w->lines);
    if (getrandom(&w->rng, sizeof(w->rng), 0) != (ssize_t)sizeof(w->rng) || !w->rng)
        w->rng = (uint64_t)client_now_ns() | 1;
    if (wslay_event_context_client_init(&w->ctx, &callbacks, w) != 0)
        abort(); /* out of memory, as gw_x* would */
    wslay_event_config_set_no_buffering(w->ctx, 1);
    on_genmask(w->ctx, key, sizeof(key), w);
    /* The key is 16 bytes in base64: any 16 bytes do, the accept is the gateway's to compute. */
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    char k[25];
    for (int i = 0; i < 21; i++)
        k[i] = b64[key[i % 16] & 63];
    k[21] = 'A';
    memcpy(k + 22, "==", 3);
    int n = snprintf(req, sizeof(req),
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\n"
                     "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                     "Sec-WebSocket-Key: %s\r\n%s%s%s\r\n",
                     path, host, k, protocol ? "Sec-WebSocket-Protocol: " : "",
                     protocol ? protocol : "", protocol ? "\r\n" : "");
    GW_ASSERT(n > 0 && (size_t)n < sizeof(req));
    client_conn_queue(c, req, (size_t)n);
    return w;
}

void client_ws_free(struct client_ws *w)
{
    if (!w)
        return;
    wslay_event_context_free(w->ctx);
    buf_release(&w->lines);
    free(w);
}

int client_ws_input(struct client_ws *w, char err[GW_ERRLEN])
{
    if (!w->upgraded) {
        size_t len;
        const char *p = client_conn_data(w->c, &len);
        const char *end = len ? memmem(p, len, "\r\n\r\n", 4) : NULL;
        if (!end)
            return 0;
        if (len < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
            snprintf(err, GW_ERRLEN, "the WebSocket upgrade was refused: %.*s",
                     (int)(memchr(p, '\r', len) ? (const char *)memchr(p, '\r', len) - p : 0), p);
            return -1;
        }
        client_conn_consume(w->c, (size_t)(end + 4 - p));
        w->upgraded = true;
    }
    /*
     * A frame longer than a line may be is refused as its header comes in:
     * wslay then stops reading and queues a close (1009), and returns 0.
     */
    wslay_event_config_set_max_recv_msg_length(w->ctx, w->c->line_max);
    if (wslay_event_recv(w->ctx) != 0 ||
        (wslay_event_want_write(w->ctx) && wslay_event_send(w->ctx) != 0)) {
        snprintf(err, GW_ERRLEN, "a WebSocket frame the client could not read");
        return -1;
    }
    if (w->closed) {
        snprintf(err, GW_ERRLEN, "the server closed the WebSocket (%u)", w->close_code);
        return -1;
    }
    if (w->too_long || !wslay_event_get_read_enabled(w->ctx)) {
        snprintf(err, GW_ERRLEN, "a WebSocket message of more than %zu bytes", w->c->line_max);
        return -1;
    }
    return 0;
}

bool client_ws_upgraded(const struct client_ws *w)
{
    return w->upgraded;
}

bool client_ws_line(struct client_ws *w, char **line, size_t *len)
{
    if (w->lines_off >= w->complete) {
        /* Whole messages all taken: what is left is the start of the next. */
        size_t part = w->lines.len - w->complete;
        if (part)
            memmove(w->lines.data, w->lines.data + w->complete, part);
        w->lines.len = part;
        if (w->lines.data)
            w->lines.data[part] = '\0';
        w->lines_off = w->complete = 0;
        return false;
    }
    *line = w->lines.data + w->lines_off;
    *len = strlen(*line);
    w->lines_off += *len + 1;
    return true;
}

void client_ws_send(struct client_ws *w, const char *p, size_t len)
{
    struct wslay_event_msg m = {
        .opcode = WSLAY_TEXT_FRAME, .msg = (const uint8_t *)p, .msg_length = len};

    wslay_event_queue_msg(w->ctx, &m);
    wslay_event_send(w->ctx);
}
