/*
 * test_client_sse.c - common/client_sse.h: a chunked stream (the gateway's)
 * and a plain one cut into the same events however the bytes arrive (split
 * at every byte boundary), the fields of an event, and every way a stream
 * is refused or ends: a non-200 answer, another content type, a bad chunk
 * size, a chunk without its CRLF, the last chunk, the server's close.
 *
 * The bytes go straight into the connection's input buffer: the decoder
 * reads only what client_conn_data hands it.
 */
#include "client_sse.h"

#include "tap.h"

#include <stdio.h>
#include <string.h>

static const char head_chunked[] = "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
                                   "Cache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n\r\n";
static const char head_plain[] =
    "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    "Connection: close\r\n\r\n";

/* Three events, as the gateway sends them: retry and hello, the SUB's reply, a message. */
static const char events[] = "retry: 2000\n: {\"type\":\"hello\"}\n\n"
                             ": {\"type\":\"ok\",\"op\":\"sub\"}\n\n"
                             "id: 7\nevent: message\ndata: {\"seq\":7,\"body\":\"hi\"}\n\n"
                             ":\n\n"
                             "data:raw\n\n";

/* The stream: head, then the events in chunks of `chunk` bytes (0: not chunked). */
static size_t make_stream(char *out, size_t cap, size_t chunk)
{
    size_t o = 0, n = strlen(events);

    if (!chunk) {
        o = (size_t)snprintf(out, cap, "%s%s", head_plain, events);
        return o;
    }
    o = (size_t)snprintf(out, cap, "%s", head_chunked);
    for (size_t i = 0; i < n; i += chunk) {
        size_t k = n - i < chunk ? n - i : chunk;
        o += (size_t)snprintf(out + o, cap - o, "%zx\r\n%.*s\r\n", k, (int)k, events + i);
    }
    return o;
}

/* Feeds (p, n) in pieces of at most `step`; collects the events as "event|id|data|comment;" */
static int feed(const char *p, size_t n, size_t step, char *got, size_t cap, bool eof,
                char err[GW_ERRLEN])
{
    struct client_conn c;
    struct client_sse s;
    struct client_sse_event ev;
    size_t o = 0;
    int rc = 0;

    client_conn_init(&c, NULL);
    client_sse_init(&s);
    got[0] = '\0';
    for (size_t i = 0; i < n && rc == 0; i += step) {
        size_t k = n - i < step ? n - i : step;
        buf_append(&c.in, p + i, k);
        if (eof && i + k >= n)
            c.eof = true;
        rc = client_sse_input(&s, &c, err);
        while (client_sse_event(&s, &ev))
            o += (size_t)snprintf(got + o, cap - o, "%.*s|%.*s|%.*s|%.*s;", (int)ev.event_len,
                                  ev.event, ev.id ? (int)ev.id_len : 1, ev.id ? ev.id : "-",
                                  ev.data ? (int)ev.data_len : 1, ev.data ? ev.data : "-",
                                  ev.comment ? (int)ev.comment_len : 1,
                                  ev.comment ? ev.comment : "-");
    }
    client_sse_release(&s);
    client_conn_release(&c);
    return rc;
}

static const char want[] = "message|-|-|{\"type\":\"hello\"};"
                           "message|-|-|{\"type\":\"ok\",\"op\":\"sub\"};"
                           "message|7|{\"seq\":7,\"body\":\"hi\"}|-;"
                           "message|-|-|;"
                           "message|-|raw|-;";

static void test_events_whatever_the_reads(void)
{
    static char stream[8192], got[4096];
    char err[GW_ERRLEN];
    size_t chunks[] = {0, 1, 5, 4096};

    for (size_t ci = 0; ci < sizeof(chunks) / sizeof(chunks[0]); ci++) {
        size_t n = make_stream(stream, sizeof(stream), chunks[ci]);
        bool same = true;
        for (size_t step = 1; step <= n && same; step++) {
            int rc = feed(stream, n, step, got, sizeof(got), false, err);
            if (rc != 0 || strcmp(got, want) != 0) {
                diag("chunks of %zu, reads of %zu: rc %d (%s), got %s", chunks[ci], step, rc,
                     rc ? err : "", got);
                same = false;
            }
        }
        ok(same, "%s stream (chunks of %zu): the same five events for reads of 1..%zu bytes",
           chunks[ci] ? "a chunked" : "a plain", chunks[ci], n);
    }
}

static void expect_failure(const char *what, const char *stream, bool eof, const char *reason)
{
    char got[1024], err[GW_ERRLEN] = "";
    int rc = feed(stream, strlen(stream), strlen(stream), got, sizeof(got), eof, err);

    ok(rc < 0 && strstr(err, reason), "%s: %s", what, err);
}

static void test_refusals_and_ends(void)
{
    char stream[1024];

    expect_failure("a 400 is quoted",
                   "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\n\r\n"
                   "{\"error\":{\"code\":\"invalid_cursor\"}}",
                   false, "answered HTTP/1.1 400 Bad Request");
    expect_failure("another content type",
                   "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n{}", false,
                   "not a text/event-stream");
    snprintf(stream, sizeof(stream), "%szz\r\nabc\r\n", head_chunked);
    expect_failure("a bad chunk size", stream, false, "bad chunk size");
    snprintf(stream, sizeof(stream), "%s3\r\nabcXY", head_chunked);
    expect_failure("a chunk without its CRLF", stream, false, "no CRLF after a chunk");
    snprintf(stream, sizeof(stream), "%s%zx\r\n%s\r\n0\r\n\r\n", head_chunked,
             strlen("event: error\ndata: {}\n\n"), "event: error\ndata: {}\n\n");
    expect_failure("the last chunk ends the stream, what was left quoted", stream, false,
                   "the server ended the stream (event: error.data: {}..)");
    snprintf(stream, sizeof(stream), "%s5\r\ndata:", head_chunked);
    expect_failure("a close mid-chunk", stream, true, "closed the stream mid-chunk");
    snprintf(stream, sizeof(stream), "%sdata: x\n\n", head_plain);
    expect_failure("a close ends a plain stream", stream, true, "the server closed the stream");
    expect_failure("a close before the head", "HTTP/1.1 200 OK\r\n", true,
                   "closed before its response head");
}

/* An event that never ends fails the stream once it is longer than a line may be. */
static void test_endless_event(void)
{
    struct client_conn c;
    struct client_sse s;
    struct client_sse_event ev;
    char err[GW_ERRLEN] = "";
    int rc = 0;

    client_conn_init(&c, NULL);
    c.line_max = 1000;
    client_sse_init(&s);
    buf_append(&c.in, head_plain, strlen(head_plain));
    buf_append(&c.in, "data: ", 6);
    for (int i = 0; i < 100 && rc == 0; i++) {
        buf_append(&c.in, "0123456789abcdefghijklmnopqrstuvwxyz\n", 37);
        rc = client_sse_input(&s, &c, err);
        while (client_sse_event(&s, &ev))
            ;
    }
    is_int(rc, -1, "an event of 3700 bytes with line_max 1000: the stream fails");
    ok(strstr(err, "more than 1000 bytes") != NULL, "and says why: %s", err);
    ok(s.text.len < 1000 + 37 * 2, "having held about line_max, not all of it: %zu", s.text.len);
    client_sse_release(&s);
    client_conn_release(&c);
}

int main(void)
{
    test_events_whatever_the_reads();
    test_refusals_and_ends();
    test_endless_event();
    return done_testing();
}
