/*
 * config.h - every setting of the gateway, from defaults, environment and
 * flags (a flag wins over its variable), validated into one immutable struct.
 *
 * Depends on gw.h, log.h (for the level type), net.h (address syntax). Pure
 * apart from printing usage: the environment comes in as a lookup function so
 * tests can supply their own.
 */
#ifndef GW_CONFIG_H
#define GW_CONFIG_H

#include "gw.h"
#include "log.h"
#include "model.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_ADDR_MAX    300
#define CONFIG_ORIGINS_MAX 1024

struct gw_config {
    char http_addr[CONFIG_ADDR_MAX];
    char tcp_addr[CONFIG_ADDR_MAX];
    char udp_addr[CONFIG_ADDR_MAX]; /* "": no UDP front */
    char db_path[PATH_MAX];
    enum log_level log_level;
    size_t max_body;            /* bytes in one request body */
    unsigned max_connections;   /* HTTP connections at once */
    unsigned http_idle_timeout; /* seconds an idle keep-alive connection is kept */
    bool sync_full;             /* fsync the WAL at every commit */
    unsigned heartbeat;         /* seconds of silence before a session gets a ping */
    unsigned idle_timeout;      /* seconds: idle session, unacknowledged data */
    size_t max_outbuf;          /* bytes queued to one session at most */
    size_t max_line;            /* bytes in one command line */
    unsigned max_sessions;      /* TCP sessions at once */
    unsigned max_subs;          /* subscriptions per session */
    size_t page_bytes;          /* encoded bytes of messages in one history or replay page */
    size_t max_reply_memory;    /* bytes of page replies all readers together may hold unread */
    size_t max_input_memory;    /* bytes of bodies and lines being received, all clients */
    bool trace;                 /* log every socket step */
    char udp_channel[GW_CHANNEL_MAX + 1]; /* where a datagram that is not a command goes */
    size_t max_datagram;                  /* bytes in one UDP datagram */
    unsigned udp_rate;                    /* datagrams per second per source address; 0: no limit */
    unsigned udp_burst;                   /* datagrams a source may send at once */

    char http_hosts[CONFIG_ORIGINS_MAX]; /* Host names answered besides the built-in ones */

    /* WebSocket (docs/websocket.md) */
    char ws_origins[CONFIG_ORIGINS_MAX]; /* Origins whose pages may use the gateway; "": the
                                            request's host */
    unsigned max_ws_sessions;            /* WebSocket sessions at once */

    /* Server-Sent Events (docs/sse.md) */
    unsigned max_sse_streams; /* streams at once */

    /* Socket.IO (docs/socketio.md) */
    unsigned max_sio_sessions; /* Engine.IO sessions at once */
    unsigned sio_ping_timeout; /* seconds to answer a ping */

    /* How long an HTTP request may take to arrive (docs/api.md) */
    unsigned http_header_timeout; /* seconds from its first byte to its whole head */
    unsigned http_body_timeout;   /* seconds any body may take */
    unsigned http_body_rate;      /* bytes/s a larger body must keep up */

    uint64_t given; /* settings given by flag or environment, a bit each (config_given) */
};

enum config_action { CONFIG_RUN, CONFIG_HELP, CONFIG_VERSION };

/* Returns the value of an environment variable, or NULL. */
typedef const char *config_getenv_fn(const char *name);

/*
 * Fills *cfg from defaults, then env, then argv[1..argc-1] ("--name value" or
 * "--name=value"). Returns GW_OK and sets *action, or GW_E_CONFIG with the
 * reason (naming the flag or variable) in why.
 */
enum gw_err config_parse(struct gw_config *cfg, int argc, char *const argv[],
                         config_getenv_fn *getenv_fn, enum config_action *action,
                         char why[GW_ERRLEN]);

/* Every setting with its flag, variable and default. */
void config_usage(FILE *out, const char *prog);

/* Whether the setting of this flag (without "--") was given, not its default. */
bool config_given(const struct gw_config *cfg, const char *flag);

#endif
