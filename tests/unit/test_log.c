/*
 * test_log.c - gateway/log.h: every byte a client chose is escaped on its
 * way into a log line, so no input can end a line, forge the next one or
 * reach the terminal as an escape sequence.
 */
#include "log.h"

#include "gw.h"
#include "tap.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Bytes with their length, so rows may hold NULs. */
#define B(s) s, sizeof(s) - 1

struct escape_case {
    const char *name;
    const char *in;
    size_t len;
    const char *want;
};

static const struct escape_case cases[] = {
    {"empty", B(""), ""},
    {"printable ASCII unchanged", B("GET /v1/channels?since=3&wait=30 200"),
     "GET /v1/channels?since=3&wait=30 200"},
    {"LF cannot start a line", B("a\nfake info line"), "a\\x0afake info line"},
    {"CR", B("a\rb"), "a\\x0db"},
    {"CRLF", B("x\r\ny"), "x\\x0d\\x0ay"},
    {"ESC of a terminal sequence", B("\x1b[31mred"), "\\x1b[31mred"},
    {"NUL", B("a\0b"), "a\\x00b"},
    {"tab", B("a\tb"), "a\\x09b"},
    {"DEL", B("\x7f"), "\\x7f"},
    {"backslash doubled, so an escape cannot be forged", B("a\\x0ab"), "a\\\\x0ab"},
    {"non-ASCII UTF-8", B("caf\xc3\xa9"), "caf\\xc3\\xa9"},
    {"invalid UTF-8 byte", B("\xff"), "\\xff"},
    {"space and tilde kept", B(" ~"), " ~"},
};

static void escape_table(void)
{
    char out[256];

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        const struct escape_case *c = &cases[i];
        size_t n = log_escape(out, sizeof(out), c->in, c->len);
        is_str(out, c->want, "escape: %s", c->name);
        is_uint(n, strlen(c->want), "escape: %s: length returned", c->name);
    }
}

/* Whatever the input, the output is printable ASCII and never ends mid-escape. */
static void escape_every_byte(void)
{
    char in[256], out[1200];
    bool printable = true;

    for (int i = 0; i < 256; i++)
        in[i] = (char)i;
    size_t n = log_escape(out, sizeof(out), in, sizeof(in));
    for (size_t i = 0; i < n; i++) {
        if (out[i] < 0x20 || out[i] >= 0x7f)
            printable = false;
    }
    ok(printable, "all 256 byte values come out as printable ASCII");
    /* 94 printable bytes stay, the backslash doubles, 32 controls, DEL and 128 high bytes become
     * \xNN. */
    is_uint(n, 94 + 2 + (32 + 1 + 128) * 4, "all 256 byte values: length");
}

/* A full buffer cuts before an escape, never inside one. */
static void escape_truncates_whole(void)
{
    char out[8];

    /* Room for 7 bytes: "ab" then "\x0a" (4) fits, the next escape does not. */
    size_t n = log_escape(out, sizeof(out), B("ab\n\n"));
    is_str(out, "ab\\x0a", "a cut keeps whole escapes");
    is_uint(n, 6, "a cut: length");
    n = log_escape(out, 1, B("abc"));
    is_str(out, "", "cap 1: empty string");
    is_uint(n, 0, "cap 1: nothing written");
    n = log_escape(out, 3, B("\\\\"));
    is_str(out, "\\\\", "a doubled backslash fits exactly");
}

/* The one formatter: a message with a newline still comes out as one line. */
static void log_line_is_one_line(void)
{
    int fds[2];
    char buf[8192];
    ssize_t n;
    int saved = dup(STDERR_FILENO);

    if (pipe(fds) < 0 || saved < 0) {
        skip("cannot capture stderr: %s", strerror(errno));
        return;
    }
    dup2(fds[1], STDERR_FILENO);
    log_warn("http: %s", "GET /a%0A\n2026-01-01T00:00:00.000Z info  forged\x1b[2J");
    dup2(saved, STDERR_FILENO);
    close(saved);
    close(fds[1]);
    n = read(fds[0], buf, sizeof(buf) - 1);
    close(fds[0]);
    buf[n > 0 ? n : 0] = '\0';
    ok(n > 0 && strchr(buf, '\n') == buf + n - 1, "one line, ended by its only newline: %s", buf);
    ok(strstr(buf, "GET /a%0A\\x0a2026-01-01T00:00:00.000Z info  forged\\x1b[2J") != NULL,
       "the newline and the ESC are escaped in the line");
}

int main(void)
{
    escape_table();
    escape_every_byte();
    escape_truncates_whole();
    log_line_is_one_line();
    return done_testing();
}
