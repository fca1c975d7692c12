"""Refresh runs, snapshots, current prices and price history; returns domain types."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import defer
from sqlmodel import Session, col, delete, select, update

from pricing_service.db_watchdog import WATCHDOG
from pricing_service.domain import (
    AcceptedFigure,
    ChangeKind,
    CrossSourceEntry,
    CrossSourceReport,
    HeldPrice,
    HoldReason,
    HoldResolution,
    ModelPrice,
    NormalizedListing,
    PriceBasis,
    PriceChange,
    PriceKind,
    RunPhase,
    RunStatus,
    RunSummary,
    SnapshotInfo,
    SnapshotSource,
)
from pricing_service.errors import RunFenced, StorageError, StorageUnavailable
from pricing_service.gate import Baseline, Doubt, Event, Plan, plan_snapshot
from pricing_service.tables import (
    HeldPriceRow,
    ModelPriceRow,
    PriceBaselineRow,
    PriceEventRow,
    PriceHistoryRow,
    RefreshLockRow,
    RefreshRunRow,
    RevokedSessionRow,
    SnapshotRow,
)
from pricing_service.webhooks import outbox
from pricing_service.webhooks.events import (
    DECISION_RECORDED,
    PRICE_HELD,
    PRICES_CHANGED,
    RUN_HELD,
    Change,
    EventContext,
    figures,
    price_figures,
    prices_changed,
)

if TYPE_CHECKING:
    from collections.abc import Collection, Mapping, Sequence

    from sqlalchemy.engine import Engine

    from pricing_service.domain import PriceDecision, SecondPrice
    from pricing_service.gate import Baselines, Figures


def abandoned_error(phase: str | None, worker: str | None) -> str:
    """Why a run was closed as abandoned: while doing what, in which process."""
    where = f" while {phase}" if phase else ""
    who = f" ({worker})" if worker else ""
    return f"abandoned{where}: the process running it{who} stopped or lost its lease"


KEEP_RAW_SNAPSHOTS = 3  # raw upstream rows are large; older snapshots keep only their metadata
DEFAULT_GRACE_SECONDS = 7 * 24 * 3600  # a delisted model keeps its last price this long
SEED_TRIGGER = "seed"
PROPOSED_FIGURE = AcceptedFigure.PROPOSED.value
SECOND_SOURCE_FIGURE = AcceptedFigure.SECOND_SOURCE.value
FIGURES = tuple(figure.value for figure in AcceptedFigure)


# Every wait on PostgreSQL has a bound; what each one covers:
# a statement waiting on a row lock (a dropped holder's locks are freed by the server below);
PG_LOCK_TIMEOUT_MS = 10_000
# a transaction left open and idle (a client that went away mid-transaction);
PG_IDLE_IN_TRANSACTION_MS = 60_000
# any one statement, lock waits included, ended by the server: the service's longest (a
# 5,000-model snapshot's batched inserts, a change-feed page) take well under a second;
PG_STATEMENT_TIMEOUT_MS = 30_000
# data sent and not acknowledged this long (a cut route): both sides drop the connection;
PG_TCP_USER_TIMEOUT_MS = 10_000
# connecting, startup and authentication included (psycopg enforces it);
CONNECT_TIMEOUT_SECONDS = 3
# a thread waiting for a free pooled connection;
POOL_TIMEOUT_SECONDS = 5
# a checkout's ping: a live server answers in milliseconds; past this the connection is
# discarded and the pool connects afresh (bounded by CONNECT_TIMEOUT_SECONDS);
PING_TIMEOUT_SECONDS = 2.0
# and any answer at all (db_watchdog.py): the server's own statement timeout plus this margin,
# so a statement the server ended itself is answered first (a clean error, the connection kept)
# and the watchdog cuts only a server or route that answers nothing.
ANSWER_MARGIN_SECONDS = 5.0


def _json_text(value: Any) -> str:
    return msgspec.json.encode(value).decode()


# JSON columns through msgspec, not the json module: a held run's proposal (5,000 models) took
# json.dumps 170 ms and json.loads 140 ms, each one C call holding the GIL, so the serving event
# loop stopped for as long (make bench, /health during a refresh). msgspec does it in a fraction.
# NaN, which json.dumps wrote as a bare NaN (PostgreSQL refused it), is written as null.
_JSON = {"json_serializer": _json_text, "json_deserializer": msgspec.json.decode}


def create_db_engine(
    database_url: str, *, statement_timeout_ms: int = PG_STATEMENT_TIMEOUT_MS
) -> Engine:
    """An engine on which no wait is unbounded: an outage or a stall fails in seconds."""
    if database_url.startswith("sqlite"):
        return sa.create_engine(
            database_url, connect_args={"check_same_thread": False, "timeout": 15}, **_JSON
        )
    engine = sa.create_engine(
        database_url,
        **_JSON,
        # No pool_pre_ping: its ping had no bound; _bound_every_wait pings with one.
        pool_size=5,
        max_overflow=5,
        pool_timeout=POOL_TIMEOUT_SECONDS,
        connect_args={
            "connect_timeout": CONNECT_TIMEOUT_SECONDS,
            # A connection cut between us and PostgreSQL (a proxy, a network partition) can
            # leave the server holding our transaction and its row locks: without these, the
            # next lease or snapshot write waited on them forever. Both sides now notice a dead
            # peer within about 30 s (unacknowledged data within PG_TCP_USER_TIMEOUT), the
            # server ends a transaction left idle, and no statement runs longer than
            # statement_timeout nor waits on a lock longer than PG_LOCK_TIMEOUT.
            "keepalives": 1,
            "keepalives_idle": 10,
            "keepalives_interval": 5,
            "keepalives_count": 3,
            "tcp_user_timeout": PG_TCP_USER_TIMEOUT_MS,
            "options": (
                f"-c statement_timeout={statement_timeout_ms} "
                f"-c lock_timeout={PG_LOCK_TIMEOUT_MS} "
                f"-c idle_in_transaction_session_timeout={PG_IDLE_IN_TRANSACTION_MS} "
                "-c tcp_keepalives_idle=10 -c tcp_keepalives_interval=5 "
                f"-c tcp_keepalives_count=3 -c tcp_user_timeout={PG_TCP_USER_TIMEOUT_MS}"
            ),
        },
    )
    _bound_every_wait(engine, statement_timeout_ms / 1000 + ANSWER_MARGIN_SECONDS)
    return engine


_FRESH = "pricing_fresh"  # connection_record.info: made for this checkout, no ping needed


def _bound_every_wait(engine: Engine, answer_seconds: float) -> None:
    """Arm the watchdog around every wait of the engine's connections for the server's answer.

    Nothing else bounds a peer that accepted the connection and then never answers (the
    reasons are in db_watchdog.py). Each wait's start re-arms the connection's deadline: a
    statement, a commit or rollback, the pool's rollback on return, a checkout's ping, the
    dialect's first queries on a new connection. A deadline left armed once the answer came is
    harmless (only a connection with a command in flight is cut) and is dropped at checkin.
    """
    dbapi_error = engine.dialect.loaded_dbapi.Error

    def arm(dbapi_connection: Any, what: str, seconds: float = answer_seconds) -> None:
        if dbapi_connection is not None:
            WATCHDOG.arm(dbapi_connection, seconds, what)

    def disarm(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            WATCHDOG.disarm(dbapi_connection)

    def connected(dbapi_connection: Any, record: Any) -> None:
        # First in line (insert=True): the dialect's first queries run without cursor events.
        arm(dbapi_connection, "first queries")
        record.info[_FRESH] = True

    def checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        # SQLAlchemy's documented pessimistic ping ("Disconnect Handling - Pessimistic",
        # custom), bounded: a DisconnectionError makes the pool discard the connection and
        # check out a fresh one (two tries), which needs no ping of its own.
        if record.info.pop(_FRESH, False):
            return
        arm(dbapi_connection, "ping", PING_TIMEOUT_SECONDS)
        try:
            engine.dialect.do_ping(dbapi_connection)
        except dbapi_error as exc:
            raise sa.exc.DisconnectionError(f"ping failed ({type(exc).__name__})") from exc
        finally:
            disarm(dbapi_connection)

    def before_statement(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool
    ) -> None:
        arm(cursor.connection, "statement")

    def after_statement(
        conn: Any, cursor: Any, statement: Any, params: Any, context: Any, many: bool
    ) -> None:
        disarm(cursor.connection)

    def ending(what: str) -> Any:
        def listener(conn: sa.Connection) -> None:
            try:
                dbapi_connection = conn.connection.dbapi_connection
            except sa.exc.SQLAlchemyError:  # closed or invalidated: nothing will wait
                return
            arm(dbapi_connection, what)

        return listener

    event.listen(engine, "connect", connected, insert=True)
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "before_cursor_execute", before_statement)
    event.listen(engine, "after_cursor_execute", after_statement)
    event.listen(engine, "commit", ending("commit"))
    event.listen(engine, "rollback", ending("rollback"))
    event.listen(engine, "reset", lambda dbapi_connection, *_: arm(dbapi_connection, "reset"))
    for name in ("checkin", "close", "close_detached", "invalidate", "soft_invalidate"):
        event.listen(engine, name, disarm)


@dataclass(frozen=True, slots=True)
class DebugSample:
    snapshot: SnapshotInfo
    field_names: list[str]
    unmatched_ids: list[str]
    raw: dict[str, Any]  # model_id -> raw upstream row (and detail)


# A held run's proposal is its whole listing (5,000 models: megabytes of JSON, decoded in one
# C call that holds the GIL for 100+ ms): loaded only where it is used (held_proposal).
_WITHOUT_PROPOSAL = (defer(RefreshRunRow.proposal),)  # type: ignore[arg-type]


class Repository:
    """All SQL of the service. Synchronous: callers on the event loop use a worker thread."""

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

    # -- runs -------------------------------------------------------------------------------

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
            row = session.get_one(RefreshRunRow, run_id, options=_WITHOUT_PROPOSAL)
            # Closed by another process meanwhile.
            if RunStatus(row.status) is not RunStatus.RUNNING:
                return _run(row)
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
            return _run(row)

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
            for row in session.exec(query.options(*_WITHOUT_PROPOSAL).with_for_update()):
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
            row = session.get(RefreshRunRow, run_id, options=_WITHOUT_PROPOSAL)
            if row is None:
                return None
            return _run(row, _held_by_run(session, [run_id]).get(run_id, ()))

    def last_run(self, status: RunStatus | None = None) -> RunSummary | None:
        with Session(self.engine) as session:
            query = select(RefreshRunRow).options(*_WITHOUT_PROPOSAL)
            if status is not None:
                query = query.where(col(RefreshRunRow.status) == status.value)
            row = session.exec(query.order_by(col(RefreshRunRow.id).desc()).limit(1)).first()
            return None if row is None else _run(row)

    def recent_runs(self, limit: int) -> list[RunSummary]:
        """The newest runs, each with every price it held, open or resolved."""
        with Session(self.engine) as session:
            rows = list(
                session.exec(
                    select(RefreshRunRow)
                    .options(*_WITHOUT_PROPOSAL)
                    .order_by(col(RefreshRunRow.id).desc())
                    .limit(limit)
                )
            )
            ids = [r.id for r in rows if r.id is not None]
            held = _held_by_run(session, ids)
            return [_run(r, held.get(r.id or 0, ())) for r in rows]

    # -- snapshots --------------------------------------------------------------------------

    def save_snapshot(
        self,
        *,
        run_id: int | None,
        listing: NormalizedListing,
        source: SnapshotSource,
        fetched_at: datetime,
        unmatched_ids: Sequence[str] = (),
        finished_at: datetime | None = None,
        latency_ms: int | None = None,
        grace_seconds: float = DEFAULT_GRACE_SECONDS,
        free_ids: Collection[str] = (),
        second_prices: Mapping[str, SecondPrice] | None = None,
        cross_source: CrossSourceReport | None = None,
        decisions: Mapping[str, PriceDecision] | None = None,
    ) -> tuple[SnapshotInfo, int]:
        """Apply a whole listing to the current prices (see ``gate.plan_snapshot``).

        ``second_prices``: the second source's figures, so the listing passes the same per-model
        checks as a run (the seed does: a price it contradicts is stored held, not served).
        Returns the snapshot and the number of events (changes, arrivals, removals) it recorded.
        """
        plan = plan_snapshot(
            self.current_prices(),
            listing.prices,
            now=fetched_at,
            grace_seconds=grace_seconds,
            free_ids=free_ids,
            second_prices=second_prices,
            vouched=self.vouched_figures(),
            baselines=self.price_baselines(),
            detail_failed=listing.detail_failed,
            decisions=decisions,
        )
        if cross_source is not None:
            held = {d.model_id for d in plan.doubts}
            cross_source = replace(
                cross_source,
                disagreements=tuple(
                    replace(e, held=e.model_id in held) for e in cross_source.disagreements
                ),
            )
        return self.apply_plan(
            plan,
            run_id=run_id,
            listing=listing,
            source=source,
            fetched_at=fetched_at,
            unmatched_ids=unmatched_ids,
            finished_at=finished_at or fetched_at,
            latency_ms=latency_ms,
            cross_source=cross_source,
        )

    def apply_plan(
        self,
        plan: Plan,
        *,
        run_id: int | None,
        listing: NormalizedListing | None,
        source: SnapshotSource,
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
                    trigger=SEED_TRIGGER,
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
                source=SnapshotSource(source).value,
                model_count=plan.listed,
                priced=plan.priced,
                unknown=plan.listed - plan.priced,
                field_names=list(listing.field_names) if listing else [],
                unmatched_ids=list(unmatched_ids),
                raw_rows=_jsonable(listing.raw_by_model_id) if listing else None,
            )
            session.add(snapshot)
            session.flush()
            assert snapshot.id is not None
            self._write_history(session, plan.rows, snapshot.id, fetched_at)
            self._write_baselines(session, plan.rows, snapshot.id, finished_at)
            session.add_all(_event_row(e, snapshot.id, fetched_at) for e in plan.events)
            session.execute(delete(ModelPriceRow))
            session.add_all(_price_row(p, snapshot.id) for p in plan.rows)
            settled = self._settle_holds(session, plan, finished_at, accepted_by, accepted_figure)
            if plan.doubts:
                assert run_id is not None, "only a run can hold prices"
                session.add_all(_held_row(d, run_id, finished_at) for d in plan.doubts)
            session.flush()
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
                    run_values.update(_cross_values(cross_source))
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
            info = _snapshot(snapshot)
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
                session, context, PRICES_CHANGED, prices_changed(snapshot_id, changes, rate), at
            )
        for doubt in plan.doubts:
            categories = context.curated.get(doubt.model_id.lower(), ())
            outbox.record(
                session,
                context,
                PRICE_HELD,
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
                    {"model_id": None, "figure": PROPOSED_FIGURE, "scope": "run"}
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
                DECISION_RECORDED,
                {
                    "by": accepted_by,
                    "run_id": decided_run,
                    "figure": accepted_figure or PROPOSED_FIGURE,
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
                row.accepted_figure = figure or PROPOSED_FIGURE
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
            (r.model_id, r.kind): r.usd_per_million
            for r in session.exec(
                select(PriceBaselineRow).where(
                    col(PriceBaselineRow.model_id).in_(sorted({p.model_id for p in prices}))
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
                values = {
                    "model_id": price.model_id,
                    "kind": kind.value,
                    "usd_per_million": value,
                    "accepted_at": at,
                    "snapshot_id": snapshot_id,
                }
                (updates if key in stored else inserts).append(values)
        if inserts:
            session.execute(sa.insert(PriceBaselineRow), inserts)
        if updates:
            session.execute(update(PriceBaselineRow), updates)

    def price_baselines(self) -> Baselines:
        """The last accepted non-null figure of every model and kind (see gate.Baselines)."""
        found: dict[str, dict[PriceKind, Decimal]] = {}
        with Session(self.engine) as session:
            for row in session.exec(select(PriceBaselineRow)):
                found.setdefault(row.model_id, {})[PriceKind(row.kind)] = row.usd_per_million
        return found

    @staticmethod
    def _write_history(
        session: Session, prices: Sequence[ModelPrice], snapshot_id: int, at: datetime
    ) -> None:
        """Open a history row for each new figure; close rows of models no longer served."""
        open_rows = {
            row.model_id: row
            for row in session.exec(
                select(PriceHistoryRow).where(col(PriceHistoryRow.valid_to).is_(None))
            )
        }
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
            if model_id not in seen:  # dropped after its grace: its last price stops being valid
                row.valid_to = at
                session.add(row)

    def hold_run(
        self,
        run_id: int,
        *,
        reason: str,
        listing: NormalizedListing,
        now: datetime,
        latency_ms: int | None,
        cross_source: CrossSourceReport | None = None,
    ) -> RunSummary:
        """Record a run the gate held: its listing waits for an operator; prices unchanged."""
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
                        "rows_seen": listing.rows_seen,
                        "field_names": list(listing.field_names),
                        "prices": msgspec.to_builtins(list(listing.prices)),
                        "detail_failed": listing.detail_failed,
                    },
                    **(_cross_values(cross_source) if cross_source is not None else {}),
                )
            )
            if fenced.rowcount != 1:  # type: ignore[attr-defined]
                raise RunFenced(f"run {run_id} is no longer running: another process closed it")
            outbox.record(
                session,
                self.events,
                RUN_HELD,
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

    def held_proposal(self, run_id: int) -> NormalizedListing | None:
        with Session(self.engine) as session:
            row = session.get(RefreshRunRow, run_id)
            if row is None or row.proposal is None:
                return None
            data = row.proposal
            return NormalizedListing(
                prices=tuple(msgspec.convert(data["prices"], list[ModelPrice])),
                rows_seen=int(data["rows_seen"]),
                field_names=tuple(data["field_names"]),
                detail_failed=dict(data.get("detail_failed") or {}),
            )

    def open_held_prices(self, run_id: int | None = None) -> list[HeldPrice]:
        with Session(self.engine) as session:
            query = select(HeldPriceRow).where(col(HeldPriceRow.resolved_at).is_(None))
            if run_id is not None:
                query = query.where(col(HeldPriceRow.run_id) == run_id)
            rows = session.exec(query.order_by(col(HeldPriceRow.model_id)))
            return [_held(r) for r in rows]

    def accepted_held_prices(self, limit: int) -> list[HeldPrice]:
        """The held prices operators accepted, newest first: who, when, and which figure."""
        with Session(self.engine) as session:
            query = (
                select(HeldPriceRow)
                .where(col(HeldPriceRow.resolution) == HoldResolution.ACCEPTED.value)
                .order_by(col(HeldPriceRow.resolved_at).desc(), col(HeldPriceRow.id).desc())
                .limit(limit)
            )
            return [_held(r) for r in session.exec(query)]

    def held_proposals(
        self, run_id: int, model_ids: Collection[str] = (), figure: str = PROPOSED_FIGURE
    ) -> list[ModelPrice]:
        """The proposed rows of a run's open held prices (all, or just ``model_ids``).

        ``figure="second_source"``: with the second source's figures instead of the upstream's
        (only prices held for that reason have them; the others are left out).
        """
        with Session(self.engine) as session:
            query = (
                select(HeldPriceRow)
                .where(col(HeldPriceRow.resolved_at).is_(None))
                .where(col(HeldPriceRow.run_id) == run_id)
            )
            if model_ids:
                query = query.where(col(HeldPriceRow.model_id).in_(sorted(model_ids)))
            found = []
            for row in session.exec(query):
                price = msgspec.convert(row.proposal, ModelPrice)
                if figure == SECOND_SOURCE_FIGURE:
                    if row.second_source is None:
                        continue
                    price = replace(
                        price,
                        input_usd_per_million=row.second_input_usd_per_million,
                        output_usd_per_million=row.second_output_usd_per_million,
                        pricing_source=row.second_source,
                    )
                found.append(price)
            return found

    def vouched_figures(self) -> dict[str, Figures]:
        """Figures operators accepted as proposed (a held price, any reason), by model id.

        The newest acceptance of each model: an operator checked that figure, so the second
        source does not hold it again while the upstream keeps stating exactly it.
        """
        with Session(self.engine) as session:
            rows = session.exec(
                select(HeldPriceRow)
                .where(col(HeldPriceRow.resolution) == HoldResolution.ACCEPTED.value)
                .where(col(HeldPriceRow.accepted_figure) == PROPOSED_FIGURE)
                .order_by(col(HeldPriceRow.resolved_at), col(HeldPriceRow.id))
            )
            return {
                r.model_id: (r.proposed_input_usd_per_million, r.proposed_output_usd_per_million)
                for r in rows
            }

    def current_prices(self) -> dict[str, ModelPrice]:
        """The current prices by model id (listed and within their grace), without holds."""
        with Session(self.engine) as session:
            return {r.model_id: _model_price(r) for r in session.exec(select(ModelPriceRow))}

    def baseline(self) -> Baseline | None:
        """The last accepted snapshot, seed included, counted over the models still listed."""
        with Session(self.engine) as session:
            snapshot_id = session.exec(select(sa.func.max(ModelPriceRow.snapshot_id))).first()
            if snapshot_id is None:
                return None
            snapshot = session.get_one(SnapshotRow, snapshot_id)
            return Baseline(
                snapshot_id=snapshot_id,
                source=SnapshotSource(snapshot.source),
                models=snapshot.model_count,
                priced=snapshot.priced,
            )

    def current_snapshot_id(self) -> int | None:
        """Which snapshot is current: the database is the one truth (Redis only caches it)."""
        with Session(self.engine) as session:
            value = session.exec(select(sa.func.max(ModelPriceRow.snapshot_id))).first()
            return None if value is None else int(value)

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
                .options(*_WITHOUT_PROPOSAL)
                .where(col(RefreshRunRow.status) == RunStatus.HELD.value)
            )
            if applied is not None:
                query = query.where(col(RefreshRunRow.id) > applied)
            return [_run(r) for r in session.exec(query.order_by(col(RefreshRunRow.id).desc()))]

    def latest_snapshot(self, *, upstream_only: bool = False) -> SnapshotInfo | None:
        with Session(self.engine) as session:
            query = select(SnapshotRow)
            if upstream_only:
                query = query.where(col(SnapshotRow.source) != SnapshotSource.SEED.value)
            row = session.exec(query.order_by(col(SnapshotRow.id).desc()).limit(1)).first()
            return None if row is None else _snapshot(row)

    def current_snapshot(self) -> tuple[SnapshotInfo, list[ModelPrice]] | None:
        """The snapshot whose prices are current, with those prices; None before any."""
        with Session(self.engine) as session:
            rows = list(session.exec(select(ModelPriceRow).order_by(col(ModelPriceRow.model_id))))
            if not rows:
                return None
            snapshot = session.get_one(SnapshotRow, rows[0].snapshot_id)
            held = {
                h.model_id: _held(h)
                for h in session.exec(
                    select(HeldPriceRow).where(col(HeldPriceRow.resolved_at).is_(None))
                )
            }
            return _snapshot(snapshot), [_model_price(r, held.get(r.model_id)) for r in rows]

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

    def changes(
        self,
        since: datetime | None,
        limit: int,
        *,
        model_id: str | None = None,
        kind: ChangeKind | None = None,
    ) -> list[PriceChange]:
        query = select(PriceEventRow)
        if since is not None:
            query = query.where(col(PriceEventRow.changed_at) >= since)
        if model_id is not None:
            query = query.where(col(PriceEventRow.model_id) == model_id)
        if kind is not None:
            query = query.where(col(PriceEventRow.kind) == kind.value)
        query = query.order_by(
            col(PriceEventRow.changed_at).desc(), col(PriceEventRow.model_id), col(PriceEventRow.id)
        ).limit(limit)
        with Session(self.engine) as session:
            return [
                PriceChange(
                    model_id=e.model_id,
                    changed_at=e.changed_at,
                    kind=ChangeKind(e.kind),
                    old_input_usd_per_million=e.old_input_usd_per_million,
                    new_input_usd_per_million=e.new_input_usd_per_million,
                    old_output_usd_per_million=e.old_output_usd_per_million,
                    new_output_usd_per_million=e.new_output_usd_per_million,
                )
                for e in session.exec(query)
            ]

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
        query = select(PriceEventRow)
        if since is not None:
            query = query.where(col(PriceEventRow.changed_at) >= since)
        if model_id is not None:
            query = query.where(col(PriceEventRow.model_id) == model_id)
        if kind is not None:
            query = query.where(col(PriceEventRow.kind) == kind.value)
        with Session(self.engine) as session:
            if after is None:
                newest = session.exec(select(sa.func.max(PriceEventRow.id))).first() or 0
                query = query.where(col(PriceEventRow.id) <= newest).order_by(
                    col(PriceEventRow.changed_at).desc(),
                    col(PriceEventRow.model_id),
                    col(PriceEventRow.id),
                )
                rows = list(session.exec(query.limit(limit)))
                return [_change(e) for e in rows], int(newest)
            query = query.where(col(PriceEventRow.id) > after).order_by(col(PriceEventRow.id))
            rows = list(session.exec(query.limit(limit)))
            position = rows[-1].id if rows else after
            return [_change(e) for e in rows], int(position or 0)

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

    def accepted_holds(self, run_id: int) -> list[tuple[str, str | None]]:
        """(model id, figure applied) of each price held in ``run_id`` an operator accepted."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(HeldPriceRow.model_id, HeldPriceRow.accepted_figure)
                .where(col(HeldPriceRow.run_id) == run_id)
                .where(col(HeldPriceRow.resolution) == "accepted")
                .order_by(col(HeldPriceRow.model_id))
            )
            return [(model_id, figure) for model_id, figure in rows]

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


