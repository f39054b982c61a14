/*
 * test_sio_proto.c - common/sio_proto.h (Engine.IO payloads, Socket.IO
 * packet headers, the open packet) and the Socket.IO event codec of
 * codec_json.h.
 */
#include "sio_proto.h"

#include "buf.h"
#include "codec_json.h"
#include "gw.h"
#include "tap.h"

#include <string.h>

#define B(s) s, sizeof(s) - 1

static void payloads(void)
{
    static const struct {
        const char *name, *in;
        size_t len;
        const char *want; /* the packets, each followed by '|' */
    } cases[] = {
        {"one packet", B("40"), "40|"},
        {"three packets",
         B("2\x1e"
           "3\x1e"
           "42[\"a\"]"),
         "2|3|42[\"a\"]|"},
        {"an empty one in the middle",
         B("4\x1e\x1e"
           "6"),
         "4||6|"},
        {"a trailing separator", B("4\x1e"), "4||"},
        {"nothing", B(""), ""},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        char got[64] = "";
        size_t off = 0, len, n = 0;
        const char *pkt;
        while (eio_payload_next(cases[i].in, cases[i].len, &off, &pkt, &len)) {
            memcpy(got + n, pkt, len);
            n += len;
            got[n++] = '|';
        }
        got[n] = '\0';
        is_str(got, cases[i].want, "payload: %s", cases[i].name);
    }
}

static void packets(void)
{
    static const struct {
        const char *in;
        enum gw_err err;
        int type;
        unsigned attachments;
        const char *nsp;
        int has_id;
        unsigned long long id;
        const char *data;
    } cases[] = {
        {"0", GW_OK, 0, 0, "/", 0, 0, ""},
        {"0{\"token\":1}", GW_OK, 0, 0, "/", 0, 0, "{\"token\":1}"},
        {"0/admin,", GW_OK, 0, 0, "/admin", 0, 0, ""},
        {"0/admin", GW_OK, 0, 0, "/admin", 0, 0, ""},
        {"2[\"sub\",{}]", GW_OK, 2, 0, "/", 0, 0, "[\"sub\",{}]"},
        {"212[\"sub\"]", GW_OK, 2, 0, "/", 1, 12, "[\"sub\"]"},
        {"2/chat,7[\"x\"]", GW_OK, 2, 0, "/chat", 1, 7, "[\"x\"]"},
        {"3123[]", GW_OK, 3, 0, "/", 1, 123, "[]"},
        {"51-3[\"pub\",{\"_placeholder\":true,\"num\":0}]", GW_OK, 5, 1, "/", 1, 3,
         "[\"pub\",{\"_placeholder\":true,\"num\":0}]"},
        {"1", GW_OK, 1, 0, "/", 0, 0, ""},
        {"", GW_E_PARAM, 0, 0, "/", 0, 0, ""},
        {"7", GW_E_PARAM, 0, 0, "/", 0, 0, ""},
        {"x", GW_E_PARAM, 0, 0, "/", 0, 0, ""},
        {"5[\"a\"]", GW_E_PARAM, 5, 0, "/", 0, 0, ""},
        {"2/a\nb,[]", GW_E_PARAM, 2, 0, "/", 0, 0, ""},
        {"21234567890123456[]", GW_E_PARAM, 2, 0, "/", 0, 0, ""},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct sio_packet pk;
        char why[GW_ERRLEN] = "";
        enum gw_err err = sio_packet_parse(cases[i].in, strlen(cases[i].in), &pk, why);
        is_int(err, cases[i].err, "packet %zu '%s': verdict (%s)", i, cases[i].in, why);
        if (err != GW_OK) {
            ok(why[0] != '\0', "packet %zu: a reason", i);
            continue;
        }
        is_int(pk.type, cases[i].type, "packet %zu: type", i);
        is_uint(pk.attachments, cases[i].attachments, "packet %zu: attachments", i);
        is_mem(pk.nsp, pk.nsp_len, cases[i].nsp, strlen(cases[i].nsp), "packet %zu: nsp", i);
        is_int(pk.has_id, cases[i].has_id, "packet %zu: has_id", i);
        is_uint(pk.id, cases[i].id, "packet %zu: id", i);
        is_mem(pk.data, pk.data_len, cases[i].data, strlen(cases[i].data), "packet %zu: data", i);
    }
    ok(sio_nsp_is_main("/", 1) && !sio_nsp_is_main("/a", 2), "the main namespace is /");
}

