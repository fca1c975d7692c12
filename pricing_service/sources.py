"""Whose price it is: the model's author, or a host that serves it; pure, no I/O.

The upstream's ``get_model().pricing_source`` names where its "official" price comes from: the
author (``deepseek`` for DeepSeek's models) or, for open-weight models, often a host
(``together``, ``fireworks``, ``parasail``...), legitimately cheaper or dearer than the author.
"""

from __future__ import annotations

import re

from pricing_service.normalize import canonical_provider

__all__ = [
    "CATALOG_SOURCE",
    "LOCAL_SOURCE",
    "host_name",
    "is_author_source",
    "via_label",
]

CATALOG_SOURCE = "catalog"  # a price override in catalog/overrides.toml (the author's list)
LOCAL_SOURCE = "local"  # an Ollama model on the Space: no API price

# pricing_source spellings that name a model's author, by canonical provider, where the two
# are not spelled alike (recorded 2026-04-29). "amazon-bedrock" is Amazon's own price only for
# Amazon's models; for anyone else's model it is a host.
_AUTHOR_SOURCES: dict[str, frozenset[str]] = {
    "google": frozenset({"google", "google-ai-studio", "google-vertex"}),
    "mistral-ai": frozenset({"mistral"}),
    "z-ai": frozenset({"z.ai", "zai", "zhipu"}),
    "qwen": frozenset({"alibaba"}),
    "alibaba": frozenset({"alibaba"}),
    "aion-labs": frozenset({"aionlabs"}),
    "bytedance-seed": frozenset({"seed", "bytedance"}),
    "mancer": frozenset({"mancer", "mancer-2"}),
    "amazon": frozenset({"amazon-bedrock", "amazon"}),
    "xai": frozenset({"xai", "x-ai"}),
    "moonshotai": frozenset({"moonshotai", "moonshot"}),
}

# How hosts are called in Spanish labels ("vía Together AI"); others are title-cased.
_HOST_NAMES: dict[str, str] = {
    "together": "Together AI",
    "fireworks": "Fireworks AI",
    "parasail": "Parasail",
    "atlascloud": "AtlasCloud",
    "vercel": "Vercel",
    "amazon-bedrock": "Amazon Bedrock",
    "deepinfra": "DeepInfra",
    "nextbit": "NextBit",
    "novita": "Novita AI",
    "cloudflare": "Cloudflare",
    "siliconflow": "SiliconFlow",
    "chutes": "Chutes",
    "phala": "Phala",
    "azure": "Azure",
    "nebius": "Nebius",
    "sambanova": "SambaNova",
    "featherless": "Featherless",
    "infermatic": "Infermatic",
    "friendli": "Friendli",
    "venice": "Venice",
    "cirrascale": "Cirrascale",
    "clarifai": "Clarifai",
    "google-vertex": "Google Vertex AI",
    "groq": "Groq",
    "cerebras": "Cerebras",
}


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def is_author_source(provider: str, pricing_source: str | None) -> bool:
    """Whether ``pricing_source`` is the model's own provider (its author).

    ``catalog`` (an override: the author's published list) and ``local`` count as the author;
    an unknown source (``None``: a list price, or no note) does not.
    """
    if pricing_source is None:
        return False
    source = pricing_source.strip().lower()
    if source in (CATALOG_SOURCE, LOCAL_SOURCE):
        return True
    canonical = canonical_provider(provider)
    if source in _AUTHOR_SOURCES.get(canonical, frozenset()):
        return True
    if canonical == "amazon" or source == "amazon-bedrock":
        return False
    return canonical_provider(source) == canonical or _squash(source) == _squash(canonical)


def host_name(pricing_source: str) -> str:
    """The host's name for people: ``together`` -> ``Together AI``."""
    key = pricing_source.strip().lower()
    if key.startswith("genai-prices"):  # "genai-prices 0.2.3 google/gemini-1.5-flash"
        return "genai-prices"
    known = _HOST_NAMES.get(key)
    if known is not None:
        return known
    return " ".join(part.capitalize() for part in re.split(r"[-_\s]+", key) if part)


def via_label(provider: str, pricing_source: str | None) -> str | None:
    """``"vía Together AI"`` for a host's price, ``"según genai-prices"`` for the second
    source's; None for the author's own or an unknown one."""
    if pricing_source is None or is_author_source(provider, pricing_source):
        return None
    if pricing_source.strip().lower().startswith("genai-prices"):
        return "según genai-prices"
    return f"vía {host_name(pricing_source)}"
