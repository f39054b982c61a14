/*
 * gwsh_sub.c - gwsh --sub: follow one channel for ever, one line per
 * message on stdout (JSON, or with --text a line for a person that says how
 * long after its commit it arrived), across lost connections and gateway
 * restarts.
 *
 * The promise is that of docs/protocol.md's Resume section, kept on this
 * side too: every message is printed once, in seq order. gwsh remembers the
 * last seq it printed and comes back with SUB <channel> <that seq>; it also
 * drops any message at or below it, so even a server that repeated itself
 * could not make it print a line twice. Status goes to stderr, never
 * stdout, so a script reads nothing but messages.
 */
#include "gwsh_sub.h"

#include "client_conn.h"
#include "gwsh_show.h"
#include "gwsh_sig.h"
#include "server_line.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

/* Reconnection back-off: from BACKOFF_MIN_MS doubling to BACKOFF_MAX_MS. */
#define BACKOFF_MIN_MS    100
#define BACKOFF_MAX_MS    5000
/*
 * A session that has sent nothing for this many heartbeat periods (plus a
 * margin) is taken for dead: the server pings every heartbeat seconds when
 * it has nothing else to say, so silence means the path is gone.
 */
#define HEARTBEAT_MISSES  3
#define HEARTBEAT_DEFAULT 30
/* A day: longer than any heartbeat a gateway sends, small enough that the limit cannot overflow. */
#define HEARTBEAT_MAX     86400

enum sub_end {
    SUB_RETRY, /* the connection ended: come back */
    SUB_FATAL, /* the server refused what a retry would ask again */
    SUB_STOP   /* a stop signal */
};

struct follower {
    const struct gwsh_opts *o;
    int64_t last;    /* the last seq printed (or the cursor to start after); -1: from now */
    bool subscribed; /* this connection got its ok */
    struct buf out;
};

/* Error codes after which the same SUB, later, may succeed. */
static bool transient(struct sl_text code)
{
    static const char *const codes[] = {"shutting_down", "store_failed", "too_many_sessions",
                                        "slow_consumer", "idle_timeout", "too_many_errors",
                                        "line_too_long"};

    for (size_t i = 0; i < GW_ARRAY_SIZE(codes); i++) {
        if (sl_text_is(code, codes[i]))
            return true;
    }
    return false;
}

static void send_sub(struct follower *f, struct client_conn *c)
{
    char line[128];
    int n;

    if (f->last >= 0)
        n = snprintf(line, sizeof(line), "SUB %s %" PRId64, f->o->sub, f->last);
    else
        n = snprintf(line, sizeof(line), "SUB %s", f->o->sub);
    client_conn_send_line(c, line, (size_t)n);
}

