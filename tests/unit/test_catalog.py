"""Tests for pricing_service.catalog: the real catalog/ and every way a broken copy is refused."""

from __future__ import annotations

import json
import re
import shutil
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from pricing_service.catalog import (
    CATALOG_FILES,
    MAX_MODELS_PER_CATEGORY,
    check_catalog,
    load_catalog,
)
from pricing_service.domain import Catalog, SpecialKind
from pricing_service.errors import CatalogError, ConfigurationError
from pricing_service.model_kinds import LOCAL_PREFIX

ROOT = Path(__file__).resolve().parents[2]
CATALOG_DIR = ROOT / "catalog"
SELECTOR = json.loads((ROOT / "tests/fixtures/cognitia/selector.json").read_text("utf-8"))
UPSTREAM = json.loads(
    (ROOT / "tests/fixtures/pricepertoken/2026-04-29/get_model.json").read_text("utf-8")
)
UPSTREAM_IDS = {row["model"] for row in UPSTREAM} | {row["slug"] for row in UPSTREAM}
COGNITIA_CURATED = {
    category: ids
    for category, ids in SELECTOR["curated_models_by_category"].items()
    if category != "favorites"
}
COGNITIA_CATEGORIES = [c for c in SELECTOR["categories"] if c["id"] != "favorites"]
DEFINED = "analysis, coding, creative, documents, fast, general, local, specials, vision"
KINDS = "audio, realtime, image, search, moderation, transcription, speech, embedding, video"
HARDWARE = (
    "a100-large, a10g-large, a10g-small, cpu-basic, cpu-upgrade, t4-medium, t4-small, zerogpu"
)


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog(CATALOG_DIR)


def _is_subsequence(needle: list[str], haystack: tuple[str, ...]) -> bool:
    remaining = iter(haystack)
    return all(item in remaining for item in needle)


# --- the real catalog -------------------------------------------------------------------------


def test_real_catalog_categories_match_cognitia(catalog: Catalog) -> None:
    got = [(c.id, c.name, c.emoji, c.description, c.order) for c in catalog.categories]
    want = sorted(
        (
            (c["id"], c["name"], c["emoji"], c["description"], c["priority"])
            for c in COGNITIA_CATEGORIES
        ),
        key=lambda row: row[4],
    )
    assert got == want
    assert [c.order for c in catalog.categories] == sorted(c.order for c in catalog.categories)


@pytest.mark.parametrize(("category_id", "cognitia_ids"), sorted(COGNITIA_CURATED.items()))
def test_cognitia_curated_ids_kept_in_order(
    catalog: Catalog, category_id: str, cognitia_ids: list[str]
) -> None:
    category = catalog.category(category_id)
    assert category is not None
    # Cognitia lists Phi-3 twice under Locales ("phi3:latest" and "cognitia_llm_zerogpu.phi3"):
    # the catalog lists each local model once, so ids are compared as the models they name.
    tag_of = {mid: m.ollama_tag for m in catalog.local_models for mid in m.ids}
    wanted = list(dict.fromkeys(tag_of.get(mid, mid) for mid in cognitia_ids))
    listed = tuple(tag_of.get(mid, mid) for mid in category.model_ids)
    assert _is_subsequence(wanted, listed), category.model_ids
    assert 1 <= len(category.model_ids) <= MAX_MODELS_PER_CATEGORY
    assert len(set(category.model_ids)) == len(category.model_ids)


def test_every_local_id_is_a_declared_local_model(catalog: Catalog) -> None:
    declared = {mid for m in catalog.local_models for mid in m.ids}
    curated = {mid for ids in COGNITIA_CURATED.values() for mid in ids}
    local = {mid for mid in curated if mid.startswith(LOCAL_PREFIX) or ":" in mid}
    assert local, "Cognitia's lists name local models"
    assert local <= declared
    for model in catalog.local_models:
        prefixed = f"{LOCAL_PREFIX}zerogpu.{model.ollama_tag.replace(':', '-')}"
        assert prefixed in model.ids
        assert model.hardware in catalog.hardware
        vram = catalog.hardware[model.hardware].vram_gb
        assert vram is None or model.vram_gb <= vram


