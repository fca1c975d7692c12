"""The second source (genai-prices' bundled data) and the gate's second-source check, offline.

The recorded 2026-04-29 listing is compared as a run would compare it; catalog overrides must
agree with the second source or say why not.
"""

from __future__ import annotations

import json
import socket
from dataclasses import replace
from datetime import UTC, datetime
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from pricing_service.catalog import load_catalog
from pricing_service.currency import COP
from pricing_service.domain import (
    HoldReason,
    ModelPrice,
    NormalizedListing,
    PriceBasis,
    PriceStatus,
    SecondPrice,
)
from pricing_service.gate import (
    cross_source_report,
    plan_snapshot,
    price_doubt,
    second_source_contradiction,
)
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.second_source import SecondSource, second_source
from pricing_service.sources import host_name, is_author_source, via_label

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
RECORDED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
NOW = datetime(2026, 5, 1, tzinfo=UTC)


@cache
def recorded() -> NormalizedListing:
    rows = json.loads((RECORDING / "get_all_models.json").read_text())
    details = json.loads((RECORDING / "get_model.json").read_text())
    return normalize_listing(rows, {d["slug"]: d for d in details})


def price(model_id: str, provider: str, source: str | None, i: str, o: str) -> ModelPrice:
    return ModelPrice(
        model_id=model_id,
        slug=f"{provider}-{model_id}",
        provider=provider,
        display_name=model_id,
        input_usd_per_million=Decimal(i),
        output_usd_per_million=Decimal(o),
        price_basis=PriceBasis.OFFICIAL,
        pricing_source=source,
    )


def second(model_id: str, i: str, o: str) -> SecondPrice:
    return SecondPrice(model_id, Decimal(i), Decimal(o), f"genai-prices test x/{model_id}")


# -- genai-prices, offline --------------------------------------------------------------------