/* The wall clock in µs, for the delay of a push (ts is wall-clock time too). */
static int64_t wall_us(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* One message push, read at wall-clock time now_us: printed unless it is not news. */
static void on_message(struct follower *f, const struct server_line *l, int64_t now_us)
{
    int64_t seq = l->msg.seq;

    if (!sl_text_is(l->msg.channel, f->o->sub) || seq < 1)
        return; /* not ours: we asked for one channel only */
    if (f->last >= 0 && seq <= f->last)
        return; /* printed already */
    if (f->last >= 0 && seq != f->last + 1)
        gwsh_status("%s: seq %" PRId64 " follows %" PRId64 ": messages %" PRId64 " to %" PRId64
                    " were not received",
                    f->o->sub, seq, f->last, f->last + 1, seq - 1);
    buf_clear(&f->out);
    if (f->o->text)
        gwsh_show_delay(&l->msg, now_us, &f->out);
    else
        server_line_msg_json(l, &f->out);
    /* One line, flushed now: a reader of the pipe sees each message as it commits. */
    if (fwrite(f->out.data, 1, f->out.len, stdout) != f->out.len || fflush(stdout) != 0) {
        gwsh_status("writing to stdout: %s", strerror(errno));
        exit(GWSH_EXIT_ERROR);
    }
    f->last = seq;
}

/* "error <code>: <message>" of a line, for stderr. */
static const char *describe(const struct server_line *l, const char *raw, size_t len,
                            struct buf *tmp)
{
    buf_clear(tmp);
    gwsh_show_line(l, raw, len, tmp);
    while (tmp->len && tmp->data[tmp->len - 1] == '\n')
        tmp->data[--tmp->len] = '\0';
    return tmp->len ? tmp->data : "(empty)";
}

/*
 * One line from the server. Returns -1 to go on, or how this connection
 * ends.
 */
static int on_line(struct follower *f, struct client_conn *c, const char *raw, size_t len,
                   int64_t now_us, int64_t *heartbeat_s)
{
    struct server_line l;
    struct buf tmp = BUF_INIT;
    int end = -1;

    server_line_parse(&l, raw, len);
    switch (l.type) {
    case SL_HELLO:
        if (l.heartbeat > 0)
            *heartbeat_s = l.heartbeat < HEARTBEAT_MAX ? l.heartbeat : HEARTBEAT_MAX;
        /* The greeting is in: later lines may be as long as a HIST page. */
        c->line_max = CLIENT_LINE_MAX;
        send_sub(f, c);
        break;
    case SL_MESSAGE:
        on_message(f, &l, now_us);
        break;
    case SL_PING:
        break;
    case SL_GAP:
        gwsh_status("%s", describe(&l, raw, len, &tmp));
        break;
    case SL_OK:
        if (l.op == PROTO_SUB && !f->subscribed) {
            f->subscribed = true;
            if (f->last < 0)
                f->last = l.since;
            gwsh_status("following %s at %s after seq %" PRId64, f->o->sub, f->o->addr, f->last);
        }
        break;
    case SL_BYE:
        gwsh_status("%s", describe(&l, raw, len, &tmp));
        end = SUB_RETRY;
        break;
    case SL_ERROR:
        gwsh_status("%s", describe(&l, raw, len, &tmp));
        if (!f->subscribed && !transient(l.code)) {
            gwsh_status("SUB %s %" PRId64 " was refused: giving up", f->o->sub, f->last);
            end = SUB_FATAL;
        } else {
            end = SUB_RETRY;
        }
        break;
    case SL_PONG:
    case SL_OTHER:
        break; /* we asked nothing that answers so */
    case SL_INVALID:
        gwsh_status("the server sent a line that is not JSON: %s", describe(&l, raw, len, &tmp));
        end = SUB_RETRY; /* framing is in doubt: start a clean session */
        break;
    }
    server_line_release(&l);
    buf_release(&tmp);
    return end;
}

/* One connection, from connect to its end. */
static enum sub_end follow_once(struct follower *f)
{
    struct client_conn c;
    char err[GW_ERRLEN];
    int64_t heartbeat_s = HEARTBEAT_DEFAULT, last_rx;
    int end = -1;

    f->subscribed = false;
    client_conn_init(&c, NULL);
    c.line_max = GWSH_GREETING_MAX;
    if (gwsh_connect(&c, f->o->addr, f->o->timeout_ms, err) < 0) {
        client_conn_release(&c);
        if (gwsh_stop)
            return SUB_STOP;
        gwsh_status("%s", err);
        return SUB_RETRY;
    }
    last_rx = client_now_ns();
    while (end < 0) {
        struct pollfd pfd;
        int64_t limit_ns, now_us;
        enum client_line got = CLIENT_MORE;
        char *line;
        size_t len;
        int rc;

        if (client_conn_flush(&c, err) < 0) {
            gwsh_status("connection to %s lost: %s", f->o->addr, err);
            end = SUB_RETRY;
            break;
        }
        /* Until the ok, the server owes us an answer within the timeout; after it, heartbeats. */
        limit_ns = f->subscribed ? (HEARTBEAT_MISSES * heartbeat_s + 5) * 1000000000LL
                                 : (int64_t)f->o->timeout_ms * 1000000LL;
        pfd.fd = c.fd;
        pfd.events = (short)(POLLIN | (client_conn_want_write(&c) ? POLLOUT : 0));
        rc = gwsh_poll(&pfd, 1, gwsh_ms_until(last_rx + limit_ns));
        if (rc < 0) {
            if (gwsh_stop) {
                end = SUB_STOP;
                break;
            }
            if (errno == EINTR)
                continue;
            gwsh_status("poll: %s", strerror(errno));
            end = SUB_RETRY;
            break;
        }
        if (rc == 0) {
            gwsh_status("nothing from %s for %" PRId64 " s: taking the connection for dead",
                        f->o->addr, (int64_t)(limit_ns / 1000000000LL));
            end = SUB_RETRY;
            break;
        }
        if (!(pfd.revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        rc = client_conn_fill(&c, err);
        if (rc < 0) {
            gwsh_status("connection to %s lost: %s", f->o->addr, err);
            end = SUB_RETRY;
            break;
        }
        now_us = wall_us(); /* when these lines arrived: the delay --text shows */
        while (end < 0 && (got = client_conn_line(&c, &line, &len)) == CLIENT_LINE) {
            /* Life is a whole line: bytes that never end one (a stalled proxy) are silence. */
            last_rx = client_now_ns();
            end = on_line(f, &c, line, len, now_us, &heartbeat_s);
        }
        if (end < 0 && got == CLIENT_TOO_LONG) {
            gwsh_status("%s sent a line longer than %zu bytes", f->o->addr, c.line_max);
            end = SUB_RETRY; /* framing is lost: start a clean session */
        }
        if (end < 0 && rc == 0) {
            gwsh_status("%s closed the connection", f->o->addr);
            end = SUB_RETRY;
        }
    }
    client_conn_release(&c);
    return (enum sub_end)end;
}

/* Sleeps ms, or less if a stop signal comes. */
static void pause_ms(int ms)
{
    int64_t until = client_now_ns() + (int64_t)ms * 1000000;

    while (!gwsh_stop && gwsh_ms_until(until) > 0)
        gwsh_poll(NULL, 0, gwsh_ms_until(until));
}

/* backoff/2 plus a random part of backoff/2: many followers of one restarted gateway spread out. */
static int jitter(int backoff_ms)
{
    unsigned r = 0;

    if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != (ssize_t)sizeof(r))
        r = (unsigned)client_now_ns();
    return backoff_ms / 2 + (int)(r % (unsigned)(backoff_ms / 2 + 1));
}

int gwsh_sub_run(const struct gwsh_opts *o)
{
    struct follower f;
    int backoff = BACKOFF_MIN_MS;

    memset(&f, 0, sizeof(f));
    f.o = o;
    f.last = o->has_since ? o->since : -1;
    buf_init(&f.out);
    for (;;) {
        enum sub_end end = follow_once(&f);
        int wait_ms;

        if (end == SUB_STOP || gwsh_stop)
            break;
        if (end == SUB_FATAL) {
            buf_release(&f.out);
            return GWSH_EXIT_ERROR;
        }
        /* A connection that got as far as its ok was a success: start the back-off over. */
        if (f.subscribed)
            backoff = BACKOFF_MIN_MS;
        wait_ms = jitter(backoff);
        if (f.last >= 0)
            gwsh_status("reconnecting in %.1f s to resume %s after seq %" PRId64, wait_ms / 1000.0,
                        o->sub, f.last);
        else
            gwsh_status("reconnecting in %.1f s", wait_ms / 1000.0);
        pause_ms(wait_ms);
        backoff = backoff * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : backoff * 2;
    }
    buf_release(&f.out);
    return GWSH_EXIT_OK;
}
