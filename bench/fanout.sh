#!/usr/bin/env bash
# Fan-out benchmark: one publisher to N subscribers, the gateway over TCP,
# WebSocket and Server-Sent Events beside Nchan (WebSocket and EventSource
# subscribers), redis pub/sub and NATS, in one run; idle subscribed
# connections and what they cost each server; REST publish against Nchan's.
#
#   bash bench/fanout.sh          (from the repo root; see bench/README.md)
#
# Every server runs on the first CPU of this script's affinity list (every
# thread, pinned with taskset), sockbench and wrk on the second. For each N
# (100, 1,000, 10,000) and each server, sockbench (clients/sockbench/)
# subscribes N connections to a fresh channel, then publishes on one more:
#   - paced: FANOUT_LOAD / N messages a second for FANOUT_SECONDS (at least
#     MIN_MESSAGES messages), each body holding its send time: publish -> last
#     subscriber p50/p99, publish -> first subscriber p50, per delivery;
#   - a burst of BURST_DELIVERIES / N messages (10..1,000) at once: deliveries/s;
#   and the server's CPU time over the run per delivery.
# Idle: IDLE_TCP subscribed TCP sessions (100,000: several 127.0.0.x source
# addresses), IDLE_WS WebSockets and IDLE_SSE event streams on the gateway,
# IDLE_REF subscribers of each reference, each on a freshly started server:
# its VmRSS before and after, per connection. REST publish: wrk -t1 -c50, the
# gateway's durable POST against Nchan's POST /pub. PROFILE=1: the gateway's
# perf profile during one more TCP fan-out at the largest N.
# It prints one table, the ratios against each reference, and the targets
# with PASS/MISS. Everything listens on 127.0.0.x, stops on exit, and lives
# in a temporary folder removed on exit.
#
# Environment (all optional):
#   NS="100 1000 10000"   subscriber counts         SIZE=100  body bytes, every server
#   FANOUT_LOAD=20000     paced deliveries/s offered (rate = FANOUT_LOAD / N: a message's
#                         fan-out to 10,000 ends before the next starts, on every server)
#   FANOUT_SECONDS=3      paced publishing time      MIN_MESSAGES=20
#   BURST_DELIVERIES=1000000  deliveries of the burst (burst = this / N, 10..1000)
#   KINDS="gw-tcp gw-ws gw-sse nchan-ws nchan-sse redis nats"   what runs the fan-out
#   IDLE_TCP=100000 IDLE_WS=10000 IDLE_SSE=10000 IDLE_REF=10000  (0: skip that run)
#   REST_SECONDS=5        wrk duration of the REST publish runs (0: skip)
#   PROFILE=1             profile the gateway with perf (0: skip; skipped without perf)
#   GATEWAY_BIN=path      measure this gateway binary instead of building build-release
#   STRICT=1              exit 1 when a target is missed (default: report only)
#   KEEP_TMP=1            keep the temporary folder (RESULT lines, logs, profile)
#   BENCH_TMPDIR=/var/tmp where the temporary folder is made (a real disk: the
#                         gateway fsyncs every commit)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=fanout.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source bench/lib.sh

: "${NS:=100 1000 10000}" "${SIZE:=100}" "${FANOUT_LOAD:=20000}" "${FANOUT_SECONDS:=3}" \
    "${MIN_MESSAGES:=20}" "${BURST_DELIVERIES:=1000000}" "${IDLE_TCP:=100000}" "${IDLE_WS:=10000}" \
    "${IDLE_SSE:=10000}" "${IDLE_REF:=10000}" "${REST_SECONDS:=5}" "${PROFILE:=1}"
: "${KINDS:=gw-tcp gw-ws gw-sse nchan-ws nchan-sse redis nats}"
GATEWAY_BIN=${GATEWAY_BIN:-}
GW=${GATEWAY_BIN:-build-release/gateway/visavis-gateway}
SB=build-release/clients/sockbench/sockbench
REF_N=1000 # the N of issue 15's redis and NATS targets

require_positive_ints SIZE FANOUT_LOAD FANOUT_SECONDS MIN_MESSAGES BURST_DELIVERIES
for v in IDLE_TCP IDLE_WS IDLE_SSE IDLE_REF REST_SECONDS PROFILE; do
    [[ ${!v} =~ ^[0-9]+$ ]] || { echo "fanout.sh: $v must be a number" >&2; exit 2; }
