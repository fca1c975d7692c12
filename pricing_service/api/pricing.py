"""The selector's views of a snapshot: the models, the price map, the Space picker.

Each answer is bytes the service rendered once per snapshot (identity and gzip) with a strong
ETag, sent untouched (``RawReply``); the routes document their bytes with ``responses=``. The
estimates and the change feed are in `api/feed_estimate.py`, POST /refresh in
`api/refresh_route.py`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

from litestar import Controller, Request, get
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Parameter
from litestar.types import ASGIApp

from pricing_service.api.examples import LOCAL_EXAMPLE, MODELS_EXAMPLE, PRICES_EXAMPLE
from pricing_service.api.params import parse_ids, parse_local, parse_view
from pricing_service.api.requests import conditional_headers, reject_unknown_params
from pricing_service.api.schemas import (
    ErrorBody,
    LocalSpace,
    PriceMap,
    SelectorModels,
)
from pricing_service.curation import VIEWS

if TYPE_CHECKING:
    from litestar.types import Message, Receive, Scope, Send

    from pricing_service.replies import Reply
    from pricing_service.service import PricingService

MODELS_PARAMS = frozenset({"view", "category", "local", "ids"})
NO_PARAMS: frozenset[str] = frozenset()

CACHED_REPLIES: dict[int, ResponseSpec] = {
    304: ResponseSpec(None, description="Not modified: If-None-Match holds the ETag"),
    400: ResponseSpec(
        ErrorBody, generate_examples=False, description="A bad or unknown query parameter"
    ),
    503: ResponseSpec(
        ErrorBody, generate_examples=False, description="No prices yet, nothing cached"
    ),
}


class RawReply:
    """The selector's answer as a bare ASGI app: the pre-rendered bytes go out untouched.

    Litestar passes an ASGI app returned by a handler straight through, which skips building
    a Response object per request (the hot path's largest cost after the HTTP parsing).
    """

    __slots__ = ("body", "start")

    def __init__(self, reply: Reply) -> None:
        self.start: Message = {
            "type": "http.response.start",
            "status": reply.status,
            "headers": list(reply.raw_headers),
        }
        self.body: Message = {"type": "http.response.body", "body": reply.body, "more_body": False}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(self.start)
        await send(self.body)


class PricingController(Controller):
    path = "/api/v1/pricing"
    tags = ["pricing"]  # noqa: RUF012

    @get(
        "/models",
        operation_id="listModels",
        summary="Models for the selector: curated or all, with prices in USD and COP",
        description=(
            "Pre-rendered once per snapshot (identity and gzip) with a strong ETag; "
            "If-None-Match answers 304."
        ),
        responses={
            200: ResponseSpec(
                SelectorModels,
                generate_examples=False,
                examples=[MODELS_EXAMPLE],
                description="The view (gzip with Accept-Encoding: gzip); ETag header",
            ),
            304: ResponseSpec(None, description="Not modified: If-None-Match holds the ETag"),
            503: ResponseSpec(
                ErrorBody, generate_examples=False, description="No prices yet, nothing cached"
            ),
        },
    )
    async def models(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        view: Annotated[
            str,
            Parameter(
                description=f"one of {', '.join(VIEWS)} (curated, the default; all: 'ver todos')",
                examples=[Example(value=view) for view in VIEWS],
                max_length=20,
            ),
        ] = "curated",
        category: Annotated[
            str | None, Parameter(description="a category id", max_length=64)
        ] = None,
        local: Annotated[
            str | None, Parameter(description="true: only local models; false: none", max_length=8)
        ] = None,
        ids: Annotated[
            str | None,
            Parameter(description="comma-separated exact model ids (at most 100)", max_length=4000),
        ] = None,
    ) -> ASGIApp:
        reject_unknown_params(request, MODELS_PARAMS)
        accept_gzip, if_none_match = conditional_headers(request)
        reply = await pricing.models(
            view=parse_view(view),
            category=category,
            local=parse_local(local),
            ids=parse_ids(ids),
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
        )
        return RawReply(reply)

    @get(
        "/prices",
        operation_id="priceMap",
        summary="Every spelling of every model -> its price: fetch once, price any id",
        description=(
            "One key per id spelling (bare id, provider/model in the upstream's and OpenRouter's "
            "spelling, catalog aliases, local ids). Pre-rendered once per snapshot (identity and "
            "gzip, each with its own ETag); If-None-Match answers 304; Age header."
        ),
        responses={
            200: ResponseSpec(
                PriceMap,
                generate_examples=False,
                examples=[PRICES_EXAMPLE],
                description="The map; ETag and Age headers",
            ),
            **CACHED_REPLIES,
        },
    )
    async def prices(
        self, request: Request[Any, Any, Any], pricing: NamedDependency[PricingService]
    ) -> ASGIApp:
        reject_unknown_params(request, NO_PARAMS)
        accept_gzip, if_none_match = conditional_headers(request)
        return RawReply(await pricing.prices(accept_gzip=accept_gzip, if_none_match=if_none_match))

    @get(
        "/local",
        operation_id="localSpace",
        summary="The Ollama Space picker: models, hardware tiers, monthly hosting scenarios",
        description=(
            "One entry per Ollama model (all its selector ids), every Hugging Face Space tier with "
            "its hourly price, and monthly scenarios computed from the catalog. ETag / 304, gzip."
        ),
        responses={
            200: ResponseSpec(
                LocalSpace,
                generate_examples=False,
                examples=[LOCAL_EXAMPLE],
                description="ETag header",
            ),
            **CACHED_REPLIES,
        },
    )
    async def local_space(
        self, request: Request[Any, Any, Any], pricing: NamedDependency[PricingService]
    ) -> ASGIApp:
        reject_unknown_params(request, NO_PARAMS)
        accept_gzip, if_none_match = conditional_headers(request)
        return RawReply(pricing.local(accept_gzip=accept_gzip, if_none_match=if_none_match))