def _run(row: RefreshRunRow, held: tuple[HeldPrice, ...] = ()) -> RunSummary:
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
        held_reason=row.held_reason,
        accepted_at=row.accepted_at,
        accepted_by=row.accepted_by,
        rows_rejected=row.rows_rejected,
        held_prices=held,
        cross_source=_cross_report(row),
    )


def _snapshot(row: SnapshotRow) -> SnapshotInfo:
    assert row.id is not None
    return SnapshotInfo(
        id=row.id,
        fetched_at=row.fetched_at,
        source=SnapshotSource(row.source),
        model_count=row.model_count,
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
        web_search_usd_per_thousand=p.web_search_usd_per_thousand,
        request_usd_per_thousand=p.request_usd_per_thousand,
        call_prices_source=p.call_prices_source,
        price_basis=p.price_basis.value,
        context_window=p.context_window,
        capabilities=list(p.capabilities),
        input_modalities=list(p.input_modalities),
        output_modalities=list(p.output_modalities),
        pricing_source=p.pricing_source,
        snapshot_id=snapshot_id,
        listed=p.listed,
        delisted_at=p.delisted_at,
        benchmarks=dict(p.benchmarks) if p.benchmarks else None,
        tokens_per_second=p.tokens_per_second,
        time_to_first_token=p.time_to_first_token,
        description=p.description,
    )


