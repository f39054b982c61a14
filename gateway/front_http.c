/*
 * front_http.c - the REST front; see front_http.h.
 *
 * libmicrohttpd's handler contract: a request's state is created when its
 * request line is in (the URI callback), the first handler call judges its
 * head and answers only to refuse it (answering then makes libmicrohttpd
 * 0.9.75 close a keep-alive connection), later calls hand over body chunks,
 * and the call with no data left answers. A publish suspends the connection
 * until its commit comes back from the writer, then resumes it to answer.
 * State is freed in the completion callback, which also runs for aborted
 * requests, or when the connection closes if no handler call ever came.
 *
 * Around libmicrohttpd, each connection has a phase the front tracks itself
 * (struct hconn): idle (no request under way), head (a request's first
 * bytes are in), body, busy (answering, or suspended). libmicrohttpd only
 * knows a per-byte idle timeout, so a request dripped a byte at a time
 * would never end; the phases give it deadlines, and tell which connection
 * can give its place to a newcomer at --max-connections. The front learns
 * of a request's first byte by watching an idle connection's socket itself
 * (libmicrohttpd then reads it; libmicrohttpd runs after every callback of a
 * loop turn, so the watch hears of the byte first), of its request line
 * from libmicrohttpd's URI callback, and of its whole head from the first
 * handler call. To end a connection, the front writes its answer on the
 * socket if one is due and shuts the socket down; libmicrohttpd sees the
 * end and cleans up through its usual callbacks (it owns the descriptor:
 * never close() it).
 */
#include "front_http.h"

#include "acceptor.h"
#include "buf.h"
#include "codec_json.h"
#include "core.h"
#include "fair_share.h"
#include "http_edge.h"
#include "log.h"
#include "origin.h"
#include "metrics.h"
#include "loop.h"
#include "net.h"
#include "outq.h"
#include "page.h"
#include "input_budget.h"
#include "reply_budget.h"
#include "router.h"
#include "session.h"
#include "sio_poll.h"
#include "text.h"
#include "ws_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define LOG_PATH_MAX        200
/* Body bytes we read and drop to answer a refused request on a live connection. */
#define DRAIN_MAX(max_body) (4 * (max_body) + 1024 * 1024)
/*
 * Each connection's libmicrohttpd memory pool holds the request's head, the
 * read buffer and the answer's head, and libmicrohttpd zeroes all of it
 * between two requests: its 32 KiB default cost a 32 KiB memset per request.
 * A head that nearly fills the pool leaves no room for the answer's head
 * (libmicrohttpd then closes the connection without a word, after the
 * request was served), so heads are held to HTTP_HEAD_MAX, well inside it,
 * and answered 431 above (catch_refused_head answers those too large for the
 * pool at all, which libmicrohttpd refuses itself).
 */
#define HTTP_CONN_POOL      (20 * 1024)
#define HTTP_HEAD_MAX       (8 * 1024)
/* An answer to a read on its way this long is not being taken (answer_not_taken). */
#define ANSWER_NOT_TAKEN_MS 1000
/* libmicrohttpd's warnings: at most one line this often (on_mhd_log). */
#define MHD_LOG_EVERY_MS    10000
/*
 * A request head arriving this long may be cut for a newcomer at the limit
 * (head_to_close): a client sends its head at once (in a few ms), one that
 * drips it is slower.
 */
#define HEAD_GIVES_WAY_MS   250
/*
 * Heads of one address let finish at once (a browser sends six): past them,
 * a moment-old head gives way too, or an address that opens its connections
 * again and again, each sending a head's first bytes, would keep every one
 * of them a moment old and every newcomer out.
 */
#define HEADS_AT_ONCE       8
/* Connections of the biggest holder share_room asks, newest first, before it gives up. */
#define SHARE_WALK          64
/*
 * A connection opened this long ago that has not sent a byte yet is not
 * idle: a browser opens several at once and sends on each a moment later.
 */
#define JUST_OPENED_MS      2000
/*
 * Nor is a keep-alive connection answered this long ago: its client may be
 * sending its next request (a publish on a connection closed meanwhile gets
 * no answer, and its client cannot tell whether it was stored).
 */
#define BETWEEN_REQUESTS_MS 1000
/* A history page's JSON around its messages, reserved with --page-bytes. */
#define PAGE_OVERHEAD       256

enum conn_phase {
    CONN_IDLE, /* no request under way: just opened, or between requests */
    CONN_HEAD, /* a request has begun, its head is not all in */
    CONN_BODY, /* head in, body arriving */
    CONN_BUSY  /* the request is whole: being answered, suspended, or closing */
};

/* The connections in one phase, oldest first: the candidates to make room. */
struct conn_list {
    struct hconn *first, *last;
};

/* One connection, kept in libmicrohttpd's socket context slot. */
struct hconn {
    struct front_http *fh;
    struct MHD_Connection *conn;
    int fd;                    /* libmicrohttpd's: shut down, never closed, here */
    unsigned long long number; /* for logs and traces */
    enum conn_phase phase;
    uint64_t phase_ms; /* when the phase began */
    struct loop_timer *deadline;
    unsigned watching;      /* LOOP_* events the loop watches fd for; 0: none */
    struct req *req;        /* the request under way, from its request line on */
    struct conn_list *list; /* fh->idle or fh->heads, or NULL */
    struct hconn *prev, *next;
    bool cut;                /* ended by the front: shut down, no longer counted */
    struct fair_place place; /* in fh->by_source while counted */
    char peer[64];           /* "ip:port", found once at accept; "" when unknown */
    char source[SOURCE_MAX]; /* its address, the key of its fair shares */
    bool upgraded;           /* handed to the WebSocket front: libmicrohttpd only cleans up */
    bool give_way;           /* its place went to another address's newcomer: cut once answered */
    bool used;               /* a request has begun on it */
    bool read_one;           /* libmicrohttpd has read a request line on it */
    uint64_t rx_idle;        /* bytes its client had sent by its last answer (idle_news) */
    bool rx_known;
    char cut_why[160];
};

struct front_http {
    struct MHD_Daemon *daemon;
    struct core *core;
    struct loop *loop;
    struct acceptor *acceptor; /* NULL once quiescing, and no Socket.IO poll is owed */
    int epoll_fd;
    struct front_http_options o;
    size_t in_flight;
    bool need_run;      /* a connection was added, resumed or cut: let libmicrohttpd see it */
    uint64_t run_at_ms; /* libmicrohttpd's next timeout */
    bool quiescing;
    uint64_t mhd_log_next_ms;     /* libmicrohttpd's next line that is logged as a warning */
    uint64_t mhd_log_held;        /* its lines since, logged at the debug level */
    bool closing_on_purpose;      /* a handler returned MHD_NO to end a connection */
    struct req *waiters;          /* long-polls, so shutdown can answer them all */
    struct fair_share *by_source; /* connections counted in open, by source address */
    struct metrics *metrics;
    uint64_t conns; /* connections accepted, to number them in traces */
    unsigned open;  /* connections counted against max_connections */
    struct conn_list idle, heads;
    char sessions_hint[96]; /* how to open a session, for the index */
    struct req *sio_held;   /* /socket.io/ requests the Socket.IO front holds */
};

enum req_phase {
    REQ_READING, /* headers in, body arriving */
    REQ_BUSY,    /* suspended until the writer or the reader answers */
    REQ_READY,   /* answer ready in reply_*: resumed to send it */
    REQ_WAITING  /* long-poll: suspended until a message or the deadline */
};

struct req {
    struct front_http *fh;
    struct hconn *hc;
    struct MHD_Connection *conn;
    struct route route;
    enum req_phase phase;
    enum gw_err err; /* decided while reading, answered at the end */
    char why[GW_ERRLEN];
    struct buf body;
    size_t body_held; /* body's bytes counted in --max-input-memory (input_budget.h) */
    bool text_body;   /* a text/plain publish: the body is the message */
    size_t drained;   /* body bytes read and dropped */
    uint64_t start_us;
    unsigned status;
    /* answer_not_taken: the bytes its client had acknowledged, and when they last grew */
    uint64_t acked, acked_ms;
    bool acked_known;
    bool taken_some; /* its client has acknowledged some of the answer (answer_not_taken saw it) */
    size_t bytes;
    char method[16];
    char path[LOG_PATH_MAX + 1]; /* the request target as sent, query included */
    bool nul_escape;             /* the target holds %00: it decodes to a NUL byte */
    bool slash_escape;           /* its path holds %2F: it decodes to a slash */
    bool bare_cr;                /* the request line holds a CR that ends no line */
    bool headers_seen;           /* the first handler call has run */
    bool http11;                 /* HTTP/1.1 or later */
    const char *ws_protocol;     /* an upgrade: the subprotocol agreed (static), or NULL */
    int upgrade_fd;              /* an upgrade: the socket's duplicate for the front, or -1 */
    bool close;                  /* answer with Connection: close */
    bool gone;                   /* the client left while the request was suspended */
    const char *ended;           /* why it ended early, when the front ended it */
    /* the answer, built when the commit or the read comes back */
    unsigned reply_status;
    char *reply_body;
    size_t reply_len;
    size_t reserved; /* a page's bound, in the core's reply budget while its read is under way */
    size_t held;     /* reply_body's bytes in the budget, until the body is freed */
    struct reply_source *budget; /* its address's share of the budget, once it counts in it */
    char location[48];
    enum gw_err reply_err;
    /* long-poll */
    uint64_t since, limit, wait;
    struct core_watch *watch;
    bool fired;           /* the watch fired: something after since committed */
    bool last_read;       /* answer whatever this read finds */
    bool longpoll;        /* it waited: counted as a long-poll */
    uint64_t woken_by_us; /* accept time of the message that woke it */
    size_t wake_reserve;  /* what its read after the wait reserves (start_read) */
    size_t wake_page;     /* and the most its page may take (0: --page-bytes) */
    size_t body_in;       /* request body bytes received */
    struct loop_timer *deadline;
    struct req *prev_waiter, *next_waiter;
    /* SSE */
    bool sse_go;                 /* the cursor is valid: start the stream when resumed */
    bool sse_retry;              /* the store could not check it: a stream that says so and ends */
    bool has_since;              /* a cursor was given (Last-Event-ID or since=) */
    bool since_is_last_event_id; /* ... by Last-Event-ID: an error names it, not since */
    bool streamed;               /* handed to the SSE front: its bytes are the stream's */
    /* Socket.IO (/socket.io/) */
    struct sio_poll sio;
    bool sio_held;  /* held by the Socket.IO front, suspended */
    bool sio_ready; /* its answer is in: resumed to send it */
    char sio_sid[48];
    struct req *sio_prev, *sio_next; /* fh->sio_held */
};

static void conn_watch(struct hconn *hc, unsigned events);

/*
 * Seconds a client is told to wait (Retry-After) after store_busy: the
 * writer waits up to a second for another writer's lock before it answers;
 * and after store_unavailable: the store tries to reconnect at least every
 * two seconds.
 */
#define HTTP_STORE_BUSY_RETRY_AFTER "1"

/*
 * The one translation from error to HTTP status. store_busy passes by
 * itself: 503 with Retry-After. store_full does not pass until someone frees
 * room: 507 Insufficient Storage (RFC 4918), the status for a server that
 * cannot store what it was sent.
 */
