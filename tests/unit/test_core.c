/*
 * test_core.c - gateway/core.h over a real store (a SQLite file in a
 * temporary directory) and a real writer thread.
 *
 * The test plays the loop: it waits on writer_fd() with poll() and calls
 * writer_complete(), which runs the publish callbacks on this thread. A
 * recording callback copies what it is handed into a slot per publish.
 */
#include "core.h"

#include "gw.h"
#include "log.h"
#include "model.h"
#include "store.h"
#include "tap.h"
#include "writer.h"

#include <dirent.h>
#include <poll.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_BODY 1024

static char dir[64];
static char path[128];
static struct store *wstore, *rstore;
static struct writer *writer;
static struct core *core;

/* What one publish's callback saw. */
struct slot {
    int calls;
    int order; /* 1 + how many callbacks ran before this one's first */
    enum gw_err err;
    char why[GW_ERRLEN];
    struct gw_msg msg; /* deep copy */
};

static int completed; /* callbacks run so far */

static void record(void *ctx, enum gw_err err, const char *why, const struct gw_msg *msg)
{
    struct slot *s = ctx;

    if (s->calls++ == 0) {
        s->order = ++completed;
        s->err = err;
        snprintf(s->why, sizeof(s->why), "%s", why ? why : "");
        s->msg = *msg;
        s->msg.sender = msg->sender ? gw_xmemdup(msg->sender, msg->sender_len) : NULL;
        s->msg.body = msg->body ? gw_xmemdup(msg->body, msg->body_len) : NULL;
    } else {
        completed++;
    }
}

static void slot_release(struct slot *s)
{
    gw_msg_release(&s->msg);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * Plays the loop until `completed` reaches target or timeout_ms pass: waits
 * for the eventfd, then lets writer_complete run the callbacks. Returns
 * whether target was reached.
 */
static int settle(int target, int timeout_ms)
{
    int64_t deadline = mono_ms() + timeout_ms;

    while (completed < target) {
        int64_t left = deadline - mono_ms();
        if (left <= 0)
            break;
        struct pollfd p = {.fd = writer_fd(writer), .events = POLLIN};
        int rc = poll(&p, 1, left < 50 ? (int)left : 50);
        if (rc > 0 && (p.revents & POLLIN))
            writer_complete(writer);
    }
    return completed >= target;
}

/* Runs the loop for ms milliseconds, completing whatever turns up. */
static void idle(int ms)
{
    int64_t deadline = mono_ms() + ms;
    while (mono_ms() < deadline) {
        struct pollfd p = {.fd = writer_fd(writer), .events = POLLIN};
        if (poll(&p, 1, 20) > 0)
            writer_complete(writer);
    }
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
    r.via = GW_T_REST;
    return r;
}

static void remove_dir(void)
{
    DIR *d = opendir(dir);
    struct dirent *e;

    if (!d)
        return;
    while ((e = readdir(d)) != NULL) {
        char p[512];
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
        unlink(p);
    }
    closedir(d);
    rmdir(dir);
}

static size_t channel_count(void)
{
    struct gw_channel_info *chans = NULL;
    size_t n = 0;
    char why[GW_ERRLEN];
    if (core_channels(core, &chans, &n, why) != GW_OK)
        return (size_t)-1;
    free(chans);
    return n;
}

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

    memset(slots, 0, sizeof(slots));
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char why[GW_ERRLEN] = "";
        enum gw_err err = core_publish(core, &cases[i].req, record, &slots[i], why);
        is_str(gw_err_code(err), gw_err_code(cases[i].err), "publish %s: %s", cases[i].name,
               gw_err_code(cases[i].err));
        ok(why[0] != '\0', "publish %s: why set (\"%s\")", cases[i].name, why);
        is_uint(core_pending(core), 0, "publish %s: nothing pending", cases[i].name);
    }
    idle(200);
    int called = 0;
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        called += slots[i].calls;
    is_int(called, 0, "refused publishes never call back");
    is_int(completed, 0, "no callback ran at all");
    is_uint(channel_count(), 0, "refused publishes stored nothing");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        slot_release(&slots[i]);
}

