/*
 * model.c - the little the domain structs need beyond being data.
 */
#include "model.h"

#include "gw.h"
#include "text.h"

#include <stdlib.h>
#include <string.h>

static const char *const names[GW_T__COUNT] = {
#define GW_TRANSPORT_NAME(id, name, publishes) [GW_T_##id] = name,
    GW_TRANSPORTS(GW_TRANSPORT_NAME)
#undef GW_TRANSPORT_NAME
};

static const int publishes[GW_T__COUNT] = {
#define GW_TRANSPORT_PUB(id, name, pub) [GW_T_##id] = pub,
    GW_TRANSPORTS(GW_TRANSPORT_PUB)
#undef GW_TRANSPORT_PUB
};

const char *gw_transport_name(enum gw_transport t)
{
    return (unsigned)t < GW_T__COUNT ? names[t] : "unknown";
}

int gw_transport_publishes(enum gw_transport t)
{
    return (unsigned)t < GW_T__COUNT && publishes[t];
}

int gw_via_parse(const char *name, enum gw_transport *out)
{
    for (unsigned i = 0; i < GW_T__COUNT; i++) {
        if (publishes[i] && strcmp(name, names[i]) == 0) {
            *out = (enum gw_transport)i;
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

void gw_msg_copy(struct gw_msg *out, const struct gw_msg *m)
{
    *out = *m;
    out->sender = gw_xmemdup(m->sender ? m->sender : "", m->sender_len);
    out->body = gw_xmemdup(m->body ? m->body : "", m->body_len);
}

void gw_page_release(struct gw_page *p)
{
    gw_msgs_free(p->msgs, p->n);
    free(p->gaps);
    memset(p, 0, sizeof(*p));
}

void gw_page_add_gap(struct gw_page *p, size_t *cap, int64_t from, int64_t to)
{
    if (p->ngaps == *cap) {
        *cap = *cap ? 2 * *cap : 4;
        struct gw_gap *gaps = gw_xrealloc(p->gaps, *cap * sizeof(*gaps));
        p->gaps = gaps;
    }
    p->gaps[p->ngaps++] = (struct gw_gap){.from = from, .to = to, .before = p->n};
}

/* Decimal digits of v, with its sign. */
static size_t int_len(int64_t v)
{
    size_t n = v < 0 ? 2 : 1;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;

    while (u >= 10) {
        u /= 10;
        n++;
    }
    return n;
}

/* The JSON form of a message with id and seq taking id_len and seq_len digits. */
static size_t wire_len(size_t id_len, size_t seq_len, const char *channel, size_t channel_len,
                       const char *sender, size_t sender_len, const char *body, size_t body_len,
                       enum gw_transport via)
{
    const char *name = gw_transport_name(via);

    /* {"id":,"channel":,"seq":,"sender":,"body":,"ts":,"via":} and the quoted timestamp */
    return 56 + 26 + id_len + seq_len + text_json_len(channel, channel_len) +
           text_json_len(sender, sender_len) + text_json_len(body, body_len) +
           text_json_len(name, strlen(name));
}

size_t gw_msg_wire_len(const struct gw_msg *m)
{
    return wire_len(int_len(m->id), int_len(m->seq), m->channel, strlen(m->channel), m->sender,
                    m->sender_len, m->body, m->body_len, m->via);
}

size_t gw_msg_wire_len_most(const char *channel, size_t channel_len, const char *sender,
                            size_t sender_len, const char *body, size_t body_len,
                            enum gw_transport via)
{
    return wire_len(int_len(INT64_MAX), int_len(INT64_MAX), channel, channel_len, sender,
                    sender_len, body, body_len, via);
}
