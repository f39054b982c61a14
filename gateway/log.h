/*
 * log.h - leveled, one-line-per-event logging to stderr.
 *
 * The only module that formats diagnostics for people. Safe from any thread:
 * each line is written with a single write(2), so lines from the loop and the
 * writer thread never interleave. Depends on libc only.
 */
#ifndef GW_LOG_H
#define GW_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level { GW_LOG_DEBUG = 0, GW_LOG_INFO, GW_LOG_WARN, GW_LOG_ERROR };

void log_set_level(enum log_level level);
bool log_enabled(enum log_level level);
/* Returns 0 and sets *out for "debug", "info", "warn", "error"; -1 otherwise. */
int log_level_parse(const char *name, enum log_level *out);
const char *log_level_name(enum log_level level);

/*
 * "<RFC 3339 time> <level> <message>\n" on stderr. The message is escaped
 * as log_escape does, so it always stays one line of printable ASCII.
 */
void log_msg(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Socket tracing (--trace): one line per bind, listen, accept, recv, send
 * and close, whatever the level. Off, it costs one load and a branch.
 */
void log_set_trace(bool on);
bool log_tracing(void);
void log_trace_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define log_trace(...)                                                                             \
    do {                                                                                           \
        if (log_tracing())                                                                         \
            log_trace_msg(__VA_ARGS__);                                                            \
    } while (0)

/*
 * Copies src[0..len) into dst as printable ASCII: a backslash becomes two
 * (\\), control characters, DEL and every byte >= 0x80 become \xNN (two
 * lower-case hex digits). Stops before an escape that would not fit whole
 * in cap - 1 bytes; dst is always NUL-terminated (cap > 0). Returns the
 * bytes written, NUL excluded. Pure; the escaping every log line gets.
 */
size_t log_escape(char *dst, size_t cap, const char *src, size_t len);

#define log_debug(...) log_msg(GW_LOG_DEBUG, __VA_ARGS__)
#define log_info(...)  log_msg(GW_LOG_INFO, __VA_ARGS__)
#define log_warn(...)  log_msg(GW_LOG_WARN, __VA_ARGS__)
#define log_error(...) log_msg(GW_LOG_ERROR, __VA_ARGS__)

#endif
