"""The USD -> COP rate: fixed (PRICING_USD_TO_COP, 4000 by default) or the day's TRM.

With ``PRICING_COP_RATE_SOURCE=trm`` every worker keeps the rate in the background, never on a
request: every ``PRICING_TRM_CHECK_SECONDS`` it asks ``PRICING_TRM_URL`` (the Socrata open-data
set of the Superintendencia Financiera, ``?$order=vigenciadesde DESC&$limit=1``) for the latest
row (``valor``, ``vigenciadesde``, ``vigenciahasta``), bounded by ``PRICING_TRM_TIMEOUT_SECONDS``,
and stores it (``rate_store.py``). Every ``RELOAD_SECONDS`` it re-reads the served rate from the
database, so an accept by another process (the CLI) reaches every worker.

What is served is the newest accepted rate. A fetched rate is held instead of accepted when it
moves more than ``MAX_MOVE`` (10 %) from the last accepted one, or, with none accepted yet,
when it lies outside ``PLAUSIBLE`` (a first figure is checked against what a peso rate can be);
the last accepted rate stays served and /ready and the console say a rate is held until an
operator accepts it (``pricing-service rate --accept ID``). An answer that cannot be read as a
TRM is not stored (it is no rate) and is reported the same way. An unreachable source keeps the
last rate, and /ready says how long ago the source last confirmed it. With no TRM accepted yet
the fixed rate is served, and /ready says so.

A new rate is new bytes in every answer (``currency`` says rate, source and dates), hence a new
ETag: ``PricingService.apply_rate`` rebuilds the datasets at the new rate.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread

from pricing_service.currency import RateMode, RateSource
from pricing_service.domain import CopRate, RateState, utcnow
from pricing_service.errors import NothingToAccept
from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    import httpx2

    from pricing_service.rate_store import RateStore

__all__ = [
    "MAX_MOVE",
    "RateKeeper",
    "TrmUnparsable",
    "hold_reason",
    "parse_trm",
]

log = logging.getLogger("pricing_service.rates")

MAX_MOVE = Decimal("0.10")
PLAUSIBLE = (Decimal(1000), Decimal(20000))  # COP per USD a first TRM may be
TRM_QUERY = {"$order": "vigenciadesde DESC", "$limit": "1"}
MAX_BODY = 64 * 1024  # one Socrata row is a few hundred bytes
RELOAD_SECONDS = 30.0
STORE_SECONDS = 10.0  # a database call of the keeper waits at most this long


class TrmUnparsable(ValueError):
    """The source answered, but not with a TRM row we can read."""


def _day(value: Any, name: str) -> date:
    if not isinstance(value, str) or not value.strip():
        raise TrmUnparsable(f"{name} is missing or not a string")
    try:
        return datetime.fromisoformat(value.strip()).date()
    except ValueError:
        raise TrmUnparsable(f"{name} is not an ISO date: {value[:40]!r}") from None


def parse_trm(body: bytes) -> tuple[Decimal, date, date | None]:
    """The latest row of the Socrata answer: (valor, vigenciadesde, vigenciahasta)."""
    try:
        rows = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise TrmUnparsable("the answer is not JSON") from None
    if not isinstance(rows, list) or not rows:
        raise TrmUnparsable("the answer is not a non-empty list of rows")
    row = rows[0]
    if not isinstance(row, dict):
        raise TrmUnparsable("the first row is not an object")
    raw = row.get("valor")
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise TrmUnparsable("valor is missing or not a number")
    try:
        rate = Decimal(str(raw).strip())
    except InvalidOperation:
        raise TrmUnparsable(f"valor is not a number: {str(raw)[:40]!r}") from None
    if not rate.is_finite() or rate <= 0 or rate > 1_000_000:
        raise TrmUnparsable(f"valor is not a positive rate: {str(raw)[:40]!r}")
    valid_from = _day(row.get("vigenciadesde"), "vigenciadesde")
    valid_to = _day(row["vigenciahasta"], "vigenciahasta") if row.get("vigenciahasta") else None
    if valid_to is not None and valid_to < valid_from:
        raise TrmUnparsable(f"vigenciahasta {valid_to} is before vigenciadesde {valid_from}")
    return _plain(rate), valid_from, valid_to


def hold_reason(rate: Decimal, last: Decimal | None) -> str | None:
    """Why ``rate`` is held against the last accepted rate ``last``, or None to accept it."""
    if last is None:
        low, high = PLAUSIBLE
        if not low <= rate <= high:
            return f"first TRM {rate} COP per USD is outside {low}-{high}"
        return None
    move = abs(rate - last) / last
    if move > MAX_MOVE:
        return (
            f"TRM {rate} moved {move * 100:.1f} % from the last accepted {last} "
            f"(more than {MAX_MOVE * 100:.0f} %)"
        )
    return None


def _plain(rate: Decimal) -> Decimal:
    # 4000.00 -> 4000 (the rate is shown as given, without trailing zeros)
    tidy = rate.normalize()
    exponent = tidy.as_tuple().exponent
    return tidy.quantize(Decimal(1)) if isinstance(exponent, int) and exponent > 0 else tidy


@dataclass(slots=True)
class _Attempt:
    at: datetime | None = None
    error: str | None = None
    unparsable: str | None = None


class RateKeeper:
    """The rate this process serves, kept current in the background (see the module doc)."""

    def __init__(
        self,
        *,
        mode: RateMode,
        fixed: CopRate,
        store: RateStore | None,
        url: str,
        timeout_seconds: float,
        check_seconds: float,
        on_change: Callable[[CopRate], Awaitable[None]] | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        if mode not in set(RateMode):
            raise ValueError(f"mode must be fixed or trm, not {mode!r}")
        self.mode = RateMode(mode)
        self.fixed = fixed
        self.store = store
        self.url = url
        self.timeout_seconds = timeout_seconds
        self.check_seconds = check_seconds
        self.on_change = on_change
        self._transport = transport
        self._clock = clock
        self._current: CopRate | None = None  # the accepted TRM (None: the fixed rate)
        self._held: tuple[CopRate, ...] = ()
        self._attempt = _Attempt()

    # -- what is served ---------------------------------------------------------------------

    @property
    def rate(self) -> CopRate:
        return self._current if self._current is not None else self.fixed

    def state(self) -> RateState:
        return RateState(
            mode=self.mode,
            current=self.rate,
            held=self._held,
            fallback=self.mode is RateMode.TRM and self._current is None,
            last_attempt_at=self._attempt.at,
            last_error=self._attempt.error,
            unparsable=self._attempt.unparsable,
        )

    # -- the background work ------------------------------------------------------------------

    async def _db(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        with anyio.fail_after(STORE_SECONDS):
            return await anyio.to_thread.run_sync(
                lambda: fn(*args, **kwargs), abandon_on_cancel=True
            )

    async def reload(self) -> None:
        """Re-read the served rate and the held ones from the database; publish a change."""
        if self.mode is not RateMode.TRM or self.store is None:
            return
        try:
            current = await self._db(self.store.current, RateSource.TRM)
            held = await self._db(self.store.held, RateSource.TRM)
        except Exception as exc:  # the database is down: keep what we serve
            event(log, "rate.reload_failed", logging.WARNING, error=type(exc).__name__)
            return
        self._held = tuple(held)
        await self._serve(current)

    async def accept(self, rate_id: int, *, by: str) -> CopRate:
        """Accept a held rate, as ``pricing-service rate --accept`` does (``RateStore.accept``:
        the other held rates of its source superseded), then serve what is accepted now, in
        this worker (the others re-read it within ``RELOAD_SECONDS``). NotFound for no such
        rate, NothingToAccept for one that is not held or without a store (fixed mode)."""
        if self.mode is not RateMode.TRM or self.store is None:
            raise NothingToAccept("the rate is fixed (PRICING_COP_RATE_SOURCE=fixed): no TRM held")
        accepted: CopRate = await self._db(self.store.accept, rate_id, by=by, now=self._clock())
        event(log, "rate.accepted", rate_id=rate_id, rate=str(accepted.rate), by=by)
        await self.reload()
        return accepted

    async def _serve(self, current: CopRate | None) -> None:
        before = self.rate
        after = current if current is not None else self.fixed
        if (before.rate, before.source, before.valid_from, before.valid_to) != (
            after.rate,
            after.source,
            after.valid_from,
            after.valid_to,
        ):
            event(
                log,
                "rate.changed",
                rate=str(after.rate),
                source=after.source,
                valid_from=str(after.valid_from),
            )
        # The service rebuilds its answers first: /ready never names a rate not yet served.
        # Called on every re-read, changed or not: the service then rebuilds only a dataset
        # left at another rate (a snapshot loaded while the rate changed).
        if self.on_change is not None:
            await self.on_change(after)
        self._current = current

    async def fetch(self) -> None:
        """Ask the source once (bounded), store what it says, then serve what is accepted."""
        if self.mode is not RateMode.TRM or self.store is None:
            return
        # Imported at the first TRM fetch: a deployment with the fixed rate never makes one, and
        # httpx2 is 1.9 MB of every serving worker's RSS (the refresh child imports it anyway).
        import httpx2

        now = self._clock()
        attempt = _Attempt(at=now)
        try:
            async with httpx2.AsyncClient(
                transport=self._transport,
                timeout=httpx2.Timeout(self.timeout_seconds),
                follow_redirects=False,
                headers={"accept": "application/json", "user-agent": "cognitia-pricing-service"},
            ) as client:
                with anyio.fail_after(self.timeout_seconds * 2):
                    response = await client.get(self.url, params=TRM_QUERY)
            if response.status_code != 200:
                raise httpx2.HTTPStatusError(
                    f"HTTP {response.status_code}", request=response.request, response=response
                )
            body = response.content[: MAX_BODY + 1]
            if len(body) > MAX_BODY:
                raise TrmUnparsable(f"the answer is larger than {MAX_BODY} bytes")
            rate, valid_from, valid_to = parse_trm(body)
        except TrmUnparsable as exc:
            attempt.unparsable = str(exc)
            event(log, "rate.unparsable", logging.WARNING, detail=str(exc))
        except (httpx2.HTTPError, TimeoutError, OSError) as exc:
            attempt.error = f"{type(exc).__name__}: {exc}"[:200] if str(exc) else type(exc).__name__
            event(log, "rate.unreachable", logging.WARNING, error=attempt.error)
        else:
            last = await self._last_accepted()
            reason = hold_reason(rate, last.rate if last is not None else None)
            try:
                stored = await self._db(
                    self.store.record,
                    source=RateSource.TRM,
                    rate=rate,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    now=now,
                    held_reason=reason,
                )
            except Exception as exc:
                attempt.error = f"could not store the rate: {type(exc).__name__}"
                event(log, "rate.store_failed", logging.WARNING, error=type(exc).__name__)
            else:
                event(
                    log,
                    "rate.fetched",
                    rate=str(rate),
                    valid_from=str(valid_from),
                    status=stored.status.value,
                    reason=stored.reason,
                )
        self._attempt = attempt
        await self.reload()

    async def _last_accepted(self) -> CopRate | None:
        if self.store is None:
            return None
        try:
            found: CopRate | None = await self._db(self.store.current, RateSource.TRM)
        except Exception:
            return self._current
        return found

    async def run_forever(self) -> None:
        """Fetch now and every ``check_seconds``; reload every ``RELOAD_SECONDS`` between."""
        if self.mode is not RateMode.TRM:
            return
        while True:
            try:
                await self.fetch()
            except Exception as exc:  # the loop must outlive any one bad check
                event(log, "rate.check_failed", logging.ERROR, error=type(exc).__name__)
            waited = 0.0
            while waited < self.check_seconds:
                step = min(RELOAD_SECONDS, self.check_seconds - waited)
                await anyio.sleep(step)
                waited += step
                if waited < self.check_seconds:
                    try:
                        await self.reload()
                    except Exception as exc:
                        event(log, "rate.check_failed", logging.ERROR, error=type(exc).__name__)


def fixed_rate(rate: Decimal, source: str) -> CopRate:
    return CopRate(rate=_plain(rate), source=source)


def with_plain_rate(rate: CopRate) -> CopRate:
    return replace(rate, rate=_plain(rate.rate))
