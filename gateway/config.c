/*
 * config.c - settings table and parser; see config.h.
 *
 * One table drives defaults, environment, flags and --help, so a setting
 * cannot exist in one of them and be missing from another.
 */
#include "config.h"

#include "net.h"
#include "origin.h"
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <stddef.h>

enum setting_kind {
    K_ADDR,      /* char[CONFIG_ADDR_MAX], "host:port" */
    K_ADDR_OFF,  /* the same, or "" for off */
    K_CHANNEL,   /* char[GW_CHANNEL_MAX + 1], a channel a message may be published to */
    K_PATH,      /* char[PATH_MAX] */
    K_LOG_LEVEL, /* enum log_level */
    K_SYNC,      /* bool: "full" or "normal" */
    K_BOOL,      /* bool: on/off; the flag alone means on */
    K_UNSIGNED,  /* unsigned in [lo, hi] */
    K_SIZE,      /* size_t in [lo, hi] */
    K_ORIGINS,   /* char[CONFIG_ORIGINS_MAX]: "", "*" or a comma-separated list of page origins */
    K_HOSTS      /* the same size: "", "*" or a comma-separated list of host names */
};

/* A setting is a row: where it lives in struct gw_config and how it is read. */
struct setting {
    const char *flag; /* without the leading "--" */
    const char *env;
    const char *def;
    const char *help;
    enum setting_kind kind;
    size_t offset;
    uint64_t lo, hi;
};

#define AT(field) offsetof(struct gw_config, field)

