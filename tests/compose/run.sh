#!/usr/bin/env bash
# tests/compose/run.sh - the docker-compose demo, for real, on a real engine.
# Prints TAP; quiet unless something fails (then the compose logs go to stderr).
#
#   bash tests/compose/run.sh          (root, or sudo without a password)
#   bash tests/compose/run.sh cluster  the profile `cluster` instead of the demo
#                                      (tests/compose/cluster.sh says what it checks)
#   meson test -C build --suite compose
#
# What it does, in order:
#   1. installs docker.io, docker-compose and debootstrap if they are missing,
#      and starts dockerd if no engine answers (remembering its PID);
#   2. if the image debian:bookworm-slim is absent (nothing can be pulled
#      here), builds it: debootstrap --variant=minbase bookworm from the mirror
#      in this machine's own apt sources, then docker import;
#   3. docker-compose config -q, build (DOCKER_BUILDKIT=0), up -d, waits for
#      the gateway to be healthy;
#   4. checks that the subscriber printed the poster's messages and the poller
#      saw them (the same seq and body), each in the form the README shows
#      (`201 seq 8 "hello #8"`, `push seq 8 "hello #8" 1.2 ms after commit`,
#      a poll's batch with the age of its oldest message) and in lines that
#      fit 100 columns with compose's prefix; that the REST API and the
#      session port answer from the host on 127.0.0.1; that the documented
#      bench command (`--profile bench run --rm bench --duration 2 ...`)
#      runs gwbench with those options, with docker-compose and, when it is
#      there, `docker compose` v2; that `down` takes < 5 s with every
#      container ending on SIGTERM, and that the data survives down + up
#      (named volume);
#   5. removes what it created: the project's containers, networks and
#      volumes; and, if it started dockerd, stops that one process (and the
#      containerd it spawned), then removes the bridge, the iptables rules and
#      chains and the sysctl changes that appeared while it ran.
#
# Each run uses its own compose project name and free ports, and runs alone
# (a lock), since it may start and stop the engine. The images it builds
# (visavis, visavis-demo, debian:bookworm-slim) are kept: they are the cache
# that makes the next run fast. If no engine can run here at all (no
# privileges), it prints "1..0 # SKIP <why>" and exits 0.
#
# Environment: COMPOSE_TEST_KEEP=1 leaves the containers up after a failure.

set -uo pipefail

mode=${1:-demo}
case $mode in
demo) ;;
cluster) export COMPOSE_PROFILES=cluster ;; # every compose command sees its services
*)
    echo "usage: $0 [demo|cluster]" >&2
    exit 2
    ;;
esac

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
compose_file=$root/docker-compose.yml
export DOCKER_BUILDKIT=0 COMPOSE_DOCKER_CLI_BUILD=0
export DEBIAN_FRONTEND=noninteractive

work=$(mktemp -d "${TMPDIR:-/tmp}/visavis-compose.XXXXXX")
log=$work/log
: >"$log"
project=visavis_t$$_$RANDOM

n=0                # TAP assertions printed
failed=0
dumped=0           # compose logs printed already
we_started=0       # this run started dockerd
dockerd_pid=""
containerd_pid=""
events_pid=""
project_up=0       # the project may have containers, networks or volumes

# ---- TAP --------------------------------------------------------------------

ok() {
    n=$((n + 1))
    echo "ok $n - $1"
}

# not_ok DESCRIPTION [DIAGNOSTIC LINE]...
not_ok() {
    n=$((n + 1))
    failed=1
    echo "not ok $n - $1"
    shift
    local line
    for line in "$@"; do
        printf '# %s\n' "$line"
    done
    dump_logs
}

skip_one() {
    n=$((n + 1))
    echo "ok $n - $1 # SKIP $2"
}

skip_all() {
    echo "1..0 # SKIP $1"
    cleanup
    exit 0
}

bail() {
    echo "Bail out! $1"
    cleanup
    exit 1
}

# Everything a failure needs to be understood, once, on stderr.
dump_logs() {
    [ "$dumped" = 1 ] && return
    dumped=1
    {
        echo "==== tests/compose: the commands' output ($log)"
        tail -n 120 "$log"
        if [ "$project_up" = 1 ]; then
            echo "==== docker-compose ps"
            dc ps 2>&1
            echo "==== docker-compose logs"
            dc logs --no-color --tail=150 2>&1
        fi
        if [ "$we_started" = 1 ]; then
            echo "==== dockerd (started by this test): its last lines"
            tail -n 40 "$work/dockerd.log"
        fi
    } >&2
}

# ---- helpers ----------------------------------------------------------------

q() { "$@" >>"$log" 2>&1; }

as_root() {
    if [ "$(id -u)" = 0 ]; then
        "$@"
    elif command -v sudo >/dev/null 2>&1; then
        sudo -n "$@"
    else
        return 1
    fi
}

can_be_root() {
    as_root true 2>/dev/null
}

dc() {
    docker-compose -f "$compose_file" -p "$project" "$@"
}

# dct SECONDS ARGS...: dc under a time limit.
dct() {
    local t=$1
    shift
    timeout "$t" docker-compose -f "$compose_file" -p "$project" "$@"
}

