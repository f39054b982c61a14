/*
 * front_tcp.h - the TCP session front (docs/protocol.md): accepts
 * connections, frames the bytes each sends into lines for the session tier,
 * and sends what the tier queues. The rules of a session live in session.h.
 *
 * Calls session, proto_line (framing), net, loop, log. Loop thread only.
 */
#ifndef GW_FRONT_TCP_H
#define GW_FRONT_TCP_H

#include "gw.h"

#include <stddef.h>

struct loop;
struct sessions;
struct front_tcp;
struct input_budget;

struct front_tcp_options {
    unsigned heartbeat;          /* seconds: keepalive probes start after this much silence */
    size_t max_line;             /* bytes in a command line */
    unsigned max_sessions;       /* TCP sessions at once */
    struct input_budget *inputs; /* --max-input-memory, for lines being received; borrowed */
};

/*
 * Serves sessions on listen_fd (taken), through the tier (borrowed, as is
 * loop; both must outlive the front). NULL + why on failure (listen_fd
 * closed).
 */
struct front_tcp *front_tcp_new(struct sessions *tier, struct loop *loop, int listen_fd,
                                const struct front_tcp_options *opts, char why[GW_ERRLEN]);

/* Connections whose session is over, still reading the peer's last input before they close. */
size_t front_tcp_lingering(const struct front_tcp *ft);

/* Stops accepting; the sessions themselves are stopped through the tier. */
void front_tcp_quiesce(struct front_tcp *ft);

/* Closes the listener and frees; the tier must have closed every session first. NULL is a no-op. */
void front_tcp_free(struct front_tcp *ft);

#endif
