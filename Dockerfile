# syntax=docker/dockerfile:1
#
# One image holds every helpdesk binary; the command picks the role:
#   helpdesk serve [--demo]   the whole platform in one process (default)
#   helpdesk-identity         identity gRPC service (tenants, API keys)
#   helpdesk-ticketing        ticketing gRPC service
#   helpdesk-routing          routing gRPC service (queues, assignment, SLAs)
#   helpdesk-knowledge        knowledge gRPC service (articles, search, suggestions, help center)
#   helpdesk-feedback         feedback gRPC service (surveys, follow-ups, insights reports)
#   helpdesk-email            email gRPC service (mailboxes, inbound mail) with its SMTP listener
#   helpdesk-gateway          REST gateway
#   helpdesk-web              agent workspace (/app)
#   helpdesk admin ...        admin commands against the configured database
#
#   docker build -t helpdesk .

ARG RUST_VERSION=1.95
ARG DEBIAN_SUITE=bookworm

# --- skeleton: manifests plus a stub for every target root -----------------------------------------
# The dependency layer below is built from this alone, so it is reused until a manifest, the
# lockfile or the set of targets changes; editing or adding modules does not invalidate it. (What
# cargo-chef does, without the extra tool.)
FROM rust:${RUST_VERSION}-slim-${DEBIAN_SUITE} AS skeleton
WORKDIR /src
COPY . .
RUN find . -type f ! -name Cargo.toml ! -name Cargo.lock ! -path './.cargo/*' ! -name 'rust-toolchain*' \
        ! -name lib.rs ! -name main.rs ! -name build.rs \
        ! -path '*/src/bin/*.rs' ! -path '*/benches/*.rs' ! -path '*/examples/*.rs' -delete \
 && find . -type f -name '*.rs' \
        -exec sh -c 'for f; do printf "#![allow(dead_code)]\nfn main() { }\n" > "$f"; done' sh {} + \
 && find . -mindepth 1 -type d -empty -delete

# --- builder ----------------------------------------------------------------------------------------
# Protos compile with protox (pure Rust), so no protoc; the slim image's gcc covers bundled SQLite
# and ring.
FROM rust:${RUST_VERSION}-slim-${DEBIAN_SUITE} AS builder
WORKDIR /src
ARG CARGO_PACKAGES="--package helpdesk-cli --package helpdesk-identity --package helpdesk-ticketing --package helpdesk-routing --package helpdesk-knowledge --package helpdesk-feedback --package helpdesk-email --package helpdesk-gateway --package helpdesk-web"

COPY --from=skeleton /src/ ./
RUN --mount=type=cache,id=helpdesk-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=helpdesk-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    cargo build --release --locked ${CARGO_PACKAGES}

COPY . .
# COPY keeps each file's own mtime, which can be older than the stub build; touching the sources
# makes cargo rebuild the workspace crates instead of shipping the stubs.
RUN --mount=type=cache,id=helpdesk-cargo-registry,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,id=helpdesk-cargo-git,target=/usr/local/cargo/git,sharing=locked \
    find . -path ./target -prune -o -type f -exec touch {} + \
 && cargo build --release --locked ${CARGO_PACKAGES} \
 && mkdir -p /out \
 && cp target/release/helpdesk \
       target/release/helpdesk-identity \
       target/release/helpdesk-ticketing \
       target/release/helpdesk-routing \
       target/release/helpdesk-knowledge \
       target/release/helpdesk-feedback \
       target/release/helpdesk-email \
       target/release/helpdesk-gateway \
       target/release/helpdesk-web \
       /out/

# --- runtime ----------------------------------------------------------------------------------------
# debian-slim rather than distroless: the Kubernetes preStop hook runs `sleep` and the compose
# healthchecks use bash; both need a minimal userland.
FROM debian:${DEBIAN_SUITE}-slim AS runtime
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 helpdesk \
 && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/helpdesk --no-create-home \
        --shell /usr/sbin/nologin helpdesk \
 && install -d -o 10001 -g 10001 -m 0750 /var/lib/helpdesk

COPY --from=builder /out/ /usr/local/bin/

# Containers listen on every interface (SMTP too: helpdesk-email and `serve`); SQLite files
# (all-in-one without a database URL) and the mailbox-credentials key file (when
# HELPDESK_EMAIL__SECRETS_KEY is unset) go to /var/lib/helpdesk, which a volume should back.
ENV HELPDESK_GRPC_ADDR=0.0.0.0:50051 \
    HELPDESK_HTTP_ADDR=0.0.0.0:8080 \
    HELPDESK_EMAIL__SMTP_ADDR=0.0.0.0:2525 \
    HELPDESK_DATA_DIR=/var/lib/helpdesk

LABEL org.opencontainers.image.title="helpdesk" \
      org.opencontainers.image.description="Open-source customer-service platform" \
      org.opencontainers.image.licenses="Apache-2.0"

USER 10001:10001
WORKDIR /var/lib/helpdesk
EXPOSE 8080 50051 2525
# The binaries handle SIGTERM themselves: health goes NOT_SERVING and in-flight requests drain.
STOPSIGNAL SIGTERM
CMD ["helpdesk", "serve"]
