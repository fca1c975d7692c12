"""Structured key=value log lines with dotted event names; tokens never reach a line."""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any

# Anything that looks like a bearer credential is masked, whatever logged it.
_SECRET = re.compile(r"(?i)(bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?)([^\s\"',]+)")


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
    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        message = record.getMessage()
        line = f"ts={when[:-4]}Z level={record.levelname.lower()} logger={record.name} {message}"
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
