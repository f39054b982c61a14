#!/usr/bin/env bash
# REST benchmark: the visavis gateway against webdis+redis on the same machine.
#
#   bash bench/rest.sh            (from the repo root; see bench/README.md)
#
# Runs, each with wrk (2 threads, 50 keep-alive connections, DURATION s, --latency):
#   read   gateway GET /v1/channels/bench/messages?since=<random 0..9990>&limit=10
#          webdis  GET /GET/k                       (redis, no persistence)
#   write  gateway POST /v1/channels/benchpost/messages   (durable: fsync at commit)
#          webdis  GET /SET/k2/<100 bytes>          (redis, no persistence)
#          webdis  GET /SET/k2/<100 bytes>          (redis, appendonly + appendfsync always)
# and prints req/s, p50, p99 for each and the gateway/webdis ratios against the
# targets (read >= 1.5x, durable publish >= 1.0x).
#
# Everything it starts listens on 127.0.0.1 only and is stopped on exit; the
# database, redis files and logs live in a temporary folder removed on exit.
#
# Environment (all optional):
#   DURATION=10        seconds per wrk run
#   CONNECTIONS=50     wrk connections        THREADS=2   wrk threads
#   SEED_COUNT=10000   messages seeded into channel 'bench' (100-byte bodies)
#   WEBDIS_THREADS=2   webdis worker threads  WEBDIS_POOL=10  redis connections per webdis thread
#   SKIP_GATEWAY=1     run only the webdis/redis references (no build, no gateway)
#   GATEWAY_BIN=path   measure this gateway binary instead of building build-release
#   STRICT=1           exit 1 when a target is missed (default: report only)
#   KEEP_TMP=1         keep the temporary folder (logs, wrk output) and print its path
#   BENCH_TMPDIR=/var/tmp   where the temporary folder is made (keep it on a real
#                      disk: on tmpfs an fsync costs nothing and the write runs lie)
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
BENCH_NAME=rest.sh
# shellcheck source-path=SCRIPTDIR source=lib.sh
source bench/lib.sh

: "${DURATION:=10}" "${CONNECTIONS:=50}" "${THREADS:=2}" "${SEED_COUNT:=10000}" \
    "${WEBDIS_THREADS:=2}" "${WEBDIS_POOL:=10}"
READ_TARGET=1.5
WRITE_TARGET=1.0
VALUE100=$(printf '0123456789%.0s' 1 2 3 4 5 6 7 8 9 10)   # 100 bytes, URL-safe

require_positive_ints DURATION CONNECTIONS THREADS SEED_COUNT WEBDIS_THREADS WEBDIS_POOL

LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)

# --- 1. packages -------------------------------------------------------------
ensure_packages wrk redis-server webdis meson ninja-build pkg-config libmicrohttpd-dev \
    libjansson-dev libsqlite3-dev libpq-dev libwslay-dev nettle-dev curl python3

# --- 2. build ----------------------------------------------------------------
GATEWAY_BIN=${GATEWAY_BIN:-}
GW=${GATEWAY_BIN:-build-release/gateway/visavis-gateway}
if [[ $SKIP_GATEWAY != 1 && -z $GATEWAY_BIN ]]; then
    # shellcheck disable=SC2119  # no target: ninja builds everything
    build_release
    [[ -x $GW ]] || die "$GW was not built"
fi

make_tmp visavis-bench

