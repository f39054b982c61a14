#!/usr/bin/env bash
# Socket benchmark: the visavis session front (docs/protocol.md) against redis
# on the same machine.
#
#   bash bench/socket.sh          (from the repo root; see bench/README.md)
#
# In one run, each gateway number beside its redis reference:
#   1 PING at 1 connection, one in flight: p50/p99
#       gateway PING (sockbench ping)  vs  redis-benchmark -t ping_inline -c 1
#   2 durable PUB, 50 connections, one in flight each, 100-byte bodies: msgs/s
#       gateway PUB (sockbench pub)    vs  redis-benchmark -t set -c 50 -d 100,
#       against redis without persistence and redis with AOF fsync always
#   3 PUB pipelined 16 deep on 50 connections: durable msgs/s
#       gateway PUB (sockbench pub -P16) vs redis-benchmark -t set -c 50 -P 16 -d 100
#   4 fan-out: 100 subscribers on one channel, one publisher at FANOUT_RATE msgs/s
#       for FANOUT_SECONDS, its send time in the body; publish -> delivery to the
#       last of the 100, per message: gateway SUB/PUB vs redis SUBSCRIBE/PUBLISH,
#       both driven by sockbench
#   5 RSS per idle session: 10,000 sessions that read their hello (redis: 10,000
#       idle clients); VmRSS of the server before and after
# sockbench (clients/sockbench/, built here into build-release/) also drives
# redis for the PING and SET runs, so each redis-benchmark line has a
# same-client twin.
#
# Everything it starts listens on 127.0.0.1 only and is stopped on exit; the
# database, redis files and logs live in a temporary folder removed on exit.
#
# Environment (all optional):
#   DURATION=5          seconds per throughput/latency run
#   CONNECTIONS=50      connections for the PUB / SET runs
#   PIPELINE=16         depth of the pipelined PUB / SET run
#   SIZE=100            message body / SET value bytes
#   FANOUT_SUBS=100     subscriber sessions   FANOUT_RATE=2000  publishes per second
#   FANOUT_SECONDS=3    publishing time of the fan-out run
#   IDLE_SESSIONS=10000 idle sessions (and redis clients) for the RSS run
#   MAX_SESSIONS=20000  the gateway's --max-sessions
#   GATEWAY_BIN=path    measure this gateway binary instead of building build-release
#   SKIP_GATEWAY=1      redis references only (no gateway build or runs)
#   STRICT=1            exit 1 when a target is missed (default: report only)
#   KEEP_TMP=1          keep the temporary folder (logs, raw outputs) and print its path
#   BENCH_TMPDIR=/var/tmp   where the temporary folder is made (keep it on a real
#                       disk: on tmpfs an fsync costs nothing and the PUB runs lie)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=socket.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source bench/lib.sh

: "${DURATION:=5}" "${CONNECTIONS:=50}" "${PIPELINE:=16}" "${SIZE:=100}" "${FANOUT_SUBS:=100}" \
    "${FANOUT_RATE:=2000}" "${FANOUT_SECONDS:=3}" "${IDLE_SESSIONS:=10000}" "${MAX_SESSIONS:=20000}"
GATEWAY_BIN=${GATEWAY_BIN:-}
GW=${GATEWAY_BIN:-build-release/gateway/visavis-gateway}
PING_TARGET=1.1        # gateway PING p50 <= 1.1x redis
PUB_TARGET=0.8         # gateway PUB -c50 msgs/s >= 0.8x redis SET -c50
PIPE_TARGET=150000     # gateway PUB -P16 durable msgs/s, absolute
FANOUT_TARGET=1.2      # gateway fan-out p50 <= 1.2x redis
IDLE_TARGET=4096       # bytes of gateway RSS per idle session

require_positive_ints DURATION CONNECTIONS PIPELINE SIZE FANOUT_SUBS FANOUT_RATE FANOUT_SECONDS \
    IDLE_SESSIONS MAX_SESSIONS