static void test_good_publish(void)
{
    char why[GW_ERRLEN];
    struct slot s;
    char channel[] = "news", sender[] = "ann", body[] = "hello";
    struct core_publish_req req = req_of(channel, 4, sender, 3, body, 5);
    int base = completed;

    memset(&s, 0, sizeof(s));
    req.via = GW_T_TCP;
    int64_t before = wall_ms();
    is_int(core_publish(core, &req, record, &s, why), GW_OK, "good publish accepted");
    is_int(s.calls, 0, "good publish: no callback before the loop completes it");
    is_uint(core_pending(core), 1, "good publish: 1 pending");
    /* Every pointer in the request is borrowed for the call only. */
    memcpy(channel, "XXXX", 4);
    memcpy(sender, "YYY", 3);
    memcpy(body, "ZZZZZ", 5);

    ok(settle(base + 1, 10000), "good publish: callback within 10 s");
    int64_t after = wall_ms();
    is_int(s.calls, 1, "good publish: callback ran once");
    is_int(s.err, GW_OK, "good publish: err GW_OK");
    ok(s.msg.id >= 1, "good publish: id %lld set", (long long)s.msg.id);
    is_int(s.msg.seq, 1, "good publish: seq 1 in a new channel");
    ok(s.msg.ts_ms >= before - 1000 && s.msg.ts_ms <= after + 1000,
       "good publish: ts %lld is the commit time", (long long)s.msg.ts_ms);
    is_int(s.msg.via, GW_T_TCP, "good publish: via tcp");
    is_str(s.msg.channel, "news", "good publish: channel (copied at publish)");
    is_mem(s.msg.sender, s.msg.sender_len, "ann", 3, "good publish: sender (copied at publish)");
    is_mem(s.msg.body, s.msg.body_len, "hello", 5, "good publish: body (copied at publish)");
    is_uint(core_pending(core), 0, "good publish: nothing pending after the callback");
    idle(100);
    is_int(s.calls, 1, "good publish: still exactly one callback later");

    struct gw_msg m;
    is_int(core_message(core, (uint64_t)s.msg.id, &m, why), GW_OK, "good publish: readable by id");
    is_mem(m.body, m.body_len, "hello", 5, "good publish: stored body");
    is_int(m.via, GW_T_TCP, "good publish: stored via");
    gw_msg_release(&m);
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

    memset(slots, 0, sizeof(slots));
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++)
        is_int(core_publish(core, &cases[i].req, record, &slots[i], why), GW_OK,
               "publish %s: accepted", cases[i].name);
    ok(settle(base + (int)GW_ARRAY_SIZE(cases), 10000), "edge publishes all completed");
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        is_int(slots[i].calls, 1, "publish %s: one callback", cases[i].name);
        is_int(slots[i].err, GW_OK, "publish %s: committed", cases[i].name);
        is_mem(slots[i].msg.sender, slots[i].msg.sender_len, cases[i].sender, cases[i].sender_len,
               "publish %s: sender", cases[i].name);
        is_mem(slots[i].msg.body, slots[i].msg.body_len, cases[i].req.body, cases[i].req.body_len,
               "publish %s: body", cases[i].name);
        is_mem(slots[i].msg.channel, strlen(slots[i].msg.channel), cases[i].req.channel,
               cases[i].req.channel_len, "publish %s: channel", cases[i].name);

        struct gw_msg m;
        if (is_int(core_message(core, (uint64_t)slots[i].msg.id, &m, why), GW_OK,
                   "publish %s: stored", cases[i].name)) {
            is_mem(m.body, m.body_len, cases[i].req.body, cases[i].req.body_len,
                   "publish %s: stored body", cases[i].name);
            is_mem(m.sender, m.sender_len, cases[i].sender, cases[i].sender_len,
                   "publish %s: stored sender", cases[i].name);
            gw_msg_release(&m);
        }
        slot_release(&slots[i]);
    }
}

#define BURST 100

static void test_burst(void)
{
    static struct slot slots[BURST];
    char why[GW_ERRLEN], body[16];
    int base = completed, accepted = 0;

    memset(slots, 0, sizeof(slots));
    for (int i = 0; i < BURST; i++) {
        int n = snprintf(body, sizeof(body), "m%d", i + 1);
        struct core_publish_req req = req_of("burst", 5, "b", 1, body, (size_t)n);
        accepted += core_publish(core, &req, record, &slots[i], why) == GW_OK;
    }
    is_int(accepted, BURST, "burst: %d publishes accepted", BURST);
    is_uint(core_pending(core), BURST, "burst: %d pending before any completion", BURST);
    ok(settle(base + BURST, 20000), "burst: all %d callbacks within 20 s", BURST);
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
    for (int i = 0; i < BURST; i++)
        slot_release(&slots[i]);
}

