/*
 * source_table.h - a table of per-address records keyed by the client's
 * source address, for the tables that share a limit between addresses
 * (fair_share's places, reply_budget's bytes).
 *
 * Intrusive: a record embeds a struct source_node and the table links it,
 * so each user keeps its own fields beside the key. A chained hash under
 * the keyed name hash (no client can aim its addresses at one chain) that
 * doubles when it holds more records than chains. Not thread-safe.
 */
#ifndef GW_SOURCE_TABLE_H
#define GW_SOURCE_TABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Longest source address kept (an IPv6 text address fits). */
#define SOURCE_MAX 64

struct source_node {
    struct source_node *hnext;
    uint64_t hash;
    char name[SOURCE_MAX];
};

struct source_table {
    struct source_node **chain;
    size_t nchains; /* a power of two */
    size_t n;       /* records linked */
};

void source_table_init(struct source_table *t);
/* Frees the chains; the records are their owners' to free (source_table_next walks them). */
void source_table_fini(struct source_table *t);

/*
 * The source address of peer ("host:port", "[v6]:port" or "host"), into
 * out: the host alone (a client picks any port). An IPv6 client is its
 * /64 ("2001:db8:1:2::/64"), the smallest prefix a network gives one
 * site (RFC 6177): counted per address, one client would be 2^64 of them
 * and every per-address share would be its for the asking. Loopback and
 * link-local addresses stay whole (every host on a link shares fe80::/64),
 * and an IPv4-mapped one is its IPv4 address.
 */
void source_of_peer(const char *peer, char out[SOURCE_MAX]);

struct in6_addr;
/* Whether an IPv6 client is counted by its /64 (as source_of_peer does; udp_rate too). */
bool source_v6_by_prefix(const struct in6_addr *a);

/* The record for name, or NULL. */
struct source_node *source_table_find(const struct source_table *t, const char *name);
/* Links node under name (not linked yet; no record of that name may be). */
void source_table_add(struct source_table *t, struct source_node *node, const char *name);
/* Unlinks node (linked). */
void source_table_remove(struct source_table *t, struct source_node *node);

/*
 * Every record, in no order: the one after prev (NULL: the first), or NULL
 * after the last. The table must not change during a walk.
 */
struct source_node *source_table_next(const struct source_table *t, const struct source_node *prev);

#endif
