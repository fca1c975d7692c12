"""The access log: errors and slow requests one by one, the rest summarized per route each minute.

A line per request cost about a third of the selector's throughput (formatting, the queue, the
write), while what an operator reads from it is counts, statuses and latency per route. So, with
``PRICING_ACCESS_LOG=summary`` (the default), every response that is not 2xx/3xx and every
request slower than ``PRICING_SLOW_REQUEST_MS`` is logged as before (``http.request``), and the
successful ones are summarized in one ``http.summary`` line per route and minute: count, statuses,
p50/p99 and cache tiers. ``all`` logs every request; ``off`` logs none. Prometheus metrics are
counted per request either way (metrics.py), so they stay exact.

Percentiles come from a histogram with buckets 25 % apart (0.01 ms to about 2 minutes), so a
reported p50/p99 is the upper edge of its bucket: at most 25 % above the true value. A fixed
histogram keeps the per-request cost to a bisect and three increments, whatever the traffic.
"""

from __future__ import annotations

import logging
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

import anyio

from pricing_service.logs import event

if TYPE_CHECKING:
    from collections.abc import Callable

log = logging.getLogger("pricing_service.http")

SUMMARY_SECONDS = 60.0
# Upper edges in milliseconds: 0.01 ms x 1.25^k, about 110 s at the last one.
_EDGES_MS: tuple[float, ...] = tuple(0.01 * 1.25**k for k in range(73))


class AccessLogMode(StrEnum):
    SUMMARY = "summary"
    ALL = "all"
    OFF = "off"


@dataclass(slots=True)
class _Route:
    count: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    tiers: Counter[str] = field(default_factory=Counter)
    buckets: list[int] = field(default_factory=lambda: [0] * (len(_EDGES_MS) + 1))

    def percentile(self, share: float) -> float:
        rank = share * self.count
        seen = 0
        for index, n in enumerate(self.buckets):
            seen += n
            if seen >= rank and n:
                return _EDGES_MS[index] if index < len(_EDGES_MS) else float("inf")
        return 0.0


class AccessLog:
    def __init__(
        self,
        mode: AccessLogMode,
        *,
        slow_ms: float,
        interval_seconds: float = SUMMARY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.mode = mode
        self.slow_ms = slow_ms
        self.interval_seconds = interval_seconds
        self.clock = clock
        self._routes: dict[str, _Route] = {}
        self._window_start = clock()

    def record(
        self,
        *,
        method: str,
        path: str,
        route: str,
        status: int,
        seconds: float,
        tier: str | None,
        request_id: str | None = None,
    ) -> None:
        if self.mode is AccessLogMode.OFF:
            return
        ms = seconds * 1000
        ok = 200 <= status < 400
        if self.mode is AccessLogMode.ALL or not ok or ms >= self.slow_ms:
            # Path only: a query string is the client's business, and headers never reach logs.
            event(
                log,
                "http.request",
                logging.INFO if ok else logging.WARNING,
                method=method,
                path=path,
                status=status,
                duration_ms=round(ms, 2),
                request_id=request_id,
                tier=tier,
                slow=True if ok and ms >= self.slow_ms else None,
            )
        if self.mode is not AccessLogMode.SUMMARY or not ok:
            return
        summary = self._routes.get(route)
        if summary is None:
            summary = self._routes[route] = _Route()
        summary.count += 1
        summary.statuses[status] += 1
        if tier is not None:
            summary.tiers[tier] += 1
        summary.buckets[bisect_left(_EDGES_MS, ms)] += 1
        if self.clock() - self._window_start >= self.interval_seconds:
            self.flush()

    async def every_window(self) -> None:
        """Flush once a window even when no request arrives to do it (the lifespan's task)."""
        while True:
            await anyio.sleep(self.interval_seconds)
            if self.clock() - self._window_start >= self.interval_seconds:
                self.flush()

    def flush(self) -> None:
        """One ``http.summary`` line per route seen since the last flush; then a new window."""
        now = self.clock()
        window = round(now - self._window_start, 1)
        self._window_start = now
        routes, self._routes = self._routes, {}
        for route in sorted(routes):
            summary = routes[route]
            event(
                log,
                "http.summary",
                route=route,
                count=summary.count,
                statuses=",".join(f"{s}:{n}" for s, n in sorted(summary.statuses.items())),
                p50_ms=_ms(summary.percentile(0.5)),
                p99_ms=_ms(summary.percentile(0.99)),
                tiers=",".join(f"{t}:{n}" for t, n in sorted(summary.tiers.items())) or None,
                window_s=window,
            )


def _ms(value: float) -> float | str:
    return ">110000" if value == float("inf") else round(value, 3)