static void test_history(void)
{
    char why[GW_ERRLEN];
    struct gw_msg *out;
    size_t n;
    int64_t next;
    enum gw_err err;

    static const struct {
        uint64_t since, limit;
        size_t n;
        int64_t first_seq, next_since;
    } pages[] = {
        {0, 10, 10, 1, 10},      {10, 10, 10, 11, 20}, {95, 10, 5, 96, 100},
        {99, 1000, 1, 100, 100}, {100, 10, 0, 0, 100}, {500, 10, 0, 0, 500},
        {0, 1000, 100, 1, 100},  {7, 0, 0, 0, 7},      {0, 0, 0, 0, 0},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(pages); i++) {
        out = (struct gw_msg *)1;
        n = 999;
        next = -42;
        err = core_history(core, "burst", 5, pages[i].since, pages[i].limit, &out, &n, &next, why);
        is_int(err, GW_OK, "history since %llu limit %llu: ok", (unsigned long long)pages[i].since,
               (unsigned long long)pages[i].limit);
        is_uint(n, pages[i].n, "history since %llu limit %llu: %zu messages",
                (unsigned long long)pages[i].since, (unsigned long long)pages[i].limit, pages[i].n);
        is_int(next, pages[i].next_since, "history since %llu limit %llu: next_since %lld",
               (unsigned long long)pages[i].since, (unsigned long long)pages[i].limit,
               (long long)pages[i].next_since);
        if (n == 0) {
            ok(out == NULL, "history since %llu limit %llu: *out NULL when empty",
               (unsigned long long)pages[i].since, (unsigned long long)pages[i].limit);
            continue;
        }
        if (n == pages[i].n && pages[i].n > 0)
            ok(out[0].seq == pages[i].first_seq && out[n - 1].seq == pages[i].next_since &&
                   strcmp(out[0].channel, "burst") == 0,
               "history since %llu limit %llu: seq %lld..%lld of burst",
               (unsigned long long)pages[i].since, (unsigned long long)pages[i].limit,
               (long long)pages[i].first_seq, (long long)pages[i].next_since);
        gw_msgs_free(out, n);
    }

    /* Following next_since page by page visits every message once, in order. */
    uint64_t since = 0;
    int64_t expect = 1;
    int pages_read = 0, good = 1;
    for (;;) {
        err = core_history(core, "burst", 5, since, 7, &out, &n, &next, why);
        if (err != GW_OK || n == 0 || ++pages_read > 100)
            break;
        for (size_t k = 0; k < n; k++)
            good &= out[k].seq == expect++;
        gw_msgs_free(out, n);
        since = (uint64_t)next;
    }
    if (err == GW_OK && n == 0)
        gw_msgs_free(out, n);
    is_int(err, GW_OK, "paging with next_since: no error");
    ok(good && expect == BURST + 1, "paging with next_since: seq 1..%d each once", BURST);
    is_int(pages_read, (BURST + 6) / 7, "paging with next_since: %d pages of 7", (BURST + 6) / 7);
    is_int(next, BURST, "paging with next_since: ends at next_since %d", BURST);

    /* Parameters out of range. */
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
        out = (struct gw_msg *)1;
        n = 999;
        why[0] = '\0';
        err = core_history(core, bad[i].channel, bad[i].channel_len, bad[i].since, bad[i].limit,
                           &out, &n, &next, why);
        is_str(gw_err_code(err), gw_err_code(bad[i].err), "history %s: %s", bad[i].name,
               gw_err_code(bad[i].err));
        ok(why[0] != '\0', "history %s: why set", bad[i].name);
        ok(out == NULL && n == 0, "history %s: *out NULL, *n 0", bad[i].name);
    }

    err = core_history(core, "burst", 5, 0, GW_LIMIT_MAX, &out, &n, &next, why);
    is_int(err, GW_OK, "history limit %d (the maximum) is allowed", GW_LIMIT_MAX);
    gw_msgs_free(out, n);

    /* The channel is (ptr, len): bytes after len are not part of the name. */
    err = core_history(core, "burst/extra", 5, 0, 3, &out, &n, &next, why);
    is_int(err, GW_OK, "history with channel_len shorter than the string");
    is_uint(n, 3, "history with channel_len: reads channel 'burst'");
    gw_msgs_free(out, n);

    err = core_history(core, "unknown", 7, 3, 10, &out, &n, &next, why);
    is_int(err, GW_OK, "history of an unknown channel: ok");
    is_uint(n, 0, "history of an unknown channel: empty");
    is_int(next, 3, "history of an unknown channel: next_since == since");
}

static void test_message(void)
{
    char why[GW_ERRLEN];
    struct gw_msg m;
    enum gw_err err;
    struct gw_msg *out;
    size_t n;
    int64_t next;

    why[0] = '\0';
    err = core_message(core, 0, &m, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "message id 0: GW_E_PARAM");
    ok(why[0] != '\0', "message id 0: why set");
    err = core_message(core, (uint64_t)INT64_MAX + 1, &m, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "message id above INT64_MAX: GW_E_PARAM");
    err = core_message(core, UINT64_MAX, &m, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_PARAM), "message id 2^64-1: GW_E_PARAM");
    why[0] = '\0';
    err = core_message(core, (uint64_t)INT64_MAX, &m, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_NOT_FOUND), "message id INT64_MAX: GW_E_NOT_FOUND");
    ok(why[0] != '\0', "message not found: why set");

    if (core_history(core, "burst", 5, 41, 1, &out, &n, &next, why) == GW_OK && n == 1) {
        err = core_message(core, (uint64_t)out[0].id, &m, why);
        is_int(err, GW_OK, "message by the id history gave");
        is_int(m.seq, 42, "message: seq 42");
        is_str(m.channel, "burst", "message: channel");
        is_mem(m.body, m.body_len, "m42", 3, "message: body");
        is_int(m.ts_ms, out[0].ts_ms, "message: ts as in history");
        if (err == GW_OK)
            gw_msg_release(&m);
    } else {
        ok(0, "history of burst at 42 for the message test");
    }
    gw_msgs_free(out, n);
}

static void test_channels(void)
{
    struct gw_channel_info *chans = NULL;
    size_t n = 0;
    char why[GW_ERRLEN];

    is_int(core_channels(core, &chans, &n, why), GW_OK, "channels");
    /* burst, edge, kkk...(64), news: sorted by name. */
    if (is_uint(n, 4, "channels: 4")) {
        is_str(chans[0].name, "burst", "channels[0] burst");
        is_int(chans[0].messages, BURST, "channels[0] has %d messages", BURST);
        is_int(chans[0].last_seq, BURST, "channels[0] last_seq %d", BURST);
        is_str(chans[1].name, "edge", "channels[1] edge");
        is_int(chans[1].messages, 7, "channels[1] has 7 messages");
        is_uint(strlen(chans[2].name), GW_CHANNEL_MAX, "channels[2] is the 64-byte name");
        is_str(chans[3].name, "news", "channels[3] news");
    }
    free(chans);
    is_int(core_schema_version(), store_schema_version(), "core_schema_version is the store's");
}

