"""The selector's hot path: pre-rendered bytes straight from memory, before Litestar's routing.

Cognitia's selector and every page of the Space picker ask for the same few answers (a view,
the price map, a 304). Once a worker has rendered one, answering it again is a dictionary
lookup; Litestar's routing, parameter parsing and dependency injection would cost several times
that. So ``SelectorFastPath`` answers a GET or HEAD of ``/models`` or ``/prices`` itself when
``PricingService.cached_reply`` has the bytes, and hands everything else (a first render, an
``ids=`` lookup, any bad or unknown parameter, every other route) to Litestar, which validates,
documents and caches. Both paths send the same bytes and headers; the outer wrappers (metrics,
access log, request id, CORS) see both alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

from litestar.enums import ScopeType

from pricing_service.service import accepts_gzip

if TYPE_CHECKING:
    from collections.abc import Callable

    from litestar.types import ASGIApp, Receive, Scope, Send

    from pricing_service.service import PricingService

PRICING_PREFIX = "/api/v1/pricing"
ROUTES = {f"{PRICING_PREFIX}/models": "models", f"{PRICING_PREFIX}/prices": "prices"}
_JSON = (b"content-type", b"application/json")


class SelectorFastPath:
    def __init__(self, app: ASGIApp, service: Callable[[], PricingService | None]) -> None:
        self.app = app
        self.service = service  # None until the lifespan has built it

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = ROUTES.get(scope["path"]) if scope["type"] == ScopeType.HTTP else None
        method = scope.get("method")
        service = self.service() if route is not None and method in ("GET", "HEAD") else None
        if service is None or route is None:
            await self.app(scope, receive, send)
            return
        query = scope["query_string"]
        params: dict[str, str] = {}
        if query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            params = dict(pairs)
            if len(params) != len(pairs):  # a repeated parameter: let the full route judge it
                await self.app(scope, receive, send)
                return
        accept_encoding = b""
        if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept_encoding = value
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        reply = service.cached_reply(
            route,
            params,
            accept_gzip=accepts_gzip(accept_encoding),
            if_none_match=if_none_match,
        )
        if reply is None:
            await self.app(scope, receive, send)
            return
        scope["path_template"] = scope["path"]  # the metrics' route label, as Litestar sets it
        headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in reply.headers.items()]
        if reply.status != 304:
            headers += [_JSON, (b"content-length", str(len(reply.body)).encode())]
        await send({"type": "http.response.start", "status": reply.status, "headers": headers})
        body = b"" if method == "HEAD" or reply.status == 304 else reply.body
        await send({"type": "http.response.body", "body": body, "more_body": False})
