"""Row mappers: table rows <-> domain types (written as column dicts, the parameters of one bulk
insert per table), and the JSON of a run's second-source comparison."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import msgspec
import sqlalchemy as sa

from pricing_service import tables
from pricing_service.domain import (
    AcceptedFigure,
    ChangeKind,
    CrossSourceEntry,
    CrossSourceReport,
    HeldPrice,
    HoldReason,
    HoldResolution,
    LongContextTier,
    ModelPrice,
    PriceBasis,
    PriceChange,
    RunStatus,
    RunSummary,
    SnapshotInfo,
)
from pricing_service.gate import Doubt, Event

if TYPE_CHECKING:
    from collections.abc import Sequence

    from sqlalchemy.engine import Connection, CursorResult


# A held run's proposal is its whole listing (5,000 models: megabytes of JSON, decoded in one
# C call that holds the GIL for 100+ ms): read only where it is used (held_proposal); every
# other read of a run selects these columns.
RUN_WITHOUT_PROPOSAL = tuple(c for c in tables.refresh_run.c if c.name != "proposal")


def new_id(inserted: CursorResult[Any]) -> int:
    """The database-assigned id of the row an insert wrote."""
    key = inserted.inserted_primary_key
    assert key is not None
    return int(key[0])


def run_summary(row: sa.Row[Any], held: tuple[HeldPrice, ...] = ()) -> RunSummary:
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
        cross_source=cross_report(row),
    )


def snapshot_info(row: sa.Row[Any]) -> SnapshotInfo:
    assert row.id is not None
    return SnapshotInfo(
        id=row.id,
        fetched_at=row.fetched_at,
        source=row.source,
        model_count=row.model_count,
    )


def price_row(p: ModelPrice, snapshot_id: int) -> dict[str, Any]:
    """The ``model_price`` columns of a current price (a bulk insert's parameters)."""
    return {
        "model_id": p.model_id,
        "slug": p.slug,
        "provider": p.provider,
        "display_name": p.display_name,
        "input_usd_per_million": p.input_usd_per_million,
        "output_usd_per_million": p.output_usd_per_million,
        "cache_read_usd_per_million": p.cache_read_usd_per_million,
        "cache_write_usd_per_million": p.cache_write_usd_per_million,
        "web_search_usd_per_thousand": p.web_search_usd_per_thousand,
        "request_usd_per_thousand": p.request_usd_per_thousand,
        "call_prices_source": p.call_prices_source,
        "long_context_tiers": tiers_json(p.long_context_tiers),
        "price_basis": p.price_basis.value,
        "context_window": p.context_window,
        "capabilities": list(p.capabilities),
        "input_modalities": list(p.input_modalities),
        "output_modalities": list(p.output_modalities),
        "pricing_source": p.pricing_source,
        "snapshot_id": snapshot_id,
        "listed": p.listed,
        "delisted_at": p.delisted_at,
        "benchmarks": dict(p.benchmarks) if p.benchmarks else None,
        "tokens_per_second": p.tokens_per_second,
        "time_to_first_token": p.time_to_first_token,
        "description": p.description,
    }


def history_row(p: ModelPrice, snapshot_id: int, at: datetime) -> dict[str, Any]:
    """The ``price_history`` columns of a price's new version, open (valid from ``at``)."""
    return {
        "model_id": p.model_id,
        "input_usd_per_million": p.input_usd_per_million,
        "output_usd_per_million": p.output_usd_per_million,
        "price_basis": p.price_basis.value,
        "valid_from": at,
        "valid_to": None,
        "snapshot_id": snapshot_id,
    }


def tiers_json(tiers: tuple[LongContextTier, ...]) -> list[dict[str, Any]] | None:
    """A price's long-context tiers as stored (amounts as exact strings); none: null."""
    if not tiers:
        return None
    return [
        {
            "kind": t.kind,
            "start": t.start,
            "usd_per_million": str(t.usd_per_million),
            "base_usd_per_million": str(t.base_usd_per_million),
            "source": t.source,
        }
        for t in tiers
    ]


def tiers_of(stored: list[dict[str, Any]] | None) -> tuple[LongContextTier, ...]:
    return tuple(
        LongContextTier(
            kind=str(t["kind"]),
            start=int(t["start"]),
            usd_per_million=Decimal(t["usd_per_million"]),
            base_usd_per_million=Decimal(t["base_usd_per_million"]),
            source=str(t["source"]),
        )
        for t in stored or ()
    )


def model_price(r: sa.Row[Any], held: HeldPrice | None = None) -> ModelPrice:
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
        long_context_tiers=tiers_of(r.long_context_tiers),
        context_window=r.context_window,
        capabilities=tuple(r.capabilities),
        input_modalities=tuple(r.input_modalities),
        output_modalities=tuple(r.output_modalities),
        pricing_source=r.pricing_source,
        listed=r.listed,
        delisted_at=r.delisted_at,
        held=held,
        benchmarks=tuple(sorted((str(k), as_float(v)) for k, v in (r.benchmarks or {}).items())),
        tokens_per_second=r.tokens_per_second,
        time_to_first_token=r.time_to_first_token,
        description=r.description,
    )


