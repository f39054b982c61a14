/*
 * test_store.c - gateway/store.h on real SQLite files in a temporary
 * directory: appends, reads, reopening, schema versions and migrations.
 *
 * This test may include sqlite3.h: it checks what the store leaves on disk,
 * builds the old-schema fixtures, provokes failed appends (a trigger, a lock
 * held, a table dropped, a file size limit) and writes behind the store's
 * back, and checks how each failure is told apart.
 */
#include "store.h"
#include "store_sqlite.h"

#include "gw.h"
#include "log.h"
#include "model.h"
#include "tap.h"
#include "sqlfile.h"
#include "tmpdir.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char dir[64];

static const char *db_path(const char *name)
{
    static char path[4][160];
    static int next;
    char *p = path[next++ % 4];
    snprintf(p, sizeof(path[0]), "%s/%s", dir, name);
    return p;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A message to append, owning copies of its strings. */
static struct gw_msg mk(const char *channel, const char *sender, const char *body, size_t body_len,
                        enum gw_transport via)
{
    struct gw_msg m;
    memset(&m, 0, sizeof(m));
    snprintf(m.channel, sizeof(m.channel), "%s", channel);
    m.sender = gw_xstrdup(sender);
    m.sender_len = strlen(sender);
    m.body = gw_xmemdup(body, body_len);
    m.body_len = body_len;
    m.via = via;
    return m;
}

/* store_append of msgs[0..n-1]; *refused as store_append sets it (refused may be NULL). */
static enum gw_err append_r(struct store *s, struct gw_msg *msgs, size_t n, bool *refused,
                            char why[GW_ERRLEN])
{
    struct gw_msg *ptrs[16];
    if (n > GW_ARRAY_SIZE(ptrs))
        bail_out("append: batch too big for the test helper");
    for (size_t i = 0; i < n; i++)
        ptrs[i] = &msgs[i];
    why[0] = '\0';
    return store_append(s, ptrs, n, refused, why);
}

static enum gw_err append(struct store *s, struct gw_msg *msgs, size_t n, char why[GW_ERRLEN])
{
    return append_r(s, msgs, n, NULL, why);
}

static void release_all(struct gw_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_msg_release(&msgs[i]);
}

/* The messages of a page (store_page without bounds but limit), as store_history gave them. */
static enum gw_err store_history(struct store *r, const char *channel, int64_t since,
                                 unsigned limit, struct gw_msg **out, size_t *n,
                                 char why[GW_ERRLEN])
{
    struct gw_page p;
    enum gw_err err = store_page(r, channel, since, INT64_MAX, limit, SIZE_MAX, &p, why);

    *out = p.msgs;
    *n = p.n;
    p.msgs = NULL;
    p.n = 0;
    gw_page_release(&p);
    return err;
}

/* Number of messages in a channel's history (limit 1000), or -1 on error. */
static long count_history(struct store *r, const char *channel)
{
    struct gw_msg *out;
    size_t n;
    char why[GW_ERRLEN];
    if (store_history(r, channel, 0, 1000, &out, &n, why) != GW_OK)
        return -1;
    gw_msgs_free(out, n);
    return (long)n;
}

static void test_reader_needs_schema(void)
{
    struct store *s = (struct store *)1;
    char why[GW_ERRLEN] = "";
    enum gw_err err = store_open(&s, db_path("fresh.db"), STORE_READER, false, why);

    is_str(gw_err_code(err), gw_err_code(GW_E_SCHEMA),
           "reader on a database no writer has set up: GW_E_SCHEMA");
    ok(s == NULL, "reader on an empty database: *out is NULL");
    ok(why[0] != '\0', "reader on an empty database: why set (\"%s\")", why);
    store_close(NULL);
    ok(1, "store_close(NULL) is a no-op");
}

struct ids {
    int64_t max_id;
    int64_t last_ts;
};

static void test_append_and_read(struct store *w, struct store *r, struct ids *seen)
{
    char why[GW_ERRLEN];
    struct gw_msg batch[5];
    int64_t before = now_ms();

    batch[0] = mk("alpha", "ann", "a1", 2, GW_T_REST);
    batch[1] = mk("beta", "bob", "b1", 2, GW_T_TCP);
    batch[2] = mk("alpha", "ann", "a2", 2, GW_T_REST);
    batch[3] = mk("alpha", "cy", "a3", 2, GW_T_TCP);
    batch[4] = mk("beta", "bob", "b2", 2, GW_T_REST);
    enum gw_err err = append(w, batch, 5, why);
    int64_t after = now_ms();
    if (!is_int(err, GW_OK, "append batch of 5 over two channels"))
        diag("why: %s", why);

    static const int64_t want_seq[5] = {1, 1, 2, 3, 2};
    for (size_t i = 0; i < 5; i++) {
        is_int(batch[i].seq, want_seq[i], "batch[%zu] (%s) seq %lld", i, batch[i].channel,
               (long long)want_seq[i]);
        if (i > 0)
            ok(batch[i].id > batch[i - 1].id, "batch[%zu] id %lld > previous %lld", i,
               (long long)batch[i].id, (long long)batch[i - 1].id);
        else
            ok(batch[i].id >= 1, "batch[0] id %lld >= 1", (long long)batch[i].id);
        ok(batch[i].ts_ms >= before - 1000 && batch[i].ts_ms <= after + 1000,
           "batch[%zu] ts %lld is the commit time", i, (long long)batch[i].ts_ms);
        if (i > 0)
            ok(batch[i].ts_ms >= batch[i - 1].ts_ms, "batch[%zu] ts non-decreasing", i);
    }
    seen->max_id = batch[4].id;
    seen->last_ts = batch[4].ts_ms;

    /* Second transaction: seq and id carry on, ts does not go back. */
    struct gw_msg more[2];
    more[0] = mk("alpha", "ann", "a4", 2, GW_T_REST);
    more[1] = mk("gamma", "gil", "g1", 2, GW_T_REST);
    err = append(w, more, 2, why);
    is_int(err, GW_OK, "append a second batch");
    is_int(more[0].seq, 4, "alpha continues at seq 4");
    is_int(more[1].seq, 1, "a new channel starts at seq 1");
    ok(more[0].id > seen->max_id && more[1].id > more[0].id, "ids keep increasing across commits");
    ok(more[0].ts_ms >= seen->last_ts, "ts non-decreasing across commits");
    seen->max_id = more[1].id;
    seen->last_ts = more[1].ts_ms;

    /* History, read through the reader connection opened before these commits. */
    struct gw_msg *out = NULL;
    size_t n = 99;
    err = store_history(r, "alpha", 0, 100, &out, &n, why);
    is_int(err, GW_OK, "history alpha since 0");
    if (is_uint(n, 4, "history alpha: 4 messages")) {
        static const char *const bodies[] = {"a1", "a2", "a3", "a4"};
        static const char *const senders[] = {"ann", "ann", "cy", "ann"};
        static const enum gw_transport vias[] = {GW_T_REST, GW_T_REST, GW_T_TCP, GW_T_REST};
        const int64_t ids[] = {batch[0].id, batch[2].id, batch[3].id, more[0].id};
        for (size_t i = 0; i < 4; i++) {
            is_int(out[i].seq, (int64_t)i + 1, "history alpha[%zu] seq", i);
            is_int(out[i].id, ids[i], "history alpha[%zu] id", i);
            is_str(out[i].channel, "alpha", "history alpha[%zu] channel", i);
            is_mem(out[i].body, out[i].body_len, bodies[i], 2, "history alpha[%zu] body", i);
            is_mem(out[i].sender, out[i].sender_len, senders[i], strlen(senders[i]),
                   "history alpha[%zu] sender", i);
            is_int(out[i].via, vias[i], "history alpha[%zu] via", i);
        }
        is_int(out[0].ts_ms, batch[0].ts_ms, "history alpha[0] ts as appended");
        is_int(out[3].ts_ms, more[0].ts_ms, "history alpha[3] ts as appended");
    }
    gw_msgs_free(out, n);

    static const struct {
        const char *channel;
        int64_t since;
        unsigned limit;
        size_t n;
        int64_t first_seq;
    } pages[] = {
        {"alpha", 2, 100, 2, 3}, {"alpha", 0, 2, 2, 1},   {"alpha", 1, 2, 2, 2},
        {"alpha", 3, 1, 1, 4},   {"alpha", 4, 100, 0, 0}, {"alpha", 1000, 100, 0, 0},
        {"alpha", -5, 1, 1, 1},  {"beta", 0, 100, 2, 1},  {"beta", 1, 100, 1, 2},
        {"nope", 0, 100, 0, 0},  {"alpha", 0, 0, 0, 0},   {"alpha", 0, 1000, 4, 1},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(pages); i++) {
        out = (struct gw_msg *)1;
        n = 99;
        err = store_history(r, pages[i].channel, pages[i].since, pages[i].limit, &out, &n, why);
        is_int(err, GW_OK, "history %s since %lld limit %u: ok", pages[i].channel,
               (long long)pages[i].since, pages[i].limit);
        is_uint(n, pages[i].n, "history %s since %lld limit %u: %zu messages", pages[i].channel,
                (long long)pages[i].since, pages[i].limit, pages[i].n);
        if (n == 0) {
            ok(out == NULL, "history %s since %lld limit %u: *out NULL when empty",
               pages[i].channel, (long long)pages[i].since, pages[i].limit);
            continue;
        }
        if (n == pages[i].n) {
            int in_order = 1;
            for (size_t k = 0; k < n; k++)
                in_order &= out[k].seq == pages[i].first_seq + (int64_t)k;
            ok(in_order, "history %s since %lld limit %u: seq %lld.. in order", pages[i].channel,
               (long long)pages[i].since, pages[i].limit, (long long)pages[i].first_seq);
        }
        gw_msgs_free(out, n);
    }

    /* One message by id. */
    struct gw_msg m;
    err = store_message(r, batch[1].id, &m, why);
    is_int(err, GW_OK, "message by id");
    is_int(m.id, batch[1].id, "message: id");
    is_int(m.seq, 1, "message: seq");
    is_str(m.channel, "beta", "message: channel");
    is_mem(m.sender, m.sender_len, "bob", 3, "message: sender");
    is_mem(m.body, m.body_len, "b1", 2, "message: body");
    is_int(m.via, GW_T_TCP, "message: via");
    is_int(m.ts_ms, batch[1].ts_ms, "message: ts");
    gw_msg_release(&m);

    static const int64_t missing[] = {0, -1, 999999, INT64_MAX};
    for (size_t i = 0; i < GW_ARRAY_SIZE(missing); i++) {
        why[0] = '\0';
        err = store_message(r, missing[i], &m, why);
        is_str(gw_err_code(err), gw_err_code(GW_E_NOT_FOUND), "message %lld: GW_E_NOT_FOUND",
               (long long)missing[i]);
        ok(why[0] != '\0', "message %lld: why set", (long long)missing[i]);
        if (err == GW_OK)
            gw_msg_release(&m);
    }

    release_all(batch, 5);
    release_all(more, 2);
}

static void test_channels(struct store *w, struct store *r, struct ids *seen)
{
    char why[GW_ERRLEN];
    struct gw_channel_info *chans = NULL;
    size_t n = 0;
    int64_t alpha_ts = seen->last_ts; /* alpha's last message came in the last commit */

    /* Channels created out of name order come back sorted by name. */
    struct gw_msg m[3];
    m[0] = mk("zeta", "z", "z", 1, GW_T_REST);
    m[1] = mk("Zulu", "z", "z", 1, GW_T_REST);
    m[2] = mk("delta", "d", "d", 1, GW_T_REST);
    is_int(append(w, m, 3, why), GW_OK, "append to zeta, Zulu, delta");
    seen->max_id = m[2].id;

    is_int(store_channels(r, "", 1000, &chans, &n, why), GW_OK, "channels");
    static const struct {
        const char *name;
        int64_t messages, last_seq;
    } want[] = {
        {"Zulu", 1, 1},  {"alpha", 4, 4}, {"beta", 2, 2},
        {"delta", 1, 1}, {"gamma", 1, 1}, {"zeta", 1, 1},
    };
    if (is_uint(n, GW_ARRAY_SIZE(want), "channels: %zu of them", GW_ARRAY_SIZE(want))) {
        for (size_t i = 0; i < n; i++) {
            is_str(chans[i].name, want[i].name, "channels[%zu] name (sorted)", i);
            is_int(chans[i].messages, want[i].messages, "channels[%zu] messages", i);
            is_int(chans[i].last_seq, want[i].last_seq, "channels[%zu] last_seq", i);
        }
        is_int(chans[5].last_ts_ms, m[0].ts_ms, "channels: last_ts is the last message's ts");
        is_int(chans[1].last_ts_ms, alpha_ts, "channels: alpha's last_ts is its last message's");
    }
    free(chans);
    release_all(m, 3);
}

static void append_n(struct store *w, const char *channel, const char *body, size_t body_len,
                     size_t n);

/* The names of a page of store_channels(after, limit), blank-separated; "ERROR" on failure. */
static const char *channel_page(struct store *r, const char *after, unsigned limit)
{
    static char out[1024];
    char why[GW_ERRLEN];
    struct gw_channel_info *chans = NULL;
    size_t n = 0, used = 0;

    out[0] = '\0';
    if (store_channels(r, after, limit, &chans, &n, why) != GW_OK) {
        diag("store_channels(%s, %u): %s", after, limit, why);
        return "ERROR";
    }
    if (n == 0 && chans != NULL)
        return "ERROR: an array for no channel";
    for (size_t i = 0; i < n && used < sizeof(out); i++)
        used +=
            (size_t)snprintf(out + used, sizeof(out) - used, "%s%s", i ? " " : "", chans[i].name);
    free(chans);
    return out;
}

static int by_bytes(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/*
 * The listing in pages: the names after `after` in byte order (upper case
 * before '_' before lower case), at most limit; following the last name of
 * each page lists every channel once.
 */
static void test_channel_pages(struct store *w, struct store *r)
{
    char why[GW_ERRLEN];

    /* The channels so far: Zulu alpha beta delta gamma zeta. */
    is_str(channel_page(r, "", 2), "Zulu alpha", "first page of 2");
    is_str(channel_page(r, "alpha", 2), "beta delta", "after alpha: the next 2");
    is_str(channel_page(r, "delta", 2), "gamma zeta", "after delta: the last 2, a full page");
    is_str(channel_page(r, "zeta", 2), "", "after the last name: none");
    is_str(channel_page(r, "b", 1), "beta", "after a name no channel has");
    is_str(channel_page(r, "Zulu", 100), "alpha beta delta gamma zeta", "a page not full");
    is_str(channel_page(r, "A", 1), "Zulu", "byte order: Zulu before alpha");
    is_str(channel_page(r, "alph", 1), "alpha", "after a prefix: the name it starts");
    is_str(channel_page(r, "alpha-", 1), "beta", "after a longer name than alpha");
    is_str(channel_page(r, "zzzz", 5), "", "past every name");

    /* 300 more, made out of order, with every character a name may hold. */
    static const char chars[] = "-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ_abcdefghijklmnopqrstuvwxyz";
    enum { MORE = 300 };
    char *names[MORE + 16];
    size_t total = 0;
    struct gw_channel_info *all = NULL;
    size_t nall = 0;
    if (store_channels(r, "", 1000, &all, &nall, why) != GW_OK || nall > 16)
        bail_out("store_channels: %zu channels (%s)", nall, why);
    for (size_t i = 0; i < nall; i++)
        names[total++] = gw_xstrdup(all[i].name);
    free(all);
    for (size_t i = 0; i < MORE; i++) {
        char name[GW_CHANNEL_MAX + 1];
        size_t len = 1 + (i * 7) % GW_CHANNEL_MAX;
        for (size_t k = 0; k < len; k++)
            name[k] = chars[(i * 31 + k * 17) % (sizeof(chars) - 1)];
        name[len] = '\0';
        bool dup = false;
        for (size_t j = 0; j < total; j++)
            dup |= strcmp(names[j], name) == 0;
        if (dup)
            continue;
        names[total++] = gw_xstrdup(name);
        append_n(w, name, "x", 1, 1);
    }
    qsort(names, total, sizeof(names[0]), by_bytes);

    size_t seen = 0, pages = 0;
    bool in_order = true, within = true;
    char after[GW_CHANNEL_MAX + 1] = "";
    for (;;) {
        struct gw_channel_info *chans = NULL;
        size_t n = 0;
        if (store_channels(r, after, 7, &chans, &n, why) != GW_OK) {
            ok(0, "store_channels(%s, 7): %s", after, why);
            break;
        }
        pages++;
        within &= n <= 7;
        for (size_t i = 0; i < n; i++) {
            in_order &= seen < total && strcmp(chans[i].name, names[seen]) == 0;
            seen++;
        }
        if (n)
            snprintf(after, sizeof(after), "%s", chans[n - 1].name);
        free(chans);
        if (n < 7 || pages > total)
            break;
    }
    ok(within, "pages of at most 7");
    is_uint(seen, total, "following the last name lists all %zu channels", total);
    ok(in_order, "each once, in byte order (strcmp)");
    is_uint(pages, total / 7 + 1, "%zu pages", total / 7 + 1);
    for (size_t i = 0; i < total; i++)
        free(names[i]);
}

static void test_bodies(struct store *w, struct store *r)
{
    char why[GW_ERRLEN];
    static const char nul_body[] = "x\0y\0\0z";
    struct gw_msg m[3], got;

    char *big = gw_xmalloc(GW_BODY_MAX);
    for (size_t i = 0; i < GW_BODY_MAX; i++)
        big[i] = (char)('a' + i % 26);
    m[0] = mk("bodies", "s", nul_body, sizeof(nul_body) - 1, GW_T_REST);
    m[1] = mk("bodies", "s", "", 0, GW_T_REST);
    m[2] = mk("bodies", "s\xc3\xa9nder", big, GW_BODY_MAX, GW_T_TCP);
    free(big);
    is_int(append(w, m, 3, why), GW_OK, "append bodies with NULs, empty, %d bytes", GW_BODY_MAX);

    is_int(store_message(r, m[0].id, &got, why), GW_OK, "read back the body with NULs");
    is_mem(got.body, got.body_len, nul_body, sizeof(nul_body) - 1,
           "body with embedded NULs round-trips with its length");
    ok(got.body && got.body[got.body_len] == '\0', "body with NULs is NUL-terminated");
    gw_msg_release(&got);

    is_int(store_message(r, m[1].id, &got, why), GW_OK, "read back the empty body");
    ok(got.body != NULL && got.body_len == 0 && got.body[0] == '\0',
       "empty body reads back as \"\" of length 0");
    gw_msg_release(&got);

    is_int(store_message(r, m[2].id, &got, why), GW_OK, "read back the big body");
    is_mem(got.body, got.body_len, m[2].body, m[2].body_len, "big body round-trips");
    is_mem(got.sender, got.sender_len, "s\xc3\xa9nder", 7, "UTF-8 sender round-trips");
    gw_msg_release(&got);

    struct gw_msg *out;
    size_t n;
    is_int(store_history(r, "bodies", 0, 10, &out, &n, why), GW_OK, "history of bodies");
    if (is_uint(n, 3, "history of bodies: 3"))
        is_mem(out[0].body, out[0].body_len, nul_body, sizeof(nul_body) - 1,
               "history keeps the NULs too");
    gw_msgs_free(out, n);
    release_all(m, 3);
}

/* A trigger added behind the store's back makes one message of a batch fail. */
static void test_failed_append(struct store *w, struct store *r, const char *path, struct ids *seen)
{
    char why[GW_ERRLEN];
    long alpha_before = count_history(r, "alpha");
    struct gw_channel_info *chans;
    size_t nchans_before, nchans_after;

    is_int(store_channels(r, "", 1000, &chans, &nchans_before, why), GW_OK,
           "channels before the failure");
    free(chans);
    if (sql_exec(path, "CREATE TRIGGER boom BEFORE INSERT ON messages WHEN NEW.body = 'boom' "
                       "BEGIN SELECT RAISE(ABORT, 'boom trigger'); END;") < 0) {
        skip("failed append: could not install the trigger");
        return;
    }

    struct gw_msg m[3];
    bool refused = false;
    m[0] = mk("alpha", "s", "fine", 4, GW_T_REST);
    m[1] = mk("newchan", "s", "fine too", 8, GW_T_REST);
    m[2] = mk("alpha", "s", "boom", 4, GW_T_REST);
    enum gw_err err = append_r(w, m, 3, &refused, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE), "append with a failing message: GW_E_STORE");
    ok(refused, "append with a failing message: the row was refused, not the database");
    ok(strstr(why, "boom trigger") != NULL, "failed append: why has SQLite's reason (\"%s\")", why);
    int untouched = 1;
    for (size_t i = 0; i < 3; i++)
        untouched &= m[i].id == 0 && m[i].seq == 0 && m[i].ts_ms == 0;
    ok(untouched, "failed append: id, seq, ts of every message still 0");
    is_int(count_history(r, "alpha"), alpha_before, "failed append: alpha has nothing new");
    is_int(count_history(r, "newchan"), 0, "failed append: newchan has no message");
    is_int(store_channels(r, "", 1000, &chans, &nchans_after, why), GW_OK,
           "channels after the failure");
    is_uint(nchans_after, nchans_before, "failed append: the new channel was rolled back too");
    free(chans);
    release_all(m, 3);

    /* The contract says the messages are unchanged, whatever they held. */
    m[0] = mk("alpha", "s", "fine", 4, GW_T_REST);
    m[1] = mk("alpha", "s", "boom", 4, GW_T_REST);
    m[0].id = m[1].id = -7;
    m[0].seq = m[1].seq = -8;
    m[0].ts_ms = m[1].ts_ms = -9;
    refused = false;
    err = append_r(w, m, 2, &refused, why);
    is_int(err, GW_E_STORE, "failed append with preset fields: GW_E_STORE");
    ok(refused, "failed append with preset fields: refused");
    is_int(m[1].id, -7, "failed append: the failing message's id unchanged");
    ok(m[0].id == -7 && m[0].seq == -8 && m[0].ts_ms == -9,
       "failed append: messages before the failing one unchanged (got id %lld seq %lld ts %lld)",
       (long long)m[0].id, (long long)m[0].seq, (long long)m[0].ts_ms);
    release_all(m, 2);

    /* Nothing is left half-done: the next append works and seq has no gap. */
    if (sql_exec(path, "DROP TRIGGER boom;") < 0)
        bail_out("could not drop the trigger");
    m[0] = mk("alpha", "s", "boom", 4, GW_T_REST);
    err = append(w, m, 1, why);
    if (!is_int(err, GW_OK, "append after the failure works"))
        diag("why: %s", why);
    is_int(m[0].seq, alpha_before + 1, "append after the failure: seq continues without a gap");
    ok(m[0].id > seen->max_id, "append after the failure: id above every earlier one");
    seen->max_id = m[0].id;
    release_all(m, 1);
}

/* Appends n messages with body body to channel, one transaction each batch of up to 16. */
static void append_n(struct store *w, const char *channel, const char *body, size_t body_len,
                     size_t n)
{
    char why[GW_ERRLEN];
    struct gw_msg m[16];

    while (n) {
        size_t k = n < 16 ? n : 16;
        for (size_t i = 0; i < k; i++)
            m[i] = mk(channel, "p", body, body_len, GW_T_REST);
        if (append(w, m, k, why) != GW_OK)
            bail_out("append_n: %s", why);
        release_all(m, k);
        n -= k;
    }
}

/* Pages bounded in count and in encoded bytes, with their top and next_since. */
static void test_page_bounds(struct store *w, struct store *r)
{
    char why[GW_ERRLEN], body[1000];
    struct gw_page p;

    memset(body, 'b', sizeof(body));
    append_n(w, "pg", body, sizeof(body), 10);
    size_t one; /* the encoded size of one of them */
    is_int(store_page(r, "pg", 0, INT64_MAX, 1, SIZE_MAX, &p, why), GW_OK, "page of one");
    one = p.n ? gw_msg_wire_len(&p.msgs[0]) : 0;
    ok(one > 1000 && one < 1200, "one message is %zu encoded bytes", one);
    is_int(p.top, 10, "the page has the channel's top");
    ok(p.full, "a page stopped by its limit is full");
    is_int(p.next_since, 1, "next_since after one");
    gw_page_release(&p);

    static const struct {
        size_t max_bytes;
        size_t n;
        int full;
    } cases[] = {{1, 1, 1}, {0, 1, 1}, {2000, 1, 1}, {2500, 2, 1}, {5000, 4, 1}, {SIZE_MAX, 10, 0}};
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        size_t max = cases[i].max_bytes == 2500   ? 2 * one + 10
                     : cases[i].max_bytes == 5000 ? 4 * one + one / 2
                     : cases[i].max_bytes == 2000 ? 2 * one - 1
                                                  : cases[i].max_bytes;
        is_int(store_page(r, "pg", 0, INT64_MAX, 100, max, &p, why), GW_OK, "page of %zu bytes",
               max);
        is_uint(p.n, cases[i].n, "%zu bytes hold %zu messages (at least one)", max, cases[i].n);
        is_int(p.full, cases[i].full, "%zu bytes: full %d", max, cases[i].full);
        is_int(p.next_since, (int64_t)p.n, "%zu bytes: next_since is the last seq", max);
        is_uint(p.ngaps, 0, "%zu bytes: no gaps", max);
        gw_page_release(&p);
    }

    /* upto caps the page; since at or past the top reads nothing but the top. */
    is_int(store_page(r, "pg", 3, 6, 100, SIZE_MAX, &p, why), GW_OK, "page 3..6");
    is_uint(p.n, 3, "upto 6: seqs 4, 5, 6");
    is_int(p.next_since, 6, "upto 6: next_since 6");
    ok(!p.full, "upto 6: not full");
    gw_page_release(&p);
    for (int64_t since = 10; since <= 12; since++) {
        is_int(store_page(r, "pg", since, INT64_MAX, 100, SIZE_MAX, &p, why), GW_OK,
               "page since %lld", (long long)since);
        ok(p.n == 0 && p.ngaps == 0 && p.top == 10 && p.next_since == since,
           "since %lld: empty, top 10, next_since = since", (long long)since);
        gw_page_release(&p);
    }
    is_int(store_page(r, "pg-none", 0, INT64_MAX, 100, SIZE_MAX, &p, why), GW_OK, "unknown");
    ok(p.n == 0 && p.top == 0 && p.next_since == 0 && !p.full, "an unknown channel: empty, top 0");
    gw_page_release(&p);
    is_int(store_page(r, "pg", 0, INT64_MAX, 0, SIZE_MAX, &p, why), GW_OK, "limit 0");
    ok(p.n == 0 && p.top == 10 && p.next_since == 0, "limit 0: nothing, with the top");
    gw_page_release(&p);

    /* The bound counts bytes as encoded: a body of control characters takes six each. */
    char ctl[100];
    memset(ctl, 1, sizeof(ctl));
    append_n(w, "pg-ctl", ctl, sizeof(ctl), 10);
    is_int(store_page(r, "pg-ctl", 0, INT64_MAX, 100, 2000, &p, why), GW_OK, "escaped page");
    is_uint(p.n, 2, "2000 bytes hold two messages of 100 control characters (600+ each)");
    size_t sum = 0;
    for (size_t i = 0; i < p.n; i++)
        sum += gw_msg_wire_len(&p.msgs[i]);
    ok(sum <= 2000 && sum > 1200, "what they take, %zu bytes, counts the escapes", sum);
    gw_page_release(&p);
}

