"""A loopback webhook receiver: real HTTP on a free port, which can answer, fail, hang or go away.

``with WebhookReceiver() as receiver: ... receiver.url ...``. Every request is recorded
(headers, body, how it was answered). ``mode``: ``ok`` (204), ``error`` (500), ``hang``
(holds the request until ``release()``, at most ``HANG_SECONDS``, then drops it unanswered),
``slow`` (answers after ``delay``).
``down()`` closes the listening socket (connections are refused) and ``up()`` opens it again on
the same port. ``max_concurrent`` is the most requests ever in flight at once for one
``webhook-id``.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self

from tests.support.process import free_port

if TYPE_CHECKING:
    from types import TracebackType

HANG_SECONDS = 60.0


@dataclass(frozen=True, slots=True)
class Received:
    headers: dict[str, str]
    body: bytes
    answered: int | None  # the status sent back; None when the request was hung and dropped

    @property
    def webhook_id(self) -> str:
        return self.headers.get("webhook-id", "")

    def json(self) -> Any:
        return json.loads(self.body)


class WebhookReceiver:
    def __init__(self, *, mode: str = "ok", delay: float = 0.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.mode = mode
        self.delay = delay
        self.received: list[Received] = []
        self.in_flight = 0
        self.max_concurrent = 0
        self._by_id: dict[str, int] = {}
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- control ---------------------------------------------------------------------------

    def up(self) -> Self:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                return None

            def do_POST(self) -> None:
                receiver._handle(self)

        server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(target=server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def release(self) -> None:
        """Drop every hung request (and later ones in ``hang`` mode at once)."""
        self._released.set()

    def hold(self) -> None:
        self._released.clear()

    def ok_ids(self) -> list[str]:
        with self._lock:
            return [r.webhook_id for r in self.received if r.answered and r.answered < 300]

    def wait_for(self, check: Any, seconds: float, what: str) -> Any:
        deadline = time.monotonic() + seconds
        while True:
            value = check()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}; received {self.summary()}")
            time.sleep(0.05)

    def summary(self) -> list[tuple[str, int | None]]:
        with self._lock:
            return [(r.webhook_id, r.answered) for r in self.received]

    # -- the handler -----------------------------------------------------------------------

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        message_id = headers.get("webhook-id", "")
        with self._lock:
            self.in_flight += 1
            now = self._by_id.get(message_id, 0) + 1
            self._by_id[message_id] = now
            self.max_concurrent = max(self.max_concurrent, now)
        answered: int | None = None
        try:
            mode = self.mode
            if mode == "hang":
                # Released or not, a hung request is dropped unanswered (its sender may be
                # gone: a reply written into a dead socket would still look sent).
                self._released.wait(HANG_SECONDS)
                handler.close_connection = True
                return
            if mode == "slow":
                time.sleep(self.delay)
            answered = 500 if mode == "error" else 204
            try:
                handler.send_response(answered)
                handler.send_header("content-length", "0")
                handler.end_headers()
            except OSError:  # the sender went away (timed out, or was killed)
                answered = None
        finally:
            with self._lock:
                self.in_flight -= 1
                self._by_id[message_id] -= 1
                self.received.append(Received(headers, body, answered))

    def __enter__(self) -> Self:
        return self.up()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
        self.down()
