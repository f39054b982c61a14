/*
 * front_tcp.c - TCP sessions as bytes; see front_tcp.h.
 *
 * All this file knows is a socket: accept, tune, recv into a buffer that is
 * framed into lines (bounded: a line over --max-line is an error before its
 * end arrives), writev from the session's queue, close. A line the session
 * cannot take yet stays in the buffer, and reading stops until the session
 * asks for input again (resume_input) or the buffer has room. At end of
 * stream the lines received are still answered (a last line without its LF
 * counts), then the session closes.
 */
#include "front_tcp.h"

#include "acceptor.h"
#include "buf.h"
#include "input_budget.h"
#include "linger.h"
#include "log.h"
#include "loop.h"
#include "net.h"
#include "proto_line.h"
#include "session.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "codec_json.h"

/* Unparsed input held per connection before reading pauses (at least a --max-line line). */
#define INPUT_HOLD      (256 * 1024)
#define READ_CHUNK      (64 * 1024)
/* Lines handed to one writev. */
#define IOV_MAX_LINES   64
/* After the last line, input is read and dropped this long before the socket closes. */
#define LINGER_CLOSE_MS 2000

struct conn {
    struct front_tcp *ft;
    struct session *s;
    int fd;
    struct buf in;
    size_t in_off;
    size_t in_held;  /* in's bytes counted in --max-input-memory (input_budget.h) */
    bool reading;    /* EPOLLIN is on */
    bool want_write; /* EPOLLOUT is on */
    bool held;       /* the session refused a line: wait for resume_input */
    bool eof;        /* the peer's side has ended */
    bool input_done; /* no more input will be offered */
    bool lines_seen; /* a line has been offered: the first is judged (http_request_line) */
};

struct front_tcp {
    struct sessions *tier;
    struct loop *loop;
    struct acceptor *acceptor; /* NULL once quiescing */
    struct front_tcp_options o;
    unsigned nconns;             /* connections with a session: what --max-sessions counts */
    struct lingering *lingering; /* connections whose session is over, draining input */
    char rbuf[READ_CHUNK];       /* every connection's reads land here first */
};

static void update_events(struct conn *c)
{
    unsigned ev = (c->reading ? LOOP_READ : 0) | (c->want_write ? LOOP_WRITE : 0);
    loop_mod_fd(c->ft->loop, c->fd, ev);
}

static void set_reading(struct conn *c, bool on)
{
    if (c->reading == on)
        return;
    c->reading = on;
    update_events(c);
}

static size_t buffered(const struct conn *c)
{
    return c->in.len - c->in_off;
}

/*
 * Whether line is an HTTP request line ("POST / HTTP/1.1"): a method of
 * HTTP's, a target, and an HTTP version. A browser sends one to any port a
 * page names, a foreign site's page included, and the lines after it are
 * the page's to choose: such a session runs none of them. A page can only
 * begin with GET, HEAD or POST (or OPTIONS, the question it asks before any
 * other method), none of which is a command; the others are HTTP clients
 * at the wrong port.
 */
static bool http_request_line(const char *line, size_t len)
{
    static const char *const methods[] = {"GET",   "HEAD",   "POST",    "OPTIONS", "PUT",
                                          "PATCH", "DELETE", "CONNECT", "TRACE",   "PRI"};
    size_t m = 0, sp;

    while (m < len && line[m] >= 'A' && line[m] <= 'Z')
        m++;
    if (m == 0 || m == len || line[m] != ' ')
        return false;
    for (sp = len; sp > m && line[sp - 1] != ' ';)
        sp--;
    if (sp <= m + 1 || len - sp < 6 || memcmp(line + sp, "HTTP/", 5) != 0 || line[sp + 5] < '0' ||
        line[sp + 5] > '9')
        return false;
    for (size_t i = 0; i < GW_ARRAY_SIZE(methods); i++)
        if (strlen(methods[i]) == m && memcmp(line, methods[i], m) == 0)
            return true;
    return false;
}

