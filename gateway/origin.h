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
#include <stddef.h>

/*
 * Whether a page of origin may use the gateway. allow is "*" (any), ""
 * (the same host and port as the request's Host header), or a
 * comma-separated list of origins ("http://localhost:8080"), compared
 * without regard to case and to a trailing slash. "null" (a sandboxed or
 * file: page) passes only by "*" or by being listed.
 */
bool origin_allowed(const char *origin, const char *host, const char *allow);

/*
 * Whether the HTTP port answers to a request for host (the Host header,
 * with its port; NULL: none, as HTTP/1.0 may send). A page's origin rule
 * compares the page with Host, and a site whose DNS name it points at
 * this machine (DNS rebinding) makes the two agree: its name must not be
 * answered. Answered: IP addresses, localhost and *.localhost, names
 * without a dot (a machine's or a container's, which no outside site
 * controls), and those allow lists (comma-separated, any case); allow "*":
 * any.
 */
bool host_allowed(const char *host, const char *allow);

/*
 * Whether allow is a list origin_allowed can match: "", "*" alone, or
 * comma-separated entries each "null" or scheme://host[:port] with an
 * optional trailing slash, as browsers send them. An entry such as
 * "localhost:8080" (no scheme) or "http://host/app" (a path) would never
 * match any page, and a start with it would refuse every page silently.
 * On false, why (of len bytes) says which entry and what it lacks.
 */
bool origin_list_valid(const char *allow, char *why, size_t len);

/*
 * Whether allow is a list host_allowed can match: "", "*" alone, or
 * comma-separated host names without scheme or port (the port is not
 * compared, so "gw.example:8080" would never match). On false, why says
 * which entry.
 */
bool host_list_valid(const char *allow, char *why, size_t len);

#endif
