"""Operator endpoints: Prometheus metrics and the admin-only debug sample."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Parameter
from litestar.response import Response

from pricing_service.api.bodies import debug_body, run_body
from pricing_service.api.document import DocumentedOperation
from pricing_service.api.protected import protected
from pricing_service.api.schemas import DebugSample, ErrorBody, Run, Runs
from pricing_service.domain import MAX_RUN_ID
from pricing_service.metrics import CONTENT_TYPE

if TYPE_CHECKING:
    from pricing_service.metrics import Metrics
    from pricing_service.service import PricingService

DEFAULT_SAMPLE = 5
NO_STORE = {"cache-control": "no-store"}


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
        response_description="The sample (never cached)",
        operation_class=DocumentedOperation,
        **protected("debug", admin_only=True),
    )
    async def debug_sample(
        self,
        pricing: NamedDependency[PricingService],
        limit: Annotated[
            int, Parameter(ge=1, le=20, description="raw rows to show (curated models first)")
        ] = DEFAULT_SAMPLE,
    ) -> Response[DebugSample]:
        report = await pricing.debug_sample(limit)
        return Response(debug_body(report, limit), headers=NO_STORE)

    @get(
        "/api/v1/pricing/runs",
        operation_id="listRuns",
        summary="Refresh runs, newest first: status, counts, timing, error, held prices",
        response_description="The runs",
        operation_class=DocumentedOperation,
        **protected("runs"),
    )
    async def runs(
        self,
        pricing: NamedDependency[PricingService],
        limit: Annotated[int, Parameter(ge=1, le=100, description="at most this many")] = 20,
    ) -> Response[Runs]:
        runs = await pricing.runs(limit)
        return Response(Runs(items=[run_body(r) for r in runs]), headers=NO_STORE)

    @get(
        "/api/v1/pricing/runs/{run_id:int}",
        operation_id="getRun",
        summary="One refresh run, with the prices it holds",
        response_description="The run, with its second-source disagreements",
        operation_class=DocumentedOperation,
        **protected(
            "runs",
            responses={
                404: ResponseSpec(ErrorBody, generate_examples=False, description="No such run")
            },
        ),
    )
    async def run(
        self,
        pricing: NamedDependency[PricingService],
        run_id: Annotated[int, Parameter(ge=1, le=MAX_RUN_ID, description="the run id")],
    ) -> Response[Run]:
        run = await pricing.run(run_id)
        return Response(run_body(run, disagreements=True), headers=NO_STORE)