def test_the_comparison_opens_no_socket(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access: {args!r}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    fresh = SecondSource()
    second_prices = fresh.prices(recorded().prices, at=RECORDED_AT)
    assert len(second_prices) > 100
    assert fresh.version.startswith("genai-prices 0.")


def test_the_bundled_data_is_read_not_a_downloaded_one() -> None:
    from genai_prices import data_snapshot

    class Downloaded:
        def __getattr__(self, name: str) -> Any:
            raise AssertionError("the process-wide (updatable) snapshot was consulted")

    before = data_snapshot._custom_snapshot
    data_snapshot.set_custom_snapshot(Downloaded())  # type: ignore[arg-type]
    try:
        found = SecondSource().price_of("openai", "gpt-4o", at=NOW)
    finally:
        data_snapshot.set_custom_snapshot(before)
    assert found is not None
    assert (found.input_usd_per_million, found.output_usd_per_million) == (
        Decimal("2.5"),
        Decimal(10),
    )


def test_same_provider_only_and_free_models() -> None:
    source = second_source()
    # An OpenAI id asked at another provider is not looked up at OpenAI.
    assert source.price_of("qwen", "gpt-4o", at=NOW) is None
    sonnet = source.price_of("anthropic", "claude-sonnet-4-20250514", at=NOW)
    assert sonnet is not None
    assert sonnet.output_usd_per_million == Decimal(15)
    moderation = source.price_of("openai", "omni-moderation-latest", at=NOW)
    assert moderation is not None
    assert (moderation.input_usd_per_million, moderation.output_usd_per_million) == (
        Decimal(0),
        Decimal(0),
    )


# -- the recorded listing -------------------------------------------------------------------


def test_the_recorded_listing_compared() -> None:
    source = second_source()
    listing = recorded()
    second_prices = source.prices(listing.prices, at=RECORDED_AT)
    held = [
        p.model_id
        for p in listing.prices
        if second_source_contradiction(p, second_prices.get(p.model_id)) is not None
    ]
    report = cross_source_report(
        listing.prices, second_prices, version=source.version, held_ids=held
    )
    assert report.agree + report.disagree + report.uncovered == listing.priced_count
    assert report.agree > report.disagree > 0
    by_id = {e.model_id: e for e in report.disagreements}
    # The author's own price, an order of magnitude off: held.
    assert {"deepseek-chat", "gemini-1.5-flash", "grok-3-mini"} <= set(held)
    assert by_id["deepseek-chat"].pricing_source_is_author
    assert by_id["deepseek-chat"].factor is not None
    assert by_id["deepseek-chat"].factor > 19
    # o1-mini is 2x off (0.55/2.2 against 1.1/4.4): reported, served.
    assert "o1-mini" in by_id
    assert "o1-mini" not in held
    # A host's price may differ from the author's by any factor: never held.
    assert by_id["deepseek-r1"].pricing_source == "together"
    assert not by_id["deepseek-r1"].pricing_source_is_author
    assert "deepseek-r1" not in held
    assert all(by_id[m].pricing_source_is_author for m in held)
    # Largest first; gpt-4o agrees.
    factors = [e.factor for e in report.disagreements if e.factor is not None]
    assert factors == sorted(factors, reverse=True)
    assert "gpt-4o" not in by_id


def test_the_seed_plan_holds_contradicted_prices_and_serves_them_unknown() -> None:
    listing = recorded()
    second_prices = second_source().prices(listing.prices, at=RECORDED_AT)
    plan = plan_snapshot(
        {}, listing.prices, now=RECORDED_AT, grace_seconds=1, second_prices=second_prices
    )
    held = {d.model_id: d for d in plan.doubts}
    assert held["deepseek-chat"].reason is HoldReason.SECOND_SOURCE
    assert held["deepseek-chat"].second is not None
    rows = {r.model_id: r for r in plan.rows}
    assert rows["deepseek-chat"].price_status is PriceStatus.UNKNOWN
    assert rows["deepseek-r1"].price_status is PriceStatus.PRICED


# -- the gate ---------------------------------------------------------------------------------


def test_price_doubt_second_source() -> None:
    author = price("deepseek-chat", "deepseek", "deepseek", "0.014", "0.028")
    says = second("deepseek-chat", "0.27", "1.10")
    doubt = price_doubt(author, None, (), second=says)
    assert doubt is not None
    assert doubt[0] is HoldReason.SECOND_SOURCE
    assert "0.014" in doubt[1]
    assert "0.27" in doubt[1]
    # Within 3x on both sides: served (and reported elsewhere).
    within = replace(
        author, input_usd_per_million=Decimal("0.1"), output_usd_per_million=Decimal("0.4")
    )
    assert price_doubt(within, None, (), second=says) is None
    near = price("o1-mini", "openai", "openai", "0.55", "2.2")
    assert price_doubt(near, None, (), second=second("o1-mini", "1.1", "4.4")) is None
    # A host's price is never held for disagreeing with the author's.
    host = replace(author, pricing_source="together")
    assert price_doubt(host, None, (), second=says) is None
    # Unknown pricing source (a list price): not the author's.
    assert price_doubt(replace(author, pricing_source=None), None, (), second=says) is None
    # 0 against a positive figure is a contradiction, unless the catalog declares it free.
    free = replace(author, input_usd_per_million=Decimal(0), output_usd_per_million=Decimal(0))
    assert price_doubt(free, None, (), second=says) is not None
    assert price_doubt(free, None, {"deepseek-chat"}, second=says) is None
    # Figures an operator accepted are not held again.
    vouched = (Decimal("0.014"), Decimal("0.028"))
    assert price_doubt(author, None, (), second=says, vouched=vouched) is None
    # The ceiling and the ratio against the accepted price come first.
    absurd = replace(author, input_usd_per_million=Decimal(5000))
    assert price_doubt(absurd, None, (), second=says) == price_doubt(absurd, None, ())


def test_a_contradicted_served_price_is_not_served_on() -> None:
    old = price("deepseek-chat", "deepseek", "deepseek", "0.014", "0.028")
    plan = plan_snapshot(
        {"deepseek-chat": old},
        [old],
        now=NOW,
        grace_seconds=1,
        second_prices={"deepseek-chat": second("deepseek-chat", "0.27", "1.10")},
    )
    assert [d.model_id for d in plan.doubts] == ["deepseek-chat"]
    assert plan.doubts[0].accepted is None
    assert plan.rows[0].price_status is PriceStatus.UNKNOWN
    # Unless an operator accepted exactly that figure.
    plan = plan_snapshot(
        {"deepseek-chat": old},
        [old],
        now=NOW,
        grace_seconds=1,
        second_prices={"deepseek-chat": second("deepseek-chat", "0.27", "1.10")},
        vouched={"deepseek-chat": (Decimal("0.014"), Decimal("0.028"))},
    )
    assert plan.doubts == ()
    assert plan.rows[0].input_usd_per_million == Decimal("0.014")


def test_whose_price() -> None:
    assert is_author_source("deepseek", "deepseek")
    assert is_author_source("google", "google-ai-studio")
    assert is_author_source("mistral-ai", "mistral")
    assert is_author_source("z-ai", "z.ai")
    assert is_author_source("qwen", "alibaba")
    assert is_author_source("amazon", "amazon-bedrock")
    assert not is_author_source("ai21", "amazon-bedrock")
    assert not is_author_source("openai", "azure")
    assert not is_author_source("meta-llama", "together")
    assert not is_author_source("openai", None)
    assert is_author_source("openai", "catalog")
    assert is_author_source("ollama", "local")
    assert via_label("meta-llama", "together") == "vía Together AI"
    assert via_label("deepseek", "deepseek") is None
    assert host_name("some-new_host") == "Some New Host"


# -- catalog overrides ------------------------------------------------------------------------


def test_every_override_agrees_with_the_second_source_or_says_why() -> None:
    catalog = load_catalog(ROOT / "catalog")
    source = second_source()
    assert catalog.overrides
    for override in catalog.overrides.values():
        says = source.price_of(override.provider, override.model_id, at=NOW)
        ours = (override.input_usd_per_million, override.output_usd_per_million)
        if override.second_source_disagrees is not None:
            assert len(override.second_source_disagrees) > 20, override.model_id
            continue
        assert says is not None, f"{override.model_id}: genai-prices does not know it"
        assert ours == (says.input_usd_per_million, says.output_usd_per_million), (
            f"{override.model_id}: ours {ours}, {says.source} says "
            f"{says.input_usd_per_million}/{says.output_usd_per_million}"
        )
        # Per-call charges genai-prices knows (per 1,000 calls) are stated in the note.
        for kind, per_thousand in source.per_call_charges(
            override.provider, override.model_id, at=NOW
        ).items():
            note = override.price_note or ""
            assert format(per_thousand.normalize(), "f") in note, (override.model_id, kind)


def test_time_of_day_discounts_do_not_count() -> None:
    # DeepSeek's off-peak discount (UTC night): the comparison is the same at any hour.
    source = SecondSource()
    day = source.price_of("deepseek", "deepseek-chat", at=datetime(2026, 4, 29, 8, tzinfo=UTC))
    night = source.price_of("deepseek", "deepseek-chat", at=datetime(2026, 4, 29, 20, tzinfo=UTC))
    assert day is not None
    assert night == day
    # The price in effect most of the day (00:30-16:30 UTC), DeepSeek's standard one.
    assert (day.input_usd_per_million, day.output_usd_per_million) == (
        Decimal("0.27"),
        Decimal("1.1"),
    )


# -- genai-prices as a source for what the upstream does not list ------------------------------


def _filled() -> tuple[ModelPrice, ...]:
    return second_source().unlisted(recorded().prices, at=RECORDED_AT)


def test_models_the_upstream_does_not_list_come_from_genai_prices_with_their_source() -> None:
    filled = {p.model_id: p for p in _filled()}
    listed = {p.model_id for p in recorded().prices}
    # Cognitia shows these, the upstream does not list them, genai-prices prices them.
    for model_id, figures in {
        "gpt-4o-2024-05-13": ("5", "15"),  # the first gpt-4o's own price, not today's gpt-4o
        "gpt-4.5-preview": ("75", "150"),
        "gpt-3.5-turbo-1106": ("1", "2"),
        "gemini-1.5-pro": ("1.25", "5"),  # the short-prompt tier
        "deepseek-reasoner": ("0.55", "2.19"),  # the standard (not off-peak) price
    }.items():
        assert model_id not in listed
        price = filled[model_id]
        assert (price.input_usd_per_million, price.output_usd_per_million) == tuple(
            Decimal(v) for v in figures
        )
        assert price.price_basis is PriceBasis.SECOND_SOURCE
        assert price.pricing_source is not None
        assert price.pricing_source.startswith("genai-prices ")
        assert price.pricing_source.endswith(f"/{model_id}")
    assert filled["gpt-4.5-preview"].cache_read_usd_per_million == Decimal("37.5")
    # Never a model the upstream lists under another spelling of the same name...
    assert "claude-3-5-sonnet" not in filled  # listed as claude-3.5-sonnet
    assert "claude-opus-4-0" not in filled  # listed as claude-opus-4
    assert "grok-4-fast-reasoning" not in filled  # listed as grok-4-fast
    assert not set(filled) & listed
    # ...nor another author's model a provider hosts, a match pattern, or a host's list.
    assert all(
        p.provider in ("openai", "anthropic", "google", "xai", "deepseek", "mistral-ai")
        for p in filled.values()
    )
    assert not [p for p in filled.values() if p.provider == "google" and "claude" in p.model_id]
    assert not [m for m in filled if ":" in m or m.endswith("-")]
    # Every one priced by the token: an image-priced model is absent, not free.
    assert all(
        p.input_usd_per_million is not None and p.output_usd_per_million is not None
        for p in filled.values()
    )


def test_genai_prices_matching_resolves_a_spelling_to_the_snapshots_model() -> None:
    from pricing_service.curation import SelectorDataset
    from pricing_service.domain import SnapshotInfo, SnapshotSource

    prices = recorded().prices + _filled()
    info = SnapshotInfo(1, RECORDED_AT, SnapshotSource.PRICEPERTOKEN, len(prices))
    catalog = load_catalog(ROOT / "catalog")

    def dataset(matcher: Any) -> SelectorDataset:
        return SelectorDataset(
            snapshot=info,
            prices=prices,
            catalog=catalog,
            rate=Decimal(4000),
            rate_source="default",
            currency=COP,
            matcher=matcher,
        )

    matched = dataset(second_source())
    expected = {
        # genai-prices' rule -> the upstream's model of that name, at the upstream's figure
        "claude-3-5-sonnet-20240620": ("claude-3.5-sonnet", "3", "15", "official"),
        "anthropic/claude-3-5-sonnet-20240620": ("claude-3.5-sonnet", "3", "15", "official"),
        "gpt-4-1106-preview": ("gpt-4-turbo", "10", "30", "official"),
        "gpt-5-chat-latest": ("gpt-5", "1.25", "10", "official"),
        "claude-opus-4-0": ("claude-opus-4", "15", "75", "official"),
        # -> a model only genai-prices prices, at its figure
        "google/gemini-1.5-pro": ("gemini-1.5-pro", "1.25", "5", "second_source"),
        "deepseek-reasoner": ("deepseek-reasoner", "0.55", "2.19", "second_source"),
    }
    items = matched.lookup(list(expected), now=NOW, ttl_seconds=60)["items"]
    for item in items:
        model_id, i, o, basis = expected[item["model_id"]]
        assert model_id.lower() in [a.lower() for a in item["aliases"]], item["model_id"]
        got = (item["input_usd_per_million"], item["output_usd_per_million"], item["price_basis"])
        assert got == (Decimal(i), Decimal(o), basis), item["model_id"]
        if basis == "second_source":
            assert item["price_label"].endswith("(según genai-prices)")
        assert matched.stored_model_id(item["model_id"]) == model_id
    # What no source knows stays unknown, and without the matcher nothing is guessed.
    assert matched.is_unresolved("totally-unknown-model-x")
    plain = dataset(None)
    assert plain.is_unresolved("gpt-4-1106-preview")
    assert plain.stored_model_id("x-ai/grok-3-mini") == matched.stored_model_id("grok-3-mini")


def test_fills_are_served_but_not_counted_as_the_upstreams_listing() -> None:
    from pricing_service.gate import plan_snapshot as plan

    fills = _filled()
    upstream_only = plan({}, recorded().prices, now=RECORDED_AT, grace_seconds=0)
    both = plan({}, recorded().prices + fills, now=RECORDED_AT, grace_seconds=0)
    assert len(both.rows) == len(upstream_only.rows) + len(fills)
    assert (both.listed, both.priced) == (upstream_only.listed, upstream_only.priced)
