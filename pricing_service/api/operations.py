"""Operator endpoints: Prometheus metrics and the admin-only debug sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Response

from pricing_service.api.examples import (
    DEBUG_SAMPLE_EXAMPLE,
    RUN_EXAMPLE,
    RUNS_EXAMPLE,
)
from pricing_service.api.pricing import cross_source_json, held_json, run_json
from pricing_service.api.requests import authorize
from pricing_service.api.schemas import (
    DebugSample,
    ErrorBody,
    Run,
    Runs,
)
from pricing_service.domain import MAX_RUN_ID
from pricing_service.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from pricing_service.access import Access, RateLimiter
    from pricing_service.domain import ModelPrice, SnapshotInfo
    from pricing_service.metrics import Metrics
    from pricing_service.reports import DebugReport
    from pricing_service.service import PricingService

DEFAULT_SAMPLE = 5


def _money(value: Any) -> str | None:
    return None if value is None else str(value)


def price_json(price: ModelPrice | None) -> dict[str, Any] | None:
    if price is None:
        return None
    return {
        "model_id": price.model_id,
        "slug": price.slug,
        "provider": price.provider,
        "display_name": price.display_name,
        "price_status": price.price_status.value,
        "price_basis": price.price_basis.value,
        # Exact decimals as strings: the point here is to compare them with the raw row.
        "input_usd_per_million": _money(price.input_usd_per_million),
        "output_usd_per_million": _money(price.output_usd_per_million),
        "cache_read_usd_per_million": _money(price.cache_read_usd_per_million),
        "cache_write_usd_per_million": _money(price.cache_write_usd_per_million),
        "context_window": price.context_window,
        "capabilities": list(price.capabilities),
        "input_modalities": list(price.input_modalities),
        "output_modalities": list(price.output_modalities),
        "pricing_source": price.pricing_source,
    }


def snapshot_json(snapshot: SnapshotInfo | None) -> dict[str, Any] | None:
    if snapshot is None:
        return None
    return {
        "id": snapshot.id,
        "source": snapshot.source,
        "fetched_at": snapshot.fetched_at.isoformat(),
        "model_count": snapshot.model_count,
    }


def debug_json(report: DebugReport, limit: int) -> dict[str, Any]:
    sample = report.sample
    return {
        "limit": limit,
        "last_run": run_json(report.last_run) if report.last_run else None,
        "current_snapshot": snapshot_json(report.current),
        "sampled_snapshot": snapshot_json(sample.snapshot if sample else None),
        "field_names": sample.field_names if sample else [],
        "prices": {
            "models": report.models,
            "null_input": report.null_input,
            "null_output": report.null_output,
            "unknown": report.unknown,
        },
        "unmatched_catalog_ids": sample.unmatched_ids if sample else [],
        "held_prices": [held_json(h) for h in report.held_prices],
        # The last compared run's prices beside the second source's (genai-prices).
        "cross_source": cross_source_json(report.cross_source, entries=True),
        # Ids clients asked for (ids=, estimate) that nothing resolves, most asked first.
        "unknown_ids_asked": report.unknown_ids_asked,
        "rows": [
            {"model_id": m, "raw": raw, "normalized": price_json(report.normalized[m])}
            for m, raw in (sample.raw.items() if sample else ())
        ],
    }


class OperationsController(Controller):
    tags = ["operations"]  # noqa: RUF012

    @get(
        "/metrics",
        operation_id="metrics",
        summary="Prometheus metrics (text format), merged across workers",
        media_type=CONTENT_TYPE,
        include_in_schema=False,
    )
    async def metrics(
        self, pricing: NamedDependency[PricingService], metrics: NamedDependency[Metrics]
    ) -> Response[bytes]:
        body = await metrics.scrape(await pricing.status())
        return Response(body, media_type=CONTENT_TYPE, headers={"cache-control": "no-store"})

    @get(
        "/api/v1/pricing/debug/sample",
        operation_id="debugSample",
        summary="Admin: last run, upstream field names, raw rows beside their normalized form",
        security=[{"bearer": []}],
        responses={
            200: ResponseSpec(
                DebugSample,
                generate_examples=False,
                examples=[DEBUG_SAMPLE_EXAMPLE],
                description="The sample (never cached)",
            ),
            401: ResponseSpec(ErrorBody, generate_examples=False, description="No valid token"),
            403: ResponseSpec(
                ErrorBody, generate_examples=False, description="Admin access not configured"
            ),
            429: ResponseSpec(
                ErrorBody, generate_examples=False, description="Too many calls; see Retry-After"
            ),
        },
    )
    async def debug_sample(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        access: NamedDependency[Access],
        limiter: NamedDependency[RateLimiter],
        limit: Annotated[
            int, Parameter(ge=1, le=20, description="raw rows to show (curated models first)")
        ] = DEFAULT_SAMPLE,
    ) -> Response[dict[str, Any]]:
        await authorize(request, access, limiter, bucket="debug", admin_only=True)
        report = await pricing.debug_sample(limit)
        return Response(debug_json(report, limit), headers={"cache-control": "no-store"})

    @get(
        "/api/v1/pricing/runs",
        operation_id="listRuns",
        summary="Refresh runs, newest first: status, counts, timing, error, held prices",
        security=[{"bearer": []}],
        responses={
            200: ResponseSpec(
                Runs, generate_examples=False, examples=[RUNS_EXAMPLE], description="The runs"
            ),
            401: ResponseSpec(ErrorBody, generate_examples=False, description="No valid token"),
            403: ResponseSpec(
                ErrorBody, generate_examples=False, description="Access not configured"
            ),
            429: ResponseSpec(
                ErrorBody, generate_examples=False, description="Too many calls; see Retry-After"
            ),
        },
    )
    async def runs(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        access: NamedDependency[Access],
        limiter: NamedDependency[RateLimiter],
        limit: Annotated[int, Parameter(ge=1, le=100, description="at most this many")] = 20,
    ) -> Response[dict[str, Any]]:
        await authorize(request, access, limiter, bucket="runs", admin_only=False)
        runs = await pricing.runs(limit)
        return Response(
            {"items": [run_json(r) for r in runs]}, headers={"cache-control": "no-store"}
        )

    @get(
        "/api/v1/pricing/runs/{run_id:int}",
        operation_id="getRun",
        summary="One refresh run, with the prices it holds",
        security=[{"bearer": []}],
        responses={
            200: ResponseSpec(
                Run,
                generate_examples=False,
                examples=[RUN_EXAMPLE],
                description="The run, with its second-source disagreements",
            ),
            401: ResponseSpec(ErrorBody, generate_examples=False, description="No valid token"),
            403: ResponseSpec(
                ErrorBody, generate_examples=False, description="Access not configured"
            ),
            404: ResponseSpec(ErrorBody, generate_examples=False, description="No such run"),
            429: ResponseSpec(
                ErrorBody, generate_examples=False, description="Too many calls; see Retry-After"
            ),
        },
    )
    async def run(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        access: NamedDependency[Access],
        limiter: NamedDependency[RateLimiter],
        run_id: Annotated[int, Parameter(ge=1, le=MAX_RUN_ID, description="the run id")],
    ) -> Response[dict[str, Any]]:
        await authorize(request, access, limiter, bucket="runs", admin_only=False)
        run = await pricing.run(run_id)
        return Response(run_json(run, disagreements=True), headers={"cache-control": "no-store"})