/* A store failure reaches the callback, once, and does not sink the others. */
static void test_store_failure(void)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    char why[GW_ERRLEN];

    if (sqlite3_open(path, &db) != SQLITE_OK ||
        sqlite3_exec(db,
                     "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.body = 'boom' "
                     "BEGIN SELECT RAISE(ABORT, 'boom trigger'); END;",
                     NULL, NULL, &msg) != SQLITE_OK) {
        skip("store failure: cannot install a trigger (%s)", msg ? msg : "open failed");
        sqlite3_free(msg);
        sqlite3_close(db);
        return;
    }

    /*
     * To get ok1, boom and ok2 into one transaction, this connection holds
     * the write lock while they are queued: the writer thread takes the
     * blocker, waits on the lock (its busy timeout is 5 s), and meanwhile the
     * three pile up behind it.
     */
    static const char *const bodies[] = {"blocker", "ok1", "boom", "ok2"};
    struct slot slots[4];
    int base = completed;
    int locked = sqlite3_exec(db, "BEGIN IMMEDIATE;", NULL, NULL, NULL) == SQLITE_OK;

    ok(locked, "store failure: test connection holds the write lock");
    memset(slots, 0, sizeof(slots));
    for (size_t i = 0; i < 4; i++) {
        struct core_publish_req req = req_of("fail", 4, NULL, 0, bodies[i], strlen(bodies[i]));
        is_int(core_publish(core, &req, record, &slots[i], why), GW_OK,
               "store failure: publish %s accepted", bodies[i]);
        if (i == 0)
            usleep(100 * 1000);
    }
    if (locked)
        sqlite3_exec(db, "COMMIT;", NULL, NULL, NULL);
    ok(settle(base + 4, 10000), "store failure: four callbacks");
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
    for (size_t i = 0; i < 4; i++)
        slot_release(&slots[i]);
    sqlite3_exec(db, "DROP TRIGGER boom;", NULL, NULL, NULL);
    sqlite3_close(db);
    is_uint(core_pending(core), 0, "store failure: nothing pending");
}

static void test_shutdown(void)
{
    char why[GW_ERRLEN];
    struct slot queued, refused, refused_bad;
    struct core_publish_req req = req_of("late", 4, NULL, 0, "x", 1);
    struct core_publish_req bad = req_of("a b", 3, NULL, 0, "x", 1);
    int base = completed;

    memset(&queued, 0, sizeof(queued));
    memset(&refused, 0, sizeof(refused));
    memset(&refused_bad, 0, sizeof(refused_bad));
    is_int(core_publish(core, &req, record, &queued, why), GW_OK, "publish before shutdown");
    core_begin_shutdown(core);
    why[0] = '\0';
    is_str(gw_err_code(core_publish(core, &req, record, &refused, why)), gw_err_code(GW_E_SHUTDOWN),
           "publish after core_begin_shutdown: GW_E_SHUTDOWN");
    ok(why[0] != '\0', "publish after shutdown: why set");
    ok(core_publish(core, &bad, record, &refused_bad, why) != GW_OK,
       "bad publish after shutdown: refused");
    ok(settle(base + 1, 10000), "the publish queued before shutdown still completes");
    is_int(queued.err, GW_OK, "the publish queued before shutdown commits");
    idle(100);
    ok(refused.calls == 0 && refused_bad.calls == 0, "refused publishes never call back");
    is_uint(core_pending(core), 0, "nothing pending after shutdown");
    slot_release(&queued);
}

/* ---- subscriptions ---- */

#define MAX_SEEN 256

/* A recording deliver callback: what one subscription was handed. */
struct seen {
    int n;
    int64_t seqs[MAX_SEEN];
    char channel_ok; /* every delivery was of the subscribed channel */
    char bodies_ok;  /* every body was "b<seq>" */
    const char *channel;
};

static void seen_init(struct seen *s, const char *channel)
{
    memset(s, 0, sizeof(*s));
    s->channel = channel;
    s->channel_ok = 1;
    s->bodies_ok = 1;
}

static void deliver(void *ctx, const struct gw_msg *m)
{
    struct seen *s = ctx;
    char want[32];
    int n = snprintf(want, sizeof(want), "b%lld", (long long)m->seq);

    if (s->n < MAX_SEEN)
        s->seqs[s->n] = m->seq;
    s->n++;
    if (strcmp(m->channel, s->channel) != 0)
        s->channel_ok = 0;
    if (m->body_len != (size_t)n || memcmp(m->body, want, (size_t)n) != 0)
        s->bodies_ok = 0;
}

/* True when s holds exactly seqs from..to, in order, each once. */
static int seen_exactly(const struct seen *s, int64_t from, int64_t to)
{
    if (s->n != (int)(to - from + 1) || s->n > MAX_SEEN)
        return 0;
    for (int i = 0; i < s->n; i++) {
        if (s->seqs[i] != from + i)
            return 0;
    }
    return s->channel_ok && s->bodies_ok;
}

static void seen_diag(const struct seen *s)
{
    char line[512];
    size_t n = 0;

    line[0] = '\0';
    for (int i = 0; i < s->n && i < MAX_SEEN && n < sizeof(line) - 24; i++)
        n += (size_t)snprintf(line + n, sizeof(line) - n, "%s%lld", i ? "," : "",
                              (long long)s->seqs[i]);
    diag("delivered %d: [%s] channel_ok %d bodies_ok %d", s->n, line, s->channel_ok, s->bodies_ok);
}

static int64_t next_seq_of[16];
static const char *next_seq_channel[16];

/* The next seq to publish on channel, as this test counts them. */
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

/*
 * Queues n publishes on channel, bodies "b<seq>", without completing them.
 * Returns how many were accepted.
 */
