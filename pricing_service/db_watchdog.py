"""A bound on every wait for PostgreSQL's answer, for a peer that accepted and then went silent.

Why by hand: nothing in psycopg 3.3 or SQLAlchemy 2.1 bounds a blocked read. psycopg's
``connect_timeout`` covers connecting only; ``Connection.wait(timeout=)`` is used for
notifications, not for queries, and raises a private exception. ``statement_timeout`` is
enforced by the server, which is the side that stopped answering. Keepalives and
``tcp_user_timeout`` fire only when the peer's kernel stops acknowledging, and a stalled server
or proxy still acknowledges every byte and every probe. A cancel request goes to the same
silent peer. Without a bound a worker thread waited in libpq forever (the scheduler stopped for
good; a test run hung past its timeout).

How: one thread per process keeps a deadline per connection. Whoever starts a wait arms it
(``arm``) and disarms it when the answer came (``disarm``); at a deadline the thread shuts the
connection's socket down (on a duplicate of its descriptor, so the descriptor stays psycopg's to
close). libpq's blocked read then returns at once, psycopg raises ``OperationalError``, marks the
connection broken and the pool discards it. Only a connection whose command is still in flight
(``transaction_status`` ACTIVE) is cut: a deadline left armed on an idle connection does nothing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from pricing_service.logs import event

log = logging.getLogger("pricing_service.db")

# libpq's PQTRANS_ACTIVE: a command was sent and its answer has not been read yet.
_ACTIVE = 1


class Watchdog:
    """Deadlines for connections' waits; one daemon thread enforces them."""

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._lock = threading.Condition()
        # id(connection) -> (deadline, connection, what is waited for, the bound in seconds)
        self._deadlines: dict[int, tuple[float, Any, str, float]] = {}
        self._next = float("inf")  # when the thread wakes next
        self._thread: threading.Thread | None = None
        self.cuts = 0  # connections cut, since the process started

    def arm(self, connection: Any, seconds: float, what: str) -> None:
        """``connection`` (a psycopg connection) waits for the server from now, at most
        ``seconds``; a later call for the same connection replaces its deadline."""
        deadline = time.monotonic() + seconds
        with self._lock:
            self._deadlines[id(connection)] = (deadline, connection, what, seconds)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="db-watchdog", daemon=True)
                self._thread.start()
            if deadline < self._next:  # the usual deadline is later: no wake-up per statement
                self._lock.notify()

    def disarm(self, connection: Any) -> None:
        with self._lock:
            self._deadlines.pop(id(connection), None)

    def _run(self) -> None:
        with self._lock:
            while True:
                now = time.monotonic()
                for key, (deadline, connection, what, seconds) in list(self._deadlines.items()):
                    if deadline <= now:
                        del self._deadlines[key]
                        # Under the lock: the owner cannot disarm and close it meanwhile.
                        self._cut(connection, what, seconds)
                self._next = min((d[0] for d in self._deadlines.values()), default=float("inf"))
                self._lock.wait(None if self._next == float("inf") else self._next - now)

    def _cut(self, connection: Any, what: str, seconds: float) -> None:
        try:
            pgconn = connection.pgconn
            if pgconn.transaction_status != _ACTIVE:
                return  # the answer came; nothing waits
            duplicate = socket.fromfd(pgconn.socket, socket.AF_INET, socket.SOCK_STREAM)
        except Exception:  # closed meanwhile: nothing to cut
            return
        try:
            duplicate.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        finally:
            duplicate.close()
        self.cuts += 1
        event(log, "db.no_answer", logging.WARNING, waiting_for=what, bound_seconds=seconds)


WATCHDOG = Watchdog()
# A forked child has the deadlines but not the thread, and maybe a lock held at the fork.
os.register_at_fork(after_in_child=WATCHDOG._reset)
