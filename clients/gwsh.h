/*
 * gwsh.h - what gwsh's modes share: the options, the exit codes, and the
 * signal-aware waiting every mode does.
 *
 * gwsh.c holds main, the shell and -c; gwsh_sub.c the --sub follower. Depends
 * on common/ and libc.
 */
#ifndef GWSH_H
#define GWSH_H

#include "gw.h"
#include "gwsh_conn.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#define GWSH_DEFAULT_ADDR "127.0.0.1:12345"

enum gwsh_exit {
    GWSH_EXIT_OK = 0,
    GWSH_EXIT_ERROR = 1,   /* an error reply (-c), a lost connection, a fatal refusal */
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
    int timeout_ms; /* to connect, and for each awaited reply */
};

/* The signal (SIGINT, SIGTERM, SIGHUP) that asked gwsh to stop; 0 while none did. */
extern volatile sig_atomic_t gwsh_stop;

/*
 * poll() that a stop signal interrupts: those signals stay blocked except
 * inside this wait, so none can slip in between a check of gwsh_stop and
 * the sleep. Returns as poll; -1 with errno EINTR once gwsh_stop is set.
 */
int gwsh_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* conn_open with the stop signals let in, so that ^C ends a slow connect. */
int gwsh_connect(struct conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN]);

/* CLOCK_MONOTONIC in microseconds. */
int64_t gwsh_now_us(void);

/* Milliseconds from now until deadline_us (0 when past), for poll. */
int gwsh_ms_until(int64_t deadline_us);

/* "gwsh: <message>" on stderr. */
void gwsh_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* --sub: follows one channel for ever (gwsh_sub.c). Returns the exit code. */
int gwsh_sub_run(const struct gwsh_opts *o);

#endif
