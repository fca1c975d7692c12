"""Structured key=value log lines with dotted event names; tokens never reach a line."""

from __future__ import annotations

import atexit
import logging
import logging.handlers
import queue
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Anything that looks like a bearer credential is masked, whatever logged it.
# "Authorization: Bearer x" must lose x, not the word Bearer: the scheme belongs to the prefix.
_SECRET = re.compile(
    r"(?i)(bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"([^\s\"',]+)"
)


def _value(value: Any) -> str:
    text = str(value)
    if text == "" or any(c in text for c in ' ="'):
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return text


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event: ``refresh.completed models=533 duration_ms=840``."""
    if not logger.isEnabledFor(level):
        return
    parts = [name, *(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)]
    logger.log(level, " ".join(parts))


class KeyValueFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__()
        # A line is written per request: the date part is formatted once per second, not per line.
        self._second = -1
        self._date = ""

    def format(self, record: logging.LogRecord) -> str:
        # Whole microseconds first, as datetime rounds them: 41.001 is not 41.000999...
        second, micros = divmod(round(record.created * 1_000_000), 1_000_000)
        if second != self._second:
            self._date = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        millis = micros // 1000
        message = record.getMessage()
        line = (
            f"ts={self._date}.{millis:03d}Z level={record.levelname.lower()} "
            f"logger={record.name} {message}"
        )
        if record.exc_info:
            line += " exc=" + _value(self.formatException(record.exc_info).replace("\n", " | "))
        return _SECRET.sub(r"\1[redacted]", line)


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: formatting happens there too."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:  # freeze arguments that may change after the call returns
            record.msg = record.getMessage()
            record.args = None
        if record.exc_info:  # a traceback object must not travel to another thread
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.msg = f"{record.msg} exc={_value(record.exc_text.replace(chr(10), ' | '))}"
            record.exc_info = None
            record.exc_text = None
        return record


_listener: logging.handlers.QueueListener | None = None


@atexit.register
def _stop_listener() -> None:
    """Write what is queued and stop the writer thread (at exit, or before reconfiguring)."""
    global _listener
    if _listener is not None:
        _listener.stop()
        _listener = None


def configure_logging(level: str = "INFO") -> None:
    """Key=value lines on stderr, formatted and written by a background thread.

    A line is logged per request: doing the formatting and the write() off the event loop keeps
    the selector's hot path at a queue put.
    """
    global _listener
    _stop_listener()
    # Documented logging optimizations: no caller lookup (a stack walk per record) and no
    # thread or process names, which these lines never print.
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(_DeferredQueueHandler(records))
    root.setLevel(level)
    for noisy in ("httpx", "httpx2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
