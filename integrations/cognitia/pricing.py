"""Drop-in replacement for Cognitia's ``backend/open_webui/routers/pricing.py``.

Prices come from the cognitia-pricing service over HTTP instead of Cognitia's own
``model_pricing`` table and MCP calls. The unchanged frontend keeps working:

* ``GET /api/v1/pricing/models`` answers the legacy shape, ``{"items": [{"model_id", "provider",
  "input_usd_per_million", "output_usd_per_million", "context_window", "updated_at" (epoch
  seconds), "source"}], "updated_at"}``, with one item per id spelling of every model that has a
  price (``x-ai/grok-3``, ``grok-3``, ``claude-sonnet-4-20250514``, ...). A model without a known
  price has no item, so the selector shows "Sin precio aún" as before, never a price of 0.
* ``POST /api/v1/pricing/refresh`` no longer reaches any upstream (the service refreshes itself):
  it answers the current status of the ids asked, and the service counts the ones nothing
  resolves, so its operator learns which alias to add.
* ``GET /api/v1/pricing/selector`` and ``GET /api/v1/pricing/prices`` pass the service's curated
  views and price map through, for the frontend's move to server-side COP amounts and curation.

``price_for(model_id)`` is for async code: a ``Price`` whose amounts are ``None`` when the price
is unknown (never 0), ``None`` when no model has that id; an id that is not a key of the price map
(a local tag) is resolved by the service (``?ids=``). Cognitia's synchronous budget code uses
``budget_prices.py`` (installed as ``utils/pricing_budgets.py``) instead.

Every answer of the service is cached with its ETag and revalidated at most once a minute
(``If-None-Match``: a 304 costs a few hundred bytes); when the service is unreachable the last
answer keeps being served. Settings (environment): ``PRICING_SERVICE_URL`` (required, e.g.
``https://pricing.example.com``), ``PRICING_SERVICE_TIMEOUT_SECONDS`` (default 5).

``POST /api/v1/pricing/webhook`` receives the service's signed webhooks (Standard Webhooks,
verified with the ``standardwebhooks`` package and ``PRICING_WEBHOOK_SECRET``, the service's
own secret): on ``prices.changed`` every cached answer is dropped at once, the router's and the
budgets' (``utils/pricing_budgets.py``), so a new price reaches the selector within seconds
instead of a minute. It needs no user (the signature is the check); without the secret it
answers 503, with a wrong signature 401.

Only FastAPI and httpx, which Open WebUI already depends on, are imported; the webhook route
imports ``standardwebhooks`` when it is called (add it to Cognitia's backend requirements).
"""

# No "from __future__ import annotations": FastAPI reads the routes' annotations at runtime, and
# they name create_router's local dependency.
import asyncio
import collections
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any
from urllib.parse import urlencode

import httpx
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from pydantic import BaseModel

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/api/v1/pricing"
REVALIDATE_SECONDS = 60.0
DEFAULT_TIMEOUT_SECONDS = 5.0
MAX_IDS_PER_LOOKUP = 100  # the service's limit for ids=
PRICED_STATUSES = frozenset({"priced", "free", "local"})
# The events after which cached answers are dropped at once.
DROP_ON = frozenset({"prices.changed", "decision.recorded"})
SEEN_WEBHOOK_IDS = 1000  # webhook-ids remembered to drop the service's retries of one event
MAX_WEBHOOK_BYTES = 4_000_000


class PricingUnavailable(Exception):
    """The pricing service could not be reached and nothing is cached yet."""


@dataclass(frozen=True, slots=True)
class Price:
    """A model's price for budgets. Unknown stays unknown: both amounts ``None``, never 0."""

    model_id: str
    input_usd_per_million: Decimal | None
    output_usd_per_million: Decimal | None
    price_status: str  # "priced", "free", "local" (no API cost) or "unknown"
    label: str

    @property
    def known(self) -> bool:
        return self.input_usd_per_million is not None and self.output_usd_per_million is not None

    def cost_usd(self, input_tokens: int, output_tokens: int) -> Decimal | None:
        """Exact USD for one call, or ``None`` when the price is unknown."""
        if self.input_usd_per_million is None or self.output_usd_per_million is None:
            return None
        total = (
            self.input_usd_per_million * input_tokens + self.output_usd_per_million * output_tokens
        )
        return total.scaleb(-6)