/* Holes in the store are reported where they are, never skipped in silence. */
static void test_page_gaps(struct store *w, struct store *r, const char *path)
{
    char why[GW_ERRLEN];
    struct gw_page p;

    append_n(w, "holes", "x", 1, 10);
    /* Outside damage: seqs 3..4 and 9..10 gone. */
    sql_exec(path, "DELETE FROM messages WHERE seq IN (3, 4, 9, 10) AND channel_id = "
                   "(SELECT id FROM channels WHERE name = 'holes')");
    is_int(store_page(r, "holes", 0, INT64_MAX, 100, SIZE_MAX, &p, why), GW_OK, "page over holes");
    is_uint(p.n, 6, "six messages left");
    if (is_uint(p.ngaps, 2, "two holes")) {
        ok(p.gaps[0].from == 3 && p.gaps[0].to == 4 && p.gaps[0].before == 2,
           "3..4 before the third message (got %lld..%lld before %zu)", (long long)p.gaps[0].from,
           (long long)p.gaps[0].to, p.gaps[0].before);
        ok(p.gaps[1].from == 9 && p.gaps[1].to == 10 && p.gaps[1].before == 6,
           "9..10 at the end (got %lld..%lld before %zu)", (long long)p.gaps[1].from,
           (long long)p.gaps[1].to, p.gaps[1].before);
    }
    is_int(p.next_since, 10, "next_since goes past the last hole");
    is_int(p.top, 10, "top 10");
    gw_page_release(&p);

    is_int(store_page(r, "holes", 2, INT64_MAX, 100, SIZE_MAX, &p, why), GW_OK, "from 2");
    ok(p.ngaps >= 1 && p.gaps[0].from == 3 && p.gaps[0].before == 0, "from 2: the hole first");
    ok(p.n && p.msgs[0].seq == 5, "then seq 5");
    gw_page_release(&p);

    is_int(store_page(r, "holes", 8, INT64_MAX, 100, SIZE_MAX, &p, why), GW_OK, "from 8");
    ok(p.n == 0 && p.ngaps == 1 && p.gaps[0].from == 9 && p.gaps[0].to == 10,
       "from 8: only the hole 9..10");
    is_int(p.next_since, 10, "from 8: next_since 10");
    gw_page_release(&p);

    /* A full page does not claim a hole it did not reach. */
    is_int(store_page(r, "holes", 0, INT64_MAX, 2, SIZE_MAX, &p, why), GW_OK, "limit 2");
    ok(p.n == 2 && p.ngaps == 0 && p.full && p.next_since == 2, "limit 2: 1, 2 and no hole");
    gw_page_release(&p);
    is_int(store_page(r, "holes", 0, INT64_MAX, 3, SIZE_MAX, &p, why), GW_OK, "limit 3");
    ok(p.n == 3 && p.ngaps == 1 && p.msgs[2].seq == 5 && p.next_since == 5,
       "limit 3: 1, 2, hole 3..4, 5");
    gw_page_release(&p);
}