static int submit(const char *channel, int n, struct slot *slots)
{
    int64_t *next = seq_counter(channel);
    char why[GW_ERRLEN], body[32];
    int accepted = 0;

    for (int i = 0; i < n; i++) {
        int len = snprintf(body, sizeof(body), "b%lld", (long long)(*next)++);
        struct core_publish_req req = req_of(channel, strlen(channel), NULL, 0, body, (size_t)len);
        memset(&slots[i], 0, sizeof(slots[i]));
        accepted += core_publish(core, &req, record, &slots[i], why) == GW_OK;
    }
    return accepted;
}

static void release_slots(struct slot *slots, int n)
{
    for (int i = 0; i < n; i++)
        slot_release(&slots[i]);
}

/* Publishes n on channel and plays the loop until they are all complete. */
static int publish_n(const char *channel, int n)
{
    static struct slot slots[128];
    int target = completed + n;

    if (n > (int)GW_ARRAY_SIZE(slots))
        bail_out("publish_n: %d is too many", n);
    int accepted = submit(channel, n, slots);
    int done = settle(target, 10000);
    int good = accepted == n && done;
    for (int i = 0; i < n; i++)
        good &= slots[i].err == GW_OK;
    release_slots(slots, n);
    return good;
}

/* Waits until the writer has signalled done jobs, without completing them. */
static int wait_committed(int timeout_ms)
{
    struct pollfd p = {.fd = writer_fd(writer), .events = POLLIN};
    return poll(&p, 1, timeout_ms) > 0 && (p.revents & POLLIN);
}

static enum gw_err sub(const char *channel, bool has_since, uint64_t since, struct seen *s,
                       struct core_sub **out, int64_t *since_out, int64_t *top_out, char *why)
{
    *out = NULL;
    *since_out = -42;
    *top_out = -42;
    why[0] = '\0';
    return core_subscribe(core, channel, strlen(channel), has_since, since, deliver, s, out,
                          since_out, top_out, why);
}

static void test_sub_from_now(void)
{
    struct core_sub *cs;
    struct seen s;
    int64_t since, top;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-now", 3), "sub from now: 3 stored before");
    seen_init(&s, "s-now");
    is_int(sub("s-now", false, 0, &s, &cs, &since, &top, why), GW_OK, "sub from now: ok");
    is_int(since, 3, "sub from now: since is the top, 3");
    is_int(top, 3, "sub from now: top 3");
    ok(cs && core_sub_live(cs), "sub from now: live at once");
    is_uint(core_subscribed_channels(core), base + 1, "sub from now: the channel is in the hub");
    is_int(core_sub_pump(core, cs, 10, SIZE_MAX, why), GW_OK,
           "sub from now: pump on a live one is ok");
    is_int(s.n, 0, "sub from now: no replay");

    ok(publish_n("s-now", 2), "sub from now: 2 more published");
    if (!ok(seen_exactly(&s, 4, 5), "sub from now: 4, 5 delivered live, once each"))
        seen_diag(&s);
    idle(50);
    is_int(s.n, 2, "sub from now: nothing more later");

    /* Other channels' commits are not delivered. */
    ok(publish_n("s-other", 2), "sub from now: 2 published on another channel");
    is_int(s.n, 2, "sub from now: another channel's messages are not delivered");

    core_unsubscribe(core, cs);
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
    int64_t since, top;
    char why[GW_ERRLEN];

    ok(publish_n("s-replay", 10), "replay: 10 stored");
    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 3, &s, &cs, &since, &top, why), GW_OK, "replay: sub since 3");
    is_int(since, 3, "replay: since 3");
    is_int(top, 10, "replay: top 10");
    ok(cs && !core_sub_live(cs), "replay: catching up, not live");
    is_int(s.n, 0, "replay: subscribe itself delivers nothing");

    is_int(core_sub_pump(core, cs, 3, SIZE_MAX, why), GW_OK, "replay: pump 3");
    ok(seen_exactly(&s, 4, 6), "replay: first page 4..6");
    ok(!core_sub_live(cs), "replay: not live after the first page");
    is_int(core_sub_pump(core, cs, 3, SIZE_MAX, why), GW_OK, "replay: pump 3 again");
    ok(seen_exactly(&s, 4, 9), "replay: second page 7..9");
    ok(!core_sub_live(cs), "replay: not live with 10 left");
    is_int(core_sub_pump(core, cs, 3, SIZE_MAX, why), GW_OK, "replay: pump 3 a third time");
    if (!ok(seen_exactly(&s, 4, 10), "replay: last page is 10 alone"))
        seen_diag(&s);
    ok(core_sub_live(cs), "replay: live once at the top");
    is_int(core_sub_pump(core, cs, 3, SIZE_MAX, why), GW_OK, "replay: pump when live");
    is_int(s.n, 7, "replay: pump when live delivers nothing");

    ok(publish_n("s-replay", 1), "replay: one more published");
    if (!ok(seen_exactly(&s, 4, 11), "replay: 11 delivered live"))
        seen_diag(&s);
    core_unsubscribe(core, cs);

    /* since 0: everything; since == top: live at once. */
    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 0, &s, &cs, &since, &top, why), GW_OK, "replay: sub since 0");
    ok(since == 0 && top == 11, "replay since 0: since 0, top 11");
    for (int i = 0; i < 20 && !core_sub_live(cs); i++)
        core_sub_pump(core, cs, 256, SIZE_MAX, why);
    ok(seen_exactly(&s, 1, 11), "replay since 0: 1..11 in one big page");
    core_unsubscribe(core, cs);

    seen_init(&s, "s-replay");
    is_int(sub("s-replay", true, 11, &s, &cs, &since, &top, why), GW_OK, "replay: sub since top");
    ok(core_sub_live(cs), "replay since top: live at once");
    core_unsubscribe(core, cs);

    /* A channel with no messages: since 0 is fine, 1 is not. */
    seen_init(&s, "s-empty");
    is_int(sub("s-empty", true, 0, &s, &cs, &since, &top, why), GW_OK,
           "empty channel: since 0 is fine");
    ok(since == 0 && top == 0 && core_sub_live(cs), "empty channel: since 0, top 0, live");
    ok(publish_n("s-empty", 1), "empty channel: first message");
    ok(seen_exactly(&s, 1, 1), "empty channel: its first message delivered");
    core_unsubscribe(core, cs);
}

