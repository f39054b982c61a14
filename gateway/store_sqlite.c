/*
 * store_sqlite.c - the SQLite backend of the store (store.h, store_backend.h);
 * the only file that includes sqlite3.h.
 *
 * Every statement is prepared once (SQLITE_PREPARE_PERSISTENT) and kept in
 * struct sq; each use is bind, step, check, and always reset. Time is
 * assigned here, at commit, and never goes backwards, so ts follows id.
 *
 * Every SQLite error goes through fail() or exec(), which classify it
 * (store_error_of). Waits for other connections' locks go through on_busy,
 * which bounds them and lets store_stop_waiting cut them short.
 */
#include "store_sqlite.h"

#include "log.h"
#include "seqcache.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <unistd.h>

/*
 * How long a statement waits for a lock another connection holds before it
 * fails with GW_E_STORE_BUSY. In WAL mode only another writer holds one, so
 * a wait is someone else writing the file: worth a moment, not a stall. The
 * reader runs on a thread of its own, so its wait stalls only the reads
 * queued behind it, never the loop. Opening waits longer: nothing else waits on it, and a start
 * should not fail on a moment's contention.
 */
#define STORE_OPEN_BUSY_MS   5000
#define STORE_WRITER_BUSY_MS 1000
#define STORE_READER_BUSY_MS 1000
/* The longest single sleep in a wait: how soon store_stop_waiting is seen. */
#define STORE_BUSY_STEP_MS   10
/* The WAL file is cut back to this (bytes) once reused from its start. */
#define WAL_SIZE_LIMIT       "67108864"
/*
 * SQLite's index of the WAL (the -shm file, mapped): 32 KiB regions, the
 * first for 4062 frames (after its header), each next for 4096.
 */
#define SHM_REGION           32768
#define SHM_FIRST_FRAMES     4062
#define SHM_REGION_FRAMES    4096
/* A start leaves this much room at least, besides the index of the WAL there is. */
#define START_ROOM           (256 * 1024)

/* The numbered files of db/migrations/, embedded at build time. */
extern const char *const store_migrations[];
extern const int store_migrations_count;

enum stmt_id {
    ST_BEGIN,
    ST_COMMIT,
    ST_ROLLBACK,
    ST_CHANNEL_GET,
    ST_CHANNEL_NEW,
    ST_CHANNEL_SET,
    ST_INSERT_MSG,
    ST_HISTORY,
    ST_MESSAGE,
    ST_CHANNELS,
    ST_TOP,
    ST_READ_BEGIN,
    ST_READ_END,
    ST_DATA_VERSION,
    ST__COUNT
};

struct stmt_def {
    enum store_role role;
    const char *sql;
};

static const struct stmt_def stmt_defs[ST__COUNT] = {
    [ST_BEGIN] = {STORE_WRITER, "BEGIN IMMEDIATE"},
    [ST_COMMIT] = {STORE_WRITER, "COMMIT"},
    [ST_ROLLBACK] = {STORE_WRITER, "ROLLBACK"},
    [ST_CHANNEL_GET] = {STORE_WRITER, "SELECT id, last_seq FROM channels WHERE name = ?1"},
    [ST_CHANNEL_NEW] = {STORE_WRITER, "INSERT INTO channels(name) VALUES (?1)"},
    [ST_CHANNEL_SET] = {STORE_WRITER, "UPDATE channels SET last_seq = ?2, "
                                      "msg_count = msg_count + ?3, last_ts = ?4 WHERE id = ?1"},
    [ST_INSERT_MSG] = {STORE_WRITER, "INSERT INTO messages(channel_id, seq, sender, body, ts, via) "
                                     "VALUES (?1, ?2, ?3, ?4, ?5, ?6)"},
    [ST_HISTORY] = {STORE_READER,
                    "SELECT m.id, m.seq, m.sender, m.body, m.ts, m.via "
                    "FROM channels c JOIN messages m ON m.channel_id = c.id "
                    "WHERE c.name = ?1 AND m.seq > ?2 AND m.seq <= ?4 ORDER BY m.seq LIMIT ?3"},
    [ST_MESSAGE] = {STORE_READER, "SELECT m.id, m.seq, m.sender, m.body, m.ts, m.via, c.name "
                                  "FROM messages m JOIN channels c ON c.id = m.channel_id "
                                  "WHERE m.id = ?1"},
    /* A page in byte order (name's BINARY collation), through its UNIQUE index. */
    [ST_CHANNELS] = {STORE_READER, "SELECT name, msg_count, last_seq, last_ts FROM channels "
                                   "WHERE name > ?1 ORDER BY name LIMIT ?2"},
    [ST_TOP] = {STORE_READER, "SELECT last_seq FROM channels WHERE name = ?1"},
    /* A page and its channel's top from one snapshot. */
    [ST_READ_BEGIN] = {STORE_READER, "BEGIN"},
    [ST_READ_END] = {STORE_READER, "COMMIT"},
    /* Changes when another connection commits to the file: see outside_writes. */
    [ST_DATA_VERSION] = {STORE_WRITER, "PRAGMA data_version"},
};

struct sq {
    struct store base; /* first: a struct store pointer is a struct sq pointer */
    sqlite3 *db;
    enum store_role role;
    sqlite3_stmt *st[ST__COUNT];
    int64_t last_ts_ms;
    int64_t *scratch; /* id, seq of each message of the batch under way */
    size_t scratch_cap;
    struct seqcache seqs;
    struct seqcache_entry **touched;  /* channels of the batch under way */
    int lock_fd;                      /* the writer's flock() on the file, or -1 */
    int shm_fd;                       /* the writer's own descriptor of the -shm, or -1 */
    off_t shm_reserved;               /* bytes of the -shm given blocks by shm_reserve */
    int page_size;                    /* the database's, read at open */
    bool locked;                      /* ... and holds the lock */
    char *path, *wal_path, *shm_path; /* the writer's file, its WAL and -shm: still there? */
    struct stat wal_st, shm_st;       /* ... the WAL and -shm this connection uses, once seen */
    bool wal_seen, shm_seen;
    int64_t data_version; /* the file's data_version when this connection last looked */
    uint64_t outside_writes, outside_logged_ms; /* times it changed; when last logged */
    bool data_version_known;
    bool gone;                /* the file is no longer at path: every commit fails */
    unsigned busy_ms;         /* how long one wait for a lock may last */
    uint64_t busy_since_ms;   /* when the wait under way began */
    atomic_bool stop_waiting; /* set by store_stop_waiting, from any thread */
    bool opened;              /* store_open succeeded */
    bool refused;             /* the last error was a refused row */
};

