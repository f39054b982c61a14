/*
 * codec_json.c - JSON <-> model structs with jansson; see codec_json.h.
 *
 * Trees are built with the *_new setters, which steal the reference, so only
 * the root is ever decref'd. Strings go through json_stringn so bodies with
 * NULs survive; jansson writes them back as \u0000.
 */
#include "codec_json.h"

#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Compact output; insertion order is kept, so every message reads alike. */
#define DUMP_FLAGS (JSON_COMPACT)

void codec_ts_format(int64_t ts_ms, char out[CODEC_TS_LEN])
{
    time_t secs = (time_t)(ts_ms / 1000);
    int ms = (int)(ts_ms % 1000);
    struct tm tm;

    if (ms < 0) {
        ms += 1000;
        secs -= 1;
    }
    gmtime_r(&secs, &tm);
    snprintf(out, CODEC_TS_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
             tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

static char *dump(json_t *root, size_t *len)
{
    char *s = json_dumps(root, DUMP_FLAGS);
    json_decref(root);
    GW_ASSERT(s != NULL); /* only fails on allocation or invalid UTF-8 we never build */
    *len = strlen(s);
    return s;
}

static json_t *ts_new(int64_t ts_ms)
{
    char ts[CODEC_TS_LEN];
    codec_ts_format(ts_ms, ts);
    return json_string(ts);
}

static json_t *msg_object(const struct gw_msg *m)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_integer(m->id));
    json_object_set_new(o, "channel", json_string(m->channel));
    json_object_set_new(o, "seq", json_integer(m->seq));
    json_object_set_new(o, "sender", json_stringn(m->sender, m->sender_len));
    json_object_set_new(o, "body", json_stringn(m->body, m->body_len));
    json_object_set_new(o, "ts", ts_new(m->ts_ms));
    json_object_set_new(o, "via", json_string(gw_via_name(m->via)));
    return o;
}

char *codec_msg_encode(const struct gw_msg *m, size_t *len)
{
    return dump(msg_object(m), len);
}

char *codec_history_encode(const char *channel, const struct gw_msg *msgs, size_t n,
                           int64_t next_since, size_t *len)
{
    json_t *root = json_object();
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, msg_object(&msgs[i]));
    json_object_set_new(root, "channel", json_string(channel));
    json_object_set_new(root, "messages", arr);
    json_object_set_new(root, "next_since", json_integer(next_since));
    return dump(root, len);
}

char *codec_channels_encode(const struct gw_channel_info *chans, size_t n, size_t *len)
{
    json_t *arr = json_array();

    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "name", json_string(chans[i].name));
        json_object_set_new(o, "messages", json_integer(chans[i].messages));
        json_object_set_new(o, "last_seq", json_integer(chans[i].last_seq));
        json_object_set_new(o, "last_ts", ts_new(chans[i].last_ts_ms));
        json_array_append_new(arr, o);
    }
    return dump(arr, len);
}

char *codec_error_encode(enum gw_err err, const char *message, size_t *len)
{
    json_t *root = json_object();
    json_t *e = json_object();

    json_object_set_new(e, "code", json_string(gw_err_code(err)));
    /* Reasons may quote client input; never let that make the reply invalid. */
    json_t *msg = json_string(message);
    json_object_set_new(e, "message", msg ? msg : json_string("(unprintable reason)"));
    json_object_set_new(root, "error", e);
    return dump(root, len);
}

char *codec_status_encode(const char *status, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "status", json_string(status));
    return dump(root, len);
}

char *codec_version_encode(const char *name, const char *version, const char *api,
                           int schema_version, size_t *len)
{
    json_t *root = json_object();
    json_object_set_new(root, "name", json_string(name));
    json_object_set_new(root, "version", json_string(version));
    json_object_set_new(root, "api", json_string(api));
    json_object_set_new(root, "schema_version", json_integer(schema_version));
    return dump(root, len);
}

static const char *type_name(const json_t *v)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        return "an object";
    case JSON_ARRAY:
        return "an array";
    case JSON_STRING:
        return "a string";
    case JSON_INTEGER:
    case JSON_REAL:
        return "a number";
    case JSON_TRUE:
    case JSON_FALSE:
        return "a boolean";
    case JSON_NULL:
        return "null";
    }
    return "unknown";
}

enum gw_err codec_publish_decode(const char *buf, size_t len, struct codec_publish *out,
                                 char why[GW_ERRLEN])
{
    json_error_t jerr;
    json_t *root, *body, *sender;
    enum gw_err err = GW_OK;

    memset(out, 0, sizeof(*out));
    root = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL | JSON_DECODE_ANY, &jerr);
    if (!root) {
        if (json_error_code(&jerr) == json_error_invalid_utf8) {
            snprintf(why, GW_ERRLEN, "request body is not valid UTF-8 (byte %d)", jerr.position);
            return GW_E_UTF8;
        }
        snprintf(why, GW_ERRLEN, "malformed JSON at line %d column %d: %s", jerr.line, jerr.column,
                 jerr.text);
        return GW_E_JSON;
    }
    if (!json_is_object(root)) {
        snprintf(why, GW_ERRLEN, "request body must be a JSON object, got %s", type_name(root));
        err = GW_E_NOT_OBJECT;
        goto out;
    }
    body = json_object_get(root, "body");
    if (!body) {
        snprintf(why, GW_ERRLEN, "field \"body\" is required");
        err = GW_E_MISSING_FIELD;
        goto out;
    }
    if (!json_is_string(body)) {
        snprintf(why, GW_ERRLEN, "field \"body\" must be a string, got %s", type_name(body));
        err = GW_E_FIELD;
        goto out;
    }
    sender = json_object_get(root, "sender");
    if (sender && !json_is_string(sender)) {
        snprintf(why, GW_ERRLEN, "field \"sender\" must be a string, got %s", type_name(sender));
        err = GW_E_FIELD;
        goto out;
    }
    out->body_len = json_string_length(body);
    out->body = gw_xmemdup(json_string_value(body), out->body_len);
    if (sender) {
        out->sender_len = json_string_length(sender);
        out->sender = gw_xmemdup(json_string_value(sender), out->sender_len);
    }
out:
    json_decref(root);
    return err;
}

void codec_publish_release(struct codec_publish *p)
{
    GW_FREE_AND_NULL(p->sender);
    GW_FREE_AND_NULL(p->body);
    p->sender_len = 0;
    p->body_len = 0;
}
