/*
 * store_postgres.c - the PostgreSQL backend of the store (store.h,
 * store_backend.h, store_postgres.h) and its feed of other gateways'
 * commits; the only file that includes libpq-fe.h.
 *
 * Every connection is nonblocking and every wait is ours: a poll on its
 * socket with a deadline, in short steps, so that nothing waits for a
 * server without end and store_stop_waiting is seen (wait_conn). A
 * connection that breaks is dropped; the next call
 * makes a new one, and while that fails, calls fail at once until the
 * back-off allows another try (ensure_conn).
 *
 * The writer sends a batch as one pipeline (BEGIN, a locking upsert per
 * channel in name order, an INSERT per message, COMMIT, then one sync): one
 * round trip, whatever the batch holds. The reader answers each read with
 * one statement, so that a page and its channel's top come from one
 * snapshot. The feed is a thread with a LISTEN connection of its own.
 */
#include "store_postgres.h"

#include "log.h"
#include "seqcache.h"
#include "text.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/*
 * The deadline of one attempt to connect to one host, at open and at each
 * retry, where the target sets no connect_timeout, or 0: libpq's "wait for
 * ever", which the gateway never does (a writer stuck connecting holds
 * every publish behind it, and a stop waits for it). A connect_timeout
 * below the minimum counts as the minimum, as in libpq.
 */
#define PG_CONNECT_S        5
#define PG_CONNECT_MIN_S    2
/* statement_timeout: the server gives up on a statement after this (store_busy). */
#define PG_STATEMENT_MS     10000
/* A statement's answer: past this the server counts as gone (a little after statement_timeout). */
#define PG_QUERY_MS         15000
/* A migration may rewrite big tables: its own, longer deadline. */
#define PG_MIGRATE_MS       300000
/* lock_timeout of the writer: how long a publish waits for another gateway's channel row. */
#define PG_LOCK_MS          1000
/* Reconnection back-off: the first retry, doubled per failure up to the last. */
#define PG_BACKOFF_FIRST_MS 100
#define PG_BACKOFF_MAX_MS   2000
/* The longest single poll of a wait: how soon store_stop_waiting is seen. */
#define PG_STEP_MS          10
/* After store_stop_waiting, how long a statement may still take (from its start). */
#define PG_STOP_GRACE_MS    2000
/* Channels of a batch that may or may not have committed, to announce again. */
#define PG_INDOUBT_MAX      4096
/*
 * The feed hears nothing while no other gateway commits, so silence cannot
 * tell a server that hangs (stopped, or cut off without a reset: the
 * kernel still answers TCP keepalives for a stopped process). After this
 * much silence it asks the server for a word...
 */
#define PG_FEED_PROBE_MS    10000
/* ... and takes it for gone (reconnects, then every channel is read again) without one within this.
 */
#define PG_FEED_ANSWER_MS   5000 /* the "5 s" of feed_main's message */
/* Channels a feed keeps waiting before it says "recheck everything" instead. */
#define PG_FEED_MAX         4096
/* What the LISTEN/NOTIFY channel is called, and the key of the migration lock. */
#define PG_NOTIFY_CHANNEL   "visavis"
#define PG_MIGRATE_LOCK_KEY "7597125498458043185" /* "visavis1" */

/* The numbered files of db/postgres/, embedded at build time. */
extern const char *const store_pg_migrations[];
extern const int store_pg_migrations_count;

enum pg_role { PG_WRITER, PG_READER, PG_FEED };

static const char *const role_names[] = {"writer", "reader", "feed"};

struct stmt_def {
    enum pg_role role;
    const char *name;
    const char *sql;
};

/*
 * vv_lock takes a channel's row (making it on first use), moves its counters
 * past the batch and notifies its new top, all at once: the seqs of the
 * batch are then last_seq - count + 1 .. last_seq, which vv_insert reads
 * back from the row this transaction holds. ON CONFLICT draws an identity
 * value for every batch, used or not: channel ids have holes, nothing reads
 * them outside the database. ts: the gateway's clock, but never below the
 * channel's last, so that ts does not go back within a channel whichever
 * gateway's clock is behind.
 */
static const struct stmt_def stmt_defs[] = {
    {PG_WRITER, "vv_lock",
     "WITH moved AS ("
     " INSERT INTO channels AS c (name, last_seq, msg_count, last_ts)"
     " VALUES ($1::text, $2::bigint, $2::bigint, $3::bigint)"
     " ON CONFLICT (name) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq,"
     " msg_count = c.msg_count + excluded.msg_count,"
     " last_ts = greatest(c.last_ts, excluded.last_ts)"
     " RETURNING name, last_seq)"
     " SELECT pg_notify('" PG_NOTIFY_CHANNEL "', $4::text || ' ' || last_seq || ' ' || name)"
     " FROM moved"},
    {PG_WRITER, "vv_insert",
     "INSERT INTO messages (channel_id, seq, sender, body, ts, via)"
     " SELECT id, last_seq - $2::bigint, $3::text, $4::bytea, last_ts, $5::text"
     " FROM channels WHERE name = $1::text RETURNING id, seq, ts"},
    /* After a commit whose outcome is unknown: its channels' tops, from no gateway in particular.
     */
    {PG_WRITER, "vv_announce",
     "SELECT pg_notify('" PG_NOTIFY_CHANNEL "', '0 ' || last_seq || ' ' || name)"
     " FROM channels WHERE name = ANY($1::text[])"},
    {PG_READER, "vv_top", "SELECT last_seq FROM channels WHERE name = $1::text"},
    /*
     * A page: the channel's top and its messages after since, from one
     * snapshot (one statement). Bodies go over the wire only while the
     * bytes before them, counted low (raw, unescaped), stay within the
     * page's budget, plus always the first two: the page stops on the first
     * message that does not fit, which the gateway needs to see to know the
     * page is full (see page_from).
     */
    {PG_READER, "vv_page",
     "SELECT c.last_seq, m.id, m.seq, m.sender, m.body, m.ts, m.via FROM channels c"
     " LEFT JOIN LATERAL (SELECT * FROM ("
     "  SELECT id, seq, sender, body, ts, via, row_number() OVER w AS n,"
     "   coalesce(sum(octet_length(sender) + octet_length(body))"
     "    OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0) AS before"
     "  FROM (SELECT * FROM messages WHERE channel_id = c.id AND seq > $2::bigint"
     "   AND seq <= least($4::bigint, c.last_seq) ORDER BY seq LIMIT $3::bigint) page"
     "  WINDOW w AS (ORDER BY seq)) sized"
     " WHERE n <= 2 OR before <= $5::bigint) m ON true"
     " WHERE c.name = $1::text ORDER BY m.seq"},
    {PG_READER, "vv_message",
     "SELECT m.id, m.seq, m.sender, m.body, m.ts, m.via, c.name"
     " FROM messages m JOIN channels c ON c.id = m.channel_id WHERE m.id = $1::bigint"},
    /*
     * A page in byte order, as SQLite sorts, not in the database's collation:
     * through the index on name COLLATE "C" (db/postgres/002).
     */
    {PG_READER, "vv_channels",
     "SELECT name, msg_count, last_seq, last_ts FROM channels"
     " WHERE name COLLATE \"C\" > $1::text ORDER BY name COLLATE \"C\" LIMIT $2::bigint"},
};

/* A message of the batch under way, by channel: the sort that groups and orders them. */
struct pg_item {
    const char *channel;
    size_t msg;
};

struct pg {
    struct store base; /* first: a struct store pointer is a struct pg pointer */
    enum pg_role role;
    char *target;
    PGconn *conn;  /* NULL while there is none */
    char self[17]; /* the writer's mark on its notices (random hex) */
    char dbid[65]; /* the database's identity (migration 3), from the first connection */
    bool other_db; /* the last connection found another database: said once per episode */
    /* The same, for the feed's thread to read: a new one after a commit in doubt (note_indoubt). */
    _Atomic uint64_t mark;
    atomic_bool stop_waiting;
    bool refused;     /* the last error was a refused row */
    char sqlstate[6]; /* of the last error the server answered, "" if none */
    bool opened;      /* store_open succeeded: failures since are reconnections */
    bool fresh;       /* (re)connected since the owner last looked */
    bool doomed; /* the server said FATAL (the connection is about to end), or it cannot write */
    unsigned query_ms;
    /* while down */
    uint64_t down_since_ms, retry_at_ms;
    unsigned backoff_ms;
    unsigned failures;
    char down_why[GW_ERRLEN];
    enum gw_err down_err; /* what the last try met: GW_E_SCHEMA is told as such until the next */
    char sync_commit[32]; /* the server's synchronous_commit, at open */
    char sync_name[80];   /* what store_sync_name says */
    int64_t last_ts_ms;
    /* the batch under way (writer) */
    struct pg_item *items;
    size_t *groups;  /* index into items of each channel's first message */
    int64_t *offset; /* per message: its seq is the channel's new last_seq minus this */
    int64_t *out;    /* per message: id, seq, ts */
    size_t cap;
    /* channels of batches that may have committed unseen (writer) */
    char (*indoubt)[GW_CHANNEL_MAX + 1];
    size_t nindoubt;
};

static void pg_close(struct store *base);

/* ---- pure parts ---- */

/* Whether (s, len) is a keyword libpq knows ("host", "dbname", ...). */
static bool libpq_keyword(const char *s, size_t len)
{
    PQconninfoOption *defaults = PQconndefaults();
    bool known = false;

    for (PQconninfoOption *o = defaults; o && o->keyword && !known; o++)
        known = strlen(o->keyword) == len && strncmp(o->keyword, s, len) == 0;
    PQconninfoFree(defaults);
    return known;
}

