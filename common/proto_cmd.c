/*
 * proto_cmd.c - op names, HELP text, release; see proto_cmd.h.
 */
#include "proto_cmd.h"

#include <stdlib.h>

static const char *const op_names[PROTO__COUNT] = {
    [PROTO_NONE] = NULL,           [PROTO_HELP] = "help",   [PROTO_PUB] = "pub",
    [PROTO_SUB] = "sub",           [PROTO_UNSUB] = "unsub", [PROTO_HIST] = "hist",
    [PROTO_CHANNELS] = "channels", [PROTO_PING] = "ping",   [PROTO_PONG] = "pong",
    [PROTO_QUIT] = "quit",         [PROTO_NAME] = "name",
};

const char *const proto_usage[] = {
    "HELP: this list",
    "PUB <channel> <text>: publish; answered once stored",
    "SUB <channel> [<since>]: the stored messages after <since>, then new ones as they come",
    "UNSUB <channel>: end a subscription",
    "HIST <channel> [<since> [<limit>]]: read stored messages",
    "CHANNELS [<after> [<limit>]]: the channels by name, 1000 at a time; "
    "ask again after next_after for more",
    "PING [<token>]: answered at once with the server's time",
    "NAME <name>: who you are: the sender of what you publish from now on",
    "PONG: the optional answer to a heartbeat ping; no reply",
    "QUIT (or EXIT): end the session",
    "{\"op\":\"pub\",\"channel\":\"...\",\"body\":\"...\"}: the JSON form of any command",
    NULL,
};

const char *proto_op_name(enum proto_op op)
{
    return (unsigned)op < PROTO__COUNT ? op_names[op] : NULL;
}

void proto_cmd_release(struct proto_cmd *cmd)
{
    free(cmd->owned);
    cmd->owned = NULL;
}
