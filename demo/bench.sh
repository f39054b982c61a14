#!/bin/sh
# visavis-bench: the demo's `bench` service (docker compose --profile bench
# run bench). Runs gwbench against the gateway at VISAVIS_HTTP_ADDR and
# VISAVIS_TCP_ADDR, passing on its arguments, when this image has gwbench;
# says so and exits 1 when it does not.
if command -v gwbench >/dev/null 2>&1; then
    exec gwbench "$@"
fi
cat >&2 <<MSG
bench: gwbench is not in this image: it was built from a tree without
clients/gwbench. Rebuild the images (docker compose build) and run this again.
MSG
exit 1