done
for n in $NS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] || { echo "fanout.sh: NS must hold positive integers" >&2; exit 2; }
done
((SIZE >= 40)) || { echo "fanout.sh: SIZE must be at least 40 (the body holds a timestamp)" >&2; exit 2; }
declare -A KIND_LABEL=(
    [gw-tcp]="visavis TCP" [gw-ws]="visavis WebSocket" [gw-sse]="visavis SSE"
    [nchan-ws]="Nchan WebSocket" [nchan-sse]="Nchan EventSource" [redis]="redis pub/sub"
    [nats]="NATS"
)
declare -A KIND_MODE=(
    [gw-tcp]=fanout [gw-ws]=ws-fanout [gw-sse]=sse-fanout [nchan-ws]=nchan-ws-fanout
    [nchan-sse]=nchan-sse-fanout [redis]=redis-fanout [nats]=nats-fanout
)
for k in $KINDS; do
    [[ -n ${KIND_MODE[$k]:-} ]] || { echo "fanout.sh: unknown kind '$k' in KINDS" >&2; exit 2; }
done
has_kind() { [[ " $KINDS " == *" $1 "* ]]; }
MAX_N=0
for n in $NS; do ((n > MAX_N)) && MAX_N=$n; done

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
# What is measured: the commit (and whether the tree differs from it) or the binary given.
if [[ -n $GATEWAY_BIN ]]; then
    GW_VERSION=$GATEWAY_BIN
else
    GW_VERSION="$(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet HEAD -- 2>/dev/null || echo '+changes') (build-release)"
fi
DATE_START=$(date -u '+%Y-%m-%d %H:%M UTC')

# --- 1. packages and build ---------------------------------------------------------
PKGS=(redis-server redis-tools nats-server nginx-light libnginx-mod-nchan wrk gcc libc6-dev meson
    ninja-build pkg-config libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev libwslay-dev
    nettle-dev curl python3)
if ((PROFILE)); then PKGS+=(linux-perf); fi
ensure_packages "${PKGS[@]}"
if [[ -z $GATEWAY_BIN ]]; then
    build_release gateway/visavis-gateway clients/sockbench/sockbench
else
    build_release clients/sockbench/sockbench
fi
[[ -x $SB ]] || die "$SB was not built"
[[ -x $GW ]] || die "$GW was not built"
NCHAN_SO=/usr/lib/nginx/modules/ngx_nchan_module.so
[[ -f $NCHAN_SO ]] || die "no $NCHAN_SO (libnginx-mod-nchan)"
PERF=
if ((PROFILE)) && command -v perf >/dev/null; then PERF=perf; fi

# --- 2. limits and CPUs --------------------------------------------------------------
# Open files: an idle run holds its sockets in sockbench and as many in the
# server; the gateway asks for room for its three connection limits and 128
# of its own. Root raises the hard limit too, which the servers inherit (the
# gateway raises its own soft limit to it). Where the hard limit cannot be
# raised (no CAP_SYS_RESOURCE, as in some containers), the idle runs are cut
# to what it allows, and the report says so.
NOTES=()
BIGGEST=$MAX_N
for v in IDLE_TCP IDLE_WS IDLE_SSE IDLE_REF; do ((${!v} > BIGGEST)) && BIGGEST=${!v}; done
NOFILE_NEED=$((3 * (BIGGEST + 1024) + 256))
if (($(ulimit -n) < NOFILE_NEED)); then
    if ! ulimit -n "$NOFILE_NEED" 2>/dev/null; then
        hard=$(ulimit -Hn)
        [[ $hard == unlimited ]] || ulimit -n "$hard"
    fi
fi
NOFILE=$(ulimit -n)
FIT=$((NOFILE - 512)) # sockets one process can hold besides its own files
((MAX_N <= FIT)) || die "N=$MAX_N needs more open files than the limit ($NOFILE) allows"
for v in IDLE_TCP IDLE_WS IDLE_SSE IDLE_REF; do
    if ((${!v} > FIT)); then
        NOTES+=("$v cut from ${!v} to $FIT: $NOFILE open files per process at most here (ulimit -Hn; raising it needs root with CAP_SYS_RESOURCE)")
        printf -v "$v" '%s' "$FIT"
    fi
