/*
 * sockbench.h - what sockbench's parts share: the options, the server kinds,
 * failure, the socket helpers, RESP, and the peers (one connection to a
 * server, opened, subscribed and read the way that server speaks).
 *
 * sockbench (bench/README.md) is the load generator of bench/socket.sh and
 * bench/fanout.sh. Its parts:
 *   sockbench.c          main: options, modes, failure, the socket helpers
 *   sockbench_resp.c     the RESP reader (redis)
 *   sockbench_peer.c     a subscriber of each kind: opened, subscribed, read;
 *                        and the publisher's requests and replies
 *   sockbench_reqresp.c  ping, pub, redis-ping, redis-set
 *   sockbench_fanout.c   one publisher to N subscribers
 *   sockbench_idle.c     idle (subscribed) sessions and the server's RSS
 * Everything runs on common/'s client pieces (client_conn, client_http,
 * client_sse, client_ws, server_line, hist): the same code reads every
 * server, so the client costs the same whichever one it measures.
 */
#ifndef SOCKBENCH_H
#define SOCKBENCH_H

#include "client_conn.h"
#include "client_sse.h"
#include "client_ws.h"
#include "gw.h"
#include "hist.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The servers and transports a peer can speak. */
enum sb_kind {
    SB_GW_TCP,   /* the gateway's TCP session front: lines */
    SB_GW_WS,    /* the gateway's WebSocket sessions, GET /v1/ws: one line per text message */
    SB_GW_SSE,   /* the gateway's GET /v1/channels/<ch>/events: one message per event */
    SB_REDIS,    /* redis, RESP: SUBSCRIBE / PUBLISH */
    SB_NATS,     /* nats-server, its text protocol: SUB / PUB / MSG */
    SB_NCHAN_WS, /* Nchan, GET /sub/<ch> as a WebSocket: one message per text message */
    SB_NCHAN_SSE /* Nchan, GET /sub/<ch> as an EventSource: one message per event */
};

/* --ports: at most this many servers to spread the connections over. */
#define SB_PORTS_MAX 16

struct sb_opt {
    const char *host;
    int port;                /* where the peers connect */
    int pub_port;            /* where the publisher connects (0: port) */
    int ports[SB_PORTS_MAX]; /* --ports: the peers spread over these in turn instead of port */
    int nports;
    long connections;
    long pipeline;
    double duration;
    long messages;
    double rate;
    long size;
    long subscribers;
    long burst; /* fan-out: messages sent at once after the paced ones, for deliveries/s */
    long sources;
    const char *channel;
    long pid;
    double timeout; /* s: connects, handshakes, drains */
};

extern struct sb_opt opt;
extern const char *g_mode;
extern enum sb_kind g_kind;

/* The kind's name as the RESULT line says it (gateway-tcp, nchan-ws, ...). */
const char *sb_kind_name(enum sb_kind k);
/* True for the gateway's kinds (their publisher speaks the TCP session protocol). */
bool sb_kind_is_gateway(enum sb_kind k);

/* ---- basics (sockbench.c) ---- */

uint64_t now_ns(void);
uint64_t deadline_from_now(void);
/* "sockbench <mode>: FAILED: ..." on stderr, exit 1 (from any thread). */
__attribute__((noreturn, format(printf, 1, 2))) void die(const char *fmt, ...);
/* (p, n) for a message: printable ASCII, at most 160 bytes; per thread, until the next call. */
const char *shown(const char *p, size_t n);
/* " <pfx>avg_us=… <pfx>p50_us=… …" on stdout. */
void h_print(const struct hist *h, const char *pfx);
struct hist *hist_new(void);
/* This process's CPU time (all threads), in seconds. */
double cpu_s(void);
/* Raises RLIMIT_NOFILE to need + 64; dies if the hard limit is lower. */
void raise_nofile(long need);
/* A body of size bytes (digits), NUL-terminated; caller frees. */
char *make_body(size_t size);

/*
 * The server's addresses, from --host and --port (--pub-port), or the
 * servers' of --ports: one per server and source address (--sources, or as
 * many as n connections need: a source address has about 28,000 ports for
 * one server). Connection i uses sb_addr(i): the servers in turn.
 */
void resolve(long n);
const struct client_addr *sb_addr(long i);
const struct client_addr *sb_pub_addr(void);
/* How many source addresses the connections are spread over. */
long sb_sources(void);

