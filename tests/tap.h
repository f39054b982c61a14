/*
 * tap.h - a tiny header-only TAP emitter for the unit tests (picotest-style).
 *
 * Include it from exactly one .c file per test program. Every check prints
 * "ok N - name" or "not ok N - name" on stdout, followed on failure by
 * "# ..." diagnostic lines (where, got, want). done_testing() prints the plan
 * "1..N" and returns the exit status: 0 when every check passed.
 *
 *   ok(cond, fmt, ...)                      cond is true
 *   is_int(got, want, fmt, ...)             signed integers are equal
 *   is_uint(got, want, fmt, ...)            unsigned integers are equal
 *   is_str(got, want, fmt, ...)             C strings are equal (NULL allowed)
 *   is_mem(got, glen, want, wlen, fmt, ...) byte ranges are equal
 *   skip(fmt, ...)                          one check skipped ("# SKIP")
 *   todo_start(reason) ... todo_end()       checks in between are known bugs:
 *                                           a failure prints "not ok N - name
 *                                           # TODO reason" and does not fail
 *                                           the run; a pass there shows up as
 *                                           an unexpected pass (remove the
 *                                           TODO once the bug is fixed)
 *   diag(fmt, ...)                          a "# ..." comment line
 *   bail_out(fmt, ...)                      "Bail out! ..." and exit(1)
 *   return done_testing();
 *
 * The names are printf formats, so table-driven tests can say which row
 * failed. Every function is static inline so that a test using only some of
 * them compiles clean under -Wunused-function and -Wmissing-prototypes.
 */
#ifndef TAP_H
#define TAP_H

#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TAP_PRINTF(f, a) __attribute__((format(printf, f, a)))

static int tap_count;
static int tap_failures;
static const char *tap_todo;

/*
 * Prints one test line. The name stays on its line (newlines become spaces)
 * and holds no '#', so it cannot pass for a directive or hide the TODO one.
 */
static inline void tap_vline(int pass, const char *fmt, va_list ap)
{
    char name[1024];

    vsnprintf(name, sizeof(name), fmt, ap);
    printf("%s %d - ", pass ? "ok" : "not ok", ++tap_count);
    for (const char *p = name; *p; p++) {
        if (*p == '\n' || *p == '\r')
            putchar(' ');
        else if (*p == '#')
            fputs("(hash)", stdout); /* harnesses stop the name at any '#' */
        else
            putchar(*p);
    }
    if (tap_todo)
        printf(" # TODO %s", tap_todo);
    putchar('\n');
    if (!pass && !tap_todo)
        tap_failures++;
}

static inline void diag(const char *fmt, ...) TAP_PRINTF(1, 2);
/* Prints "# " and the message; a newline in it starts another "# " line. */
static inline void diag(const char *fmt, ...)
{
    char msg[2048];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    fputs("# ", stdout);
    for (const char *p = msg; *p; p++) {
        if (*p == '\n')
            fputs("\n# ", stdout);
        else if (*p != '\r')
            putchar(*p);
    }
    putchar('\n');
    fflush(stdout);
}

static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
    TAP_PRINTF(4, 5);
static inline int tap_ok(int pass, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    tap_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass)
        diag("  at %s line %d", file, line);
    fflush(stdout);
    return pass;
}

static inline int tap_is_int(long long got, long long want, const char *file, int line,
                             const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_int(long long got, long long want, const char *file, int line,
                             const char *fmt, ...)
{
    int pass = got == want;
    va_list ap;
    va_start(ap, fmt);
    tap_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        diag("  at %s line %d", file, line);
        diag("got: %lld", got);
        diag("want: %lld", want);
    }
    fflush(stdout);
    return pass;
}

static inline int tap_is_uint(unsigned long long got, unsigned long long want, const char *file,
                              int line, const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_uint(unsigned long long got, unsigned long long want, const char *file,
                              int line, const char *fmt, ...)
{
    int pass = got == want;
    va_list ap;
    va_start(ap, fmt);
    tap_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        diag("  at %s line %d", file, line);
        diag("got: %llu", got);
        diag("want: %llu", want);
    }
    fflush(stdout);
    return pass;
}

