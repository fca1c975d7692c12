"""curation: selector views (curated / all / lookup) over the recorded listing and catalog/."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import msgspec
import pytest

from pricing_service.catalog import load_catalog
from pricing_service.curation import ITEM_KEYS, SPECIALS_CATEGORY, SelectorDataset
from pricing_service.currency import COP
from pricing_service.domain import Catalog, ModelPrice, PriceOverride, SnapshotInfo, SnapshotSource
from pricing_service.errors import InvalidRequest
from pricing_service.listings.pricepertoken_rows import normalize_listing

ROOT = Path(__file__).resolve().parents[2]
RECORDING = ROOT / "tests" / "fixtures" / "pricepertoken" / "2026-04-29"
CATALOG = load_catalog(ROOT / "catalog")
PRICES = normalize_listing(
    json.loads((RECORDING / "get_all_models.json").read_text()),
    {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())},
).prices
FETCHED_AT = datetime(2026, 4, 29, 8, 14, tzinfo=UTC)
NOW = FETCHED_AT + timedelta(minutes=30)
TTL = 12 * 3600
RATE = Decimal(4000)
ENCODER = msgspec.json.Encoder(decimal_format="number")


def _dataset(
    *,
    rate: Decimal = RATE,
    source: SnapshotSource = SnapshotSource.PRICEPERTOKEN,
    prices: tuple[ModelPrice, ...] = PRICES,
    catalog: Catalog = CATALOG,
) -> SelectorDataset:
    return SelectorDataset(
        snapshot=SnapshotInfo(id=7, fetched_at=FETCHED_AT, source=source, model_count=len(prices)),
        prices=prices,
        catalog=catalog,
        rate=rate,
        rate_source="fixed: test",
        currency=COP,
    )


DATASET = _dataset()
CURATED = DATASET.render(now=NOW, ttl_seconds=TTL)
ALL = DATASET.render(view="all", now=NOW, ttl_seconds=TTL)
ALL_BY_ID = {item["model_id"]: item for item in ALL["items"]}
LOCAL_IDS = [mid for model in CATALOG.local_models for mid in model.ids]


def _curated_ids(category_id: str) -> tuple[str, ...]:
    category = CATALOG.category(category_id)
    assert category is not None
    return category.model_ids


# --- curated view --------------------------------------------------------------------------


def test_curated_view_lists_every_curated_id_of_the_normal_categories_and_no_special() -> None:
    normal = [c for c in CATALOG.categories if c.id != SPECIALS_CATEGORY]
    assert [c["id"] for c in CURATED["categories"]] == [c.id for c in normal]
    for rendered in CURATED["categories"]:
        assert 1 <= len(rendered["model_ids"]) <= 9
        assert rendered["model_ids"] == list(_curated_ids(rendered["id"]))
    expected = list(dict.fromkeys(mid for c in normal for mid in c.model_ids))
    assert [i["model_id"] for i in CURATED["items"]] == expected
    assert all(i["special"] is None for i in CURATED["items"])
    assert not set(_curated_ids(SPECIALS_CATEGORY)) & {i["model_id"] for i in CURATED["items"]}
    assert CURATED["view"] == "curated"
    assert CURATED["category"] is None
    assert CURATED["local"] is None
    assert DATASET.category_counts() == {
        c["id"]: len(c["model_ids"]) for c in CURATED["categories"]
    }


def test_item_categories_match_the_category_lists() -> None:
    for body in (CURATED, ALL):
        for item in body["items"]:
            expected = [c["id"] for c in body["categories"] if item["model_id"] in c["model_ids"]]
            assert item["categories"] == expected, item["model_id"]
    assert ALL_BY_ID["anthropic/claude-sonnet-4"]["categories"] == ["coding", "analysis", "general"]


def test_curated_spelling_wins_and_dedupes_with_the_upstream_model() -> None:
    ids = [i["model_id"] for i in ALL["items"]]
    assert len(ids) == len(set(ids))
    assert "anthropic/claude-sonnet-4" in ids
    assert "claude-sonnet-4" not in ids
    assert "x-ai/grok-3" in ids
    assert "grok-3" not in ids
    slugs = [i["slug"] for i in ALL["items"] if i["slug"] is not None]
    assert len(slugs) == len(set(slugs)) == len(PRICES)


def test_a_curated_id_that_resolves_to_nothing_is_listed_as_unknown() -> None:
    coding = CATALOG.category("coding")
    assert coding is not None
    extra = dataclasses.replace(coding, model_ids=(*coding.model_ids, "acme/made-up-model"))
    catalog = dataclasses.replace(
        CATALOG, categories=tuple(extra if c.id == "coding" else c for c in CATALOG.categories)
    )
    dataset = _dataset(catalog=catalog)
    body = dataset.render(now=NOW, ttl_seconds=TTL)
    item = next(i for i in body["items"] if i["model_id"] == "acme/made-up-model")
    assert item["price_status"] == "unknown"
    assert item["provider"] == "acme"
    assert item["categories"] == ["coding"]
    assert item["input_usd_per_million"] is None
    assert dataset.unmatched_catalog_ids() == ["acme/made-up-model"]
    assert DATASET.unmatched_catalog_ids() == []


# --- view=all ------------------------------------------------------------------------------


SPECIALS = [
    ("gpt-audio-mini", "audio"),
    ("gpt-realtime-mini", "realtime"),
    ("gpt-image-1", "image"),
    ("omni-moderation-latest", "moderation"),
    ("gpt-4o-search-preview", "search"),
    ("sonar-pro-search", "search"),
    ("gemini-2.5-flash-image", "image"),
]


@pytest.mark.parametrize(("model_id", "kind"), SPECIALS)
def test_view_all_flags_specials(model_id: str, kind: str) -> None:
    item = ALL_BY_ID[model_id]
    assert item["special"] == kind
    assert item["categories"][-1] == SPECIALS_CATEGORY
    assert item["price_status"] in {"priced", "free"}


def test_view_all_specials_category_lists_curated_specials_first() -> None:
    specials = next(c for c in ALL["categories"] if c["id"] == SPECIALS_CATEGORY)
    curated = list(_curated_ids(SPECIALS_CATEGORY))
    assert specials["model_ids"][: len(curated)] == curated
    flagged = {i["model_id"] for i in ALL["items"] if i["special"] is not None}
    assert set(specials["model_ids"]) == flagged
    assert len(flagged) > len(curated)


def test_hermes_is_a_chat_model() -> None:
    hermes = [
        i for i in ALL["items"] if i["provider"] == "nousresearch" and "hermes" in i["model_id"]
    ]
    assert len(hermes) > 5
    assert all(i["special"] is None for i in hermes)
    assert all(SPECIALS_CATEGORY not in i["categories"] for i in hermes)


def test_view_all_holds_curated_then_upstream_overrides_and_every_local_id() -> None:
    curated = list(
        dict.fromkeys(
            ALL_BY_ID[mid]["model_id"]
            for c in CATALOG.categories
            for mid in c.model_ids
            if mid in ALL_BY_ID
        )
    )
    ids = [i["model_id"] for i in ALL["items"]]
    assert ids[: len(curated)] == curated
    rest = ALL["items"][len(curated) :]
    assert [(i["provider"], i["model_id"]) for i in rest] == sorted(
        (i["provider"], i["model_id"]) for i in rest
    )
    assert set(LOCAL_IDS) <= set(ids)
    assert set(CATALOG.overrides) <= set(ids)
    assert len(ids) == len(PRICES) + len(CATALOG.overrides) + len(LOCAL_IDS)
    counts = DATASET.price_status_counts()
    assert sum(counts.values()) == len(ids)
    assert counts["local"] == len(LOCAL_IDS)
    assert counts["unknown"] == sum(p.price_status.value == "unknown" for p in PRICES)


# --- prices --------------------------------------------------------------------------------


@pytest.mark.parametrize("model_id", LOCAL_IDS)
def test_local_models_are_exactly_zero_with_hardware(model_id: str) -> None:
    item = ALL_BY_ID[model_id]
    model = next(m for m in CATALOG.local_models if model_id in m.ids)
    tier = CATALOG.hardware[model.hardware]
    assert item["local"] is True
    assert item["price_status"] == "local"
    assert item["price_basis"] == "catalog"
    assert item["source"] == "local"
    assert item["price_label"] == "Local (sin costo API)"
    assert item["display_name"] == model.display_name
    for key in ("input_usd_per_million", "output_usd_per_million", "input_cop_per_10k"):
        assert item[key] == 0
        assert isinstance(item[key], Decimal)
    assert item["typical_message_cop_display"] == "0 COP"
    assert item["local_model"] == {
        "ollama_tag": model.ollama_tag,
        "parameters": model.parameters,
        "vram_gb": model.vram_gb,
        "hardware_id": tier.id,
        "hardware_name": tier.name,
        "gpu": tier.gpu,
        "hardware_usd_per_hour": tier.usd_per_hour,
        "hardware_cop_per_hour": tier.usd_per_hour * RATE,
    }


def test_local_filter() -> None:
    local = DATASET.render(view="all", local=True, now=NOW, ttl_seconds=TTL)
    remote = DATASET.render(view="all", local=False, now=NOW, ttl_seconds=TTL)
    assert sorted(i["model_id"] for i in local["items"]) == sorted(LOCAL_IDS)
    assert not any(i["local"] for i in remote["items"])
    assert len(local["items"]) + len(remote["items"]) == len(ALL["items"])
    assert local["local"] is True


@pytest.mark.parametrize("rate", [Decimal(4000), Decimal("4123.5")])
def test_cop_is_exactly_usd_times_rate(rate: Decimal) -> None:
    body = _dataset(rate=rate).render(view="all", now=NOW, ttl_seconds=TTL)
    by_id = {i["model_id"]: i for i in body["items"]}
    mini = by_id["gpt-5-mini"]
    assert (mini["input_usd_per_million"], mini["output_usd_per_million"]) == (
        Decimal("0.25"),
        Decimal(2),
    )
    assert mini["price_basis"] == "official"
    assert mini["input_cop_per_million"] == Decimal("0.25") * rate
    assert mini["output_cop_per_million"] == 2 * rate
    assert mini["output_cop_per_10k"] == 2 * rate / 100
    assert mini["typical_message_cop"] == (Decimal("0.25") * 1000 + 2 * 500) / 1_000_000 * rate
    assert mini["price_label"] == f"~{mini['typical_message_cop_display']} por mensaje"
    assert body["currency"]["rate"] == rate
    priced = [i for i in body["items"] if i["price_status"] in {"priced", "free"}]
    assert len(priced) > 400
    for item in priced:
        assert item["input_cop_per_million"] == item["input_usd_per_million"] * rate
        assert item["output_cop_per_million"] == item["output_usd_per_million"] * rate


def test_no_unknown_price_is_zero() -> None:
    unknown = [i for i in ALL["items"] if i["price_status"] == "unknown"]
    assert len(unknown) > 10
    for item in unknown:
        assert item["price_basis"] is None
        assert item["price_label"] == "Sin precio conocido"
        for key in (
            "input_usd_per_million",
            "output_usd_per_million",
            *(k for k in ITEM_KEYS if "_cop" in k),
        ):
            assert item[key] is None, (item["model_id"], key)
    for item in ALL["items"]:
        if item["price_status"] == "priced":
            assert item["input_usd_per_million"] + item["output_usd_per_million"] > 0
            assert item["typical_message_cop"] > 0


def test_overrides_price_what_upstream_lacks_and_upstream_wins() -> None:
    image = ALL_BY_ID["gpt-image-1"]
    assert (image["source"], image["price_basis"]) == ("catalog", "catalog")
    assert image["input_usd_per_million"] == CATALOG.overrides["gpt-image-1"].input_usd_per_million
    moderation = ALL_BY_ID["omni-moderation-latest"]
    assert (moderation["price_status"], moderation["price_label"]) == ("free", "Gratis")

    shadow = PriceOverride(
        model_id="gpt-4o",
        provider="openai",
        display_name="shadow",
        input_usd_per_million=Decimal(99),
        output_usd_per_million=Decimal(99),
        source="test",
        as_of=FETCHED_AT.date(),
    )
    catalog = dataclasses.replace(CATALOG, overrides={**CATALOG.overrides, "gpt-4o": shadow})
    body = _dataset(catalog=catalog).render(view="all", now=NOW, ttl_seconds=TTL)
    gpt4o = [i for i in body["items"] if i["model_id"] == "gpt-4o"]
    assert len(gpt4o) == 1
    assert gpt4o[0]["source"] == "pricepertoken"
    assert gpt4o[0]["input_usd_per_million"] == ALL_BY_ID["gpt-4o"]["input_usd_per_million"]
    assert len(body["items"]) == len(ALL["items"])


def test_seed_snapshot_marks_upstream_items_seed() -> None:
    body = _dataset(source=SnapshotSource.SEED).render(view="all", now=NOW, ttl_seconds=TTL)
    by_id = {i["model_id"]: i for i in body["items"]}
    assert body["snapshot"]["source"] == "seed"
    upstream = [i for i in body["items"] if i["slug"] is not None]
    assert len(upstream) == len(PRICES)
    assert {i["source"] for i in upstream} == {"seed"}
    assert {i["price_basis"] for i in upstream if i["price_status"] != "unknown"} == {"seed"}
    assert by_id["gpt-5-mini"]["input_usd_per_million"] == Decimal("0.25")
    assert by_id["gpt-image-1"]["price_basis"] == "catalog"
    assert by_id["cognitia_llm_zerogpu.phi3"]["source"] == "local"


# --- shape ---------------------------------------------------------------------------------


@pytest.mark.parametrize("body", [CURATED, ALL], ids=["curated", "all"])
def test_every_item_has_cognitias_fields_and_types(body: dict[str, Any]) -> None:
    for item in body["items"]:
        assert tuple(item) == ITEM_KEYS
        assert isinstance(item["model_id"], str)
        assert item["provider"] is None or isinstance(item["provider"], str)
        for key in ("input_usd_per_million", "output_usd_per_million"):
            assert item[key] is None or isinstance(item[key], Decimal)
        context = item["context_window"]
        assert context is None or (isinstance(context, int) and not isinstance(context, bool))
        # An override price carries its own date (catalog as_of), every other the snapshot's.
        if item["source"] != "catalog":
            assert item["updated_at"] == "2026-04-29T08:14:00Z"
        assert item["source"] in {"pricepertoken", "seed", "catalog", "local"}
        assert isinstance(item["local"], bool)
    assert (
        msgspec.json.decode(ENCODER.encode(body))["items"][0]["model_id"]
        == body["items"][0]["model_id"]
    )


def test_top_level_and_staleness() -> None:
    assert CURATED["updated_at"] == "2026-04-29T08:14:00Z"
    assert CURATED["currency"]["code"] == "COP"
    assert CURATED["currency"]["source"] == "fixed: test"
    assert CURATED["snapshot"] == {
        "id": 7,
        "fetched_at": "2026-04-29T08:14:00Z",
        "stale": False,
        "source": "pricepertoken",
    }
    at_ttl = DATASET.render(now=FETCHED_AT + timedelta(seconds=TTL), ttl_seconds=TTL)
    past_ttl = DATASET.render(now=FETCHED_AT + timedelta(seconds=TTL + 1), ttl_seconds=TTL)
    assert at_ttl["snapshot"]["stale"] is False
    assert past_ttl["snapshot"]["stale"] is True
    assert past_ttl["items"] == at_ttl["items"]


def test_determinism() -> None:
    first = ENCODER.encode(DATASET.render(view="all", now=NOW, ttl_seconds=TTL))
    again = ENCODER.encode(DATASET.render(view="all", now=NOW, ttl_seconds=TTL))
    rebuilt = _dataset(prices=tuple(reversed(PRICES)))
    reordered = ENCODER.encode(rebuilt.render(view="all", now=NOW, ttl_seconds=TTL))
    assert first == again == reordered
    assert DATASET.render(now=NOW, ttl_seconds=TTL) == CURATED


# --- filters and errors --------------------------------------------------------------------


@pytest.mark.parametrize("category_id", [c.id for c in CATALOG.categories])
def test_category_filter(category_id: str) -> None:
    body = DATASET.render(view="all", category=category_id, now=NOW, ttl_seconds=TTL)
    assert [c["id"] for c in body["categories"]] == [category_id]
    assert [i["model_id"] for i in body["items"]] == body["categories"][0]["model_ids"]
    assert all(category_id in i["categories"] for i in body["items"])
    assert body["category"] == category_id
    if category_id != SPECIALS_CATEGORY:
        curated = DATASET.render(category=category_id, now=NOW, ttl_seconds=TTL)
        assert [i["model_id"] for i in curated["items"]] == list(_curated_ids(category_id))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"view": "everything"}, "curated, all"),
        ({"view": ""}, "curated, all"),
        ({"category": "favorites"}, "coding"),
        ({"view": "all", "category": "CODING"}, "specials"),
        ({"category": SPECIALS_CATEGORY}, "view=all"),
    ],
)
def test_invalid_view_or_category(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidRequest, match=message):
        DATASET.render(now=NOW, ttl_seconds=TTL, **kwargs)
    assert DATASET.category_ids == {c.id for c in CATALOG.categories}


# --- lookup --------------------------------------------------------------------------------


def test_lookup_keeps_order_and_spelling_and_never_drops_an_id() -> None:
    requested = [
        "claude-sonnet-4",
        "anthropic/claude-sonnet-4",
        "acme/never-heard-of-it",
        "no-such-model",
        "OPENAI/gpt-image-1",
        "perplexity/sonar-pro-search",
        "phi3:latest",
        "cognitia_llm_t4.unknown-7b",
        "claude-sonnet-4",
    ]
    body = DATASET.lookup(requested, now=NOW, ttl_seconds=TTL)
    items = body["items"]
    assert [i["model_id"] for i in items] == list(dict.fromkeys(requested))
    assert body["view"] == "ids"
    sonnet_bare, sonnet, acme, nothing, image, sonar, phi3, stray = items
    assert sonnet_bare["input_usd_per_million"] == sonnet["input_usd_per_million"] is not None
    assert sonnet_bare["slug"] == sonnet["slug"] == "anthropic-claude-sonnet-4"
    for unknown, provider in ((acme, "acme"), (nothing, None)):
        assert unknown["price_status"] == "unknown"
        assert unknown["provider"] == provider
        assert unknown["input_usd_per_million"] is None
        assert unknown["typical_message_cop"] is None
        assert tuple(unknown) == ITEM_KEYS
    assert (image["special"], image["source"]) == ("image", "catalog")
    assert sonar["special"] == "search"
    assert phi3["local_model"]["ollama_tag"] == "phi3"
    assert (stray["local"], stray["price_status"], stray["local_model"]) == (True, "local", None)
    assert stray["input_usd_per_million"] == 0
    assert stray["typical_message_cop"] == 0


@pytest.mark.parametrize(
    ("model_id", "status"),
    [
        ("gpt-5-mini", "priced"),
        ("x-ai/grok-3", "priced"),
        ("omni-moderation-latest", "free"),
        ("cognitia_llm_zerogpu.phi3", "local"),
        ("cognitia_llm_elsewhere.phi9", "local"),
        ("made-up-model-xyz", "not_in_catalog"),
    ],
)
def test_status_of(model_id: str, status: str) -> None:
    assert DATASET.status_of(model_id) == status


def test_status_of_an_unpriced_upstream_model_is_unknown() -> None:
    unpriced = next(p for p in PRICES if p.price_status.value == "unknown")
    assert DATASET.status_of(unpriced.model_id) == "unknown"


def test_a_special_curated_in_a_normal_category_is_still_hidden() -> None:
    vision = CATALOG.category("vision")
    assert vision is not None
    extra = dataclasses.replace(vision, model_ids=(*vision.model_ids, "gpt-image-1"))
    catalog = dataclasses.replace(
        CATALOG, categories=tuple(extra if c.id == "vision" else c for c in CATALOG.categories)
    )
    dataset = _dataset(catalog=catalog)
    curated = dataset.render(now=NOW, ttl_seconds=TTL)
    assert "gpt-image-1" not in {i["model_id"] for i in curated["items"]}
    rendered_vision = next(c for c in curated["categories"] if c["id"] == "vision")
    assert rendered_vision["model_ids"] == list(vision.model_ids)
    everything = dataset.render(view="all", now=NOW, ttl_seconds=TTL)
    image = next(i for i in everything["items"] if i["model_id"] == "gpt-image-1")
    assert image["categories"] == [SPECIALS_CATEGORY]
