"""create_app(settings): the lifespan owns the engine, the Redis client and the scheduler."""

from __future__ import annotations

import json
import logging
import traceback
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
from litestar import Litestar, Request, Response
from litestar.openapi.config import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from sqlalchemy.exc import SQLAlchemyError

from pricing_service import __version__
from pricing_service.access import Access, RateLimiter, TrustedProxies, parse_networks
from pricing_service.access_log import AccessLog, AccessLogMode
from pricing_service.api.admin import PAGE_ROUTES, AdminController
from pricing_service.api.document import DecimalAsNumber
from pricing_service.api.fast import SelectorHotPath
from pricing_service.api.feed_estimate import FeedEstimateController
from pricing_service.api.guard import InputGuard
from pricing_service.api.head import HeadAsGet
from pricing_service.api.health import HealthController
from pricing_service.api.middleware import PublicCors, RequestObserver
from pricing_service.api.operations import OperationsController
from pricing_service.api.pricing import PricingController
from pricing_service.api.refresh_route import RefreshController
from pricing_service.api.requests import PricingRequest, client_went_away, request_id_of
from pricing_service.api.state import KEY as SERVED
from pricing_service.api.state import PROVIDERS, Served
from pricing_service.cache import SnapshotCache
from pricing_service.catalog import load_catalog
from pricing_service.config import Settings, load_settings
from pricing_service.console.render import STATIC as CONSOLE_STATIC
from pricing_service.console.session import ConsoleAuth
from pricing_service.db import create_db_engine, storage_error
from pricing_service.domain import SnapshotSource
from pricing_service.errors import (
    AccessNotConfigured,
    InvalidRequest,
    NoDataYet,
    NotAuthorized,
    NotFound,
    NothingToAccept,
    PricingError,
    RateLimited,
    RefreshInProgress,
    StorageUnavailable,
)
from pricing_service.listings.pricepertoken import PricePerTokenSource
from pricing_service.lock import DatabaseRefreshLock, RedisRefreshLock
from pricing_service.logs import configure_logging, event, write_directly
from pricing_service.metrics import Metrics, multiprocess_dir
from pricing_service.rate_store import RateStore
from pricing_service.rates import RateKeeper, fixed_rate
from pricing_service.refresh import Refresher
from pricing_service.refresh_process import ChildRefresher
from pricing_service.repository import Repository
from pricing_service.service import PricingService
from pricing_service.tracker import tune_heap
from pricing_service.webhooks.delivery import Deliverer
from pricing_service.webhooks.events import EventContext, curated_categories

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from litestar.types import ASGIApp
    from redis.asyncio import Redis

    from pricing_service.domain import Catalog
    from pricing_service.listings import ListingSource
    from pricing_service.upstream import PricePerTokenClient

log = logging.getLogger("pricing_service.app")

# Redis sits on the read path: a dead Redis must cost milliseconds, not the library's seconds.
REDIS_SOCKET_TIMEOUT = 0.25
# POST /refresh and the debug sample allow PRICING_RATE_LIMIT_PER_MINUTE calls per client
# in this window (each endpoint counted apart).
RATE_WINDOW_SECONDS = 60
# The only routes a browser page from PRICING_CORS_ORIGINS may read.
CORS_PATHS = (
    "/api/v1/pricing/models",
    "/api/v1/pricing/changes",
    "/api/v1/pricing/prices",
    "/api/v1/pricing/local",
    "/api/v1/pricing/estimate",
)


def create_redis(url: str) -> Redis:
    # Imported only when REDIS_URL is set: redis is 5.4 MB of a serving worker's RSS.
    from redis.asyncio import Redis

    return Redis.from_url(
        url,
        socket_connect_timeout=REDIS_SOCKET_TIMEOUT,
        socket_timeout=REDIS_SOCKET_TIMEOUT,
        retry_on_timeout=False,
        health_check_interval=30,
    )


