"""The access log: errors and slow requests one by one, the rest summarized per route."""

from __future__ import annotations

import logging

import pytest

from pricing_service.access_log import AccessLog, AccessLogMode

MODELS = "/api/v1/pricing/models"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "pricing_service.http"]


def hit(log: AccessLog, status: int = 200, ms: float = 1.0, route: str = MODELS) -> None:
    log.record(
        method="GET", path=route, route=route, status=status, seconds=ms / 1000, tier="memory"
    )


def test_summary_logs_errors_and_slow_requests_and_one_line_per_route_a_minute(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="pricing_service.http")
    clock = Clock()
    log = AccessLog(AccessLogMode.SUMMARY, slow_ms=250, clock=clock)
    for _ in range(97):
        hit(log, ms=1.0)
    hit(log, status=304, ms=0.5)
    hit(log, ms=300)  # slow: logged now, and summarized
    hit(log, ms=300)
    hit(log, status=404)  # an error: logged now, not summarized
    slow = (
        f"http.request method=GET path={MODELS} status=200 duration_ms=300.0 tier=memory slow=True"
    )
    assert lines(caplog) == [
        slow,
        slow,
        f"http.request method=GET path={MODELS} status=404 duration_ms=1.0 tier=memory",
    ]
    clock.now += 60
    hit(log, route="/api/v1/pricing/prices")  # the window is over: this request flushes it
    summary = lines(caplog)[3:]
    assert len(summary) == 2
    models = next(line for line in summary if f"route={MODELS}" in line)
    assert "count=100 " in models
    assert "statuses=200:99,304:1 " in models
    assert "tiers=memory:100 " in models
    p50 = float(models.split("p50_ms=")[1].split()[0])
    p99 = float(models.split("p99_ms=")[1].split()[0])
    assert 1.0 <= p50 <= 1.25  # the bucket's upper edge: at most 25 % above
    assert 300 <= p99 <= 375


def test_all_logs_every_request_and_off_logs_none(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pricing_service.http")
    every = AccessLog(AccessLogMode.ALL, slow_ms=250)
    for _ in range(3):
        hit(every)
    every.flush()
    assert len(lines(caplog)) == 3
    caplog.clear()
    off = AccessLog(AccessLogMode.OFF, slow_ms=250)
    hit(off, status=500)
    off.flush()
    assert lines(caplog) == []
