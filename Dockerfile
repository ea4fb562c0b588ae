# fieldsync: a slim image that migrates its database, then serves.
# Build:  docker build -t fieldsync .
# Run:    docker run -e FIELDSYNC_SECRET_KEY=... \
#           -e FIELDSYNC_DATABASE_URL=postgresql+psycopg://user:pass@db/fieldsync \
#           -p 8000:8000 fieldsync
# Without FIELDSYNC_DATABASE_URL it keeps an SQLite file in the /data volume.

FROM python:3.11-slim AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
WORKDIR /src
RUN python -m venv /opt/fieldsync
# The same install as `make install`: pip, pinned by constraints.txt.
COPY pyproject.toml constraints.txt README.md ./
COPY api ./api
COPY sync ./sync
COPY schemas ./schemas
COPY migrations ./migrations
RUN /opt/fieldsync/bin/pip install --upgrade pip \
 && /opt/fieldsync/bin/pip install -c constraints.txt .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --create-home fieldsync
COPY --from=build /opt/fieldsync /opt/fieldsync
ENV PATH=/opt/fieldsync/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    FIELDSYNC_ENV=production \
    FIELDSYNC_DATABASE_URL=sqlite:////data/fieldsync.db
USER fieldsync
WORKDIR /data
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/healthz')"]
# Migrations first (safe to run from every replica: Alembic takes a lock on
# PostgreSQL), then the server; `exec` so the server gets the stop signal.
CMD ["sh", "-c", "fieldsync db upgrade && exec fieldsync serve --host 0.0.0.0 --port 8000 --workers ${FIELDSYNC_WORKERS:-2}"]
