"""Storing a planned snapshot in one transaction: current prices, history, baselines, held
prices, the run's close and the webhook events the change causes; and recording a held run.
Planning is the refresh side's (write.py); this module stores what it planned."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlmodel import Session, SQLModel, col, delete, select, update

from pricing_service.domain import (
    AcceptedFigure,
    CrossSourceReport,
    HoldResolution,
    ModelPrice,
    NormalizedListing,
    PriceKind,
    RunStatus,
    RunTrigger,
    SnapshotInfo,
)
from pricing_service.errors import RunFenced
from pricing_service.gate import Plan
from pricing_service.rows import (
    cross_values,
    event_row,
    held_row,
    history_row,
    jsonable,
    price_row,
    snapshot_info,
)
from pricing_service.run_rows import RunRows
from pricing_service.tables import (
    HeldPriceRow,
    ModelPriceRow,
    PriceBaselineRow,
    PriceEventRow,
    PriceHistoryRow,
    RefreshRunRow,
    SnapshotRow,
)
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import (
    Change,
    EventType,
    figures,
    price_figures,
    prices_changed,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    from pricing_service.gate import Baselines


KEEP_RAW_SNAPSHOTS = 3  # raw upstream rows are large; older snapshots keep only their metadata
DEFAULT_GRACE_SECONDS = 7 * 24 * 3600  # a delisted model keeps its last price this long


def bulk_insert(session: Session, model: type[SQLModel], rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` (column dicts, all with the same keys, null as None) into ``model``'s table in
    the session's transaction: one Core executemany, ids the database's in the order given.

    No ORM objects (building them was half a store's CPU) and not the ORM's bulk insert either,
    which drops the None values and so splits the rows into one statement per set of non-null
    columns (some 500 statements a store, most of them single-row, on PostgreSQL)."""
    if rows:
        session.execute(sa.insert(model.__table__), rows)  # type: ignore[attr-defined]


