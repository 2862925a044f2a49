# One image for every Beacon process: `docker run beacon:0.1.0 <service>` (ingest,
# validator, correlator, notifier, console) or `... topics create`.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    BEACON_BIND_HOST=0.0.0.0 \
    BEACON_DATA_DIR=/var/lib/beacon/data \
    BEACON_OUTBOX_DIR=/var/lib/beacon/outbox

WORKDIR /app

RUN groupadd --system --gid 10001 beacon \
 && useradd --system --uid 10001 --gid beacon --home-dir /app --no-create-home --shell /usr/sbin/nologin beacon \
 && mkdir -p /var/lib/beacon/data /var/lib/beacon/outbox \
 && chown -R beacon:beacon /var/lib/beacon

# Dependencies first, so code changes reuse this layer. requirements.lock pins every
# transitive version; as constraints it installs just the runtime dependencies at those pins.
COPY pyproject.toml requirements.lock README.md ./
RUN mkdir -p services/beacon && touch services/beacon/__init__.py \
 && pip install -c requirements.lock -e . \
 && rm -rf services

# Editable install: the code stays under /app/services, so the policy file and schemas
# are found at /app/deploy/policies and /app/schemas (Settings' project-root defaults).
COPY services/ services/
COPY schemas/ schemas/
COPY deploy/policies/ deploy/policies/
# No on-call file: the notifier reads its council's from a mount (Kubernetes: the ConfigMap
# beacon-oncall at /etc/beacon/oncall; compose: ./deploy/oncall), never the example's people.

USER 10001:10001
VOLUME ["/var/lib/beacon"]
ENTRYPOINT ["python", "-m", "beacon"]
CMD ["--help"]
