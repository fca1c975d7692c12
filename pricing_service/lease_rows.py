"""The database lease row of the single-flight refresh lease (lock.DatabaseRefreshLock uses it
when no Redis is configured, and as Redis's fallback): atomic on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa

from pricing_service import tables

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

LOCK = tables.refresh_lock.c


class LeaseRows:
    """The ``refresh_lock`` rows. Synchronous: callers on the event loop use a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def try_lock(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take the named lock when free or expired; atomic on PostgreSQL and SQLite."""
        with self.engine.connect() as conn:
            if conn.execute(sa.select(LOCK.name).where(LOCK.name == name)).first() is None:
                try:
                    conn.execute(sa.insert(tables.refresh_lock).values(name=name))
                    conn.commit()
                except sa.exc.IntegrityError:
                    conn.rollback()
            result = conn.execute(
                sa.update(tables.refresh_lock)
                .where(LOCK.name == name)
                .where(sa.or_(LOCK.holder.is_(None), LOCK.expires_at < now))
                .values(holder=holder, run_id=None, expires_at=now + ttl)
            )
            conn.commit()
            return bool(result.rowcount == 1)

    def set_lock_run(self, name: str, holder: str, run_id: int) -> None:
        with self.engine.connect() as conn:
            conn.execute(
                sa.update(tables.refresh_lock)
                .where(LOCK.name == name)
                .where(LOCK.holder == holder)
                .values(run_id=run_id)
            )
            conn.commit()

    def renew_lock(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Extend the lease; False when ``holder`` no longer holds it."""
        with self.engine.connect() as conn:
            result = conn.execute(
                sa.update(tables.refresh_lock)
                .where(LOCK.name == name)
                .where(LOCK.holder == holder)
                .values(expires_at=now + ttl)
            )
            conn.commit()
            return bool(result.rowcount == 1)

    def lock_run(self, name: str, now: datetime) -> tuple[bool, int | None]:
        """Whether the lock is held (and by which run), ignoring an expired holder."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(tables.refresh_lock).where(LOCK.name == name)).first()
            if row is None or row.holder is None:
                return False, None
            if row.expires_at is not None and row.expires_at < now:
                return False, None
            return True, row.run_id

    def release_lock(self, name: str, holder: str) -> None:
        with self.engine.connect() as conn:
            conn.execute(
                sa.update(tables.refresh_lock)
                .where(LOCK.name == name)
                .where(LOCK.holder == holder)
                .values(holder=None, run_id=None, expires_at=None)
            )
            conn.commit()