static void test_sub_errors(void)
{
    struct core_sub *cs, *keep;
    struct seen s, k;
    int64_t since, top;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);
    enum gw_err err;

    ok(publish_n("s-cur", 4), "cursor: 4 stored");
    seen_init(&s, "s-cur");
    err = sub("s-cur", true, 5, &s, &cs, &since, &top, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_CURSOR), "since 5 beyond top 4: invalid_cursor");
    ok(why[0] != '\0', "invalid_cursor: why set (\"%s\")", why);
    is_uint(core_subscribed_channels(core), base, "invalid_cursor: the channel is not left in hub");
    err = sub("s-cur", true, UINT64_MAX, &s, &cs, &since, &top, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_CURSOR), "since 2^64-1: invalid_cursor");
    err = sub("s-never", true, 1, &s, &cs, &since, &top, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_CURSOR), "since 1 on an empty channel");
    is_uint(core_subscribed_channels(core), base, "still nothing in the hub");

    /* With a subscription on the channel already, a bad cursor leaves it alone. */
    seen_init(&k, "s-cur");
    is_int(sub("s-cur", false, 0, &k, &keep, &since, &top, why), GW_OK, "cursor: one live sub");
    err = sub("s-cur", true, 9, &s, &cs, &since, &top, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_CURSOR), "since 9 with a live sub: invalid_cursor");
    is_uint(core_subscribed_channels(core), base + 1, "the live sub's channel stays");
    ok(publish_n("s-cur", 1), "cursor: one more published");
    ok(seen_exactly(&k, 5, 5), "the live sub still gets 5");
    is_int(s.n, 0, "the refused one gets nothing");
    core_unsubscribe(core, keep);

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
        err = core_subscribe(core, bad[i].channel, bad[i].len, false, 0, deliver, &s, &cs, &since,
                             &top, why);
        is_str(gw_err_code(err), gw_err_code(GW_E_CHANNEL), "subscribe channel %s: %s", bad[i].name,
               gw_err_code(GW_E_CHANNEL));
        ok(why[0] != '\0' && cs == NULL, "subscribe channel %s: why set, no subscription",
           bad[i].name);
    }
    /* (ptr, len): the bytes after len are not part of the name. */
    err = core_subscribe(core, "s-cur/x", 5, true, 5, deliver, &s, &cs, &since, &top, why);
    is_int(err, GW_OK, "subscribe with channel_len shorter than the string");
    ok(err == GW_OK && top == 5, "... is channel s-cur (top 5)");
    if (err == GW_OK)
        core_unsubscribe(core, cs);
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
    int64_t since, top;
    char why[GW_ERRLEN];
    int pumps = 0;

    ok(publish_n("s-hand", 20), "hand-over: 20 stored");
    seen_init(&s, "s-hand");
    is_int(sub("s-hand", true, 5, &s, &cs, &since, &top, why), GW_OK, "hand-over: sub since 5");
    ok(since == 5 && top == 20, "hand-over: since 5, top 20");
    is_int(core_sub_pump(core, cs, 4, SIZE_MAX, why), GW_OK, "hand-over: pump 4");
    ok(seen_exactly(&s, 6, 9), "hand-over: 6..9 so far");
    ok(publish_n("s-hand", 5), "hand-over: 5 published while catching up (21..25)");
    ok(seen_exactly(&s, 6, 9), "hand-over: not live yet, so nothing pushed");
    while (!core_sub_live(cs) && pumps++ < 50) {
        if (core_sub_pump(core, cs, 4, SIZE_MAX, why) != GW_OK)
            break;
        if (pumps % 2)
            publish_n("s-hand", 1); /* more commits between pages */
    }
    ok(core_sub_live(cs), "hand-over: live after %d pumps", pumps);
    int64_t last = *seq_counter("s-hand") - 1;
    if (!ok(seen_exactly(&s, 6, last), "hand-over: 6..%lld each once, in order", (long long)last))
        seen_diag(&s);
    ok(publish_n("s-hand", 3), "hand-over: 3 more once live");
    if (!ok(seen_exactly(&s, 6, last + 3), "hand-over: then %lld..%lld live", (long long)last + 1,
            (long long)last + 3))
        seen_diag(&s);
    core_unsubscribe(core, cs);
}

/*
 * Commits that the store holds but whose completion has not reached the loop:
 * neither read twice (store, then fan-out) nor lost between them.
 */