bool store_pg_is_target(const char *target)
{
    const char *p = target, *key;

    if (strncmp(target, "postgresql://", 13) == 0 || strncmp(target, "postgres://", 11) == 0)
        return true;
    /*
     * key=value, judged by its first key alone: a string that begins like
     * one is meant for libpq even when the rest is wrong ("usr=", a quote
     * left open), and must fail with libpq's reason, not become a SQLite
     * file of that name. A file name with '=' in it is not one ("a=b.db":
     * "a" is no libpq keyword).
     */
    while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
        p++;
    key = p;
    while ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
           *p == '_')
        p++;
    size_t key_len = (size_t)(p - key);
    while (*p == ' ' || *p == '\t')
        p++;
    return key_len > 0 && *p == '=' && libpq_keyword(key, key_len);
}

enum gw_err store_pg_error_of(const char *sqlstate, bool connection_ok, bool *refused)
{
    *refused = false;
    if (!connection_ok || !sqlstate || strlen(sqlstate) != 5)
        return connection_ok ? GW_E_STORE : GW_E_STORE_UNAVAILABLE;
    if (strncmp(sqlstate, "08", 2) == 0 || strcmp(sqlstate, "57P01") == 0 ||
        strcmp(sqlstate, "57P02") == 0 || strcmp(sqlstate, "57P03") == 0 ||
        strcmp(sqlstate, "53300") == 0)
        return GW_E_STORE_UNAVAILABLE;
    if (strcmp(sqlstate, "40001") == 0 || strcmp(sqlstate, "40P01") == 0 ||
        strcmp(sqlstate, "55P03") == 0 || strcmp(sqlstate, "57014") == 0)
        return GW_E_STORE_BUSY;
    if (strcmp(sqlstate, "53100") == 0)
        return GW_E_STORE_FULL;
    if (strncmp(sqlstate, "22", 2) == 0 || strncmp(sqlstate, "23", 2) == 0 ||
        strncmp(sqlstate, "54", 2) == 0) {
        *refused = true;
        return GW_E_STORE;
    }
    return GW_E_STORE;
}

bool store_pg_parse_notice(const char *payload, char gw[17], int64_t *top, char *channel)
{
    const char *sp1 = strchr(payload, ' '), *sp2, *name;
    size_t gwlen, namelen;
    uint64_t v;
    char num[21];

    if (!sp1 || !(sp2 = strchr(sp1 + 1, ' ')))
        return false;
    gwlen = (size_t)(sp1 - payload);
    if (gwlen == 0 || gwlen > 16 || (size_t)(sp2 - sp1 - 1) >= sizeof(num))
        return false;
    memcpy(num, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    num[sp2 - sp1 - 1] = '\0';
    if (!text_parse_u64(num, INT64_MAX, &v) || v == 0)
        return false;
    name = sp2 + 1;
    namelen = strlen(name);
    if (!text_channel_valid(name, namelen))
        return false;
    memcpy(gw, payload, gwlen);
    gw[gwlen] = '\0';
    *top = (int64_t)v;
    memcpy(channel, name, namelen + 1);
    return true;
}

/* host, port, dbname and user of target: never its password. */
static void pg_describe(const char *target, char *out, size_t len)
{
    static const char *const shown[] = {"host", "hostaddr", "port", "dbname", "user"};
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &err);
    size_t used;

    PQfreemem(err);
    used = (size_t)snprintf(out, len, "postgres");
    if (!opts) {
        snprintf(out, len, "postgres (a connection string libpq cannot read)");
        return;
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(shown); i++) {
        for (PQconninfoOption *o = opts; o->keyword && used < len; o++) {
            if (strcmp(o->keyword, shown[i]) == 0 && o->val && *o->val)
                used += (size_t)snprintf(out + used, len - used, " %s=%s", o->keyword, o->val);
        }
    }
    PQconninfoFree(opts);
}

/* ---- time, waits, errors ---- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* libpq's messages end in a newline, or span several lines: one line for ours. */
static void one_line(char *s)
{
    char *out = s;
    bool space = false;

    for (const char *p = s; *p; p++) {
        bool blank = *p == '\n' || *p == '\t' || *p == ' ';
        if (blank) {
            space = out != s;
            continue;
        }
        if (space)
            *out++ = ' ';
        space = false;
        *out++ = *p;
    }
    *out = '\0';
}

/*
 * What the server says outside an answer: a notice, or, on an idle
 * connection, the FATAL that comes before the server closes it (a restart,
 * pg_terminate_backend): the connection is not used again.
 */
static void on_notice(void *arg, const PGresult *r)
{
    struct pg *s = arg;
    const char *severity = PQresultErrorField(r, PG_DIAG_SEVERITY_NONLOCALIZED);
    char msg[GW_ERRLEN];

    snprintf(msg, sizeof(msg), "%s", PQresultErrorMessage(r));
    one_line(msg);
    if (severity && (strcmp(severity, "FATAL") == 0 || strcmp(severity, "PANIC") == 0)) {
        s->doomed = true;
        log_warn("store %s: the database server says: %s", role_names[s->role], msg);
        return;
    }
    log_debug("store %s: the database server says: %s", role_names[s->role], msg);
}

/* Ends the connection without a word (a setup that failed, a close). */
static void forget_conn(struct pg *s)
{
    if (s->conn)
        PQfinish(s->conn);
    s->conn = NULL;
    s->doomed = false;
}

/*
 * The connection broke (what, and libpq's reason, in why): dropped, and the
 * next call tries a new one at once. Returns GW_E_STORE_UNAVAILABLE.
 */
static enum gw_err lost(struct pg *s, const char *what, char why[GW_ERRLEN])
{
    if (s->conn) {
        const char *reason = PQerrorMessage(s->conn);
        snprintf(why, GW_ERRLEN, "%s%s%s", what, *reason ? ": " : "", reason);
        one_line(why);
        log_warn("store %s: lost the connection to the database (%s); reconnecting",
                 role_names[s->role], why);
    }
    forget_conn(s);
    if (!s->down_since_ms)
        s->down_since_ms = mono_ms();
    s->retry_at_ms = 0;
    s->backoff_ms = 0;
    s->failures = 0;
    snprintf(s->down_why, sizeof(s->down_why), "%s", why);
    s->down_err = GW_E_STORE_UNAVAILABLE;
    return GW_E_STORE_UNAVAILABLE;
}

/* A statement the server answered with an error: why, and its class. */
static enum gw_err failed(struct pg *s, const PGresult *r, const char *what, char why[GW_ERRLEN])
{
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    enum gw_err err;

    snprintf(s->sqlstate, sizeof(s->sqlstate), "%s", state ? state : "");
    snprintf(why, GW_ERRLEN, "%s: %s%s%s%s", what, msg ? msg : PQerrorMessage(s->conn),
             state ? " (SQLSTATE " : "", state ? state : "", state ? ")" : "");
    one_line(why);
    err = store_pg_error_of(state, PQstatus(s->conn) == CONNECTION_OK, &s->refused);
    /*
     * The writer's connection cannot write (made read-only since it
     * connected, or a standby after a failover): only a new connection
     * sees the server writable again, or finds the new primary.
     */
    if (s->role == PG_WRITER && state && strcmp(state, "25006") == 0)
        s->doomed = true;
    return err;
}

/*
 * Waits until fd is ready for events, or the deadline, or (with stop) a stop.
 * 1: ready (*revents), 0: the deadline or the stop came first, -1: poll failed.
 */
static int wait_fd(int fd, short events, uint64_t deadline, atomic_bool *stop, short *revents)
{
    for (;;) {
        uint64_t now = mono_ms();
        if (now >= deadline || (stop && atomic_load(stop)))
            return 0;
        uint64_t step = deadline - now < PG_STEP_MS ? deadline - now : PG_STEP_MS;
        struct pollfd p = {.fd = fd, .events = events};
        int rc = poll(&p, 1, (int)step);
        if (rc > 0) {
            *revents = p.revents;
            return 1;
        }
        if (rc < 0 && errno != EINTR)
            return -1;
    }
}

/*
 * Waits for the connection's socket, for a statement sent at started, until
 * the deadline: past it the server counts as gone. After store_stop_waiting
 * a statement gets PG_STOP_GRACE_MS from its start (the feed's none): a
 * commit under way ends, a server that does not answer is left (the
 * connection dropped), so that a stop never waits long for a database.
 */
static enum gw_err wait_conn(struct pg *s, short events, uint64_t started, uint64_t deadline,
                             short *revents, char why[GW_ERRLEN])
{
    for (;;) {
        bool stopping = atomic_load(&s->stop_waiting);
        uint64_t until = deadline, grace = s->role == PG_FEED ? 0 : PG_STOP_GRACE_MS;
        if (stopping && started + grace < until)
            until = started + grace;
        int rc =
            wait_fd(PQsocket(s->conn), events, until, stopping ? NULL : &s->stop_waiting, revents);
        if (rc > 0)
            return GW_OK;
        if (rc < 0)
            return lost(s, "waiting for the database", why);
        uint64_t now = mono_ms();
        if (now >= until && (stopping || now >= deadline)) {
            char what[80];
            if (stopping)
                snprintf(what, sizeof(what), "stopped waiting for the database: the gateway stops");
            else
                snprintf(what, sizeof(what), "no answer from the database within %u ms",
                         s->query_ms);
            lost(s, what, why);
            snprintf(why, GW_ERRLEN, "%s", what);
            return GW_E_STORE_UNAVAILABLE;
        }
        /* The stop was raised meanwhile: wait again, with its grace. */
    }
}

/* Sends what libpq holds, reading what comes meanwhile (the server may be answering). */
static enum gw_err flush_out(struct pg *s, uint64_t started, uint64_t deadline, char why[GW_ERRLEN])
{
    enum gw_err err;
    short rev;
    int rc;

