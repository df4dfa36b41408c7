# syntax=docker/dockerfile:1.7
# One image for every bil-message component; the first argument picks which
# (deploy/docker/entrypoint.sh):
#   docker build -t bil-message:0.1.0 .
#   docker run --rm bil-message:0.1.0 help
#   docker run ... bil-message:0.1.0 identity | chat | delivery | digest | digest-worker | gateway | migrate
# docs/deploy.md has the rest (the Helm chart, deploy/compose.yaml).

ARG NODE_IMAGE=node:20-bookworm-slim

# Only the package manifests, so that the dependency layer below is rebuilt
# when a package.json or the lock file changes, not on every source change.
FROM ${NODE_IMAGE} AS manifests
WORKDIR /src
COPY . .
RUN mkdir /manifests \
 && find . -name node_modules -prune -o -type f \( -name package.json -o -name package-lock.json -o -name .npmrc \) -print \
    | xargs -I{} cp --parents {} /manifests/

# Install from the lock file and build the services (Turborepo: generate, then build).
FROM ${NODE_IMAGE} AS build
# The npm of package.json's "packageManager": like on the development
# machines, no dependency's install script runs (package.json "allowScripts"
# denies them; --ignore-scripts makes sure of it with any npm).
ARG NPM_VERSION=11.19.1
ENV TURBO_TELEMETRY_DISABLED=1 \
    DO_NOT_TRACK=1 \
    npm_config_update_notifier=false \
    npm_config_fund=false \
    npm_config_audit=false
WORKDIR /app
RUN npm install --global "npm@${NPM_VERSION}"
COPY --from=manifests /manifests/ ./
RUN npm ci --ignore-scripts
COPY . .
RUN npx turbo run build --output-logs=errors-only \
      --filter=@bil/identity --filter=@bil/chat --filter=@bil/delivery --filter=@bil/digest --filter=@bil/gateway \
      --filter=@bil/web
# The web client's static build (the gateway serves it at /) is set aside
# while the workspaces are trimmed, and put back where the gateway looks.
RUN mv apps/web/dist /web-dist
# Keep the services, the workspace packages they run on and their production
# dependencies; drop tests, tools, clients, sources and build files.
RUN node deploy/docker/runtime-workspaces.mjs \
 && npm prune --omit=dev --ignore-scripts \
 && rm -rf docs scripts deploy .turbo eslint.config.js vitest.base.ts \
      proto/src proto/gen proto/scripts \
      packages/*/src packages/*/test packages/*/bench packages/*/scripts \
      services/*/src services/*/test services/*/bench \
 && find . -name node_modules -prune -o \( -name '.turbo' -o -name '*.tsbuildinfo' -o -name 'tsconfig*.json' -o -name 'vitest.config.ts' \) -print \
    | xargs rm -rf
RUN mkdir -p apps/web && mv /web-dist apps/web/dist

FROM ${NODE_IMAGE} AS runtime
ENV NODE_ENV=production
WORKDIR /app
# Owned by root and read-only to the service user; the chart also mounts the
# root filesystem read-only.
COPY --from=build /app /app
COPY --chmod=0755 deploy/docker/entrypoint.sh /usr/local/bin/bil-entrypoint
# The base image's `node` user (uid/gid 1000), numeric so that Kubernetes'
# runAsNonRoot can check it.
USER 1000:1000
# gateway 8080, delivery 8090, gRPC identity 50051 / chat 50052 / digest 50054,
# metrics (/metrics, /healthz, /readyz) gateway 9100, identity 9101, chat 9102,
# delivery 9103, digest 9104, digest worker 9105.
EXPOSE 8080 8090 50051 50052 50054 9100 9101 9102 9103 9104 9105
ENTRYPOINT ["/usr/local/bin/bil-entrypoint"]
CMD ["help"]
