/*
 * sio_proto.h - the framing of Engine.IO v4 and Socket.IO v5 (docs/socketio.md):
 * splitting a polling payload into packets, reading a Socket.IO packet's
 * header (type, attachments, namespace, ack id) and writing the Engine.IO
 * open packet.
 *
 * Pure: no I/O, no globals, no JSON library (the JSON inside a packet is
 * codec_json's). Shared by the gateway and gwbench. Depends on gw.h.
 */
#ifndef GW_SIO_PROTO_H
#define GW_SIO_PROTO_H

#include "gw.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EIO_VERSION "4"
/* Packets of a polling payload are separated by this byte (Engine.IO v4). */
#define EIO_SEP     '\x1e'
/* The bytes of a session id: 15 random bytes in base64url. */
#define EIO_SID_LEN 20

/* Engine.IO packet types, the first byte of a packet. */
enum eio_type {
    EIO_OPEN = '0',
    EIO_CLOSE = '1',
    EIO_PING = '2',
    EIO_PONG = '3',
    EIO_MESSAGE = '4',
    EIO_UPGRADE = '5',
    EIO_NOOP = '6',
    EIO_BINARY = 'b' /* a binary message in a polling payload: 'b' and base64 */
};

/* Socket.IO packet types, the first byte of an Engine.IO message. */
enum sio_type {
    SIO_CONNECT = 0,
    SIO_DISCONNECT = 1,
    SIO_EVENT = 2,
    SIO_ACK = 3,
    SIO_CONNECT_ERROR = 4,
    SIO_BINARY_EVENT = 5,
    SIO_BINARY_ACK = 6
};

/* Namespaces longer than this are not read (the main one is "/"). */
#define SIO_NSP_MAX 128

/*
 * The next packet of a polling payload (p, len), from *off on; false when
 * there is none left. An empty packet (two separators in a row) is returned
 * as one of length 0.
 */
bool eio_payload_next(const char *p, size_t len, size_t *off, const char **pkt, size_t *pkt_len);

/* A Socket.IO packet's header, pointing into the packet read. */
struct sio_packet {
    enum sio_type type;
    unsigned attachments; /* BINARY_EVENT, BINARY_ACK: binary messages that follow */
    const char *nsp;      /* "/" when the packet names none */
    size_t nsp_len;
    bool has_id; /* an ack id: the sender waits for an ACK with it */
    uint64_t id;
    const char *data; /* the JSON after the header; data_len 0: none */
    size_t data_len;
};

/*
 * Reads the header of the Socket.IO packet (p, len) (an Engine.IO message
 * without its '4'). GW_OK fills *out; GW_E_PARAM with a reason otherwise
 * (an unknown type, an attachment count or ack id that is not a number, a
 * namespace over SIO_NSP_MAX bytes or with a control byte; a namespace may
 * end the packet without its ',', as "0/admin" does). out->has_id and
 * out->id are set whenever the id could be read, so that an error can
 * answer it.
 */
enum gw_err sio_packet_parse(const char *p, size_t len, struct sio_packet *out,
                             char why[GW_ERRLEN]);

/* Whether (nsp, len) is the main namespace "/". */
bool sio_nsp_is_main(const char *nsp, size_t len);

/*
 * The open packet, '0' and its JSON: the sid, the upgrades offered
 * (["websocket"] when upgrade, [] otherwise), pingInterval, pingTimeout (ms)
 * and maxPayload (bytes). Returns its length (without the NUL), as snprintf.
 */
int eio_open_packet(char *out, size_t cap, const char *sid, bool upgrade, unsigned ping_interval_ms,
                    unsigned ping_timeout_ms, size_t max_payload);

/* A new session id: EIO_SID_LEN base64url characters from 15 random bytes, NUL-terminated. */
void eio_sid_new(char out[EIO_SID_LEN + 1]);

#endif
