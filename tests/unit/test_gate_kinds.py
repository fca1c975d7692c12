"""The gate against glitches: every price kind checked, a baseline a null cannot erase, a failed
get_model never replaced by the list price (pure)."""

from __future__ import annotations

import dataclasses
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from pricing_service.domain import (
    HoldReason,
    ModelPrice,
    NormalizedListing,
    PriceBasis,
    PriceKind,
    PriceStatus,
)
from pricing_service.gate import (
    MAX_DETAIL_FAILED_SHARE,
    Baseline,
    plan_snapshot,
    price_doubt,
    run_hold_reason,
)

NOW = datetime(2026, 12, 2, 12, tzinfo=UTC)
BASE = Baseline(snapshot_id=7, source="pricepertoken", models=100, priced=90)


def with_kind(base: ModelPrice, kind: PriceKind, value: Decimal) -> ModelPrice:
    """``base`` with the price of one kind set (the field is named by the kind)."""
    changed: dict[str, Any] = {kind.field: value}  # one of the Decimal | None price fields
    return replace(base, **changed)


def price(
    model_id: str = "m",
    inp: str | None = "2",
    out: str | None = "8",
    *,
    basis: PriceBasis = PriceBasis.OFFICIAL,
    **kinds: str | None,
) -> ModelPrice:
    return ModelPrice(
        model_id=model_id,
        slug=f"x-{model_id}",
        provider="openai",
        display_name=model_id,
        input_usd_per_million=None if inp is None else Decimal(inp),
        output_usd_per_million=None if out is None else Decimal(out),
        price_basis=basis,
        **{f"{k}_usd_per_million": None if v is None else Decimal(v) for k, v in kinds.items()},  # type: ignore[arg-type]
    )


def test_every_price_field_is_a_kind_the_gate_checks() -> None:
    # A price field added to ModelPrice without a PriceKind member fails here; with one, the gate
    # (which loops over PriceKind) checks it with no further change.
    fields = {
        f.name
        for f in dataclasses.fields(ModelPrice)
        if f.name.endswith(("_usd_per_million", "_usd_per_thousand"))
    }
    assert fields == {kind.field for kind in PriceKind}
    assert {k for k in PriceKind if k.per_call} == {PriceKind.WEB_SEARCH, PriceKind.REQUEST}


@pytest.mark.parametrize("kind", list(PriceKind))
def test_each_kind_above_the_ceiling_is_held(kind: PriceKind) -> None:
    accepted = with_kind(price(), kind, Decimal("1.25"))
    proposed = with_kind(accepted, kind, Decimal(1250))
    doubt = price_doubt(proposed, accepted, ())
    assert doubt is not None
    assert doubt[0] is HoldReason.CEILING
    assert f"{kind} 1250 {kind.unit} is above 1000" in doubt[1]


@pytest.mark.parametrize("kind", list(PriceKind))
def test_each_kind_moving_tenfold_or_to_zero_is_held(kind: PriceKind) -> None:
    accepted = with_kind(price(), kind, Decimal("1.25"))
    jump = price_doubt(with_kind(accepted, kind, Decimal("12.6")), accepted, ())
    zero = price_doubt(with_kind(accepted, kind, Decimal(0)), accepted, ())
    assert jump is not None
    assert jump[0] is HoldReason.RATIO
    assert zero is not None
    assert zero[0] is HoldReason.ZERO
    assert price_doubt(with_kind(accepted, kind, Decimal("12.5")), accepted, ()) is None


