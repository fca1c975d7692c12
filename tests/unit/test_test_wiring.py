"""The test wiring's own rules: under pytest-xdist each worker derives its resources from the
configured ones (tests/conftest.py), so parallel workers never share a database or a Redis index."""

from __future__ import annotations

import pytest

from tests.conftest import _worker_redis, _xdist_worker


@pytest.mark.parametrize(
    ("value", "expected"),
    [("gw0", ("gw0", 0)), ("gw11", ("gw11", 11)), ("", None), ("master", None), ("gwx", None)],
)
def test_the_worker_is_read_from_xdist(
    monkeypatch: pytest.MonkeyPatch, value: str, expected: tuple[str, int] | None
) -> None:
    monkeypatch.setenv("PYTEST_XDIST_WORKER", value)
    assert _xdist_worker() == expected


def test_no_worker_outside_xdist(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PYTEST_XDIST_WORKER", raising=False)
    assert _xdist_worker() is None


@pytest.mark.parametrize(
    ("url", "offset", "expected"),
    [
        ("redis://127.0.0.1:6379/5", 0, "redis://127.0.0.1:6379/5"),
        ("redis://127.0.0.1:6379/5", 2, "redis://127.0.0.1:6379/7"),
        ("redis://127.0.0.1:6379", 1, "redis://127.0.0.1:6379/1"),
        (
            "redis://:pw@host:6380/13?socket_timeout=2",
            1,
            "redis://:pw@host:6380/14?socket_timeout=2",
        ),
    ],
)
def test_each_worker_has_its_own_redis_index(url: str, offset: int, expected: str) -> None:
    assert _worker_redis(url, offset) == expected