_STATUS: dict[type[PricingError], int] = {
    InvalidRequest: 400,
    NotAuthorized: 401,
    AccessNotConfigured: 403,
    NotFound: 404,
    NothingToAccept: 409,
    RefreshInProgress: 409,
    RateLimited: 429,
    NoDataYet: 503,
    StorageUnavailable: 503,
}


def _origin(exc: BaseException) -> str:
    """Where an exception was raised, as ``file.py:123 function`` of its last frames: enough to
    find a bug, without the message (which may carry SQL, data or a URL)."""
    frames = traceback.extract_tb(exc.__traceback__)[-3:]
    return " < ".join(f"{f.filename.rsplit('/', 1)[-1]}:{f.lineno} {f.name}" for f in frames[::-1])


def _log_error(request: Request[Any, Any, Any], status: int, exc: BaseException) -> None:
    cause = exc.__cause__ or getattr(exc, "orig", None)
    event(
        log,
        "http.error",
        logging.ERROR,
        request_id=request_id_of(request),
        method=request.method,
        path=request.scope.get("path"),
        status=status,
        error=type(exc).__name__,
        cause=type(cause).__name__ if cause is not None else None,
        at=_origin(exc) or None,
    )


def pricing_error_handler(request: Request[Any, Any, Any], exc: PricingError) -> Response[Any]:
    """The one place where service errors become HTTP answers."""
    status = next((code for kind, code in _STATUS.items() if isinstance(exc, kind)), 500)
    headers: dict[str, str] = {}
    if isinstance(exc, NotAuthorized):
        headers["www-authenticate"] = "Bearer"
    if isinstance(exc, RateLimited):
        headers["retry-after"] = str(exc.retry_after)
    if isinstance(exc, StorageUnavailable):
        headers["retry-after"] = str(exc.retry_after)
    if status >= 500:
        _log_error(request, status, exc)
    return Response(
        {"status_code": status, "detail": exc.detail}, status_code=status, headers=headers
    )


def storage_error_handler(request: Request[Any, Any, Any], exc: SQLAlchemyError) -> Response[Any]:
    """A database error that reached a handler: 503 when the database is unreachable, 500
    otherwise; the answer names the kind of failure, never the SQL or its parameters."""
    error = storage_error(exc)
    assert error is not None  # every SQLAlchemyError maps to one
    error.__cause__ = exc
    error.__traceback__ = exc.__traceback__
    return pricing_error_handler(request, error)