static double elapsed_ms(const struct timespec *t0)
{
    struct timespec t1;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    return (double)(t1.tv_sec - t0->tv_sec) * 1e3 + (double)(t1.tv_nsec - t0->tv_nsec) / 1e6;
}

/* A connection of the test's own to path, or bail out. */
static sqlite3 *outside(const char *path)
{
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK)
        bail_out("cannot open %s: %s", path, db ? sqlite3_errmsg(db) : "no memory");
    return db;
}

static int outside_exec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK)
        diag("outside_exec(%s): %s", sql, msg ? msg : sqlite3_errstr(rc));
    sqlite3_free(msg);
    return rc;
}

/* A writer and a reader on a fresh file name in the test directory, or bail out. */
static const char *open_pair(const char *name, struct store **w, struct store **r)
{
    const char *path = db_path(name);
    char why[GW_ERRLEN];

    *w = *r = NULL;
    if (store_open(w, path, STORE_WRITER, false, why) != GW_OK ||
        store_open(r, path, STORE_READER, false, why) != GW_OK)
        bail_out("%s: cannot open: %s", name, why);
    return path;
}

static void test_error_of(void)
{
    static const struct {
        int rc, sys_errno;
        enum gw_err want;
        bool refused;
    } cases[] = {
        {SQLITE_BUSY, 0, GW_E_STORE_BUSY, false},
        {SQLITE_BUSY_RECOVERY, 0, GW_E_STORE_BUSY, false},
        {SQLITE_BUSY_SNAPSHOT, 0, GW_E_STORE_BUSY, false},
        {SQLITE_BUSY_TIMEOUT, 0, GW_E_STORE_BUSY, false},
        {SQLITE_LOCKED, 0, GW_E_STORE_BUSY, false},
        {SQLITE_LOCKED_SHAREDCACHE, 0, GW_E_STORE_BUSY, false},
        {SQLITE_PROTOCOL, 0, GW_E_STORE_BUSY, false},
        {SQLITE_FULL, 0, GW_E_STORE_FULL, false},
        {SQLITE_FULL, ENOSPC, GW_E_STORE_FULL, false},
        {SQLITE_NOLFS, 0, GW_E_STORE_FULL, false},
        {SQLITE_IOERR_WRITE, ENOSPC, GW_E_STORE_FULL, false},
        {SQLITE_IOERR_WRITE, EDQUOT, GW_E_STORE_FULL, false},
        {SQLITE_IOERR_WRITE, EFBIG, GW_E_STORE_FULL, false},
        {SQLITE_IOERR_FSYNC, ENOSPC, GW_E_STORE_FULL, false},
        {SQLITE_IOERR_WRITE, EIO, GW_E_STORE, false},
        {SQLITE_IOERR_FSYNC, EIO, GW_E_STORE, false},
        {SQLITE_IOERR_READ, 0, GW_E_STORE, false},
        {SQLITE_IOERR_NOMEM, 0, GW_E_STORE, false},
        {SQLITE_CORRUPT, 0, GW_E_STORE, false},
        {SQLITE_NOTADB, 0, GW_E_STORE, false},
        {SQLITE_READONLY, 0, GW_E_STORE, false},
        {SQLITE_READONLY_DBMOVED, 0, GW_E_STORE, false},
        {SQLITE_CANTOPEN, ENOENT, GW_E_STORE, false},
        {SQLITE_PERM, EACCES, GW_E_STORE, false},
        {SQLITE_ERROR, 0, GW_E_STORE, false},
        {SQLITE_MISUSE, 0, GW_E_STORE, false},
        {SQLITE_NOMEM, 0, GW_E_STORE, false},
        {SQLITE_ABORT, 0, GW_E_STORE, false},
        {SQLITE_CONSTRAINT, 0, GW_E_STORE, true},
        {SQLITE_CONSTRAINT_UNIQUE, 0, GW_E_STORE, true},
        {SQLITE_CONSTRAINT_FOREIGNKEY, 0, GW_E_STORE, true},
        {SQLITE_CONSTRAINT_NOTNULL, 0, GW_E_STORE, true},
        {SQLITE_CONSTRAINT_TRIGGER, 0, GW_E_STORE, true},
        {SQLITE_CONSTRAINT_CHECK, 0, GW_E_STORE, true},
        {SQLITE_TOOBIG, 0, GW_E_STORE, true},
        {SQLITE_MISMATCH, 0, GW_E_STORE, true},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        bool refused = !cases[i].refused;
        enum gw_err got = store_error_of(cases[i].rc, cases[i].sys_errno, &refused);
        is_str(gw_err_code(got), gw_err_code(cases[i].want), "%s (errno %d): %s",
               sqlite3_errstr(cases[i].rc), cases[i].sys_errno, gw_err_code(cases[i].want));
        is_int(refused, cases[i].refused, "%s (errno %d): %s", sqlite3_errstr(cases[i].rc),
               cases[i].sys_errno, cases[i].refused ? "the row refused" : "not the row's fault");
    }
}

