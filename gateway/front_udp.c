/*
 * front_udp.c - UDP datagrams; see front_udp.h and docs/udp.md.
 *
 * All this file knows is a datagram socket: recvmmsg a batch (with
 * MSG_TRUNC, so a datagram larger than the buffer reports its real size),
 * apply the limits, hand each datagram that passes to the tier as one line
 * (a final LF or CRLF is not part of it), and sendto the answer the tier
 * hands back. No rule of the protocol lives here.
 */
#include "front_udp.h"

#include "log.h"
#include "loop.h"
#include "metrics.h"
#include "net.h"
#include "session.h"
#include "text.h"
#include "udp_rate.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* Datagrams per recvmmsg. */
#define UDP_BATCH       32
/* Datagrams read per wake-up at most: the rest wait for the loop's next turn. */
#define UDP_WAKE_MAX    64
/*
 * Datagrams handed to the tier at once at most; the rest wait here, in
 * order. Few, since the commits are shared with every other front: a
 * flood of publishes from many (forged) addresses, each under its rate,
 * keeps the writer busy, and a REST or TCP publish waits for the
 * transaction under way and rides in the next, each holding this many
 * UDP messages at most.
 */
#define UDP_IN_TIER     64
/* How every line a gateway sends begins (codec_json): a datagram that does is no command. */
#define ANSWER_HEAD     "{\"type\":"
#define ANSWER_HEAD_LEN (sizeof(ANSWER_HEAD) - 1)

/* Datagrams waiting here at most, and their bytes; past either they are dropped (backlog). */
#define UDP_BACKLOG       4096
#define UDP_BACKLOG_BYTES (4u << 20)
/* Source addresses the rate table remembers. */
#define UDP_SOURCES       4096
/* One log line per drop reason at most this often. */
#define UDP_LOG_EVERY_MS  10000

/* A datagram that passed the limits, waiting for room in the tier. */
struct held {
    struct held *next;
    struct sockaddr_storage from;
    socklen_t from_len;
    size_t size; /* the datagram's, which bounds its answer */
    size_t len;  /* the line's */
    char line[];
};

struct drop_log {
    uint64_t count;   /* drops since the last line */
    uint64_t next_ms; /* no line before this */
};

struct front_udp {
    struct sessions *tier;
    struct loop *loop;
    struct metrics *m;
    int fd;
    bool reading;
    char channel[GW_CHANNEL_MAX + 1];
    size_t max_datagram;
    struct udp_rate *rate;
    size_t pending;                 /* datagrams handed to the tier whose end has not come back */
    struct held *held, **held_tail; /* waiting for pending < UDP_IN_TIER, oldest first */
    size_t nheld, held_bytes;
    bool feeding;          /* in feed(): a done that comes back at once does not feed again */
    uint32_t kernel_drops; /* the socket's drop count last seen (SO_RXQ_OVFL) */
    struct drop_log logs[METRICS_UDP__COUNT];
    char *bufs; /* UDP_BATCH buffers of max_datagram bytes */
    struct mmsghdr msgs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    struct sockaddr_storage addrs[UDP_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(uint32_t))];
        size_t align; /* a cmsghdr's */
    } ctl[UDP_BATCH];
};

/*
 * Counts n datagrams dropped for reason and says so in the log: at once for
 * the first, then at most once per UDP_LOG_EVERY_MS with the count since.
 */
static void dropped(struct front_udp *fu, enum metrics_udp_drop reason, uint64_t n,
                    const struct sockaddr *from, const char *why)
{
    struct drop_log *l = &fu->logs[reason];
    uint64_t now = loop_now_ms();
    char peer[64] = "";

    fu->m->udp_dropped[reason] += n;
    l->count += n;
    if (from && (log_tracing() || now >= l->next_ms))
        net_addr_name(from, peer, sizeof(peer));
    if (from)
        log_trace("udp drop from %s: %s: %s", peer, metrics_udp_drop_name(reason), why);
    if (now < l->next_ms)
        return;
    log_msg(reason == METRICS_UDP_REFUSED ? GW_LOG_INFO : GW_LOG_WARN,
            "udp: %llu datagram%s dropped (%s): %s%s%s; at most one line per reason every %d s, "
            "all counted in visavis_udp_dropped_total",
            (unsigned long long)l->count, l->count == 1 ? "" : "s", metrics_udp_drop_name(reason),
            why, from ? ", the last from " : "", peer, UDP_LOG_EVERY_MS / 1000);
    l->count = 0;
    l->next_ms = now + UDP_LOG_EVERY_MS;
}

static void on_done(void *front, const struct session_dgram_result *r);

/* Hands one datagram's line to the tier. */
static void hand(struct front_udp *fu, const struct sockaddr *from, socklen_t from_len, size_t size,
                 const char *line, size_t len)
{
    char peer[64];

    net_addr_name(from, peer, sizeof(peer));
    struct session_dgram d = {
        .transport = GW_T_UDP,
        .peer = peer,
        .channel = fu->channel,
        .max_reply = size,
        .route = from,
        .route_len = from_len,
        .done = on_done,
        .front = fu,
    };
    fu->pending++;
    session_datagram(fu->tier, &d, line, len);
}

