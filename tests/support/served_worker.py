"""A serving worker exactly as `serve` builds it (``create_app_from_env``), plus one probe for
tests: ``GET /__test/modules`` answers the names in this process's ``sys.modules``.

Run with ``python -m tests.support.served_worker --port N``: one worker, run by uvicorn with the
options `serve` gives it (``cli.UVICORN_OPTIONS``), so what uvicorn imports is what a worker of
`serve` imports.
"""

from __future__ import annotations

import argparse
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


def main() -> None:
    import uvicorn

    from pricing_service.cli import UVICORN_OPTIONS

    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    uvicorn.run(
        "tests.support.served_worker:app",
        factory=True,
        host=args.host,
        port=args.port,
        **UVICORN_OPTIONS,
    )


if __name__ == "__main__":
    main()
