# Build: a release binary with bundled SQLite and libpq. `.dockerignore` keeps target/, data/, local
# configuration, keys and .git out of the context.
FROM rust:1-bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends pkg-config libssl-dev && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
RUN cargo build --release --locked && strip target/release/tanhui

# Run: a small image, an unprivileged user, the service on 8080.
FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libssl3 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --home /var/lib/tanhui --create-home tanhui
COPY --from=build /src/target/release/tanhui /usr/local/bin/tanhui
USER tanhui
WORKDIR /var/lib/tanhui
ENV TANHUI__SERVER__HOST=0.0.0.0 \
    TANHUI__SERVER__PORT=8080 \
    TANHUI__DATABASE__URL=sqlite:///var/lib/tanhui/data/tanhui.db \
    TANHUI__LOG__FORMAT=json
EXPOSE 8080
# The image has no curl: the binary asks its own /readyz (database and Redis answer) and exits 0 on 200.
HEALTHCHECK --interval=15s --timeout=6s --start-period=30s --retries=3 \
  CMD ["/usr/local/bin/tanhui", "healthcheck"]
ENTRYPOINT ["/usr/local/bin/tanhui"]
CMD ["serve"]
