"""The read path: which view, which bytes, which ETag.

Per request this is a lookup: the current snapshot id (re-checked every few seconds), then the
rendered bytes of the asked view from memory. Views are rendered once per snapshot (identity and
gzip, each with its own strong ETag); the body holds no age, so the bytes and the ETag change only
when the data does (a new snapshot, or the snapshot turning stale at the TTL). The age goes in
the ``Age`` header. Data comes from memory, then Redis, then the database; when both are down the
last known snapshot keeps being served.
"""

from __future__ import annotations

import asyncio
import gc
import gzip
import hashlib
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.to_thread
import msgspec
from cachetools import LRUCache

from pricing_service.curation import SelectorDataset
from pricing_service.domain import (
    ChangeKind,
    HoldReason,
    PriceStatus,
    RunStatus,
    SnapshotSource,
)
from pricing_service.errors import (
    InvalidRequest,
    NoDataYet,
    NotFound,
    PricingError,
    StorageUnavailable,
)
from pricing_service.feed import decode_cursor, feed_body
from pricing_service.logs import event
from pricing_service.model_kinds import is_local_id
from pricing_service.space import local_space

if TYPE_CHECKING:
    from decimal import Decimal

    from pricing_service.cache import SnapshotCache
    from pricing_service.domain import (
        Catalog,
        CrossSourceReport,
        HeldPrice,
        ModelPrice,
        PriceChange,
        RunSummary,
        SnapshotInfo,
    )
    from pricing_service.repository import DebugSample, Repository

log = logging.getLogger("pricing_service.service")

T = TypeVar("T")

VIEWS = ("curated", "all")
MAX_IDS = 100
MAX_IDS_LENGTH = 4000
MAX_DEBUG_SAMPLE = 20
MAX_RUNS = 100
MAX_HELD_REASONS = 20  # /ready lists this many held prices, then a count
CHANGE_KINDS = tuple(kind.value for kind in ChangeKind)
_VIEW_PARAMS = frozenset({"view", "category", "local"})
POINTER_CHECK_SECONDS = 2.0
# How long a request, a probe or the pointer check waits for the database before it answers
# without it (503, or the cached snapshot): a probe or a scrape gets an answer, never its own
# timeout. The worker thread left waiting is freed later by the engine's own bounds
# (repository.py: ping, connect, statement, db_watchdog). A healthy query takes milliseconds.
DATABASE_WAIT_SECONDS = 3.0
# A whole snapshot (thousands of rows) is a big read: it gets longer. It follows a pointer read
# that just succeeded, so the database answers; this bounds a stall that starts in between.
SNAPSHOT_LOAD_SECONDS = 20.0
# Worker threads for database reads: the pool's connections (pool_size + max_overflow). Threads
# left waiting on a stalled database then never take the ones that render the selector's views.
DATABASE_THREADS = 10
MAX_AGE_SECONDS = 60
# Replies kept for reuse (each valid for one second of Age): a few per view and second.
MAX_REPLIES = 256
MAX_PUBLIC_ERROR = 300
CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=86400, stale-if-error=86400"
# A cache counts a response's freshness from its Age header: with max-age=60 and the snapshot's
# age in Age, every answer would arrive already stale. max-age is therefore age + 60: fresh for
# one more minute from now, as before the age moved out of the body.
CACHE_CONTROL_AGED = "public, max-age={max_age}, stale-while-revalidate=86400, stale-if-error=86400"
MAX_TOKENS = 100_000_000
MAX_MODEL_ID_LENGTH = 200
MAX_UNKNOWN_IDS = 200
UNKNOWN_OTHER = "(other)"

