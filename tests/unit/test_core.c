/*
 * test_core.c - gateway/core.h over a real store (a SQLite file in a
 * temporary directory), a real writer thread and a real reader thread.
 *
 * The test plays the loop: it polls writer_fd() and workq_fd() and calls
 * writer_complete() and workq_complete(), which run the callbacks on this
 * thread. Some tests complete one side only, or wait for a side's eventfd
 * without completing it, to put commits and reads in the order they need.
 * Recording callbacks copy what they are handed.
 *
 * This test includes sqlite3.h: it changes the store behind the gateway's
 * back (rows deleted or inserted by another connection, a table renamed),
 * and it gives every connection the process opens (sqlite3_auto_extension)
 * a SQL function test_gate() that a trigger calls: it holds the writer
 * inside a transaction until the test lets it go, the signal that orders the
 * "same batch" case without a sleep.
 */
#include "core.h"

#include "gw.h"
#include "log.h"
#include "metrics.h"
#include "model.h"
#include "reader.h"
#include "store.h"
#include "tap.h"
#include "sqlfile.h"
#include "tmpdir.h"
#include "stack.h"
#include "workq.h"
#include "writer.h"

#include <errno.h>
#include <poll.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY    1024
/* Every wait for the other threads has this deadline. */
#define DEADLINE_MS 10000

static struct stack st;
static struct writer *writer; /* st's, for short */
static struct workq *reader;
static const char *path;
static struct core *core;

static const struct core_caller rest = {.transport = GW_T_REST, .peer = "127.0.0.1:4000"};
static const struct core_caller tcp = {.transport = GW_T_TCP, .peer = "127.0.0.1:4001"};

static int completed;       /* answers (publish, read, ready) run so far */
static int early_callbacks; /* answers that ran before the call that asked for them returned */

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- playing the loop ---- */

/* Plays the loop (the sides in which) until pred(arg) holds; false after DEADLINE_MS. */
static int run_until(int (*pred)(const void *), const void *arg, unsigned which)
{
    int64_t deadline = mono_ms() + DEADLINE_MS;

    while (!pred(arg)) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        stack_turn(&st, which, left < 50 ? (int)left : 50);
    }
    return 1;
}

static int reached(const void *target)
{
    return completed >= *(const int *)target;
}

/* Plays the loop until `completed` reaches target. */
static int settle(int target)
{
    return run_until(reached, &target, WR | RD);
}

static int reads_idle(const void *arg)
{
    (void)arg;
    return workq_pending(reader) == 0;
}

static int writes_idle(const void *arg)
{
    (void)arg;
    return writer_pending(writer) == 0;
}

static int all_idle(const void *arg)
{
    (void)arg;
    return core_pending(core) == 0;
}

/*
 * The reader's workq runs this around reader_run: each read run on the
 * reader thread posts reads_run before it is handed back to the loop, the
 * signal that a read is done but not yet answered. Posted before the job
 * reaches the done list, so once nothing is pending every post has been
 * made and drain_reads_run() leaves the count exact.
 */
static sem_t reads_run;

/* While set, every page or top read answers as a store that lost its database would. */
static atomic_bool pages_unavailable;

static void test_reader_run(void *arg, struct workq_job **jobs, size_t n)
{
    reader_run(arg, jobs, n);
    for (size_t i = 0; i < n; i++) {
        struct reader_job *j = (struct reader_job *)jobs[i];
        if (atomic_load(&pages_unavailable) && (j->op == READER_PAGE || j->op == READER_TOP)) {
            gw_page_release(&j->page);
            j->err = GW_E_STORE_UNAVAILABLE;
            snprintf(j->why, sizeof(j->why), "no connection to the database (test)");
        }
        sem_post(&reads_run);
    }
}

static int sem_wait_ms(sem_t *sem, int ms);

static void drain_reads_run(void)
{
    if (workq_pending(reader) != 0)
        bail_out("drain_reads_run with reads under way");
    while (sem_trywait(&reads_run) == 0)
        ;
}

/* Waits until k more reads have run on the reader thread, completing nothing. */
static int wait_reads_run(int k)
{
    for (int i = 0; i < k; i++) {
        if (!sem_wait_ms(&reads_run, DEADLINE_MS))
            return 0;
    }
    return 1;
}

/*
 * Waits until the store file holds seq of channel (committed), completing
 * nothing: the writer's eventfd is the wake-up, the file is the truth (a
 * readable eventfd may be left over from jobs already completed).
 */
static int wait_stored(const char *channel, int64_t seq)
{
    char sql[160];
    int64_t deadline = mono_ms() + DEADLINE_MS;

    snprintf(sql, sizeof(sql), "SELECT last_seq FROM channels WHERE name = '%s'", channel);
    while (sql_int(path, sql) < seq) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = writer_fd(writer), .events = POLLIN};
        if (poll(&p, 1, left < 50 ? (int)left : 50) > 0) {
            uint64_t count;
            /* Taken here, so the next poll waits for the next commit; turn() completes anyway. */
            ssize_t rd = read(writer_fd(writer), &count, sizeof(count));
            (void)rd;
        }
    }
    return 1;
}

/*
 * Counts an answer (publish, read) and, on its first call, records its order
 * and outcome; false on a repeated call, which the tests count as a bug.
 */
static bool first_answer(int *calls, int *order, enum gw_err *err_out, char why_out[GW_ERRLEN],
                         enum gw_err err, const char *why)
{
    completed++;
    if ((*calls)++)
        return false;
    *order = completed;
    *err_out = err;
    snprintf(why_out, GW_ERRLEN, "%s", why ? why : "");
    return true;
}

/* ---- publishing ---- */

/* What one publish's callback saw. */
struct slot {
    int calls;
    int order; /* the value of `completed` its first call made */
    enum gw_err err;
    char why[GW_ERRLEN];
    struct gw_msg msg; /* deep copy */
};

static void record(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg)
{
    struct slot *s = ctx;

    if (first_answer(&s->calls, &s->order, &s->err, s->why, err, why))
        gw_msg_copy(&s->msg, msg);
}

static void slot_release(struct slot *s)
{
    gw_msg_release(&s->msg);
}

static void release_slots(struct slot *slots, int n)
{
    for (int i = 0; i < n; i++)
        slot_release(&slots[i]);
}

static struct core_publish_req req_of(const char *channel, size_t channel_len, const char *sender,
                                      size_t sender_len, const char *body, size_t body_len)
{
    struct core_publish_req r;
    memset(&r, 0, sizeof(r));
    r.channel = channel;
    r.channel_len = channel_len;
    r.sender = sender;
    r.sender_len = sender_len;
    r.body = body;
    r.body_len = body_len;
    return r;
}

static enum gw_err publish(const struct core_caller *caller, const struct core_publish_req *req,
                           struct slot *s, char why[GW_ERRLEN])
{
    memset(s, 0, sizeof(*s));
    enum gw_err err = core_publish(core, caller, req, record, s, why);
    if (s->calls)
        early_callbacks++;
    return err;
}

/* ---- reading ---- */

struct page_rec {
    int calls, order;
    enum gw_err err;
    char why[GW_ERRLEN];
    int has_page;
    struct gw_page page; /* deep copy */
};

static void on_page(void *ctx, enum gw_err err, const char *why, const struct gw_page *p)
{
    struct page_rec *r = ctx;

    if (!first_answer(&r->calls, &r->order, &r->err, r->why, err, why) || !p)
        return;
    r->has_page = 1;
    r->page = *p;
    r->page.msgs = p->n ? gw_xcalloc(p->n, sizeof(*p->msgs)) : NULL;
    for (size_t i = 0; i < p->n; i++)
        gw_msg_copy(&r->page.msgs[i], &p->msgs[i]);
    r->page.gaps = p->ngaps ? gw_xcalloc(p->ngaps, sizeof(*p->gaps)) : NULL;
    if (p->ngaps)
        memcpy(r->page.gaps, p->gaps, p->ngaps * sizeof(*p->gaps));
}

static void page_rec_release(struct page_rec *r)
{
    gw_page_release(&r->page);
}

/* core_history on c (its page cut at max_bytes), played to its answer when accepted. */
static enum gw_err history_cut(struct core *c, const char *channel, size_t len, uint64_t since,
                               uint64_t limit, size_t max_bytes, struct page_rec *r,
                               char why[GW_ERRLEN])
{
    int target = completed + 1;

    memset(r, 0, sizeof(*r));
    why[0] = '\0';
    enum gw_err err =
        core_history(c, &rest, channel, len, since, limit, max_bytes, on_page, r, why);
    if (r->calls)
        early_callbacks++;
    if (err == GW_OK && !settle(target))
        diag("history of %.*s: no answer within %d ms", (int)len, channel, DEADLINE_MS);
    return err;
}

static enum gw_err history(struct core *c, const char *channel, size_t len, uint64_t since,
                           uint64_t limit, struct page_rec *r, char why[GW_ERRLEN])
{
    return history_cut(c, channel, len, since, limit, 0, r, why);
}

struct msg_rec {
    int calls, order;
    enum gw_err err;
    char why[GW_ERRLEN];
    struct gw_msg msg;
};

static void on_message(void *ctx, enum gw_err err, const char *why, const struct gw_msg *m)
{
    struct msg_rec *r = ctx;

    if (first_answer(&r->calls, &r->order, &r->err, r->why, err, why) && m)
        gw_msg_copy(&r->msg, m);
}

static enum gw_err message(uint64_t id, struct msg_rec *r, char why[GW_ERRLEN])
{
    int target = completed + 1;

    memset(r, 0, sizeof(*r));
    why[0] = '\0';
    enum gw_err err = core_message(core, &rest, id, on_message, r, why);
    if (r->calls)
        early_callbacks++;
    if (err == GW_OK)
        settle(target);
    return err;
}

struct chans_rec {
    int calls, order;
    enum gw_err err;
    char why[GW_ERRLEN];
    struct gw_channel_info *chans;
    size_t n;
    char next_after[GW_CHANNEL_MAX + 1];
    bool has_next;
};

static void on_channels(void *ctx, enum gw_err err, const char *why,
                        const struct gw_channel_info *chans, size_t n, const char *next_after)
{
    struct chans_rec *r = ctx;

    if (!first_answer(&r->calls, &r->order, &r->err, r->why, err, why))
        return;
    r->n = n;
    r->has_next = next_after != NULL;
    if (next_after)
        snprintf(r->next_after, sizeof(r->next_after), "%s", next_after);
    r->chans = n ? gw_xcalloc(n, sizeof(*chans)) : NULL;
    if (n)
        memcpy(r->chans, chans, n * sizeof(*chans));
}

static enum gw_err channels_page(struct chans_rec *r, const char *after, uint64_t limit,
                                 char why[GW_ERRLEN])
{
    int target = completed + 1;

    memset(r, 0, sizeof(*r));
    enum gw_err err = core_channels(core, &rest, after, strlen(after), limit, on_channels, r, why);
    if (r->calls)
        early_callbacks++;
    if (err == GW_OK)
        settle(target);
    return err;
}

static enum gw_err channels(struct chans_rec *r)
{
    char why[GW_ERRLEN];

    return channels_page(r, "", GW_CHANNELS_LIMIT_MAX, why);
}

static size_t channel_count(void)
{
    struct chans_rec r;
    size_t n = channels(&r) == GW_OK && r.err == GW_OK ? r.n : (size_t)-1;
    free(r.chans);
    return n;
}

/* The bytes of JSON of the k messages of channel after seq from, as a page would count them. */
static size_t wire_of(const char *channel, uint64_t from, unsigned k)
{
    struct page_rec r;
    char why[GW_ERRLEN];
    size_t sum = 0;

    if (history(core, channel, strlen(channel), from, k, &r, why) != GW_OK || r.err != GW_OK ||
        r.page.n != k)
        bail_out("wire_of(%s, %llu, %u): %s", channel, (unsigned long long)from, k, r.why);
    for (size_t i = 0; i < r.page.n; i++)
        sum += gw_msg_wire_len(&r.page.msgs[i]);
    page_rec_release(&r);
    return sum;
}

/* ---- the store behind the gateway's back ---- */

/*
 * test_gate(): posts gate_entered, then waits for gate_open (with a
 * deadline, so that a failing test cannot hang the writer for ever).
 */
static sem_t gate_entered, gate_open;

static int sem_wait_ms(sem_t *sem, int ms)
{
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += ms / 1000;
    dl.tv_nsec += (long)(ms % 1000) * 1000000;
    if (dl.tv_nsec >= 1000000000) {
        dl.tv_sec++;
        dl.tv_nsec -= 1000000000;
    }
    int rc;
    while ((rc = sem_timedwait(sem, &dl)) < 0 && errno == EINTR)
        ;
    return rc == 0;
}

static void gate_fn(sqlite3_context *cx, int argc, sqlite3_value **argv)
{
    (void)argc;
    (void)argv;
    sem_post(&gate_entered);
    sem_wait_ms(&gate_open, DEADLINE_MS);
    sqlite3_result_int(cx, 1);
}

static int gate_register(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    (void)err;
    (void)api;
    return sqlite3_create_function(db, "test_gate", 0, SQLITE_UTF8, NULL, gate_fn, NULL, NULL);
}

/* ---- validation, publishing ---- */

