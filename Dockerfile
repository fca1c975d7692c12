# syntax=docker/dockerfile:1
# Build stage: a virtualenv with the service and its runtime dependencies.
FROM python:3.11-slim AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
RUN python -m venv /venv
COPY pyproject.toml README.md ./
COPY pricing_service ./pricing_service
RUN /venv/bin/pip install .

# Runtime stage: no compilers, a non-root user, migrations then the server on $PORT.
FROM python:3.11-slim
ENV PATH=/venv/bin:$PATH PYTHONUNBUFFERED=1 HOST=0.0.0.0 PORT=8080 \
    PRICING_CATALOG_DIR=/app/catalog DATABASE_URL=sqlite:////app/var/pricing.db
RUN useradd --system --uid 10001 --home-dir /app pricing
WORKDIR /app
COPY --from=build /venv /venv
COPY migrations ./migrations
COPY catalog ./catalog
RUN mkdir -p /app/var && chown pricing /app/var
USER pricing
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"PORT\", \"8080\")}/health', timeout=2)"
# Railway sets PORT; WEB_CONCURRENCY sets the worker count.
CMD ["sh", "-c", "pricing-service migrate && exec pricing-service serve --workers ${WEB_CONCURRENCY:-2}"]
