"""The selector's answers computed per request: the estimates (GET and POST) and the feed.

GET /estimate is bytes the service rendered (``RawReply``, documented with ``responses=``).
POST /estimate and GET /changes are built as their structs (`estimate_answer.UsageEstimate`,
`feed.PriceChanges`, the one declaration of each) and rendered by the service (Decimal money as
JSON numbers, a strong ETag for the feed); their handlers return a ``StructReply`` of that
struct, so the OpenAPI document derives the 200's schema from the return type (its examples:
`examples.SUCCESS_EXAMPLES`, by operation id) and the wire gets the service's bytes untouched.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, TypeVar, cast

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, Parameter
from litestar.response import Response
from litestar.types import ASGIApp

from pricing_service.api.document import DocumentedOperation
from pricing_service.api.examples import ESTIMATE_EXAMPLE
from pricing_service.api.pricing import CACHED_REPLIES, NO_PARAMS, RawReply
from pricing_service.api.requests import conditional_headers, reject_unknown_params
from pricing_service.api.schemas import ErrorBody, Estimate
from pricing_service.domain import ChangeKind
from pricing_service.errors import InvalidRequest
from pricing_service.feed import PriceChanges
from pricing_service.normalize import UNSAFE_TEXT
from pricing_service.usage import UsageEstimate

if TYPE_CHECKING:
    from litestar.response.base import ASGIResponse

    from pricing_service.replies import Answer
    from pricing_service.service import PricingService

T = TypeVar("T")

ESTIMATE_PARAMS = frozenset({"model_id", "input_tokens", "output_tokens"})
CHANGES_PARAMS = frozenset({"since", "limit", "model_id", "kind", "cursor"})
# A usage object is a few hundred bytes; the body is refused long before Litestar's 10 MB.
MAX_USAGE_BODY = 64 * 1024


class StructReply(Response[T]):
    """A struct answer as the service rendered it: typed by its struct (what the document
    derives), sent as the reply's status, headers and bytes (``RawReply``), never re-encoded."""

    def __init__(self, answer: Answer[T]) -> None:
        super().__init__(answer.body, status_code=answer.reply.status)
        self._raw = RawReply(answer.reply)

    def to_asgi_response(self, *args: Any, **kwargs: Any) -> ASGIResponse:
        # Litestar awaits whatever ASGI app this returns; RawReply is one.
        return cast("ASGIResponse", self._raw)


@dataclass
class UsageEstimateRequest:
    """The body of POST /estimate: ``usage`` exactly as the provider's API returned it, and
    optionally its ``format`` (openai_chat, openai_responses, anthropic, gemini)."""

    model_id: str
    usage: Any
    format: str | None = None