/* Hands the datagrams waiting here to the tier, oldest first, while it has room. */
static void feed(struct front_udp *fu)
{
    if (fu->feeding)
        return;
    fu->feeding = true;
    while (fu->held && fu->pending < UDP_IN_TIER) {
        struct held *h = fu->held;
        if (!(fu->held = h->next))
            fu->held_tail = &fu->held;
        fu->nheld--;
        fu->held_bytes -= h->len;
        hand(fu, (const struct sockaddr *)&h->from, h->from_len, h->size, h->line, h->len);
        free(h);
    }
    fu->feeding = false;
}

/* How a datagram ended, counted, and its answer sent, if any. */
static void answer(struct front_udp *fu, const struct session_dgram_result *r)
{
    const struct sockaddr *to = r->route;
    char peer[64] = "";

    if (log_tracing())
        net_addr_name(to, peer, sizeof(peer));
    if (r->end != SESSION_DGRAM_DONE)
        dropped(fu, r->end == SESSION_DGRAM_STORE ? METRICS_UDP_STORE : METRICS_UDP_REFUSED, 1, to,
                r->why ? r->why : "?");
    if (r->withheld) {
        fu->m->udp_withheld++;
        log_trace("udp sendto %s withheld: the answer is larger than the datagram", peer);
    }
    if (!r->line)
        return;
    ssize_t n =
        sendto(fu->fd, r->line, r->len, MSG_DONTWAIT | MSG_NOSIGNAL, to, (socklen_t)r->route_len);
    if (n < 0) {
        /* A datagram that cannot leave now is lost, like any UDP datagram. */
        log_trace("udp sendto %s %zu bytes failed: %s", peer, r->len, strerror(errno));
        return;
    }
    fu->m->bytes_out[GW_T_UDP] += (size_t)n;
    log_trace("udp sendto %s %zd bytes", peer, n);
}

/* session_dgram_done_fn: the answer, then room for the next datagram waiting. */
static void on_done(void *front, const struct session_dgram_result *r)
{
    struct front_udp *fu = front;

    fu->pending--;
    answer(fu, r);
    /*
     * Only now: r's answer is the tier's scratch, which a datagram that
     * ends at once (a PING, an error) writes over, or moves.
     */
    feed(fu);
}

/* The socket's drop count carried by a datagram (SO_RXQ_OVFL): new kernel drops are counted. */
static void note_kernel_drops(struct front_udp *fu, struct msghdr *mh)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_RXQ_OVFL) {
            uint32_t total;
            memcpy(&total, CMSG_DATA(c), sizeof(total));
            if (total != fu->kernel_drops)
                dropped(fu, METRICS_UDP_OVERFLOW, (uint32_t)(total - fu->kernel_drops), NULL,
                        "the socket's receive buffer was full");
            fu->kernel_drops = total;
        }
    }
}

/* One datagram of the batch: the limits, then the tier. */
static void take(struct front_udp *fu, size_t i)
{
    struct mmsghdr *mm = &fu->msgs[i];
    const struct sockaddr *from = (const struct sockaddr *)&fu->addrs[i];
    const char *data = fu->bufs + i * fu->max_datagram;
    size_t size = mm->msg_len, len; /* the datagram's real size (MSG_TRUNC) */
    unsigned char key[UDP_RATE_KEY];
    char peer[64], why[96];

    note_kernel_drops(fu, &mm->msg_hdr);
    fu->m->bytes_in[GW_T_UDP] += size;
    if (log_tracing()) {
        net_addr_name(from, peer, sizeof(peer));
        log_trace("udp recvfrom %s %zu bytes", peer, size);
    }
    /* Every datagram takes a token, whatever it holds: the rate bounds the work a sender causes. */
    if (udp_rate_key(from, key) && !udp_rate_allow(fu->rate, key, loop_now_us())) {
        dropped(fu, METRICS_UDP_RATE, 1, from, "over the source address's --udp-rate");
        return;
    }
    if ((mm->msg_hdr.msg_flags & MSG_TRUNC) || size > fu->max_datagram) {
        snprintf(why, sizeof(why), "%zu bytes, over --max-datagram %zu", size, fu->max_datagram);
        dropped(fu, METRICS_UDP_SIZE, 1, from, why);
        return;
    }
    len = size;
    if (len && data[len - 1] == '\n')
        len -= len > 1 && data[len - 2] == '\r' ? 2 : 1;
    if (!len) {
        dropped(fu, METRICS_UDP_EMPTY, 1, from, "an empty datagram");
        return;
    }
    if (!text_utf8_valid(data, len)) {
        dropped(fu, METRICS_UDP_UTF8, 1, from, "not valid UTF-8");
        return;
    }
    /*
     * Every line a gateway sends begins {"type": and no command does: such a
     * datagram is an answer, perhaps to a datagram forged with another
     * gateway's address (or this one's) as its source. Answered, the two
     * would answer each other for ever, one forged datagram enough.
     */
    if (len >= ANSWER_HEAD_LEN && memcmp(data, ANSWER_HEAD, ANSWER_HEAD_LEN) == 0) {
        dropped(fu, METRICS_UDP_ANSWER, 1, from, "an answer ({\"type\":...), not a command");
        return;
    }
    if (!fu->held && fu->pending < UDP_IN_TIER) {
        hand(fu, from, mm->msg_hdr.msg_namelen, size, data, len);
        return;
    }
    if (fu->nheld >= UDP_BACKLOG || fu->held_bytes + len > UDP_BACKLOG_BYTES) {
        snprintf(why, sizeof(why), "%zu datagrams (%zu KiB) are waiting for the store",
                 fu->nheld + fu->pending, fu->held_bytes / 1024);
        dropped(fu, METRICS_UDP_BACKLOG, 1, from, why);
        return;
    }
    struct held *h = gw_xmalloc(sizeof(*h) + len);
    h->next = NULL;
    memcpy(&h->from, from, mm->msg_hdr.msg_namelen);
    h->from_len = mm->msg_hdr.msg_namelen;
    h->size = size;
    h->len = len;
    memcpy(h->line, data, len);
    *fu->held_tail = h;
    fu->held_tail = &h->next;
    fu->nheld++;
    fu->held_bytes += len;
}