def _model_price(r: ModelPriceRow, held: HeldPrice | None = None) -> ModelPrice:
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
        web_search_usd_per_thousand=r.web_search_usd_per_thousand,
        request_usd_per_thousand=r.request_usd_per_thousand,
        call_prices_source=r.call_prices_source,
        context_window=r.context_window,
        capabilities=tuple(r.capabilities),
        input_modalities=tuple(r.input_modalities),
        output_modalities=tuple(r.output_modalities),
        pricing_source=r.pricing_source,
        listed=r.listed,
        delisted_at=r.delisted_at,
        held=held,
        benchmarks=tuple(sorted((str(k), _float(v)) for k, v in (r.benchmarks or {}).items())),
        tokens_per_second=r.tokens_per_second,
        time_to_first_token=r.time_to_first_token,
        description=r.description,
    )


def _event_row(event: Event, snapshot_id: int, at: datetime) -> PriceEventRow:
    return PriceEventRow(
        model_id=event.model_id,
        kind=event.kind.value,
        changed_at=at,
        old_input_usd_per_million=event.old.input_usd_per_million if event.old else None,
        new_input_usd_per_million=event.new.input_usd_per_million if event.new else None,
        old_output_usd_per_million=event.old.output_usd_per_million if event.old else None,
        new_output_usd_per_million=event.new.output_usd_per_million if event.new else None,
        snapshot_id=snapshot_id,
    )