static void test_sub_uncompleted(void)
{
    struct slot slots[8];
    struct core_sub *cs, *cs2;
    struct seen s, s2;
    int64_t since, top;
    char why[GW_ERRLEN];

    /* A new channel: the subscription arrives between commit and completion. */
    int base = completed;
    is_int(submit("s-race", 5, slots), 5, "race: 5 queued");
    ok(wait_committed(10000), "race: the writer has committed some");
    seen_init(&s, "s-race");
    is_int(sub("s-race", true, 0, &s, &cs, &since, &top, why), GW_OK, "race: sub since 0");
    ok(top >= 1 && top <= 5, "race: top %lld counts what the store holds", (long long)top);
    for (int i = 0; i < 10 && !core_sub_live(cs); i++)
        core_sub_pump(core, cs, 2, SIZE_MAX, why);
    ok(settle(base + 5, 10000), "race: the 5 complete");
    for (int i = 0; i < 10 && !core_sub_live(cs); i++)
        core_sub_pump(core, cs, 2, SIZE_MAX, why);
    if (!ok(seen_exactly(&s, 1, 5), "race: 1..5 each once"))
        seen_diag(&s);
    release_slots(slots, 5);

    /* A channel already in the hub: catching up while commits wait for the loop. */
    seen_init(&s2, "s-race");
    is_int(sub("s-race", true, 2, &s2, &cs2, &since, &top, why), GW_OK, "race: second sub since 2");
    base = completed;
    is_int(submit("s-race", 6, slots), 6, "race: 6 more queued (6..11)");
    ok(wait_committed(10000), "race: the writer has committed some");
    for (int i = 0; i < 10 && !core_sub_live(cs2); i++)
        core_sub_pump(core, cs2, 2, SIZE_MAX, why);
    ok(settle(base + 6, 10000), "race: the 6 complete");
    for (int i = 0; i < 10 && !core_sub_live(cs2); i++)
        core_sub_pump(core, cs2, 2, SIZE_MAX, why);
    if (!ok(seen_exactly(&s2, 3, 11), "race: second sub gets 3..11 each once"))
        seen_diag(&s2);
    if (!ok(seen_exactly(&s, 1, 11), "race: the live sub gets 6..11 pushed, each once"))
        seen_diag(&s);
    release_slots(slots, 6);
    core_unsubscribe(core, cs);
    core_unsubscribe(core, cs2);
}

static void test_sub_two(void)
{
    struct core_sub *a, *b, *c;
    struct seen sa, sb, sc;
    int64_t since, top;
    char why[GW_ERRLEN];
    size_t base = core_subscribed_channels(core);

    ok(publish_n("s-two", 3), "two subs: 3 stored");
    seen_init(&sa, "s-two");
    seen_init(&sb, "s-two");
    seen_init(&sc, "s-two");
    is_int(sub("s-two", false, 0, &sa, &a, &since, &top, why), GW_OK, "two subs: a from now");
    is_int(sub("s-two", true, 0, &sb, &b, &since, &top, why), GW_OK, "two subs: b from 0");
    is_int(sub("s-two", false, 0, &sc, &c, &since, &top, why), GW_OK, "two subs: c from now");
    ok(a != b && b != c && a != c, "two subs: distinct subscriptions");
    is_uint(core_subscribed_channels(core), base + 1, "two subs: one channel in the hub");

    ok(publish_n("s-two", 2), "two subs: 2 published");
    ok(seen_exactly(&sa, 4, 5) && seen_exactly(&sc, 4, 5), "two subs: both live ones get 4, 5");
    is_int(sb.n, 0, "two subs: the catching-up one got nothing pushed");
    for (int i = 0; i < 10 && !core_sub_live(b); i++)
        core_sub_pump(core, b, 2, SIZE_MAX, why);
    ok(publish_n("s-two", 1), "two subs: 1 more");
    ok(seen_exactly(&sa, 4, 6) && seen_exactly(&sc, 4, 6), "two subs: live ones get 6");
    if (!ok(seen_exactly(&sb, 1, 6), "two subs: b gets 1..6 each once"))
        seen_diag(&sb);

    /* Unsubscribing one stops it; the others go on; the last one out empties the hub. */
    core_unsubscribe(core, a);
    is_uint(core_subscribed_channels(core), base + 1, "one of three left: the channel stays");
    ok(publish_n("s-two", 1), "two subs: 1 more after a left");
    is_int(sa.n, 3, "a left: gets nothing more");
    ok(seen_exactly(&sb, 1, 7) && seen_exactly(&sc, 4, 7), "b and c: 7");
    core_unsubscribe(core, c);
    is_uint(core_subscribed_channels(core), base + 1, "one left: the channel stays");
    core_unsubscribe(core, b);
    is_uint(core_subscribed_channels(core), base, "the last one out: the channel leaves the hub");
    ok(publish_n("s-two", 1), "two subs: 1 more after all left");
    ok(sa.n == 3 && sb.n == 7 && sc.n == 4, "nobody gets anything after unsubscribing");

    /* A catching-up subscription can be ended too, and then gets nothing. */
    seen_init(&sb, "s-two");
    is_int(sub("s-two", true, 1, &sb, &b, &since, &top, why), GW_OK, "catching up from 1");
    core_sub_pump(core, b, 2, SIZE_MAX, why);
    core_unsubscribe(core, b);
    is_uint(core_subscribed_channels(core), base, "ending a catching-up sub empties the hub");
    ok(publish_n("s-two", 1), "1 more after it ended");
    ok(seen_exactly(&sb, 2, 3), "the ended catching-up sub got only its pumped page");

    /* Re-subscribing after the channel left the hub starts from the store's top. */
    seen_init(&sa, "s-two");
    is_int(sub("s-two", false, 0, &sa, &a, &since, &top, why), GW_OK, "sub again from now");
    is_int(top, 9, "sub again: top 9 from the store");
    ok(publish_n("s-two", 1), "1 more");
    ok(seen_exactly(&sa, 10, 10), "sub again: gets 10");
    core_unsubscribe(core, a);
}

