"""Held prices and held runs as stored: what waits for an operator, what operators accepted."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import msgspec
import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import (
    AcceptedFigure,
    HeldPrice,
    HoldResolution,
    ModelPrice,
    NormalizedListing,
    SnapshotSource,
)
from pricing_service.rows import held_price

if TYPE_CHECKING:
    from collections.abc import Collection

    from sqlalchemy.engine import Engine

    from pricing_service.gate import Figures

HELD = tables.held_price.c


class HeldReads:
    """Reads of held prices and held runs (a mixin of Repository)."""

    engine: Engine

    def held_proposal(self, run_id: int) -> tuple[NormalizedListing, str] | None:
        """A held run's listing and the source it came from (PricePerToken for a run held
        before runs recorded their source)."""
        run = tables.refresh_run.c
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(run.proposal).where(run.id == run_id)).first()
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
        with self.engine.connect() as conn:
            query = sa.select(tables.held_price).where(HELD.resolved_at.is_(None))
            if run_id is not None:
                query = query.where(HELD.run_id == run_id)
            rows = conn.execute(query.order_by(HELD.model_id))
            return [held_price(r) for r in rows]

    def accepted_held_prices(self, limit: int) -> list[HeldPrice]:
        """The held prices operators accepted, newest first: who, when, and which figure."""
        with self.engine.connect() as conn:
            query = (
                sa.select(tables.held_price)
                .where(HELD.resolution == HoldResolution.ACCEPTED.value)
                .order_by(HELD.resolved_at.desc(), HELD.id.desc())
                .limit(limit)
            )
            return [held_price(r) for r in conn.execute(query)]

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
        with self.engine.connect() as conn:
            query = (
                sa.select(tables.held_price)
                .where(HELD.resolved_at.is_(None))
                .where(HELD.run_id == run_id)
            )
            if model_ids:
                query = query.where(HELD.model_id.in_(sorted(model_ids)))
            found = []
            for row in conn.execute(query):
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
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(tables.held_price)
                .where(HELD.resolution == HoldResolution.ACCEPTED.value)
                .where(HELD.accepted_figure == AcceptedFigure.PROPOSED.value)
                .order_by(HELD.resolved_at, HELD.id)
            )
            return {
                r.model_id: (r.proposed_input_usd_per_million, r.proposed_output_usd_per_million)
                for r in rows
            }

    def accepted_holds(self, run_id: int) -> list[tuple[str, str | None]]:
        """(model id, figure applied) of each price held in ``run_id`` an operator accepted."""
        with self.engine.connect() as conn:
            rows = conn.execute(
                sa.select(HELD.model_id, HELD.accepted_figure)
                .where(HELD.run_id == run_id)
                .where(HELD.resolution == HoldResolution.ACCEPTED.value)
                .order_by(HELD.model_id)
            )
            return [(r.model_id, r.accepted_figure) for r in rows]
