"""curation: which model ids are local (Ollama) and which are special (hidden by default)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from pricing_service.domain import SpecialKind
from pricing_service.listings.pricepertoken_rows import normalize_listing
from pricing_service.model_kinds import LOCAL_PREFIX, is_local_id, special_kind

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
RECORDING = FIXTURES / "pricepertoken" / "2026-04-29"
SELECTOR: dict[str, Any] = json.loads((FIXTURES / "cognitia" / "selector.json").read_text())
LISTING = normalize_listing(
    json.loads((RECORDING / "get_all_models.json").read_text()),
    {d["slug"]: d for d in json.loads((RECORDING / "get_model.json").read_text())},
)
CURATED: dict[str, list[str]] = SELECTOR["curated_models_by_category"]


@pytest.mark.parametrize(
    ("model_id", "local"),
    [
        ("cognitia_llm_zerogpu.phi3", True),
        ("cognitia_llm_zerogpu.qwen2.5-7b", True),
        ("cognitia_llm_zerogpu.smollm2-1.7b", True),
        ("cognitia_llm_t4.llama3.2:3b", True),
        ("Cognitia_LLM_zerogpu.Mistral-7b", True),
        ("phi3:latest", True),
        ("llama3.2:3b", True),
        ("qwen2.5:7b-instruct-q4_K_M", True),
        ("gpt-4o", False),
        ("o3", False),
        ("x-ai/grok-3", False),
        ("meta-llama/llama-3-8b:free", False),
        ("llama-3-8b:free", False),
        ("gpt-4o:online", False),
        ("hf.co/bartowski/llama-3.2-1b:q4", False),
        ("cognitia-llm-zerogpu.phi3", False),
        ("zerogpu.cognitia_llm_phi3", False),
        ("phi3:", False),
        (":latest", False),
        ("phi3:latest:extra", False),
        ("phi 3:latest", False),
        ("", False),
    ],
)
def test_is_local_id(model_id: str, local: bool) -> None:
    assert is_local_id(model_id) is local


def test_selector_local_category_is_local_and_upstream_is_not() -> None:
    assert all(is_local_id(i) for i in CURATED["local"])
    assert all(i.startswith(LOCAL_PREFIX) for i in CURATED["local"] if ":" not in i)
    for price in LISTING.prices:
        assert not is_local_id(price.model_id)
        assert not is_local_id(price.slug or "")
        assert not is_local_id(f"{price.provider}/{price.model_id}")


@pytest.mark.parametrize(
    ("model_id", "outputs", "kind"),
    [
        # Cognitia's curated specials.
        ("gpt-audio-mini", (), SpecialKind.AUDIO),
        ("gpt-realtime-mini", (), SpecialKind.REALTIME),
        ("gpt-image-1", (), SpecialKind.IMAGE),
        ("omni-moderation-latest", (), SpecialKind.MODERATION),
        ("gpt-4o-search-preview", (), SpecialKind.SEARCH),
        # Other OpenAI / Google / Meta non-chat ids.
        ("gpt-4o-mini-search-preview", (), SpecialKind.SEARCH),
        ("perplexity/sonar-pro-search", (), SpecialKind.SEARCH),
        ("gpt-4o-realtime-preview", (), SpecialKind.REALTIME),
        ("gpt-4o-audio-preview", (), SpecialKind.AUDIO),
        ("gpt-4o-mini-transcribe", (), SpecialKind.TRANSCRIPTION),
        ("whisper-1", (), SpecialKind.TRANSCRIPTION),
        ("tts-1-hd", (), SpecialKind.SPEECH),
        ("gpt-4o-mini-tts", (), SpecialKind.SPEECH),
        ("gemini-2.5-flash-preview-tts", ("audio",), SpecialKind.SPEECH),
        ("gpt-realtime", ("text", "audio"), SpecialKind.REALTIME),
        ("text-embedding-3-small", (), SpecialKind.EMBEDDING),
        ("nomic-embed-text:latest", (), SpecialKind.EMBEDDING),
        ("dall-e-3", (), SpecialKind.IMAGE),
        ("imagen-4.0-generate", (), SpecialKind.IMAGE),
        ("sora-2", (), SpecialKind.VIDEO),
        ("veo-3.0-generate", (), SpecialKind.VIDEO),
        ("meta-llama/llama-guard-4-12b", (), SpecialKind.MODERATION),
        # Output modalities decide when the id says nothing.
        ("gemini-2.5-flash-image", ("image", "text"), SpecialKind.IMAGE),
        ("mystery-model", ("text", "audio"), SpecialKind.AUDIO),
        ("mystery-model", ("VIDEO",), SpecialKind.VIDEO),
        ("mystery-model", ("image",), SpecialKind.IMAGE),
        # Chat models, including ones with a web-search capability or audio/video input.
        ("gpt-5-mini", (), None),
        ("grok-3", (), None),
        ("x-ai/grok-3", ("text",), None),
        ("nousresearch-hermes-4-70b", (), None),
        ("alibaba/tongyi-deepresearch", (), None),
        ("o3-deep-research", (), None),
        ("perplexity/sonar", (), None),
        ("sonar-deep-research", (), None),
        ("qwen3-omni-30b-a3b-instruct", ("text",), None),
        ("llama-3.2-11b-vision-instruct", (), None),
        ("voxtral-small-24b-2507", ("text",), None),
        ("researcher-imagery-searching", (), None),  # whole tokens only
        ("cognitia_llm_zerogpu.phi3", (), None),
        ("phi3:latest", (), None),
        ("", (), None),
    ],
)
def test_special_kind(model_id: str, outputs: tuple[str, ...], kind: SpecialKind | None) -> None:
    assert special_kind(model_id, explicit={}, output_modalities=outputs) is kind


@pytest.mark.parametrize(
    ("model_id", "explicit", "outputs", "kind"),
    [
        ("gpt-4o", {"gpt-4o": SpecialKind.SEARCH}, (), SpecialKind.SEARCH),
        ("GPT-4o", {"gpt-4o": SpecialKind.SEARCH}, (), SpecialKind.SEARCH),
        ("gpt-image-1", {"gpt-image-1": SpecialKind.VIDEO}, ("image",), SpecialKind.VIDEO),
        ("gpt-4o", {"gpt-4o-mini": SpecialKind.AUDIO}, (), None),
    ],
)
def test_explicit_flag_comes_first(
    model_id: str,
    explicit: dict[str, SpecialKind],
    outputs: tuple[str, ...],
    kind: SpecialKind | None,
) -> None:
    assert special_kind(model_id, explicit=explicit, output_modalities=outputs) is kind


def test_selector_specials_are_special_and_its_chat_models_are_not() -> None:
    for model_id in CURATED["specials"]:
        assert special_kind(model_id, explicit={}) is not None
    for category, ids in CURATED.items():
        if category != "specials":
            for model_id in ids:
                assert special_kind(model_id, explicit={}) is None, (category, model_id)
    for model_id in SELECTOR["also_seen_in_selector"]:
        assert special_kind(model_id, explicit={}) is None


# Reviewed by hand over the 2026-04-29 recording: the three Gemini image generators,
# Gemini 2.0 Flash Exp (its output modalities include image), Perplexity's search model and
# Relace's code-search model.
RECORDED_SPECIALS = {
    "gemini-2.0-flash-exp": SpecialKind.IMAGE,
    "gemini-2.5-flash-image": SpecialKind.IMAGE,
    "gemini-2.5-flash-image-preview": SpecialKind.IMAGE,
    "gemini-3-pro-image-preview": SpecialKind.IMAGE,
    "sonar-pro-search": SpecialKind.SEARCH,
    "relace-search": SpecialKind.SEARCH,
}


def test_specials_in_the_recording() -> None:
    found = {}
    for price in LISTING.prices:
        kinds = {
            special_kind(form, explicit={}, output_modalities=price.output_modalities)
            for form in (price.model_id, price.slug or "", f"{price.provider}/{price.model_id}")
        }
        assert len(kinds) == 1, price.model_id  # the id form does not change the verdict
        (kind,) = kinds
        if kind is not None:
            found[price.model_id] = kind
    assert found == RECORDED_SPECIALS
    web_search = [p for p in LISTING.prices if "web_search" in p.capabilities]
    assert len([p for p in web_search if p.model_id not in found]) > 10
