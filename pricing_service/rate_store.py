"""The stored USD -> COP rates (table cop_rate): every TRM the service used, with its dates.

One row per (source, valid_from, rate): every worker may fetch the same day's figure, and a
repeat only moves ``checked_at``. The served rate is the newest accepted row (by valid_from);
a held row waits until an operator accepts it (``pricing-service rate --accept ID``), and is
superseded when a later rate is accepted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Session, col, select, update

from pricing_service.domain import CopRate, RateStatus
from pricing_service.errors import NotFound, NothingToAccept
from pricing_service.tables import CopRateRow

if TYPE_CHECKING:
    from datetime import date, datetime
    from decimal import Decimal

    from sqlalchemy.engine import Engine

__all__ = ["RateStore"]

MAX_REASON = 500


def _rate(row: CopRateRow) -> CopRate:
    assert row.id is not None
    return CopRate(
        rate=row.rate,
        source=row.source,
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        fetched_at=row.fetched_at,
        checked_at=row.checked_at,
        id=row.id,
        status=RateStatus(row.status),
        reason=row.reason,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
    )


class RateStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def current(self, source: str) -> CopRate | None:
        """The newest accepted rate of ``source`` (by the date it is valid from)."""
        with Session(self.engine) as session:
            row = session.exec(
                select(CopRateRow)
                .where(CopRateRow.source == source, CopRateRow.status == RateStatus.ACCEPTED.value)
                .order_by(col(CopRateRow.valid_from).desc(), col(CopRateRow.id).desc())
                .limit(1)
            ).first()
            return _rate(row) if row is not None else None

    def held(self, source: str) -> list[CopRate]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(CopRateRow)
                .where(CopRateRow.source == source, CopRateRow.status == RateStatus.HELD.value)
                .order_by(col(CopRateRow.id).desc())
            ).all()
            return [_rate(row) for row in rows]

    def history(self, source: str, limit: int = 30) -> list[CopRate]:
        with Session(self.engine) as session:
            rows = session.exec(
                select(CopRateRow)
                .where(CopRateRow.source == source)
                .order_by(col(CopRateRow.valid_from).desc(), col(CopRateRow.id).desc())
                .limit(limit)
            ).all()
            return [_rate(row) for row in rows]

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
        with Session(self.engine) as session, session.begin():
            existing = self._same(session, source, rate, valid_from)
            if existing is None:
                row = CopRateRow(
                    source=source,
                    rate=rate,
                    valid_from=valid_from,
                    valid_to=valid_to,
                    fetched_at=now,
                    checked_at=now,
                    status=(RateStatus.HELD if held_reason else RateStatus.ACCEPTED).value,
                    reason=held_reason[:MAX_REASON] if held_reason else None,
                )
                try:
                    with session.begin_nested():
                        session.add(row)
                        session.flush()
                except sa.exc.IntegrityError:  # another worker stored it a moment ago
                    existing = self._same(session, source, rate, valid_from)
                    assert existing is not None
                else:
                    if row.status == RateStatus.ACCEPTED.value:
                        self._supersede_held(session, source, now, by="a later accepted rate")
                    return _rate(row)
            existing.checked_at = now
            if existing.valid_to is None and valid_to is not None:
                existing.valid_to = valid_to
            session.add(existing)
            session.flush()
            return _rate(existing)

    @staticmethod
    def _same(session: Session, source: str, rate: Decimal, valid_from: date) -> CopRateRow | None:
        # DecimalText compares as text: the same figure is always written the same way.
        return session.exec(
            select(CopRateRow).where(
                CopRateRow.source == source,
                CopRateRow.valid_from == valid_from,
                CopRateRow.rate == rate,
            )
        ).first()

    @staticmethod
    def _supersede_held(session: Session, source: str, now: datetime, *, by: str) -> None:
        session.execute(
            update(CopRateRow)
            .where(
                col(CopRateRow.source) == source,
                col(CopRateRow.status) == RateStatus.HELD.value,
            )
            .values(status=RateStatus.SUPERSEDED.value, resolved_at=now, resolved_by=by[:64])
        )

    def accept(self, rate_id: int, *, by: str, now: datetime) -> CopRate:
        """Serve a held rate: it becomes accepted (and, if it is the newest, the one served);
        other held rates of its source are superseded."""
        with Session(self.engine) as session, session.begin():
            row = session.get(CopRateRow, rate_id)
            if row is None:
                raise NotFound(f"rate {rate_id} does not exist")
            if row.status != RateStatus.HELD.value:
                raise NothingToAccept(f"rate {rate_id} is {row.status}, not held")
            self._supersede_held(session, row.source, now, by=f"rate {rate_id} accepted")
            row.status = RateStatus.ACCEPTED.value
            row.resolved_at = now
            row.resolved_by = by[:64]
            session.add(row)
            session.flush()
            return _rate(row)
