/*
 * front_http.c - the REST front; see front_http.h.
 *
 * libmicrohttpd's handler contract: the first call for a request only
 * creates its state (answering then would make libmicrohttpd 0.9.75 close a
 * keep-alive connection), later calls hand over body chunks, and the call
 * with no data left answers. A publish suspends the connection until its
 * commit comes back from the writer, then resumes it to answer. State is
 * freed only in the completion callback, which also runs for aborted
 * requests.
 */
#include "front_http.h"

#include "buf.h"
#include "codec_json.h"
#include "core.h"
#include "log.h"
#include "metrics.h"
#include "loop.h"
#include "router.h"
#include "text.h"

#include <inttypes.h>
#include <limits.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define LOG_PATH_MAX        200
/* Body bytes we read and drop to answer a refused request on a live connection. */
#define DRAIN_MAX(max_body) (4 * (max_body) + 1024 * 1024)

struct front_http {
    struct MHD_Daemon *daemon;
    struct core *core;
    struct loop *loop;
    int listen_fd;
    int epoll_fd;
    size_t max_body;
    size_t in_flight;
    bool need_run;      /* a connection was resumed: let libmicrohttpd see it */
    uint64_t run_at_ms; /* libmicrohttpd's next timeout */
    bool quiescing;
    struct req *waiters; /* long-polls, so shutdown can answer them all */
    struct metrics *metrics;
    uint64_t conns;         /* connections accepted, to number them in traces */
    char sessions_hint[96]; /* how to open a session, for the index */
};

enum req_phase {
    REQ_READING, /* headers in, body arriving */
    REQ_BUSY,    /* suspended until the writer or the reader answers */
    REQ_READY,   /* answer ready in reply_*: resumed to send it */
    REQ_WAITING  /* long-poll: suspended until a message or the deadline */
};

struct req {
    struct front_http *fh;
    struct MHD_Connection *conn;
    struct route route;
    enum req_phase phase;
    enum gw_err err; /* decided while reading, answered at the end */
    char why[GW_ERRLEN];
    struct buf body;
    size_t drained; /* body bytes read and dropped */
    uint64_t start_us;
    unsigned status;
    size_t bytes;
    char method[16];
    char path[LOG_PATH_MAX + 1];
    /* the answer, built when the commit or the read comes back */
    unsigned reply_status;
    char *reply_body;
    size_t reply_len;
    char location[48];
    enum gw_err reply_err;
    /* long-poll */
    uint64_t since, limit, wait;
    struct core_watch *watch;
    bool fired;           /* the watch fired: something after since committed */
    bool last_read;       /* answer whatever this read finds */
    bool longpoll;        /* it waited: counted as a long-poll */
    uint64_t woken_by_us; /* accept time of the message that woke it */
    size_t body_in;       /* request body bytes received */
    struct loop_timer *deadline;
    struct req *prev_waiter, *next_waiter;
};

/* The one translation from error to HTTP status. */
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
    case GW_E_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case GW_E_MEDIA_TYPE:
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case GW_E_SHUTDOWN:
        return MHD_HTTP_SERVICE_UNAVAILABLE;
    case GW_E_STORE:
    case GW_E_SCHEMA:
    case GW_E_CONFIG:
    case GW_E__COUNT:
        break;
    }
    return MHD_HTTP_INTERNAL_SERVER_ERROR;
}

