/*
 * front_udp.h - the UDP front (docs/udp.md): datagrams in, one command or
 * one message body each, through the session tier's datagram entry
 * (session_datagram); answers out as single datagrams, never larger than
 * the datagram that asked.
 *
 * The front owns the socket and the limits: a datagram over --max-datagram
 * (seen with MSG_TRUNC), over its source address's rate (udp_rate.h), empty,
 * not UTF-8, or arriving while too many UDP publishes wait for their commit
 * is dropped, counted by reason (visavis_udp_dropped_total) and logged at
 * most once per reason every 10 s. At most a fixed number of datagrams is
 * read per wake-up of the loop, so a flood waits in the kernel (and is
 * dropped there) rather than holding the other clients up.
 *
 * Calls session, udp_rate, net, loop, metrics, log. Loop thread only.
 */
#ifndef GW_FRONT_UDP_H
#define GW_FRONT_UDP_H

#include "gw.h"

#include <stddef.h>

struct loop;
struct metrics;
struct sessions;
struct front_udp;

struct front_udp_options {
    const char *channel; /* where a datagram that is not a command goes (copied) */
    size_t max_datagram; /* bytes; larger datagrams are dropped */
    unsigned rate;       /* datagrams per second per source address; 0: no limit */
    unsigned burst;      /* datagrams a source may send at once */
};

/*
 * Serves datagrams on fd (a bound UDP socket, taken), through the tier;
 * tier, loop and metrics are borrowed and must outlive the front. NULL +
 * why on failure (fd closed).
 */
struct front_udp *front_udp_new(struct sessions *tier, struct loop *loop, struct metrics *metrics,
                                int fd, const struct front_udp_options *opts, char why[GW_ERRLEN]);

/* Stops reading datagrams; answers to publishes under way still go out. */
void front_udp_quiesce(struct front_udp *fu);

/*
 * Closes the socket and frees. Every publish it handed to the tier must
 * have ended (the writer's jobs completed). NULL is a no-op.
 */
void front_udp_free(struct front_udp *fu);

#endif
