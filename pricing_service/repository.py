"""Snapshots, current prices and price history; returns domain types. Repository composes
the runs (run_rows.py), the snapshot writes (snapshot_store.py) and the held reads
(held_rows.py); the row mappers are in rows.py, the engine in db.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import (
    ChangeKind,
    ModelPrice,
    PriceChange,
    SnapshotInfo,
    SnapshotSource,
)
from pricing_service.gate import Baseline
from pricing_service.held_rows import HeldReads
from pricing_service.rows import (
    held_price,
    model_price,
    price_change,
    snapshot_info,
)
from pricing_service.snapshot_store import SnapshotWrites
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import (
    EventContext,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection, Engine

PRICE = tables.model_price.c
SNAPSHOT = tables.snapshot.c
EVENT = tables.price_event.c


@dataclass(frozen=True, slots=True)
class DebugSample:
    snapshot: SnapshotInfo
    field_names: list[str]
    unmatched_ids: list[str]
    raw: dict[str, Any]  # model_id -> raw upstream row (and detail)


class Repository(SnapshotWrites, HeldReads):
    """All SQL of the service but the lease (lease_rows.py). Synchronous: callers on the event
    loop use a worker thread."""

    def __init__(self, engine: Engine, events: EventContext | None = None) -> None:
        self.engine = engine
        # Webhook events are written by the transactions below (webhooks/outbox.py).
        self.events = events or EventContext()

    # -- health -----------------------------------------------------------------------------

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))

    def schema_revision(self) -> str | None:
        """The alembic revision the database is at, or None when it was never migrated."""
        with self.engine.connect() as conn:
            if not sa.inspect(conn).has_table("alembic_version"):
                return None
            value = conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()
            return None if value is None else str(value)

    def current_prices(self) -> dict[str, ModelPrice]:
        """The current prices by model id (listed and within their grace), without holds."""
        with self.engine.connect() as conn:
            return {r.model_id: model_price(r) for r in conn.execute(sa.select(tables.model_price))}

    def baseline(self) -> Baseline | None:
        """The last accepted snapshot, seed included, counted over the models still listed."""
        with self.engine.connect() as conn:
            snapshot_id = conn.execute(sa.select(sa.func.max(PRICE.snapshot_id))).scalar()
            if snapshot_id is None:
                return None
            snapshot = conn.execute(
                sa.select(tables.snapshot).where(SNAPSHOT.id == snapshot_id)
            ).one()
            return Baseline(
                snapshot_id=snapshot_id,
                source=snapshot.source,
                models=snapshot.model_count,
                priced=snapshot.priced,
            )

    def current_snapshot_id(self) -> int | None:
        """Which snapshot is current: the database is the one truth (Redis only caches it)."""
        with self.engine.connect() as conn:
            value = conn.execute(sa.select(sa.func.max(PRICE.snapshot_id))).scalar()
            return None if value is None else int(value)

    def latest_snapshot(self, *, upstream_only: bool = False) -> SnapshotInfo | None:
        with self.engine.connect() as conn:
            query = sa.select(tables.snapshot)
            if upstream_only:
                query = query.where(SNAPSHOT.source != SnapshotSource.SEED.value)
            row = conn.execute(query.order_by(SNAPSHOT.id.desc()).limit(1)).first()
            return None if row is None else snapshot_info(row)

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        """The snapshot whose prices are current, with those prices; None before any."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(tables.model_price).order_by(PRICE.model_id)).all()
            if not rows:
                return None
            snapshot = conn.execute(
                sa.select(tables.snapshot).where(SNAPSHOT.id == rows[0].snapshot_id)
            ).one()
            held = {
                h.model_id: held_price(h)
                for h in conn.execute(
                    sa.select(tables.held_price).where(tables.held_price.c.resolved_at.is_(None))
                )
            }
            return snapshot_info(snapshot), [model_price(r, held.get(r.model_id)) for r in rows]

    def debug_sample(self, limit: int, prefer: Sequence[str] = ()) -> DebugSample | None:
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tables.snapshot)
                .where(SNAPSHOT.raw_rows.is_not(None))
                .order_by(SNAPSHOT.id.desc())
                .limit(1)
            ).first()
            if row is None:
                return None
            raw: dict[str, Any] = dict(row.raw_rows or {})
            chosen = [m for m in prefer if m in raw][:limit]
            for model_id in sorted(raw):
                if len(chosen) >= limit:
                    break
                if model_id not in chosen:
                    chosen.append(model_id)
            return DebugSample(
                snapshot=snapshot_info(row),
                field_names=list(row.field_names),
                unmatched_ids=list(row.unmatched_ids),
                raw={m: raw[m] for m in chosen},
            )

    # -- history ----------------------------------------------------------------------------

    def changes(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: ChangeKind | None = None,
    ) -> list[PriceChange]:
        query = _changes_where(since, model_id, kind)
        query = query.order_by(EVENT.changed_at.desc(), EVENT.model_id, EVENT.id).limit(limit)
        with self.engine.connect() as conn:
            return [price_change(e) for e in conn.execute(query)]

    def change_page(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: ChangeKind | None = None,
        after: int | None = None,
    ) -> tuple[list[PriceChange], int]:
        """A page of the change feed (feed.py) and the cursor's next position: without
        ``after`` the newest first (at most the newest change now, which is the position);
        with it the changes after it, oldest first (the position: the last one returned)."""
        query = _changes_where(since, model_id, kind)
        with self.engine.connect() as conn:
            if after is None:
                newest = conn.execute(sa.select(sa.func.max(EVENT.id))).scalar() or 0
                query = query.where(EVENT.id <= newest).order_by(
                    EVENT.changed_at.desc(), EVENT.model_id, EVENT.id
                )
                rows = conn.execute(query.limit(limit)).all()
                return [price_change(e) for e in rows], int(newest)
            query = query.where(EVENT.id > after).order_by(EVENT.id)
            rows = conn.execute(query.limit(limit)).all()
            position = rows[-1].id if rows else after
            return [price_change(e) for e in rows], int(position or 0)

    def price_history(
        self, model_id: str, limit: int = 200
    ) -> list[tuple[datetime, Decimal | None, Decimal | None]]:
        """A model's price versions, oldest first: (valid_from, input, output)."""
        h = tables.price_history.c
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(h.valid_from, h.input_usd_per_million, h.output_usd_per_million)
                .where(h.model_id == model_id)
                .order_by(h.valid_from.desc())
                .limit(limit)
            )
            found = [
                (r.valid_from, r.input_usd_per_million, r.output_usd_per_million) for r in rows
            ]
        return found[::-1]

    # -- webhooks (webhooks/outbox.py) -------------------------------------------------------

    def note_failing(self, now: datetime) -> int | None:
        """Record ``refresh.failing`` when refreshes have not succeeded for too long (once per
        failing period); the delivery loop asks every minute, ``fail_run`` at each failure."""
        with self.engine.begin() as conn:
            return outbox.note_failing(conn, self.events, now)

    # -- console sessions ended before their expiry (console/session.py) --------------------

    def revoke_session(self, sid: str, expires_at: datetime, now: datetime) -> None:
        """Record ``sid`` as ended until ``expires_at``; rows already past theirs are purged."""
        revoked = tables.revoked_session
        with self.engine.connect() as conn:
            conn.execute(sa.delete(revoked).where(revoked.c.expires_at < now))
            try:
                if self._revoked(conn, sid) is None:
                    conn.execute(sa.insert(revoked).values(sid=sid, expires_at=expires_at))
                conn.commit()
            except sa.exc.IntegrityError:  # another worker recorded the same logout
                conn.rollback()

    def session_revoked(self, sid: str) -> bool:
        with self.engine.connect() as conn:
            return self._revoked(conn, sid) is not None

    @staticmethod
    def _revoked(conn: Connection, sid: str) -> sa.Row[Any] | None:
        revoked = tables.revoked_session.c
        return conn.execute(sa.select(revoked.sid).where(revoked.sid == sid)).first()


def _changes_where(
    since: datetime | None, model_id: str | None, kind: ChangeKind | None
) -> sa.Select[Any]:
    """The change events at or after ``since``, of one model and one kind when given."""
    query = sa.select(tables.price_event)
    if since is not None:
        query = query.where(EVENT.changed_at >= since)
    if model_id is not None:
        query = query.where(EVENT.model_id == model_id)
    if kind is not None:
        query = query.where(EVENT.kind == kind.value)
    return query
