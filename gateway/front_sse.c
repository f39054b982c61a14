/*
 * front_sse.c - Server-Sent Events streams on sockets of their own; see
 * front_sse.h.
 *
 * A stream is a response that never ends by itself: the head, then the
 * session's queue as the body, in HTTP/1.1 chunks (each send() one chunk:
 * its size line, the lines the queue had, a CRLF) or, for an HTTP/1.0
 * request, as it is until the connection closes. The client has nothing more
 * to say after its request, so nothing is read: only its hang-up is watched
 * (the stream ends at once, as a vanished long-poll does), and whatever it
 * sends waits in the kernel until the lingering close drops it.
 *
 * The end: a stream whose last bytes all went out ends with the last chunk
 * (0 CRLF CRLF), so the client can tell it from a cut (a socket still full
 * of the last events gets it once it has room, within LINGER_CLOSE_MS); then our side is shut
 * and the peer's input read and dropped until it closes or LINGER_CLOSE_MS
 * pass, as front_tcp does. A stream cut short (a slow consumer whose last
 * event did not go, the client gone) is closed without the last chunk.
 */
#include "front_sse.h"

#include "linger.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "session.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

/* Lines handed to one sendmsg, besides the chunk's framing. */
#define IOV_MAX_LINES   64
/* The most one chunk carries: its size line stays short, a send stays one chunk. */
#define CHUNK_MAX       (256 * 1024)
/* After the stream's end, input is read and dropped this long before the socket closes. */
#define LINGER_CLOSE_MS 2000
/* The CRLF that ends a chunk, the size line of the next (hex of CHUNK_MAX), its CRLF. */
#define FRAME_MAX       (2 + 8 + 2)

struct stream {
    struct front_sse *fs;
    struct session *s; /* NULL once the tier closed it */
    int fd;
    bool chunked;
    bool want_write; /* EPOLLOUT is on */
    bool left;       /* the client closed or half-closed: the end is its, not a whole one */
    bool finishing;  /* the session is over; the last chunk waits for room in the socket */
    struct loop_timer *finish; /* the most finishing may take */
    /* Framing bytes due before the next payload byte: a chunk's CRLF, the next size line. */
    char frame[FRAME_MAX];
    unsigned frame_len, frame_off;
    size_t chunk_left;          /* payload bytes of the chunk under way still to send */
    struct stream *prev, *next; /* fs->streams */
};

struct front_sse {
    struct sessions *tier;
    struct loop *loop;
    struct front_sse_options o;
    struct stream *streams;      /* every stream with a session */
    size_t nstreams;             /* what max_streams counts */
    struct lingering *lingering; /* streams that ended, draining input until the peer closes */
    size_t nfinishing;           /* streams whose last chunk waits for room */
    bool quiescing;
};

static void set_writing(struct stream *x, bool on)
{
    if (x->want_write == on)
        return;
    x->want_write = on;
    loop_mod_fd(x->fs->loop, x->fd, LOOP_HUP | (on ? LOOP_WRITE : 0));
}

/* Starts the next chunk: its size line after whatever framing is still due. */
static void begin_chunk(struct stream *x, size_t bytes)
{
    char *p = x->frame + x->frame_len;

    if (x->frame_off == x->frame_len)
        x->frame_len = x->frame_off = 0, p = x->frame;
    x->chunk_left = bytes < CHUNK_MAX ? bytes : CHUNK_MAX;
    /* The size line promises these bytes: a slow consumer's drop must leave them. */
    outq_promise(session_outq(x->s), x->chunk_left);
    x->frame_len +=
        (unsigned)snprintf(p, sizeof(x->frame) - (size_t)(p - x->frame), "%zx\r\n", x->chunk_left);
}

/*
 * session_io_ops.flush: sendmsg from the session's queue until the socket is
 * full, each call one chunk (or, unchunked, the lines as they are).
 */
