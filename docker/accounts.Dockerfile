# bligate-accounts: the accounts service (units, accounts, certificates, sessions and tokens,
# permission applications, grants, API clients). `migrate`, `add-client` and `bootstrap-admin`
# are its one-off commands: `docker run ... IMAGE migrate`.
#
# Build from the repository root (the build context), as docker/compose.yaml does:
#   docker build -f docker/accounts.Dockerfile -t bligate/accounts .
# Configuration: BLIGATE_* environment variables and mounted secret files (docker/README.md).

# ---- build: the same stage, byte for byte, in every service's Dockerfile, so Docker builds it
# once and every image takes its binary from it (scripts/dockerfile-check checks that too).
FROM debian:bookworm AS build
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config ca-certificates \
      libmicrohttpd-dev libgnutls28-dev libjansson-dev libpq-dev libjwt-dev libssl-dev libcurl4-openssl-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake/ cmake/
COPY shared/ shared/
COPY services/ services/
COPY cli/ cli/
COPY bench/ bench/
COPY tests/ tests/
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DBLIGATE_SANITIZE=OFF -DBLIGATE_WERROR=ON
RUN cmake --build build -j"$(nproc)" \
      --target bligate-accounts bligate-workflow bligate-bliproxy bligate-audit bligate-bli-sandbox bligate

# ---- runtime: Debian slim with the shared libraries the binary links and nothing to build with
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
      libmicrohttpd12 libgnutls30 libjansson4 libpq5 libssl3 libcurl4 ca-certificates curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin bligate
COPY --from=build /src/build/bin/bligate-accounts /usr/local/bin/
COPY docker/bligate-entrypoint docker/bligate-healthcheck /usr/local/bin/
USER 10001:10001
ENV BLIGATE_LISTEN_ADDR=0.0.0.0 BLIGATE_LISTEN_PORT=8081
EXPOSE 8081
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 CMD ["bligate-healthcheck"]
ENTRYPOINT ["bligate-entrypoint", "bligate-accounts"]