static void sq_close(struct store *base);
static enum gw_err sq_channel_top(struct store *base, const char *channel, int64_t *top,
                                  char why[GW_ERRLEN]);

static int sq_schema_version(void)
{
    return store_migrations_count;
}

enum gw_err store_error_of(int sqlite_rc, int sys_errno, bool *refused)
{
    *refused = false;
    switch (sqlite_rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
    case SQLITE_PROTOCOL: /* WAL lock races that outlasted SQLite's own retries */
        return GW_E_STORE_BUSY;
    case SQLITE_FULL:
    case SQLITE_NOLFS:
        return GW_E_STORE_FULL;
    case SQLITE_IOERR:
        /* SQLite calls only ENOSPC on a write "full"; a quota or RLIMIT_FSIZE is full too. */
        if (sys_errno == ENOSPC || sys_errno == EDQUOT || sys_errno == EFBIG)
            return GW_E_STORE_FULL;
        return GW_E_STORE;
    case SQLITE_CONSTRAINT:
    case SQLITE_TOOBIG:
    case SQLITE_MISMATCH:
        *refused = true;
        return GW_E_STORE;
    default:
        return GW_E_STORE; /* corrupt, read-only, gone, misused: broken */
    }
}

/*
 * Classifies the last error on s->db into s->refused and the result. errno
 * is the caller's, read right after the failed call: SQLite records its
 * system errno for errors met in a statement, not for those met while
 * committing (a WAL write past a file size limit), and errno still holds it.
 */
static enum gw_err classify(struct sq *s, int sys_errno)
{
    int recorded = sqlite3_system_errno(s->db);
    return store_error_of(sqlite3_extended_errcode(s->db), recorded ? recorded : sys_errno,
                          &s->refused);
}

/*
 * SQLite's message for an I/O error is "disk I/O error", whatever the
 * cause: the system's own words go after it (a full disk met while making
 * the -shm at start, a permission), at the end of why.
 */
static void add_system_error(struct sq *s, int sys_errno, char why[GW_ERRLEN])
{
    int recorded = sqlite3_system_errno(s->db);
    size_t len = strlen(why);

    int rc = sqlite3_extended_errcode(s->db) & 0xff;

    if ((rc == SQLITE_IOERR || rc == SQLITE_CANTOPEN) && (recorded || sys_errno) && len < GW_ERRLEN)
        snprintf(why + len, GW_ERRLEN - len, " (%s)", strerror(recorded ? recorded : sys_errno));
}

/* Right after a failed sqlite3_step: why, and the classified error. */
static enum gw_err fail(struct sq *s, const char *what, char why[GW_ERRLEN])
{
    int sys_errno = errno;
    snprintf(why, GW_ERRLEN, "%s: %s", what, sqlite3_errmsg(s->db));
    add_system_error(s, sys_errno, why);
    return classify(s, sys_errno);
}

static enum gw_err exec(struct sq *s, const char *sql, char why[GW_ERRLEN])
{
    char *msg = NULL;
    errno = 0;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        int sys_errno = errno;
        /* The reason first: a migration's SQL would push it out of why. */
        snprintf(why, GW_ERRLEN, "%s (in: %.80s)", msg ? msg : sqlite3_errmsg(s->db), sql);
        sqlite3_free(msg);
        add_system_error(s, sys_errno, why);
        return classify(s, sys_errno);
    }
    return GW_OK;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/*
 * SQLite's busy handler: called while another connection holds a lock this
 * one needs, count times so far in this wait; 0 gives up (SQLITE_BUSY).
 * Short sleeps, growing, so a brief lock costs little and a stop is seen.
 */
static int on_busy(void *ctx, int count)
{
    struct sq *s = ctx;
    uint64_t now = mono_ms();

    if (count == 0)
        s->busy_since_ms = now;
    if (atomic_load(&s->stop_waiting) || now - s->busy_since_ms >= s->busy_ms)
        return 0;
    uint64_t left = s->busy_ms - (now - s->busy_since_ms);
    uint64_t step = count < 4 ? 1u << count : STORE_BUSY_STEP_MS;
    if (step > left)
        step = left;
    struct timespec ts = {0, (long)(step * 1000000u)};
    nanosleep(&ts, NULL);
    return 1;
}

static void sq_stop_waiting(struct store *base)
{
    struct sq *s = (struct sq *)base;

    atomic_store(&s->stop_waiting, true);
}

/* The pid holding a flock on fd's file, from /proc/locks; 0 if not known. */
static long lock_holder(int fd)
{
    struct stat st;
    char line[256];
    long found = 0;
    FILE *f;

    if (fstat(fd, &st) < 0 || !(f = fopen("/proc/locks", "re")))
        return 0;
    /* "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; waiters' lines hold "->". */
    while (!found && fgets(line, sizeof(line), f)) {
        char kind[16], mode[16];
        unsigned maj, min;
        unsigned long ino;
        long pid;
        if (strstr(line, "->") || sscanf(line, "%*s %15s %*s %15s %ld %x:%x:%lu", kind, mode, &pid,
                                         &maj, &min, &ino) != 6)
            continue;
        if (strcmp(kind, "FLOCK") == 0 && strcmp(mode, "WRITE") == 0 && ino == st.st_ino &&
            maj == major(st.st_dev) && min == minor(st.st_dev))
            found = pid;
    }
    fclose(f);
    return found;
}

/* Frames a WAL file of this size may hold (an overestimate once it is reused from its start). */
static uint64_t wal_frames_of(off_t bytes, int page_size)
{
    return bytes > 32 ? (uint64_t)(bytes - 32) / (uint64_t)(page_size + 24) : 0;
}

/* Bytes of the -shm that index frames of the WAL. */
static off_t shm_bytes_for(uint64_t frames)
{
    uint64_t regions = 1;
    if (frames > SHM_FIRST_FRAMES)
        regions += (frames - SHM_FIRST_FRAMES + SHM_REGION_FRAMES - 1) / SHM_REGION_FRAMES;
    return (off_t)(regions * SHM_REGION);
}