    while ((rc = PQflush(s->conn)) == 1) {
        if ((err = wait_conn(s, POLLIN | POLLOUT, started, deadline, &rev, why)) != GW_OK)
            return err;
        if ((rev & (POLLIN | POLLHUP | POLLERR)) && !PQconsumeInput(s->conn))
            return lost(s, "sending to the database", why);
    }
    return rc == 0 ? GW_OK : lost(s, "sending to the database", why);
}

/* The next result of what was sent (NULL: that statement has no more), within the deadline. */
static enum gw_err next_result(struct pg *s, PGresult **out, uint64_t started, uint64_t deadline,
                               char why[GW_ERRLEN])
{
    enum gw_err err;
    short rev;

    *out = NULL;
    while (PQisBusy(s->conn)) {
        if ((err = wait_conn(s, POLLIN, started, deadline, &rev, why)) != GW_OK)
            return err;
        if (!PQconsumeInput(s->conn))
            return lost(s, "reading from the database", why);
    }
    *out = PQgetResult(s->conn);
    return GW_OK;
}

/*
 * After a send: flushes, then reads every result of the statement(s). The
 * last successful result goes to *out (if out; PQclear it), the first error
 * becomes the return value.
 */
static enum gw_err collect(struct pg *s, const char *what, PGresult **out, char why[GW_ERRLEN])
{
    uint64_t started = mono_ms(), deadline = started + s->query_ms;
    enum gw_err err = GW_OK, ioerr;
    PGresult *keep = NULL, *r;

    s->sqlstate[0] = '\0';
    if (out)
        *out = NULL;
    if ((ioerr = flush_out(s, started, deadline, why)) != GW_OK)
        return ioerr;
    for (;;) {
        if ((ioerr = next_result(s, &r, started, deadline, why)) != GW_OK) {
            PQclear(keep);
            return ioerr;
        }
        if (!r)
            break;
        ExecStatusType st = PQresultStatus(r);
        if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
            PQclear(keep);
            keep = r;
            continue;
        }
        if (err == GW_OK)
            err = failed(s, r, what, why);
        PQclear(r);
    }
    if (err == GW_E_STORE_UNAVAILABLE || PQstatus(s->conn) != CONNECTION_OK) {
        char reason[GW_ERRLEN];
        snprintf(reason, sizeof(reason), "%s", why);
        lost(s, what, why);
        snprintf(why, GW_ERRLEN, "%s", reason);
        err = GW_E_STORE_UNAVAILABLE;
    }
    if (err != GW_OK || !out)
        PQclear(keep);
    else
        *out = keep;
    return err;
}

/* sql by the simple protocol (several statements allowed); see collect. */
static enum gw_err exec_sql(struct pg *s, const char *sql, const char *what, PGresult **out,
                            char why[GW_ERRLEN])
{
    if (!PQsendQuery(s->conn, sql))
        return lost(s, what, why);
    return collect(s, what, out, why);
}

/* A prepared statement with text parameters, results in binary; see collect. */
static enum gw_err exec_stmt(struct pg *s, const char *name, int n, const char *const *values,
                             const char *what, PGresult **out, char why[GW_ERRLEN])
{
    if (!PQsendQueryPrepared(s->conn, name, n, values, NULL, NULL, 1))
        return lost(s, what, why);
    return collect(s, what, out, why);
}

/* A bigint column of a binary result. */
static int64_t col_i64(const PGresult *r, int row, int col)
{
    uint64_t v = 0;

    if (PQgetlength(r, row, col) == (int)sizeof(v))
        memcpy(&v, PQgetvalue(r, row, col), sizeof(v));
    return (int64_t)be64toh(v);
}

/* ---- connecting ---- */

/* The value of keyword in a parsed target, NULL when it gives none. */
static const char *parsed_value(const PQconninfoOption *opts, const char *keyword)
{
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (strcmp(o->keyword, keyword) == 0)
            return o->val && *o->val ? o->val : NULL;
    }
    return NULL;
}

/* How many entries libpq counts in a comma-separated list: one more than its commas. */
static size_t list_count(const char *list)
{
    size_t n = 1;

    for (; *list; list++)
        n += *list == ',';
    return n;
}

/* connect_timeout as libpq reads it: an int, blanks around it allowed. */
static bool parse_timeout(const char *value, long *out)
{
    char *end;
    long n;

    errno = 0;
    n = strtol(value, &end, 10);
    if (end == value || errno != 0 || n != (int)n)
        return false;
    while (*end == ' ' || *end == '\t' || *end == '\n' || *end == '\r' || *end == '\f' ||
           *end == '\v')
        end++;
    *out = n;
    return *end == '\0';
}

/*
 * Into per (attempts entries): the entries of list, each one its own string
 * in *buf (moved past them); one entry alone stands for every attempt, as a
 * single port does in libpq. Nothing when list is NULL.
 */
static void split_list(const char *list, size_t attempts, const char **per, char **buf)
{
    size_t n = 0;

    if (!list)
        return;
    if (attempts == 1 || list_count(list) == 1) {
        for (size_t i = 0; i < attempts; i++)
            per[i] = list;
        return;
    }
    per[n++] = *buf;
    for (; *list; list++) {
        if (*list == ',') {
            *(*buf)++ = '\0';
            per[n++] = *buf;
        } else {
            *(*buf)++ = *list;
        }
    }
    *(*buf)++ = '\0';
}

/*
 * Two keywords that libpq applies to a whole list lose that meaning when
 * each host is an attempt of its own: target_session_attrs=prefer-standby
 * (a standby of the list, else any host) takes the first host that
 * answers, and load_balance_hosts=random (libpq 16) leaves the list in its
 * order. Neither suits a gateway, whose writer needs a primary.
 */
bool store_pg_plan(const char *target, const char *const *keys, const char *const *values,
                   struct store_pg_plan *plan, char why[GW_ERRLEN])
{
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(target, &err);
    const char *host, *hostaddr, *port, *timeout;
    size_t n = 1, ndefaults = 0, nkeys = 0, k = 0;
    long t = 0;

    memset(plan, 0, sizeof(*plan));
    if (!opts) {
        snprintf(why, GW_ERRLEN, "%s", err ? err : "out of memory");
        one_line(why);
        PQfreemem(err);
        return false;
    }
    plan->parsed = opts;
    if ((timeout = parsed_value(opts, "connect_timeout")) && !parse_timeout(timeout, &t)) {
        snprintf(why, GW_ERRLEN, "invalid integer value \"%.100s\" for connection option \"%s\"",
                 timeout, "connect_timeout");
        store_pg_plan_free(plan);
        return false;
    }
    plan->timeout_s = t <= 0 ? PG_CONNECT_S : t < PG_CONNECT_MIN_S ? PG_CONNECT_MIN_S : (unsigned)t;
    /* libpq's count of hosts: hostaddr's entries if given, else host's. */
    host = parsed_value(opts, "host");
    hostaddr = parsed_value(opts, "hostaddr");
    port = parsed_value(opts, "port");
    if (hostaddr || host)
        n = list_count(hostaddr ? hostaddr : host);
    if (n > 1 && (!host || list_count(host) == n) &&
        (!port || list_count(port) == 1 || list_count(port) == n))
        plan->attempts = n;
    else
        plan->attempts = 1; /* libpq says what is wrong with the lists, if anything */
    while (keys[ndefaults])
        ndefaults++;
    for (const PQconninfoOption *o = opts; o->keyword; o++)
        nkeys += o->val != NULL;
    plan->host = calloc(3 * plan->attempts, sizeof(*plan->host));
    plan->lists = malloc((host ? strlen(host) : 0) + (hostaddr ? strlen(hostaddr) : 0) +
                         (port ? strlen(port) : 0) + 3);
    plan->keys = calloc(ndefaults + nkeys + 1, sizeof(*plan->keys));
    plan->values = calloc(ndefaults + nkeys + 1, sizeof(*plan->values));
    if (!plan->host || !plan->lists || !plan->keys || !plan->values) {
        snprintf(why, GW_ERRLEN, "out of memory");
        store_pg_plan_free(plan);
        return false;
    }
    plan->hostaddr = plan->host + plan->attempts;
    plan->port = plan->hostaddr + plan->attempts;
    char *buf = plan->lists;
    split_list(host, plan->attempts, plan->host, &buf);
    split_list(hostaddr, plan->attempts, plan->hostaddr, &buf);
    split_list(port, plan->attempts, plan->port, &buf);
    /* Later keywords win: the defaults first, the target after them. */
    for (; k < ndefaults; k++) {
        plan->keys[k] = keys[k];
        plan->values[k] = values[k];
    }
    for (const PQconninfoOption *o = opts; o->keyword; o++) {
        if (o->val) {
            plan->keys[k] = o->keyword;
            plan->values[k++] = o->val;
        }
    }
    store_pg_plan_attempt(plan, 0);
    return true;
}

void store_pg_plan_attempt(struct store_pg_plan *plan, size_t i)
{
    for (size_t k = 0; plan->keys[k]; k++) {
        if (strcmp(plan->keys[k], "host") == 0)
            plan->values[k] = plan->host[i];
        else if (strcmp(plan->keys[k], "hostaddr") == 0)
            plan->values[k] = plan->hostaddr[i];
        else if (strcmp(plan->keys[k], "port") == 0)
            plan->values[k] = plan->port[i];
    }
}

void store_pg_plan_free(struct store_pg_plan *plan)
{
    PQconninfoFree(plan->parsed);
    free(plan->host);
    free(plan->lists);
    free(plan->keys);
    free(plan->values);
    memset(plan, 0, sizeof(*plan));
}

