# One image for every part: `fax start producer|worker|webhook|simulator`.
FROM node:20-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund
COPY shared ./shared
COPY producer ./producer
COPY worker ./worker
COPY webhook ./webhook
COPY simulator ./simulator
COPY cli ./cli
COPY index.ts ./
USER node
ENTRYPOINT ["node", "cli/fax.mjs"]
CMD ["start", "all"]
