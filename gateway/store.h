/*
 * store.h - the durable store, whatever holds it: schema migrations,
 * durable appends with their seqs, reads.
 *
 * An interface: the target given to store_open picks the backend
 * (store_backend.h; PostgreSQL for a postgres:// or postgresql:// URL or a
 * libpq key=value string, store_postgres.h; SQLite for anything else, a
 * file path, store_sqlite.h), and every call goes to it. Nothing outside a
 * backend knows which one it is. Errors are enum gw_err with the backend's
 * reason in why:
 *
 *   GW_E_STORE_BUSY   the database is held by someone else and a short wait
 *                     for it ran out: nothing was done, the same call may
 *                     pass soon
 *   GW_E_STORE_FULL   no room: the disk, a quota or a file size limit
 *   GW_E_STORE_UNAVAILABLE   no connection to a database server: the
 *                     backend reconnects by itself, with back-off, and fails
 *                     calls at once meanwhile
 *   GW_E_STORE        anything else: a message refused (see store_append's
 *                     *refused) or the database broken
 *   GW_E_SCHEMA, GW_E_STORE_IN_USE, GW_E_NOT_FOUND   as each call says
 *
 * Depends on gw.h, model.h.
 *
 * One struct store is one connection and is used by one thread at a time:
 * the writer's by the writer thread (store_append), the reader's by the
 * reader thread (store_page, store_channel_top, store_message,
 * store_channels). A read sees every transaction committed before it
 * began. Only store_stop_waiting may be called from another thread.
 */
#ifndef GW_STORE_H
#define GW_STORE_H

#include "gw.h"
#include "model.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct store;

enum store_role {
    STORE_WRITER, /* applies migrations; appends */
    STORE_READER  /* query-only; needs the schema a writer has applied */
};

/*
 * The schema version this binary writes (the number of migrations it knows)
 * for the backend of the first database the process opened (SQLite before
 * any is opened).
 */
int store_schema_version(void);

/* The name of the backend target selects ("sqlite", "postgres"), for logs. */
const char *store_backend_name(const char *target);

/*
 * target as a log line or an error may show it: a PostgreSQL target without
 * its password. Into out (len bytes, NUL-terminated, cut if need be).
 */
void store_target_describe(const char *target, char *out, size_t len);

/*
 * How durable an acknowledged commit is on s, for the start's log line:
 * "full" or "normal" for SQLite (sync_full, as opened); for PostgreSQL the
 * server's synchronous_commit, which decides it there.
 */
const char *store_sync_name(const struct store *s, bool sync_full);

/*
 * Writer thread, after an append failed: whether every append will fail
 * until the gateway is restarted on the database (a SQLite file moved or
 * replaced under it), rather than until the cause goes by itself.
 */
bool store_needs_restart(const struct store *s);

/*
 * Opens (creating if needed) the database target names. The writer brings
 * the schema up to date and refuses a database newer than this binary with
 * GW_E_SCHEMA; a SQLite writer where another gateway writes already is
 * GW_E_STORE_IN_USE (why names it). sync_full (SQLite): an acknowledged
 * message survives power loss, not only a crash of the process. Close every
 * reader of a database before its writer.
 */
enum gw_err store_open(struct store **out, const char *target, enum store_role role, bool sync_full,
                       char why[GW_ERRLEN]);

/* Ends the connection (the SQLite writer also checkpoints its WAL). NULL is a no-op. */
void store_close(struct store *s);

/*
 * From now on every wait for another connection's lock gives up at once (the
 * call fails with GW_E_STORE_BUSY), and a wait under way ends within a few
 * milliseconds: for a stop that must not hang on a database someone else
 * holds. Any thread; s stays usable.
 */
void store_stop_waiting(struct store *s);

/*
 * Appends msgs[0..n-1] in one transaction, in order. Each must have channel,
 * sender, body and via set (already validated by the core). On GW_OK every
 * message has its id, seq and ts_ms, and the transaction has committed. On
 * failure nothing was stored and the messages are unchanged.
 *
 * *refused (may be NULL) tells the two kinds of GW_E_STORE apart: true when
 * the database refused a message (a constraint, a value too big), so that
 * the batch without it may pass; false when the database failed, which
 * fails any batch alike. Seqs are allocated inside the transaction: a
 * backend whose memory of a channel's seq is stale (another process wrote
 * it) reads it again before a refusal counts.
 */
enum gw_err store_append(struct store *s, struct gw_msg *const *msgs, size_t n, bool *refused,
                         char why[GW_ERRLEN]);

/*
 * A page of channel (see struct gw_page in model.h): messages with since <
 * seq <= upto, oldest first, at most limit of them and at most max_bytes of
 * their JSON form (gw_msg_wire_len; at least one message), with the holes
 * met on the way and the channel's top, all from one snapshot. A hole is
 * reported where the store lacks seqs it should have (before a row, or
 * between the last row and min(top, upto) when the page is not full). An
 * unknown channel is an empty page with top 0. On failure *out is empty.
 */
enum gw_err store_page(struct store *s, const char *channel, int64_t since, int64_t upto,
                       unsigned limit, size_t max_bytes, struct gw_page *out, char why[GW_ERRLEN]);

/* The channel's last seq into *top; 0 for a channel with no messages. */
enum gw_err store_channel_top(struct store *s, const char *channel, int64_t *top,
                              char why[GW_ERRLEN]);

/* The message with this id into *out (release with gw_msg_release); GW_E_NOT_FOUND if none. */
enum gw_err store_message(struct store *s, int64_t id, struct gw_msg *out, char why[GW_ERRLEN]);

/*
 * A page of the channel list: the channels whose name comes after `after`
 * in byte order ("" for the first page), by name, at most limit (>= 1) of
 * them. Read through an index on the name, so a page costs its own rows,
 * not every channel. *out is a new array (free()), NULL when *n is 0.
 */
enum gw_err store_channels(struct store *s, const char *after, unsigned limit,
                           struct gw_channel_info **out, size_t *n, char why[GW_ERRLEN]);

/*
 * The feed: commits other gateways made on the same database, heard as
 * (channel, top) notices for core_channel_notice. A backend with one writer
 * per database (SQLite) has none: store_feed_open gives GW_OK and NULL.
 *
 * A feed has a connection and a thread of its own, and coalesces: per
 * channel only the highest top waits to be drained. Notices may be lost
 * (the connection broke, too many channels waited): then the drain says
 * "recheck", and every channel the caller follows must be read again. The
 * writer's own commits are not echoed back (the loop has seen them).
 */
struct store_feed;

/* Called by store_feed_drain once per channel that moved, on the caller's thread. */
typedef void store_moved_fn(void *ctx, const char *channel, int64_t top);

/*
 * Starts the feed of writer (an open STORE_WRITER; borrowed, must outlive the
 * feed): listening has begun when it returns GW_OK. Loop thread.
 */
enum gw_err store_feed_open(struct store_feed **out, struct store *writer, char why[GW_ERRLEN]);

/* An fd that turns readable when notices wait: the loop watches it. */
int store_feed_fd(const struct store_feed *f);

/*
 * Hands every notice waiting to moved(ctx, channel, top); returns true when
 * some may have been lost since the last call (every followed channel must
 * be read again). Loop thread.
 */
bool store_feed_drain(struct store_feed *f, store_moved_fn *moved, void *ctx);

/* Stops the thread, ends the connection, frees. NULL is a no-op. */
void store_feed_close(struct store_feed *f);

#endif
