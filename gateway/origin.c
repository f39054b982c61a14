/*
 * origin.c - see origin.h.
 */
#include "origin.h"

#include <arpa/inet.h>
#include <string.h>
#include <strings.h>

/* (s, len) without a trailing slash equals (t, tlen) without one, ignoring case. */
static bool same_origin_text(const char *s, size_t len, const char *t, size_t tlen)
{
    if (len && s[len - 1] == '/')
        len--;
    if (tlen && t[tlen - 1] == '/')
        tlen--;
    return len == tlen && strncasecmp(s, t, len) == 0;
}

bool origin_allowed(const char *origin, const char *host, const char *allow)
{
    size_t olen = strlen(origin);

    if (strcmp(allow, "*") == 0)
        return true;
    if (!*allow) {
        /* The page's scheme://authority against the Host the browser sent it to. */
        const char *sep = strstr(origin, "://");
        if (!sep || !host || !*host)
            return false;
        const char *auth = sep + 3;
        return same_origin_text(auth, strlen(auth), host, strlen(host));
    }
    for (const char *p = allow; *p;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        if (len && same_origin_text(p, len, origin, olen))
            return true;
        p = end ? end + 1 : p + len;
    }
    return false;
}

/* (s, len) is an IPv4 address in dotted-quad form, the one form browsers send. */
static bool ipv4_text(const char *s, size_t len)
{
    char text[INET_ADDRSTRLEN];
    struct in_addr a;

    if (len >= sizeof(text))
        return false;
    memcpy(text, s, len);
    text[len] = '\0';
    return inet_pton(AF_INET, text, &a) == 1;
}

bool host_allowed(const char *host, const char *allow)
{
    const char *colon;
    size_t len;

    if (!host || !*host || strcmp(allow, "*") == 0 || host[0] == '[')
        return true; /* none, any, or an IPv6 address */
    colon = strchr(host, ':');
    len = colon ? (size_t)(colon - host) : strlen(host);
    if (len && host[len - 1] == '.')
        len--; /* "localhost." is "localhost" */
    if (!memchr(host, '.', len) || ipv4_text(host, len))
        return true;
    if (len > 10 && strncasecmp(host + len - 10, ".localhost", 10) == 0)
        return true;
    for (const char *p = allow; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        if (n && p[n - 1] == '.')
            n--;
        if (n == len && strncasecmp(p, host, len) == 0)
            return true;
        p = end ? end + 1 : p + strlen(p);
    }
    return false;
}
