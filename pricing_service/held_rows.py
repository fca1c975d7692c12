"""Held prices and held runs as stored: what waits for an operator, what operators accepted."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec
from sqlmodel import Session, col, select

from pricing_service.domain import (
    AcceptedFigure,
    HeldPrice,
    HoldResolution,
    ModelPrice,
    NormalizedListing,
    SnapshotSource,
)
from pricing_service.rows import held_price
from pricing_service.tables import (
    HeldPriceRow,
    RefreshRunRow,
)

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.engine import Engine

    from pricing_service.gate import Figures


class HeldReads:
    """Reads of held prices and held runs (a mixin of Repository)."""

    engine: Engine

    def held_proposal(self, run_id: int) -> tuple[NormalizedListing, str] | None:
        """A held run's listing and the source it came from (PricePerToken for a run held
        before runs recorded their source)."""
        with Session(self.engine) as session:
            row = session.get(RefreshRunRow, run_id)
            if row is None or row.proposal is None:
                return None
            data = row.proposal
            listing = NormalizedListing(
                prices=tuple(msgspec.convert(data["prices"], list[ModelPrice])),
                rows_seen=int(data["rows_seen"]),
                field_names=tuple(data["field_names"]),
                detail_failed=dict(data.get("detail_failed") or {}),
            )
            return listing, str(data.get("source") or SnapshotSource.PRICEPERTOKEN)

    def open_held_prices(self, run_id: int | None = None) -> list[HeldPrice]:
        with Session(self.engine) as session:
            query = select(HeldPriceRow).where(col(HeldPriceRow.resolved_at).is_(None))
            if run_id is not None:
                query = query.where(col(HeldPriceRow.run_id) == run_id)
            rows = session.exec(query.order_by(col(HeldPriceRow.model_id)))
            return [held_price(r) for r in rows]

    def accepted_held_prices(self, limit: int) -> list[HeldPrice]:
        """The held prices operators accepted, newest first: who, when, and which figure."""
        with Session(self.engine) as session:
            query = (
                select(HeldPriceRow)
                .where(col(HeldPriceRow.resolution) == HoldResolution.ACCEPTED.value)
                .order_by(col(HeldPriceRow.resolved_at).desc(), col(HeldPriceRow.id).desc())
                .limit(limit)
            )
            return [held_price(r) for r in session.exec(query)]

    def held_proposals(
        self,
        run_id: int,
        model_ids: Collection[str] = (),
        figure: str = AcceptedFigure.PROPOSED.value,
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
                if figure == AcceptedFigure.SECOND_SOURCE.value:
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
                .where(col(HeldPriceRow.accepted_figure) == AcceptedFigure.PROPOSED.value)
                .order_by(col(HeldPriceRow.resolved_at), col(HeldPriceRow.id))
            )
            return {
                r.model_id: (r.proposed_input_usd_per_million, r.proposed_output_usd_per_million)
                for r in rows
            }

    def accepted_holds(self, run_id: int) -> list[tuple[str, str | None]]:
        """(model id, figure applied) of each price held in ``run_id`` an operator accepted."""
        with Session(self.engine) as session:
            rows = session.exec(
                select(HeldPriceRow.model_id, HeldPriceRow.accepted_figure)
                .where(col(HeldPriceRow.run_id) == run_id)
                .where(col(HeldPriceRow.resolution) == HoldResolution.ACCEPTED.value)
                .order_by(col(HeldPriceRow.model_id))
            )
            return [(model_id, figure) for model_id, figure in rows]