def event_row(event: Event, snapshot_id: int, at: datetime) -> dict[str, Any]:
    """The ``price_event`` columns of a change (a bulk insert's parameters; the id is the
    database's, in the order given: the change feed's cursor)."""
    old, new = event.old, event.new
    return {
        "model_id": event.model_id,
        "kind": event.kind.value,
        "changed_at": at,
        "old_input_usd_per_million": old.input_usd_per_million if old else None,
        "new_input_usd_per_million": new.input_usd_per_million if new else None,
        "old_output_usd_per_million": old.output_usd_per_million if old else None,
        "new_output_usd_per_million": new.output_usd_per_million if new else None,
        "snapshot_id": snapshot_id,
    }


def price_change(e: sa.Row[Any]) -> PriceChange:
    return PriceChange(
        model_id=e.model_id,
        changed_at=e.changed_at,
        kind=ChangeKind(e.kind),
        old_input_usd_per_million=e.old_input_usd_per_million,
        new_input_usd_per_million=e.new_input_usd_per_million,
        old_output_usd_per_million=e.old_output_usd_per_million,
        new_output_usd_per_million=e.new_output_usd_per_million,
    )


def held_row(doubt: Doubt, run_id: int, at: datetime) -> dict[str, Any]:
    """The ``held_price`` columns of an open hold (a bulk insert's parameters: every column
    but the id, the resolution's null)."""
    accepted, second = doubt.accepted, doubt.second
    return {
        "model_id": doubt.model_id,
        "run_id": run_id,
        "reason": doubt.reason.value,
        "detail": doubt.detail,
        "proposed_input_usd_per_million": doubt.proposed.input_usd_per_million,
        "proposed_output_usd_per_million": doubt.proposed.output_usd_per_million,
        "accepted_input_usd_per_million": accepted.input_usd_per_million if accepted else None,
        "accepted_output_usd_per_million": accepted.output_usd_per_million if accepted else None,
        "proposal": msgspec.to_builtins(doubt.proposed),
        "held_at": at,
        "resolved_at": None,
        "resolution": None,
        "resolved_by": None,
        "second_input_usd_per_million": second.input_usd_per_million if second else None,
        "second_output_usd_per_million": second.output_usd_per_million if second else None,
        "second_source": second.source if second else None,
        "accepted_figure": None,
    }


def held_price(row: sa.Row[Any]) -> HeldPrice:
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
        accepted_figure=AcceptedFigure(row.accepted_figure) if row.accepted_figure else None,
        resolved_by=row.resolved_by,
        resolved_at=row.resolved_at,
        resolution=HoldResolution(row.resolution) if row.resolution else None,
    )


def held_by_run(conn: Connection, run_ids: Sequence[int]) -> dict[int, tuple[HeldPrice, ...]]:
    """Every price each of ``run_ids`` held, open or resolved, by model id."""
    if not run_ids:
        return {}
    held = tables.held_price.c
    found: dict[int, list[HeldPrice]] = {}
    for row in conn.execute(
        sa.select(tables.held_price)
        .where(held.run_id.in_(sorted(run_ids)))
        .order_by(held.run_id, held.model_id, held.id)
    ):
        found.setdefault(row.run_id, []).append(held_price(row))
    return {run_id: tuple(held) for run_id, held in found.items()}


def as_float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def as_text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def as_decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def cross_values(report: CrossSourceReport) -> dict[str, Any]:
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
                    "input_usd_per_million": as_text(e.input_usd_per_million),
                    "output_usd_per_million": as_text(e.output_usd_per_million),
                    "second_input_usd_per_million": as_text(e.second_input_usd_per_million),
                    "second_output_usd_per_million": as_text(e.second_output_usd_per_million),
                    "second_source": e.second_source,
                    "factor": as_text(e.factor),
                    "held": e.held,
                }
                for e in report.disagreements
            ],
        },
    }


def cross_report(row: sa.Row[Any]) -> CrossSourceReport | None:
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
                input_usd_per_million=as_decimal(e.get("input_usd_per_million")),
                output_usd_per_million=as_decimal(e.get("output_usd_per_million")),
                second_input_usd_per_million=as_decimal(e.get("second_input_usd_per_million")),
                second_output_usd_per_million=as_decimal(e.get("second_output_usd_per_million")),
                second_source=str(e.get("second_source") or ""),
                factor=as_decimal(e.get("factor")),
                held=bool(e.get("held")),
            )
            for e in data.get("disagreements", [])
        ),
    )


def jsonable(value: Any) -> Any:
    """Upstream JSON holds only JSON types, except numbers our normalization made Decimal."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return float(value)
    return value
