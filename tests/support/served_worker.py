"""A serving worker exactly as `serve` builds it (``create_app_from_env``), plus one probe for
tests: ``GET /__test/modules`` answers the names in this process's ``sys.modules``.

Run with ``python -m uvicorn tests.support.served_worker:app --factory --port N``.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING

from litestar.enums import ScopeType

from pricing_service.app import create_app_from_env

if TYPE_CHECKING:
    from litestar.types import (
        ASGIApp,
        HTTPResponseBodyEvent,
        HTTPResponseStartEvent,
        Receive,
        Scope,
        Send,
    )

PROBE = "/__test/modules"


def app() -> ASGIApp:
    served = create_app_from_env()

    async def probed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and scope["path"] == PROBE:
            body = json.dumps(sorted(sys.modules)).encode()
            start: HTTPResponseStartEvent = {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
            end: HTTPResponseBodyEvent = {
                "type": "http.response.body",
                "body": body,
                "more_body": False,
            }
            await send(start)
            await send(end)
            return
        await served(scope, receive, send)

    return probed
