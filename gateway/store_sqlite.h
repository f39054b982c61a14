/*
 * store_sqlite.h - the SQLite backend (the default: one file, no server).
 *
 * A database file path selects it. The writer holds an exclusive flock()
 * on the file until it closes, so a second writer, in this process or
 * another, gets GW_E_STORE_IN_USE (why names the holder's pid when the
 * system says it); SQLite's own locks are POSIX locks, which flock does not
 * touch, so other tools still read the file. WAL lets the reader run beside
 * the writer and see every transaction committed before its statement began.
 *
 * SQLite result codes become enum gw_err here (store_error_of), with the
 * library's reason in why:
 *
 *   GW_E_STORE_BUSY   another connection holds a lock, and a short wait for
 *                     it ran out (5 s while opening; then 1 s for the writer
 *                     and for the reader): nothing was done, the same call
 *                     may pass soon
 *   GW_E_STORE_FULL   the disk, a quota or a file size limit is full
 *   GW_E_STORE        anything else: a message refused (a constraint, too
 *                     big: see store_append's *refused) or the database
 *                     broken (I/O error, corrupt, read-only, gone)
 *
 * Depends on store_backend.h, seqcache.h, log.h, and sqlite3 (in the .c only).
 */
#ifndef GW_STORE_SQLITE_H
#define GW_STORE_SQLITE_H

#include "store_backend.h"

#include <stdbool.h>

extern const struct store_ops store_sqlite_ops;

/*
 * The classification above, of a SQLite result code (extended codes) and the
 * errno the library saw (sqlite3_system_errno): GW_E_STORE_BUSY,
 * GW_E_STORE_FULL or GW_E_STORE, and *refused as store_append says. Pure;
 * exposed for its unit test.
 */
enum gw_err store_error_of(int sqlite_rc, int sys_errno, bool *refused);

#endif
