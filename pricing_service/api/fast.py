"""The selector's hot path: pre-rendered bytes straight from memory, before any ASGI wrapper.

Cognitia's selector and every page of the Space picker ask for the same few answers (a view,
the price map, a 304). Once a worker has rendered one, answering it again is a dictionary
lookup; Litestar's routing, parameter parsing and dependency injection would cost several times
that, and so would each ASGI wrapper around it (a closure per request, a copy of every message).
So ``SelectorHotPath.answer`` is a plain function of the request's scope: for a GET or HEAD of
``/models`` or ``/prices`` whose bytes ``PricingService.cached_reply`` holds, it returns the whole
answer (status, headers, body), which ``RequestObserver`` sends in two messages and counts and
logs like any other. Everything else (a first render, an ``ids=`` lookup, any bad or unknown
parameter, every other route) gets ``None`` and goes to Litestar, which validates, documents and
caches. Both paths send the same bytes and headers (tests/integration/test_fast_path.py).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import parse_qsl

from pricing_service.api.params import view_key
from pricing_service.replies import accepts_gzip

if TYPE_CHECKING:
    from litestar.types import HTTPScope

    from pricing_service.api.middleware import PublicCors
    from pricing_service.service import PricingService

PRICING_PREFIX = "/api/v1/pricing"
ROUTES = {f"{PRICING_PREFIX}/models": "models", f"{PRICING_PREFIX}/prices": "prices"}


class HotAnswer(NamedTuple):
    status: int
    headers: tuple[tuple[bytes, bytes], ...]
    body: bytes
    tier: str


class SelectorHotPath:
    def __init__(self, cors: PublicCors | None = None) -> None:
        self.service: PricingService | None = None  # set by the lifespan once it is built
        self.cors = cors

    def answer(self, scope: HTTPScope) -> HotAnswer | None:
        """The whole answer when memory holds it; ``None`` sends the request to Litestar."""
        path = scope["path"]
        route = ROUTES.get(path)
        method = scope["method"]
        if route is None or method not in ("GET", "HEAD"):
            return None
        service = self.service
        if service is None:
            return None
        query = scope["query_string"]
        params: dict[str, str] = {}
        if query:
            pairs = parse_qsl(query.decode("latin-1"), keep_blank_values=True)
            params = dict(pairs)
            if len(params) != len(pairs):  # a repeated parameter: let the full route judge it
                return None
        accept_encoding = b""
        if_none_match: str | None = None
        for name, value in scope["headers"]:
            if name == b"accept-encoding":
                accept_encoding = value
            elif name == b"if-none-match":
                if_none_match = value.decode("latin-1")
        if route == "prices":
            if params:
                return None
            view = None
        else:
            view = view_key(params)
            if view is None:
                return None
        reply = service.cached_reply(
            route,
            view,
            accept_gzip=accepts_gzip(accept_encoding),
            if_none_match=if_none_match,
        )
        if reply is None:
            return None
        scope["path_template"] = path  # the metrics' route label, as Litestar sets it
        headers = reply.raw_headers
        if self.cors is not None:
            headers += tuple(self.cors.headers_for(scope))
        body = reply.body if method == "GET" else b""  # empty on a 304 already
        return HotAnswer(reply.status, headers, body, reply.tier)
