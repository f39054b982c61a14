/*
 * gwsh_opts.h - what gwsh's modes share: the options and the exit codes.
 * Types only, so that a mode can include it without depending on main:
 * gwsh.c holds main, the shell and -c; gwsh_sub.c the --sub follower;
 * gwsh_sig.c the waits; gwsh_show.c what a person sees.
 */
#ifndef GWSH_OPTS_H
#define GWSH_OPTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define GWSH_DEFAULT_ADDR "127.0.0.1:12345"
/*
 * The longest line taken before the greeting: a hello is about 150 bytes,
 * so a server that sends more first is no gateway, and must not make gwsh
 * buffer up to CLIENT_LINE_MAX. Once greeted, a connection takes
 * CLIENT_LINE_MAX (a HIST page of long bodies).
 */
#define GWSH_GREETING_MAX (64 * 1024)

enum gwsh_exit {
    GWSH_EXIT_OK = 0,
    GWSH_EXIT_ERROR = 1,   /* an error reply or none (-c, stdin), a lost connection, a refusal */
    GWSH_EXIT_USAGE = 2,   /* bad command line */
    GWSH_EXIT_CONNECT = 3, /* no session could be opened */
};

struct gwsh_opts {
    const char *addr;  /* "host:port", checked */
    bool json;         /* raw server lines instead of text */
    const char **cmds; /* -c, in order; NULL-terminated */
    size_t ncmds;
    const char *sub; /* --sub: the channel, checked; NULL otherwise */
    bool has_since;  /* --since given */
    int64_t since;
    bool text;      /* --sub --text: a line per message for a person, with its delay */
    int timeout_ms; /* to connect, and for each awaited reply */
};

#endif