def _change(e: PriceEventRow) -> PriceChange:
    return PriceChange(
        model_id=e.model_id,
        changed_at=e.changed_at,
        kind=ChangeKind(e.kind),
        old_input_usd_per_million=e.old_input_usd_per_million,
        new_input_usd_per_million=e.new_input_usd_per_million,
        old_output_usd_per_million=e.old_output_usd_per_million,
        new_output_usd_per_million=e.new_output_usd_per_million,
    )


def _held_row(doubt: Doubt, run_id: int, at: datetime) -> HeldPriceRow:
    accepted = doubt.accepted
    return HeldPriceRow(
        model_id=doubt.model_id,
        run_id=run_id,
        reason=doubt.reason.value,
        detail=doubt.detail,
        proposed_input_usd_per_million=doubt.proposed.input_usd_per_million,
        proposed_output_usd_per_million=doubt.proposed.output_usd_per_million,
        accepted_input_usd_per_million=accepted.input_usd_per_million if accepted else None,
        accepted_output_usd_per_million=accepted.output_usd_per_million if accepted else None,
        proposal=msgspec.to_builtins(doubt.proposed),
        held_at=at,
        second_input_usd_per_million=doubt.second.input_usd_per_million if doubt.second else None,
        second_output_usd_per_million=doubt.second.output_usd_per_million if doubt.second else None,
        second_source=doubt.second.source if doubt.second else None,
    )