/* Offers the complete lines in the buffer to the session, as far as it takes them. */
static void offer(struct conn *c)
{
    c->held = false;
    while (!c->input_done) {
        size_t line_len, consumed;
        const char *p = c->in.data ? c->in.data + c->in_off : ""; /* no arithmetic on NULL */
        enum proto_frame f = proto_frame(p, buffered(c), c->ft->o.max_line, &line_len, &consumed);

        if (f == PROTO_TOO_LONG) {
            char why[GW_ERRLEN];
            snprintf(why, sizeof(why), "a line is at most %zu bytes: closing the session",
                     c->ft->o.max_line);
            session_input_error(c->s, GW_E_LINE_TOO_LONG, why);
            c->in_off = c->in.len;
            c->input_done = true;
            break;
        }
        if (f == PROTO_NEED_MORE) {
            /* At the end of the stream a last line may come without its LF. */
            if (!c->eof || !buffered(c))
                break;
            line_len = consumed = buffered(c);
            if (p[line_len - 1] == '\r')
                line_len--;
        }
        if (!c->lines_seen && http_request_line(p, line_len)) {
            /* Info, as every session's end: a page can send these by the thousand. */
            log_info("tcp: an HTTP request line on the session port: closed, none of it run");
            session_input_error(c->s, GW_E_UNKNOWN_COMMAND,
                                "this port speaks the visavis line protocol, not HTTP: an HTTP "
                                "request is not run, nor any line after it; HTTP is served on "
                                "the gateway's HTTP port");
            c->in_off = c->in.len;
            c->input_done = true;
            break;
        }
        if (!session_line(c->s, p, line_len)) {
            c->held = true;
            break;
        }
        c->lines_seen = true;
        c->in_off += consumed;
    }
    if (c->in_off == c->in.len) {
        buf_release(&c->in); /* a quiet session keeps no buffer */
        input_budget_release(c->ft->o.inputs, &c->in_held);
        c->in_off = 0;
    } else if (c->in_off > READ_CHUNK) {
        memmove(c->in.data, c->in.data + c->in_off, buffered(c));
        c->in.len -= c->in_off;
        c->in_off = 0;
    }
    if (c->eof && !c->held && !buffered(c) && !c->input_done) {
        c->input_done = true;
        session_input_end(c->s);
    }
    /* Room for a whole line of --max-line, however large that is set. */
    size_t hold = c->ft->o.max_line + 2 > INPUT_HOLD ? c->ft->o.max_line + 2 : INPUT_HOLD;
    set_reading(c, !c->eof && !c->input_done && !c->held && buffered(c) < hold);
}

/*
 * Reads into the front's one receive buffer and keeps, per connection, only
 * what was received and not yet taken: an idle session holds no buffer at
 * all, so ten thousand of them cost little.
 */
static void read_input(struct conn *c)
{
    char *rbuf = c->ft->rbuf;
    size_t got = 0;

    while (c->reading && got < 4 * READ_CHUNK) {
        ssize_t n = recv(c->fd, rbuf, READ_CHUNK, 0);
        if (n == 0) {
            log_trace("tcp conn %s recv end of stream", session_id(c->s));
            c->eof = true;
            offer(c);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                set_reading(c, false);
                session_abort(c->s, strerror(errno));
            }
            return;
        }
        session_received(c->s, (size_t)n);
        log_trace("tcp conn %s recv %zd bytes", session_id(c->s), n);
        got += (size_t)n;
        char why[GW_ERRLEN];
        if (!input_budget_hold(c->ft->o.inputs, &c->in_held, c->in.len + (size_t)n, why)) {
            /*
             * Lines under way fill --max-input-memory: this session's is
             * dropped, and the session closed, as for a line too long (what
             * follows would be read as the middle of a line).
             */
            session_input_error(c->s, GW_E_BUSY, why);
            c->in_off = c->in.len;
            c->input_done = true;
            offer(c);
            return;
        }
        buf_append(&c->in, rbuf, (size_t)n);
        offer(c);
    }
}

/* session_io_ops.flush: writev from the session's queue until the socket is full. */
static bool conn_flush(void *io)
{
    struct conn *c = io;
    struct outq *q = session_outq(c->s);
    struct iovec iov[IOV_MAX_LINES];
    bool ok = true;

    while (q->bytes) {
        size_t n = outq_iov(q, iov, IOV_MAX_LINES);
        struct msghdr mh = {.msg_iov = iov, .msg_iovlen = n};
        ssize_t sent = sendmsg(c->fd, &mh, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            ok = errno == EAGAIN || errno == EWOULDBLOCK;
            break;
        }
        log_trace("tcp conn %s send %zd bytes", session_id(c->s), sent);
        session_sent(c->s, (size_t)sent);
    }
    bool want = ok && q->bytes > 0;
    if (want != c->want_write) {
        c->want_write = want;
        update_events(c);
    }
    return ok;
}

/* session_io_ops.resume_input */
static void conn_resume(void *io)
{
    struct conn *c = io;
    if (!c->input_done)
        offer(c);
}

/*
 * session_io_ops.close: the connection lingers (linger.h), so that its last
 * lines reach a peer that may still be sending; one whose peer has ended
 * closes at once.
 */
static void conn_close(void *io, enum gw_err err, const char *why)
{
    struct conn *c = io;

    (void)err; /* a TCP session says why in its last line */
    log_trace("tcp conn %s close fd %d: %s", session_id(c->s), c->fd, why);
    /* Its session's place is free now; lingering, it gives way to a newcomer (on_accept). */
    c->ft->nconns--;
    loop_del_fd(c->ft->loop, c->fd);
    lingering_add(c->ft->lingering, c->fd, c->eof);
    buf_release(&c->in);
    input_budget_release(c->ft->o.inputs, &c->in_held);
    free(c);
}