static const struct setting settings[] = {
    {"http-addr", "VISAVIS_HTTP_ADDR", "127.0.0.1:8080", "REST API address (port 0: any free port)",
     K_ADDR, AT(http_addr), 0, 0},
    {"tcp-addr", "VISAVIS_TCP_ADDR", "127.0.0.1:12345",
     "TCP session address (port 0: any free port)", K_ADDR, AT(tcp_addr), 0, 0},
    {"udp-addr", "VISAVIS_UDP_ADDR", "127.0.0.1:12345",
     "UDP datagram address (port 0: any free port; empty: no UDP)", K_ADDR_OFF, AT(udp_addr), 0, 0},
    {"udp-channel", "VISAVIS_UDP_CHANNEL", "udp",
     "channel a UDP datagram that is not a command is published on", K_CHANNEL, AT(udp_channel), 0,
     0},
    {"max-datagram", "VISAVIS_MAX_DATAGRAM", "1400",
     "largest UDP datagram in bytes (larger ones are dropped)", K_SIZE, AT(max_datagram), 64,
     65507},
    {"udp-rate", "VISAVIS_UDP_RATE", "1000",
     "UDP datagrams per second from one source address (0: no limit)", K_UNSIGNED, AT(udp_rate), 0,
     10000000},
    {"udp-burst", "VISAVIS_UDP_BURST", "1000",
     "UDP datagrams one source address may send at once, above --udp-rate", K_UNSIGNED,
     AT(udp_burst), 1, 10000000},
    {"db", "VISAVIS_DB", "./visavis.db",
     "SQLite file (created if absent), or a PostgreSQL URL or 'host=... dbname=...'", K_PATH,
     AT(db_path), 0, 0},
    {"log-level", "VISAVIS_LOG_LEVEL", "info", "debug, info (one line per request), warn, error",
     K_LOG_LEVEL, AT(log_level), 0, 0},
    {"max-body", "VISAVIS_MAX_BODY", "65536", "largest request body in bytes (413 above)", K_SIZE,
     AT(max_body), 1, 16u * 1024 * 1024},
    {"max-connections", "VISAVIS_MAX_CONNECTIONS", "4096", "HTTP connections open at once",
     K_UNSIGNED, AT(max_connections), 1, 1000000},
    {"http-idle-timeout", "VISAVIS_HTTP_IDLE_TIMEOUT", "60",
     "seconds an idle HTTP keep-alive connection is kept", K_UNSIGNED, AT(http_idle_timeout), 1,
     86400},
    {"http-header-timeout", "VISAVIS_HTTP_HEADER_TIMEOUT", "10",
     "seconds a request's head may take from its first byte (408 and close after)", K_UNSIGNED,
     AT(http_header_timeout), 1, 3600},
    {"http-body-timeout", "VISAVIS_HTTP_BODY_TIMEOUT", "10",
     "seconds any request body may take; a larger one gets longer at --http-body-rate", K_UNSIGNED,
     AT(http_body_timeout), 1, 86400},
    {"http-hosts", "VISAVIS_HTTP_HOSTS", "",
     "host names the HTTP port answers to besides IP addresses, localhost and names without a "
     "dot (others, such as a web page's DNS name pointed at this machine: 403): comma-separated, "
     "* for any",
     K_HOSTS, AT(http_hosts), 0, 0},
    {"http-body-rate", "VISAVIS_HTTP_BODY_RATE", "4096",
     "bytes per second a large request body must arrive at (408 and close below)", K_UNSIGNED,
     AT(http_body_rate), 1, 1u << 30},
    {"sync", "VISAVIS_SYNC", "full",
     "full: fsync at every commit (survives power loss); normal: survives a crash of the process "
     "(SQLite; on PostgreSQL the server's synchronous_commit decides)",
     K_SYNC, AT(sync_full), 0, 0},
    {"heartbeat", "VISAVIS_HEARTBEAT", "30",
     "seconds without output after which a session is sent a ping", K_UNSIGNED, AT(heartbeat), 1,
     3600},
    {"idle-timeout", "VISAVIS_IDLE_TIMEOUT", "3600",
     "seconds without a command after which an unsubscribed session is closed", K_UNSIGNED,
     AT(idle_timeout), 1, 86400},
    {"max-outbuf", "VISAVIS_MAX_OUTBUF", "1048576",
     "bytes queued to one session before it is a slow consumer", K_SIZE, AT(max_outbuf), 4096,
     1024u * 1024 * 1024},
    {"max-line", "VISAVIS_MAX_LINE", "65536", "longest command line in bytes", K_SIZE, AT(max_line),
     64, 16u * 1024 * 1024},
    {"max-sessions", "VISAVIS_MAX_SESSIONS", "10000", "TCP sessions open at once", K_UNSIGNED,
     AT(max_sessions), 1, 1000000},
    {"max-subs", "VISAVIS_MAX_SUBS", "64", "subscriptions per session", K_UNSIGNED, AT(max_subs), 1,
     100000},
    {"page-bytes", "VISAVIS_PAGE_BYTES", "1048576",
     "bytes of messages (as JSON) in one history page or replay step; a page holds at least one",
     K_SIZE, AT(page_bytes), 1024, 64u * 1024 * 1024},
    {"max-reply-memory", "VISAVIS_MAX_REPLY_MEMORY", "536870912",
     "bytes of history pages and channel lists (HIST, CHANNELS, GET .../messages) all readers "
     "together may hold unread; past it one more is answered busy (an address holding a page: "
     "3/4 of it)",
     K_SIZE, AT(max_reply_memory), 4096, (size_t)1 << 40},
    {"max-input-memory", "VISAVIS_MAX_INPUT_MEMORY", "536870912",
     "bytes of request bodies and command lines all clients together may have part-sent, past "
     "the first 64 KiB of each; past it one more is refused busy and dropped",
     K_SIZE, AT(max_input_memory), 1024 * 1024, (size_t)1 << 40},
    {"trace", "VISAVIS_TRACE", "off",
     "log every socket step: bind, listen, accept, recv, send, close (--trace alone: on)", K_BOOL,
     AT(trace), 0, 0},
    {"ws-origins", "VISAVIS_WS_ORIGINS", "",
     "Origins whose browser pages may use the gateway (/v1/ws, REST, SSE, Socket.IO; others: "
     "403): comma-separated (http://host:port), * for any; empty: the request's own host. "
     "Clients that send no Origin are always let in",
     K_ORIGINS, AT(ws_origins), 0, 0},
    {"max-ws-sessions", "VISAVIS_MAX_WS_SESSIONS", "10000", "WebSocket sessions open at once",
     K_UNSIGNED, AT(max_ws_sessions), 1, 1000000},
    {"max-sse-streams", "VISAVIS_MAX_SSE_STREAMS", "10000",
     "Server-Sent Events streams open at once", K_UNSIGNED, AT(max_sse_streams), 1, 1000000},
    {"max-sio-sessions", "VISAVIS_MAX_SIO_SESSIONS", "10000",
     "Socket.IO (Engine.IO) sessions open at once", K_UNSIGNED, AT(max_sio_sessions), 1, 1000000},
    {"sio-ping-timeout", "VISAVIS_SIO_PING_TIMEOUT", "20",
     "seconds a Socket.IO client has to answer a ping (sent every --heartbeat seconds)", K_UNSIGNED,
     AT(sio_ping_timeout), 1, 3600},
};
/* One bit of gw_config.given each. */
_Static_assert(GW_ARRAY_SIZE(settings) <= 64, "more settings than bits in given");

