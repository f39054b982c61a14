# shellcheck shell=bash disable=SC2154,SC2034  # work, project, rc, project_up ...: run.sh's
# tests/compose/cluster.sh - the compose profile `cluster` on a real engine:
# PostgreSQL, two gateways on it and HAProxy in front (docker-compose.yml,
# cluster/). Sourced by run.sh (`bash tests/compose/run.sh cluster`) once an
# engine answers and the base image is there, with run.sh's helpers (TAP,
# dc/dct/q/qw, svc_id/svc_stdout, wait_healthy, check_follower, cleanup) and
# COMPOSE_PROFILES=cluster. It checks, in order:
#
#   3. docker-compose config -q accepts the file with the profile;
#   4. the images build: visavis, visavis-demo, visavis-postgres, visavis-lb;
#   5. up -d: postgres, gateway-a, gateway-b and lb healthy; only lb is
#      published, on 127.0.0.1, and only its two ports;
#   6. cluster-subscriber (gwsh --sub through lb) prints every message
#      cluster-poster (curl through lb) got a 201 for, seqs without a hole;
#   7. those POSTs reached both gateways (each logged some);
#   8. a commit on gateway-a is pushed by gateway-b to a session it holds
#      (gwsh inside gateway-b's container, curl inside gateway-a's);
#   9. from the host, through lb: REST answers and its POST reaches the
#      subscriber; the session port greets and answers PING;
#  10. gateway-a stopped: the poster's POSTs go on through gateway-b, the
#      subscriber (wherever it was) goes on without a hole; gateway-a
#      started again is healthy;
#  11. down: every container ends on its stop signal with status 0;
#  12. the data survives down + up (volume pgdata): seqs go on;
#  13. down -v removes the project's containers, networks and volumes;
#  14. the engine, if this run started it, is stopped and its traces removed.

# 3. the compose file, with free ports for the demo and for the cluster
VISAVIS_HTTP_PORT=$(free_port)
VISAVIS_TCP_PORT=$(free_port)
VISAVIS_CLUSTER_HTTP_PORT=$(free_port)
VISAVIS_CLUSTER_TCP_PORT=$(free_port)
while [ "$(printf '%s\n' "$VISAVIS_HTTP_PORT" "$VISAVIS_TCP_PORT" "$VISAVIS_CLUSTER_HTTP_PORT" \
    "$VISAVIS_CLUSTER_TCP_PORT" | sort -u | wc -l)" != 4 ]; do
    VISAVIS_CLUSTER_TCP_PORT=$(free_port)
    VISAVIS_CLUSTER_HTTP_PORT=$(free_port)
done
# info: the gateways log every request, which step 7 reads.
VISAVIS_LOG_LEVEL=info
export VISAVIS_HTTP_PORT VISAVIS_TCP_PORT VISAVIS_CLUSTER_HTTP_PORT VISAVIS_CLUSTER_TCP_PORT \
    VISAVIS_LOG_LEVEL
if q dc config -q; then
    ok "docker-compose config -q accepts docker-compose.yml with the cluster profile"
else
    not_ok "docker-compose --profile cluster config -q" "$(dc config -q 2>&1 | tail -n 5)"
    bail "invalid compose file"
fi

# 4. the images
build_images visavis visavis-demo visavis-postgres visavis-lb

# 5. up: healthy, and only the load balancer published, on the loopback
project_up=1
if ! qw dct 240 up -d; then
    not_ok "docker-compose --profile cluster up -d"
    bail "the cluster does not start"
fi
for svc in postgres gateway-a gateway-b lb; do
    if ! why=$(wait_healthy "$svc"); then
        not_ok "$svc is healthy" "$why"
        bail "the cluster is not healthy"
    fi
done
published=""
for svc in postgres gateway-a gateway-b lb; do
    published="$published$(docker port "$(svc_id "$svc")" 2>/dev/null | sed "s/^/$svc /")"$'\n'
done
published=$(grep . <<<"$published" | sort)
want=$(printf 'lb 12345/tcp -> 127.0.0.1:%s\nlb 8080/tcp -> 127.0.0.1:%s\n' \
    "$VISAVIS_CLUSTER_TCP_PORT" "$VISAVIS_CLUSTER_HTTP_PORT" | sort)
if [ "$published" = "$want" ]; then
    ok "up -d: postgres, gateway-a, gateway-b and lb healthy; lb alone published, on 127.0.0.1:$VISAVIS_CLUSTER_HTTP_PORT and :$VISAVIS_CLUSTER_TCP_PORT"
