/*
 * text.h - checks on text that arrives from the network: UTF-8 validity,
 * channel names, decimal numbers.
 *
 * Pure functions, no allocation; depends on libc only. Shared by the gateway
 * and the clients so both sides agree on what is valid.
 */
#ifndef GW_TEXT_H
#define GW_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Length (1-4) of the well-formed UTF-8 sequence at the start of (s, len), or
 * 0 when it starts with an invalid or truncated one. len must be >= 1.
 */
size_t text_utf8_seq(const char *s, size_t len);

/* True when (s, len) is well-formed UTF-8 (no overlongs, no surrogates). */
bool text_utf8_valid(const char *s, size_t len);

/* True when (s, len) matches [A-Za-z0-9._-]{1,GW_CHANNEL_MAX}. */
bool text_channel_valid(const char *s, size_t len);

/*
 * True when (s, len) is "." or "..": names the pattern takes but a URL cannot
 * carry, since every HTTP client resolves them as steps of the path.
 */
bool text_channel_dots(const char *s, size_t len);

/*
 * Parses a NUL-terminated string of decimal digits only (no sign, no spaces,
 * no empty string) into *out. Returns false on any other input or when the
 * value exceeds max.
 */
bool text_parse_u64(const char *s, uint64_t max, uint64_t *out);

/*
 * Whether the valid UTF-8 sequence (seq, n) is a C1 control, U+0080..U+009F
 * (C2 80..C2 9F): a terminal takes U+009B for ESC [.
 */
bool text_is_c1(const char *seq, size_t n);

/*
 * The length of the run of bytes at the start of (s, len) that a JSON string
 * keeps as they are: printable ASCII other than quote and backslash. Eight
 * bytes at a time: it is the inner loop of every message the gateway encodes.
 */
size_t text_json_plain_run(const char *s, size_t len);

/*
 * The length of (s, len) written as a JSON string literal, quotes included,
 * exactly as the codec writes it: short escapes for quote, backslash and
 * \n \r \t \b \f, \u00XX for other control characters (C0, DEL and C1: no
 * message can drive the terminal of someone reading the wire), other UTF-8
 * kept as it is, and \ufffd for each byte of invalid UTF-8.
 */
size_t text_json_len(const char *s, size_t len);

#endif
