# shellcheck shell=bash
# Shared by bench/rest.sh, bench/socket.sh, bench/fanout.sh, bench/cluster.sh and
# bench/instructions.sh;
# sourced, never run. Provides:
#
#   SKIP_GATEWAY STRICT KEEP_TMP     the settings every script takes from the
#                                    environment (default 0), and READY_DEADLINE
#   say MSG... / die MSG...          progress line / failure message and exit 1
#   require_positive_ints VAR...     exit 2 unless each named variable is 1, 2, ...
#   ensure_packages PKG...           apt-get install the missing ones (sudo when not root)
#   build_release [TARGET...]        meson setup build-release (once), then ninja
#   make_tmp PREFIX                  TMP=<BENCH_TMPDIR or /var/tmp>/PREFIX.XXXXXX,
#                                    with the cleanup traps installed
#   tmp_fstype                       the file system type of $TMP (ext4, tmpfs, ...)
#   alive PID                        running and not a zombie
#   free_port                        a free loopback port in 20000..32000
#                                    (webdis keeps ports in a signed short)
#   wait_ready PID NAME LOG EARLY LATE CMD...   poll CMD until it succeeds
#   spawn_redis NAME PORT ARGS...    start a redis-server in $TMP/NAME (REDIS_PID)
#   start_gateway [--need-tcp] ARGS...  start $GW with ARGS, wait for its READY line
#                                    (GW_PID GW_PORT GW_TCP; its files in
#                                    $TMP/$GW_NAME.*, GW_NAME=gateway unless set)
#   stop_server PID                  SIGTERM, then SIGKILL after 5 s; waits for it
#   run_wrk KEY LABEL SCRIPT URL     one wrk run, its BENCH line into RPS P50 P99 REQS
#   sb KEY LABEL MODE ARGS...        run $SB (sockbench) once, within SB_TIMEOUT s,
#                                    its RESULT fields into F[KEY.*], LABEL[KEY]
#                                    and KEY onto ORDER (the script declares F, LABEL)
#   affinity_cpus                    CPU_LIST: the CPUs this script may use
#   check_json WHAT JSON EXPR        die unless the python EXPR over d=JSON holds
#   print_gateway_log                the last lines of the gateway's stderr, if any
#   finish                           exit 1 when STRICT=1 and MISSED > 0, else exit 0
#
# The sourcing script sets BENCH_NAME (for messages) before it sources this
# file, and GW before start_gateway. Every process started goes into PIDS,
# which the cleanup stops on exit.

SKIP_GATEWAY=${SKIP_GATEWAY:-0}
STRICT=${STRICT:-0}
KEEP_TMP=${KEEP_TMP:-0}
READY_DEADLINE=15   # seconds for any server to become ready
PIDS=()
WRK_PIN=()
TAKEN=()

say() { printf '== %s\n' "$*"; }
die() {
    printf '\n%s: FAILED: %s\n' "$BENCH_NAME" "$*" >&2
    exit 1
}

require_positive_ints() { # var...
    local v
    for v in "$@"; do
        [[ ${!v} =~ ^[1-9][0-9]*$ ]] || { echo "$BENCH_NAME: $v must be a positive integer" >&2; exit 2; }
    done
}

