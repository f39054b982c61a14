/*
 * origin.c - see origin.h.
 */
#include "origin.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
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

/*
 * Runs entry_ok on each entry of a comma-separated list, after the rules
 * both lists share: "*" stands alone, and no entry is empty. On false,
 * why holds "'<entry>': <what entry_ok said>".
 */
static bool list_valid(const char *allow, const char *(*entry_ok)(const char *s, size_t n),
                       char *why, size_t len)
{
    if (!*allow || strcmp(allow, "*") == 0)
        return true;
    for (size_t at = 0;;) {
        const char *p = allow + at;
        size_t n = strcspn(p, ",");
        const char *lack = !n                    ? "an empty entry (two commas, or one at an end)"
                           : n == 1 && *p == '*' ? "any, so it stands alone, not in a list"
                                                 : entry_ok(p, n);
        if (lack) {
            snprintf(why, len, "'%.*s': %s", (int)(n > 100 ? 100 : n), p, lack);
            return false;
        }
        if (!p[n])
            return true;
        at += n + 1;
    }
}

/*
 * The first of t in (s, n), or NULL. Not memmem: with UBSan at -O3, gcc
 * believes an entry's pointer may be NULL there, and -Werror=nonnull fails.
 */
static const char *find_in(const char *s, size_t n, const char *t)
{
    size_t tlen = strlen(t);

    for (size_t i = 0; i + tlen <= n; i++) {
        size_t k = 0;
        while (k < tlen && s[i + k] == t[k])
            k++;
        if (k == tlen)
            return s + i;
    }
    return NULL;
}

/* NULL if (s, n) is ":<port>" with a port of 1 to 65535, or empty; else what is wrong. */
static const char *port_lack(const char *s, size_t n)
{
    static const char lack[] = "the port must be a number from 1 to 65535";
    unsigned long port = 0;

    if (!n)
        return NULL;
    if (n == 1 || n > 6)
        return lack;
    for (size_t i = 1; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return lack;
        port = port * 10 + (unsigned long)(s[i] - '0');
    }
    return port >= 1 && port <= 65535 ? NULL : lack;
}

static const char *origin_lack(const char *s, size_t n)
{
    static const char form[] =
        "an origin is scheme://host[:port], as a browser sends it (http://localhost:8080)";
    const char *end = s + n, *sep, *host, *host_end;

    if (n == 4 && strncasecmp(s, "null", 4) == 0)
        return NULL;
    if (end[-1] == '/')
        end--;
    sep = find_in(s, (size_t)(end - s), "://");
    if (!sep || sep == s || !isalpha((unsigned char)*s))
        return form;
    for (const char *c = s; c < sep; c++)
        if (!isalnum((unsigned char)*c) && *c != '+' && *c != '-' && *c != '.')
            return form;
    host = sep + 3;
    if (find_in(host, (size_t)(end - host), "/") || find_in(host, (size_t)(end - host), "@"))
        return "an origin has no path and no user (scheme://host[:port])";
    if (host < end && *host == '[') {
        host_end = find_in(host, (size_t)(end - host), "]");
        if (!host_end)
            return form;
        host_end++;
    } else {
        host_end = find_in(host, (size_t)(end - host), ":");
        if (!host_end)
            host_end = end;
    }
    if (host_end == host)
        return form;
    return port_lack(host_end, (size_t)(end - host_end));
}

static const char *host_lack(const char *s, size_t n)
{
    if (find_in(s, n, "://"))
        return "a host name, without a scheme (gw.example, not http://gw.example)";
    if (find_in(s, n, ":"))
        return "a host name, without a port (the port is not compared)";
    if (find_in(s, n, "/") || find_in(s, n, "@"))
        return "a host name, without a path or user";
    return NULL;
}

bool origin_list_valid(const char *allow, char *why, size_t len)
{
    return list_valid(allow, origin_lack, why, len);
}

bool host_list_valid(const char *allow, char *why, size_t len)
{
    return list_valid(allow, host_lack, why, len);
}