static bool stream_flush(void *io)
{
    static const char crlf[] = "\r\n";
    struct stream *x = io;
    struct outq *q = session_outq(x->s);
    struct iovec iov[IOV_MAX_LINES + 2];
    bool ok = true;

    for (;;) {
        size_t n = 0, payload = 0, total = 0, framing = 0;

        if (x->chunked && !x->chunk_left && q->bytes)
            begin_chunk(x, q->bytes);
        if (x->frame_off < x->frame_len) {
            framing = x->frame_len - x->frame_off;
            iov[n++] = (struct iovec){x->frame + x->frame_off, framing};
        }
        if (q->bytes) {
            size_t k = outq_iov(q, iov + n, IOV_MAX_LINES);
            for (size_t i = n; i < n + k; i++) {
                size_t cap = x->chunked ? x->chunk_left - payload : SIZE_MAX;
                if (iov[i].iov_len >= cap) {
                    iov[i].iov_len = cap;
                    k = i - n + 1;
                }
                payload += iov[i].iov_len;
            }
            n += k;
        }
        bool whole = x->chunked && payload && payload == x->chunk_left;
        if (whole)
            iov[n++] = (struct iovec){(void *)crlf, 2};
        if (!n)
            break;
        total = framing + payload + (whole ? 2 : 0);
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t sent = sendmsg(x->fd, &mh, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            ok = errno == EAGAIN || errno == EWOULDBLOCK;
            break;
        }
        size_t left = (size_t)sent, f = left < framing ? left : framing;
        x->frame_off += (unsigned)f;
        left -= f;
        size_t p = left < payload ? left : payload;
        left -= p;
        if (p) {
            if (x->chunked)
                x->chunk_left -= p;
            session_sent(x->s, p);
            if (x->chunked && !x->chunk_left) {
                /* The chunk's payload is out: what of its CRLF did not go is due next. */
                memcpy(x->frame, crlf + left, 2 - left);
                x->frame_len = (unsigned)(2 - left);
                x->frame_off = 0;
            }
        }
        log_trace("sse stream %s send %zd bytes", session_id(x->s), sent);
        if ((size_t)sent < total)
            break; /* the socket is full */
    }
    set_writing(x, ok && (q->bytes > 0 || x->frame_off < x->frame_len));
    return ok;
}

/* session_io_ops.resume_input: the stream's one command was taken at once. */
static void stream_resume(void *io)
{
    (void)io;
}

/* Forgets the stream; its descriptor is closed now, or lingers (linger.h). */
static void stream_free(struct stream *x, bool now)
{
    struct front_sse *fs = x->fs;

    if (x->prev)
        x->prev->next = x->next;
    else
        fs->streams = x->next;
    if (x->next)
        x->next->prev = x->prev;
    if (x->finishing)
        fs->nfinishing--;
    loop_timer_cancel(fs->loop, x->finish);
    loop_del_fd(fs->loop, x->fd);
    lingering_add(fs->lingering, x->fd, now);
    free(x);
}

/* Sends what framing is due (the last chunk, at the end); true once none is left. */
static bool send_frame(struct stream *x)
{
    while (x->frame_off < x->frame_len) {
        ssize_t n = send(x->fd, x->frame + x->frame_off, x->frame_len - x->frame_off,
                         MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        x->frame_off += (unsigned)n;
    }
    return true;
}

static void on_finish_over(struct loop *loop, void *ctx)
{
    struct stream *x = ctx;

    (void)loop;
    x->finish = NULL;     /* a timer is gone once it has run */
    stream_free(x, true); /* the client did not make room for the last chunk in time: cut */
}

/*
 * session_io_ops.close: the stream ends. When its last bytes all went, the
 * last chunk says it ended whole, our side is shut and the peer's input
 * drained until it closes (its unread input would make our close a reset,
 * which can destroy the last event before the client reads it).
 */
static void stream_close(void *io, enum gw_err err, const char *why)
{
    struct stream *x = io;
    struct front_sse *fs = x->fs;
    bool whole = !x->left && session_outq(x->s)->bytes == 0 && !x->chunk_left;

    (void)err; /* the stream said why in its last event */
    log_trace("sse stream %s close fd %d: %s", session_id(x->s), x->fd, why);
    x->s = NULL;
    fs->nstreams--;
    if (!whole) {
        stream_free(x, true);
        return;
    }
    if (x->chunked) {
        /* The last chunk, after the CRLF of the one before if it is still due. */
        size_t n = x->frame_len - x->frame_off;
        memmove(x->frame, x->frame + x->frame_off, n);
        memcpy(x->frame + n, "0\r\n\r\n", 5);
        x->frame_off = 0;
        x->frame_len = (unsigned)(n + 5);
    }
    if (send_frame(x)) {
        stream_free(x, false);
        return;
    }
    if (errno != EAGAIN && errno != EWOULDBLOCK) {
        stream_free(x, true);
        return;
    }
    /* The socket is full of the stream's last events: the last chunk goes when it has room. */
    x->finishing = true;
    fs->nfinishing++;
    loop_mod_fd(fs->loop, x->fd, LOOP_WRITE | LOOP_HUP);
    x->finish = loop_timer_add(fs->loop, LINGER_CLOSE_MS, on_finish_over, x);
}

static const struct session_io_ops stream_ops = {
    .flush = stream_flush,
    .resume_input = stream_resume,
    .close = stream_close,
};

static void on_stream_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct stream *x = ctx;

    (void)loop;
    if (x->finishing) {
        if (events & LOOP_HUP)
            stream_free(x, true); /* the client left first */
        else if (send_frame(x))
            stream_free(x, false);
        else if (errno != EAGAIN && errno != EWOULDBLOCK)
            stream_free(x, true);
        return;
    }
    if (events & LOOP_HUP) {
        /*
         * The client closed, or half-closed: it has nothing to send after its
         * request, so either way it is leaving. Its stream gets no last chunk:
         * a whole end is the gateway's (bye, or a slow consumer's error).
         */
        x->left = true;
        loop_mod_fd(x->fs->loop, fd, 0);
        session_abort(x->s, "client closed");
        return;
    }
    if ((events & LOOP_WRITE) && x->want_write && !stream_flush(x)) {
        loop_mod_fd(x->fs->loop, fd, 0);
        session_abort(x->s, "connection lost");
    }
}

