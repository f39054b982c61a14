/*
 * origin.h - which browser pages may use the gateway.
 *
 * A browser names the page behind a request in its Origin header, and
 * sends a page's requests to any address, a foreign site's included: a
 * page of another site could otherwise publish on a gateway that only
 * this host can reach. Clients that are not browsers send no Origin, and
 * are not judged.
 */
#ifndef VISAVIS_ORIGIN_H
#define VISAVIS_ORIGIN_H

#include <stdbool.h>

/*
 * Whether a page of origin may use the gateway. allow is "*" (any), ""
 * (the same host and port as the request's Host header), or a
 * comma-separated list of origins ("http://localhost:8080"), compared
 * without regard to case and to a trailing slash. "null" (a sandboxed or
 * file: page) passes only by "*" or by being listed.
 */
bool origin_allowed(const char *origin, const char *host, const char *allow);

#endif
