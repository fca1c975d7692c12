"""The outbox's SQL: events written inside the caller's transaction, and their deliveries
claimed, settled, listed and retried.

An event is inserted by the same connection (the same transaction) as the change it reports, with
one delivery row per configured endpoint: both exist if and only if that change committed.
Deliveries are claimed with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL plus a lease
(``claimed_until``): a claimed row is not claimed again until its lease passes, so two workers
never send the same delivery at once, and the lease of a killed worker expires by itself. On
SQLite (one writer at a time) the same conditional update is the claim.
"""

from __future__ import annotations

import importlib
import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import DeliveryStatus, RunStatus
from pricing_service.webhooks.events import EventType

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from sqlalchemy.engine import Connection, Engine

    from pricing_service.webhooks.events import EventContext

JITTER = 0.2  # each retry delay is stretched or shrunk by up to this fraction
MAX_ERROR = 500
PRUNE_BATCH = 1000  # deliveries (and events) deleted per transaction by ``prune``

RUN = tables.refresh_run.c
EVENT = tables.webhook_event.c
DELIVERY = tables.webhook_delivery.c
# The columns a run is judged by (not its proposal: a held run's whole listing).
RUN_STATE = (RUN.id, RUN.status, RUN.started_at, RUN.finished_at, RUN.error, RUN.held_reason)
# A delivery with its event's type, time and data (``_delivery``).
DELIVERY_WITH_EVENT = sa.select(
    tables.webhook_delivery,
    EVENT.type.label("event_type"),
    EVENT.created_at.label("event_created_at"),
    EVENT.data.label("event_data"),
).join(tables.webhook_event, EVENT.id == DELIVERY.event_id)


def record(
    conn: Connection,
    context: EventContext,
    event_type: str,
    data: Mapping[str, Any],
    at: datetime,
    *,
    dedupe_key: str | None = None,
) -> int | None:
    """Insert an event and its deliveries in ``conn``'s transaction; the event id, or None
    when ``dedupe_key`` was already recorded (the event was told already)."""
    values = {"type": event_type, "created_at": at, "data": dict(data), "dedupe_key": dedupe_key}
    dialect = conn.dialect.name
    table = tables.webhook_event
    if dedupe_key is not None and dialect in ("postgresql", "sqlite"):
        # The deployment's own dialect only (the engine imported it already): importing both
        # here put the other one (the PostgreSQL dialect is 2.3 MB) into every serving worker.
        insert = importlib.import_module(f"sqlalchemy.dialects.{dialect}").insert(table)
        statement = insert.values(**values).on_conflict_do_nothing(index_elements=["dedupe_key"])
        event_id = conn.execute(statement.returning(table.c.id)).scalar()
    else:
        event_id = conn.execute(sa.insert(table).values(**values).returning(table.c.id)).scalar()
    if event_id is None:
        return None
    if context.endpoints:
        conn.execute(
            sa.insert(tables.webhook_delivery),
            [
                {
                    "event_id": event_id,
                    "endpoint": url,
                    "format": format_name,
                    "status": DeliveryStatus.PENDING.value,
                    "attempts": 0,
                    "next_attempt_at": at,
                    "created_at": at,
                }
                for format_name, url in context.endpoints
            ],
        )
    return int(event_id)


