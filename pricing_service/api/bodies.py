"""The operator answers as their documented structs (api/schemas.py), built from domain records.

Litestar encodes what a handler returns and derives the OpenAPI document from its type, so the
struct is both the wire and the document. Exact decimals are strings here: an operator compares
them with the raw rows, and a held figure may be absurd (1e300) and must stay exact.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from pricing_service.api.schemas import (
    CrossSource,
    CrossSourceDisagreement,
    DebugSample,
    HeldPriceBody,
    NormalizedPrice,
    Run,
    SamplePriceCounts,
    SampleRow,
    SampleSnapshot,
)

if TYPE_CHECKING:
    from datetime import datetime
    from decimal import Decimal

    from pricing_service.domain import (
        CrossSourceReport,
        HeldPrice,
        ModelPrice,
        RunSummary,
        SnapshotInfo,
    )
    from pricing_service.reports import DebugReport


def _text(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def _when(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


def held_body(held: HeldPrice) -> HeldPriceBody:
    return HeldPriceBody(
        model_id=held.model_id,
        run_id=held.run_id,
        reason=held.reason,
        detail=held.detail,
        proposed_input_usd_per_million=_text(held.proposed_input_usd_per_million),
        proposed_output_usd_per_million=_text(held.proposed_output_usd_per_million),
        accepted_input_usd_per_million=_text(held.accepted_input_usd_per_million),
        accepted_output_usd_per_million=_text(held.accepted_output_usd_per_million),
        held_at=held.held_at.isoformat(),
        # Both sources side by side (second_source holds); once accepted, which figure was.
        second_input_usd_per_million=_text(held.second_input_usd_per_million),
        second_output_usd_per_million=_text(held.second_output_usd_per_million),
        second_source=held.second_source,
        accepted_figure=held.accepted_figure,
        resolution=held.resolution,
        resolved_at=_when(held.resolved_at),
        resolved_by=held.resolved_by,
    )


def cross_source_body(report: CrossSourceReport | None, *, entries: bool) -> CrossSource | None:
    """A run's second-source comparison: counts, version, and (``entries``) the disagreements."""
    if report is None:
        return None
    return CrossSource(
        second_source=report.version,
        agree=report.agree,
        disagree=report.disagree,
        uncovered=report.uncovered,
        disagreements=[
            CrossSourceDisagreement(
                model_id=e.model_id,
                provider=e.provider,
                pricing_source=e.pricing_source,
                pricing_source_is_author=e.pricing_source_is_author,
                input_usd_per_million=_text(e.input_usd_per_million),
                output_usd_per_million=_text(e.output_usd_per_million),
                second_input_usd_per_million=_text(e.second_input_usd_per_million),
                second_output_usd_per_million=_text(e.second_output_usd_per_million),
                second_source=e.second_source,
                factor=_text(e.factor),
                held=e.held,
            )
            for e in report.disagreements
        ]
        if entries
        else msgspec.UNSET,
    )


def run_body(run: RunSummary, *, disagreements: bool = False) -> Run:
    return Run(
        id=run.id,
        trigger=run.trigger,
        status=run.status,
        started_at=run.started_at.isoformat(),
        finished_at=_when(run.finished_at),
        duration_ms=run.duration_ms,
        rows_seen=run.rows_seen,
        priced=run.priced,
        unknown=run.unknown,
        changes=run.changes,
        error=run.error,
        upstream_latency_ms=run.upstream_latency_ms,
        snapshot_id=run.snapshot_id,
        rows_rejected=run.rows_rejected,
        held_reason=run.held_reason,
        accepted_at=_when(run.accepted_at),
        accepted_by=run.accepted_by,
        held_prices=[held_body(h) for h in run.held_prices],
        cross_source=cross_source_body(run.cross_source, entries=disagreements),
    )


def price_body(price: ModelPrice | None) -> NormalizedPrice | None:
    if price is None:
        return None
    return NormalizedPrice(
        model_id=price.model_id,
        slug=price.slug,
        provider=price.provider,
        display_name=price.display_name,
        price_status=price.price_status,
        price_basis=price.price_basis,
        input_usd_per_million=_text(price.input_usd_per_million),
        output_usd_per_million=_text(price.output_usd_per_million),
        cache_read_usd_per_million=_text(price.cache_read_usd_per_million),
        cache_write_usd_per_million=_text(price.cache_write_usd_per_million),
        context_window=price.context_window,
        capabilities=list(price.capabilities),
        input_modalities=list(price.input_modalities),
        output_modalities=list(price.output_modalities),
        pricing_source=price.pricing_source,
    )


def snapshot_body(snapshot: SnapshotInfo | None) -> SampleSnapshot | None:
    if snapshot is None:
        return None
    return SampleSnapshot(
        id=snapshot.id,
        source=snapshot.source,
        fetched_at=snapshot.fetched_at.isoformat(),
        model_count=snapshot.model_count,
    )


def debug_body(report: DebugReport, limit: int) -> DebugSample:
    sample = report.sample
    return DebugSample(
        limit=limit,
        last_run=run_body(report.last_run) if report.last_run else None,
        current_snapshot=snapshot_body(report.current),
        sampled_snapshot=snapshot_body(sample.snapshot if sample else None),
        field_names=sample.field_names if sample else [],
        prices=SamplePriceCounts(
            models=report.models,
            null_input=report.null_input,
            null_output=report.null_output,
            unknown=report.unknown,
        ),
        unmatched_catalog_ids=sample.unmatched_ids if sample else [],
        held_prices=[held_body(h) for h in report.held_prices],
        # The last compared run's prices beside the second source's (genai-prices).
        cross_source=cross_source_body(report.cross_source, entries=True),
        # Ids clients asked for (ids=, estimate) that nothing resolves, most asked first.
        unknown_ids_asked=report.unknown_ids_asked,
        rows=[
            SampleRow(model_id=m, raw=raw, normalized=price_body(report.normalized[m]))
            for m, raw in (sample.raw.items() if sample else ())
        ],
    )
