# The long-running server (EC2, ECS, any container host).
#   docker build -t mlops-service .
#   docker run -p 5001:5001 -v mlops-data:/data mlops-service                       # embedded database in /data
#   docker run -p 5001:5001 -e DATABASE_URL='postgresql://…' mlops-service           # PostgreSQL / Neon
FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
# patch-package applies patches/ in postinstall (a postgres.js crash fix)
COPY patches ./patches
RUN npm ci --no-audit --no-fund
COPY . .
RUN npm run package -- --quiet

FROM node:22-bookworm-slim
ENV NODE_ENV=production PORT=5001 HOST=0.0.0.0 DATA_DIR=/data
WORKDIR /app
COPY --from=build /src/dist/server/ ./
RUN mkdir -p /data && chown node:node /data
USER node
VOLUME /data
EXPOSE 5001
# No curl in the slim image: Node's own fetch checks liveness.
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s \
  CMD ["node", "-e", "fetch('http://127.0.0.1:'+(process.env.PORT||5001)+'/health').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"]
# SIGTERM (docker stop) drains in-flight requests and closes the database.
CMD ["node", "--enable-source-maps", "server.mjs"]
