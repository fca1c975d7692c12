"""create_app(settings): the lifespan owns the engine, the Redis client and the scheduler."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from litestar import Litestar
from litestar.config.cors import CORSConfig
from litestar.di import Provide
from litestar.openapi.config import OpenAPIConfig
from redis.asyncio import Redis

from pricing_service import __version__
from pricing_service.api.health import HealthController
from pricing_service.config import Settings, load_settings
from pricing_service.logs import configure_logging, event
from pricing_service.repository import Repository, create_db_engine
from pricing_service.service import PricingService

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

log = logging.getLogger("pricing_service.app")

# Redis sits on the read path: a dead Redis must cost milliseconds, not the library's seconds.
REDIS_SOCKET_TIMEOUT = 0.25


def create_redis(url: str) -> Redis:
    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        retry_on_timeout=False,
        health_check_interval=30,
    )


def create_app(settings: Settings) -> Litestar:
    """Build the app; nothing connects until the lifespan starts."""

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        engine = create_db_engine(settings.database_url)
        redis = create_redis(settings.redis_url) if settings.redis_url else None
        service = PricingService(Repository(engine))
        app.state.pricing = service
        event(log, "app.started", database=engine.dialect.name, redis=redis is not None)
        try:
            yield
        finally:
            if redis is not None:
                await redis.aclose()
            engine.dispose()
            event(log, "app.stopped")

    def provide_pricing() -> PricingService:
        return app.state.pricing  # type: ignore[no-any-return]

    cors = (
        CORSConfig(allow_origins=settings.pricing_cors_origins, allow_methods=["GET"])
        if settings.pricing_cors_origins
        else None
    )
    app = Litestar(
        route_handlers=[HealthController],
        lifespan=[lifespan],
        dependencies={"pricing": Provide(provide_pricing, sync_to_thread=False)},
        # Handlers import service types for type checking only; Litestar resolves them here.
        signature_namespace={"PricingService": PricingService},
        cors_config=cors,
        openapi_config=OpenAPIConfig(
            title="Cognitia pricing and curation", version=__version__, path="/schema"
        ),
        logging_config=None,
    )
    return app


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers: each worker reads the same environment."""
    settings = load_settings()
    configure_logging(settings.pricing_log_level)
    return create_app(settings)
