"""ASGI wrappers around the whole app: one log line and metrics per request; CORS for GETs."""

from __future__ import annotations

import itertools
import logging
import os
import re
import secrets
import time
from typing import TYPE_CHECKING, Any

from litestar.enums import ScopeType

from pricing_service.access import UNKNOWN_CLIENT, TrustedProxies
from pricing_service.access_log import AccessLog, AccessLogMode

if TYPE_CHECKING:
    from collections.abc import Iterable

    from litestar.types import ASGIApp, Message, Receive, ReceiveMessage, Scope, Send

    from pricing_service.api.fast import SelectorHotPath
    from pricing_service.metrics import Metrics

log = logging.getLogger("pricing_service.http")

TIER_HEADER = b"x-cache-tier"
REQUEST_ID_HEADER = b"x-request-id"
UNMATCHED_ROUTE = "unmatched"
# Keys in scope["state"] set for every request (read with state_of in api/requests.py).
REQUEST_ID_KEY = "pricing.request_id"
CLIENT_KEY = "pricing.client"  # set on first use by client_of_scope
PROXIES_KEY = "pricing.proxies"
DISCONNECTED_KEY = "pricing.disconnected"
# A client's own X-Request-ID is kept when it is this tame; otherwise one is generated.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,128}")
# Logged and counted for a request whose client went away before the answer (nginx's code).
CLIENT_CLOSED = 499
# On every answer: upstream text is data, never something a browser should sniff and run.
_NOSNIFF = (b"x-content-type-options", b"nosniff")
_ALWAYS: tuple[tuple[bytes, bytes], ...] = (_NOSNIFF,)


class _RequestIds:
    """32 hex characters: a random per-process prefix and a counter.

    An id names a request in logs and answers; it is not a secret, so it needs to be unique,
    not unpredictable. ``secrets.token_hex`` per request was a system call on the hot path.
    The prefix is drawn again in a forked child, so two workers never share it.
    """

    def __init__(self) -> None:
        self._reset()
        os.register_at_fork(after_in_child=self._reset)

    def _reset(self) -> None:
        self._prefix = secrets.token_hex(8)
        self._counter = itertools.count(1)

    def new(self) -> str:
        return f"{self._prefix}{next(self._counter):016x}"


_IDS = _RequestIds()


def request_id(headers: Any) -> str:
    """The client's X-Request-ID when sane (at most 128 of [A-Za-z0-9._-]), else a new one."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return str(value.decode("ascii"))
            break
    return _IDS.new()


def client_of_scope(scope: Scope) -> str:
    """The address rate limits count by, resolved on first use and kept in the scope's state:
    the socket peer and, behind PRICING_TRUSTED_PROXIES only, X-Forwarded-For. Only routes that
    count or authorize a caller ask, so the selector's answers never pay for it."""
    state = scope.setdefault("state", {})
    client = state.get(CLIENT_KEY)
    if isinstance(client, str):
        return client
    proxies = state.get(PROXIES_KEY)
    peer = scope.get("client")
    host = peer[0] if peer else None
    if not isinstance(proxies, TrustedProxies):
        return host or UNKNOWN_CLIENT
    client = proxies.client(
        host, (value for name, value in scope["headers"] if name == b"x-forwarded-for")
    )
    state[CLIENT_KEY] = client
    return client