((SIZE >= 40)) || { echo "socket.sh: SIZE must be at least 40 (the fan-out body holds a timestamp)" >&2; exit 2; }
((MAX_SESSIONS > IDLE_SESSIONS + 10)) || {
    echo "socket.sh: MAX_SESSIONS must be above IDLE_SESSIONS" >&2
    exit 2
}

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. packages -------------------------------------------------------------
ensure_packages redis-server redis-tools gcc libc6-dev meson ninja-build pkg-config libmicrohttpd-dev \
    libjansson-dev libsqlite3-dev libpq-dev libwslay-dev nettle-dev curl python3

# --- 2. build ----------------------------------------------------------------
# The two binaries alone: a test that does not build yet must not stop the benchmark.
SB=build-release/clients/sockbench/sockbench
if [[ $SKIP_GATEWAY != 1 && -z $GATEWAY_BIN ]]; then
    build_release gateway/visavis-gateway clients/sockbench/sockbench
else
    build_release clients/sockbench/sockbench
fi
[[ -x $SB ]] || die "$SB was not built"
if [[ $SKIP_GATEWAY != 1 ]]; then
    [[ -x $GW ]] || die "$GW was not built"
    help=$("$GW" --help 2>&1) || true
    grep -q -- '--tcp-addr' <<<"$help" || die "$GW has no --tcp-addr: no TCP session front to measure"
fi

# Open files: IDLE_SESSIONS sockets in sockbench, and as many in the server.
NOFILE_NEED=$((IDLE_SESSIONS + 1024))
if (($(ulimit -n) < NOFILE_NEED)); then
    hard=$(ulimit -Hn)
    if [[ $hard != unlimited ]] && ((hard < NOFILE_NEED)); then
        die "needs $NOFILE_NEED open files per process, the hard limit is $hard (lower IDLE_SESSIONS or raise it)"
    fi
    ulimit -n "$NOFILE_NEED" || die "ulimit -n $NOFILE_NEED failed"
fi

make_tmp visavis-sockbench

# redis answers PING.
# shellcheck disable=SC2317  # called through wait_ready
redis_pong() { [[ $(redis-cli -h 127.0.0.1 -p "$1" PING 2>/dev/null) == PONG ]]; }

wait_redis() { # port pid name log
    wait_ready "$2" "$3" "$4" "exited before answering on $1" "does not answer PING on 127.0.0.1:$1" \
        redis_pong "$1"
}

# --- 3. servers ----------------------------------------------------------------
declare -A SERVER_PID
start_redis() { # name port extra-args...
    # A backlog as deep as the kernel allows (somaxconn): with redis's 511,
    # idle clients that never send a byte, connected faster than redis
    # accepts, are left established on the client's side only (SYN cookies).
    spawn_redis "$1" "$2" --maxclients $((IDLE_SESSIONS + 100)) --tcp-backlog 4096 "${@:3}"
    SERVER_PID[$1]=$REDIS_PID
    wait_redis "$2" "$REDIS_PID" "redis-server ($1)" "$TMP/$1/redis.log"
}

say "temporary folder $TMP ($(tmp_fstype))"
REDIS_PORT=$(free_port)
REDIS_AOF_PORT=$(free_port)
start_redis redis "$REDIS_PORT" --appendonly no
start_redis redis-aof "$REDIS_AOF_PORT" --appendonly yes --appendfsync always
say "redis :$REDIS_PORT (no persistence); redis :$REDIS_AOF_PORT (AOF, fsync always)"

GW_PORT='' GW_TCP='' GW_PID=''
if [[ $SKIP_GATEWAY != 1 ]]; then
    start_gateway --need-tcp --http-addr 127.0.0.1:0 --tcp-addr 127.0.0.1:0 --db "$TMP/bench.db" \
        --log-level warn --max-sessions "$MAX_SESSIONS"
fi

