# visavis in a container: the gateway, and an image for the demo's clients.
#
#   docker build -t visavis .                  the gateway (the last stage)
#   docker compose up                          the whole demo (docker-compose.yml)
#
# Stages:
#   build    compiles the binaries with meson (build tools only here)
#   runtime  the runtime libraries, curl, a non-root user and the binaries
#   demo     runtime + the demo's client scripts (poster, poller);
#            no volume and no healthcheck, so client containers carry neither
#   gateway  runtime + the gateway's settings, volume, ports and healthcheck
#
# Nothing BuildKit-only, so the classic builder (DOCKER_BUILDKIT=0, what
# tests/compose uses) builds it as BuildKit does; and nothing is fetched but
# Debian packages, from the base image's own apt sources.

FROM debian:bookworm-slim AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        meson ninja-build pkg-config gcc libc6-dev \
        libmicrohttpd-dev libjansson-dev libsqlite3-dev libwslay-dev nettle-dev libpq-dev python3 \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# Only the three programs: the tests are configured (meson reads their lists)
# but not built, so their dependencies are not needed. They are installed as
# `make install` does, with meson install (the "runtime" tag), into /out.
RUN meson setup build --buildtype=release \
 && ninja -C build gateway/visavis-gateway clients/gwsh/gwsh clients/gwbench/gwbench \
 && meson install -C build --tags runtime --no-rebuild --destdir /out \
 && strip /out/usr/local/bin/*

FROM debian:bookworm-slim AS runtime
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        libmicrohttpd12 libjansson4 libsqlite3-0 libwslay1 libnettle8 libpq5 curl \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 visavis \
 && useradd --system --uid 10001 --gid visavis --home-dir /data --no-create-home \
        --shell /usr/sbin/nologin visavis \
 && install -d -o visavis -g visavis -m 0750 /data
COPY --from=build /out/ /
COPY LICENSE /usr/share/doc/visavis/LICENSE

FROM runtime AS demo
COPY demo/poster.sh /usr/local/bin/visavis-poster
COPY demo/poller.sh /usr/local/bin/visavis-poller
USER visavis
WORKDIR /data
# The clients find the gateway through these (gwsh reads VISAVIS_TCP_ADDR,
# gwbench both).
ENV VISAVIS_HTTP_ADDR=gateway:8080 VISAVIS_TCP_ADDR=gateway:12345
CMD ["gwsh", "--help"]

FROM runtime AS gateway
USER visavis
WORKDIR /data
ENV VISAVIS_HTTP_ADDR=0.0.0.0:8080 VISAVIS_TCP_ADDR=0.0.0.0:12345 VISAVIS_UDP_ADDR=0.0.0.0:12345 \
    VISAVIS_DB=/data/visavis.db
VOLUME /data
EXPOSE 8080 12345 12345/udp
# The port is taken from VISAVIS_HTTP_ADDR, so moving the listener keeps the
# check right.
HEALTHCHECK --interval=3s --timeout=2s --start-period=20s --retries=3 \
    CMD curl -fsS -o /dev/null --max-time 2 "http://127.0.0.1:${VISAVIS_HTTP_ADDR##*:}/healthz" || exit 1
# The gateway is PID 1 and handles SIGTERM itself (signalfd): sessions get
# their "bye", commits finish, the database is checkpointed, exit 0.
ENTRYPOINT ["visavis-gateway"]
