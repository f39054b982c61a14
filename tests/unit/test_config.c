/*
 * test_config.c - gateway/config.h: defaults, environment, flags, errors.
 *
 * The environment comes from a small table through a static lookup
 * function, never from the process environment.
 */
#include "config.h"

#include "tap.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct env_var {
    const char *name;
    const char *value;
};

static const struct env_var *cur_env;

static const char *fake_getenv(const char *name)
{
    for (const struct env_var *e = cur_env; e && e->name; e++) {
        if (strcmp(e->name, name) == 0)
            return e->value;
    }
    return NULL;
}

#define MAX_ARGS 16

/*
 * Runs config_parse over a NULL-terminated list of flags and an env table.
 * Not inlined: gcc 12 with UBSan at -O3 unrolls the copy loop into each
 * caller's array literal and warns (-Warray-bounds) about the iterations
 * the NULL end never lets run.
 */
__attribute__((noinline)) static enum gw_err parse(struct gw_config *cfg, const struct env_var *env,
                                                   const char *const *args,
                                                   enum config_action *action, char why[GW_ERRLEN])
{
    char *argv[MAX_ARGS + 2];
    int argc = 0;

    argv[argc++] = (char *)"gateway";
    for (; args && *args; args++) {
        if (argc > MAX_ARGS)
            bail_out("too many arguments in a test row");
        argv[argc++] = (char *)*args;
    }
    argv[argc] = NULL;
    cur_env = env;
    why[0] = '\0';
    return config_parse(cfg, argc, argv, fake_getenv, action, why);
}

#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})
#define NO_ARGS   ((const char *const[]){NULL})
#define ENV(...)  ((const struct env_var[]){__VA_ARGS__, {NULL, NULL}})
#define NO_ENV    ((const struct env_var[]){{NULL, NULL}})

static void test_defaults(void)
{
    struct gw_config cfg;
    enum config_action action = CONFIG_HELP;
    char why[GW_ERRLEN];

    memset(&cfg, 0xa5, sizeof(cfg));
    is_int(parse(&cfg, NO_ENV, NO_ARGS, &action, why), GW_OK, "defaults: no env, no flags");
    is_int(action, CONFIG_RUN, "defaults: action is run");
    is_str(cfg.http_addr, "127.0.0.1:8080", "defaults: http_addr");
    is_str(cfg.tcp_addr, "127.0.0.1:12345", "defaults: tcp_addr");
    is_str(cfg.udp_addr, "127.0.0.1:12345", "defaults: udp_addr, the TCP port's number");
    is_str(cfg.udp_channel, "udp", "defaults: udp_channel");
    is_uint(cfg.max_datagram, 1400, "defaults: max_datagram");
    is_uint(cfg.udp_rate, 1000, "defaults: udp_rate");
    is_uint(cfg.udp_burst, 1000, "defaults: udp_burst");
    is_str(cfg.db_path, "./visavis.db", "defaults: db_path");
    is_int(cfg.log_level, GW_LOG_INFO, "defaults: log_level info");
    is_uint(cfg.max_body, 65536, "defaults: max_body 64 KiB");
    is_uint(cfg.max_connections, 4096, "defaults: max_connections");
    is_uint(cfg.http_idle_timeout, 60, "defaults: http_idle_timeout");
    is_uint(cfg.http_header_timeout, 10, "defaults: http_header_timeout");
    is_uint(cfg.http_body_timeout, 10, "defaults: http_body_timeout");
    is_uint(cfg.http_body_rate, 4096, "defaults: http_body_rate");
    ok(cfg.sync_full, "defaults: sync full");
}

struct setting_case {
    const char *flag; /* without "--" */
    const char *env;
    const char *value_env;  /* set through the environment */
    const char *value_flag; /* then through the flag, which must win */
};

