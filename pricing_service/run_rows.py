"""Refresh runs: started, failed, abandoned, read (Repository's runs; webhooks in the same
transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import (
    CrossSourceReport,
    NormalizedListing,
    RunPhase,
    RunStatus,
    RunSummary,
    SnapshotSource,
)
from pricing_service.errors import RunFenced
from pricing_service.rows import (
    RUN_WITHOUT_PROPOSAL,
    cross_values,
    held_by_run,
    new_id,
    run_summary,
)
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import EventContext, EventType

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

RUN = tables.refresh_run.c
# A new run's JSON columns, given as None: stored as JSON null (not SQL NULL), as every run row
# has been since the first.
NEW_RUN_JSON = {"proposal": None, "cross_source": None}


def read_run(conn: Connection, run_id: int) -> sa.Row[Any] | None:
    """A run's row by id, without its proposal."""
    return conn.execute(sa.select(*RUN_WITHOUT_PROPOSAL).where(RUN.id == run_id)).first()


def abandoned_error(phase: str | None, worker: str | None) -> str:
    """Why a run was closed as abandoned: while doing what, in which process."""
    where = f" while {phase}" if phase else ""
    who = f" ({worker})" if worker else ""
    return f"abandoned{where}: the process running it{who} stopped or lost its lease"


class RunRows:
    """The refresh_run rows."""

    engine: Engine
    events: EventContext

    def start_run(self, trigger: str, now: datetime, worker: str | None = None) -> RunSummary:
        with self.engine.connect() as conn:
            inserted = conn.execute(
                sa.insert(tables.refresh_run).values(
                    trigger=trigger,
                    status=RunStatus.RUNNING.value,
                    started_at=now,
                    worker=worker,
                    phase=RunPhase.FETCHING.value,
                    **NEW_RUN_JSON,
                )
            )
            run_id = new_id(inserted)
            conn.commit()
            row = read_run(conn, run_id)
            assert row is not None
            return run_summary(row)

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
        with self.engine.connect() as conn:
            # One row or NoResultFound, as the ORM's get_one raised.
            row = conn.execute(sa.select(*RUN_WITHOUT_PROPOSAL).where(RUN.id == run_id)).one()
            # Closed by another process meanwhile.
            if RunStatus(row.status) is not RunStatus.RUNNING:
                return run_summary(row)
            conn.execute(
                sa.update(tables.refresh_run)
                .where(RUN.id == run_id)
                .values(
                    status=RunStatus.FAILED.value,
                    finished_at=now,
                    error=error[:2000],
                    rows_seen=rows_seen,
                    priced=priced,
                    unknown=unknown,
                    upstream_latency_ms=latency_ms,
                )
            )
            outbox.note_failing(conn, self.events, now)
            conn.commit()
            failed = read_run(conn, run_id)
            assert failed is not None
            return run_summary(failed)

    def set_run_phase(self, run_id: int, phase: RunPhase) -> None:
        with self.engine.connect() as conn:
            conn.execute(
                sa.update(tables.refresh_run)
                .where(RUN.id == run_id)
                .where(RUN.status == RunStatus.RUNNING.value)
                .values(phase=phase.value)
            )
            conn.commit()

    def abandon_running_runs(self, now: datetime, keep: int | None = None) -> int:
        """Close every run left 'running' (but ``keep``) as failed: abandoned, naming the
        process that ran it and what it was doing.

        Called by the holder of the refresh lease: no other process can be running a run, so a
        run still 'running' belongs to a process that was killed or lost its lease.
        """
        with self.engine.connect() as conn:
            query = sa.select(RUN.id, RUN.phase, RUN.worker).where(
                RUN.status == RunStatus.RUNNING.value
            )
            if keep is not None:
                query = query.where(RUN.id != keep)
            closed = 0
            for row in conn.execute(query.with_for_update()).all():
                conn.execute(
                    sa.update(tables.refresh_run)
                    .where(RUN.id == row.id)
                    .values(
                        status=RunStatus.FAILED.value,
                        finished_at=now,
                        error=abandoned_error(row.phase, row.worker),
                    )
                )
                closed += 1
            conn.commit()
            return closed

    def get_run(self, run_id: int) -> RunSummary | None:
        """One run, with every price it held, open or resolved (and how)."""
        with self.engine.connect() as conn:
            row = read_run(conn, run_id)
            if row is None:
                return None
            return run_summary(row, held_by_run(conn, [run_id]).get(run_id, ()))

    def last_run(self, status: RunStatus | None = None) -> RunSummary | None:
        with self.engine.connect() as conn:
            query = sa.select(*RUN_WITHOUT_PROPOSAL)
            if status is not None:
                query = query.where(RUN.status == status.value)
            row = conn.execute(query.order_by(RUN.id.desc()).limit(1)).first()
            return None if row is None else run_summary(row)

    def recent_runs(self, limit: int) -> list[RunSummary]:
        """The newest runs, each with every price it held, open or resolved."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(*RUN_WITHOUT_PROPOSAL).order_by(RUN.id.desc()).limit(limit)
            ).all()
            held = held_by_run(conn, [r.id for r in rows])
            return [run_summary(r, held.get(r.id, ())) for r in rows]

    def pending_held_runs(self) -> list[RunSummary]:
        """Held runs newer than the last applied run: what an operator may still accept."""
        with self.engine.connect() as conn:
            applied = conn.execute(
                sa.select(sa.func.max(RUN.id)).where(RUN.status == RunStatus.SUCCEEDED.value)
            ).scalar()
            query = sa.select(*RUN_WITHOUT_PROPOSAL).where(RUN.status == RunStatus.HELD.value)
            if applied is not None:
                query = query.where(RUN.id > applied)
            return [run_summary(r) for r in conn.execute(query.order_by(RUN.id.desc()))]

    def hold_run(
        self,
        run_id: int,
        *,
        reason: str,
        listing: NormalizedListing,
        now: datetime,
        latency_ms: int | None,
        cross_source: CrossSourceReport | None = None,
        source: str = SnapshotSource.PRICEPERTOKEN,
    ) -> RunSummary:
        """Record a run the gate held: its listing (and its source) waits for an operator;
        prices unchanged."""
        with self.engine.begin() as conn:
            fenced = conn.execute(
                sa.update(tables.refresh_run)
                .where(RUN.id == run_id)
                .where(RUN.status == RunStatus.RUNNING.value)
                .values(
                    status=RunStatus.HELD.value,
                    finished_at=now,
                    held_reason=reason,
                    rows_seen=listing.rows_seen,
                    priced=listing.priced_count,
                    unknown=listing.unknown_count,
                    upstream_latency_ms=latency_ms,
                    rows_rejected=listing.rows_rejected,
                    proposal={
                        "source": source,
                        "rows_seen": listing.rows_seen,
                        "field_names": list(listing.field_names),
                        "prices": msgspec.to_builtins(list(listing.prices)),
                        "detail_failed": listing.detail_failed,
                    },
                    **(cross_values(cross_source) if cross_source is not None else {}),
                )
            )
            if fenced.rowcount != 1:
                raise RunFenced(f"run {run_id} is no longer running: another process closed it")
            outbox.record(
                conn,
                self.events,
                EventType.RUN_HELD,
                {
                    "run_id": run_id,
                    "reason": reason,
                    "models": len(listing.prices),
                    "priced": listing.priced_count,
                    "rows_seen": listing.rows_seen,
                },
                now,
            )
            outbox.note_failing(conn, self.events, now)
        run = self.get_run(run_id)
        assert run is not None
        return run