def test_a_null_in_between_changes_no_check() -> None:
    # 2/8 accepted, then a run listed the model without a price (served unknown), then 0 and
    # 200/800: each is compared with the last accepted non-null figures, not with the null.
    baseline = {PriceKind.INPUT: Decimal(2), PriceKind.OUTPUT: Decimal(8)}
    served_unknown = price(inp=None, out=None)
    zero = price_doubt(price(inp="0", out="0"), served_unknown, (), baseline=baseline)
    jump = price_doubt(price(inp="200", out="800"), served_unknown, (), baseline=baseline)
    assert zero is not None
    assert zero[0] is HoldReason.ZERO
    assert jump is not None
    assert jump[0] is HoldReason.RATIO
    # Back at the accepted price: never held, even though the last served figure was a hold.
    assert price_doubt(price(), served_unknown, (), baseline=baseline) is None


def test_an_accepted_figure_above_the_ceiling_is_not_held_again() -> None:
    accepted = price(inp="1200", out="2400")
    baseline = {PriceKind.INPUT: Decimal(1200), PriceKind.OUTPUT: Decimal(2400)}
    assert price_doubt(accepted, accepted, (), baseline=baseline) is None


def test_a_failed_detail_holds_the_list_price_at_the_last_accepted_one() -> None:
    accepted = price(inp="0.25", out="2")
    listed = price(inp="0.125", out="1", basis=PriceBasis.LIST)
    doubt = price_doubt(listed, accepted, (), detail_error="get_model: tool reported an error")
    assert doubt is not None
    assert doubt[0] is HoldReason.DETAIL_UNAVAILABLE
    assert "tool reported an error" in doubt[1]
    assert "input 0.125, output 1" in doubt[1]
    # A model the upstream never detailed (its served price is a list price) is not a stand-in.
    never = replace(accepted, price_basis=PriceBasis.LIST)
    assert price_doubt(listed, never, (), detail_error="HTTP 500") is None


def test_a_plan_keeps_the_accepted_price_and_a_never_priced_model_unknown_when_detail_failed() -> (
    None
):
    current = {"known": price("known", "0.25", "2", cache_read="0.025")}
    proposed = [
        price("known", "0.125", "1", basis=PriceBasis.LIST),
        price("new", "0.1", "0.4", basis=PriceBasis.LIST, cache_read="0.01"),
    ]
    failed = {"known": "HTTP 500 after 3 attempts", "new": "tool reported an error"}
    plan = plan_snapshot(current, proposed, now=NOW, grace_seconds=60, detail_failed=failed)
    rows = {r.model_id: r for r in plan.rows}
    assert rows["known"].figures() == current["known"].figures()
    assert rows["new"].price_status is PriceStatus.UNKNOWN
    assert rows["new"].figures() == {}  # no kind of the stand-in served, the cache one neither
    assert {d.model_id: d.reason for d in plan.doubts} == {
        "known": HoldReason.DETAIL_UNAVAILABLE,
        "new": HoldReason.DETAIL_UNAVAILABLE,
    }


def test_a_plan_names_the_models_back_at_their_baseline() -> None:
    current = {"a": price("a", None, None), "b": price("b")}
    baselines = {"a": {PriceKind.INPUT: Decimal(2), PriceKind.OUTPUT: Decimal(8)}}
    plan = plan_snapshot(
        current, [price("a"), price("b", "3", "9")], now=NOW, grace_seconds=60, baselines=baselines
    )
    assert plan.at_baseline == {"a"}


def test_a_run_with_many_failed_details_is_held_as_a_whole() -> None:
    prices = tuple(price(f"m{n}") for n in range(100))
    limit = int(MAX_DETAIL_FAILED_SHARE * 100)
    within = NormalizedListing(
        prices=prices,
        rows_seen=100,
        field_names=(),
        detail_failed={f"m{n}": "HTTP 500" for n in range(limit)},
    )
    over = replace(within, detail_failed={f"m{n}": "HTTP 500" for n in range(limit + 1)})
    assert run_hold_reason(within, BASE) is None
    reason = run_hold_reason(over, BASE)
    assert reason is not None
    assert "get_model failed for 6 of 100 models, over 5%" in reason
    # Even the first run ever (no baseline to compare with) is held for it.
    assert run_hold_reason(over, None) == reason