ensure_packages() { # package...
    local p sudo=
    local missing=()
    for p in "$@"; do
        dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
    done
    ((${#missing[@]})) || return 0
    [[ $(id -u) -eq 0 ]] || sudo=sudo
    say "installing: ${missing[*]}"
    $sudo apt-get update -qq
    $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
}

build_release() { # [ninja target...]
    say "building${*:+ $*} in build-release/ (release)"
    if [[ ! -f build-release/build.ninja ]]; then
        meson setup build-release --buildtype=release >/dev/null || die "meson setup failed"
    fi
    ninja -C build-release "$@" >/dev/null || die "ninja -C build-release${*:+ $*} failed"
}

# --- process bookkeeping and cleanup -----------------------------------------
make_tmp() { # prefix
    TMP=$(mktemp -d "${BENCH_TMPDIR:-/var/tmp}/$1.XXXXXX")
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

tmp_fstype() { df -PT "$TMP" | awk 'NR == 2 { print $2 }'; }

alive() { # pid: running and not a zombie
    local s
    s=$(ps -o stat= -p "$1" 2>/dev/null) || return 1
    [[ -n $s && $s != Z* ]]
}

# Waits up to 5 s for pid (already sent SIGTERM) to exit, then kills it.
reap() { # pid
    local i
    for ((i = 0; i < 100; i++)); do alive "$1" || break; sleep 0.05; done
    if alive "$1"; then
        echo "$BENCH_NAME: pid $1 ignored SIGTERM for 5 s, killing it" >&2
        kill -KILL "$1" 2>/dev/null
    fi
    wait "$1" 2>/dev/null || true # its exit status is not ours
}

# Stops one server started here before the end (its memory back for the next one).
stop_server() { # pid
    kill -TERM "$1" 2>/dev/null || true
    reap "$1"
}

# shellcheck disable=SC2317  # reached through the EXIT trap
cleanup() {
    local rc=$? pid
    set +e
    trap - EXIT INT TERM
    exec 3<&-
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
    for pid in "${PIDS[@]}"; do reap "$pid"; done
    if [[ $KEEP_TMP == 1 ]]; then
        echo "$BENCH_NAME: kept $TMP"
    else
        rm -rf "$TMP"
    fi
    exit "$rc"
}

# A free loopback port below 32768 (webdis 0.1.9 keeps ports in a signed short)
# and below the ephemeral range that socket.sh's 10,000 client sockets use.
free_port() {
    local p
    p=$(python3 - "${TAKEN[@]}" <<'EOF'
import random, socket, sys
taken = set(int(a) for a in sys.argv[1:])
for _ in range(500):
    p = random.randint(20000, 32000)
    if p in taken:
        continue
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        s.bind(("127.0.0.1", p))
    except OSError:
        continue
    finally:
        s.close()
    print(p)
    sys.exit(0)
sys.exit(1)
EOF
    ) || die "no free port found"
    TAKEN+=("$p")
    echo "$p"
}

# Polls cmd until it succeeds; bounded by READY_DEADLINE, and gives up at once
# if the process that should answer has exited. The failures read
# "NAME EARLY; its log: ..." and "NAME LATE after READY_DEADLINE s".
wait_ready() { # pid name log early late cmd...
    local pid=$1 name=$2 log=$3 early=$4 late=$5 end=$((SECONDS + READY_DEADLINE))
    shift 5
    until "$@"; do
        alive "$pid" || die "$name $early; its log:
$(tail -n 20 "$log" 2>/dev/null)"
        ((SECONDS < end)) || die "$name $late after $READY_DEADLINE s"
        sleep 0.05
    done
}

# --- servers -------------------------------------------------------------------
# Starts redis-server on 127.0.0.1:port, its files in $TMP/name, without RDB
# snapshots; does not wait for it. Sets REDIS_PID.
spawn_redis() { # name port extra-args...
    local name=$1 port=$2
    shift 2
    mkdir -p "$TMP/$name"
    redis-server --port "$port" --bind 127.0.0.1 --protected-mode yes --daemonize no \
        --save '' --dir "$TMP/$name" --logfile "$TMP/$name/redis.log" "$@" &
    REDIS_PID=$!
    PIDS+=("$REDIS_PID")
}

# Starts $GW with the given arguments (ports 0), reads its ports from its
# "READY http=<port> tcp=<port>" line within READY_DEADLINE, keeps draining its
# stdout into $TMP/$GW_NAME.out (stderr: $TMP/$GW_NAME.log; GW_NAME defaults
# to gateway) and checks /healthz. Sets GW_PID, GW_PORT and GW_TCP (empty when
# the line has no tcp=). With --need-tcp, a READY line without tcp= is fatal.
start_gateway() { # [--need-tcp] gateway-args...
    local need_tcp=0 end left line='' name=${GW_NAME:-gateway}
    if [[ ${1:-} == --need-tcp ]]; then
        need_tcp=1
        shift
    fi
    # No UDP front (its default port is fixed): nothing here measures it, and
    # two benches, or a gateway already running, must not collide on it. The
    # help is read whole: grep -q would stop reading it, and under pipefail
    # the gateway's SIGPIPE would make the test fail now and then.
    if [[ $("$GW" --help 2>/dev/null) == *--udp-addr* ]]; then
        set -- --udp-addr= "$@"
    fi
    rm -f "$TMP/$name.fifo"
    mkfifo "$TMP/$name.fifo"
    "$GW" "$@" >"$TMP/$name.fifo" 2>"$TMP/$name.log" &
    GW_PID=$!
    PIDS+=("$GW_PID")
    exec 3<"$TMP/$name.fifo"
    end=$((SECONDS + READY_DEADLINE))
    while :; do
        left=$((end - SECONDS))
        ((left > 0)) || die "gateway printed no READY line within $READY_DEADLINE s"
        if IFS= read -r -t "$left" -u 3 line; then
            [[ $line == READY* ]] && break
            printf '%s\n' "$line" >>"$TMP/$name.out"
        else
            die "gateway printed no READY line (exited or timed out); its stderr:
$(tail -n 20 "$TMP/$name.log")"
        fi
    done
    GW_PORT=$(sed -n 's/.*http=\([0-9][0-9]*\).*/\1/p' <<<"$line")
    GW_TCP=$(sed -n 's/.*tcp=\([0-9][0-9]*\).*/\1/p' <<<"$line")
    [[ -n $GW_PORT ]] || die "cannot read the http port from '$line'"
    if ((need_tcp)) && [[ -z $GW_TCP ]]; then
        die "no tcp=<port> in the gateway's READY line '$line': no TCP session front"
    fi
    # Keep draining its stdout so it can never block on a full pipe.
    cat <&3 >>"$TMP/$name.out" &
    PIDS+=($!)
    exec 3<&-
    say "gateway pid $GW_PID: $line"
    curl -fsS -m 5 "http://127.0.0.1:$GW_PORT/healthz" >/dev/null || die "gateway /healthz failed"
}

# Runs wrk once (THREADS, CONNECTIONS, DURATION; WRK_PIN: a command prefix
# such as taskset), with a script whose done() prints bench/common.lua's
# BENCH line; records req/s, p50, p99 and requests in RPS, P50, P99, REQS
# (associative arrays the caller declares) and appends key to RUN_ORDER. Dies
# on any non-2xx/3xx answer or socket error. wrk's own report is shown
# indented.
run_wrk() { # key label script url
    local key=$1 label=$2 script=$3 url=$4 out="$TMP/wrk-$1.txt" b
    say "wrk $label: $url (${DURATION}s, $CONNECTIONS conn, $THREADS threads)"
    if ! timeout -k 5 $((DURATION + 60)) "${WRK_PIN[@]}" wrk -t"$THREADS" -c"$CONNECTIONS" -d"${DURATION}s" \
        --latency -s "$script" "$url" >"$out" 2>&1; then
        sed 's/^/    /' "$out"
        die "wrk failed for $label"
    fi
    sed 's/^/    /' "$out"
    b=$(grep '^BENCH ' "$out" | tail -n 1)
    [[ -n $b ]] || die "no BENCH summary line from wrk for $label"
    local requests rps p50 p99 status connect read write timeout_
    requests=$(sed -n 's/.* requests=\([0-9]*\).*/\1/p' <<<"$b")
    rps=$(sed -n 's/.* rps=\([0-9.]*\).*/\1/p' <<<"$b")
    p50=$(sed -n 's/.* p50_us=\([0-9]*\).*/\1/p' <<<"$b")
    p99=$(sed -n 's/.* p99_us=\([0-9]*\).*/\1/p' <<<"$b")
    status=$(sed -n 's/.* status_errors=\([0-9]*\).*/\1/p' <<<"$b")
    connect=$(sed -n 's/.* connect=\([0-9]*\).*/\1/p' <<<"$b")
    read=$(sed -n 's/.* read=\([0-9]*\).*/\1/p' <<<"$b")
    write=$(sed -n 's/.* write=\([0-9]*\).*/\1/p' <<<"$b")
    timeout_=$(sed -n 's/.* timeout=\([0-9]*\).*/\1/p' <<<"$b")
    if grep -q 'Non-2xx or 3xx responses' "$out" || ((status > 0)); then
        die "$label: $status non-2xx/3xx answers ($(grep 'Non-2xx' "$out" | xargs))"
    fi
    if grep -q 'Socket errors' "$out" || ((connect + read + write + timeout_ > 0)); then
        die "$label: socket errors: connect $connect, read $read, write $write, timeout $timeout_"
    fi
    ((requests > 0)) || die "$label: no request completed"
    # shellcheck disable=SC2034  # the caller's arrays
    RPS["$key"]=$rps P50["$key"]=$p50 P99["$key"]=$p99 REQS["$key"]=$requests
    RUN_ORDER+=("$key")
}

# --- sockbench -------------------------------------------------------------------
# The caller sets SB (the binary) and declares the associative arrays F and
# LABEL; SB_PIN is a command prefix (taskset), SB_TIMEOUT the seconds a run
# may take. ORDER lists the keys in the order they ran.
SB_PIN=()
SB_TIMEOUT=300
ORDER=()

# Stores the key=value fields of a RESULT line under F[key.*].
take_result() { # key line
    local kv
    for kv in $2; do
        # shellcheck disable=SC2034  # the caller's array
        [[ $kv == *=* ]] && F["$1.${kv%%=*}"]=${kv#*=}
    done
}

# Runs sockbench once (bounded); dies on any error it reports. Its RESULT line
# goes into F[key.*], the label into LABEL[key].
sb() { # key label mode args...
    local key=$1 label=$2 mode=$3 out="$TMP/sb-$1.out" r
    shift 3
    say "sockbench $mode $* ($label)"
    if ! timeout -k 5 "$SB_TIMEOUT" "${SB_PIN[@]}" "$SB" "$mode" "$@" \
        >"$out" 2>"$TMP/sb-$key.err"; then
        sed 's/^/    /' "$TMP/sb-$key.err" "$out" >&2
        die "sockbench $mode failed ($label)"
    fi
    r=$(grep '^RESULT ' "$out" | tail -n 1)
    [[ -n $r ]] || die "no RESULT line from sockbench $mode ($label)"
    if ((${#r} > 400)); then printf '    %s...\n' "${r:0:400}"; else printf '    %s\n' "$r"; fi
    take_result "$key" "$r"
    # shellcheck disable=SC2034  # the caller's array
    LABEL["$key"]=$label
    ORDER+=("$key")
}

# CPU_LIST: the CPUs this script may run on (its affinity list, ranges expanded).
affinity_cpus() {
    local cpus part
    cpus=$(taskset -pc $$ | sed 's/.*: *//') # e.g. 0,1 or 0-3
    CPU_LIST=()
    for part in ${cpus//,/ }; do
        if [[ $part == *-* ]]; then
            mapfile -t -O "${#CPU_LIST[@]}" CPU_LIST < <(seq "${part%-*}" "${part#*-}")
        else
            CPU_LIST+=("$part")
        fi
    done
}

# --- checks and report -----------------------------------------------------------
# Checks a JSON answer with a python expression over `d`; dies with the answer otherwise.
# expr sees the answer as d, and as channels the list of a GET /v1/channels
# answer: a page's "channels", or the whole array an older gateway (GATEWAY_BIN) answers.
check_json() { # what json expr
    python3 -c '
import json, sys
d = json.loads(sys.argv[1])
channels = d.get("channels", []) if isinstance(d, dict) else d
sys.exit(0 if eval(sys.argv[2]) else 1)' "$2" "$3" 2>/dev/null || die "$1: unexpected answer: ${2:0:400}"
}

print_gateway_log() {
    if [[ -s $TMP/gateway.log ]]; then
        echo
        echo "  gateway stderr (log level warn) during the runs, last lines:"
        tail -n 10 "$TMP/gateway.log" | sed 's/^/    /'
    fi
}

finish() {
    if [[ $STRICT == 1 && $MISSED -gt 0 ]]; then
        echo
        echo "$BENCH_NAME: $MISSED target(s) missed (STRICT=1)" >&2
        exit 1
    fi
    exit 0
}
