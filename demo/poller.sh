#!/bin/sh
# visavis-poller: the demo's REST reader, the way clients read before push.
# Every POLL_INTERVAL seconds (default 3) it asks channel CHANNEL (default
# demo) for the messages after its cursor, and prints what it got: one line
# per poll that found something, with how long before the poll the oldest
# of the batch was committed, then each message:
#
#   poll since=9: 3 new (seq 10..12), the oldest committed 2.87 s ago
#   got seq 10 "hello #10"
#
# Beside the subscriber, which prints each message the moment it is stored,
# this shows polling's price: messages arrive late and in batches. It starts
# from the channel's current last seq (as `gwsh --sub` does) and follows
# next_since. The gateway is at VISAVIS_HTTP_ADDR (host:port).
set -u

url="http://${VISAVIS_HTTP_ADDR:-gateway:8080}"
channel=${CHANNEL:-demo}
interval=${POLL_INTERVAL:-3}

trap 'exit 0' TERM INT

since=$(curl -fsS --max-time 5 "$url/v1/channels" 2>/dev/null |
        sed -n "s/.*{\"name\":\"$channel\",\"messages\":[0-9]*,\"last_seq\":\([0-9]*\).*/\1/p")
since=${since:-0}

while :; do
    if page=$(curl -fsS --max-time 10 "$url/v1/channels/$channel/messages?since=$since&limit=1000"); then
        # {"channel":"demo","messages":[{...},{...}],"next_since":N}. Inside
        # a JSON string every quote is escaped, so the text },{"id": can only
        # be the border between two messages, and the last "next_since" is
        # the real one.
        next=$(printf '%s\n' "$page" | sed -n 's/.*"next_since":\([0-9]*\)[,}].*$/\1/p')
        if [ -n "$next" ] && [ "$next" != "$since" ]; then
            msgs=$(printf '%s\n' "$page" | sed -e 's/^{"channel":"[^"]*","messages":\[//' \
                       -e 's/\],"next_since":[0-9]*[,}].*$//' -e 's/},{"id":/}\n{"id":/g')
            count=$(printf '%s\n' "$msgs" | wc -l)
            ts=$(printf '%s\n' "$msgs" | sed -n '1s/.*"ts":"\([^"]*\)".*/\1/p')
            age=""
            if then_ms=$(date -d "$ts" +%s%3N 2>/dev/null); then
                ms=$(($(date +%s%3N) - then_ms))
                age=$(printf ', the oldest committed %d.%02d s ago' \
                          $((ms / 1000)) $((ms % 1000 / 10)))
            fi
            printf 'poll since=%s: %d new (seq %d..%d)%s\n' "$since" "$count" $((since + 1)) "$next" "$age"
            printf '%s\n' "$msgs" |
                sed -n 's/^{"id":[0-9]*,"channel":"[^"]*","seq":\([0-9]*\),"sender":"\([^"\\]\|\\.\)*","body":"\(\([^"\\]\|\\.\)*\)".*/got seq \1 "\3"/p'
            since=$next
        fi
    else
        echo "poller: GET from $url failed; trying again" >&2
        page=""
    fi
    # A page that says more was cut (1000 messages, or its bytes): the rest at once.
    case $page in
    *',"more":true}') continue ;;
    esac
    sleep "$interval" &
    wait $!
done
