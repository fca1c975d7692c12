"""Log lines: logfmt or JSON events, library lines in the same format, no credential survives
the formatter, and no line is lost at exit or on SIGTERM."""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import pytest

from pricing_service.logs import (
    Event,
    JsonFormatter,
    LogfmtFormatter,
    configure_logging,
    event,
    flush_logs,
)

if TYPE_CHECKING:
    from collections.abc import Iterator

SECRET = "s3cr3t-T0ken"
PID = os.getpid()


def record(
    message: Any, created: float = 1777450440.0456, name: str = "pricing_service.x"
) -> logging.LogRecord:
    entry = logging.LogRecord(name, logging.INFO, "", 0, message, None, None)
    entry.created = created
    return entry


def formatted(message: Any, created: float = 1777450440.0456) -> str:
    return LogfmtFormatter().format(record(message, created))


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


def test_credentials_are_redacted_in_json_too() -> None:
    line = JsonFormatter().format(record(Event("x", {"header": f"Bearer {SECRET}"})))
    assert SECRET not in line
    assert json.loads(line)["header"] == "Bearer [redacted]"


def test_line_shape_and_timestamp() -> None:
    assert formatted(Event("refresh.completed", {"models": 533, "error": None})) == (
        f"ts=2026-04-29T08:14:00.045Z level=info pid={PID} logger=pricing_service.x "
        "event=refresh.completed models=533"
    )
    # A library's line (uvicorn, alembic) keeps its text under msg=, quoted, after an event.
    assert formatted("Started server process [12]") == (
        f"ts=2026-04-29T08:14:00.045Z level=info pid={PID} logger=pricing_service.x "
        'event=pricing_service.info msg="Started server process [12]"'
    )
    # The cached date part follows the clock across seconds.
    formatter = LogfmtFormatter()
    first = logging.LogRecord("x", logging.INFO, "", 0, "a", None, None)
    first.created = 1777450440.999
    second = logging.LogRecord("x", logging.INFO, "", 0, "b", None, None)
    second.created = 1777450441.001
    assert formatter.format(first).startswith("ts=2026-04-29T08:14:00.999Z")
    assert formatter.format(second).startswith("ts=2026-04-29T08:14:01.001Z")


@pytest.mark.parametrize(
    ("logger", "level", "text", "expected"),
    [
        # What uvicorn 0.x writes at startup, shutdown and around its workers.
        ("uvicorn.error", logging.INFO, "Started server process [12]", "uvicorn.process_started"),
        (
            "uvicorn.error",
            logging.INFO,
            "Waiting for application startup.",
            "uvicorn.startup_waiting",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Application startup complete.",
            "uvicorn.startup_complete",
        ),
        (
            "uvicorn.error",
            logging.ERROR,
            "Application startup failed. Exiting.",
            "uvicorn.startup_failed",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Uvicorn running on http://127.0.0.1:8080 (Press CTRL+C to quit)",
            "uvicorn.started",
        ),
        ("uvicorn.error", logging.INFO, "Shutting down", "uvicorn.stopping"),
        (
            "uvicorn.error",
            logging.INFO,
            "Waiting for connections to close. (CTRL+C to force quit)",
            "uvicorn.draining_connections",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Waiting for background tasks to complete. (CTRL+C to force quit)",
            "uvicorn.draining_tasks",
        ),
        (
            "uvicorn.error",
            logging.ERROR,
            "Cancel 3 running task(s), timeout graceful shutdown exceeded",
            "uvicorn.shutdown_timeout",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Waiting for application shutdown.",
            "uvicorn.shutdown_waiting",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Application shutdown complete.",
            "uvicorn.shutdown_complete",
        ),
        ("uvicorn.error", logging.INFO, "Finished server process [12]", "uvicorn.process_finished"),
        (
            "uvicorn.error",
            logging.INFO,
            "Started parent process [11]",
            "uvicorn.supervisor_started",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Stopping parent process [11]",
            "uvicorn.supervisor_stopped",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Waiting for child process [12]",
            "uvicorn.worker_stopping",
        ),
        (
            "uvicorn.error",
            logging.INFO,
            "Terminated child process [12]",
            "uvicorn.worker_terminated",
        ),
        ("uvicorn.error", logging.INFO, "Child process [12] died", "uvicorn.worker_died"),
        (
            "uvicorn.error",
            logging.ERROR,
            "Child process [12] failed to start, stopping the parent process.",
            "uvicorn.worker_failed",
        ),
        ("uvicorn.error", logging.INFO, "Received SIGTERM, exiting.", "uvicorn.signal"),
        # Anything else is <library>.<level>: still keyed, never a bare msg=.
        ("uvicorn.error", logging.ERROR, "Exception in ASGI application\n", "uvicorn.error"),
        ("uvicorn.error", logging.WARNING, "Invalid HTTP request received.", "uvicorn.warning"),
        ("alembic.runtime.migration", logging.INFO, "Running upgrade", "alembic.info"),
        ("root", logging.CRITICAL, "root says", "root.critical"),
    ],
)
def test_library_lines_get_an_event(logger: str, level: int, text: str, expected: str) -> None:
    entry = logging.LogRecord(logger, level, "", 0, text, None, None)
    line = LogfmtFormatter().format(entry)
    assert f" event={expected} msg=" in line
    assert json.loads(JsonFormatter().format(entry))["event"] == expected


