# leasehold: the TypeScript sources run as they are through tsx (a runtime dependency), so
# there is no build stage. Redis is not in this image: set REDIS_URL (see docker-compose.yml).
FROM node:20-bookworm-slim

ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=8080 \
    NPM_CONFIG_UPDATE_NOTIFIER=false \
    NPM_CONFIG_FUND=false \
    NPM_CONFIG_AUDIT=false

WORKDIR /app

# Dependencies first, so that this layer is cached while only the sources change. No
# scripts: `prepare` builds the client SDK (for those who import it), which needs the dev
# dependencies, and the server does not use it.
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts && npm cache clean --force

COPY tsconfig.json openapi.yaml ./
COPY src ./src

# The application files stay owned by root (read-only for the server); only the data
# folder, used when no REDIS_URL is given, belongs to the node user.
RUN mkdir -p /app/data && chown node:node /app/data
USER node

EXPOSE 8080

HEALTHCHECK --interval=10s --timeout=3s --start-period=20s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:' + (process.env.PORT || 8080) + '/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]

# node itself receives SIGTERM and shuts down gracefully (websockets closed, requests
# finished) within SHUTDOWN_GRACE_MS. The command is npm start's (package.json).
CMD ["node", "--max-semi-space-size=32", "--import", "tsx", "src/server.ts"]
