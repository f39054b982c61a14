/*
 * model.c - the little the domain structs need beyond being data.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

static const char *const via_names[GW_VIA__COUNT] = {
    [GW_VIA_REST] = "rest",
    [GW_VIA_TCP] = "tcp",
};

const char *gw_via_name(enum gw_via via)
{
    return (unsigned)via < GW_VIA__COUNT ? via_names[via] : "unknown";
}

int gw_via_parse(const char *name, enum gw_via *out)
{
    for (unsigned i = 0; i < GW_VIA__COUNT; i++) {
        if (strcmp(name, via_names[i]) == 0) {
            *out = (enum gw_via)i;
            return 0;
        }
    }
    return -1;
}

void gw_msg_release(struct gw_msg *m)
{
    free(m->sender);
    free(m->body);
    m->sender = NULL;
    m->body = NULL;
    m->sender_len = 0;
    m->body_len = 0;
}

void gw_msgs_free(struct gw_msg *msgs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        gw_msg_release(&msgs[i]);
    free(msgs);
}