def test_event_quotes_values_with_spaces(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO)
    event(logging.getLogger("pricing_service.t"), "x.y", a=1, b="two words", c=None)
    assert caplog.records[-1].getMessage() == 'x.y a=1 b="two words"'
    line = formatted(Event("x.y", {"b": 'say "hi"\nbye'}))
    assert line.endswith(r'event=x.y b="say \"hi\"\nbye"')
    assert "\n" not in line.replace(r"\n", "")  # one line per event


def test_json_line_keeps_types() -> None:
    fields = {"models": 533, "stale": False, "ms": 0.41, "rate": Decimal("4000.5"), "gone": None}
    data = json.loads(JsonFormatter().format(record(Event("refresh.completed", fields))))
    assert data == {
        "ts": "2026-04-29T08:14:00.045Z",
        "level": "info",
        "pid": PID,
        "logger": "pricing_service.x",
        "event": "refresh.completed",
        "models": 533,
        "stale": False,
        "ms": 0.41,
        "rate": "4000.5",
    }
    library = json.loads(JsonFormatter().format(record("Running upgrade  -> 0001")))
    assert library["msg"] == "Running upgrade  -> 0001"
    # Every line is keyed on an event, a library's too: <library>.<level> when it has no name.
    assert library["event"] == "pricing_service.info"


def test_exceptions_stay_on_one_line() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        entry = logging.LogRecord("x", logging.ERROR, "", 0, "failed", None, sys.exc_info())
    line = LogfmtFormatter().format(entry)
    assert "\n" not in line
    assert 'exc="Traceback' in line
    assert "ValueError: boom" in json.loads(JsonFormatter().format(entry))["exc"]


@pytest.fixture
def root_logging() -> Iterator[io.StringIO]:
    """configure_logging writing to a buffer; the loggers it touches are restored after."""
    names = ["", "uvicorn", "uvicorn.error", "uvicorn.access", "alembic", "httpx", "mcp"]
    loggers = [logging.getLogger(n) for n in names]
    saved = [(lg, list(lg.handlers), lg.level, lg.disabled) for lg in loggers]
    previous_sigterm = signal.getsignal(signal.SIGTERM)
    try:
        yield io.StringIO()
    finally:
        flush_logs()
        for logger, handlers, level, disabled in saved:
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.disabled = disabled
        signal.signal(signal.SIGTERM, previous_sigterm)


@pytest.mark.parametrize("log_format", ["logfmt", "json"])
def test_library_lines_share_the_format(root_logging: io.StringIO, log_format: str) -> None:
    # Left as a dictConfig or an earlier uvicorn.Config(log_level="warning") would leave it:
    uvicorn = logging.getLogger("uvicorn.error")
    uvicorn.addHandler(logging.StreamHandler(io.StringIO()))
    uvicorn.setLevel(logging.WARNING)
    uvicorn.disabled = True
    configure_logging("INFO", log_format, root_logging)
    uvicorn.info("Started server process [%d]", 12)
    uvicorn.info("Application startup complete.")
    logging.getLogger("alembic.runtime.migration").info("Context impl PostgresqlImpl.")  # quiet
    event(logging.getLogger("pricing_service.app"), "app.started", redis=False)
    flush_logs()
    lines = root_logging.getvalue().splitlines()
    assert len(lines) == 3, lines
    if log_format == "json":
        parsed = [json.loads(line) for line in lines]
        assert [p.get("msg") or p["event"] for p in parsed] == [
            "Started server process [12]",
            "Application startup complete.",
            "app.started",
        ]
        assert [p["event"] for p in parsed] == [
            "uvicorn.process_started",
            "uvicorn.startup_complete",
            "app.started",
        ]
        assert {p["pid"] for p in parsed} == {PID}
    else:
        assert lines[0].endswith(
            'logger=uvicorn.error event=uvicorn.process_started msg="Started server process [12]"'
        )
        assert lines[2].endswith("logger=pricing_service.app event=app.started redis=False")
        assert all(f" pid={PID} " in line for line in lines)


def test_unknown_format_is_refused() -> None:
    with pytest.raises(ValueError, match="xml"):
        configure_logging("INFO", "xml")


_WRITER = """
import logging, os, signal, sys, time
from pricing_service.logs import configure_logging, event
configure_logging("INFO", sys.argv[1])
log = logging.getLogger("pricing_service.t")
for i in range(2000):
    event(log, "t.line", i=i, padding="x" * 200)
if sys.argv[2] == "sigterm":
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(30)  # never reached: the signal ends the process once the queue is written
"""


@pytest.mark.parametrize("ending", ["exit", "sigterm"])
def test_queued_lines_are_written_before_the_process_ends(ending: str) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _WRITER, "logfmt", ending],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    lines = result.stderr.splitlines()
    assert len(lines) == 2000
    assert lines[-1].split(" logger=")[1].startswith("pricing_service.t event=t.line i=1999 ")
    assert result.returncode == (0 if ending == "exit" else -signal.SIGTERM)
