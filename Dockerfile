# The one `oms` image every Deployment runs (`oms serve <service>`).
# Build: docker build -t ghcr.io/example/oms:0.1.0 .

FROM rust:1-bookworm AS build
WORKDIR /src
# Dependencies first, so code changes do not rebuild them.
COPY Cargo.toml Cargo.lock ./
COPY proto proto
COPY platform platform
COPY gateway gateway
COPY order-svc order-svc
COPY inventory-svc inventory-svc
COPY fulfillment-svc fulfillment-svc
COPY tracking-svc tracking-svc
COPY src src
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin oms && cp target/release/oms /oms

# Small runtime: glibc, CA certificates, a non-root user; no shell tools are needed.
FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /oms /usr/local/bin/oms
USER 10001:10001
EXPOSE 50051 50052 50053 50054 50055 9464
ENTRYPOINT ["/usr/local/bin/oms"]
CMD ["serve", "--help"]