done
BIGGEST=$MAX_N
for v in IDLE_TCP IDLE_WS IDLE_SSE IDLE_REF; do ((${!v} > BIGGEST)) && BIGGEST=${!v}; done
MAX_CONN=$((BIGGEST + 1024))

affinity_cpus
SERVER_CPU=${CPU_LIST[0]}
CLIENT_CPU=${CPU_LIST[1]:-${CPU_LIST[0]}}
SB_PIN=(taskset -c "$CLIENT_CPU")
WRK_PIN=("${SB_PIN[@]}")
SB_TIMEOUT=$((FANOUT_SECONDS + 300))
pin() { # pid: every thread of it on the server CPU
    taskset -a -p -c "$SERVER_CPU" "$1" >/dev/null || die "taskset -a -p -c $SERVER_CPU $1 failed"
}

make_tmp visavis-fanout
say "temporary folder $TMP ($(tmp_fstype)); servers on CPU $SERVER_CPU, sockbench and wrk on CPU $CLIENT_CPU"
for note in "${NOTES[@]}"; do say "note: $note"; done

# --- 3. servers ----------------------------------------------------------------------
# A gateway of its own for each idle run and one for the fan-out: fresh, so no
# memory freed by an earlier run is reused; its limits what the run needs
# (HTTP: room for the 256 upgrades sockbench has under way at once, too).
# Sets GW_PID GW_PORT GW_TCP.
start_gw() { # name tcp-sessions ws-sessions sse-streams
    # Every front's limit is given, sized for the run: a limit left at its
    # default is cut to fit the open files allowed (20,000 here), which
    # would refuse a run's last streams with 429. A front the run does not
    # use gets a few places; SSE streams begin as HTTP requests, so the
    # HTTP limit makes room for the 256 upgrades sockbench has under way.
    local help limits=()
    help=$("$GW" --help 2>/dev/null)
    # A GATEWAY_BIN from before a front has no option for it.
    [[ $help == *--max-ws-sessions* ]] && limits+=(--max-ws-sessions "$(($3 + 64))")
    [[ $help == *--max-sse-streams* ]] && limits+=(--max-sse-streams "$(($4 + 64))")
    [[ $help == *--max-sio-sessions* ]] && limits+=(--max-sio-sessions 64)
    GW_NAME=$1 start_gateway --need-tcp --http-addr 127.0.0.1:0 --tcp-addr 127.0.0.1:0 \
        --db "$TMP/$1.db" --log-level warn --max-sessions "$(($2 + 64))" "${limits[@]}" \
        --max-connections "$(($4 + 512))"
    pin "$GW_PID"
}

