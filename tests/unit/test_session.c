/*
 * test_session.c - gateway/session.h without sockets: a fake transport (a
 * struct session_io_ops whose flush copies what the session's queue holds
 * into a buffer, as much of it as the test lets the peer take), over a real
 * core on a SQLite file in a temporary directory with real writer and reader
 * threads.
 *
 * The test plays the loop: each tier gets a real struct loop, whose
 * loop_run, with a hook of the test's after the tier's, runs exactly one
 * before-sleep pass (flush, pump, teardown) and returns; between passes the
 * test polls the writer's and the reader's eventfds and completes them. The
 * peer's lines are parsed with jansson and checked field by field. The slow
 * consumer's stuck time is a setting (session_options.stuck_ms), so that
 * the rule is tested in a second; rows are removed from the file
 * behind the gateway's back (sqlfile.h) to make gaps.
 */
#include "session.h"

#include "buf.h"
#include "core.h"
#include "gw.h"
#include "log.h"
#include "loop.h"
#include "model.h"
#include "outq.h"
#include "reader.h"
#include "store.h"
#include "tap.h"
#include "sqlfile.h"
#include "tmpdir.h"
#include "stack.h"
#include "workq.h"
#include "writer.h"

#include <jansson.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Every wait for the other threads, or for the tier's timers, has this deadline. */
#define DEADLINE_MS 10000
/* A core page of history or replay, in bytes of JSON: small, so that pages are cut by bytes. */
#define PAGE_BYTES  4096

static struct stack st;
static struct core *core;

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- a tier on a loop of its own ---- */

/* A loop cannot lose a hook, so each tier gets a fresh loop. */
struct env {
    struct loop *loop;
    struct sessions *t;
    struct session_options o;
};

/* Registered after the tier's hook: the pass has run, loop_run returns before it would sleep. */
static int stop_hook(struct loop *loop, void *ctx)
{
    (void)ctx;
    loop_stop(loop);
    return -1;
}

static struct session_options default_options(void)
{
    return (struct session_options){
        .heartbeat = 30,
        .idle_timeout = 90,
        .max_outbuf = 1024 * 1024,
        .max_subs = 8,
        .page_bytes = PAGE_BYTES,
    };
}

static void env_open(struct env *e, const struct session_options *o)
{
    char why[GW_ERRLEN];

    e->o = *o;
    if (!(e->loop = loop_new(why)))
        bail_out("loop_new: %s", why);
    e->t = sessions_new(core, e->loop, o);
    loop_add_hook(e->loop, stop_hook, NULL);
}

static void env_close(struct env *e)
{
    sessions_free(e->t);
    loop_free(e->loop);
}

/* The loop's before-sleep pass, once. */
static void pass(struct env *e)
{
    loop_run(e->loop);
}

/* One turn: a pass, then up to ms waiting for the threads, whose completions (which) then run. */
static void turn(struct env *e, unsigned which, int ms)
{
    pass(e);
    stack_turn(&st, which, ms);
}

/* Plays turns until pred(arg) holds after a pass; false after DEADLINE_MS. */
static int play(struct env *e, int (*pred)(const void *), const void *arg)
{
    int64_t deadline = mono_ms() + DEADLINE_MS;

    for (;;) {
        pass(e);
        if (pred(arg))
            return 1;
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        turn(e, WR | RD, left < 20 ? (int)left : 20);
    }
}

static int idle_threads(const void *arg)
{
    (void)arg;
    return core_pending(core) == 0;
}

/* ---- the fake transport ---- */

#define MAX_IN    1024
#define MAX_LINES 2048

struct peer {
    struct env *e;
    struct session *s; /* NULL once closed */
    char id[17];
    size_t allow; /* bytes the peer takes from now on; SIZE_MAX: all it is sent */
    bool broken;  /* flush reports a broken connection */
    struct buf got;
    /* the lines taken, parsed, in order */
    json_t *lines[MAX_LINES];
    char *raw[MAX_LINES];
    int nlines;
    size_t parsed; /* bytes of got made into lines */
    int bad_lines; /* lines that were not one JSON object */
    bool sse;      /* an SSE session: its bytes are kept raw in got, not parsed */
    /* the lines the front holds for the session, offered in order */
    char *in[MAX_IN];
    int in_head, in_n;
    bool end_pending; /* the peer's input ends once every line is taken */
    int refused, resumes, flushes, closes;
    enum gw_err close_err;
    char close_why[128];
};

static void offer(struct peer *p)
{
    while (p->s && p->in_n) {
        char *line = p->in[p->in_head];
        if (!session_line(p->s, line, strlen(line))) {
            p->refused++;
            return;
        }
        free(line);
        p->in_head = (p->in_head + 1) % MAX_IN;
        p->in_n--;
    }
    if (p->s && p->end_pending) {
        p->end_pending = false;
        session_input_end(p->s);
    }
}

/* Parses the complete lines taken since last time. */
static void collect(struct peer *p)
{
    while (!p->sse && p->parsed < p->got.len) {
        char *start = p->got.data + p->parsed;
        char *nl = memchr(start, '\n', p->got.len - p->parsed);
        if (!nl)
            return;
        size_t len = (size_t)(nl - start);
        json_error_t jerr;
        json_t *j = json_loadb(start, len, 0, &jerr);
        if (!j || !json_is_object(j))
            p->bad_lines++;
        if (p->nlines < MAX_LINES) {
            p->lines[p->nlines] = j;
            p->raw[p->nlines] = gw_xmemdup(start, len);
            p->nlines++;
        } else {
            json_decref(j);
        }
        p->parsed += len + 1;
    }
}

static bool peer_flush(void *io)
{
    struct peer *p = io;
    struct outq *q = session_outq(p->s);

    p->flushes++;
    if (p->broken)
        return false;
    while (q->bytes && p->allow) {
        struct iovec iov[16];
        size_t n = outq_iov(q, iov, GW_ARRAY_SIZE(iov)), took = 0;
        for (size_t i = 0; i < n && p->allow; i++) {
            size_t k = iov[i].iov_len < p->allow ? iov[i].iov_len : p->allow;
            buf_append(&p->got, iov[i].iov_base, k);
            took += k;
            if (p->allow != SIZE_MAX)
                p->allow -= k;
            if (k < iov[i].iov_len)
                break;
        }
        session_sent(p->s, took);
    }
    collect(p);
    return true;
}

/*
 * The peer takes up to n more bytes (SIZE_MAX: all it is sent): its socket
 * turns writable, and the front flushes on its own, as front_tcp does on
 * EPOLLOUT; the tier flushes only sessions it has marked.
 */
static void peer_read(struct peer *p, size_t n)
{
    p->allow = n;
    if (p->s && !peer_flush(p))
        session_abort(p->s, "connection lost");
}

/*
 * A peer that had stopped reading takes everything after the tier's pass has
 * looked at the session (so the pass cannot be what sends it); then two
 * passes: the session is ended in the first and closed in the second.
 * Returns whether it was closed then, without waiting for a timer.
 */
static int peer_read_last(struct peer *p)
{
    pass(p->e);
    peer_read(p, SIZE_MAX);
    pass(p->e);
    pass(p->e);
    return p->closes > 0;
}

static void peer_resume(void *io)
{
    struct peer *p = io;
    p->resumes++;
    offer(p);
}

static void peer_close(void *io, enum gw_err err, const char *why)
{
    struct peer *p = io;
    p->closes++;
    p->close_err = err;
    snprintf(p->close_why, sizeof(p->close_why), "%s", why);
    p->s = NULL;
}

static const struct session_io_ops peer_ops = {
    .flush = peer_flush,
    .resume_input = peer_resume,
    .close = peer_close,
};

static void peer_open_as(struct peer *p, struct env *e, enum gw_transport t, enum session_format f)
{
    memset(p, 0, sizeof(*p));
    p->e = e;
    p->allow = SIZE_MAX;
    p->sse = f == SESSION_SSE;
    buf_init(&p->got);
    p->s = session_open(e->t, t, f, "127.0.0.1:5000", &peer_ops, p);
    snprintf(p->id, sizeof(p->id), "%s", session_id(p->s));
}

