/*
 * gwsh_json.h - what gwsh makes of a server line (docs/protocol.md): its
 * kind and the few fields gwsh acts on, its text for a person, and the
 * message object --sub prints.
 *
 * The only gwsh file that uses jansson. Depends on common/ (buf) and libc;
 * no I/O. The text for a person never holds a control character or invalid
 * UTF-8 from the server: they are shown escaped, so nothing a client
 * publishes can drive the reader's terminal.
 */
#ifndef GWSH_JSON_H
#define GWSH_JSON_H

#include "buf.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gwsh_kind {
    GWSH_INVALID, /* not a JSON object with a string "type" */
    GWSH_HELLO,   /* the greeting */
    GWSH_MESSAGE, /* push */
    GWSH_PING,    /* push: the heartbeat */
    GWSH_GAP,     /* push */
    GWSH_OK,      /* reply */
    GWSH_PONG,    /* reply */
    GWSH_BYE,     /* reply (to QUIT) or farewell (shutdown) */
    GWSH_ERROR,   /* reply, or a farewell when the server closes */
    GWSH_OTHER    /* a type this gwsh does not know: taken as a reply */
};

/*
 * One parsed line. The strings are borrowed from the parsed tree and valid
 * until gwsh_line_release; NULL when the line has no such field (or it is not
 * a string).
 */
struct gwsh_line {
    enum gwsh_kind kind;
    const char *op;      /* ok, error */
    const char *code;    /* error */
    const char *channel; /* message, gap, ok sub/unsub/hist */
    const char *token;   /* pong */
    const char *reason;  /* bye */
    const char *server;  /* hello */
    const char *session; /* hello */
    int64_t seq;         /* message: its seq; -1 when absent */
    int64_t since;       /* ok sub: the cursor it starts after; -1 when absent */
    int64_t heartbeat;   /* hello: seconds; -1 when absent */
    void *json;          /* the tree (json_t *), owned */
};

/* True for the lines that never answer a command. */
bool gwsh_kind_is_push(enum gwsh_kind kind);

/* Parses (line, len); never fails: an unreadable line is GWSH_INVALID. */
void gwsh_line_parse(const char *line, size_t len, struct gwsh_line *l);
void gwsh_line_release(struct gwsh_line *l);

/*
 * Appends the line as text for a person to out: one or more lines, each
 * ended by LF; nothing for a heartbeat. raw is the line as received, shown
 * (escaped) when it cannot be read.
 */
void gwsh_line_format(const struct gwsh_line *l, const char *raw, size_t raw_len, struct buf *out);

/*
 * Appends a message push's message object, its fields as the server sent
 * them without "type", as one line of compact JSON ended by LF.
 */
void gwsh_line_message_json(const struct gwsh_line *l, struct buf *out);

/*
 * Appends (s, len) for a terminal: printable UTF-8 as it is, the rest
 * escaped (\n, \t, \xHH for other control bytes and invalid UTF-8, \u0080
 * to \u009f for C1 controls).
 */
void gwsh_put_safe(struct buf *out, const char *s, size_t len);

#endif
