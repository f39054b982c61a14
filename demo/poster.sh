#!/bin/sh
# visavis-poster: the demo's REST publisher. Every POST_INTERVAL seconds
# (default 1) it posts a numbered message to channel CHANNEL (default demo)
# with curl, and prints the stored message the gateway answered, one line
# each:
#
#   posted {"id":12,"channel":"demo","seq":12,"sender":"poster","body":"hello #12",...}
#
# The gateway is at VISAVIS_HTTP_ADDR (host:port). Numbering goes on from the
# channel's last seq, so a restarted demo keeps counting. SIGTERM ends it at
# once with status 0 (it runs as PID 1, which has no default signal action).
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
    if reply=$(curl -fsS --max-time 5 -H 'content-type: application/json' \
                    -d "{\"sender\":\"poster\",\"body\":\"hello #$n\"}" \
                    "$url/v1/channels/$channel/messages"); then
        printf 'posted %s\n' "$reply"
    else
        echo "poster: POST to $url failed; trying again" >&2
        n=$((n - 1))
    fi
    # A background sleep and wait, so that SIGTERM is handled at once.
    sleep "$interval" &
    wait $!
done