def test_every_remote_curated_id_has_a_price_source(catalog: Catalog) -> None:
    """Each curated id matches upstream (bare or provider/model id), an alias or an override."""
    unresolved = [
        mid
        for c in catalog.categories
        for mid in c.model_ids
        if not mid.startswith(LOCAL_PREFIX)
        and ":" not in mid
        and mid.split("/")[-1] not in UPSTREAM_IDS
        and catalog.aliases.get(mid) not in UPSTREAM_IDS
        and mid not in catalog.overrides
    ]
    assert unresolved == []
    for alias, target in catalog.aliases.items():
        assert target in UPSTREAM_IDS, alias


def test_overrides_only_cover_models_upstream_lacks(catalog: Catalog) -> None:
    assert catalog.overrides
    for model_id, override in catalog.overrides.items():
        assert model_id not in UPSTREAM_IDS
        assert override.model_id == model_id
        assert isinstance(override.input_usd_per_million, Decimal)
        assert isinstance(override.as_of, date)
        assert override.source.startswith("https://")


@pytest.mark.parametrize(
    ("model_id", "kind", "input_usd", "output_usd"),
    [
        ("gpt-audio-mini", SpecialKind.AUDIO, "0.60", "2.40"),
        ("gpt-realtime-mini", SpecialKind.REALTIME, "0.60", "2.40"),
        ("gpt-image-1", SpecialKind.IMAGE, "5.00", "40.00"),
        ("omni-moderation-latest", SpecialKind.MODERATION, "0", "0"),
        ("gpt-4o-search-preview", SpecialKind.SEARCH, "2.50", "10.00"),
    ],
)
def test_cognitia_specials_are_flagged_and_priced(
    catalog: Catalog, model_id: str, kind: SpecialKind, input_usd: str, output_usd: str
) -> None:
    assert model_id in COGNITIA_CURATED["specials"]
    assert catalog.specials[model_id] is kind
    override = catalog.overrides[model_id]
    # Parsed through str(): 0.6 stays 0.6, not 0.59999999999999997779...
    assert override.input_usd_per_million == Decimal(input_usd)
    assert override.output_usd_per_million == Decimal(output_usd)


@pytest.mark.parametrize(
    ("hardware_id", "usd_per_hour", "vram_gb"),
    [
        ("zerogpu", "0", "70"),
        ("cpu-basic", "0", None),
        ("cpu-upgrade", "0.03", None),
        ("t4-small", "0.60", "16"),
        ("t4-medium", "0.90", "16"),
        ("a10g-small", "1.50", "24"),
        ("a10g-large", "3.50", "24"),
        ("a100-large", "8.00", "80"),
    ],
)
def test_hardware_tiers(
    catalog: Catalog, hardware_id: str, usd_per_hour: str, vram_gb: str | None
) -> None:
    tier = catalog.hardware[hardware_id]
    assert tier.usd_per_hour == Decimal(usd_per_hour)
    assert tier.vram_gb == (None if vram_gb is None else Decimal(vram_gb))


def test_check_catalog_summarizes(catalog: Catalog) -> None:
    lines = check_catalog(CATALOG_DIR)
    assert lines[0] == f"catalog {CATALOG_DIR}: valid"
    assert lines[1].startswith(f"categories: {len(catalog.categories)} (coding ")
    assert any(line.startswith(f"specials: {len(catalog.specials)} (") for line in lines)
    assert any(
        line.startswith(f"local models: {len(catalog.local_models)} with ") for line in lines
    )


# --- broken copies ----------------------------------------------------------------------------


def _copy(tmp_path: Path) -> Path:
    target = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, target)
    return target


def _edit(directory: Path, file: str, old: str, new: str) -> None:
    path = directory / file
    text = path.read_text("utf-8")
    assert old in text, f"{old!r} not in {file}"
    path.write_text(text.replace(old, new, 1), "utf-8")


