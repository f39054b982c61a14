#!/bin/sh
# Installs the Debian packages the build needs, if any is missing; with
# --test first, also what only the tests need (`make test`). Extra package
# names on the command line are checked too. Needs root or sudo only when
# something is missing.
set -eu

extra=""
if [ "${1:-}" = "--test" ]; then
    shift
    # The browser test (tests/browser): chromium, and Node.js for its driver:
    # Debian's, unless a node and an npm are there already (from another
    # source, whose packages Debian's would replace).
    extra="chromium"
    command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || extra="$extra nodejs npm"
    # The PostgreSQL backend's tests start a server of their own.
    extra="$extra postgresql"
fi
pkgs="meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libwslay-dev nettle-dev libpq-dev python3 git curl $extra $*"

missing=""
for p in $pkgs; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
    sudo=""
elif command -v sudo >/dev/null 2>&1; then
    sudo="sudo"
else
    echo "missing packages:$missing (run as root or install sudo)" >&2
    exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