static int page_size_of(struct sq *s)
{
    sqlite3_stmt *st;
    int size = 4096;

    if (sqlite3_prepare_v2(s->db, "PRAGMA page_size", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        size = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    return size > 0 ? size : 4096;
}

/*
 * Gives blocks to the -shm for frames of the WAL and one region more.
 *
 * SQLite maps the -shm and writes one byte in each 4 KiB of a region it
 * adds, to have the file system allocate it. On a file system of smaller
 * blocks (ext4 makes 1 KiB blocks on a small volume) the rest of each 4 KiB
 * stays a hole, and when the disk is full SQLite's first write there through
 * the map is a SIGBUS: the whole gateway dies where a full disk should be
 * 507 store_full. Reserved ahead of each transaction, a full disk fails the
 * transaction instead, before SQLite touches the new region.
 */
static enum gw_err shm_reserve(struct sq *s, uint64_t frames, char why[GW_ERRLEN])
{
    off_t want = shm_bytes_for(frames + SHM_REGION_FRAMES);

    if (want <= s->shm_reserved || !*s->shm_path)
        return GW_OK;
    if (s->shm_fd < 0) {
        /* Kept open until SQLite is closed: closing it would drop SQLite's locks on the file. */
        s->shm_fd = open(s->shm_path, O_RDWR | O_CLOEXEC | O_NOCTTY | O_NOFOLLOW);
        if (s->shm_fd < 0)
            return GW_OK; /* not made yet: SQLite makes it at its first use of the WAL */
    }
    int rc = posix_fallocate(s->shm_fd, 0, want);
    if (rc == ENOSPC || rc == EDQUOT || rc == EFBIG) {
        snprintf(why, GW_ERRLEN, "no room on disk to grow the WAL's index %s: %s", s->shm_path,
                 strerror(rc));
        return GW_E_STORE_FULL;
    }
    if (rc != 0)
        log_warn("store: cannot reserve room for the WAL's index %s: %s", s->shm_path,
                 strerror(rc));
    s->shm_reserved = want; /* reserved, or this file system cannot: not asked again */
    return GW_OK;
}

/*
 * The frames the WAL may hold now, from its size: as still_there saw it just
 * before a transaction, or at open from the file.
 */
static uint64_t wal_frames_now(struct sq *s)
{
    struct stat st;

    if (s->wal_seen)
        return wal_frames_of(s->wal_st.st_size, s->page_size);
    if (!*s->wal_path || stat(s->wal_path, &st) < 0)
        return 0;
    return wal_frames_of(st.st_size, s->page_size);
}

/*
 * At start, before SQLite maps the -shm and builds the index of the WAL
 * there is, which no reservation can come before: room for that index and
 * some, or a clear refusal rather than a SIGBUS on a nearly full disk.
 */
static enum gw_err room_to_start(struct sq *s, const char *path, char why[GW_ERRLEN])
{
    struct statvfs vfs;
    struct stat wal;
    off_t need = START_ROOM;

    if (fstatvfs(s->lock_fd, &vfs) < 0 || vfs.f_flag & ST_RDONLY)
        return GW_OK; /* SQLite says what is wrong then */
    if (*s->wal_path && stat(s->wal_path, &wal) == 0)
        need += shm_bytes_for(wal_frames_of(wal.st_size, 512));
    unsigned long long room = (unsigned long long)vfs.f_bavail * vfs.f_frsize;
    if (room >= (unsigned long long)need)
        return GW_OK;
    snprintf(why, GW_ERRLEN,
             "the disk is full: %llu KiB free on the file system of %s, and the database needs "
             "%lld KiB at least to start (its WAL and the WAL's index): make room",
             room / 1024, path, (long long)need / 1024);
    return GW_E_STORE_FULL;
}

/*
 * Takes the writer's exclusive flock on path, kept in s->lock_fd. Opened
 * read-only: the lock needs no more, and a read-only file still opens.
 */
static enum gw_err lock_file(struct sq *s, const char *path, char why[GW_ERRLEN])
{
    s->lock_fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (s->lock_fd < 0) {
        snprintf(why, GW_ERRLEN, "%s: %s", path, strerror(errno));
        return GW_E_STORE;
    }
    if (flock(s->lock_fd, LOCK_EX | LOCK_NB) == 0) {
        s->locked = true;
        return GW_OK;
    }
    if (errno == EWOULDBLOCK) {
        long pid = lock_holder(s->lock_fd);
        if (pid > 0)
            snprintf(why, GW_ERRLEN, "another gateway (pid %ld) is writing it", pid);
        else
            snprintf(why, GW_ERRLEN, "another gateway is writing it");
        return GW_E_STORE_IN_USE;
    }
    /* A file system without flock: go on, unguarded, but say so. */
    log_warn("store: cannot lock %s (%s): nothing stops a second gateway on it", path,
             strerror(errno));
    return GW_OK;
}

static enum gw_err user_version(struct sq *s, int *version, char why[GW_ERRLEN])
{
    sqlite3_stmt *st;
    enum gw_err err = GW_OK;

    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading the schema version", why);
    if (sqlite3_step(st) == SQLITE_ROW)
        *version = sqlite3_column_int(st, 0);
    else
        err = fail(s, "reading the schema version", why);
    sqlite3_finalize(st);
    return err;
}

/*
 * A --db one tab completion away from the right one: the WAL, -shm or
 * journal of a database beside it. A WAL still empty after a checkpoint
 * would pass for a new database; a gateway on it writes into the other
 * one's WAL, and that one loses what it acknowledged.
 */
static enum gw_err not_a_companion(const char *path, char why[GW_ERRLEN])
{
    static const char *const suffixes[] = {"-wal", "-shm", "-journal"};
    size_t len = strlen(path);

    for (size_t i = 0; i < GW_ARRAY_SIZE(suffixes); i++) {
        size_t n = strlen(suffixes[i]);
        if (len <= n || strcmp(path + len - n, suffixes[i]) != 0)
            continue;
        char *base = gw_xmemdup(path, len - n);
        struct stat st;
        bool beside = stat(base, &st) == 0 && S_ISREG(st.st_mode);
        if (beside)
            snprintf(why, GW_ERRLEN,
                     "this is the %s file of the database %s, not a database: give --db %s",
                     suffixes[i] + 1, base, base);
        free(base);
        if (beside)
            return GW_E_SCHEMA;
    }
    return GW_OK;
}

/*
 * Whether the file is for this gateway to take: a new or empty database, or
 * a visavis one of a schema it knows. Asked before anything is written (the
 * switch to WAL is a write), so that a --db that names another program's
 * file, or a newer gateway's, is refused as it was found.
 */
static enum gw_err check_ours(struct sq *s, char why[GW_ERRLEN])
{
    int version = 0;
    enum gw_err err;
    sqlite3_stmt *st;

    if ((err = user_version(s, &version, why)) != GW_OK)
        return err;
    if (version > store_migrations_count) {
        snprintf(why, GW_ERRLEN,
                 "database schema version %d is newer than this gateway knows (%d): "
                 "run a newer visavis on it",
                 version, store_migrations_count);
        return GW_E_SCHEMA;
    }
    /*
     * Version 0 is a new file, or another program's: one with tables of its
     * own. Any other version is a visavis file only if it has the tables: the
     * version is any program's to set.
     */
    if (sqlite3_prepare_v2(s->db,
                           version > 0 ? "SELECT 'channels and messages' WHERE (SELECT count(*) "
                                         "FROM sqlite_schema WHERE type = 'table' AND name IN "
                                         "('channels', 'messages')) < 2"
                                       : "SELECT name FROM sqlite_schema WHERE type IN ('table', "
                                         "'view') AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' "
                                         "LIMIT 1",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(s, "reading the schema", why);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW && version > 0)
        snprintf(why, GW_ERRLEN,
                 "the file says schema version %d but has no visavis tables (%s): another "
                 "application's file; give --db a new file or a visavis database",
                 version, (const char *)sqlite3_column_text(st, 0));
    else if (rc == SQLITE_ROW)
        snprintf(why, GW_ERRLEN,
                 "the file holds another application's tables or views ('%.64s') and no visavis "
                 "schema: give --db a new file or a visavis database",
                 (const char *)sqlite3_column_text(st, 0));
    else if (rc != SQLITE_DONE)
        err = fail(s, "reading the schema", why);
    sqlite3_finalize(st);
    return rc == SQLITE_ROW ? GW_E_SCHEMA : err;
}

static enum gw_err migrate(struct sq *s, char why[GW_ERRLEN])
{
    int version = 0;
    enum gw_err err;
    char sql[64];

    if ((err = user_version(s, &version, why)) != GW_OK)
        return err;
    for (int v = version; v < store_migrations_count; v++) {
        if ((err = exec(s, "BEGIN IMMEDIATE", why)) != GW_OK)
            return err;
        snprintf(sql, sizeof(sql), "PRAGMA user_version = %d", v + 1);
        if ((err = exec(s, store_migrations[v], why)) != GW_OK ||
            (err = exec(s, sql, why)) != GW_OK || (err = exec(s, "COMMIT", why)) != GW_OK) {
            char ignored[GW_ERRLEN];
            exec(s, "ROLLBACK", ignored);
            return err;
        }
        log_info("store: applied migration %d", v + 1);
    }
    return GW_OK;
}

/*
 * Why a file that did not exist could not be created, told by its folder,
 * in place of SQLite's reason. SQLite tries read-only after read-write
 * fails, so its errno is that of the second try: a folder this user may
 * not write reads "No such file or directory". A folder that explains
 * nothing leaves why as it was.
 */
static void why_not_created(const char *path, char why[GW_ERRLEN])
{
    const char *slash = strrchr(path, '/');
    char dir[PATH_MAX];
    struct stat st;

    if (!slash)
        snprintf(dir, sizeof(dir), ".");
    else
        snprintf(dir, sizeof(dir), "%.*s", slash == path ? 1 : (int)(slash - path), path);
    if (stat(dir, &st) < 0)
        snprintf(why, GW_ERRLEN, "creating it: its folder %.200s: %s", dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        snprintf(why, GW_ERRLEN, "creating it: %.200s is not a folder", dir);
    else if (access(dir, W_OK | X_OK) < 0)
        snprintf(why, GW_ERRLEN, "creating it: its folder %.120s is not writable for uid %u (%s)",
                 dir, (unsigned)geteuid(), strerror(errno));
}

static enum gw_err sq_open(struct store **out, const char *path, enum store_role role,
                           bool sync_full, char why[GW_ERRLEN])
{
    struct sq *s = gw_xcalloc(1, sizeof(*s));
    enum gw_err err;

    seqcache_init(&s->seqs);
    int version = 0;

    *out = NULL;
    s->role = role;
    s->lock_fd = -1;
    s->shm_fd = -1;
    atomic_init(&s->stop_waiting, false);
    struct stat before;
    bool created = role == STORE_WRITER && lstat(path, &before) < 0 && errno == ENOENT;
    if (role == STORE_WRITER && (err = not_a_companion(path, why)) != GW_OK)
        goto fail;
    if (sqlite3_open_v2(path, &s->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        err = fail(s, "opening the file", why); /* the caller names the file */
        if (created)
            why_not_created(path, why);
        goto fail;
    }
    /* SQLite opens a file it may not write read-only, without a word: every publish would fail. */
    if (role == STORE_WRITER && sqlite3_db_readonly(s->db, "main") == 1) {
        snprintf(why, GW_ERRLEN,
                 "the file is read-only for this user (uid %u), and the gateway writes to it: "
                 "give it write permission (its folder too, for the -wal and -shm files)",
                 (unsigned)geteuid());
        err = GW_E_STORE;
        goto fail;
    }
    sqlite3_extended_result_codes(s->db, 1);
    s->busy_ms = STORE_OPEN_BUSY_MS;
    sqlite3_busy_handler(s->db, on_busy, s);
    if (role == STORE_WRITER) {
        s->path = gw_xstrdup(path);
        /* SQLite's own name for it: beside the file a symbolic link --db names leads to. */
        const char *main_name = sqlite3_db_filename(s->db, "main");
        const char *wal_name = main_name && *main_name ? sqlite3_filename_wal(main_name) : NULL;
        s->wal_path = gw_xstrdup(wal_name ? wal_name : ""); /* "": no WAL to check */
        /* SQLite has no call for the -shm's name: it is always the file's, and "-shm". */
        size_t main_len = wal_name ? strlen(main_name) : 0;
        s->shm_path = gw_xmalloc(main_len + sizeof("-shm"));
        memcpy(s->shm_path, main_name ? main_name : "", main_len);
        memcpy(s->shm_path + main_len, wal_name ? "-shm" : "", wal_name ? sizeof("-shm") : 1);
        /* Before the first statement: a second gateway must not touch the file. */
        if ((err = lock_file(s, path, why)) != GW_OK || (err = check_ours(s, why)) != GW_OK ||
            (err = room_to_start(s, path, why)) != GW_OK ||
            (err = exec(s, "PRAGMA journal_mode = WAL", why)) != GW_OK ||
            (s->page_size = page_size_of(s),
             (err = shm_reserve(s, wal_frames_now(s), why)) != GW_OK) ||
            (err = exec(s, sync_full ? "PRAGMA synchronous = FULL" : "PRAGMA synchronous = NORMAL",
                        why)) != GW_OK ||
            (err = exec(s, "PRAGMA foreign_keys = ON", why)) != GW_OK ||
            /*
             * A reader that holds a snapshot long (a report, a backup)
             * stops checkpoints from reaching the WAL's end, and the WAL
             * grows with every commit meanwhile; SQLite reuses it from the
             * start afterwards but keeps the file at its largest unless
             * told to cut it back.
             */
            (err = exec(s, "PRAGMA journal_size_limit = " WAL_SIZE_LIMIT, why)) != GW_OK ||
            (err = migrate(s, why)) != GW_OK)
            goto fail;
    } else {
        if ((err = exec(s, "PRAGMA query_only = 1", why)) != GW_OK ||
            (err = user_version(s, &version, why)) != GW_OK)
            goto fail;
        if (version != store_migrations_count) {
            snprintf(why, GW_ERRLEN, "database schema version %d, this gateway reads %d", version,
                     store_migrations_count);
            err = GW_E_SCHEMA;
            goto fail;
        }
    }
    for (int i = 0; i < ST__COUNT; i++) {
        if (stmt_defs[i].role != role)
            continue;
        if (sqlite3_prepare_v3(s->db, stmt_defs[i].sql, -1, SQLITE_PREPARE_PERSISTENT, &s->st[i],
                               NULL) != SQLITE_OK) {
            err = fail(s, "preparing statements", why);
            goto fail;
        }
    }
    s->busy_ms = role == STORE_WRITER ? STORE_WRITER_BUSY_MS : STORE_READER_BUSY_MS;
    s->opened = true;
    s->base.ops = &store_sqlite_ops;
    *out = &s->base;
    return GW_OK;
fail:
    /*
     * A start refused (a full disk, say) leaves no empty file it made
     * behind: only while it holds the file's lock, so that it is not
     * another gateway's, made between this one's look and its open.
     */
    if (created && s->locked) {
        struct stat held, at_path;
        if (fstat(s->lock_fd, &held) == 0 && held.st_size == 0 && lstat(path, &at_path) == 0 &&
            at_path.st_dev == held.st_dev && at_path.st_ino == held.st_ino)
            unlink(path);
    }
    sq_close(&s->base);
    return err;
}

static void sq_close(struct store *base)
{
    struct sq *s = (struct sq *)base;

    if (!s)
        return;
    for (int i = 0; i < ST__COUNT; i++)
        sqlite3_finalize(s->st[i]);
    /* Not after a refused open: the file may be another gateway's. */
    if (s->db && s->role == STORE_WRITER && s->opened) {
        char why[GW_ERRLEN];
        /* Leaves a lone database file behind, easy to copy or inspect. */
        if (exec(s, "PRAGMA wal_checkpoint(TRUNCATE)", why) != GW_OK)
            log_warn("store: checkpoint at close failed: %s", why);
    }
    if (s->db && sqlite3_close(s->db) != SQLITE_OK)
        log_warn("store: close: %s", sqlite3_errmsg(s->db));
    /*
     * Only now: closing any descriptor of the file (or of its -shm) drops
     * every POSIX lock this process holds on it, SQLite's included.
     */
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    if (s->shm_fd >= 0)
        close(s->shm_fd);
    free(s->scratch);
    free(s->touched);
    free(s->path);
    free(s->wal_path);
    free(s->shm_path);
    seqcache_release(&s->seqs);
    free(s);
}

/*
 * What became of a file beside the database (its WAL, its -shm) that this
 * connection uses, or NULL while it is the one first seen at path ("" for
 * none). Not there yet is fine: SQLite makes them as it needs them.
 */
static const char *companion_changed(const char *path, struct stat *known, bool *seen,
                                     const char *replaced, const char *lost)
{
    struct stat st;

    if (!*path)
        return NULL;
    if (stat(path, &st) < 0)
        return *seen ? lost : NULL;
    if (!*seen) {
        *known = st;
        *seen = true;
        return NULL;
    }
    if (st.st_dev != known->st_dev || st.st_ino != known->st_ino)
        return replaced;
    *known = st; /* the same file, at its size now */
    return NULL;
}

/*
 * Whether the writer's database is still the file at its path, whole, and
 * its WAL and -shm the ones SQLite uses. A file removed, renamed or
 * replaced while open (or its WAL removed) is still written, and SQLite
 * says nothing, but what it holds is lost with the last descriptor, or at
 * the next start found elsewhere; a file cut short holds nothing readable;
 * a -shm removed leaves this connection and the next program to open the
 * file with two indexes of one WAL, and the first commit of that program
 * corrupts the file. A commit into any of them must not be acknowledged.
 * Checked before and after each transaction: a few stat()s, beside its
 * fsync.
 */
static enum gw_err still_there(struct sq *s, char why[GW_ERRLEN])
{
    struct stat open_st, path_st;
    const char *what = NULL;
    char cut[64];

    if (s->gone)
        goto gone;
    if (s->lock_fd < 0)
        return GW_OK; /* a reader: not asked */
    if (fstat(s->lock_fd, &open_st) < 0 || open_st.st_nlink == 0) {
        what = "was removed";
    } else if (stat(s->path, &path_st) < 0 || path_st.st_dev != open_st.st_dev ||
               path_st.st_ino != open_st.st_ino) {
        what = "was moved or replaced";
    } else if (open_st.st_size < 512 || open_st.st_size % 512 != 0) {
        /* Once in WAL mode the file holds whole pages, and every page size is 512·2ⁿ. */
        snprintf(cut, sizeof(cut), "was cut short (to %lld bytes)", (long long)open_st.st_size);
        what = cut;
    } else if (!(what = companion_changed(s->wal_path, &s->wal_st, &s->wal_seen,
                                          "had its WAL file replaced", "lost its WAL file"))) {
        what = companion_changed(s->shm_path, &s->shm_st, &s->shm_seen,
                                 "had its -shm file replaced", "lost its -shm file");
    }
    if (!what)
        return GW_OK;
    s->gone = true;
    log_error("store: database %s %s while the gateway had it open: what is written to it now "
              "could be lost, so every publish fails until the gateway is restarted on it",
              s->path, what);
gone:
    snprintf(why, GW_ERRLEN,
             "the database file %s was removed, replaced or damaged while the gateway had it "
             "open: restart the gateway",
             s->path);
    return GW_E_STORE;
}

/* Steps a statement that returns no rows, then resets it. */
static enum gw_err step_done(struct sq *s, enum stmt_id id, const char *what, char why[GW_ERRLEN])
{
    sqlite3_stmt *st = s->st[id];
    errno = 0; /* so that fail() sees this step's, not an old one */
    int rc = sqlite3_step(st);
    enum gw_err err = rc == SQLITE_DONE ? GW_OK : fail(s, what, why);
    sqlite3_reset(st);
    return err;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * A statement that succeeded without changing its row: a trigger another
 * tool added said RAISE(IGNORE). The row is refused, as by a RAISE(ABORT),
 * and not taken for done: its id would be the last row's.
 */
static enum gw_err not_done(struct sq *s, const char *what, char why[GW_ERRLEN])
{
    snprintf(why, GW_ERRLEN, "%s: the database skipped it (a trigger that ignores it?)", what);
    s->refused = true;
    return GW_E_STORE;
}

/* The cache entry for channel, read from (or created on) disk the first time. */
static enum gw_err channel_entry(struct sq *s, const char *channel, struct seqcache_entry **out,
                                 char why[GW_ERRLEN])
{
    sqlite3_stmt *get = s->st[ST_CHANNEL_GET];
    int64_t id = 0, last_seq = 0;
    enum gw_err err;
    int rc;

    /* Current: outside_writes cleared the cache if another program wrote since. */
    if ((*out = seqcache_find(&s->seqs, channel)))
        return GW_OK;
    sqlite3_bind_text(get, 1, channel, -1, SQLITE_STATIC);
    errno = 0;
    rc = sqlite3_step(get);
    if (rc == SQLITE_ROW) {
        id = sqlite3_column_int64(get, 0);
        last_seq = sqlite3_column_int64(get, 1);
    }
    err = rc == SQLITE_ROW || rc == SQLITE_DONE ? GW_OK : fail(s, "reading the channel", why);
    sqlite3_reset(get);
    if (err != GW_OK)
        return err;
    if (rc == SQLITE_DONE) {
        sqlite3_bind_text(s->st[ST_CHANNEL_NEW], 1, channel, -1, SQLITE_STATIC);
        if ((err = step_done(s, ST_CHANNEL_NEW, "creating the channel", why)) != GW_OK)
            return err;
        if (sqlite3_changes(s->db) != 1)
            return not_done(s, "creating the channel", why);
        id = sqlite3_last_insert_rowid(s->db);
    }
    *out = seqcache_add(&s->seqs, channel, id, last_seq);
    return GW_OK;
}

/* Inserts m; its id and seq go to *id and *seq_out, m itself is left as it is. */
static enum gw_err append_one(struct sq *s, const struct gw_msg *m, int64_t ts, int64_t *id,
                              int64_t *seq_out, size_t *ntouched, char why[GW_ERRLEN])
{
    sqlite3_stmt *ins = s->st[ST_INSERT_MSG];
    struct seqcache_entry *e;
    enum gw_err err;
    int first;

    if ((err = channel_entry(s, m->channel, &e, why)) != GW_OK)
        return err;
    int64_t seq = seqcache_next(&s->seqs, e, &first);
    if (first)
        s->touched[(*ntouched)++] = e;
    sqlite3_bind_int64(ins, 1, e->id);
    sqlite3_bind_int64(ins, 2, seq);
    sqlite3_bind_text(ins, 3, m->sender, (int)m->sender_len, SQLITE_STATIC);
    sqlite3_bind_text(ins, 4, m->body, (int)m->body_len, SQLITE_STATIC);
    sqlite3_bind_int64(ins, 5, ts);
    sqlite3_bind_text(ins, 6, gw_transport_name(m->via), -1, SQLITE_STATIC);
    if ((err = step_done(s, ST_INSERT_MSG, "inserting the message", why)) != GW_OK)
        return err;
    if (sqlite3_changes(s->db) != 1)
        return not_done(s, "inserting the message", why);
    *id = sqlite3_last_insert_rowid(s->db);
    *seq_out = seq;
    return GW_OK;
}

/* One UPDATE per channel of the batch, with its new last seq and count. */
static enum gw_err update_channels(struct sq *s, size_t ntouched, int64_t ts, char why[GW_ERRLEN])
{
    sqlite3_stmt *set = s->st[ST_CHANNEL_SET];
    enum gw_err err;

    for (size_t i = 0; i < ntouched; i++) {
        sqlite3_bind_int64(set, 1, s->touched[i]->id);
        sqlite3_bind_int64(set, 2, s->touched[i]->pending_seq);
        sqlite3_bind_int64(set, 3, s->touched[i]->pending_count);
        sqlite3_bind_int64(set, 4, ts);
        if ((err = step_done(s, ST_CHANNEL_SET, "updating the channel", why)) != GW_OK)
            return err;
        if (sqlite3_changes(s->db) != 1)
            return not_done(s, "updating the channel", why);
    }
    return GW_OK;
}

/*
 * Whether another connection (the sqlite3 shell, a restore, another tool)
 * committed to the file since this one last looked: then any channel row
 * the cache holds may have been removed, renamed or counted back, and its
 * id given to another channel, so the cache is cleared and this
 * transaction reads its channels from disk. Asked inside the transaction:
 * its write lock keeps every other writer out until it ends.
 */
static enum gw_err outside_writes(struct sq *s, char why[GW_ERRLEN])
{
    sqlite3_stmt *st = s->st[ST_DATA_VERSION];
    enum gw_err err = GW_OK;

    errno = 0;
    if (sqlite3_step(st) != SQLITE_ROW) {
        err = fail(s, "reading the data version", why);
    } else {
        int64_t version = sqlite3_column_int64(st, 0);
        if (s->data_version_known && version != s->data_version && s->seqs.count) {
            seqcache_clear(&s->seqs);
            /* Once a minute at most: a tool may commit every few milliseconds. */
            uint64_t now = mono_ms();
            s->outside_writes++;
            if (!s->outside_logged_ms || now - s->outside_logged_ms >= 60000) {
                log_info("store: another program wrote to the database (or checkpointed it): "
                         "its channels are read from it again (%" PRIu64 " times so far)",
                         s->outside_writes);
                s->outside_logged_ms = now;
            }
        }
        s->data_version = version;
        s->data_version_known = true;
    }
    sqlite3_reset(st);
    return err;
}

/*
 * The most frames a transaction of msgs can add to the WAL: each message's
 * row, its overflow pages, its index entry, with room for the channel rows
 * and the pages split on the way.
 */
static uint64_t frames_of(const struct sq *s, struct gw_msg *const *msgs, size_t n)
{
    uint64_t bytes = 0;

    for (size_t i = 0; i < n; i++)
        bytes += msgs[i]->body_len + msgs[i]->sender_len + GW_CHANNEL_MAX;
    return 2 * bytes / (uint64_t)(s->page_size / 2) + 4 * n + 64;
}

/*
 * One try at appending msgs in a transaction; ids and seqs go to s->scratch.
 * On failure the transaction is rolled back and the cache cleared.
 */
static enum gw_err append_txn(struct sq *s, struct gw_msg *const *msgs, size_t n, int64_t ts,
                              char why[GW_ERRLEN])
{
    size_t ntouched = 0;
    enum gw_err err;

    s->refused = false;
    /* Before too, so that a commit the check after would fail is not made, nor read. */
    if ((err = still_there(s, why)) != GW_OK ||
        (err = shm_reserve(s, wal_frames_now(s) + frames_of(s, msgs, n), why)) != GW_OK)
        return err;
    if ((err = step_done(s, ST_BEGIN, "starting a transaction", why)) != GW_OK)
        return err;
    if ((err = outside_writes(s, why)) != GW_OK)
        goto rollback;
    seqcache_begin(&s->seqs, n);
    for (size_t i = 0; i < n; i++) {
        if ((err = append_one(s, msgs[i], ts, &s->scratch[2 * i], &s->scratch[2 * i + 1], &ntouched,
                              why)) != GW_OK)
            goto rollback;
    }
    if ((err = update_channels(s, ntouched, ts, why)) != GW_OK ||
        (err = step_done(s, ST_COMMIT, "committing", why)) != GW_OK)
        goto rollback;
    /* Committed, but into the file at its path? (Not: it is in a file about to be lost.) */
    if ((err = still_there(s, why)) != GW_OK) {
        seqcache_clear(&s->seqs);
        /* Not "nothing stored": a client that sends it again may find it twice. */
        snprintf(why, GW_ERRLEN,
                 "the database file %s was removed, replaced or damaged as this publish was "
                 "committed: it went into that file and may or may not be in the database the "
                 "gateway is restarted on; restart the gateway",
                 s->path);
        return err;
    }
    /* Committed: only now does the cache learn the results. */
    seqcache_commit(&s->seqs, s->touched, ntouched);
    return GW_OK;

rollback:
    /* A failed COMMIT may already have ended the transaction. */
    if (!sqlite3_get_autocommit(s->db)) {
        char ignored[GW_ERRLEN];
        bool refused = s->refused;
        step_done(s, ST_ROLLBACK, "rolling back", ignored);
        s->refused = refused;
    }
    /* Channel rows created in it are gone too: reload from disk next time. */
    seqcache_clear(&s->seqs);
    return err;
}

static enum gw_err sq_append(struct store *base, struct gw_msg *const *msgs, size_t n,
                             bool *refused, char why[GW_ERRLEN])
{
    struct sq *s = (struct sq *)base;

    int64_t ts = now_ms();
    enum gw_err err;

    GW_ASSERT(s->role == STORE_WRITER);
    if (ts < s->last_ts_ms)
        ts = s->last_ts_ms;
    if (n > s->scratch_cap) {
        int64_t *grown = gw_xrealloc(s->scratch, 2 * n * sizeof(*grown));
        struct seqcache_entry **grown_touched = gw_xrealloc(s->touched, n * sizeof(*s->touched));
        s->scratch = grown;
        s->touched = grown_touched;
        s->scratch_cap = n;
    }
    err = append_txn(s, msgs, n, ts, why);
    if (refused)
        *refused = err != GW_OK && s->refused;
    if (err != GW_OK)
        return err;
    for (size_t i = 0; i < n; i++) {
        msgs[i]->id = s->scratch[2 * i];
        msgs[i]->seq = s->scratch[2 * i + 1];
        msgs[i]->ts_ms = ts;
    }
    s->last_ts_ms = ts;
    return GW_OK;
}

/* Copies row columns (id, seq, sender, body, ts, via) of st into m. */
static void read_row(sqlite3_stmt *st, struct gw_msg *m)
{
    m->id = sqlite3_column_int64(st, 0);
    m->seq = sqlite3_column_int64(st, 1);
    m->sender_len = (size_t)sqlite3_column_bytes(st, 2);
    m->sender = gw_xmemdup(sqlite3_column_text(st, 2), m->sender_len);
    m->body_len = (size_t)sqlite3_column_bytes(st, 3);
    m->body = gw_xmemdup(sqlite3_column_text(st, 3), m->body_len);
    m->ts_ms = sqlite3_column_int64(st, 4);
    if (gw_via_parse((const char *)sqlite3_column_text(st, 5), &m->via) < 0)
        m->via = GW_T_REST; /* NEEDSWORK: a via written by a newer binary */
}

/* The rows of a page, into p; see store_page. */
static enum gw_err read_page(struct sq *s, const char *channel, int64_t since, int64_t hi,
                             unsigned limit, size_t max_bytes, struct gw_page *p,
                             char why[GW_ERRLEN])
{
    sqlite3_stmt *st = s->st[ST_HISTORY];
    size_t cap = 0, gcap = 0, bytes = 0;
    size_t channel_len = strnlen(channel, GW_CHANNEL_MAX);
    int64_t expected = since + 1;
    enum gw_err err = GW_OK;
    struct gw_msg m;
    int rc;

    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, since);
    sqlite3_bind_int64(st, 3, limit);
    sqlite3_bind_int64(st, 4, hi);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        memset(&m, 0, sizeof(m));
        read_row(st, &m);
        memcpy(m.channel, channel, channel_len); /* m is zeroed: the name ends there */
        if (m.seq > expected)
            gw_page_add_gap(p, &gcap, expected, m.seq - 1);
        size_t size = gw_msg_wire_len(&m);
        if (p->n && bytes + size > max_bytes) {
            /* Read again next time: the cursor says where the page stopped. */
            gw_msg_release(&m);
            p->full = 1;
            break;
        }
        if (p->n == cap) {
            cap = cap ? cap * 2 : 16;
            struct gw_msg *grown = gw_xrealloc(p->msgs, cap * sizeof(*grown));
            p->msgs = grown;
        }
        p->msgs[p->n++] = m;
        bytes += size;
        expected = m.seq + 1;
    }
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        err = fail(s, "reading the channel", why);
    sqlite3_reset(st);
    if (err != GW_OK)
        return err;
    if (p->n == limit)
        p->full = 1;
    /* Nothing stored between the last row and the top: the rest is a hole too. */
    if (!p->full && expected <= hi)
        gw_page_add_gap(p, &gcap, expected, hi);
    p->next_since =
        p->ngaps && p->gaps[p->ngaps - 1].to >= expected ? p->gaps[p->ngaps - 1].to : expected - 1;
    return GW_OK;
}

static enum gw_err sq_page(struct store *base, const char *channel, int64_t since, int64_t upto,
                           unsigned limit, size_t max_bytes, struct gw_page *out,
                           char why[GW_ERRLEN])
{
    struct sq *s = (struct sq *)base;

    enum gw_err err;

    memset(out, 0, sizeof(*out));
    out->next_since = since;
    if ((err = step_done(s, ST_READ_BEGIN, "starting a read", why)) != GW_OK)
        return err;
    err = sq_channel_top(&s->base, channel, &out->top, why);
    if (err == GW_OK && limit > 0 && since < out->top && since < upto)
        err = read_page(s, channel, since, upto < out->top ? upto : out->top, limit, max_bytes, out,
                        why);
    if (!sqlite3_get_autocommit(s->db)) {
        char ignored[GW_ERRLEN];
        step_done(s, ST_READ_END, "ending a read", err == GW_OK ? why : ignored);
    }
    if (err != GW_OK)
        gw_page_release(out);
    return err;
}

static enum gw_err sq_channel_top(struct store *base, const char *channel, int64_t *top,
                                  char why[GW_ERRLEN])
{
    struct sq *s = (struct sq *)base;

    sqlite3_stmt *st = s->st[ST_TOP];
    enum gw_err err = GW_OK;
    int rc;

    sqlite3_bind_text(st, 1, channel, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *top = sqlite3_column_int64(st, 0);
    else if (rc == SQLITE_DONE)
        *top = 0;
    else
        err = fail(s, "reading the channel's last seq", why);
    sqlite3_reset(st);
    return err;
}

static enum gw_err sq_message(struct store *base, int64_t id, struct gw_msg *out,
                              char why[GW_ERRLEN])
{
    struct sq *s = (struct sq *)base;

    sqlite3_stmt *st = s->st[ST_MESSAGE];
    enum gw_err err = GW_OK;
    int rc;

    memset(out, 0, sizeof(*out));
    sqlite3_bind_int64(st, 1, id);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        read_row(st, out);
        snprintf(out->channel, sizeof(out->channel), "%s",
                 (const char *)sqlite3_column_text(st, 6));
    } else if (rc == SQLITE_DONE) {
        snprintf(why, GW_ERRLEN, "no message with id %lld", (long long)id);
        err = GW_E_NOT_FOUND;
    } else {
        err = fail(s, "reading the message", why);
    }
    sqlite3_reset(st);
    return err;
}

static enum gw_err sq_channels(struct store *base, const char *after, unsigned limit,
                               struct gw_channel_info **out, size_t *n, char why[GW_ERRLEN])
{
    struct sq *s = (struct sq *)base;

    sqlite3_stmt *st = s->st[ST_CHANNELS];
    struct gw_channel_info *chans = NULL;
    size_t count = 0, cap = 0;
    enum gw_err err = GW_OK;
    int rc;

    sqlite3_bind_text(st, 1, after, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, limit);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (count == cap) {
            cap = cap ? cap * 2 : 16;
            struct gw_channel_info *grown = gw_xrealloc(chans, cap * sizeof(*grown));
            chans = grown;
        }
        struct gw_channel_info *c = &chans[count++];
        snprintf(c->name, sizeof(c->name), "%s", (const char *)sqlite3_column_text(st, 0));
        c->messages = sqlite3_column_int64(st, 1);
        c->last_seq = sqlite3_column_int64(st, 2);
        c->last_ts_ms = sqlite3_column_int64(st, 3);
    }
    if (rc != SQLITE_DONE) {
        err = fail(s, "listing channels", why);
        free(chans);
        chans = NULL;
        count = 0;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    *out = chans;
    *n = count;
    return err;
}

/* The file is no longer at its path (still_there): only a restart on it mends that. */
static bool sq_needs_restart(const struct store *base)
{
    return ((const struct sq *)base)->gone;
}

const struct store_ops store_sqlite_ops = {
    .name = "sqlite",
    .open = sq_open,
    .close = sq_close,
    .append = sq_append,
    .page = sq_page,
    .channel_top = sq_channel_top,
    .message = sq_message,
    .channels = sq_channels,
    .stop_waiting = sq_stop_waiting,
    .schema_version = sq_schema_version,
    .needs_restart = sq_needs_restart,
};