BROKEN = [
    pytest.param(
        "categories.toml",
        'documents = [\n    "gpt-4.1",\n    "gpt-5",\n    "google/gemini-2.5-pro-preview",\n]\n',
        "",
        "curated 'documents'",
        "has 0 models; a category lists 1 to 9",
        id="category-without-list",
    ),
    pytest.param(
        "categories.toml",
        'vision = [\n    "gpt-4o",\n    "gpt-4o-mini",\n    "google/gemini-2.5-pro-preview",\n',
        "vision = [\n",
        "curated 'vision'",
        "has 0 models; a category lists 1 to 9",
        id="empty-category",
    ),
    pytest.param(
        "categories.toml",
        "fast = [\n",
        'fast = [\n    "o3", "o1", "gpt-5",\n',
        "curated 'fast'",
        "has 10 models; a category lists 1 to 9",
        id="ten-models",
    ),
    pytest.param(
        "categories.toml",
        "documents = [",
        "documentos = [",
        "curated 'documentos'",
        f"unknown category 'documentos' (defined: {DEFINED})",
        id="unknown-category",
    ),
    pytest.param(
        "categories.toml",
        'id = "creative"',
        'id = "coding"',
        "category 'coding'",
        "duplicate category id",
        id="duplicate-category",
    ),
    pytest.param(
        "categories.toml",
        '    "gpt-5.1-codex",\n',
        '    "gpt-5-codex",\n',
        "curated 'coding'",
        "duplicate model 'gpt-5-codex'",
        id="duplicate-curated-model",
    ),
    pytest.param(
        "categories.toml",
        "order = 3\n",
        'order = 3\ncolour = "red"\n',
        "category 'analysis'",
        "unknown key 'colour' (allowed: description, emoji, id, name, order)",
        id="unknown-category-key",
    ),
    pytest.param(
        "categories.toml",
        "order = 4",
        'order = "4"',
        "category 'fast'",
        "'order' must be an integer, got string",
        id="order-type",
    ),
    pytest.param(
        "categories.toml",
        "order = 4",
        "order = true",
        "category 'fast'",
        "'order' must be an integer, got boolean",
        id="order-bool",
    ),
    pytest.param(
        "categories.toml",
        'name = "Locales"\n',
        "",
        "category 'local'",
        "missing required key 'name'",
        id="missing-category-name",
    ),
    pytest.param(
        "categories.toml",
        '"cognitia_llm_zerogpu.mistral-7b"',
        '"cognitia_llm_zerogpu.mistral-8b"',
        "curated 'coding'",
        "local id 'cognitia_llm_zerogpu.mistral-8b' is not declared in local.toml",
        id="undeclared-local-id",
    ),
    pytest.param(
        "categories.toml",
        '"gpt-5-codex",',
        '"gpt 5 codex",',
        "curated 'coding'",
        "model 'gpt 5 codex' must be non-empty and contain no whitespace",
        id="id-with-space",
    ),
    pytest.param(
        "categories.toml",
        "\n[curated]\n",
        "\n[curated_lists]\n",
        "top level",
        "unknown key 'curated_lists' (allowed: category, curated, weights)",
        id="unknown-top-level",
    ),
    pytest.param(
        "aliases.toml",
        "\n[aliases]\n",
        '\n[aliases]\n"grok-3" = "grok-3"\n',
        "alias 'grok-3'",
        "aliases itself",
        id="alias-to-itself",
    ),
    pytest.param(
        "aliases.toml",
        "\n[aliases]\n",
        '\n[aliases]\n"grok-3" = 3\n',
        "alias 'grok-3'",
        "target must be a string, got integer",
        id="alias-type",
    ),
    pytest.param(
        "specials.toml",
        'gpt-image-1 = "image"',
        'gpt-image-1 = "imagen"',
        "special 'gpt-image-1'",
        f"unknown special kind 'imagen' (known: {KINDS})",
        id="unknown-special-kind",
    ),
    pytest.param(
        "specials.toml",
        "\n[specials]\n",
        "\n[special]\n",
        "top level",
        "unknown key 'special' (allowed: specials)",
        id="unknown-specials-table",
    ),
    pytest.param(
        "overrides.toml",
        'model_id = "gpt-realtime-mini"',
        'model_id = "gpt-audio-mini"',
        "override 'gpt-audio-mini'",
        "duplicate model_id",
        id="duplicate-override",
    ),
    pytest.param(
        "overrides.toml",
        "output_usd_per_million = 2.40",
        "output_usd_per_million = -2.40",
        "override 'gpt-audio-mini'",
        "'output_usd_per_million' must not be negative, got -2.4",
        id="negative-price",
    ),
    pytest.param(
        "overrides.toml",
        "input_usd_per_million = 5.00",
        'input_usd_per_million = "5.00"',
        "override 'gpt-image-1'",
        "'input_usd_per_million' must be a number, got string",
        id="price-type",
    ),
    pytest.param(
        "overrides.toml",
        "input_usd_per_million = 5.00",
        "input_usd_per_million = nan",
        "override 'gpt-image-1'",
        "'input_usd_per_million' must be a finite number, got nan",
        id="price-nan",
    ),
    pytest.param(
        "overrides.toml",
        "as_of = 2025-04-23",
        'as_of = "2025-04-23"',
        "override 'gpt-image-1'",
        "'as_of' must be a TOML date (2025-10-06), got string",
        id="as-of-type",
    ),
    pytest.param(
        "overrides.toml",
        'source = "https://platform.openai.com/docs/pricing"\n',
        "",
        "override 'gpt-audio-mini'",
        "missing required key 'source'",
        id="missing-source",
    ),
    pytest.param(
        "overrides.toml",
        'model_id = "gpt-image-1"\n',
        'model_id = "gpt-image-1"\nkind = "image"\n',
        "override 'gpt-image-1'",
        "unknown key 'kind' (allowed: as_of, display_name, input_usd_per_million, model_id, "
        "output_usd_per_million, price_note, provider, "
        "second_source_disagrees, source)",
        id="unknown-override-key",
    ),
    pytest.param(
        "overrides.toml",
        'model_id = "gpt-audio-mini"\n',
        "",
        "override #1",
        "missing required key 'model_id'",
        id="override-without-id",
    ),
    pytest.param(
        "local.toml",
        'hardware = "a100-large"',
        'hardware = "a100-larg"',
        "model 'llama3.1:70b'",
        f"unknown hardware 'a100-larg' (defined: {HARDWARE})",
        id="unknown-hardware",
    ),
    pytest.param(
        "local.toml",
        'hardware = "a100-large"',
        'hardware = "t4-small"',
        "model 'llama3.1:70b'",
        "hardware 't4-small' contradicts the rule (suggested_tier), which gives 'a100-large' "
        "for 45 GB: change the rule or the tier, not both ways",
        id="tier-against-the-rule",
    ),
    pytest.param(
        "local.toml",
        'vram_gb = 8\nids = ["cognitia_llm_zerogpu.gemma2-9b"',
        'vram_gb = 8\nhardware = "zerogpu"\ndocument_tier = "ZeroGPU"\n'
        'ids = ["cognitia_llm_zerogpu.gemma2-9b"',
        "model 'gemma2:9b'",
        "hardware 'zerogpu' contradicts the rule (suggested_tier), which gives 't4-small' "
        "for 8 GB: change the rule or the tier, not both ways",
        id="shared-tier-suggested",
    ),
    pytest.param(
        "local.toml",
        'hardware = "a100-large"\n',
        "",
        "model 'llama3.1:70b'",
        "give 'hardware' and 'document_tier' together, or neither",
        id="document-tier-without-hardware",
    ),
    pytest.param(
        "local.toml",
        "vram_gb = 45",
        "vram_gb = 100",
        "model 'llama3.1:70b'",
        "needs 100 GB and no dedicated hardware tier has it",
        id="no-tier-has-the-memory",
    ),
    pytest.param(
        "local.toml",
        "usd_per_hour = 0\nram_gb = 2\n",
        "usd_per_hour = 0\n",
        "hardware 'cpu-basic'",
        "give 'ram_gb' (CPU tiers) or 'vram_gb' (GPU tiers)",
        id="tier-without-memory",
    ),
    pytest.param(
        "local.toml",
        "shared = true",
        'shared = "yes"',
        "hardware 'zerogpu'",
        "'shared' must be true or false, got string",
        id="shared-type",
    ),
    pytest.param(
        "categories.toml",
        'local = [\n    "cognitia_llm_zerogpu.phi3",',
        'local = [\n    "cognitia_llm_zerogpu.phi3",\n    "phi3:latest",',
        "curated 'local'",
        "'phi3:latest' and 'cognitia_llm_zerogpu.phi3' are the same local model ('phi3'): "
        "list it once",
        id="local-model-twice-in-a-category",
    ),
    pytest.param(
        "local.toml",
        'ollama_tag = "codellama:13b"',
        'ollama_tag = "codellama:7b"',
        "model 'codellama:7b'",
        "duplicate ollama_tag",
        id="duplicate-tag",
    ),
    pytest.param(
        "local.toml",
        '"gemma2:9b"]',
        '"gemma2:9b", "qwen2.5:7b"]',
        "model 'gemma2:9b'",
        "duplicate id 'qwen2.5:7b' (also in model 'qwen2.5:7b')",
        id="duplicate-local-id",
    ),
    pytest.param(
        "local.toml",
        'id = "t4-medium"',
        'id = "t4-small"',
        "hardware 't4-small'",
        "duplicate hardware id",
        id="duplicate-hardware",
    ),
    pytest.param(
        "local.toml",
        "usd_per_hour = 0.03",
        "usd_per_hour = -0.03",
        "hardware 'cpu-upgrade'",
        "'usd_per_hour' must not be negative, got -0.03",
        id="negative-hourly-price",
    ),
    pytest.param(
        "local.toml",
        "usd_per_hour = 0.03",
        "usd_per_hour = inf",
        "hardware 'cpu-upgrade'",
        "'usd_per_hour' must be a finite number, got inf",
        id="infinite-hourly-price",
    ),
    pytest.param(
        "local.toml",
        'parameters = "3.8B"',
        'parameters = "3.8B"\nquantization = "q4"',
        "model 'phi3'",
        "unknown key 'quantization' (allowed: capabilities, context_window, display_name, "
        "document_tier, hardware, ids, ollama_tag, parameters, vram_gb)",
        id="unknown-model-key",
    ),
    pytest.param(
        "local.toml",
        'ids = ["cognitia_llm_zerogpu.phi3", "phi3:latest"]',
        'ids = "cognitia_llm_zerogpu.phi3"',
        "model 'phi3'",
        "'ids' must be an array of strings, got string",
        id="ids-type",
    ),
    pytest.param(
        "local.toml",
        'ids = ["cognitia_llm_zerogpu.phi3", "phi3:latest"]',
        "ids = []",
        "model 'phi3'",
        "'ids' must name at least one selector id",
        id="ids-empty",
    ),
    pytest.param(
        "local.toml",
        "\n[[model]]\n",
        "\n[[modell]]\n",
        "top level",
        "unknown key 'modell' (allowed: fixed_cost, hardware, model, scenario)",
        id="unknown-local-table",
    ),
]


