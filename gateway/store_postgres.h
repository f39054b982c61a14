/*
 * store_postgres.h - the PostgreSQL backend: several gateways on one
 * database, each with its writer, its reader and its feed.
 *
 * A postgres:// or postgresql:// URL, or a libpq key=value string
 * ("host=db dbname=visavis user=visavis"), selects it; libpq's defaults and
 * environment (PGHOST, PGPASSWORD, ~/.pgpass, ...) fill in what it leaves
 * out. Unlike a SQLite file, any number of gateways may write one database:
 *
 * - Seqs: a transaction takes the rows of its batch's channels (in name
 *   order, so two gateways never wait for each other in a circle) and
 *   allocates seqs from their last_seq while it holds them: no holes, no
 *   duplicates, whoever publishes. One batch is one pipelined round trip.
 * - Durability is the server's synchronous_commit: a publish is answered
 *   when its COMMIT returned, which is "on disk" with the default (on), and
 *   "on the standby too" with remote_write/remote_apply; the operator sets
 *   it (postgresql.conf, ALTER ROLE/DATABASE ... SET, or options=-c... in
 *   the target). --sync does not apply.
 * - Push: each commit NOTIFYs "visavis" with (gateway, top, channel) per
 *   channel; every feed LISTENs and hands (channel, top) to the loop. A
 *   notice only says "read from the store": a lost one costs latency.
 * - A connection that breaks is remade with back-off (0.1 s doubling to
 *   2 s); meanwhile calls fail at once with GW_E_STORE_UNAVAILABLE. A
 *   publish whose connection broke during its round trip may or may not
 *   have committed (why says so); its channels' tops are announced again
 *   once the writer is back, so subscribers see it if it did.
 *
 * Errors (SQLSTATE classes) become enum gw_err in store_pg_error_of.
 *
 * Depends on store_backend.h, seqcache.h, text.h, log.h, and libpq (in the .c
 * only: the one file that includes libpq-fe.h).
 */
#ifndef GW_STORE_POSTGRES_H
#define GW_STORE_POSTGRES_H

#include "store_backend.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

extern const struct store_ops store_postgres_ops;

/*
 * Whether target names a PostgreSQL database: a postgres:// or
 * postgresql:// URL, or a string that begins with a libpq keyword and '='
 * ("host=db usr=x" is one, and fails to open with libpq's reason; "a=b.db"
 * is not one: "a" is no libpq keyword). Pure.
 */
bool store_pg_is_target(const char *target);

/*
 * The classification of a failed statement: its SQLSTATE (NULL or "" when
 * libpq gave none), and whether the connection still works.
 *
 *   connection gone, class 08, 57P01-57P03 (the server stops or starts),
 *   53300 (too many connections)                   GW_E_STORE_UNAVAILABLE
 *   40001, 40P01, 55P03, 57014 (a lock wait or a statement that ran out of
 *   time, a conflict that may pass)                GW_E_STORE_BUSY
 *   53100 (disk full)                              GW_E_STORE_FULL
 *   classes 22, 23, 54 (a value the database refuses, a constraint, a row
 *   too big)                                       GW_E_STORE, *refused
 *   anything else                                  GW_E_STORE
 *
 * Pure; exposed for its unit test.
 */
enum gw_err store_pg_error_of(const char *sqlstate, bool connection_ok, bool *refused);

/*
 * A notice's payload, "<gateway> <top> <channel>", into its parts (gateway
 * up to 16 characters, into gw[17]; channel into channel[GW_CHANNEL_MAX + 1]).
 * false for anything else: a top that is not a positive number, a channel
 * name outside [A-Za-z0-9._-]{1,64}. Pure; exposed for its unit test.
 */
bool store_pg_parse_notice(const char *payload, char gw[17], int64_t *top, char *channel);

/*
 * How to connect to a target: one attempt per host of its list ("host=a,b
 * port=1,2", "postgresql://a:1,b:2/db", a hostaddr list), in order, each
 * with every other keyword of the target as given (target_session_attrs,
 * sslmode, user, dbname ...) and its own deadline of timeout_s, as libpq's
 * blocking connect does; its nonblocking one, which the gateway uses, never
 * leaves a host that takes the connection and then says nothing.
 *
 * timeout_s is the target's connect_timeout, 2 at least (libpq's rule), and
 * the gateway's 5 where the target gives none, or 0 or less: libpq's "wait
 * for ever". Lists whose counts libpq would refuse (3 ports for 2 hosts) are
 * not split: one attempt with the target as it is, which fails with libpq's
 * own reason.
 */
struct store_pg_plan {
    size_t attempts;    /* 1 when the target lists one host, or none */
    unsigned timeout_s; /* the deadline of each attempt */
    /* Per attempt: its host, hostaddr and port, NULL where the target gives none. */
    const char **host, **hostaddr, **port;
    /*
     * The current attempt's keywords and values for PQconnectStartParams
     * (expand_dbname 0), NULL-terminated: the defaults given, then every
     * keyword of the target, with the attempt's host, hostaddr and port.
     */
    const char **keys, **values;
    /* private */
    void *parsed; /* the target as PQconninfoParse reads it */
    char *lists;  /* the host, hostaddr and port lists, cut at their commas */
};

/*
 * The plan for target, with keys/values (NULL-terminated) as defaults that
 * the target's own keywords override, set to the first attempt. false, and
 * why (libpq's reason), for a target libpq cannot read or a connect_timeout
 * that is no number. Pure; exposed for its unit test.
 */
bool store_pg_plan(const char *target, const char *const *keys, const char *const *values,
                   struct store_pg_plan *plan, char why[GW_ERRLEN]);
/* Sets plan->keys/values to attempt i (below plan->attempts). */
void store_pg_plan_attempt(struct store_pg_plan *plan, size_t i);
void store_pg_plan_free(struct store_pg_plan *plan);

#endif