def note_failing(conn: Connection, context: EventContext, now: datetime) -> int | None:
    """Record ``refresh.failing`` once per failing period: no successful run for
    ``context.failing_after_seconds`` and at least one run failed or held since."""
    last_success = conn.execute(
        sa.select(*RUN_STATE)
        .where(RUN.status == RunStatus.SUCCEEDED.value)
        .order_by(RUN.id.desc())
        .limit(1)
    ).first()
    since_query = sa.select(*RUN_STATE).order_by(RUN.id.desc())
    if last_success is not None:
        since = last_success.finished_at or last_success.started_at
        since_query = since_query.where(RUN.id > last_success.id)
    else:
        first = conn.execute(
            sa.select(*RUN_STATE)
            .where(RUN.status != RunStatus.SEEDED.value)
            .order_by(RUN.id)
            .limit(1)
        ).first()
        if first is None:
            return None
        since = first.started_at
    if (now - since).total_seconds() < context.failing_after_seconds:
        return None
    unsuccessful = conn.execute(
        since_query.where(RUN.status.in_([RunStatus.FAILED.value, RunStatus.HELD.value])).limit(
            1000
        )
    ).all()
    if not unsuccessful:
        return None
    last = unsuccessful[0]
    success_id = last_success.id if last_success is not None else 0
    return record(
        conn,
        context,
        EventType.REFRESH_FAILING,
        {
            "last_success_run_id": last_success.id if last_success is not None else None,
            "last_success_at": since.isoformat() if last_success is not None else None,
            "failing_since": since.isoformat(),
            "failing_after_seconds": context.failing_after_seconds,
            "unsuccessful_runs": len(unsuccessful),
            "last_run_id": last.id,
            "last_status": last.status,
            "last_error": last.error or last.held_reason,
        },
        now,
        dedupe_key=f"{EventType.REFRESH_FAILING}:{success_id}",
    )


def note_recovered(
    conn: Connection, context: EventContext, run_id: int, snapshot_id: int, now: datetime
) -> int | None:
    """Record ``refresh.recovered`` when ``run_id`` (now succeeded) ends a failing period
    that was told (a ``refresh.failing`` keyed on the success before it)."""
    previous = conn.execute(
        sa.select(sa.func.max(RUN.id))
        .where(RUN.status == RunStatus.SUCCEEDED.value)
        .where(RUN.id != run_id)
    ).scalar()
    key = f"{EventType.REFRESH_FAILING}:{previous or 0}"
    failing = conn.execute(sa.select(EVENT.id, EVENT.data).where(EVENT.dedupe_key == key)).first()
    if failing is None:
        return None
    return record(
        conn,
        context,
        EventType.REFRESH_RECOVERED,
        {
            "run_id": run_id,
            "snapshot_id": snapshot_id,
            "failing_since": failing.data.get("failing_since"),
            "failing_event_id": failing.id,
        },
        now,
        dedupe_key=f"{EventType.REFRESH_RECOVERED}:{previous or 0}",
    )


# -- delivery ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Delivery:
    id: int
    event_id: int
    event_type: str
    event_created_at: datetime
    data: dict[str, Any]
    endpoint: str
    format: str
    status: DeliveryStatus
    attempts: int
    next_attempt_at: datetime
    claimed_until: datetime | None
    last_attempt_at: datetime | None
    last_status: int | None
    last_error: str | None
    delivered_at: datetime | None


def _delivery(row: sa.Row[Any]) -> Delivery:
    """A row of ``DELIVERY_WITH_EVENT``."""
    return Delivery(
        id=row.id,
        event_id=row.event_id,
        event_type=row.event_type,
        event_created_at=row.event_created_at,
        data=dict(row.event_data or {}),
        endpoint=row.endpoint,
        format=row.format,
        status=DeliveryStatus(row.status),
        attempts=row.attempts,
        next_attempt_at=row.next_attempt_at,
        claimed_until=row.claimed_until,
        last_attempt_at=row.last_attempt_at,
        last_status=row.last_status,
        last_error=row.last_error,
        delivered_at=row.delivered_at,
    )