static void open_packet(void)
{
    char out[256], sid[EIO_SID_LEN + 1], other[EIO_SID_LEN + 1];

    eio_open_packet(out, sizeof(out), "abc", true, 25000, 20000, 65536);
    is_str(out,
           "0{\"sid\":\"abc\",\"upgrades\":[\"websocket\"],\"pingInterval\":25000,"
           "\"pingTimeout\":20000,\"maxPayload\":65536}",
           "the open packet");
    eio_open_packet(out, sizeof(out), "abc", false, 1000, 1000, 10);
    ok(strstr(out, "\"upgrades\":[]") != NULL, "no upgrade from a WebSocket: %s", out);
    eio_sid_new(sid);
    eio_sid_new(other);
    is_uint(strlen(sid), EIO_SID_LEN, "a sid is %d characters", EIO_SID_LEN);
    ok(strspn(sid, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") ==
           EIO_SID_LEN,
       "in base64url: %s", sid);
    ok(strcmp(sid, other) != 0, "two sids differ");
}

static void events(void)
{
    static const struct {
        const char *in, *tag;
        enum gw_err err;
        const char *want;
    } cases[] = {
        {"[\"sub\",{\"channel\":\"g\",\"since\":3}]", "5", GW_OK,
         "{\"channel\":\"g\",\"since\":3,\"op\":\"sub\",\"tag\":\"5\"}"},
        {"[\"pub\",{\"channel\":\"g\",\"body\":\"a\\u0000b\",\"op\":\"x\",\"tag\":\"t\"}]", NULL,
         GW_OK, "{\"channel\":\"g\",\"body\":\"a\\u0000b\",\"op\":\"pub\"}"},
        {"[\"channels\"]", "1", GW_OK, "{\"op\":\"channels\",\"tag\":\"1\"}"},
        {"[\"quit\"]", NULL, GW_E_UNKNOWN_COMMAND, ""},
        {"[\"help\",{}]", NULL, GW_E_UNKNOWN_COMMAND, ""},
        {"[\"sub\",\"g\"]", NULL, GW_E_NOT_OBJECT, ""},
        {"{\"op\":\"sub\"}", NULL, GW_E_PARAM, ""},
        {"[]", NULL, GW_E_PARAM, ""},
        {"[1,{}]", NULL, GW_E_PARAM, ""},
        {"[\"sub\",", NULL, GW_E_JSON, ""},
        {"", NULL, GW_E_JSON, ""},
    };

    for (size_t i = 0; i < GW_ARRAY_SIZE(cases); i++) {
        struct buf out = BUF_INIT;
        char why[GW_ERRLEN] = "";
        const char *tag = cases[i].tag;
        enum gw_err err = codec_sio_event_line(cases[i].in, strlen(cases[i].in), tag,
                                               tag ? strlen(tag) : 0, &out, why);
        is_int(err, cases[i].err, "event %zu %s: verdict (%s)", i, cases[i].in, why);
        if (err == GW_OK)
            is_mem(out.data, out.len, cases[i].want, strlen(cases[i].want), "event %zu: line", i);
        else
            ok(out.len == 0 && why[0], "event %zu: nothing written, a reason given", i);
        buf_release(&out);
    }
}

int main(void)
{
    payloads();
    packets();
    open_packet();
    events();
    return done_testing();
}
