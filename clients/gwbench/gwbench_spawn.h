/*
 * gwbench_spawn.h - --spawn: a gateway of gwbench's own for the run, on
 * free loopback ports with a fresh database, stopped and removed after.
 *
 * Depends on gwbench_types.h (the options) and libc. The child is in its own
 * process group and gets SIGTERM should gwbench die first.
 */
#ifndef GWBENCH_SPAWN_H
#define GWBENCH_SPAWN_H

#include "gwbench_types.h"

#include <sys/types.h>

struct spawned {
    pid_t pid;     /* -1: none */
    char dir[256]; /* its database's folder; "" once removed */
    char http[64]; /* "127.0.0.1:<port>" it listens on, from its READY line */
    char tcp[64];
    char udp[64]; /* "" when its READY line has no udp= (a gateway without UDP) */
};

/*
 * Starts the gateway binary path (a name without '/' is looked up on PATH,
 * so `--spawn visavis-gateway` finds an installed one) with
 * --http-addr/--tcp-addr/--udp-addr 127.0.0.1:0 (UDP with no rate limit per
 * source: gwbench's sockets all share one address) and a database under $TMPDIR (else
 * /var/tmp, not tmpfs: there an fsync costs nothing and the publish numbers
 * would lie), and waits for its READY line within 2 * o->timeout_s.
 * Returns 0 with s filled, or -1 after saying why on stderr (call
 * spawn_stop all the same).
 */
int spawn_gateway(const char *path, const struct gwbench_opts *o, struct spawned *s);

/*
 * Stops the gateway and whatever else runs in its process group (a wrapper
 * script's children: SIGTERM, SIGKILL after 10 s), reaps it, and removes
 * its database once none of them is left.
 */
void spawn_stop(struct spawned *s);

#endif
