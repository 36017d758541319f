# Serves this code location as a Dagster gRPC code server (port 4000).
# A Dagster webserver/daemon elsewhere loads it with a workspace entry such as:
#   load_from:
#     - grpc_server: {host: hybrid-quantum, port: 4000, location_name: hybrid_quantum}
# Or run the UI in this image directly:
#   docker run -p 3000:3000 IMAGE dagster dev -h 0.0.0.0 -p 3000 -w workspace.yaml
# deploy/docker-compose.yaml runs it with Postgres, the webserver and the daemon.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    DAGSTER_HOME=/opt/dagster/home \
    HYBRID_DATA_DIR=/opt/dagster/data

WORKDIR /opt/dagster/app
# The exact versions of requirements.lock first (a layer that changes only with the lock), then
# this project without resolving again: the image runs the stack `make test` last passed on.
COPY requirements.lock ./
RUN pip install --no-cache-dir -r requirements.lock
COPY pyproject.toml README.md ./
COPY hybrid_assets ./hybrid_assets
COPY hybrid_resources ./hybrid_resources
COPY workspace.yaml dagster.yaml ./
COPY deploy ./deploy
RUN pip install --no-cache-dir --no-deps . \
    && mkdir -p "$DAGSTER_HOME/storage" "$HYBRID_DATA_DIR" \
    && cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"

# Runs read files others drop into the zones: never as root. The user owns only what it writes
# (the instance home and the data root, also the owner a fresh named volume mounted there takes);
# the code stays root's, readable and not writable by the process that reads those files. A
# Kubernetes volume mounted at $HYBRID_DATA_DIR needs fsGroup 10001 (docs/deployment.md).
RUN groupadd --system --gid 10001 hybrid \
    && useradd --system --uid 10001 --gid hybrid --home-dir "$DAGSTER_HOME" --no-create-home \
       --shell /usr/sbin/nologin hybrid \
    && chown -R hybrid:hybrid "$DAGSTER_HOME" "$HYBRID_DATA_DIR" \
    && chmod 0750 "$DAGSTER_HOME" "$HYBRID_DATA_DIR"
USER 10001:10001

EXPOSE 4000
CMD ["dagster", "code-server", "start", "-h", "0.0.0.0", "-p", "4000", "-m", "hybrid_assets.definitions"]
