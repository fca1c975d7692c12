"""Refresh runs, snapshots, current prices and price history; returns domain types."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, delete, select, update

from pricing_service.domain import (
    ModelPrice,
    NormalizedCatalogue,
    PriceBasis,
    PriceChange,
    RunStatus,
    RunSummary,
    SnapshotInfo,
)
from pricing_service.tables import (
    ModelPriceRow,
    PriceHistoryRow,
    RefreshLockRow,
    RefreshRunRow,
    SnapshotRow,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Engine

SEED_SOURCE = "seed"
UPSTREAM_SOURCE = "pricepertoken"
KEEP_RAW_SNAPSHOTS = 3  # raw upstream rows are large; older snapshots keep only their metadata


def create_db_engine(database_url: str) -> Engine:
    """An engine with short connect timeouts, so an outage fails fast instead of hanging."""
    if database_url.startswith("sqlite"):
        return sa.create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 15}
        )
    return sa.create_engine(
        database_url,
        pool_pre_ping=True,
        pool_size=5,
        max_overflow=5,
        pool_timeout=5,
        connect_args={"connect_timeout": 3},
    )


@dataclass(frozen=True, slots=True)
class DebugSample:
    snapshot: SnapshotInfo
    field_names: list[str]
    unmatched_ids: list[str]
    raw: dict[str, Any]  # model_id -> raw upstream row (and detail)


class Repository:
    """All SQL of the service. Synchronous: callers on the event loop use a worker thread."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

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

    # -- runs -------------------------------------------------------------------------------

    def start_run(self, trigger: str, now: datetime) -> RunSummary:
        with Session(self.engine) as session:
            row = RefreshRunRow(trigger=trigger, status=RunStatus.RUNNING.value, started_at=now)
            session.add(row)
            session.commit()
            session.refresh(row)
            return _run(row)

    def fail_run(
        self,
        run_id: int,
        now: datetime,
        error: str,
        *,
        rows_seen: int | None = None,
        priced: int | None = None,
        unknown: int | None = None,
        latency_ms: int | None = None,
    ) -> RunSummary:
        with Session(self.engine) as session:
            row = session.get_one(RefreshRunRow, run_id)
            row.status = RunStatus.FAILED.value
            row.finished_at = now
            row.error = error[:2000]
            row.rows_seen = rows_seen
            row.priced = priced
            row.unknown = unknown
            row.upstream_latency_ms = latency_ms
            session.add(row)
            session.commit()
            session.refresh(row)
            return _run(row)

    def fail_stale_runs(self, older_than: datetime, now: datetime) -> int:
        """Runs left 'running' by a killed process are closed as failed."""
        with Session(self.engine) as session:
            result = session.execute(
                update(RefreshRunRow)
                .where(col(RefreshRunRow.status) == RunStatus.RUNNING.value)
                .where(col(RefreshRunRow.started_at) < older_than)
                .values(
                    status=RunStatus.FAILED.value,
                    finished_at=now,
                    error="abandoned: the process running it stopped",
                )
            )
            session.commit()
            return int(result.rowcount)  # type: ignore[attr-defined]

    def get_run(self, run_id: int) -> RunSummary | None:
        with Session(self.engine) as session:
            row = session.get(RefreshRunRow, run_id)
            return None if row is None else _run(row)

    def last_run(self, status: RunStatus | None = None) -> RunSummary | None:
        with Session(self.engine) as session:
            query = select(RefreshRunRow)
            if status is not None:
                query = query.where(col(RefreshRunRow.status) == status.value)
            row = session.exec(query.order_by(col(RefreshRunRow.id).desc()).limit(1)).first()
            return None if row is None else _run(row)

    def recent_runs(self, limit: int) -> list[RunSummary]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(RefreshRunRow).order_by(col(RefreshRunRow.id).desc()).limit(limit)
            )
            return [_run(r) for r in rows]

    # -- snapshots --------------------------------------------------------------------------

    def save_snapshot(
        self,
        *,
        run_id: int | None,
        catalogue: NormalizedCatalogue,
        source: str,
        fetched_at: datetime,
        unmatched_ids: Sequence[str] = (),
        finished_at: datetime | None = None,
        latency_ms: int | None = None,
    ) -> tuple[SnapshotInfo, int]:
        """Store a good snapshot as the current prices, in one transaction.

        Returns the snapshot and the number of price changes it recorded in the history.
        A crash midway leaves the previous snapshot as it was.
        """
        with Session(self.engine) as session, session.begin():
            snapshot = SnapshotRow(
                run_id=run_id,
                fetched_at=fetched_at,
                source=source,
                model_count=len(catalogue.prices),
                priced=catalogue.priced_count,
                unknown=catalogue.unknown_count,
                field_names=list(catalogue.field_names),
                unmatched_ids=list(unmatched_ids),
                raw_rows=_jsonable(catalogue.raw_by_model_id),
            )
            session.add(snapshot)
            session.flush()
            assert snapshot.id is not None
            changes = self._write_history(session, catalogue.prices, snapshot.id, fetched_at)
            session.execute(delete(ModelPriceRow))
            session.add_all(_price_row(p, snapshot.id) for p in catalogue.prices)
            session.flush()
            if run_id is not None:
                session.execute(
                    update(RefreshRunRow)
                    .where(col(RefreshRunRow.id) == run_id)
                    .values(
                        status=RunStatus.SUCCEEDED.value,
                        finished_at=finished_at or fetched_at,
                        rows_seen=catalogue.rows_seen,
                        priced=catalogue.priced_count,
                        unknown=catalogue.unknown_count,
                        changes=changes,
                        upstream_latency_ms=latency_ms,
                        snapshot_id=snapshot.id,
                    )
                )
            keep = (
                select(SnapshotRow.id)
                .order_by(col(SnapshotRow.id).desc())
                .limit(KEEP_RAW_SNAPSHOTS)
            )
            session.execute(
                update(SnapshotRow)
                .where(col(SnapshotRow.id).not_in(keep.scalar_subquery()))
                .where(col(SnapshotRow.raw_rows).is_not(None))
                .values(raw_rows=None)
            )
            info = _snapshot(snapshot)
        return info, changes

    def _write_history(
        self,
        session: Session,
        prices: Sequence[ModelPrice],
        snapshot_id: int,
        at: datetime,
    ) -> int:
        open_rows = {
            row.model_id: row
            for row in session.exec(
                select(PriceHistoryRow).where(col(PriceHistoryRow.valid_to).is_(None))
            )
        }
        changes = 0
        seen: set[str] = set()
        for price in prices:
            seen.add(price.model_id)
            current = open_rows.get(price.model_id)
            new = (price.input_usd_per_million, price.output_usd_per_million)
            if current is not None:
                if (current.input_usd_per_million, current.output_usd_per_million) == new:
                    continue
                current.valid_to = at
                session.add(current)
                changes += 1
            session.add(
                PriceHistoryRow(
                    model_id=price.model_id,
                    input_usd_per_million=new[0],
                    output_usd_per_million=new[1],
                    price_basis=price.price_basis.value,
                    valid_from=at,
                    snapshot_id=snapshot_id,
                )
            )
        for model_id, row in open_rows.items():
            if model_id not in seen:  # no longer listed upstream: its last price stops being valid
                row.valid_to = at
                session.add(row)
        return changes

    def latest_snapshot(self, *, upstream_only: bool = False) -> SnapshotInfo | None:
        with Session(self.engine) as session:
            query = select(SnapshotRow)
            if upstream_only:
                query = query.where(col(SnapshotRow.source) != SEED_SOURCE)
            row = session.exec(query.order_by(col(SnapshotRow.id).desc()).limit(1)).first()
            return None if row is None else _snapshot(row)

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        """The snapshot whose prices are current, with those prices; None before any."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(ModelPriceRow).order_by(col(ModelPriceRow.model_id))))
            if not rows:
                return None
            snapshot = session.get_one(SnapshotRow, rows[0].snapshot_id)
            return _snapshot(snapshot), [_model_price(r) for r in rows]

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
                snapshot=_snapshot(row),
                field_names=list(row.field_names),
                unmatched_ids=list(row.unmatched_ids),
                raw={m: raw[m] for m in chosen},
            )

    # -- history ----------------------------------------------------------------------------

    def changes(self, since: datetime | None, limit: int) -> list[PriceChange]:
        new = aliased(PriceHistoryRow, name="new")
        old = aliased(PriceHistoryRow, name="old")
        query = sa.select(new, old).join(
            old,
            sa.and_(
                col(old.model_id) == col(new.model_id), col(old.valid_to) == col(new.valid_from)
            ),
        )
        if since is not None:
            query = query.where(col(new.valid_from) >= since)
        query = query.order_by(col(new.valid_from).desc(), col(new.model_id)).limit(limit)
        with Session(self.engine) as session:
            pairs: list[tuple[PriceHistoryRow, PriceHistoryRow]] = [
                (row[0], row[1]) for row in session.execute(query)
            ]
            return [
                PriceChange(
                    model_id=n.model_id,
                    changed_at=n.valid_from,
                    old_input_usd_per_million=o.input_usd_per_million,
                    new_input_usd_per_million=n.input_usd_per_million,
                    old_output_usd_per_million=o.output_usd_per_million,
                    new_output_usd_per_million=n.output_usd_per_million,
                )
                for n, o in pairs
            ]

    # -- single-flight lock (used when no Redis is configured) ------------------------------

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


def _run(row: RefreshRunRow) -> RunSummary:
    assert row.id is not None
    return RunSummary(
        id=row.id,
        trigger=row.trigger,
        status=RunStatus(row.status),
        started_at=row.started_at,
        finished_at=row.finished_at,
        rows_seen=row.rows_seen,
        priced=row.priced,
        unknown=row.unknown,
        changes=row.changes,
        error=row.error,
        upstream_latency_ms=row.upstream_latency_ms,
        snapshot_id=row.snapshot_id,
    )


def _snapshot(row: SnapshotRow) -> SnapshotInfo:
    assert row.id is not None
    return SnapshotInfo(
        id=row.id, fetched_at=row.fetched_at, source=row.source, model_count=row.model_count
    )


def _price_row(p: ModelPrice, snapshot_id: int) -> ModelPriceRow:
    return ModelPriceRow(
        model_id=p.model_id,
        slug=p.slug,
        provider=p.provider,
        display_name=p.display_name,
        input_usd_per_million=p.input_usd_per_million,
        output_usd_per_million=p.output_usd_per_million,
        cache_read_usd_per_million=p.cache_read_usd_per_million,
        cache_write_usd_per_million=p.cache_write_usd_per_million,
        price_basis=p.price_basis.value,
        context_window=p.context_window,
        capabilities=list(p.capabilities),
        input_modalities=list(p.input_modalities),
        output_modalities=list(p.output_modalities),
        pricing_source=p.pricing_source,
        snapshot_id=snapshot_id,
    )


def _model_price(r: ModelPriceRow) -> ModelPrice:
    return ModelPrice(
        model_id=r.model_id,
        slug=r.slug,
        provider=r.provider,
        display_name=r.display_name,
        input_usd_per_million=r.input_usd_per_million,
        output_usd_per_million=r.output_usd_per_million,
        price_basis=PriceBasis(r.price_basis),
        cache_read_usd_per_million=r.cache_read_usd_per_million,
        cache_write_usd_per_million=r.cache_write_usd_per_million,
        context_window=r.context_window,
        capabilities=tuple(r.capabilities),
        input_modalities=tuple(r.input_modalities),
        output_modalities=tuple(r.output_modalities),
        pricing_source=r.pricing_source,
    )


def _jsonable(value: Any) -> Any:
    """Upstream JSON holds only JSON types, except numbers our normalization made Decimal."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value
