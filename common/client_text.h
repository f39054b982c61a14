/*
 * client_text.h - text from a server made safe for a person's terminal:
 * printable UTF-8 kept as it is, everything that could drive the terminal
 * (C0 controls, DEL, the C1 controls U+0080..U+009F, which some terminals
 * obey: U+009B is CSI) and invalid UTF-8 escaped. One walk over the text,
 * spelled two ways: for reading (\xHH) and inside JSON (\u00XX, \ufffd),
 * so that gwsh and gwbench show what a server says the same way.
 *
 * Part of libgwcodec, with server_line; depends on buf.h and text.h. Pure:
 * no I/O, no globals.
 */
#ifndef GW_CLIENT_TEXT_H
#define GW_CLIENT_TEXT_H

#include "buf.h"

#include <stddef.h>

/*
 * Appends (s, len) for a terminal: printable UTF-8 as it is, \n \t \r,
 * \xHH for other control bytes (DEL too) and each byte of invalid UTF-8,
 * \u0080 to \u009f for C1 controls.
 */
void client_text_safe(struct buf *out, const char *s, size_t len);

/*
 * Appends (s, len), compact JSON (nothing but its strings holds a blank or
 * a control byte), as the same JSON value safe for a terminal and in valid
 * UTF-8: every control character in a string (C0, DEL, C1) as \u00XX, each
 * byte of invalid UTF-8 as \ufffd (as the gateway's own codec replaces it).
 */
void client_text_json_safe(struct buf *out, const char *s, size_t len);

/*
 * client_text_safe of (s, len) into out (outlen bytes, NUL-terminated),
 * for a message: cut at a whole escape or character, "..." marking the
 * cut. Returns out.
 */
const char *client_text_shown(const char *s, size_t len, char *out, size_t outlen);

#endif
