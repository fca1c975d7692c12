"""Log lines: key=value events, and no credential survives the formatter."""

from __future__ import annotations

import logging

import pytest

from pricing_service.logs import KeyValueFormatter, event

SECRET = "s3cr3t-T0ken"


def formatted(message: str, created: float = 1777450440.0456) -> str:
    record = logging.LogRecord("pricing_service.x", logging.INFO, "", 0, message, None, None)
    record.created = created
    return KeyValueFormatter().format(record)


@pytest.mark.parametrize(
    "message",
    [
        f"Authorization: Bearer {SECRET}",
        f"authorization=Bearer {SECRET}",
        f'authorization="Basic {SECRET}"',
        f"Authorization: {SECRET}",
        f"{{'authorization': 'Bearer {SECRET}'}}",
        f"sent bearer {SECRET} upstream",
        f"BEARER {SECRET}",
    ],
)
def test_credentials_are_redacted(message: str) -> None:
    line = formatted(message)
    assert SECRET not in line
    assert "[redacted]" in line


def test_line_shape_and_timestamp() -> None:
    assert formatted("refresh.completed models=533") == (
        "ts=2026-04-29T08:14:00.045Z level=info logger=pricing_service.x "
        "refresh.completed models=533"
    )
    # The cached date part follows the clock across seconds.
    formatter = KeyValueFormatter()
    first = logging.LogRecord("x", logging.INFO, "", 0, "a", None, None)
    first.created = 1777450440.999
    second = logging.LogRecord("x", logging.INFO, "", 0, "b", None, None)
    second.created = 1777450441.001
    assert formatter.format(first).startswith("ts=2026-04-29T08:14:00.999Z")
    assert formatter.format(second).startswith("ts=2026-04-29T08:14:01.001Z")


def test_event_quotes_values_with_spaces(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    event(logging.getLogger("pricing_service.t"), "x.y", a=1, b="two words", c=None)
    assert caplog.records[-1].getMessage() == 'x.y a=1 b="two words"'