# shellcheck disable=SC2317  # called through wait_ready
redis_pong() { [[ $(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]]; }
start_redis() { # name port: sets REDIS_PID
    # protected-mode no: it listens on 127.0.0.1 only, and the clients come from 127.0.0.x.
    spawn_redis "$1" "$2" --appendonly no --protected-mode no --maxclients "$MAX_CONN"
    wait_ready "$REDIS_PID" "redis-server ($1)" "$TMP/$1/redis.log" "exited before answering" \
        "does not answer PING on 127.0.0.1:$2" redis_pong "$2"
    pin "$REDIS_PID"
}

# shellcheck disable=SC2317  # called through wait_ready
nats_info() { timeout 1 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1 && head -c 4 <&3" 2>/dev/null | grep -q INFO; }
start_nats() { # name port: sets NATS_PID
    mkdir -p "$TMP/$1"
    cat >"$TMP/$1/nats.conf" <<EOF
listen: 127.0.0.1:$2
max_connections: $MAX_CONN
max_pending: 64MB
write_deadline: "10s"
EOF
    taskset -c "$SERVER_CPU" nats-server -c "$TMP/$1/nats.conf" -l "$TMP/$1/nats.log" &
    NATS_PID=$!
    PIDS+=("$NATS_PID")
    wait_ready "$NATS_PID" "nats-server ($1)" "$TMP/$1/nats.log" "exited before answering" \
        "sends no INFO on 127.0.0.1:$2" nats_info "$2"
}

# shellcheck disable=SC2317  # called through wait_ready
nginx_up() { [[ $(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://127.0.0.1:$1/pub/up") == 404 ]]; }
# nginx with Nchan, one worker, in $TMP/name. Sets NGINX_PID (the master) and
# NGINX_WORKER (the process that serves, whose memory is measured).
start_nginx() { # name port
    local d="$TMP/$1" i NGX_CONN=$((MAX_CONN < NOFILE - 64 ? MAX_CONN : NOFILE - 64))
    mkdir -p "$d/tmp"
    cat >"$d/nginx.conf" <<EOF
load_module $NCHAN_SO;
worker_processes 1;
daemon off;
master_process on;
pid $d/nginx.pid;
error_log $d/error.log warn;
worker_rlimit_nofile $NOFILE;
events { worker_connections $NGX_CONN; }
http {
    access_log off;
    client_body_temp_path $d/tmp/body;
    proxy_temp_path $d/tmp/proxy;
    fastcgi_temp_path $d/tmp/fastcgi;
    uwsgi_temp_path $d/tmp/uwsgi;
    scgi_temp_path $d/tmp/scgi;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    nchan_max_reserved_memory 256M;
    server {
        listen 127.0.0.1:$2 backlog=4096;
        # Subscribers get what is published after they came (the benchmark's channels are new).
        location ~ ^/sub/([^/]+)\$ {
            nchan_subscriber websocket eventsource;
            nchan_channel_id \$1;
            nchan_subscriber_first_message newest;
        }
        location ~ ^/pub/([^/]+)\$ {
            nchan_publisher http;
            nchan_channel_id \$1;
            nchan_message_buffer_length 100;
            nchan_message_timeout 60s;
        }
    }
}
EOF
    taskset -c "$SERVER_CPU" nginx -c "$d/nginx.conf" -p "$d/" >"$d/out.log" 2>&1 &
    NGINX_PID=$!
    PIDS+=("$NGINX_PID")
    wait_ready "$NGINX_PID" "nginx ($1)" "$d/error.log" "exited before answering" \
        "does not answer on 127.0.0.1:$2" nginx_up "$2"
    NGINX_WORKER=
    for ((i = 0; i < 100; i++)); do
        NGINX_WORKER=$(pgrep -P "$NGINX_PID" | head -n 1) && [[ -n $NGINX_WORKER ]] && break
        sleep 0.05
    done
    [[ -n $NGINX_WORKER ]] || die "nginx ($1) has no worker process"
}

# --- 4. runs -------------------------------------------------------------------------
declare -A F LABEL # F[key.field] from RESULT lines (sb, lib.sh)

# -- idle, each on a fresh server, stopped after
idle_gw() { # key sessions mode label
    case $3 in
        idle) start_gw "gateway-$1" "$2" 0 0 ;;
        ws-idle) start_gw "gateway-$1" 0 "$2" 0 ;;
        *) start_gw "gateway-$1" 0 0 "$2" ;;
    esac
    local port=$GW_TCP
    [[ $3 == idle ]] || port=$GW_PORT
    sb "$1" "$4" "$3" --port "$port" --connections "$2" --pid "$GW_PID" --channel idle \
        --timeout 30
    stop_server "$GW_PID"
}
if ((IDLE_TCP)); then idle_gw idle_tcp "$IDLE_TCP" idle "visavis TCP, subscribed"; fi
if ((IDLE_REF && IDLE_REF != IDLE_TCP)); then
    idle_gw idle_tcp_ref "$IDLE_REF" idle "visavis TCP, subscribed"
fi
if ((IDLE_WS)); then idle_gw idle_ws "$IDLE_WS" ws-idle "visavis WebSocket, subscribed"; fi
if ((IDLE_SSE)); then idle_gw idle_sse "$IDLE_SSE" sse-idle "visavis SSE stream"; fi
if ((IDLE_REF)); then
    port=$(free_port)
    start_redis redis-idle "$port"
    sb idle_redis "redis, SUBSCRIBEd" redis-idle --port "$port" --connections "$IDLE_REF" \
        --pid "$REDIS_PID" --channel idle --timeout 30
    stop_server "$REDIS_PID"
    port=$(free_port)
    start_nats nats-idle "$port"
    sb idle_nats "NATS, SUBscribed" nats-idle --port "$port" --connections "$IDLE_REF" \
        --pid "$NATS_PID" --channel idle --timeout 30
    stop_server "$NATS_PID"
    for k in ws sse; do
        port=$(free_port)
        start_nginx "nginx-idle-$k" "$port"
        sb "idle_nchan_$k" "${KIND_LABEL[nchan-$k]}" "nchan-$k-idle" --port "$port" \
            --connections "$IDLE_REF" --pid "$NGINX_WORKER" --channel idle --timeout 30
        stop_server "$NGINX_PID"
    done
fi

# -- the servers of the fan-out runs, fresh
start_gw gateway "$MAX_N" "$MAX_N" "$MAX_N"
GWF_PID=$GW_PID GWF_HTTP=$GW_PORT GWF_TCP=$GW_TCP
REDIS_PORT=$(free_port)
start_redis redis "$REDIS_PORT"
NATS_PORT=$(free_port)
start_nats nats "$NATS_PORT"
NGINX_PORT=$(free_port)
start_nginx nginx "$NGINX_PORT"
LOAD_RUNS=$(cut -d' ' -f1-3 /proc/loadavg)

# The subscribers' port (and the publisher's) of each kind.
kind_ports() { # kind
    case $1 in
        gw-tcp) echo "--port $GWF_TCP" ;;
        gw-ws | gw-sse) echo "--port $GWF_HTTP --pub-port $GWF_TCP" ;;
        nchan-*) echo "--port $NGINX_PORT" ;;
        redis) echo "--port $REDIS_PORT" ;;
        nats) echo "--port $NATS_PORT" ;;
    esac
}
# The paced rate and message count, and the burst, for N subscribers.
rate_of() { awk -v l="$FANOUT_LOAD" -v n="$1" 'BEGIN { r = l / n; if (r > 5000) r = 5000; printf "%g", r }'; }
msgs_of() { awk -v r="$(rate_of "$1")" -v s="$FANOUT_SECONDS" -v m="$MIN_MESSAGES" 'BEGIN { k = int(r * s + 0.5); if (k < m) k = m; print k }'; }
burst_of() { awk -v d="$BURST_DELIVERIES" -v n="$1" 'BEGIN { b = int(d / n); if (b > 1000) b = 1000; if (b < 10) b = 10; print b }'; }

