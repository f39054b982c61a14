/*
 * codec_json.h - the JSON forms of the domain, both ways.
 *
 * The only place that builds or reads JSON with jansson; depends on model.h
 * and gw.h. Pure: no I/O, no globals. Every encoder returns a malloc'd,
 * NUL-terminated string that the caller frees with free() (or hands to a
 * library that will), and stores its length in *len.
 */
#ifndef GW_CODEC_JSON_H
#define GW_CODEC_JSON_H

#include "buf.h"
#include "gw.h"
#include "model.h"
#include "proto_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* RFC 3339 UTC with milliseconds, "2026-11-24T09:15:02.417Z". */
#define CODEC_TS_LEN 64 /* 24 used; room for any int the compiler can imagine */
void codec_ts_format(int64_t ts_ms, char out[CODEC_TS_LEN]);

/* {"id","channel","seq","sender","body","ts","via"} */
char *codec_msg_encode(const struct gw_msg *m, size_t *len);

/* {"channel","messages":[...],"gaps":[{"from","to"}...] (when any),"next_since"} */
char *codec_history_encode(const char *channel, const struct gw_page *page, size_t *len);

/*
 * A page of the channel list: {"channels":[{"name","messages","last_seq",
 * "last_ts"}, ...],"next_after":<name>}; next_after only when not NULL (the
 * page is full: there may be more after that name).
 */
char *codec_channels_encode(const struct gw_channel_info *chans, size_t n, const char *next_after,
                            size_t *len);

/*
 * The most bytes a page of n channels takes, with its next_after: all of
 * codec_channels_encode's answer, and of codec_line_ok_channels's line but
 * its head ({"type":"ok","op":"channels"), tag and end. For names the
 * gateway stores (channel names, never escaped) and any numbers and times.
 */
size_t codec_channels_max_len(size_t n);

/* {"error":{"code","message"}}; message is borrowed for the call. */
char *codec_error_encode(enum gw_err err, const char *message, size_t *len);

/* One line of the API index: {"method","path","what"}. */
struct codec_endpoint {
    const char *method;
    const char *path;
    const char *what;
};

/* {"name","version","docs","endpoints":[{"method","path","what"}...],"sessions"}: GET / */
char *codec_index_encode(const char *name, const char *version, const char *docs,
                         const struct codec_endpoint *eps, size_t n, const char *sessions,
                         size_t *len);

/* {"status":status} */
char *codec_status_encode(const char *status, size_t *len);

/* {"status":status,"error":{"code","message"}}: GET /healthz while the store fails */
char *codec_health_encode(const char *status, enum gw_err err, const char *message, size_t *len);

/* {"name","version","api","schema_version"} */
char *codec_version_encode(const char *name, const char *version, const char *api,
                           int schema_version, size_t *len);

/*
 * /v1/stats: {"<name>": value | {"<label>": value, ...}, ...}. Append samples
 * in order (those of one name together) between begin and end.
 */
struct codec_stats {
    struct buf *out;
    char group[96]; /* the name whose {label: value} object is open */
    bool in_group;
    size_t count;
};
void codec_stats_begin(struct codec_stats *st, struct buf *out);
void codec_stats_sample(struct codec_stats *st, const char *name, const char *label, double value);
void codec_stats_end(struct codec_stats *st);

/*
 * A publish request: {"body": string, "sender": string (optional)}; unknown
 * fields are ignored. The strings are owned (free with
 * codec_publish_release); sender is NULL when absent. Field contents are not
 * judged here: that is the core's rule.
 */
struct codec_publish {
    char *sender;
    size_t sender_len;
    char *body;
    size_t body_len;
};

/*
 * Decodes (buf, len). Returns GW_OK and fills *out, or one of GW_E_JSON,
 * GW_E_UTF8, GW_E_NOT_OBJECT, GW_E_MISSING_FIELD, GW_E_FIELD with a reason for
 * a person in why; *out is then left empty.
 */
enum gw_err codec_publish_decode(const char *buf, size_t len, struct codec_publish *out,
                                 char why[GW_ERRLEN]);
void codec_publish_release(struct codec_publish *p);

/*
 * The JSON form of a session command ({"op":...}) into *cmd, its strings
 * copied into cmd->owned. Errors as codec_publish_decode, plus
 * GW_E_UNKNOWN_COMMAND; cmd->op and cmd->tag are set whenever they were read.
 * cmd->op is set whatever else is wrong, the tag included, and for JSON too
 * malformed to read it is the verb an "op" key names in the text, if one
 * does: a datagram that meant to be a command gets its error, and is not
 * taken for a body (udp.md).
 */
enum gw_err codec_cmd_decode(const char *line, size_t len, struct proto_cmd *cmd,
                             char why[GW_ERRLEN]);

