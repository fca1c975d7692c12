"""The read path's service: what the selector asks (its rendered answers, selector_replies.py),
the estimates, the change feed and the runs, the rate served, and a facade over the operators'
reports (readiness.py, reports.py) and the current snapshot (tracker.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from pricing_service.currency import RateMode
from pricing_service.domain import (
    CacheTier,
    ChangeKind,
    CopRate,
    RateState,
    utcnow,
)
from pricing_service.errors import (
    InvalidRequest,
    NotFound,
)
from pricing_service.feed import decode_cursor, feed_body
from pricing_service.long_context import with_long_context
from pricing_service.rate_readiness import rate_readiness
from pricing_service.readiness import Degradation, Readiness
from pricing_service.replies import Answer, Reply, etag_matches, render
from pricing_service.reports import DebugReport, OperatorReports, ServiceStatus
from pricing_service.selector_replies import SelectorReplies
from pricing_service.tracker import DATABASE_WAIT_SECONDS, DatabaseReads, SnapshotTracker
from pricing_service.unknown_ids import MAX_MODEL_ID_LENGTH
from pricing_service.usage import estimate_body, read_usage

if TYPE_CHECKING:
    from decimal import Decimal

    from pricing_service.cache import SnapshotCache
    from pricing_service.currency import Currency
    from pricing_service.domain import (
        Catalog,
        PriceChange,
        RunSummary,
        SnapshotInfo,
    )
    from pricing_service.feed import PriceChanges
    from pricing_service.repository import Repository
    from pricing_service.usage import UsageEstimate

log = logging.getLogger("pricing_service.service")

T = TypeVar("T")

MAX_RUNS = 100
CHANGE_KINDS = tuple(kind.value for kind in ChangeKind)
MAX_TOKENS = 100_000_000


def parse_count(name: str, value: str | None) -> int:
    """A token count from a query parameter: a whole number from 0 to MAX_TOKENS."""
    if value is None or not value.strip():
        raise InvalidRequest(f"{name} is required: a whole number of tokens (0 to {MAX_TOKENS})")
    text = value.strip()
    if not text.isascii() or not text.isdigit():
        raise InvalidRequest(
            f"{name} must be a whole number of tokens (0 to {MAX_TOKENS}), not {value!r}"
        )
    count = int(text)
    if count > MAX_TOKENS:
        raise InvalidRequest(f"{name} must be at most {MAX_TOKENS}, not {count}")
    return count


class PricingService(SelectorReplies):
    """What the api asks of the read path, one per app: the selector's answers (inherited),
    the estimates, the change feed, the runs, the rate; readiness and reports composed."""

    def __init__(
        self,
        *,
        repository: Repository,
        cache: SnapshotCache,
        catalog: Catalog,
        rate: Decimal,
        rate_source: str,
        currency: Currency,
        ttl_seconds: int,
        database_wait_seconds: float = DATABASE_WAIT_SECONDS,
        unknown_id_observers: Iterable[Callable[[str, str], None]] = (),
        settle_heap: bool = False,
    ) -> None:
        self.repository = repository
        self.cache = cache
        # What /ready says of the rate (rates.RateKeeper.state), set by the app.
        self.rate_state: Callable[[], RateState] | None = None
        self.reads = DatabaseReads(wait_seconds=database_wait_seconds)
        super().__init__(
            tracker=SnapshotTracker(
                repository=repository,
                cache=cache,
                catalog=catalog,
                rate=rate,
                rate_source=rate_source,
                currency=currency,
                reads=self.reads,
            ),
            catalog=catalog,
            rate=rate,
            rate_source=rate_source,
            currency=currency,
            ttl_seconds=ttl_seconds,
            unknown_id_observers=unknown_id_observers,
        )
        self.reports = OperatorReports(
            repository=repository,
            catalog=catalog,
            tracker=self.tracker,
            asked_ids=self.unknown_ids.snapshot,
        )
        self.ready = Readiness(
            repository=repository, cache=cache, ttl_seconds=ttl_seconds, tracker=self.tracker
        )
        self.ready.rate_report = self._rate_degradations
        self.settle_heap = settle_heap

    # -- which snapshot: tracker.py --------------------------------------------------------------

    @property
    def settle_heap(self) -> bool:
        """Freeze the heap after each switch (``SnapshotTracker.settle_heap``): serving workers."""
        return self.tracker.settle_heap

    @settle_heap.setter
    def settle_heap(self, value: bool) -> None:
        self.tracker.settle_heap = value

    async def read(self, fn: Callable[..., T], *args: Any, seconds: float | None = None) -> T:
        """A repository read in a worker thread, bounded (``DatabaseReads.read``)."""
        return await self.reads.read(fn, *args, seconds=seconds)

    async def warm(self) -> None:
        await self.tracker.warm()

    async def watch(self) -> None:
        await self.tracker.watch()

    async def publish(self, info: SnapshotInfo) -> None:
        await self.tracker.publish(info)

    # -- the change feed and the runs -----------------------------------------------------------

    async def changes(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: str | None = None,
    ) -> list[PriceChange]:
        if kind is not None and kind not in CHANGE_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(CHANGE_KINDS)}, not {kind!r}")
        chosen = ChangeKind(kind) if kind is not None else None
        if model_id is not None:
            model_id = await self._stored_model_id(model_id)
        return await self.read(
            lambda: self.repository.changes(since, limit, model_id=model_id, kind=chosen)
        )

    async def _stored_model_id(self, model_id: str) -> str:
        """The id a model's history is stored under, for any spelling ?ids= and /prices
        resolve to it (one resolver); an id nothing resolves is looked up as given."""
        dataset, _ = await self.dataset()
        return dataset.stored_model_id(model_id) or model_id

    async def change_feed(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: str | None = None,
        cursor: str | None = None,
        if_none_match: str | None = None,
    ) -> Answer[PriceChanges]:
        """GET /changes (feed.py): the page as JSON with a strong ETag, or 304."""
        if kind is not None and kind not in CHANGE_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(CHANGE_KINDS)}, not {kind!r}")
        chosen = ChangeKind(kind) if kind is not None else None
        after = decode_cursor(cursor) if cursor is not None else None
        if model_id is not None:
            model_id = await self._stored_model_id(model_id)
        changes, position = await self.read(
            lambda: self.repository.change_page(
                since, limit, model_id=model_id, kind=chosen, after=after
            )
        )
        page = feed_body(
            changes, self.rate, position, "newest_first" if after is None else "oldest_first"
        )
        rendered = render(page, compress=False)
        headers = {
            "etag": rendered.etag,
            "cache-control": "no-cache",
            "x-cache-tier": CacheTier.DATABASE,
        }
        if etag_matches(if_none_match, rendered.etag):
            return Answer(page, Reply.of(304, b"", headers, CacheTier.DATABASE))
        return Answer(page, Reply.of(200, rendered.body, headers, CacheTier.DATABASE))

    async def runs(self, limit: int) -> list[RunSummary]:
        if not 1 <= limit <= MAX_RUNS:
            raise InvalidRequest(f"limit must be between 1 and {MAX_RUNS}, not {limit}")
        return await self.read(self.repository.recent_runs, limit)

    async def run(self, run_id: int) -> RunSummary:
        found = await self.read(self.repository.get_run, run_id)
        if found is None:
            raise NotFound(f"run {run_id} does not exist")
        return found

    # -- the estimates --------------------------------------------------------------------------

    async def estimate(
        self,
        *,
        model_id: str | None,
        input_tokens: str | None,
        output_tokens: str | None,
        accept_gzip: bool,
        if_none_match: str | None,
    ) -> Reply:
        if model_id is None or not model_id.strip():
            raise InvalidRequest("model_id is required")
        if len(model_id) > MAX_MODEL_ID_LENGTH:
            raise InvalidRequest(f"model_id is too long: at most {MAX_MODEL_ID_LENGTH} characters")
        input_count = parse_count("input_tokens", input_tokens)
        output_count = parse_count("output_tokens", output_tokens)
        dataset, tier = await self.dataset()
        self._count_unknown(dataset, [model_id.strip()], "estimate")
        now = utcnow()
        body = dataset.estimate(
            model_id.strip(),
            input_tokens=input_count,
            output_tokens=output_count,
            now=now,
            ttl_seconds=self.ttl_seconds,
        )
        # The long-context tiers, by the POST form's rule (long_context.py).
        body = with_long_context(
            body, dataset.long_context_tiers(model_id.strip()), dataset.rate, dataset.currency
        )
        return self._reply(
            render(body, compress=False),
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    async def estimate_usage(
        self, *, model_id: str, usage: Any, format: str | None
    ) -> Answer[UsageEstimate]:
        """POST /estimate: a provider's usage object billed kind by kind (pricing_service/usage.py).

        Never cached (a POST); the prices are the current snapshot's, as the GET form's."""
        model_id = model_id.strip()
        if not model_id:
            raise InvalidRequest("model_id is required")
        if len(model_id) > MAX_MODEL_ID_LENGTH:
            raise InvalidRequest(f"model_id is too long: at most {MAX_MODEL_ID_LENGTH} characters")
        read = read_usage(usage, format)
        dataset, tier = await self.dataset()
        self._count_unknown(dataset, [model_id], "estimate")
        now = utcnow()
        found = dataset.lookup([model_id], now=now, ttl_seconds=self.ttl_seconds)
        item = found["items"][0]
        tiers = dataset.long_context_tiers(model_id)
        body = estimate_body(
            item,
            read,
            rate=dataset.rate,
            local=dataset.currency,
            currency=found["currency"],
            snapshot=found["snapshot"],
            tiers=tiers,
        )
        headers = {"cache-control": "no-store", "x-cache-tier": tier}
        return Answer(body, Reply.of(200, render(body, compress=False).body, headers, tier))

    # -- the rate -------------------------------------------------------------------------------

    async def apply_rate(self, rate: CopRate) -> None:
        """Serve ``rate`` from now on (``SnapshotTracker.apply_rate``: the loaded snapshots are
        rebuilt at it; rendered bytes are keyed by the dataset's rate, ``cache_id``, so every
        answer, and its ETag, changes with it)."""
        changed = (self.rate, self.rate_source, self.rate_valid) != (
            rate.rate,
            rate.source,
            (rate.valid_from, rate.valid_to),
        )
        self.rate, self.rate_source = rate.rate, rate.source
        self.rate_valid = (rate.valid_from, rate.valid_to)
        if changed:
            self._local = None
        await self.tracker.apply_rate(rate, changed=changed)

    def _rate_degradations(self, now: datetime) -> tuple[dict[str, Any], list[Degradation]]:
        """The rate served (with its age) and what is wrong with it, for /ready."""
        state = (
            self.rate_state()
            if self.rate_state is not None
            else RateState(
                mode=RateMode.FIXED, current=CopRate(rate=self.rate, source=self.rate_source)
            )
        )
        currency, problems = rate_readiness(state, now, self.currency)
        return currency, [Degradation(code, text, facts) for code, text, facts in problems]

    # -- operator reports: readiness.py, reports.py ---------------------------------------------

    async def readiness(self) -> dict[str, Any]:
        return await self.ready.readiness()

    async def readiness_details(self) -> tuple[dict[str, Any], list[Degradation]]:
        return await self.ready.readiness_details()

    async def status(self) -> ServiceStatus:
        return await self.reports.status()

    def sample_preference(self) -> list[str]:
        return self.reports.sample_preference()

    async def debug_sample(self, limit: int) -> DebugReport:
        return await self.reports.debug_sample(limit)