# The process that serves each kind, whose CPU time a run costs.
kind_pid() { # kind
    case $1 in
        gw-*) echo "$GWF_PID" ;;
        nchan-*) echo "$NGINX_WORKER" ;;
        redis) echo "$REDIS_PID" ;;
        nats) echo "$NATS_PID" ;;
    esac
}
# CPU time (user + system, every thread) of a process so far, in clock ticks.
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
CLK_TCK=$(getconf CLK_TCK)
declare -A SRV_CPU_US # microseconds of the server's CPU per delivery, by run

GW_CHANNELS=()
for n in $NS; do
    for k in $KINDS; do
        ch="fan-$k-$n"
        spid=$(kind_pid "$k")
        t0=$(cpu_ticks "$spid")
        # shellcheck disable=SC2046  # kind_ports gives separate words on purpose
        sb "fan_${k}_$n" "${KIND_LABEL[$k]}" "${KIND_MODE[$k]}" $(kind_ports "$k") \
            --subscribers "$n" --rate "$(rate_of "$n")" --messages "$(msgs_of "$n")" \
            --burst "$(burst_of "$n")" --size "$SIZE" --channel "$ch" --timeout 30
        SRV_CPU_US["fan_${k}_$n"]=$(awk -v t="$(($(cpu_ticks "$spid") - t0))" -v hz="$CLK_TCK" \
            -v d="${F[fan_${k}_$n.deliveries]}" 'BEGIN { printf "%.2f", d ? t / hz * 1e6 / d : 0 }')
        if [[ $k == gw-* ]]; then GW_CHANNELS+=("$ch:$(($(msgs_of "$n") + $(burst_of "$n")))"); fi
    done
done

