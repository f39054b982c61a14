/*
 * front_sse.h - the Server-Sent Events front (docs/sse.md): serves the
 * streams front_http accepted on GET /v1/channels/{ch}/events. front_http
 * judges the request (channel, cursor), then hands the connection over;
 * from there the stream is a session of the tier in the SESSION_SSE form on
 * a socket of this front's own, so an open stream costs a session and a
 * socket, not an HTTP connection and its buffers.
 *
 * The front never calls front_http: main hands it each stream
 * (front_sse_adopt) and asks it whether there is room for one more
 * (front_sse_has_room), through the callbacks of front_http_options.
 *
 * Calls session, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_SSE_H
#define GW_FRONT_SSE_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct sessions;
struct front_sse;

struct front_sse_options {
    unsigned heartbeat;   /* seconds: the tier's comment after this much silence */
    unsigned max_streams; /* streams open at once */
};

/* A front serving streams through the tier (borrowed, as is loop; both outlive it). */
struct front_sse *front_sse_new(struct sessions *tier, struct loop *loop,
                                const struct front_sse_options *opts);

/*
 * Whether one more stream may open now for a client at peer ("ip:port"):
 * not stopping, and below max_streams or at it with a stream of another
 * address to give way (sessions_make_room).
 */
bool front_sse_has_room(const struct front_sse *fs, const char *peer);

/*
 * Takes a connection whose request was judged: fd is the front's from now
 * on (it closes it). The response head goes out at once (chunked for an
 * HTTP/1.1 request, to the connection's close for HTTP/1.0; the connection
 * ends with the stream either way), then a session opens and is given sub,
 * its SUB line of len bytes. Past max_streams, or while stopping, the
 * connection is closed instead.
 */
void front_sse_adopt(struct front_sse *fs, int fd, bool http11, const char *sub, size_t len);

/* Streams open on this front. */
size_t front_sse_count(const struct front_sse *fs);

/* Connections whose stream is over, still reading the peer's last input before they close. */
size_t front_sse_lingering(const struct front_sse *fs);

/* Stops taking streams; the sessions themselves are stopped through the tier. */
void front_sse_quiesce(struct front_sse *fs);

/* Closes what is left and frees; the tier must have closed every session first. NULL is a no-op. */
void front_sse_free(struct front_sse *fs);

#endif
