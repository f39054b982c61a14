#!/bin/sh
# visavis-poster: the demo's REST publisher. Every POST_INTERVAL seconds
# (default 1) it posts a numbered message to channel CHANNEL (default demo)
# with curl, and prints the status, the seq the gateway gave it and its
# body, one line each:
#
#   201 seq 12 "hello #12"
#
# 201 comes only once the message is committed (the same moment the
# subscriber's push leaves). The gateway is at VISAVIS_HTTP_ADDR
# (host:port). Numbering goes on from the channel's last seq, so a restarted
# demo keeps counting. SIGTERM ends it at once with status 0 (it runs as
# PID 1, which has no default signal action).
set -u

url="http://${VISAVIS_HTTP_ADDR:-gateway:8080}"
channel=${CHANNEL:-demo}
interval=${POST_INTERVAL:-1}

trap 'exit 0' TERM INT

# [{"name":"demo","messages":12,"last_seq":12,...},...]: names are
# [A-Za-z0-9._-], so matching on the name is exact.
n=$(curl -fsS --max-time 5 "$url/v1/channels" 2>/dev/null |
    sed -n "s/.*{\"name\":\"$channel\",\"messages\":[0-9]*,\"last_seq\":\([0-9]*\).*/\1/p")
n=${n:-0}

while :; do
    n=$((n + 1))
    # The answer's body, then its status on a line of its own.
    if out=$(curl -sS --max-time 5 -w '\n%{http_code}' -H 'content-type: application/json' \
                  -d "{\"sender\":\"poster\",\"body\":\"hello #$n\"}" \
                  "$url/v1/channels/$channel/messages"); then
        code=$(printf '%s\n' "$out" | tail -n 1)
        reply=$(printf '%s\n' "$out" | sed '$d')
    else
        code=""
        reply=""
    fi
    if [ "$code" = 201 ]; then
        # {"id":12,"channel":"demo","seq":12,"sender":"poster","body":"hello #12",...}
        printf '%s\n' "$reply" |
            sed -n 's/^{"id":[0-9]*,"channel":"[^"]*","seq":\([0-9]*\),"sender":"\([^"\\]\|\\.\)*","body":"\(\([^"\\]\|\\.\)*\)".*/201 seq \1 "\3"/p'
    else
        echo "poster: POST to $url answered ${code:-nothing}: $reply; trying again" >&2
        n=$((n - 1))
    fi
    # A background sleep and wait, so that SIGTERM is handled at once.
    sleep "$interval" &
    wait $!
done
