/*
 * origin.c - see origin.h.
 */
#include "origin.h"

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