static void test_validation(void)
{
    static char long_channel[GW_CHANNEL_MAX + 1], long_sender[GW_SENDER_MAX + 1],
        big_body[MAX_BODY + 1];
    memset(long_channel, 'c', sizeof(long_channel));
    memset(long_sender, 's', sizeof(long_sender));
    memset(big_body, 'b', sizeof(big_body));

#define CH(s) s, sizeof(s) - 1
    const struct {
        const char *name;
        struct core_publish_req req;
        enum gw_err err;
    } cases[] = {
        {"empty channel", req_of(CH(""), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel with space", req_of(CH("a b"), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel with slash", req_of(CH("a/b"), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel with star", req_of(CH("a*"), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel non-ASCII", req_of(CH("caf\xc3\xa9"), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel with NUL", req_of(CH("a\0b"), NULL, 0, CH("x")), GW_E_CHANNEL},
        {"channel 65 bytes", req_of(long_channel, GW_CHANNEL_MAX + 1, NULL, 0, CH("x")),
         GW_E_CHANNEL},
        {"sender empty", req_of(CH("v"), "", 0, CH("x")), GW_E_FIELD},
        {"sender 129 bytes", req_of(CH("v"), long_sender, GW_SENDER_MAX + 1, CH("x")), GW_E_FIELD},
        {"sender with newline", req_of(CH("v"), CH("a\nb"), CH("x")), GW_E_FIELD},
        {"sender with tab", req_of(CH("v"), CH("a\tb"), CH("x")), GW_E_FIELD},
        {"sender with 0x01", req_of(CH("v"), CH("\x01"), CH("x")), GW_E_FIELD},
        {"sender with NUL", req_of(CH("v"), CH("a\0b"), CH("x")), GW_E_FIELD},
        {"sender with DEL", req_of(CH("v"), CH("a\x7f"), CH("x")), GW_E_FIELD},
        {"sender invalid UTF-8", req_of(CH("v"), CH("a\xff"), CH("x")), GW_E_UTF8},
        {"body invalid UTF-8", req_of(CH("v"), NULL, 0, CH("ok \xff")), GW_E_UTF8},
        {"body overlong", req_of(CH("v"), NULL, 0, CH("\xc0\x80")), GW_E_UTF8},
        {"body surrogate", req_of(CH("v"), NULL, 0, CH("\xed\xa0\x80")), GW_E_UTF8},
        {"body truncated sequence", req_of(CH("v"), NULL, 0, CH("\xe2\x82")), GW_E_UTF8},
        {"body over max", req_of(CH("v"), NULL, 0, big_body, MAX_BODY + 1), GW_E_TOO_LARGE},
    };
#undef CH
    struct slot slots[GW_ARRAY_SIZE(cases)];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char why[GW_ERRLEN] = "";
        enum gw_err err = publish(&rest, &cases[i].req, &slots[i], why);
        is_str(gw_err_code(err), gw_err_code(cases[i].err), "publish %s: %s", cases[i].name,
               gw_err_code(cases[i].err));
        ok(why[0] != '\0', "publish %s: why set (\"%s\")", cases[i].name, why);
        is_uint(core_pending(core), 0, "publish %s: nothing pending", cases[i].name);
    }
    int called = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        called += slots[i].calls;
    is_int(called, 0, "refused publishes never call back");
    is_int(completed, 0, "no callback ran at all");
    is_uint(channel_count(), 0, "refused publishes stored nothing");
    is_int(completed, 1, "...and only the channel listing answered since");
}

static void test_good_publish(void)
{
    char why[GW_ERRLEN];
    struct slot s;
    char channel[] = "news", sender[] = "ann", body[] = "hello";
    struct core_publish_req req = req_of(channel, 4, sender, 3, body, 5);
    int base = completed;
    uint64_t published = core_metrics(core)->published[GW_T_TCP];

    int64_t before = wall_ms();
    is_int(publish(&tcp, &req, &s, why), GW_OK, "good publish accepted");
    is_int(s.calls, 0, "good publish: no callback before the loop completes it");
    is_uint(core_pending(core), 1, "good publish: 1 pending");
    /* Every pointer in the request is borrowed for the call only. */
    memcpy(channel, "XXXX", 4);
    memcpy(sender, "YYY", 3);
    memcpy(body, "ZZZZZ", 5);

    ok(wait_stored("news", 1), "good publish: committed in the file");
    is_int(s.calls, 0, "good publish: committed, but no callback until the loop completes it");
    ok(settle(base + 1), "good publish: callback within the deadline");
    int64_t after = wall_ms();
    is_int(s.calls, 1, "good publish: callback ran once");
    is_int(s.err, GW_OK, "good publish: err GW_OK");
    ok(s.msg.id >= 1, "good publish: id %lld set", (long long)s.msg.id);
    is_int(s.msg.seq, 1, "good publish: seq 1 in a new channel");
    ok(s.msg.ts_ms >= before - 1000 && s.msg.ts_ms <= after + 1000,
       "good publish: ts %lld is the commit time", (long long)s.msg.ts_ms);
    is_int(s.msg.via, GW_T_TCP, "good publish: via is the caller's transport");
    is_str(s.msg.channel, "news", "good publish: channel (copied at publish)");
    is_mem(s.msg.sender, s.msg.sender_len, "ann", 3, "good publish: sender (copied at publish)");
    is_mem(s.msg.body, s.msg.body_len, "hello", 5, "good publish: body (copied at publish)");
    is_uint(core_pending(core), 0, "good publish: nothing pending after the callback");
    is_uint(core_metrics(core)->published[GW_T_TCP], published + 1,
            "good publish: counted as published via tcp");

    struct msg_rec m;
    is_int(message((uint64_t)s.msg.id, &m, why), GW_OK, "good publish: read by id accepted");
    is_int(m.err, GW_OK, "good publish: readable by id");
    is_mem(m.msg.body, m.msg.body_len, "hello", 5, "good publish: stored body");
    is_int(m.msg.via, GW_T_TCP, "good publish: stored via");
    is_int(s.calls, 1, "good publish: still exactly one callback later");
    gw_msg_release(&m.msg);
    slot_release(&s);
}

static void test_edge_publishes(void)
{
    static char ch64[GW_CHANNEL_MAX], s128[GW_SENDER_MAX], bmax[MAX_BODY];
    memset(ch64, 'k', sizeof(ch64));
    memset(s128, 's', sizeof(s128));
    memset(bmax, 'b', sizeof(bmax));
    const struct {
        const char *name;
        struct core_publish_req req;
        const char *sender;
        size_t sender_len;
    } cases[] = {
        {"sender NULL is anonymous", req_of("edge", 4, NULL, 0, "x", 1), "anonymous", 9},
        {"sender 128 bytes", req_of("edge", 4, s128, sizeof(s128), "x", 1), s128, sizeof(s128)},
        {"sender UTF-8", req_of("edge", 4, "\xc3\xa9t\xc3\xa9", 5, "x", 1), "\xc3\xa9t\xc3\xa9", 5},
        {"channel 64 bytes", req_of(ch64, sizeof(ch64), "a", 1, "x", 1), "a", 1},
        {"body exactly max", req_of("edge", 4, "a", 1, bmax, sizeof(bmax)), "a", 1},
        {"body empty", req_of("edge", 4, "a", 1, "", 0), "a", 1},
        {"body with NULs", req_of("edge", 4, "a", 1, "n\0u\0l", 5), "a", 1},
        {"body UTF-8", req_of("edge", 4, "a", 1, "\xf0\x9f\x98\x80", 4), "a", 1},
    };
    struct slot slots[GW_ARRAY_SIZE(cases)];
    int base = completed;
    char why[GW_ERRLEN];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        is_int(publish(&rest, &cases[i].req, &slots[i], why), GW_OK, "publish %s: accepted",
               cases[i].name);
    ok(settle(base + (int)GW_ARRAY_SIZE(cases)), "edge publishes all completed");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        is_int(slots[i].calls, 1, "publish %s: one callback", cases[i].name);
        is_int(slots[i].err, GW_OK, "publish %s: committed", cases[i].name);
        is_mem(slots[i].msg.sender, slots[i].msg.sender_len, cases[i].sender, cases[i].sender_len,
               "publish %s: sender", cases[i].name);
        is_mem(slots[i].msg.body, slots[i].msg.body_len, cases[i].req.body, cases[i].req.body_len,
               "publish %s: body", cases[i].name);
        is_mem(slots[i].msg.channel, strlen(slots[i].msg.channel), cases[i].req.channel,
               cases[i].req.channel_len, "publish %s: channel", cases[i].name);

        struct msg_rec m;
        message((uint64_t)slots[i].msg.id, &m, why);
        if (is_int(m.err, GW_OK, "publish %s: stored", cases[i].name)) {
            is_mem(m.msg.body, m.msg.body_len, cases[i].req.body, cases[i].req.body_len,
                   "publish %s: stored body", cases[i].name);
            is_mem(m.msg.sender, m.msg.sender_len, cases[i].sender, cases[i].sender_len,
                   "publish %s: stored sender", cases[i].name);
        }
        gw_msg_release(&m.msg);
        slot_release(&slots[i]);
    }
}

#define BURST 100

static void test_burst(void)
{
    static struct slot slots[BURST];
    char why[GW_ERRLEN], body[16];
    int base = completed, accepted = 0;

    for (int i = 0; i < BURST; i++) {
        int n = snprintf(body, sizeof(body), "m%d", i + 1);
        struct core_publish_req req = req_of("burst", 5, "b", 1, body, (size_t)n);
        accepted += publish(&rest, &req, &slots[i], why) == GW_OK;
    }
    is_int(accepted, BURST, "burst: %d publishes accepted", BURST);
    is_uint(core_pending(core), BURST, "burst: %d pending before any completion", BURST);
    ok(settle(base + BURST), "burst: all %d callbacks within the deadline", BURST);
    is_uint(core_pending(core), 0, "burst: nothing pending after");

    int once = 1, in_order = 1, seq_ok = 1, ids_up = 1, ts_up = 1, all_ok = 1, bodies = 1;
    for (int i = 0; i < BURST; i++) {
        char want[16];
        int n = snprintf(want, sizeof(want), "m%d", i + 1);
        once &= slots[i].calls == 1;
        in_order &= slots[i].order == base + i + 1;
        seq_ok &= slots[i].msg.seq == i + 1;
        all_ok &= slots[i].err == GW_OK;
        bodies &= slots[i].msg.body_len == (size_t)n && slots[i].msg.body &&
                  memcmp(slots[i].msg.body, want, (size_t)n) == 0;
        if (i > 0) {
            ids_up &= slots[i].msg.id > slots[i - 1].msg.id;
            ts_up &= slots[i].msg.ts_ms >= slots[i - 1].msg.ts_ms;
        }
    }
    ok(once, "burst: each callback ran exactly once");
    ok(all_ok, "burst: every publish committed");
    ok(in_order, "burst: callbacks ran in submit order");
    ok(seq_ok, "burst: seq 1..%d in submit order", BURST);
    ok(ids_up, "burst: ids increase in submit order");
    ok(ts_up, "burst: ts non-decreasing in submit order");
    ok(bodies, "burst: each callback got its own body");
    release_slots(slots, BURST);
}

/* ---- reads ---- */

static void test_history(void)
{
    char why[GW_ERRLEN];
    struct page_rec r;
    enum gw_err err;

    static const struct {
        uint64_t since, limit;
        size_t n;
        int64_t first_seq, next_since;
    } pages[] = {
        {0, 10, 10, 1, 10},   {10, 10, 10, 11, 20},   {95, 10, 5, 96, 100}, {99, 1000, 1, 100, 100},
        {100, 10, 0, 0, 100}, {0, 1000, 100, 1, 100}, {7, 0, 0, 0, 7},      {0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(pages); i++) {
        unsigned long long since = pages[i].since, limit = pages[i].limit;
        err = history(core, "burst", 5, pages[i].since, pages[i].limit, &r, why);
        is_int(err, GW_OK, "history since %llu limit %llu: accepted", since, limit);
        is_int(r.calls, 1, "history since %llu limit %llu: answered once", since, limit);
        is_int(r.err, GW_OK, "history since %llu limit %llu: ok", since, limit);
        is_uint(r.page.n, pages[i].n, "history since %llu limit %llu: %zu messages", since, limit,
                pages[i].n);
        is_int(r.page.next_since, pages[i].next_since,
               "history since %llu limit %llu: next_since %lld", since, limit,
               (long long)pages[i].next_since);
        is_int(r.page.top, BURST, "history since %llu limit %llu: top %d", since, limit, BURST);
        is_uint(r.page.ngaps, 0, "history since %llu limit %llu: no gaps", since, limit);
        if (r.page.n == pages[i].n && pages[i].n > 0)
            ok(r.page.msgs[0].seq == pages[i].first_seq &&
                   r.page.msgs[r.page.n - 1].seq == pages[i].next_since &&
                   strcmp(r.page.msgs[0].channel, "burst") == 0,
               "history since %llu limit %llu: seq %lld..%lld of burst", since, limit,
               (long long)pages[i].first_seq, (long long)pages[i].next_since);
        page_rec_release(&r);
    }

    /* A page cut at a byte count: at least one message, then as many as fit. */
    err = history_cut(core, "burst", 5, 0, 10, 1, &r, why);
    ok(err == GW_OK && r.err == GW_OK && r.page.n == 1 && r.page.msgs[0].seq == 1 && r.page.full,
       "history cut at 1 byte: the first message alone, the page full");
    size_t one = r.page.n ? gw_msg_wire_len(&r.page.msgs[0]) : 0;
    page_rec_release(&r);
    err = history_cut(core, "burst", 5, 0, 10, 3 * one + one / 2, &r, why);
    is_uint(r.page.n, 3, "history cut at 3.5 messages' bytes: 3 messages");
    page_rec_release(&r);

    /* Following next_since page by page visits every message once, in order. */
    uint64_t since = 0;
    int64_t expect = 1, next = -1;
    int pages_read = 0, good = 1;
    for (;;) {
        err = history(core, "burst", 5, since, 7, &r, why);
        if (err != GW_OK || r.err != GW_OK || r.page.n == 0 || ++pages_read > 100)
            break;
        for (size_t k = 0; k < r.page.n; k++)
            good &= r.page.msgs[k].seq == expect++;
        since = (uint64_t)r.page.next_since;
        page_rec_release(&r);
    }
    next = r.page.next_since;
    is_int(r.err, GW_OK, "paging with next_since: no error");
    page_rec_release(&r);
    ok(good && expect == BURST + 1, "paging with next_since: seq 1..%d each once", BURST);
    is_int(pages_read, (BURST + 6) / 7, "paging with next_since: %d pages of 7", (BURST + 6) / 7);
    is_int(next, BURST, "paging with next_since: ends at next_since %d", BURST);

    /* Parameters out of range: refused at once, and nothing follows. */
    static const struct {
        const char *name;
        const char *channel;
        size_t channel_len;
        uint64_t since, limit;
        enum gw_err err;
    } bad[] = {
        {"limit 1001", "burst", 5, 0, GW_LIMIT_MAX + 1, GW_E_PARAM},
        {"limit 2^64-1", "burst", 5, 0, UINT64_MAX, GW_E_PARAM},
        {"since above INT64_MAX", "burst", 5, (uint64_t)INT64_MAX + 1, 10, GW_E_PARAM},
        {"bad channel", "a/b", 3, 0, 10, GW_E_CHANNEL},
        {"empty channel", "", 0, 0, 10, GW_E_CHANNEL},
        {"channel too long", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
         65, 0, 10, GW_E_CHANNEL},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        err =
            history(core, bad[i].channel, bad[i].channel_len, bad[i].since, bad[i].limit, &r, why);
        is_str(gw_err_code(err), gw_err_code(bad[i].err), "history %s: %s", bad[i].name,
               gw_err_code(bad[i].err));
        ok(why[0] != '\0', "history %s: why set", bad[i].name);
        ok(r.calls == 0 && core_pending(core) == 0, "history %s: nothing queued, no callback",
           bad[i].name);
    }

    err = history(core, "burst", 5, 0, GW_LIMIT_MAX, &r, why);
    ok(err == GW_OK && r.err == GW_OK, "history limit %d (the maximum) is allowed", GW_LIMIT_MAX);
    page_rec_release(&r);

    /* The channel is (ptr, len): bytes after len are not part of the name. */
    err = history(core, "burst/extra", 5, 0, 3, &r, why);
    ok(err == GW_OK && r.err == GW_OK, "history with channel_len shorter than the string");
    is_uint(r.page.n, 3, "history with channel_len: reads channel 'burst'");
    page_rec_release(&r);
}

/*
 * The cursor rule, the same for history and subscriptions (a subscription's
 * side is in test_sub_errors): since up to the channel's last seq is fine,
 * beyond it is invalid_cursor, said through the callback.
 */
static void test_history_cursor(void)
{
    char why[GW_ERRLEN];
    struct page_rec r;

    history(core, "burst", 5, BURST, 10, &r, why);
    ok(r.err == GW_OK && r.page.n == 0 && r.page.next_since == BURST,
       "history since the top: an empty page, next_since the top");
    page_rec_release(&r);

    enum gw_err err = history(core, "burst", 5, BURST + 1, 10, &r, why);
    is_int(err, GW_OK, "history since top + 1: accepted (the top is the store's to say)");
    is_str(gw_err_code(r.err), gw_err_code(GW_E_CURSOR), "history since top + 1: invalid_cursor");
    ok(strstr(r.why, "beyond") != NULL, "history invalid_cursor: why says so (\"%s\")", r.why);
    /* The top comes with it, so that a front can word it for its own cursor. */
    ok(r.has_page && r.page.n == 0 && r.page.top == BURST,
       "history invalid_cursor: a page of no messages with the top (%lld)", (long long)r.page.top);
    page_rec_release(&r);
    history(core, "burst", 5, (uint64_t)INT64_MAX, 10, &r, why);
    is_str(gw_err_code(r.err), gw_err_code(GW_E_CURSOR), "history since INT64_MAX: invalid_cursor");
    page_rec_release(&r);

    history(core, "unknown", 7, 0, 10, &r, why);
    ok(r.err == GW_OK && r.page.n == 0 && r.page.top == 0 && r.page.next_since == 0,
       "history since 0 of an unknown channel: an empty page");
    page_rec_release(&r);
    history(core, "unknown", 7, 3, 10, &r, why);
    is_str(gw_err_code(r.err), gw_err_code(GW_E_CURSOR),
           "history since 3 of an unknown channel: invalid_cursor");
    ok(r.has_page && r.page.top == 0, "history since 3 of an unknown channel: the top, 0");
    page_rec_release(&r);
}

static void test_message(void)
{
    char why[GW_ERRLEN];
    struct msg_rec m;
    enum gw_err err;

    static const uint64_t bad[] = {0, (uint64_t)INT64_MAX + 1, UINT64_MAX};
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        err = message(bad[i], &m, why);
        is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "message id %llu: GW_E_PARAM at once",
               (unsigned long long)bad[i]);
        ok(why[0] != '\0' && m.calls == 0 && core_pending(core) == 0,
           "message id %llu: why set, nothing queued", (unsigned long long)bad[i]);
    }
    err = message((uint64_t)INT64_MAX, &m, why);
    is_int(err, GW_OK, "message id INT64_MAX: accepted");
    is_str(gw_err_code(m.err), gw_err_code(GW_E_NOT_FOUND), "message id INT64_MAX: not_found");
    ok(m.why[0] != '\0', "message not found: why set");

    struct page_rec r;
    history(core, "burst", 5, 41, 1, &r, why);
    if (r.err == GW_OK && r.page.n == 1) {
        message((uint64_t)r.page.msgs[0].id, &m, why);
        is_int(m.err, GW_OK, "message by the id history gave");
        is_int(m.msg.seq, 42, "message: seq 42");
        is_str(m.msg.channel, "burst", "message: channel");
        is_mem(m.msg.body, m.msg.body_len, "m42", 3, "message: body");
        is_int(m.msg.ts_ms, r.page.msgs[0].ts_ms, "message: ts as in history");
        gw_msg_release(&m.msg);
    } else {
        ok(0, "history of burst at 42 for the message test");
    }
    page_rec_release(&r);
}

static void test_channels(void)
{
    struct chans_rec r;

    is_int(channels(&r), GW_OK, "channels accepted");
    is_int(r.err, GW_OK, "channels answered");
    /* burst, edge, kkk...(64), news: sorted by name. */
    if (is_uint(r.n, 4, "channels: 4")) {
        is_str(r.chans[0].name, "burst", "channels[0] burst");
        is_int(r.chans[0].messages, BURST, "channels[0] has %d messages", BURST);
        is_int(r.chans[0].last_seq, BURST, "channels[0] last_seq %d", BURST);
        is_str(r.chans[1].name, "edge", "channels[1] edge");
        is_int(r.chans[1].messages, 7, "channels[1] has 7 messages");
        is_uint(strlen(r.chans[2].name), GW_CHANNEL_MAX, "channels[2] is the 64-byte name");
        is_str(r.chans[3].name, "news", "channels[3] news");
    }
    ok(!r.has_next, "channels: a page not full says no next_after");
    free(r.chans);

    /* Pages: a full one names its last channel, the next starts after it. */
    char why[GW_ERRLEN];
    is_int(channels_page(&r, "", 2, why), GW_OK, "channels limit 2 accepted");
    ok(r.err == GW_OK && r.n == 2 && r.has_next && strcmp(r.next_after, "edge") == 0,
       "limit 2: burst, edge, next_after edge");
    free(r.chans);
    is_int(channels_page(&r, "edge", 2, why), GW_OK, "channels after edge accepted");
    ok(r.err == GW_OK && r.n == 2 && r.chans[0].name[0] == 'k' &&
           strcmp(r.chans[1].name, "news") == 0 && r.has_next && strcmp(r.next_after, "news") == 0,
       "after edge: the 64-byte name and news, full: next_after news");
    free(r.chans);
    is_int(channels_page(&r, "news", 2, why), GW_OK, "channels after news accepted");
    ok(r.err == GW_OK && r.n == 0 && !r.has_next, "after news: an empty last page");
    free(r.chans);
    is_int(channels_page(&r, "c", 1000, why), GW_OK, "channels after c (no such channel)");
    ok(r.err == GW_OK && r.n == 3 && strcmp(r.chans[0].name, "edge") == 0 && !r.has_next,
       "after c: the 3 after it, no next_after");
    free(r.chans);

    /* Refusals: nothing is read, nothing answered later. */
    static const struct {
        const char *after;
        uint64_t limit;
        enum gw_err err;
    } bad[] = {
        {"", 0, GW_E_PARAM},           {"", GW_CHANNELS_LIMIT_MAX + 1, GW_E_PARAM},
        {"a", UINT64_MAX, GW_E_PARAM}, {"bad!name", 10, GW_E_CHANNEL},
        {"a b", 10, GW_E_CHANNEL},     {"\xc3\xa9", 10, GW_E_CHANNEL},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        memset(&r, 0, sizeof(r));
        why[0] = '\0';
        enum gw_err err = core_channels(core, &rest, bad[i].after, strlen(bad[i].after),
                                        bad[i].limit, on_channels, &r, why);
        is_str(gw_err_code(err), gw_err_code(bad[i].err), "channels after '%s' limit %llu: %s",
               bad[i].after, (unsigned long long)bad[i].limit, gw_err_code(bad[i].err));
        ok(why[0] && r.calls == 0, "  with a reason (%s), no callback", why);
    }
    char longname[GW_CHANNEL_MAX + 2];
    memset(longname, 'k', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    is_int(core_channels(core, &rest, longname, strlen(longname), 10, on_channels, &r, why),
           GW_E_CHANNEL, "channels after a name of 65 bytes: GW_E_CHANNEL");
    is_int(core_channels(core, &rest, "a\0b", 3, 10, on_channels, &r, why), GW_E_CHANNEL,
           "channels after a name with a NUL: GW_E_CHANNEL");
    is_int(core_schema_version(), store_schema_version(), "core_schema_version is the store's");
}

/*
 * Pages are bounded in bytes of their JSON form too (a second core over the
 * same threads, with a small page_bytes), hold at least one message, and
 * following next_since still visits every message once.
 */
static void test_history_bytes(void)
{
    char why[GW_ERRLEN];
    struct page_rec r;
    size_t three = wire_of("burst", 0, 3);
    struct core_options o = {.max_body = MAX_BODY, .page_bytes = three};
    struct core *small = core_new(reader, writer, &o);

    history(small, "burst", 5, 0, 1000, &r, why);
    is_uint(r.page.n, 3, "page_bytes = the size of 3 messages: a page of 3");
    is_int(r.page.next_since, 3, "a page cut by bytes: next_since after its last message");
    ok(r.page.full, "a page cut by bytes says more may follow");
    page_rec_release(&r);

    uint64_t since = 0;
    int64_t expect = 1;
    int pages_read = 0, good = 1, bounded = 1, filled = 1;
    for (;;) {
        history(small, "burst", 5, since, 1000, &r, why);
        if (r.err != GW_OK || r.page.n == 0 || ++pages_read > 200)
            break;
        size_t bytes = 0;
        for (size_t k = 0; k < r.page.n; k++) {
            good &= r.page.msgs[k].seq == expect++;
            bytes += gw_msg_wire_len(&r.page.msgs[k]);
        }
        bounded &= bytes <= three;
        /* Three fit in the first page; ids and seqs grow by a digit at most, so two always do. */
        filled &= r.page.n >= 2 || !r.page.full;
        since = (uint64_t)r.page.next_since;
        page_rec_release(&r);
    }
    page_rec_release(&r);
    ok(good && expect == BURST + 1, "byte-bounded pages: seq 1..%d each once, in order", BURST);
    ok(bounded, "byte-bounded pages: none holds more than page_bytes of JSON");
    ok(filled, "byte-bounded pages: only the last one holds less than two");

    /* A message bigger than a page is a page of its own. */
    static char big[MAX_BODY];
    struct slot s;
    memset(big, 'x', sizeof(big));
    struct core_publish_req req = req_of("big", 3, NULL, 0, big, sizeof(big));
    int base = completed;
    publish(&rest, &req, &s, why);
    publish(&rest, &req, &s, why);
    settle(base + 2);
    slot_release(&s);
    history(small, "big", 3, 0, 1000, &r, why);
    ok(r.err == GW_OK && r.page.n == 1 && gw_msg_wire_len(&r.page.msgs[0]) > three,
       "a message over page_bytes: a page of one message");
    is_int(r.page.next_since, 1, "a page of one big message: next_since 1");
    page_rec_release(&r);

    /* Escaped bytes count as sent: a body of control characters takes 6 bytes each. */
    static char ctl[200];
    memset(ctl, 0x01, sizeof(ctl));
    req = req_of("esc", 3, NULL, 0, ctl, sizeof(ctl));
    base = completed;
    for (int i = 0; i < 3; i++)
        publish(&rest, &req, &s, why);
    settle(base + 3);
    slot_release(&s);
    size_t esc = wire_of("esc", 0, 1);
    ok(esc > 6 * sizeof(ctl), "a control character counts as its escaped form (%zu bytes)", esc);
    core_free(small);
    o.page_bytes = 2 * esc;
    small = core_new(reader, writer, &o);
    history(small, "esc", 3, 0, 1000, &r, why);
    is_uint(r.page.n, 2, "page_bytes of two escaped messages: a page of two, not of three");
    page_rec_release(&r);
    core_free(small);
}

/* Reads are answered through their callbacks only, once the loop completes them, in order. */
static void test_read_order(void)
{
    char why[GW_ERRLEN];
    struct page_rec a, b;
    struct msg_rec m;
    struct chans_rec c;
    int base = completed;

    drain_reads_run();
    memset(&a, 0, sizeof(a));
    memset(&b, 0, sizeof(b));
    memset(&m, 0, sizeof(m));
    memset(&c, 0, sizeof(c));
    ok(core_history(core, &rest, "burst", 5, 0, 1, 0, on_page, &a, why) == GW_OK &&
           core_message(core, &rest, 1, on_message, &m, why) == GW_OK &&
           core_channels(core, &rest, NULL, 0, 10, on_channels, &c, why) == GW_OK &&
           core_history(core, &rest, "burst", 5, 50, 1, 0, on_page, &b, why) == GW_OK,
       "four reads accepted");
    is_uint(core_pending(core), 4, "four reads pending");
    ok(wait_reads_run(4), "the reader thread has run the four");
    ok(a.calls + m.calls + c.calls + b.calls == 0,
       "done on the reader thread, but nothing answered before the loop completes them");
    ok(run_until(reads_idle, NULL, RD), "the loop completes the four");
    ok(a.calls == 1 && m.calls == 1 && c.calls == 1 && b.calls == 1, "each answered once");
    ok(a.order == base + 1 && m.order == base + 2 && c.order == base + 3 && b.order == base + 4,
       "answered in the order asked");
    ok(a.err == GW_OK && a.page.n == 1 && a.page.msgs[0].seq == 1, "the first page: seq 1");
    ok(b.err == GW_OK && b.page.n == 1 && b.page.msgs[0].seq == 51, "the second page: seq 51");
    page_rec_release(&a);
    page_rec_release(&b);
    gw_msg_release(&m.msg);
    free(c.chans);
}

/* A store failure reaches the callback, once, and does not sink the others. */
static void test_store_failure(void)
{
    char why[GW_ERRLEN];

    if (sql_exec(path, "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.body = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'boom trigger'); END;"
                       "CREATE TRIGGER gate BEFORE INSERT ON messages WHEN NEW.body = 'blocker' "
                       "BEGIN SELECT test_gate(); END;") != 0) {
        skip("store failure: cannot install the triggers");
        return;
    }

    /*
     * ok1, boom and ok2 must go into one transaction: they are queued while
     * the writer is provably inside the blocker's (test_gate() has been
     * called), so its next batch takes the three.
     */
    static const char *const bodies[] = {"blocker", "ok1", "boom", "ok2"};
    struct slot slots[4];
    struct metrics_commits before, after;
    int base = completed;

    core_commit_stats(core, &before);
    for (size_t i = 0; i < 4; i++) {
        struct core_publish_req req = req_of("fail", 4, NULL, 0, bodies[i], strlen(bodies[i]));
        is_int(publish(&rest, &req, &slots[i], why), GW_OK, "store failure: publish %s accepted",
               bodies[i]);
        if (i == 0)
            ok(sem_wait_ms(&gate_entered, DEADLINE_MS),
               "store failure: the writer is inside the blocker's transaction");
    }
    is_uint(core_pending(core), 4, "store failure: four pending");
    sem_post(&gate_open);
    ok(settle(base + 4), "store failure: four callbacks");
    for (size_t i = 0; i < 4; i++) {
        is_int(slots[i].calls, 1, "store failure: %s called back once", bodies[i]);
        is_int(slots[i].order, base + (int)i + 1, "store failure: %s in submit order", bodies[i]);
    }
    is_int(slots[0].err, GW_OK, "store failure: the blocker commits");
    is_int(slots[0].msg.seq, 1, "store failure: blocker seq 1");
    struct slot *ok1 = &slots[1], *boom = &slots[2], *ok2 = &slots[3];
    is_str(gw_err_code(boom->err), gw_err_code(GW_E_STORE), "store failure: boom gets GW_E_STORE");
    ok(strstr(boom->why, "boom trigger") != NULL, "store failure: why has the reason (\"%s\")",
       boom->why);
    is_int(ok1->err, GW_OK, "store failure: ok1 in the same batch, before it, still commits");
    is_int(ok2->err, GW_OK, "store failure: ok2 in the same batch, after it, still commits");
    is_int(ok1->msg.seq, 2, "store failure: ok1 seq 2");
    is_int(ok2->msg.seq, 3, "store failure: ok2 seq 3 (no gap for the failed one)");
    core_commit_stats(core, &after);
    is_uint(after.commits - before.commits, 3,
            "store failure: the blocker's transaction, then ok1 and ok2 each alone");
    is_uint(after.messages - before.messages, 3, "store failure: three messages committed");
    release_slots(slots, 4);
    sql_exec(path, "DROP TRIGGER boom; DROP TRIGGER gate;");
    is_uint(core_pending(core), 0, "store failure: nothing pending");
}

/* ---- subscriptions ---- */

#define MAX_EV 512

struct ev {
    char kind; /* 'm' a message (a = seq), 'g' a gap (a..b) */
    bool live;
    int page; /* the read it came in (seen.page when it was delivered) */
    int64_t a, b;
    size_t wire;
};

/* A recording subscriber: what one subscription was handed, in order. */
struct seen {
    const char *channel;
    int ready_calls, ready_order;
    enum gw_err ready_err;
    char why[GW_ERRLEN];
    int64_t since, top;
    int wakes, failed_calls;
    enum gw_err failed_err;
    int n;
    struct ev ev[MAX_EV];
    int page;
    size_t budget[64]; /* the byte budget of each read */
    bool channel_ok, bodies_ok, ready_first;
    bool ended;     /* the test ended the subscription */
    int after_end;  /* callbacks after that */
    int cache_hits; /* deliveries that found another subscriber's encoding */
};

static int cache_made, cache_released;

static void cache_release(void *p)
{
    cache_released++;
    free(p);
}

static void seen_init(struct seen *s, const char *channel)
{
    memset(s, 0, sizeof(*s));
    s->channel = channel;
    s->channel_ok = s->bodies_ok = s->ready_first = true;
}

static void seen_note(struct seen *s, bool is_ready)
{
    if (s->ended)
        s->after_end++;
    if (!is_ready && s->ready_calls == 0)
        s->ready_first = false;
}

static void on_ready(void *ctx, enum gw_err err, const char *why, int64_t since, int64_t top)
{
    struct seen *s = ctx;

    seen_note(s, true);
    completed++;
    if (s->ready_calls++)
        return;
    s->ready_order = completed;
    s->ready_err = err;
    snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
    s->since = since;
    s->top = top;
}

static void on_deliver(void *ctx, struct core_delivery *d)
{
    struct seen *s = ctx;
    const struct gw_msg *m = d->m;
    char want[32];
    int n = snprintf(want, sizeof(want), "b%lld", (long long)m->seq);

    seen_note(s, false);
    if (s->n < MAX_EV)
        s->ev[s->n] = (struct ev){
            .kind = 'm', .live = d->live, .page = s->page, .a = m->seq, .wire = gw_msg_wire_len(m)};
    s->n++;
    if (strcmp(m->channel, s->channel) != 0)
        s->channel_ok = false;
    if (m->body_len != (size_t)n || memcmp(m->body, want, (size_t)n) != 0)
        s->bodies_ok = false;
    /* The fronts' encode-once cache: the first subscriber of a fan-out fills it. */
    if (d->cache[0].p) {
        s->cache_hits++;
    } else {
        d->cache[0].p = gw_xmalloc(1);
        d->cache[0].release = cache_release;
        cache_made++;
    }
}

static void on_gap(void *ctx, const char *channel, int64_t from, int64_t to)
{
    struct seen *s = ctx;

    seen_note(s, false);
    if (s->n < MAX_EV)
        s->ev[s->n] = (struct ev){.kind = 'g', .page = s->page, .a = from, .b = to};
    s->n++;
    if (strcmp(channel, s->channel) != 0)
        s->channel_ok = false;
}

static void on_wake(void *ctx)
{
    struct seen *s = ctx;
    seen_note(s, false);
    s->wakes++;
}

static void on_failed(void *ctx, enum gw_err err, const char *why)
{
    struct seen *s = ctx;
    seen_note(s, false);
    s->failed_calls++;
    s->failed_err = err;
    snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
}

static const struct core_sub_ops ops = {
    .ready = on_ready,
    .deliver = on_deliver,
    .gap = on_gap,
    .wake = on_wake,
    .failed = on_failed,
};

/* The events as "1,2,[3-4],5,[7]": messages by seq, gaps in brackets. */
static const char *seen_str(const struct seen *s)
{
    static char buf[4096];
    size_t n = 0;

    buf[0] = '\0';
    for (int i = 0; i < s->n && i < MAX_EV && n < sizeof(buf) - 48; i++) {
        const struct ev *e = &s->ev[i];
        if (e->kind == 'm')
            n +=
                (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%lld", i ? "," : "", (long long)e->a);
        else if (e->a == e->b)
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s[%lld]", i ? "," : "",
                                  (long long)e->a);
        else
            n += (size_t)snprintf(buf + n, sizeof(buf) - n, "%s[%lld-%lld]", i ? "," : "",
                                  (long long)e->a, (long long)e->b);
    }
    return buf;
}

/* "from,from+1,...,to" (empty when to < from). */
static const char *range_str(int64_t from, int64_t to)
{
    static char buf[4096];
    size_t n = 0;

    buf[0] = '\0';
    for (int64_t i = from; i <= to && n < sizeof(buf) - 24; i++)
        n +=
            (size_t)snprintf(buf + n, sizeof(buf) - n, "%s%lld", i > from ? "," : "", (long long)i);
    return buf;
}

/* Whether s was handed exactly want, ready first, nothing after its end, right channel and bodies.
 */
static int seen_is(const struct seen *s, const char *want)
{
    const char *got = seen_str(s);
    int good = strcmp(got, want) == 0 && s->channel_ok && s->bodies_ok && s->ready_first &&
               s->after_end == 0 && s->n <= MAX_EV;

    if (!good)
        diag("handed [%s]\n  want [%s]\n  channel_ok %d bodies_ok %d ready first %d after end %d",
             got, want, s->channel_ok, s->bodies_ok, s->ready_first, s->after_end);
    return good;
}

static int seen_exactly(const struct seen *s, int64_t from, int64_t to)
{
    char want[4096];
    snprintf(want, sizeof(want), "%s", range_str(from, to));
    return seen_is(s, want);
}

/* Starts a read of s's with this byte budget: what it delivers is counted as one page. */
static void page_start(struct seen *s, size_t budget)
{
    s->page++;
    if (s->page < (int)GW_ARRAY_SIZE(s->budget))
        s->budget[s->page] = budget;
}

/*
 * Whether every page of replay (messages read from the store, grouped by the
 * read they came in) holds at most its budget of JSON, or one message; with
 * strict, also that it could not have taken the message after it (no
 * commits landed between the pages). *multi: some page held more than one.
 */
static int pages_bounded(const struct seen *s, bool strict, int *multi)
{
    int good = 1;

    *multi = 0;
    for (int i = 0; i < s->n && i < MAX_EV;) {
        const struct ev *e = &s->ev[i];
        if (e->kind != 'm' || e->live) {
            i++;
            continue;
        }
        int page = e->page, j = i, last = i;
        size_t sum = 0, k = 0, budget = s->budget[page];
        for (; j < s->n && j < MAX_EV && s->ev[j].page == page; j++) {
            if (s->ev[j].kind == 'm' && !s->ev[j].live) {
                sum += s->ev[j].wire;
                k++;
                last = j;
            }
        }
        if (k > 1)
            *multi = 1;
        if (k > 1 && sum > budget) {
            diag("page %d: %zu messages, %zu bytes, over its budget of %zu", page, k, sum, budget);
            good = 0;
        }
        if (strict && j < s->n && j < MAX_EV && s->ev[j].kind == 'm' && !s->ev[j].live &&
            s->ev[j].a == s->ev[last].a + 1 && sum + s->ev[j].wire <= budget) {
            diag("page %d: %zu bytes; the next message (%zu bytes) fitted in %zu", page, sum,
                 s->ev[j].wire, budget);
            good = 0;
        }
        i = j;
    }
    return good;
}

/* The test's idea of the next seq of a channel, for the bodies "b<seq>". */
static int64_t next_seq_of[32];
static const char *next_seq_channel[32];

static int64_t *seq_counter(const char *channel)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(next_seq_channel); i++) {
        if (!next_seq_channel[i]) {
            next_seq_channel[i] = channel;
            next_seq_of[i] = 1;
        }
        if (strcmp(next_seq_channel[i], channel) == 0)
            return &next_seq_of[i];
    }
    bail_out("too many channels in the subscription tests");
}

