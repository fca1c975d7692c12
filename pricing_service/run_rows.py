"""Refresh runs: started, failed, abandoned, read (Repository's runs; webhooks in the same
transaction)."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa
from sqlmodel import Session, col, select, update

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
    WITHOUT_PROPOSAL,
    cross_values,
    held_by_run,
    run_summary,
)
from pricing_service.tables import (
    RefreshRunRow,
)
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import EventContext, EventType

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


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
        with Session(self.engine) as session:
            row = RefreshRunRow(
                trigger=trigger,
                status=RunStatus.RUNNING.value,
                started_at=now,
                worker=worker,
                phase=RunPhase.FETCHING.value,
            )
            session.add(row)
            session.commit()
            session.refresh(row)
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
        with Session(self.engine) as session:
            row = session.get_one(RefreshRunRow, run_id, options=WITHOUT_PROPOSAL)
            # Closed by another process meanwhile.
            if RunStatus(row.status) is not RunStatus.RUNNING:
                return run_summary(row)
            row.status = RunStatus.FAILED.value
            row.finished_at = now
            row.error = error[:2000]
            row.rows_seen = rows_seen
            row.priced = priced
            row.unknown = unknown
            row.upstream_latency_ms = latency_ms
            session.add(row)
            session.flush()
            outbox.note_failing(session, self.events, now)
            session.commit()
            session.refresh(row)
            return run_summary(row)

    def set_run_phase(self, run_id: int, phase: RunPhase) -> None:
        with Session(self.engine) as session:
            session.execute(
                update(RefreshRunRow)
                .where(col(RefreshRunRow.id) == run_id)
                .where(col(RefreshRunRow.status) == RunStatus.RUNNING.value)
                .values(phase=phase.value)
            )
            session.commit()

    def abandon_running_runs(self, now: datetime, keep: int | None = None) -> int:
        """Close every run left 'running' (but ``keep``) as failed: abandoned, naming the
        process that ran it and what it was doing.

        Called by the holder of the refresh lease: no other process can be running a run, so a
        run still 'running' belongs to a process that was killed or lost its lease.
        """
        with Session(self.engine) as session:
            query = select(RefreshRunRow).where(
                col(RefreshRunRow.status) == RunStatus.RUNNING.value
            )
            if keep is not None:
                query = query.where(col(RefreshRunRow.id) != keep)
            closed = 0
            for row in session.exec(query.options(*WITHOUT_PROPOSAL).with_for_update()):
                row.status = RunStatus.FAILED.value
                row.finished_at = now
                row.error = abandoned_error(row.phase, row.worker)
                session.add(row)
                closed += 1
            session.commit()
            return closed

    def get_run(self, run_id: int) -> RunSummary | None:
        """One run, with every price it held, open or resolved (and how)."""
        with Session(self.engine) as session:
            row = session.get(RefreshRunRow, run_id, options=WITHOUT_PROPOSAL)
            if row is None:
                return None
            return run_summary(row, held_by_run(session, [run_id]).get(run_id, ()))

    def last_run(self, status: RunStatus | None = None) -> RunSummary | None:
        with Session(self.engine) as session:
            query = select(RefreshRunRow).options(*WITHOUT_PROPOSAL)
            if status is not None:
                query = query.where(col(RefreshRunRow.status) == status.value)
            row = session.exec(query.order_by(col(RefreshRunRow.id).desc()).limit(1)).first()
            return None if row is None else run_summary(row)

    def recent_runs(self, limit: int) -> list[RunSummary]:
        """The newest runs, each with every price it held, open or resolved."""
        with Session(self.engine) as session:
            rows = list(
                session.exec(
                    select(RefreshRunRow)
                    .options(*WITHOUT_PROPOSAL)
                    .order_by(col(RefreshRunRow.id).desc())
                    .limit(limit)
                )
            )
            ids = [r.id for r in rows if r.id is not None]
            held = held_by_run(session, ids)
            return [run_summary(r, held.get(r.id or 0, ())) for r in rows]

    def pending_held_runs(self) -> list[RunSummary]:
        """Held runs newer than the last applied run: what an operator may still accept."""
        with Session(self.engine) as session:
            applied = session.exec(
                select(sa.func.max(RefreshRunRow.id)).where(
                    col(RefreshRunRow.status) == RunStatus.SUCCEEDED.value
                )
            ).first()
            query = (
                select(RefreshRunRow)
                .options(*WITHOUT_PROPOSAL)
                .where(col(RefreshRunRow.status) == RunStatus.HELD.value)
            )
            if applied is not None:
                query = query.where(col(RefreshRunRow.id) > applied)
            return [
                run_summary(r) for r in session.exec(query.order_by(col(RefreshRunRow.id).desc()))
            ]

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
        with Session(self.engine) as session, session.begin():
            fenced = session.execute(
                update(RefreshRunRow)
                .where(col(RefreshRunRow.id) == run_id)
                .where(col(RefreshRunRow.status) == RunStatus.RUNNING.value)
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
            if fenced.rowcount != 1:  # type: ignore[attr-defined]
                raise RunFenced(f"run {run_id} is no longer running: another process closed it")
            outbox.record(
                session,
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
            outbox.note_failing(session, self.events, now)
        run = self.get_run(run_id)
        assert run is not None
        return run