def claim_due(
    engine: Engine, worker: str, now: datetime, lease_seconds: float, limit: int
) -> list[Delivery]:
    """Claim up to ``limit`` due deliveries for ``worker`` until ``now + lease``: rows another
    worker holds (locked now, or leased and not expired) are skipped."""
    until = now + timedelta(seconds=lease_seconds)
    free = sa.or_(DELIVERY.claimed_until.is_(None), DELIVERY.claimed_until < now)
    with engine.begin() as conn:
        ids: Sequence[int] = (
            conn.execute(
                sa.select(DELIVERY.id)
                .where(DELIVERY.status == DeliveryStatus.PENDING.value)
                .where(DELIVERY.next_attempt_at <= now)
                .where(free)
                .order_by(DELIVERY.next_attempt_at, DELIVERY.id)
                .limit(limit)
                .with_for_update(skip_locked=True)
            )
            .scalars()
            .all()
        )
        claimed: list[int] = []
        for delivery_id in ids:
            # Conditional: on SQLite (no row locks) a row another worker claimed meanwhile is
            # left to it; on PostgreSQL the row is locked by this transaction already.
            result = conn.execute(
                sa.update(tables.webhook_delivery)
                .where(DELIVERY.id == delivery_id)
                .where(DELIVERY.status == DeliveryStatus.PENDING.value)
                .where(free)
                .values(claimed_until=until, claimed_by=worker)
            )
            if result.rowcount == 1:
                claimed.append(int(delivery_id))
        if not claimed:
            return []
        rows = conn.execute(
            DELIVERY_WITH_EVENT.where(DELIVERY.id.in_(claimed)).order_by(DELIVERY.id)
        )
        return [_delivery(row) for row in rows]


def next_delay(attempts: int, schedule: Sequence[float], rng: random.Random) -> float | None:
    """Seconds before attempt ``attempts + 1`` after ``attempts`` failed, jittered; None when
    the schedule is exhausted (the delivery is dead)."""
    if attempts > len(schedule):
        return None
    base = schedule[attempts - 1]
    return base * (1 + rng.uniform(-JITTER, JITTER))


def settle(
    engine: Engine,
    delivery_id: int,
    worker: str,
    now: datetime,
    *,
    ok: bool,
    status_code: int | None,
    error: str | None,
    retry_in: float | None,
) -> bool:
    """Record one attempt's outcome, if ``worker`` still holds the claim; False otherwise (its
    lease passed and another worker took the delivery over, which sends it again)."""
    values: dict[str, Any] = {
        "attempts": DELIVERY.attempts + 1,
        "last_attempt_at": now,
        "last_status": status_code,
        "last_error": None if ok else (error or "failed")[:MAX_ERROR],
        "claimed_until": None,
        "claimed_by": None,
    }
    if ok:
        values.update(status=DeliveryStatus.DELIVERED.value, delivered_at=now)
    elif retry_in is None:
        values.update(status=DeliveryStatus.DEAD.value)
    else:
        values.update(next_attempt_at=now + timedelta(seconds=retry_in))
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(tables.webhook_delivery)
            .where(DELIVERY.id == delivery_id)
            .where(DELIVERY.claimed_by == worker)
            .where(DELIVERY.status == DeliveryStatus.PENDING.value)
            .values(**values)
        )
        return bool(result.rowcount == 1)


def deliveries(
    engine: Engine, *, status: DeliveryStatus | None = None, limit: int = 100
) -> list[Delivery]:
    """The newest deliveries (of one status), newest first."""
    with engine.connect() as conn:
        query = DELIVERY_WITH_EVENT
        if status is not None:
            query = query.where(DELIVERY.status == status.value)
        query = query.order_by(DELIVERY.id.desc()).limit(limit)
        return [_delivery(row) for row in conn.execute(query)]


def get_delivery(engine: Engine, delivery_id: int) -> Delivery | None:
    with engine.connect() as conn:
        found = conn.execute(DELIVERY_WITH_EVENT.where(DELIVERY.id == delivery_id)).first()
        return None if found is None else _delivery(found)


