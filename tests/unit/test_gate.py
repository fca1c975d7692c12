"""The sanity gate: run holds, per-model doubts and what a plan changes (pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from pricing_service.domain import (
    ChangeKind,
    HoldReason,
    ModelPrice,
    NormalizedListing,
    PriceBasis,
    SnapshotSource,
)
from pricing_service.gate import (
    Baseline,
    change_pct,
    curated_without_price,
    plan_snapshot,
    price_doubt,
    run_hold_reason,
)

NOW = datetime(2026, 11, 26, 12, tzinfo=UTC)


def price(model_id: str, inp: str | None = "1", out: str | None = "2", **kw: object) -> ModelPrice:
    return ModelPrice(
        model_id=model_id,
        slug=f"x-{model_id}",
        provider="openai",
        display_name=model_id,
        input_usd_per_million=None if inp is None else Decimal(inp),
        output_usd_per_million=None if out is None else Decimal(out),
        price_basis=PriceBasis.OFFICIAL,
        **kw,  # type: ignore[arg-type]
    )


def listing(prices: list[ModelPrice]) -> NormalizedListing:
    return NormalizedListing(prices=tuple(prices), rows_seen=len(prices), field_names=())


BASE = Baseline(snapshot_id=7, source=SnapshotSource.PRICEPERTOKEN, models=100, priced=90)


@pytest.mark.parametrize(
    ("models", "priced", "expected"),
    [
        (100, 90, None),
        (100, 72, None),  # exactly 80 % of 90
        (100, 71, "under 80%"),
        (300, 300, None),  # exactly 3x
        (301, 301, "over 3x"),
    ],
)
def test_run_hold_reason_counts_against_the_baseline(
    models: int, priced: int, expected: str | None
) -> None:
    prices = [price(f"m{i}") for i in range(priced)]
    prices += [price(f"u{i}", None, None) for i in range(models - priced)]
    reason = run_hold_reason(listing(prices), BASE)
    if expected is None:
        assert reason is None
    else:
        assert reason is not None
        assert expected in reason
        assert "#7" in reason


def test_without_a_baseline_nothing_is_held() -> None:
    assert run_hold_reason(listing([price("a")]), None) is None


def test_curated_models_listed_without_a_price_are_named() -> None:
    accepted = [price("gpt-4o"), price("o1"), price("gone")]
    proposed = [price("gpt-4o", None, None), price("o1")]
    assert curated_without_price(["gpt-4o", "o1", "gone", "never"], {}, accepted, proposed) == [
        "gpt-4o"
    ]


@pytest.mark.parametrize(
    ("old", "new", "reason"),
    [
        (("2.5", "10"), ("2.5", "10"), None),
        (("2.5", "10"), ("25", "10"), None),  # exactly 10x
        (("2.5", "10"), ("25.01", "10"), HoldReason.RATIO),
        (("2.5", "10"), ("0.25", "10"), None),
        (("2.5", "10"), ("0.2499", "10"), HoldReason.RATIO),
        (("2.5", "10"), ("1e-30", "10"), HoldReason.RATIO),
        (("2.5", "10"), ("1e12", "10"), HoldReason.CEILING),
        (("2.5", "10"), ("2.5", "1000.01"), HoldReason.CEILING),
        (("2.5", "10"), ("0", "10"), HoldReason.ZERO),
        (("0", "0"), ("2.5", "10"), None),  # free becoming paid is a legitimate change
        ((None, None), ("2.5", "10"), None),
        (None, ("1e300", "1"), HoldReason.CEILING),  # first seen
        (None, ("0.0001", "0"), None),
    ],
)
def test_price_doubt(
    old: tuple[str | None, str | None] | None,
    new: tuple[str | None, str | None],
    reason: HoldReason | None,
) -> None:
    accepted = None if old is None else price("m", *old)
    doubt = price_doubt(price("m", *new), accepted, free_ids=())
    assert (doubt[0] if doubt else None) is reason


def test_a_catalog_free_model_may_drop_to_zero() -> None:
    assert price_doubt(price("m", "0", "0"), price("m"), free_ids={"m"}) is None


def test_plan_keeps_the_accepted_price_of_a_doubtful_model_and_applies_the_rest() -> None:
    current = {"a": price("a"), "b": price("b")}
    plan = plan_snapshot(
        current, [price("a", "1e12", "2"), price("b", "1.5", "2")], now=NOW, grace_seconds=60
    )
    rows = {r.model_id: r for r in plan.rows}
    assert rows["a"].input_usd_per_million == 1
    assert rows["b"].input_usd_per_million == Decimal("1.5")
    assert [(d.model_id, d.reason) for d in plan.doubts] == [("a", HoldReason.CEILING)]
    assert [(e.model_id, e.kind) for e in plan.events] == [("b", ChangeKind.CHANGED)]
    assert plan.settled == {"a", "b"}


def test_plan_delists_then_drops_after_the_grace_and_welcomes_arrivals() -> None:
    current = {"a": price("a"), "b": price("b")}
    plan = plan_snapshot(current, [price("a"), price("c")], now=NOW, grace_seconds=3600)
    rows = {r.model_id: r for r in plan.rows}
    assert rows["b"].listed is False
    assert rows["b"].delisted_at == NOW
    assert rows["b"].input_usd_per_million == 1
    assert {(e.model_id, e.kind) for e in plan.events} == {
        ("b", ChangeKind.REMOVED),
        ("c", ChangeKind.ADDED),
    }
    assert (plan.listed, plan.priced) == (2, 2)

    later = plan_snapshot(
        rows, [price("a"), price("c")], now=NOW + timedelta(hours=2), grace_seconds=3600
    )
    assert "b" not in {r.model_id for r in later.rows}
    assert later.dropped == ("b",)
    assert later.events == ()


def test_accepting_prices_touches_only_those_models() -> None:
    current = {"a": price("a"), "b": replace(price("b"), listed=False, delisted_at=NOW)}
    plan = plan_snapshot(
        current,
        [price("a", "50", "100")],
        now=NOW,
        grace_seconds=0,
        accepted_ids={"a"},
        full_listing=False,
    )
    rows = {r.model_id: r for r in plan.rows}
    assert rows["a"].input_usd_per_million == 50
    assert rows["b"].listed is False  # not delisted again, not dropped
    assert plan.doubts == ()
    assert plan.settled == {"a"}


def test_the_first_snapshot_populates_without_events() -> None:
    plan = plan_snapshot({}, [price("a"), price("b")], now=NOW, grace_seconds=0)
    assert plan.events == ()
    assert len(plan.rows) == 2


@pytest.mark.parametrize(
    ("old", "new", "pct"),
    [
        ("2.5", "3", "20"),
        ("2.5", "2.5", "0"),
        ("3", "2.5", "-16.67"),
        ("1", "1.00125", "0.12"),  # 0.125: half-even, exact (a float rounds its binary value)
        ("1", "1.00135", "0.14"),
        ("1", "0.9999", "-0.01"),
        ("1", "0.99999", "0"),  # not -0
        ("0", "1", None),
        (None, "1", None),
        ("2.5", None, None),
        ("2.5", "1e300", None),
        ("2.5", "1e-30", None),
        ("1", "1000", "99900"),
    ],
)
def test_change_pct_is_null_from_zero_or_to_an_extreme(
    old: str | None, new: str | None, pct: str | None
) -> None:
    def as_dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)

    found = change_pct(as_dec(old), as_dec(new))
    # A Decimal to 2 places as the feed writes it: no trailing zeros, no exponent.
    assert (None if found is None else str(found)) == pct
