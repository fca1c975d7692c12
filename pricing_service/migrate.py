"""Alembic upgrades and downgrades, driven from code (CLI, tests, bench), and the startup probe.

``upgrade`` runs on one connection it opens itself, so an unreachable database is one
``DatabaseUnavailable`` line rather than a traceback, and reports the revision it found and the
one it left. Alembic's own INFO lines are quieted by ``configure_logging``.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext

from pricing_service.config import PROJECT_DIR
from pricing_service.errors import ConfigurationError, DatabaseUnavailable

# Seconds to wait for a PostgreSQL connection before calling the database unreachable.
CONNECT_TIMEOUT = 5


def migrations_dir() -> Path:
    """The top-level migrations/ folder of the project (polar's server/ layout)."""
    candidate = PROJECT_DIR / "migrations"
    if not (candidate / "env.py").is_file():
        raise ConfigurationError(f"migrations/ not found in the project directory {PROJECT_DIR}")
    return candidate


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["database_url"] = database_url
    return config


def _engine(database_url: str) -> sa.Engine:
    connect_args = {} if database_url.startswith("sqlite") else {"connect_timeout": CONNECT_TIMEOUT}
    return sa.create_engine(database_url, poolclass=sa.pool.NullPool, connect_args=connect_args)


def _unavailable(exc: sa.exc.DBAPIError) -> DatabaseUnavailable:
    # The driver's first line names the host and the reason, never the password.
    reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
    return DatabaseUnavailable(f"database unavailable: {reason}")


def current_revision(database_url: str) -> str | None:
    """The revision the database is at (None: never migrated); raises DatabaseUnavailable."""
    _ensure_sqlite_dir(database_url)
    engine = _engine(database_url)
    try:
        with engine.connect() as conn:
            return MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as exc:
        raise _unavailable(exc) from None
    finally:
        engine.dispose()


def upgrade(database_url: str, revision: str = "head") -> tuple[str | None, str | None]:
    """Upgrade to ``revision``; returns the revisions before and after (None: empty database)."""
    _ensure_sqlite_dir(database_url)
    config = alembic_config(database_url)
    engine = _engine(database_url)
    try:
        # Alembic's recipe for a connection shared with the caller (migrations/env.py uses it).
        with engine.begin() as conn:
            config.attributes["connection"] = conn
            before = MigrationContext.configure(conn).get_current_revision()
            command.upgrade(config, revision)
            after = MigrationContext.configure(conn).get_current_revision()
    except sa.exc.DBAPIError as exc:
        raise _unavailable(exc) from None
    finally:
        engine.dispose()
    return before, after


def downgrade(database_url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(database_url), revision)


def _ensure_sqlite_dir(database_url: str) -> None:
    prefix = "sqlite:///"
    if database_url.startswith(prefix) and ":memory:" not in database_url:
        Path(database_url[len(prefix) :]).parent.mkdir(parents=True, exist_ok=True)
