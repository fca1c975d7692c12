"""The documented bodies (api/schemas.py) hold what the API really sends, and so do the examples.

Each body is converted into its struct with unknown fields forbidden: a key on one side only, a
missing one, or a type that does not fit fails here.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pricing_service import feed
from pricing_service.api import examples
from pricing_service.api.bodies import run_body, snapshot_body
from pricing_service.api.schemas import (
    DebugSample,
    Estimate,
    Health,
    LocalSpace,
    NotReady,
    PriceChangeEntry,
    PriceChanges,
    PriceMap,
    Ready,
    RefreshAccepted,
    RefreshOutcome,
    RefreshRunning,
    Run,
    Runs,
    SampleSnapshot,
    SelectorModels,
    UsageEstimate,
)
from pricing_service.catalog import load_catalog
from pricing_service.curation import SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import (
    ChangeKind,
    CrossSourceEntry,
    CrossSourceReport,
    HeldPrice,
    HoldReason,
    PriceChange,
    RunStatus,
    RunSummary,
    SnapshotInfo,
    SnapshotSource,
)
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.usage import estimate_body, read_usage

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
ENCODER = msgspec.json.Encoder(decimal_format="number")


def _as_sent(body: Any) -> Any:
    """The body as a client decodes it (Decimal money written as JSON numbers)."""
    return json.loads(ENCODER.encode(body))


@pytest.mark.parametrize(
    ("example", "body_type"),
    [
        (examples.MODELS_EXAMPLE, SelectorModels),
        (examples.PRICES_EXAMPLE, PriceMap),
        (examples.LOCAL_EXAMPLE, LocalSpace),
        (examples.ESTIMATE_EXAMPLE, Estimate),
        (examples.HEALTH_EXAMPLE, Health),
        (examples.READY_EXAMPLE, Ready),
        (examples.NOT_READY_EXAMPLE, NotReady),
        (examples.RUNS_EXAMPLE, Runs),
        (examples.RUN_EXAMPLE, Run),
        (examples.REFRESH_EXAMPLES[0], RefreshOutcome),
        (examples.REFRESH_EXAMPLES[1], RefreshOutcome),
        (examples.REFRESH_EXAMPLES[2], RefreshAccepted),
        (examples.REFRESH_RUNNING_EXAMPLE, RefreshRunning),
        (examples.REFRESH_FAILED_EXAMPLE, RefreshOutcome),
        (examples.DEBUG_SAMPLE_EXAMPLE, DebugSample),
    ],
    ids=lambda value: getattr(value, "summary", None) or getattr(value, "__name__", None),
)
def test_every_example_is_a_documented_body(example: Any, body_type: type[Any]) -> None:
    msgspec.convert(example.value, body_type)


@pytest.mark.parametrize("view", ["curated", "all"])
def test_rendered_selector_views_are_documented_bodies(view: str) -> None:
    prices = normalize_listing(
        json.loads((RECORDING / "get_all_models.json").read_text()),
        {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())},
    ).prices
    dataset = SelectorDataset(
        snapshot=SnapshotInfo(7, FETCHED_AT, SnapshotSource.PRICEPERTOKEN, len(prices)),
        prices=prices,
        catalog=load_catalog(ROOT / "catalog"),
        rate=Decimal(4000),
        rate_source="fixed: test",
        currency=COP,
    )
    body = dataset.render(view=view, now=FETCHED_AT + timedelta(minutes=30), ttl_seconds=3600)
    models = msgspec.convert(_as_sent(body), SelectorModels)
    assert len(models.items) == len(body["items"]) > 0


def _held(run_id: int) -> HeldPrice:
    return HeldPrice(
        model_id="gemini-1.5-flash",
        run_id=run_id,
        reason=HoldReason.SECOND_SOURCE,
        detail="input 0.35 USD per million from google, the author; more than 3x apart",
        proposed_input_usd_per_million=Decimal("0.35"),
        proposed_output_usd_per_million=Decimal("1.05"),
        accepted_input_usd_per_million=None,
        accepted_output_usd_per_million=None,
        held_at=FETCHED_AT,
        second_input_usd_per_million=Decimal("0.075"),
        second_output_usd_per_million=Decimal("0.3"),
        second_source="genai-prices 0.2.3 google/gemini-1.5-flash",
    )


def _run(status: RunStatus, *, finished: bool = True) -> RunSummary:
    report = CrossSourceReport(
        version="genai-prices 0.2.3",
        agree=200,
        disagree=1,
        uncovered=300,
        disagreements=(
            CrossSourceEntry(
                model_id="gemini-1.5-flash",
                provider="google",
                pricing_source="google",
                pricing_source_is_author=True,
                input_usd_per_million=Decimal("0.35"),
                output_usd_per_million=Decimal("1.05"),
                second_input_usd_per_million=Decimal("0.075"),
                second_output_usd_per_million=Decimal("0.3"),
                second_source="genai-prices 0.2.3 google/gemini-1.5-flash",
                factor=None,
                held=True,
            ),
        ),
    )
    return RunSummary(
        id=3,
        trigger="api",
        status=status,
        started_at=FETCHED_AT,
        finished_at=FETCHED_AT + timedelta(seconds=60) if finished else None,
        rows_seen=533,
        priced=520,
        unknown=13,
        changes=2,
        error=None,
        upstream_latency_ms=58000,
        snapshot_id=5,
        held_reason="fewer priced models" if status is RunStatus.HELD else None,
        held_prices=(_held(3),),
        cross_source=report,
    )


@pytest.mark.parametrize("status", list(RunStatus))
@pytest.mark.parametrize("disagreements", [False, True])
def test_runs_are_documented_bodies(status: RunStatus, disagreements: bool) -> None:
    body = run_body(
        _run(status, finished=status is not RunStatus.RUNNING), disagreements=disagreements
    )
    run = msgspec.convert(_as_sent(body), Run)
    assert run.status is status
    assert run.cross_source is not None
    assert (run.cross_source.disagreements is msgspec.UNSET) is not disagreements
    msgspec.convert(_as_sent({"run": body, "started": True}), RefreshOutcome)


@pytest.mark.parametrize("kind", list(ChangeKind))
def test_changes_are_documented_bodies(kind: ChangeKind) -> None:
    change = PriceChange(
        model_id="gpt-4.1-mini",
        kind=kind,
        changed_at=FETCHED_AT,
        old_input_usd_per_million=None if kind is ChangeKind.ADDED else Decimal("0.4"),
        new_input_usd_per_million=Decimal("0.3"),
        old_output_usd_per_million=Decimal("1.6"),
        new_output_usd_per_million=None,
    )
    msgspec.convert(_as_sent(feed.item(change, Decimal(4200))), PriceChangeEntry)
    body = feed.feed_body([change], Decimal(4200), 12, "oldest_first")
    assert msgspec.convert(_as_sent(body), PriceChanges).next_cursor == feed.encode_cursor(12)


def test_snapshots_in_the_debug_sample_are_documented_bodies() -> None:
    info = SnapshotInfo(7, FETCHED_AT, SnapshotSource.SEED, 533)
    # The source is the listing source's name (any string), "seed" for the bundled recording.
    assert msgspec.convert(_as_sent(snapshot_body(info)), SampleSnapshot).source == "seed"


@pytest.mark.parametrize(
    ("model_id", "usage"),
    [
        (
            "claude-sonnet-4-20250514",
            {
                "input_tokens": 3,
                "cache_read_input_tokens": 9,
                "cache_creation": {"ephemeral_1h_input_tokens": 0},
                "cache_creation_input_tokens": 4,
                "output_tokens": 1,
            },
        ),
        (
            "claude-3-5-haiku-20241022",
            {"input_tokens": 3, "cache_read_input_tokens": 9, "output_tokens": 1},
        ),
        (
            "gemini-2.0-flash",
            {
                "promptTokenCount": 9,
                "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 2}],
            },
        ),
        ("no-such-model", {"prompt_tokens": 9, "completion_tokens": 2}),
        ("phi3:latest", {"prompt_tokens": 9, "completion_tokens": 2}),
    ],
)
def test_usage_estimates_are_documented_bodies(model_id: str, usage: dict[str, Any]) -> None:
    prices = normalize_listing(
        json.loads((RECORDING / "get_all_models.json").read_text()),
        {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())},
    ).prices
    dataset = SelectorDataset(
        snapshot=SnapshotInfo(7, FETCHED_AT, SnapshotSource.PRICEPERTOKEN, len(prices)),
        prices=prices,
        catalog=load_catalog(ROOT / "catalog"),
        rate=Decimal(4000),
        rate_source="fixed: test",
        currency=COP,
    )
    found = dataset.lookup([model_id], now=FETCHED_AT, ttl_seconds=3600)
    body = estimate_body(
        found["items"][0],
        read_usage(usage),
        rate=dataset.rate,
        local=dataset.currency,
        currency=found["currency"],
        snapshot=found["snapshot"],
    )
    # The struct is the answer's declaration; converting what it encodes back into it checks
    # the types the builder stored (an item's fields are not typed where they are read).
    assert msgspec.convert(_as_sent(body), UsageEstimate).model_id == model_id