/* Queues n publishes on channel, bodies "b<seq>", without completing them; returns how many. */
static int submit(const char *channel, int n, struct slot *slots)
{
    int64_t *next = seq_counter(channel);
    char why[GW_ERRLEN], body[32];
    int accepted = 0;

    for (int i = 0; i < n; i++) {
        int len = snprintf(body, sizeof(body), "b%lld", (long long)(*next)++);
        struct core_publish_req req = req_of(channel, strlen(channel), NULL, 0, body, (size_t)len);
        accepted += publish(&rest, &req, &slots[i], why) == GW_OK;
    }
    return accepted;
}

/* Publishes n on channel and plays the loop until they are all complete. */
static int publish_n(const char *channel, int n)
{
    static struct slot slots[128];
    int target = completed + n;

    if (n > (int)GW_ARRAY_SIZE(slots))
        bail_out("publish_n: %d is too many", n);
    int accepted = submit(channel, n, slots);
    int done = settle(target);
    int good = accepted == n && done;
    for (int i = 0; i < n; i++)
        good &= slots[i].err == GW_OK;
    release_slots(slots, n);
    return good;
}

static int ready_seen(const void *s)
{
    return ((const struct seen *)s)->ready_calls > 0;
}

/* Subscribes s (seen_init first), playing nothing: its first read is under way. */
static enum gw_err sub_start(const char *channel, bool has_since, uint64_t since, size_t budget,
                             struct seen *s, struct core_sub **out, char *why)
{
    *out = NULL;
    why[0] = '\0';
    page_start(s, budget);
    enum gw_err err = core_subscribe(core, &tcp, channel, strlen(channel), has_since, since, &ops,
                                     s, budget, out, why);
    if (s->ready_calls)
        early_callbacks++;
    return err;
}