/* Reads back the field a setting controls, as text, for comparison. */
static void field(const struct gw_config *cfg, const char *flag, char out[64])
{
    if (strcmp(flag, "http-addr") == 0)
        snprintf(out, 64, "%.63s", cfg->http_addr);
    else if (strcmp(flag, "tcp-addr") == 0)
        snprintf(out, 64, "%.63s", cfg->tcp_addr);
    else if (strcmp(flag, "udp-addr") == 0)
        snprintf(out, 64, "%.63s", cfg->udp_addr);
    else if (strcmp(flag, "udp-channel") == 0)
        snprintf(out, 64, "%.63s", cfg->udp_channel);
    else if (strcmp(flag, "ws-origins") == 0)
        snprintf(out, 64, "%.63s", cfg->ws_origins);
    else if (strcmp(flag, "http-hosts") == 0)
        snprintf(out, 64, "%.63s", cfg->http_hosts);
    else if (strcmp(flag, "max-datagram") == 0)
        snprintf(out, 64, "%zu", cfg->max_datagram);
    else if (strcmp(flag, "udp-rate") == 0)
        snprintf(out, 64, "%u", cfg->udp_rate);
    else if (strcmp(flag, "udp-burst") == 0)
        snprintf(out, 64, "%u", cfg->udp_burst);
    else if (strcmp(flag, "db") == 0)
        snprintf(out, 64, "%.63s", cfg->db_path);
    else if (strcmp(flag, "log-level") == 0)
        snprintf(out, 64, "%s", log_level_name(cfg->log_level));
    else if (strcmp(flag, "max-body") == 0)
        snprintf(out, 64, "%zu", cfg->max_body);
    else if (strcmp(flag, "max-connections") == 0)
        snprintf(out, 64, "%u", cfg->max_connections);
    else if (strcmp(flag, "http-idle-timeout") == 0)
        snprintf(out, 64, "%u", cfg->http_idle_timeout);
    else if (strcmp(flag, "http-header-timeout") == 0)
        snprintf(out, 64, "%u", cfg->http_header_timeout);
    else if (strcmp(flag, "http-body-timeout") == 0)
        snprintf(out, 64, "%u", cfg->http_body_timeout);
    else if (strcmp(flag, "http-body-rate") == 0)
        snprintf(out, 64, "%u", cfg->http_body_rate);
    else if (strcmp(flag, "sync") == 0)
        snprintf(out, 64, "%.63s", cfg->sync_full ? "full" : "normal");
    else if (strcmp(flag, "heartbeat") == 0)
        snprintf(out, 64, "%u", cfg->heartbeat);
    else if (strcmp(flag, "idle-timeout") == 0)
        snprintf(out, 64, "%u", cfg->idle_timeout);
    else if (strcmp(flag, "max-outbuf") == 0)
        snprintf(out, 64, "%zu", cfg->max_outbuf);
    else if (strcmp(flag, "max-line") == 0)
        snprintf(out, 64, "%zu", cfg->max_line);
    else if (strcmp(flag, "max-sessions") == 0)
        snprintf(out, 64, "%u", cfg->max_sessions);
    else if (strcmp(flag, "max-subs") == 0)
        snprintf(out, 64, "%u", cfg->max_subs);
    else
        snprintf(out, 64, "?");
}

static const struct setting_case settings[] = {
    {"http-addr", "VISAVIS_HTTP_ADDR", "0.0.0.0:80", "localhost:0"},
    {"tcp-addr", "VISAVIS_TCP_ADDR", "10.0.0.1:9000", "[::1]:0"},
    /* UDP: an empty address is off, either way round. */
    {"udp-addr", "VISAVIS_UDP_ADDR", "", "[::1]:0"},
    {"udp-addr", "VISAVIS_UDP_ADDR", "0.0.0.0:9999", ""},
    {"udp-channel", "VISAVIS_UDP_CHANNEL", "a.b_c-D9", "x"},
    {"max-datagram", "VISAVIS_MAX_DATAGRAM", "64", "65507"},
    {"udp-rate", "VISAVIS_UDP_RATE", "0", "10000000"},
    {"udp-burst", "VISAVIS_UDP_BURST", "10000000", "1"},
    {"db", "VISAVIS_DB", "/var/lib/visavis/env.db", "flag.db"},
    {"log-level", "VISAVIS_LOG_LEVEL", "debug", "error"},
    {"max-body", "VISAVIS_MAX_BODY", "1", "16777216"},
    {"max-connections", "VISAVIS_MAX_CONNECTIONS", "1", "100"},
    {"http-idle-timeout", "VISAVIS_HTTP_IDLE_TIMEOUT", "86400", "5"},
    {"http-header-timeout", "VISAVIS_HTTP_HEADER_TIMEOUT", "3600", "1"},
    {"http-body-timeout", "VISAVIS_HTTP_BODY_TIMEOUT", "1", "86400"},
    {"http-body-rate", "VISAVIS_HTTP_BODY_RATE", "1073741824", "1"},
    {"sync", "VISAVIS_SYNC", "normal", "full"},
    /* The session settings, each at both ends of its range. */
    {"heartbeat", "VISAVIS_HEARTBEAT", "1", "3600"},
    {"idle-timeout", "VISAVIS_IDLE_TIMEOUT", "86400", "1"},
    {"max-outbuf", "VISAVIS_MAX_OUTBUF", "4096", "1073741824"},
    {"max-line", "VISAVIS_MAX_LINE", "16777216", "64"},
    {"max-sessions", "VISAVIS_MAX_SESSIONS", "1", "1000000"},
    {"max-subs", "VISAVIS_MAX_SUBS", "100000", "1"},
    /* The browser lists: every form a page's Origin or a Host can match. */
    {"ws-origins", "VISAVIS_WS_ORIGINS", "*", "http://a.example:3000,https://b.example/"},
    {"ws-origins", "VISAVIS_WS_ORIGINS", "null,HTTP://[::1]:8080", ""},
    {"ws-origins", "VISAVIS_WS_ORIGINS", "chrome-extension://abcdef", "http://localhost"},
    {"http-hosts", "VISAVIS_HTTP_HOSTS", "*", "gw.example,Other.Example."},
    {"http-hosts", "VISAVIS_HTTP_HOSTS", "", "gw.example"},
};

