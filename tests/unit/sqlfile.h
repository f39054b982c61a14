/*
 * sqlfile.h - raw SQL on a database file, on a connection of the test's own:
 * for the unit tests that check what the store wrote, or change it behind
 * the gateway's back (rows removed or added, triggers, old schemas).
 *
 * Header-only like tap.h, which it needs (diag): include it after tap.h,
 * from one .c file per test program. Only tests and the store include
 * sqlite3.h.
 */
#ifndef SQLFILE_H
#define SQLFILE_H

#include <sqlite3.h>
#include <stdint.h>

/* A connection waits this long for a lock another one holds. */
#define SQLFILE_BUSY_MS 10000

/* Runs sql (any number of statements) on path, created if need be; returns 0, or -1 and says why.
 */
static inline int sql_exec(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    char *msg = NULL;
    int rc = -1;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, SQLFILE_BUSY_MS);
        if (sqlite3_exec(db, sql, NULL, NULL, &msg) == SQLITE_OK)
            rc = 0;
    }
    if (rc != 0)
        diag("sql_exec(%s): %s", sql, msg ? msg : db ? sqlite3_errmsg(db) : "no connection");
    sqlite3_free(msg);
    sqlite3_close(db);
    return rc;
}

/* The first column of the first row of sql on path; -1 when there is none (said if an error). */
static inline int64_t sql_int(const char *path, const char *sql)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    int rc = SQLITE_ERROR;

    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL) == SQLITE_OK) {
        sqlite3_busy_timeout(db, SQLFILE_BUSY_MS);
        if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK)
            rc = sqlite3_step(st);
    }
    if (rc == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    else if (rc != SQLITE_DONE)
        diag("sql_int(%s): %s", sql, db ? sqlite3_errmsg(db) : "no connection");
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

#endif