def internal_error_handler(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    """Anything else: one error line with the request id, and a 500 that says nothing more."""
    rid = request_id_of(request)
    if client_went_away(request):
        # The client left mid-request (Litestar raises while reading the body): nobody reads
        # this answer and it is no server error; the request line records status 499.
        event(log, "http.client_closed", request_id=rid, path=request.scope.get("path"))
    else:
        _log_error(request, HTTP_500_INTERNAL_SERVER_ERROR, exc)
    return Response(
        {"status_code": 500, "detail": "internal error", "request_id": rid},
        status_code=HTTP_500_INTERNAL_SERVER_ERROR,
    )


@dataclass(frozen=True, slots=True)
class Runtime:
    """The resources of one process: owned by the app's lifespan or by a CLI command."""

    repository: Repository
    service: PricingService
    refresher: Refresher
    redis: Redis | None
    rates: RateKeeper
    limiter: RateLimiter
    deliverer: Deliverer


def webhook_context(settings: Settings, catalog: Catalog) -> EventContext:
    """What the repository writes webhook events with (endpoints, rate, curated models)."""
    return EventContext(
        endpoints=tuple((e.format, e.url) for e in settings.pricing_webhook_urls),
        usd_to_cop=settings.usd_to_cop,
        curated=curated_categories(catalog),
        failing_after_seconds=settings.pricing_webhook_failing_after_seconds,
    )


def create_deliverer(
    settings: Settings, repository: Repository, metrics: Metrics | None = None
) -> Deliverer:
    secret = settings.pricing_webhook_secret
    return Deliverer(
        repository=repository,
        secret=secret.get_secret_value() if secret is not None else None,
        schedule=settings.pricing_webhook_retry_seconds,
        timeout_seconds=settings.pricing_webhook_timeout_seconds,
        lease_seconds=settings.webhook_lease_seconds,
        poll_seconds=settings.pricing_webhook_poll_seconds,
        retention_seconds=settings.pricing_webhook_retention_seconds,
        attempt_observers=[metrics.webhook_attempt] if metrics else (),
        count_observers=[metrics.webhook_counts] if metrics else (),
    )


# Refresher events after which this process has recorded webhook events: deliver them now.
_WAKE_DELIVERY = ("refresh.completed", "refresh.held", "refresh.failed", "refresh.accepted")


def listing_source(settings: Settings) -> ListingSource[Any]:
    """Where refresh runs fetch their prices (listings/), as ``PRICING_LISTING_SOURCE`` says:
    PricePerToken over MCP (the default) or genai-prices' bundled data."""
    if settings.pricing_listing_source == SnapshotSource.GENAI_PRICES.value:
        # Imported here: genai-prices' data stays out of a worker that does not refresh with it.
        from pricing_service.listings.genai_prices import GenaiPricesSource

        return GenaiPricesSource()
    return PricePerTokenSource(partial(_pricepertoken_client, settings))


def _pricepertoken_client(settings: Settings) -> PricePerTokenClient:
    # Imported at the first fetch (PricePerTokenSource.client): httpx2 stays out of a serving
    # worker whose runs are made in a child process.
    from pricing_service.upstream import PricePerTokenClient

    return PricePerTokenClient(
        settings.pricepertoken_mcp_url,
        call_timeout=settings.pricing_upstream_call_timeout_seconds,
        run_timeout=settings.pricing_upstream_run_timeout_seconds,
        concurrency=settings.pricing_upstream_concurrency,
    )


@asynccontextmanager
async def build_runtime(
    settings: Settings,
    catalog: Catalog | None = None,
    *,
    metrics: Metrics | None = None,
    settle_heap: bool = False,
    rate_window_seconds: int = RATE_WINDOW_SECONDS,
    refresh_in_child: bool = False,
) -> AsyncIterator[Runtime]:
    """Engine, Redis client, read-path service, refresher, rate limiter and webhook deliverer,
    each built with its observers (``metrics``, in a serving process); closed in reverse order.

    ``settle_heap``: freeze the heap after each snapshot switch (``SnapshotTracker._settle_heap``),
    for a worker process that serves one app. ``refresh_in_child``: runs, acceptances and seeds
    in a child process (``ChildRefresher``), for a serving worker; the CLI and the child itself
    refresh in their own process.
    """
    catalog = catalog or load_catalog(settings.pricing_catalog_dir)
    # A lease renewed while the run progresses: a killed holder frees it within one lease.
    lease = settings.pricing_refresh_lease_seconds
    engine = create_db_engine(settings.database_url)
    redis = create_redis(settings.redis_url) if settings.redis_url else None
    try:
        repository = Repository(engine, webhook_context(settings, catalog))
        redis_errors = [metrics.redis_error] if metrics else []
        service = PricingService(
            repository=repository,
            cache=SnapshotCache(
                redis, settings.pricing_cache_ttl_seconds, error_observers=redis_errors
            ),
            catalog=catalog,
            rate=settings.usd_to_cop,
            rate_source=settings.usd_to_cop_source,
            currency=settings.currency,
            ttl_seconds=settings.pricing_cache_ttl_seconds,
            database_wait_seconds=settings.pricing_database_wait_seconds,
            unknown_id_observers=[metrics.unknown_id] if metrics else (),
            settle_heap=settle_heap,
        )
        deliverer = create_deliverer(settings, repository, metrics)

        def wake_delivery(name: str, _fields: dict[str, Any]) -> None:
            if name in _WAKE_DELIVERY:
                deliverer.wake()

        refresher = (partial(ChildRefresher, settings=settings) if refresh_in_child else Refresher)(
            repository=repository,
            source=listing_source(settings),
            catalog=catalog,
            lock=(
                RedisRefreshLock(
                    redis, lease, fallback=DatabaseRefreshLock(repository.engine, lease)
                )
                if redis is not None
                else DatabaseRefreshLock(repository.engine, lease)
            ),
            publish=service.publish,
            interval_seconds=settings.pricing_refresh_interval_seconds,
            grace_seconds=settings.pricing_delisted_grace_seconds,
            observers=[metrics.refresh_event, wake_delivery] if metrics else [wake_delivery],
            fetch_observers=[metrics.upstream_fetch] if metrics else (),
        )
        rates = RateKeeper(
            mode=settings.pricing_cop_rate_source,
            fixed=fixed_rate(settings.usd_to_cop, settings.usd_to_cop_source),
            store=RateStore(engine),
            url=settings.pricing_trm_url,
            timeout_seconds=settings.pricing_trm_timeout_seconds,
            check_seconds=settings.pricing_trm_check_seconds,
            on_change=service.apply_rate,
        )
        service.rate_state = rates.state
        yield Runtime(
            repository=repository,
            service=service,
            refresher=refresher,
            redis=redis,
            rates=rates,
            limiter=RateLimiter(
                redis,
                limit=settings.pricing_rate_limit_per_minute,
                window_seconds=rate_window_seconds,
                error_observers=redis_errors,
            ),
            deliverer=deliverer,
        )
    finally:
        if redis is not None:
            await redis.aclose()
        await anyio.to_thread.run_sync(engine.dispose)


def create_app(
    settings: Settings,
    *,
    rate_window_seconds: int = RATE_WINDOW_SECONDS,
    metrics: Metrics | None = None,
    settle_heap: bool = False,
    refresh_in_child: bool = False,
) -> Litestar:
    """Build the app; nothing connects until the lifespan starts. An invalid catalog raises.

    ``settle_heap``: freeze the heap after each snapshot switch (``SnapshotTracker._settle_heap``),
    for a worker process that serves this one app. ``refresh_in_child``: see ``build_runtime``.
    """
    catalog = load_catalog(settings.pricing_catalog_dir)
    metrics = metrics or Metrics(multiprocess=multiprocess_dir())
    access_log = AccessLog(
        AccessLogMode(settings.pricing_access_log), slow_ms=settings.pricing_slow_request_ms
    )
    access = Access(
        admin_token=(
            settings.pricing_admin_token.get_secret_value()
            if settings.pricing_admin_token
            else None
        ),
        cron_token=(
            settings.pricing_cron_token.get_secret_value() if settings.pricing_cron_token else None
        ),
    )

    console = ConsoleAuth(
        settings.pricing_admin_token.get_secret_value() if settings.pricing_admin_token else None
    )

    @asynccontextmanager
    async def lifespan(app: Litestar) -> AsyncIterator[None]:
        async with build_runtime(
            settings,
            catalog,
            metrics=metrics,
            settle_heap=settle_heap,
            rate_window_seconds=rate_window_seconds,
            refresh_in_child=refresh_in_child,
        ) as runtime:
            app.state[SERVED] = Served(
                access=access,
                console=console,
                metrics=metrics,
                pricing=runtime.service,
                refresher=runtime.refresher,
                rates=runtime.rates,
                limiter=runtime.limiter,
                deliverer=runtime.deliverer,
            )
            hot.service = runtime.service
            event(
                log,
                "app.started",
                database=runtime.repository.engine.dialect.name,
                redis=runtime.redis is not None,
            )
            async with anyio.create_task_group() as tasks:
                runtime.refresher.background = tasks
                try:
                    # The seed makes the selector answer at once on a first, offline start.
                    await runtime.refresher.ensure_seed()
                except Exception as exc:  # e.g. not migrated, or down: /ready explains it
                    event(log, "app.seed_failed", logging.ERROR, error=type(exc).__name__)
                # The stored TRM (trm mode) before the first build: no answer at another rate.
                await runtime.rates.reload()
                try:
                    # Warm before ready: the first request never waits for a dataset build.
                    await runtime.service.warm()
                except Exception as exc:
                    event(log, "app.warm_failed", logging.ERROR, error=type(exc).__name__)
                # Started whatever the startup reads gave: with the database down (or not yet
                # migrated) the watcher and the scheduler keep retrying, and the worker follows
                # the current snapshot and schedules refreshes once it answers.
                tasks.start_soon(runtime.service.watch)
                tasks.start_soon(runtime.rates.run_forever)  # trm: fetched in the background
                tasks.start_soon(access_log.every_window)
                tasks.start_soon(metrics.flush_every)
                # Webhooks: this worker delivers due events too (any worker of any replica may).
                tasks.start_soon(runtime.deliverer.run_forever)
                tasks.start_soon(
                    lambda: runtime.refresher.run_forever(
                        refresh_on_startup=settings.pricing_refresh_on_startup
                    )
                )
                yield
                tasks.cancel_scope.cancel()
        access_log.flush()  # the last minute's summary is not lost on a stop
        metrics.flush_requests()  # nor the last second's requests
        event(log, "app.stopped")
        write_directly()

    app = Litestar(
        route_handlers=[
            HealthController,
            FeedEstimateController,  # before the views: the document lists paths as before
            PricingController,
            RefreshController,
            OperationsController,
            AdminController,
            *PAGE_ROUTES,
            create_static_files_router(
                "/admin/static", [CONSOLE_STATIC], include_in_schema=False, name="admin:static"
            ),
        ],
        lifespan=[lifespan],
        dependencies=PROVIDERS,
        # Handlers import these for type checking only; Litestar resolves them here.
        signature_namespace={
            "PricingService": PricingService,
            "Refresher": Refresher,
            "RateKeeper": RateKeeper,
            "Access": Access,
            "RateLimiter": RateLimiter,
            "Metrics": Metrics,
            "ConsoleAuth": ConsoleAuth,
            "Deliverer": Deliverer,
        },
        exception_handlers={
            PricingError: pricing_error_handler,
            SQLAlchemyError: storage_error_handler,
            # Every exception without a handler above (HTTP errors below 500 keep Litestar's).
            HTTP_500_INTERNAL_SERVER_ERROR: internal_error_handler,
        },
        request_class=PricingRequest,
        plugins=[DecimalAsNumber()],
        openapi_config=OpenAPIConfig(
            title="Cognitia pricing and curation",
            version=__version__,
            path="/schema",
            components=Components(
                security_schemes={"bearer": SecurityScheme(type="http", scheme="bearer")}
            ),
        ),
        logging_config=None,
    )
    # Outermost, so 404s and preflights are logged and counted too. Litestar's own CORS config
    # would cover every route, the admin ones included; PublicCors covers the selector only.
    handler: ASGIApp = HeadAsGet(InputGuard(app.asgi_handler))
    cors = None
    if settings.pricing_cors_origins:
        cors = PublicCors(handler, origins=settings.pricing_cors_origins, paths=CORS_PATHS)
        handler = cors
    proxies = TrustedProxies(parse_networks(settings.pricing_trusted_proxies))
    hot = SelectorHotPath(cors)
    app.asgi_handler = RequestObserver(handler, metrics, proxies, access_log, hot)
    return app


def openapi_json() -> str:
    """The OpenAPI document as `pricing-service openapi` prints it and docs/openapi.json holds.

    Built from an app that is never started (nothing connects) over a throwaway database URL;
    no setting changes the routes or their documentation, so every deployment prints the same.
    """
    app = create_app(Settings(database_url="sqlite://"))
    return json.dumps(app.openapi_schema.to_schema(), indent=2, ensure_ascii=False) + "\n"


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers: each worker reads the same environment."""
    settings = load_settings()
    configure_logging(settings.pricing_log_level, settings.pricing_log_format)
    tune_heap()
    return create_app(settings, settle_heap=True, refresh_in_child=True)
