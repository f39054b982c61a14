/*
 * client_sse.c - see client_sse.h.
 *
 * Strict where a mistake would lose the framing (the status, the chunk
 * sizes and the CRLF after each chunk), lenient elsewhere: events end at a
 * blank line ("\n\n"; the servers read here end lines with LF), unknown
 * fields are skipped.
 */
#include "client_sse.h"

#include "client_http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

void client_sse_init(struct client_sse *s)
{
    memset(s, 0, sizeof(*s));
    buf_init(&s->text);
}

void client_sse_release(struct client_sse *s)
{
    buf_release(&s->text);
    client_sse_init(s);
}

/* (p, n) for a message: printable ASCII, at most 150 bytes. */
static void quote(char *out, size_t cap, const char *p, size_t n)
{
    size_t o = 0;

    for (size_t i = 0; i < n && o + 1 < cap && i < 150; i++)
        out[o++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '.';
    out[o] = '\0';
}

/* Does the head (p, n) hold the header name (with its colon) whose value contains value? */
static bool header_has(const char *p, size_t n, const char *name, const char *value)
{
    size_t nl = strlen(name), vl = strlen(value);

    for (const char *line = p, *end = p + n; line < end;) {
        const char *eol = memchr(line, '\n', (size_t)(end - line));
        size_t len = eol ? (size_t)(eol - line) : (size_t)(end - line);
        if (len > nl && strncasecmp(line, name, nl) == 0)
            for (size_t i = nl; i + vl <= len; i++)
                if (strncasecmp(line + i, value, vl) == 0)
                    return true;
        line += len + 1;
    }
    return false;
}

/* 1: the head is in and taken; 0: more is needed; -1: refused or too long (err). */
static int take_head(struct client_sse *s, struct client_conn *c, char err[GW_ERRLEN])
{
    size_t len;
    const char *p = client_conn_data(c, &len);
    const char *end = len ? memmem(p, len, "\r\n\r\n", 4) : NULL;
    char shown[160];

    if (!end) {
        if (len <= CLIENT_HTTP_HEAD_MAX)
            return 0;
        snprintf(err, GW_ERRLEN, "an event-stream response head over %d bytes",
                 CLIENT_HTTP_HEAD_MAX);
        return -1;
    }
    size_t head = (size_t)(end - p) + 4;
    if (len < 12 || memcmp(p, "HTTP/1.1 200", 12) != 0) {
        /* A refusal is a whole answer, often a JSON error: quote it. */
        quote(shown, sizeof(shown), p, len);
        snprintf(err, GW_ERRLEN, "answered %s", shown);
        return -1;
    }
    if (!header_has(p, head, "Content-Type:", "text/event-stream")) {
        quote(shown, sizeof(shown), p, head);
        snprintf(err, GW_ERRLEN, "a response that is not a text/event-stream: %s", shown);
        return -1;
    }
    s->chunked = header_has(p, head, "Transfer-Encoding:", "chunked");
    client_conn_consume(c, head);
    s->head = true;
    return 1;
}

static int ended(struct client_sse *s, const char *how, char err[GW_ERRLEN])
{
    char shown[160];
    size_t left = s->text.len - s->text_off;

    quote(shown, sizeof(shown), s->text.data ? s->text.data + s->text_off : "", left);
    snprintf(err, GW_ERRLEN, "%s (%s)", how, shown);
    return -1;
}

/* Moves the body bytes c has to s->text. 0, or -1 when the stream ended or broke (err). */
static int take_body(struct client_sse *s, struct client_conn *c, char err[GW_ERRLEN])
{
    for (;;) {
        size_t len;
        const char *p = client_conn_data(c, &len);

        if (!s->chunked) {
            buf_append(&s->text, p, len);
            client_conn_consume(c, len);
            return c->eof ? ended(s, "the server closed the stream", err) : 0;
        }
        if (s->chunk_left) {
            size_t n = len < s->chunk_left ? len : s->chunk_left;
            if (!n)
                break;
            buf_append(&s->text, p, n);
            client_conn_consume(c, n);
            if (!(s->chunk_left -= n))
                s->chunk_crlf = true;
            continue;
        }
        if (s->chunk_crlf) {
            if (len < 2)
                break;
            if (memcmp(p, "\r\n", 2) != 0) {
                snprintf(err, GW_ERRLEN, "an event stream with no CRLF after a chunk");
                return -1;
            }
            client_conn_consume(c, 2);
            s->chunk_crlf = false;
            continue;
        }
        const char *nl = memmem(p, len, "\r\n", 2);
        if (!nl) {
            if (len > 64) {
                snprintf(err, GW_ERRLEN, "an event stream with no chunk size in 64 bytes");
                return -1;
            }
            break;
        }
        char *stop;
        unsigned long size = strtoul(p, &stop, 16);
        if (stop == p || (stop != nl && *stop != ';')) {
            snprintf(err, GW_ERRLEN, "an event stream with a bad chunk size");
            return -1;
        }
        client_conn_consume(c, (size_t)(nl - p) + 2);
        if (size == 0)
            return ended(s, "the server ended the stream", err);
        s->chunk_left = size;
    }
    return c->eof ? ended(s, "the server closed the stream mid-chunk", err) : 0;
}

int client_sse_input(struct client_sse *s, struct client_conn *c, char err[GW_ERRLEN])
{
    if (s->text_off) {
        size_t left = s->text.len - s->text_off;
        memmove(s->text.data, s->text.data + s->text_off, left);
        s->text.len = left;
        s->text.data[left] = '\0';
        s->text_off = 0;
    }
    /*
     * What is left is an event not yet ended: one longer than a line may be
     * (c->line_max) is a server gone wrong, not one to buffer without end.
     */
    if (s->text.len > c->line_max) {
        snprintf(err, GW_ERRLEN, "an event of more than %zu bytes without its end", c->line_max);
        return -1;
    }
    if (!s->head) {
        int r = take_head(s, c, err);
        if (r < 0)
            return -1;
        if (r == 0)
            return c->eof ? (snprintf(err, GW_ERRLEN, "closed before its response head"), -1) : 0;
    }
    return take_body(s, c, err);
}

/*
 * If the line (p, n) is the field name ("name:"; NULL: a comment, ":"), its
 * value: what follows the colon and one space.
 */
static bool field(const char *p, size_t n, const char *name, const char **v, size_t *vl)
{
    size_t k = name ? strlen(name) : 0;

    if (n <= k || (k && memcmp(p, name, k) != 0) || p[k] != ':')
        return false;
    k += n > k + 1 && p[k + 1] == ' ' ? 2 : 1;
    *v = p + k;
    *vl = n - k;
    return true;
}

bool client_sse_event(struct client_sse *s, struct client_sse_event *ev)
{
    char *p = s->text.data ? s->text.data + s->text_off : NULL;
    size_t left = s->text.len - s->text_off;
    char *end = left >= 2 ? memmem(p, left, "\n\n", 2) : NULL;

    if (!end)
        return false;
    memset(ev, 0, sizeof(*ev));
    ev->event = "message";
    ev->event_len = 7;
    for (char *line = p; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        size_t n = nl ? (size_t)(nl - line) : (size_t)(end - line);
        if (n && line[0] == ':') {
            field(line, n, 0, &ev->comment, &ev->comment_len);
        } else if (!field(line, n, "data", &ev->data, &ev->data_len) &&
                   !field(line, n, "event", &ev->event, &ev->event_len)) {
            field(line, n, "id", &ev->id, &ev->id_len);
        }
        line += n + 1;
    }
    s->text_off = (size_t)(end + 2 - s->text.data);
    return true;
}
