/*
 * gwsh_show.h - what gwsh shows a person: a server line as text, a
 * message with the time it took to arrive, and gwsh's own notes.
 *
 * Depends on common/ (buf, server_line) and libc; writes nothing itself but
 * gwsh_status (stderr). The text never holds a control character or
 * invalid UTF-8 from the server: they are shown escaped, so nothing a
 * client publishes can drive the reader's terminal.
 */
#ifndef GWSH_SHOW_H
#define GWSH_SHOW_H

#include "buf.h"
#include "server_line.h"

#include <stddef.h>
#include <stdint.h>

/* The most characters of a body gwsh_show_delay shows, so that its line fits 100 columns. */
#define GWSH_SHOW_BODY_MAX 40

/* "gwsh: <message>" and a LF on stderr. */
void gwsh_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/*
 * Appends l as text for a person: one or more lines, each ended by LF;
 * nothing for a heartbeat. raw is the line as received, shown (escaped)
 * when it cannot be read.
 */
void gwsh_show_line(const struct server_line *l, const char *raw, size_t raw_len, struct buf *out);

/*
 * Appends `push seq 8 "hello #8" 1.2 ms after commit` and a LF: the
 * message's seq, its body (escaped, cut to GWSH_SHOW_BODY_MAX characters)
 * and how long after its ts it arrived, now_us being the wall clock (µs
 * since the epoch) when it was read. ts has millisecond resolution, so the
 * delay is at most 1 ms over the truth.
 */
void gwsh_show_delay(const struct sl_msg *m, int64_t now_us, struct buf *out);

#endif
