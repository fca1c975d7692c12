"""Storing a planned snapshot in one transaction: current prices, history, baselines, held
prices, the run's close and the webhook events the change causes; and recording a held run.
Planning is the refresh side's (write.py); this module stores what it planned."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pricing_service import tables
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
    new_id,
    price_row,
)
from pricing_service.run_rows import NEW_RUN_JSON, RunRows
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

    from sqlalchemy.engine import Connection

    from pricing_service.gate import Baselines


KEEP_RAW_SNAPSHOTS = 3  # raw upstream rows are large; older snapshots keep only their metadata
DEFAULT_GRACE_SECONDS = 7 * 24 * 3600  # a delisted model keeps its last price this long


RUN = tables.refresh_run.c
SNAPSHOT = tables.snapshot.c
HELD = tables.held_price.c
BASELINE = tables.price_baseline.c
HISTORY = tables.price_history.c


@dataclass(frozen=True, slots=True)
class SettledHold:
    """An open hold this plan closed, as closed (what the decision event reports)."""

    model_id: str
    run_id: int
    reason: str
    resolution: str
    accepted_figure: str | None


def bulk_insert(conn: Connection, table: sa.Table, rows: Sequence[dict[str, Any]]) -> None:
    """``rows`` (column dicts, all with the same keys, null as None) into ``table`` in the
    connection's transaction: one Core executemany, ids the database's in the order given."""
    if rows:
        conn.execute(sa.insert(table), rows)


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
        with self.engine.begin() as conn:
            if run_id is None and plan.doubts:
                seed_run = conn.execute(
                    sa.insert(tables.refresh_run).values(
                        trigger=RunTrigger.SEED,
                        status=RunStatus.SEEDED.value,
                        started_at=finished_at,
                        finished_at=finished_at,
                        held_reason=f"{len(plan.doubts)} prices of the stored {source} held",
                        **NEW_RUN_JSON,
                    )
                )
                run_id, expect_status = new_id(seed_run), RunStatus.SEEDED
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
                fenced = conn.execute(
                    sa.update(tables.refresh_run)
                    .where(RUN.id == run_id)
                    .where(RUN.status == expect_status.value)
                    .values(**values)
                )
                if fenced.rowcount != 1:
                    raise RunFenced(
                        f"run {run_id} is no longer {expect_status.value}: "
                        "another process closed or applied it"
                    )
            snapshot = conn.execute(
                sa.insert(tables.snapshot).values(
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
            )
            snapshot_id = new_id(snapshot)
            # The bulk rows are column dicts, one executemany per table (see bulk_insert).
            self._write_history(conn, plan.rows, snapshot_id, fetched_at)
            self._write_baselines(conn, plan.rows, snapshot_id, finished_at)
            bulk_insert(
                conn,
                tables.price_event,
                [event_row(e, snapshot_id, fetched_at) for e in plan.events],
            )
            conn.execute(sa.delete(tables.model_price))
            bulk_insert(conn, tables.model_price, [price_row(p, snapshot_id) for p in plan.rows])
            # The holds settled before any new one is written.
            settled = self._settle_holds(conn, plan, finished_at, accepted_by, accepted_figure)
            if plan.doubts:
                assert run_id is not None, "only a run can hold prices"
                bulk_insert(
                    conn, tables.held_price, [held_row(d, run_id, finished_at) for d in plan.doubts]
                )
            self._record_plan_events(
                conn,
                plan,
                run_id=run_id,
                snapshot_id=snapshot_id,
                at=finished_at,
                expect_status=expect_status,
                accepted_by=accepted_by,
                accepted_figure=accepted_figure,
                settled=settled,
            )
            if run_id is not None:
                run_values: dict[str, Any] = {"snapshot_id": snapshot_id}
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
                conn.execute(
                    sa.update(tables.refresh_run).where(RUN.id == run_id).values(**run_values)
                )
            keep = sa.select(SNAPSHOT.id).order_by(SNAPSHOT.id.desc()).limit(KEEP_RAW_SNAPSHOTS)
            conn.execute(
                sa.update(tables.snapshot)
                .where(SNAPSHOT.id.not_in(keep.scalar_subquery()))
                .where(SNAPSHOT.raw_rows.is_not(None))
                .values(raw_rows=None)
            )
            # As written (not read back): what the store was given.
            info = SnapshotInfo(
                id=snapshot_id, fetched_at=fetched_at, source=str(source), model_count=plan.listed
            )
        return info, len(plan.events)

    def _record_plan_events(
        self,
        conn: Connection,
        plan: Plan,
        *,
        run_id: int | None,
        snapshot_id: int,
        at: datetime,
        expect_status: RunStatus,
        accepted_by: str | None,
        accepted_figure: str | None,
        settled: Sequence[SettledHold],
    ) -> None:
        """The webhook events of an applied plan, in its transaction: the prices it changed,
        the prices it held, an operator's decision, the end of a failing period."""
        context = self.events
        rate = context.usd_to_cop
        if plan.events:
            changes = [Change(e.model_id, e.kind.value, e.old, e.new) for e in plan.events]
            outbox.record(
                conn,
                context,
                EventType.PRICES_CHANGED,
                prices_changed(snapshot_id, changes, rate),
                at,
            )
        for doubt in plan.doubts:
            categories = context.curated.get(doubt.model_id.lower(), ())
            outbox.record(
                conn,
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
                conn,
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
            outbox.note_recovered(conn, context, run_id, snapshot_id, at)

    @staticmethod
    def _settle_holds(
        conn: Connection,
        plan: Plan,
        now: datetime,
        by: str | None,
        figure: str | None = None,
    ) -> list[SettledHold]:
        """Close the open holds this plan resolves, saying how: an operator's acceptance, the
        upstream back at the model's last accepted figures, or superseded (another figure
        served, or the model held again). Returns the rows closed."""
        if not plan.settled:
            return []
        closed: list[SettledHold] = []
        updates: list[dict[str, Any]] = []
        held_again = {d.model_id for d in plan.doubts}
        for row in conn.execute(
            sa.select(HELD.id, HELD.model_id, HELD.run_id, HELD.reason, HELD.accepted_figure)
            .where(HELD.resolved_at.is_(None))
            .where(HELD.model_id.in_(sorted(plan.settled)))
        ):
            accepted_figure = row.accepted_figure
            if row.model_id in plan.accepted:
                resolution = HoldResolution.ACCEPTED
                accepted_figure = figure or AcceptedFigure.PROPOSED.value
            elif row.model_id in plan.at_baseline and row.model_id not in held_again:
                resolution = HoldResolution.RETURNED
            else:
                resolution = HoldResolution.SUPERSEDED
            updates.append(
                {
                    "held_id": row.id,
                    "accepted_figure": accepted_figure,
                    "resolved_at": now,
                    "resolution": resolution.value,
                    "resolved_by": by,
                }
            )
            closed.append(
                SettledHold(row.model_id, row.run_id, row.reason, resolution.value, accepted_figure)
            )
        if updates:
            conn.execute(
                sa.update(tables.held_price).where(HELD.id == sa.bindparam("held_id")), updates
            )
        return closed

    @staticmethod
    def _write_baselines(
        conn: Connection, prices: Sequence[ModelPrice], snapshot_id: int, at: datetime
    ) -> None:
        """Every figure served becomes its model's and kind's baseline; a null leaves the
        baseline as it was (see gate.Baselines)."""
        stored = {
            (r.model_id, r.kind): r.usd_per_million
            for r in conn.execute(
                sa.select(BASELINE.model_id, BASELINE.kind, BASELINE.usd_per_million).where(
                    BASELINE.model_id.in_(sorted({p.model_id for p in prices}))
                )
            )
        }
        inserts: list[dict[str, Any]] = []
        updates: list[dict[str, Any]] = []
        for price in prices:
            for kind, value in price.figures().items():
                key = (price.model_id, kind.value)
                if stored.get(key) == value:
                    continue
                if key in stored:
                    updates.append(
                        {
                            "key_model_id": price.model_id,
                            "key_kind": kind.value,
                            "usd_per_million": value,
                            "accepted_at": at,
                            "snapshot_id": snapshot_id,
                        }
                    )
                    continue
                inserts.append(
                    {
                        "model_id": price.model_id,
                        "kind": kind.value,
                        "usd_per_million": value,
                        "accepted_at": at,
                        "snapshot_id": snapshot_id,
                    }
                )
        bulk_insert(conn, tables.price_baseline, inserts)
        if updates:
            # By primary key, one executemany.
            conn.execute(
                sa.update(tables.price_baseline)
                .where(BASELINE.model_id == sa.bindparam("key_model_id"))
                .where(BASELINE.kind == sa.bindparam("key_kind")),
                updates,
            )

    def price_baselines(self) -> Baselines:
        """The last accepted non-null figure of every model and kind (see gate.Baselines)."""
        found: dict[str, dict[PriceKind, Decimal]] = {}
        with self.engine.connect() as conn:
            for r in conn.execute(
                sa.select(BASELINE.model_id, BASELINE.kind, BASELINE.usd_per_million)
            ):
                found.setdefault(r.model_id, {})[PriceKind(r.kind)] = r.usd_per_million
        return found

    @staticmethod
    def _write_history(
        conn: Connection, prices: Sequence[ModelPrice], snapshot_id: int, at: datetime
    ) -> None:
        """Open a history row for each new figure; close rows of models no longer served."""
        # model id -> (row id, its figures), only the columns it needs
        open_rows: dict[str, tuple[int | None, tuple[Decimal | None, Decimal | None]]] = {
            r.model_id: (r.id, (r.input_usd_per_million, r.output_usd_per_million))
            for r in conn.execute(
                sa.select(
                    HISTORY.id,
                    HISTORY.model_id,
                    HISTORY.input_usd_per_million,
                    HISTORY.output_usd_per_million,
                ).where(HISTORY.valid_to.is_(None))
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
            conn.execute(
                sa.update(tables.price_history).where(HISTORY.id.in_(closed)).values(valid_to=at)
            )
        bulk_insert(conn, tables.price_history, opened)