_encoder = msgspec.json.Encoder(decimal_format="number")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True, slots=True)
class Degradation:
    """One thing /ready reports as degraded: a code and its facts, and its English line.

    GET /ready sends ``text``; the console words each ``code`` in Spanish from ``facts``
    (console/format.py), so no English line reaches its pages.
    """

    code: str  # "redis_unreachable", "stale", "not_live", "run_held", "price_held", ...
    text: str
    facts: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Rendered:
    body: bytes
    gzip: bytes | None
    etag: str

    @property
    def gzip_etag(self) -> str:
        """The gzip bytes' own strong ETag: another representation, another tag."""
        return self.etag[:-1] + '-gz"'


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]
    tier: str
    # The headers as they go on the wire, Content-Type and Content-Length included (not on a
    # 304): encoded once per reply, which PricingService keeps for the second it is valid.
    raw_headers: tuple[tuple[bytes, bytes], ...] = ()

    @classmethod
    def of(cls, status: int, body: bytes, headers: dict[str, str], tier: str) -> Reply:
        raw = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()]
        if status != 304:
            raw += [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
        return cls(status, body, headers, tier, tuple(raw))


def render(payload: dict[str, Any], *, compress: bool) -> Rendered:
    body = _encoder.encode(payload)
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    packed = gzip.compress(body, compresslevel=6, mtime=0) if compress else None
    return Rendered(body=body, gzip=packed, etag=etag)


def parse_local(value: str | None) -> bool | None:
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise InvalidRequest(f"local must be true or false, not {value!r}")


def parse_ids(value: str | None) -> list[str] | None:
    if value is None:
        return None
    if len(value) > MAX_IDS_LENGTH:
        raise InvalidRequest(f"ids is too long: at most {MAX_IDS_LENGTH} characters")
    ids = [part.strip() for part in value.split(",") if part.strip()]
    if not ids:
        raise InvalidRequest("ids is empty: give one or more comma-separated model ids")
    if len(ids) > MAX_IDS:
        raise InvalidRequest(f"too many ids: at most {MAX_IDS}, got {len(ids)}")
    return ids


def accepts_gzip(accept_encoding: bytes | str | None) -> bool:
    """Whether an Accept-Encoding header accepts gzip: listed (or ``*``) with a q-value above 0.

    ``gzip;q=0`` refuses it; an explicit ``gzip`` entry wins over ``*``; a malformed q-value
    counts as 0 (when in doubt, identity, which every client reads).
    """
    if not accept_encoding:
        return False
    text = (
        accept_encoding.decode("latin-1") if isinstance(accept_encoding, bytes) else accept_encoding
    )
    gzip_q: float | None = None
    star_q: float | None = None
    for part in text.split(","):
        coding, *params = (p.strip() for p in part.split(";"))
        q = 1.0
        for param in params:
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
                if not 0.0 <= q <= 1.0:
                    q = 0.0
        coding = coding.lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


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


class UnknownIds:
    """Ids clients asked for that nothing resolves, with counts; bounded.

    At most ``max_ids`` distinct ids are kept (each cut to MAX_MODEL_ID_LENGTH characters);
    once full, further new ids are counted together under UNKNOWN_OTHER. Per process: with
    several workers each keeps its own, and the metric adds them up.
    """

    def __init__(self, max_ids: int = MAX_UNKNOWN_IDS) -> None:
        self.max_ids = max_ids
        self._counts: dict[str, int] = {}
        self.other = 0

    def add(self, model_id: str) -> str:
        """Count one ask; returns the name it was counted under (the id, or UNKNOWN_OTHER)."""
        key = model_id.strip()[:MAX_MODEL_ID_LENGTH]
        if key in self._counts:
            self._counts[key] += 1
            return key
        if len(self._counts) < self.max_ids:
            self._counts[key] = 1
            return key
        self.other += 1
        return UNKNOWN_OTHER

    def snapshot(self) -> dict[str, int]:
        """Counts, most asked first (then by id); the overflow last under UNKNOWN_OTHER."""
        ordered = dict(sorted(self._counts.items(), key=lambda kv: (-kv[1], kv[0])))
        if self.other:
            ordered[UNKNOWN_OTHER] = self.other
        return ordered


def public_error(text: str | None) -> str:
    """A run's error as /ready may show it: one line, and nothing from a SQL statement on (runs
    recorded before errors were sanitized carry the statement and its parameters)."""
    line = (text or "").split("\n", 1)[0]
    for marker in ("[SQL:", "[parameters:", "(Background on this error"):
        line = line.split(marker, 1)[0]
    line = line.strip()
    return line if len(line) <= MAX_PUBLIC_ERROR else line[: MAX_PUBLIC_ERROR - 1] + "…"


def etag_matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    if if_none_match == etag:  # what a browser or the selector sends back: no parsing
        return True
    if if_none_match.strip() == "*":
        return True
    candidates = {c.strip().removeprefix("W/") for c in if_none_match.split(",")}
    return etag in candidates


class PricingService:
    def __init__(
        self,
        *,
        repository: Repository,
        cache: SnapshotCache,
        catalog: Catalog,
        rate: Decimal,
        rate_source: str,
        ttl_seconds: int,
    ) -> None:
        self.repository = repository
        self.cache = cache
        self.catalog = catalog
        self.rate = rate
        self.rate_source = rate_source
        self.ttl_seconds = ttl_seconds
        self._current: int | None = None
        self._checked_at = float("-inf")
        self._checking = False
        self._first_load = asyncio.Lock()
        self._load_tier = "memory"
        self._tasks: set[asyncio.Task[None]] = set()
        self._database_threads = anyio.CapacityLimiter(DATABASE_THREADS)
        # Set while the last pointer check got no answer from the database in time.
        self._database_error: str | None = None
        self._datasets: LRUCache[int, SelectorDataset] = LRUCache(maxsize=2)
        self._loaded: LRUCache[int, tuple[SnapshotInfo, list[ModelPrice]]] = LRUCache(maxsize=2)
        self._rendered: LRUCache[tuple[Any, ...], Rendered] = LRUCache(maxsize=256)
        self._local: Rendered | None = None
        self._replies: dict[tuple[str, str, int | None, bool], Reply] = {}
        # Freeze the heap after each switch (``_settle_heap``): set by serving workers only.
        self.settle_heap = False
        self.unknown_ids = UnknownIds()
        # Called with (counted name, endpoint) for each unknown id asked: the metrics hook.
        self.unknown_id_observers: list[Callable[[str, str], None]] = []

    async def read(
        self, fn: Callable[..., T], *args: Any, seconds: float = DATABASE_WAIT_SECONDS
    ) -> T:
        """``fn(*args)`` (repository reads) in a worker thread, waited for at most ``seconds``;
        then StorageUnavailable (a 503 with Retry-After), the thread left to finish or fail on
        its own (no result is used after it was given up on)."""
        with anyio.move_on_after(seconds) as scope:
            return await anyio.to_thread.run_sync(
                fn, *args, abandon_on_cancel=True, limiter=self._database_threads
            )
        assert scope.cancelled_caught
        raise StorageUnavailable(
            f"database unavailable (no answer within {seconds:g} s); try again shortly"
        )

    # -- which snapshot -----------------------------------------------------------------------
    #
    # The database decides which snapshot is current; Redis and memory are caches of it. A
    # worker switches only forward (never to a snapshot older than one it served), and only
    # after the new snapshot's dataset is built, so no request waits for a build. A Redis
    # pointer that lags the database is repaired (a publish that could not reach Redis is
    # retried here); with the database unreachable, a newer Redis pointer is followed.

    async def _snapshot_id(self) -> int:
        if self._current is not None:
            if not self._checking and time.monotonic() - self._checked_at >= POINTER_CHECK_SECONDS:
                # Revalidate in the background: a slow Redis or database never delays a request.
                self._checking = True
                task = asyncio.get_running_loop().create_task(self._check_pointer())
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
            return self._current
        async with self._first_load:  # one cold load per worker, however many requests wait
            if self._current is None:
                self._checking = True
                await self._check_pointer()
        if self._current is None:
            raise NoDataYet("no prices yet: the first refresh has not finished")
        return self._current

    async def warm(self) -> None:
        """Load and render the current snapshot now (the lifespan, before serving traffic)."""
        self._checking = True
        await self._check_pointer()

    async def watch(self) -> None:
        """Re-check the current snapshot every few seconds, traffic or not (the lifespan's task):
        a new snapshot is built before any request asks for it, and a lagging Redis pointer is
        repaired even on an idle worker."""
        while True:
            await anyio.sleep(POINTER_CHECK_SECONDS)
            if not self._checking:
                self._checking = True
                try:
                    await self._check_pointer()
                except Exception as exc:  # the watcher must outlive any one bad check
                    event(log, "service.check_failed", logging.WARNING, error=type(exc).__name__)

    async def _check_pointer(self) -> None:
        try:
            database_id: int | None = None
            try:
                database_id = await self.read(self.repository.current_snapshot_id)
            except Exception as exc:  # database down: Redis, then memory, keep serving
                # Given up on (read's bound): asking again now would wait as long again.
                self._database_error = (
                    f"no answer within {DATABASE_WAIT_SECONDS:g} s"
                    if isinstance(exc, StorageUnavailable)
                    else None
                )
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
            else:
                self._database_error = None
            redis_id = await self.cache.pointer()
            target = database_id if database_id is not None else redis_id
            newer = target is not None and (self._current is None or target > self._current)
            if newer and target is not None and await self._load(target):
                if self._current is not None:
                    event(log, "service.switched", previous=self._current, snapshot_id=target)
                self._current = target
                if self.settle_heap:
                    self._settle_heap()
            if (
                database_id is not None
                and database_id == self._current
                and (redis_id is None or redis_id < database_id)
            ):
                await self._share(database_id)
        finally:
            self._checking = False
            self._checked_at = time.monotonic()

    def _settle_heap(self) -> None:
        """Collect, then freeze what lives now (modules, the app, the new dataset) out of the
        cycle collector's reach. Its full passes walked ~200,000 objects in 90-120 ms each, with
        requests waiting (make bench, p99); after a freeze they walk only what is newer. The
        collect first means no cyclic garbage is frozen; after the first freeze it walks only
        the objects made since. Objects freed by reference counting (an older dataset, once
        evicted) are freed as before. Serving workers only (``create_app_from_env``): in a
        process that builds many apps, such as the test suite, frozen cycles would pile up."""
        started = time.perf_counter()
        collected = gc.collect()
        gc.freeze()
        event(
            log,
            "service.heap_settled",
            collected=collected,
            frozen=gc.get_freeze_count(),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )

    async def _load(self, snapshot_id: int) -> bool:
        """Build the dataset of ``snapshot_id`` (from Redis, else the database) into memory."""
        if snapshot_id in self._datasets:
            return True
        loaded = await self.cache.snapshot(snapshot_id)
        tier = "redis"
        if loaded is None:
            try:
                loaded = await self.read(
                    self.repository.current_snapshot, seconds=SNAPSHOT_LOAD_SECONDS
                )
            except Exception as exc:
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
                return False
            tier = "database"
            if loaded is None or loaded[0].id < snapshot_id:
                return False
        info, prices = loaded
        # CPU work (tens of ms, seconds for a huge catalogue): off the event loop.
        self._datasets[info.id] = await anyio.to_thread.run_sync(self._build, info, prices)
        self._loaded[info.id] = loaded
        self._load_tier = tier
        if tier == "database":
            await self.cache.store(info, prices, make_current=True)
        return info.id >= snapshot_id

    async def _share(self, snapshot_id: int) -> None:
        """Put this worker's copy of ``snapshot_id`` in Redis when Redis lacks or lags it."""
        loaded = self._loaded.get(snapshot_id)
        if loaded is not None and self.cache.available:
            await self.cache.store(loaded[0], loaded[1], make_current=True)
            event(log, "service.pointer_repaired", snapshot_id=snapshot_id)

    async def dataset(self) -> tuple[SelectorDataset, str]:
        """The dataset of the current snapshot, and the tier it came from."""
        cold = self._current is None  # this request waits for the first load of this worker
        snapshot_id = await self._snapshot_id()
        found = self._datasets.get(snapshot_id)
        if found is not None:
            return found, self._load_tier if cold else "memory"
        # Evicted (never in practice: the LRU keeps two); serve the newest one we have.
        fallback = self._newest_dataset()
        if fallback is None:
            raise NoDataYet("no prices available: database and cache unreachable")
        return fallback, "memory"

    def _newest_dataset(self) -> SelectorDataset | None:
        if not self._datasets:
            return None
        return self._datasets[max(self._datasets.keys())]

    def _build(self, info: SnapshotInfo, prices: list[ModelPrice]) -> SelectorDataset:
        started = time.perf_counter()
        dataset = SelectorDataset(
            snapshot=info,
            prices=prices,
            catalog=self.catalog,
            rate=self.rate,
            rate_source=self.rate_source,
        )
        event(
            log,
            "service.dataset_built",
            snapshot_id=info.id,
            models=len(prices),
            duration_ms=round((time.perf_counter() - started) * 1000, 1),
        )
        return dataset

    async def publish(self, info: SnapshotInfo) -> None:
        """After this process stored a snapshot: build it, share it, switch to it."""
        self._checking = True
        await self._check_pointer()

    # -- the selector ---------------------------------------------------------------------------

    def cached_reply(
        self,
        route: str,
        params: dict[str, str],
        *,
        accept_gzip: bool,
        if_none_match: str | None,
    ) -> Reply | None:
        """The answer of a selector GET from memory alone, or None when it needs more work.

        The hot path: no await, no parsing beyond the key. Anything it cannot answer from bytes
        rendered earlier (a cold worker, a first render, an ``ids=`` lookup, a bad parameter)
        returns None and takes the full route, which validates, renders and caches.
        """
        current = self._current
        if current is None:
            return None
        dataset = self._datasets.get(current)
        if dataset is None:
            return None
        # is_stale and _age, computed once: this runs for every request.
        elapsed = (utcnow() - dataset.snapshot.fetched_at).total_seconds()
        stale = elapsed > self.ttl_seconds
        if route == "prices":
            if params:
                return None
            key: tuple[Any, ...] = (current, stale, "prices")
        else:
            if "ids" in params or not params.keys() <= _VIEW_PARAMS:
                return None
            try:
                local_flag = parse_local(params.get("local"))
            except InvalidRequest:
                return None
            key = (
                current,
                stale,
                params.get("view", "curated"),
                params.get("category"),
                local_flag,
            )
        found = self._rendered.get(key)
        if found is None:
            return None
        return self._reply(
            found,
            tier="memory",
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=max(0, int(elapsed)),
        )

    async def models(
        self,
        *,
        view: str,
        category: str | None,
        local: str | None,
        ids: str | None,
        accept_gzip: bool,
        if_none_match: str | None,
    ) -> Reply:
        if view not in VIEWS:
            raise InvalidRequest(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
        local_flag = parse_local(local)
        id_list = parse_ids(ids)
        dataset, tier = await self.dataset()
        if category is not None and category not in dataset.category_ids:
            valid = ", ".join(sorted(dataset.category_ids))
            raise InvalidRequest(f"unknown category {category!r}; valid: {valid}")
        now = utcnow()
        stale = dataset.is_stale(now=now, ttl_seconds=self.ttl_seconds)
        if id_list is not None:
            self._count_unknown(dataset, id_list, "ids")
            rendered = render(
                dataset.lookup(id_list, now=now, ttl_seconds=self.ttl_seconds),
                compress=accept_gzip,
            )
        else:
            key = (dataset.snapshot.id, stale, view, category, local_flag)
            found = self._rendered.get(key)
            if found is None:
                # A miss (once per snapshot, view and minute) encodes and gzips: off the loop.
                found = await anyio.to_thread.run_sync(
                    lambda: render(
                        dataset.render(
                            view=view,
                            category=category,
                            local=local_flag,
                            now=now,
                            ttl_seconds=self.ttl_seconds,
                        ),
                        compress=True,
                    )
                )
                self._rendered[key] = found
            rendered = found
        return self._reply(
            rendered,
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    @staticmethod
    def _age(dataset: SelectorDataset, now: datetime) -> int:
        return max(0, int((now - dataset.snapshot.fetched_at).total_seconds()))

    def _reply(
        self,
        rendered: Rendered,
        *,
        tier: str,
        accept_gzip: bool,
        if_none_match: str | None,
        age: int | None,
    ) -> Reply:
        """200 with the representation asked for (gzip or identity, each with its ETag) or 304.

        The same few replies are asked thousands of times a second; each is built once per
        second (its Age and max-age change with the second) and then looked up.
        """
        gzipped = accept_gzip and rendered.gzip is not None
        etag = rendered.gzip_etag if gzipped else rendered.etag
        not_modified = etag_matches(if_none_match, etag)
        key = (etag, tier, age, not_modified)  # the ETag names the bytes and their encoding
        found = self._replies.get(key)
        if found is not None:
            return found
        headers = {
            "etag": etag,
            "cache-control": CACHE_CONTROL
            if age is None
            else CACHE_CONTROL_AGED.format(max_age=age + MAX_AGE_SECONDS),
            "vary": "Accept-Encoding",
            "x-cache-tier": tier,
        }
        if age is not None:
            headers["age"] = str(age)
        if not_modified:
            reply = Reply.of(304, b"", headers, tier)
        elif gzipped:
            assert rendered.gzip is not None
            headers["content-encoding"] = "gzip"
            reply = Reply.of(200, rendered.gzip, headers, tier)
        else:
            reply = Reply.of(200, rendered.body, headers, tier)
        if len(self._replies) >= MAX_REPLIES:
            self._replies.clear()  # yesterday's seconds: dropped wholesale, rebuilt on demand
        self._replies[key] = reply
        return reply

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
        return await self.read(
            lambda: self.repository.changes(since, limit, model_id=model_id, kind=chosen)
        )

    async def change_feed(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: str | None = None,
        cursor: str | None = None,
        if_none_match: str | None = None,
    ) -> Reply:
        """GET /changes (feed.py): the page as JSON with a strong ETag, or 304."""
        if kind is not None and kind not in CHANGE_KINDS:
            raise InvalidRequest(f"kind must be one of {', '.join(CHANGE_KINDS)}, not {kind!r}")
        chosen = ChangeKind(kind) if kind is not None else None
        after = decode_cursor(cursor) if cursor is not None else None
        changes, position = await self.read(
            lambda: self.repository.change_page(
                since, limit, model_id=model_id, kind=chosen, after=after
            )
        )
        order = "newest_first" if after is None else "oldest_first"
        rendered = render(feed_body(changes, self.rate, position, order), compress=False)
        headers = {"etag": rendered.etag, "cache-control": "no-cache", "x-cache-tier": "database"}
        if etag_matches(if_none_match, rendered.etag):
            return Reply.of(304, b"", headers, "database")
        return Reply.of(200, rendered.body, headers, "database")

    async def runs(self, limit: int) -> list[RunSummary]:
        if not 1 <= limit <= MAX_RUNS:
            raise InvalidRequest(f"limit must be between 1 and {MAX_RUNS}, not {limit}")
        return await self.read(self.repository.recent_runs, limit)

    async def run(self, run_id: int) -> RunSummary:
        found = await self.read(self.repository.get_run, run_id)
        if found is None:
            raise NotFound(f"run {run_id} does not exist")
        return found

    def _count_unknown(self, dataset: SelectorDataset, ids: list[str], endpoint: str) -> None:
        for model_id in dict.fromkeys(ids):
            if dataset.is_unresolved(model_id):
                counted = self.unknown_ids.add(model_id)
                for observer in self.unknown_id_observers:
                    observer(counted, endpoint)

    # -- the price map, the Space picker, the estimate -----------------------------------------

    async def prices(self, *, accept_gzip: bool, if_none_match: str | None) -> Reply:
        """Every spelling of every model -> its price: rendered once per snapshot, like views."""
        dataset, tier = await self.dataset()
        now = utcnow()
        stale = dataset.is_stale(now=now, ttl_seconds=self.ttl_seconds)
        key = (dataset.snapshot.id, stale, "prices")
        found = self._rendered.get(key)
        if found is None:
            found = await anyio.to_thread.run_sync(
                lambda: render(
                    dataset.price_map(now=now, ttl_seconds=self.ttl_seconds), compress=True
                )
            )
            self._rendered[key] = found
        return self._reply(
            found,
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    def local(self, *, accept_gzip: bool, if_none_match: str | None) -> Reply:
        """The Ollama Space picker: catalog data only (no snapshot), rendered once."""
        if self._local is None:
            currency = SelectorDataset.currency_for(self.rate, self.rate_source)
            self._local = render(
                local_space(self.catalog, rate=self.rate, currency=currency), compress=True
            )
        return self._reply(
            self._local,
            tier="catalog",
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=None,
        )

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
        return self._reply(
            render(body, compress=False),
            tier=tier,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
            age=self._age(dataset, now),
        )

    # -- readiness ------------------------------------------------------------------------------

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
                    "redis_unreachable", "redis unreachable: serving from memory and the database"
                )
            )
        try:
            dataset, tier = await self.dataset()
        except NoDataYet as exc:
            reason = exc.detail
            # The check that just failed to load a snapshot says whether the database answered
            # in time: when it did not, asking again would make the probe wait twice as long.
            unreachable = self._database_error
            if unreachable is None:
                try:
                    if await self.read(self.repository.schema_revision) is None:
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
                Degradation("stale", f"snapshot stale: fetched {age} s ago", {"age_seconds": age})
            )
        if snapshot.source != SnapshotSource.PRICEPERTOKEN:
            degraded.append(
                Degradation(
                    "not_live",
                    f"serving the {snapshot.source} snapshot, not live prices",
                    {"source": str(snapshot.source)},
                )
            )
        try:
            last = await self.read(self.repository.last_run)
        except Exception:
            degraded.append(
                Degradation(
                    "database_unreachable", "database unreachable: serving the cached snapshot"
                )
            )
        else:
            if last is not None and last.status is RunStatus.FAILED:
                error = public_error(last.error)
                degraded.append(
                    Degradation(
                        "last_refresh_failed",
                        f"last refresh failed: {error}",
                        {"run_id": last.id, "error": error},
                    )
                )
            try:
                degraded.extend(await self.read(self._held_reasons, dataset))
            except Exception as exc:
                event(log, "service.database_error", logging.WARNING, error=type(exc).__name__)
        return report(
            {
                "ready": True,
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
                "run_held",
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
                    "price_held_curated",
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
                    "price_held",
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
                    "more_held", f"and {more} more held prices (GET /runs)", {"count": more}
                )
            )
        return reasons

    # -- operations: /metrics and the debug sample ---------------------------------------------

    async def status(self) -> ServiceStatus:
        """What /metrics reports: the served snapshot, its counts and the last runs."""
        snapshot = None
        statuses: dict[str, int] = {}
        categories: dict[str, int] = {}
        try:
            dataset, _ = await self.dataset()
        except Exception as exc:  # nothing to serve yet, or storage down: report what is known
            event(log, "service.status_without_data", logging.DEBUG, error=type(exc).__name__)
        else:
            snapshot = dataset.snapshot
            statuses = dataset.price_status_counts()
            categories = dataset.category_counts()
        held_prices: dict[str, int] | None = None
        held_runs: int | None = None
        try:
            # One wait for all of it: a scrape with the database stalled waits once, not 4 times.
            last_run, last_success, held, pending, cross = await self.read(self._status_reads)
            held_runs = len(pending)
            held_prices = dict(Counter(h.reason.value for h in held))
        except Exception:
            last_run = last_success = cross = None
        return ServiceStatus(
            snapshot, statuses, categories, last_run, last_success, held_prices, held_runs, cross
        )

    def _status_reads(
        self,
    ) -> tuple[
        RunSummary | None,
        RunSummary | None,
        list[HeldPrice],
        list[RunSummary],
        CrossSourceReport | None,
    ]:
        return (
            self.repository.last_run(),
            self.repository.last_run(RunStatus.SUCCEEDED),
            self.repository.open_held_prices(),
            self.repository.pending_held_runs(),
            self._last_cross_source(),
        )

    def sample_preference(self) -> list[str]:
        """Curated ids first (as the upstream names them), so a sample shows models in use."""
        preferred: dict[str, None] = {}
        for category in self.catalog.categories:
            for model_id in category.model_ids:
                if not is_local_id(model_id):
                    preferred.setdefault(self.catalog.aliases.get(model_id, model_id), None)
        return list(preferred)

    async def debug_sample(self, limit: int) -> DebugReport:
        """The last run, and ``limit`` raw upstream rows next to their current normalized row."""
        if not 1 <= limit <= MAX_DEBUG_SAMPLE:
            raise InvalidRequest(f"limit must be between 1 and {MAX_DEBUG_SAMPLE}, not {limit}")
        # Copied here, on the event loop that updates the counts, not in the worker thread.
        asked = self.unknown_ids.snapshot()
        return await self.read(self._debug_sample, limit, asked)

    def _debug_sample(self, limit: int, asked: dict[str, int]) -> DebugReport:
        last_run = self.repository.last_run()
        sample = self.repository.debug_sample(limit, prefer=self.sample_preference())
        current = self.repository.current_snapshot()
        prices = current[1] if current is not None else []
        by_id = {p.model_id: p for p in prices}
        chosen = list(sample.raw) if sample is not None else []
        return DebugReport(
            held_prices=self.repository.open_held_prices(),
            last_run=last_run,
            sample=sample,
            current=current[0] if current is not None else None,
            normalized={m: by_id.get(m) for m in chosen},
            models=len(prices),
            null_input=sum(1 for p in prices if p.input_usd_per_million is None),
            null_output=sum(1 for p in prices if p.output_usd_per_million is None),
            unknown=sum(1 for p in prices if p.price_status is PriceStatus.UNKNOWN),
            unknown_ids_asked=asked,
            cross_source=self._last_cross_source(),
        )

    def _last_cross_source(self) -> CrossSourceReport | None:
        for run in self.repository.recent_runs(20):
            if run.cross_source is not None:
                return run.cross_source
        return None


@dataclass(frozen=True, slots=True)
class ServiceStatus:
    snapshot: SnapshotInfo | None
    price_status_counts: dict[str, int]
    category_counts: dict[str, int]
    last_run: RunSummary | None
    last_success: RunSummary | None
    held_prices: dict[str, int] | None = None  # open held prices by reason (None: unknown)
    held_runs: int | None = None
    cross_source: CrossSourceReport | None = None  # of the last run compared


@dataclass(frozen=True, slots=True)
class DebugReport:
    held_prices: list[HeldPrice]
    last_run: RunSummary | None
    sample: DebugSample | None  # raw rows of the newest snapshot that kept them
    current: SnapshotInfo | None  # the snapshot whose prices are current
    normalized: dict[str, ModelPrice | None]  # sampled model id -> its current price row
    models: int
    null_input: int
    null_output: int
    unknown: int  # models with either price null
    # ids asked through ids= or the estimate that nothing resolves (this worker), with counts
    unknown_ids_asked: dict[str, int] = field(default_factory=dict)
    cross_source: CrossSourceReport | None = None  # of the last run compared
