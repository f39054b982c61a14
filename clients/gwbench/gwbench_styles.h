/*
 * gwbench_styles.h - the interaction styles gwbench compares, as one table,
 * and the workload that plays one of them.
 *
 * A style is a row of gwbench_styles[] (gwbench_styles.c): its name, a line
 * for --help, whether it publishes or delivers, the client that plays it (a
 * role), the fronts it needs, and what it takes from the options. Everything
 * else (the option that picks styles, --help, the table, the chart, the
 * reports) reads the table. Adding a style that talks the way an existing
 * role does is adding a row; a new way of talking (WebSocket, SSE, UDP, …)
 * is a row and a role: the code of that client in gwbench_styles.c.
 *
 * Depends on gwbench_types.h and common/ (client_conn, server_line, hist).
 */
#ifndef GWBENCH_STYLES_H
#define GWBENCH_STYLES_H

#include "gwbench_types.h"

#include <stdbool.h>
#include <stddef.h>

enum style_kind {
    STYLE_PUBLISH, /* --connections clients publish; latency publish -> ack; msgs/s is a capacity */
    STYLE_DELIVERY, /* one publisher at a fixed rate, --connections receivers; latency publish ->
                       received; msgs/s is the offered rate, not a capacity */
    STYLE_ROUNDTRIP /* --connections clients PING; latency PING -> pong; nothing is stored */
};
#define STYLE__KINDS 3

/* "publish", "delivery", "roundtrip": the kind in --json and --csv. */
const char *gwbench_kind_name(enum style_kind kind);

/* The client that plays a style: the code that talks to the gateway. */
enum style_role {
    ROLE_REST_CLOSE, /* POST with Connection: close, a new connection each */
    ROLE_REST_KEEP,  /* POST on a kept-alive connection, one in flight */
    ROLE_TCP,        /* PUB on a session, up to the style's window in flight */
    ROLE_SUB,        /* a session subscribed: the gateway pushes */
    ROLE_SSE,        /* GET .../events: a Server-Sent Events stream the gateway pushes on */
    ROLE_POLL,       /* GET ...?since=N, again after each answer (wait= or an interval) */
    ROLE_WS,         /* PUB in text messages on a WebSocket, one in flight */
    ROLE_WS_SUB,     /* a WebSocket subscribed: the gateway pushes */
    ROLE_SIO_SUB,    /* a Socket.IO client (WebSocket transport) subscribed: the gateway pushes */
    ROLE_PUBLISHER,  /* never a style's: the delivery styles' publisher, PUBs on a schedule */
    ROLE_UDP,        /* PUB datagrams, fire and forget; what was stored is read back over REST */
    ROLE_TCP_PING,   /* PING on a session, one in flight */
    ROLE_UDP_PING    /* PING datagrams, one in flight per socket; a pong not back in time is lost */
};

struct style_info {
    const char *name; /* on the command line and in every output */
    const char *help; /* one line for --help: what it does on the wire */
    enum style_kind kind;
    enum style_role role;
    bool http;      /* needs the REST front (WebSockets open there too) */
    bool tcp;       /* needs the session front (every delivery style's publisher does) */
    bool udp;       /* needs the UDP front */
    bool pipelined; /* ROLE_TCP: --window PUBs in flight, not one */
    int wait_s;     /* ROLE_POLL: the GET's wait= (a long-poll); 0: every --poll-interval */
};

/* The styles, in the order they run and are shown. */
extern const struct style_info gwbench_styles[];
extern const size_t gwbench_nstyles;

/* The index of the style named (name, len), or -1. */
int gwbench_style_find(const char *name, size_t len);

/* True for a style that polls (counts polls, and empty ones). */
bool gwbench_style_polls(const struct style_info *si);

/*
 * Runs style id once against the gateway, on channel (which nothing else
 * uses), and fills *res. Returns 0, or -1 when the style failed
 * (res->failed, res->error set).
 */
int gwbench_style_run(const struct gwbench_opts *o, size_t id, const char *channel,
                      struct style_result *res);

#endif