@dataclass(slots=True)
class _Cached:
    etag: str | None
    raw: bytes
    data: Any
    checked_at: float


class PricingServiceClient:
    """The service's answers, cached with their ETags (one entry per path and query)."""

    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        revalidate_seconds: float = REVALIDATE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"user-agent": "cognitia-pricing-kit"},
        )
        self._revalidate = revalidate_seconds
        self._clock = clock
        self._cache: dict[str, _Cached] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._legacy: tuple[str | None, dict[str, Any]] | None = None
        # The snapshot a webhook announced: an answer from an older one is revalidated on every
        # use (a 304 until the replica answering has switched; replicas follow within seconds).
        self._min_snapshot = 0

    async def aclose(self) -> None:
        await self._http.aclose()

    def drop_cache(self, snapshot_id: int | None = None) -> None:
        """Forget every cached answer: the next request asks the service afresh; until an
        answer comes from ``snapshot_id`` (or later), each request asks again."""
        self._cache.clear()
        self._legacy = None
        if snapshot_id is not None:
            self._min_snapshot = max(self._min_snapshot, snapshot_id)

    def _fresh(self, entry: _Cached) -> bool:
        if self._clock() - entry.checked_at >= self._revalidate:
            return False
        return _snapshot_id(entry.data) >= self._min_snapshot

    async def cached(self, path: str) -> _Cached:
        """The service's answer for ``path`` (with its query), revalidated once a minute."""
        entry = self._cache.get(path)
        if entry is not None and self._fresh(entry):
            return entry
        lock = self._locks.setdefault(path, asyncio.Lock())
        async with lock:  # one revalidation at a time per path
            entry = self._cache.get(path)
            if entry is not None and self._fresh(entry):
                return entry
            headers = {"if-none-match": entry.etag} if entry is not None and entry.etag else {}
            try:
                response = await self._http.get(SERVICE_PREFIX + path, headers=headers)
                if entry is not None and response.status_code == 304:
                    entry.checked_at = self._clock()
                    return entry
                response.raise_for_status()
            except httpx.HTTPError as exc:
                if entry is not None:  # serve the last answer; try again next minute
                    log.warning("pricing service unreachable, serving cached %s: %s", path, exc)
                    entry.checked_at = self._clock()
                    return entry
                raise PricingUnavailable(f"pricing service unreachable: {exc}") from exc
            fresh = _Cached(
                etag=response.headers.get("etag"),
                raw=response.content,
                data=json.loads(response.content, parse_float=Decimal),
                checked_at=self._clock(),
            )
            self._cache[path] = fresh
            return fresh

    async def price_map(self) -> dict[str, dict[str, Any]]:
        prices: dict[str, dict[str, Any]] = (await self.cached("/prices")).data["prices"]
        return prices

    async def price_for(self, model_id: str) -> Price | None:
        """The price of ``model_id`` as spelled, ``None`` when no model has that id."""
        value = (await self.price_map()).get(model_id)
        if value is None:
            value = (await self.price_map()).get(model_id.strip().lower())
        if value is None:
            # Not a key of the map (e.g. a local tag the service resolves by its prefix): ask
            # the service's own resolution, cached and revalidated like every answer.
            entry = await self.cached("/models?" + urlencode({"ids": model_id}))
            item = entry.data["items"][0] if entry.data["items"] else None
            if item is None or item["price_status"] == "unknown":
                return None
            value = {**item, "label": item["price_label"]}
        return Price(
            model_id=model_id,
            input_usd_per_million=_decimal(value["input_usd_per_million"]),
            output_usd_per_million=_decimal(value["output_usd_per_million"]),
            price_status=value["price_status"],
            label=value["label"],
        )

    async def legacy_models(self) -> dict[str, Any]:
        """The legacy body of GET /pricing/models, rebuilt only when the service's ETag changes."""
        entry = await self.cached("/models?view=all")
        if self._legacy is None or self._legacy[0] != entry.etag:
            self._legacy = (entry.etag, legacy_body(entry.data))
        return self._legacy[1]

    async def statuses(self, model_ids: list[str]) -> dict[str, str]:
        """The current price status of each id (not cached: the service counts unknown ids)."""
        found: dict[str, str] = {}
        unique = list(dict.fromkeys(m for m in model_ids if m.strip()))
        for start in range(0, len(unique), MAX_IDS_PER_LOOKUP):
            chunk = unique[start : start + MAX_IDS_PER_LOOKUP]
            try:
                response = await self._http.get(
                    SERVICE_PREFIX + "/models", params={"ids": ",".join(chunk)}
                )
                response.raise_for_status()
            except httpx.HTTPError as exc:
                raise PricingUnavailable(f"pricing service unreachable: {exc}") from exc
            for item in response.json()["items"]:
                found[item["model_id"]] = item["price_status"]
        return found


