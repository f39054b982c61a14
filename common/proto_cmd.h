/*
 * proto_cmd.h - a session command (docs/protocol.md), as both its forms
 * parse to: the text form (proto_line) and the JSON form (codec_json).
 *
 * Plain data, the op names and the HELP text; depends on gw.h only. Both
 * parsers build on it, so neither needs the other's header for the type:
 * proto_line calls codec_json for JSON lines, codec_json never calls back.
 */
#ifndef GW_PROTO_CMD_H
#define GW_PROTO_CMD_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define PROTO_VERSION   1
#define PROTO_PROTOCOL  "visavis"
#define PROTO_TAG_MAX   128
#define PROTO_TOKEN_MAX 128

enum proto_op {
    PROTO_NONE = 0, /* empty line: nothing to do */
    PROTO_HELP,
    PROTO_PUB,
    PROTO_SUB,
    PROTO_UNSUB,
    PROTO_HIST,
    PROTO_CHANNELS,
    PROTO_PING,
    PROTO_PONG,
    PROTO_QUIT,
    PROTO_NAME,
    PROTO__COUNT
};

/* "pub", "sub", ...; NULL for PROTO_NONE. */
const char *proto_op_name(enum proto_op op);

/*
 * A parsed command. Strings are (ptr, len) and borrowed: from the line for the
 * text form, from owned for the JSON form; either way valid until
 * proto_cmd_release and, for the text form, while the line is.
 */
struct proto_cmd {
    enum proto_op op;
    const char *channel;
    size_t channel_len;
    const char *body;
    size_t body_len;
    const char *sender; /* NULL: none given; NAME's name */
    size_t sender_len;
    const char *token;
    size_t token_len;
    const char *after; /* CHANNELS: the name to list after; NULL: none given */
    size_t after_len;
    const char *tag; /* NULL: none given */
    size_t tag_len;
    bool tag_given; /* a "tag" field was there, readable or not: a datagram asking for its answer */
    bool has_since;
    uint64_t since;
    bool has_limit;
    uint64_t limit;
    bool text_form; /* typed as text (a person), not JSON (a program) */
    char *owned;    /* storage of the JSON form's strings */
};

/* Frees what the JSON form allocated; the command is empty afterwards. */
void proto_cmd_release(struct proto_cmd *cmd);

/* The usage lines HELP answers with, NULL-terminated. */
extern const char *const proto_usage[];

#endif