/* Another connection holds the write lock: the writer fails fast, whole, and then recovers. */
static void test_busy(void)
{
    struct store *w, *r;
    const char *path = open_pair("busy.db", &w, &r);
    char why[GW_ERRLEN];
    struct gw_msg m[5];
    struct timespec t0;
    bool refused = true;

    m[0] = mk("b", "s", "before", 6, GW_T_REST);
    is_int(append(w, m, 1, why), GW_OK, "busy: an append before the lock");
    release_all(m, 1);

    sqlite3 *db = outside(path);
    is_int(outside_exec(db, "BEGIN IMMEDIATE"), SQLITE_OK, "busy: the test holds the write lock");
    for (size_t i = 0; i < 5; i++)
        m[i] = mk(i % 2 ? "b" : "other", "s", "held", 4, GW_T_REST);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    enum gw_err err = append_r(w, m, 5, &refused, why);
    double ms = elapsed_ms(&t0);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE_BUSY),
           "busy: a batch of 5 gets GW_E_STORE_BUSY");
    ok(!refused, "busy: not a refused row");
    ok(why[0] != '\0', "busy: why set (\"%s\")", why);
    ok(ms >= 500 && ms < 3000, "busy: one bounded wait for the whole batch (%.0f ms)", ms);
    ok(m[0].id == 0 && m[0].seq == 0 && m[4].seq == 0, "busy: the messages are unchanged");
    is_int(count_history(r, "b"), 1, "busy: nothing new stored");
    is_int(count_history(r, "other"), 0, "busy: no channel created");

    /* Readers are not blocked by a writer in WAL mode. */
    is_int(sql_int(path, "SELECT count(*) FROM messages"), 1,
           "busy: an outside reader still reads");

    is_int(outside_exec(db, "ROLLBACK"), SQLITE_OK, "busy: the test lets go");
    err = append(w, m, 5, why);
    if (!is_int(err, GW_OK, "busy: the same batch passes once the lock is gone"))
        diag("why: %s", why);
    is_int(m[1].seq, 2, "busy: seq goes on without a gap");
    is_int(m[0].seq, 1, "busy: the channel the failed try would have created starts at 1");
    release_all(m, 5);

    sqlite3_close(db);
    store_close(r);
    store_close(w);
}