/* Prints (p, len) on the current line as a C string literal, escaped. */
static inline void tap_put_escaped(const void *p, size_t len)
{
    const unsigned char *s = p;
    size_t show = len > 400 ? 400 : len;

    putchar('"');
    for (size_t i = 0; i < show; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            printf("\\%c", c);
        else if (c == '\n')
            fputs("\\n", stdout);
        else if (c >= 0x20 && c < 0x7f)
            putchar(c);
        else
            printf("\\x%02x", c);
    }
    putchar('"');
    if (show < len)
        printf("... (%zu bytes)", len);
}

static inline void tap_diag_mem(const char *label, const void *p, size_t len)
{
    printf("# %s: ", label);
    if (p)
        tap_put_escaped(p, len);
    else
        fputs("NULL", stdout);
    putchar('\n');
}

static inline int tap_is_mem(const void *got, size_t glen, const void *want, size_t wlen,
                             const char *file, int line, const char *fmt, ...) TAP_PRINTF(7, 8);
static inline int tap_is_mem(const void *got, size_t glen, const void *want, size_t wlen,
                             const char *file, int line, const char *fmt, ...)
{
    int pass;
    va_list ap;

    if (!got || !want)
        pass = got == want;
    else
        pass = glen == wlen && (glen == 0 || memcmp(got, want, glen) == 0);
    va_start(ap, fmt);
    tap_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        diag("  at %s line %d", file, line);
        tap_diag_mem("got", got, glen);
        tap_diag_mem("want", want, wlen);
    }
    fflush(stdout);
    return pass;
}

static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
                             const char *fmt, ...) TAP_PRINTF(5, 6);
static inline int tap_is_str(const char *got, const char *want, const char *file, int line,
                             const char *fmt, ...)
{
    int pass = (!got || !want) ? got == want : strcmp(got, want) == 0;
    va_list ap;

    va_start(ap, fmt);
    tap_vline(pass, fmt, ap);
    va_end(ap);
    if (!pass) {
        diag("  at %s line %d", file, line);
        tap_diag_mem("got", got, got ? strlen(got) : 0);
        tap_diag_mem("want", want, want ? strlen(want) : 0);
    }
    fflush(stdout);
    return pass;
}

static inline void skip(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline void skip(const char *fmt, ...)
{
    char why[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    for (char *p = why; *p; p++) {
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    }
    printf("ok %d # SKIP %s\n", ++tap_count, why);
    fflush(stdout);
}

static inline void todo_start(const char *reason)
{
    tap_todo = reason;
}

static inline void todo_end(void)
{
    tap_todo = NULL;
}

static inline _Noreturn void bail_out(const char *fmt, ...) TAP_PRINTF(1, 2);
static inline _Noreturn void bail_out(const char *fmt, ...)
{
    va_list ap;
    fputs("Bail out! ", stdout);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
    fflush(stdout);
    exit(1);
}

static inline int done_testing(void)
{
    printf("1..%d\n", tap_count);
    if (tap_failures)
        diag("failed %d of %d checks", tap_failures, tap_count);
    fflush(stdout);
    return tap_failures ? 1 : 0;
}

#define ok(cond, ...) tap_ok(!!(cond), __FILE__, __LINE__, __VA_ARGS__)
#define is_int(got, want, ...)                                                                     \
    tap_is_int((long long)(got), (long long)(want), __FILE__, __LINE__, __VA_ARGS__)
#define is_uint(got, want, ...)                                                                    \
    tap_is_uint((unsigned long long)(got), (unsigned long long)(want), __FILE__, __LINE__,         \
                __VA_ARGS__)
#define is_str(got, want, ...) tap_is_str((got), (want), __FILE__, __LINE__, __VA_ARGS__)
#define is_mem(got, glen, want, wlen, ...)                                                         \
    tap_is_mem((got), (glen), (want), (wlen), __FILE__, __LINE__, __VA_ARGS__)

#endif