static void test_sources(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        const struct setting_case *s = &settings[i];
        const struct env_var env[] = {{s->env, s->value_env}, {NULL, NULL}};
        char flag[64], flag_eq[128], got[64], why[GW_ERRLEN];
        struct gw_config cfg;
        enum config_action action;
        enum gw_err err;

        snprintf(flag, sizeof(flag), "--%s", s->flag);
        snprintf(flag_eq, sizeof(flag_eq), "--%s=%s", s->flag, s->value_flag);

        err = parse(&cfg, env, NO_ARGS, &action, why);
        is_int(err, GW_OK, "%s: env value '%s' accepted", s->env, s->value_env);
        field(&cfg, s->flag, got);
        is_str(got, s->value_env, "%s: env overrides the default", s->env);

        err = parse(&cfg, env, ARGS(flag, s->value_flag), &action, why);
        is_int(err, GW_OK, "%s %s accepted", flag, s->value_flag);
        field(&cfg, s->flag, got);
        is_str(got, s->value_flag, "%s VALUE overrides %s", flag, s->env);

        err = parse(&cfg, env, ARGS(flag_eq), &action, why);
        is_int(err, GW_OK, "%s accepted", flag_eq);
        field(&cfg, s->flag, got);
        is_str(got, s->value_flag, "%s=VALUE overrides %s", flag, s->env);

        err = parse(&cfg, NO_ENV, ARGS(flag_eq), &action, why);
        field(&cfg, s->flag, got);
        is_str(got, s->value_flag, "%s=VALUE overrides the default", flag);
    }
}

static void test_forms(void)
{
    struct gw_config cfg;
    enum config_action action;
    char why[GW_ERRLEN];

    is_int(parse(&cfg, NO_ENV, ARGS("--db=a=b"), &action, why), GW_OK, "--db=a=b accepted");
    is_str(cfg.db_path, "a=b", "--db=a=b: value is everything after the first '='");

    is_int(parse(&cfg, NO_ENV, ARGS("--db", "--weird-name.db"), &action, why), GW_OK,
           "--db VALUE takes the next argument as it is");
    is_str(cfg.db_path, "--weird-name.db", "--db VALUE: value starting with --");

    is_int(parse(&cfg, NO_ENV, ARGS("--db", "first.db", "--db=second.db"), &action, why), GW_OK,
           "a flag given twice");
    is_str(cfg.db_path, "second.db", "a flag given twice: the last one wins");

    is_int(parse(&cfg, NO_ENV,
                 ARGS("--http-addr", "[::1]:0", "--tcp-addr=[::]:65535", "--sync", "normal",
                      "--log-level=warn", "--max-body", "10"),
                 &action, why),
           GW_OK, "several flags in both forms");
    is_str(cfg.http_addr, "[::1]:0", "[::1]:0 accepted as http-addr");
    is_str(cfg.tcp_addr, "[::]:65535", "[::]:65535 accepted as tcp-addr");
    ok(!cfg.sync_full, "--sync normal");
    is_int(cfg.log_level, GW_LOG_WARN, "--log-level=warn");
    is_uint(cfg.max_body, 10, "--max-body 10");
    is_str(cfg.db_path, "./visavis.db", "settings not given keep their default");

    /* A flag wins: a bad variable it overrides, or --help, does not stop the start. */
    is_int(parse(&cfg, ENV({"VISAVIS_MAX_LINE", "abc"}), ARGS("--max-line", "100"), &action, why),
           GW_OK, "a bad VISAVIS_MAX_LINE under --max-line: %s", why);
    is_uint(cfg.max_line, 100, "the flag's value");
    is_int(parse(&cfg, ENV({"VISAVIS_MAX_LINE", "abc"}), ARGS("--help"), &action, why), GW_OK,
           "a bad VISAVIS_MAX_LINE and --help: %s", why);
    is_int(action, CONFIG_HELP, "--help is shown");
    is_int(parse(&cfg, ENV({"VISAVIS_MAX_LINE", "abc"}), NO_ARGS, &action, why), GW_E_CONFIG,
           "a bad VISAVIS_MAX_LINE alone is refused");

    /* A switch takes on or off as the next word, and nothing else. */
    is_int(parse(&cfg, NO_ENV, ARGS("--trace", "on"), &action, why), GW_OK, "--trace on: %s", why);
    ok(cfg.trace, "--trace on");
    is_int(parse(&cfg, ENV({"VISAVIS_TRACE", "on"}), ARGS("--trace", "off"), &action, why), GW_OK,
           "--trace off: %s", why);
    ok(!cfg.trace, "--trace off over VISAVIS_TRACE=on");
    is_int(parse(&cfg, NO_ENV, ARGS("--trace", "--max-line", "100"), &action, why), GW_OK,
           "--trace then another flag: %s", why);
    ok(cfg.trace && cfg.max_line == 100, "--trace alone is on, the next flag its own");

    /* Each call starts from scratch: nothing is kept from the previous one. */
    is_int(parse(&cfg, NO_ENV, NO_ARGS, &action, why), GW_OK, "parse again without flags");
    is_str(cfg.http_addr, "127.0.0.1:8080", "parse again: http_addr back to the default");
    ok(cfg.sync_full, "parse again: sync back to the default");
}