def _held(row: HeldPriceRow) -> HeldPrice:
    return HeldPrice(
        model_id=row.model_id,
        run_id=row.run_id,
        reason=HoldReason(row.reason),
        detail=row.detail,
        proposed_input_usd_per_million=row.proposed_input_usd_per_million,
        proposed_output_usd_per_million=row.proposed_output_usd_per_million,
        accepted_input_usd_per_million=row.accepted_input_usd_per_million,
        accepted_output_usd_per_million=row.accepted_output_usd_per_million,
        held_at=row.held_at,
        second_input_usd_per_million=row.second_input_usd_per_million,
        second_output_usd_per_million=row.second_output_usd_per_million,
        second_source=row.second_source,
        accepted_figure=row.accepted_figure,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        resolution=HoldResolution(row.resolution) if row.resolution else None,
    )


def _held_by_run(session: Session, run_ids: Sequence[int]) -> dict[int, tuple[HeldPrice, ...]]:
    """Every price each of ``run_ids`` held, open or resolved, by model id."""
    if not run_ids:
        return {}
    found: dict[int, list[HeldPrice]] = {}
    for row in session.exec(
        select(HeldPriceRow)
        .where(col(HeldPriceRow.run_id).in_(sorted(run_ids)))
        .order_by(col(HeldPriceRow.run_id), col(HeldPriceRow.model_id), col(HeldPriceRow.id))
    ):
        found.setdefault(row.run_id, []).append(_held(row))
    return {run_id: tuple(held) for run_id, held in found.items()}


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _cross_values(report: CrossSourceReport) -> dict[str, Any]:
    """The run columns of a second-source comparison (exact decimals as strings)."""
    return {
        "cross_agree": report.agree,
        "cross_disagree": report.disagree,
        "cross_uncovered": report.uncovered,
        "second_source_version": report.version[:64],
        "cross_source": {
            "version": report.version,
            "disagreements": [
                {
                    "model_id": e.model_id,
                    "provider": e.provider,
                    "pricing_source": e.pricing_source,
                    "pricing_source_is_author": e.pricing_source_is_author,
                    "input_usd_per_million": _text(e.input_usd_per_million),
                    "output_usd_per_million": _text(e.output_usd_per_million),
                    "second_input_usd_per_million": _text(e.second_input_usd_per_million),
                    "second_output_usd_per_million": _text(e.second_output_usd_per_million),
                    "second_source": e.second_source,
                    "factor": _text(e.factor),
                    "held": e.held,
                }
                for e in report.disagreements
            ],
        },
    }


