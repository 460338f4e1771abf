# syntax=docker/dockerfile:1
# Build: docker build -t rollgate .
# Run:   docker run -p 8080:8080 -p 9090:9090 -v $PWD/config:/etc/rollgate rollgate
FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json tsconfig.json ./
COPY src ./src
COPY test ./test
COPY bench ./bench
RUN npm ci --no-audit --no-fund && npm prune --omit=dev

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=build /app/package.json ./
COPY --from=build /app/node_modules ./node_modules
COPY --from=build /app/dist/src ./dist/src
COPY config/rollgate.yaml /etc/rollgate/rollgate.yaml
USER node
EXPOSE 8080 9090
STOPSIGNAL SIGTERM
# `rollgate serve` sets V8 for a sidecar itself (listen.memory: lean, the default); set
# `listen.memory: fast` in the config for V8's own settings (README: "Memory").
ENTRYPOINT ["node", "dist/src/cli/main.js"]
CMD ["serve", "--config", "/etc/rollgate/rollgate.yaml"]