/* Queues body (taken) as the answer, of type ctype, with one optional extra header. */
static enum MHD_Result reply_as(struct req *r, unsigned status, const char *ctype, char *body,
                                size_t len, const char *header, const char *value)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    /* A final newline keeps a shell prompt off the end of curl's output. */
    char *grown = gw_xrealloc(body, len + 2);
    if (!len || grown[len - 1] != '\n')
        grown[len++] = '\n';
    grown[len] = '\0';
    resp = MHD_create_response_from_buffer_with_free_callback(len, grown, free);
    if (!resp) {
        free(grown);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    if (header)
        MHD_add_response_header(resp, header, value);
    if (r->fh->quiescing)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    r->status = status;
    r->bytes = len;
    ret = MHD_queue_response(r->conn, status, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result reply(struct req *r, unsigned status, char *body, size_t len,
                             const char *header, const char *value)
{
    return reply_as(r, status, "application/json", body, len, header, value);
}

static enum MHD_Result reply_error(struct req *r, enum gw_err err, const char *why)
{
    size_t len;
    char *body = codec_error_encode(err, why, &len);
    return reply(r, http_status(err), body, len, err == GW_E_METHOD ? MHD_HTTP_HEADER_ALLOW : NULL,
                 r->route.allow);
}

static enum MHD_Result reply_ok(struct req *r, char *body, size_t len)
{
    return reply(r, MHD_HTTP_OK, body, len, NULL, NULL);
}

/* Reads query parameter name as a non-negative integer, def when absent. */
static enum gw_err query_u64(struct req *r, const char *name, uint64_t def, uint64_t *out)
{
    const char *v = MHD_lookup_connection_value(r->conn, MHD_GET_ARGUMENT_KIND, name);

    if (!v) {
        *out = def;
        return GW_OK;
    }
    if (!text_parse_u64(v, INT64_MAX, out)) {
        snprintf(r->why, GW_ERRLEN, "%s must be a non-negative integer, got '%.40s'", name, v);
        return GW_E_PARAM;
    }
    return GW_OK;
}

static struct core_caller caller_of(const struct req *r)
{
    (void)r;
    return (struct core_caller){.transport = GW_T_REST, .peer = NULL};
}

/* The answer is built: resume the connection so that the handler sends it. */
static void answer_later(struct req *r, unsigned status, char *body, size_t len)
{
    free(r->reply_body);
    r->reply_status = status;
    r->reply_body = body;
    r->reply_len = len;
    r->phase = REQ_READY;
    MHD_resume_connection(r->conn);
    r->fh->need_run = true;
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

/* Ends a long-poll's wait: one more read answers it, with whatever there is. */
static void wake(struct req *r)
{
    struct front_http *fh = r->fh;

    if (r->phase != REQ_WAITING)
        return;
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
    r->last_read = true;
    read_page(r);
}

/* The watch fired: the store has a message after since now. */
static void on_watch(void *ctx, uint64_t accepted_us)
{
    struct req *r = ctx;

    r->fired = true;
    if (!r->woken_by_us)
        r->woken_by_us = accepted_us;
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
    fh->metrics->open[GW_T_LONGPOLL]++;
    log_debug("http long-poll on '%.*s' after %llu: waiting up to %llu s", (int)r->route.arg_len,
              r->route.arg, (unsigned long long)r->since, (unsigned long long)r->wait);
    r->deadline = loop_timer_add(fh->loop, r->wait * 1000, on_wait_over, r);
    r->next_waiter = fh->waiters;
    if (fh->waiters)
        fh->waiters->prev_waiter = r;
    fh->waiters = r;
}

static void on_page(void *ctx, enum gw_err err, const char *why, const struct gw_page *page)
{
    struct req *r = ctx;
    struct front_http *fh = r->fh;
    char channel[GW_CHANNEL_MAX + 1];
    size_t len;

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
    enum gw_transport t = r->longpoll ? GW_T_LONGPOLL : GW_T_REST;
    fh->metrics->delivered[t] += page->n;
    if (page->n && r->woken_by_us)
        metrics_hist_observe(&fh->metrics->delivery_seconds[t],
                             (double)(loop_now_us() - r->woken_by_us) / 1e6);
    answer_later(r, MHD_HTTP_OK, body, len);
}

/* Reads the page (r->since, r->limit) on the reader thread; on_page answers. */
static void read_page(struct req *r)
{
    struct core_caller caller = caller_of(r);
    char why[GW_ERRLEN];
    enum gw_err err = core_history(r->fh->core, &caller, r->route.arg, r->route.arg_len, r->since,
                                   r->limit, on_page, r, why);

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

    if ((err = query_u64(r, "since", 0, &r->since)) != GW_OK ||
        (err = query_u64(r, "limit", GW_LIMIT_DEFAULT, &r->limit)) != GW_OK ||
        (err = query_u64(r, "wait", 0, &r->wait)) != GW_OK ||
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
    {
        struct core_caller caller = caller_of(r);
        err = core_history(fh->core, &caller, r->route.arg, r->route.arg_len, r->since, r->limit,
                           on_page, r, r->why);
    }
    if (err != GW_OK) {
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
    size_t len;

    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    char *body = codec_msg_encode(m, &len);
    answer_later(r, MHD_HTTP_OK, body, len);
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
                        const struct gw_channel_info *chans, size_t n)
{
    struct req *r = ctx;
    size_t len;

    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    char *body = codec_channels_encode(chans, n, &len);
    answer_later(r, MHD_HTTP_OK, body, len);
}

static enum MHD_Result get_channels(struct req *r)
{
    struct core_caller caller = caller_of(r);
    enum gw_err err = core_channels(r->fh->core, &caller, on_channels, r, r->why);

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

    if (err != GW_OK) {
        answer_error_later(r, err, why);
        return;
    }
    snprintf(r->location, sizeof(r->location), "/v1/messages/%" PRId64, msg->id);
    char *body = codec_msg_encode(msg, &len);
    answer_later(r, MHD_HTTP_CREATED, body, len);
}

static enum MHD_Result post_message(struct req *r)
{
    struct core_caller caller = caller_of(r);
    struct codec_publish pub;
    struct core_publish_req preq;
    enum gw_err err;

    if ((err = codec_publish_decode(r->body.data ? r->body.data : "", r->body.len, &pub, r->why)) !=
        GW_OK)
        return reply_error(r, err, r->why);
    preq = (struct core_publish_req){
        .channel = r->route.arg,
        .channel_len = r->route.arg_len,
        .sender = pub.sender,
        .sender_len = pub.sender_len,
        .body = pub.body,
        .body_len = pub.body_len,
    };
    err = core_publish(r->fh->core, &caller, &preq, on_committed, r, r->why);
    codec_publish_release(&pub);
    buf_release(&r->body);
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

static enum MHD_Result get_index(struct req *r)
{
    struct codec_endpoint eps[16];
    size_t n, len;
    const struct router_endpoint *re = router_endpoints(&n);

    if (n > GW_ARRAY_SIZE(eps))
        n = GW_ARRAY_SIZE(eps);
    for (size_t i = 0; i < n; i++)
        eps[i] = (struct codec_endpoint){re[i].method, re[i].path, re[i].what};
    char *body = codec_index_encode("visavis", VISAVIS_VERSION,
                                    "docs/api.md (this API) and docs/protocol.md (sessions)", eps,
                                    n, r->fh->sessions_hint, &len);
    return reply_ok(r, body, len);
}

static enum MHD_Result dispatch(struct req *r)
{
    char *body;
    size_t len;

    switch (r->route.id) {
    case ROUTE_INDEX:
        return get_index(r);
    case ROUTE_HEALTH:
        body = codec_status_encode("ok", &len);
        return reply_ok(r, body, len);
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
    }
    return MHD_NO;
}

/* The number on_connection gave conn, for traces. */
static unsigned long long conn_number(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *info =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return info ? (unsigned long long)(uintptr_t)info->socket_context : 0;
}

/* Keeps logs one line per event whatever bytes a client put in its path. */
static void copy_printable(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && i + 1 < cap; i++) {
        unsigned char c = (unsigned char)src[i];
        dst[i] = (c < 0x20 || c >= 0x7f) ? '?' : (char)c;
    }
    dst[i] = '\0';
}

static struct req *req_new(struct front_http *fh, struct MHD_Connection *conn, const char *method,
                           const char *url)
{
    struct req *r = gw_xcalloc(1, sizeof(*r));
    r->fh = fh;
    r->conn = conn;
    r->start_us = loop_now_us();
    copy_printable(r->method, sizeof(r->method), method);
    copy_printable(r->path, sizeof(r->path), url);
    buf_init(&r->body);
    fh->in_flight++;
    return r;
}

/* First call for a request: route it and judge its headers, answer nothing yet. */
static enum MHD_Result on_headers(struct req *r, const char *method, const char *url)
{
    struct front_http *fh = r->fh;

    if (log_tracing())
        log_trace("http conn %llu recv request %s %s", conn_number(r->conn), r->method, r->path);
    r->err = router_match(method, url, &r->route, r->why);
    if (r->err != GW_OK || r->route.method != ROUTE_POST)
        return MHD_YES;

    const char *cl =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    uint64_t declared;
    if (cl && text_parse_u64(cl, UINT64_MAX, &declared) && declared > fh->max_body) {
        /* Refuse before reading a byte of it; libmicrohttpd then closes the connection. */
        snprintf(r->why, GW_ERRLEN, "request body is %" PRIu64 " bytes, the limit is %zu", declared,
                 fh->max_body);
        return reply_error(r, GW_E_TOO_LARGE, r->why);
    }
    const char *ct =
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!router_is_json(ct)) {
        snprintf(r->why, GW_ERRLEN, "Content-Type must be application/json, got '%.60s'",
                 ct ? ct : "(none)");
        r->err = GW_E_MEDIA_TYPE;
    }
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **req_cls)
{
    struct front_http *fh = cls;
    struct req *r = *req_cls;

    (void)version;
    if (!r) {
        r = req_new(fh, conn, method, url);
        *req_cls = r;
        return on_headers(r, method, url);
    }
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        r->body_in += n;
        if (r->err == GW_OK && r->route.method == ROUTE_POST && r->body.len + n > fh->max_body) {
            /* Chunked bodies give no length up front: stop buffering at the limit. */
            snprintf(r->why, GW_ERRLEN, "request body is over the limit of %zu bytes",
                     fh->max_body);
            buf_release(&r->body);
            r->err = GW_E_TOO_LARGE;
        }
        if (r->err != GW_OK || r->route.method != ROUTE_POST) {
            /*
             * An answer is decided already, but libmicrohttpd only lets us give
             * it once the body is in: drain it, within reason, then close.
             */
            r->drained += n;
            return r->drained > DRAIN_MAX(fh->max_body) ? MHD_NO : MHD_YES;
        }
        buf_append(&r->body, upload_data, n);
        return MHD_YES;
    }
    switch (r->phase) {
    case REQ_READING:
        if (r->err != GW_OK)
            return reply_error(r, r->err, r->why);
        return dispatch(r);
    case REQ_BUSY:
    case REQ_WAITING:
        return MHD_YES; /* not resumed yet; cannot happen while suspended */
    case REQ_READY: {
        char *body = r->reply_body;
        r->reply_body = NULL;
        r->err = r->reply_err;
        return reply(r, r->reply_status, body, r->reply_len,
                     r->reply_status == MHD_HTTP_CREATED ? MHD_HTTP_HEADER_LOCATION
                     : r->reply_err == GW_E_METHOD       ? MHD_HTTP_HEADER_ALLOW
                                                         : NULL,
                     r->reply_status == MHD_HTTP_CREATED ? r->location : r->route.allow);
    }
    }
    return MHD_NO;
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

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct front_http *fh = cls;
    struct req *r = *req_cls;

    if (!r)
        return;
    GW_ASSERT(r->phase != REQ_BUSY && r->phase != REQ_WAITING);
    core_unwatch(fh->core, r->watch);
    if (log_enabled(GW_LOG_INFO)) {
        const char *ended = termination_name(toe);
        log_info("http %s %s %u %zuB %" PRIu64 "us%s%s", r->method, r->path, r->status, r->bytes,
                 loop_now_us() - r->start_us, ended ? " ended: " : "", ended ? ended : "");
    }
    log_trace("http conn %llu send response %u, %zu body bytes", conn_number(conn), r->status,
              r->bytes);
    enum gw_transport t = r->longpoll ? GW_T_LONGPOLL : GW_T_REST;
    fh->metrics->requests[t]++;
    fh->metrics->bytes_in[t] += r->body_in;
    fh->metrics->bytes_out[t] += r->bytes;
    buf_release(&r->body);
    free(r->reply_body);
    free(r);
    *req_cls = NULL;
    fh->in_flight--;
}

/*
 * At --max-connections libmicrohttpd stops watching its listening socket and
 * only watches it again in a later MHD_run, which nothing would trigger once
 * the last event was the close itself: ask for that run.
 */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_ctx,
                          enum MHD_ConnectionNotificationCode toe)
{
    struct front_http *fh = cls;

    (void)conn;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        fh->metrics->open[GW_T_REST]++;
        /* A number for traces, kept in the connection's own slot. */
        *socket_ctx = (void *)(uintptr_t)++fh->conns;
        log_trace("http conn %llu accept", (unsigned long long)fh->conns);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        log_trace("http conn %llu close", (unsigned long long)(uintptr_t)*socket_ctx);
        fh->metrics->open[GW_T_REST]--;
        fh->need_run = true;
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    size_t n;

    (void)cls;
    vsnprintf(line, sizeof(line), fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    log_warn("http: %s", line);
}

static void run_mhd(struct front_http *fh)
{
    fh->need_run = false;
    MHD_run(fh->daemon);
}

static void on_mhd_ready(struct loop *loop, int fd, unsigned events, void *ctx)
{
    (void)loop;
    (void)fd;
    (void)events;
    run_mhd(ctx);
}

/* Gives libmicrohttpd its timeouts and the connections we resumed. */
static int before_sleep(struct loop *loop, void *ctx)
{
    struct front_http *fh = ctx;
    MHD_UNSIGNED_LONG_LONG timeout;

    (void)loop;
    if (fh->need_run || (fh->run_at_ms && loop_now_ms() >= fh->run_at_ms))
        run_mhd(fh);
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
    fh->listen_fd = listen_fd;
    fh->max_body = opts->max_body;
    if (opts->tcp_port > 0)
        snprintf(fh->sessions_hint, sizeof(fh->sessions_hint),
                 "TCP port %d: nc <host> %d, then type HELP", opts->tcp_port, opts->tcp_port);
    else
        snprintf(fh->sessions_hint, sizeof(fh->sessions_hint), "off");
    fh->daemon = MHD_start_daemon(
        MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO, 0, NULL, NULL,
        on_request, fh,
        /* first, so that no message goes to libmicrohttpd's own logger */
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, fh, MHD_OPTION_LISTEN_SOCKET, listen_fd,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, fh, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        fh, MHD_OPTION_CONNECTION_TIMEOUT, opts->idle_timeout, MHD_OPTION_CONNECTION_LIMIT,
        opts->max_connections, MHD_OPTION_END);
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
    loop_add_hook(loop, before_sleep, fh);
    return fh;
fail:
    if (fh->daemon)
        MHD_stop_daemon(fh->daemon); /* closes listen_fd too */
    else
        close(listen_fd);
    free(fh);
    return NULL;
}

void front_http_quiesce(struct front_http *fh)
{
    if (fh->quiescing)
        return;
    fh->quiescing = true;
    /* Every long-poll is answered now, with what there is. */
    while (fh->waiters)
        wake(fh->waiters);
    MHD_quiesce_daemon(fh->daemon);
    close(fh->listen_fd);
    fh->listen_fd = -1;
}

size_t front_http_in_flight(const struct front_http *fh)
{
    return fh->in_flight;
}

void front_http_free(struct front_http *fh)
{
    if (!fh)
        return;
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
    MHD_run(fh->daemon);
    loop_del_fd(fh->loop, fh->epoll_fd);
    /* Closes the listening socket too, unless front_http_quiesce already did. */
    MHD_stop_daemon(fh->daemon);
    free(fh);
}