/* Parses value into the field s describes. Returns 0, or -1 with the complaint in why. */
static int set(struct gw_config *cfg, const struct setting *s, const char *value,
               char why[GW_ERRLEN])
{
    char *field = (char *)cfg + s->offset;
    char host[NET_HOST_MAX];
    uint64_t v;
    int port;

    switch (s->kind) {
    case K_ADDR_OFF:
        if (!*value) {
            *field = '\0';
            return 0;
        }
        /* fall through */
    case K_ADDR:
        if (strlen(value) >= CONFIG_ADDR_MAX) {
            snprintf(why, GW_ERRLEN, "address too long");
            return -1;
        }
        if (net_split_hostport(value, host, &port, why) < 0)
            return -1;
        strcpy(field, value);
        return 0;
    case K_CHANNEL:
        if (!text_channel_valid(value, strlen(value))) {
            snprintf(why, GW_ERRLEN, "'%.80s': a channel name matches [A-Za-z0-9._-]{1,%d}", value,
                     GW_CHANNEL_MAX);
            return -1;
        }
        if (text_channel_dots(value, strlen(value))) {
            snprintf(why, GW_ERRLEN,
                     "'%s': no URL can name this channel, so none is published to it", value);
            return -1;
        }
        strcpy(field, value);
        return 0;
    case K_PATH:
        if (!*value || strlen(value) >= PATH_MAX) {
            snprintf(why, GW_ERRLEN, "'%s': expected a file path", value);
            return -1;
        }
        strcpy(field, value);
        return 0;
    case K_ORIGINS:
    case K_HOSTS:
        if (strlen(value) >= CONFIG_ORIGINS_MAX) {
            snprintf(why, GW_ERRLEN, "at most %d bytes", CONFIG_ORIGINS_MAX - 1);
            return -1;
        }
        for (const char *p = value; *p; p++) {
            if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f) {
                snprintf(why, GW_ERRLEN,
                         "'%.100s': a comma-separated list in ASCII, without spaces", value);
                return -1;
            }
        }
        /* An entry that can never match would refuse every page or name, unexplained. */
        if (!(s->kind == K_ORIGINS ? origin_list_valid : host_list_valid)(value, why, GW_ERRLEN))
            return -1;
        strcpy(field, value);
        return 0;
    case K_LOG_LEVEL:
        if (log_level_parse(value, (enum log_level *)(void *)field) < 0) {
            snprintf(why, GW_ERRLEN, "'%s': expected debug, info, warn or error", value);
            return -1;
        }
        return 0;
    case K_SYNC:
        if (strcmp(value, "full") != 0 && strcmp(value, "normal") != 0) {
            snprintf(why, GW_ERRLEN, "'%s': expected full or normal", value);
            return -1;
        }
        *(bool *)(void *)field = strcmp(value, "full") == 0;
        return 0;
    case K_BOOL:
        if (strcmp(value, "on") == 0 || strcmp(value, "true") == 0 || strcmp(value, "1") == 0 ||
            strcmp(value, "yes") == 0) {
            *(bool *)(void *)field = true;
        } else if (strcmp(value, "off") == 0 || strcmp(value, "false") == 0 ||
                   strcmp(value, "0") == 0 || strcmp(value, "no") == 0) {
            *(bool *)(void *)field = false;
        } else {
            snprintf(why, GW_ERRLEN, "'%s': expected on or off", value);
            return -1;
        }
        return 0;
    case K_UNSIGNED:
    case K_SIZE:
        if (!text_parse_u64(value, s->hi, &v) || v < s->lo) {
            snprintf(why, GW_ERRLEN, "'%s': expected a whole number from %llu to %llu", value,
                     (unsigned long long)s->lo, (unsigned long long)s->hi);
            return -1;
        }
        if (s->kind == K_SIZE)
            *(size_t *)(void *)field = (size_t)v;
        else
            *(unsigned *)(void *)field = (unsigned)v;
        return 0;
    }
    return -1;
}

static const struct setting *find_setting(const char *flag, size_t len)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        if (strlen(settings[i].flag) == len && strncmp(settings[i].flag, flag, len) == 0)
            return &settings[i];
    }
    return NULL;
}

static enum gw_err apply(struct gw_config *cfg, const struct setting *s, const char *value,
                         const char *source, char why[GW_ERRLEN])
{
    char reason[GW_ERRLEN];

    if (set(cfg, s, value, reason) < 0) {
        snprintf(why, GW_ERRLEN, "%.60s: %.190s", source, reason);
        return GW_E_CONFIG;
    }
    return GW_OK;
}

