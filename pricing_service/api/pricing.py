"""The selector, change feed and refresh endpoints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, cast
from urllib.parse import parse_qsl

from litestar import Controller, Request, get, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Example
from litestar.params import Body, Parameter
from litestar.response import Response
from litestar.types import ASGIApp

from pricing_service.api.bodies import run_body
from pricing_service.api.document import OptionalBodyOperation
from pricing_service.api.examples import (
    CHANGES_EXAMPLE,
    ESTIMATE_EXAMPLE,
    LOCAL_EXAMPLE,
    MODELS_EXAMPLE,
    PRICES_EXAMPLE,
    REFRESH_FAILED_EXAMPLE,
    REFRESH_RUNNING_EXAMPLE,
    USAGE_ESTIMATE_EXAMPLES,
)
from pricing_service.api.params import parse_ids, parse_local, parse_view
from pricing_service.api.protected import protected
from pricing_service.api.schemas import (
    ErrorBody,
    Estimate,
    LocalSpace,
    PriceChanges,
    PriceMap,
    RefreshAccepted,
    RefreshOutcome,
    RefreshRunning,
    SelectorModels,
    UsageEstimate,
)
from pricing_service.curation import VIEWS
from pricing_service.domain import (
    MAX_RUN_ID,
    AcceptedFigure,
    ChangeKind,
    RunOutcome,
    RunStatus,
    RunTrigger,
)
from pricing_service.errors import InvalidRequest, RefreshInProgress
from pricing_service.normalize import UNSAFE_TEXT
from pricing_service.replies import accepts_gzip

if TYPE_CHECKING:
    from litestar.types import Message, Receive, Scope, Send

    from pricing_service.access import Access
    from pricing_service.refresh import Refresher
    from pricing_service.replies import Reply
    from pricing_service.service import PricingService

MAX_REFRESH_IDS = 200
MAX_ID_CHARS = 200  # model_price.model_id (normalize.LIMITS)


MAX_WAIT_SECONDS = 600


# A usage object is a few hundred bytes; the body is refused long before Litestar's 10 MB.
MAX_USAGE_BODY = 64 * 1024


@dataclass
class UsageEstimateRequest:
    """The body of POST /estimate: ``usage`` exactly as the provider's API returned it, and
    optionally its ``format`` (openai_chat, openai_responses, anthropic, gemini)."""

    model_id: str
    usage: Any
    format: str | None = None


@dataclass
class RefreshRequest:
    """Optional body of POST /refresh.

    ``force`` skips only the "a run just succeeded" shortcut. ``wait_seconds`` (0 to 600):
    when the run outlives it the answer is 202 with the run id. ``accept_run_id`` (admin token
    only) applies what the gate held instead of fetching: a held run, or that run's held prices
    (all, or those in ``accept_model_ids``); ``accept_figure`` "second_source" applies prices
    held for a second-source disagreement at the second source's figures instead of the
    upstream's ("proposed", the default). The figure applied is recorded on the held price.
    """

    model_ids: list[str] | None = None
    force: bool = False
    wait_seconds: float = MAX_WAIT_SECONDS
    accept_run_id: int | None = None
    accept_model_ids: list[str] | None = None
    accept_figure: str | None = None


def check_ids(name: str, ids: list[str] | None) -> None:
    """400 for a list of model ids no model could match: too many, empty, too long, or with
    control characters (PostgreSQL refuses NUL with a 500; no id holds one)."""
    if ids is None:
        return
    if len(ids) > MAX_REFRESH_IDS:
        raise InvalidRequest(f"{name}: at most {MAX_REFRESH_IDS} ids")
    for index, model_id in enumerate(ids):
        if not model_id.strip():
            raise InvalidRequest(f"{name}[{index}]: empty model id")
        if len(model_id) > MAX_ID_CHARS:
            raise InvalidRequest(f"{name}[{index}]: at most {MAX_ID_CHARS} characters")
        if UNSAFE_TEXT.search(model_id):
            raise InvalidRequest(f"{name}[{index}]: control characters are not allowed")


def check_run_id(name: str, run_id: int) -> None:
    if not 1 <= run_id <= MAX_RUN_ID:
        raise InvalidRequest(f"{name} must be between 1 and {MAX_RUN_ID}, not {run_id}")


def reject_unknown_params(request: Request[Any, Any, Any], allowed: frozenset[str]) -> None:
    """400 naming every query parameter the route does not take (a typo must not be ignored)."""
    query = request.scope.get("query_string", b"")
    if not query:
        return
    names = {name for name, _ in parse_qsl(query.decode("latin-1"), keep_blank_values=True)}
    unknown = sorted(names - allowed)
    if unknown:
        takes = ", ".join(sorted(allowed)) or "none"
        raise InvalidRequest(
            f"unknown query parameter{'s' if len(unknown) > 1 else ''}: "
            f"{', '.join(unknown)} (this route takes: {takes})"
        )


def conditional_headers(request: Request[Any, Any, Any]) -> tuple[bool, str | None]:
    """Whether the client accepts gzip (q-values honoured), and its If-None-Match."""
    accept_encoding = b""
    if_none_match: str | None = None
    for name, value in request.scope["headers"]:
        if name == b"accept-encoding":
            accept_encoding = value
        elif name == b"if-none-match":
            if_none_match = value.decode("latin-1")
    return accepts_gzip(accept_encoding), if_none_match


MODELS_PARAMS = frozenset({"view", "category", "local", "ids"})
CHANGES_PARAMS = frozenset({"since", "limit", "model_id", "kind", "cursor"})
ESTIMATE_PARAMS = frozenset({"model_id", "input_tokens", "output_tokens"})
NO_PARAMS: frozenset[str] = frozenset()

_CACHED_REPLIES: dict[int, ResponseSpec] = {
    304: ResponseSpec(None, description="Not modified: If-None-Match holds the ETag"),
    400: ResponseSpec(
        ErrorBody, generate_examples=False, description="A bad or unknown query parameter"
    ),
    503: ResponseSpec(
        ErrorBody, generate_examples=False, description="No prices yet, nothing cached"
    ),
}


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
            **_CACHED_REPLIES,
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
            **_CACHED_REPLIES,
        },
    )
    async def local_space(
        self, request: Request[Any, Any, Any], pricing: NamedDependency[PricingService]
    ) -> ASGIApp:
        reject_unknown_params(request, NO_PARAMS)
        accept_gzip, if_none_match = conditional_headers(request)
        return RawReply(pricing.local(accept_gzip=accept_gzip, if_none_match=if_none_match))

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
            **_CACHED_REPLIES,
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
        responses={
            200: ResponseSpec(
                UsageEstimate,
                generate_examples=False,
                examples=USAGE_ESTIMATE_EXAMPLES,
                description="The itemized estimate",
            ),
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
    ) -> ASGIApp:
        reject_unknown_params(request, NO_PARAMS)
        if not isinstance(data.model_id, str):
            raise InvalidRequest("model_id must be a string")
        if data.format is not None and not isinstance(data.format, str):
            raise InvalidRequest("format must be a string")
        if UNSAFE_TEXT.search(data.model_id):
            raise InvalidRequest("model_id: control characters are not allowed")
        reply = await pricing.estimate_usage(
            model_id=data.model_id, usage=data.usage, format=data.format
        )
        return RawReply(reply)

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
        responses={
            200: ResponseSpec(
                PriceChanges,
                generate_examples=False,
                examples=[CHANGES_EXAMPLE],
                description="Changes, arrivals and removals, and the cursor to resume from",
            ),
            **_CACHED_REPLIES,
        },
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
    ) -> ASGIApp:
        reject_unknown_params(request, CHANGES_PARAMS)
        _, if_none_match = conditional_headers(request)
        reply = await pricing.change_feed(
            parse_since(since),
            limit,
            model_id=model_id,
            kind=kind.value if kind is not None else None,
            cursor=cursor,
            if_none_match=if_none_match,
        )
        return RawReply(reply)

    @post(
        "/refresh",
        operation_id="refreshPrices",
        summary="Fetch prices from PricePerToken now (cron or admin token)",
        status_code=200,
        response_description="The run succeeded or was held; with accept_run_id, what it applied",
        operation_class=OptionalBodyOperation,
        **protected(
            "refresh",
            responses={
                202: ResponseSpec(
                    RefreshRunning,
                    generate_examples=False,
                    examples=[REFRESH_RUNNING_EXAMPLE],
                    description="A refresh is already running, or outlived wait_seconds",
                ),
                502: ResponseSpec(
                    RefreshOutcome,
                    generate_examples=False,
                    examples=[REFRESH_FAILED_EXAMPLE],
                    description="The run failed; prices unchanged",
                ),
            },
        ),
    )
    async def refresh(
        self,
        request: Request[Any, Any, Any],
        pricing: NamedDependency[PricingService],
        refresher: NamedDependency[Refresher],
        access: NamedDependency[Access],
        data: Annotated[RefreshRequest | None, Body(description="optional")] = None,
    ) -> Response[RefreshOutcome | RefreshAccepted]:
        body = data or RefreshRequest()
        check_ids("model_ids", body.model_ids)
        check_ids("accept_model_ids", body.accept_model_ids)
        if not 0 <= body.wait_seconds <= MAX_WAIT_SECONDS:
            raise InvalidRequest(f"wait_seconds must be between 0 and {MAX_WAIT_SECONDS}")
        if body.accept_run_id is not None:
            check_run_id("accept_run_id", body.accept_run_id)
            access.require(request.headers.get("authorization"), admin_only=True)
            figure = body.accept_figure or AcceptedFigure.PROPOSED.value
            if figure not in set(AcceptedFigure):
                named = " or ".join(repr(f.value) for f in AcceptedFigure)
                raise InvalidRequest(f"accept_figure must be {named}")
            accepted = await refresher.accept(
                body.accept_run_id,
                by="api (admin token)",
                model_ids=body.accept_model_ids or (),
                figure=figure,
            )
            return Response(
                RefreshAccepted(
                    accepted=list(accepted.accepted),
                    run=run_body(await pricing.run(body.accept_run_id)),
                    snapshot_id=accepted.snapshot.id,
                ),
                status_code=200,
            )
        if body.accept_model_ids or body.accept_figure:
            raise InvalidRequest("accept_model_ids and accept_figure need accept_run_id")
        try:
            launched = await refresher.launch(RunTrigger.API, force=body.force)
        except RefreshInProgress as exc:
            return _running(exc.run_id, exc.detail)
        outcome = await launched.wait(body.wait_seconds)
        if outcome is None:
            return _running(
                launched.run.id,
                f"run {launched.run.id} is still running; "
                f"see GET /api/v1/pricing/runs/{launched.run.id}",
            )
        result = RefreshOutcome(run=run_body(outcome.run), started=outcome.started)
        if body.model_ids:
            dataset, _ = await pricing.dataset()
            result.models = {m: dataset.status_of(m) for m in body.model_ids}
        status = 200 if outcome.run.status in (RunStatus.SUCCEEDED, RunStatus.HELD) else 502
        return Response(result, status_code=status)


def _running(run_id: int | None, detail: str) -> Response[RefreshOutcome | RefreshAccepted]:
    """POST /refresh's 202 (a RefreshRunning body; typed as the 200's, which the document
    derives from the handler's return type)."""
    running = Response(
        RefreshRunning(status=RunOutcome.IN_PROGRESS, run_id=run_id, detail=detail), status_code=202
    )
    return cast("Response[RefreshOutcome | RefreshAccepted]", running)