/* How why and the log name attempt i: "host:port", the host in brackets if it has colons. */
static void host_label(const struct store_pg_plan *plan, size_t i, char *out, size_t len)
{
    const char *name = plan->host[i] && *plan->host[i]           ? plan->host[i]
                       : plan->hostaddr[i] && *plan->hostaddr[i] ? plan->hostaddr[i]
                                                                 : "(default host)";
    const char *port = plan->port[i] && *plan->port[i] ? plan->port[i] : NULL;
    bool brackets = strchr(name, ':') && *name != '/';

    snprintf(out, len, "%s%s%s%s%s", brackets ? "[" : "", name, brackets ? "]" : "",
             port ? ":" : "", port ? port : "");
}

/*
 * One host's reason, into why (used bytes of it so far): libpq's whole
 * message when the target has one host; with several, "host:port: reason",
 * the reason without libpq's "connection to server at ... failed: " and its
 * hints, each host within an equal share of why.
 */
static size_t add_reason(char why[GW_ERRLEN], size_t used, const struct store_pg_plan *plan,
                         size_t i, char *reason)
{
    char *p = reason, label[80], entry[GW_ERRLEN + sizeof(label) + 2];
    int share = (int)((GW_ERRLEN - sizeof("connecting:")) / plan->attempts) - 2;

    if (used >= GW_ERRLEN - 1)
        return used;
    if (plan->attempts == 1) {
        one_line(reason);
        return used + (size_t)snprintf(why + used, GW_ERRLEN - used, " %s", reason);
    }
    if (strncmp(p, "connection to server ", 21) == 0 && (p = strstr(p, " failed: ")))
        p += 9;
    else
        p = reason;
    p[strcspn(p, "\n")] = '\0';
    one_line(p);
    host_label(plan, i, label, sizeof(label));
    snprintf(entry, sizeof(entry), "%s: %s", label, p);
    return used + (size_t)snprintf(why + used, GW_ERRLEN - used, "%s %.*s", i ? ";" : "",
                                   share > 8 ? share : 8, entry);
}

/* The plan's current attempt, within its deadline: a connection, or NULL and why in reason. */
static PGconn *connect_host(struct pg *s, const struct store_pg_plan *plan, char reason[GW_ERRLEN])
{
    uint64_t deadline = mono_ms() + (uint64_t)plan->timeout_s * 1000u;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    PGconn *c = PQconnectStartParams(plan->keys, plan->values, 0);

    if (!c) {
        snprintf(reason, GW_ERRLEN, "out of memory");
        return NULL;
    }
    while (PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
        short rev;
        int rc = wait_fd(PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline,
                         &s->stop_waiting, &rev);
        if (rc < 0)
            snprintf(reason, GW_ERRLEN, "%s", strerror(errno));
        else if (rc == 0 && atomic_load(&s->stop_waiting))
            snprintf(reason, GW_ERRLEN, "stopped (the gateway is stopping)");
        else if (rc == 0)
            snprintf(reason, GW_ERRLEN, "no answer within %u s", plan->timeout_s);
        if (rc <= 0) {
            PQfinish(c);
            return NULL;
        }
        st = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK || PQsetnonblocking(c, 1) != 0) {
        snprintf(reason, GW_ERRLEN, "%s", PQerrorMessage(c));
        PQfinish(c);
        return NULL;
    }
    return c;
}

/*
 * A new connection to s->target into s->conn: each host of the target in
 * turn, each within the target's connect_timeout (store_pg_plan), until
 * one takes it; why names each host's reason when none does.
 */
static enum gw_err connect_once(struct pg *s, char why[GW_ERRLEN])
{
    /*
     * Defaults, which the target's keywords override.
     * The application name tells an operator's pg_stat_activity which
     * connection is which.
     * Keepalives find a server that vanished without a word within about
     * 25 s, the feed's connection included, which otherwise only listens.
     * No connect_timeout: libpq's nonblocking connect does not read it; the
     * deadline of each attempt is ours (connect_host).
     */
    static const char *const keys[] = {
        "keepalives",       "keepalives_idle",           "keepalives_interval",
        "keepalives_count", "fallback_application_name", NULL};
    static const char *const app_names[] = {"visavis writer", "visavis reader", "visavis feed"};
    const char *values[] = {"1", "10", "5", "3", app_names[s->role], NULL};
    struct store_pg_plan plan;
    char reason[GW_ERRLEN];
    PGconn *c = NULL;
    size_t used;

    if (!store_pg_plan(s->target, keys, values, &plan, reason)) {
        snprintf(why, GW_ERRLEN, "connecting: %.240s", reason);
        return GW_E_STORE_UNAVAILABLE;
    }
    used = (size_t)snprintf(why, GW_ERRLEN, "connecting:");
    for (size_t i = 0; i < plan.attempts; i++) {
        store_pg_plan_attempt(&plan, i);
        if ((c = connect_host(s, &plan, reason))) {
            if (i > 0) {
                char label[80];
                host_label(&plan, i, label, sizeof(label));
                log_info("store %s: connected to the database at %s (%s)", role_names[s->role],
                         label, why + sizeof("connecting:"));
            }
            break;
        }
        used = add_reason(why, used, &plan, i, reason);
        if (atomic_load(&s->stop_waiting))
            break;
    }
    store_pg_plan_free(&plan);
    if (!c)
        return GW_E_STORE_UNAVAILABLE;
    PQsetNoticeReceiver(c, on_notice, s);
    s->conn = c;
    return GW_OK;
}

/* The schema version the database is at: 0 before the first migration. */
static enum gw_err read_version(struct pg *s, int *version, char why[GW_ERRLEN])
{
    PGresult *r;
    enum gw_err err;

    *version = 0;
    err = exec_sql(s, "SELECT coalesce(max(version), 0) FROM visavis_schema",
                   "reading the schema version", &r, why);
    if (err != GW_OK) {
        /* No table yet (undefined_table): no migration ever ran. */
        return strcmp(s->sqlstate, "42P01") == 0 ? GW_OK : err;
    }
    if (PQntuples(r) == 1)
        *version = atoi(PQgetvalue(r, 0, 0));
    PQclear(r);
    return GW_OK;
}

/*
 * Brings the schema up to date, in one transaction, under a lock that the
 * other gateways starting now wait for: the first migrates, the others find
 * it done.
 */
static enum gw_err migrate(struct pg *s, char why[GW_ERRLEN])
{
    char sql[128], ignored[GW_ERRLEN];
    int version = 0;
    enum gw_err err;

    s->query_ms = PG_MIGRATE_MS;
    if ((err = exec_sql(s,
                        "BEGIN; SET LOCAL lock_timeout = 60000;"
                        " SELECT pg_advisory_xact_lock(" PG_MIGRATE_LOCK_KEY ");"
                        " CREATE TABLE IF NOT EXISTS visavis_schema (version integer NOT NULL)",
                        "taking the migration lock", NULL, why)) != GW_OK ||
        (err = read_version(s, &version, why)) != GW_OK)
        goto fail;
    if (version > store_pg_migrations_count) {
        snprintf(why, GW_ERRLEN,
                 "database schema version %d is newer than this gateway knows (%d): "
                 "run a newer visavis on it",
                 version, store_pg_migrations_count);
        err = GW_E_SCHEMA;
        goto fail;
    }
    for (int v = version; v < store_pg_migrations_count; v++) {
        if ((err = exec_sql(s, store_pg_migrations[v], "migrating", NULL, why)) != GW_OK)
            goto fail;
        log_info("store: applied PostgreSQL migration %d", v + 1);
    }
    snprintf(sql, sizeof(sql),
             "DELETE FROM visavis_schema; INSERT INTO visavis_schema VALUES (%d); COMMIT",
             store_pg_migrations_count);
    if ((err = exec_sql(s, sql, "recording the schema version", NULL, why)) != GW_OK)
        goto fail;
    s->query_ms = PG_QUERY_MS;
    return GW_OK;
fail:
    if (s->conn && PQtransactionStatus(s->conn) != PQTRANS_IDLE)
        exec_sql(s, "ROLLBACK", "rolling back", NULL, ignored);
    s->query_ms = PG_QUERY_MS;
    return err;
}

static enum gw_err check_version(struct pg *s, char why[GW_ERRLEN])
{
    int version;
    enum gw_err err = read_version(s, &version, why);

    if (err == GW_OK && version != store_pg_migrations_count) {
        snprintf(why, GW_ERRLEN, "database schema version %d, this gateway reads %d", version,
                 store_pg_migrations_count);
        err = GW_E_SCHEMA;
    }
    return err;
}

/*
 * Whether the database is the one this gateway started on (migration 3's
 * identity, read at the first connection). Another one answers at the
 * target when the database was dropped and made again, or the address now
 * leads elsewhere: its seqs are not the ones the subscribers and clients
 * hold, and one still in range would be taken for the next message. The
 * connection is dropped and the gateway waits as for a server down, so
 * that the database it knows may come back (restored from a dump, it keeps
 * its identity); a restart takes the new one.
 */
static enum gw_err check_identity(struct pg *s, char why[GW_ERRLEN])
{
    char id[sizeof(s->dbid)] = "";
    PGresult *r;
    enum gw_err err;