enum gw_err config_parse(struct gw_config *cfg, int argc, char *const argv[],
                         config_getenv_fn *getenv_fn, enum config_action *action,
                         char why[GW_ERRLEN])
{
    enum gw_err err;
    char source[GW_ERRLEN];

    memset(cfg, 0, sizeof(*cfg));
    *action = CONFIG_RUN;
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        err = apply(cfg, &settings[i], settings[i].def, "default", why);
        GW_ASSERT(err == GW_OK);
    }
    /*
     * The flags first, then the environment for what no flag set: a flag
     * wins, so a bad variable it overrides (or --help) must not stop the
     * start.
     */
    bool by_flag[GW_ARRAY_SIZE(settings)] = {false};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i], *eq, *value;
        const struct setting *s;
        size_t namelen;

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            *action = CONFIG_HELP;
            return GW_OK;
        }
        if (strcmp(arg, "--version") == 0) {
            *action = CONFIG_VERSION;
            return GW_OK;
        }
        if (strncmp(arg, "--", 2) != 0) {
            snprintf(why, GW_ERRLEN, "unexpected argument '%s' (see --help)", arg);
            return GW_E_CONFIG;
        }
        eq = strchr(arg + 2, '=');
        namelen = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        s = find_setting(arg + 2, namelen);
        if (!s) {
            snprintf(why, GW_ERRLEN, "unknown option '%.*s' (see --help)", (int)namelen + 2, arg);
            return GW_E_CONFIG;
        }
        if (eq) {
            value = eq + 1;
        } else if (s->kind == K_BOOL) {
            /* A switch: the next word is its value only when it is one. */
            if (i + 1 < argc && (strcmp(argv[i + 1], "on") == 0 || strcmp(argv[i + 1], "off") == 0))
                value = argv[++i];
            else
                value = "on";
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(why, GW_ERRLEN, "--%s needs a value", s->flag);
            return GW_E_CONFIG;
        }
        snprintf(source, sizeof(source), "--%s", s->flag);
        if ((err = apply(cfg, s, value, source, why)) != GW_OK)
            return err;
        by_flag[s - settings] = true;
        cfg->given |= UINT64_C(1) << (s - settings);
    }
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        const char *v = getenv_fn && !by_flag[i] ? getenv_fn(settings[i].env) : NULL;
        if (v && (err = apply(cfg, &settings[i], v, settings[i].env, why)) != GW_OK)
            return err;
        if (v)
            cfg->given |= UINT64_C(1) << i;
    }
    /*
     * A read reserves its page's bound (--page-bytes, or one message of
     * --max-body if larger) in --max-reply-memory: a bound that holds fewer
     * than two would answer busy whenever two reads meet.
     */
    size_t one = cfg->max_body + GW_SENDER_MAX > cfg->page_bytes ? cfg->max_body + GW_SENDER_MAX
                                                                 : cfg->page_bytes;
    if (cfg->max_reply_memory < 2 * one) {
        snprintf(why, GW_ERRLEN,
                 "--max-reply-memory %zu holds fewer than two reads: each reserves %zu bytes (the "
                 "larger of --page-bytes and --max-body); set it to %zu or more",
                 cfg->max_reply_memory, one, 2 * one);
        return GW_E_CONFIG;
    }
    return GW_OK;
}

bool config_given(const struct gw_config *cfg, const char *flag)
{
    const struct setting *s = find_setting(flag, strlen(flag));
    return s && (cfg->given >> (s - settings) & 1);
}

void config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--option value | --option=value]...\n"
            "\n"
            "visavis gateway: one message service over a REST API, TCP sessions,\n"
            "WebSocket, Server-Sent Events and UDP datagrams, on one store (SQLite,\n"
            "or PostgreSQL shared by several gateways). Each option can also be set\n"
            "by its environment variable; the flag wins.\n"
            "\n",
            prog);
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        fprintf(out, "  --%-19s %s\n  %-21s env %s, default %s\n", settings[i].flag,
                settings[i].help, "", settings[i].env,
                settings[i].def[0] ? settings[i].def : "(empty)");
    }
    fprintf(out, "  --%-19s %s\n  --%-19s %s\n", "help", "show this and exit", "version",
            "print the version and exit");
    fprintf(out, "\nOnce listening it prints 'READY http=<port> tcp=<port> udp=<port>' on stdout\n"
                 "(without udp= when UDP is off).\n");
}
