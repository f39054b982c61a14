/*
 * store.c - the store's one entry: picks the backend a target names and
 * hands each call to it; see store.h and store_backend.h.
 */
#include "store.h"

#include "store_backend.h"
#include "store_sqlite.h"

#include <stddef.h>

/* Backends in the order they are tried; the last one takes any target. */
static const struct store_ops *backend_of(const char *target)
{
    (void)target;
    return &store_sqlite_ops;
}

const char *store_backend_name(const char *target)
{
    return backend_of(target)->name;
}

int store_schema_version(void)
{
    return store_sqlite_ops.schema_version();
}

enum gw_err store_open(struct store **out, const char *target, enum store_role role, bool sync_full,
                       char why[GW_ERRLEN])
{
    return backend_of(target)->open(out, target, role, sync_full, why);
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

enum gw_err store_channels(struct store *s, struct gw_channel_info **out, size_t *n,
                           char why[GW_ERRLEN])
{
    return s->ops->channels(s, out, n, why);
}
