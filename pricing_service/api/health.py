"""Liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from pricing_service.api.examples import (
    HEALTH_EXAMPLE,
    NOT_READY_EXAMPLE,
    READY_EXAMPLE,
)
from pricing_service.api.schemas import (
    Health,
    NotReady,
    Ready,
)
from pricing_service.errors import StorageUnavailable

if TYPE_CHECKING:
    from pricing_service.service import PricingService


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012

    @get(
        "/health",
        operation_id="health",
        summary="Liveness: the process answers",
        responses={
            200: ResponseSpec(
                Health, generate_examples=False, examples=[HEALTH_EXAMPLE], description="Alive"
            )
        },
    )
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get(
        "/ready",
        operation_id="ready",
        summary="Readiness: selector requests can be answered",
        responses={
            200: ResponseSpec(
                Ready,
                generate_examples=False,
                examples=[READY_EXAMPLE],
                description="Ready; `degraded` lists what works less well (stale, Redis down)",
            ),
            503: ResponseSpec(
                NotReady,
                generate_examples=False,
                examples=[NOT_READY_EXAMPLE],
                description="Nothing can be served: no snapshot, or the database not migrated",
            ),
        },
    )
    async def ready(self, pricing: NamedDependency[PricingService]) -> Response[dict[str, Any]]:
        report = await pricing.readiness()
        if report["ready"]:
            return Response(report, status_code=HTTP_200_OK)
        # Nothing to serve yet: a probe asks again, as after any storage error.
        headers = {"retry-after": str(StorageUnavailable.retry_after)}
        return Response(report, status_code=HTTP_503_SERVICE_UNAVAILABLE, headers=headers)
