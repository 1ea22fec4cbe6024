# syntax=docker/dockerfile:1
# giftrank container image: the `giftrank` binary and the default model repository
# (models/) on a distroless runtime, running as a non-root user. Build from the repo root:
#   docker build -t giftrank:<version> .
# Ports: 8080 public HTTP (/rank, /healthz, /readyz, /metrics, /v1/models), 9090 gRPC.
# The admin listener (8081) binds 127.0.0.1 and is deliberately not exposed.
# Not built on the development machines (no Docker engine there); CI lints it with hadolint.

# --- build: pinned official Rust image; Debian 12 like the runtime (same glibc) ---
FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry,sharing=locked \
    --mount=type=cache,target=/src/target,sharing=locked \
    cargo build --release --locked --bin giftrank \
    && install -D -m 0755 target/release/giftrank /out/giftrank

# --- runtime: glibc + libgcc, no shell, no package manager; user nonroot (65532) ---
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="giftrank" \
      org.opencontainers.image.description="Online recall-rerank ranking service for live-stream gift allocation" \
      org.opencontainers.image.licenses="MIT"
COPY --from=build /out/giftrank /usr/local/bin/giftrank
# The default model repository, used when no volume is mounted over it.
COPY models/ /srv/giftrank/models/
WORKDIR /srv/giftrank
USER 65532:65532
EXPOSE 8080 9090
ENTRYPOINT ["/usr/local/bin/giftrank"]
# Kubernetes replaces this with `serve --config ...` (deploy/k8s/deployment.yaml).
# The repository is a flag, not an ENV: GIFTRANK_* variables would override the config file.
CMD ["serve", "--model-repo", "/srv/giftrank/models/gift"]