def counts(engine: Engine) -> dict[str, int]:
    """Deliveries by status (every status present, 0 included)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(DELIVERY.status, sa.func.count().label("n")).group_by(DELIVERY.status)
        )
        found = {status.value: 0 for status in DeliveryStatus}
        found.update({str(r.status): int(r.n) for r in rows})
        return found


def counts_and_oldest(engine: Engine, now: datetime) -> tuple[dict[str, int], float | None]:
    """Deliveries by status, and the age in seconds of the oldest pending one (None: none)."""
    found = counts(engine)
    with engine.connect() as conn:
        oldest = conn.execute(
            sa.select(sa.func.min(DELIVERY.created_at)).where(
                DELIVERY.status == DeliveryStatus.PENDING.value
            )
        ).scalar()
    if oldest is None:
        return found, None
    if isinstance(oldest, str):  # SQLite's min() of a timestamp column comes back as text
        oldest = datetime.fromisoformat(oldest)
    if oldest.tzinfo is None:
        oldest = oldest.replace(tzinfo=now.tzinfo)
    return found, max(0.0, (now - oldest).total_seconds())


def retry(engine: Engine, delivery_id: int, now: datetime) -> Delivery | None:
    """Make a dead delivery pending again, due now, its attempts counted afresh; None when
    ``delivery_id`` is not a dead delivery."""
    with engine.begin() as conn:
        result = conn.execute(
            sa.update(tables.webhook_delivery)
            .where(DELIVERY.id == delivery_id)
            .where(DELIVERY.status == DeliveryStatus.DEAD.value)
            .values(
                status=DeliveryStatus.PENDING.value,
                attempts=0,
                next_attempt_at=now,
                claimed_until=None,
                claimed_by=None,
            )
        )
        if result.rowcount != 1:
            return None
    return get_delivery(engine, delivery_id)


def prune(engine: Engine, before: datetime, limit: int = PRUNE_BATCH) -> tuple[int, int]:
    """Delete up to ``limit`` settled deliveries (delivered, or dead: given up) settled before
    ``before``, then up to ``limit`` events created before it that no delivery refers to any
    more; (deliveries, events) deleted. A pending delivery, and its event, is never deleted; nor
    is an event with a dedupe key (``refresh.failing`` and ``refresh.recovered``: the key is how
    each is told once per failing period, and there are two per period)."""
    settled = sa.or_(
        sa.and_(
            DELIVERY.status == DeliveryStatus.DELIVERED.value,
            DELIVERY.delivered_at < before,
        ),
        sa.and_(
            DELIVERY.status == DeliveryStatus.DEAD.value,
            DELIVERY.last_attempt_at < before,
        ),
    )
    # Not correlated with the DELETE around each (the same table): the ids, at most ``limit``.
    old = sa.select(DELIVERY.id).where(settled).order_by(DELIVERY.id).limit(limit).correlate(None)
    orphans = (
        sa.select(EVENT.id)
        .where(EVENT.created_at < before)
        .where(EVENT.dedupe_key.is_(None))
        .where(~sa.exists().where(DELIVERY.event_id == EVENT.id))
        .order_by(EVENT.id)
        .limit(limit)
        .correlate(None)
    )
    with engine.begin() as conn:
        deliveries = conn.execute(
            sa.delete(tables.webhook_delivery).where(DELIVERY.id.in_(old.scalar_subquery()))
        )
        events = conn.execute(
            sa.delete(tables.webhook_event).where(EVENT.id.in_(orphans.scalar_subquery()))
        )
        return int(deliveries.rowcount), int(events.rowcount)


def events_of(
    engine: Engine, event_type: str | None = None
) -> list[tuple[int, str, dict[str, Any]]]:
    """(id, type, data) of every event, oldest first (tests and the CLI)."""
    with engine.connect() as conn:
        query = sa.select(EVENT.id, EVENT.type, EVENT.data).order_by(EVENT.id)
        if event_type is not None:
            query = query.where(EVENT.type == event_type)
        return [(int(e.id or 0), e.type, dict(e.data or {})) for e in conn.execute(query)]
