/*
 * log.c - see log.h.
 *
 * Every message is escaped on its way out, whoever formatted it: a URL, a
 * header or a channel name a client chose cannot end a line early, forge the
 * next one, or send escape sequences to the terminal reading the log.
 */
#include "log.h"

#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* A message before escaping, and a whole line after (escapes take up to 4 bytes each). */
#define LOG_MSG_MAX  2048
#define LOG_LINE_MAX 4096

static atomic_int current = GW_LOG_INFO;
static atomic_bool tracing;

static const char *const names[] = {"debug", "info", "warn", "error"};

void log_set_level(enum log_level level)
{
    atomic_store(&current, (int)level);
}

bool log_enabled(enum log_level level)
{
    return (int)level >= atomic_load(&current);
}

int log_level_parse(const char *name, enum log_level *out)
{
    for (unsigned i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(enum log_level level)
{
    return (unsigned)level < 4 ? names[level] : "?";
}

void log_set_trace(bool on)
{
    atomic_store(&tracing, on);
}

bool log_tracing(void)
{
    return atomic_load_explicit(&tracing, memory_order_relaxed);
}

static void vlog(const char *level, const char *fmt, va_list ap);

void log_trace_msg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vlog("trace", fmt, ap);
    va_end(ap);
}

void log_msg(enum log_level level, const char *fmt, ...)
{
    va_list ap;

    if (!log_enabled(level))
        return;
    va_start(ap, fmt);
    vlog(log_level_name(level), fmt, ap);
    va_end(ap);
}

size_t log_escape(char *dst, size_t cap, const char *src, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (cap == 0)
        return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)src[i];
        if (c == '\\') {
            if (n + 2 >= cap)
                break;
            dst[n++] = '\\';
            dst[n++] = '\\';
        } else if (c < 0x20 || c >= 0x7f) {
            if (n + 4 >= cap)
                break; /* never half an escape */
            dst[n++] = '\\';
            dst[n++] = 'x';
            dst[n++] = hex[c >> 4];
            dst[n++] = hex[c & 15];
        } else {
            if (n + 1 >= cap)
                break;
            dst[n++] = (char)c;
        }
    }
    dst[n] = '\0';
    return n;
}

static void vlog(const char *level, const char *fmt, va_list ap)
{
    char msg[LOG_MSG_MAX];
    char line[LOG_LINE_MAX];
    struct timespec ts;
    struct tm tm;
    int n, m;

    clock_gettime(CLOCK_REALTIME, &ts);
    gmtime_r(&ts.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ %-5s ",
                 tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 ts.tv_nsec / 1000000, level);
    m = vsnprintf(msg, sizeof(msg), fmt, ap);
    if (m < 0)
        m = 0;
    if ((size_t)m >= sizeof(msg))
        m = (int)sizeof(msg) - 1; /* truncated: keep one line per event */
    /* Room for the newline is kept back from the escaped message. */
    n += (int)log_escape(line + n, sizeof(line) - (size_t)n - 1, msg, (size_t)m);
    line[n++] = '\n';
    /* A failed log write has nowhere better to be reported. */
    ssize_t w = write(STDERR_FILENO, line, (size_t)n);
    (void)w;
}