/* The response head: an event stream, not to be stored nor held back by a proxy. */
static size_t head_of(char *out, size_t cap, bool chunked)
{
    char date[40];
    time_t now = time(NULL);
    struct tm tm;

    gmtime_r(&now, &tm);
    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    int n = snprintf(out, cap,
                     "HTTP/1.1 200 OK\r\n"
                     "Date: %s\r\n"
                     "Content-Type: text/event-stream\r\n"
                     "Cache-Control: no-cache\r\n"
                     "X-Accel-Buffering: no\r\n"
                     "Connection: close\r\n"
                     "%s"
                     "\r\n",
                     date, chunked ? "Transfer-Encoding: chunked\r\n" : "");
    return n > 0 && (size_t)n < cap ? (size_t)n : 0;
}

struct front_sse *front_sse_new(struct sessions *tier, struct loop *loop,
                                const struct front_sse_options *opts)
{
    struct front_sse *fs = gw_xcalloc(1, sizeof(*fs));

    fs->tier = tier;
    fs->loop = loop;
    fs->o = *opts;
    fs->lingering = lingering_new(loop, LINGER_CLOSE_MS);
    return fs;
}

bool front_sse_has_room(const struct front_sse *fs, const char *peer)
{
    return !fs->quiescing &&
           (fs->nstreams < fs->o.max_streams || sessions_can_make_room(fs->tier, GW_T_SSE, peer));
}

void front_sse_adopt(struct front_sse *fs, int fd, bool http11, const char *sub, size_t len)
{
    char head[256], peer[64], why[GW_ERRLEN];
    size_t n = head_of(head, sizeof(head), http11);

    net_peer_name(fd, peer, sizeof(peer));
    /* Streams and connections still ending stay within the limit together (lingering_trim). */
    size_t busy = fs->nstreams + fs->nfinishing;
    lingering_trim(fs->lingering, busy < fs->o.max_streams ? fs->o.max_streams - busy - 1 : 0);
    if (fs->quiescing || (fs->nstreams >= fs->o.max_streams &&
                          !sessions_make_room(fs->tier, GW_T_SSE, peer, fs->o.max_streams))) {
        /* front_http asked just before: only a stop in between gets here. */
        log_info("sse: a stream is refused: %s", fs->quiescing ? "stopping" : "no room");
        close(fd);
        return;
    }
    if (net_set_nonblock(fd, why) < 0)
        log_warn("sse: %s", why);
    /* A fresh socket takes the head whole; one that does not is a client already gone. */
    if (!n || send(fd, head, n, MSG_NOSIGNAL) != (ssize_t)n) {
        log_info("sse: the response head could not be sent: closing");
        close(fd);
        return;
    }
    struct stream *x = gw_xcalloc(1, sizeof(*x));
    x->fs = fs;
    x->fd = fd;
    x->chunked = http11;
    /* As a TCP session: unacknowledged data for three heartbeats, 30 s at least. */
    net_tune_session(fd, fs->o.heartbeat, fs->o.heartbeat * 3 > 30 ? fs->o.heartbeat * 3 : 30);
    if (loop_add_fd(fs->loop, fd, LOOP_HUP, on_stream_io, x) < 0) {
        log_error("sse: cannot watch a new stream: %s", strerror(errno));
        close(fd);
        free(x);
        return;
    }
    x->next = fs->streams;
    if (x->next)
        x->next->prev = x;
    fs->streams = x;
    fs->nstreams++;
    x->s = session_open(fs->tier, GW_T_SSE, SESSION_SSE, peer, &stream_ops, x);
    log_trace("sse stream %s adopt fd %d from %s: %.*s", session_id(x->s), fd, peer, (int)len, sub);
    /* A fresh session takes its first command at once: nothing is ahead of it. */
    if (!session_line(x->s, sub, len))
        session_abort(x->s, "could not subscribe");
}

size_t front_sse_count(const struct front_sse *fs)
{
    return fs->nstreams;
}

size_t front_sse_lingering(const struct front_sse *fs)
{
    return lingering_count(fs->lingering) + fs->nfinishing;
}

void front_sse_quiesce(struct front_sse *fs)
{
    fs->quiescing = true;
}

void front_sse_free(struct front_sse *fs)
{
    if (!fs)
        return;
    while (fs->streams)
        stream_free(fs->streams, true);
    lingering_free(fs->lingering);
    free(fs);
}