    s->sqlstate[0] = '\0'; /* a connection lost before any answer would leave an older one */
    err =
        exec_sql(s, "SELECT id FROM visavis_identity", "reading the database's identity", &r, why);
    if (err == GW_OK) {
        if (PQntuples(r) == 1)
            snprintf(id, sizeof(id), "%s", PQgetvalue(r, 0, 0));
        PQclear(r);
    } else if (!s->dbid[0] || strcmp(s->sqlstate, "42P01") != 0) {
        return err; /* undefined_table once the gateway knew one: another database, below */
    }
    if (!s->dbid[0]) {
        if (!id[0]) {
            snprintf(why, GW_ERRLEN, "the database has no identity (visavis_identity is empty)");
            return GW_E_SCHEMA;
        }
        memcpy(s->dbid, id, sizeof(id));
        return GW_OK;
    }
    if (strcmp(id, s->dbid) == 0) {
        if (s->other_db)
            log_info("store %s: the database the gateway started on answers again",
                     role_names[s->role]);
        s->other_db = false;
        return GW_OK;
    }
    if (!s->other_db)
        log_error("store %s: another database answers at the gateway's target (identity %s, "
                  "where the gateway started on %s: dropped and made again, or the address leads "
                  "elsewhere): not used, since its seqs are not the ones clients hold; waiting for "
                  "the database the gateway started on, restart the gateway to use this one",
                  role_names[s->role], id[0] ? id : "none", s->dbid);
    s->other_db = true;
    snprintf(why, GW_ERRLEN,
             "another database answers at the gateway's target (dropped and made again?): "
             "not used; restart the gateway to use it");
    return GW_E_STORE_UNAVAILABLE;
}

/* Whether the server reports parameter name as on (PostgreSQL 14 reports both used here). */
static bool on(PGconn *conn, const char *name)
{
    const char *v = PQparameterStatus(conn, name);
    return v && strcmp(v, "on") == 0;
}

#define READ_COMMITTED "SET default_transaction_isolation = 'read committed'"

/* What a new connection needs before its first use: settings, schema, identity, statements. */
static enum gw_err set_up(struct pg *s, char why[GW_ERRLEN])
{
    char settings[256];
    enum gw_err err;
    PGresult *r;

    switch (s->role) {
    /*
     * Read committed whatever the database's default: the writer's row
     * lock on a channel already orders two gateways' batches, and under
     * repeatable read or serializable the second would fail (40001)
     * instead of waiting its turn. Each read is one statement, one snapshot.
     */
    case PG_WRITER:
        snprintf(settings, sizeof(settings),
                 "SET lock_timeout = %d; SET statement_timeout = %d; " READ_COMMITTED, PG_LOCK_MS,
                 PG_STATEMENT_MS);
        break;
    case PG_READER:
        snprintf(
            settings, sizeof(settings),
            "SET statement_timeout = %d; SET default_transaction_read_only = on; " READ_COMMITTED,
            PG_STATEMENT_MS);
        break;
    case PG_FEED:
        snprintf(settings, sizeof(settings), "LISTEN " PG_NOTIFY_CHANNEL);
        break;
    }
    if (s->role == PG_WRITER && !s->opened)
        err = migrate(s, why);
    else
        err = s->role == PG_FEED ? GW_OK : check_version(s, why);
    if (err == GW_OK)
        err = check_identity(s, why);
    if (err != GW_OK ||
        (err = exec_sql(s, settings, "setting up the connection", NULL, why)) != GW_OK)
        return err;
    if (s->role == PG_WRITER &&
        (on(s->conn, "default_transaction_read_only") || on(s->conn, "in_hot_standby"))) {
        /* No use until the server writes again: the back-off applies, as to a server down. */
        snprintf(
            why, GW_ERRLEN, "the database takes no writes (%s is on): waiting for it to take them",
            on(s->conn, "in_hot_standby") ? "in_hot_standby" : "default_transaction_read_only");
        return GW_E_STORE_UNAVAILABLE;
    }
    if (s->role == PG_READER && on(s->conn, "in_hot_standby")) {
        /*
         * A standby's tops may be behind the commits the writer made on the
         * primary: a subscriber's read would see its own cursor beyond the
         * top, as if the seqs went back (core.c went_back).
         */
        snprintf(why, GW_ERRLEN,
                 "the database is a standby (in_hot_standby is on): reads go to the server the "
                 "gateway writes to; waiting for it");
        return GW_E_STORE_UNAVAILABLE;
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(stmt_defs); i++) {
        if (stmt_defs[i].role != s->role)
            continue;
        if (!PQsendPrepare(s->conn, stmt_defs[i].name, stmt_defs[i].sql, 0, NULL))
            return lost(s, "preparing statements", why);
        if ((err = collect(s, "preparing statements", NULL, why)) != GW_OK)
            return err;
    }
    if (s->role == PG_WRITER && !s->opened) {
        if ((err = exec_sql(s, "SHOW synchronous_commit", "reading synchronous_commit", &r, why)) !=
            GW_OK)
            return err;
        snprintf(s->sync_commit, sizeof(s->sync_commit), "%s",
                 PQntuples(r) == 1 ? PQgetvalue(r, 0, 0) : "?");
        snprintf(s->sync_name, sizeof(s->sync_name), "%s (the server's synchronous_commit)",
                 s->sync_commit);
        PQclear(r);
    }
    return GW_OK;
}

static enum gw_err pg_connect(struct pg *s, char why[GW_ERRLEN])
{
    enum gw_err err = connect_once(s, why);

    if (err == GW_OK && (err = set_up(s, why)) != GW_OK)
        forget_conn(s);
    return err;
}

/*
 * Whether an idle connection still works: a server that went away has said
 * so by now (a FATAL, then the end of the stream), and it is cheaper to
 * find out here than halfway through a commit.
 */
static bool conn_alive(struct pg *s)
{
    for (int i = 0; i < 4 && !s->doomed && PQstatus(s->conn) == CONNECTION_OK; i++) {
        struct pollfd p = {.fd = PQsocket(s->conn), .events = POLLIN};
        if (poll(&p, 1, 0) <= 0)
            break;
        if (!PQconsumeInput(s->conn))
            return false;
        if (s->role == PG_FEED)
            break; /* notices: PQnotifies has them */
    }
    return !s->doomed && PQstatus(s->conn) == CONNECTION_OK;
}

static void announce_indoubt(struct pg *s);
static void make_mark(struct pg *s);

/*
 * A working connection in s->conn: the one there is, or a new one when the
 * back-off allows a try. GW_E_STORE_UNAVAILABLE (or what setting up a new
 * one met, GW_E_SCHEMA...) otherwise, at once.
 */
static enum gw_err ensure_conn(struct pg *s, char why[GW_ERRLEN])
{
    uint64_t now;
    enum gw_err err;

    if (s->conn && conn_alive(s))
        return GW_OK;
    if (s->conn)
        lost(s, "the connection ended", why);
    now = mono_ms();
    if (atomic_load(&s->stop_waiting)) {
        snprintf(why, GW_ERRLEN, "no connection to the database (%.180s); the gateway is stopping",
                 s->down_why);
        return GW_E_STORE_UNAVAILABLE;
    }
    if (now < s->retry_at_ms) {
        snprintf(why, GW_ERRLEN,
                 "no connection to the database (%.180s); next try in %" PRIu64 " ms", s->down_why,
                 s->retry_at_ms - now);
        /* Between two tries, what the last one met: a schema this gateway does not read is not a
         * server to wait for. */
        return s->down_err == GW_E_SCHEMA ? GW_E_SCHEMA : GW_E_STORE_UNAVAILABLE;
    }
    if ((err = pg_connect(s, why)) == GW_OK) {
        log_info("store %s: connected to the database again after %.1f s", role_names[s->role],
                 (double)(mono_ms() - s->down_since_ms) / 1000.0);
        s->down_since_ms = 0;
        s->backoff_ms = 0;
        s->failures = 0;
        s->fresh = true;
        if (s->nindoubt)
            announce_indoubt(s);
        return GW_OK;
    }
    s->backoff_ms = s->backoff_ms ? s->backoff_ms * 2 : PG_BACKOFF_FIRST_MS;
    if (s->backoff_ms > PG_BACKOFF_MAX_MS)
        s->backoff_ms = PG_BACKOFF_MAX_MS;
    s->retry_at_ms = mono_ms() + s->backoff_ms;
    snprintf(s->down_why, sizeof(s->down_why), "%s", why);
    s->down_err = err;
    /* The first failure, then every 30th (about a minute at the longest back-off). */
    if (s->failures++ % 30 == 0)
        log_warn("store %s: cannot reconnect to the database (%s); trying again every %.1f s at "
                 "most",
                 role_names[s->role], why, PG_BACKOFF_MAX_MS / 1000.0);
    return err == GW_E_SCHEMA ? err : GW_E_STORE_UNAVAILABLE;
}

/* ---- open, close ---- */

static void make_mark(struct pg *s)
{
    uint64_t v = 0;

    if (getrandom(&v, sizeof(v), GRND_NONBLOCK) != (ssize_t)sizeof(v))
        v = ((uint64_t)getpid() << 32) ^ (uint64_t)now_ms() ^ (uint64_t)(uintptr_t)s;
    snprintf(s->self, sizeof(s->self), "%016" PRIx64, v);
    atomic_store(&s->mark, v);
}

static struct pg *pg_new(const char *target, enum pg_role role)
{
    struct pg *s = gw_xcalloc(1, sizeof(*s));

    s->base.ops = &store_postgres_ops;
    s->role = role;
    s->target = gw_xstrdup(target);
    s->query_ms = PG_QUERY_MS;
    atomic_init(&s->stop_waiting, false);
    make_mark(s);
    return s;
}

static enum gw_err pg_open(struct store **out, const char *target, enum store_role role,
                           bool sync_full, char why[GW_ERRLEN])
{
    struct pg *s = pg_new(target, role == STORE_WRITER ? PG_WRITER : PG_READER);
    enum gw_err err;

    (void)sync_full; /* the server's synchronous_commit decides (store_postgres.h) */
    *out = NULL;
    if ((err = pg_connect(s, why)) != GW_OK) {
        pg_close(&s->base);
        return err;
    }
    if (s->role == PG_WRITER &&
        (strcmp(s->sync_commit, "off") == 0 || strcmp(s->sync_commit, "local") == 0))
        log_warn("store: the database's synchronous_commit is %s: a publish is answered before "
                 "its commit is %s",
                 s->sync_commit, strcmp(s->sync_commit, "off") == 0 ? "on disk" : "on the standby");
    s->opened = true;
    *out = &s->base;
    return GW_OK;
}