# qw COMMAND...: q, but waited for in the background, so that a signal to
# this script is handled at once (cleanup then ends the command by its PID).
child=""
qw() {
    "$@" >>"$log" 2>&1 &
    child=$!
    wait "$child"
    local rc=$?
    child=""
    return $rc
}

engine_answers() {
    timeout 20 docker info >/dev/null 2>&1
}

# now_ms: milliseconds since the epoch.
now_ms() { date +%s%3N; }

# The stdout of a service's container (docker logs keeps stderr apart).
svc_id() { dc ps -q "$1" 2>/dev/null | head -n 1; }
svc_stdout() {
    local id
    id=$(svc_id "$1")
    [ -n "$id" ] && docker logs "$id" 2>/dev/null
}

# Each client's messages, as `<seq> "<body>"` lines, from the forms it prints:
#   poster      201 seq 8 "hello #8"
#   subscriber  push seq 8 "hello #8" 1.2 ms after commit
#   poller      got seq 8 "hello #8"   (after its "poll since=..." line)
poster_msgs() { svc_stdout "${1:-poster}" | sed -n 's/^201 seq \([0-9]*\) \(".*"\)$/\1 \2/p'; }
sub_msgs() {
    svc_stdout "${1:-subscriber}" |
        sed -n 's/^push seq \([0-9]*\) \(".*"\) [0-9]*\.[0-9]* m\{0,1\}s after commit$/\1 \2/p'
}
poll_msgs() { svc_stdout poller | sed -n 's/^got seq \([0-9]*\) \(".*"\)$/\1 \2/p'; }

# seq of each message line on stdin.
seqs() { sed -n 's/^\([0-9]*\) .*/\1/p'; }

# consecutive FILE: the messages' seqs go up by one, no hole, no repeat.
consecutive() {
    seqs <"$1" | awk 'NR > 1 && $1 != prev + 1 { bad = 1 } { prev = $1 } END { exit bad }'
}

# common_lines FILE1 FILE2: how many lines of FILE2 are also, whole, in FILE1.
common_lines() {
    [ -s "$1" ] && [ -s "$2" ] || { echo 0; return; }
    grep -cFxf "$1" "$2"
}

# wait_healthy [SERVICE]: the gateway's (or SERVICE's) container runs and its
# healthcheck passes.
wait_healthy() {
    local svc=${1:-gateway} deadline=$((SECONDS + 90)) id state
    while :; do
        id=$(svc_id "$svc")
        if [ -n "$id" ]; then
            state=$(docker inspect -f '{{.State.Status}} {{if .State.Health}}{{.State.Health.Status}}{{end}}' \
                "$id" 2>/dev/null)
            case $state in
            "running healthy") return 0 ;;
            exited* | dead*) echo "the $svc container is $state"; return 1 ;;
            esac
        fi
        if [ $SECONDS -ge $deadline ]; then
            echo "the $svc is not healthy after 90 s (${state:-no container})"
            return 1
        fi
        sleep 0.5
    done
}

