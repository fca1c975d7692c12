"""The database engine: every wait on PostgreSQL bounded, driver errors as StorageError."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event

from pricing_service.db_watchdog import WATCHDOG
from pricing_service.errors import StorageError, StorageUnavailable

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


# Every wait on PostgreSQL has a bound; what each one covers:
# a statement waiting on a row lock (a dropped holder's locks are freed by the server below);
PG_LOCK_TIMEOUT_MS = 10_000
# a transaction left open and idle (a client that went away mid-transaction);
PG_IDLE_IN_TRANSACTION_MS = 60_000
# any one statement, lock waits included, ended by the server: the service's longest (a
# 5,000-model snapshot's batched inserts, a change-feed page) take well under a second;
PG_STATEMENT_TIMEOUT_MS = 30_000
# data sent and not acknowledged this long (a cut route): both sides drop the connection;
PG_TCP_USER_TIMEOUT_MS = 10_000
# connecting, startup and authentication included (psycopg enforces it);
CONNECT_TIMEOUT_SECONDS = 3
# a thread waiting for a free pooled connection;
POOL_TIMEOUT_SECONDS = 5
# a checkout's ping: a live server answers in milliseconds; past this the connection is
# discarded and the pool connects afresh (bounded by CONNECT_TIMEOUT_SECONDS);
PING_TIMEOUT_SECONDS = 2.0
# and any answer at all (db_watchdog.py): the server's own statement timeout plus this margin,
# so a statement the server ended itself is answered first (a clean error, the connection kept)
# and the watchdog cuts only a server or route that answers nothing.
ANSWER_MARGIN_SECONDS = 5.0


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# JSON columns through msgspec, not the json module: a held run's proposal (5,000 models) took
# json.dumps 170 ms and json.loads 140 ms, each one C call holding the GIL, so the serving event
# loop stopped for as long (make bench, /health during a refresh). msgspec does it in a fraction.
# NaN, which json.dumps wrote as a bare NaN (PostgreSQL refused it), is written as null.
_JSON = {"json_serializer": _json_text, "json_deserializer": msgspec.json.decode}


def create_db_engine(
    database_url: str, *, statement_timeout_ms: int = PG_STATEMENT_TIMEOUT_MS
) -> Engine:
    """An engine on which no wait is unbounded: an outage or a stall fails in seconds."""
    if database_url.startswith("sqlite"):
        engine = sa.create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 15}, **_JSON
        )
        if sa.make_url(database_url).database not in (None, "", ":memory:"):
            event.listen(engine, "checkin", _release_page_cache)
        return engine
    engine = sa.create_engine(
        database_url,
        **_JSON,
        # No pool_pre_ping: its ping had no bound; _bound_every_wait pings with one.
        pool_size=5,
        max_overflow=5,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # A connection cut between us and PostgreSQL (a proxy, a network partition) can
            # leave the server holding our transaction and its row locks: without these, the
            # next lease or snapshot write waited on them forever. Both sides now notice a dead
            # peer within about 30 s (unacknowledged data within PG_TCP_USER_TIMEOUT), the
            # server ends a transaction left idle, and no statement runs longer than
            # statement_timeout nor waits on a lock longer than PG_LOCK_TIMEOUT.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
            "options": (
                f"-c statement_timeout={statement_timeout_ms} "
                f"-c lock_timeout={PG_LOCK_TIMEOUT_MS} "
                f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS} "
                "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                f"-c tcp_keepalives_count=3 -c tcp_user_timeout={PG_TCP_USER_TIMEOUT_MS}"
            ),
        },
    )
    _bound_every_wait(engine, statement_timeout_ms / 1000 + ANSWER_MARGIN_SECONDS)
    return engine


def _release_page_cache(dbapi_connection: Any, _record: Any) -> None:
    """Free a returned SQLite connection's page cache (``PRAGMA shrink_memory``).

    Each pooled connection otherwise keeps up to 2 MB of pages (SQLite's default cache_size)
    after its last read: a serving worker that loaded a snapshot from the database (its own
    refresh's publish reads every price row) held 1.5-2 MB more than one that loaded it from
    Redis (make bench, SQLite). Only pages not in use are freed, after the transaction ended
    (the pool's reset comes first); the next read takes its pages from the file again, which
    the system's page cache holds. Files only: an in-memory database's pages are its data."""
    if dbapi_connection is None:
        return
    # A broken connection is the pool's to discard, not this listener's to report.
    with contextlib.suppress(Exception):
        dbapi_connection.execute("PRAGMA shrink_memory")


_FRESH = "pricing_fresh"  # connection_record.info: made for this checkout, no ping needed


def _bound_every_wait(engine: Engine, answer_seconds: float) -> None:
    """Arm the watchdog around every wait of the engine's connections for the server's answer.

    Nothing else bounds a peer that accepted the connection and then never answers (the
    reasons are in db_watchdog.py). Each wait's start re-arms the connection's deadline: a
    statement, a commit or rollback, the pool's rollback on return, a checkout's ping, the
    dialect's first queries on a new connection. A deadline left armed once the answer came is
    harmless (only a connection with a command in flight is cut) and is dropped at checkin.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error

    def arm(dbapi_connection: Any, what: str, seconds: float = answer_seconds) -> None:
        if dbapi_connection is not None:
            WATCHDOG.arm(dbapi_connection, seconds, what)

    def disarm(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            WATCHDOG.disarm(dbapi_connection)

    def connected(dbapi_connection: Any, record: Any) -> None:
        # First in line (insert=True): the dialect's first queries run without cursor events.
        arm(dbapi_connection, "first queries")
        record.info[_FRESH] = True

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # SQLAlchemy's documented pessimistic ping ("Disconnect Handling - Pessimistic",
        # custom), bounded: a DisconnectionError makes the pool discard the connection and
        # check out a fresh one (two tries), which needs no ping of its own.
        if record.info.pop(_FRESH, False):
            return
        arm(dbapi_connection, "ping", PING_TIMEOUT_SECONDS)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_error as exc:
            raise sa.exc.DisconnectionError(f"ping failed ({type(exc).__name__})") from exc
        finally:
            disarm(dbapi_connection)

    def before_statement(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool
    ) -> None:
        arm(cursor.connection, "statement")

    def after_statement(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool
    ) -> None:
        disarm(cursor.connection)

    def ending(what: str) -> Any:
        def listener(conn: sa.Connection) -> None:
            try:
                dbapi_connection = conn.connection.dbapi_connection
            except sa.exc.SQLAlchemyError:  # closed or invalidated: nothing will wait
                return
            arm(dbapi_connection, what)

        return listener

    event.listen(engine, "connect", connected, insert=True)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", before_statement)
    event.listen(engine, "after_cursor_execute", after_statement)
    event.listen(engine, "commit", ending("commit"))
    event.listen(engine, "rollback", ending("rollback"))
    event.listen(engine, "reset", lambda dbapi_connection, *_: arm(dbapi_connection, "reset"))
    for name in ("checkin", "close", "close_detached", "invalidate", "soft_invalidate"):
        event.listen(engine, name, disarm)


# Driver errors that mean "the database is not there right now", as opposed to a bug.
_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # no pooled connection free within pool_timeout
)


def storage_error(exc: BaseException) -> StorageError | None:
    """A SQLAlchemy or driver error as a StorageError whose detail is safe to show anyone (the
    error's kind only: no SQL, no parameters, no URL); None for anything else."""
    if isinstance(exc, StorageError):
        return exc
    if not isinstance(exc, sa.exc.SQLAlchemyError):
        return None
    original = getattr(exc, "orig", None)
    kind = type(original).__name__ if original is not None else type(exc).__name__
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable(f"database unavailable ({kind}); try again shortly")
    return StorageError(f"database error ({kind})")
