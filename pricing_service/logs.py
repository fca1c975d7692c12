"""One line per event on stderr, logfmt or JSON, for this service and its libraries alike.

``event(log, "refresh.completed", models=533)`` becomes, in the default logfmt::

    ts=2026-04-29T08:14:00.045Z level=info pid=4242 logger=pricing_service.refresh
    event=refresh.completed models=533

(one line), or with ``PRICING_LOG_FORMAT=json`` ``{"ts": ..., "event": "refresh.completed",
"models": 533}``. Lines from other loggers (uvicorn, alembic) go through the same handler and
formatter, their text as ``msg=``, and get an ``event=`` too, so that a parser can key every line
on it: uvicorn's startup, shutdown and worker lines are named (``uvicorn.started``,
``uvicorn.shutdown_complete``, ``uvicorn.worker_died``, ...; see ``_UVICORN_EVENTS``), any other
line is ``<library>.<level>`` (``uvicorn.error``, ``uvicorn.warning``, ``alembic.info``).
Tokens never reach a line: the formatter masks anything that looks like one. Records are
formatted and written by a background thread, which is drained at exit and on SIGTERM so that
the last lines are not lost.
"""

from __future__ import annotations

import atexit
import json
import logging
import logging.handlers
import multiprocessing.util
import os
import queue
import re
import signal
import sys
import threading
from datetime import UTC, datetime
from typing import Any, TextIO

# Anything that looks like a bearer credential is masked, whatever logged it.
# "Authorization: Bearer x" must lose x, not the word Bearer: the scheme belongs to the prefix.
_SECRET = re.compile(
    r"(?i)(bearer\s+|authorization[\"']?\s*[:=]\s*[\"']?(?:(?:bearer|basic|token)\s+)?)"
    r"([^\s\"',]+)"
)
_REDACTED = r"\1[redacted]"

# Libraries whose INFO lines say nothing an operator needs (alembic's plugin setup and "will
# assume transactional DDL"; every HTTP call of the MCP client). Their warnings still show.
_QUIET = ("httpx", "httpx2", "mcp", "uvicorn.access", "alembic")

FORMATS = ("logfmt", "json")


def _value(value: Any) -> str:
    # Masked before quoting: 'authorization="Basic x"' must not hide behind escaped quotes.
    text = _SECRET.sub(_REDACTED, str(value))
    if text == "" or any(c in text for c in ' ="\n\r\t'):
        escaped = text.replace("\\", "\\\\").replace('"', '\\"')
        escaped = escaped.replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
        return '"' + escaped + '"'
    return text


# uvicorn's lines by their text (some are f-strings, so the template is not always there), first
# match wins. What an operator waits for or alerts on gets a name of its own.
_UVICORN_EVENTS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), name)
    for pattern, name in (
        (r"^Started server process \[", "uvicorn.process_started"),
        (r"^Waiting for application startup", "uvicorn.startup_waiting"),
        (r"^Application startup complete", "uvicorn.startup_complete"),
        (r"^Application startup failed", "uvicorn.startup_failed"),
        (r"^Uvicorn running on ", "uvicorn.started"),
        (r"^Shutting down", "uvicorn.stopping"),
        (r"^Waiting for connections to close", "uvicorn.draining_connections"),
        (r"^Waiting for background tasks to complete", "uvicorn.draining_tasks"),
        (r"^Cancel \d+ running task\(s\), timeout graceful", "uvicorn.shutdown_timeout"),
        (r"^Waiting for application shutdown", "uvicorn.shutdown_waiting"),
        (r"^Application shutdown complete", "uvicorn.shutdown_complete"),
        (r"^Application shutdown failed", "uvicorn.shutdown_failed"),
        (r"^Finished server process \[", "uvicorn.process_finished"),
        (r"^Started parent process \[", "uvicorn.supervisor_started"),
        (r"^Stopping parent process \[", "uvicorn.supervisor_stopped"),
        (r"^Waiting for child process \[", "uvicorn.worker_stopping"),
        (r"^Terminated child process \[", "uvicorn.worker_terminated"),
        (r"^Child process \[\d+\] died", "uvicorn.worker_died"),
        (r"^(New )?[Cc]hild process \[\d+\].*(failed to start|not ready)", "uvicorn.worker_failed"),
        (r"^Received SIG\w+", "uvicorn.signal"),
        (r"^Maximum request limit", "uvicorn.max_requests"),
    )
)