struct stopper {
    struct store *s;
    unsigned after_ms;
};

static void *stop_later(void *arg)
{
    struct stopper *st = arg;
    struct timespec ts = {0, (long)st->after_ms * 1000000L};
    nanosleep(&ts, NULL);
    store_stop_waiting(st->s);
    return NULL;
}

/* store_stop_waiting ends a wait under way at once, and every later one. */
static void test_stop_waiting(void)
{
    const char *path = db_path("stop.db");
    struct store *w = NULL;
    char why[GW_ERRLEN];
    struct gw_msg m[1];
    struct timespec t0;
    pthread_t th;

    if (store_open(&w, path, STORE_WRITER, false, why) != GW_OK)
        bail_out("stop: cannot open: %s", why);
    sqlite3 *db = outside(path);
    outside_exec(db, "BEGIN IMMEDIATE");
    struct stopper st = {w, 150};
    m[0] = mk("s", "s", "x", 1, GW_T_REST);
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (pthread_create(&th, NULL, stop_later, &st) != 0)
        bail_out("pthread_create failed");
    enum gw_err err = append(w, m, 1, why);
    double ms = elapsed_ms(&t0);
    pthread_join(th, NULL);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE_BUSY),
           "stop: the wait ends in GW_E_STORE_BUSY");
    ok(ms >= 100 && ms < 600, "stop: it ended when told, not at the 1 s bound (%.0f ms)", ms);

    clock_gettime(CLOCK_MONOTONIC, &t0);
    err = append(w, m, 1, why);
    ms = elapsed_ms(&t0);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE_BUSY), "stop: later appends fail busy too");
    ok(ms < 100, "stop: without waiting (%.0f ms)", ms);

    outside_exec(db, "COMMIT");
    sqlite3_close(db);
    err = append(w, m, 1, why);
    is_int(err, GW_OK, "stop: with nobody holding the lock an append needs no wait");
    release_all(m, 1);
    store_close(w);
}

