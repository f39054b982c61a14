/*
 * gw.h - what every visavis file may include: the one error enum, the
 * allocators that abort on exhaustion, and the invariant assertion.
 *
 * Depends on nothing but libc. Error values are transport-neutral: each front
 * turns them into its own wire form in exactly one place (an HTTP status in
 * front_http, later an error line in front_sock); gw_err_code() gives the
 * stable snake_case name both fronts put on the wire.
 */
#ifndef GW_H
#define GW_H

#include <stddef.h>

/* Room for a human-readable reason next to an enum gw_err. */
#define GW_ERRLEN 256

enum gw_err {
    GW_OK = 0,
    GW_E_JSON,          /* request is not valid JSON */
    GW_E_UTF8,          /* request text is not valid UTF-8 */
    GW_E_NOT_OBJECT,    /* valid JSON, but not an object */
    GW_E_MISSING_FIELD, /* a required field is absent */
    GW_E_FIELD,         /* a field has the wrong type or size */
    GW_E_PARAM,         /* a query or command parameter is malformed */
    GW_E_CHANNEL,       /* channel name outside [A-Za-z0-9._-]{1,64} */
    GW_E_NOT_FOUND,     /* no such resource */
    GW_E_METHOD,        /* resource exists, not for this method */
    GW_E_TOO_LARGE,     /* request larger than the configured limit */
    GW_E_MEDIA_TYPE,    /* body sent in a form we do not read */
    GW_E_STORE,         /* the database failed (I/O error, corrupt, read-only, ...) */
    GW_E_STORE_BUSY,    /* the database is locked by another writer: try again shortly */
    GW_E_STORE_FULL,    /* no room left: the disk, or a size limit, is full */
    GW_E_STORE_IN_USE,  /* another gateway writes this database (at start only) */
    GW_E_SHUTDOWN,      /* the gateway is stopping */
    GW_E_SCHEMA,        /* database schema unknown to this binary */
    GW_E_CONFIG,        /* bad setting */
    /* no connection to the database server (the store reconnects by itself) */
    GW_E_STORE_UNAVAILABLE,
    /* sessions */
    GW_E_UNKNOWN_COMMAND,   /* verb or op not known */
    GW_E_MISSING_ARGUMENT,  /* a required argument is absent */
    GW_E_CURSOR,            /* since is beyond the channel's last seq */
    GW_E_NOT_SUBSCRIBED,    /* UNSUB of a channel not subscribed */
    GW_E_TOO_MANY_SUBS,     /* subscription limit per session */
    GW_E_LINE_TOO_LONG,     /* a line over the limit: framing lost */
    GW_E_TOO_MANY_ERRORS,   /* consecutive errors: session closed */
    GW_E_IDLE,              /* idle session closed */
    GW_E_SLOW_CONSUMER,     /* outgoing queue over the limit */
    GW_E_TOO_MANY_SESSIONS, /* session limit reached */
    GW_E_BUSY,              /* replies held for sessions reached --max-reply-memory: try again */
    /* WebSocket upgrades */
    GW_E_UPGRADE_REQUIRED, /* a plain request, or an unusable handshake, on a WebSocket endpoint */
    GW_E_ORIGIN,           /* a browser page of an origin that is not allowed */
    GW_E_HOST,             /* a Host the HTTP port does not answer to (DNS rebinding) */
    /* HTTP */
    GW_E_HEAD_TOO_LARGE, /* a request line and header fields over the limit */
    GW_E__COUNT
};

/* The stable wire name of an error ("invalid_json", ...). Never NULL. */
const char *gw_err_code(enum gw_err err);

/*
 * Allocation that cannot fail: on exhaustion these print a message and abort,
 * so callers never carry an out-of-memory path. Sizes that come from the
 * network must be checked against a limit in model.h before they get here.
 */
/* Said to the compiler too, so that its flow analysis (gcc's -Wnonnull and
 * -Wformat-overflow at -O3) does not follow a null no call can return. */
#define GW_NONNULL_RESULT __attribute__((returns_nonnull))
GW_NONNULL_RESULT void *gw_xmalloc(size_t size);
GW_NONNULL_RESULT void *gw_xcalloc(size_t n, size_t size);
GW_NONNULL_RESULT void *gw_xrealloc(void *ptr, size_t size);
GW_NONNULL_RESULT char *gw_xstrdup(const char *s);
/* Copy of (ptr, len) with a terminating NUL added; the copy may hold NULs. */
GW_NONNULL_RESULT char *gw_xmemdup(const void *ptr, size_t len);

#define GW_FREE_AND_NULL(p)                                                                        \
    do {                                                                                           \
        free(p);                                                                                   \
        (p) = NULL;                                                                                \
    } while (0)

#define GW_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Invariants only, never input; enabled in every build type. */
#define GW_ASSERT(cond)                                                                            \
    do {                                                                                           \
        if (!(cond))                                                                               \
            gw_assert_fail(#cond, __FILE__, __LINE__);                                             \
    } while (0)

_Noreturn void gw_assert_fail(const char *expr, const char *file, int line);

#endif
