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
    uint64_t conns; /* connections accepted, to number them in traces */
};

enum req_phase {
    REQ_READING,    /* headers in, body arriving */
    REQ_COMMITTING, /* suspended until the writer answers */
    REQ_COMMITTED,  /* answer ready in reply_* */
    REQ_WAITING,    /* long-poll: suspended until a message or the deadline */
    REQ_WOKEN       /* long-poll: resumed, to be answered from the store */
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
    /* the publish's answer, built when the commit comes back */
    unsigned reply_status;
    char *reply_body;
    size_t reply_len;
    char location[48];
    /* long-poll */
    struct core_sub *watch;
    bool longpoll;        /* it waited: counted as a long-poll */
    uint64_t woken_by_us; /* accept time of the message that woke it */
    size_t body_in;       /* request body bytes received */
    struct loop_timer *deadline;
    struct req *prev_waiter, *next_waiter;
};

/*
 * Seconds a client is told to wait (Retry-After) after store_busy: the
 * writer waits up to a second for another writer's lock before it answers.
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
    case GW_E_TOO_LARGE:
        return MHD_HTTP_CONTENT_TOO_LARGE;
    case GW_E_MEDIA_TYPE:
        return MHD_HTTP_UNSUPPORTED_MEDIA_TYPE;
    case GW_E_SHUTDOWN:
    case GW_E_STORE_BUSY:
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

/* The header an error answer carries besides the body, if any (its value in *value). */
static const char *error_header(const struct req *r, enum gw_err err, const char **value)
{
    *value = NULL;
    if (err == GW_E_METHOD) {
        *value = r->route.allow;
        return MHD_HTTP_HEADER_ALLOW;
    }
    if (err == GW_E_STORE_BUSY) {
        *value = HTTP_STORE_BUSY_RETRY_AFTER;
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

/* Ends a long-poll's wait: the next handler call answers it from the store. */
static void wake(struct req *r)
{
    struct front_http *fh = r->fh;

    if (r->phase != REQ_WAITING)
        return;
    r->phase = REQ_WOKEN;
    fh->metrics->open[MT_LONGPOLL]--;
    if (r->prev_waiter)
        r->prev_waiter->next_waiter = r->next_waiter;
    else
        fh->waiters = r->next_waiter;
    if (r->next_waiter)
        r->next_waiter->prev_waiter = r->prev_waiter;
    loop_timer_cancel(fh->loop, r->deadline);
    r->deadline = NULL;
    /* The watch ends in the handler: this may run inside the core's fan-out. */
    MHD_resume_connection(r->conn);
    fh->need_run = true;
}

static void on_watch(void *ctx, const struct gw_msg *m)
{
    struct req *r = ctx;

    /* The store has it now; the answer reads it from there with the rest. */
    if (r->phase == REQ_WAITING)
        r->woken_by_us = m->accepted_us;
    wake(r);
}

static void on_wait_over(struct loop *loop, void *ctx)
{
    struct req *r = ctx;

    (void)loop;
    r->deadline = NULL; /* a timer is gone once it has run */
    wake(r);
}

static enum MHD_Result get_history(struct req *r)
{
    struct gw_msg *msgs;
    uint64_t since, limit, wait;
    int64_t next;
    size_t n, len;
    char channel[GW_CHANNEL_MAX + 1];
    enum gw_err err;

    if ((err = query_u64(r, "since", 0, &since)) != GW_OK ||
        (err = query_u64(r, "limit", GW_LIMIT_DEFAULT, &limit)) != GW_OK ||
        (err = query_u64(r, "wait", 0, &wait)) != GW_OK)
        return reply_error(r, err, r->why);
    if (r->phase == REQ_WOKEN) {
        core_unsubscribe(r->fh->core, r->watch);
        r->watch = NULL;
        wait = 0; /* answer with what is there now, even nothing */
    } else if ((err = core_check_wait(wait, r->why)) != GW_OK) {
        return reply_error(r, err, r->why);
    }
    err = core_history(r->fh->core, r->route.arg, r->route.arg_len, since, limit, &msgs, &n, &next,
                       r->why);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    if (n == 0 && limit > 0 && wait > 0 && !r->fh->quiescing) {
        /* Nothing after since yet: hold the request until the next commit or the deadline. */
        struct front_http *fh = r->fh;
        bool ready;
        err = core_watch(fh->core, r->route.arg, r->route.arg_len, since, wait, on_watch, r,
                         &r->watch, &ready, r->why);
        if (err != GW_OK)
            return reply_error(r, err, r->why);
        if (ready) {
            /* Something committed since the read above: answer with it now. */
            core_unsubscribe(fh->core, r->watch);
            r->watch = NULL;
            gw_msgs_free(msgs, n);
            err = core_history(fh->core, r->route.arg, r->route.arg_len, since, limit, &msgs, &n,
                               &next, r->why);
            if (err != GW_OK)
                return reply_error(r, err, r->why);
            goto answer;
        }
        r->phase = REQ_WAITING;
        r->longpoll = true;
        fh->metrics->open[MT_LONGPOLL]++;
        log_debug("http long-poll on '%.*s' after %llu: waiting up to %llu s",
                  (int)r->route.arg_len, r->route.arg, (unsigned long long)since,
                  (unsigned long long)wait);
        r->deadline = loop_timer_add(fh->loop, wait * 1000, on_wait_over, r);
        r->next_waiter = fh->waiters;
        if (fh->waiters)
            fh->waiters->prev_waiter = r;
        fh->waiters = r;
        MHD_suspend_connection(r->conn);
        return MHD_YES;
    }
answer:
    /* core_history accepted the name, so it fits. */
    memcpy(channel, r->route.arg, r->route.arg_len);
    channel[r->route.arg_len] = '\0';
    char *body = codec_history_encode(channel, msgs, n, next, &len);
    gw_msgs_free(msgs, n);
    enum metrics_transport t = r->longpoll ? MT_LONGPOLL : MT_REST;
    r->fh->metrics->delivered[t] += n;
    if (n && r->woken_by_us)
        metrics_hist_observe(&r->fh->metrics->delivery_seconds[t],
                             (double)(loop_now_us() - r->woken_by_us) / 1e6);
    return reply_ok(r, body, len);
}

static enum MHD_Result get_message(struct req *r)
{
    char idstr[24];
    uint64_t id = 0;
    struct gw_msg m;
    size_t len;
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
        err = core_message(r->fh->core, id, &m, r->why);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    char *body = codec_msg_encode(&m, &len);
    gw_msg_release(&m);
    return reply_ok(r, body, len);
}

static enum MHD_Result get_channels(struct req *r)
{
    struct gw_channel_info *chans;
    size_t n, len;
    enum gw_err err = core_channels(r->fh->core, &chans, &n, r->why);

    if (err != GW_OK)
        return reply_error(r, err, r->why);
    char *body = codec_channels_encode(chans, n, &len);
    free(chans);
    return reply_ok(r, body, len);
}

/* Runs on the loop thread when the writer is done with this request's message. */
static void on_committed(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg)
{
    struct req *r = ctx;

    if (err == GW_OK) {
        r->reply_status = MHD_HTTP_CREATED;
        r->reply_body = codec_msg_encode(msg, &r->reply_len);
        snprintf(r->location, sizeof(r->location), "/v1/messages/%" PRId64, msg->id);
    } else {
        r->reply_status = http_status(err);
        r->reply_body = codec_error_encode(err, why, &r->reply_len);
        r->err = err;
    }
    r->phase = REQ_COMMITTED;
    MHD_resume_connection(r->conn);
    r->fh->need_run = true;
}

static enum MHD_Result post_message(struct req *r)
{
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
        .via = GW_VIA_REST,
    };
    err = core_publish(r->fh->core, &preq, on_committed, r, r->why);
    codec_publish_release(&pub);
    buf_release(&r->body);
    if (err != GW_OK)
        return reply_error(r, err, r->why);
    r->phase = REQ_COMMITTING;
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

static enum MHD_Result dispatch(struct req *r)
{
    char *body;
    size_t len;

    switch (r->route.id) {
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
    case REQ_COMMITTING:
    case REQ_WAITING:
        return MHD_YES; /* not resumed yet; cannot happen while suspended */
    case REQ_WOKEN:
        return get_history(r);
    case REQ_COMMITTED: {
        char *body = r->reply_body;
        const char *value = r->location;
        const char *header =
            r->err == GW_OK ? MHD_HTTP_HEADER_LOCATION : error_header(r, r->err, &value);
        r->reply_body = NULL;
        return reply(r, r->reply_status, body, r->reply_len, header, value);
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
    GW_ASSERT(r->phase != REQ_COMMITTING && r->phase != REQ_WAITING);
    if (r->watch) /* woken, but the connection ended before its answer */
        core_unsubscribe(fh->core, r->watch);
    if (log_enabled(GW_LOG_INFO)) {
        const char *ended = termination_name(toe);
        log_info("http %s %s %u %zuB %" PRIu64 "us%s%s", r->method, r->path, r->status, r->bytes,
                 loop_now_us() - r->start_us, ended ? " ended: " : "", ended ? ended : "");
    }
    log_trace("http conn %llu send response %u, %zu body bytes", conn_number(conn), r->status,
              r->bytes);
    enum metrics_transport t = r->longpoll ? MT_LONGPOLL : MT_REST;
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
        fh->metrics->open[MT_REST]++;
        /* A number for traces, kept in the connection's own slot. */
        *socket_ctx = (void *)(uintptr_t)++fh->conns;
        log_trace("http conn %llu accept", (unsigned long long)fh->conns);
    } else if (toe == MHD_CONNECTION_NOTIFY_CLOSED) {
        log_trace("http conn %llu close", (unsigned long long)(uintptr_t)*socket_ctx);
        fh->metrics->open[MT_REST]--;
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
    /* A suspended connection cannot be closed: wake the long-polls, let them end. */
    while (fh->waiters)
        wake(fh->waiters);
    MHD_run(fh->daemon);
    loop_del_fd(fh->loop, fh->epoll_fd);
    /* Closes the listening socket too, unless front_http_quiesce already did. */
    MHD_stop_daemon(fh->daemon);
    free(fh);
}