# check_follower NAME FILE-OF-ITS-MESSAGES MIN-COMMON [POSTER-SERVICE]: NAME
# printed at least MIN-COMMON of the poster's messages, with consecutive
# seqs, and none the poster posted while it followed is missing; prints how
# many it has in common, or why not (status 1).
check_follower() {
    local name=$1 got=$2 want=$3 c lo hi missing
    poster_msgs "${4:-poster}" >"$work/poster.txt"
    c=$(common_lines "$work/poster.txt" "$got")
    [ "$c" -ge "$want" ] || { echo "$name printed $c of the poster's messages, wanted $want"; return 1; }
    consecutive "$got" || { echo "$name's seqs are not consecutive: $(seqs <"$got" | tr '\n' ' ')"; return 1; }
    lo=$(seqs <"$got" | head -n 1)
    hi=$(seqs <"$got" | tail -n 1)
    missing=$(awk -v lo="$lo" -v hi="$hi" '$1 + 0 >= lo && $1 + 0 <= hi' \
        "$work/poster.txt" | grep -vxFf "$got" | head -n 3)
    [ -z "$missing" ] || { echo "$name lacks messages the poster posted while it followed: $missing"; return 1; }
    echo "$c"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

http() { curl -fsS --max-time 10 "http://127.0.0.1:$VISAVIS_HTTP_PORT$1"; }

# ---- the engine ---------------------------------------------------------------

install_missing() {
    local need=""
    command -v dockerd >/dev/null 2>&1 || engine_answers || need="$need docker.io"
    command -v docker >/dev/null 2>&1 || need="$need docker.io"
    command -v docker-compose >/dev/null 2>&1 || need="$need docker-compose"
    command -v debootstrap >/dev/null 2>&1 || need="$need debootstrap"
    command -v curl >/dev/null 2>&1 || need="$need curl"
    [ -z "$need" ] && return 0
    can_be_root || skip_all "missing:$need, and installing needs root"
    # shellcheck disable=SC2086
    if ! qw as_root apt-get update -q || ! qw as_root apt-get install -y -q --no-install-recommends $need; then
        not_ok "install$need" "apt-get install failed"
        bail "cannot install$need"
    fi
}

# What the engine changes on the host, so that it can be undone: iptables
# rules and chains, network links, a few sysctls.
net_snapshot() {
    local cmd t
    for cmd in iptables ip6tables; do
        command -v $cmd >/dev/null 2>&1 || continue
        for t in filter nat mangle raw; do
            as_root $cmd -w -t $t -S 2>/dev/null | sed "s/^/$cmd $t /"
        done
    done
}
link_names() { ip -o link show 2>/dev/null | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'; }
sysctl_keys="net.ipv4.ip_forward net.ipv6.conf.all.forwarding net.bridge.bridge-nf-call-iptables net.bridge.bridge-nf-call-ip6tables"
sysctl_snapshot() {
    local k f
    for k in $sysctl_keys; do
        f=/proc/sys/${k//.//}
        [ -r "$f" ] && echo "$k $(cat "$f")"
    done
}

start_engine() {
    local mtu dev i
    can_be_root || skip_all "no docker engine answers, and starting one needs root"
    net_snapshot >"$work/net.before"
    link_names >"$work/links.before"
    sysctl_snapshot >"$work/sysctl.before"
    [ -e /var/run/docker ] && touch "$work/execroot.existed"
    # Containers get the MTU of the host's way out (1400 on some VMs), so
    # that what the build downloads fits through it.
    dev=$(ip route show default 2>/dev/null | awk '{ for (i = 1; i < NF; i++) if ($i == "dev") { print $(i + 1); exit } }')
    mtu=$(cat "/sys/class/net/$dev/mtu" 2>/dev/null || echo 1500)
    [ "$mtu" -gt 1500 ] && mtu=1500
    unset DOCKER_HOST DOCKER_CONTEXT
    # In its own session, so that a signal to this test's process group does
    # not reach it: we stop it ourselves, by its PID (from its pidfile: with
    # sudo, $! is sudo's).
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo setsid dockerd --log-level warn --mtu "$mtu" --pidfile "$work/dockerd.pid" </dev/null >"$work/dockerd.log" 2>&1 &
    dockerd_pid=$!
    we_started=1
    for i in $(seq 1 120); do
        if engine_answers; then
            i=$(cat "$work/dockerd.pid" 2>/dev/null)
            [ -n "$i" ] && [ "$(cat "/proc/$i/comm" 2>/dev/null)" = dockerd ] && dockerd_pid=$i
            containerd_pid=$(ps -o pid= -o comm= --ppid "$dockerd_pid" 2>/dev/null |
                awk '$2 == "containerd" { print $1; exit }')
            return 0
        fi
        kill -0 "$dockerd_pid" 2>/dev/null || break
        sleep 0.5
    done
    local why cap
    why=$(grep -m1 -iE 'operation not permitted|permission denied' "$work/dockerd.log")
    cap=$(as_root awk '/^CapEff:/ { print $2 }' /proc/self/status)
    stop_engine
    # No CAP_SYS_ADMIN (bit 21), or the kernel refusing: no engine can run here.
    if [ -n "$why" ] || [ $(((16#${cap:-0} >> 21) & 1)) = 0 ]; then
        skip_all "dockerd cannot run here: ${why:-no CAP_SYS_ADMIN}"
    fi
    not_ok "a docker engine answers" "the dockerd this test started did not answer within 60 s"
    bail "no docker engine"
}

# Undo what our dockerd left: iptables rules first, then the chains it made,
# then links and sysctls. Only differences from the snapshot taken before it
# started are touched.
restore_net() {
    [ -f "$work/net.before" ] || return 0
    net_snapshot >"$work/net.after"
    local line cmd t rest chain old
    # rules added to chains that existed before: delete them one by one
    grep -vxFf "$work/net.before" "$work/net.after" >"$work/net.added" || true
    awk '$3 == "-N" { print $1, $2, $4 }' "$work/net.added" >"$work/net.newchains"
    while read -r cmd t rest; do
        case $rest in
        "-A "*)
            chain=${rest#-A }
            chain=${chain%% *}
            grep -qxF "$cmd $t $chain" "$work/net.newchains" && continue
            eval "as_root $cmd -w -t $t -D ${rest#-A }" >>"$log" 2>&1
            ;;
        "-P "*)
            chain=${rest#-P }
            chain=${chain%% *}
            old=$(awk -v c="$cmd" -v t="$t" -v ch="$chain" '$1 == c && $2 == t && $3 == "-P" && $4 == ch { print $5 }' \
                "$work/net.before")
            [ -n "$old" ] && as_root "$cmd" -w -t "$t" -P "$chain" "$old" >>"$log" 2>&1
            ;;
        esac
    done <"$work/net.added"
    while read -r cmd t chain; do as_root "$cmd" -w -t "$t" -F "$chain" >>"$log" 2>&1; done <"$work/net.newchains"
    while read -r cmd t chain; do as_root "$cmd" -w -t "$t" -X "$chain" >>"$log" 2>&1; done <"$work/net.newchains"
    # links: the bridges and veths that appeared
    link_names | grep -vxFf "$work/links.before" | grep -E '^(docker0|br-[0-9a-f]+|veth[0-9a-f]+)$' |
        while read -r line; do as_root ip link delete "$line" >>"$log" 2>&1; done
    # sysctls back to what they were
    while read -r line old; do
        [ "$(cat "/proc/sys/${line//.//}" 2>/dev/null)" = "$old" ] ||
            echo "$old" | as_root tee "/proc/sys/${line//.//}" >/dev/null 2>>"$log"
    done <"$work/sysctl.before"
    # dockerd's runtime folder, if it made it and left nothing mounted there
    if [ ! -e "$work/execroot.existed" ] && [ -d /var/run/docker ] &&
        ! findmnt -rn -o TARGET | grep -q '^/var/run/docker\|^/run/docker'; then
        as_root rm -rf --one-file-system /var/run/docker
    fi
    rm -f "$work/net.before"
}

# The residue check: nothing of what restore_net removes is left.
net_residue() {
    local left
    net_snapshot >"$work/net.now"
    left=$(grep -vxFf "$work/net.before.kept" "$work/net.now" | head -n 5)
    [ -n "$left" ] && echo "iptables: $left"
    left=$(link_names | grep -vxFf "$work/links.before" | grep -E '^(docker0|br-[0-9a-f]+|veth[0-9a-f]+)$')
    [ -n "$left" ] && echo "links: $left"
    sysctl_snapshot | grep -vxFf "$work/sysctl.before" | sed 's/^/sysctl: /'
    [ -e "$work/execroot.existed" ] || [ ! -e /var/run/docker ] || echo "left: /var/run/docker"
}

wait_gone() { # PID SECONDS
    local i
    for i in $(seq 1 $(($2 * 10))); do
        kill -0 "$1" 2>/dev/null || return 0
        sleep 0.1
    done
    return 1
}

stop_engine() {
    [ "$we_started" = 1 ] || return 0
    if [ -n "$dockerd_pid" ] && kill -0 "$dockerd_pid" 2>/dev/null; then
        as_root kill -TERM "$dockerd_pid" 2>/dev/null
        wait_gone "$dockerd_pid" 30 || as_root kill -KILL "$dockerd_pid" 2>/dev/null
        wait "$dockerd_pid" 2>/dev/null
    fi
    # dockerd stops the containerd it spawned; if it could not, we do.
    if [ -n "$containerd_pid" ] && [ "$(cat "/proc/$containerd_pid/comm" 2>/dev/null)" = containerd ]; then
        as_root kill -TERM "$containerd_pid" 2>/dev/null
        wait_gone "$containerd_pid" 10 || as_root kill -KILL "$containerd_pid" 2>/dev/null
    fi
    dockerd_pid=""
    containerd_pid=""
    [ -f "$work/net.before" ] && cp "$work/net.before" "$work/net.before.kept"
    restore_net
    we_started=2 # stopped
}

# build_images IMAGE...: docker-compose build (a TAP line; bails out when it
# fails); images this build replaced are removed, being no one's cache any more.
build_images() {
    local old_images new_images id kv t0=$SECONDS build_args=()
    old_images=$(docker image inspect -f '{{.Id}}' "$@" 2>/dev/null)
    for kv in $(apt_proxies); do build_args+=(--build-arg "$kv"); done
    if qw dct 840 build --force-rm "${build_args[@]}"; then
        ok "docker-compose build: images $* in $((SECONDS - t0)) s"
        new_images=$(docker image inspect -f '{{.Id}}' "$@" 2>/dev/null)
        for id in $old_images; do
            grep -qxF "$id" <<<"$new_images" || q docker rmi "$id"
        done
    else
        not_ok "docker-compose build" "its output follows on stderr"
        bail "the images do not build"
    fi
}

# watched_down SECONDS: docker-compose down within SECONDS, with a watch on
# the containers' deaths. Sets rc (its status), down_ms, dies (how many
# containers ended), bad (those whose status was not 0) and left (what
# still exists).
watched_down() {
    docker events --filter "label=com.docker.compose.project=$project" --filter event=die \
        --format '{{.Actor.Attributes.name}} exit {{.Actor.Attributes.exitCode}}' >"$work/events.txt" 2>>"$log" &
    events_pid=$!
    sleep 0.5
    local t0
    t0=$(now_ms)
    q dct "$1" down
    rc=$?
    down_ms=$(($(now_ms) - t0))
    sleep 1
    kill "$events_pid" 2>/dev/null
    wait "$events_pid" 2>/dev/null
    events_pid=""
    dies=$(grep -c . "$work/events.txt")
    bad=$(grep -v ' exit 0$' "$work/events.txt")
    left=$(docker ps -aq --filter "label=com.docker.compose.project=$project")
}

# remove_all: down -v; prints what of the project is left (containers,
# networks, volumes), status 1 if anything is.
remove_all() {
    local kind ids left=""
    q dct 120 down -v --remove-orphans -t 5
    for kind in "ps -a" "network ls" "volume ls"; do
        # shellcheck disable=SC2086
        ids=$(docker $kind -q --filter "label=com.docker.compose.project=$project" 2>/dev/null)
        [ -n "$ids" ] && left="$left $kind: $(tr '\n' ' ' <<<"$ids")"
    done
    echo "$left"
    [ -z "$left" ]
}

# engine_gone: the engine, if this run started it, is stopped and its traces
# removed (a TAP line either way); once the project is down.
engine_gone() {
    local pid residue
    if [ "$we_started" = 1 ] && [ "$project_up" = 0 ]; then
        pid=$dockerd_pid
        stop_engine
        residue=$(net_residue)
        if kill -0 "$pid" 2>/dev/null || [ -n "$residue" ]; then
            not_ok "dockerd (PID $pid) stopped, its bridge, iptables rules and sysctls removed" "$residue"
        else
            ok "dockerd (PID $pid) stopped; its bridge, iptables rules and chains and sysctls are gone"
        fi
    else
        skip_one "stop the engine" "this run did not start it"
    fi
}

# ---- the base image -----------------------------------------------------------

# The URIs of the enabled `deb` sources for bookworm, from apt's own lists:
# sources.list and sources.list.d/*.list (one-line) and *.sources (deb822).
apt_bookworm_uris() {
    local list="" parts="" f
    eval "$(apt-config shell list Dir::Etc::sourcelist/f parts Dir::Etc::sourceparts/d)"
    {
        for f in "$list" "$parts"/*.list; do
            [ -f "$f" ] || continue
            sed -e 's/#.*//' -e 's/\[[^]]*\]//' "$f" | awk '$1 == "deb" && $3 == "bookworm" { print $2 }'
        done
        for f in "$parts"/*.sources; do
            [ -f "$f" ] || continue
            awk '
                function flush(   k, n, u) {
                    if ((" " types " ") ~ /[ \t]deb[ \t]/ && enabled != "no" && (" " suites " ") ~ /[ \t]bookworm[ \t]/) {
                        n = split(uris, u, /[ \t]+/)
                        for (k = 1; k <= n; k++) if (u[k] != "") print u[k]
                    }
                    types = uris = suites = last = ""; enabled = "yes"
                }
                BEGIN { enabled = "yes" }
                /^[ \t]*#/ { next }
                /^[ \t]*$/ { flush(); next }
                /^[ \t]/ {
                    v = $0; sub(/^[ \t]+/, "", v)
                    if (last == "types") types = types " " v
                    else if (last == "uris") uris = uris " " v
                    else if (last == "suites") suites = suites " " v
                    next
                }
                {
                    k = tolower($0); sub(/:.*/, "", k)
                    v = $0; sub(/^[^:]*:[ \t]*/, "", v)
                    last = k
                    if (k == "types") types = v
                    else if (k == "uris") uris = v
                    else if (k == "suites") suites = v
                    else if (k == "enabled") enabled = tolower(v)
                }
                END { flush() }' "$f"
        done
    }
}

# The mirror to debootstrap from: the first http source, else the first https.
apt_mirror() {
    local uris
    uris=$(apt_bookworm_uris)
    { grep -m1 '^http://' <<<"$uris" || grep -m1 '^https://' <<<"$uris"; } 2>/dev/null
}

# apt's proxy, if it has one, for debootstrap (wget) and for the build.
apt_proxies() {
    local hp="" hsp=""
    eval "$(apt-config shell hp Acquire::http::Proxy hsp Acquire::https::Proxy)"
    case $hp in "" | DIRECT | false) ;; *) echo "http_proxy=$hp" ;; esac
    case $hsp in "" | DIRECT | false) ;; *) echo "https_proxy=$hsp" ;; esac
}

unmount_under() {
    findmnt -rn -o TARGET 2>/dev/null | grep -F "$1/" | sort -r |
        while read -r m; do as_root umount -l "$m" >>"$log" 2>&1; done
}

# build_base_image: sets base_msg to what happened; status 0 when the image
# is there.
rootfs=""
base_msg=""
build_base_image() {
    local mirror include=""
    mirror=$(apt_mirror)
    if [ -z "$mirror" ]; then
        base_msg="no enabled 'deb' source for bookworm in apt's sources"
        return 1
    fi
    case $mirror in https://*) include="--include=ca-certificates" ;; esac
    can_be_root || { base_msg="debootstrap needs root"; return 1; }
    rootfs=$(mktemp -d /var/tmp/visavis-rootfs.XXXXXX)
    echo "debootstrap --variant=minbase bookworm from $mirror" >>"$log"
    # shellcheck disable=SC2046
    if ! qw as_root env $(apt_proxies) timeout 900 debootstrap --variant=minbase $include bookworm \
        "$rootfs" "$mirror"; then
        unmount_under "$rootfs"
        base_msg="debootstrap from $mirror failed"
        return 1
    fi
    unmount_under "$rootfs"
    # What a slim image leaves out: the downloaded packages, the index files,
    # the device nodes (the engine makes /dev) and this host's names.
    as_root sh -c 'cd "$1" && rm -rf var/cache/apt/archives/*.deb var/lib/apt/lists/* dev/* \
        etc/resolv.conf etc/hostname debootstrap' sh "$rootfs" >>"$log" 2>&1
    if ! as_root tar --numeric-owner -C "$rootfs" -c . 2>>"$log" |
        docker import --change 'CMD ["bash"]' \
            --message "debootstrap --variant=minbase bookworm $mirror" - debian:bookworm-slim >>"$log" 2>&1; then
        base_msg="docker import failed"
        return 1
    fi
    as_root rm -rf --one-file-system "$rootfs"
    rootfs=""
    base_msg="built from $mirror"
}

# ---- cleanup ------------------------------------------------------------------

cleaned=0
cleanup() {
    [ "$cleaned" = 1 ] && return
    cleaned=1
    if [ -n "$child" ]; then
        # shellcheck disable=SC2046
        kill -TERM $(ps -o pid= --ppid "$child" 2>/dev/null) "$child" 2>/dev/null
        wait "$child" 2>/dev/null
        child=""
    fi
    if [ -n "$events_pid" ]; then
        kill "$events_pid" 2>/dev/null
        wait "$events_pid" 2>/dev/null
        events_pid=""
    fi
    if [ "$project_up" = 1 ]; then
        if [ "$failed" = 1 ] && [ "${COMPOSE_TEST_KEEP:-0}" = 1 ]; then
            echo "# COMPOSE_TEST_KEEP=1: project $project left up (docker-compose -p $project down -v)" >&2
        else
            timeout 120 docker-compose -f "$compose_file" -p "$project" down -v --remove-orphans -t 5 >>"$log" 2>&1
            project_up=0
        fi
    fi
    if [ -n "$rootfs" ] && [ -d "$rootfs" ]; then
        unmount_under "$rootfs"
        as_root rm -rf --one-file-system "$rootfs"
        rootfs=""
    fi
    [ "$project_up" = 1 ] || stop_engine
    if [ "$failed" = 0 ]; then
        rm -rf "$work"
    else
        echo "# logs kept in $work" >&2
    fi
    if [ -n "${lock_fd:-}" ]; then
        exec {lock_fd}>&-
        lock_fd=""
    fi
}

trap 'cleanup' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM HUP

# ---- the test -----------------------------------------------------------------

# One run at a time on this machine: a run may start and stop the engine.
# (One that cannot open the lock file cannot start an engine either.)
if exec {lock_fd}>>/tmp/visavis-compose-test.lock; then
    flock -w 600 "$lock_fd" || bail "another compose test held the lock for 10 minutes"
else
    lock_fd=""
fi 2>/dev/null

# 1. an engine
install_missing
if engine_answers; then
    ok "a docker engine answers ($(docker version -f '{{.Server.Version}}' 2>/dev/null), already running)"
else
    start_engine
    ok "a docker engine answers (dockerd $(docker version -f '{{.Server.Version}}' 2>/dev/null), started by this test, PID $dockerd_pid)"
fi
command -v docker-compose >/dev/null 2>&1 || bail "docker-compose is not installed"

# 2. the base image
if docker image inspect debian:bookworm-slim >/dev/null 2>&1; then
    ok "the base image debian:bookworm-slim is there"
else
    t0=$SECONDS
    if build_base_image; then
        ok "the base image debian:bookworm-slim, $base_msg in $((SECONDS - t0)) s"
    else
        not_ok "the base image debian:bookworm-slim" "$base_msg"
        bail "no base image"
    fi
fi

if [ "$mode" = cluster ]; then
    # shellcheck source=cluster.sh
    source "$root/tests/compose/cluster.sh"
    echo "1..$n"
    exit $failed
fi

# 3. the compose file
VISAVIS_HTTP_PORT=$(free_port)
VISAVIS_TCP_PORT=$(free_port)
while [ "$VISAVIS_TCP_PORT" = "$VISAVIS_HTTP_PORT" ]; do VISAVIS_TCP_PORT=$(free_port); done
export VISAVIS_HTTP_PORT VISAVIS_TCP_PORT
if q dc config -q && q dc --profile bench config -q; then
    ok "docker-compose config -q accepts docker-compose.yml (with and without the bench profile)"
else
    not_ok "docker-compose config -q" "$(dc config -q 2>&1 | tail -n 5)"
    bail "invalid compose file"
fi

# 4. the images
build_images visavis visavis-demo

# 5. up, healthy, published on the host's loopback only
project_up=1
if ! qw dct 180 up -d; then
    not_ok "docker-compose up -d"
    bail "the demo does not start"
fi
if ! why=$(wait_healthy); then
    not_ok "the gateway is healthy" "$why"
    bail "the gateway is not healthy"
fi
gw_id=$(svc_id gateway)
ports=$(docker port "$gw_id" 2>/dev/null | sort)
want=$(printf '12345/tcp -> 127.0.0.1:%s\n12345/udp -> 127.0.0.1:%s\n8080/tcp -> 127.0.0.1:%s\n' \
    "$VISAVIS_TCP_PORT" "$VISAVIS_TCP_PORT" "$VISAVIS_HTTP_PORT" | sort)
if [ "$ports" = "$want" ]; then
    ok "up -d: the gateway is healthy, published on 127.0.0.1:$VISAVIS_HTTP_PORT and :$VISAVIS_TCP_PORT (TCP and UDP) only"
else
    not_ok "the gateway's ports are published on 127.0.0.1 only" "published: $(tr '\n' ';' <<<"$ports")" \
        "wanted: $(tr '\n' ';' <<<"$want")"
fi

# 5b. a datagram from the host reaches the gateway through the published UDP
# port and is stored on channel udp, "via":"udp" (docs/udp.md)
token="compose-udp-$$-$RANDOM"
got=""
deadline=$((SECONDS + 20))
while [ $SECONDS -lt $deadline ]; do
    python3 -c 'import socket, sys; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(sys.argv[1].encode(), ("127.0.0.1", int(sys.argv[2])))' \
        "$token" "$VISAVIS_TCP_PORT"
    got=$(http "/v1/channels/udp/messages?since=0&limit=1000" 2>/dev/null | grep -o "\"body\":\"$token\"[^}]*\"via\":\"udp\"" | head -n 1)
    [ -n "$got" ] && break
    sleep 1
done
if [ -n "$got" ]; then
    ok "a datagram sent to 127.0.0.1:$VISAVIS_TCP_PORT/udp is stored on channel udp, via udp"
else
    not_ok "a datagram from the host reaches the gateway" \
        "channel udp: $(http "/v1/channels/udp/messages?since=0&limit=5" 2>&1 | head -c 400)"
fi

# 6. the subscriber prints what the poster posted: the same JSON lines (id,
# seq, body, ts ...), in seq order without holes, and nothing the poster
# posted while it followed is missing.
good=0
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    sub_msgs >"$work/sub.txt"
    why=$(check_follower subscriber "$work/sub.txt" 4) && { good=1; break; }
    sleep 1
done
if [ $good = 1 ]; then
    ok "the subscriber (gwsh --sub demo --text) printed the poster's messages, same seq and body ($why so far)"
else
    not_ok "the subscriber printed the poster's messages" "$why"
fi

# 7. the poller saw them too
good=0
deadline=$((SECONDS + 60))
while [ $SECONDS -lt $deadline ]; do
    poll_msgs >"$work/poll.txt"
    why=$(check_follower poller "$work/poll.txt" 4) && { good=1; break; }
    sleep 1
done
if [ $good = 1 ]; then
    ok "the poller (REST, every 3 s, since=) got the poster's messages, same seq and body ($why so far)"
else
    not_ok "the poller got the poster's messages" "$why"
fi

# 7b. the logs teach: every line of the clients is in its documented form and
# fits 100 columns behind compose's prefix (up to 24 columns: "visavis-subscriber-1  | ").
why=""
for svc in poster subscriber poller; do
    svc_stdout "$svc" >"$work/$svc.out"
    long=$(awk 'length($0) > 76' "$work/$svc.out" | head -n 1)
    [ -z "$long" ] || why="$why $svc has a line over 76 columns: $long;"
done
odd=$(grep -cvE '^201 seq [0-9]+ ".*"$' "$work/poster.out")
[ "$odd" = 0 ] || why="$why $odd poster lines not '201 seq N \"body\"';"
odd=$(grep -cvE '^push seq [0-9]+ ".*" [0-9]+\.[0-9] ms after commit$|^push seq [0-9]+ ".*" [0-9]+\.[0-9]{2} s after commit$' \
    "$work/subscriber.out")
[ "$odd" = 0 ] || why="$why $odd subscriber lines not 'push seq N \"body\" X ms after commit';"
grep -qE ' ms after commit$' "$work/subscriber.out" || why="$why no push arrived within a second of its commit;"
batches=$(grep -cE '^poll since=[0-9]+: [0-9]+ new \(seq [0-9]+\.\.[0-9]+\), the oldest committed [0-9]+\.[0-9]{2} s ago$' \
    "$work/poller.out")
odd=$(grep -cvE '^poll since=|^got seq [0-9]+ ".*"$' "$work/poller.out")
[ "$batches" -ge 1 ] && [ "$odd" = 0 ] || why="$why poller: $batches batch lines, $odd lines of neither form;"
if [ -z "$why" ]; then
    ok "the logs: '201 seq N', pushes with their delay after commit, the poller's batches with their oldest message's age; every line fits"
else
    not_ok "the clients' lines are in their documented form and fit 100 columns" "$why"
fi

# 8. the REST API from the host: liveness, version, and a POST that the
# subscriber inside the compose network gets pushed.
health=$(http /healthz 2>&1)
version=$(http /v1/version 2>&1)
body="from the host, $project"
posted=$(curl -fsS --max-time 10 -H 'content-type: application/json' \
    -d "{\"sender\":\"host\",\"body\":\"$body\"}" \
    "http://127.0.0.1:$VISAVIS_HTTP_PORT/v1/channels/demo/messages" 2>&1)
pushed=0
want_push=$(printf '%s\n' "$posted" | sed -n 's/^{"id":[0-9]*,"channel":"demo","seq":\([0-9]*\),.*/\1 "'"$body"'"/p')
deadline=$((SECONDS + 15))
while [ $SECONDS -lt $deadline ]; do
    if [ -n "$want_push" ] && sub_msgs | grep -qxF "$want_push"; then
        pushed=1
        break
    fi
    sleep 0.5
done
if [ "$health" = '{"status":"ok"}' ] && [[ $version == *'"name":"visavis"'* ]] && [ $pushed = 1 ]; then
    ok "the REST API answers on 127.0.0.1:$VISAVIS_HTTP_PORT from the host; its POST reached the subscriber"
else
    not_ok "the REST API answers on 127.0.0.1 from the host" "healthz: $health" "version: $version" \
        "POST: $posted" "pushed to the subscriber: $pushed"
fi

# 9. the session port from the host: greeting, then a command and its reply
greet="" reply=""
if exec {s}<>"/dev/tcp/127.0.0.1/$VISAVIS_TCP_PORT" 2>/dev/null; then
    read -r -t 10 greet <&"$s"
    printf 'PING host\r\n' >&"$s"
    read -r -t 10 reply <&"$s"
    printf 'QUIT\r\n' >&"$s"
    exec {s}>&-
fi
if [[ $greet == '{"type":"hello","protocol":"visavis"'* ]] && [[ $reply == '{"type":"pong","token":"host"'* ]]; then
    ok "the session port answers on 127.0.0.1:$VISAVIS_TCP_PORT from the host (hello, PING -> pong)"
else
    not_ok "the session port answers on 127.0.0.1 from the host" "greeting: $greet" "reply to PING: $reply"
fi

# 10. the bench profile: the README's command, options after the service name
# go to gwbench (its entrypoint), with both compose front ends when there are.
bench_check() { # NAME COMPOSE-COMMAND...
    local name=$1 out rc
    shift
    out=$(timeout 180 "$@" --profile bench run --rm -T bench --duration 2 \
        --styles tcp,rest-keepalive 2>&1)
    rc=$?
    if [ $rc = 0 ] && grep -q '^publish styles ' <<<"$out" && grep -q '^tcp ' <<<"$out" &&
        grep -q '^rest-keepalive ' <<<"$out" && grep -q '^best publish:' <<<"$out" &&
        ! grep -q '^tcp-push ' <<<"$out"; then
        ok "$name --profile bench run --rm bench --duration 2 --styles tcp,rest-keepalive: gwbench ran those two"
    else
        not_ok "$name --profile bench run --rm bench --duration 2 ... runs gwbench with those options" \
            "status $rc" "$(tail -n 12 <<<"$out")"
    fi
}
bench_check docker-compose docker-compose -f "$compose_file" -p "$project"
if docker compose version >/dev/null 2>&1; then
    bench_check "docker compose" docker compose -f "$compose_file" -p "$project"
else
    skip_one "the bench command with docker compose v2" "no compose v2 plugin on this machine"
fi

# 11. down is quick, and every container ends on SIGTERM with status 0 (no
# SIGKILL after the grace period: that would be 137).
first=$(http '/v1/channels/demo/messages?since=0&limit=1' | sed -n 's/^{"channel":"demo","messages":\[\(.*\)\],"next_since":[0-9]*\(,"more":true\)\{0,1\}}$/\1/p')
top=$(http /v1/channels | sed -n 's/.*{"name":"demo","messages":[0-9]*,"last_seq":\([0-9]*\).*/\1/p')
watched_down 60
if [ $rc = 0 ] && [ "$down_ms" -lt 5000 ] && [ "$dies" -ge 4 ] && [ -z "$bad" ] && [ -z "$left" ]; then
    ok "down took $down_ms ms (< 5 s); the $dies containers exited 0 on SIGTERM"
else
    not_ok "down takes < 5 s and every container exits 0" "status $rc, $down_ms ms" \
        "exits: $(tr '\n' ';' <"$work/events.txt")" "containers left: $left"
fi

# 12. the data survives down + up: same first message, seqs go on from where
# they were, in the one named volume (the clients have none).
why=""
if ! qw dct 180 up -d; then
    why="up -d failed"
elif ! why=$(wait_healthy); then
    :
else
    why=""
    again=$(http '/v1/channels/demo/messages?since=0&limit=1' | sed -n 's/^{"channel":"demo","messages":\[\(.*\)\],"next_since":[0-9]*\(,"more":true\)\{0,1\}}$/\1/p')
    [ -n "$first" ] && [ "$again" = "$first" ] || why="first message before: $first; after: $again"
    deadline=$((SECONDS + 30))
    next=""
    while [ -z "$why" ] && [ $SECONDS -lt $deadline ]; do
        next=$(poster_msgs | head -n 1 | seqs)
        [ -n "$next" ] && break
        sleep 0.5
    done
    # The poster went on posting until it was stopped, so its first seq
    # after the restart is above the last one read before down.
    [ -z "$why" ] && ! [ "${next:-0}" -gt "${top:-0}" ] &&
        why="last seq read before down: ${top:-none}; the poster's first seq after up: ${next:-none}"
    hid=$(sed -n 's/^{"id":\([0-9]*\),.*/\1/p' <<<"$posted")
    [ -z "$why" ] && [ "$(http "/v1/messages/$hid" 2>&1)" != "$posted" ] &&
        why="the host's message $hid is not what was posted: $(http "/v1/messages/$hid" 2>&1)"
    # docker-compose 1.29 also makes the volumes of profiles that are not
    # running (the cluster's pgdata): empty, and no container of the demo's.
    vols=$(docker volume ls -q --filter "label=com.docker.compose.project=$project" |
        grep -vxF "${project}_pgdata" | tr '\n' ' ')
    [ -z "$why" ] && [ "$vols" != "${project}_data " ] && why="volumes of the project: $vols (wanted ${project}_data only)"
fi
if [ -z "$why" ]; then
    ok "the data survives down + up in volume ${project}_data (messages 1 and $hid unchanged, seq goes on: $next > $top)"
else
    not_ok "the data survives down + up" "$why"
fi

# 13. everything the project made is gone
if left=$(remove_all); then
    project_up=0
    ok "down -v removed the project's containers, network and volume"
else
    not_ok "down -v removes the project's containers, network and volume" "left:$left"
fi

# 14. the engine, if this run started it: stopped, and its traces removed
engine_gone

echo "1..$n"
exit $failed