/*
 * Subscribes s (seen_init first) and, when accepted, plays the sides in which
 * until it is ready; budget is the room for the first page.
 */
static enum gw_err sub_on(const char *channel, bool has_since, uint64_t since, size_t budget,
                          struct seen *s, struct core_sub **out, unsigned which, char *why)
{
    enum gw_err err = sub_start(channel, has_since, since, budget, s, out, why);

    if (err == GW_OK && !run_until(ready_seen, s, which))
        diag("subscription to %s: not ready within %d ms", channel, DEADLINE_MS);
    return err;
}

static enum gw_err sub(const char *channel, bool has_since, uint64_t since, size_t budget,
                       struct seen *s, struct core_sub **out, char *why)
{
    return sub_on(channel, has_since, since, budget, s, out, WR | RD, why);
}

static void unsub(struct core_sub *cs, struct seen *s)
{
    core_unsubscribe(core, cs);
    s->ended = true;
}

/* One pump of max_bytes, played until the reader is idle (completing the sides in which). */
static void pump_on(struct core_sub *cs, struct seen *s, size_t max_bytes, unsigned which)
{
    page_start(s, max_bytes);
    core_sub_pump(core, cs, max_bytes);
    run_until(reads_idle, NULL, which);
}

/* Pumps until live (at most 200 pages); returns how many pumps it took. */
static int catch_up_on(struct core_sub *cs, struct seen *s, size_t max_bytes, unsigned which)
{
    int pumps = 0;

    while (!core_sub_live(cs) && pumps < 200 && s->failed_calls == 0) {
        pump_on(cs, s, max_bytes, which);
        pumps++;
    }
    return pumps;
}

