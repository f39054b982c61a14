/*
 * test_ws_wire.c - gateway/ws_wire.h on a real socket pair: the bytes read
 * past the handshake come first, the read budget, end of stream and a
 * failed socket; the batch goes out whole or its rest waits in pend, behind
 * which nothing more is gathered, and the shared batch is empty after every
 * flush, so no connection's bytes can reach another's socket.
 */
#include "ws_wire.h"

#include "tap.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static ssize_t no_recv(wslay_event_context_ptr c, uint8_t *b, size_t n, int f, void *u)
{
    (void)c, (void)b, (void)n, (void)f, (void)u;
    return -1;
}

static ssize_t no_send(wslay_event_context_ptr c, const uint8_t *b, size_t n, int f, void *u)
{
    (void)c, (void)b, (void)n, (void)f, (void)u;
    return -1;
}

static const struct wslay_event_callbacks callbacks = {.recv_callback = no_recv,
                                                       .send_callback = no_send};

/* A connected pair: [0] is the gateway's end (non-blocking), [1] the peer's. */
static void pair(int sv[2], int sndbuf)
{
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, sv) < 0)
        bail_out("socketpair: %s", strerror(errno));
    fcntl(sv[0], F_SETFL, O_NONBLOCK);
    fcntl(sv[1], F_SETFL, O_NONBLOCK);
    if (sndbuf)
        setsockopt(sv[0], SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
}

/* Reads what the peer's end has: the byte count. */
static size_t drain(int fd, char *into, size_t cap)
{
    size_t got = 0;
    ssize_t n;

    while (got < cap && (n = recv(fd, into + got, cap - got, 0)) > 0)
        got += (size_t)n;
    return got;
}

static void test_input(wslay_event_context_ptr ctx)
{
    struct buf batch = {0};
    struct ws_wire w;
    uint8_t in[64];
    bool sock;
    int sv[2];

    pair(sv, 0);
    ws_wire_init(&w, sv[0], &batch, "HEAD", 4);
    if (send(sv[1], "socket", 6, 0) != 6)
        bail_out("send");
    is_int(ws_wire_recv(&w, ctx, in, 3, 1 << 20, &sock), 3, "head bytes first, as many as asked");
    ok(!sock && !memcmp(in, "HEA", 3), "from the head");
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 1 << 20, &sock), 1, "the rest of the head alone");
    ok(!sock && in[0] == 'D' && !w.head, "the head is done and freed");
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 4, &sock), 6, "then the socket's");
    ok(sock && !memcmp(in, "socket", 6), "from the socket");
    is_uint(w.pass_bytes, 6, "counted against the budget");
    if (send(sv[1], "more", 4, 0) != 4)
        bail_out("send");
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 4, &sock), -1, "the budget is spent: nothing");
    w.pass_bytes = 0;
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 4, &sock), 4, "a new pass reads on");
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 4, &sock), -1, "nothing waits: would block");
    ok(!w.eof && !w.broken, "... which is neither an end nor a failure");
    close(sv[1]);
    is_int(ws_wire_recv(&w, ctx, in, sizeof(in), 1 << 20, &sock), -1, "the peer closed");
    ok(w.eof && !w.broken, "end of stream");
    ws_wire_release(&w);
    close(sv[0]);
    buf_release(&batch);
}

static void test_output(wslay_event_context_ptr ctx)
{
    static char big[256 * 1024], got[sizeof(big) + 64];
    struct buf batch = {0};
    struct ws_wire w, other;
    int sv[2], ov[2];

    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (char)('a' + i % 26);
    pair(sv, 4096);
    pair(ov, 0);
    ws_wire_init(&w, sv[0], &batch, NULL, 0);
    ws_wire_init(&other, ov[0], &batch, NULL, 0);

    /* Gathered in pieces, sent in one go. */
    is_int(ws_wire_gather(&w, ctx, (const uint8_t *)"hd", 2), 2, "a header gathered");
    is_int(ws_wire_gather(&w, ctx, (const uint8_t *)"payload", 7), 7, "its payload gathered");
    ok(ws_wire_flush(&w), "flushed");
    is_uint(batch.len, 0, "the batch is empty after a flush");
    is_uint(drain(sv[1], got, sizeof(got)), 9, "the peer has both");
    ok(!memcmp(got, "hdpayload", 9), "in order");

    /* The batch has a ceiling. */
    size_t room = WS_WIRE_BATCH - 10;
    is_int(ws_wire_gather(&w, ctx, (const uint8_t *)big, room), (long long)room, "most of a batch");
    is_int(ws_wire_gather(&w, ctx, (const uint8_t *)big, 11), -1, "past the batch: refused");
    ok(w.batch_full, "batch_full says so");
    w.batch_full = false;

    /* More than the socket takes: the rest waits in pend, nothing more is gathered. */
    ok(ws_wire_flush(&w), "a flush the socket does not take whole");
    ok(ws_wire_waiting(&w), "the rest waits");
    is_uint(batch.len, 0, "the batch is empty all the same");
    is_int(ws_wire_gather(&w, ctx, (const uint8_t *)"x", 1), -1, "nothing gathered behind pend");
    ok(w.batch_full, "batch_full again");

    /* Another connection uses the batch meanwhile: its bytes go to its own socket only. */
    is_int(ws_wire_gather(&other, ctx, (const uint8_t *)"other", 5), 5, "another gathers");
    ok(ws_wire_flush(&other), "and sends");
    is_uint(drain(ov[1], got, sizeof(got)), 5, "its peer has its 5 bytes");

    /* The peer reads: what waited goes out, in order, nothing lost or doubled. */
    size_t have = 0;
    for (int i = 0; i < 10000 && (ws_wire_waiting(&w) || have < room); i++) {
        have += drain(sv[1], got + have, sizeof(got) - have);
        if (!ws_wire_flush(&w))
            break;
    }
    have += drain(sv[1], got + have, sizeof(got) - have);
    is_uint(have, room, "every byte arrived once");
    ok(!memcmp(got, big, room), "in order");
    ok(!ws_wire_waiting(&w), "nothing waits");

    /* A peer gone: the flush fails, says broken, and leaves the batch empty. */
    close(sv[1]);
    ws_wire_gather(&w, ctx, (const uint8_t *)"late", 4);
    ok(!ws_wire_flush(&w) && w.broken, "a failed socket is broken");
    is_uint(batch.len, 0, "its bytes do not stay in the batch");

    ws_wire_release(&w);
    ws_wire_release(&other);
    close(sv[0]);
    close(ov[0]);
    close(ov[1]);
    buf_release(&batch);
}

int main(void)
{
    wslay_event_context_ptr ctx;

    if (wslay_event_context_server_init(&ctx, &callbacks, NULL) != 0)
        bail_out("wslay context");
    test_input(ctx);
    test_output(ctx);
    wslay_event_context_free(ctx);
    return done_testing();
}
