/*
 * proto_line.h - the session protocol's input side (docs/protocol.md):
 * framing of a byte stream into lines, and a line into a command.
 *
 * Pure: no I/O, no globals; shared by the gateway and the clients. Depends
 * on gw.h and proto_cmd.h (the command both forms parse to); the JSON form
 * is decoded by codec_json.
 */
#ifndef GW_PROTO_LINE_H
#define GW_PROTO_LINE_H

#include "gw.h"
#include "proto_cmd.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum proto_frame {
    PROTO_LINE,      /* a whole line is there */
    PROTO_NEED_MORE, /* no line end yet, still within the limit */
    PROTO_TOO_LONG   /* max_line bytes and no line end: framing is lost */
};

/*
 * Looks for the first line in (buf, len). On PROTO_LINE, *line_len is its
 * length without LF or CRLF and *consumed what to drop from buf, line end
 * included. A line longer than max_line is PROTO_TOO_LONG even before its end
 * has arrived, so no one can make the reader hold more than that.
 */
enum proto_frame proto_frame(const char *buf, size_t len, size_t max_line, size_t *line_len,
                             size_t *consumed);

/*
 * Parses one line (without its line end). GW_OK: *cmd is filled (op
 * PROTO_NONE for a blank line). Otherwise the error (GW_E_UTF8,
 * GW_E_UNKNOWN_COMMAND, GW_E_MISSING_ARGUMENT, GW_E_PARAM, GW_E_JSON,
 * GW_E_NOT_OBJECT, GW_E_FIELD, ...) with a reason in why, and cmd->op and
 * cmd->tag set when they could be read, so the error reply can name them.
 * Always call proto_cmd_release afterwards.
 */
enum gw_err proto_parse(const char *line, size_t len, struct proto_cmd *cmd, char why[GW_ERRLEN]);

#endif