static int catch_up(struct core_sub *cs, struct seen *s, size_t max_bytes)
{
    return catch_up_on(cs, s, max_bytes, WR | RD);
}

static void test_sub_from_now(void)
{
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-now", 3), "sub from now: 3 stored before");
    seen_init(&s, "s-now");
    is_int(sub("s-now", false, 0, SIZE_MAX, &s, &cs, why), GW_OK, "sub from now: accepted");
    is_int(s.ready_calls, 1, "sub from now: ready once");
    is_int(s.ready_err, GW_OK, "sub from now: ready with GW_OK");
    is_int(s.since, 3, "sub from now: since is the top, 3");
    is_int(s.top, 3, "sub from now: top 3");
    is_int(core_sub_cursor(cs), 3, "sub from now: cursor 3");
    ok(cs && core_sub_live(cs), "sub from now: live at once");
    is_uint(core_subscribed_channels(core), base + 1, "sub from now: the channel is in the hub");
    core_sub_pump(core, cs, SIZE_MAX);
    is_uint(core_pending(core), 0, "sub from now: a pump on a live one reads nothing");
    is_int(s.n, 0, "sub from now: no replay");

    ok(publish_n("s-now", 2), "sub from now: 2 more published");
    ok(seen_exactly(&s, 4, 5), "sub from now: 4, 5 delivered live, once each");
    ok(s.ev[0].live && s.ev[1].live, "sub from now: delivered as live commits");
    is_int(core_sub_cursor(cs), 5, "sub from now: cursor 5");
    is_uint(core_pending(core), 0, "sub from now: nothing pending, so nothing more can come");

    /* Other channels' commits are not delivered. */
    ok(publish_n("s-other", 2), "sub from now: 2 published on another channel");
    is_int(s.n, 2, "sub from now: another channel's messages are not delivered");

    unsub(cs, &s);
    is_uint(core_subscribed_channels(core), base, "unsubscribe: the channel leaves the hub");
    ok(publish_n("s-now", 2), "after unsubscribe: 2 more published");
    is_int(s.n, 2, "after unsubscribe: nothing delivered");
    core_unsubscribe(core, NULL);
    ok(1, "core_unsubscribe(NULL) is a no-op");
}

static void test_sub_replay(void)
{
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN];
    int multi;

    ok(publish_n("s-replay", 10), "replay: 10 stored");
    size_t three = wire_of("s-replay", 3, 3);
    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 3, three, &s, &cs, why), GW_OK, "replay: sub since 3");
    is_int(s.since, 3, "replay: ready with since 3");
    is_int(s.top, 10, "replay: ready with top 10");
    ok(seen_exactly(&s, 4, 6), "replay: the first page, in the room given: 4..6");
    ok(!s.ev[0].live, "replay: a page from the store is not live");
    ok(cs && !core_sub_live(cs), "replay: catching up, not live");
    is_int(s.wakes, 1, "replay: woken to pump the rest");
    is_int(core_sub_cursor(cs), 6, "replay: cursor 6");

    pump_on(cs, &s, wire_of("s-replay", 6, 3), WR | RD);
    ok(seen_exactly(&s, 4, 9), "replay: second page 7..9");
    ok(!core_sub_live(cs), "replay: not live with 10 left");
    pump_on(cs, &s, SIZE_MAX, WR | RD);
    ok(seen_exactly(&s, 4, 10), "replay: last page is 10 alone");
    ok(core_sub_live(cs), "replay: live once at the top");
    ok(pages_bounded(&s, true, &multi) && multi, "replay: each page as big as its budget allows");
    core_sub_pump(core, cs, SIZE_MAX);
    is_uint(core_pending(core), 0, "replay: a pump when live reads nothing");

    ok(publish_n("s-replay", 1), "replay: one more published");
    ok(seen_exactly(&s, 4, 11), "replay: 11 delivered live");
    ok(s.ev[s.n - 1].live, "replay: and marked live");
    unsub(cs, &s);

    /* since 0: everything; since == top: live at once. */
    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 0, SIZE_MAX, &s, &cs, why), GW_OK, "replay: sub since 0");
    ok(s.since == 0 && s.top == 11, "replay since 0: since 0, top 11");
    ok(seen_exactly(&s, 1, 11) && core_sub_live(cs), "replay since 0: 1..11 in one page, live");
    unsub(cs, &s);

    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 11, SIZE_MAX, &s, &cs, why), GW_OK, "replay: sub since top");
    ok(core_sub_live(cs) && s.n == 0 && s.wakes == 0, "replay since top: live at once, no replay");
    unsub(cs, &s);

    /* A channel with no messages: since 0 is fine. */
    seen_init(&s, "s-empty");
    is_int(sub("s-empty", true, 0, SIZE_MAX, &s, &cs, why), GW_OK,
           "empty channel: since 0 is fine");
    ok(s.ready_err == GW_OK && s.since == 0 && s.top == 0 && core_sub_live(cs),
       "empty channel: since 0, top 0, live");
    ok(publish_n("s-empty", 1), "empty channel: first message");
    ok(seen_exactly(&s, 1, 1), "empty channel: its first message delivered");
    unsub(cs, &s);
}

static void test_sub_errors(void)
{
    struct core_sub *cs, *keep;
    struct seen s, k;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);
    enum gw_err err;

    ok(publish_n("s-cur", 4), "cursor: 4 stored");
    seen_init(&s, "s-cur");
    err = sub("s-cur", true, 5, SIZE_MAX, &s, &cs, why);
    is_int(err, GW_OK, "since 5 beyond top 4: accepted (the top is the store's to say)");
    is_str(gw_err_code(s.ready_err), gw_err_code(GW_E_CURSOR),
           "since 5 beyond top 4: ready says invalid_cursor");
    ok(strstr(s.why, "beyond") != NULL, "invalid_cursor: why says so (\"%s\")", s.why);
    ok(s.ready_calls == 1 && s.n == 0 && s.wakes == 0, "invalid_cursor: nothing else follows");
    is_uint(core_subscribed_channels(core), base, "invalid_cursor: the channel is not left in hub");
    seen_init(&s, "s-cur");
    sub("s-cur", true, (uint64_t)INT64_MAX, SIZE_MAX, &s, &cs, why);
    is_str(gw_err_code(s.ready_err), gw_err_code(GW_E_CURSOR), "since INT64_MAX: invalid_cursor");
    seen_init(&s, "s-never");
    sub("s-never", true, 1, SIZE_MAX, &s, &cs, why);
    is_str(gw_err_code(s.ready_err), gw_err_code(GW_E_CURSOR), "since 1 on an empty channel");
    is_uint(core_subscribed_channels(core), base, "still nothing in the hub");

    seen_init(&s, "s-cur");
    err = sub("s-cur", true, UINT64_MAX, SIZE_MAX, &s, &cs, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "since 2^64-1: invalid_parameter at once");
    ok(why[0] != '\0' && cs == NULL && s.ready_calls == 0 && core_pending(core) == 0,
       "since 2^64-1: why set, no subscription, nothing queued");

    /* With a subscription on the channel already, a bad cursor leaves it alone. */
    seen_init(&k, "s-cur");
    is_int(sub("s-cur", false, 0, SIZE_MAX, &k, &keep, why), GW_OK, "cursor: one live sub");
    seen_init(&s, "s-cur");
    sub("s-cur", true, 9, SIZE_MAX, &s, &cs, why);
    is_str(gw_err_code(s.ready_err), gw_err_code(GW_E_CURSOR),
           "since 9 with a live sub: invalid_cursor");
    is_uint(core_subscribed_channels(core), base + 1, "the live sub's channel stays");
    ok(publish_n("s-cur", 1), "cursor: one more published");
    ok(seen_exactly(&k, 5, 5), "the live sub still gets 5");
    is_int(s.n, 0, "the refused one gets nothing");
    unsub(keep, &k);

    static const struct {
        const char *name;
        const char *channel;
        size_t len;
    } bad[] = {
        {"empty", "", 0},
        {"space", "a b", 3},
        {"slash", "a/b", 3},
        {"NUL", "a\0b", 3},
        {"65 bytes", "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 65},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad); i++) {
        why[0] = '\0';
        cs = NULL;
        seen_init(&s, "bad");
        err = core_subscribe(core, &tcp, bad[i].channel, bad[i].len, false, 0, &ops, &s, SIZE_MAX,
                             &cs, why);
        is_str(gw_err_code(err), gw_err_code(GW_E_CHANNEL), "subscribe channel %s: %s", bad[i].name,
               gw_err_code(GW_E_CHANNEL));
        ok(why[0] != '\0' && cs == NULL && core_pending(core) == 0,
           "subscribe channel %s: why set, no subscription, nothing queued", bad[i].name);
    }
    /* (ptr, len): the bytes after len are not part of the name. */
    seen_init(&s, "s-cur");
    err = core_subscribe(core, &tcp, "s-cur/x", 5, true, 5, &ops, &s, SIZE_MAX, &cs, why);
    is_int(err, GW_OK, "subscribe with channel_len shorter than the string");
    run_until(ready_seen, &s, WR | RD);
    ok(s.ready_err == GW_OK && s.top == 5, "... is channel s-cur (top 5)");
    if (err == GW_OK)
        unsub(cs, &s);
    is_uint(core_subscribed_channels(core), base, "errors: the hub is back where it was");
}

/*
 * The hand-over from replay to live, with commits arriving between pages:
 * every seq after the cursor, exactly once, in order.
 */
static void test_sub_handover(void)
{
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN];
    int pumps = 0, multi;

    ok(publish_n("s-hand", 20), "hand-over: 20 stored");
    size_t four = wire_of("s-hand", 5, 4);
    seen_init(&s, "s-hand");
    is_int(sub("s-hand", true, 5, four, &s, &cs, why), GW_OK, "hand-over: sub since 5");
    ok(s.since == 5 && s.top == 20, "hand-over: since 5, top 20");
    ok(seen_exactly(&s, 6, 9), "hand-over: 6..9 so far");
    ok(publish_n("s-hand", 5), "hand-over: 5 published while catching up (21..25)");
    ok(seen_exactly(&s, 6, 9), "hand-over: not live yet, so nothing pushed");
    while (!core_sub_live(cs) && pumps++ < 50) {
        pump_on(cs, &s, four, WR | RD);
        if (pumps % 2)
            publish_n("s-hand", 1); /* more commits between pages */
    }
    ok(core_sub_live(cs), "hand-over: live after %d pumps", pumps);
    int64_t last = *seq_counter("s-hand") - 1;
    ok(seen_exactly(&s, 6, last), "hand-over: 6..%lld each once, in order", (long long)last);
    ok(pages_bounded(&s, false, &multi) && multi, "hand-over: pages within their budgets");
    ok(publish_n("s-hand", 3), "hand-over: 3 more once live");
    ok(seen_exactly(&s, 6, last + 3), "hand-over: then %lld..%lld live", (long long)last + 1,
       (long long)last + 3);
    unsub(cs, &s);
}