def library_event(record: logging.LogRecord, text: str) -> str:
    """The ``event`` of a line logged as plain text (a library's, not through ``event()``)."""
    name = record.name
    if name == "uvicorn" or name.startswith("uvicorn."):
        for pattern, event_name in _UVICORN_EVENTS:
            if pattern.match(text):
                return event_name
    library = name.split(".", 1)[0] or "root"
    level = record.levelname.lower()
    return f"{library}.{'critical' if level == 'fatal' else level}"


class Event:
    """A log record's message for a named event: rendered only when a line is written.

    ``str()`` gives ``name k=v ...`` (what ``record.getMessage()`` returns); the formatters read
    ``name`` and ``fields`` to put the name under ``event=`` and to keep values typed in JSON.
    """

    __slots__ = ("fields", "name")

    def __init__(self, name: str, fields: dict[str, Any]) -> None:
        self.name = name
        self.fields = fields

    def pairs(self) -> str:
        return " ".join(f"{k}={_value(v)}" for k, v in self.fields.items() if v is not None)

    def __str__(self) -> str:
        pairs = self.pairs()
        return f"{self.name} {pairs}" if pairs else self.name


def event(logger: logging.Logger, name: str, level: int = logging.INFO, **fields: Any) -> None:
    """Log one event: ``event=refresh.completed models=533 duration_ms=840``."""
    if logger.isEnabledFor(level):
        logger.log(level, Event(name, fields))


