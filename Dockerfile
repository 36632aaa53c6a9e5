# leasehold, in two stages: the first compiles the TypeScript to dist/ (npm run build, with
# the dev dependencies); the second runs the compiled JavaScript with the runtime
# dependencies only (no TypeScript, no tsx). Redis is not in this image: set REDIS_URL (see
# docker-compose.yml). Node 22 (LTS): Node 20 reached its end of life in April 2026; .ci/run
# tests on both (package.json engines).

# --- build ----------------------------------------------------------------------------------
FROM node:22-bookworm-slim AS build

ENV NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

# All the dependencies (typescript is a dev one), cached while only the sources change. No
# scripts: `prepare` would build before the sources are here.
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts

COPY tsconfig.json tsconfig.build.json ./
COPY scripts ./scripts
COPY src ./src
COPY ui ./ui
RUN npm run build

# --- runtime --------------------------------------------------------------------------------
FROM node:22-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

# The runtime dependencies only, cached while only the sources change. No scripts: `prepare`
# builds, which needs the dev dependencies; dist/ comes from the build stage instead.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

# What the server reads at runtime besides its modules: package.json (the CLI's version),
# openapi.yaml (GET /openapi.yaml) and the Lua scripts (copied into dist/ by the build).
COPY openapi.yaml ./
COPY bin ./bin
COPY --from=build /app/dist ./dist
# The CLI on the PATH: `docker run … leasehold leaders show <cluster> --url …`, or
# `docker compose exec leasehold leasehold …` (it talks to http://127.0.0.1:8080 by default).
RUN ln -s /app/bin/leasehold.js /usr/local/bin/leasehold

# The application files stay owned by root (read-only for the server); only the data
# folder, used when no REDIS_URL is given, belongs to the node user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself (PID 1) receives SIGTERM and shuts down gracefully (websockets closed, requests
# finished) within SHUTDOWN_GRACE_MS. The command is npm start's (package.json), less its
# prestart, which builds in a checkout and has nothing to do here.
CMD ["node", "--max-semi-space-size=32", "dist/server.js"]