@pytest.mark.parametrize(("file", "old", "new", "entry", "reason"), BROKEN)
def test_broken_catalog_is_refused(
    tmp_path: Path, file: str, old: str, new: str, entry: str, reason: str
) -> None:
    directory = _copy(tmp_path)
    _edit(directory, file, old, new)
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    assert (caught.value.file, caught.value.entry, caught.value.reason) == (file, entry, reason)
    assert str(caught.value) == f"{file}: {entry}: {reason}"
    with pytest.raises(CatalogError, match="^" + file):
        check_catalog(directory)


@pytest.mark.parametrize("file", CATALOG_FILES)
def test_missing_file_is_refused(tmp_path: Path, file: str) -> None:
    directory = _copy(tmp_path)
    (directory / file).unlink()
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    assert (caught.value.file, caught.value.entry, caught.value.reason) == (
        file,
        "file",
        f"missing from {directory}",
    )
    assert isinstance(caught.value, ConfigurationError)


def test_syntax_error_names_the_line(tmp_path: Path) -> None:
    directory = _copy(tmp_path)
    text = (directory / "categories.toml").read_text("utf-8")
    line = text.splitlines().index("order = 3") + 1
    _edit(directory, "categories.toml", "order = 3\n", "order = \n")
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    assert (caught.value.file, caught.value.entry, caught.value.reason) == (
        "categories.toml",
        f"line {line}",
        "invalid TOML: Invalid value",
    )