class SnapshotWrites(RunRows):
    """The write transactions of a snapshot (a mixin of Repository)."""

    def apply_plan(
        self,
        plan: Plan,
        *,
        run_id: int | None,
        listing: NormalizedListing | None,
        source: str,
        fetched_at: datetime,
        unmatched_ids: Sequence[str] = (),
        finished_at: datetime,
        latency_ms: int | None = None,
        expect_status: RunStatus = RunStatus.RUNNING,
        accepted_by: str | None = None,
        accepted_figure: str | None = None,
        cross_source: CrossSourceReport | None = None,
    ) -> tuple[SnapshotInfo, int]:
        """Store a plan as the new current snapshot, in one transaction.

        The run (when given) must still be in ``expect_status``: a run whose lease was lost and
        that another process closed as abandoned cannot publish (the fence). A crash midway
        leaves the previous snapshot as it was. A plan without a run that holds prices (the
        seed) records a ``seeded`` run to own them: they are accepted like any run's.
        ``cross_source`` is recorded on the run.
        """
        with Session(self.engine) as session, session.begin():
            if run_id is None and plan.doubts:
                seed_run = RefreshRunRow(
                    trigger=RunTrigger.SEED,
                    status=RunStatus.SEEDED.value,
                    started_at=finished_at,
                    finished_at=finished_at,
                    held_reason=f"{len(plan.doubts)} prices of the stored {source} held",
                )
                session.add(seed_run)
                session.flush()
                run_id, expect_status = seed_run.id, RunStatus.SEEDED
            if run_id is not None:
                values: dict[str, Any] = {
                    "status": RunStatus.SEEDED.value
                    if expect_status is RunStatus.SEEDED
                    else RunStatus.SUCCEEDED.value,
                    "snapshot_id": None,
                }
                if accepted_by is not None and expect_status is RunStatus.HELD:
                    values.update(accepted_at=finished_at, accepted_by=accepted_by, proposal=None)
                else:
                    values["finished_at"] = finished_at
                fenced = session.execute(
                    update(RefreshRunRow)
                    .where(col(RefreshRunRow.id) == run_id)
                    .where(col(RefreshRunRow.status) == expect_status.value)
                    .values(**values)
                )
                if fenced.rowcount != 1:  # type: ignore[attr-defined]
                    raise RunFenced(
                        f"run {run_id} is no longer {expect_status.value}: "
                        "another process closed or applied it"
                    )
            snapshot = SnapshotRow(
                run_id=run_id,
                fetched_at=fetched_at,
                source=str(source),
                model_count=plan.listed,
                priced=plan.priced,
                unknown=plan.listed - plan.priced,
                field_names=list(listing.field_names) if listing else [],
                unmatched_ids=list(unmatched_ids),
                raw_rows=jsonable(listing.raw_by_model_id) if listing else None,
            )
            session.add(snapshot)
            session.flush()
            assert snapshot.id is not None
            # The bulk rows are column dicts, one executemany per table (see bulk_insert).
            self._write_history(session, plan.rows, snapshot.id, fetched_at)
            self._write_baselines(session, plan.rows, snapshot.id, finished_at)
            bulk_insert(
                session, PriceEventRow, [event_row(e, snapshot.id, fetched_at) for e in plan.events]
            )
            session.execute(delete(ModelPriceRow))
            bulk_insert(session, ModelPriceRow, [price_row(p, snapshot.id) for p in plan.rows])
            settled = self._settle_holds(session, plan, finished_at, accepted_by, accepted_figure)
            session.flush()  # the holds settled before any new one is written
            if plan.doubts:
                assert run_id is not None, "only a run can hold prices"
                bulk_insert(
                    session, HeldPriceRow, [held_row(d, run_id, finished_at) for d in plan.doubts]
                )
            self._record_plan_events(
                session,
                plan,
                run_id=run_id,
                snapshot_id=snapshot.id,
                at=finished_at,
                expect_status=expect_status,
                accepted_by=accepted_by,
                accepted_figure=accepted_figure,
                settled=settled,
            )
            if run_id is not None:
                run_values: dict[str, Any] = {"snapshot_id": snapshot.id}
                if cross_source is not None:
                    run_values.update(cross_values(cross_source))
                if listing is not None and expect_status in (RunStatus.RUNNING, RunStatus.SEEDED):
                    run_values.update(
                        rows_seen=listing.rows_seen,
                        priced=listing.priced_count,
                        unknown=listing.unknown_count,
                        changes=len(plan.events),
                        upstream_latency_ms=latency_ms,
                        rows_rejected=listing.rows_rejected,
                    )
                session.execute(
                    update(RefreshRunRow)
                    .where(col(RefreshRunRow.id) == run_id)
                    .values(**run_values)
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
            info = snapshot_info(snapshot)
        return info, len(plan.events)

    def _record_plan_events(
        self,
        session: Session,
        plan: Plan,
        *,
        run_id: int | None,
        snapshot_id: int,
        at: datetime,
        expect_status: RunStatus,
        accepted_by: str | None,
        accepted_figure: str | None,
        settled: Sequence[HeldPriceRow],
    ) -> None:
        """The webhook events of an applied plan, in its transaction: the prices it changed,
        the prices it held, an operator's decision, the end of a failing period."""
        context = self.events
        rate = context.usd_to_cop
        if plan.events:
            changes = [Change(e.model_id, e.kind.value, e.old, e.new) for e in plan.events]
            outbox.record(
                session,
                context,
                EventType.PRICES_CHANGED,
                prices_changed(snapshot_id, changes, rate),
                at,
            )
        for doubt in plan.doubts:
            categories = context.curated.get(doubt.model_id.lower(), ())
            outbox.record(
                session,
                context,
                EventType.PRICE_HELD,
                {
                    "model_id": doubt.model_id,
                    "run_id": run_id,
                    "reason": doubt.reason.value,
                    "detail": doubt.detail,
                    "curated": bool(categories),
                    "categories": list(categories),
                    "proposed": price_figures(doubt.proposed, rate),
                    "served": price_figures(doubt.accepted, rate),
                },
                at,
            )
        if accepted_by is not None:
            if expect_status is RunStatus.HELD:
                decisions: list[dict[str, Any]] = [
                    {"model_id": None, "figure": AcceptedFigure.PROPOSED.value, "scope": "run"}
                ]
                decided_run = run_id
            else:
                accepted = {p.model_id: p for p in plan.rows if p.model_id in plan.accepted}
                decisions = []
                decided_run = None
                for row in sorted(settled, key=lambda r: r.model_id):
                    if row.resolution != HoldResolution.ACCEPTED.value:
                        continue
                    if row.model_id not in accepted:
                        continue
                    decided_run = row.run_id
                    price = accepted[row.model_id]
                    decisions.append(
                        {
                            "model_id": row.model_id,
                            "figure": row.accepted_figure,
                            "scope": "price",
                            "reason": row.reason,
                            **figures(
                                price.input_usd_per_million, price.output_usd_per_million, rate
                            ),
                        }
                    )
            outbox.record(
                session,
                context,
                EventType.DECISION_RECORDED,
                {
                    "by": accepted_by,
                    "run_id": decided_run,
                    "figure": accepted_figure or AcceptedFigure.PROPOSED.value,
                    "snapshot_id": snapshot_id,
                    "decisions": decisions,
                },
                at,
            )
        if run_id is not None and expect_status in (RunStatus.RUNNING, RunStatus.HELD):
            outbox.note_recovered(session, context, run_id, snapshot_id, at)

    @staticmethod
    def _settle_holds(
        session: Session,
        plan: Plan,
        now: datetime,
        by: str | None,
        figure: str | None = None,
    ) -> list[HeldPriceRow]:
        """Close the open holds this plan resolves, saying how: an operator's acceptance, the
        upstream back at the model's last accepted figures, or superseded (another figure
        served, or the model held again). Returns the rows closed."""
        if not plan.settled:
            return []
        closed: list[HeldPriceRow] = []
        held_again = {d.model_id for d in plan.doubts}
        for row in session.exec(
            select(HeldPriceRow)
            .where(col(HeldPriceRow.resolved_at).is_(None))
            .where(col(HeldPriceRow.model_id).in_(sorted(plan.settled)))
        ):
            if row.model_id in plan.accepted:
                resolution = HoldResolution.ACCEPTED
                row.accepted_figure = figure or AcceptedFigure.PROPOSED.value
            elif row.model_id in plan.at_baseline and row.model_id not in held_again:
                resolution = HoldResolution.RETURNED
            else:
                resolution = HoldResolution.SUPERSEDED
            row.resolved_at = now
            row.resolution = resolution.value
            row.resolved_by = by
            session.add(row)
            closed.append(row)
        return closed

    @staticmethod
    def _write_baselines(
        session: Session, prices: Sequence[ModelPrice], snapshot_id: int, at: datetime
    ) -> None:
        """Every figure served becomes its model's and kind's baseline; a null leaves the
        baseline as it was (see gate.Baselines)."""
        stored = {
            (model_id, kind): value
            for model_id, kind, value in session.exec(
                select(
                    col(PriceBaselineRow.model_id),
                    col(PriceBaselineRow.kind),
                    col(PriceBaselineRow.usd_per_million),
                ).where(col(PriceBaselineRow.model_id).in_(sorted({p.model_id for p in prices})))
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for price in prices:
            for kind, value in price.figures().items():
                key = (price.model_id, kind.value)
                if stored.get(key) == value:
                    continue
                values = {
                    "model_id": price.model_id,
                    "kind": kind.value,
                    "usd_per_million": value,
                    "accepted_at": at,
                    "snapshot_id": snapshot_id,
                }
                (updates if key in stored else inserts).append(values)
        bulk_insert(session, PriceBaselineRow, inserts)
        if updates:
            session.execute(update(PriceBaselineRow), updates)

    def price_baselines(self) -> Baselines:
        """The last accepted non-null figure of every model and kind (see gate.Baselines)."""
        found: dict[str, dict[PriceKind, Decimal]] = {}
        with Session(self.engine) as session:
            for model_id, kind, value in session.exec(
                select(
                    col(PriceBaselineRow.model_id),
                    col(PriceBaselineRow.kind),
                    col(PriceBaselineRow.usd_per_million),
                )
            ):
                found.setdefault(model_id, {})[PriceKind(kind)] = value
        return found

    @staticmethod
    def _write_history(
        session: Session, prices: Sequence[ModelPrice], snapshot_id: int, at: datetime
    ) -> None:
        """Open a history row for each new figure; close rows of models no longer served."""
        # model id -> (row id, its figures), read as columns (no ORM objects)
        open_rows: dict[str, tuple[int | None, tuple[Decimal | None, Decimal | None]]] = {
            model_id: (row_id, (input_usd, output_usd))
            for row_id, model_id, input_usd, output_usd in session.exec(
                select(
                    col(PriceHistoryRow.id),
                    col(PriceHistoryRow.model_id),
                    col(PriceHistoryRow.input_usd_per_million),
                    col(PriceHistoryRow.output_usd_per_million),
                ).where(col(PriceHistoryRow.valid_to).is_(None))
            )
        }
        closed: list[int | None] = []
        opened: list[dict[str, Any]] = []
        seen: set[str] = set()
        for price in prices:
            seen.add(price.model_id)
            current = open_rows.get(price.model_id)
            new = (price.input_usd_per_million, price.output_usd_per_million)
            if current is not None:
                if current[1] == new:
                    continue
                closed.append(current[0])
            opened.append(history_row(price, snapshot_id, at))
        # Dropped after its grace: its last price stops being valid.
        closed.extend(row_id for model_id, (row_id, _) in open_rows.items() if model_id not in seen)
        if closed:
            session.execute(
                update(PriceHistoryRow)
                .where(col(PriceHistoryRow.id).in_(closed))
                .values(valid_to=at)
            )
        bulk_insert(session, PriceHistoryRow, opened)