# Something accepts on 127.0.0.1:port.
# shellcheck disable=SC2317  # called through wait_ready
port_open() { (exec 9<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() { # port pid name log
    wait_ready "$2" "$3" "$4" "exited before listening on $1" "not listening on 127.0.0.1:$1" \
        port_open "$1"
}

# --- 3. servers ----------------------------------------------------------------
start_redis() { # name port extra-args...
    spawn_redis "$@"
    wait_port "$2" "$REDIS_PID" "redis-server ($1)" "$TMP/$1/redis.log"
}

start_webdis() { # name redis-port http-port
    local name=$1 rport=$2 hport=$3 conf="$TMP/webdis-$1.json" end
    cat >"$conf" <<EOF
{
    "redis_host": "127.0.0.1",
    "redis_port": $rport,
    "http_host": "127.0.0.1",
    "http_port": $hport,
    "threads": $WEBDIS_THREADS,
    "pool_size": $WEBDIS_POOL,
    "daemonize": false,
    "pidfile": "$TMP/webdis-$name.pid",
    "websockets": false,
    "database": 0,
    "verbosity": 0,
    "logfile": "$TMP/webdis-$name.log"
}
EOF
    (cd "$TMP" && exec webdis "$conf") >"$TMP/webdis-$name.out" 2>&1 &
    PIDS+=($!)
    wait_port "$hport" "$!" "webdis ($name)" "$TMP/webdis-$name.out"
    # Listening is not enough: it must also have its redis connections.
    end=$((SECONDS + READY_DEADLINE))
    until curl -fsS -m 2 "http://127.0.0.1:$hport/PING" 2>/dev/null | grep -q PONG; do
        ((SECONDS < end)) || die "webdis ($name) on $hport does not answer PING after $READY_DEADLINE s"
        sleep 0.05
    done
}

say "temporary folder $TMP ($(tmp_fstype))"
REDIS_PORT=$(free_port)
REDIS_AOF_PORT=$(free_port)
WEBDIS_PORT=$(free_port)
WEBDIS_AOF_PORT=$(free_port)

start_redis redis "$REDIS_PORT" --appendonly no
start_redis redis-aof "$REDIS_AOF_PORT" --appendonly yes --appendfsync always
start_webdis plain "$REDIS_PORT" "$WEBDIS_PORT"
start_webdis aof "$REDIS_AOF_PORT" "$WEBDIS_AOF_PORT"
say "redis :$REDIS_PORT -> webdis :$WEBDIS_PORT (no persistence);" \
    "redis :$REDIS_AOF_PORT -> webdis :$WEBDIS_AOF_PORT (AOF, fsync always)"

GW_PORT=
if [[ $SKIP_GATEWAY != 1 ]]; then
    gw_args=(--http-addr 127.0.0.1:0 --db "$TMP/bench.db" --log-level warn)
    # --tcp-addr only once the gateway knows it (it came later than the REST front).
    if "$GW" --help 2>/dev/null | grep -q -- '--tcp-addr'; then
        gw_args+=(--tcp-addr 127.0.0.1:0)
    fi
    start_gateway "${gw_args[@]}"
fi

# --- 4. seed -------------------------------------------------------------------
WD="http://127.0.0.1:$WEBDIS_PORT"
WDA="http://127.0.0.1:$WEBDIS_AOF_PORT"
GWU="http://127.0.0.1:$GW_PORT"

for u in "$WD" "$WDA"; do
    r=$(curl -fsS -m 5 "$u/SET/k/$VALUE100") || die "webdis SET k failed on $u"
    [[ $r == '{"SET":[true,"OK"]}' ]] || die "webdis SET k on $u answered: $r"
    r=$(curl -fsS -m 5 "$u/GET/k") || die "webdis GET k failed on $u"
    [[ $r == "{\"GET\":\"$VALUE100\"}" ]] || die "webdis GET k on $u answered: $r"
    r=$(curl -fsS -m 5 "$u/SET/k2/$VALUE100") || die "webdis SET k2 failed on $u"
    [[ $r == '{"SET":[true,"OK"]}' ]] || die "webdis SET k2 on $u answered: $r"
done


if [[ -n $GW_PORT ]]; then
    say "seeding channel 'bench' with $SEED_COUNT messages"
    timeout -k 5 90 python3 bench/seed.py "$GW_PORT" --channel bench --count "$SEED_COUNT" \
        --body-bytes 100 --workers 16 --deadline 60 || die "seeding failed"
    max_since=$((SEED_COUNT - 10))
    r=$(curl -fsS -m 5 "$GWU/v1/channels/bench/messages?since=$max_since&limit=10") ||
        die "gateway read of the last page failed"
    check_json "last page of 'bench'" "$r" \
        "len(d['messages']) == 10 and d['next_since'] == $SEED_COUNT and all(len(m['body']) == 100 for m in d['messages'])"
    r=$(curl -fsS -m 5 -o /dev/null -w '%{http_code}' -H 'Content-Type: application/json' \
        -d "{\"sender\":\"bench\",\"body\":\"$VALUE100\"}" "$GWU/v1/channels/benchpost/messages") ||
        die "gateway probe publish failed"
    [[ $r == 201 ]] || die "gateway probe publish answered $r, not 201"
fi

# --- 5. runs -------------------------------------------------------------------
declare -A RPS P50 P99 REQS   # run_wrk (lib.sh) fills these
RUN_ORDER=()


declare -A LABEL=(
    [gw_read]="gateway GET channel page (since=rand, limit=10)"
    [wd_get]="webdis  GET /GET/k (redis in memory)"
    [gw_post]="gateway POST publish (durable: fsync at commit)"
    [wd_set]="webdis  SET k2 (redis, no persistence)"
    [wd_set_aof]="webdis  SET k2 (redis AOF, appendfsync always)"
)

if [[ -n $GW_PORT ]]; then
    run_wrk gw_read "${LABEL[gw_read]}" bench/gw_read.lua "$GWU/v1/channels/bench/messages"
fi
run_wrk wd_get "${LABEL[wd_get]}" bench/webdis_get.lua "$WD/GET/k"
if [[ -n $GW_PORT ]]; then
    run_wrk gw_post "${LABEL[gw_post]}" bench/gw_post.lua "$GWU/v1/channels/benchpost/messages"
    # Every 201 wrk counted must be in the store (+1: the probe publish above).
    r=$(curl -fsS -m 5 "$GWU/v1/channels") || die "GET /v1/channels failed"
    check_json "benchpost holds every acknowledged publish" "$r" \
        "any(c['name'] == 'benchpost' and c['messages'] >= ${REQS[gw_post]} + 1 for c in channels)"
fi
run_wrk wd_set "${LABEL[wd_set]}" bench/webdis_set.lua "$WD/SET/k2"
run_wrk wd_set_aof "${LABEL[wd_set_aof]}" bench/webdis_set.lua "$WDA/SET/k2"

# --- 6. table -----------------------------------------------------------------
ms() { awk -v us="$1" 'BEGIN { printf "%.2f ms", us / 1000 }'; }
MISSED=0
ratio_line() { # label num-key den-key target
    local r v=PASS
    r=$(awk -v a="${RPS[$2]}" -v b="${RPS[$3]}" 'BEGIN { printf "%.2f", a / b }')
    if ! awk -v r="$r" -v t="$4" 'BEGIN { exit !(r >= t) }'; then
        v=MISS
        MISSED=$((MISSED + 1))
    fi
    printf '  %-52s %7sx   %7s   %s\n' "$1" "$r" ">= ${4}x" "$v"
}

echo
echo "visavis REST benchmark: wrk -t$THREADS -c$CONNECTIONS -d${DURATION}s --latency, keep-alive," \
    "127.0.0.1, $(nproc) cores, $(tmp_fstype) under $TMP"
echo "load average when the script started: $LOAD_START (other work on this machine skews every number)"
echo
printf '  %-52s %10s %10s %10s\n' "run" "req/s" "p50" "p99"
printf '  %-52s %10s %10s %10s\n' "---" "-----" "---" "---"
for k in "${RUN_ORDER[@]}"; do
    printf '  %-52s %10.0f %10s %10s\n' "${LABEL[$k]}" "${RPS[$k]}" "$(ms "${P50[$k]}")" "$(ms "${P99[$k]}")"
done
echo
if [[ -n $GW_PORT ]]; then
    printf '  %-52s %8s   %7s   %s\n' "ratio (gateway req/s / webdis req/s)" "value" "target" "verdict"
    ratio_line "read:  gateway GET / webdis GET" gw_read wd_get "$READ_TARGET"
    ratio_line "write: gateway POST / webdis SET (no persistence)" gw_post wd_set "$WRITE_TARGET"
    ratio_line "write: gateway POST / webdis SET (AOF fsync always)" gw_post wd_set_aof "$WRITE_TARGET"
    echo
    echo "  The gateway answers 201 only after the message's SQLite transaction committed"
    echo "  (WAL, synchronous=FULL: fsync at commit). The 'no persistence' redis (--save ''"
    echo "  --appendonly no) acknowledges from memory, so that write ratio compares a durable"
    echo "  publish with a volatile one; the AOF redis (--appendonly yes --appendfsync always)"
    echo "  fsyncs before answering, the same durability class as the gateway."
    print_gateway_log
else
    echo "  (SKIP_GATEWAY=1: reference runs only, no ratios)"
fi

finish
