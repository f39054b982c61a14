/*
 * sockbench_resp.c - the RESP reader: what redis answers, one whole value at
 * a time from a client_conn's input, strings borrowed from it. Nothing else
 * in the clients speaks to redis, so it lives here.
 */
#include "sockbench.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Length of the line starting at p (without CRLF), or -1 if no CRLF yet. */
static long resp_crlf(const char *p, size_t n)
{
    for (size_t i = 0; i + 1 < n; i++)
        if (p[i] == '\r' && p[i + 1] == '\n')
            return (long)i;
    return -1;
}

static bool parse_ll(const char *p, long n, long long *out)
{
    char tmp[32];
    if (n <= 0 || n >= (long)sizeof tmp)
        return false;
    memcpy(tmp, p, (size_t)n);
    tmp[n] = 0;
    char *end;
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return !errno && *end == 0;
}

/* Bytes taken by one whole value at p, 0 if incomplete; dies if malformed. */
static size_t resp_parse(const char *p, size_t n, struct resp *v, int depth)
{
    if (n < 3)
        return 0;
    long l = resp_crlf(p, n);
    if (l < 0)
        return 0;
    memset(v, 0, sizeof *v);
    v->type = p[0];
    size_t used = (size_t)l + 2;
    switch (p[0]) {
    case '+':
    case '-':
        v->s = p + 1;
        v->slen = (size_t)l - 1;
        return used;
    case ':':
        if (!parse_ll(p + 1, l - 1, &v->i))
            die("malformed RESP integer: %s", shown(p, (size_t)l));
        return used;
    case '$':
        if (!parse_ll(p + 1, l - 1, &v->i))
            die("malformed RESP bulk length: %s", shown(p, (size_t)l));
        if (v->i < 0)
            return used; /* null bulk */
        if (n < used + (size_t)v->i + 2)
            return 0;
        v->s = p + used;
        v->slen = (size_t)v->i;
        return used + (size_t)v->i + 2;
    case '*': {
        long long k;
        if (!parse_ll(p + 1, l - 1, &k) || depth > 4)
            die("malformed RESP array: %s", shown(p, (size_t)l));
        v->nel = k < 0 ? 0 : (int)k;
        for (long long e = 0; e < k; e++) {
            struct resp sub;
            size_t u = resp_parse(p + used, n - used, &sub, depth + 1);
            if (!u)
                return 0;
            if (e < 4) {
                v->el[e].type = sub.type;
                v->el[e].i = sub.i;
                v->el[e].s = sub.s;
                v->el[e].slen = sub.slen;
            }
            used += u;
        }
        return used;
    }
    default:
        die("malformed RESP reply: %s", shown(p, n < 40 ? n : 40));
    }
}

/* The next whole RESP value of c, consumed; its strings are borrowed until the next fill. */
bool next_resp(struct client_conn *c, struct resp *v)
{
    size_t n;
    const char *p = client_conn_data(c, &n);
    size_t u = resp_parse(p, n, v, 0);

    client_conn_consume(c, u);
    return u != 0;
}

void read_resp_blocking(struct client_conn *c, struct resp *v, const char *what)
{
    uint64_t deadline = deadline_from_now();
    while (!next_resp(c, v))
        wait_input(c, deadline, what);
}

long redis_connected_clients(struct client_conn *c)
{
    static const char q[] = "*2\r\n$4\r\nINFO\r\n$7\r\nclients\r\n";
    send_all(c, q, sizeof q - 1, "INFO clients");
    struct resp v;
    read_resp_blocking(c, &v, "INFO clients");
    if (v.type != '$' || !v.s)
        die("INFO clients: unexpected reply (type %c)", v.type);
    const char *k = memmem(v.s, v.slen, "connected_clients:", 18);
    if (!k)
        die("INFO clients: no connected_clients");
    return strtol(k + 18, NULL, 10);
}