else
    not_ok "only lb is published, on 127.0.0.1" "published: $(tr '\n' ';' <<<"$published")" \
        "wanted: $(tr '\n' ';' <<<"$want")"
fi

# follows: the cluster subscriber has printed at least $1 of the cluster
# poster's messages, consecutive, none missing (why on failure).
follows() {
    sub_msgs cluster-subscriber >"$work/csub.txt"
    check_follower cluster-subscriber "$work/csub.txt" "$1" cluster-poster
}

# 6. the subscriber gets what the poster posted, through the load balancer
good=0
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    why=$(follows 6) && { good=1; break; }
    sleep 1
done
if [ $good = 1 ]; then
    ok "cluster-subscriber (gwsh --sub through lb) printed cluster-poster's messages, seqs without a hole ($why so far)"
else
    not_ok "cluster-subscriber printed cluster-poster's messages" "$why"
fi

# 7. the poster's POSTs went to both gateways
posts() { svc_stdout_err "$1" | grep -c 'http POST /v1/channels/demo/messages 201'; }
svc_stdout_err() { docker logs "$(svc_id "$1")" 2>&1; }
a=$(posts gateway-a)
b=$(posts gateway-b)
if [ "${a:-0}" -ge 1 ] && [ "${b:-0}" -ge 1 ]; then
    ok "the POSTs through lb reached both gateways ($a on gateway-a, $b on gateway-b)"
else
    not_ok "the POSTs through lb reach both gateways" "gateway-a logged ${a:-0}, gateway-b ${b:-0}"
fi

# 8. a commit on gateway-a, pushed by gateway-b
ida=$(svc_id gateway-a)
idb=$(svc_id gateway-b)
docker exec "$idb" timeout 30 gwsh --sub across --since 0 127.0.0.1:12345 \
    >"$work/across.out" 2>"$work/across.err" &