def test_duplicate_alias_names_the_line(tmp_path: Path) -> None:
    # TOML itself forbids a repeated key, so the parser's position is what points at it.
    directory = _copy(tmp_path)
    text = (directory / "aliases.toml").read_text("utf-8")
    line = text.splitlines().index("[aliases]") + 3
    _edit(
        directory,
        "aliases.toml",
        "\n[aliases]\n",
        '\n[aliases]\n"x-ai/grok-3" = "grok-3"\n"x-ai/grok-3" = "grok-3-beta"\n',
    )
    with pytest.raises(CatalogError) as caught:
        load_catalog(directory)
    assert (caught.value.file, caught.value.entry, caught.value.reason) == (
        "aliases.toml",
        f"line {line}",
        "invalid TOML: duplicate key or table (Cannot overwrite a value)",
    )


def test_minimal_catalog_loads_with_defaults(tmp_path: Path) -> None:
    """Only categories are required; the other files may hold nothing."""
    directory = tmp_path / "catalog"
    directory.mkdir()
    (directory / "categories.toml").write_text(
        '[[category]]\nid = "b"\nname = "B"\nemoji = "x"\ndescription = "d"\norder = 2\n'
        '[[category]]\nid = "a"\nname = "A"\nemoji = "y"\ndescription = "d"\norder = 1\n'
        '[curated]\nb = ["m1"]\na = ["m2", "m1"]\n',
        "utf-8",
    )
    for name in CATALOG_FILES[1:]:
        (directory / name).write_text("# empty\n", "utf-8")
    catalog = load_catalog(directory)
    assert [(c.id, c.model_ids) for c in catalog.categories] == [
        ("a", ("m2", "m1")),
        ("b", ("m1",)),
    ]
    assert (catalog.aliases, catalog.specials, catalog.overrides) == ({}, {}, {})
    assert (catalog.local_models, catalog.hardware) == ((), {})


