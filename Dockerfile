# Builds both services and the development token issuer; `--target
# order-service`, `--target payment-service` or `--target token-issuer` picks
# the image. docker-compose.yml does this for you.

FROM rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked -p order-service -p payment-service -p local-issuer \
    && mkdir -p /out \
    && cp target/release/order-service target/release/payment-service \
        target/release/token-issuer /out/

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

# A token issuer for development and demonstration only (see the README):
# whoever can run `token-issuer token` in it gets any token. Its key is kept
# in /data.
FROM runtime AS token-issuer
COPY --from=build /out/token-issuer /usr/local/bin/token-issuer
USER 0
RUN mkdir /data && chown 10001 /data
USER 10001
EXPOSE 8079
HEALTHCHECK --interval=10s --timeout=3s --start-period=5s CMD ["curl", "-fsS", "http://127.0.0.1:8079/.well-known/openid-configuration"]
ENTRYPOINT ["/usr/local/bin/token-issuer"]
CMD ["serve"]
