# The Luna hub: a multi-stage build of the same release binary CI builds
# (`cargo build --release --locked -p luna-server`), run as a non-root user with its data on a
# volume. Build: `docker build -t luna-hub .`  Run: `docker run -p 8003:8003 -v luna-data:/data luna-hub`
# (no container engine on the CI machine: scripts/check_deploy.py checks this file statically).

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked -p luna-server

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin luna \
    && mkdir -p /data \
    && chown luna:luna /data
COPY --from=build /src/target/release/luna /usr/local/bin/luna
USER luna
WORKDIR /data
VOLUME ["/data"]
ENV LUNA_BIND=0.0.0.0:8003 \
    LUNA_DATABASE_URL=sqlite:///data/luna.db \
    LUNA_LOG_FORMAT=json
EXPOSE 8003
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD curl -fsS http://127.0.0.1:8003/health || exit 1
ENTRYPOINT ["/usr/local/bin/luna"]
CMD ["serve"]