static unsigned http_status(enum gw_err err)
{
    switch (err) {
    case GW_OK:
        return MHD_HTTP_OK;
    case GW_E_JSON:
    case GW_E_UTF8:
    case GW_E_NOT_OBJECT:
    case GW_E_MISSING_FIELD:
    case GW_E_FIELD:
    case GW_E_PARAM:
    case GW_E_CHANNEL:
    case GW_E_CURSOR:
    case GW_E_UNKNOWN_COMMAND:
    case GW_E_MISSING_ARGUMENT:
        return MHD_HTTP_BAD_REQUEST;
    case GW_E_TOO_MANY_SUBS:
    case GW_E_TOO_MANY_ERRORS:
    case GW_E_TOO_MANY_SESSIONS:
    case GW_E_SLOW_CONSUMER:
        return MHD_HTTP_TOO_MANY_REQUESTS;
    case GW_E_IDLE:
        return MHD_HTTP_REQUEST_TIMEOUT;
    case GW_E_LINE_TOO_LONG:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case GW_E_NOT_FOUND:
    case GW_E_NOT_SUBSCRIBED:
        return MHD_HTTP_NOT_FOUND;
    case GW_E_METHOD:
        return MHD_HTTP_METHOD_NOT_ALLOWED;
    case GW_E_UPGRADE_REQUIRED:
        return MHD_HTTP_UPGRADE_REQUIRED;
    case GW_E_ORIGIN:
    case GW_E_HOST:
        return MHD_HTTP_FORBIDDEN;
    case GW_E_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case GW_E_HEAD_TOO_LARGE:
        return MHD_HTTP_REQUEST_HEADER_FIELDS_TOO_LARGE;
    case GW_E_MEDIA_TYPE:
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case GW_E_SHUTDOWN:
    case GW_E_STORE_BUSY:
    case GW_E_STORE_UNAVAILABLE:
    case GW_E_BUSY:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case GW_E_STORE_FULL:
        return MHD_HTTP_INSUFFICIENT_STORAGE;
    case GW_E_STORE:
    case GW_E_STORE_IN_USE:
    case GW_E_SCHEMA:
    case GW_E_CONFIG:
    case GW_E__COUNT:
        break;
    }
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* A page libmicrohttpd sends: its bytes stay in the reply budget until it is freed. */
struct held_page {
    struct reply_source *budget;
    size_t bytes;
    char *data;
};

static void release_page(void *cls)
{
    struct held_page *p = cls;

    reply_budget_release(p->budget, p->bytes);
    free(p->data);
    free(p);
}

/* Frees the answer built and not sent, out of the budget too. */
static void drop_body(struct req *r)
{
    free(r->reply_body);
    r->reply_body = NULL;
    reply_budget_release(r->budget, r->held);
    r->held = 0;
}

/* The request's body is done with: its bytes leave --max-input-memory too. */
static void release_body(struct req *r)
{
    buf_release(&r->body);
    input_budget_release(r->fh->o.inputs, &r->body_held);
}

/* The request's address in the reply budget, joined on first use (req_finish leaves it). */
static struct reply_source *req_budget(struct req *r)
{
    if (!r->budget)
        r->budget = reply_budget_join(core_replies(r->fh->core), r->hc ? r->hc->source : "");
    return r->budget;
}

/* Reserves n bytes for a reply about to be read (GW_E_BUSY with why when they do not fit). */
static enum gw_err reserve_reply(struct req *r, size_t n, char why[GW_ERRLEN])
{
    enum gw_err err = reply_budget_reserve(req_budget(r), n, why);

    if (err == GW_OK)
        r->reserved = n;
    return err;
}

/* The read is back (or never started): its reservation ends. */
static void read_done(struct req *r)
{
    reply_budget_release(r->budget, r->reserved);
    r->reserved = 0;
}

/*
 * Notes an answer being queued: its status and size for the log, where its
 * client's acknowledgements stand (answer_not_taken: an answer too large
 * for the socket's buffers is judged by what its client takes after this),
 * and the bytes its client has sent, its whole request (idle_news:
 * anything more is the next one). One getsockopt for both.
 */
static void answer_queued(struct req *r, unsigned status, size_t len)
{
    struct hconn *hc = r->hc;

    r->status = status;
    r->bytes = len;
    r->acked_ms = loop_now_ms();
    r->acked_known = hc && net_tcp_bytes(hc->fd, &r->acked, &hc->rx_idle) == 0;
    if (hc)
        hc->rx_known = r->acked_known;
}

/*
 * Queues body (taken) as the answer, of type ctype, with up to two extra
 * headers. A body in the reply budget (r->held) leaves it when
 * libmicrohttpd is done with it: sent, or its connection gone.
 */
static enum MHD_Result reply_with(struct req *r, unsigned status, const char *ctype, char *body,
                                  size_t len, const char *const hdrs[4])
{
    struct MHD_Response *resp;
    struct held_page *page = NULL;
    enum MHD_Result ret;

    /* A final newline keeps a shell prompt off the end of curl's output. */
    char *grown = gw_xrealloc(body, len + 2);
    if (!len || grown[len - 1] != '\n')
        grown[len++] = '\n';
    grown[len] = '\0';
    if (r->held) {
        page = gw_xcalloc(1, sizeof(*page));
        *page = (struct held_page){r->budget, r->held, grown};
        r->held = 0;
        resp =
            MHD_create_response_from_buffer_with_free_callback_cls(len, grown, release_page, page);
    } else {
        resp = MHD_create_response_from_buffer_with_free_callback(len, grown, free);
    }
    if (!resp) {
        if (page)
            release_page(page);
        else
            free(grown);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    for (int i = 0; i < 4 && hdrs[i]; i += 2)
        MHD_add_response_header(resp, hdrs[i], hdrs[i + 1]);
    if (r->fh->quiescing || r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    answer_queued(r, status, len);
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Queues body (taken) as the answer, of type ctype, with one optional extra header. */
static enum MHD_Result reply_as(struct req *r, unsigned status, const char *ctype, char *body,
                                size_t len, const char *header, const char *value)
{
    const char *hdrs[4] = {header, value, NULL, NULL};
    return reply_with(r, status, ctype, body, len, hdrs);
}

static enum MHD_Result reply(struct req *r, unsigned status, char *body, size_t len,
                             const char *header, const char *value)
{
    return reply_as(r, status, "application/json", body, len, header, value);
}

/* The header an error answer carries besides the body, if any (its value in *value). */
static const char *error_header(const struct req *r, enum gw_err err, const char **value)
{
    *value = NULL;
    if (err == GW_E_METHOD) {
        *value = r->route.allow;
        return MHD_HTTP_HEADER_ALLOW;
    }
    if (err == GW_E_STORE_BUSY || err == GW_E_STORE_UNAVAILABLE || err == GW_E_BUSY) {
        *value = HTTP_STORE_BUSY_RETRY_AFTER;
        return MHD_HTTP_HEADER_RETRY_AFTER;
    }
    if (err == GW_E_TOO_MANY_SESSIONS) {
        *value = "1"; /* a place frees up as soon as a session or stream ends */
        return MHD_HTTP_HEADER_RETRY_AFTER;
    }
    return NULL;
}

static enum MHD_Result reply_error(struct req *r, enum gw_err err, const char *why)
{
    size_t len;
    const char *value;
    const char *header = error_header(r, err, &value);
    char *body = codec_error_encode(err, why, &len);
    return reply(r, http_status(err), body, len, header, value);
}

static enum MHD_Result reply_ok(struct req *r, char *body, size_t len)
{
    return reply(r, MHD_HTTP_OK, body, len, NULL, NULL);
}

/* Reads query parameter name as a non-negative integer, def when absent. */
/*
 * The query argument name: NULL when absent, "" when sent without a value
 * ("?since" is there, and is not a number: it must not read as absent).
 */
static const char *query_of(struct req *r, const char *name)
{
    const char *v = NULL;

    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, name, strlen(name), &v,
                                      NULL) != MHD_YES)
        return NULL;
    return v ? v : "";
}

/* The query parameter name, an integer from 0 to most; def when it is absent. */
static enum gw_err query_u64(struct req *r, const char *name, uint64_t def, uint64_t most,
                             uint64_t *out)
{
    const char *v = query_of(r, name);

    if (!v) {
        *out = def;
        return GW_OK;
    }
    if (!text_parse_u64(v, most, out)) {
        snprintf(r->why, GW_ERRLEN, "%s must be an integer from 0 to %" PRIu64 ", got '%.40s'",
                 name, most, v);
        return GW_E_PARAM;
    }
    return GW_OK;
}

/* The client's address, "ip:port", as the session fronts see theirs. */
static void req_peer(const struct req *r, char peer[64])
{
    if (r->hc && r->hc->peer[0])
        memcpy(peer, r->hc->peer, sizeof(r->hc->peer));
    else
        net_peer_name(-1, peer, 64);
}

static struct core_caller caller_of(const struct req *r)
{
    return (struct core_caller){.transport = GW_T_REST,
                                .peer = r->hc && *r->hc->peer ? r->hc->peer : NULL};
}

/* The answer is built: resume the connection so that the handler sends it. */
static void answer_later(struct req *r, unsigned status, char *body, size_t len)
{
    drop_body(r);
    r->reply_status = status;
    r->reply_body = body;
    r->reply_len = len;
    r->phase = REQ_READY;
    MHD_resume_connection(r->conn);
    r->fh->need_run = true;
}

/* As answer_later, with a body that counts in the reply budget until it is freed. */
static void answer_held_later(struct req *r, unsigned status, char *body, size_t len)
{
    answer_later(r, status, body, len);
    reply_budget_add(req_budget(r), len);
    r->held = len;
}

static void answer_error_later(struct req *r, enum gw_err err, const char *why)
{
    size_t len;
    char *body = codec_error_encode(err, why, &len);

    r->reply_err = err;
    answer_later(r, http_status(err), body, len);
}

static void end_watch(struct req *r)
{
    core_unwatch(r->fh->core, r->watch);
    r->watch = NULL;
}

static void read_page(struct req *r);

/* Takes a long-poll out of its wait: the waiters, its deadline, its hang-up watch. */
static void unhold(struct req *r)
{
    struct front_http *fh = r->fh;

    fh->metrics->open[GW_T_LONGPOLL]--;
    if (r->prev_waiter)
        r->prev_waiter->next_waiter = r->next_waiter;
    else
        fh->waiters = r->next_waiter;
    if (r->next_waiter)
        r->next_waiter->prev_waiter = r->prev_waiter;
    r->prev_waiter = r->next_waiter = NULL;
    loop_timer_cancel(fh->loop, r->deadline);
    r->deadline = NULL;
    conn_watch(r->hc, 0); /* the hang-up watch */
}

/* Ends a long-poll's wait: one more read answers it, with whatever there is. */
static void wake(struct req *r)
{
    if (r->phase != REQ_WAITING)
        return;
    unhold(r);
    r->last_read = true;
    read_page(r);
}

/* The watch fired: the store has a message after since now (m, when in hand). */
static void on_watch(void *ctx, const struct gw_msg *m, size_t m_bytes)
{
    struct req *r = ctx;
    r->fired = true;
    if (!r->woken_by_us && m)
        r->woken_by_us = m->accepted_us;
    /* Its page is this message's size (see start_read); another gateway's commits: a page. */
    r->wake_reserve = PAGE_OVERHEAD + (m ? m_bytes : core_page_most(r->fh->core));
    r->wake_page = m ? m_bytes : 0;
    /* The watch ends in the answer: this runs inside the core's fan-out. */
    wake(r);
}

static void on_wait_over(struct loop *loop, void *ctx)
{
    struct req *r = ctx;

    (void)loop;
    r->deadline = NULL; /* a timer is gone once it has run */
    wake(r);
}

/* Holds the request until the watch fires or the wait is over. */
static void hold(struct req *r)
{
    struct front_http *fh = r->fh;

    r->phase = REQ_WAITING;
    r->longpoll = true;
    /* Woken by its deadline, nothing came: nothing reserved, one message at most. */
    r->wake_reserve = 0;
    r->wake_page = 1;
    fh->metrics->open[GW_T_LONGPOLL]++;
    log_debug("http long-poll on '%.*s' after %llu: waiting up to %llu s", (int)r->route.arg_len,
              r->route.arg, (unsigned long long)r->since, (unsigned long long)r->wait);
    r->deadline = loop_timer_add(fh->loop, r->wait * 1000, on_wait_over, r);
    r->next_waiter = fh->waiters;
    if (fh->waiters)
        fh->waiters->prev_waiter = r;
    fh->waiters = r;
    conn_watch(r->hc, LOOP_HUP); /* a client that leaves ends the wait at once */
}

static void on_page(void *ctx, enum gw_err err, const char *why, const struct gw_page *page)
{
    struct req *r = ctx;
    struct front_http *fh = r->fh;
    char channel[GW_CHANNEL_MAX + 1], busy[GW_ERRLEN];
    size_t len, reserved = r->reserved;

    read_done(r);
    if (err != GW_OK) {
        end_watch(r);
        answer_error_later(r, err, why);
        return;
    }
    if (!page->n && !page->ngaps && r->watch && !r->last_read && !fh->quiescing) {
        /* Nothing after since yet. A commit the read may have missed fired the watch: read again.
         */
        if (r->fired)
            read_page(r);
        else
            hold(r);
        return;
    }
    end_watch(r);
    /* core_history took the name, so it fits. */
    memcpy(channel, r->route.arg, r->route.arg_len);
    channel[r->route.arg_len] = '\0';
    char *body = codec_history_encode(channel, page, &len);
    /*
     * Larger than its read reserved (one message whose escaping made it up
     * to six times its size): it must fit as a read of its size would. An
     * empty page (a wait that ran out reserves nothing) always does.
     */
    if (len > reserved + PAGE_OVERHEAD && reply_budget_room(req_budget(r), len, busy) != GW_OK) {
        free(body);
        answer_error_later(r, GW_E_BUSY, busy);
        return;
    }
    enum gw_transport t = r->longpoll ? GW_T_LONGPOLL : GW_T_REST;
    fh->metrics->delivered[t] += page->n;
    if (page->n && r->woken_by_us)
        metrics_hist_observe(&fh->metrics->delivery_seconds[t],
                             (double)(loop_now_us() - r->woken_by_us) / 1e6);
    answer_held_later(r, MHD_HTTP_OK, body, len);
}

/*
 * Reads the page (r->since, r->limit) on the reader thread, reserving its
 * bound in the reply budget first; on_page answers. GW_E_BUSY when the
 * budget is full. A long-poll's read after its wait (wait_over) reserves
 * what the message that woke it takes in a page, not a whole page, and its
 * page is cut to that size (at least one message): a commit that wakes
 * thousands of long-polls must not find their whole pages reserved, nor
 * build pages larger than it reserved (what else came while it waited is
 * in its next poll). Reserving it still matters: were the woken reads let
 * in on the budget's room alone, all of one wake-up would pass before any
 * page was counted. The page's real size counts once it is built. Woken by
 * the end of its wait, nothing committed after its cursor: nothing is
 * reserved.
 */
static enum gw_err start_read(struct req *r, bool wait_over, char why[GW_ERRLEN])
{
    struct front_http *fh = r->fh;
    struct core_caller caller = caller_of(r);
    enum gw_err err = reserve_reply(
        r, wait_over ? r->wake_reserve : core_page_most(fh->core) + PAGE_OVERHEAD, why);

    if (err == GW_OK &&
        (err = core_history(fh->core, &caller, r->route.arg, r->route.arg_len, r->since, r->limit,
                            wait_over ? r->wake_page : 0, on_page, r, why)) != GW_OK)
        read_done(r);
    return err;
}

/* The long-poll's read after its wait; on_page answers. */
static void read_page(struct req *r)
{
    char why[GW_ERRLEN];
    enum gw_err err = start_read(r, true, why);

    r->phase = REQ_BUSY;
    if (err != GW_OK) {
        end_watch(r);
        answer_error_later(r, err, why);
    }
}

static enum MHD_Result get_history(struct req *r)
{
    struct front_http *fh = r->fh;
    enum gw_err err;

    if ((err = query_u64(r, "since", 0, INT64_MAX, &r->since)) != GW_OK ||
        (err = query_u64(r, "limit", GW_LIMIT_DEFAULT, INT64_MAX, &r->limit)) != GW_OK ||
        (err = query_u64(r, "wait", 0, GW_WAIT_MAX, &r->wait)) != GW_OK ||
        (err = core_check_wait(r->wait, r->why)) != GW_OK)
        return reply_error(r, err, r->why);
    /*
     * A long-poll sets its watch before it reads: whatever committed before
     * is in the read, whatever commits after fires the watch.
     */
    if (r->wait > 0 && r->limit > 0 && !fh->quiescing &&
        (err = core_watch(fh->core, r->route.arg, r->route.arg_len, r->since, on_watch, r,
                          &r->watch, r->why)) != GW_OK)
        return reply_error(r, err, r->why);
    if ((err = start_read(r, false, r->why)) != GW_OK) {
        end_watch(r);
        return reply_error(r, err, r->why);
    }
    r->phase = REQ_BUSY;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

static void on_message(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    struct req *r = ctx;
    char busy[GW_ERRLEN];
    size_t len;

    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    char *body = codec_msg_encode(m, &len);
    /*
     * In the reply budget until it is taken, as a page is: a message of
     * --max-body up to 16 MiB is six times that once escaped, and readers
     * that do not take it must not hold it past the bound. A small one
     * always fits.
     */
    if (len > PAGE_OVERHEAD && reply_budget_room(req_budget(r), len, busy) != GW_OK) {
        free(body);
        answer_error_later(r, GW_E_BUSY, busy);
        return;
    }
    answer_held_later(r, MHD_HTTP_OK, body, len);
}

static enum MHD_Result get_message(struct req *r)
{
    struct core_caller caller = caller_of(r);
    char idstr[24];
    uint64_t id = 0;
    enum gw_err err;

    if (r->route.arg_len >= sizeof(idstr)) {
        err = GW_E_PARAM;
    } else {
        memcpy(idstr, r->route.arg, r->route.arg_len);
        idstr[r->route.arg_len] = '\0';
        err = text_parse_u64(idstr, INT64_MAX, &id) ? GW_OK : GW_E_PARAM;
    }
    if (err != GW_OK)
        snprintf(r->why, GW_ERRLEN, "message id must be a positive integer");
    else
        err = core_message(r->fh->core, &caller, id, on_message, r, r->why);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    r->phase = REQ_BUSY;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

static void on_channels(void *ctx, enum gw_err err, const char *why,
                        const struct gw_channel_info *chans, size_t n, const char *next_after)
{
    struct req *r = ctx;
    size_t len;

    read_done(r);
    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    char *body = codec_channels_encode(chans, n, next_after, &len);
    answer_held_later(r, MHD_HTTP_OK, body, len);
}

/* GET /v1/channels?after=<name>&limit=<n>: a page of the channel list. */
static enum MHD_Result get_channels(struct req *r)
{
    struct core_caller caller = caller_of(r);
    const char *after = NULL;
    size_t after_len = 0;
    uint64_t limit;
    enum gw_err err;

    /* With its length: a %00 in the value must not cut the name short. */
    if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "after", strlen("after"),
                                      &after, &after_len) != MHD_YES ||
        !after)
        after_len = 0;
    err = query_u64(r, "limit", GW_CHANNELS_LIMIT_DEFAULT, INT64_MAX, &limit);
    if (err == GW_OK)
        err = reserve_reply(
            r, PAGE_OVERHEAD + codec_channels_max_len(limit <= GW_CHANNELS_LIMIT_MAX ? limit : 0),
            r->why);
    if (err == GW_OK && (err = core_channels(r->fh->core, &caller, after, after_len, limit,
                                             on_channels, r, r->why)) != GW_OK)
        read_done(r);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    r->phase = REQ_BUSY;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

/* Runs on the loop thread when the writer is done with this request's message. */
static void on_committed(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg)
{
    struct req *r = ctx;
    size_t len;

    read_done(r); /* the answer's own bytes count instead */
    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    snprintf(r->location, sizeof(r->location), "/v1/messages/%" PRId64, msg->id);
    char *body = codec_msg_encode(msg, &len);
    answer_held_later(r, MHD_HTTP_CREATED, body, len);
}

static enum MHD_Result post_message(struct req *r)
{
    struct core_caller caller = caller_of(r);
    struct codec_publish pub;
    struct core_publish_req preq;
    enum gw_err err;

    if (r->text_body) {
        /* The body is the message, byte for byte; the sender may come in the query. */
        const char *sender = query_of(r, "sender");
        memset(&pub, 0, sizeof(pub));
        pub.body = gw_xmemdup(r->body.data ? r->body.data : "", r->body.len);
        pub.body_len = r->body.len;
        if (sender) {
            pub.sender = gw_xstrdup(sender);
            pub.sender_len = strlen(sender);
        }
    } else if (query_of(r, "sender")) {
        /* Stored as anonymous, the slip would pass unseen: the README shows both forms. */
        return reply_error(r, GW_E_PARAM,
                           "?sender= is for a text/plain body: a JSON body names its sender in "
                           "the body ({\"sender\":\"...\",\"body\":\"...\"})");
    } else if ((err = codec_publish_decode(r->body.data ? r->body.data : "", r->body.len, &pub,
                                           r->why)) != GW_OK) {
        return reply_error(r, err, r->why);
    }
    preq = (struct core_publish_req){
        .channel = r->route.arg,
        .channel_len = r->route.arg_len,
        .sender = pub.sender,
        .sender_len = pub.sender_len,
        .body = pub.body,
        .body_len = pub.body_len,
    };
    /*
     * The 201 echoes the message: a large one reserves its answer in the
     * reply budget before it is stored, so that clients that do not read
     * their answers cannot hold more than the bound, and one that does not
     * fit is refused with nothing stored (it may be sent again).
     */
    size_t most = gw_msg_wire_len_most(preq.channel, preq.channel_len, preq.sender, preq.sender_len,
                                       preq.body, preq.body_len, GW_T_REST);
    char busy[GW_ERRLEN];
    if (most > PAGE_OVERHEAD && reserve_reply(r, most, busy) != GW_OK) {
        snprintf(r->why, GW_ERRLEN, "nothing was stored: %.200s", busy);
        err = GW_E_BUSY;
    } else if ((err = core_publish(r->fh->core, &caller, &preq, on_committed, r, r->why)) !=
               GW_OK) {
        read_done(r);
    }
    codec_publish_release(&pub);
    release_body(r);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    r->phase = REQ_BUSY;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

static enum MHD_Result get_metrics(struct req *r)
{
    struct metrics_commits commits;
    struct buf out = BUF_INIT;
    size_t len;

    core_commit_stats(r->fh->core, &commits);
    metrics_render_prometheus(r->fh->metrics, &commits, &out);
    char *body = buf_detach(&out, &len);
    return reply_as(r, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", body, len, NULL,
                    NULL);
}

static void stats_sample(void *ctx, const char *name, const char *label, double value)
{
    codec_stats_sample(ctx, name, label, value);
}

static enum MHD_Result get_stats(struct req *r)
{
    struct metrics_commits commits;
    struct codec_stats st;
    struct buf out = BUF_INIT;
    size_t len;

    core_commit_stats(r->fh->core, &commits);
    codec_stats_begin(&st, &out);
    metrics_visit(r->fh->metrics, &commits, stats_sample, &st);
    codec_stats_end(&st);
    char *body = buf_detach(&out, &len);
    return reply_ok(r, body, len);
}

/* ---- Server-Sent Events: the request judged here, the stream served by the SSE front ---- */

/*
 * HEAD: the stream's head alone. libmicrohttpd 0.9.75 still writes the last
 * chunk after the head of an unknown-size response to a HEAD, so the
 * connection ends with it: five stray bytes must not be read as the start of
 * the next response.
 */
static ssize_t sse_head_body(void *cls, uint64_t pos, char *out, size_t max)
{
    (void)cls, (void)pos, (void)out, (void)max;
    return MHD_CONTENT_READER_END_OF_STREAM;
}

static enum MHD_Result sse_head(struct req *r)
{
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 1024, sse_head_body, NULL, NULL);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/event-stream");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, "X-Accel-Buffering", "no");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = MHD_HTTP_OK;
    ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result sse_no_room(struct req *r)
{
    snprintf(r->why, GW_ERRLEN,
             "as many event streams as --max-sse-streams allows are open: try again later");
    return reply_error(r, GW_E_TOO_MANY_SESSIONS, r->why);
}

/*
 * The cursor is valid: the connection becomes the stream. The SSE front
 * gets a duplicate of the socket and writes the response itself; this
 * handler then returns MHD_NO, so that libmicrohttpd drops the connection
 * and its memory pool at once. That leaves the socket open for the
 * duplicate: libmicrohttpd takes the descriptor out of its epoll set
 * before closing it, and with MHD_USE_TURBO it does not shut the socket
 * down first. Bytes a client pipelined after this request are not read.
 */
static enum MHD_Result sse_start(struct req *r)
{
    struct front_http *fh = r->fh;
    char line[GW_CHANNEL_MAX + 40], peer[64];
    int len, fd;

    /* The stop began while the cursor was read: no new stream. */
    if (fh->quiescing)
        return reply_error(r, GW_E_SHUTDOWN, "the gateway is stopping");
    if (strcmp(r->method, "HEAD") == 0)
        return sse_head(r);
    req_peer(r, peer);
    if (!fh->o.sse.room(fh->o.sse.ctx, peer))
        return sse_no_room(r);
    if (!r->hc || (fd = fcntl(r->hc->fd, F_DUPFD_CLOEXEC, 0)) < 0) {
        snprintf(r->why, GW_ERRLEN, "no descriptor for the stream: %s", strerror(errno));
        log_warn("http: %s", r->why);
        return reply_error(r, GW_E_TOO_MANY_SESSIONS, r->why);
    }
    if (r->has_since)
        len = snprintf(line, sizeof(line), "SUB %.*s %" PRIu64, (int)r->route.arg_len, r->route.arg,
                       r->since);
    else
        len = snprintf(line, sizeof(line), "SUB %.*s", (int)r->route.arg_len, r->route.arg);
    /* Our loop must not watch the descriptor libmicrohttpd closes: the socket lives on. */
    conn_watch(r->hc, 0);
    log_trace("http conn %llu hands fd %d to the SSE front: %s", r->hc->number, fd, line);
    fh->o.sse.adopt(fh->o.sse.ctx, fd, r->http11, line, (size_t)len);
    r->status = MHD_HTTP_OK;
    r->streamed = true;
    r->ended = "streaming";
    /* libmicrohttpd's "internal error" line is about this: no news. */
    fh->closing_on_purpose = true;
    return MHD_NO;
}

/*
 * The store could not check a new stream's cursor now (it is out of reach,
 * or busy): were the answer a 503, an EventSource would give up for good (it
 * reconnects only after a stream that ends). So it is a stream: the retry:
 * of every stream, one error event that says why, and its end; the browser
 * comes back after the retry, as after any stream that ended.
 */
static bool store_for_now(enum gw_err err)
{
    return err == GW_E_STORE_UNAVAILABLE || err == GW_E_STORE_BUSY;
}

static enum MHD_Result sse_retry(struct req *r, enum gw_err err, const char *why)
{
    static const char *const hdrs[4] = {MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache", NULL, NULL};
    struct buf line = BUF_INIT, out = BUF_INIT;
    size_t len;

    codec_line_error(&line, err, why, NULL, NULL, 0);
    buf_appendf(&out, "retry: %u\nevent: error\ndata: ", SESSION_SSE_RETRY_MS);
    buf_append(&out, line.data,
               line.len && line.data[line.len - 1] == '\n' ? line.len - 1 : line.len);
    buf_append(&out, "\n\n", 2);
    buf_release(&line);
    r->close = true;
    char *body = buf_detach(&out, &len);
    return reply_with(r, MHD_HTTP_OK, "text/event-stream", body, len, hdrs);
}

/* The read that checked the channel and the cursor came back. */
static void on_events_checked(void *ctx, enum gw_err err, const char *why,
                              const struct gw_page *page)
{
    struct req *r = ctx;

    if (err != GW_OK && store_for_now(err) && strcmp(r->method, "HEAD") != 0) {
        r->sse_retry = true;
        snprintf(r->why, GW_ERRLEN, "%s", why);
        answer_error_later(r, err, why); /* the resumed handler answers it as a stream */
        return;
    }
    if (err == GW_E_CURSOR && page && r->since_is_last_event_id) {
        /* The client sent no since: its Last-Event-ID is what went past the top. */
        char told[GW_ERRLEN];
        snprintf(told, sizeof(told),
                 "Last-Event-ID %" PRIu64 " is beyond the last seq of '%.*s' (%lld)", r->since,
                 (int)r->route.arg_len, r->route.arg, (long long)page->top);
        answer_error_later(r, err, told);
        return;
    }
    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    r->sse_go = true;
    r->phase = REQ_READY;
    MHD_resume_connection(r->conn);
    r->fh->need_run = true;
}

/*
 * GET /v1/channels/{ch}/events. The cursor: Last-Event-ID when sent (an
 * EventSource reconnecting sends it with the URL it was first given, since=
 * included, so it must win), else since=, else none (from now on). The
 * channel and the cursor are checked by a read of the channel's top before
 * the stream starts, so that a bad one is a 400 and not a stream that ends.
 */
static const char *header_list(struct req *r, const char *name, struct buf *list);

static enum MHD_Result get_events(struct req *r)
{
    struct front_http *fh = r->fh;
    struct core_caller caller = caller_of(r);
    struct buf ids = BUF_INIT; /* every Last-Event-ID field, joined */
    enum gw_err err = GW_OK;
    char peer[64], *last;

    if (!fh->o.sse.adopt) {
        snprintf(r->why, GW_ERRLEN, "Server-Sent Events are not served here");
        return reply_error(r, GW_E_NOT_FOUND, r->why);
    }
    if (fh->quiescing)
        return reply_error(r, GW_E_SHUTDOWN, "the gateway is stopping");
    req_peer(r, peer);
    if (strcmp(r->method, "HEAD") != 0 && !fh->o.sse.room(fh->o.sse.ctx, peer))
        return sse_no_room(r); /* before the cursor's read: no work for a refusal */
    last = (char *)header_list(r, "Last-Event-ID", &ids);
    if (last && strchr(last, ',')) {
        /* Two fields (joined with a comma) or a list: which one counts is ambiguous. */
        snprintf(r->why, GW_ERRLEN, "Last-Event-ID is given more than once ('%.40s'): give it once",
                 last);
        err = GW_E_PARAM;
    } else if (last) {
        for (size_t n = strlen(last); n && (last[n - 1] == ' ' || last[n - 1] == '\t');)
            last[--n] = '\0'; /* trailing blanks are not part of a field's value (RFC 9110 5.5) */
        if (*last && !text_parse_u64(last, INT64_MAX, &r->since)) {
            snprintf(r->why, GW_ERRLEN,
                     "Last-Event-ID must be a seq (a non-negative integer), got '%.40s'", last);
            err = GW_E_PARAM;
        }
        r->has_since = r->since_is_last_event_id = *last != '\0';
    }
    buf_release(&ids);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    if (!r->has_since) {
        if ((err = query_u64(r, "since", 0, INT64_MAX, &r->since)) != GW_OK)
            return reply_error(r, err, r->why);
        r->has_since = query_of(r, "since") != NULL;
    }
    err = core_history(fh->core, &caller, r->route.arg, r->route.arg_len, r->since, 0, 0,
                       on_events_checked, r, r->why);
    if (err != GW_OK) /* the request's own fault: the store is asked on the reader thread */
        return reply_error(r, err, r->why);
    r->phase = REQ_BUSY;
    MHD_suspend_connection(r->conn);
    return MHD_YES;
}

/* ---- the page ---- */

/* GET / for a browser: the page (web/index.html), which loads nothing from elsewhere. */
static enum MHD_Result get_page(struct req *r)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        web_page_len, (void *)(uintptr_t)web_page, MHD_RESPMEM_PERSISTENT);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
    MHD_add_response_header(resp, "Content-Security-Policy", web_page_csp);
    MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-cache");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_VARY, "Accept");
    if (r->fh->quiescing || r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    answer_queued(r, MHD_HTTP_OK, web_page_len);
    ret = MHD_queue_response(r->conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result get_index(struct req *r)
{
    struct codec_endpoint eps[16];
    size_t n, len;
    const struct router_endpoint *re = router_endpoints(&n);

    /* The page at / only: /v1 is the API's own index, for programs. */
    if (r->path[0] == '/' && (r->path[1] == '\0' || r->path[1] == '?') &&
        router_prefers_html(
            MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_ACCEPT)))
        return get_page(r);

    if (n > GW_ARRAY_SIZE(eps))
        n = GW_ARRAY_SIZE(eps);
    for (size_t i = 0; i < n; i++)
        eps[i] = (struct codec_endpoint){re[i].method, re[i].path, re[i].what};
    char *body = codec_index_encode("visavis", VISAVIS_VERSION,
                                    "docs/api.md (this API) and docs/protocol.md (sessions)", eps,
                                    n, r->fh->sessions_hint, &len);
    return reply(r, MHD_HTTP_OK, body, len, MHD_HTTP_HEADER_VARY, "Accept");
}

/* ---- the WebSocket upgrade: the handshake here, the connection to front_ws ---- */

/*
 * The handshake is answered: the socket goes to the WebSocket front, as
 * the duplicate made before the 101 (ws_upgrade), and libmicrohttpd's
 * descriptor is released at once, so the connection's memory pool (tens
 * of KiB) does not stay with every WebSocket for its life; libmicrohttpd
 * then cleans up, closing only its own descriptor.
 */
static void on_upgrade(void *cls, struct MHD_Connection *conn, void *req_cls, const char *extra,
                       size_t extra_len, MHD_socket sock, struct MHD_UpgradeResponseHandle *urh)
{
    struct req *r = cls;
    struct front_http *fh = r->fh;
    int fd = r->upgrade_fd;

    (void)conn;
    (void)req_cls;
    (void)sock; /* the same socket as r->hc->fd, which upgrade_fd duplicates */
    r->upgrade_fd = -1;
    if (r->hc)
        r->hc->upgraded = true;
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    fh->need_run = true;
    if (fd < 0) {
        log_warn("http conn %llu: the upgraded connection has no descriptor of ours",
                 r->hc ? r->hc->number : 0);
        return;
    }
    log_trace("http conn %llu upgrade to websocket (subprotocol %s): fd %d handed over, %zu bytes "
              "read ahead",
              r->hc ? r->hc->number : 0, r->ws_protocol ? r->ws_protocol : "none", fd, extra_len);
    if (r->route.id == ROUTE_SIO)
        fh->o.sio.adopt(fh->o.sio.ctx, fd, extra, extra_len, r->sio_sid[0] ? r->sio_sid : NULL);
    else
        fh->o.ws.adopt(fh->o.ws.ctx, fd, extra, extra_len, r->ws_protocol);
}

static enum MHD_Result sio_reply(struct req *r);

static const char *header_of(struct req *r, const char *name)
{
    return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

struct field_join {
    const char *name;
    struct buf *list;
    unsigned fields; /* joined so far: an empty one counts, so that two always show a comma */
};

static enum MHD_Result join_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    struct field_join *j = cls;

    (void)kind;
    if (strcasecmp(key, j->name) == 0 && value) {
        if (j->fields++)
            buf_append(j->list, ", ", 2);
        buf_append(j->list, value, strlen(value));
    }
    return MHD_YES;
}

/*
 * A list-valued header field, every line of it: a client may send
 * Connection or Sec-WebSocket-Protocol as several fields, which mean one
 * comma-separated list (RFC 9110 5.3). Joined in list; NULL when absent.
 */
static const char *header_list(struct req *r, const char *name, struct buf *list)
{
    struct field_join j = {name, list, 0};

    MHD_get_connection_values(r->conn, MHD_HEADER_KIND, join_field, &j);
    return list->data;
}

static enum MHD_Result ws_upgrade(struct req *r)
{
    struct front_http *fh = r->fh;
    struct buf upgrade = BUF_INIT, connection = BUF_INIT, protocol = BUF_INIT;
    struct ws_request rq = {
        .get = strcmp(r->method, "GET") == 0,
        .http11 = r->http11,
        .upgrade = header_list(r, MHD_HTTP_HEADER_UPGRADE, &upgrade),
        .connection = header_list(r, MHD_HTTP_HEADER_CONNECTION, &connection),
        .version = header_of(r, "Sec-WebSocket-Version"),
        .key = header_of(r, "Sec-WebSocket-Key"),
        .protocol = header_list(r, "Sec-WebSocket-Protocol", &protocol),
        .origin = header_of(r, "Origin"),
        .host = header_of(r, MHD_HTTP_HEADER_HOST),
        .endpoint = r->route.id == ROUTE_SIO ? "/socket.io/?EIO=4&transport=websocket" : NULL,
        .doc = r->route.id == ROUTE_SIO ? "docs/socketio.md" : NULL,
    };
    struct ws_verdict v;
    char peer[64];
    enum gw_err err = ws_handshake_judge(&rq, fh->o.ws.origins ? fh->o.ws.origins : "", &v, r->why);

    buf_release(&upgrade);
    buf_release(&connection);
    buf_release(&protocol);

    req_peer(r, peer);
    if (err == GW_OK && fh->quiescing) {
        err = GW_E_SHUTDOWN;
        snprintf(r->why, GW_ERRLEN, "the gateway is stopping");
    } else if (err == GW_OK && r->route.id == ROUTE_SIO) {
        /* The Socket.IO front judges the rest (EIO, sid, room), in Engine.IO's words. */
        if (fh->o.sio.poll(fh->o.sio.ctx, &r->sio) && r->sio.status)
            return sio_reply(r);
        v.protocol = NULL; /* Engine.IO names no subprotocol */
    } else if (err == GW_OK && !fh->o.ws.adopt) {
        err = GW_E_SHUTDOWN;
        snprintf(r->why, GW_ERRLEN, "WebSocket sessions are not served here");
    } else if (err == GW_OK && fh->o.ws.room && !fh->o.ws.room(fh->o.ws.ctx, peer)) {
        err = GW_E_TOO_MANY_SESSIONS;
        snprintf(r->why, GW_ERRLEN,
                 "as many WebSocket sessions as --max-ws-sessions allows are open: try again "
                 "later");
    }
    /* The front's descriptor is taken before the 101: out of them, the client gets a reason. */
    if (err == GW_OK && (!r->hc || (r->upgrade_fd = fcntl(r->hc->fd, F_DUPFD_CLOEXEC, 0)) < 0)) {
        err = GW_E_TOO_MANY_SESSIONS;
        snprintf(r->why, GW_ERRLEN, "no descriptor for the session: %s", strerror(errno));
        log_warn("http: %s", r->why);
    }
    if (err != GW_OK) {
        const char *hdrs[4] = {NULL, NULL, NULL, NULL}, *value;
        size_t len;
        char *body = codec_error_encode(err, r->why, &len);
        if (err == GW_E_UPGRADE_REQUIRED) {
            /* RFC 9110 15.5.22: a 426 names the protocol to switch to. */
            hdrs[0] = MHD_HTTP_HEADER_UPGRADE;
            hdrs[1] = "websocket";
            if (v.version_hint) {
                hdrs[2] = "Sec-WebSocket-Version";
                hdrs[3] = "13";
            }
        } else {
            hdrs[0] = error_header(r, err, &value);
            hdrs[1] = value;
        }
        return reply_with(r, http_status(err), "application/json", body, len, hdrs);
    }
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, r);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", v.accept);
    if (v.protocol)
        MHD_add_response_header(resp, "Sec-WebSocket-Protocol", v.protocol);
    r->ws_protocol = v.protocol;
    r->status = MHD_HTTP_SWITCHING_PROTOCOLS;
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* ---- Socket.IO: polling requests and the upgrade, for the Socket.IO front ---- */

/* Queues the Socket.IO front's answer exactly as it is (a payload has no line end). */
static enum MHD_Result sio_reply(struct req *r)
{
    size_t len = r->sio.answer.len;
    char *body = buf_detach(&r->sio.answer, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer_with_free_callback(len, body ? body : gw_xstrdup(""), free);
    enum MHD_Result ret;

    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE,
                            r->sio.ctype ? r->sio.ctype : "text/plain; charset=UTF-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (r->fh->quiescing || r->close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    answer_queued(r, r->sio.status, len);
    ret = MHD_queue_response(r->conn, r->sio.status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static void sio_unhold(struct req *r)
{
    struct front_http *fh = r->fh;

    if (!r->sio_held)
        return;
    r->sio_held = false;
    if (r->sio_prev)
        r->sio_prev->sio_next = r->sio_next;
    else
        fh->sio_held = r->sio_next;
    if (r->sio_next)
        r->sio_next->sio_prev = r->sio_prev;
    r->sio_prev = r->sio_next = NULL;
    conn_watch(r->hc, 0);
}

/* sio_poll.ready: the Socket.IO front answered a held request. */
static void sio_on_ready(struct sio_poll *p)
{
    struct req *r = p->http;

    sio_unhold(r);
    r->sio_ready = true;
    r->phase = REQ_READY;
    MHD_resume_connection(r->conn);
    r->fh->need_run = true;
}

/* A held request ends without its answer: the Socket.IO front forgets it. */
static void sio_drop(struct req *r, const char *why)
{
    struct front_http *fh = r->fh;

    fh->o.sio.cancel(fh->o.sio.ctx, &r->sio);
    sio_unhold(r);
    r->gone = true;
    r->ended = why;
    r->phase = REQ_READY;
    MHD_resume_connection(r->conn);
    fh->need_run = true;
}

static enum MHD_Result ws_upgrade(struct req *r);

/*
 * /socket.io/: a poll, a POST of packets, or the WebSocket handshake of
 * transport=websocket, each judged and answered by the Socket.IO front.
 */
static enum MHD_Result sio_request(struct req *r)
{
    struct front_http *fh = r->fh;
    const char *sid = query_of(r, "sid");

    if (!fh->o.sio.poll) {
        snprintf(r->why, GW_ERRLEN, "Socket.IO is not served here");
        return reply_error(r, GW_E_NOT_FOUND, r->why);
    }
    if (strcmp(r->method, "HEAD") == 0) {
        snprintf(r->why, GW_ERRLEN, "HEAD is not allowed on /socket.io/ (allowed: GET, POST)");
        return reply_error(r, GW_E_METHOD, r->why);
    }
    r->sio = (struct sio_poll){
        .kind = r->route.method == ROUTE_POST ? SIO_POLL_POST : SIO_POLL_GET,
        .eio = query_of(r, "EIO"),
        .transport = query_of(r, "transport"),
        .sid = sid,
        .body = r->body.data ? r->body.data : "",
        .body_len = r->body.len,
        .ready = sio_on_ready,
        .http = r,
    };
    snprintf(r->sio_sid, sizeof(r->sio_sid), "%s", sid ? sid : "");
    char peer[64];
    req_peer(r, peer);
    r->sio.peer = peer;
    if (r->sio.transport && strcmp(r->sio.transport, "websocket") == 0 &&
        r->route.method == ROUTE_GET) {
        r->sio.kind = SIO_POLL_UPGRADE;
        return ws_upgrade(r);
    }
    if (fh->o.sio.poll(fh->o.sio.ctx, &r->sio))
        return sio_reply(r);
    /* Held until the Socket.IO front has something (a ping comes every interval). */
    r->sio.peer = NULL;
    r->sio_held = true;
    r->phase = REQ_BUSY;
    r->sio_next = fh->sio_held;
    if (fh->sio_held)
        fh->sio_held->sio_prev = r;
    fh->sio_held = r;
    MHD_suspend_connection(r->conn);
    conn_watch(r->hc, LOOP_HUP); /* a client that leaves ends the wait at once */
    return MHD_YES;
}

/*
 * Alive, and what the store's last commit said: a store that fails until
 * the cause goes (a full disk, a database server away) is "degraded", 200,
 * since reads and live sessions still work and a restart would not mend it;
 * one that fails until the gateway is restarted is "failing", 503, for a
 * supervisor's liveness check to act on.
 */
static enum MHD_Result get_health(struct req *r)
{
    struct metrics_commits c;
    size_t len;
    char *body;

    core_commit_stats(r->fh->core, &c);
    if (c.failing == GW_OK) {
        body = codec_status_encode("ok", &len);
        return reply_ok(r, body, len);
    }
    body = codec_health_encode(c.restart_needed ? "failing" : "degraded", c.failing, c.failing_why,
                               &len);
    return reply(r, c.restart_needed ? MHD_HTTP_SERVICE_UNAVAILABLE : MHD_HTTP_OK, body, len, NULL,
                 NULL);
}

static enum MHD_Result dispatch(struct req *r)
{
    char *body;
    size_t len;

    switch (r->route.id) {
    case ROUTE_INDEX:
        return get_index(r);
    case ROUTE_HEALTH:
        return get_health(r);
    case ROUTE_VERSION:
        body = codec_version_encode("visavis", VISAVIS_VERSION, "v1", core_schema_version(), &len);
        return reply_ok(r, body, len);
    case ROUTE_CHANNELS:
        return get_channels(r);
    case ROUTE_METRICS:
        return get_metrics(r);
    case ROUTE_STATS:
        return get_stats(r);
    case ROUTE_MESSAGE:
        return get_message(r);
    case ROUTE_CHANNEL_MESSAGES:
        return r->route.method == ROUTE_POST ? post_message(r) : get_history(r);
    case ROUTE_CHANNEL_EVENTS:
        return get_events(r);
    case ROUTE_WS:
        return ws_upgrade(r);
    case ROUTE_SIO:
        return sio_request(r);
    }
    return MHD_NO;
}

/* ---- connections: phases, deadlines, room at the limit ---- */

static struct hconn *conn_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? info->socket_context : NULL;
}

static void list_append(struct conn_list *l, struct hconn *hc)
{
    hc->list = l;
    hc->prev = l->last;
    hc->next = NULL;
    if (l->last)
        l->last->next = hc;
    else
        l->first = hc;
    l->last = hc;
}

static void list_remove(struct hconn *hc)
{
    struct conn_list *l = hc->list;

    if (!l)
        return;
    if (hc->prev)
        hc->prev->next = hc->next;
    else
        l->first = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    else
        l->last = hc->prev;
    hc->list = NULL;
    hc->prev = hc->next = NULL;
}

static void on_conn_io(struct loop *loop, int fd, unsigned events, void *ctx);

/* Watches the connection's socket for events (0: not at all). */
static void conn_watch(struct hconn *hc, unsigned events)
{
    int rc = 0;

    if (!hc || events == hc->watching)
        return;
    struct loop *loop = hc->fh->loop;
    if (events == 0)
        loop_del_fd(loop, hc->fd);
    else if (hc->watching == 0)
        rc = loop_add_fd(loop, hc->fd, events, on_conn_io, hc);
    else
        rc = loop_mod_fd(loop, hc->fd, events);
    if (rc < 0) {
        /* libmicrohttpd still serves it; only the first-byte or hang-up hint is lost. */
        log_warn("http conn %llu: cannot watch its socket: %s", hc->number, strerror(errno));
        loop_del_fd(loop, hc->fd);
        events = 0;
    }
    hc->watching = events;
}

/* Seconds since the phase began, for messages. */
static double phase_seconds(const struct hconn *hc)
{
    return (double)(loop_now_ms() - hc->phase_ms) / 1000.0;
}

static void conn_cut(struct hconn *hc, enum gw_err err, const char *extra, bool log_it,
                     const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static void on_conn_deadline(struct loop *loop, void *ctx)
{
    struct hconn *hc = ctx;

    (void)loop;
    hc->deadline = NULL; /* a timer is gone once it has run */
    if (hc->phase == CONN_HEAD)
        conn_cut(hc, GW_E_IDLE, NULL, true, "request head not complete within %u s",
                 hc->fh->o.header_timeout);
    else
        conn_cut(hc, GW_E_IDLE, NULL, true, "request body not complete within %.1f s",
                 phase_seconds(hc));
}

/* Moves hc to phase; deadline_ms (BODY only) is how long the body may take. */
static void conn_enter(struct hconn *hc, enum conn_phase phase, uint64_t deadline_ms)
{
    struct front_http *fh = hc->fh;

    if (hc->cut)
        return;
    list_remove(hc);
    loop_timer_cancel(fh->loop, hc->deadline);
    hc->deadline = NULL;
    hc->phase = phase;
    hc->phase_ms = loop_now_ms();
    if (phase != CONN_IDLE)
        hc->used = true;
    switch (phase) {
    case CONN_IDLE:
        /* Anything a new one ever sent is a request's; a used one's count is its last answer's. */
        if (!hc->used) {
            hc->rx_idle = 0;
            hc->rx_known = true;
        }
        list_append(&fh->idle, hc);
        conn_watch(hc, LOOP_READ | LOOP_HUP); /* for the next request's first byte, or a close */
        break;
    case CONN_HEAD:
        list_append(&fh->heads, hc);
        conn_watch(hc, 0);
        hc->deadline =
            loop_timer_add(fh->loop, (uint64_t)fh->o.header_timeout * 1000, on_conn_deadline, hc);
        break;
    case CONN_BODY:
        conn_watch(hc, 0);
        hc->deadline = loop_timer_add(fh->loop, deadline_ms, on_conn_deadline, hc);
        break;
    case CONN_BUSY:
        conn_watch(hc, 0);
        break;
    }
}

/*
 * A connection with no request under way: idle, or already into the next
 * request if its first bytes wait on the socket (libmicrohttpd may read
 * them before the loop would tell of them).
 */
static void conn_await_request(struct hconn *hc)
{
    char c;

    if (recv(hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) > 0)
        conn_enter(hc, CONN_HEAD, 0);
    else
        conn_enter(hc, CONN_IDLE, 0);
}

/*
 * Writes a whole error answer on a socket nothing else is writing to; a
 * short write is left short (the peer is gone or not reading). Returns the
 * status sent and the body bytes in *bytes.
 */
static unsigned send_error(int fd, enum gw_err err, const char *why, const char *extra,
                           size_t *bytes)
{
    struct buf out = BUF_INIT;
    size_t len;
    unsigned status = http_status(err);
    char *body = codec_error_encode(err, why, &len);

    http_edge_response(&out, status, MHD_get_reason_phrase_for(status), extra, body, len,
                       time(NULL));
    ssize_t n = send(fd, out.data, out.len, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)n;
    *bytes = len + 1;
    free(body);
    buf_release(&out);
    return status;
}

/*
 * Ends a connection from the front: answers err with why when err is not
 * GW_OK, shuts the socket down, and frees its place at once; libmicrohttpd
 * reaps it on its next run. The request under way, if any, is logged as
 * ended for why; with none, a line says so when log_it.
 */
static void conn_cut(struct hconn *hc, enum gw_err err, const char *extra, bool log_it,
                     const char *fmt, ...)
{
    struct front_http *fh = hc->fh;
    unsigned status = 0;
    size_t bytes = 0;
    va_list ap;

    if (hc->cut)
        return;
    va_start(ap, fmt);
    vsnprintf(hc->cut_why, sizeof(hc->cut_why), fmt, ap);
    va_end(ap);
    /* An answer libmicrohttpd has queued already (its own error) is not to be doubled. */
    if (err != GW_OK && !MHD_get_connection_info(hc->conn, MHD_CONNECTION_INFO_HTTP_STATUS))
        status = send_error(hc->fd, err, hc->cut_why, extra, &bytes);
    shutdown(hc->fd, SHUT_RDWR);
    conn_enter(hc, CONN_BUSY, 0); /* out of the lists, no timer, no watch */
    hc->cut = true;
    fh->open--;
    fair_share_leave(fh->by_source, &hc->place);
    fh->need_run = true;
    if (hc->req) {
        hc->req->ended = hc->cut_why;
        if (status) {
            hc->req->status = status;
            hc->req->bytes = bytes;
        }
    } else if (log_it) {
        if (status)
            log_info("http conn %llu closed with %u: %s", hc->number, status, hc->cut_why);
        else
            log_info("http conn %llu closed: %s", hc->number, hc->cut_why);
    }
    log_trace("http conn %llu shutdown: %s", hc->number, hc->cut_why);
}

/* A connection arriving at the limit: its address, and how many connections that address holds. */
struct newcomer {
    char src[SOURCE_MAX];
    size_t holds;
};

/*
 * Idle long enough to be closed for the newcomer without harm
 * (JUST_OPENED_MS, BETWEEN_REQUESTS_MS). A keep-alive connection of the
 * newcomer's own address needs no rest: its client is the one opening
 * another instead of using it.
 */
static bool resting(const struct hconn *hc, const struct newcomer *nc)
{
    uint64_t idle = loop_now_ms() - hc->phase_ms;

    if (!hc->used)
        return idle >= JUST_OPENED_MS;
    return idle >= BETWEEN_REQUESTS_MS || strcmp(hc->source, nc->src) == 0;
}

/*
 * Whether hc's address holds at least as many connections as the
 * newcomer's: a newcomer from the address holding the most takes nothing
 * from the others (it is refused instead).
 */
static bool holds_as_many(struct front_http *fh, const struct hconn *hc, const struct newcomer *nc)
{
    return fair_share_held(fh->by_source, hc->source) >= nc->holds;
}

/*
 * Whether idle hc may be closed for the newcomer: resting, from an address
 * that holds_as_many; or, as a last resort (siblings), one of the
 * newcomer's own address that has sent nothing yet.
 */
static bool idle_gives_way(struct front_http *fh, const struct hconn *hc, const struct newcomer *nc,
                           bool siblings)
{
    if (siblings)
        return !hc->used && strcmp(hc->source, nc->src) == 0;
    return resting(hc, nc) && holds_as_many(fh, hc, nc);
}

/* What the client of an idle connection did since it went idle (idle_news). */
enum idle_news { IDLE_QUIET, IDLE_SENT, IDLE_GONE };

/*
 * Whether the client of idle hc has sent anything since it went idle: a
 * byte waiting in its socket, or bytes libmicrohttpd has read already (its
 * run, at the end of a turn, reads what came after the loop's wait, and the
 * loop then never hears of them). Such a connection is not idle: a request
 * is arriving on it, and if it must go its client is told, not met with a
 * bare close it cannot tell from a lost answer. Or whether it closed it:
 * its FIN waits in the socket with nothing before it. The kernel counts a
 * FIN in the bytes received (it takes a sequence number): one byte more
 * with a FIN waiting is no request.
 */
static enum idle_news idle_news(const struct hconn *hc)
{
    char c;
    uint64_t rx;
    ssize_t n = recv(hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);

    if (n > 0)
        return IDLE_SENT;
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return IDLE_GONE; /* reset */
    uint64_t fin = n == 0 ? 1 : 0;
    bool sent = hc->rx_known && net_tcp_bytes(hc->fd, NULL, &rx) == 0 && rx - hc->rx_idle > fin;
    return sent ? IDLE_SENT : n == 0 ? IDLE_GONE : IDLE_QUIET;
}

/*
 * The idle connection to close first: the one idle longest that gives way
 * (SHARE_WALK asked at most). NULL: none.
 */
static struct hconn *idle_to_close(struct front_http *fh, const struct newcomer *nc, bool siblings,
                                   bool *gone)
{
    struct hconn *hc = fh->idle.first, *next;

    for (int n = 0; hc && n < SHARE_WALK; hc = next, n++) {
        next = hc->next;
        /*
         * An "idle" connection whose next request has begun is not idle: the
         * loop has not heard of those bytes (idle_news). It is a head being
         * sent, and is told 429 if it must go, not closed unheard. One its
         * client closed goes first, whoever's it was: nobody is left on it.
         */
        enum idle_news news = idle_news(hc);
        if (news == IDLE_GONE) {
            *gone = true;
            return hc;
        }
        if (news == IDLE_SENT)
            conn_enter(hc, CONN_HEAD, 0);
        else if (idle_gives_way(fh, hc, nc, siblings))
            return hc;
    }
    return NULL;
}

/*
 * Whether hc's head began arriving a moment ago: a client sends a whole
 * head at once, and one cut while it does loses a request it has begun (a
 * Socket.IO client its session), where a newcomer refused has lost nothing
 * yet. Such a head does not give way (HEAD_GIVES_WAY_MS).
 */
static bool head_being_sent(const struct hconn *hc)
{
    return hc->phase == CONN_HEAD && loop_now_ms() - hc->phase_ms < HEAD_GIVES_WAY_MS;
}

/*
 * The head arriving longest whose address holds_as_many (SHARE_WALK asked
 * at most), unless it is head_being_sent. Heads are listed oldest first.
 */
static struct hconn *head_to_close(struct front_http *fh, const struct newcomer *nc)
{
    struct hconn *hc = fh->heads.first;

    for (int n = 0; hc && n < SHARE_WALK; hc = hc->next, n++) {
        if (head_being_sent(hc))
            return NULL;
        if (holds_as_many(fh, hc, nc))
            return hc;
    }
    return NULL;
}

/*
 * At the limit, closes a connection for the newcomer: with heads false,
 * the one idle longest, resting (closed without a word: its client
 * reconnects unharmed); with heads, the one sending a request's head
 * longest (answered 429, try again) or, if it began earlier, one of the
 * newcomer's own address that has sent nothing yet. Only from an address
 * that holds_as_many. Another address's connection just opened or just
 * answered is never closed here. False when there is none.
 */
static bool make_room(struct front_http *fh, const struct newcomer *nc, bool heads)
{
    bool gone = false;
    struct hconn *idle = idle_to_close(fh, nc, heads, &gone);
    struct hconn *head = heads && !gone ? head_to_close(fh, nc) : NULL;
    struct hconn *hc = !head || (idle && idle->phase_ms <= head->phase_ms) ? idle : head;

    if (!hc)
        return false;
    if (gone)
        conn_cut(hc, GW_OK, NULL, true,
                 "closed by its client after %.1f s idle: its place taken by a new connection "
                 "at the limit of %u",
                 phase_seconds(hc), fh->o.max_connections);
    else if (hc == head)
        conn_cut(hc, GW_E_TOO_MANY_SESSIONS, "Retry-After: 1", true,
                 "request head still arriving after %.1f s while the gateway is at its "
                 "connection limit (%u): closed to make room; try again",
                 phase_seconds(hc), fh->o.max_connections);
    else if (hc->used)
        conn_cut(hc, GW_OK, NULL, true,
                 "idle for %.1f s: closed to make room for a new connection at the limit of %u",
                 phase_seconds(hc), fh->o.max_connections);
    else
        conn_cut(hc, GW_OK, NULL, true,
                 "opened %.1f s ago and sent nothing: closed to make room for a new connection "
                 "at the limit of %u",
                 phase_seconds(hc), fh->o.max_connections);
    return true;
}

/*
 * No connection gives way: the newcomer is told so, with its address's
 * count (the one holding the most is refused, not given another's place),
 * and closed.
 */
static void refuse(struct front_http *fh, int fd, const struct newcomer *nc)
{
    char why[192], sink[4096];
    size_t bytes;

    snprintf(why, sizeof(why),
             "all %u connections are busy with requests, %zu of them from %s, and none can give "
             "way: try again later",
             fh->o.max_connections, nc->holds, nc->src);
    send_error(fd, GW_E_TOO_MANY_SESSIONS, why, "Retry-After: 1", &bytes);
    shutdown(fd, SHUT_WR);
    /* Read what the client sent already, so that the close does not reset the answer away. */
    for (int i = 0; i < 16 && recv(fd, sink, sizeof(sink), MSG_DONTWAIT) > 0; i++)
        ;
    close(fd);
    log_info("http: refused a connection: %s", why);
}

/*
 * At the limit, with a request under way on every connection: the address
 * holding the most connections gives one up to a newcomer from another
 * address, when it holds at least two more (fair_share.h). Its newest
 * connection that can give way does: a long-poll waiting is answered now,
 * with what there is, as at the end of its wait, and closes after the
 * answer; one whose request's head or body is still arriving is told 429
 * and closed (nothing of it was stored). One whose request is being carried
 * out (a commit, an answer on its way) cannot, so the walk goes on to older
 * ones, SHARE_WALK at most. The newcomer is let in meanwhile: at most one
 * acceptor batch of connections goes over the limit (libmicrohttpd has
 * room for it).
 */
/*
 * The answer has been on its way for a while and its client takes none of
 * it: it has acknowledged no byte for ANSWER_NOT_TAKEN_MS (counted from when
 * the answer was queued, not from the request: a long-poll waits first).
 * A client that reads slowly but all the time keeps its connection. Such a
 * connection can give way. A read can be asked again. A publish's message
 * is stored, and the client that would not read its answer finds it in the
 * channel. A Socket.IO answer's packets are lost with it, so its session
 * ends too (sio.lost): its client cannot go on with a hole in what it was
 * sent. Not a stream handed over: its bytes are another front's.
 */
static bool answer_not_taken(struct hconn *hc)
{
    struct req *r = hc->req;
    uint64_t acked;

    if (!r || !r->status || hc->upgraded || r->streamed || hc->phase != CONN_BUSY)
        return false;
    if (r->acked_known && net_tcp_bytes(hc->fd, &acked, NULL) == 0 && acked != r->acked) {
        r->acked = acked;
        r->acked_ms = loop_now_ms();
        r->taken_some = true;
    }
    return loop_now_ms() - r->acked_ms >= ANSWER_NOT_TAKEN_MS;
}

/*
 * Nothing of the address holding the most can go at once: a request being
 * carried out (a commit, a read) or an answer its client is taking finishes,
 * and then its connection closes instead of taking the next request (its
 * answer says Connection: close, or the connection is cut once the answer is
 * out). An address that asks again on every connection as soon as it is
 * answered would otherwise never give a place up. The newcomer is let in
 * meanwhile. An answer its client takes none of is not chosen: the rule
 * above cuts it after a second.
 */
static bool give_way_after_answer(struct front_http *fh, const struct newcomer *nc)
{
    struct fair_place *p = fair_share_victim(fh->by_source, nc->src);

    for (int n = 0; p && n < SHARE_WALK; p = fair_share_older(p), n++) {
        struct hconn *hc = (struct hconn *)(void *)((char *)p - offsetof(struct hconn, place));
        struct req *r = hc->req;

        if (!r || hc->phase != CONN_BUSY || hc->upgraded || r->streamed || hc->give_way ||
            (r->status && !r->taken_some))
            continue;
        log_info("http conn %llu: closes after its answer: %s holds %zu of the %u connections, "
                 "and %s needs one",
                 hc->number, fair_share_source_of(p),
                 fair_share_held(fh->by_source, fair_share_source_of(p)), fh->o.max_connections,
                 nc->src);
        hc->give_way = true; /* its place counts for its address until it closes */
        if (!r->status)
            r->close = true; /* read when its answer is queued: Connection: close */
        return true;
    }
    return false;
}

static bool share_room(struct front_http *fh, const struct newcomer *nc)
{
    const char *src = nc->src;
    struct fair_place *p;
    unsigned young = 0;

    if (fh->open >= fh->o.max_connections + ACCEPTOR_BATCH)
        return false;
    p = fair_share_victim(fh->by_source, src);
    for (int n = 0; p && n < SHARE_WALK; p = fair_share_older(p), n++) {
        struct hconn *hc = (struct hconn *)(void *)((char *)p - offsetof(struct hconn, place));
        struct req *r = hc->req;
        size_t held = fair_share_held(fh->by_source, fair_share_source_of(p));

        if (r && r->phase == REQ_WAITING) {
            log_info("http conn %llu: long-poll answered early and closed: %s holds %zu of the "
                     "%u connections, and %s needs one",
                     hc->number, fair_share_source_of(p), held, fh->o.max_connections, src);
            fair_share_leave(fh->by_source, &hc->place); /* going: the next asks another */
            r->close = true;
            wake(r);
            return true;
        }
        /*
         * A Socket.IO poll waiting likewise: answered with what there is, its
         * client polls again. A POST held until its packets are taken is
         * answered with those not run: its client, not reading what they
         * answer, could hold it as long as its session lives.
         */
        if (r && r->sio_held && fh->o.sio.answer_now &&
            fh->o.sio.answer_now(fh->o.sio.ctx, &r->sio)) {
            log_info("http conn %llu: Socket.IO %s answered early and closed: %s holds %zu of "
                     "the %u connections, and %s needs one",
                     hc->number, r->sio.kind == SIO_POLL_GET ? "poll" : "POST",
                     fair_share_source_of(p), held, fh->o.max_connections, src);
            fair_share_leave(fh->by_source, &hc->place);
            r->close = true; /* read when its answer is queued, in libmicrohttpd's next run */
            return true;
        }
        /*
         * An idle one has not rested (make_room takes those first): told 429
         * rather than closed without a word, so that a request its client
         * sends at this moment gets an answer, nothing of it stored. A
         * head_being_sent goes on, HEADS_AT_ONCE of the address's newest.
         */
        if (head_being_sent(hc) && ++young <= HEADS_AT_ONCE)
            continue;
        if (hc->phase == CONN_IDLE || hc->phase == CONN_HEAD || hc->phase == CONN_BODY) {
            conn_cut(hc, GW_E_TOO_MANY_SESSIONS, "Retry-After: 1", true,
                     "%s holds %zu of the %u connections and a client from another address "
                     "needs one: this one, %s, is closed to make room; try again",
                     fair_share_source_of(p), held, fh->o.max_connections,
                     hc->phase == CONN_IDLE ? "with no request under way"
                                            : "its request not yet whole");
            return true;
        }
        if (r && answer_not_taken(hc)) {
            char why[GW_ERRLEN];
            snprintf(why, sizeof(why),
                     "%s holds %zu of the %u connections and a client from another address "
                     "needs one: this one's answer to a %s has not been taken for %.1f s, and "
                     "it is closed to make room",
                     fair_share_source_of(p), held, fh->o.max_connections, r->method,
                     (double)(loop_now_ms() - r->acked_ms) / 1000.0);
            if (r->route.id == ROUTE_SIO && r->sio.sid && fh->o.sio.lost)
                fh->o.sio.lost(fh->o.sio.ctx, r->sio.sid, why);
            conn_cut(hc, GW_OK, NULL, true, "%s", why);
            return true;
        }
    }
    return give_way_after_answer(fh, nc);
}

static void on_accept(void *ctx, int fd, const struct sockaddr *addr, socklen_t addrlen)
{
    struct front_http *fh = ctx;

    /*
     * A resting idle connection goes first (its client reconnects
     * unharmed); then the address holding the most gives way; then the
     * oldest head. Heads come after fair shares: a client that opens a few
     * connections at once (a browser does) would otherwise see each closed
     * by its next while another address's long-polls hold the rest. Idle
     * connections and heads are only taken from addresses holding at least
     * as many as the newcomer's (holds_as_many).
     */
    if (fh->open >= fh->o.max_connections) {
        struct newcomer nc;
        char peer[64];
        net_addr_name(addr, peer, sizeof(peer));
        source_of_peer(peer, nc.src);
        nc.holds = fair_share_held(fh->by_source, nc.src);
        if (!make_room(fh, &nc, false) && !share_room(fh, &nc) && !make_room(fh, &nc, true)) {
            refuse(fh, fd, &nc);
            return;
        }
    }
    /* libmicrohttpd owns fd from here, and closes it even when it refuses. */
    if (MHD_add_connection(fh->daemon, fd, addr, addrlen) != MHD_YES) {
        log_warn("http: a new connection could not be served: %s", strerror(errno));
        return;
    }
    fh->need_run = true;
}

/* ---- requests: state, framing, logging ---- */

static struct req *req_new(struct front_http *fh, struct MHD_Connection *conn, const char *uri)
{
    struct req *r = gw_xcalloc(1, sizeof(*r));

    r->upgrade_fd = -1;
    r->fh = fh;
    r->conn = conn;
    r->hc = conn_of(conn);
    r->start_us = loop_now_us();
    if (r->hc)
        r->hc->read_one = true;
    snprintf(r->method, sizeof(r->method), "-");
    snprintf(r->path, sizeof(r->path), "%s", uri);
    /* libmicrohttpd decodes %00 into the NUL that ends its strings: the rest would be lost. */
    for (const char *p = strchr(uri, '%'); p && !r->nul_escape; p = strchr(p + 1, '%'))
        r->nul_escape = p[1] == '0' && p[2] == '0';
    /*
     * Decoded, it would split a segment in two (ab%2Fmessages routed as
     * ab/messages): a proxy that matches the path as sent sees another route.
     */
    size_t path_len = strcspn(uri, "?");
    for (size_t i = 0; i + 2 < path_len && !r->slash_escape; i++)
        r->slash_escape = uri[i] == '%' && uri[i + 1] == '2' && (uri[i + 2] | 0x20) == 'f';
    r->bare_cr = strchr(uri, '\r') != NULL;
    buf_init(&r->body);
    fh->in_flight++;
    return r;
}

static const char *termination_name(enum MHD_RequestTerminationCode toe)
{
    switch (toe) {
    case MHD_REQUEST_TERMINATED_COMPLETED_OK:
        return NULL;
    case MHD_REQUEST_TERMINATED_WITH_ERROR:
        return "error";
    case MHD_REQUEST_TERMINATED_TIMEOUT_REACHED:
        return "timeout";
    case MHD_REQUEST_TERMINATED_DAEMON_SHUTDOWN:
        return "shutdown";
    case MHD_REQUEST_TERMINATED_READ_ERROR:
        return "read error";
    case MHD_REQUEST_TERMINATED_CLIENT_ABORT:
        return "client abort";
    }
    return "unknown";
}

/* Logs the request's one line, counts it, and frees it. */
static void req_finish(struct req *r, const char *ended)
{
    struct front_http *fh = r->fh;

    core_unwatch(fh->core, r->watch);
    if (r->ended)
        ended = r->ended;
    if (r->sio_held)
        sio_drop(r, "ended"); /* cannot happen: a held request is suspended */
    if (!r->status) {
        /* libmicrohttpd answered it itself (a head too large, say). */
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_HTTP_STATUS);
        if (info)
            r->status = info->http_status;
    }
    if (log_enabled(GW_LOG_INFO))
        log_info("http %s %s %u %zuB %" PRIu64 "us%s%s", r->method, r->path, r->status, r->bytes,
                 loop_now_us() - r->start_us, ended ? " ended: " : "", ended ? ended : "");
    log_trace("http conn %llu send response %u, %zu body bytes", r->hc ? r->hc->number : 0,
              r->status, r->bytes);
    enum gw_transport t = r->longpoll ? GW_T_LONGPOLL : GW_T_REST;
    /* A stream's bytes and its SUB are counted by the session tier, as sse; Socket.IO's too. */
    if (!r->streamed && r->route.id != ROUTE_SIO) {
        fh->metrics->requests[t]++;
        fh->metrics->bytes_in[t] += r->body_in;
        fh->metrics->bytes_out[t] += r->bytes;
    }
    if (r->hc && r->hc->req == r)
        r->hc->req = NULL;
    if (r->upgrade_fd >= 0)
        close(r->upgrade_fd); /* the 101 never went out */
    release_body(r);
    buf_release(&r->sio.answer);
    drop_body(r);
    reply_budget_leave(r->budget);
    free(r);
    fh->in_flight--;
}

/* Its request line is in: the request exists from here, for the log and its deadline. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    struct front_http *fh = cls;
    struct req *r = req_new(fh, conn, uri);
    struct hconn *hc = r->hc;

    if (hc) {
        if (hc->req) /* cannot happen: the last one ended before this line was read */
            req_finish(hc->req, "replaced");
        hc->req = r;
        if (hc->phase == CONN_IDLE)
            conn_enter(hc, CONN_HEAD, 0);
    }
    return r;
}

static enum MHD_Result note_field(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value)
{
    (void)kind;
    http_framing_add(cls, key, value ? value : "");
    return MHD_YES;
}

/*
 * The query parameters some route reads. libmicrohttpd hands a route the
 * first of a name given twice, and another server or a proxy might take the
 * last: which one counts is ambiguous, so a request that repeats one is
 * refused. Only these names are counted, so a long query costs a pass over
 * its parameters, not a comparison of each with every other.
 */
static const char *const read_params[] = {"since",  "limit", "wait",      "after",
                                          "sender", "sid",   "transport", "EIO"};
#define NREAD_PARAMS (sizeof(read_params) / sizeof(read_params[0]))

struct param_count {
    unsigned seen[NREAD_PARAMS];
    const char *twice; /* the first name met again */
};

static enum MHD_Result count_param(void *cls, enum MHD_ValueKind kind, const char *key,
                                   const char *value)
{
    struct param_count *pc = cls;

    (void)kind;
    (void)value;
    for (size_t i = 0; i < NREAD_PARAMS; i++) {
        /* Without regard to case, as libmicrohttpd looks them up. */
        if (strcasecmp(key, read_params[i]) == 0 && ++pc->seen[i] == 2) {
            pc->twice = read_params[i];
            return MHD_NO; /* one is enough to refuse */
        }
    }
    return MHD_YES;
}

/* GW_E_PARAM with why when a parameter a route reads is given more than once. */
static enum gw_err judge_query_once(struct MHD_Connection *conn, char why[GW_ERRLEN])
{
    struct param_count pc = {0};

    MHD_get_connection_values(conn, MHD_GET_ARGUMENT_KIND, count_param, &pc);
    if (!pc.twice)
        return GW_OK;
    snprintf(why, GW_ERRLEN, "parameter '%s' is given more than once: give it once", pc.twice);
    return GW_E_PARAM;
}

/* The verdict of http_edge on the request's framing headers. */
static enum gw_err judge_framing(struct MHD_Connection *conn, bool http10, uint64_t *length,
                                 bool *chunked, char why[GW_ERRLEN])
{
    struct http_framing f = {0};

    MHD_get_connection_values(conn, MHD_HEADER_KIND, note_field, &f);
    enum gw_err err = http_framing_judge(&f, http10, length, chunked, why);
    return err != GW_OK ? err : http_host_judge(&f, http10, why);
}

/*
 * libmicrohttpd 0.9.75 answers a request whose Content-Length it cannot
 * parse (too large, not a number) itself, before any handler call, and
 * sends that answer's head twice. It logs first: when it does, and a
 * connection's head is in with no handler call and no answer queued yet,
 * that connection is the one (libmicrohttpd parses heads one at a time, on
 * this thread). The front answers it with the usual JSON error and ends it;
 * libmicrohttpd's own answer then meets a closed socket.
 */
static void catch_refused_head(struct front_http *fh, const char *line)
{
    struct hconn *found = NULL;
    char why[GW_ERRLEN];
    uint64_t length;
    bool chunked;
    /* A head larger than the pool, refused before any handler call. */
    bool too_large = strstr(line, "response code is 431") || strstr(line, "response code is 414");

    for (struct hconn *hc = fh->heads.first; hc; hc = hc->next) {
        /* Too large: its head may be whole, its cookies not parsed for want of room. */
        bool whole = MHD_get_connection_info(hc->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
        if ((!whole && !too_large) ||
            MHD_get_connection_info(hc->conn, MHD_CONNECTION_INFO_HTTP_STATUS))
            continue;
        /* An idle connection whose client just closed it is woken as a head too. */
        char c;
        if (!whole && recv(hc->fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0)
            continue;
        if (found)
            return; /* not sure which: libmicrohttpd answers */
        found = hc;
    }
    if (!found)
        return;
    if (too_large) {
        /* The pool also holds a record per field and query parameter: many small ones fill it. */
        conn_cut(found, GW_E_HEAD_TOO_LARGE, NULL, true,
                 "the request line and header fields are over %d bytes, or too many fields and "
                 "query parameters to keep (a few hundred): send fewer or smaller cookies, "
                 "headers and parameters",
                 HTTP_HEAD_MAX);
        return;
    }
    enum gw_err err = judge_framing(found->conn, false, &length, &chunked, why);
    if (err != GW_OK)
        conn_cut(found, err, NULL, true, "%s", why);
}

/* The first byte of a request, or the client of a suspended one leaving. */
static void on_conn_io(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct hconn *hc = ctx;

    (void)loop;
    (void)fd;
    if (hc->phase == CONN_IDLE) {
        /*
         * Its client closed it: its place is free now, not once libmicrohttpd
         * runs. (Only then a look: a request's first byte costs no syscall.)
         */
        if ((events & LOOP_HUP) && idle_news(hc) == IDLE_GONE) {
            conn_cut(hc, GW_OK, NULL, false, "closed by its client");
            return;
        }
        /* libmicrohttpd reads it; the head is due from now. */
        conn_enter(hc, CONN_HEAD, 0);
        return;
    }
    struct req *r = hc->req;
    if ((events & LOOP_HUP) && r && r->sio_held) {
        conn_watch(hc, 0);
        sio_drop(r, "client closed");
        return;
    }
    if ((events & LOOP_HUP) && r && r->phase == REQ_WAITING) {
        /* Nobody is left to answer: free the watch and the slot now. */
        r->gone = true;
        r->ended = "client closed";
        end_watch(r);
        unhold(r);
        r->phase = REQ_READY;
        MHD_resume_connection(r->conn);
        r->fh->need_run = true;
        return;
    }
    conn_watch(hc, 0); /* nothing else to hear from it */
}

/* Bytes a POST body may have: an Engine.IO payload is bounded by maxPayload. */
static size_t body_cap(const struct req *r)
{
    return r->route.id == ROUTE_SIO ? r->fh->o.sio.max_payload : r->fh->o.max_body;
}

/* First call for a request: judge its framing, route it and judge its headers, answer nothing yet.
 */
/*
 * Where the request comes from (origin.h), on every route: a Host the port
 * does not answer to (a site's DNS name pointed here: GW_E_HOST), then a
 * page of a site that is not allowed (GW_E_ORIGIN), a publish above all,
 * which any page may send anywhere without asking first (a cross-origin
 * POST of text/plain). /v1/ws judges its Origin in its handshake.
 */
static enum gw_err judge_site(struct req *r)
{
    const char *host = header_of(r, MHD_HTTP_HEADER_HOST), *origin;
    const char *origins = r->fh->o.ws.origins ? r->fh->o.ws.origins : "";

    if (!host_allowed(host, r->fh->o.hosts ? r->fh->o.hosts : "")) {
        snprintf(r->why, GW_ERRLEN,
                 "Host '%.60s' is not a name this gateway answers to (a web page's DNS name may "
                 "point here): IP addresses, localhost, names without a dot and --http-hosts are",
                 host);
        return GW_E_HOST;
    }
    if (r->route.id == ROUTE_WS || !(origin = header_of(r, "Origin")) ||
        origin_allowed(origin, host, origins))
        return GW_OK;
    if (*origins)
        snprintf(r->why, GW_ERRLEN,
                 "a page of Origin '%.80s' may not use this gateway: it is not in --ws-origins "
                 "(VISAVIS_WS_ORIGINS)",
                 origin);
    else
        snprintf(r->why, GW_ERRLEN,
                 "a page of Origin '%.60s' may not use this gateway: only pages of this host "
                 "(%.60s) may, unless --ws-origins (VISAVIS_WS_ORIGINS) lists it",
                 origin, host ? host : "no Host header");
    return GW_E_ORIGIN;
}

static enum MHD_Result on_headers(struct req *r, const char *method, const char *url,
                                  const char *version, uint64_t *body_len, bool *chunked)
{
    bool http10 = version && strcmp(version, MHD_HTTP_VERSION_1_0) == 0;

    snprintf(r->method, sizeof(r->method), "%s", method);
    r->http11 = version && strcmp(version, MHD_HTTP_VERSION_1_1) == 0;
    if (log_tracing())
        log_trace("http conn %llu recv request %s %s", r->hc ? r->hc->number : 0, r->method,
                  r->path);
    const union MHD_ConnectionInfo *head =
        MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (head && head->header_size > HTTP_HEAD_MAX) {
        snprintf(r->why, GW_ERRLEN,
                 "the request line and header fields are %zu bytes, the limit is %d: send fewer "
                 "or smaller cookies and headers",
                 head->header_size, HTTP_HEAD_MAX);
        r->close = true;
        *body_len = 0;
        *chunked = false;
        return reply_error(r, GW_E_HEAD_TOO_LARGE, r->why);
    }
    enum gw_err err = judge_framing(r->conn, http10, body_len, chunked, r->why);
    if (err == GW_OK && (r->bare_cr || strchr(method, '\r'))) {
        /* As in a header field (http_edge): a proxy could end the line at the CR. */
        snprintf(r->why, GW_ERRLEN,
                 "the request line holds a bare CR: a line ends with CRLF (RFC 9112 2.2)");
        err = GW_E_PARAM;
    }
    if (err != GW_OK) {
        /* Its body cannot be found safely, nor the next request after it. */
        r->close = true;
        return reply_error(r, err, r->why);
    }
    r->err = router_match(method, router_origin_form(url), &r->route, r->why);
    /* A %00 in the path ends it early when decoded: that path may not exist, but the NUL is why. */
    if ((r->err == GW_OK || r->err == GW_E_NOT_FOUND) && r->nul_escape) {
        snprintf(r->why, GW_ERRLEN,
                 "the request target holds %%00, a NUL byte: no channel, parameter or sender may");
        r->err = GW_E_PARAM;
    } else if (r->slash_escape) {
        snprintf(r->why, GW_ERRLEN,
                 "no such path: its path holds %%2F, an encoded slash, which no segment may hold "
                 "(a channel name has none)");
        r->err = GW_E_NOT_FOUND;
    }
    if (r->err == GW_OK)
        r->err = judge_query_once(r->conn, r->why);
    /*
     * A Socket.IO client given another path (its "path" option, or a URL
     * with one): EIO= is Engine.IO's. Told where Socket.IO is served rather
     * than a 404 that suggests a path, or a WebSocket whose first message
     * it cannot read.
     */
    if ((r->err == GW_E_NOT_FOUND || (r->err == GW_OK && r->route.id == ROUTE_WS)) &&
        query_of(r, "EIO")) {
        snprintf(
            r->why, GW_ERRLEN,
            "no Socket.IO here: %.100s is not where Socket.IO is served (EIO= is Engine.IO's); "
            "its path is /socket.io/, a Socket.IO client's default",
            router_origin_form(url));
        r->err = GW_E_NOT_FOUND;
    }
    if (r->err == GW_OK)
        r->err = judge_site(r);
    /*
     * While the gateway stops, the port is open only for the polls of
     * Socket.IO sessions that owe their clients acks and their end
     * (front_http_quiesce): anything else is told so, and closed.
     */
    if (r->err == GW_OK && r->fh->quiescing && r->route.id != ROUTE_SIO) {
        snprintf(r->why, GW_ERRLEN, "the gateway is stopping");
        r->err = GW_E_SHUTDOWN;
        r->close = true;
    }
    /*
     * Too large a body is refused before a byte of it is read, whatever the
     * route (one that takes none would otherwise wait for it all, to drop
     * it); libmicrohttpd then closes the connection.
     */
    size_t cap = r->err == GW_OK && r->route.method == ROUTE_POST ? body_cap(r) : r->fh->o.max_body;
    if (*body_len > cap) {
        snprintf(r->why, GW_ERRLEN, "request body is %" PRIu64 " bytes, the limit is %zu",
                 *body_len, cap);
        r->close = true;
        return reply_error(r, GW_E_TOO_LARGE, r->why);
    }
    if (r->err != GW_OK || r->route.method != ROUTE_POST)
        return MHD_YES;

    if (r->route.id == ROUTE_SIO)
        return MHD_YES; /* Engine.IO payloads are text, whatever the type says */
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (router_is_text(ct)) {
        r->text_body = true;
    } else if (router_is_json(ct)) {
        /* read as JSON */
    } else if (router_type_is(ct, "application/json") || router_type_is(ct, "text/plain")) {
        snprintf(r->why, GW_ERRLEN,
                 "a body of type '%.60s' is not read: its charset is not utf-8, the only one "
                 "taken, or a parameter is not name=value (leave them out, or say "
                 "charset=utf-8)",
                 ct);
        r->err = GW_E_MEDIA_TYPE;
    } else {
        /* curl -d sends a form: show the command that works instead. */
        snprintf(r->why, GW_ERRLEN,
                 "a body of type '%.50s' is not read: send JSON, -H 'content-type: "
                 "application/json' -d '{\"body\":\"hi\"}' (or curl --json), or plain text, -H "
                 "'content-type: text/plain' -d 'hi'",
                 ct ? ct : "(none)");
        r->err = GW_E_MEDIA_TYPE;
    }
    return MHD_YES;
}

/* The head is in: the body, if one comes, is due within its own deadline. */
static void head_done(struct req *r, uint64_t body_len, bool chunked)
{
    struct front_http *fh = r->fh;
    struct hconn *hc = r->hc;

    if (!hc)
        return;
    if (r->status || (body_len == 0 && !chunked)) {
        conn_enter(hc, CONN_BUSY, 0); /* answered already, or nothing more to read */
        return;
    }
    /* A body we keep is at most max_body; one we drop is read up to DRAIN_MAX. */
    uint64_t cap =
        r->err == GW_OK && r->route.method == ROUTE_POST ? body_cap(r) : DRAIN_MAX(fh->o.max_body);
    uint64_t bytes = chunked || body_len > cap ? cap : body_len;
    /* Whatever is read, it is given the time of a --max-body body at most (docs/api.md). */
    if (bytes > fh->o.max_body)
        bytes = fh->o.max_body;
    conn_enter(hc, CONN_BODY, http_body_deadline_ms(bytes, fh->o.body_timeout, fh->o.body_rate));
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct front_http *fh = cls;
    struct req *r = *req_cls;

    if (!r) /* no URI callback: cannot happen with libmicrohttpd 0.9.75 */
        *req_cls = r = on_uri(fh, url, conn);
    if (r->hc && r->hc->cut) {
        /*
         * The front ended this connection and answered for it already (a
         * 503 at a stop, a 429 to make room, a 408): what libmicrohttpd
         * still reads from it is served no more. A publish whose bytes were
         * in the socket would otherwise be stored after its client was told
         * it was not, and stored twice when the client tries again.
         */
        fh->closing_on_purpose = true;
        return MHD_NO;
    }
    if (!r->headers_seen) {
        uint64_t body_len;
        bool chunked;
        r->headers_seen = true;
        enum MHD_Result ret = on_headers(r, method, url, version, &body_len, &chunked);
        head_done(r, body_len, chunked);
        return ret;
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->body_in += n;
        if (r->err == GW_OK && r->route.method == ROUTE_POST && r->body.len + n > body_cap(r)) {
            /* Chunked bodies give no length up front: stop buffering at the limit. */
            snprintf(r->why, GW_ERRLEN, "request body is over the limit of %zu bytes", body_cap(r));
            release_body(r);
            r->err = GW_E_TOO_LARGE;
        } else if (r->err == GW_OK && r->route.method == ROUTE_POST &&
                   !input_budget_hold(fh->o.inputs, &r->body_held, r->body.len + n, r->why)) {
            /*
             * Bodies under way fill --max-input-memory: this one is dropped
             * (busy, nothing stored), and what is left of it drained.
             */
            release_body(r);
            r->err = GW_E_BUSY;
            r->close = true;
        } else if (r->err == GW_OK && r->route.method != ROUTE_POST &&
                   r->body_in > fh->o.max_body) {
            /* As its Content-Length would have been, on a route that takes no body. */
            snprintf(r->why, GW_ERRLEN, "request body is over the limit of %zu bytes",
                     fh->o.max_body);
            r->err = GW_E_TOO_LARGE;
            r->close = true;
        }
        if (r->err != GW_OK || r->route.method != ROUTE_POST) {
            /*
             * An answer is decided already, but libmicrohttpd only lets us give
             * it once the body is in: drain it, within reason, then close.
             */
            r->drained += n;
            return r->drained > DRAIN_MAX(fh->o.max_body) ? MHD_NO : MHD_YES;
        }
        buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    switch (r->phase) {
    case REQ_READING:
        if (r->hc && r->hc->phase == CONN_BODY)
            conn_enter(r->hc, CONN_BUSY, 0); /* the body is whole */
        if (r->err != GW_OK)
            return reply_error(r, r->err, r->why);
        return dispatch(r);
    case REQ_BUSY:
    case REQ_WAITING:
        return MHD_YES; /* not resumed yet; cannot happen while suspended */
    case REQ_READY: {
        if (r->sio_ready) {
            r->sio_ready = false;
            r->phase = REQ_READING;
            return sio_reply(r);
        }
        if (r->sse_go) {
            r->sse_go = false;
            r->phase = REQ_READING; /* streaming: nothing more to resume for */
            return sse_start(r);
        }
        if (r->gone) {
            /* Nobody to answer: libmicrohttpd closes the connection, and says why next. */
            fh->closing_on_purpose = true;
            return MHD_NO;
        }
        if (r->sse_retry) {
            r->sse_retry = false;
            r->err = r->reply_err;
            return sse_retry(r, r->reply_err, r->why);
        }
        char *body = r->reply_body;
        const char *value = r->location, *header = NULL;
        r->reply_body = NULL;
        r->err = r->reply_err;
        if (r->reply_status == MHD_HTTP_CREATED)
            header = MHD_HTTP_HEADER_LOCATION;
        else if (r->err != GW_OK)
            header = error_header(r, r->err, &value);
        return reply(r, r->reply_status, body, r->reply_len, header, value);
    }
    }
    return MHD_NO;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct front_http *fh = cls;
    struct req *r = *req_cls;
    struct hconn *hc;

    (void)conn;
    if (!r)
        return;
    GW_ASSERT(r->phase != REQ_BUSY && r->phase != REQ_WAITING);
    hc = r->hc;
    /*
     * A Socket.IO poll's answer not sent whole (its client left, or it
     * timed out): the packets in it were taken from the session and are
     * lost, so the session cannot go on as if its client had them. Its
     * answer is set (sio.status) once they are taken, which may be before
     * it was queued here.
     */
    if (toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && r->route.id == ROUTE_SIO &&
        r->sio.kind == SIO_POLL_GET && r->sio.sid && r->sio.status == MHD_HTTP_OK && fh->o.sio.lost)
        fh->o.sio.lost(fh->o.sio.ctx, r->sio.sid,
                       "the answer to its poll was not taken whole: its client lost packets");
    /*
     * Its place went to a newcomer while it was answered (give_way_after_answer),
     * too late for a Connection: close: it takes no next request.
     */
    bool give_way = hc && hc->give_way && !r->close && !hc->upgraded;
    req_finish(r, termination_name(toe));
    *req_cls = NULL;
    if (give_way) {
        conn_cut(hc, GW_OK, NULL, false, "its place given to another address");
        return;
    }
    /* Kept alive: idle until the next request's first byte. */
    if (hc && toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && !fh->quiescing && !hc->upgraded)
        conn_await_request(hc);
}

/* The connection's address, once, and its place for that address (share_room). */
static void conn_take_place(struct front_http *fh, struct hconn *hc, struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    if (!info || !info->client_addr)
        return;
    net_addr_name(info->client_addr, hc->peer, sizeof(hc->peer));
    source_of_peer(hc->peer, hc->source);
    fair_share_take(fh->by_source, &hc->place, hc->source);
}

static void log_client_line(struct front_http *fh, const char *line);

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct front_http *fh = cls;
    struct hconn *hc;

    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *info =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        hc = gw_xcalloc(1, sizeof(*hc));
        hc->fh = fh;
        hc->conn = conn;
        hc->fd = info ? info->connect_fd : -1;
        hc->number = ++fh->conns;
        *socket_ctx = hc;
        fh->open++;
        conn_take_place(fh, hc, conn);
        fh->metrics->open[GW_T_REST]++;
        log_trace("http conn %llu accept", hc->number);
        if (hc->fd >= 0)
            conn_await_request(hc);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        hc = *socket_ctx;
        if (!hc)
            return;
        log_trace("http conn %llu close", hc->number);
        /*
         * Bytes came and libmicrohttpd closed without a request line read and
         * without an answer of its own (which it logs): a line cut short by
         * its client, or one it cannot read (a tab between its parts).
         */
        if (hc->used && !hc->read_one && !hc->cut &&
            !MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS)) {
            char line[200];
            snprintf(line, sizeof(line),
                     "conn %llu from %s closed before a request line could be read (cut short, "
                     "or not a method, a target and a version separated by single spaces)",
                     hc->number, hc->peer);
            log_client_line(fh, line);
        }
        /* A request whose handler never ran: libmicrohttpd will not complete it. */
        if (hc->req)
            req_finish(hc->req, "closed before its head was read");
        conn_enter(hc, CONN_BUSY, 0);
        list_remove(hc);
        if (!hc->cut)
            fh->open--;
        fair_share_leave(fh->by_source, &hc->place);
        fh->metrics->open[GW_T_REST]--;
        free(hc);
        *socket_ctx = NULL;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    struct front_http *fh = cls;

    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    if (fh->closing_on_purpose && (strstr(line, "Application reported internal error") ||
                                   strstr(line, "application error generating response"))) {
        /* The front ended that connection on purpose, and logs that itself. */
        fh->closing_on_purpose = false;
        log_debug("http: %s", line);
        return;
    }
    fh->closing_on_purpose = false;
    catch_refused_head(fh, line);
    log_client_line(fh, line);
}

/*
 * A line about one client (a reset, a read error, a request line that could
 * not be read): a flood of such clients must not flood the log. One line at
 * once, then at most one per MHD_LOG_EVERY_MS saying how many went to the
 * debug level.
 */
static void log_client_line(struct front_http *fh, const char *line)
{
    uint64_t now = loop_now_ms();
    if (now < fh->mhd_log_next_ms) {
        fh->mhd_log_held++;
        log_debug("http: %s", line);
        return;
    }
    if (fh->mhd_log_held)
        log_warn("http: %s (and %llu more such lines in the last %d s, at the debug level)", line,
                 (unsigned long long)fh->mhd_log_held, MHD_LOG_EVERY_MS / 1000);
    else
        log_warn("http: %s", line);
    fh->mhd_log_held = 0;
    fh->mhd_log_next_ms = now + MHD_LOG_EVERY_MS;
}

static void run_mhd(struct front_http *fh)
{
    fh->need_run = false;
    MHD_run(fh->daemon);
}

/* libmicrohttpd runs in before_sleep, after every other callback of the turn. */
static void on_mhd_ready(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct front_http *fh = ctx;

    (void)loop;
    (void)fd;
    (void)events;
    fh->need_run = true;
}

/* Gives libmicrohttpd its events, its timeouts and the connections we added, resumed or cut. */
/*
 * At the stop no new connection is taken, but a Socket.IO polling client
 * gets the acks of what its session ran, the bye and the close packet in
 * its next poll, which may come on a new connection (its last answer had
 * just gone when the stop came, or its client opens one per request): the
 * port stays open while such a session waits for it, within the stop's
 * grace.
 */
static void close_port_unless_owed(struct front_http *fh)
{
    if (!fh->acceptor || (fh->o.sio.owed && fh->o.sio.owed(fh->o.sio.ctx)))
        return;
    acceptor_free(fh->acceptor);
    fh->acceptor = NULL;
}

static int before_sleep(struct loop *loop, void *ctx)
{
    struct front_http *fh = ctx;
    MHD_UNSIGNED_LONG_LONG timeout;

    (void)loop;
    if (fh->quiescing)
        close_port_unless_owed(fh);
    if (fh->need_run || (fh->run_at_ms && loop_now_ms() >= fh->run_at_ms))
        run_mhd(fh);
    if (fh->need_run)
        return 0; /* its callbacks asked for another run */
    if (MHD_get_timeout(fh->daemon, &timeout) != MHD_YES) {
        fh->run_at_ms = 0;
        return -1;
    }
    if (timeout > INT_MAX)
        timeout = INT_MAX;
    fh->run_at_ms = loop_now_ms() + timeout;
    return (int)timeout;
}

struct front_http *front_http_new(struct core *core, struct loop *loop, int listen_fd,
                                  const struct front_http_options *opts, char why[GW_ERRLEN])
{
    struct front_http *fh = gw_xcalloc(1, sizeof(*fh));
    const union MHD_DaemonInfo *info;

    fh->core = core;
    fh->metrics = core_metrics(core);
    fh->loop = loop;
    fh->o = *opts;
    fh->by_source = fair_share_new();
    /*
     * The front keeps max_connections itself; libmicrohttpd gets room for
     * the connections cut to make room and not yet reaped (at most one
     * acceptor batch between two runs).
     */
    if (opts->tcp_port > 0)
        snprintf(fh->sessions_hint, sizeof(fh->sessions_hint),
                 "TCP port %d: nc <host> %d, then type HELP", opts->tcp_port, opts->tcp_port);
    else
        snprintf(fh->sessions_hint, sizeof(fh->sessions_hint), "off");
    fh->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_ALLOW_UPGRADE | MHD_USE_ERROR_LOG |
            MHD_USE_TURBO | MHD_USE_NO_LISTEN_SOCKET,
        0, NULL, NULL, on_request, fh,
        /* first, so that no message goes to libmicrohttpd's own logger */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, fh, MHD_OPTION_URI_LOG_CALLBACK, on_uri, fh,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, fh, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        fh, MHD_OPTION_CONNECTION_TIMEOUT, opts->idle_timeout, MHD_OPTION_CONNECTION_LIMIT,
        opts->max_connections + 2 * ACCEPTOR_BATCH, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)HTTP_CONN_POOL, MHD_OPTION_END);
    if (!fh->daemon) {
        snprintf(why, GW_ERRLEN, "cannot start the HTTP daemon");
        goto fail;
    }
    info = MHD_get_daemon_info(fh->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0) {
        snprintf(why, GW_ERRLEN, "the HTTP daemon has no epoll descriptor");
        goto fail;
    }
    fh->epoll_fd = info->epoll_fd;
    if (loop_add_fd(loop, fh->epoll_fd, LOOP_READ, on_mhd_ready, fh) < 0) {
        snprintf(why, GW_ERRLEN, "cannot watch the HTTP daemon");
        goto fail;
    }
    if (!(fh->acceptor = acceptor_new(loop, listen_fd, "http", on_accept, fh, why))) {
        loop_del_fd(loop, fh->epoll_fd);
        MHD_stop_daemon(fh->daemon);
        fair_share_free(fh->by_source);
        free(fh);
        return NULL; /* acceptor_new closed listen_fd */
    }
    loop_add_hook(loop, before_sleep, fh);
    return fh;
fail:
    if (fh->daemon)
        MHD_stop_daemon(fh->daemon);
    close(listen_fd);
    fair_share_free(fh->by_source);
    free(fh);
    return NULL;
}

void front_http_quiesce(struct front_http *fh)
{
    if (fh->quiescing)
        return;
    fh->quiescing = true;
    close_port_unless_owed(fh);
    /* Every long-poll is answered now, with what there is. */
    while (fh->waiters)
        wake(fh->waiters);
    /*
     * No request under way: nothing to finish. Part of a head: it would not
     * be served. A request that reached an idle connection on the turn the
     * signal came has not been read yet: it is told, as a head would be, not
     * met with a bare close its client cannot tell from a lost answer.
     */
    while (fh->idle.first) {
        struct hconn *hc = fh->idle.first;
        bool waiting = idle_news(hc) == IDLE_SENT;
        conn_cut(hc, waiting ? GW_E_SHUTDOWN : GW_OK, NULL, waiting, "the gateway is stopping");
    }
    while (fh->heads.first)
        conn_cut(fh->heads.first, GW_E_SHUTDOWN, NULL, true, "the gateway is stopping");
    fh->need_run = true;
}

size_t front_http_in_flight(const struct front_http *fh)
{
    return fh->in_flight;
}

void front_http_free(struct front_http *fh)
{
    if (!fh)
        return;
    acceptor_free(fh->acceptor);
    /*
     * A suspended connection cannot be closed: answer the long-polls still
     * waiting now (the reader has stopped), let them end.
     */
    while (fh->waiters) {
        struct req *r = fh->waiters;
        r->last_read = true;
        wake(r);
        if (r->phase == REQ_BUSY)
            answer_error_later(r, GW_E_SHUTDOWN, "the gateway is stopping");
    }
    /* Socket.IO requests still held end now, unanswered. */
    while (fh->sio_held)
        sio_drop(fh->sio_held, "the gateway is stopping");
    MHD_run(fh->daemon);
    loop_del_fd(fh->loop, fh->epoll_fd);
    MHD_stop_daemon(fh->daemon);
    fair_share_free(fh->by_source);
    free(fh);
}
