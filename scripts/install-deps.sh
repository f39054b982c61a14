#!/bin/sh
# Installs the Debian packages the build and the tests need, if any is
# missing. Extra package names on the command line are checked too.
# Needs root or sudo only when something is missing.
set -eu

# postgresql: the server the tests start for the PostgreSQL backend.
pkgs="meson ninja-build pkg-config gcc libc6-dev libmicrohttpd-dev libjansson-dev libsqlite3-dev libpq-dev postgresql python3 git $*"

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
