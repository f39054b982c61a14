/*
 * front_sio.h - the Socket.IO front (docs/socketio.md): Engine.IO v4
 * sessions at /socket.io/, on HTTP long-polling or a WebSocket (the
 * client's upgrade from one to the other included), with the server's
 * pings; the Socket.IO v5 packets on top, each Socket.IO connection to the
 * main namespace a session of the tier in the SESSION_SOCKETIO form: an
 * event becomes the command line of the same name (its ack id the tag), and
 * the tier's lines come back as packets.
 *
 * The front never calls front_http: main hands it each polling request
 * (front_sio_poll, answered at once or later through the request's ready)
 * and each upgraded socket (front_sio_adopt), through the callbacks of
 * front_http_options. WebSocket framing is wslay's.
 *
 * Calls session, sio_proto, codec_json, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_SIO_H
#define GW_FRONT_SIO_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct sessions;
struct sio_poll;
struct front_sio;
struct input_budget;

struct front_sio_options {
    unsigned ping_interval_ms;   /* a ping this often */
    unsigned ping_timeout_ms;    /* its pong is due within this; closed without it */
    size_t max_payload;          /* bytes in a packet, a polling POST, a WebSocket message */
    unsigned max_sessions;       /* Engine.IO sessions at once */
    struct input_budget *inputs; /* --max-input-memory, for WebSocket messages; borrowed */
};

/* A front serving sessions through the tier (borrowed, as is loop; both outlive it). */
struct front_sio *front_sio_new(struct sessions *tier, struct loop *loop,
                                const struct front_sio_options *opts);

/*
 * A request to /socket.io/ (sio_poll.h). True: p's answer is set. False: p
 * is held (a poll with nothing to send yet, a POST whose packets the
 * session cannot all take yet) and answered later through p->ready, unless
 * front_sio_cancel comes first. For SIO_POLL_UPGRADE a status of 0 means
 * the WebSocket handshake may be answered and the socket adopted.
 */
bool front_sio_poll(struct front_sio *fs, struct sio_poll *p);

/* A held request ends without its answer (its client left, the HTTP front stops). */
void front_sio_cancel(struct front_sio *fs, struct sio_poll *p);

/*
 * A held request is answered now, through p->ready, as the HTTP front
 * needs its connection for another client. A poll (SIO_POLL_GET) gets
 * what there is: a noop when nothing (the client polls again). A POST
 * whose packets the session has not all taken (its client does not read
 * what they answer) gets 400 with how many were not run: they are
 * dropped, as when the session closes first, or a client that never
 * polls could hold connections for as long as its session lives. False
 * when p is no longer held.
 */
bool front_sio_answer_now(struct front_sio *fs, struct sio_poll *p);

/*
 * The answer to a request of session sid was cut before its client took
 * it (the HTTP front needed the connection): the packets in it are lost,
 * so the session cannot go on, and ends now. No such session: a no-op.
 */
void front_sio_lost(struct front_sio *fs, const char *sid, const char *why);

/*
 * Takes an upgraded connection, as front_ws_adopt: fd is the front's from
 * now on, head holds the len bytes read past the request. sid: the polling
 * session it is a probe for (the client's upgrade), or NULL for a new
 * session on the WebSocket alone.
 */
void front_sio_adopt(struct front_sio *fs, int fd, const char *head, size_t len, const char *sid);

/* Engine.IO sessions open. */
size_t front_sio_count(const struct front_sio *fs);

/*
 * WebSockets whose session is over, still reading the peer's last input
 * before they close, and polling sessions whose client has not yet polled
 * for their end (front_sio_polls_owed).
 */
size_t front_sio_lingering(const struct front_sio *fs);

/*
 * Whether a polling session's client has yet to poll for what it is owed
 * (the acks of what its session ran, the bye, the close packet): while the
 * gateway stops, the HTTP port stays open for those polls.
 */
bool front_sio_polls_owed(const struct front_sio *fs);

/* Takes no new session, and closes those that have no Socket.IO connection yet. */
void front_sio_quiesce(struct front_sio *fs);

/* Closes what is left and frees; the tier must have closed every session first. NULL is a no-op. */
void front_sio_free(struct front_sio *fs);

#endif