# --- 4. runs -------------------------------------------------------------------
declare -A F LABEL   # F[key.field] from RESULT lines; LABEL[key]
SB_PIN=()            # a command prefix for sb and rb (taskset in the PING runs)
SB_TIMEOUT=$((DURATION + FANOUT_SECONDS + 120))

# Runs redis-benchmark for about DURATION s: a short calibration run with
# cal_n requests, then rps x DURATION requests. Dies on errors.
rb() { # key label port cal_n args...
    local key=$1 label=$2 port=$3 n=$4 out="$TMP/rb-$1.csv" pass row rps
    shift 4
    for pass in calibrate measure; do
        if ! timeout -k 5 $((DURATION * 4 + 60)) "${SB_PIN[@]}" redis-benchmark -h 127.0.0.1 -p "$port" -n "$n" \
            --csv "$@" >"$out" 2>"$TMP/rb-$key.err"; then
            sed 's/^/    /' "$TMP/rb-$key.err" "$out" >&2
            die "redis-benchmark failed ($label, $pass)"
        fi
        if grep -qi 'error' "$TMP/rb-$key.err" "$out"; then
            sed 's/^/    /' "$TMP/rb-$key.err" "$out" >&2
            die "redis-benchmark reported errors ($label)"
        fi
        # "SET","70274.07","0.408","0.120","0.383","0.559","1.215","9.143"
        row=$(grep -v '^"test"' "$out" | tail -n 1 | tr -d '"')
        rps=$(cut -d, -f2 <<<"$row")
        [[ $rps =~ ^[0-9.]+$ ]] || die "no result from redis-benchmark ($label): $(cat "$out")"
        [[ $pass == measure ]] && break
        n=$(awk -v r="$rps" -v d="$DURATION" -v m="$n" 'BEGIN { n = int(r * d); if (n < m) n = m; if (n > 50000000) n = 50000000; print n }')
    done
    say "redis-benchmark -n $n $* ($label)"
    printf '    %s\n' "$row"
    F[$key.ops]=$n
    F[$key.msgs_per_s]=$rps
    F[$key.ops_per_s]=$rps
    F[$key.p50_us]=$(awk -v v="$(cut -d, -f5 <<<"$row")" 'BEGIN { printf "%.1f", v * 1000 }')
    F[$key.p99_us]=$(awk -v v="$(cut -d, -f7 <<<"$row")" 'BEGIN { printf "%.1f", v * 1000 }')
    LABEL[$key]=$label
    ORDER+=("$key")
}


G=(--host 127.0.0.1 --port "$GW_TCP")
R=(--host 127.0.0.1 --port "$REDIS_PORT")
RA=(--host 127.0.0.1 --port "$REDIS_AOF_PORT")
BODY=(--size "$SIZE")

# 5 first: the servers are fresh, so no memory freed by earlier runs is reused.
if [[ -n $GW_TCP ]]; then
    sb gw_idle "gateway: $IDLE_SESSIONS idle sessions" idle "${G[@]}" \
        --connections "$IDLE_SESSIONS" --pid "$GW_PID"
fi
sb rd_idle "redis: $IDLE_SESSIONS idle clients" redis-idle "${R[@]}" \
    --connections "$IDLE_SESSIONS" --pid "${SERVER_PID[redis]}"