/*
 * Commits that the store holds but whose completion has not reached the loop:
 * neither delivered twice (store, then fan-out) nor lost between them.
 */
static void test_sub_uncompleted(void)
{
    struct slot slots[8];
    struct core_sub *cs, *cs2;
    struct seen s, s2;
    char why[GW_ERRLEN];

    /* A new channel: the subscription arrives between commit and completion. */
    is_int(submit("s-race", 5, slots), 5, "race: 5 queued");
    ok(wait_stored("s-race", 1), "race: the writer has committed some");
    seen_init(&s, "s-race");
    is_int(sub_on("s-race", true, 0, SIZE_MAX, &s, &cs, RD, why), GW_OK, "race: sub since 0");
    ok(s.top >= 1 && s.top <= 5, "race: top %lld counts what the store holds", (long long)s.top);
    catch_up_on(cs, &s, SIZE_MAX, RD);
    ok(core_sub_live(cs), "race: live from the store alone");
    ok(run_until(writes_idle, NULL, WR), "race: the 5 complete");
    ok(seen_exactly(&s, 1, 5), "race: 1..5 each once");
    release_slots(slots, 5);

    /* A channel already in the hub: catching up while commits wait for the loop. */
    size_t two = wire_of("s-race", 2, 2);
    seen_init(&s2, "s-race");
    is_int(sub("s-race", true, 2, two, &s2, &cs2, why), GW_OK, "race: second sub since 2");
    is_int(submit("s-race", 6, slots), 6, "race: 6 more queued (6..11)");
    ok(wait_stored("s-race", 6), "race: the writer has committed some");
    for (int i = 0; i < 10 && !core_sub_live(cs2); i++)
        pump_on(cs2, &s2, two, RD);
    ok(run_until(writes_idle, NULL, WR), "race: the 6 complete");
    catch_up(cs2, &s2, two);
    ok(seen_exactly(&s2, 3, 11), "race: second sub gets 3..11 each once");
    ok(seen_exactly(&s, 1, 11), "race: the live sub gets 6..11 pushed, each once");
    release_slots(slots, 6);
    unsub(cs, &s);
    unsub(cs2, &s2);
    /* Commits a read saw before their completions came ask the store's top (core.c fan_out). */
    ok(run_until(reads_idle, NULL, RD), "race: the checks of the top are over");
}

static void test_sub_two(void)
{
    struct core_sub *a, *b, *c;
    struct seen sa, sb, sc;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-two", 3), "two subs: 3 stored");
    size_t two = wire_of("s-two", 0, 2);
    seen_init(&sa, "s-two");
    seen_init(&sb, "s-two");
    seen_init(&sc, "s-two");
    is_int(sub("s-two", false, 0, SIZE_MAX, &sa, &a, why), GW_OK, "two subs: a from now");
    is_int(sub("s-two", true, 0, two, &sb, &b, why), GW_OK, "two subs: b from 0");
    is_int(sub("s-two", false, 0, SIZE_MAX, &sc, &c, why), GW_OK, "two subs: c from now");
    ok(a != b && b != c && a != c, "two subs: distinct subscriptions");
    is_uint(core_subscribed_channels(core), base + 1, "two subs: one channel in the hub");
    ok(seen_exactly(&sb, 1, 2), "two subs: b has its first page");

    int made = cache_made, released = cache_released;
    ok(publish_n("s-two", 2), "two subs: 2 published");
    ok(seen_exactly(&sa, 4, 5) && seen_exactly(&sc, 4, 5), "two subs: both live ones get 4, 5");
    ok(seen_exactly(&sb, 1, 2), "two subs: the catching-up one got nothing pushed");
    is_int(cache_made - made, 2, "two subs: one encoding per fan-out");
    is_int(sa.cache_hits + sc.cache_hits, 2, "two subs: the second live sub reuses it");
    is_int(cache_released - released, 2, "two subs: released when each fan-out is over");
    catch_up(b, &sb, two);
    ok(publish_n("s-two", 1), "two subs: 1 more");
    ok(seen_exactly(&sa, 4, 6) && seen_exactly(&sc, 4, 6), "two subs: live ones get 6");
    ok(seen_exactly(&sb, 1, 6), "two subs: b gets 1..6 each once");

    /* Unsubscribing one stops it; the others go on; the last one out empties the hub. */
    unsub(a, &sa);
    is_uint(core_subscribed_channels(core), base + 1, "one of three left: the channel stays");
    ok(publish_n("s-two", 1), "two subs: 1 more after a left");
    ok(seen_exactly(&sa, 4, 6), "a left: gets nothing more");
    ok(seen_exactly(&sb, 1, 7) && seen_exactly(&sc, 4, 7), "b and c: 7");
    unsub(c, &sc);
    is_uint(core_subscribed_channels(core), base + 1, "one left: the channel stays");
    unsub(b, &sb);
    is_uint(core_subscribed_channels(core), base, "the last one out: the channel leaves the hub");
    ok(publish_n("s-two", 1), "two subs: 1 more after all left");
    ok(sa.n == 3 && sb.n == 7 && sc.n == 4, "nobody gets anything after unsubscribing");

    /* A catching-up subscription can be ended too, and then gets nothing. */
    seen_init(&sb, "s-two");
    is_int(sub("s-two", true, 1, wire_of("s-two", 1, 2), &sb, &b, why), GW_OK,
           "catching up from 1");
    unsub(b, &sb);
    is_uint(core_subscribed_channels(core), base, "ending a catching-up sub empties the hub");
    ok(publish_n("s-two", 1), "1 more after it ended");
    ok(seen_exactly(&sb, 2, 3), "the ended catching-up sub got only its first page");

    /* Re-subscribing after the channel left the hub starts from the store's top. */
    seen_init(&sa, "s-two");
    is_int(sub("s-two", false, 0, SIZE_MAX, &sa, &a, why), GW_OK, "sub again from now");
    is_int(sa.top, 9, "sub again: top 9 from the store");
    ok(publish_n("s-two", 1), "1 more");
    ok(seen_exactly(&sa, 10, 10), "sub again: gets 10");
    unsub(a, &sa);
    is_int(cache_made, cache_released, "every delivery cache filled was released");
}

/*
 * The byte budget of a pump: each page holds at least one message and at most
 * max_bytes of JSON, and pages of any size deliver every message once, in
 * order.
 */
static void test_sub_pump_bytes(void)
{
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN];
    int multi;

    ok(publish_n("s-bytes", 10), "pump bytes: 10 stored");
    seen_init(&s, "s-bytes");
    is_int(sub("s-bytes", true, 0, 0, &s, &cs, why), GW_OK, "pump bytes: sub since 0, no room");
    ok(seen_exactly(&s, 1, 1), "pump bytes: budget 0 still delivers one message, and only one");
    pump_on(cs, &s, 0, WR | RD);
    ok(seen_exactly(&s, 1, 2), "pump bytes: a pump of 0 bytes delivers one more");
    ok(!core_sub_live(cs), "pump bytes: not live after two");
    size_t budget = wire_of("s-bytes", 2, 2) + wire_of("s-bytes", 4, 1) / 2;
    int pumps = catch_up(cs, &s, budget);
    ok(core_sub_live(cs), "pump bytes: live after %d budgeted pumps", pumps);
    ok(seen_exactly(&s, 1, 10), "pump bytes: 1..10 each once, in order");
    ok(pages_bounded(&s, true, &multi) && multi,
       "pump bytes: a budget of two and a half messages gives pages of two");
    is_int(pumps, 4, "pump bytes: 8 messages in pages of two: 4 pumps");
    ok(publish_n("s-bytes", 1), "pump bytes: one more");
    ok(seen_exactly(&s, 1, 11), "pump bytes: 11 pushed live");
    unsub(cs, &s);
}

/* Rows removed from the store are reported in their place, never skipped. */
static void test_sub_gaps(void)
{
    struct core_sub *cs;
    struct seen s;
    struct page_rec r;
    char why[GW_ERRLEN];

    ok(publish_n("s-gap", 12), "gaps: 12 stored");
    ok(sql_exec(path, "DELETE FROM messages WHERE seq IN (3, 4, 7, 11, 12) AND channel_id = "
                      "(SELECT id FROM channels WHERE name = 's-gap')") == 0,
       "gaps: seqs 3, 4, 7, 11 and 12 removed behind the gateway's back");

    history(core, "s-gap", 5, 0, 100, &r, why);
    ok(r.err == GW_OK && r.page.n == 7 && r.page.ngaps == 3, "history: 7 messages, 3 gaps");
    if (r.page.ngaps == 3)
        ok(r.page.gaps[0].from == 3 && r.page.gaps[0].to == 4 && r.page.gaps[0].before == 2 &&
               r.page.gaps[1].from == 7 && r.page.gaps[1].to == 7 && r.page.gaps[1].before == 4 &&
               r.page.gaps[2].from == 11 && r.page.gaps[2].to == 12 && r.page.gaps[2].before == 7,
           "history: gaps 3-4 before seq 5, 7 before seq 8, 11-12 at the end");
    is_int(r.page.next_since, 12, "history: next_since covers the gap at the end");
    page_rec_release(&r);

    seen_init(&s, "s-gap");
    is_int(sub("s-gap", true, 0, SIZE_MAX, &s, &cs, why), GW_OK, "gaps: sub since 0");
    ok(seen_is(&s, "1,2,[3-4],5,6,[7],8,9,10,[11-12]"), "gaps: reported in place, in one page");
    ok(core_sub_live(cs), "gaps: live after the gap at the end");
    is_int(core_sub_cursor(cs), 12, "gaps: the cursor is past the gap");
    ok(publish_n("s-gap", 1), "gaps: one more");
    ok(seen_is(&s, "1,2,[3-4],5,6,[7],8,9,10,[11-12],13"), "gaps: then 13 live");
    unsub(cs, &s);

    /* One message per page: the gaps still come in their places. */
    seen_init(&s, "s-gap");
    sub("s-gap", true, 0, 0, &s, &cs, why);
    catch_up(cs, &s, 0);
    ok(seen_is(&s, "1,2,[3-4],5,6,[7],8,9,10,[11-12],13"), "gaps: the same in pages of one");
    ok(core_sub_live(cs), "gaps: live");
    unsub(cs, &s);

    /* A cursor inside a gap: the rest of the gap first. */
    seen_init(&s, "s-gap");
    sub("s-gap", true, 3, SIZE_MAX, &s, &cs, why);
    ok(seen_is(&s, "[4],5,6,[7],8,9,10,[11-12],13"), "gaps: since 3 starts with the rest of 3-4");
    unsub(cs, &s);
    seen_init(&s, "s-gap");
    sub("s-gap", true, 11, SIZE_MAX, &s, &cs, why);
    ok(seen_is(&s, "[12],13"), "gaps: since 11 starts with the rest of 11-12");
    unsub(cs, &s);
}

/*
 * A live subscription that misses a commit (a row another connection wrote
 * behind the gateway's back) falls behind at the next commit it sees, and
 * catches up from the store: nothing lost, nothing repeated.
 */
static void test_sub_behind(void)
{
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN], sql[1024];
    int64_t ts = wall_ms();

    /* A channel the gateway has never written, so its writer learns the top from the file. */
    snprintf(sql, sizeof(sql),
             "INSERT INTO channels(name, last_seq, msg_count, last_ts) VALUES ('s-behind', 3, 3, "
             "%lld);"
             "INSERT INTO messages(channel_id, seq, sender, body, ts, via) SELECT id, 1, 'o', "
             "'b1', %lld, 'rest' FROM channels WHERE name = 's-behind';"
             "INSERT INTO messages(channel_id, seq, sender, body, ts, via) SELECT id, 2, 'o', "
             "'b2', %lld, 'rest' FROM channels WHERE name = 's-behind';"
             "INSERT INTO messages(channel_id, seq, sender, body, ts, via) SELECT id, 3, 'o', "
             "'b3', %lld, 'rest' FROM channels WHERE name = 's-behind';",
             (long long)ts, (long long)ts, (long long)ts, (long long)ts);
    ok(sql_exec(path, sql) == 0, "behind: 3 messages written by another connection");
    *seq_counter("s-behind") = 4;
    seen_init(&s, "s-behind");
    is_int(sub("s-behind", false, 0, SIZE_MAX, &s, &cs, why), GW_OK, "behind: sub from now");
    ok(s.top == 3 && core_sub_live(cs), "behind: top 3, live");

    snprintf(sql, sizeof(sql),
             "INSERT INTO messages(channel_id, seq, sender, body, ts, via) SELECT id, 4, 'o', "
             "'b4', %lld, 'rest' FROM channels WHERE name = 's-behind';"
             "UPDATE channels SET last_seq = 4, msg_count = 4 WHERE name = 's-behind';",
             (long long)ts);
    ok(sql_exec(path, sql) == 0, "behind: seq 4 written behind the gateway's back");
    *seq_counter("s-behind") = 5;
    ok(publish_n("s-behind", 1), "behind: the gateway commits 5");
    is_int(s.n, 0, "behind: 5 is not pushed to a subscription whose cursor is 3");
    ok(!core_sub_live(cs), "behind: the subscription fell behind");
    is_int(s.wakes, 1, "behind: woken to read from the store");
    catch_up(cs, &s, SIZE_MAX);
    ok(core_sub_live(cs), "behind: live again after reading the store");
    ok(seen_exactly(&s, 4, 5), "behind: 4 and 5 from the store, each once");
    ok(!s.ev[0].live && !s.ev[1].live, "behind: both read from the store");
    ok(publish_n("s-behind", 1), "behind: one more");
    ok(seen_exactly(&s, 4, 6), "behind: then 6 live");
    unsub(cs, &s);
}

