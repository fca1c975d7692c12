"""The token guard of the operator routes and the answers it documents, declared once.

A protected route names its rate-limit bucket and whether it needs the admin token in its
``opt`` (``protected(...)`` writes both, the guard, the security requirement and the
401/403/429 answers); ``token_guard`` is a plain Litestar guard, ``(connection, handler)``, that
checks the token and counts the call (``access.admit``) before the handler or its parameters
run, so a caller without a valid token learns nothing of what the route would have said.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from litestar.openapi.datastructures import ResponseSpec

from pricing_service.access import admit
from pricing_service.api.middleware import client_of_scope
from pricing_service.api.schemas import ErrorBody
from pricing_service.api.state import served

if TYPE_CHECKING:
    from litestar.connection import ASGIConnection
    from litestar.handlers.base import BaseRouteHandler

BUCKET = "rate_bucket"  # the handler's opt: the bucket its calls are counted in
ADMIN_ONLY = "admin_only"  # the handler's opt: only the admin token (not the cron one)

PROTECTED_RESPONSES: dict[int, ResponseSpec] = {
    401: ResponseSpec(ErrorBody, generate_examples=False, description="No valid token"),
    403: ResponseSpec(
        ErrorBody,
        generate_examples=False,
        description="Access not configured (PRICING_ADMIN_TOKEN, PRICING_CRON_TOKEN unset)",
    ),
    429: ResponseSpec(
        ErrorBody, generate_examples=False, description="Too many calls; see Retry-After"
    ),
}


async def token_guard(
    connection: ASGIConnection[Any, Any, Any, Any], handler: BaseRouteHandler
) -> None:
    """The caller's token checked and the call counted; NotAuthorized, AccessNotConfigured or
    RateLimited (401, 403, 429 through the app's error handler) otherwise."""
    parts = served(connection.app.state)
    await admit(
        parts.access,
        parts.limiter,
        bucket=handler.opt[BUCKET],
        client=client_of_scope(connection.scope),
        authorization=connection.headers.get("authorization"),
        admin_only=bool(handler.opt.get(ADMIN_ONLY, False)),
    )


def protected(
    bucket: str, *, admin_only: bool = False, responses: dict[int, ResponseSpec] | None = None
) -> dict[str, Any]:
    """A protected route's decorator keywords: its guard, bucket, security and answers (the
    route's own ``responses`` beside the shared 401/403/429)."""
    return {
        "guards": [token_guard],
        "opt": {BUCKET: bucket, ADMIN_ONLY: admin_only},
        "security": [{"bearer": []}],
        "responses": {**(responses or {}), **PROTECTED_RESPONSES},
    }