/* Writes behind the writer's back make its channel cache stale: one retry from disk. */
static void test_stale_cache(void)
{
    struct store *w, *r;
    const char *path = open_pair("stale.db", &w, &r);
    char why[GW_ERRLEN];
    struct gw_msg m[3];
    bool refused = true;

    m[0] = mk("st", "s", "1", 1, GW_T_REST);
    m[1] = mk("st", "s", "2", 1, GW_T_REST);
    m[2] = mk("gone", "s", "g", 1, GW_T_REST);
    is_int(append(w, m, 3, why), GW_OK, "stale: appends that fill the cache");
    release_all(m, 3);

    /* Another process takes seq 3 of st, and removes the channel gone. */
    sqlite3 *db = outside(path);
    is_int(outside_exec(db,
                        "INSERT INTO messages(channel_id, seq, sender, body, ts, via) "
                        "SELECT id, 3, 'x', 'outside', 0, 'rest' FROM channels WHERE name = 'st';"
                        "UPDATE channels SET last_seq = 3, msg_count = 3 WHERE name = 'st';"
                        "DELETE FROM messages WHERE channel_id = "
                        "(SELECT id FROM channels WHERE name = 'gone');"
                        "DELETE FROM channels WHERE name = 'gone';"),
           SQLITE_OK, "stale: the outside writes");
    sqlite3_close(db);

    m[0] = mk("st", "s", "4", 1, GW_T_REST);
    m[1] = mk("gone", "s", "again", 5, GW_T_REST);
    m[2] = mk("st", "s", "5", 1, GW_T_REST);
    enum gw_err err = append_r(w, m, 3, &refused, why);
    if (!is_int(err, GW_OK, "stale: the append after them passes, read again from disk"))
        diag("why: %s", why);
    ok(!refused, "stale: nothing refused");
    is_int(m[0].seq, 4, "stale: st goes on after the outside seq 3");
    is_int(m[2].seq, 5, "stale: st's next in the batch");
    is_int(m[1].seq, 1, "stale: the removed channel starts over");
    is_int(count_history(r, "st"), 5, "stale: st holds 5 messages");
    release_all(m, 3);
    store_close(r);
    store_close(w);
}

