"""What GET /ready says (and the console's Estado): whether the service can serve, and each
thing that is degraded as a code with its facts and an English line (the rate's included).

Each database read goes through the tracker's bounded reads: a stalled database costs the probe
one bounded wait, never its own timeout.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pricing_service.domain import DegradationCode, HoldReason, RunStatus, SnapshotSource, utcnow
from pricing_service.errors import NoDataYet, PricingError
from pricing_service.logs import event

if TYPE_CHECKING:
    from pricing_service.cache import SnapshotCache
    from pricing_service.curation import SelectorDataset
    from pricing_service.repository import Repository
    from pricing_service.tracker import SnapshotTracker

log = logging.getLogger("pricing_service.service")

MAX_HELD_REASONS = 20  # /ready lists this many held prices, then a count
MAX_PUBLIC_ERROR = 300


@dataclass(frozen=True, slots=True)
class Degradation:
    """One thing /ready reports as degraded: a code and its facts, and its English line.

    GET /ready sends ``text``; the console words each ``code`` in Spanish from ``facts``
    (console/format.py), so no English line reaches its pages.
    """

    code: DegradationCode
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


def public_error(text: str | None) -> str:
    """A run's error as /ready may show it: one line, and nothing from a SQL statement on (runs
    recorded before errors were sanitized carry the statement and its parameters)."""
    line = (text or "").split("\n", 1)[0]
    for marker in ("[SQL:", "[parameters:", "(Background on this error"):
        line = line.split(marker, 1)[0]
    line = line.strip()
    return line if len(line) <= MAX_PUBLIC_ERROR else line[: MAX_PUBLIC_ERROR - 1] + "…"


class Readiness:
    """GET /ready's body and its degraded lines, from the tracker, Redis and the database."""

    def __init__(
        self,
        *,
        repository: Repository,
        cache: SnapshotCache,
        ttl_seconds: int,
        tracker: SnapshotTracker,
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.ttl_seconds = ttl_seconds
        self.tracker = tracker
        self.reads = tracker.reads
        # The rate served and what is wrong with it (the service's, rates.py); None: not said.
        self.rate_report: Callable[[datetime], tuple[dict[str, Any], list[Degradation]]] | None = (
            None
        )

    async def readiness(self) -> dict[str, Any]:
        """The body of GET /ready: ``degraded`` as English lines for operators' tools."""
        report, _ = await self.readiness_details()
        return report

    async def readiness_details(self) -> tuple[dict[str, Any], list[Degradation]]:
        """GET /ready's body and each degraded line as a code and its facts (the console)."""
        degraded: list[Degradation] = []

        def report(body: dict[str, Any]) -> tuple[dict[str, Any], list[Degradation]]:
            return {
                "ready": body["ready"],
                "degraded": [d.text for d in degraded],
                **body,
            }, degraded

        if self.cache.configured and not await self.cache.ping():
            degraded.append(
                Degradation(
                    DegradationCode.REDIS_UNREACHABLE,
                    "redis unreachable: serving from memory and the database",
                )
            )
        try:
            dataset, tier = await self.tracker.dataset()
        except NoDataYet as exc:
            reason = exc.detail
            # The check that just failed to load a snapshot says whether the database answered
            # in time: when it did not, asking again would make the probe wait twice as long.
            unreachable = self.tracker.database_error
            if unreachable is None:
                try:
                    if await self.reads.read(self.repository.schema_revision) is None:
                        reason = "database not migrated: run `pricing-service migrate`"
                except Exception as db_exc:
                    unreachable = type(db_exc).__name__
            if unreachable is not None:
                reason = f"database unreachable ({unreachable}) and no cached prices"
            return report({"ready": False, "reason": reason})
        except Exception as exc:  # e.g. the database was never migrated
            # A public answer: the kind of failure only, never SQL, parameters or a URL.
            detail = exc.detail if isinstance(exc, PricingError) else type(exc).__name__
            reason = f"cannot serve: {detail}"
            return report({"ready": False, "reason": reason})
        snapshot = dataset.snapshot
        age = int((utcnow() - snapshot.fetched_at).total_seconds())
        if age > self.ttl_seconds:
            degraded.append(
                Degradation(
                    DegradationCode.STALE,
                    f"snapshot stale: fetched {age} s ago",
                    {"age_seconds": age},
                )
            )
        if snapshot.source == SnapshotSource.SEED:
            degraded.append(
                Degradation(
                    DegradationCode.NOT_LIVE,
                    f"serving the {snapshot.source} snapshot, not live prices",
                    {"source": str(snapshot.source)},
                )
            )
        try:
            last = await self.reads.read(self.repository.last_run)
        except Exception:
            degraded.append(
                Degradation(
                    DegradationCode.DATABASE_UNREACHABLE,
                    "database unreachable: serving the cached snapshot",
                )
            )
        else:
            if last is not None and last.status is RunStatus.FAILED:
                error = public_error(last.error)
                degraded.append(
                    Degradation(
                        DegradationCode.LAST_REFRESH_FAILED,
                        f"last refresh failed: {error}",
                        {"run_id": last.id, "error": error},
                    )
                )
            try:
                degraded.extend(await self.reads.read(self._held_reasons, dataset))
            except Exception as exc:
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
        currency: dict[str, Any] | None = None
        if self.rate_report is not None:
            currency, rate_problems = self.rate_report(utcnow())
            degraded.extend(rate_problems)
        return report(
            {
                "ready": True,
                **({"currency": currency} if currency is not None else {}),
                "snapshot": {
                    "id": snapshot.id,
                    "source": snapshot.source,
                    "fetched_at": snapshot.fetched_at.isoformat(),
                    "age_seconds": age,
                    "stale": age > self.ttl_seconds,
                },
                "tier": tier,
            }
        )

    def _held_reasons(self, dataset: SelectorDataset) -> list[Degradation]:
        reasons = [
            Degradation(
                DegradationCode.RUN_HELD,
                f"refresh run {run.id} held: {run.held_reason}; prices unchanged until an "
                f"operator accepts it (pricing-service refresh --accept {run.id})",
                {"run_id": run.id, "detail": run.held_reason},
            )
            for run in self.repository.pending_held_runs()
        ]
        held = self.repository.open_held_prices()
        # A curated model whose price the second source contradicts is what users of the
        # selector see first: each is named, before and beside the count-limited list.
        curated = []
        for price in held:
            categories = (
                dataset.curated_in(price.model_id)
                if price.reason is HoldReason.SECOND_SOURCE
                else []
            )
            if not categories:
                continue
            unknown = (
                price.accepted_input_usd_per_million is None
                or price.accepted_output_usd_per_million is None
            )
            served = "unknown" if unknown else "its last accepted price"
            curated.append(price)
            reasons.append(
                Degradation(
                    DegradationCode.PRICE_HELD_CURATED,
                    f"price held: {price.model_id} (second_source, run {price.run_id}; curated "
                    f"in {', '.join(categories)}): {price.detail}; served as {served} until an "
                    f"operator accepts a figure (pricing-service refresh --accept {price.run_id} "
                    f"--model {price.model_id} --figure proposed|second_source)",
                    {
                        "model_id": price.model_id,
                        "reason": price.reason,
                        "run_id": price.run_id,
                        "categories": list(categories),
                        "served_unknown": unknown,
                        "detail": price.detail,
                    },
                )
            )
        held = [price for price in held if price not in curated]
        for price in held[:MAX_HELD_REASONS]:
            reasons.append(
                Degradation(
                    DegradationCode.PRICE_HELD,
                    f"price held: {price.model_id} ({price.reason.value}, run {price.run_id}): "
                    f"{price.detail}",
                    {
                        "model_id": price.model_id,
                        "reason": price.reason,
                        "run_id": price.run_id,
                        "detail": price.detail,
                    },
                )
            )
        if len(held) > MAX_HELD_REASONS:
            more = len(held) - MAX_HELD_REASONS
            reasons.append(
                Degradation(
                    DegradationCode.MORE_HELD,
                    f"and {more} more held prices (GET /runs)",
                    {"count": more},
                )
            )
        return reasons