class RequestObserver:
    """Times every HTTP request, counts it by route template and hands it to the access log.

    It sits outside Litestar's routing, so 404s, CORS preflights and errors are seen too. The
    cache tier is read from the ``x-cache-tier`` header the selector route sets.
    """

    def __init__(
        self,
        app: ASGIApp,
        metrics: Metrics,
        proxies: TrustedProxies | None = None,
        access_log: AccessLog | None = None,
        hot: SelectorHotPath | None = None,
    ) -> None:
        self.app = app
        self.metrics = metrics
        self.proxies = proxies or TrustedProxies()
        self.access_log = access_log or AccessLog(AccessLogMode.ALL, slow_ms=0)
        self.hot = hot  # answers the selector's cached GETs without calling ``app``

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        method = scope["method"]
        path = scope["path"]  # the router rewrites scope["path"]; keep what the client asked
        headers = scope["headers"]
        rid = request_id(headers)
        hot = self.hot.answer(scope) if self.hot is not None else None
        if hot is not None:
            # Nothing else runs: the answer's own headers, then the ones every answer carries.
            await send(
                {
                    "type": "http.response.start",
                    "status": hot.status,
                    "headers": [*hot.headers, _NOSNIFF, (REQUEST_ID_HEADER, rid.encode("ascii"))],
                }
            )
            await send({"type": "http.response.body", "body": hot.body, "more_body": False})
            self._record(method, path, path, hot.status, started, hot.tier, rid)
            return
        status = 500
        tier: str | None = None
        disconnected = False
        peer = scope.get("client")
        state = scope.setdefault("state", {})
        state[REQUEST_ID_KEY] = rid
        state[PROXIES_KEY] = self.proxies
        if self.proxies.networks and self.proxies.trusts(peer[0] if peer else None):
            # The scheme the client used (https behind Railway), as the nearest proxy says.
            proto = [value for name, value in headers if name == b"x-forwarded-proto"]
            scheme = proto[-1].rsplit(b",", 1)[-1].strip().lower() if proto else b""
            if scheme in (b"http", b"https"):
                scope["scheme"] = scheme.decode("ascii")
        extra = [*_ALWAYS, (REQUEST_ID_HEADER, rid.encode("ascii"))]

        async def observed_receive() -> ReceiveMessage:
            nonlocal disconnected
            message = await receive()
            if message["type"] == "http.disconnect":
                disconnected = True
                state[DISCONNECTED_KEY] = True
            return message

        async def observed_send(message: Message) -> None:
            nonlocal status, tier
            if message["type"] == "http.response.start":
                status = message["status"]
                given = list(message.get("headers", ()))
                for name, value in given:
                    if name == TIER_HEADER:
                        tier = value.decode("latin-1")
                        break
                present = {name.lower() for name, _ in given}
                # A copy: a pre-rendered reply's start message must not collect headers.
                added = [h for h in extra if h[0] not in present]
                message = {**message, "headers": [*given, *added]}
            await send(message)

        try:
            await self.app(scope, observed_receive, observed_send)
        finally:
            if disconnected and status >= 500:
                status = CLIENT_CLOSED  # the client left mid-request: not a server error
            route = scope.get("path_template") or UNMATCHED_ROUTE
            self._record(method, path, route, status, started, tier, rid)

    def _record(
        self,
        method: str,
        path: str,
        route: str,
        status: int,
        started: float,
        tier: str | None,
        rid: str,
    ) -> None:
        seconds = time.perf_counter() - started
        self.metrics.request(route, method, status, seconds, tier)
        self.access_log.record(
            method=method,
            path=path,
            route=route,
            status=status,
            seconds=seconds,
            tier=tier,
            request_id=rid,
        )


class PublicCors:
    """CORS for the public selector endpoints only.

    Litestar's CORS config applies to every route; refresh, the debug sample and /metrics must
    not be callable from a browser page, so allowed origins get CORS headers on ``paths`` alone
    (GET and HEAD, plus their preflight), and nothing anywhere else.
    """

    METHODS = "GET, HEAD"
    MAX_AGE = "600"
    EXPOSE = b"ETag, Age"

    def __init__(self, app: ASGIApp, *, origins: Iterable[str], paths: Iterable[str]) -> None:
        self.app = app
        self.origins = frozenset(origins)
        self.any_origin = "*" in self.origins
        self.paths = frozenset(paths)

    def _allowed(self, origin: str) -> bool:
        return self.any_origin or origin in self.origins

    def headers_for(self, scope: Scope) -> list[tuple[bytes, bytes]]:
        """What a GET or HEAD answer on one of ``paths`` adds: Vary: Origin always (a shared
        cache never hands one origin's answer to another), the grant for an allowed origin."""
        if scope["path"] not in self.paths:
            return []
        origin = next((v for n, v in scope["headers"] if n == b"origin"), None)
        return self._extra(origin.decode("latin-1") if origin is not None else None)

    def _extra(self, allowed_origin: str | None) -> list[tuple[bytes, bytes]]:
        extra: list[tuple[bytes, bytes]] = [(b"vary", b"Origin")]
        if allowed_origin is not None and self._allowed(allowed_origin):
            extra.append((b"access-control-allow-origin", allowed_origin.encode("latin-1")))
            # Scripts may read these for If-None-Match and the data's age.
            extra.append((b"access-control-expose-headers", self.EXPOSE))
        return extra

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP or scope["path"] not in self.paths:
            await self.app(scope, receive, send)
            return
        origin: str | None = None
        preflight_method: bytes | None = None
        requested_headers: bytes | None = None
        for name, value in scope["headers"]:
            if name == b"origin":
                origin = value.decode("latin-1")
            elif name == b"access-control-request-method":
                preflight_method = value
            elif name == b"access-control-request-headers":
                requested_headers = value
        allowed = origin if origin is not None and self._allowed(origin) else None
        if scope["method"] == "OPTIONS" and preflight_method is not None:
            if allowed is not None and preflight_method.upper() in (b"GET", b"HEAD"):
                await self._preflight(send, allowed, requested_headers)
                return
            allowed = None  # a preflight for another method gets no CORS grant
        extra = self._extra(allowed)

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *extra]
            await send(message)

        await self.app(scope, receive, cors_send)

    async def _preflight(self, send: Send, origin: str, requested_headers: bytes | None) -> None:
        headers = [
            (b"access-control-allow-origin", origin.encode("latin-1")),
            (b"access-control-allow-methods", self.METHODS.encode()),
            (b"access-control-max-age", self.MAX_AGE.encode()),
            (b"vary", b"Origin"),
            (b"content-length", b"0"),
        ]
        if requested_headers:
            headers.append((b"access-control-allow-headers", requested_headers))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
