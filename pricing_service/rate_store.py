"""The stored USD -> COP rates (table cop_rate): every TRM the service used, with its dates.

One row per (source, valid_from, rate): every worker may fetch the same day's figure, and a
repeat only moves ``checked_at``. The served rate is the newest accepted row (by valid_from);
a held row waits until an operator accepts it (``pricing-service rate --accept ID``), and is
superseded when a later rate is accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import CopRate, RateStatus
from pricing_service.errors import NotFound, NothingToAccept
from pricing_service.rows import new_id

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import date, datetime
    from decimal import Decimal

    from sqlalchemy.engine import Connection, Engine

__all__ = ["RateStore"]

MAX_REASON = 500
RATE = tables.cop_rate.c


def _rate(row: Mapping[Any, Any]) -> CopRate:
    assert row["id"] is not None
    return CopRate(
        rate=row["rate"],
        source=row["source"],
        valid_from=row["valid_from"],
        valid_to=row["valid_to"],
        fetched_at=row["fetched_at"],
        checked_at=row["checked_at"],
        id=row["id"],
        status=RateStatus(row["status"]),
        reason=row["reason"],
        resolved_by=row["resolved_by"],
        resolved_at=row["resolved_at"],
    )


class RateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def current(self, source: str) -> CopRate | None:
        """The newest accepted rate of ``source`` (by the date it is valid from)."""
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(tables.cop_rate)
                .where(RATE.source == source, RATE.status == RateStatus.ACCEPTED.value)
                .order_by(RATE.valid_from.desc(), RATE.id.desc())
                .limit(1)
            ).first()
            return _rate(row._mapping) if row is not None else None

    def held(self, source: str) -> list[CopRate]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tables.cop_rate)
                .where(RATE.source == source, RATE.status == RateStatus.HELD.value)
                .order_by(RATE.id.desc())
            ).all()
            return [_rate(row._mapping) for row in rows]

    def history(self, source: str, limit: int = 30) -> list[CopRate]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tables.cop_rate)
                .where(RATE.source == source)
                .order_by(RATE.valid_from.desc(), RATE.id.desc())
                .limit(limit)
            ).all()
            return [_rate(row._mapping) for row in rows]

    def record(
        self,
        *,
        source: str,
        rate: Decimal,
        valid_from: date,
        valid_to: date | None,
        now: datetime,
        held_reason: str | None,
    ) -> CopRate:
        """Store a fetched rate (accepted, or held with ``held_reason``); a rate already stored
        for the same source, date and figure keeps its status and only moves ``checked_at``."""
        with self.engine.begin() as conn:
            existing = self._same(conn, source, rate, valid_from)
            if existing is None:
                values: dict[str, Any] = {
                    "source": source,
                    "rate": rate,
                    "valid_from": valid_from,
                    "valid_to": valid_to,
                    "fetched_at": now,
                    "checked_at": now,
                    "status": (RateStatus.HELD if held_reason else RateStatus.ACCEPTED).value,
                    "reason": held_reason[:MAX_REASON] if held_reason else None,
                    "resolved_at": None,
                    "resolved_by": None,
                }
                try:
                    with conn.begin_nested():
                        inserted = conn.execute(sa.insert(tables.cop_rate).values(**values))
                except sa.exc.IntegrityError:  # another worker stored it a moment ago
                    existing = self._same(conn, source, rate, valid_from)
                    assert existing is not None
                else:
                    if values["status"] == RateStatus.ACCEPTED.value:
                        self._supersede_held(conn, source, now, by="a later accepted rate")
                    return _rate({**values, "id": new_id(inserted)})
            changed: dict[str, Any] = {"checked_at": now}
            if existing.valid_to is None and valid_to is not None:
                changed["valid_to"] = valid_to
            conn.execute(sa.update(tables.cop_rate).where(RATE.id == existing.id).values(**changed))
            return _rate({**existing._mapping, **changed})

    @staticmethod
    def _same(conn: Connection, source: str, rate: Decimal, valid_from: date) -> sa.Row[Any] | None:
        # DecimalText compares as text: the same figure is always written the same way.
        return conn.execute(
            sa.select(tables.cop_rate).where(
                RATE.source == source,
                RATE.valid_from == valid_from,
                RATE.rate == rate,
            )
        ).first()

    @staticmethod
    def _supersede_held(conn: Connection, source: str, now: datetime, *, by: str) -> None:
        conn.execute(
            sa.update(tables.cop_rate)
            .where(RATE.source == source, RATE.status == RateStatus.HELD.value)
            .values(status=RateStatus.SUPERSEDED.value, resolved_at=now, resolved_by=by[:64])
        )

    def accept(self, rate_id: int, *, by: str, now: datetime) -> CopRate:
        """Serve a held rate: it becomes accepted (and, if it is the newest, the one served);
        other held rates of its source are superseded."""
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(tables.cop_rate).where(RATE.id == rate_id)).first()
            if row is None:
                raise NotFound(f"rate {rate_id} does not exist")
            if row.status != RateStatus.HELD.value:
                raise NothingToAccept(f"rate {rate_id} is {row.status}, not held")
            self._supersede_held(conn, row.source, now, by=f"rate {rate_id} accepted")
            accepted = {
                "status": RateStatus.ACCEPTED.value,
                "resolved_at": now,
                "resolved_by": by[:64],
            }
            conn.execute(sa.update(tables.cop_rate).where(RATE.id == rate_id).values(**accepted))
            return _rate({**row._mapping, **accepted})