def _cross_report(row: RefreshRunRow) -> CrossSourceReport | None:
    if row.cross_agree is None or row.cross_disagree is None or row.cross_uncovered is None:
        return None
    data = row.cross_source or {}
    return CrossSourceReport(
        version=str(data.get("version") or row.second_source_version or ""),
        agree=row.cross_agree,
        disagree=row.cross_disagree,
        uncovered=row.cross_uncovered,
        disagreements=tuple(
            CrossSourceEntry(
                model_id=e["model_id"],
                provider=e["provider"],
                pricing_source=e.get("pricing_source"),
                pricing_source_is_author=bool(e.get("pricing_source_is_author")),
                input_usd_per_million=_decimal(e.get("input_usd_per_million")),
                output_usd_per_million=_decimal(e.get("output_usd_per_million")),
                second_input_usd_per_million=_decimal(e.get("second_input_usd_per_million")),
                second_output_usd_per_million=_decimal(e.get("second_output_usd_per_million")),
                second_source=str(e.get("second_source") or ""),
                factor=_decimal(e.get("factor")),
                held=bool(e.get("held")),
            )
            for e in data.get("disagreements", [])
        ),
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


# Driver errors that mean "the database is not there right now", as opposed to a bug.
_UNAVAILABLE = (
    sa.exc.OperationalError,
    sa.exc.InterfaceError,
    sa.exc.DisconnectionError,
    sa.exc.TimeoutError,  # no pooled connection free within pool_timeout
)


def storage_error(exc: BaseException) -> StorageError | None:
    """A SQLAlchemy or driver error as a StorageError whose detail is safe to show anyone (the
    error's kind only: no SQL, no parameters, no URL); None for anything else."""
    if isinstance(exc, StorageError):
        return exc
    if not isinstance(exc, sa.exc.SQLAlchemyError):
        return None
    original = getattr(exc, "orig", None)
    kind = type(original).__name__ if original is not None else type(exc).__name__
    if isinstance(exc, _UNAVAILABLE):
        return StorageUnavailable(f"database unavailable ({kind}); try again shortly")
    return StorageError(f"database error ({kind})")
