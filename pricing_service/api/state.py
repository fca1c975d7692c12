"""What the handlers are given, typed: one object on ``app.state``, put there by the lifespan.

``create_app`` builds what needs no connection (the tokens, the console's signer, the metrics);
the lifespan builds the rest (engine, Redis, service, refresher) and stores the whole as one
``Served`` under :data:`KEY`. Handlers get its parts by dependency injection (``PROVIDERS``) and
guards through :func:`served`; nothing reads ``app.state`` by attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING

from litestar.datastructures import State  # Litestar reads the providers' hints at runtime
from litestar.di import Provide

if TYPE_CHECKING:
    from pricing_service.access import Access, RateLimiter
    from pricing_service.console.session import ConsoleAuth
    from pricing_service.metrics import Metrics
    from pricing_service.rates import RateKeeper
    from pricing_service.refresh import Refresher
    from pricing_service.service import PricingService
    from pricing_service.webhooks.delivery import Deliverer

KEY = "served"


@dataclass(frozen=True, slots=True)
class Served:
    """The resources one app serves with, complete from the lifespan's start to its end."""

    access: Access
    console: ConsoleAuth
    metrics: Metrics
    pricing: PricingService
    refresher: Refresher
    rates: RateKeeper
    limiter: RateLimiter
    deliverer: Deliverer


def served(state: State) -> Served:
    """The app's ``Served``; a RuntimeError before the lifespan has started (no request can
    arrive then: the server waits for the lifespan)."""
    value = state.get(KEY)
    if not isinstance(value, Served):
        raise RuntimeError("the app's lifespan has not started")
    return value


def _part(name: str) -> Provide:
    def provide(state: State) -> object:
        return getattr(served(state), name)

    return Provide(provide, sync_to_thread=False)


# The dependencies handlers name (``pricing: NamedDependency[PricingService]``...): each a field.
PROVIDERS = {field.name: _part(field.name) for field in fields(Served)}