static void pg_close(struct store *base)
{
    struct pg *s = (struct pg *)base;

    if (!s)
        return;
    forget_conn(s);
    free(s->target);
    free(s->items);
    free(s->groups);
    free(s->offset);
    free(s->out);
    free(s->indoubt);
    free(s);
}

static void pg_stop_waiting(struct store *base)
{
    atomic_store(&((struct pg *)base)->stop_waiting, true);
}

static int pg_schema_version(void)
{
    return store_pg_migrations_count;
}

static const char *pg_sync_name(const struct store *base)
{
    return ((const struct pg *)base)->sync_name;
}

/* ---- the writer ---- */

static int item_cmp(const void *a, const void *b)
{
    const struct pg_item *x = a, *y = b;
    int c = strcmp(x->channel, y->channel);
    return c ? c : (x->msg > y->msg) - (x->msg < y->msg);
}

/* Remembers the channels of the batch: they may have moved without anyone hearing. */
static void note_indoubt(struct pg *s, size_t ngroups)
{
    /*
     * The transaction may still commit, any time later, and notify under the
     * mark it was given. Commits go on under a new one, so that our own feed
     * takes that late notice for another gateway's and the loop reads what
     * it missed; the announce after the reconnect covers a commit that came
     * before it.
     */
    make_mark(s);
    if (!s->indoubt)
        s->indoubt = gw_xcalloc(PG_INDOUBT_MAX, sizeof(*s->indoubt));
    for (size_t g = 0; g < ngroups; g++) {
        const char *name = s->items[s->groups[g]].channel;
        size_t i = 0;
        while (i < s->nindoubt && strcmp(s->indoubt[i], name) != 0)
            i++;
        if (i < s->nindoubt)
            continue;
        if (s->nindoubt == PG_INDOUBT_MAX) {
            log_warn("store: too many channels with commits in doubt: '%s' is not announced", name);
            continue;
        }
        snprintf(s->indoubt[s->nindoubt++], GW_CHANNEL_MAX + 1, "%s", name);
    }
}

/*
 * The tops of the channels whose last commit may have happened unseen, as
 * notices every feed hears (this gateway's included): the subscribers read
 * what is there. Channel names need no quoting inside an array literal but
 * the quotes (a channel called NULL would be a null).
 */
static void announce_indoubt(struct pg *s)
{
    size_t len = 3;
    char why[GW_ERRLEN];
    enum gw_err err;
    char *list, *p;

    for (size_t i = 0; i < s->nindoubt; i++)
        len += strlen(s->indoubt[i]) + 3;
    p = list = gw_xmalloc(len);
    *p++ = '{';
    for (size_t i = 0; i < s->nindoubt; i++) {
        size_t n = strlen(s->indoubt[i]);

        if (i)
            *p++ = ',';
        *p++ = '"';
        memcpy(p, s->indoubt[i], n);
        p += n;
        *p++ = '"';
    }
    *p++ = '}';
    *p = '\0';
    const char *values[] = {list};
    err = exec_stmt(s, "vv_announce", 1, values, "announcing channels", NULL, why);
    free(list);
    if (err != GW_OK) {
        log_warn("store: announcing %zu channels whose last commit is in doubt failed: %s",
                 s->nindoubt, why);
        return;
    }
    log_info("store: announced the tops of %zu channels whose last commit was in doubt",
             s->nindoubt);
    s->nindoubt = 0;
}

/* Room for a batch of n in the writer's arrays. */
static void reserve(struct pg *s, size_t n)
{
    if (n <= s->cap)
        return;
    struct pg_item *items = gw_xrealloc(s->items, n * sizeof(*items));
    s->items = items;
    size_t *groups = gw_xrealloc(s->groups, n * sizeof(*groups));
    s->groups = groups;
    int64_t *offset = gw_xrealloc(s->offset, n * sizeof(*offset));
    s->offset = offset;
    int64_t *out = gw_xrealloc(s->out, 3 * n * sizeof(*out));
    s->out = out;
    s->cap = n;
}

/* Groups the batch by channel, in name order; returns how many channels. */
static size_t group(struct pg *s, struct gw_msg *const *msgs, size_t n)
{
    size_t ngroups = 0;

    for (size_t i = 0; i < n; i++)
        s->items[i] = (struct pg_item){.channel = msgs[i]->channel, .msg = i};
    qsort(s->items, n, sizeof(*s->items), item_cmp);
    for (size_t k = 0; k < n; k++) {
        if (k == 0 || strcmp(s->items[k].channel, s->items[k - 1].channel) != 0)
            s->groups[ngroups++] = k;
    }
    for (size_t g = 0; g < ngroups; g++) {
        size_t end = g + 1 < ngroups ? s->groups[g + 1] : n;
        for (size_t k = s->groups[g]; k < end; k++)
            s->offset[s->items[k].msg] = (int64_t)(end - 1 - k);
    }
    return ngroups;
}

/*
 * Queues the batch's statements in the pipeline, and sends them. *commit_sent:
 * the COMMIT may have left, whole, before a failure.
 */
static enum gw_err send_batch(struct pg *s, struct gw_msg *const *msgs, size_t n, size_t ngroups,
                              int64_t ts, uint64_t started, uint64_t deadline, bool *commit_sent,
                              char why[GW_ERRLEN])
{
    char count[24], stamp[24], offset[24];
    enum gw_err err;

    snprintf(stamp, sizeof(stamp), "%" PRId64, ts);
    if (!PQsendQueryParams(s->conn, "BEGIN", 0, NULL, NULL, NULL, NULL, 0))
        return lost(s, "starting a transaction", why);
    for (size_t g = 0; g < ngroups; g++) {
        size_t end = g + 1 < ngroups ? s->groups[g + 1] : n;
        snprintf(count, sizeof(count), "%zu", end - s->groups[g]);
        const char *values[] = {s->items[s->groups[g]].channel, count, stamp, s->self};
        if (!PQsendQueryPrepared(s->conn, "vv_lock", 4, values, NULL, NULL, 0))
            return lost(s, "locking a channel", why);
    }
    for (size_t i = 0; i < n; i++) {
        const struct gw_msg *m = msgs[i];
        snprintf(offset, sizeof(offset), "%" PRId64, s->offset[i]);
        const char *values[] = {m->channel, offset, m->sender, m->body, gw_transport_name(m->via)};
        const int lengths[] = {0, 0, 0, (int)m->body_len, 0};
        const int formats[] = {0, 0, 0, 1, 0}; /* the body as bytes: it may hold NULs */
        if (!PQsendQueryPrepared(s->conn, "vv_insert", 5, values, lengths, formats, 0))
            return lost(s, "inserting a message", why);
        /* Sent as it goes: libpq's buffer holds one message, not the batch. */
        if ((err = flush_out(s, started, deadline, why)) != GW_OK)
            return err;
    }
    *commit_sent = true;
    if (!PQsendQueryParams(s->conn, "COMMIT", 0, NULL, NULL, NULL, NULL, 0) ||
        !PQpipelineSync(s->conn))
        return lost(s, "committing", why);
    return flush_out(s, started, deadline, why);
}

/*
 * One try at the batch, as one pipeline; ids, seqs and ts go to s->out. On
 * failure nothing was stored, or (*in_doubt) the connection broke after the
 * COMMIT was sent and before its answer came: the commit may have happened.
 */
static enum gw_err append_txn(struct pg *s, struct gw_msg *const *msgs, size_t n, int64_t ts,
                              bool *in_doubt, char why[GW_ERRLEN])
{
    uint64_t started = mono_ms(), deadline = started + s->query_ms;
    size_t ngroups = group(s, msgs, n), q = 0;
    bool committed = false, synced = false, answered_error = false, commit_sent = false;
    enum gw_err err = GW_OK, ioerr;
    PGresult *r;

    *in_doubt = false;
    s->refused = false;
    if (!PQenterPipelineMode(s->conn))
        return lost(s, "entering pipeline mode", why);
    if ((err = send_batch(s, msgs, n, ngroups, ts, started, deadline, &commit_sent, why)) !=
        GW_OK) {
        /* The connection is gone; unless the COMMIT may have left, the server rolls back. */
        if ((*in_doubt = commit_sent))
            note_indoubt(s, ngroups);
        return err;
    }
    /* Results: BEGIN, one per channel, one per message, COMMIT, then the sync. */
    while (!synced) {
        if ((ioerr = next_result(s, &r, started, deadline, why)) != GW_OK) {
            *in_doubt = !committed && !answered_error;
            if (*in_doubt)
                note_indoubt(s, ngroups);
            return committed ? GW_OK : ioerr;
        }
        if (!r) {
            q++; /* the end of one statement's results */
            continue;
        }
        switch (PQresultStatus(r)) {
        case PGRES_PIPELINE_SYNC:
            synced = true;
            break;
        case PGRES_PIPELINE_ABORTED:
            break;
        case PGRES_COMMAND_OK:
            if (q == 1 + ngroups + n)
                committed = strcmp(PQcmdStatus(r), "COMMIT") == 0;
            break;
        case PGRES_TUPLES_OK:
            if (q > ngroups && q <= ngroups + n) {
                size_t i = q - ngroups - 1;
                if (PQntuples(r) != 1 && err == GW_OK) {
                    /*
                     * Its channel row is locked in this transaction: a
                     * trigger another tool added skipped the row. The
                     * COMMIT is on its way already (api.md says so).
                     */
                    snprintf(why, GW_ERRLEN,
                             "inserting a message: the database skipped it (a trigger that "
                             "returns NULL?); the others of its transaction may be stored");
                    err = GW_E_STORE;
                    answered_error = true;
                    break;
                }
                s->out[3 * i] = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
                s->out[3 * i + 1] = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
                s->out[3 * i + 2] = strtoll(PQgetvalue(r, 0, 2), NULL, 10);
            }
            break;
        default:
            answered_error = true;
            if (err == GW_OK)
                err = failed(s, r, q == 1 + ngroups + n ? "committing" : "appending", why);
            break;
        }
        PQclear(r);
    }
    if (!PQexitPipelineMode(s->conn))
        return lost(s, "leaving pipeline mode", why);
    if (err == GW_OK && !committed) {
        snprintf(why, GW_ERRLEN, "committing: the transaction did not commit");
        err = GW_E_STORE;
    }
    if (err != GW_OK && PQtransactionStatus(s->conn) != PQTRANS_IDLE) {
        char ignored[GW_ERRLEN];
        bool refused = s->refused;
        exec_sql(s, "ROLLBACK", "rolling back", NULL, ignored);
        s->refused = refused;
    }
    if (err == GW_E_STORE_UNAVAILABLE && s->conn)
        lost(s, "the database refused the connection's work", why);
    return err;
}

