/*
 * store.c - the store's one entry: picks the backend a target names and
 * hands each call to it; see store.h and store_backend.h.
 */
#include "store.h"

#include "store_backend.h"
#include "store_postgres.h"
#include "store_sqlite.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>

/* The backend of the first database opened, for store_schema_version. */
static _Atomic(const struct store_ops *) first_opened;

/* A PostgreSQL URL or connection string is PostgreSQL's; anything else is a SQLite file. */
static const struct store_ops *backend_of(const char *target)
{
    if (store_pg_is_target(target))
        return &store_postgres_ops;
    return &store_sqlite_ops;
}

const char *store_backend_name(const char *target)
{
    return backend_of(target)->name;
}

void store_target_describe(const char *target, char *out, size_t len)
{
    const struct store_ops *ops = backend_of(target);

    if (ops->describe)
        ops->describe(target, out, len);
    else
        snprintf(out, len, "%s", target);
}

const char *store_sync_name(const struct store *s, bool sync_full)
{
    if (s->ops->sync_name)
        return s->ops->sync_name(s);
    return sync_full ? "full" : "normal";
}

bool store_needs_restart(const struct store *s)
{
    return s->ops->needs_restart && s->ops->needs_restart(s);
}

int store_schema_version(void)
{
    const struct store_ops *ops = atomic_load(&first_opened);

    return (ops ? ops : &store_sqlite_ops)->schema_version();
}

enum gw_err store_open(struct store **out, const char *target, enum store_role role, bool sync_full,
                       char why[GW_ERRLEN])
{
    const struct store_ops *ops = backend_of(target), *none = NULL;
    enum gw_err err = ops->open(out, target, role, sync_full, why);

    if (err == GW_OK)
        atomic_compare_exchange_strong(&first_opened, &none, ops);
    return err;
}

void store_close(struct store *s)
{
    if (s)
        s->ops->close(s);
}

void store_stop_waiting(struct store *s)
{
    s->ops->stop_waiting(s);
}

enum gw_err store_append(struct store *s, struct gw_msg *const *msgs, size_t n, bool *refused,
                         char why[GW_ERRLEN])
{
    return s->ops->append(s, msgs, n, refused, why);
}

enum gw_err store_page(struct store *s, const char *channel, int64_t since, int64_t upto,
                       unsigned limit, size_t max_bytes, struct gw_page *out, char why[GW_ERRLEN])
{
    return s->ops->page(s, channel, since, upto, limit, max_bytes, out, why);
}

enum gw_err store_channel_top(struct store *s, const char *channel, int64_t *top,
                              char why[GW_ERRLEN])
{
    return s->ops->channel_top(s, channel, top, why);
}

enum gw_err store_message(struct store *s, int64_t id, struct gw_msg *out, char why[GW_ERRLEN])
{
    return s->ops->message(s, id, out, why);
}

enum gw_err store_channels(struct store *s, const char *after, unsigned limit,
                           struct gw_channel_info **out, size_t *n, char why[GW_ERRLEN])
{
    return s->ops->channels(s, after, limit, out, n, why);
}

enum gw_err store_feed_open(struct store_feed **out, struct store *writer, char why[GW_ERRLEN])
{
    *out = NULL;
    if (!writer->ops->feed_open)
        return GW_OK;
    return writer->ops->feed_open(out, writer, why);
}

int store_feed_fd(const struct store_feed *f)
{
    return f->ops->feed_fd(f);
}

bool store_feed_drain(struct store_feed *f, store_moved_fn *moved, void *ctx)
{
    return f->ops->feed_drain(f, moved, ctx);
}

void store_feed_close(struct store_feed *f)
{
    if (f)
        f->ops->feed_close(f);
}
