"""Snapshots, current prices and price history; returns domain types. Repository composes
the runs (run_rows.py), the snapshot writes (snapshot_store.py) and the held reads
(held_rows.py); the row mappers are in rows.py, the engine in db.py."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, col, delete, select

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
from pricing_service.tables import (
    HeldPriceRow,
    ModelPriceRow,
    PriceEventRow,
    PriceHistoryRow,
    RevokedSessionRow,
    SnapshotRow,
)
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import (
    EventContext,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine
    from sqlmodel.sql.expression import SelectOfScalar


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
        with Session(self.engine) as session:
            return {r.model_id: model_price(r) for r in session.exec(select(ModelPriceRow))}

    def baseline(self) -> Baseline | None:
        """The last accepted snapshot, seed included, counted over the models still listed."""
        with Session(self.engine) as session:
            snapshot_id = session.exec(select(sa.func.max(ModelPriceRow.snapshot_id))).first()
            if snapshot_id is None:
                return None
            snapshot = session.get_one(SnapshotRow, snapshot_id)
            return Baseline(
                snapshot_id=snapshot_id,
                source=snapshot.source,
                models=snapshot.model_count,
                priced=snapshot.priced,
            )

    def current_snapshot_id(self) -> int | None:
        """Which snapshot is current: the database is the one truth (Redis only caches it)."""
        with Session(self.engine) as session:
            value = session.exec(select(sa.func.max(ModelPriceRow.snapshot_id))).first()
            return None if value is None else int(value)

    def latest_snapshot(self, *, upstream_only: bool = False) -> SnapshotInfo | None:
        with Session(self.engine) as session:
            query = select(SnapshotRow)
            if upstream_only:
                query = query.where(col(SnapshotRow.source) != SnapshotSource.SEED.value)
            row = session.exec(query.order_by(col(SnapshotRow.id).desc()).limit(1)).first()
            return None if row is None else snapshot_info(row)

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        """The snapshot whose prices are current, with those prices; None before any."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(ModelPriceRow).order_by(col(ModelPriceRow.model_id))))
            if not rows:
                return None
            snapshot = session.get_one(SnapshotRow, rows[0].snapshot_id)
            held = {
                h.model_id: held_price(h)
                for h in session.exec(
                    select(HeldPriceRow).where(col(HeldPriceRow.resolved_at).is_(None))
                )
            }
            return snapshot_info(snapshot), [model_price(r, held.get(r.model_id)) for r in rows]

    def debug_sample(self, limit: int, prefer: Sequence[str] = ()) -> DebugSample | None:
        with Session(self.engine) as session:
            row = session.exec(
                select(SnapshotRow)
                .where(col(SnapshotRow.raw_rows).is_not(None))
                .order_by(col(SnapshotRow.id).desc())
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
        query = query.order_by(
            col(PriceEventRow.changed_at).desc(), col(PriceEventRow.model_id), col(PriceEventRow.id)
        ).limit(limit)
        with Session(self.engine) as session:
            return [price_change(e) for e in session.exec(query)]

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
        with Session(self.engine) as session:
            if after is None:
                newest = session.exec(select(sa.func.max(PriceEventRow.id))).first() or 0
                query = query.where(col(PriceEventRow.id) <= newest).order_by(
                    col(PriceEventRow.changed_at).desc(),
                    col(PriceEventRow.model_id),
                    col(PriceEventRow.id),
                )
                rows = list(session.exec(query.limit(limit)))
                return [price_change(e) for e in rows], int(newest)
            query = query.where(col(PriceEventRow.id) > after).order_by(col(PriceEventRow.id))
            rows = list(session.exec(query.limit(limit)))
            position = rows[-1].id if rows else after
            return [price_change(e) for e in rows], int(position or 0)

    def price_history(
        self, model_id: str, limit: int = 200
    ) -> list[tuple[datetime, Decimal | None, Decimal | None]]:
        """A model's price versions, oldest first: (valid_from, input, output)."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(PriceHistoryRow)
                .where(col(PriceHistoryRow.model_id) == model_id)
                .order_by(col(PriceHistoryRow.valid_from).desc())
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
        with Session(self.engine) as session, session.begin():
            return outbox.note_failing(session, self.events, now)

    # -- console sessions ended before their expiry (console/session.py) --------------------

    def revoke_session(self, sid: str, expires_at: datetime, now: datetime) -> None:
        """Record ``sid`` as ended until ``expires_at``; rows already past theirs are purged."""
        with Session(self.engine) as session:
            session.execute(
                delete(RevokedSessionRow).where(col(RevokedSessionRow.expires_at) < now)
            )
            if session.get(RevokedSessionRow, sid) is None:
                session.add(RevokedSessionRow(sid=sid, expires_at=expires_at))
            try:
                session.commit()
            except sa.exc.IntegrityError:  # another worker recorded the same logout
                session.rollback()

    def session_revoked(self, sid: str) -> bool:
        with Session(self.engine) as session:
            return session.get(RevokedSessionRow, sid) is not None


def _changes_where(
    since: datetime | None, model_id: str | None, kind: ChangeKind | None
) -> SelectOfScalar[PriceEventRow]:
    """The change events at or after ``since``, of one model and one kind when given."""
    query = select(PriceEventRow)
    if since is not None:
        query = query.where(col(PriceEventRow.changed_at) >= since)
    if model_id is not None:
        query = query.where(col(PriceEventRow.model_id) == model_id)
    if kind is not None:
        query = query.where(col(PriceEventRow.kind) == kind.value)
    return query