static enum gw_err pg_append(struct store *base, struct gw_msg *const *msgs, size_t n,
                             bool *refused, char why[GW_ERRLEN])
{
    struct pg *s = (struct pg *)base;
    int64_t ts = now_ms();
    bool in_doubt = false;
    enum gw_err err;

    GW_ASSERT(s->role == PG_WRITER);
    if (ts < s->last_ts_ms)
        ts = s->last_ts_ms;
    reserve(s, n);
    s->refused = false;
    for (int attempt = 0;; attempt++) {
        if ((err = ensure_conn(s, why)) != GW_OK)
            break;
        bool fresh = s->fresh;
        s->fresh = false;
        err = append_txn(s, msgs, n, ts, &in_doubt, why);
        /*
         * A connection that had ended unseen (a restart the server did not
         * announce in time) fails before the COMMIT: nothing was stored, so
         * one more try, on a new connection.
         */
        if (err != GW_E_STORE_UNAVAILABLE || in_doubt || fresh || attempt > 0)
            break;
    }
    if (refused)
        *refused = err != GW_OK && s->refused;
    if (in_doubt) {
        char reason[GW_ERRLEN];
        snprintf(reason, sizeof(reason), "%s", why);
        snprintf(why, GW_ERRLEN,
                 "the connection to the database broke before the commit was confirmed; the "
                 "message may or may not be stored (%.120s)",
                 reason);
    }
    if (err != GW_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        msgs[i]->id = s->out[3 * i];
        msgs[i]->seq = s->out[3 * i + 1];
        msgs[i]->ts_ms = s->out[3 * i + 2];
        if (msgs[i]->ts_ms > s->last_ts_ms)
            s->last_ts_ms = msgs[i]->ts_ms;
    }
    return GW_OK;
}

/* ---- the reader ---- */

/*
 * A read, on the connection there is or a new one. A read is safe to repeat:
 * one that meets a connection that had ended unseen tries once more on a
 * new one.
 */
static enum gw_err read_stmt(struct pg *s, const char *name, int n, const char *const *values,
                             const char *what, PGresult **out, char why[GW_ERRLEN])
{
    enum gw_err err;

    for (int attempt = 0;; attempt++) {
        if ((err = ensure_conn(s, why)) != GW_OK)
            return err;
        bool fresh = s->fresh;
        s->fresh = false;
        err = exec_stmt(s, name, n, values, what, out, why);
        if (err != GW_E_STORE_UNAVAILABLE || fresh || attempt > 0)
            return err;
    }
}

/* Columns col..col+5 of row (id, seq, sender, body, ts, via; binary) into m. */
static void read_msg(const PGresult *r, int row, int col, struct gw_msg *m)
{
    m->id = col_i64(r, row, col);
    m->seq = col_i64(r, row, col + 1);
    m->sender_len = (size_t)PQgetlength(r, row, col + 2);
    m->sender = gw_xmemdup(PQgetvalue(r, row, col + 2), m->sender_len);
    m->body_len = (size_t)PQgetlength(r, row, col + 3);
    m->body = gw_xmemdup(PQgetvalue(r, row, col + 3), m->body_len);
    m->ts_ms = col_i64(r, row, col + 4);
    if (gw_via_parse(PQgetvalue(r, row, col + 5), &m->via) < 0)
        m->via = GW_T_REST; /* NEEDSWORK: a via written by a newer binary */
}

/*
 * The page of vv_page's rows (the first may carry the channel only), as
 * store.h says: the messages up to the count or byte bound, each hole
 * before the message that follows it, and after the last message a hole up
 * to hi unless the page stopped early.
 */
static void page_from(const PGresult *r, const char *channel, int64_t since, int64_t hi,
                      unsigned limit, size_t max_bytes, struct gw_page *p)
{
    size_t bytes = 0, gcap = 0, mcap = 0, channel_len = strnlen(channel, GW_CHANNEL_MAX);
    int64_t want = since + 1; /* the seq that should come next */
    int rows = PQntuples(r);

    for (int row = 0; row < rows && !p->full; row++) {
        struct gw_msg m = {0};
        if (PQgetisnull(r, row, 1))
            continue;
        read_msg(r, row, 1, &m);
        memcpy(m.channel, channel, channel_len); /* m is zeroed: the name ends there */
        if (m.seq != want)
            gw_page_add_gap(p, &gcap, want, m.seq - 1);
        size_t size = gw_msg_wire_len(&m);
        if (p->n > 0 && bytes + size > max_bytes) {
            p->full = 1; /* the hole before it is said; the message comes next time */
            gw_msg_release(&m);
            break;
        }
        if (p->n == mcap) {
            mcap = mcap ? 2 * mcap : 16;
            struct gw_msg *msgs = gw_xrealloc(p->msgs, mcap * sizeof(*msgs));
            p->msgs = msgs;
        }
        p->msgs[p->n++] = m;
        bytes += size;
        want = m.seq + 1;
        if (p->n == limit)
            p->full = 1;
    }
    if (!p->full && want <= hi)
        gw_page_add_gap(p, &gcap, want, hi);
    p->next_since = want - 1;
    if (p->ngaps && p->gaps[p->ngaps - 1].to > p->next_since)
        p->next_since = p->gaps[p->ngaps - 1].to;
}

static enum gw_err pg_page(struct store *base, const char *channel, int64_t since, int64_t upto,
                           unsigned limit, size_t max_bytes, struct gw_page *out,
                           char why[GW_ERRLEN])
{
    struct pg *s = (struct pg *)base;
    char a[24], b[24], c[24], d[24];
    enum gw_err err;
    PGresult *r;

    memset(out, 0, sizeof(*out));
    out->next_since = since;
    snprintf(a, sizeof(a), "%" PRId64, since);
    snprintf(b, sizeof(b), "%u", limit);
    snprintf(c, sizeof(c), "%" PRId64, upto);
    snprintf(d, sizeof(d), "%zu", max_bytes);
    const char *values[] = {channel, a, b, c, d};
    if ((err = read_stmt(s, "vv_page", 5, values, "reading the channel", &r, why)) != GW_OK)
        return err;
    if (PQntuples(r) > 0)
        out->top = col_i64(r, 0, 0);
    if (limit > 0 && since < out->top && since < upto)
        page_from(r, channel, since, upto < out->top ? upto : out->top, limit, max_bytes, out);
    PQclear(r);
    return GW_OK;
}

static enum gw_err pg_channel_top(struct store *base, const char *channel, int64_t *top,
                                  char why[GW_ERRLEN])
{
    struct pg *s = (struct pg *)base;
    const char *values[] = {channel};
    enum gw_err err;
    PGresult *r;

    if ((err = read_stmt(s, "vv_top", 1, values, "reading the channel's last seq", &r, why)) !=
        GW_OK)
        return err;
    *top = PQntuples(r) > 0 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return GW_OK;
}

static enum gw_err pg_message(struct store *base, int64_t id, struct gw_msg *out,
                              char why[GW_ERRLEN])
{
    struct pg *s = (struct pg *)base;
    char num[24];
    enum gw_err err;
    PGresult *r;

    memset(out, 0, sizeof(*out));
    snprintf(num, sizeof(num), "%" PRId64, id);
    const char *values[] = {num};
    if ((err = read_stmt(s, "vv_message", 1, values, "reading the message", &r, why)) != GW_OK)
        return err;
    if (PQntuples(r) == 0) {
        snprintf(why, GW_ERRLEN, "no message with id %" PRId64, id);
        err = GW_E_NOT_FOUND;
    } else {
        read_msg(r, 0, 0, out);
        snprintf(out->channel, sizeof(out->channel), "%s", PQgetvalue(r, 0, 6));
    }
    PQclear(r);
    return err;
}

static enum gw_err pg_channels(struct store *base, const char *after, unsigned limit,
                               struct gw_channel_info **out, size_t *n, char why[GW_ERRLEN])
{
    struct pg *s = (struct pg *)base;
    char num[16];
    enum gw_err err;
    PGresult *r;

    *out = NULL;
    *n = 0;
    snprintf(num, sizeof(num), "%u", limit);
    const char *values[] = {after, num};
    if ((err = read_stmt(s, "vv_channels", 2, values, "listing channels", &r, why)) != GW_OK)
        return err;
    if (PQntuples(r) > 0) {
        *out = gw_xcalloc((size_t)PQntuples(r), sizeof(**out));
        for (int row = 0; row < PQntuples(r); row++) {
            struct gw_channel_info *c = &(*out)[row];
            snprintf(c->name, sizeof(c->name), "%s", PQgetvalue(r, row, 0));
            c->messages = col_i64(r, row, 1);
            c->last_seq = col_i64(r, row, 2);
            c->last_ts_ms = col_i64(r, row, 3);
        }
        *n = (size_t)PQntuples(r);
    }
    PQclear(r);
    return GW_OK;
}