class _Timestamps:
    """ISO-8601 UTC with milliseconds; the date part is formatted once per second, not per line."""

    def __init__(self) -> None:
        self._second = -1
        self._date = ""

    def __call__(self, created: float) -> str:
        # Whole microseconds first, as datetime rounds them: 41.001 is not 41.000999...
        second, micros = divmod(round(created * 1_000_000), 1_000_000)
        if second != self._second:
            self._date = datetime.fromtimestamp(second, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            self._second = second
        return f"{self._date}.{micros // 1000:03d}Z"


def _exception_text(formatter: logging.Formatter, record: logging.LogRecord) -> str | None:
    if record.exc_info:
        return formatter.formatException(record.exc_info)
    return record.exc_text or None


class LogfmtFormatter(logging.Formatter):
    """``ts=... level=info pid=N logger=x event=name k=v`` or ``... msg="text"``."""

    def __init__(self) -> None:
        super().__init__()
        self._ts = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        message = record.msg
        if isinstance(message, Event) and not record.args:
            pairs = message.pairs()
            body = f"event={message.name} {pairs}" if pairs else f"event={message.name}"
        else:
            text = record.getMessage()
            body = f"event={library_event(record, text)} msg={_value(text)}"
        line = (
            f"ts={self._ts(record.created)} level={record.levelname.lower()} pid={os.getpid()} "
            f"logger={record.name} {body}"
        )
        exc = _exception_text(self, record)
        if exc:
            line += " exc=" + _value(exc.replace("\n", " | "))
        return _SECRET.sub(_REDACTED, line)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float):
        return value
    return _SECRET.sub(_REDACTED, str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, pid, logger, then event and its fields (or msg)."""

    def __init__(self) -> None:
        super().__init__()
        self._ts = _Timestamps()

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": self._ts(record.created),
            "level": record.levelname.lower(),
            "pid": os.getpid(),
            "logger": record.name,
        }
        message = record.msg
        if isinstance(message, Event) and not record.args:
            data["event"] = message.name
            for key, value in message.fields.items():
                if value is not None:
                    data[key if key not in data else f"field_{key}"] = _json_value(value)
        else:
            text = record.getMessage()
            data["event"] = library_event(record, text)
            data["msg"] = _json_value(text)
        exc = _exception_text(self, record)
        if exc:
            data["exc"] = _json_value(exc)
        return json.dumps(data, ensure_ascii=False, separators=(",", ":"))


def formatter_for(log_format: str) -> logging.Formatter:
    if log_format == "json":
        return JsonFormatter()
    if log_format == "logfmt":
        return LogfmtFormatter()
    raise ValueError(f"unknown log format {log_format!r} (expected logfmt or json)")


class _DeferredQueueHandler(logging.handlers.QueueHandler):
    """Hands records to the writer thread as they are: formatting happens there too."""

    def prepare(self, record: logging.LogRecord) -> logging.LogRecord:
        if record.args:  # freeze arguments that may change after the call returns
            record.msg = record.getMessage()
            record.args = None
        if record.exc_info:  # a traceback object must not travel to another thread
            record.exc_text = logging.Formatter().formatException(record.exc_info)
            record.exc_info = None
        return record


_listener: logging.handlers.QueueListener | None = None


@atexit.register
def flush_logs() -> None:
    """Write what is queued and stop the writer thread (at exit, on SIGTERM, or before
    reconfiguring). Records logged afterwards wait in the queue until the next configure."""
    global _listener
    listener, _listener = _listener, None
    if listener is not None:
        listener.stop()
    sys.stderr.flush()


def write_directly() -> None:
    """Drain the queue, then write every later line synchronously (the end of a lifespan).

    uvicorn re-raises the SIGTERM it captured once the server has stopped, and by then the
    handler is the default one: the process dies at once, atexit never runs, and whatever the
    writer thread had not written yet (the shutdown summary, "Finished server process") was lost.
    """
    root = logging.getLogger()
    queued = [h for h in root.handlers if isinstance(h, _DeferredQueueHandler)]
    listener = _listener
    flush_logs()
    if listener is None or not queued:
        return
    for queue_handler in queued:
        root.removeHandler(queue_handler)
    for stream_handler in listener.handlers:
        root.addHandler(stream_handler)


def _on_sigterm(signum: int, frame: Any) -> None:
    """Default SIGTERM (a cron command, or `serve` once uvicorn has shut down and re-raises the
    signal): drain the log queue, then die of the signal as the default would have."""
    flush_logs()
    sys.stdout.flush()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_flush() -> None:
    if threading.current_thread() is not threading.main_thread():
        return
    current = signal.getsignal(signal.SIGTERM)
    if current in (signal.SIG_DFL, _on_sigterm):  # never replace someone else's handler
        signal.signal(signal.SIGTERM, _on_sigterm)


def configure_logging(
    level: str = "INFO", log_format: str = "logfmt", stream: TextIO | None = None
) -> None:
    """Lines on stderr (or ``stream``) in ``log_format`` (logfmt or json), written by a
    background thread.

    A line is logged per request: doing the formatting and the write() off the event loop keeps
    the selector's hot path at a queue put. Every logger propagates to the root handler, so
    uvicorn's and alembic's lines come out in the same format.
    """
    global _listener
    formatter = formatter_for(log_format)
    flush_logs()
    # Documented logging optimizations: no caller lookup (a stack walk per record) and no
    # thread or process names (the formatter reads the pid itself).
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
    handler = logging.StreamHandler(sys.stderr if stream is None else stream)
    handler.setFormatter(formatter)
    records: queue.SimpleQueue[logging.LogRecord] = queue.SimpleQueue()
    _listener = logging.handlers.QueueListener(records, handler)
    _listener.start()
    # uvicorn's worker processes end through multiprocessing, which skips atexit: its own exit
    # finalizers do run there, so the queue is drained in workers too.
    multiprocessing.util.Finalize(None, flush_logs, exitpriority=100)
    root = logging.getLogger()
    for existing in list(root.handlers):
        root.removeHandler(existing)
    root.addHandler(_DeferredQueueHandler(records))
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error", "alembic"):
        # Route library loggers through the root handler at the root's level, whatever
        # configured them before (a dictConfig, an earlier uvicorn.Config in the process).
        library = logging.getLogger(name)
        for existing in list(library.handlers):
            library.removeHandler(existing)
        library.setLevel(logging.NOTSET)
        library.propagate = True
        library.disabled = False
    for noisy in _QUIET:
        logging.getLogger(noisy).setLevel(logging.WARNING)
    _install_sigterm_flush()
