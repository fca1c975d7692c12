"""Structured key=value log lines with dotted event names; tokens never reach a line."""

from __future__ import annotations

import logging
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


def configure_logging(level: str = "INFO") -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(KeyValueFormatter())
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpx2", "mcp", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