/* Closes with a RST: no TIME_WAIT left behind to eat the ephemeral ports. */
void close_abort(struct client_conn *c);
/* Waits for fd to be readable (POLLIN) or writable (POLLOUT) until deadline. */
void wait_fd(int fd, short events, uint64_t deadline, const char *what);
/* Connects c to a within --timeout. */
void connect_to(struct client_conn *c, const struct client_addr *a, const char *what);
/* Queues (p, n) on c (NULL, 0: nothing more) and sends what is queued within --timeout. */
void send_all(struct client_conn *c, const char *p, size_t n, const char *what);
/* Reads what is there; dies on an error or, unless eof_ok, on the server's close. */
void fill(struct client_conn *c, const char *what, bool eof_ok);
/* Waits for more input within deadline. */
void wait_input(struct client_conn *c, uint64_t deadline, const char *what);
/* The next server line (gateway), or NULL when none is whole yet; dies when framing is lost. */
char *next_line(struct client_conn *c, size_t *n, const char *what);
/* Reads one gateway line within --timeout, skipping heartbeats. */
char *read_line_blocking(struct client_conn *c, size_t *n, const char *what);
void expect_hello(struct client_conn *c, const char *what);

/* ---- RESP (sockbench_resp.c) ---- */

/* One value. type is its first byte; for arrays, the first 4 elements are kept (scalars only). */
struct resp {
    char type;
    long long i;
    const char *s;
    size_t slen;
    int nel;
    struct {
        char type;
        long long i;
        const char *s;
        size_t slen;
    } el[4];
};

/* The next whole RESP value of c, consumed; its strings are borrowed until the next fill. */
bool next_resp(struct client_conn *c, struct resp *v);
void read_resp_blocking(struct client_conn *c, struct resp *v, const char *what);
/* The number of clients redis counts (INFO clients), asked over c. */
long redis_connected_clients(struct client_conn *c);

/* ---- peers (sockbench_peer.c) ---- */

enum peer_state { PEER_CONNECTING, PEER_OPENING, PEER_SUBSCRIBING, PEER_READY };

struct peer {
    struct client_conn c;
    struct client_ws *ws;  /* the WebSocket kinds */
    struct client_sse sse; /* the EventSource kinds */
    enum peer_state state;
    int64_t next; /* fan-out: the index of the next message it must get */
};

/*
 * Starts opening p as connection i: the connect, then what its kind needs
 * to be a subscriber of channel (NULL: a session that only says hello, for
 * the kinds that have one; the EventSource kinds always subscribe).
 */
void peer_start(struct peer *p, long i, const char *channel);
/*
 * One step of the opening after epoll said events. True once p is
 * PEER_READY (subscribed, or quiet when no channel), after which its
 * buffers are trimmed; c's output is flushed here.
 */
bool peer_step(struct peer *p, uint32_t events, const char *channel, long i);
/*
 * Opens the n peers ps[0, n) (connection i from sb_addr(i)), at most 256
 * openings under way at once, each to PEER_READY; returns the seconds it
 * took. Dies on any failure or after 4 x --timeout.
 */
double peers_open(struct peer *ps, long n, const char *channel);
/*
 * Reads what a ready peer has received and takes its framing (WebSocket,
 * event stream). Dies on an error or the server's close.
 */
void peer_read(struct peer *p, long i);
/*
 * The body of the next message pushed to a ready peer, borrowed until the
 * next peer_read: 1 (*body, *len), or 0 when no whole message is buffered.
 * Heartbeats and pings are skipped (pings answered: peer_flush sends the
 * answers); anything else dies.
 */
int peer_next_body(struct peer *p, const char **body, size_t *len, long i);
/* Sends what the peer queued (pongs) and keeps its epoll registration in step. */
void peer_flush(struct peer *p, int ep);
void peer_release(struct peer *p);
/*
 * Nchan: polls GET /pub/<channel>'s "active subscribers" until it counts n
 * (its subscribers register as they are opened; a publish before would
 * miss some). Other kinds: nothing to do.
 */
void peer_wait_subscribed(const char *channel, long n);

/* ---- the publisher's side of each kind (sockbench_peer.c) ---- */

/* Connects the publisher and does its kind's greeting. */
void pub_open(struct client_conn *c);
/* Appends the publish of (body, len) on channel to out. */
void pub_request(struct buf *out, const char *channel, const char *body, size_t len);
/*
 * The next reply to a publish, consumed: 1 with *ok (and a text for an error
 * message), 0 when none is whole yet; -1 with the reason in err when the
 * reply cannot be read. Heartbeats are skipped; a server PING is answered
 * on c (the caller flushes). subscribers: how many a reply must say it
 * reached, where the server says so (redis, Nchan).
 */
int pub_reply(struct client_conn *c, long subscribers, bool *ok, char *text, size_t cap,
              char err[GW_ERRLEN]);

/* ---- the runs ---- */

int run_reqresp(void);
int run_fanout(void);
int run_idle(void);

#endif