/*
 * Commits whose completion reaches the loop while a subscription's first read
 * is under way are delivered exactly once, whether the read saw them or not
 * (the commits the hub keeps while reads are under way).
 */
static void test_sub_recent(void)
{
    struct slot slots[4];
    struct core_sub *cs = NULL, *cs2 = NULL;
    struct seen s, s2;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-recent", 3), "recent: 3 stored");

    /* After the read's snapshot: the kept commits bring the subscription to the top. */
    seen_init(&s, "s-recent");
    seen_init(&s2, "s-recent");
    drain_reads_run();
    ok(sub_start("s-recent", false, 0, SIZE_MAX, &s, &cs, why) == GW_OK &&
           sub_start("s-recent", true, 1, SIZE_MAX, &s2, &cs2, why) == GW_OK,
       "recent: one sub from now, one since 1");
    ok(wait_reads_run(2), "recent: the reader has read (top 3), the loop not told yet");
    is_int(submit("s-recent", 2, slots), 2, "recent: 4 and 5 published");
    ok(run_until(writes_idle, NULL, WR), "recent: their commits reach the loop first");
    ok(s.ready_calls == 0 && s2.ready_calls == 0 && s.n == 0 && s2.n == 0,
       "recent: nothing delivered before the subscriptions are ready");
    ok(run_until(reads_idle, NULL, RD), "recent: then the reads complete");
    ok(s.ready_err == GW_OK && s.since == 3 && s.top == 5,
       "recent: from now is the snapshot's top (3); the top is 5");
    ok(seen_exactly(&s, 4, 5) && core_sub_live(cs), "recent: 4, 5 once each, then live");
    ok(seen_exactly(&s2, 2, 5) && core_sub_live(cs2), "recent: since 1: 2..5 once each, live");
    release_slots(slots, 2);
    ok(publish_n("s-recent", 1), "recent: one more");
    ok(seen_exactly(&s, 4, 6) && seen_exactly(&s2, 2, 6), "recent: 6 live to both");
    unsub(cs, &s);
    unsub(cs2, &s2);
    is_uint(core_subscribed_channels(core), base, "recent: the hub is back where it was");

    /*
     * In the read's snapshot and kept too (7): not delivered twice; and kept
     * on both sides of the snapshot (8 in it, 9 after): the older skipped,
     * the newer delivered, live without another read.
     */
    is_int(submit("s-recent", 2, slots), 2, "recent: 7 and 8 published");
    ok(wait_stored("s-recent", 8), "recent: 7 and 8 committed, the loop not told yet");
    seen_init(&s, "s-recent");
    seen_init(&s2, "s-recent");
    drain_reads_run();
    ok(sub_start("s-recent", false, 0, SIZE_MAX, &s, &cs, why) == GW_OK &&
           sub_start("s-recent", true, 5, SIZE_MAX, &s2, &cs2, why) == GW_OK,
       "recent: one sub from now, one since 5");
    ok(wait_reads_run(2), "recent: the reader has read (top 8)");
    is_int(submit("s-recent", 1, &slots[2]), 1, "recent: 9 published after the reads");
    ok(run_until(writes_idle, NULL, WR), "recent: 7, 8 and 9 reach the loop during the reads");
    ok(run_until(reads_idle, NULL, RD), "recent: then the reads complete");
    ok(s.since == 8 && seen_exactly(&s, 9, 9), "recent: from now is 8, then 9 from the kept");
    ok(seen_exactly(&s2, 6, 9), "recent: since 5: 6..9 once each");
    ok(core_sub_live(cs) && core_sub_live(cs2) && s.wakes == 0 && s2.wakes == 0,
       "recent: both live at once, without another read");
    release_slots(slots, 3);
    ok(publish_n("s-recent", 1), "recent: one more");
    ok(seen_exactly(&s, 9, 10) && seen_exactly(&s2, 6, 10), "recent: 10 live to both, once");
    unsub(cs, &s);
    unsub(cs2, &s2);
}

/* Ending a subscription while its read is under way: no callback after, nothing left behind. */
static void test_sub_unsub_reading(void)
{
    struct slot slots[2];
    struct core_sub *cs;
    struct seen s;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-gone", 6), "unsub reading: 6 stored");

    /* During the first read. */
    seen_init(&s, "s-gone");
    is_int(sub_start("s-gone", true, 0, SIZE_MAX, &s, &cs, why), GW_OK,
           "unsub reading: sub since 0");
    unsub(cs, &s);
    is_uint(core_subscribed_channels(core), base + 1,
            "unsub reading: the channel stays for the read");
    is_int(submit("s-gone", 2, slots), 2, "unsub reading: 7, 8 published during the read");
    ok(run_until(all_idle, NULL, WR | RD), "unsub reading: the read and the commits complete");
    ok(s.ready_calls == 0 && s.n == 0 && s.after_end == 0, "unsub reading: no callback at all");
    is_uint(core_subscribed_channels(core), base, "unsub reading: then the channel leaves the hub");
    release_slots(slots, 2);

    /* During a pump. */
    seen_init(&s, "s-gone");
    sub("s-gone", true, 0, wire_of("s-gone", 0, 2), &s, &cs, why);
    ok(seen_exactly(&s, 1, 2) && !core_sub_live(cs), "unsub reading: a first page of two");
    page_start(&s, SIZE_MAX);
    core_sub_pump(core, cs, SIZE_MAX);
    is_uint(workq_pending(reader), 1, "unsub reading: a pump under way");
    unsub(cs, &s);
    is_int(submit("s-gone", 2, slots), 2, "unsub reading: 9, 10 published during the pump");
    ok(run_until(all_idle, NULL, WR | RD), "unsub reading: the pump and the commits complete");
    ok(s.n == 2 && s.after_end == 0, "unsub reading: nothing after the end");
    is_uint(core_subscribed_channels(core), base, "unsub reading: the channel leaves the hub");
    release_slots(slots, 2);
}

/* A read that fails: refused at ready, or said through failed; the subscription then stays. */
static void test_sub_read_failure(void)
{
    struct core_sub *cs, *cs2;
    struct seen s, s2;
    struct page_rec r;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-fail", 4), "read failure: 4 stored");
    seen_init(&s, "s-fail");
    sub("s-fail", true, 0, wire_of("s-fail", 0, 1), &s, &cs, why);
    ok(seen_exactly(&s, 1, 1) && !core_sub_live(cs), "read failure: catching up, one read");
    if (sql_exec(path, "ALTER TABLE messages RENAME TO messages_away") != 0) {
        skip("read failure: cannot hide the messages table");
        unsub(cs, &s);
        return;
    }
    history(core, "s-fail", 6, 0, 10, &r, why);
    is_str(gw_err_code(r.err), gw_err_code(GW_E_STORE), "read failure: history says store_failed");
    ok(r.why[0] != '\0' && !r.has_page, "read failure: history why set, no page");

    seen_init(&s2, "s-fail");
    sub("s-fail", true, 0, SIZE_MAX, &s2, &cs2, why);
    is_str(gw_err_code(s2.ready_err), gw_err_code(GW_E_STORE),
           "read failure: a new subscription is refused at ready");
    ok(s2.ready_calls == 1 && s2.n == 0, "read failure: and nothing else follows");

    pump_on(cs, &s, SIZE_MAX, WR | RD);
    is_int(s.failed_calls, 1, "read failure: a pump's read failing is said once");
    is_str(gw_err_code(s.failed_err), gw_err_code(GW_E_STORE), "read failure: as store_failed");
    ok(seen_exactly(&s, 1, 1) && core_sub_cursor(cs) == 1 && !core_sub_live(cs),
       "read failure: the subscription stays where it was");

    ok(sql_exec(path, "ALTER TABLE messages_away RENAME TO messages") == 0,
       "read failure: table back");
    s.failed_calls = 0;
    catch_up(cs, &s, SIZE_MAX);
    ok(seen_exactly(&s, 1, 4) && core_sub_live(cs), "read failure: a later pump catches up");
    unsub(cs, &s);
    is_uint(core_subscribed_channels(core), base, "read failure: the hub is back where it was");
}

struct watch_rec {
    int calls;
    uint64_t accepted_us;
    size_t m_bytes, wire_len;
};

static void on_watch(void *ctx, const struct gw_msg *m, size_t m_bytes)
{
    struct watch_rec *w = ctx;
    w->calls++;
    w->accepted_us = m ? m->accepted_us : 0;
    w->m_bytes = m_bytes;
    w->wire_len = m ? gw_msg_wire_len(m) : 0;
}

static void test_watch(void)
{
    struct core_watch *a = NULL, *b = NULL, *c = NULL, *d = NULL;
    struct watch_rec ra = {0}, rb = {0}, rc = {0}, rd = {0};
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("w", 2), "watch: 2 stored");
    ok(core_watch(core, "w", 1, 2, on_watch, &ra, &a, why) == GW_OK &&
           core_watch(core, "w", 1, 3, on_watch, &rb, &b, why) == GW_OK &&
           core_watch(core, "w", 1, 0, on_watch, &rd, &d, why) == GW_OK &&
           core_watch(core, "w-other", 7, 0, on_watch, &rc, &c, why) == GW_OK,
       "watch: since 2, since 3 and since 0 on w, since 0 on w-other");
    is_uint(core_subscribed_channels(core), base + 2, "watch: both channels in the hub");
    is_uint(core_pending(core), 0, "watch: a watch reads nothing");
    ok(ra.calls + rb.calls + rc.calls + rd.calls == 0, "watch: none fires when set");

    uint64_t before = mono_us();
    ok(publish_n("w", 1), "watch: 3 committed");
    uint64_t after = mono_us();
    is_int(ra.calls, 1, "watch: since 2 fires on seq 3");
    ok(ra.accepted_us >= before && ra.accepted_us <= after,
       "watch: with the accept time of the message that fired it");
    ok(ra.m_bytes > 0 && ra.m_bytes == ra.wire_len && rd.m_bytes == ra.m_bytes,
       "watch: with the message's size in a page, for every watch it fires");
    is_int(rd.calls, 1, "watch: since 0 fires on the first commit it sees, not before");
    is_int(rb.calls, 0, "watch: since 3 does not fire on seq 3");
    is_int(rc.calls, 0, "watch: another channel's commit does not fire it");
    ok(publish_n("w", 1), "watch: 4 committed");
    is_int(ra.calls, 1, "watch: a watch fires once");
    is_int(rb.calls, 1, "watch: since 3 fires on seq 4");
    core_unwatch(core, a);
    core_unwatch(core, b);
    core_unwatch(core, d);
    is_uint(core_subscribed_channels(core), base + 1, "watch: ended, w leaves the hub");
    core_unwatch(core, c);
    ok(publish_n("w-other", 1), "watch: a commit after w-other's watch ended");
    is_int(rc.calls, 0, "watch: an ended watch never fires");
    is_uint(core_subscribed_channels(core), base, "watch: the hub is back where it was");
    core_unwatch(core, NULL);

    why[0] = '\0';
    is_str(gw_err_code(core_watch(core, "a b", 3, 0, on_watch, &ra, &a, why)),
           gw_err_code(GW_E_CHANNEL), "watch: a bad channel is invalid_channel");
    ok(why[0] != '\0', "watch: why set");
    is_str(gw_err_code(core_watch(core, "w", 1, (uint64_t)INT64_MAX + 1, on_watch, &ra, &a, why)),
           gw_err_code(GW_E_PARAM), "watch: since above INT64_MAX is invalid_parameter");
    is_uint(core_subscribed_channels(core), base, "watch: refused ones leave nothing");

    is_int(core_check_wait(GW_WAIT_MAX, why), GW_OK, "wait %d s is allowed", GW_WAIT_MAX);
    why[0] = '\0';
    is_str(gw_err_code(core_check_wait(GW_WAIT_MAX + 1, why)), gw_err_code(GW_E_PARAM),
           "wait %d s is invalid_parameter", GW_WAIT_MAX + 1);
    ok(why[0] != '\0', "wait too long: why set");
}

/* Writes message seq of channel (body "b<seq>") behind the gateway's back, as another gateway
 * would. */
static int write_behind(const char *channel, int64_t seq)
{
    char sql[1024];

    snprintf(sql, sizeof(sql),
             "INSERT OR IGNORE INTO channels(name) VALUES ('%s');"
             "INSERT INTO messages(channel_id, seq, sender, body, ts, via) SELECT id, %lld, 'o', "
             "'b%lld', %lld, 'rest' FROM channels WHERE name = '%s';"
             "UPDATE channels SET last_seq = %lld, msg_count = msg_count + 1 WHERE name = '%s';",
             channel, (long long)seq, (long long)seq, (long long)wall_ms(), channel, (long long)seq,
             channel);
    return sql_exec(path, sql) == 0;
}

/* A subscription of channel, live after its one stored message. */
static struct core_sub *live_after_one(const char *channel, struct seen *s, const char *what)
{
    struct core_sub *cs;
    char why[GW_ERRLEN];

    ok(publish_n(channel, 1), "%s: 1 stored", what);
    seen_init(s, channel);
    sub(channel, false, 0, SIZE_MAX, s, &cs, why);
    ok(core_sub_live(cs) && s->top == 1, "%s: live at 1", what);
    return cs;
}