follower=$!
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ] && ! grep -q 'following across' "$work/across.err"; do sleep 0.2; done
posted=$(docker exec "$ida" curl -fsS --max-time 10 -H 'content-type: application/json' \
    -d '{"sender":"a","body":"committed on gateway-a"}' \
    http://127.0.0.1:8080/v1/channels/across/messages 2>&1)
deadline=$((SECONDS + 15))
while [ $SECONDS -lt $deadline ] && ! grep -qF "$posted" "$work/across.out"; do sleep 0.2; done
kill "$follower" 2>/dev/null
wait "$follower" 2>/dev/null
if grep -q 'following across' "$work/across.err" && [ -n "$posted" ] && grep -qxF "$posted" "$work/across.out"; then
    ok "a commit on gateway-a is pushed by gateway-b to its session, as gateway-a answered it"
else
    not_ok "a commit on gateway-a reaches a session on gateway-b" "posted: $posted" \
        "the session on gateway-b printed: $(head -c 300 "$work/across.out")" \
        "its status: $(tail -n 3 "$work/across.err")"
fi

# 9. from the host, through lb
chttp() { curl -fsS --max-time 10 "http://127.0.0.1:$VISAVIS_CLUSTER_HTTP_PORT$1"; }
health=$(chttp /healthz 2>&1)
body="from the host, $project"
posted=$(curl -fsS --max-time 10 -H 'content-type: application/json' \
    -d "{\"sender\":\"host\",\"body\":\"$body\"}" \
    "http://127.0.0.1:$VISAVIS_CLUSTER_HTTP_PORT/v1/channels/demo/messages" 2>&1)
want_push=$(sed -n 's/^{"id":[0-9]*,"channel":"demo","seq":\([0-9]*\),.*/\1 "'"$body"'"/p' <<<"$posted")
pushed=0
deadline=$((SECONDS + 15))
while [ $SECONDS -lt $deadline ]; do
    if [ -n "$want_push" ] && sub_msgs cluster-subscriber | grep -qxF "$want_push"; then
        pushed=1
        break
    fi
    sleep 0.5
done
greet="" reply=""
if exec {s}<>"/dev/tcp/127.0.0.1/$VISAVIS_CLUSTER_TCP_PORT" 2>/dev/null; then
    read -r -t 10 greet <&"$s"
    printf 'PING host\r\n' >&"$s"
    read -r -t 10 reply <&"$s"
    printf 'QUIT\r\n' >&"$s"
    exec {s}>&-
fi
if [ "$health" = '{"status":"ok"}' ] && [ $pushed = 1 ] &&
    [[ $greet == '{"type":"hello","protocol":"visavis"'* ]] && [[ $reply == '{"type":"pong","token":"host"'* ]]; then
    ok "from the host through lb: REST on 127.0.0.1:$VISAVIS_CLUSTER_HTTP_PORT (its POST reached the subscriber), sessions on :$VISAVIS_CLUSTER_TCP_PORT"
else
    not_ok "the cluster answers from the host through lb" "healthz: $health" "POST: $posted" \
        "pushed to the subscriber: $pushed" "greeting: $greet" "reply to PING: $reply"
fi

# 10. one gateway stopped: the rest goes on through the other, without a hole
top_before=$(poster_msgs cluster-poster | tail -n 1 | seqs)
if q dct 60 stop gateway-a; then
    good=0
    deadline=$((SECONDS + 60))
    while [ $SECONDS -lt $deadline ]; do
        top_now=$(poster_msgs cluster-poster | tail -n 1 | seqs)
        got_top=$(sub_msgs cluster-subscriber | tail -n 1 | seqs)
        if [ "${top_now:-0}" -ge $((${top_before:-0} + 5)) ] && [ "${got_top:-0}" -ge "${top_now:-0}" ] &&
            why=$(follows 6); then
            good=1
            break
        fi
        sleep 1
    done
    if [ $good = 1 ] && q dct 60 start gateway-a && why=$(wait_healthy gateway-a); then
        ok "gateway-a stopped: posts went on through gateway-b (seq ${top_before:-?} to $top_now), the subscriber without a hole; gateway-a back, healthy"
    else
        not_ok "the cluster goes on while gateway-a is stopped" "${why:-}" \
            "poster's last seq before: ${top_before:-none}, now: ${top_now:-none}; subscriber's: ${got_top:-none}"
    fi
else
    not_ok "docker-compose stop gateway-a"
fi

# 11. down: every container ends on its stop signal with status 0
first=$(chttp '/v1/channels/demo/messages?since=0&limit=1' |
    sed -n 's/^{"channel":"demo","messages":\[\(.*\)\],"next_since":[0-9]*\(,"more":true\)\{0,1\}}$/\1/p')
top=$(chttp /v1/channels | sed -n 's/.*{"name":"demo","messages":[0-9]*,"last_seq":\([0-9]*\).*/\1/p')
watched_down 120
if [ "$rc" = 0 ] && [ "$dies" -ge 10 ] && [ -z "$bad" ] && [ -z "$left" ]; then
    ok "down took $down_ms ms; the $dies containers exited 0 on their stop signals"
else
    not_ok "down: every container exits 0" "status $rc, $down_ms ms" \
        "exits: $(tr '\n' ';' <"$work/events.txt")" "containers left: $left"
fi

# 12. the data survives down + up (volume pgdata)
why=""
if ! qw dct 240 up -d; then
    why="up -d failed"
else
    for svc in postgres gateway-a gateway-b lb; do
        why=$(wait_healthy "$svc") || break
        why=""
    done
fi
if [ -z "$why" ]; then
    again=$(chttp '/v1/channels/demo/messages?since=0&limit=1' |
        sed -n 's/^{"channel":"demo","messages":\[\(.*\)\],"next_since":[0-9]*\(,"more":true\)\{0,1\}}$/\1/p')
    [ -n "$first" ] && [ "$again" = "$first" ] || why="first message before: $first; after: $again"
    next=""
    deadline=$((SECONDS + 30))
    while [ -z "$why" ] && [ $SECONDS -lt $deadline ]; do
        next=$(poster_msgs cluster-poster | head -n 1 | seqs)
        [ -n "$next" ] && break
        sleep 0.5
    done
    [ -z "$why" ] && ! [ "${next:-0}" -gt "${top:-0}" ] &&
        why="last seq read before down: ${top:-none}; the poster's first seq after up: ${next:-none}"
fi
if [ -z "$why" ]; then
    ok "the data survives down + up in volume ${project}_pgdata (message 1 unchanged, seq goes on: $next > $top)"
else
    not_ok "the cluster's data survives down + up" "$why"
fi

# 13. everything the project made is gone
if left=$(remove_all); then
    project_up=0
    ok "down -v removed the project's containers, network and volumes"
else
    not_ok "down -v removes the project's containers, network and volumes" "left:$left"
fi

# 14. the engine
engine_gone
