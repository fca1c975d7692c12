"""Liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

if TYPE_CHECKING:
    from pricing_service.service import PricingService


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012

    @get("/health", operation_id="health", summary="Liveness: the process answers")
    async def health(self) -> dict[str, str]:
        return {"status": "ok"}

    @get("/ready", operation_id="ready", summary="Readiness: selector requests can be answered")
    async def ready(self, pricing: NamedDependency[PricingService]) -> Response[dict[str, Any]]:
        report = await pricing.readiness()
        status = HTTP_200_OK if report["ready"] else HTTP_503_SERVICE_UNAVAILABLE
        return Response(report, status_code=status)