/* Commits the loop never heard of: core_recheck reads the top of every followed channel again. */
static void test_recheck(void)
{
    struct core_sub *cs;
    struct core_watch *w;
    struct watch_rec rw = {0};
    struct seen s;
    char why[GW_ERRLEN];

    cs = live_after_one("r-chk", &s, "recheck");
    ok(core_watch(core, "r-watch", 7, 0, on_watch, &rw, &w, why) == GW_OK,
       "recheck: a watch on a channel with nothing yet");
    ok(write_behind("r-chk", 2) && write_behind("r-watch", 1),
       "recheck: commits behind the gateway's back");
    ok(run_until(all_idle, NULL, WR | RD), "recheck: nothing under way");
    ok(s.n == 0 && s.wakes == 0 && rw.calls == 0, "recheck: unheard of, nothing moves");

    core_recheck(core);
    is_uint(workq_pending(reader), core_subscribed_channels(core),
            "recheck: one read per channel in the hub");
    ok(run_until(reads_idle, NULL, RD), "recheck: the reads complete");
    is_int(s.wakes, 1, "recheck: the subscription behind is woken");
    ok(!core_sub_live(cs), "recheck: and reads from the store");
    is_int(rw.calls, 1, "recheck: the watch past its cursor fires");
    catch_up(cs, &s, SIZE_MAX);
    ok(seen_exactly(&s, 2, 2) && core_sub_live(cs), "recheck: it reads 2 and is live again");

    core_recheck(core);
    ok(run_until(reads_idle, NULL, RD), "recheck again: the reads complete");
    ok(s.wakes == 1 && s.n == 1 && core_sub_live(cs), "recheck again: nothing new, nothing moves");
    core_unwatch(core, w);
    unsub(cs, &s);
}

/*
 * A notice from the feed counts only once a read of the store confirms it:
 * a forged top moves nothing; notices during that read cost one read more.
 */
static void test_notice(void)
{
    struct seen s;
    struct core_sub *cs = live_after_one("n-chk", &s, "notice");

    ok(run_until(all_idle, NULL, WR | RD), "notice: nothing under way");

    core_channel_notice(core, "n-chk", 1);
    core_channel_notice(core, "n-nobody", 5);
    is_uint(workq_pending(reader), 0, "notice: of a known top, or a channel unfollowed: no read");
    core_channel_notice(core, "n-chk", 1000000);
    is_uint(workq_pending(reader), 1, "notice: past the top: its top is read");
    core_channel_notice(core, "n-chk", 1000001);
    core_channel_notice(core, "n-chk", 1000002);
    is_uint(workq_pending(reader), 1, "notice: more meanwhile: no second read at once");
    ok(run_until(reads_idle, NULL, RD), "notice: the reads complete");
    ok(s.wakes == 0 && core_sub_live(cs), "notice: a forged top moves nothing");
    core_channel_notice(core, "n-chk", 1000003);
    is_uint(workq_pending(reader), 1, "notice: checked again, once the last check is done");
    ok(run_until(reads_idle, NULL, RD), "notice: that read completes");

    ok(write_behind("n-chk", 2), "notice: 2 written elsewhere");
    core_channel_notice(core, "n-chk", 2);
    is_uint(workq_pending(reader), 1, "notice: one read checks it");
    ok(run_until(reads_idle, NULL, RD), "notice: its check completes");
    ok(seen_exactly(&s, 2, 2) && s.wakes == 0 && core_sub_live(cs),
       "notice: confirmed, 2 is pushed from the check's page: the subscription reads nothing");

    /* Unconfirmed: the subscription reads for itself, and waits for the store as any read. */
    ok(write_behind("n-chk", 3), "notice: 3 written elsewhere");
    atomic_store(&pages_unavailable, true);
    core_channel_notice(core, "n-chk", 3);
    ok(run_until(reads_idle, NULL, RD), "notice: its check fails");
    ok(s.wakes == 1 && !core_sub_live(cs), "notice: unconfirmed, the subscription reads itself");
    pump_on(cs, &s, SIZE_MAX, RD);
    ok(core_stalled(core) && s.failed_calls == 0, "notice: it waits for the store");
    atomic_store(&pages_unavailable, false);
    core_retry_stalled(core);
    catch_up(cs, &s, SIZE_MAX);
    ok(seen_exactly(&s, 2, 3) && core_sub_live(cs), "notice: then reads 3 and is live again");
    unsub(cs, &s);
}

/*
 * A channel only watched (long-polls, no live subscription): a notice's
 * check reads its top alone, not a page from a top the hub may not know.
 */
static void test_notice_watch_only(void)
{
    struct core_watch *w;
    struct watch_rec rw = {0};
    char why[GW_ERRLEN];

    ok(write_behind("n-watch", 1) && write_behind("n-watch", 2), "watch only: 1 and 2 stored");
    ok(core_watch(core, "n-watch", 7, 1, on_watch, &rw, &w, why) == GW_OK,
       "watch only: a watch from 1");
    core_channel_notice(core, "n-watch", 2);
    is_uint(workq_pending(reader), 1, "watch only: the notice is checked");
    ok(run_until(reads_idle, NULL, RD), "watch only: the check completes");
    ok(rw.calls == 1 && rw.wire_len == 0,
       "watch only: the watch fires from the top alone, with no message read for it");
    core_unwatch(core, w);
}

/*
 * Another gateway's commit that a subscriber's page shows before its notice
 * arrives: the page raises the channel's top without telling the live
 * subscriptions (beyond them it most often sees the loop's own commits on
 * their way), so the notice must still move them, though its top is known:
 * whether it comes after that page, or its check was under way meanwhile.
 */
static void test_read_finds_later_top(void)
{
    struct seen s, s2, s3;
    struct core_sub *cs = live_after_one("t-later", &s, "later top"), *cs2, *cs3;
    struct core_watch *w;
    struct watch_rec rw = {0};
    char why[GW_ERRLEN];

    ok(core_watch(core, "t-later", 7, 1, on_watch, &rw, &w, why) == GW_OK,
       "later top: a watch from 1");
    ok(write_behind("t-later", 2), "later top: 2 written elsewhere, its notice not yet here");
    ok(run_until(all_idle, NULL, WR | RD), "later top: nothing under way");
    seen_init(&s2, "t-later");
    is_int(sub("t-later", false, 0, SIZE_MAX, &s2, &cs2, why), GW_OK, "later top: a second SUB");
    ok(core_sub_live(cs2) && s2.top == 2, "later top: it reads top 2 and is live");
    core_channel_notice(core, "t-later", 2);
    is_uint(workq_pending(reader), 0,
            "later top: the notice of 2, confirmed by that read: no read");
    ok(s.wakes == 1 && !core_sub_live(cs), "later top: the first, at 1, is woken to read");
    is_int(rw.calls, 1, "later top: the watch from 1 fires");
    ok(core_sub_live(cs2) && s2.wakes == 0, "later top: the second, at 2, stays live");
    catch_up(cs, &s, SIZE_MAX);
    ok(seen_exactly(&s, 2, 2) && core_sub_live(cs), "later top: the first reads 2, live again");

    /* The notice's check queued after a SUB's read that sees the same commit. */
    ok(write_behind("t-later", 3), "later top: 3 written elsewhere");
    seen_init(&s3, "t-later");
    is_int(sub_start("t-later", false, 0, SIZE_MAX, &s3, &cs3, why), GW_OK,
           "later top: a third SUB, its read queued");
    core_channel_notice(core, "t-later", 3);
    is_uint(workq_pending(reader), 2, "later top: the notice's check queued after it");
    ok(run_until(reads_idle, NULL, RD), "later top: both reads complete");
    ok(core_sub_live(cs3) && s3.top == 3, "later top: the third is live at 3");
    ok(s.wakes == 1 && s2.wakes == 0 && core_sub_live(cs) && core_sub_live(cs2),
       "later top: the first two stay live");
    ok(seen_exactly(&s, 2, 3) && seen_exactly(&s2, 3, 3) && s3.n == 0,
       "later top: the check's page pushes 3 to the first two, once, and not to the third");
    unsub(cs, &s);
    unsub(cs2, &s2);
    unsub(cs3, &s3);
    core_unwatch(core, w);
}

/*
 * A subscription whose read finds the store unavailable is not failed: it
 * waits, and reads again when the store answers something, or when told to.
 */
static void test_sub_unavailable(void)
{
    struct seen s;
    struct core_sub *cs = live_after_one("u-wait", &s, "unavailable");

    ok(write_behind("u-wait", 2), "unavailable: 2 written elsewhere");
    core_channel_moved(core, "u-wait", 2);
    ok(!core_sub_live(cs) && s.wakes == 1, "unavailable: told, it falls behind");

    atomic_store(&pages_unavailable, true);
    pump_on(cs, &s, SIZE_MAX, RD);
    ok(s.failed_calls == 0 && s.n == 0, "unavailable: its read fails, and it is not failed");
    ok(core_stalled(core), "unavailable: it waits for the store");
    core_retry_stalled(core);
    is_int(s.wakes, 2, "unavailable: retried: woken");
    ok(!core_stalled(core), "unavailable: waiting no more once woken");
    pump_on(cs, &s, SIZE_MAX, RD);
    ok(core_stalled(core) && s.failed_calls == 0, "unavailable: still none: waits again");

    atomic_store(&pages_unavailable, false);
    ok(publish_n("u-other", 1), "unavailable: a commit elsewhere: the store answers");
    is_int(s.wakes, 3, "unavailable: which wakes it");
    catch_up(cs, &s, SIZE_MAX);
    ok(seen_exactly(&s, 2, 2) && core_sub_live(cs), "unavailable: it reads 2, live again");

    ok(write_behind("u-wait", 3), "unavailable: 3 written elsewhere");
    core_channel_moved(core, "u-wait", 3);
    atomic_store(&pages_unavailable, true);
    pump_on(cs, &s, SIZE_MAX, RD);
    atomic_store(&pages_unavailable, false);
    ok(core_stalled(core), "unavailable: waiting again");
    unsub(cs, &s);
    ok(!core_stalled(core), "unavailable: an ended subscription waits no more");
}

static void test_shutdown(void)
{
    char why[GW_ERRLEN];
    struct slot queued, refused, refused_bad;
    struct core_publish_req req = req_of("late", 4, NULL, 0, "x", 1);
    struct core_publish_req bad = req_of("a b", 3, NULL, 0, "x", 1);
    int base = completed;

    is_int(publish(&rest, &req, &queued, why), GW_OK, "publish before shutdown");
    core_begin_shutdown(core);
    why[0] = '\0';
    is_str(gw_err_code(publish(&rest, &req, &refused, why)), gw_err_code(GW_E_SHUTDOWN),
           "publish after core_begin_shutdown: GW_E_SHUTDOWN");
    ok(why[0] != '\0', "publish after shutdown: why set");
    ok(publish(&rest, &bad, &refused_bad, why) != GW_OK, "bad publish after shutdown: refused");
    ok(settle(base + 1), "the publish queued before shutdown still completes");
    is_int(queued.err, GW_OK, "the publish queued before shutdown commits");
    is_uint(core_pending(core), 0, "nothing pending after shutdown");
    ok(refused.calls == 0 && refused_bad.calls == 0, "refused publishes never call back");
    slot_release(&queued);
}

static void test_sub_after_shutdown(void)
{
    struct core_sub *cs = NULL;
    struct seen s;
    char why[GW_ERRLEN];

    seen_init(&s, "s-late");
    is_str(gw_err_code(sub("s-late", false, 0, SIZE_MAX, &s, &cs, why)), gw_err_code(GW_E_SHUTDOWN),
           "subscribe after core_begin_shutdown: GW_E_SHUTDOWN");
    ok(why[0] != '\0' && cs == NULL && s.ready_calls == 0,
       "subscribe after shutdown: why set, no subscription");
    is_uint(core_subscribed_channels(core), 0, "no channel left in the hub at the end");
    is_int(early_callbacks, 0, "no answer ever ran before the call that asked for it returned");
}

int main(void)
{
    log_set_level(GW_LOG_ERROR);
    if (sem_init(&gate_entered, 0, 0) != 0 || sem_init(&gate_open, 0, 0) != 0 ||
        sem_init(&reads_run, 0, 0) != 0)
        bail_out("sem_init: %s", strerror(errno));
    /* Every connection opened from now on, the store's included, has test_gate(). */
    sqlite3_auto_extension((void (*)(void))gate_register);
    stack_open(&st, "core", test_reader_run);
    writer = st.writer;
    reader = st.reader;
    path = st.path;
    struct core_options o = {.max_body = MAX_BODY, .page_bytes = GW_PAGE_BYTES_DEFAULT};
    core = core_new(reader, writer, &o);

    test_validation();
    test_good_publish();
    test_edge_publishes();
    test_burst();
    test_history();
    test_history_cursor();
    test_message();
    test_channels();
    test_history_bytes();
    test_read_order();
    test_store_failure();
    test_sub_from_now();
    test_sub_replay();
    test_sub_errors();
    test_sub_handover();
    test_sub_uncompleted();
    test_sub_two();
    test_sub_pump_bytes();
    test_sub_gaps();
    test_sub_behind();
    test_sub_recent();
    test_sub_unsub_reading();
    test_sub_read_failure();
    test_watch();
    test_recheck();
    test_notice();
    test_notice_watch_only();
    test_read_finds_later_top();
    test_sub_unavailable();
    test_shutdown();
    test_sub_after_shutdown();

    stack_drain(&st);
    core_free(core);
    stack_close(&st);
    sqlite3_reset_auto_extension();
    sem_destroy(&gate_entered);
    sem_destroy(&gate_open);
    sem_destroy(&reads_run);
    return done_testing();
}
