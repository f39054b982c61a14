/*
 * ws_wire.h - the socket side of a WebSocket connection whose frames wslay
 * makes and parses, shared by the two fronts that speak WebSocket: /v1/ws
 * (front_ws) and Socket.IO's websocket transport (front_sio).
 *
 * Input: the bytes the HTTP front read past the handshake come first, then
 * the socket, at most a read budget per wake-up. Output: wslay's writes (a
 * header, a payload, ...) are gathered in a batch that the front owns and
 * shares between its connections (one connection sends at a time), and
 * the batch goes out in one send(); what the socket does not take waits in
 * the connection's own pend buffer, and nothing more is gathered for it
 * until that is out, so a peer that does not read holds at most one batch.
 *
 * Plain data and functions for the loop thread. Depends on buf.h and wslay.
 */
#ifndef GW_WS_WIRE_H
#define GW_WS_WIRE_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <wslay/wslay.h>

/* The most a front gathers for one send(). */
#define WS_WIRE_BATCH (64 * 1024)

struct ws_wire {
    int fd;
    struct buf *batch; /* the front's, shared: empty between two connections' turns */
    char *head;        /* bytes read past the request, fed to wslay first */
    size_t head_len, head_off;
    struct buf pend; /* frame bytes the socket did not take yet */
    size_t pend_off;
    size_t pass_bytes; /* read from the socket in this wake-up */
    bool batch_full;   /* a gather was refused: the batch is full */
    bool broken;       /* the socket failed */
    bool eof;          /* the peer's side has ended */
};

/* fd is the connection's; head (len bytes, may be none) is copied. */
void ws_wire_init(struct ws_wire *w, int fd, struct buf *batch, const char *head, size_t len);
/* Frees what w holds; the fd is the caller's to close. */
void ws_wire_release(struct ws_wire *w);

/*
 * The body of wslay's recv callback once the front wants input: head bytes,
 * then the socket's, at most budget bytes from the socket per wake-up
 * (pass_bytes, which the front zeroes). The bytes given, with *from_socket
 * set when they came from the socket; else -1 with wslay's error set:
 * WOULDBLOCK (nothing now, or the budget is spent) or a failure, with eof
 * or broken set.
 */
ssize_t ws_wire_recv(struct ws_wire *w, wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                     size_t budget, bool *from_socket);

/*
 * The body of wslay's send callback: gathers (data, len) into the batch.
 * WOULDBLOCK, with batch_full set, when bytes of w still wait in pend or
 * the batch has no room left: ws_wire_flush, then let wslay go on.
 */
ssize_t ws_wire_gather(struct ws_wire *w, wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len);

/*
 * Puts what waits in pend, then the batch, on the socket; what the socket
 * does not take waits in pend. The batch is empty afterwards. False when the
 * socket failed (broken is set).
 */
bool ws_wire_flush(struct ws_wire *w);

/* Whether frame bytes wait in pend for the socket. */
bool ws_wire_waiting(const struct ws_wire *w);

/*
 * Input that breaks RFC 6455 where wslay queues its own close without a code:
 * a frame header it refuses (wslay_event_recv fails in its parser), or a
 * close frame with a one-byte body, which it takes for none. Both fronts close
 * such a connection 1002 with one of these reasons instead.
 */
#define WS_WHY_FRAME_HEADER "a frame header that breaks RFC 6455 (5.2, 5.5)"
#define WS_WHY_CLOSE_ONE_BYTE                                                                      \
    "a close frame whose body is one byte: its code takes two (RFC 6455 5.5.1)"

/*
 * A server context on cb for user, as both fronts read: no buffering (a
 * message is put together by the front, bounded with a reason given) and no
 * length bound of wslay's own (it would close 1009 without a reason before
 * the front's frame-start callback could refuse the message). NULL without
 * memory.
 */
wslay_event_context_ptr ws_wire_new_ctx(const struct wslay_event_callbacks *cb, void *user);

/*
 * Replaces *ctx by a fresh one (ws_wire_new_ctx), so that a close with a code
 * can still be queued once wslay has queued its own: only when none of the
 * old context's frames is half sent. False, *ctx untouched, without memory.
 */
bool ws_wire_renew_ctx(wslay_event_context_ptr *ctx, const struct wslay_event_callbacks *cb,
                       void *user);

#endif
