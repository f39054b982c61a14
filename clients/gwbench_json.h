/*
 * gwbench_json.h - everything gwbench reads or writes as JSON: the
 * gateway's session lines and history pages, its error bodies, and the
 * --json report.
 *
 * The only gwbench file that uses jansson. Depends on gwbench.h (the
 * result types), gwbench_out.h (columns and winners) and libc; no I/O.
 */
#ifndef GWBENCH_JSON_H
#define GWBENCH_JSON_H

#include "gwbench.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum gj_kind {
    GJ_INVALID, /* not a JSON object with a string "type" */
    GJ_HELLO,
    GJ_MESSAGE,
    GJ_PING,
    GJ_OK,
    GJ_ERROR,
    GJ_BYE,
    GJ_OTHER
};

/*
 * One session line (docs/protocol.md). Strings are borrowed from the parsed
 * tree, valid until gj_line_release; NULL when absent or not strings.
 */
struct gj_line {
    enum gj_kind kind;
    const char *op;      /* ok, error */
    const char *code;    /* error */
    const char *message; /* error */
    const char *reason;  /* bye */
    int64_t seq;         /* message: its seq; -1 when absent */
    const char *body;    /* message */
    size_t body_len;
    void *json; /* json_t *, owned */
};

/* Never fails: a line that cannot be read is GJ_INVALID. */
void gj_line_parse(const char *line, size_t len, struct gj_line *l);
void gj_line_release(struct gj_line *l);

/*
 * The fast way to read a message push: true, with its seq and body
 * (borrowed from line), when the line is a message push written the way
 * the gateway writes them and its body holds no escape; false otherwise,
 * and the caller reads the line with gj_line_parse. gwbench's own bodies
 * never need an escape, so at high rates the receivers skip jansson.
 */
bool gj_push_fast(const char *line, size_t len, int64_t *seq, const char **body, size_t *body_len);

/* A GET /v1/channels/{ch}/messages answer: {"channel","messages":[...],"next_since"}. */
struct gj_page {
    size_t n;           /* messages on the page */
    int64_t next_since; /* the cursor it gives */
    void *json;         /* json_t *, owned; NULL when read the fast way */
    struct gj_ref {
        int64_t seq;
        const char *body; /* borrowed from the page's text */
        size_t body_len;
    } * refs; /* owned: the messages, when read the fast way */
};

/*
 * 0, or -1 with the reason in err (pg is then empty). A page written the
 * way the gateway writes them, with bodies that need no escape, is read
 * without jansson; its bodies then point into (body, len), which must
 * outlive pg.
 */
int gj_page_parse(const char *body, size_t len, struct gj_page *pg, char err[GW_ERRLEN]);

/*
 * Message i of the page: its seq and body, borrowed until gj_page_release.
 * False when it lacks either.
 */
bool gj_page_msg(const struct gj_page *pg, size_t i, int64_t *seq, const char **body,
                 size_t *body_len);
void gj_page_release(struct gj_page *pg);

/*
 * A REST error body ({"error":{"code","message"}}) as "code: message" in out;
 * anything else as its first bytes, made printable.
 */
void gj_error_text(const char *body, size_t len, char *out, size_t outlen);

/*
 * The --json report: {"styles":[...], "config":{...}, "winners":{...}} and a
 * LF. Caller frees with free().
 */
char *gj_report(const struct gwbench_opts *o, const struct style_result *res, size_t n);

#endif