/* A database gone wrong under the writer fails any batch alike: not a refused row. */
static void test_broken(void)
{
    const char *path = db_path("broken.db");
    struct store *w = NULL;
    char why[GW_ERRLEN];
    struct gw_msg m[2];
    bool refused = true;

    if (store_open(&w, path, STORE_WRITER, false, why) != GW_OK)
        bail_out("broken: cannot open: %s", why);
    m[0] = mk("c", "s", "1", 1, GW_T_REST);
    is_int(append(w, m, 1, why), GW_OK, "broken: an append while whole");
    release_all(m, 1);
    is_int(sql_exec(path, "DROP TABLE messages;"), 0, "broken: the messages table dropped");
    m[0] = mk("c", "s", "2", 1, GW_T_REST);
    m[1] = mk("d", "s", "3", 1, GW_T_REST);
    enum gw_err err = append_r(w, m, 2, &refused, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE), "broken: GW_E_STORE");
    ok(!refused, "broken: the database's fault, not a row's (\"%s\")", why);
    release_all(m, 2);
    store_close(w);
}

/* The largest size of path and its -wal, in bytes. */
static off_t db_files_size(const char *path)
{
    char wal[200];
    struct stat st;
    off_t size = 0;

    if (stat(path, &st) == 0)
        size = st.st_size;
    snprintf(wal, sizeof(wal), "%s-wal", path);
    if (stat(wal, &st) == 0 && st.st_size > size)
        size = st.st_size;
    return size;
}

/*
 * Full: a file size limit (RLIMIT_FSIZE) stops the WAL from growing, as a
 * full disk does. Nothing is printed while it holds: stdout may be a file.
 */
static void test_full(void)
{
    struct store *w, *r;
    const char *path = open_pair("full.db", &w, &r);
    char why[GW_ERRLEN], why_full[GW_ERRLEN];
    struct gw_msg m[2];
    struct rlimit old, lim;
    bool refused = true;

    m[0] = mk("f", "s", "1", 1, GW_T_REST);
    is_int(append(w, m, 1, why), GW_OK, "full: an append with room");
    release_all(m, 1);

    size_t big_len = 256 * 1024;
    char *big = gw_xmalloc(big_len);
    memset(big, 'b', big_len);
    m[0] = mk("f", "s", "2", 1, GW_T_REST);
    m[1] = mk("f", "s", big, big_len, GW_T_REST);
    free(big);

    if (getrlimit(RLIMIT_FSIZE, &old) < 0)
        bail_out("getrlimit: %s", strerror(errno));
    lim = old;
    lim.rlim_cur = (rlim_t)db_files_size(path) + 16 * 1024;
    void (*old_handler)(int) = signal(SIGXFSZ, SIG_IGN);
    if (setrlimit(RLIMIT_FSIZE, &lim) < 0)
        bail_out("setrlimit: %s", strerror(errno));
    enum gw_err err = append_r(w, m, 2, &refused, why_full);
    setrlimit(RLIMIT_FSIZE, &old);
    signal(SIGXFSZ, old_handler);

    is_str(gw_err_code(err), gw_err_code(GW_E_STORE_FULL), "full: past the limit, GW_E_STORE_FULL");
    ok(!refused, "full: not a refused row (\"%s\")", why_full);
    is_int(count_history(r, "f"), 1, "full: nothing of the batch stored");
    err = append(w, m, 2, why);
    if (!is_int(err, GW_OK, "full: with room again the same batch passes"))
        diag("why: %s", why);
    is_int(m[0].seq, 2, "full: seq goes on without a gap");
    release_all(m, 2);
    store_close(r);
    store_close(w);
}

/* One writer per file: a second one is refused, the first goes on. */
static void test_in_use(void)
{
    const char *path = db_path("in_use.db");
    struct store *w = NULL, *w2 = (struct store *)1, *r = NULL;
    char why[GW_ERRLEN], pid[32];
    struct gw_msg m[1];

    if (store_open(&w, path, STORE_WRITER, false, why) != GW_OK)
        bail_out("in use: cannot open: %s", why);
    m[0] = mk("u", "s", "1", 1, GW_T_REST);
    is_int(append(w, m, 1, why), GW_OK, "in use: the first writer appends");
    release_all(m, 1);

    why[0] = '\0';
    enum gw_err err = store_open(&w2, path, STORE_WRITER, false, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_STORE_IN_USE),
           "in use: a second writer on the file: GW_E_STORE_IN_USE");
    ok(w2 == NULL, "in use: *out NULL");
    snprintf(pid, sizeof(pid), "pid %ld", (long)getpid());
    ok(strstr(why, pid) != NULL, "in use: why names the holder, %s (\"%s\")", pid, why);
    if (err == GW_OK)
        store_close(w2);

    is_int(store_open(&r, path, STORE_READER, false, why), GW_OK, "in use: a reader still opens");
    m[0] = mk("u", "s", "2", 1, GW_T_REST);
    is_int(append(w, m, 1, why), GW_OK, "in use: the first writer still appends");
    is_int(m[0].seq, 2, "in use: its seq goes on");
    release_all(m, 1);
    is_int(count_history(r, "u"), 2, "in use: the reader sees both");
    is_int(sql_int(path, "SELECT count(*) FROM messages"), 2,
           "in use: an outside connection reads the file");
    is_int(sql_exec(path, "CREATE TABLE outside_note(x);"), 0,
           "in use: an outside connection may even write it");
    store_close(r);
    store_close(w);

    w2 = NULL;
    is_int(store_open(&w2, path, STORE_WRITER, false, why), GW_OK,
           "in use: once the first is closed, a writer opens");
    store_close(w2);
}

