/*
 * err.c - names of enum gw_err on the wire, and the assertion failure path.
 *
 * The names are part of the public API (docs/api.md): never rename one.
 */
#include "gw.h"

#include <stdio.h>
#include <stdlib.h>

static const char *const codes[GW_E__COUNT] = {
    [GW_OK] = "ok",
    [GW_E_JSON] = "invalid_json",
    [GW_E_UTF8] = "invalid_utf8",
    [GW_E_NOT_OBJECT] = "not_an_object",
    [GW_E_MISSING_FIELD] = "missing_field",
    [GW_E_FIELD] = "invalid_field",
    [GW_E_PARAM] = "invalid_parameter",
    [GW_E_CHANNEL] = "invalid_channel",
    [GW_E_NOT_FOUND] = "not_found",
    [GW_E_METHOD] = "method_not_allowed",
    [GW_E_TOO_LARGE] = "body_too_large",
    [GW_E_MEDIA_TYPE] = "unsupported_media_type",
    [GW_E_STORE] = "store_failed",
    [GW_E_STORE_BUSY] = "store_busy",
    [GW_E_STORE_FULL] = "store_full",
    [GW_E_STORE_UNAVAILABLE] = "store_unavailable",
    [GW_E_STORE_IN_USE] = "store_in_use",
    [GW_E_SHUTDOWN] = "shutting_down",
    [GW_E_SCHEMA] = "schema_mismatch",
    [GW_E_CONFIG] = "invalid_config",
    [GW_E_UNKNOWN_COMMAND] = "unknown_command",
    [GW_E_MISSING_ARGUMENT] = "missing_argument",
    [GW_E_CURSOR] = "invalid_cursor",
    [GW_E_NOT_SUBSCRIBED] = "not_subscribed",
    [GW_E_TOO_MANY_SUBS] = "too_many_subscriptions",
    [GW_E_LINE_TOO_LONG] = "line_too_long",
    [GW_E_TOO_MANY_ERRORS] = "too_many_errors",
    [GW_E_IDLE] = "idle_timeout",
    [GW_E_SLOW_CONSUMER] = "slow_consumer",
    [GW_E_TOO_MANY_SESSIONS] = "too_many_sessions",
    [GW_E_BUSY] = "busy",
    [GW_E_UPGRADE_REQUIRED] = "upgrade_required",
    [GW_E_ORIGIN] = "origin_not_allowed",
    [GW_E_HOST] = "host_not_allowed",
    [GW_E_HEAD_TOO_LARGE] = "head_too_large",
};

const char *gw_err_code(enum gw_err err)
{
    if ((unsigned)err >= GW_E__COUNT || !codes[err])
        return "internal_error";
    return codes[err];
}

_Noreturn void gw_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "assertion failed: %s (%s:%d)\n", expr, file, line);
    abort();
}