/* session_io_ops.input_waiting */
static bool conn_input_waiting(void *io)
{
    const struct conn *c = io;

    return buffered(c) > 0 || net_unread(c->fd) > 0;
}

static const struct session_io_ops conn_ops = {
    .flush = conn_flush,
    .resume_input = conn_resume,
    .close = conn_close,
    .input_waiting = conn_input_waiting,
};

static void on_conn_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct conn *c = ctx;

    (void)loop;
    (void)fd;
    if (events & LOOP_READ) {
        if (!c->reading) {
            /* Not watching input: only an error or a hang-up gets here. */
            loop_mod_fd(c->ft->loop, c->fd, 0);
            session_abort(c->s, "connection lost");
            return;
        }
        read_input(c);
    }
    if ((events & LOOP_WRITE) && c->want_write && !conn_flush(c)) {
        loop_mod_fd(c->ft->loop, c->fd, 0);
        session_abort(c->s, "connection lost");
    }
}

/* ---- accepting ---- */

static void refuse(int fd, unsigned max)
{
    struct buf line = BUF_INIT;
    char why[96];

    snprintf(why, sizeof(why), "%u sessions are open already: try again later", max);
    codec_line_error(&line, GW_E_TOO_MANY_SESSIONS, why, NULL, NULL, 0);
    /* Best effort on a fresh socket: the line fits in its send buffer. */
    ssize_t n = send(fd, line.data, line.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    shutdown(fd, SHUT_WR);
    close(fd);
    buf_release(&line);
}

static void conn_open(struct front_tcp *ft, int fd, const char *peer)
{
    struct conn *c = gw_xcalloc(1, sizeof(*c));

    c->ft = ft;
    c->fd = fd;
    buf_init(&c->in);
    /*
     * A vanished peer: keepalive probes when silent; unacknowledged data for
     * three heartbeats (a ping goes out at least every heartbeat), 30 s at least.
     */
    net_tune_session(fd, ft->o.heartbeat, ft->o.heartbeat * 3 > 30 ? ft->o.heartbeat * 3 : 30);
    if (loop_add_fd(ft->loop, fd, LOOP_READ, on_conn_io, c) < 0) {
        log_error("tcp: cannot watch a new session: %s", strerror(errno));
        close(fd);
        free(c);
        return;
    }
    c->reading = true;
    ft->nconns++;
    c->s = session_open(ft->tier, GW_T_TCP, SESSION_LINES, peer, &conn_ops, c);
    log_trace("tcp conn %s accept fd %d from %s", session_id(c->s), fd, peer);
}

static void on_accept(void *ctx, int c, const struct sockaddr *addr, socklen_t addrlen)
{
    struct front_tcp *ft = ctx;
    char peer[64];

    (void)addrlen;
    net_addr_name(addr, peer, sizeof(peer));
    /* Sessions and lingering connections together stay within the limit (lingering_trim). */
    lingering_trim(ft->lingering,
                   ft->nconns < ft->o.max_sessions ? ft->o.max_sessions - ft->nconns - 1 : 0);
    if (ft->nconns >= ft->o.max_sessions &&
        !sessions_make_room(ft->tier, GW_T_TCP, peer, ft->o.max_sessions)) {
        log_trace("tcp accept fd %d, refused (%u sessions open), close", c, ft->o.max_sessions);
        refuse(c, ft->o.max_sessions);
    } else {
        conn_open(ft, c, peer);
    }
}

struct front_tcp *front_tcp_new(struct sessions *tier, struct loop *loop, int listen_fd,
                                const struct front_tcp_options *opts, char why[GW_ERRLEN])
{
    struct front_tcp *ft = gw_xcalloc(1, sizeof(*ft));

    ft->tier = tier;
    ft->loop = loop;
    ft->o = *opts;
    if (!(ft->acceptor = acceptor_new(loop, listen_fd, "tcp", on_accept, ft, why))) {
        free(ft);
        return NULL;
    }
    ft->lingering = lingering_new(loop, LINGER_CLOSE_MS);
    return ft;
}

size_t front_tcp_lingering(const struct front_tcp *ft)
{
    return lingering_count(ft->lingering);
}

void front_tcp_quiesce(struct front_tcp *ft)
{
    acceptor_free(ft->acceptor);
    ft->acceptor = NULL;
}

void front_tcp_free(struct front_tcp *ft)
{
    if (!ft)
        return;
    front_tcp_quiesce(ft);
    lingering_free(ft->lingering); /* those still lingering are closed now */
    free(ft);
}