/* ---- the feed ---- */

struct pg_feed {
    struct store_feed base; /* first */
    struct pg *pg;          /* its connection (the feed thread's) */
    struct pg *writer;      /* its current mark: notices with it are not echoed */
    int efd;                /* readable while notices wait (the loop's) */
    int stopfd;             /* written by store_feed_close: the thread ends */
    pthread_t thread;
    bool started;
    pthread_mutex_t mu;
    struct seqcache waiting, spare; /* channel -> highest top heard (waiting: under mu) */
    bool recheck;                   /* under mu */
};

static void feed_signal(struct pg_feed *f)
{
    uint64_t one = 1;
    ssize_t rc = write(f->efd, &one, sizeof(one));
    (void)rc; /* a full counter is readable already */
}

/* Moves the notices libpq holds into waiting. Feed thread. */
static void feed_take(struct pg_feed *f)
{
    PGnotify *n;
    bool any = false;

    char self[17];

    snprintf(self, sizeof(self), "%016" PRIx64, atomic_load(&f->writer->mark));
    pthread_mutex_lock(&f->mu);
    while ((n = PQnotifies(f->pg->conn))) {
        char gw[17], channel[GW_CHANNEL_MAX + 1];
        int64_t top;
        if (strcmp(n->relname, PG_NOTIFY_CHANNEL) != 0 ||
            !store_pg_parse_notice(n->extra, gw, &top, channel)) {
            log_debug("store feed: a notice that is not ours: %s", n->extra);
        } else if (strcmp(gw, self) == 0) {
            log_debug("store feed: our own notice: '%s' at %lld", channel, (long long)top);
        } else {
            log_debug("store feed: '%s' at %lld, from %s", channel, (long long)top, gw);
            struct seqcache_entry *e = seqcache_find(&f->waiting, channel);
            if (e) {
                if (top > e->last_seq)
                    e->last_seq = top;
            } else if (f->waiting.count < PG_FEED_MAX) {
                seqcache_begin(&f->waiting, 1);
                seqcache_add(&f->waiting, channel, 0, top);
            } else {
                f->recheck = true; /* bounded: past that, everything is read again */
            }
            any = true;
        }
        PQfreemem(n);
    }
    pthread_mutex_unlock(&f->mu);
    if (any)
        feed_signal(f);
}

/* Sleeps until ms (monotonic), or until the feed is closed. */
static void feed_sleep(struct pg_feed *f, uint64_t until)
{
    uint64_t now = mono_ms();
    struct pollfd p = {.fd = f->stopfd, .events = POLLIN};

    if (until > now)
        poll(&p, 1, (int)(until - now));
}

/*
 * The probe's answer, once libpq holds it whole (read by feed_read, or by
 * conn_alive before it): then *probe_at is 0, and the server was heard.
 */
static void feed_answer(struct pg *s, uint64_t *probe_at, uint64_t *heard)
{
    while (*probe_at && !PQisBusy(s->conn)) {
        PGresult *r = PQgetResult(s->conn);
        if (!r) {
            *probe_at = 0;
            *heard = mono_ms();
        }
        PQclear(r);
    }
}

/* Reads what the server sent: notices, and the probe's answer. False when the connection is lost.
 */
static bool feed_read(struct pg *s, uint64_t *probe_at, uint64_t *heard, char why[GW_ERRLEN])
{
    if (!PQconsumeInput(s->conn)) {
        lost(s, "listening", why);
        return false;
    }
    *heard = mono_ms();
    feed_answer(s, probe_at, heard);
    return true;
}

static void *feed_main(void *arg)
{
    struct pg_feed *f = arg;
    struct pg *s = f->pg;
    char why[GW_ERRLEN];
    uint64_t heard = mono_ms(), probe_at = 0; /* when the server last spoke; the probe's start */

    while (!atomic_load(&s->stop_waiting)) {
        if (ensure_conn(s, why) != GW_OK) {
            feed_sleep(f, s->retry_at_ms);
            continue;
        }
        if (s->fresh) {
            /* Listening again: whatever was said meanwhile was not heard. */
            s->fresh = false;
            heard = mono_ms();
            probe_at = 0;
            pthread_mutex_lock(&f->mu);
            f->recheck = true;
            pthread_mutex_unlock(&f->mu);
            feed_signal(f);
        }
        feed_take(f);
        feed_answer(s, &probe_at, &heard);
        uint64_t now = mono_ms();
        if (probe_at && now >= probe_at + PG_FEED_ANSWER_MS) {
            lost(s, "listening: no answer to a probe within 5 s", why);
            continue;
        }
        if (!probe_at && now >= heard + PG_FEED_PROBE_MS) {
            if (!PQsendQuery(s->conn, "SELECT 1")) {
                lost(s, "probing the connection", why);
                continue;
            }
            probe_at = now;
        }
        uint64_t until = probe_at ? probe_at + PG_FEED_ANSWER_MS : heard + PG_FEED_PROBE_MS;
        /* A nonblocking connection may hold part of the probe: sent as the socket takes it. */
        int flush = PQflush(s->conn);
        struct pollfd p[2] = {
            {.fd = PQsocket(s->conn), .events = (short)(POLLIN | (flush > 0 ? POLLOUT : 0))},
            {.fd = f->stopfd, .events = POLLIN}};
        if (flush < 0) {
            lost(s, "probing the connection", why);
            continue;
        }
        if (poll(p, 2, until > now ? (int)(until - now) : 0) < 0 && errno != EINTR) {
            log_error("store feed: poll: %s", strerror(errno));
            feed_sleep(f, mono_ms() + PG_BACKOFF_MAX_MS);
            continue;
        }
        if (p[1].revents)
            break;
        if (p[0].revents & ~POLLOUT)
            feed_read(s, &probe_at, &heard, why);
    }
    return NULL;
}

static void pg_feed_close(struct store_feed *base)
{
    struct pg_feed *f = (struct pg_feed *)base;
    uint64_t one = 1;

    if (!f)
        return;
    if (f->started) {
        atomic_store(&f->pg->stop_waiting, true);
        if (write(f->stopfd, &one, sizeof(one)) < 0)
            log_error("store feed: cannot wake its thread: %s", strerror(errno));
        pthread_join(f->thread, NULL);
    }
    pg_close(&f->pg->base);
    if (f->efd >= 0)
        close(f->efd);
    if (f->stopfd >= 0)
        close(f->stopfd);
    pthread_mutex_destroy(&f->mu);
    seqcache_release(&f->waiting);
    seqcache_release(&f->spare);
    free(f);
}

static enum gw_err pg_feed_open(struct store_feed **out, struct store *writer, char why[GW_ERRLEN])
{
    struct pg *w = (struct pg *)writer;
    struct pg_feed *f = gw_xcalloc(1, sizeof(*f));
    enum gw_err err;
    int rc;

    *out = NULL;
    f->base.ops = &store_postgres_ops;
    f->pg = pg_new(w->target, PG_FEED);
    f->writer = w;
    memcpy(f->pg->dbid, w->dbid, sizeof(w->dbid)); /* the one the writer set up, not a later one */
    f->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    f->stopfd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&f->mu, NULL);
    seqcache_init(&f->waiting);
    seqcache_init(&f->spare);
    if (f->efd < 0 || f->stopfd < 0) {
        snprintf(why, GW_ERRLEN, "eventfd: %s", strerror(errno));
        pg_feed_close(&f->base);
        return GW_E_STORE;
    }
    /* Listening before the gateway says it is ready: no commit after that goes unheard. */
    if ((err = pg_connect(f->pg, why)) != GW_OK) {
        pg_feed_close(&f->base);
        return err;
    }
    f->pg->opened = true;
    if ((rc = pthread_create(&f->thread, NULL, feed_main, f)) != 0) {
        snprintf(why, GW_ERRLEN, "cannot start the feed's thread: %s", strerror(rc));
        pg_feed_close(&f->base);
        return GW_E_STORE;
    }
    pthread_setname_np(f->thread, "visavis-feed");
    f->started = true;
    *out = &f->base;
    return GW_OK;
}

static int pg_feed_fd(const struct store_feed *base)
{
    return ((const struct pg_feed *)base)->efd;
}

static bool pg_feed_drain(struct store_feed *base, store_moved_fn *moved, void *ctx)
{
    struct pg_feed *f = (struct pg_feed *)base;
    struct seqcache taken;
    uint64_t count;
    bool recheck;

    /* First the counter, then the notices: one that comes between signals again. */
    if (read(f->efd, &count, sizeof(count)) < 0 && errno != EAGAIN)
        log_error("store feed: reading its eventfd: %s", strerror(errno));
    pthread_mutex_lock(&f->mu);
    taken = f->waiting;
    f->waiting = f->spare;
    recheck = f->recheck;
    f->recheck = false;
    pthread_mutex_unlock(&f->mu);
    for (size_t i = 0; i < taken.cap; i++) {
        if (taken.slots[i].name[0])
            moved(ctx, taken.slots[i].name, taken.slots[i].last_seq);
    }
    seqcache_clear(&taken);
    f->spare = taken;
    return recheck;
}

const struct store_ops store_postgres_ops = {
    .name = "postgres",
    .open = pg_open,
    .close = pg_close,
    .append = pg_append,
    .page = pg_page,
    .channel_top = pg_channel_top,
    .message = pg_message,
    .channels = pg_channels,
    .stop_waiting = pg_stop_waiting,
    .schema_version = pg_schema_version,
    .describe = pg_describe,
    .sync_name = pg_sync_name,
    .feed_open = pg_feed_open,
    .feed_fd = pg_feed_fd,
    .feed_drain = pg_feed_drain,
    .feed_close = pg_feed_close,
};