static void test_actions(void)
{
    const struct {
        const char *const *args;
        enum config_action want;
        const char *name;
    } cases[] = {
        {ARGS("--help"), CONFIG_HELP, "--help"},
        {ARGS("-h"), CONFIG_HELP, "-h"},
        {ARGS("--version"), CONFIG_VERSION, "--version"},
        {ARGS("--db", "x.db", "--help"), CONFIG_HELP, "--db x.db --help"},
        {ARGS("--sync=full", "--version"), CONFIG_VERSION, "--sync=full --version"},
        {ARGS("--db", "x.db"), CONFIG_RUN, "--db x.db"},
    };
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct gw_config cfg;
        enum config_action action = (enum config_action)99;
        char why[GW_ERRLEN];
        is_int(parse(&cfg, NO_ENV, cases[i].args, &action, why), GW_OK, "action %s: accepted",
               cases[i].name);
        is_int(action, cases[i].want, "action %s", cases[i].name);
    }
}

struct bad_case {
    const char *name;
    const struct env_var *env;
    const char *const *args;
    const char *mention;  /* why must name this flag or variable */
    const char *mention2; /* and this, when set (usually the bad value) */
};

static const struct bad_case bad_cases[] = {
    {"unknown option", NO_ENV, ARGS("--nope"), "--nope", NULL},
    {"unknown option with value", NO_ENV, ARGS("--nope=1"), "--nope", NULL},
    {"unknown option after good ones", NO_ENV, ARGS("--db", "x.db", "--port", "1"), "--port", NULL},
    {"prefix of an option", NO_ENV, ARGS("--max", "1"), "--max", NULL},
    {"single dash option", NO_ENV, ARGS("-db", "x"), "-db", NULL},
    {"positional argument", NO_ENV, ARGS("serve"), "serve", NULL},
    {"missing value at the end", NO_ENV, ARGS("--db"), "--db", NULL},
    {"missing value after good ones", NO_ENV, ARGS("--sync", "full", "--max-body"), "--max-body",
     NULL},
    {"port 70000", NO_ENV, ARGS("--http-addr", "127.0.0.1:70000"), "--http-addr", "70000"},
    {"port 70000 in env", ENV({"VISAVIS_HTTP_ADDR", "127.0.0.1:70000"}), NO_ARGS,
     "VISAVIS_HTTP_ADDR", "70000"},
    {"port -1", NO_ENV, ARGS("--tcp-addr=127.0.0.1:-1"), "--tcp-addr", NULL},
    {"port not a number", NO_ENV, ARGS("--tcp-addr=127.0.0.1:http"), "--tcp-addr", NULL},
    {"port empty", NO_ENV, ARGS("--tcp-addr=127.0.0.1:"), "--tcp-addr", NULL},
    {"no port", NO_ENV, ARGS("--tcp-addr", "nohostport"), "--tcp-addr", "nohostport"},
    {"no port in env", ENV({"VISAVIS_TCP_ADDR", "nohostport"}), NO_ARGS, "VISAVIS_TCP_ADDR",
     "nohostport"},
    {"empty host", NO_ENV, ARGS("--http-addr=:8080"), "--http-addr", NULL},
    {"bare IPv6", NO_ENV, ARGS("--http-addr=::1:8080"), "--http-addr", NULL},
    {"unclosed IPv6 bracket", NO_ENV, ARGS("--http-addr=[::1:8080"), "--http-addr", NULL},
    {"max-body 0", NO_ENV, ARGS("--max-body", "0"), "--max-body", NULL},
    {"max-body 16 MiB + 1", NO_ENV, ARGS("--max-body=16777217"), "--max-body", NULL},
    {"max-body far too big", NO_ENV, ARGS("--max-body=99999999999999999999999"), "--max-body",
     NULL},
    {"max-body negative", NO_ENV, ARGS("--max-body=-1"), "--max-body", NULL},
    {"max-body with unit", NO_ENV, ARGS("--max-body=64k"), "--max-body", NULL},
    {"max-body 0 in env", ENV({"VISAVIS_MAX_BODY", "0"}), NO_ARGS, "VISAVIS_MAX_BODY", NULL},
    {"max-connections 0", NO_ENV, ARGS("--max-connections=0"), "--max-connections", NULL},
    {"http-idle-timeout 0", NO_ENV, ARGS("--http-idle-timeout=0"), "--http-idle-timeout", NULL},
    {"log-level loud", NO_ENV, ARGS("--log-level", "loud"), "--log-level", "loud"},
    {"log-level wrong case", NO_ENV, ARGS("--log-level=INFO"), "--log-level", NULL},
    {"log-level loud in env", ENV({"VISAVIS_LOG_LEVEL", "loud"}), NO_ARGS, "VISAVIS_LOG_LEVEL",
     "loud"},
    {"sync maybe", NO_ENV, ARGS("--sync=maybe"), "--sync", "maybe"},
    {"sync maybe in env", ENV({"VISAVIS_SYNC", "maybe"}), NO_ARGS, "VISAVIS_SYNC", "maybe"},
    {"sync empty", NO_ENV, ARGS("--sync="), "--sync", NULL},
    {"db empty", NO_ENV, ARGS("--db="), "--db", NULL},
    /* UDP: only the address may be empty (off). */
    {"http-addr empty", NO_ENV, ARGS("--http-addr="), "--http-addr", NULL},
    {"udp-addr no port", NO_ENV, ARGS("--udp-addr", "nohost"), "--udp-addr", "nohost"},
    {"udp-addr port 70000 in env", ENV({"VISAVIS_UDP_ADDR", "127.0.0.1:70000"}), NO_ARGS,
     "VISAVIS_UDP_ADDR", "70000"},
    {"udp-channel empty", NO_ENV, ARGS("--udp-channel="), "--udp-channel", NULL},
    {"udp-channel slash", NO_ENV, ARGS("--udp-channel", "a/b"), "--udp-channel", "a/b"},
    {"udp-channel 65 bytes", NO_ENV,
     ARGS("--udp-channel", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
     "--udp-channel", NULL},
    {"udp-channel bad in env", ENV({"VISAVIS_UDP_CHANNEL", "a b"}), NO_ARGS, "VISAVIS_UDP_CHANNEL",
     NULL},
    {"max-datagram 63", NO_ENV, ARGS("--max-datagram=63"), "--max-datagram", "63"},
    {"max-datagram 65508", NO_ENV, ARGS("--max-datagram=65508"), "--max-datagram", NULL},
    {"udp-rate 10000001", NO_ENV, ARGS("--udp-rate=10000001"), "--udp-rate", NULL},
    {"udp-rate negative in env", ENV({"VISAVIS_UDP_RATE", "-1"}), NO_ARGS, "VISAVIS_UDP_RATE",
     NULL},
    {"udp-burst 0", NO_ENV, ARGS("--udp-burst=0"), "--udp-burst", NULL},
    {"db empty in env", ENV({"VISAVIS_DB", ""}), NO_ARGS, "VISAVIS_DB", NULL},
    /* The session settings: below and above each range, and not numbers. */
    {"heartbeat 0", NO_ENV, ARGS("--heartbeat", "0"), "--heartbeat", NULL},
    {"heartbeat 3601", NO_ENV, ARGS("--heartbeat=3601"), "--heartbeat", "3601"},
    {"heartbeat negative", NO_ENV, ARGS("--heartbeat=-30"), "--heartbeat", NULL},
    {"heartbeat with unit", NO_ENV, ARGS("--heartbeat=30s"), "--heartbeat", "30s"},
    {"heartbeat empty", NO_ENV, ARGS("--heartbeat="), "--heartbeat", NULL},
    {"heartbeat 0 in env", ENV({"VISAVIS_HEARTBEAT", "0"}), NO_ARGS, "VISAVIS_HEARTBEAT", NULL},
    {"idle-timeout 0", NO_ENV, ARGS("--idle-timeout=0"), "--idle-timeout", NULL},
    {"idle-timeout 86401", NO_ENV, ARGS("--idle-timeout", "86401"), "--idle-timeout", "86401"},
    {"idle-timeout 2^32", NO_ENV, ARGS("--idle-timeout=4294967296"), "--idle-timeout", NULL},
    {"idle-timeout x in env", ENV({"VISAVIS_IDLE_TIMEOUT", "x"}), NO_ARGS, "VISAVIS_IDLE_TIMEOUT",
     NULL},
    {"max-outbuf 4095", NO_ENV, ARGS("--max-outbuf=4095"), "--max-outbuf", "4095"},
    {"max-outbuf 1 GiB + 1", NO_ENV, ARGS("--max-outbuf=1073741825"), "--max-outbuf", NULL},
    {"max-outbuf 2^64", NO_ENV, ARGS("--max-outbuf=18446744073709551616"), "--max-outbuf", NULL},
    {"max-outbuf with unit", NO_ENV, ARGS("--max-outbuf", "1M"), "--max-outbuf", NULL},
    {"max-outbuf 0 in env", ENV({"VISAVIS_MAX_OUTBUF", "0"}), NO_ARGS, "VISAVIS_MAX_OUTBUF", NULL},
    {"max-line 63", NO_ENV, ARGS("--max-line=63"), "--max-line", "63"},
    {"max-line 0", NO_ENV, ARGS("--max-line", "0"), "--max-line", NULL},
    {"max-line 16 MiB + 1", NO_ENV, ARGS("--max-line=16777217"), "--max-line", NULL},
    {"max-line hex", NO_ENV, ARGS("--max-line=0x100"), "--max-line", NULL},
    {"max-line 1 in env", ENV({"VISAVIS_MAX_LINE", "1"}), NO_ARGS, "VISAVIS_MAX_LINE", NULL},
    {"max-sessions 0", NO_ENV, ARGS("--max-sessions=0"), "--max-sessions", NULL},
    {"max-sessions 1000001", NO_ENV, ARGS("--max-sessions=1000001"), "--max-sessions", NULL},
    {"max-sessions blank", NO_ENV, ARGS("--max-sessions", " 10"), "--max-sessions", NULL},
    {"max-sessions 0 in env", ENV({"VISAVIS_MAX_SESSIONS", "0"}), NO_ARGS, "VISAVIS_MAX_SESSIONS",
     NULL},
    {"max-subs 0", NO_ENV, ARGS("--max-subs=0"), "--max-subs", NULL},
    {"max-subs 100001", NO_ENV, ARGS("--max-subs", "100001"), "--max-subs", "100001"},
    {"max-subs decimal point", NO_ENV, ARGS("--max-subs=6.4"), "--max-subs", NULL},
    {"max-subs -1 in env", ENV({"VISAVIS_MAX_SUBS", "-1"}), NO_ARGS, "VISAVIS_MAX_SUBS", NULL},
    {"max-subs missing value", NO_ENV, ARGS("--max-subs"), "--max-subs", NULL},
    /* The HTTP deadlines: zero would cut every request, and each has a ceiling. */
    {"http-header-timeout 0", NO_ENV, ARGS("--http-header-timeout=0"), "--http-header-timeout",
     NULL},
    {"http-header-timeout 3601", NO_ENV, ARGS("--http-header-timeout", "3601"),
     "--http-header-timeout", "3601"},
    {"http-body-timeout 0 in env", ENV({"VISAVIS_HTTP_BODY_TIMEOUT", "0"}), NO_ARGS,
     "VISAVIS_HTTP_BODY_TIMEOUT", NULL},
    {"http-body-rate 0", NO_ENV, ARGS("--http-body-rate=0"), "--http-body-rate", NULL},
    {"http-body-rate 2^30 + 1", NO_ENV, ARGS("--http-body-rate=1073741825"), "--http-body-rate",
     NULL},
    /* Origins and hosts that could never match: every page or name would be refused. */
    {"ws-origins without a scheme", NO_ENV, ARGS("--ws-origins", "localhost:8080"), "--ws-origins",
     "scheme://host"},
    {"ws-origins a bare name", NO_ENV, ARGS("--ws-origins=app.example"), "--ws-origins",
     "app.example"},
    {"ws-origins with a path", NO_ENV, ARGS("--ws-origins=http://a.example/app"), "--ws-origins",
     "no path"},
    {"ws-origins no host", NO_ENV, ARGS("--ws-origins=http://"), "--ws-origins", NULL},
    {"ws-origins port 0", NO_ENV, ARGS("--ws-origins=http://a:0"), "--ws-origins", "port"},
    {"ws-origins port 65536", NO_ENV, ARGS("--ws-origins=http://a:65536"), "--ws-origins", "port"},
    {"ws-origins empty port", NO_ENV, ARGS("--ws-origins=http://a:"), "--ws-origins", "port"},
    {"ws-origins empty entry", NO_ENV, ARGS("--ws-origins=http://a,,http://b"), "--ws-origins",
     "empty"},
    {"ws-origins trailing comma", NO_ENV, ARGS("--ws-origins=http://a,"), "--ws-origins", "empty"},
    {"ws-origins * in a list", ENV({"VISAVIS_WS_ORIGINS", "http://a,*"}), NO_ARGS,
     "VISAVIS_WS_ORIGINS", "stands alone"},
    {"ws-origins user", NO_ENV, ARGS("--ws-origins=http://u@a"), "--ws-origins", "no user"},
    {"ws-origins scheme only", NO_ENV, ARGS("--ws-origins=://a"), "--ws-origins", NULL},
    {"http-hosts with a port", NO_ENV, ARGS("--http-hosts", "gw.example:8080"), "--http-hosts",
     "port"},
    {"http-hosts with a scheme", NO_ENV, ARGS("--http-hosts=http://gw.example"), "--http-hosts",
     "scheme"},
    {"http-hosts with a path", ENV({"VISAVIS_HTTP_HOSTS", "gw.example/x"}), NO_ARGS,
     "VISAVIS_HTTP_HOSTS", "path"},
    {"http-hosts empty entry", NO_ENV, ARGS("--http-hosts=,gw.example"), "--http-hosts", "empty"},
    /* A bound on replies that holds fewer than two reads' reservations. */
    {"max-reply-memory under two pages", NO_ENV,
     ARGS("--page-bytes", "1048576", "--max-reply-memory", "2097151"), "--max-reply-memory",
     "2097152"},
    {"max-reply-memory under two messages of --max-body", NO_ENV,
     ARGS("--page-bytes", "1024", "--max-reply-memory", "4096"), "--max-reply-memory",
     "--max-body"},
    {"max-reply-memory in env under two pages", ENV({"VISAVIS_MAX_REPLY_MEMORY", "65536"}), NO_ARGS,
     "--max-reply-memory", "2097152"},
};

static void test_errors(void)
{
    for (size_t i = 0; i < GW_ARRAY_SIZE(bad_cases); i++) {
        const struct bad_case *c = &bad_cases[i];
        struct gw_config cfg;
        enum config_action action;
        char why[GW_ERRLEN];
        enum gw_err err = parse(&cfg, c->env, c->args, &action, why);

        is_str(gw_err_code(err), gw_err_code(GW_E_CONFIG), "bad %s: GW_E_CONFIG", c->name);
        if (!ok(strstr(why, c->mention) != NULL, "bad %s: why names %s", c->name, c->mention))
            diag("why: %s", why);
        if (c->mention2 &&
            !ok(strstr(why, c->mention2) != NULL, "bad %s: why quotes '%s'", c->name, c->mention2))
            diag("why: %s", why);
    }
}

/* Values longer than their field are refused, not cut. */
static void test_long_values(void)
{
    struct gw_config cfg;
    enum config_action action;
    char why[GW_ERRLEN];
    char addr[CONFIG_ADDR_MAX + 16], db[PATH_MAX + 16];

    memset(addr, 'h', sizeof(addr));
    snprintf(addr + CONFIG_ADDR_MAX - 3, 16, ":80"); /* exactly CONFIG_ADDR_MAX bytes */
    is_int(parse(&cfg, NO_ENV, ARGS("--http-addr", addr), &action, why), GW_E_CONFIG,
           "http-addr of %d bytes refused", CONFIG_ADDR_MAX);
    ok(strstr(why, "--http-addr") != NULL, "http-addr too long: why names --http-addr");

    memset(db, 'd', sizeof(db));
    db[PATH_MAX] = '\0';
    is_int(parse(&cfg, NO_ENV, ARGS("--db", db), &action, why), GW_E_CONFIG,
           "db path of PATH_MAX bytes refused");
    db[PATH_MAX - 1] = '\0';
    is_int(parse(&cfg, NO_ENV, ARGS("--db", db), &action, why), GW_OK,
           "db path of PATH_MAX - 1 bytes accepted");
    is_uint(strlen(cfg.db_path), PATH_MAX - 1, "db path kept whole");
}

/* The session settings' defaults, as docs/protocol.md gives them. */
static void test_session_defaults(void)
{
    struct gw_config cfg;
    enum config_action action;
    char why[GW_ERRLEN];

    memset(&cfg, 0xa5, sizeof(cfg));
    is_int(parse(&cfg, NO_ENV, NO_ARGS, &action, why), GW_OK, "session defaults: parsed");
    is_uint(cfg.heartbeat, 30, "defaults: heartbeat 30 s");
    is_uint(cfg.idle_timeout, 3600, "defaults: idle_timeout 3600 s");
    is_uint(cfg.max_outbuf, 1024 * 1024, "defaults: max_outbuf 1 MiB");
    is_uint(cfg.max_line, 64 * 1024, "defaults: max_line 64 KiB");
    is_uint(cfg.max_sessions, 10000, "defaults: max_sessions 10000");
    is_uint(cfg.max_subs, 64, "defaults: max_subs 64");
}

/*
 * Each session setting lands in its own field and nowhere else: every other
 * field keeps its default (a value written with the wrong width or at the
 * wrong place would change a neighbour).
 */
static void test_session_fields_apart(void)
{
    static const struct {
        const char *flag;
        const char *value;
    } cases[] = {
        {"--heartbeat", "3600"},          {"--idle-timeout", "86400"},
        {"--max-outbuf", "1073741824"},   {"--max-line", "16777216"},
        {"--max-sessions", "1000000"},    {"--max-subs", "100000"},
        {"--max-body", "16777216"},       {"--max-connections", "1000000"},
        {"--http-idle-timeout", "86400"}, {"--http-header-timeout", "3600"},
        {"--http-body-timeout", "86400"}, {"--http-body-rate", "1073741824"},
    };
    struct gw_config def, cfg;
    enum config_action action;
    char why[GW_ERRLEN];

    if (parse(&def, NO_ENV, NO_ARGS, &action, why) != GW_OK)
        bail_out("defaults do not parse: %s", why);
    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char got[64];
        is_int(parse(&cfg, NO_ENV, ARGS(cases[i].flag, cases[i].value), &action, why), GW_OK,
               "%s %s accepted", cases[i].flag, cases[i].value);
        field(&cfg, cases[i].flag + 2, got);
        is_str(got, cases[i].value, "%s %s: the field holds it", cases[i].flag, cases[i].value);
        /* Put the default back into that one field: the rest must be untouched. */
        if (strcmp(cases[i].flag, "--heartbeat") == 0)
            cfg.heartbeat = def.heartbeat;
        else if (strcmp(cases[i].flag, "--idle-timeout") == 0)
            cfg.idle_timeout = def.idle_timeout;
        else if (strcmp(cases[i].flag, "--max-outbuf") == 0)
            cfg.max_outbuf = def.max_outbuf;
        else if (strcmp(cases[i].flag, "--max-line") == 0)
            cfg.max_line = def.max_line;
        else if (strcmp(cases[i].flag, "--max-sessions") == 0)
            cfg.max_sessions = def.max_sessions;
        else if (strcmp(cases[i].flag, "--max-subs") == 0)
            cfg.max_subs = def.max_subs;
        else if (strcmp(cases[i].flag, "--max-body") == 0)
            cfg.max_body = def.max_body;
        else if (strcmp(cases[i].flag, "--max-connections") == 0)
            cfg.max_connections = def.max_connections;
        else if (strcmp(cases[i].flag, "--http-idle-timeout") == 0)
            cfg.http_idle_timeout = def.http_idle_timeout;
        else if (strcmp(cases[i].flag, "--http-header-timeout") == 0)
            cfg.http_header_timeout = def.http_header_timeout;
        else if (strcmp(cases[i].flag, "--http-body-timeout") == 0)
            cfg.http_body_timeout = def.http_body_timeout;
        else if (strcmp(cases[i].flag, "--http-body-rate") == 0)
            cfg.http_body_rate = def.http_body_rate;
        ok(config_given(&cfg, cases[i].flag + 2) && !config_given(&def, cases[i].flag + 2),
           "%s %s: said to be given", cases[i].flag, cases[i].value);
        cfg.given = def.given;
        ok(memcmp(&cfg, &def, sizeof(cfg)) == 0, "%s %s: no other field changed", cases[i].flag,
           cases[i].value);
    }

    /* All six at once, in both forms, from env and flags. */
    const struct env_var env[] = {{"VISAVIS_HEARTBEAT", "5"},
                                  {"VISAVIS_MAX_LINE", "128"},
                                  {"VISAVIS_MAX_SUBS", "7"},
                                  {NULL, NULL}};
    is_int(parse(&cfg, env,
                 ARGS("--idle-timeout", "12", "--max-outbuf=8192", "--max-sessions", "3",
                      "--max-subs=9"),
                 &action, why),
           GW_OK, "the session settings together");
    ok(cfg.heartbeat == 5 && cfg.idle_timeout == 12 && cfg.max_outbuf == 8192 &&
           cfg.max_line == 128 && cfg.max_sessions == 3 && cfg.max_subs == 9,
       "together: heartbeat %u idle %u outbuf %zu line %zu sessions %u subs %u", cfg.heartbeat,
       cfg.idle_timeout, cfg.max_outbuf, cfg.max_line, cfg.max_sessions, cfg.max_subs);
    ok(config_given(&cfg, "heartbeat") && config_given(&cfg, "max-sessions") &&
           !config_given(&cfg, "max-ws-sessions") && !config_given(&cfg, "no-such-flag"),
       "together: given by the environment or a flag, not by default");
}

static void test_usage(void)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    if (!f)
        bail_out("open_memstream failed");
    config_usage(f, "gw-test");
    fclose(f);
    ok(strstr(text, "gw-test") != NULL, "usage names the program");
    for (size_t i = 0; i < GW_ARRAY_SIZE(settings); i++) {
        const char *env = settings[i].env;
        char flag[64];
        snprintf(flag, sizeof(flag), "--%s", settings[i].flag);
        ok(strstr(text, flag) != NULL, "usage lists %s", flag);
        /*
         * Never NULL; said so that gcc 12 with UBSan at -O3 does not follow
         * the sanitizer's "strstr got NULL" path on into the printf below
         * (-Wformat-overflow).
         */
        if (!env)
            bail_out("settings[%zu] has no variable", i);
        ok(strstr(text, env) != NULL, "usage lists %s", env);
    }
    ok(strstr(text, "--help") && strstr(text, "--version"), "usage lists --help and --version");
    free(text);
}

int main(void)
{
    test_defaults();
    test_sources();
    test_forms();
    test_actions();
    test_errors();
    test_long_values();
    test_usage();
    test_session_defaults();
    test_session_fields_apart();
    return done_testing();
}