static void peer_open(struct peer *p, struct env *e)
{
    peer_open_as(p, e, GW_T_TCP, SESSION_LINES);
}

/* Frees what the test kept; the session must be closed. */
static void peer_release(struct peer *p)
{
    for (int i = 0; i < p->nlines; i++) {
        json_decref(p->lines[i]);
        free(p->raw[i]);
    }
    while (p->in_n) {
        free(p->in[p->in_head]);
        p->in_head = (p->in_head + 1) % MAX_IN;
        p->in_n--;
    }
    buf_release(&p->got);
}

/* The peer sends line (the front offers it at once, and again after resume_input if refused). */
static void say(struct peer *p, const char *line)
{
    if (p->in_n == MAX_IN)
        bail_out("say: too many lines held");
    p->in[(p->in_head + p->in_n) % MAX_IN] = gw_xstrdup(line);
    p->in_n++;
    if (p->in_n == 1)
        offer(p);
}

static void sayf(struct peer *p, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sayf(struct peer *p, const char *fmt, ...)
{
    char line[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    say(p, line);
}

/* The peer's input ends after the lines it sent. */
static void say_end(struct peer *p)
{
    p->end_pending = true;
    offer(p);
}

static const char *str_of(const json_t *j, const char *key)
{
    return json_string_value(json_object_get(j, key));
}

/* Whether j's key is the string want (false when absent or not a string). */
static bool str_is(const json_t *j, const char *key, const char *want)
{
    const char *v = str_of(j, key);
    return v && strcmp(v, want) == 0;
}

static long long int_of(const json_t *j, const char *key)
{
    const json_t *v = json_object_get(j, key);
    return json_is_integer(v) ? json_integer_value(v) : -1;
}

static const char *type_of(const json_t *j)
{
    const char *t = str_of(j, "type");
    return t ? t : "?";
}

static int is_push(const json_t *j)
{
    const char *t = type_of(j);
    return strcmp(t, "message") == 0 || strcmp(t, "ping") == 0 || strcmp(t, "gap") == 0;
}

/* The i-th line that is not a push (a reply, the hello, a bye), or NULL. */
static json_t *reply_at(const struct peer *p, int i)
{
    for (int k = 0; k < p->nlines; k++) {
        if (p->lines[k] && !is_push(p->lines[k]) && i-- == 0)
            return p->lines[k];
    }
    return NULL;
}

static int count_type(const struct peer *p, const char *type)
{
    int n = 0;
    for (int k = 0; k < p->nlines; k++)
        n += p->lines[k] && strcmp(type_of(p->lines[k]), type) == 0;
    return n;
}

/* "type/op" of each line, as "hello ok/pub error/missing_argument ...". */
static const char *shape(const struct peer *p, int from)
{
    static char buf[8192];
    size_t n = 0;

    buf[0] = '\0';
    for (int k = from; k < p->nlines && n < sizeof(buf) - 80; k++) {
        const json_t *j = p->lines[k];
        const char *t = j ? type_of(j) : "?";
        const char *sub = !j                          ? NULL
                          : strcmp(t, "ok") == 0      ? str_of(j, "op")
                          : strcmp(t, "error") == 0   ? str_of(j, "code")
                          : strcmp(t, "bye") == 0     ? str_of(j, "reason")
                          : strcmp(t, "message") == 0 ? str_of(j, "channel")
                                                      : NULL;
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%s%s%s", k > from ? " " : "", t,
                              sub ? "/" : "", sub ? sub : "");
    }
    return buf;
}

static int closed(const void *arg)
{
    return ((const struct peer *)arg)->closes > 0;
}

struct lines_at_least {
    const struct peer *p;
    int n;
};

static int has_lines(const void *arg)
{
    const struct lines_at_least *w = arg;
    return w->p->nlines >= w->n;
}

/* Plays until the peer has n lines. */
static int wait_lines(struct peer *p, int n)
{
    struct lines_at_least w = {p, n};
    return play(p->e, has_lines, &w);
}

/* ---- publishing behind the sessions' backs ---- */

static int published;

static void on_published(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    (void)ctx;
    (void)m;
    if (err != GW_OK)
        diag("publish failed: %s", why);
    published++;
}

/*
 * Submits n publishes on channel over REST, bodies "m<i>" padded with dots to
 * pad bytes, completing nothing.
 */
static void submit_n(const char *channel, int n, size_t pad)
{
    struct core_caller caller = {.transport = GW_T_REST, .peer = "127.0.0.1:6000"};
    char why[GW_ERRLEN], body[4096];

    for (int i = 0; i < n; i++) {
        int len = snprintf(body, sizeof(body), "m%d", i);
        while ((size_t)len < pad && (size_t)len < sizeof(body) - 1)
            body[len++] = '.';
        struct core_publish_req req = {.channel = channel,
                                       .channel_len = strlen(channel),
                                       .body = body,
                                       .body_len = (size_t)len};
        if (core_publish(core, &caller, &req, on_published, NULL, why) != GW_OK)
            bail_out("submit_n: %s", why);
    }
}

/* Publishes as submit_n, then plays e's loop until they have committed. */
static int publish_n(struct env *e, const char *channel, int n, size_t pad)
{
    int target = published + n;
    int64_t deadline = mono_ms() + DEADLINE_MS;

    submit_n(channel, n, pad);
    while (published < target && mono_ms() < deadline)
        turn(e, WR | RD, 20);
    return published >= target;
}

/* ---- the tests ---- */

static void test_hello(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.heartbeat = 25;
    env_open(&e, &o);
    size_t before = sessions_count(e.t);
    peer_open(&p, &e);
    is_uint(sessions_count(e.t), before + 1, "hello: the session counts");
    is_uint(session_outq(p.s)->n, 1, "hello: queued at once");
    is_int(p.flushes, 0, "hello: sent from the loop's pass, not from session_open");
    pass(&e);
    if (ok(p.nlines == 1 && p.lines[0], "hello: the peer has one line")) {
        json_t *h = p.lines[0];
        is_str(type_of(h), "hello", "hello: type");
        is_str(str_of(h, "protocol"), "visavis", "hello: protocol");
        is_int(int_of(h, "version"), 1, "hello: version 1");
        is_str(str_of(h, "server"), "visavis " VISAVIS_VERSION, "hello: server");
        is_str(str_of(h, "session"), p.id, "hello: session is session_id()");
        is_int(int_of(h, "heartbeat"), 25, "hello: the heartbeat setting");
        is_str(str_of(h, "hint"), "type HELP for the commands", "hello: how to start");
    }
    ok(strlen(p.id) == 16 && strspn(p.id, "0123456789abcdef") == 16,
       "hello: the session id is 16 hex digits (%s)", p.id);
    struct peer q;
    peer_open(&q, &e);
    ok(strcmp(p.id, q.id) != 0, "hello: two sessions, two ids");
    session_abort(p.s, "test over");
    session_abort(q.s, "test over");
    pass(&e);
    ok(p.closes == 1 && q.closes == 1, "session_abort: closed from the next pass");
    is_str(p.close_why, "test over", "session_abort: the reason reaches close");
    is_uint(sessions_count(e.t), before, "session_abort: no longer counted");
    peer_release(&p);
    peer_release(&q);
    env_close(&e);
}

/* The last line the peer took is a pong. */
static int got_pong(const void *arg)
{
    const struct peer *p = arg;
    return p->nlines && p->lines[p->nlines - 1] &&
           strcmp(json_string_value(json_object_get(p->lines[p->nlines - 1], "type")), "pong") == 0;
}

/* A peer's raw line i, or "". */
static const char *raw_at(const struct peer *p, int i)
{
    return i < p->nlines ? p->raw[i] : "";
}

/*
 * For a person with nc: HELP typed as text answers in words (the one answer
 * that is not JSON), NAME makes them the sender of what they publish, EXIT
 * leaves like QUIT.
 */
static void test_person(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    say(&p, "help");
    say(&p, "PING after-help");
    ok(play(&e, got_pong, &p), "text HELP, then a PING: answered");
    int text = 0;
    for (int i = 1; i < p.nlines && !p.lines[i] && p.raw[i][0]; i++)
        text++;
    ok(text >= 10, "text HELP: %d lines of words, not JSON", text);
    ok(strncmp(raw_at(&p, 1), "  HELP", 6) == 0, "text HELP: each starts with two blanks (%s)",
       raw_at(&p, 1));
    ok(strstr(raw_at(&p, 2), "PUB <channel> <text>") && strstr(raw_at(&p, 2), "publish"),
       "text HELP: a command and what it does on one line (%s)", raw_at(&p, 2));
    ok(p.nlines > text + 1 && !p.lines[text + 1] && p.raw[text + 1][0] == '\0',
       "text HELP: ends with an empty line");
    is_int(p.bad_lines, text + 1, "text HELP: only its own lines are not JSON");
    is_str(type_of(p.lines[p.nlines - 1]), "pong", "text HELP: then the next reply, as JSON");

    int before = p.nlines;
    say(&p, "NAME Ana Lopez ");
    say(&p, "PUB person hello");
    say(&p, "{\"op\":\"pub\",\"channel\":\"person\",\"body\":\"x\",\"sender\":\"bob\"}");
    say(&p, "{\"op\":\"name\",\"name\":\"\",\"tag\":\"n1\"}");
    say(&p, "NAME");
    say(&p, "{\"op\":\"name\",\"name\":\"eve\",\"tag\":\"n2\"}");
    say(&p, "{\"op\":\"pub\",\"channel\":\"person\",\"body\":\"y\"}");
    say(&p, "exit");
    ok(play(&e, closed, &p), "EXIT: closed like QUIT");
    is_str(shape(&p, before),
           "ok/name ok/pub ok/pub error/invalid_field error/missing_argument ok/name ok/pub "
           "bye/quit",
           "NAME, PUBs, bad NAMEs, EXIT: the replies");
    json_t *r;
    if ((r = reply_at(&p, before)))
        ok(str_is(r, "name", "Ana Lopez"), "NAME: the rest of the line, inner blank kept");
    if ((r = reply_at(&p, before + 1)))
        ok(str_is(json_object_get(r, "message"), "sender", "Ana Lopez"),
           "a text PUB after NAME: sent by that name");
    if ((r = reply_at(&p, before + 2)))
        ok(str_is(json_object_get(r, "message"), "sender", "bob"),
           "a JSON PUB with its own sender keeps it");
    if ((r = reply_at(&p, before + 3)))
        ok(str_is(r, "code", "invalid_field") && str_is(r, "tag", "n1"),
           "NAME with an empty name: invalid_field, tag echoed");
    if ((r = reply_at(&p, before + 4)))
        ok(str_is(r, "code", "missing_argument") && str_is(r, "op", "name"),
           "NAME alone: missing_argument");
    if ((r = reply_at(&p, before + 6)))
        ok(str_is(json_object_get(r, "message"), "sender", "eve"),
           "a JSON PUB without a sender: the session's name (eve, from the JSON form of NAME)");
    is_int(p.close_err, GW_OK, "EXIT: close says an ordinary end");
    peer_release(&p);
    env_close(&e);
}

/*
 * Every command, text and JSON forms, pipelined in one go: the replies come
 * in command order, tags echoed, pushes never taken for replies.
 */
static void test_replies_in_order(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    static const char *const lines[] = {
        "PUB ord one",
        ("{\"op\":\"pub\",\"channel\":\"ord\",\"body\":\"two\\nlines\",\"sender\":\"ana\","
         "\"tag\":\"p2\"}"),
        "HIST ord 0 10",
        "PING tok",
        "{\"op\":\"ping\",\"token\":\"t5\",\"tag\":\"g5\"}",
        "pub ord three",
        "CHANNELS",
        "{\"op\":\"channels\",\"tag\":\"c8\"}",
        "{\"op\":\"help\"}",
        "{\"op\":\"help\",\"tag\":\"h10\"}",
        "SUB ord",
        "{\"op\":\"hist\",\"channel\":\"ord\",\"since\":1,\"limit\":1,\"tag\":\"h12\"}",
        "UNSUB ord",
        "{\"op\":\"sub\",\"channel\":\"ord\",\"since\":2,\"tag\":\"s14\"}",
        "{\"op\":\"unsub\",\"channel\":\"ord\",\"tag\":\"u15\"}",
        "PONG",
        "",
        "{\"op\":\"pong\"}",
        "QUIT",
        "PING after-quit",
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(lines); i++)
        say(&p, lines[i]);
    ok(p.in_n > 0, "pipelined: the session holds back what must wait (%d lines)", p.in_n);
    ok(play(&e, closed, &p), "pipelined: every command run, then closed after QUIT");
    ok(p.refused > 0 && p.resumes > 0, "pipelined: input was held back and resumed (%d, %d)",
       p.refused, p.resumes);
    is_int(p.bad_lines, 0, "pipelined: every line the peer got is one JSON object");
    is_str(shape(&p, 0),
           "hello ok/pub ok/pub ok/hist pong pong ok/pub ok/channels ok/channels ok/help ok/help "
           "ok/sub ok/hist ok/unsub ok/sub message/ord ok/unsub bye/quit",
           "pipelined: the replies in command order, the replay of SUB 2 after its reply");

    json_t *r;
    if ((r = reply_at(&p, 1))) {
        json_t *m = json_object_get(r, "message");
        ok(int_of(m, "seq") == 1 && str_is(m, "body", "one") && str_is(m, "sender", "anonymous") &&
               str_is(m, "via", "tcp") && !json_object_get(r, "tag"),
           "PUB: ok with the message: seq 1, body, sender anonymous, via tcp, no tag");
    }
    if ((r = reply_at(&p, 2))) {
        json_t *m = json_object_get(r, "message");
        ok(int_of(m, "seq") == 2 && str_is(m, "body", "two\nlines") && str_is(m, "sender", "ana") &&
               str_is(r, "tag", "p2"),
           "PUB in JSON: a body with a newline, a sender, the tag echoed");
    }
    if ((r = reply_at(&p, 3))) {
        json_t *msgs = json_object_get(r, "messages");
        ok(str_is(r, "channel", "ord") && json_array_size(msgs) == 2 &&
               int_of(json_array_get(msgs, 1), "seq") == 2 && int_of(r, "next_since") == 2,
           "HIST after two PUBs sees both (it waited for them): 2 messages, next_since 2");
    }
    if ((r = reply_at(&p, 4)))
        ok(str_is(r, "token", "tok") && int_of(r, "time_us") > 0,
           "PING: pong with the token and the server clock");
    if ((r = reply_at(&p, 5)))
        ok(str_is(r, "token", "t5") && str_is(r, "tag", "g5"), "PING in JSON: token and tag");
    if ((r = reply_at(&p, 7))) {
        json_t *chans = json_object_get(r, "channels"), *ord = NULL;
        for (size_t i = 0; i < json_array_size(chans); i++) {
            if (str_is(json_array_get(chans, i), "name", "ord"))
                ord = json_array_get(chans, i);
        }
        ok(ord && int_of(ord, "last_seq") == 3 && int_of(ord, "messages") == 3,
           "CHANNELS: ord with its 3 messages");
    }
    if ((r = reply_at(&p, 8)))
        is_str(str_of(r, "tag"), "c8", "CHANNELS in JSON: the tag");
    if ((r = reply_at(&p, 9)))
        ok(json_array_size(json_object_get(r, "commands")) >= 8, "HELP: a line per command");
    if ((r = reply_at(&p, 10)))
        is_str(str_of(r, "tag"), "h10", "HELP in JSON: the tag");
    if ((r = reply_at(&p, 11)))
        ok(str_is(r, "channel", "ord") && int_of(r, "since") == 3 && int_of(r, "top") == 3,
           "SUB from now: since 3, top 3");
    if ((r = reply_at(&p, 12))) {
        json_t *msgs = json_object_get(r, "messages");
        ok(json_array_size(msgs) == 1 && int_of(json_array_get(msgs, 0), "seq") == 2 &&
               int_of(r, "next_since") == 2 && str_is(r, "tag", "h12"),
           "HIST in JSON: since 1 limit 1 is seq 2, with the tag");
    }
    if ((r = reply_at(&p, 13)))
        is_str(str_of(r, "channel"), "ord", "UNSUB: ok for the channel");
    if ((r = reply_at(&p, 14)))
        ok(int_of(r, "since") == 2 && int_of(r, "top") == 3 && str_is(r, "tag", "s14"),
           "SUB in JSON: since 2, top 3, the tag");
    json_t *push = p.nlines > 15 ? p.lines[15] : NULL;
    ok(push && int_of(push, "seq") == 3 && str_is(push, "body", "three"),
       "SUB since 2: the replay is seq 3");
    if ((r = reply_at(&p, 15)))
        is_str(str_of(r, "tag"), "u15", "UNSUB in JSON: the tag");
    if ((r = reply_at(&p, 16)))
        ok(str_is(r, "type", "bye") && !json_object_get(r, "tag"), "QUIT: bye");
    is_int(count_type(&p, "pong"), 2, "QUIT: a PING after it is not answered");
    is_str(p.close_why, "quit", "QUIT: closed, saying why, once bye is out");
    peer_release(&p);
    env_close(&e);
}

/* The PUB window: 256 in flight at most; the rest wait, and every one is answered in order. */
static void test_pub_window(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();
    enum { N = 300, WINDOW = 256 };

    env_open(&e, &o);
    peer_open(&p, &e);
    pass(&e);
    for (int i = 0; i < N; i++)
        sayf(&p, "PUB win w%d", i);
    is_int(N - p.in_n, 64, "window: 64 lines taken in one turn, the rest wait for the next");
    for (int i = 0; i < 8; i++)
        pass(&e); /* turns, no commit back */
    is_int(N - p.in_n, WINDOW, "window: %d PUBs taken before any commit is back", WINDOW);
    ok(p.refused > 0, "window: the next one is refused");
    ok(play(&e, idle_threads, NULL) && wait_lines(&p, 1 + N), "window: all %d answered", N);
    is_int(p.in_n, 0, "window: every PUB taken in the end");
    int good = 1;
    for (int i = 0; i < N; i++) {
        json_t *r = reply_at(&p, 1 + i), *m = json_object_get(r, "message");
        char want[16];
        snprintf(want, sizeof(want), "w%d", i);
        good &= r && strcmp(type_of(r), "ok") == 0 && int_of(m, "seq") == i + 1 &&
                str_is(m, "body", want);
    }
    ok(good, "window: ok 1..%d in command order, each with its own body", N);
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/* 130 bytes: twice the longest channel name, and a bit. */
#define LONG_NAME                                                                                  \
    "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc" \
    "cc"                                                                                           \
    "cccccccccccccccccccccccccccccccccccc"

/* Each error is rendered once, in its command's place, with the command's op and tag. */
static void test_errors(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    static const struct {
        const char *line, *code, *op, *tag;
    } cases[] = {
        {"PUB", "missing_argument", "pub", NULL},
        {"pub only-a-channel", "missing_argument", "pub", NULL},
        {"NOPE x", "unknown_command", NULL, NULL},
        {"{\"op\":\"hist\",\"channel\":\"a b\",\"tag\":\"h1\"}", "invalid_channel", "hist", "h1"},
        {"{not json", "invalid_json", NULL, NULL},
        {"{\"op\":\"sub\",\"channel\":\"x\",\"since\":\"5\",\"tag\":\"t2\"}", "invalid_field",
         "sub", "t2"},
        {"HIST errs 0 5000", "invalid_parameter", "hist", NULL},
        {"UNSUB nosuch", "not_subscribed", "unsub", NULL},
        {"SUB errs 99", "invalid_cursor", "sub", NULL},
        {"{\"op\":\"hist\",\"channel\":\"errs\",\"since\":99,\"tag\":\"h3\"}", "invalid_cursor",
         "hist", "h3"},
        {"PUB a/b x", "invalid_channel", "pub", NULL},
        /* Channel names over 64 bytes, on every command that takes one. */
        {"SUB " LONG_NAME, "invalid_channel", "sub", NULL},
        {"{\"op\":\"sub\",\"channel\":\"" LONG_NAME LONG_NAME "\",\"since\":0}", "invalid_channel",
         "sub", NULL},
        {"UNSUB " LONG_NAME, "invalid_channel", "unsub", NULL},
        {"HIST " LONG_NAME, "invalid_channel", "hist", NULL},
        {"PUB " LONG_NAME " x", "invalid_channel", "pub", NULL},
        /* A tag over 128 bytes is not echoed: it is the error. */
        {"{\"op\":\"ping\",\"tag\":\"" LONG_NAME "\"}", "invalid_field", "ping", NULL},
        {"{\"op\":\"pub\",\"channel\":\"errs\",\"body\":\"x\",\"sender\":\"\",\"tag\":\"p4\"}",
         "invalid_field", "pub", "p4"},
        {"PING \xff", "invalid_utf8", NULL, NULL},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        say(&p, cases[i].line);
        say(&p, "PING ok"); /* a success between: the session stays */
    }
    ok(wait_lines(&p, 1 + 2 * (int)GW_ARRAY_SIZE(cases)), "errors: every command answered");
    is_int(count_type(&p, "error"), (int)GW_ARRAY_SIZE(cases), "errors: one error line each");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        json_t *r = reply_at(&p, 1 + 2 * (int)i), *next = reply_at(&p, 2 + 2 * (int)i);
        if (!ok(r && strcmp(type_of(r), "error") == 0, "error %zu (%s): an error line", i,
                cases[i].code))
            continue;
        is_str(str_of(r, "code"), cases[i].code, "error %zu: code %s", i, cases[i].code);
        ok(str_of(r, "message") && strlen(str_of(r, "message")) > 0, "error %zu: a message", i);
        is_str(str_of(r, "op"), cases[i].op, "error %zu: op %s", i,
               cases[i].op ? cases[i].op : "-");
        is_str(str_of(r, "tag"), cases[i].tag, "error %zu: tag %s", i,
               cases[i].tag ? cases[i].tag : "-");
        ok(next && strcmp(type_of(next), "pong") == 0, "error %zu: in its place, before the PING",
           i);
    }
    ok(p.s != NULL && p.closes == 0, "errors: with successes between, the session goes on");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/* Ten errors in a row close the session, after its replies. */
static void test_ten_errors(void)
{
    struct env e;
    struct peer p, q, r;
    struct session_options o = default_options();

    env_open(&e, &o);

    peer_open(&p, &e);
    for (int i = 0; i < 12; i++)
        say(&p, "NOPE");
    ok(play(&e, closed, &p), "ten errors: closed");
    is_str(shape(&p, 0),
           "hello error/unknown_command error/unknown_command error/unknown_command "
           "error/unknown_command error/unknown_command error/unknown_command "
           "error/unknown_command error/unknown_command error/unknown_command "
           "error/unknown_command error/too_many_errors",
           "ten errors: ten answers, then too_many_errors, and nothing for the rest");

    /* Nine, a success, nine: the count starts over. */
    peer_open(&q, &e);
    for (int i = 0; i < 9; i++)
        say(&q, "NOPE");
    say(&q, "PING");
    for (int i = 0; i < 9; i++)
        say(&q, "NOPE");
    say(&q, "PING last");
    ok(wait_lines(&q, 21), "nine, a success, nine: all answered");
    ok(q.closes == 0 && count_type(&q, "error") == 18 && count_type(&q, "pong") == 2,
       "nine, a success, nine: the session goes on");
    session_abort(q.s, "test over");

    /* Errors of PUBs behind a PUB in flight: in their places, and the replies all go out. */
    peer_open(&r, &e);
    say(&r, "PUB ten ok");
    for (int i = 0; i < 10; i++)
        say(&r, "PUB a/b x");
    ok(play(&e, closed, &r), "errors behind a PUB: closed");
    is_str(shape(&r, 0),
           "hello ok/pub error/invalid_channel error/invalid_channel error/invalid_channel "
           "error/invalid_channel error/invalid_channel error/invalid_channel "
           "error/invalid_channel error/invalid_channel error/invalid_channel "
           "error/invalid_channel error/too_many_errors",
           "errors behind a PUB: its ok, the ten errors, too_many_errors, then the close");
    pass(&e);
    peer_release(&p);
    peer_release(&q);
    peer_release(&r);
    env_close(&e);
}

/* HIST pages are bounded in bytes and say where to go on. */
static void test_hist_bytes(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    ok(publish_n(&e, "hb", 40, 200), "hist bytes: 40 messages of about 300 bytes of JSON");
    peer_open(&p, &e);
    say(&p, "HIST hb 0 1000");
    ok(wait_lines(&p, 2), "hist bytes: answered");
    json_t *r = reply_at(&p, 1), *msgs = json_object_get(r, "messages");
    size_t n = json_array_size(msgs), bytes = 0;
    for (size_t i = 0; i < n; i++) {
        char *enc = json_dumps(json_array_get(msgs, i), JSON_COMPACT);
        bytes += strlen(enc);
        free(enc);
    }
    ok(n > 1 && n < 40, "hist bytes: a page of %zu messages, not all 40", n);
    ok(bytes <= PAGE_BYTES, "hist bytes: %zu bytes of messages, within the page bound of %d", bytes,
       PAGE_BYTES);
    is_int(int_of(r, "next_since"), (long long)n, "hist bytes: next_since is the last seq sent");
    long long next = int_of(r, "next_since"), seen = (long long)n;
    for (int i = 0; i < 40 && next < 40; i++) {
        sayf(&p, "HIST hb %lld 1000", next);
        ok(wait_lines(&p, p.nlines + 1), "hist bytes: the next page");
        r = p.lines[p.nlines - 1];
        msgs = json_object_get(r, "messages");
        if (json_array_size(msgs) == 0 || int_of(json_array_get(msgs, 0), "seq") != next + 1)
            break;
        seen += (long long)json_array_size(msgs);
        next = int_of(r, "next_since");
    }
    ok(next == 40 && seen == 40, "hist bytes: following next_since reads all 40 once");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/* The seqs of channel's message pushes the peer got, as "1,2,[3-4],5" (gaps in brackets). */
static const char *pushes(const struct peer *p, const char *channel)
{
    static char buf[8192];
    size_t n = 0;

    buf[0] = '\0';
    for (int k = 0; k < p->nlines && n < sizeof(buf) - 48; k++) {
        const json_t *j = p->lines[k];
        if (!j || !str_is(j, "channel", channel))
            continue;
        if (strcmp(type_of(j), "message") == 0)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%lld", n ? "," : "",
                                  int_of(j, "seq"));
        else if (strcmp(type_of(j), "gap") == 0)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s[%lld-%lld:%lld]", n ? "," : "",
                                  int_of(j, "from"), int_of(j, "to"), int_of(j, "first_seq"));
    }
    return buf;
}

static const char *range_str(long long from, long long to)
{
    static char buf[8192];
    size_t n = 0;

    buf[0] = '\0';
    for (long long i = from; i <= to && n < sizeof(buf) - 24; i++)
        n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%lld", i > from ? "," : "", i);
    return buf;
}

/* SUB replays the stored messages after its cursor in pages, then goes on live. */
static void test_sub_replay_live(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    ok(publish_n(&e, "rep", 60, 200), "replay: 60 stored (more than one page)");
    peer_open(&p, &e);
    say(&p, "SUB rep 5");
    ok(wait_lines(&p, 2 + 55), "replay: the reply and 55 pushes");
    json_t *r = reply_at(&p, 1);
    ok(r && strcmp(type_of(r), "ok") == 0 && int_of(r, "since") == 5 && int_of(r, "top") == 60,
       "replay: ok since 5, top 60");
    ok(strcmp(type_of(p.lines[1]), "ok") == 0, "replay: the reply comes before the replay");
    is_str(pushes(&p, "rep"), range_str(6, 60), "replay: 6..60 once each, in order");
    ok(publish_n(&e, "rep", 2, 0), "replay: 2 more published");
    ok(wait_lines(&p, 2 + 57), "replay: pushed");
    is_str(pushes(&p, "rep"), range_str(6, 62), "replay: then 61, 62 live");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/*
 * A replay bigger than the room a session has: pumped page by page as the
 * peer reads, each page into the room left, every message once, the queue
 * never over its bound.
 */
static void test_replay_paced(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_outbuf = 8 * 1024;
    env_open(&e, &o);
    ok(publish_n(&e, "paced", 80, 250), "paced: 80 stored, about 28 KB of pushes");
    peer_open(&p, &e);
    say(&p, "SUB paced 0");
    ok(wait_lines(&p, 2), "paced: subscribed");
    struct outq *q = session_outq(p.s);
    size_t most = 0;
    int rounds = 0;
    while (p.nlines < 2 + 80 && rounds++ < 1000) {
        turn(&e, WR | RD, 5);
        if (q->bytes > most)
            most = q->bytes;
        peer_read(&p, 700); /* a slow reader: less than two lines a turn */
    }
    is_str(pushes(&p, "paced"), range_str(1, 80), "paced: 1..80 once each, in order");
    ok(most <= o.max_outbuf, "paced: the queue stayed within its bound (at most %zu bytes)", most);
    ok(most > 0 && rounds > 20, "paced: paced by the reader (%d rounds)", rounds);
    is_int(p.closes, 0, "paced: a reader that keeps reading is no slow consumer");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/*
 * A replay whose messages are each bigger than the room a session keeps for
 * replay: after each page the queue is full, and the replay must go on when
 * the peer has emptied it, with nothing else happening on the session.
 */
static void test_replay_big_messages(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_outbuf = 8 * 1024;
    env_open(&e, &o);
    ok(publish_n(&e, "bigrep", 6, 3000), "big replay: 6 messages of 3 KB, each over the room");
    peer_open(&p, &e);
    say(&p, "SUB bigrep 0");
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (p.nlines < 2 + 6 && mono_ms() < deadline) {
        p.allow = 0; /* the socket is full while the tier's pass runs */
        turn(&e, WR | RD, 5);
        pass(&e);
        peer_read(&p, SIZE_MAX); /* then it turns writable: the peer takes it all */
    }
    is_str(pushes(&p, "bigrep"), range_str(1, 6), "big replay: 1..6, each once, as room is made");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/* Messages the store lacks are said in their place with gap events. */
static void test_gaps(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    ok(publish_n(&e, "holes", 8, 0), "gaps: 8 stored");
    ok(sql_exec(st.path, "DELETE FROM messages WHERE seq IN (3, 4, 8) AND channel_id = "
                         "(SELECT id FROM channels WHERE name = 'holes')") == 0,
       "gaps: seqs 3, 4 and 8 removed behind the gateway's back");
    peer_open(&p, &e);
    say(&p, "SUB holes 0");
    ok(wait_lines(&p, 2 + 7), "gaps: the reply, 5 messages and 2 gaps");
    is_str(pushes(&p, "holes"), "1,2,[3-4:5],5,6,7,[8-8:9]",
           "gaps: each gap in its place, with first_seq");
    ok(publish_n(&e, "holes", 1, 0), "gaps: one more published");
    ok(wait_lines(&p, 2 + 8), "gaps: pushed");
    is_str(pushes(&p, "holes"), "1,2,[3-4:5],5,6,7,[8-8:9],9", "gaps: then 9 live");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

struct refused_at_least {
    const struct peer *p;
    int n;
};

static int refused_and_idle(const void *arg)
{
    const struct refused_at_least *w = arg;
    return w->p->refused >= w->n && core_pending(core) == 0;
}

/*
 * A peer that does not read and pipelines HIST: its input pauses while its
 * queue is over the bound, the queue stays bounded, reading resumes input,
 * and a peer that stays stuck is a slow consumer.
 */
static void test_output_bound(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_outbuf = 16 * 1024;
    o.stuck_ms = 1000; /* room for the steps before the wait, on a slow machine */
    env_open(&e, &o);
    ok(publish_n(&e, "bound", 30, 200), "bound: 30 messages, HIST pages of about 4 KB");
    peer_open(&p, &e);
    p.allow = 0;
    for (int i = 0; i < 200; i++)
        say(&p, "HIST bound 0 1000");
    struct refused_at_least w = {&p, 1};
    ok(play(&e, refused_and_idle, &w) && p.s, "bound: the session stops taking commands");
    if (!p.s)
        bail_out("bound: the session ended before the stuck time");
    struct outq *q = session_outq(p.s);
    size_t bound = o.max_outbuf + PAGE_BYTES + 1024;
    int taken = 200 - p.in_n;
    ok(q->bytes >= o.max_outbuf && q->bytes <= bound,
       "bound: %zu bytes queued: at the bound, under it plus one page", q->bytes);
    ok(taken > 1 && taken < 10, "bound: %d HISTs taken of 200", taken);
    for (int i = 0; i < 5; i++)
        turn(&e, WR | RD, 0);
    is_int(200 - p.in_n, taken, "bound: more passes take no more");

    /* The peer reads a little: input resumes, and stops again at the bound. */
    size_t before = q->bytes;
    int resumes = p.resumes;
    int64_t progress_ms = mono_ms();
    peer_read(&p, before / 2);
    w.n = p.refused + 1;
    ok(play(&e, refused_and_idle, &w) && p.resumes > resumes && p.s,
       "bound: reading resumes the input, which stops again");
    if (!p.s)
        bail_out("bound: the session ended before the stuck time");
    ok(200 - p.in_n > taken && q->bytes <= bound, "bound: more taken (%d), still bounded (%zu)",
       200 - p.in_n, q->bytes);
    ok(p.bad_lines == 0, "bound: what was read is whole lines so far");

    /* Stuck over the bound: a slow consumer; what was not started is dropped. */
    ok(play(&e, idle_threads, NULL), "bound: idle");
    size_t started = outq_head_started(q) ? 1 : 0;
    while (mono_ms() - progress_ms < DEADLINE_MS && q->n > started + 1)
        turn(&e, WR | RD, 20);
    int64_t slow_after = mono_ms() - progress_ms;
    ok(q->n == started + 1, "bound: stuck: only %sthe farewell is left",
       started ? "the rest of the line being sent and " : "");
    ok(slow_after >= 1000, "bound: not before the stuck time (%lld ms after the last byte taken)",
       (long long)slow_after);
    int nlines = p.nlines;
    ok(peer_read_last(&p), "bound: the peer reads: closed at once after the farewell");
    json_t *last = p.nlines ? p.lines[p.nlines - 1] : NULL;
    ok(last && str_is(last, "code", "slow_consumer"),
       "bound: the last line is the slow_consumer farewell");
    is_int(p.nlines, nlines + (started ? 2 : 1), "bound: and nothing else after what was sent");
    is_int(p.bad_lines, 0, "bound: every line whole");
    is_str(p.close_why, "slow consumer", "bound: closed as a slow consumer");
    peer_release(&p);
    env_close(&e);
}

/* The last seq of each channel the peer got whole (gaps count), or -1. */
static long long last_got(const struct peer *p, const char *channel)
{
    long long last = -1;
    for (int k = 0; k < p->nlines; k++) {
        const json_t *j = p->lines[k];
        if (!j || !str_is(j, "channel", channel))
            continue;
        if (strcmp(type_of(j), "message") == 0)
            last = int_of(j, "seq");
        else if (strcmp(type_of(j), "gap") == 0)
            last = int_of(j, "to");
    }
    return last;
}

/*
 * A subscriber that reads slower than pushes come: the farewell comes after
 * the line being sent (finished first), the lines not started are dropped,
 * and last_seq names per channel the last seq it was really sent.
 */
static void test_slow_consumer(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_outbuf = 8 * 1024;
    env_open(&e, &o);
    ok(publish_n(&e, "sa", 2, 0) && publish_n(&e, "sb", 1, 0), "slow: sa has 2, sb has 1");
    peer_open(&p, &e);
    say(&p, "SUB sa");
    say(&p, "SUB sb");
    ok(wait_lines(&p, 3), "slow: subscribed to sa and sb");

    /* Three pushes queued, nothing read; then the peer takes one and a half of them. */
    p.allow = 0;
    ok(publish_n(&e, "sa", 1, 300) && publish_n(&e, "sb", 1, 300) && publish_n(&e, "sa", 1, 300),
       "slow: sa 3, sb 2, sa 4 published");
    struct outq *q = session_outq(p.s);
    is_uint(q->n, 3, "slow: three pushes queued");
    peer_read(&p, outq_at(q, 0)->w->len + outq_at(q, 1)->w->len / 2);
    ok(p.nlines == 4 && outq_head_started(q), "slow: sa 3 taken, sb 2 half sent");
    p.allow = 0;

    /* Pushes past the bound: the farewell. */
    ok(publish_n(&e, "sa", 30, 300), "slow: 30 more on sa, far past the bound");
    ok(q->n == 2 && outq_head_started(q), "slow: the half-sent line and the farewell are left");
    ok(peer_read_last(&p), "slow: closed as soon as the farewell is out");
    is_int(p.bad_lines, 0, "slow: the half-sent line was finished: every line whole");
    is_str(shape(&p, 0), "hello ok/sub ok/sub message/sa message/sb error/slow_consumer",
           "slow: the lines sent, then the farewell, nothing in between dropped lines");
    json_t *bye = p.nlines ? p.lines[p.nlines - 1] : NULL;
    json_t *ls = json_object_get(bye, "last_seq");
    ok(json_object_size(ls) == 2, "slow: last_seq names both channels");
    is_int(int_of(ls, "sa"), last_got(&p, "sa"), "slow: last_seq of sa is the last sa sent (3)");
    is_int(int_of(ls, "sb"), last_got(&p, "sb"), "slow: last_seq of sb is the last sb sent (2)");
    is_str(p.close_why, "slow consumer", "slow: closed as a slow consumer");
    peer_release(&p);
    env_close(&e);
}

/*
 * A slow consumer with a SUB under way: the farewell names, per channel, what
 * was sent; never a cursor of 0 for a SUB that was not answered, and never
 * one channel twice.
 */
static void test_slow_consumer_pending_sub(void)
{
    struct env e;
    struct peer p, q;
    struct session_options o = default_options();

    o.max_outbuf = 8 * 1024;
    env_open(&e, &o);
    ok(publish_n(&e, "pa", 3, 0) && publish_n(&e, "pb", 3, 0), "pending: pa and pb have 3 each");
    peer_open(&p, &e);
    peer_open(&q, &e);
    say(&p, "SUB pa");
    say(&q, "SUB pa");
    ok(wait_lines(&p, 2) && wait_lines(&q, 2), "pending: both subscribed to pa (since 3)");
    p.allow = q.allow = 0;
    say(&p, "SUB pb 2");
    say(&q, "SUB pa 1");
    ok(p.in_n == 0 && q.in_n == 0, "pending: SUB pb 2 and SUB pa 1 taken, their reads under way");

    /* Commits reach the loop, the reads do not: pa's pushes pass the bound. */
    int target = published + 30;
    submit_n("pa", 30, 400);
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while (published < target && mono_ms() < deadline)
        turn(&e, WR, 20);
    ok(peer_read_last(&p) && peer_read_last(&q), "pending: slow consumers, closed");
    const char *rp = p.nlines ? p.raw[p.nlines - 1] : "", *rq = q.nlines ? q.raw[q.nlines - 1] : "";
    ok(strstr(rp, "slow_consumer") && strstr(rq, "slow_consumer"),
       "pending: both got the farewell");
    ok(strstr(rp, "\"pb\"") == NULL,
       "pending: no cursor for a channel whose SUB was not answered (%s)", rp);
    is_int(int_of(json_object_get(p.lines[p.nlines - 1], "last_seq"), "pa"), 3,
           "pending: pa's last seq sent is 3");
    const char *first = strstr(rq, "\"pa\"");
    ok(first && !strstr(first + 1, "\"pa\""), "pending: SUB again under way: pa named once (%s)",
       rq);
    is_int(int_of(json_object_get(q.lines[q.nlines - 1], "last_seq"), "pa"), 3,
           "pending: SUB again under way: pa's last seq sent is 3");
    ok(play(&e, idle_threads, NULL), "pending: the reads complete after the sessions ended");
    peer_release(&p);
    peer_release(&q);
    env_close(&e);
}

/* A slow consumer with a reply due: nothing follows the farewell. */
static void test_slow_consumer_reply_due(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_outbuf = 8 * 1024;
    env_open(&e, &o);
    peer_open(&p, &e);
    say(&p, "SUB due");
    ok(wait_lines(&p, 2), "reply due: subscribed");
    p.allow = 0;
    int target = published + 30;
    submit_n("due", 30, 400);
    say(&p, "PUB due mine");
    is_int(p.in_n, 0, "reply due: a PUB of its own in flight behind 30 others");
    int64_t deadline = mono_ms() + DEADLINE_MS;
    while ((published < target || core_pending(core)) && mono_ms() < deadline)
        turn(&e, WR | RD, 20);
    ok(peer_read_last(&p), "reply due: closed as a slow consumer");
    const json_t *last = p.nlines ? p.lines[p.nlines - 1] : NULL;
    ok(last && str_is(last, "code", "slow_consumer"),
       "reply due: the farewell is the last line (%s)", shape(&p, 0));
    peer_release(&p);
    env_close(&e);
}

/* Half-close: the replies due go out, then bye "end of input", then the close. */
static void test_half_close(void)
{
    struct env e;
    struct peer p, q;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    say(&p, "PUB half a");
    say(&p, "PUB half b");
    say(&p, "HIST half 0");
    say_end(&p);
    ok(play(&e, closed, &p), "half-close: closed");
    is_str(shape(&p, 0), "hello ok/pub ok/pub ok/hist bye/end of input",
           "half-close: both PUBs and the HIST answered, then bye");
    is_str(p.close_why, "end of input", "half-close: closed at the end of input");

    /* Subscribed: the end of input still ends the session. */
    peer_open(&q, &e);
    say(&q, "SUB half");
    ok(wait_lines(&q, 2), "half-close: subscribed");
    say_end(&q);
    ok(play(&e, closed, &q), "half-close: a subscribed session closes too");
    is_str(shape(&q, 0), "hello ok/sub bye/end of input", "half-close: bye after the SUB reply");
    /* QUIT to a peer that reads its bye only later: closed once it has. */
    struct peer r;
    peer_open(&r, &e);
    pass(&e);
    r.allow = 0;
    say(&r, "QUIT");
    ok(peer_read_last(&r), "QUIT read late: closed as soon as bye is out");
    is_str(shape(&r, 0), "hello bye/quit", "QUIT read late: the bye");
    peer_release(&p);
    peer_release(&q);
    peer_release(&r);
    env_close(&e);
}

/*
 * A front counts a session on its limit until the tier closes it, and the
 * fair shares stop counting it when it ends: a session that ends in its
 * pass (QUIT) is closed in that pass, so that no newcomer finds the limit
 * held by sessions no address holds. At the limit, a newcomer from another
 * address ends the newest session of the address holding the most.
 */
static void test_room_at_the_limit(void)
{
    struct env e;
    struct peer p[3], q;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&q, &e);
    pass(&e);
    say(&q, "QUIT");
    pass(&e);
    is_int(q.closes, 1, "room: QUIT: closed in the pass that sends bye");
    peer_release(&q);
    for (int i = 0; i < 3; i++)
        peer_open(&p[i], &e);
    pass(&e);
    ok(!sessions_can_make_room(e.t, GW_T_TCP, "127.0.0.1:6000"),
       "room: the address holding every place gets none of its own");
    ok(sessions_make_room(e.t, GW_T_TCP, "127.0.0.3:6000", 3),
       "room: a newcomer from another address");
    pass(&e);
    pass(&e);
    is_int(p[2].closes, 1, "room: the holder's newest session gave way");
    is_str(p[2].close_why, "closed to make room for a client from another address",
           "room: saying why");
    is_int(p[0].closes + p[1].closes, 0, "room: the others are kept");
    for (int i = 0; i < 2; i++)
        say(&p[i], "QUIT");
    pass(&e);
    is_int(p[0].closes + p[1].closes, 2, "room: closed");
    for (int i = 0; i < 3; i++)
        peer_release(&p[i]);
    env_close(&e);
}

/* An input error (a line over the limit): answered after the replies due, then closed. */
static void test_input_error(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    say(&p, "PUB ie before");
    session_input_error(p.s, GW_E_LINE_TOO_LONG, "a line is at most 10 bytes");
    ok(play(&e, closed, &p), "input error: closed");
    is_str(shape(&p, 0), "hello ok/pub error/line_too_long",
           "input error: the PUB's ok first, then the error");
    peer_release(&p);
    env_close(&e);
}

/* Quiesce: each session gets its pending replies, then bye "shutdown", then is closed. */
static void test_quiesce(void)
{
    struct env e;
    struct peer p, q;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    peer_open(&q, &e);
    pass(&e);
    say(&p, "PUB qu one");
    ok(p.in_n == 0, "quiesce: a PUB in flight");
    sessions_quiesce(e.t);
    say(&p, "PING held");
    is_int(p.in_n, 1, "quiesce: input after it is held, not run");
    ok(play(&e, closed, &p) && play(&e, closed, &q), "quiesce: both closed");
    is_str(shape(&p, 0), "hello ok/pub bye/shutdown", "quiesce: the PUB's ok, then bye shutdown");
    is_str(shape(&q, 0), "hello bye/shutdown", "quiesce: an idle session: bye shutdown");
    is_uint(sessions_count(e.t), 0, "quiesce: no session left");
    peer_release(&p);
    peer_release(&q);
    env_close(&e);
}

/* A broken connection ends the session from the next pass. */
static void test_broken(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    env_open(&e, &o);
    peer_open(&p, &e);
    say(&p, "SUB broken");
    ok(wait_lines(&p, 2), "broken: subscribed");
    p.broken = true;
    say(&p, "PING");
    ok(play(&e, closed, &p), "broken: closed");
    is_str(p.close_why, "connection lost", "broken: as a lost connection");
    ok(publish_n(&e, "broken", 1, 0), "broken: a publish after it is fine");
    peer_release(&p);
    env_close(&e);
}

/* Whether the SSE peer has been sent an event with id seq. */
static bool sse_has(const struct peer *p, int64_t seq)
{
    char id[32];
    int n = snprintf(id, sizeof(id), "id: %lld\nevent: message\ndata: ", (long long)seq);

    for (size_t i = 0; i + (size_t)n <= p->got.len; i++)
        if (memcmp(p->got.data + i, id, (size_t)n) == 0)
            return true;
    return false;
}

static int sse_has_first(const void *ctx)
{
    return sse_has(ctx, 1);
}

static int sse_has_last(const void *ctx)
{
    return sse_has(ctx, 21);
}

/*
 * One message for three sessions of two wire forms: each form is encoded
 * once and shared by the sessions of that form. A session closed mid-line,
 * or one left behind holding the last reference, spoils nothing the others
 * get (AddressSanitizer watches the lines' lifetimes).
 */
static void test_shared_lines(void)
{
    struct env e;
    struct peer a, b, c;
    struct session_options o = default_options();

    o.max_outbuf = 4 * 1024;
    env_open(&e, &o);
    peer_open(&a, &e);
    peer_open(&c, &e);
    peer_open_as(&b, &e, GW_T_SSE, SESSION_SSE);
    say(&a, "SUB shared");
    say(&c, "SUB shared");
    say(&b, "SUB shared");
    ok(wait_lines(&a, 2) && wait_lines(&c, 2), "shared: two line sessions subscribed");

    /* a takes 10 bytes of the push, c none, b (SSE) all. */
    a.allow = 10;
    c.allow = 0;
    ok(publish_n(&e, "shared", 1, 200), "shared: one message published");
    ok(play(&e, sse_has_first, &b), "shared: the SSE session got it as an event");
    struct outq *qa = session_outq(a.s), *qc = session_outq(c.s);
    ok(qa->n == 1 && qc->n == 1 && outq_at(qa, 0)->w == outq_at(qc, 0)->w,
       "shared: both line sessions queue the very same line");
    ok(outq_head_started(qa) && !outq_head_started(qc), "shared: a has taken 10 bytes of it");
    struct wline *line = outq_at(qc, 0)->w;
    char *want = gw_xmemdup(line->data, line->len);
    size_t want_len = line->len;
    const char *body = memmem(want, want_len, "\"body\":\"", 8);
    ok(body && memmem(b.got.data, b.got.len, body, 100) != NULL,
       "shared: the event carries the same message");

    /* a's connection is lost mid-line: the line stays c's, whole. */
    a.broken = true;
    session_abort(a.s, "connection lost");
    pass(&e);
    ok(a.closes == 1 && qc->n == 1 && outq_at(qc, 0)->w->len == want_len,
       "shared: a closed mid-line, c still holds the line");

    /* c takes 5 bytes of it, then stops; past its bound it is a slow consumer that
     * still owes the rest of that line, and holds the last reference to it. */
    peer_read(&c, 5);
    c.allow = 0;
    ok(outq_head_started(qc), "shared: c has started the line");
    ok(publish_n(&e, "shared", 20, 300), "shared: 20 more, past c's bound");
    ok(play(&e, sse_has_last, &b), "shared: the SSE session got all 21");
    ok(peer_read_last(&c), "shared: c, a slow consumer, closed once it read its farewell");
    ok(c.nlines >= 3 && c.raw[2] && strlen(c.raw[2]) + 1 == want_len &&
           memcmp(c.raw[2], want, want_len - 1) == 0,
       "shared: c's started push arrived whole, byte for byte the line a was cut in");
    is_int(c.bad_lines, 0, "shared: every line c got is whole");
    is_str(c.close_why, "slow consumer", "shared: c closed as a slow consumer");
    free(want);
    session_abort(b.s, "done");
    pass(&e);
    peer_release(&a);
    peer_release(&b);
    peer_release(&c);
    env_close(&e);
}

/* Subscription limits, and SUB again on a channel. */
static void test_subs(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();

    o.max_subs = 2;
    env_open(&e, &o);
    ok(publish_n(&e, "again", 4, 0), "subs: 4 on again");
    peer_open(&p, &e);
    say(&p, "SUB again 0");
    say(&p, "SUB other");
    say(&p, "SUB third");
    say(&p, "SUB again 2");
    ok(wait_lines(&p, 1 + 4 + 4 + 2), "subs: answered");
    is_str(shape(&p, 0),
           "hello ok/sub message/again message/again message/again message/again ok/sub "
           "error/too_many_subscriptions ok/sub message/again message/again",
           "subs: a third channel is refused; SUB again on one is allowed");
    is_str(pushes(&p, "again"), "1,2,3,4,3,4", "subs: SUB again starts over from its cursor");
    ok(publish_n(&e, "again", 1, 0) && wait_lines(&p, 12), "subs: one more");
    is_str(pushes(&p, "again"), "1,2,3,4,3,4,5", "subs: pushed once, to the new subscription");
    session_abort(p.s, "test over");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

/* Heartbeat and idle rules (one-second settings: this test takes about two seconds). */
static void test_timers(void)
{
    struct env e;
    struct peer p, q;
    struct session_options o = default_options();

    o.heartbeat = 1;
    o.idle_timeout = 2;
    env_open(&e, &o);
    peer_open(&p, &e);
    peer_open(&q, &e);
    say(&q, "SUB timers");
    ok(wait_lines(&q, 2), "timers: q subscribed");
    int64_t t0 = mono_ms();
    ok(play(&e, closed, &p), "timers: an idle session is closed");
    int64_t took = mono_ms() - t0;
    ok(took >= 1500 && took < 4000, "timers: after about 2 s (%lld ms)", (long long)took);
    is_str(shape(&p, 0), "hello ping error/idle_timeout",
           "timers: a ping after 1 s of silence, then idle_timeout");
    ok(q.closes == 0 && count_type(&q, "ping") >= 1,
       "timers: a subscribed session is not idle, and gets pings");
    session_abort(q.s, "test over");
    pass(&e);
    peer_release(&p);
    peer_release(&q);
    env_close(&e);
}

/* Lines of p (raw) that start with prefix. */
static int count_prefix(const struct peer *p, const char *prefix)
{
    int n = 0;
    for (int i = 0; i < p->nlines; i++)
        n += strncmp(p->raw[i], prefix, strlen(prefix)) == 0;
    return n;
}

/*
 * The Socket.IO form: the hello is the CONNECT answer, a tagged reply an
 * ACK, an untagged one nothing, pushes and untagged errors events; a
 * packet refused by the front is answered in its place; two lines built
 * together (an error and too_many_errors) are two packets.
 */
static void test_socketio_form(void)
{
    struct env e;
    struct peer p;
    struct session_options o = default_options();
    char want[64];

    env_open(&e, &o);
    peer_open_as(&p, &e, GW_T_SOCKETIO, SESSION_SOCKETIO);

    say(&p, "{\"op\":\"sub\",\"channel\":\"sio\",\"tag\":\"1\"}");
    say(&p, "{\"op\":\"pub\",\"channel\":\"sio\",\"body\":\"x\"}");
    say(&p, "{\"op\":\"pub\",\"channel\":\"sio\",\"body\":\"y\",\"tag\":\"2\"}");
    say(&p, "{\"op\":\"sub\",\"channel\":\"bad channel\",\"tag\":\"3\"}");
    say(&p, "{\"op\":\"pub\",\"channel\":\"bad channel\",\"body\":\"z\"}");
    ok(wait_lines(&p, 7), "socket.io: every command answered");
    ok(session_refuse(p.s, GW_E_MEDIA_TYPE, "binary", "4", 1), "socket.io: a refusal is taken");
    ok(wait_lines(&p, 8), "socket.io: the refusal answered");
    snprintf(want, sizeof(want), "40{\"sid\":\"%s\"}", p.id);
    is_str(p.raw[0], want, "socket.io: the hello is the CONNECT answer");
    is_str(p.raw[1],
           "431[{\"type\":\"ok\",\"op\":\"sub\",\"channel\":\"sio\",\"since\":0,\"top\":0}]",
           "socket.io: a tagged reply is an ACK, without its tag");
    is_int(count_prefix(&p, "42[\"message\",{\"id\":"), 2, "socket.io: two pushes as events");
    is_int(count_prefix(&p, "432[{\"type\":\"ok\",\"op\":\"pub\",\"message\":{"), 1,
           "socket.io: the tagged pub's ACK");
    is_int(count_prefix(&p, "43"), 4, "socket.io: ACKs for the tagged four only");
    is_int(count_prefix(&p, "433[{\"type\":\"error\",\"code\":\"invalid_channel\""), 1,
           "socket.io: a tagged error is an ACK");
    is_int(count_prefix(&p, "42[\"error\",{\"code\":\"invalid_channel\""), 1,
           "socket.io: an untagged error is an error event");
    is_int(count_prefix(&p, "434[{\"type\":\"error\",\"code\":\"unsupported_media_type\""), 1,
           "socket.io: a refusal answers through its ack");

    for (int i = 0; i < 10; i++)
        session_refuse(p.s, GW_E_PARAM, "bad", NULL, 0);
    ok(play(&e, closed, &p), "socket.io: ten refusals close the session");
    is_int(count_prefix(&p, "42[\"error\",{\"code\":\"too_many_errors\""), 1,
           "socket.io: too_many_errors is a packet of its own");
    is_int(p.bad_lines, p.nlines, "socket.io: no line is a bare JSON object");
    pass(&e);
    peer_release(&p);
    env_close(&e);
}

int main(void)
{
    log_set_level(GW_LOG_ERROR);
    stack_open(&st, "session", reader_run);
    struct core_options co = {.max_body = GW_BODY_MAX, .page_bytes = PAGE_BYTES};
    core = core_new(st.reader, st.writer, &co);

    test_hello();
    test_replies_in_order();
    test_person();
    test_pub_window();
    test_errors();
    test_ten_errors();
    test_hist_bytes();
    test_sub_replay_live();
    test_replay_paced();
    test_replay_big_messages();
    test_gaps();
    test_output_bound();
    test_slow_consumer();
    test_slow_consumer_pending_sub();
    test_slow_consumer_reply_due();
    test_half_close();
    test_room_at_the_limit();
    test_input_error();
    test_quiesce();
    test_broken();
    test_shared_lines();
    test_subs();
    test_timers();
    test_socketio_form();

    stack_drain(&st);
    core_free(core);
    stack_close(&st);
    return done_testing();
}
