/*
 * linger.h - the lingering close of HTTP servers, for the fronts that end a
 * connection after its last bytes (front_tcp, front_sse, front_ws).
 *
 * Closing a socket that still has unread input makes the kernel send a
 * reset, which can destroy the last lines before the peer reads them (a
 * farewell, a bye). So: shut our side (a FIN after the last byte), read and
 * drop the peer's input until it closes, and close only then, or after the
 * linger time. The front hands the descriptor over and forgets the
 * connection at once; what lingers costs a small record, not a session.
 *
 * Calls loop. Loop thread only.
 */
#ifndef GW_LINGER_H
#define GW_LINGER_H

#include <stdbool.h>
#include <stddef.h>

struct loop;
struct lingering;

/* Connections of one front, each given ms to close (loop borrowed; it outlives them). */
struct lingering *lingering_new(struct loop *loop, unsigned ms);

/*
 * Takes fd, no longer watched by the loop: shuts its write side and drains
 * it until the peer closes or the time is over. now (the peer is gone, or
 * the last bytes did not all go), or a socket that cannot be shut: closed
 * at once.
 */
void lingering_add(struct lingering *l, int fd, bool now);

/*
 * As lingering_add, for ms instead of the lingering time: the rest of a
 * deadline that began earlier (front_ws flushes its close frame and drains
 * within one). 0: closed at once.
 */
void lingering_add_within(struct lingering *l, int fd, unsigned ms);

/*
 * Closes the connections that have lingered longest until at most keep are
 * left. A front calls it so that its sessions and its lingering
 * connections together stay within its limit: a client that opens and
 * ends sessions in a loop would otherwise hold a descriptor for each for
 * the linger time, past every limit, and starve the process of them.
 */
void lingering_trim(struct lingering *l, size_t keep);

/* Connections still lingering. */
size_t lingering_count(const struct lingering *l);

/* Closes those still lingering and frees. NULL is a no-op. */
void lingering_free(struct lingering *l);

#endif
