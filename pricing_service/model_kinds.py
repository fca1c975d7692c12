"""Which kind of model an id names: a local (Ollama) model, a special one, or neither.

Pure and shared by both flows: the refresh (which ids to price) and the read path (which view
shows a model, which ids need no price).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pricing_service.domain import SpecialKind

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

__all__ = ["LOCAL_PREFIX", "is_local_id", "special_kind"]

# Cognitia's Ollama connection is named "cognitia_llm_<space>", and Open WebUI prefixes the
# model names it serves with "<connection>.": "cognitia_llm_zerogpu.qwen2.5-7b".
LOCAL_PREFIX = "cognitia_llm_"

# An Ollama tag as Open WebUI lists it: "phi3:latest", "llama3.2:3b". A "/" means a
# namespaced or router id ("meta-llama/llama-3-8b:free"), not a local tag.
_OLLAMA_TAG = re.compile(r"[a-z0-9][a-z0-9._-]*:[a-z0-9][a-z0-9._-]*")

# OpenRouter's routing variants: "<id>:free" with its provider stripped is still a paid API
# model, not an Ollama tag.
_ROUTER_VARIANTS = frozenset({"free", "nitro", "floor", "online", "extended", "exacto"})

_TOKEN_SEPARATORS = re.compile(r"[-_./:]+")

# Whole tokens of an id that name a non-chat model. Deliberately absent: "omni"
# (qwen3-omni is a chat model), "vision"/"vl" (image input is still chat), "research" /
# "deepresearch" (agentic chat), "sonar" (Perplexity chat grounded in search: a web-search
# capability is not a search model), "voice" and "music" (no such model priced upstream yet).
_TOKEN_KINDS: dict[str, SpecialKind] = {
    "realtime": SpecialKind.REALTIME,
    "transcribe": SpecialKind.TRANSCRIPTION,
    "transcription": SpecialKind.TRANSCRIPTION,
    "whisper": SpecialKind.TRANSCRIPTION,
    "stt": SpecialKind.TRANSCRIPTION,
    "asr": SpecialKind.TRANSCRIPTION,
    "tts": SpecialKind.SPEECH,
    "speech": SpecialKind.SPEECH,
    "moderation": SpecialKind.MODERATION,
    # Llama Guard and its kin classify prompts for safety; they do not chat.
    "guard": SpecialKind.MODERATION,
    "embedding": SpecialKind.EMBEDDING,
    "embeddings": SpecialKind.EMBEDDING,
    "embed": SpecialKind.EMBEDDING,
    "search": SpecialKind.SEARCH,
    "video": SpecialKind.VIDEO,
    "sora": SpecialKind.VIDEO,
    "veo": SpecialKind.VIDEO,
    "image": SpecialKind.IMAGE,
    "images": SpecialKind.IMAGE,
    "imagen": SpecialKind.IMAGE,
    "dall": SpecialKind.IMAGE,  # "dall-e-3" splits into dall, e, 3
    "audio": SpecialKind.AUDIO,
}

# When an id carries two kinds the more specific one wins: "gpt-4o-realtime-audio" is a
# realtime model, "gpt-4o-mini-transcribe" transcribes audio.
_TOKEN_PRECEDENCE: tuple[SpecialKind, ...] = (
    SpecialKind.REALTIME,
    SpecialKind.TRANSCRIPTION,
    SpecialKind.SPEECH,
    SpecialKind.MODERATION,
    SpecialKind.EMBEDDING,
    SpecialKind.SEARCH,
    SpecialKind.VIDEO,
    SpecialKind.IMAGE,
    SpecialKind.AUDIO,
)

_OUTPUT_KINDS: tuple[tuple[str, SpecialKind], ...] = (
    ("audio", SpecialKind.AUDIO),
    ("image", SpecialKind.IMAGE),
    ("video", SpecialKind.VIDEO),
    ("embeddings", SpecialKind.EMBEDDING),
)

# Kinds that are audio output too: the id refines what the output modality says.
_AUDIO_REFINEMENTS = frozenset({SpecialKind.REALTIME, SpecialKind.SPEECH})


def is_local_id(model_id: str) -> bool:
    """Whether the selector serves this id from Ollama (no API cost)."""
    mid = model_id.strip().lower()
    if mid.startswith(LOCAL_PREFIX):
        return True
    if _OLLAMA_TAG.fullmatch(mid) is None:
        return False
    return mid.rsplit(":", 1)[1] not in _ROUTER_VARIANTS


def _explicit_kind(model_id: str, explicit: Mapping[str, SpecialKind]) -> SpecialKind | None:
    kind = explicit.get(model_id)
    if kind is not None:
        return kind
    key = model_id.strip().lower()
    for flagged, flagged_kind in explicit.items():
        if flagged.strip().lower() == key:
            return flagged_kind
    return None


def _token_kind(model_id: str) -> SpecialKind | None:
    found = {
        _TOKEN_KINDS[t] for t in _TOKEN_SEPARATORS.split(model_id.lower()) if t in _TOKEN_KINDS
    }
    for kind in _TOKEN_PRECEDENCE:
        if kind in found:
            return kind
    return None


def special_kind(
    model_id: str,
    *,
    explicit: Mapping[str, SpecialKind],
    output_modalities: Iterable[str] = (),
) -> SpecialKind | None:
    """The special kind of a model (hidden until "Ver todos"), or ``None`` for a chat model.

    The catalog's explicit flag first; then what the model outputs besides text (audio,
    image, video, embeddings); then whole tokens of the id split on ``- _ . / :``
    (``gpt-image-1`` is image, ``gpt-4o-search-preview`` search, ``imagery`` nothing).
    """
    kind = _explicit_kind(model_id, explicit)
    if kind is not None:
        return kind
    token_kind = _token_kind(model_id)
    outputs = {m.strip().lower() for m in output_modalities if isinstance(m, str)}
    for modality, modality_kind in _OUTPUT_KINDS:
        if modality in outputs:
            if modality_kind is SpecialKind.AUDIO and token_kind in _AUDIO_REFINEMENTS:
                return token_kind
            return modality_kind
    return token_kind