def test_decisions_load_and_refuse_what_they_cannot_mean(tmp_path: Path) -> None:
    from pricing_service.catalog import DECISIONS_FILE

    directory = tmp_path / "catalog"
    shutil.copytree(CATALOG_DIR, directory)
    catalog = load_catalog(directory)
    flash = catalog.decisions["gemini-1.5-flash"]
    assert (flash.figure, flash.input_usd_per_million) == ("second_source", Decimal("0.075"))
    medium = catalog.decisions["mistral-medium-3"]
    assert (medium.input_usd_per_million, medium.output_usd_per_million) == (
        Decimal("0.4"),
        Decimal(2),
    )
    entry = (
        '[[decision]]\nmodel_id = "m"\nfigure = "{figure}"\n'
        "upstream_input_usd_per_million = 1\nupstream_output_usd_per_million = 2\n"
        "{extra}"
        'reason = "checked"\ndecided_on = 2026-12-02\nby = "ops"\n'
    )
    cases = {
        "must be one of proposed, second_source": entry.format(figure="theirs", extra=""),
        "missing required key 'input_usd_per_million'": entry.format(
            figure="second_source", extra=""
        ),
        "serves the upstream's figures as they are": entry.format(
            figure="proposed", extra="input_usd_per_million = 3\n"
        ),
    }
    for reason, text in cases.items():
        (directory / DECISIONS_FILE).write_text(text, encoding="utf-8")
        with pytest.raises(CatalogError, match=re.escape(reason)):
            load_catalog(directory)
    (directory / DECISIONS_FILE).unlink()
    assert load_catalog(directory).decisions == {}  # the file is optional
