"""POST /api/v1/pricing/refresh: a refresh run now, or an operator's acceptance of what the
gate held (cron or admin token)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any, cast

from litestar import Controller, Request, post
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body
from litestar.response import Response

from pricing_service.api.bodies import run_body
from pricing_service.api.document import OptionalBodyOperation
from pricing_service.api.examples import REFRESH_FAILED_EXAMPLE, REFRESH_RUNNING_EXAMPLE
from pricing_service.api.protected import protected
from pricing_service.api.schemas import RefreshAccepted, RefreshOutcome, RefreshRunning
from pricing_service.domain import MAX_RUN_ID, AcceptedFigure, RunOutcome, RunStatus, RunTrigger
from pricing_service.errors import InvalidRequest, RefreshInProgress
from pricing_service.normalize import UNSAFE_TEXT

if TYPE_CHECKING:
    from pricing_service.access import Access
    from pricing_service.refresh import Refresher
    from pricing_service.service import PricingService

MAX_REFRESH_IDS = 200
MAX_ID_CHARS = 200  # model_price.model_id (normalize.LIMITS)
MAX_WAIT_SECONDS = 600


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


class RefreshController(Controller):
    path = "/api/v1/pricing"
    tags = ["pricing"]  # noqa: RUF012

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
