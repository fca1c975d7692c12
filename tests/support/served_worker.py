"""A serving worker exactly as `serve` builds it (``create_app_from_env``), plus one probe for
tests: ``GET /__test/modules`` answers the names in this process's ``sys.modules``.

Run with ``python -m uvicorn tests.support.served_worker:app --factory --port N``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from pricing_service.app import create_app_from_env

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Receive, Scope, Send

PROBE = "/__test/modules"


def app() -> ASGIApp:
    served = create_app_from_env()

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == PROBE:
            body = json.dumps(sorted(sys.modules)).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"content-type", b"application/json")],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        await served(scope, receive, send)

    return probed