static void test_reopen(const char *path, struct ids *seen)
{
    struct store *w = NULL, *r = NULL;
    char why[GW_ERRLEN];

    is_int(store_open(&w, path, STORE_WRITER, true, why), GW_OK, "reopen the writer");
    is_int(store_open(&r, path, STORE_READER, false, why), GW_OK, "reopen the reader");
    if (!w || !r) {
        store_close(r);
        store_close(w);
        return;
    }
    is_int(sql_int(path, "PRAGMA user_version"), store_schema_version(),
           "reopened: schema version unchanged");
    is_int(count_history(r, "alpha"), 5, "reopened: alpha still has its 5 messages");
    is_int(count_history(r, "bodies"), 3, "reopened: bodies still has its 3 messages");

    struct gw_msg m[2];
    m[0] = mk("alpha", "s", "after restart", 13, GW_T_REST);
    m[1] = mk("beta", "s", "after restart", 13, GW_T_REST);
    is_int(append(w, m, 2, why), GW_OK, "reopened: append");
    is_int(m[0].seq, 6, "reopened: alpha's seq continues at 6");
    is_int(m[1].seq, 3, "reopened: beta's seq continues at 3");
    ok(m[0].id > seen->max_id, "reopened: ids continue above %lld", (long long)seen->max_id);
    ok(m[0].ts_ms >= seen->last_ts, "reopened: ts not before earlier commits");
    release_all(m, 2);
    store_close(r);
    store_close(w);
}

static void test_schema_newer(const char *path)
{
    struct store *s = (struct store *)1;
    char why[GW_ERRLEN] = "", want[32];
    enum gw_err err;

    if (sql_exec(path, "PRAGMA user_version = 99;") < 0) {
        skip("could not set user_version");
        return;
    }
    err = store_open(&s, path, STORE_WRITER, false, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_SCHEMA), "writer on schema 99: GW_E_SCHEMA");
    ok(s == NULL, "writer on schema 99: *out NULL");
    ok(strstr(why, "99") != NULL, "writer on schema 99: why names 99 (\"%s\")", why);
    snprintf(want, sizeof(want), "%d", store_schema_version());
    ok(strstr(why, want) != NULL, "writer on schema 99: why names this binary's version %s", want);
    is_int(sql_int(path, "PRAGMA user_version"), 99, "writer on schema 99: version left alone");
    if (err == GW_OK)
        store_close(s);

    s = (struct store *)1;
    err = store_open(&s, path, STORE_READER, false, why);
    is_str(gw_err_code(err), gw_err_code(GW_E_SCHEMA), "reader on schema 99: GW_E_SCHEMA");
    ok(s == NULL, "reader on schema 99: *out NULL");
    if (err == GW_OK)
        store_close(s);
}

static void test_migrations(void)
{
    char why[GW_ERRLEN];
    struct store *w = NULL, *r = NULL;

    ok(store_schema_version() >= 1, "schema version %d >= 1", store_schema_version());

    /* Fixture 1: an empty file, as an older tool or a touch(1) leaves it. */
    const char *empty = db_path("empty.db");
    FILE *f = fopen(empty, "w");
    if (f)
        fclose(f);
    is_int(store_open(&w, empty, STORE_WRITER, false, why), GW_OK, "writer on an empty file");
    is_int(sql_int(empty, "PRAGMA user_version"), store_schema_version(),
           "empty file migrated to version %d", store_schema_version());
    is_int(store_open(&r, empty, STORE_READER, false, why), GW_OK, "reader on the migrated file");
    if (w && r) {
        struct gw_msg m = mk("c", "s", "b", 1, GW_T_REST);
        struct gw_msg *p = &m;
        is_int(store_append(w, &p, 1, NULL, why), GW_OK, "migrated file takes an append");
        is_int(m.seq, 1, "migrated file: first seq is 1");
        is_int(count_history(r, "c"), 1, "migrated file: reader sees it");
        gw_msg_release(&m);
    }
    store_close(r);
    store_close(w);
    r = w = NULL;

    /*
     * Fixture 2: a database at user_version 0 with a table of someone else's:
     * another program's file, refused as it was found (no visavis table, not
     * switched to WAL), however its tables are named.
     */
    const char *cases[][2] = {
        {"other.db", "CREATE TABLE keep_me(x); INSERT INTO keep_me VALUES (42);"},
        {"clash.db", "CREATE TABLE messages(x);"}};
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        const char *path = db_path(cases[i][0]);
        sql_exec(path, cases[i][1]);
        enum gw_err err = store_open(&w, path, STORE_WRITER, false, why);
        ok(err == GW_E_SCHEMA && w == NULL, "%s: the writer refuses it (%s)", cases[i][0],
           gw_err_code(err));
        ok(strstr(why, "another application's tables") != NULL, "%s: and says why: %s", cases[i][0],
           why);
        is_int(sql_int(path, "PRAGMA user_version"), 0, "%s: version still 0", cases[i][0]);
        is_int(sql_int(path, "SELECT count(*) FROM sqlite_master WHERE name = 'channels'"), 0,
               "%s: no table of ours", cases[i][0]);
        is_int(sql_int(path, "SELECT journal_mode = 'delete' FROM pragma_journal_mode"), 1,
               "%s: its journal mode kept (not WAL)", cases[i][0]);
        store_close(w);
        w = NULL;
    }
    store_close(w);
}

int main(void)
{
    char why[GW_ERRLEN];
    struct store *w = NULL, *r = NULL;
    struct ids seen = {0, 0};

    log_set_level(GW_LOG_WARN);
    tmpdir_make(dir, sizeof(dir), "store");

    test_reader_needs_schema();

    const char *path = db_path("t.db");
    if (!is_int(store_open(&w, path, STORE_WRITER, false, why), GW_OK, "open the writer"))
        diag("why: %s", why);
    ok(w != NULL, "writer: *out set");
    if (!is_int(store_open(&r, path, STORE_READER, false, why), GW_OK, "open the reader"))
        diag("why: %s", why);
    if (!w || !r) {
        tmpdir_remove(dir);
        bail_out("cannot open the store: %s", why);
    }
    is_int(sql_int(path, "PRAGMA user_version"), store_schema_version(),
           "new database at version %d", store_schema_version());
    char *mode = NULL;
    {
        sqlite3 *db;
        sqlite3_stmt *st;
        if (sqlite3_open(path, &db) == SQLITE_OK &&
            sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
            if (sqlite3_step(st) == SQLITE_ROW)
                mode = gw_xstrdup((const char *)sqlite3_column_text(st, 0));
            sqlite3_finalize(st);
        }
        sqlite3_close(db);
    }
    is_str(mode, "wal", "the writer puts the database in WAL mode");
    free(mode);

    test_append_and_read(w, r, &seen);
    test_channels(w, r, &seen);
    test_channel_pages(w, r);
    test_bodies(w, r);
    test_failed_append(w, r, path, &seen);
    test_page_bounds(w, r);
    test_page_gaps(w, r, path);
    store_close(r);
    store_close(w);

    test_reopen(path, &seen);
    test_schema_newer(path);
    test_migrations();
    test_error_of();
    test_busy();
    test_stop_waiting();
    test_stale_cache();
    test_broken();
    test_full();
    test_in_use();

    tmpdir_remove(dir);
    return done_testing();
}