static void on_readable(struct loop *loop, int fd, unsigned events, void *ctx)
{
    struct front_udp *fu = ctx;
    size_t got = 0;

    (void)loop;
    (void)events;
    while (fu->reading && got < UDP_WAKE_MAX) {
        for (size_t i = 0; i < UDP_BATCH; i++) {
            fu->msgs[i].msg_hdr.msg_namelen = sizeof(fu->addrs[i]);
            fu->msgs[i].msg_hdr.msg_controllen = sizeof(fu->ctl[i].buf);
            fu->msgs[i].msg_hdr.msg_flags = 0;
        }
        int n = recvmmsg(fd, fu->msgs, UDP_BATCH, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                log_warn("udp: recvmmsg: %s", strerror(errno));
            return;
        }
        for (int i = 0; i < n; i++)
            take(fu, (size_t)i);
        got += (size_t)n;
        if (n < UDP_BATCH)
            return; /* the socket is empty */
    }
}

struct front_udp *front_udp_new(struct sessions *tier, struct loop *loop, struct metrics *metrics,
                                int fd, const struct front_udp_options *opts, char why[GW_ERRLEN])
{
    struct front_udp *fu = gw_xcalloc(1, sizeof(*fu));
    int one = 1;

    fu->tier = tier;
    fu->loop = loop;
    fu->m = metrics;
    fu->fd = fd;
    fu->max_datagram = opts->max_datagram;
    fu->held_tail = &fu->held;
    snprintf(fu->channel, sizeof(fu->channel), "%s", opts->channel);
    fu->rate = udp_rate_new(opts->rate, opts->burst, UDP_SOURCES);
    fu->bufs = gw_xmalloc(UDP_BATCH * fu->max_datagram);
    for (size_t i = 0; i < UDP_BATCH; i++) {
        fu->iov[i].iov_base = fu->bufs + i * fu->max_datagram;
        fu->iov[i].iov_len = fu->max_datagram;
        fu->msgs[i].msg_hdr.msg_name = &fu->addrs[i];
        fu->msgs[i].msg_hdr.msg_iov = &fu->iov[i];
        fu->msgs[i].msg_hdr.msg_iovlen = 1;
        fu->msgs[i].msg_hdr.msg_control = fu->ctl[i].buf;
    }
    /* The kernel's own drops (a full receive buffer) come with each datagram: counted as overflow.
     */
    if (setsockopt(fd, SOL_SOCKET, SO_RXQ_OVFL, &one, sizeof(one)) < 0)
        log_warn("udp: SO_RXQ_OVFL: %s: drops in the kernel go uncounted", strerror(errno));
    if (loop_add_fd(loop, fd, LOOP_READ, on_readable, fu) < 0) {
        snprintf(why, GW_ERRLEN, "udp: cannot watch the socket: %s", strerror(errno));
        close(fd);
        udp_rate_free(fu->rate);
        free(fu->bufs);
        free(fu);
        return NULL;
    }
    fu->reading = true;
    return fu;
}

void front_udp_quiesce(struct front_udp *fu)
{
    if (!fu || !fu->reading)
        return;
    fu->reading = false;
    loop_del_fd(fu->loop, fu->fd);
}

void front_udp_free(struct front_udp *fu)
{
    if (!fu)
        return;
    GW_ASSERT(fu->pending == 0 && !fu->held);
    front_udp_quiesce(fu);
    log_trace("udp close fd %d", fu->fd);
    close(fu->fd);
    udp_rate_free(fu->rate);
    free(fu->bufs);
    free(fu);
}