def parse_since(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
    except ValueError:
        raise InvalidRequest(
            f"since must be an ISO-8601 date or time (e.g. 2026-11-01T00:00:00Z), not {value!r}"
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)  # 0001-01-01T00:00:00+14:00 is before year 1 in UTC
    except OverflowError:
        raise InvalidRequest(f"since is out of range: {value!r}") from None


class FeedEstimateController(Controller):
    path = "/api/v1/pricing"
    tags = ["pricing"]  # noqa: RUF012

    @get(
        "/estimate",
        operation_id="estimateCost",
        summary="The cost of one call in USD and COP (exact decimals)",
        description=(
            "model_id as the client spells it; input_tokens and output_tokens whole numbers. "
            "An unknown price answers price_status unknown with null amounts, never 0."
        ),
        responses={
            200: ResponseSpec(
                Estimate,
                generate_examples=False,
                examples=[ESTIMATE_EXAMPLE],
                description="The estimate",
            ),
            **CACHED_REPLIES,
        },
    )
    async def estimate(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        model_id: Annotated[
            str | None, Parameter(description="a model id, any spelling", max_length=200)
        ] = None,
        input_tokens: Annotated[
            str | None, Parameter(description="input tokens (0 to 100000000)", max_length=12)
        ] = None,
        output_tokens: Annotated[
            str | None, Parameter(description="output tokens (0 to 100000000)", max_length=12)
        ] = None,
    ) -> ASGIApp:
        reject_unknown_params(request, ESTIMATE_PARAMS)
        accept_gzip, if_none_match = conditional_headers(request)
        reply = await pricing.estimate(
            model_id=model_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            accept_gzip=accept_gzip,
            if_none_match=if_none_match,
        )
        return RawReply(reply)

    @post(
        "/estimate",
        operation_id="estimateUsageCost",
        summary="The cost of one call from the provider's own usage object, kind by kind",
        description=(
            "usage as the provider returned it: OpenAI Chat Completions (prompt_tokens ...), "
            "OpenAI Responses (input_tokens, input_tokens_details ...), Anthropic (input_tokens, "
            "cache_creation_input_tokens, cache_read_input_tokens ...) or Gemini "
            "(promptTokenCount ...), recognised by its fields or named with format. Each "
            "provider's rule applies (rule in the answer); every price kind is a line in USD and "
            "COP; a kind whose price is unknown is null with its reason and listed in missing, "
            "and the total is then null, never a guess. Not cached (Cache-Control: no-store)."
        ),
        status_code=200,
        request_max_body_size=MAX_USAGE_BODY,
        response_description="The itemized estimate",
        operation_class=DocumentedOperation,
        responses={
            400: ResponseSpec(
                ErrorBody,
                generate_examples=False,
                description="Not a usage object, an ambiguous one, or a count that is not a "
                "whole number",
            ),
            503: ResponseSpec(ErrorBody, generate_examples=False, description="No prices yet"),
        },
    )
    async def estimate_usage(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        data: Annotated[UsageEstimateRequest, Body(description="the model and its usage")],
    ) -> StructReply[UsageEstimate]:
        reject_unknown_params(request, NO_PARAMS)
        if not isinstance(data.model_id, str):
            raise InvalidRequest("model_id must be a string")
        if data.format is not None and not isinstance(data.format, str):
            raise InvalidRequest("format must be a string")
        if UNSAFE_TEXT.search(data.model_id):
            raise InvalidRequest("model_id: control characters are not allowed")
        answer = await pricing.estimate_usage(
            model_id=data.model_id, usage=data.usage, format=data.format
        )
        return StructReply(answer)

    @get(
        "/changes",
        operation_id="listPriceChanges",
        summary="Price changes: newest first, or after a cursor oldest first (a feed)",
        description=(
            "Prices in USD and COP per million tokens. Without cursor the newest changes come "
            "first; pass next_cursor back as cursor= to get only what came after, oldest first "
            "(cursor= empty starts at the beginning), so a client resumes exactly where it "
            "stopped. Strong ETag; If-None-Match answers 304."
        ),
        response_description="Changes, arrivals and removals, and the cursor to resume from",
        operation_class=DocumentedOperation,
        responses=CACHED_REPLIES,
    )
    async def changes(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        since: Annotated[
            str | None, Parameter(description="ISO-8601; changes at or after it", max_length=40)
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000, description="at most this many")] = 100,
        model_id: Annotated[
            str | None, Parameter(description="only this model id", max_length=200)
        ] = None,
        kind: Annotated[
            ChangeKind | None,
            Parameter(description="changed (price moved), added (newly listed) or removed"),
        ] = None,
        cursor: Annotated[
            str | None,
            Parameter(
                description="next_cursor of an earlier answer: only the changes after it, "
                "oldest first (empty: from the beginning)",
                max_length=64,
            ),
        ] = None,
    ) -> StructReply[PriceChanges]:
        reject_unknown_params(request, CHANGES_PARAMS)
        _, if_none_match = conditional_headers(request)
        answer = await pricing.change_feed(
            parse_since(since),
            limit,
            model_id=model_id,
            kind=kind.value if kind is not None else None,
            cursor=cursor,
            if_none_match=if_none_match,
        )
        return StructReply(answer)
