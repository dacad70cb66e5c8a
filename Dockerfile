# syntax=docker/dockerfile:1
# bookbridge: multi-stage build; the runtime image runs as an unprivileged user.
#   docker build -t bookbridge .
#   docker run -e DATABASE_URL=... -e REDIS_URL=... -p 8000:8000 bookbridge

FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the code changes), then the package itself.
COPY pyproject.toml README.md ./
RUN for p in app graphql_schema resolvers loaders migrations; do mkdir $p && touch $p/__init__.py; done \
    && pip install . && pip uninstall -y bookbridge && rm -rf app graphql_schema resolvers loaders migrations
COPY app ./app
COPY graphql_schema ./graphql_schema
COPY resolvers ./resolvers
COPY loaders ./loaders
COPY migrations ./migrations
RUN pip install --no-deps . && python -m compileall -q /opt/venv/lib

FROM python:3.11-slim AS runtime
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
