# syntax=docker/dockerfile:1
# One image for every lookstream service: the container's command chooses the service, e.g.
#   docker build -t lookstream .
#   docker run lookstream node services/segment/dist/src/main.js
# docker-compose.yml and deploy/kubernetes run it with the commands deploy/services.ts derives from each
# service's start script. The build stage runs `pnpm run deploy:tree`, the same script that builds the tree
# without Docker (test/deploy.test.ts checks that this file and the script agree).
ARG NODE_IMAGE=node:24.21.0-bookworm-slim

FROM ${NODE_IMAGE} AS build
ENV CI=true
RUN npm install --global --no-fund --no-audit --loglevel=error pnpm@10.34.8
WORKDIR /src
# The dependency store first, from the lockfile alone: this layer stays cached until the lockfile changes.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
COPY patches/ patches/
RUN pnpm fetch
COPY . .
RUN pnpm install --frozen-lockfile --offline
RUN pnpm run deploy:tree /app

FROM ${NODE_IMAGE}
ENV NODE_ENV=production PATH=/app/bin:$PATH
WORKDIR /app
COPY --from=build /app /app
# The image's `node` user, by number so that Kubernetes can check runAsNonRoot. The code stays root-owned.
USER 1000:1000
EXPOSE 8080 9100
CMD ["node", "--max-old-space-size=1024", "--max-semi-space-size=8", "services/ingress/dist/src/main.js"]
