# Builds both services; `--target order-service` or `--target payment-service`
# picks the image. docker-compose.yml does this for you.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p order-service -p payment-service \
    && mkdir -p /out \
    && cp target/release/order-service target/release/payment-service /out/

# The runtime: Debian slim with curl for the healthcheck, running as an
# unprivileged user.
FROM debian:bookworm-slim AS runtime
RUN apt-get update \
    && apt-get install -y --no-install-recommends curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home service
USER 10001
ENV LISTEN_ADDR=0.0.0.0

FROM runtime AS order-service
COPY --from=build /out/order-service /usr/local/bin/order-service
ENV PORT=8080
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["curl", "-fsS", "http://127.0.0.1:8080/readyz"]
ENTRYPOINT ["/usr/local/bin/order-service"]

FROM runtime AS payment-service
COPY --from=build /out/payment-service /usr/local/bin/payment-service
ENV PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=3s --start-period=20s CMD ["curl", "-fsS", "http://127.0.0.1:8081/readyz"]
ENTRYPOINT ["/usr/local/bin/payment-service"]