def _snapshot_id(data: Any) -> int:
    """The snapshot an answer of the service comes from (0 when it says none)."""
    snapshot = data.get("snapshot") if isinstance(data, dict) else None
    value = snapshot.get("id") if isinstance(snapshot, dict) else None
    return value if isinstance(value, int) else 0


def _announced_snapshot(event: Any) -> int | None:
    data = event.get("data") if isinstance(event, dict) else None
    value = data.get("snapshot_id") if isinstance(data, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _decimal(value: Decimal | int | None) -> Decimal | None:
    # JSON integers (3) parse as int, fractions (0.4) as Decimal: money is Decimal either way.
    return None if value is None else Decimal(value)


def _epoch(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp())


def _number(value: Decimal) -> float:
    # The legacy fields are floats; the service's prices have a handful of significant digits,
    # which a float's shortest repr keeps exactly.
    return float(value)


def legacy_body(all_view: dict[str, Any]) -> dict[str, Any]:
    """Cognitia's legacy shape from the service's view=all: one item per spelling of every
    model with a known price (priced, free, or local at 0). Unknown prices have no item."""
    items: list[dict[str, Any]] = []
    for item in all_view["items"]:
        if item["price_status"] not in PRICED_STATUSES:
            continue
        if item["input_usd_per_million"] is None or item["output_usd_per_million"] is None:
            continue
        updated = _epoch(item["updated_at"])
        for spelling in item["aliases"]:
            items.append(
                {
                    "model_id": spelling,
                    "provider": item["provider"] or "",
                    "input_usd_per_million": _number(item["input_usd_per_million"]),
                    "output_usd_per_million": _number(item["output_usd_per_million"]),
                    "context_window": item["context_window"],
                    "updated_at": updated,
                    "source": item["source"],
                }
            )
    return {"items": items, "updated_at": max((i["updated_at"] for i in items), default=None)}


class PricingRefreshForm(BaseModel):
    model_ids: list[str] = []


def _secret_from_env() -> str | None:
    return os.environ.get("PRICING_WEBHOOK_SECRET") or None


def _drop_budget_prices(snapshot_id: int | None = None) -> None:
    """Inside Open WebUI: the budgets' price map is revalidated now (utils/pricing_budgets.py)."""
    try:
        from open_webui.utils.pricing_budgets import invalidate_budget_prices
    except ImportError:  # the budgets module is not installed (a checkout before it)
        return
    invalidate_budget_prices(snapshot_id)


def create_router(
    client: Callable[[], PricingServiceClient],
    user_dependency: Callable[..., Any],
    *,
    webhook_secret: Callable[[], str | None] = _secret_from_env,
    on_prices_changed: Callable[[int | None], None] = _drop_budget_prices,
) -> APIRouter:
    """The router Open WebUI mounts at /api/v1/pricing; every route needs a verified user,
    but the webhook, which the service's signature authenticates."""
    router = APIRouter()
    User = Annotated[Any, Depends(user_dependency)]
    seen: collections.OrderedDict[str, None] = collections.OrderedDict()

    @router.post("/webhook", status_code=204)
    async def receive_webhook(request: Request) -> Response:
        secret = webhook_secret()
        if not secret:
            raise HTTPException(status_code=503, detail="PRICING_WEBHOOK_SECRET is not set")
        try:
            from standardwebhooks import Webhook, WebhookVerificationError
        except ImportError as exc:  # pragma: no cover - a deployment without the package
            missing = "standardwebhooks is not installed"
            raise HTTPException(status_code=503, detail=missing) from exc
        body = await request.body()
        if len(body) > MAX_WEBHOOK_BYTES:
            raise HTTPException(status_code=413, detail="webhook body too large")
        try:
            event = Webhook(secret).verify(body, dict(request.headers))
        except (WebhookVerificationError, ValueError) as exc:
            log.warning("pricing.webhook_refused %s", exc)
            raise HTTPException(status_code=401, detail="invalid webhook signature") from exc
        message_id = request.headers.get("webhook-id", "")
        if message_id in seen:  # the service retried an event already handled
            return Response(status_code=204)
        seen[message_id] = None
        while len(seen) > SEEN_WEBHOOK_IDS:
            seen.popitem(last=False)
        kind = event.get("type") if isinstance(event, dict) else None
        if kind in DROP_ON:
            # The announced snapshot: answers from an older one (a replica that has not
            # switched yet) are asked again until it has.
            announced = _announced_snapshot(event)
            client().drop_cache(announced)
            on_prices_changed(announced)
            log.info("pricing.webhook_cache_dropped type=%s id=%s", kind, message_id)
        return Response(status_code=204)

    def unavailable(exc: PricingUnavailable) -> HTTPException:
        return HTTPException(status_code=503, detail=str(exc))

    @router.get("/models")
    async def get_pricing_models(user: User) -> dict[str, Any]:
        try:
            return await client().legacy_models()
        except PricingUnavailable as exc:
            raise unavailable(exc) from exc

    @router.post("/refresh")
    async def refresh_pricing_models(form: PricingRefreshForm, user: User) -> dict[str, Any]:
        # The service refreshes itself every 12 hours; asking it here only reports the status.
        try:
            statuses = await client().statuses(form.model_ids)
        except PricingUnavailable as exc:
            raise unavailable(exc) from exc
        missing = [m for m, status in statuses.items() if status not in PRICED_STATUSES]
        return {"items": missing, "models": statuses}

    @router.get("/selector")
    async def get_selector(
        user: User,
        view: Annotated[str, Query(pattern="^(curated|all)$")] = "curated",
    ) -> Response:
        try:
            entry = await client().cached(f"/models?view={view}")
        except PricingUnavailable as exc:
            raise unavailable(exc) from exc
        return Response(entry.raw, media_type="application/json")

    @router.get("/prices")
    async def get_prices(user: User) -> Response:
        try:
            entry = await client().cached("/prices")
        except PricingUnavailable as exc:
            raise unavailable(exc) from exc
        return Response(entry.raw, media_type="application/json")

    return router


_client: PricingServiceClient | None = None


def get_client() -> PricingServiceClient:
    """The process's client, made on first use from PRICING_SERVICE_URL."""
    global _client
    if _client is None:
        url = os.environ.get("PRICING_SERVICE_URL")
        if not url:
            raise PricingUnavailable("PRICING_SERVICE_URL is not set")
        timeout = float(os.environ.get("PRICING_SERVICE_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS))
        _client = PricingServiceClient(url, timeout=timeout)
    return _client


def set_client(client: PricingServiceClient | None) -> None:
    """Use this client (tests, or a custom transport); ``None`` makes one from the environment."""
    global _client
    _client = client


async def price_for(model_id: str) -> Price | None:
    """For budgets: the price of ``model_id``; ``None`` when no model has that id.

    An unknown price has ``known`` False and ``None`` amounts: treat it as unknown (ask, or
    refuse), never as free. Raises PricingUnavailable when the service was never reached.
    """
    return await get_client().price_for(model_id)


try:
    from open_webui.utils.auth import get_verified_user
except ImportError:  # imported outside Open WebUI: use create_router with a dependency
    router: APIRouter | None = None
else:
    router = create_router(get_client, get_verified_user)