/* core_sub_pump with max 0 delivers nothing; it must not skip to the top either. */
static void test_sub_pump_zero(void)
{
    struct core_sub *cs;
    struct seen s;
    int64_t since, top;
    char why[GW_ERRLEN];

    ok(publish_n("s-zero", 3), "pump 0: 3 stored");
    seen_init(&s, "s-zero");
    is_int(sub("s-zero", true, 0, &s, &cs, &since, &top, why), GW_OK, "pump 0: sub since 0");
    is_int(core_sub_pump(core, cs, 0, SIZE_MAX, why), GW_OK, "pump 0: ok");
    is_int(s.n, 0, "pump 0: nothing delivered");
    ok(!core_sub_live(cs), "pump 0: still catching up");
    for (int i = 0; i < 10 && !core_sub_live(cs); i++)
        core_sub_pump(core, cs, 2, SIZE_MAX, why);
    ok(seen_exactly(&s, 1, 3), "pump 0, then real pumps: 1..3 delivered");
    core_unsubscribe(core, cs);
}

/*
 * The byte budget of core_sub_pump: each page holds at least one message and
 * stops once about max_bytes of sender and body went out; pages of any size
 * still deliver every message once, in order.
 */
static void test_sub_pump_bytes(void)
{
    struct core_sub *cs;
    struct seen s;
    int64_t since, top;
    char why[GW_ERRLEN];

    ok(publish_n("s-bytes", 10), "pump bytes: 10 stored (each 11 bytes of sender and body)");
    seen_init(&s, "s-bytes");
    is_int(sub("s-bytes", true, 0, &s, &cs, &since, &top, why), GW_OK, "pump bytes: sub since 0");
    is_int(core_sub_pump(core, cs, 100, 0, why), GW_OK, "pump bytes: budget 0");
    ok(seen_exactly(&s, 1, 1), "pump bytes: budget 0 still delivers one message, and only one");
    ok(!core_sub_live(cs), "pump bytes: not live after one");
    int pumps = 0, sizes_ok = 1;
    while (!core_sub_live(cs) && pumps++ < 20) {
        int before = s.n;
        if (core_sub_pump(core, cs, 100, 15, why) != GW_OK)
            break;
        int got = s.n - before;
        if (got < 1 || got > 2) {
            sizes_ok = 0;
            diag("a pump with a 15-byte budget delivered %d messages of 11 bytes", got);
        }
    }
    ok(sizes_ok, "pump bytes: a 15-byte budget gives pages of 1 or 2 messages of 11 bytes");
    ok(core_sub_live(cs), "pump bytes: live after %d budgeted pumps", pumps);
    if (!ok(seen_exactly(&s, 1, 10), "pump bytes: 1..10 each once, in order"))
        seen_diag(&s);
    ok(publish_n("s-bytes", 1), "pump bytes: one more");
    ok(seen_exactly(&s, 1, 11), "pump bytes: 11 pushed live");
    core_unsubscribe(core, cs);
}

static void test_sub_after_shutdown(void)
{
    struct core_sub *cs = NULL;
    struct seen s;
    int64_t since, top;
    char why[GW_ERRLEN];

    seen_init(&s, "s-late");
    is_str(gw_err_code(sub("s-late", false, 0, &s, &cs, &since, &top, why)),
           gw_err_code(GW_E_SHUTDOWN), "subscribe after core_begin_shutdown: GW_E_SHUTDOWN");
    ok(why[0] != '\0' && cs == NULL, "subscribe after shutdown: why set, no subscription");
    is_uint(core_subscribed_channels(core), 0, "no channel left in the hub at the end");
}

int main(void)
{
    char why[GW_ERRLEN];

    log_set_level(GW_LOG_ERROR);
    snprintf(dir, sizeof(dir), "/tmp/visavis-test-core-XXXXXX");
    if (!mkdtemp(dir))
        bail_out("mkdtemp failed");
    snprintf(path, sizeof(path), "%s/core.db", dir);
    if (store_open(&wstore, path, STORE_WRITER, false, why) != GW_OK ||
        store_open(&rstore, path, STORE_READER, false, why) != GW_OK) {
        store_close(wstore);
        remove_dir();
        bail_out("store_open: %s", why);
    }
    writer = writer_new(wstore, why);
    if (!writer) {
        store_close(rstore);
        store_close(wstore);
        remove_dir();
        bail_out("writer_new: %s", why);
    }
    core = core_new(rstore, writer, MAX_BODY);

    test_validation();
    test_good_publish();
    test_edge_publishes();
    test_burst();
    test_history();
    test_message();
    test_channels();
    test_store_failure();
    test_sub_from_now();
    test_sub_replay();
    test_sub_errors();
    test_sub_handover();
    test_sub_uncompleted();
    test_sub_two();
    test_sub_pump_zero();
    test_sub_pump_bytes();
    test_shutdown();
    test_sub_after_shutdown();

    writer_stop(writer);
    writer_complete(writer);
    core_free(core);
    writer_free(writer);
    store_close(rstore);
    store_close(wstore);
    remove_dir();
    return done_testing();
}
