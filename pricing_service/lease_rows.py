"""The database lease row of the single-flight refresh lease (lock.DatabaseRefreshLock uses it
when no Redis is configured, and as Redis's fallback): atomic on PostgreSQL and SQLite."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, update

from pricing_service.tables import (
    RefreshLockRow,
)

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class LeaseRows:
    """The ``refresh_lock`` rows. Synchronous: callers on the event loop use a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def try_lock(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Take the named lock when free or expired; atomic on PostgreSQL and SQLite."""
        with Session(self.engine) as session:
            if session.get(RefreshLockRow, name) is None:
                try:
                    session.add(RefreshLockRow(name=name))
                    session.commit()
                except sa.exc.IntegrityError:
                    session.rollback()
            result = session.execute(
                update(RefreshLockRow)
                .where(col(RefreshLockRow.name) == name)
                .where(
                    sa.or_(
                        col(RefreshLockRow.holder).is_(None),
                        col(RefreshLockRow.expires_at) < now,
                    )
                )
                .values(holder=holder, run_id=None, expires_at=now + ttl)
            )
            session.commit()
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def set_lock_run(self, name: str, holder: str, run_id: int) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(RefreshLockRow)
                .where(col(RefreshLockRow.name) == name)
                .where(col(RefreshLockRow.holder) == holder)
                .values(run_id=run_id)
            )
            session.commit()

    def renew_lock(self, name: str, holder: str, ttl: timedelta, now: datetime) -> bool:
        """Extend the lease; False when ``holder`` no longer holds it."""
        with Session(self.engine) as session:
            result = session.execute(
                update(RefreshLockRow)
                .where(col(RefreshLockRow.name) == name)
                .where(col(RefreshLockRow.holder) == holder)
                .values(expires_at=now + ttl)
            )
            session.commit()
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def lock_run(self, name: str, now: datetime) -> tuple[bool, int | None]:
        """Whether the lock is held (and by which run), ignoring an expired holder."""
        with Session(self.engine) as session:
            row = session.get(RefreshLockRow, name)
            if row is None or row.holder is None:
                return False, None
            if row.expires_at is not None and row.expires_at < now:
                return False, None
            return True, row.run_id

    def release_lock(self, name: str, holder: str) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(RefreshLockRow)
                .where(col(RefreshLockRow.name) == name)
                .where(col(RefreshLockRow.holder) == holder)
                .values(holder=None, run_id=None, expires_at=None)
            )
            session.commit()
