# syntax=docker/dockerfile:1
# The service's image: the locked dependencies (uv.lock) in /app/.venv, the project in /app.
# Migrations are not run here: Railway's pre-deploy command does it once per deploy
# (railway.json); elsewhere run `pricing-service migrate` as a one-off before starting (README).

# Build stage: uv installs the locked set, then the project itself (editable at /app, so the
# catalog, migrations and var/ are found beside the package, as in a checkout).
FROM python:3.11.14-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 \
    UV_NO_CACHE=1 UV_COMPILE_BYTECODE=1 UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never UV_PROJECT_ENVIRONMENT=/app/.venv
RUN pip install 'uv==0.13.9'
WORKDIR /app
# Dependencies first: this layer is reused until pyproject.toml or uv.lock change.
COPY pyproject.toml uv.lock ./
RUN uv sync --frozen --no-install-project
COPY README.md ./
COPY pricing_service ./pricing_service
RUN uv sync --frozen

# Runtime stage: no uv, no compilers, a non-root user, the server on $PORT.
FROM python:3.11.14-slim-bookworm
ENV PATH=/app/.venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8080
RUN useradd --system --uid 10001 --home-dir /app pricing
WORKDIR /app
COPY --from=build /app /app
COPY alembic.ini ./
COPY migrations ./migrations
COPY catalog ./catalog
# The default SQLite file (development only) lives in /app/var: owned by the service's user, so a
# named volume mounted there starts out writable (see README, Deployment).
RUN mkdir -p /app/var && chown pricing /app/var
USER pricing
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8080\")}/health', timeout=2)"
# Railway sets PORT; WEB_CONCURRENCY sets the worker count.
CMD ["sh", "-c", "exec pricing-service serve --workers ${WEB_CONCURRENCY:-2}"]
