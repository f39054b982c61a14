/*
 * gwbench_fetch.c - one GET, waited for; see gwbench_fetch.h.
 */
#include "gwbench_fetch.h"

#include "client_http.h"

#include <stdio.h>

int fetch_get(const struct client_addr *a, const char *target, double timeout_s, int *status,
              struct buf *body, char err[GW_ERRLEN])
{
    struct client_conn c;
    struct buf scratch = BUF_INIT;
    struct client_http_resp h;
    int64_t deadline = client_now_ns() + (int64_t)(timeout_s * 1e9);
    int rc = -1;

    buf_clear(body);
    client_conn_init(&c, NULL);
    if (client_conn_start(&c, a, err) < 0)
        goto out;
    client_http_get(&c.out, a->text, target);
    for (;;) {
        const char *p;
        size_t len;
        enum client_http_parse pr;

        if (client_conn_wait(&c, deadline, NULL, err) < 0)
            goto out;
        p = client_conn_data(&c, &len);
        pr = client_http_parse(p, len, c.eof, &scratch, &h, err);
        if (pr == CLIENT_HTTP_BAD)
            goto out;
        if (pr == CLIENT_HTTP_DONE)
            break;
        if (c.eof) {
            snprintf(err, GW_ERRLEN, "the connection closed without an answer");
            goto out;
        }
    }
    *status = h.status;
    if (h.body_len)
        buf_append(body, h.body, h.body_len);
    rc = 0;
out:
    client_conn_release(&c);
    buf_release(&scratch);
    return rc;
}