/*
 * Session lines (docs/protocol.md), each appended to out with its LF. tag
 * (tag_len bytes) is echoed when not NULL.
 */
/* takes_commands: with the hint that HELP lists them (not on a stream that takes none: SSE). */
void codec_line_hello(struct buf *out, const char *session, const char *server, unsigned heartbeat,
                      bool takes_commands);
/* A push: {"type":"message", ...the message's fields...} */
void codec_line_message(struct buf *out, const struct gw_msg *m);
void codec_line_ping(struct buf *out, int64_t time_us);
void codec_line_ok_pub(struct buf *out, const struct gw_msg *m, const char *tag, size_t tag_len);
void codec_line_ok_sub(struct buf *out, const char *channel, int64_t since, int64_t top,
                       const char *tag, size_t tag_len);
void codec_line_ok_unsub(struct buf *out, const char *channel, const char *tag, size_t tag_len);
void codec_line_ok_hist(struct buf *out, const char *channel, const struct gw_page *page,
                        const char *tag, size_t tag_len);
/* {"type":"gap","channel","from","to","first_seq"}: seqs from..to are not stored. */
void codec_line_gap(struct buf *out, const char *channel, int64_t from, int64_t to);
/* "next_after" after the channels when next_after is not NULL, as codec_channels_encode. */
void codec_line_ok_channels(struct buf *out, const struct gw_channel_info *chans, size_t n,
                            const char *next_after, const char *tag, size_t tag_len);
void codec_line_ok_help(struct buf *out, const char *const *usage, const char *tag, size_t tag_len);
/*
 * HELP typed as text, for a person: one plain-text line per command, each
 * starting with two blanks, then an empty line (the one answer that is not
 * JSON).
 */
void codec_text_help(struct buf *out, const char *const *usage);
void codec_line_ok_name(struct buf *out, const char *name, size_t name_len, const char *tag,
                        size_t tag_len);
void codec_line_pong(struct buf *out, const char *token, size_t token_len, int64_t time_us,
                     const char *tag, size_t tag_len);
void codec_line_bye(struct buf *out, const char *reason, const char *tag, size_t tag_len);
/* op may be NULL. */
void codec_line_error(struct buf *out, enum gw_err err, const char *message, const char *op,
                      const char *tag, size_t tag_len);
/*
 * Whether the shortest ok of a PUB with this tag ({"type":"ok","op":"pub",
 * "tag":…}) is at most max bytes: a tag is echoed escaped, and DEL or a C1
 * control sent raw in one or two bytes comes back as six (\u007f).
 */
bool codec_line_ok_pub_fits(const char *tag, size_t tag_len, size_t max);
/*
 * Lines no longer than max bytes (LF included), for a transport that must
 * never answer with more bytes than it was sent (UDP, docs/udp.md). Each
 * appends to out and returns true, or returns false and leaves out as it
 * was when not even its shortest form fits.
 *
 * The ok of a PUB: the whole line when it fits; else its message without
 * "body"; else no "message" at all ({"type":"ok","op":"pub"[,"tag"]}).
 */
bool codec_line_ok_pub_within(struct buf *out, const struct gw_msg *m, const char *tag,
                              size_t tag_len, size_t max);
/* An error line whose "message" is cut, at a character boundary, as far as needed. */
bool codec_line_error_within(struct buf *out, enum gw_err err, const char *message, const char *op,
                             const char *tag, size_t tag_len, size_t max);
/* The slow_consumer farewell: last_seq is {channels[i]: seqs[i]}. */
void codec_line_slow_consumer(struct buf *out, const char *message, const char *const *channels,
                              const int64_t *seqs, size_t n);

/*
 * Socket.IO (docs/socketio.md). codec_sio_event_line: an EVENT's data
 * (["sub", {...}]) as the session command line of the same name, appended
 * to out without a line end: the argument object's fields, "op" the event,
 * "tag" the ack id when tag is not NULL (a "tag" the client sent is
 * dropped). GW_E_JSON, GW_E_PARAM (not an array starting with a name),
 * GW_E_UNKNOWN_COMMAND (an event other than sub, unsub, pub, hist,
 * channels) or GW_E_NOT_OBJECT (an argument that is not an object), with a
 * reason, and out untouched.
 */
enum gw_err codec_sio_event_line(const char *json, size_t len, const char *tag, size_t tag_len,
                                 struct buf *out, char why[GW_ERRLEN]);
/* A push as an Engine.IO message with its LF: 42["message",{...the message...}] */
void codec_sio_message_event(struct buf *out, const struct gw_msg *m);
/* A CONNECT_ERROR's data: {"message":message} */
void codec_sio_error_data(struct buf *out, const char *message);
/* An Engine.IO HTTP error body: {"code":code,"message":message} */
void codec_eio_error(struct buf *out, unsigned code, const char *message);

#endif
