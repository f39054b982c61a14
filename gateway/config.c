/*
 * config.c - settings table and parser; see config.h.
 *
 * One table drives defaults, environment, flags and --help, so a setting
 * cannot exist in one of them and be missing from another.
 */
#include "config.h"

#include "net.h"
#include "text.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

struct setting {
    const char *flag; /* without the leading "--" */
    const char *env;
    const char *def;
    const char *help;
    /* Returns 0, or -1 with the complaint about value (not naming the source). */
    int (*set)(struct gw_config *cfg, const char *value, char why[GW_ERRLEN]);
};

static int set_addr(char *dst, const char *value, char why[GW_ERRLEN])
{
    char host[NET_HOST_MAX];
    int port;

    if (strlen(value) >= CONFIG_ADDR_MAX) {
        snprintf(why, GW_ERRLEN, "address too long");
        return -1;
    }
    if (net_split_hostport(value, host, &port, why) < 0)
        return -1;
    strcpy(dst, value);
    return 0;
}

static int set_http_addr(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_addr(cfg->http_addr, value, why);
}

static int set_tcp_addr(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_addr(cfg->tcp_addr, value, why);
}

static int set_db(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    if (!*value || strlen(value) >= sizeof(cfg->db_path)) {
        snprintf(why, GW_ERRLEN, "'%s': expected a file path", value);
        return -1;
    }
    strcpy(cfg->db_path, value);
    return 0;
}

static int set_log_level(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    if (log_level_parse(value, &cfg->log_level) < 0) {
        snprintf(why, GW_ERRLEN, "'%s': expected debug, info, warn or error", value);
        return -1;
    }
    return 0;
}

static int parse_range(const char *value, uint64_t lo, uint64_t hi, uint64_t *out,
                       char why[GW_ERRLEN])
{
    if (!text_parse_u64(value, hi, out) || *out < lo) {
        snprintf(why, GW_ERRLEN, "'%s': expected a whole number from %llu to %llu", value,
                 (unsigned long long)lo, (unsigned long long)hi);
        return -1;
    }
    return 0;
}

static int set_unsigned(unsigned *dst, const char *value, uint64_t lo, uint64_t hi,
                        char why[GW_ERRLEN])
{
    uint64_t v;
    if (parse_range(value, lo, hi, &v, why) < 0)
        return -1;
    *dst = (unsigned)v;
    return 0;
}

static int set_size(size_t *dst, const char *value, uint64_t lo, uint64_t hi, char why[GW_ERRLEN])
{
    uint64_t v;
    if (parse_range(value, lo, hi, &v, why) < 0)
        return -1;
    *dst = (size_t)v;
    return 0;
}

static int set_max_body(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_size(&cfg->max_body, value, 1, 16u * 1024 * 1024, why);
}

static int set_max_connections(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->max_connections, value, 1, 1000000, why);
}

static int set_http_idle_timeout(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->http_idle_timeout, value, 1, 86400, why);
}

static int set_heartbeat(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->heartbeat, value, 1, 3600, why);
}

static int set_idle_timeout(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->idle_timeout, value, 1, 86400, why);
}

static int set_max_outbuf(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_size(&cfg->max_outbuf, value, 4096, 1024u * 1024 * 1024, why);
}

static int set_max_line(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_size(&cfg->max_line, value, 64, 16u * 1024 * 1024, why);
}

static int set_max_sessions(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->max_sessions, value, 1, 1000000, why);
}

static int set_max_subs(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    return set_unsigned(&cfg->max_subs, value, 1, 100000, why);
}

static int set_sync(struct gw_config *cfg, const char *value, char why[GW_ERRLEN])
{
    if (strcmp(value, "full") == 0)
        cfg->sync_full = true;
    else if (strcmp(value, "normal") == 0)
        cfg->sync_full = false;
    else {
        snprintf(why, GW_ERRLEN, "'%s': expected full or normal", value);
        return -1;
    }
    return 0;
}

static const struct setting settings[] = {
    {"http-addr", "VISAVIS_HTTP_ADDR", "127.0.0.1:8080", "REST API address (port 0: any free port)",
     set_http_addr},
    {"tcp-addr", "VISAVIS_TCP_ADDR", "127.0.0.1:12345",
     "TCP session address (port 0: any free port)", set_tcp_addr},
    {"db", "VISAVIS_DB", "./visavis.db", "SQLite database file, created if absent", set_db},
    {"log-level", "VISAVIS_LOG_LEVEL", "info", "debug, info (one line per request), warn, error",
     set_log_level},
    {"max-body", "VISAVIS_MAX_BODY", "65536", "largest request body in bytes (413 above)",
     set_max_body},
    {"max-connections", "VISAVIS_MAX_CONNECTIONS", "4096", "HTTP connections open at once",
     set_max_connections},
    {"http-idle-timeout", "VISAVIS_HTTP_IDLE_TIMEOUT", "60",
     "seconds an idle HTTP keep-alive connection is kept", set_http_idle_timeout},
    {"sync", "VISAVIS_SYNC", "full",
     "full: fsync at every commit (survives power loss); normal: survives a crash of the process",
     set_sync},
    {"heartbeat", "VISAVIS_HEARTBEAT", "30",
     "seconds without output after which a session is sent a ping", set_heartbeat},
    {"idle-timeout", "VISAVIS_IDLE_TIMEOUT", "90",
     "seconds: an idle unsubscribed session is closed; unacknowledged data ends a session",
     set_idle_timeout},
    {"max-outbuf", "VISAVIS_MAX_OUTBUF", "1048576",
     "bytes queued to one session before it is a slow consumer", set_max_outbuf},
    {"max-line", "VISAVIS_MAX_LINE", "65536", "longest command line in bytes", set_max_line},
    {"max-sessions", "VISAVIS_MAX_SESSIONS", "10000", "TCP sessions open at once",
     set_max_sessions},
    {"max-subs", "VISAVIS_MAX_SUBS", "64", "subscriptions per session", set_max_subs},
};

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

    if (s->set(cfg, value, reason) < 0) {
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
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        const char *v = getenv_fn ? getenv_fn(settings[i].env) : NULL;
        if (v && (err = apply(cfg, &settings[i], v, settings[i].env, why)) != GW_OK)
            return err;
    }
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
        } else if (i + 1 < argc) {
            value = argv[++i];
        } else {
            snprintf(why, GW_ERRLEN, "--%s needs a value", s->flag);
            return GW_E_CONFIG;
        }
        snprintf(source, sizeof(source), "--%s", s->flag);
        if ((err = apply(cfg, s, value, source, why)) != GW_OK)
            return err;
    }
    return GW_OK;
}

void config_usage(FILE *out, const char *prog)
{
    fprintf(out,
            "usage: %s [--option value | --option=value]...\n"
            "\n"
            "visavis gateway: one message service over a REST API and TCP sessions,\n"
            "on one SQLite store. Each option can also be set by its environment\n"
            "variable; the flag wins.\n"
            "\n",
            prog);
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        fprintf(out, "  --%-19s %s\n  %-21s env %s, default %s\n", settings[i].flag,
                settings[i].help, "", settings[i].env, settings[i].def);
    }
    fprintf(out, "  --%-19s %s\n  --%-19s %s\n", "help", "show this and exit", "version",
            "print the version and exit");
    fprintf(out, "\nOnce listening it prints 'READY http=<port> tcp=<port>' on stdout.\n");
}
