"""Liveness and readiness."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.response import Response
from litestar.status_codes import HTTP_200_OK, HTTP_503_SERVICE_UNAVAILABLE

from pricing_service.api.document import DocumentedOperation
from pricing_service.api.examples import NOT_READY_EXAMPLE
from pricing_service.api.schemas import Health, NotReady, Ready
from pricing_service.errors import StorageUnavailable

if TYPE_CHECKING:
    from pricing_service.service import PricingService


class HealthController(Controller):
    tags = ["health"]  # noqa: RUF012

    @get(
        "/health",
        operation_id="health",
        summary="Liveness: the process answers",
        response_description="Alive",
        operation_class=DocumentedOperation,
    )
    async def health(self) -> Health:
        return Health(status="ok")

    @get(
        "/ready",
        operation_id="ready",
        summary="Readiness: selector requests can be answered",
        response_description="Ready; `degraded` lists what works less well (stale, Redis down)",
        operation_class=DocumentedOperation,
        responses={
            503: ResponseSpec(
                NotReady,
                generate_examples=False,
                examples=[NOT_READY_EXAMPLE],
                description="Nothing can be served: no snapshot, or the database not migrated",
            ),
        },
    )
    async def ready(self, pricing: NamedDependency[PricingService]) -> Response[Ready]:
        # The report is built below the edge (readiness.py) as plain data; converting it checks
        # it against the documented body (an unknown key fails here, not in a client).
        report = await pricing.readiness()
        if report["ready"]:
            return Response(msgspec.convert(report, Ready), status_code=HTTP_200_OK)
        # Nothing to serve yet: a probe asks again, as after any storage error.
        headers = {"retry-after": str(StorageUnavailable.retry_after)}
        # Typed as the 200's for the document (derived from it); the 503's body is NotReady.
        refused = Response(
            msgspec.convert(report, NotReady),
            status_code=HTTP_503_SERVICE_UNAVAILABLE,
            headers=headers,
        )
        return cast("Response[Ready]", refused)
