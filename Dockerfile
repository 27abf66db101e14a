# One image for the cluster, two commands (docker-compose.yml runs both):
#   gateway:  node dist/app/ao.mjs serve --no-node --host 0.0.0.0 --port 4000
#   node:     node dist/app/ao.mjs node
# The image is the `node` base image plus the compiled output: the bundled CLI (dist/app), the
# installed production packages it imports, the SQL migrations and the built inspector. No Docker
# engine runs where this repository is developed: scripts/image.test.ts assembles the final
# stage's files as its COPY lines say and runs these same commands against Postgres and NATS.

FROM node:20.20-bookworm-slim AS build
WORKDIR /app
RUN npm install -g pnpm@10.34.9
# Manifests first: the install layer is reused until a dependency changes.
COPY package.json pnpm-lock.yaml pnpm-workspace.yaml ./
COPY graphs/package.json graphs/
COPY runtime/package.json runtime/
COPY actors/package.json actors/
COPY gateway/package.json gateway/
COPY inspector/package.json inspector/
COPY bench/package.json bench/
RUN pnpm install --frozen-lockfile
COPY . .
RUN node scripts/build-image.mjs
# Only what the CLI imports at run time stays installed (the bundle's paths into
# node_modules/.pnpm do not change: same lockfile, same versions).
RUN pnpm install --frozen-lockfile --prod --config.confirmModulesPurge=false

FROM node:20.20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production AO_DATA_DIR=/tmp/ao
COPY --from=build /app/node_modules node_modules
COPY --from=build /app/dist/app dist/app
COPY --from=build /app/runtime/src/store/drizzle runtime/src/store/drizzle
COPY --from=build /app/inspector/build inspector/build
USER node
EXPOSE 4000
ENTRYPOINT ["node", "dist/app/ao.mjs"]
CMD ["serve", "--no-node", "--host", "0.0.0.0", "--port", "4000"]