# 1 PING. One request in flight: its latency depends mostly on whether the
# scheduler puts client and server on the same CPU (no cross-CPU wakeup) or not,
# which would change from run to run. So each PING run is pinned, both ways:
# server (every thread) on CPU_A, client on CPU_A ("same CPU") or on CPU_B.
CPUS=$(taskset -pc $$ | sed 's/.*: *//')     # this script's CPUs, e.g. 0,1 or 0-3
affinity_cpus
CPU_A=${CPU_LIST[0]}
PLACEMENTS=(same)
if ((${#CPU_LIST[@]} > 1)); then PLACEMENTS+=(cross); fi
pin_server() { # pid cpus
    taskset -a -p -c "$2" "$1" >/dev/null || die "taskset -a -p -c $2 $1 failed"
}
for place in "${PLACEMENTS[@]}"; do
    if [[ $place == same ]]; then cpu_c=$CPU_A; where="same CPU"; else cpu_c=${CPU_LIST[1]}; where="2 CPUs"; fi
    SB_PIN=(taskset -c "$cpu_c")
    if [[ -n $GW_TCP ]]; then
        pin_server "$GW_PID" "$CPU_A"
        sb "gw_ping_$place" "gateway PING (sockbench), $where" ping "${G[@]}" --connections 1 \
            --duration "$DURATION"
        pin_server "$GW_PID" "$CPUS"
    fi
    pin_server "${SERVER_PID[redis]}" "$CPU_A"
    rb "rb_ping_$place" "redis PING_INLINE (redis-benchmark -c 1), $where" "$REDIS_PORT" 10000 \
        -t ping_inline -c 1
    sb "rd_ping_$place" "redis PING_INLINE (sockbench), $where" redis-ping "${R[@]}" --connections 1 \
        --duration "$DURATION"
    pin_server "${SERVER_PID[redis]}" "$CPUS"
done
SB_PIN=()

# 2 PUB / SET, one in flight per connection
if [[ -n $GW_TCP ]]; then
    sb gw_pub "gateway PUB, durable (sockbench)" pub "${G[@]}" --connections "$CONNECTIONS" \
        --duration "$DURATION" "${BODY[@]}" --channel bench-c1
fi
rb rb_set "redis SET (redis-benchmark)" "$REDIS_PORT" 20000 -t set -c "$CONNECTIONS" -d "$SIZE"
rb rb_set_aof "redis SET, AOF fsync always (redis-benchmark)" "$REDIS_AOF_PORT" 5000 \
    -t set -c "$CONNECTIONS" -d "$SIZE"
sb rd_set "redis SET (sockbench)" redis-set "${R[@]}" --connections "$CONNECTIONS" \
    --duration "$DURATION" "${BODY[@]}" --channel k
sb rd_set_aof "redis SET, AOF fsync always (sockbench)" redis-set "${RA[@]}" \
    --connections "$CONNECTIONS" --duration "$DURATION" "${BODY[@]}" --channel k

# 3 pipelined
if [[ -n $GW_TCP ]]; then
    sb gw_pipe "gateway PUB, durable (sockbench)" pub "${G[@]}" --connections "$CONNECTIONS" \
        --pipeline "$PIPELINE" --duration "$DURATION" "${BODY[@]}" --channel bench-p"$PIPELINE"
fi
rb rb_pipe "redis SET (redis-benchmark)" "$REDIS_PORT" 200000 -t set -c "$CONNECTIONS" \
    -P "$PIPELINE" -d "$SIZE"
rb rb_pipe_aof "redis SET, AOF fsync always (redis-benchmark)" "$REDIS_AOF_PORT" 50000 \
    -t set -c "$CONNECTIONS" -P "$PIPELINE" -d "$SIZE"
sb rd_pipe "redis SET (sockbench)" redis-set "${R[@]}" --connections "$CONNECTIONS" \
    --pipeline "$PIPELINE" --duration "$DURATION" "${BODY[@]}" --channel k

# 4 fan-out
FAN=(--subscribers "$FANOUT_SUBS" --rate "$FANOUT_RATE" --duration "$FANOUT_SECONDS" "${BODY[@]}")
if [[ -n $GW_TCP ]]; then
    sb gw_fan "gateway SUB/PUB (sockbench)" fanout "${G[@]}" "${FAN[@]}" --channel fan
fi
sb rd_fan "redis SUBSCRIBE/PUBLISH (sockbench)" redis-fanout "${R[@]}" "${FAN[@]}" --channel fan

# Every acknowledged PUB is in the store, readable over REST; nothing more.
if [[ -n $GW_TCP ]]; then
    r=$(curl -fsS -m 5 "http://127.0.0.1:$GW_PORT/v1/channels") || die "GET /v1/channels failed"
    check_json "the store holds exactly the acknowledged PUBs" "$r" \
        "{c['name']: c['messages'] for c in channels if c['name'] in ('bench-c1', 'bench-p$PIPELINE', 'fan')} == {'bench-c1': ${F[gw_pub.ops]}, 'bench-p$PIPELINE': ${F[gw_pipe.ops]}, 'fan': ${F[gw_fan.messages]}}"
    say "store check: bench-c1 ${F[gw_pub.ops]}, bench-p$PIPELINE ${F[gw_pipe.ops]}, fan ${F[gw_fan.messages]} messages, as acknowledged"
fi

# --- 5. table -----------------------------------------------------------------
MISSED=0
row() { # key [rate-field]
    local k=$1 f=${2:-msgs_per_s}
    printf '  %-58s %10.0f %10.1f %10.1f' "${LABEL[$k]}" "${F[$k.$f]}" "${F[$k.p50_us]}" "${F[$k.p99_us]}"
    if [[ -n ${F[$k.client_cpu_pct]:-} ]]; then printf ' %9s%%' "${F[$k.client_cpu_pct]}"; fi
    printf '\n'
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
# Prints one check line; counts a miss. op is <= or >=, or "" for an (info) line.
check() { # label value shown-value op target [suffix]
    local v=PASS
    if [[ -z $4 ]]; then
        v="(info)"
    elif ! awk -v a="$2" -v b="$5" -v op="$4" 'BEGIN { exit !(op == "<=" ? a <= b : a >= b) }'; then
        v=MISS
        MISSED=$((MISSED + 1))
    fi
    printf '  %-58s %10s   %-10s %s\n' "$1" "$3" "${4:+$4 $5${6:-}}" "$v"
}
# A section title with its own column names.
section() {
    printf '\n  %-58s %10s %10s %10s' "$1" "$2" "$3" "$4"
    if (($# > 4)); then printf ' %10s' "$5"; fi
    printf '\n'
}
have() { [[ -n ${F[$1.p50_us]:-} || -n ${F[$1.per_session_bytes]:-} ]]; }

echo
echo "visavis socket benchmark, 127.0.0.1, $(nproc) cores, $(tmp_fstype)" \
    "under $TMP; DURATION=${DURATION}s per run"
echo "load average when the script started: $LOAD_START (other work on this machine skews every number)"
section "1 PING, 1 connection, 1 in flight; server on CPU $CPU_A" "ops/s" "p50 us" "p99 us" "client cpu"
for place in "${PLACEMENTS[@]}"; do
    for k in gw_ping_$place rb_ping_$place rd_ping_$place; do have "$k" && row "$k" ops_per_s; done
done
section "2 PUB / SET, $CONNECTIONS connections, 1 in flight, $SIZE-byte bodies" "msgs/s" "p50 us" "p99 us" "client cpu"
for k in gw_pub rb_set rb_set_aof rd_set rd_set_aof; do have $k && row $k; done
section "3 PUB / SET, $CONNECTIONS connections, pipelined $PIPELINE deep" "msgs/s" "p50 us" "p99 us" "client cpu"
for k in gw_pipe rb_pipe rb_pipe_aof rd_pipe; do have $k && row $k; done
section "4 fan-out, publish -> last of $FANOUT_SUBS subscribers" "pub/s" "p50 us" "p99 us" "client cpu"
for k in gw_fan rd_fan; do have $k && row $k pub_rate; done
printf '    %s\n' "(1 publisher, $FANOUT_RATE msgs/s for ${FANOUT_SECONDS}s, $SIZE-byte bodies holding the monotonic send time)"
section "  the same, publish -> each delivery" "deliveries" "p50 us" "p99 us"
for k in gw_fan rd_fan; do
    have $k && printf '  %-58s %10s %10.1f %10.1f\n' "${LABEL[$k]}" "${F[$k.deliveries]}" \
        "${F[$k.each_p50_us]}" "${F[$k.each_p99_us]}"
done
section "  the same, publish -> the publisher's own reply" "replies" "p50 us" "p99 us"
for k in gw_fan rd_fan; do
    have $k && printf '  %-58s %10s %10.1f %10.1f\n' "${LABEL[$k]}" "${F[$k.messages]}" \
        "${F[$k.ack_p50_us]}" "${F[$k.ack_p99_us]}"
done
section "5 idle sessions: VmRSS of the server" "before kB" "after kB" "B/session"
for k in gw_idle rd_idle; do
    have $k && printf '  %-58s %10s %10s %10s\n' "${LABEL[$k]}" "${F[$k.rss_before_kb]}" \
        "${F[$k.rss_after_kb]}" "${F[$k.per_session_bytes]}"
done
echo
if [[ -n $GW_TCP ]]; then
    printf '  %-58s %10s   %-10s %s\n' "check" "value" "target" "verdict"
    for place in "${PLACEMENTS[@]}"; do
        if [[ $place == same ]]; then where="same CPU"; else where="2 CPUs"; fi
        v=$(ratio "${F[gw_ping_$place.p50_us]}" "${F[rb_ping_$place.p50_us]}")
        check "1 PING p50, $where: gateway / redis-benchmark" "$v" "${v}x" "<=" "$PING_TARGET" x
        v=$(ratio "${F[gw_ping_$place.p50_us]}" "${F[rd_ping_$place.p50_us]}")
        check "  the same, redis driven by sockbench" "$v" "${v}x" ""
    done
    v=$(ratio "${F[gw_pub.msgs_per_s]}" "${F[rb_set.msgs_per_s]}")
    check "2 PUB msgs/s: gateway / redis-benchmark SET" "$v" "${v}x" ">=" "$PUB_TARGET" x
    v=$(ratio "${F[gw_pub.msgs_per_s]}" "${F[rb_set_aof.msgs_per_s]}")
    check "2 PUB msgs/s: gateway / redis-benchmark SET, AOF always" "$v" "${v}x" ">=" "$PUB_TARGET" x
    v=$(ratio "${F[gw_pub.msgs_per_s]}" "${F[rd_set.msgs_per_s]}")
    check "  the same, redis driven by sockbench" "$v" "${v}x" ""
    v=$(ratio "${F[gw_pub.msgs_per_s]}" "${F[rd_set_aof.msgs_per_s]}")
    check "  the same, AOF always, redis driven by sockbench" "$v" "${v}x" ""
    v=$(printf '%.0f' "${F[gw_pipe.msgs_per_s]}")
    check "3 PUB -P$PIPELINE durable msgs/s (absolute)" "$v" "$v" ">=" "$PIPE_TARGET"
    v=$(ratio "${F[gw_fan.p50_us]}" "${F[rd_fan.p50_us]}")
    check "4 fan-out p50 (last of $FANOUT_SUBS): gateway / redis" "$v" "${v}x" "<=" "$FANOUT_TARGET" x
    v=${F[gw_idle.per_session_bytes]}
    check "5 gateway RSS per idle session (bytes)" "$v" "$v" "<=" "$IDLE_TARGET"
    v=$(ratio "${F[gw_idle.per_session_bytes]}" "${F[rd_idle.per_session_bytes]}")
    check "  the same / redis per idle client" "$v" "${v}x" ""
    echo
    echo "  The gateway acknowledges a PUB (and pushes it to subscribers) only after its SQLite"
    echo "  transaction committed (WAL, synchronous=FULL: fsync at commit). Plain redis answers"
    echo "  SET and delivers PUBLISH from memory; the AOF redis (appendfsync always) fsyncs"
    echo "  before answering SET, the same durability class as the gateway. redis-benchmark and"
    echo "  sockbench are different clients: the '(info)' lines compare with the same client."
    print_gateway_log
else
    echo "  (no gateway: reference runs only, no checks)"
fi

finish
