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
    [GW_E_SHUTDOWN] = "shutting_down",
    [GW_E_SCHEMA] = "schema_mismatch",
    [GW_E_CONFIG] = "invalid_config",
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
