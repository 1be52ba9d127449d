# The bligate gateway: nginx with the development stack's own template
# (scripts/nginx/nginx.conf.in, rendered at start by docker/gateway-entrypoint), the bundled
# public contract at /openapi.yaml and Swagger UI at /docs from the pinned swagger-ui-dist,
# served locally under a strict Content-Security-Policy.
#
# Build from the repository root (the build context), as docker/compose.yaml does:
#   docker build -f docker/gateway.Dockerfile -t bligate/gateway .

# ---- contract: lint and bundle openapi/ with the pinned Redocly CLI (it needs Node.js 20);
# npm ci also brings the pinned swagger-ui-dist
FROM node:20-bookworm-slim AS contract
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3 python3-yaml \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY package.json package-lock.json redocly.yaml ./
RUN npm ci --no-audit --no-fund
COPY openapi/ openapi/
COPY shared/include/bligate/problems.def shared/include/bligate/
COPY scripts/ scripts/
RUN scripts/openapi-build

# ---- runtime: Debian's nginx, no Node.js, no build tools
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends nginx curl ca-certificates \
 && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/default \
 && useradd --system --uid 10001 --user-group --no-create-home --home-dir /nonexistent \
      --shell /usr/sbin/nologin bligate
COPY scripts/nginx/nginx.conf.in /usr/share/bligate/gateway/
COPY scripts/nginx/docs/ /usr/share/bligate/gateway/docs/
COPY --from=contract /src/openapi/build/openapi.yaml /usr/share/bligate/gateway/openapi/
COPY --from=contract /src/node_modules/swagger-ui-dist/swagger-ui-bundle.js /src/node_modules/swagger-ui-dist/swagger-ui.css /src/node_modules/swagger-ui-dist/favicon-32x32.png /src/node_modules/swagger-ui-dist/LICENSE /usr/share/bligate/gateway/swagger-ui/
COPY docker/gateway-entrypoint /usr/local/bin/
USER 10001:10001
ENV BLIGATE_GATEWAY_LISTEN=8080
EXPOSE 8080
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD curl -fsS -o /dev/null --max-time 3 "http://127.0.0.1:${BLIGATE_GATEWAY_LISTEN##*:}/readyz"
ENTRYPOINT ["gateway-entrypoint"]
