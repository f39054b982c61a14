/*
 * gwsh_sig.h - the signals that stop gwsh (SIGINT, SIGTERM, SIGHUP) and the
 * waits they end: every mode of gwsh waits through here, so that a stop
 * signal is never lost between a check and a sleep.
 *
 * The stop signals stay blocked except inside these waits (ppoll with the
 * wait mask), so a signal that comes while gwsh works is delivered, at the
 * latest, when it next waits. Depends on common/ (client_conn) and libc.
 */
#ifndef GWSH_SIG_H
#define GWSH_SIG_H

#include "client_conn.h"
#include "gw.h"

#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

/* The signal that asked gwsh to stop; 0 while none did. */
extern volatile sig_atomic_t gwsh_stop;

/* Installs the handlers and blocks the stop signals outside the waits. Once, first. */
void gwsh_sig_init(void);

/* The signal mask while waiting: the stop signals let in. */
const sigset_t *gwsh_sig_wait_mask(void);

/* poll() that a stop signal ends: as poll; -1 with errno EINTR once gwsh_stop is set. */
int gwsh_poll(struct pollfd *fds, nfds_t n, int timeout_ms);

/* Lets in a stop signal that is pending (a wait that returned at once kept it out); gwsh_stop. */
bool gwsh_sig_deliver(void);

/* client_conn_open with the stop signals let in, so that ^C ends a slow connect. */
int gwsh_connect(struct client_conn *c, const char *addr, int timeout_ms, char err[GW_ERRLEN]);

/* Milliseconds from now until deadline_ns (client_now_ns; 0 when past), for poll. */
int gwsh_ms_until(int64_t deadline_ns);

#endif
