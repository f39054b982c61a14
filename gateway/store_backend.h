/*
 * store_backend.h - what a store backend implements: the table of
 * operations behind store.h, and the header every backend's connection
 * starts with.
 *
 * For backend files only (store_sqlite.c, store_postgres.c); everything
 * else calls store.h. A backend allocates its own connection struct with a
 * struct store first, sets its ops, and answers every operation with the
 * contract store.h gives it, errors included. Depends on store.h.
 */
#ifndef GW_STORE_BACKEND_H
#define GW_STORE_BACKEND_H

#include "store.h"

struct store_ops {
    const char *name; /* "sqlite", "postgres": for logs */
    enum gw_err (*open)(struct store **out, const char *target, enum store_role role,
                        bool sync_full, char why[GW_ERRLEN]);
    void (*close)(struct store *s);
    void (*stop_waiting)(struct store *s);
    enum gw_err (*append)(struct store *s, struct gw_msg *const *msgs, size_t n, bool *refused,
                          char why[GW_ERRLEN]);
    enum gw_err (*page)(struct store *s, const char *channel, int64_t since, int64_t upto,
                        unsigned limit, size_t max_bytes, struct gw_page *out, char why[GW_ERRLEN]);
    enum gw_err (*channel_top)(struct store *s, const char *channel, int64_t *top,
                               char why[GW_ERRLEN]);
    enum gw_err (*message)(struct store *s, int64_t id, struct gw_msg *out, char why[GW_ERRLEN]);
    enum gw_err (*channels)(struct store *s, const char *after, unsigned limit,
                            struct gw_channel_info **out, size_t *n, char why[GW_ERRLEN]);
    int (*schema_version)(void);
    /* Optional (NULL: the target as it is; the SQLite way of saying how durable commits are). */
    void (*describe)(const char *target, char *out, size_t len);
    const char *(*sync_name)(const struct store *s);
    /* Optional (NULL: never): whether the writer fails until the gateway is restarted. */
    bool (*needs_restart)(const struct store *s);
    /* Optional: a backend without a feed (one writer per database) leaves these NULL. */
    enum gw_err (*feed_open)(struct store_feed **out, struct store *writer, char why[GW_ERRLEN]);
    int (*feed_fd)(const struct store_feed *f);
    bool (*feed_drain)(struct store_feed *f, store_moved_fn *moved, void *ctx);
    void (*feed_close)(struct store_feed *f);
};

/* Every connection of every backend begins with this. */
struct store {
    const struct store_ops *ops;
};

/* And every feed. */
struct store_feed {
    const struct store_ops *ops;
};

#endif