# Every acknowledged publish is in the gateway's store, and nothing more.
if ((${#GW_CHANNELS[@]})); then
    r=$(curl -fsS -m 10 "http://127.0.0.1:$GWF_HTTP/v1/channels") || die "GET /v1/channels failed"
    exp="{$(for c in "${GW_CHANNELS[@]}"; do printf "'%s': %s, " "${c%%:*}" "${c##*:}"; done)}"
    check_json "the gateway's store holds exactly the acknowledged publishes" "$r" \
        "{c['name']: c['messages'] for c in channels if c['name'].startswith('fan-gw-')} == $exp"
    say "store check: ${#GW_CHANNELS[@]} channels hold exactly what was acknowledged"
fi

# -- REST publish: the gateway's durable POST against Nchan's, wrk -t1 -c50
# shellcheck disable=SC2034  # REQS: run_wrk (lib.sh) fills it too
declare -A RPS P50 P99 REQS
RUN_ORDER=()
if ((REST_SECONDS)); then
    THREADS=1 CONNECTIONS=50 DURATION=$REST_SECONDS
    LABEL[rest_gw]="visavis POST /v1/channels/benchpost/messages (durable)"
    LABEL[rest_nchan]="Nchan POST /pub/benchpost (memory)"
    run_wrk rest_gw "${LABEL[rest_gw]}" bench/gw_post.lua \
        "http://127.0.0.1:$GWF_HTTP/v1/channels/benchpost/messages"
    run_wrk rest_nchan "${LABEL[rest_nchan]}" bench/nchan_pub.lua \
        "http://127.0.0.1:$NGINX_PORT/pub/benchpost"
fi

# -- the gateway's profile during one more TCP fan-out at the largest N
PROFILE_TOP='' PROFILE_DSO=''
if [[ -n $PERF ]] && has_kind gw-tcp; then
    say "perf record of the gateway during a TCP fan-out to $MAX_N"
    "$PERF" record -F 999 -g -p "$GWF_PID" -o "$TMP/perf.data" >"$TMP/perf.log" 2>&1 &
    PERF_PID=$!
    PIDS+=("$PERF_PID")
    sleep 0.5 # perf attaches asynchronously; an unprofiled start costs nothing but samples
    sb prof "visavis TCP (profiled)" fanout --port "$GWF_TCP" --subscribers "$MAX_N" \
        --rate "$(rate_of "$MAX_N")" --messages "$(msgs_of "$MAX_N")" --burst "$(burst_of "$MAX_N")" \
        --size "$SIZE" --channel "prof-$MAX_N" --timeout 30
    kill -INT "$PERF_PID" 2>/dev/null
    reap "$PERF_PID"
    # Self time, by object, then by function; perf's empty trailing columns cut.
    perf_top() { # sort-keys lines
        "$PERF" report -i "$TMP/perf.data" --stdio --no-children --sort "$1" -g none \
            --percent-limit 0.5 2>/dev/null | grep -v -e '^#' -e '^$' | sed 's/[ -]*$//' | head -n "$2"
    }
    PROFILE_DSO=$(perf_top dso 8) || true
    PROFILE_TOP=$(perf_top dso,symbol 30) || true
fi

# --- 5. table ------------------------------------------------------------------------
MISSED=0
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b + 0 == 0) print "n/a"; else printf "%.2f", a / b }'; }
ms() { awk -v us="$1" 'BEGIN { if (us >= 10000) printf "%.1f ms", us / 1000; else printf "%.2f ms", us / 1000 }'; }
thousands() { printf "%'d" "$1" 2>/dev/null || printf "%d" "$1"; }
check() { # label value shown-value op target [suffix]
    local v=PASS
    if [[ $2 == n/a ]]; then
        v="(no figure)"
    elif [[ -z $4 ]]; then
        v="(info)"
    elif ! awk -v a="$2" -v b="$5" -v op="$4" 'BEGIN { exit !(op == "<=" ? a <= b : op == "<" ? a < b : a >= b) }'; then
        v=MISS
        MISSED=$((MISSED + 1))
    fi
    printf '  %-62s %10s   %-9s %s\n' "$1" "$3" "${4:+$4 $5${6:-}}" "$v"
}
have() { [[ -n ${F[$1.p50_us]:-} || -n ${F[$1.per_session_bytes]:-} ]]; }

echo
echo "visavis fan-out benchmark, $DATE_START; $(nproc) cores ($(uname -r)); servers pinned to CPU $SERVER_CPU," \
    "sockbench and wrk to CPU $CLIENT_CPU"
echo "load average: $LOAD_START when the script started, $LOAD_RUNS when the fan-out runs began" \
    "(other work on this machine skews every number)"
echo "servers: visavis $GW_VERSION; redis $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p');" \
    "nats-server $(nats-server --version | sed 's/.*v//'); nginx $(nginx -v 2>&1 | sed 's|.*/||') with Nchan" \
    "$(dpkg-query -W -f '${Version}' libnginx-mod-nchan 2>/dev/null | sed 's/^[0-9]*://; s/+.*//')"
for note in "${NOTES[@]}"; do echo "note: $note"; done
echo
echo "1 -> N fan-out: $SIZE-byte bodies; paced at $FANOUT_LOAD deliveries/s (rate = $FANOUT_LOAD / N msgs/s) for" \
    "${FANOUT_SECONDS}s (at least $MIN_MESSAGES msgs), then a burst of $BURST_DELIVERIES / N msgs"
printf '  %-7s %-18s %7s %6s %10s %10s %10s %10s %10s %12s %6s %9s\n' N server "msgs/s" msgs "last p50" \
    "last p99" "first p50" "each p50" "ack p50" "deliv/s" "cpu" "srv us/d"
for n in $NS; do
    first=1
    for k in $KINDS; do
        key="fan_${k}_$n"
        have "$key" || continue
        printf '  %-7s %-18s %7s %6s %10s %10s %10s %10s %10s %12s %5s%% %9s\n' \
            "$( ((first)) && thousands "$n")" "${KIND_LABEL[$k]}" "${F[$key.rate]}" "${F[$key.messages]}" \
            "$(ms "${F[$key.p50_us]}")" "$(ms "${F[$key.p99_us]}")" "$(ms "${F[$key.first_p50_us]}")" \
            "$(ms "${F[$key.each_p50_us]}")" "$(ms "${F[$key.ack_p50_us]}")" \
            "$(thousands "${F[$key.deliveries_per_s]}")" "${F[$key.burst_client_cpu_pct]}" \
            "${SRV_CPU_US[$key]}"
        first=0
    done
done
echo "  (last/first: publish -> the last/first subscriber to get each message, p50/p99 over the"
echo "   paced messages; each: over every delivery; ack: publish -> the publisher's own reply;"
echo "   deliv/s and cpu: the burst's deliveries per second and sockbench's CPU meanwhile, of one core;"
echo "   srv us/d: the server's CPU time over the whole run (subscribing, paced, burst) per delivery,"
echo "   in microseconds: what a delivery costs the server even when the client sets the pace)"

# Ratios of the gateway's rows to each reference, at every N.
REFS=()
for pair in "gw-tcp redis" "gw-tcp nats" "gw-tcp nchan-sse" "gw-ws nchan-ws" "gw-sse nchan-sse"; do
    # shellcheck disable=SC2086
    set -- $pair
    if has_kind "$1" && has_kind "$2"; then REFS+=("$pair"); fi
done
if ((${#REFS[@]})); then
    echo
    echo "ratios in this run: visavis / reference (latency: lower is better; deliveries/s: higher)"
    printf '  %-7s %-14s' N metric
    for pair in "${REFS[@]}"; do
        # shellcheck disable=SC2086
        set -- $pair
        printf ' %17s' "${1#gw-}/$2"
    done
    printf '\n'
    for n in $NS; do
        for m in "last p50:p50_us" "last p99:p99_us" "first p50:first_p50_us" "deliveries/s:deliveries_per_s"; do
            printf '  %-7s %-14s' "$([[ $m == last\ p50* ]] && thousands "$n")" "${m%%:*}"
            for pair in "${REFS[@]}"; do
                # shellcheck disable=SC2086
                set -- $pair
                a=${F[fan_$1_$n.${m#*:}]:-} b=${F[fan_$2_$n.${m#*:}]:-}
                printf ' %16sx' "$([[ -n $a && -n $b ]] && ratio "$a" "$b" || echo -)"
            done
            printf '\n'
        done
    done
fi

IDLE_KEYS=(idle_tcp idle_tcp_ref idle_ws idle_sse idle_redis idle_nats idle_nchan_ws idle_nchan_sse)
echo
echo "idle subscribed connections, each run on a freshly started server: its VmRSS before and after"
printf '  %-34s %10s %10s %10s %11s\n' server connections "before kB" "after kB" "B/connection"
for k in "${IDLE_KEYS[@]}"; do
    have "$k" || continue
    printf '  %-34s %10s %10s %10s %11s\n' "${LABEL[$k]}" "$(thousands "${F[$k.sessions]}")" \
        "${F[$k.rss_before_kb]}" "${F[$k.rss_after_kb]}" "${F[$k.per_session_bytes]}"
done
echo "  (kernel socket buffers are not in a process's RSS, for any server; Nchan: its worker process)"

if ((REST_SECONDS)); then
    echo
    echo "REST publish, wrk -t1 -c50 -d${REST_SECONDS}s --latency, keep-alive, a 100-byte message"
    printf '  %-62s %10s %10s %10s\n' run "req/s" "p50" "p99"
    for k in "${RUN_ORDER[@]}"; do
        printf '  %-62s %10.0f %10s %10s\n' "${LABEL[$k]:-$k}" "${RPS[$k]}" "$(ms "${P50[$k]}")" "$(ms "${P99[$k]}")"
    done
fi
if [[ -n $PROFILE_TOP ]]; then
    echo
    echo "the gateway's profile during one more TCP fan-out to $(thousands "$MAX_N") (perf -F 999, self time):"
    echo "  by object:"
    printf '  %s\n' "${PROFILE_DSO//$'\n'/$'\n'  }"
    echo "  by function (>= 0.5 %):"
    printf '  %s\n' "${PROFILE_TOP//$'\n'/$'\n'  }"
fi

echo
printf '  %-62s %10s   %-9s %s\n' "target (issue 15; WebSocket/SSE: the browser issue)" value target verdict
if [[ " $NS " == *" $REF_N "* ]]; then
    a=${F[fan_gw-tcp_$REF_N.p50_us]:-} b=${F[fan_redis_$REF_N.p50_us]:-}
    v=$([[ -n $a && -n $b ]] && ratio "$a" "$b" || echo n/a)
    check "N=$REF_N publish -> last p50: visavis TCP / redis" "$v" "${v}x" "<=" 0.9 x
    a=${F[fan_gw-tcp_$REF_N.first_p50_us]:-} b=${F[fan_redis_$REF_N.first_p50_us]:-}
    v=$([[ -n $a && -n $b ]] && ratio "$a" "$b" || echo n/a)
    check "N=$REF_N publish -> first p50: visavis TCP / redis" "$v" "${v}x" "<=" 2 x
    a=${F[fan_gw-tcp_$REF_N.deliveries_per_s]:-} b=${F[fan_nats_$REF_N.deliveries_per_s]:-}
    v=$([[ -n $a && -n $b ]] && ratio "$a" "$b" || echo n/a)
    check "N=$REF_N deliveries/s: visavis TCP / NATS" "$v" "${v}x" ">=" 1.0 x
fi
for n in $NS; do
    for pair in "gw-tcp nchan-sse" "gw-ws nchan-ws" "gw-sse nchan-sse"; do
        # shellcheck disable=SC2086
        set -- $pair
        if ! has_kind "$1" || ! has_kind "$2"; then continue; fi
        a=${F[fan_$1_$n.p50_us]:-} b=${F[fan_$2_$n.p50_us]:-}
        v=$([[ -n $a && -n $b ]] && ratio "$a" "$b" || echo n/a)
        check "N=$(thousands "$n") last p50: ${KIND_LABEL[$1]} / ${KIND_LABEL[$2]}" "$v" "${v}x" "<=" 1.0 x
    done
done
if have idle_tcp; then
    v=${F[idle_tcp.per_session_bytes]}
    check "idle TCP session at $(thousands "$IDLE_TCP"): bytes of RSS each" "$v" "$v B" "<=" 1024
fi
if have idle_ws; then
    v=${F[idle_ws.per_session_bytes]}
    check "idle WebSocket at $(thousands "$IDLE_WS"): bytes of RSS each" "$v" "$v B" "<" 4096
fi
if ((REST_SECONDS)); then
    v=$(ratio "${RPS[rest_gw]}" "${RPS[rest_nchan]}")
    check "REST publish req/s: visavis (durable) / Nchan" "$v" "${v}x" ">=" 0.6 x
fi
echo
echo "  visavis pushes a message only after its SQLite transaction committed (WAL, synchronous=FULL:"
echo "  an fsync per commit); redis, NATS and Nchan deliver from memory. Ratios compare servers"
echo "  within this run only. REST read (>= 1.5x webdis) and TCP PUB (>= 0.8x redis SET): bench/rest.sh"
echo "  and bench/socket.sh."
print_gateway_log
finish
