"""What every listing source's rows must satisfy, and requested model ids -> prices; pure.

The canonical provider of an author's spelling, a price from a JSON value, text made safe, the
limits a row must fit before storage, and ``PriceIndex``. A source's own row shapes are its
adapter's (``listings/pricepertoken_rows.py`` for PricePerToken).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.domain import ModelPrice, NormalizedListing, RejectedRow
from pricing_service.errors import UpstreamRejected

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "LIMITS",
    "PROVIDER_ALIASES",
    "UNKNOWN_PROVIDER",
    "PriceIndex",
    "canonical_provider",
    "clean_text",
    "field_names",
    "listing_of",
    "price_from_json",
    "printable",
    "provider_spellings",
    "row_problem",
    "slugify",
    "unsafe_text_count",
]

UNKNOWN_PROVIDER = "unknown"

# -- limits on what a row may bring into storage --------------------------------------------
# A row over any of them is left out of the run (and listed), whatever the database: without
# them a 300-character id was stored on SQLite and failed the whole refresh on PostgreSQL.
# Text limits are at or under the columns in tables.py (tests/unit/test_row_limits.py checks).
LIMITS: dict[str, int] = {
    "model_id": 200,  # model_price.model_id, price_history.model_id
    "slug": 200,  # model_price.slug
    "provider": 100,  # model_price.provider
    "display_name": 300,  # model_price.display_name
    "pricing_source": 200,  # model_price.pricing_source
}
MAX_CONTEXT_WINDOW = 2**31 - 1  # an INTEGER column on PostgreSQL
MAX_LIST_ITEMS = 64  # capabilities, input and output modalities, each
MAX_LIST_ITEM_CHARS = 64
MAX_RAW_CHARS = 64 * 1024  # a row and its get_model answer as JSON, kept for the debug sample
MAX_FIELD_NAMES = 500  # distinct upstream keys listed in the debug sample
MAX_FIELD_NAME_CHARS = 100
MAX_LISTED_REJECTIONS = 100  # rejected rows listed (all are counted)
REJECTED_ID_CHARS = 80

# Upstream spells some authors two ways (get_providers, 2026-04-29). The canonical slug is
# the spelling upstream uses for most of that author's models: xai 9 vs x-ai 2, ai21 5 vs
# ai21-labs 2, liquid 4 vs liquidai 1, and only mistral-ai (mistralai is OpenRouter's
# spelling, which selectors send as "mistralai/..."). Distinct upstream authors of one
# company (ibm / ibm-granite, bytedance / bytedance-seed, alibaba / qwen) stay distinct:
# upstream treats them as separate authors and nothing in the data says they are spellings.
PROVIDER_ALIASES: dict[str, str] = {
    "x-ai": "xai",
    "mistralai": "mistral-ai",
    "ai21-labs": "ai21",
    "liquidai": "liquid",
    # "Cognitive Computations" slugifies with a hyphen, upstream's author slug has none.
    "cognitive-computations": "cognitivecomputations",
    # Upstream slugs stepfun-ai's models "stepfun-<model>".
    "stepfun": "stepfun-ai",
}

# OpenRouter's slug for a provider where it differs from upstream's canonical one: selectors that
# list OpenRouter models send "x-ai/grok-3" and "mistralai/mistral-large" (both resolve above).
_OPENROUTER_PROVIDERS: dict[str, str] = {"xai": "x-ai", "mistral-ai": "mistralai"}


def slugify(author: str) -> str:
    return re.sub(r"\s+", "-", author.strip().lower())


def canonical_provider(author: str | None) -> str:
    """Canonical provider slug of an upstream author slug or display name.

    ``"x-ai"`` and ``"X Ai"`` give ``"xai"``; ``"mistralai"`` gives ``"mistral-ai"``; an empty
    or missing author gives :data:`UNKNOWN_PROVIDER`.
    """
    if not author:
        return UNKNOWN_PROVIDER
    key = slugify(author)
    if not key:
        return UNKNOWN_PROVIDER
    return PROVIDER_ALIASES.get(key, key)


def provider_spellings(provider: str) -> tuple[str, ...]:
    """The ``provider/`` prefixes clients write for a canonical provider: upstream's, OpenRouter's.

    ``"xai"`` gives ``("xai", "x-ai")``; a provider both spell alike gives itself alone.
    """
    canonical = canonical_provider(provider)
    if canonical == UNKNOWN_PROVIDER:
        return ()
    other = _OPENROUTER_PROVIDERS.get(canonical)
    return (canonical,) if other is None else (canonical, other)


def price_from_json(value: object, *, field: str = "price") -> Decimal | None:
    """A USD-per-million price from a JSON value; ``None`` (unknown) stays ``None``.

    Numbers go through ``str`` so 0.1 stays ``Decimal("0.1")``; 0 stays 0 (free). Anything
    else (bool, string, negative, NaN, infinity) means the upstream schema changed under us:
    :class:`UpstreamRejected`, so the refresh fails loudly instead of storing a wrong price.
    """
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | Decimal):
        raise UpstreamRejected(f"{field}: expected a number or null, got {type(value).__name__}")
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise UpstreamRejected(f"{field}: not a finite number: {value}")
        price = value
    else:
        if isinstance(value, float) and not math.isfinite(value):
            raise UpstreamRejected(f"{field}: not a finite number: {value}")
        price = Decimal(str(value))
    if price < 0:
        raise UpstreamRejected(f"{field}: negative price {value}")
    return price


# C0 and C1 controls, DEL, and the bidi embeddings, overrides and isolates: upstream text is
# shown in the console and the selectors, where U+202E turns "gpt-4o" into "o4-tpg" on screen
# and an escape or a NUL forges terminal output or fails PostgreSQL. No name needs one. Tab,
# newline and carriage return (descriptions hold newlines) become a space and are not counted.
UNSAFE_TEXT = re.compile(r"[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_REMOVED_TEXT = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_SPACES = re.compile(r"[\t\n\r]")


def clean_text(value: str) -> str:
    """Upstream text without control or bidi characters (tab and newlines as spaces), stripped."""
    return _SPACES.sub(" ", _REMOVED_TEXT.sub("", value)).strip()


def unsafe_text_count(payload: object) -> int:
    """How many strings in a row or payload (nested) hold a character :func:`clean_text`
    removes."""
    if isinstance(payload, str):
        return 1 if _REMOVED_TEXT.search(payload) else 0
    if isinstance(payload, Mapping):
        return sum(unsafe_text_count(k) + unsafe_text_count(v) for k, v in payload.items())
    if isinstance(payload, list | tuple):
        return sum(unsafe_text_count(v) for v in payload)
    return 0


def _bad_text(value: str) -> bool:
    """NUL (PostgreSQL text refuses it, SQLite keeps it) or a lone surrogate (no encoding)."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def printable(value: str, limit: int) -> str:
    """A short, storable, printable form of upstream text, for listing a rejected row."""
    text = value[:limit].encode("utf-8", "replace").decode("utf-8")
    return "".join(c if c.isprintable() else "?" for c in text)


def row_problem(price: ModelPrice, raw: Mapping[str, Any]) -> str | None:
    """Why a normalized row cannot be stored as it is, or None when it fits every limit."""
    for name, limit in LIMITS.items():
        value = getattr(price, name)
        if value is None:
            continue
        if len(value) > limit:
            return f"{name} longer than {limit} characters ({len(value)})"
        if _bad_text(value):
            return f"{name} holds NUL or invalid unicode"
    # Prices have no limit here: an absurd figure (1e300) is stored as text on every engine and
    # held by the gate per model (gate.py), which keeps the last accepted price.
    if price.context_window is not None and price.context_window > MAX_CONTEXT_WINDOW:
        return f"context_window out of range ({price.context_window})"
    for name in ("capabilities", "input_modalities", "output_modalities"):
        values: tuple[str, ...] = getattr(price, name)
        if len(values) > MAX_LIST_ITEMS:
            return f"{name}: more than {MAX_LIST_ITEMS} entries ({len(values)})"
        if any(len(v) > MAX_LIST_ITEM_CHARS or _bad_text(v) for v in values):
            return f"{name}: an entry longer than {MAX_LIST_ITEM_CHARS} characters or not text"
    try:
        size = len(json.dumps(raw, default=str))
    except (ValueError, TypeError, RecursionError):
        return "raw row cannot be written as JSON"
    if size > MAX_RAW_CHARS:
        return f"raw row larger than {MAX_RAW_CHARS} characters as JSON ({size})"
    return None


def field_names(names: set[str]) -> tuple[str, ...]:
    usable = sorted(n for n in names if len(n) <= MAX_FIELD_NAME_CHARS and not _bad_text(n))
    return tuple(usable[:MAX_FIELD_NAMES])


def listing_of(prices: Iterable[ModelPrice], *, rows_seen: int | None = None) -> NormalizedListing:
    """Prices a source built itself (not from rows of its own shape) as a listing: one per
    model id (the first), sorted by id; a price over a storage limit (:func:`row_problem`) is
    left out, counted in ``rows_rejected`` and listed."""
    kept: dict[str, ModelPrice] = {}
    rejected: list[RejectedRow] = []
    seen = rows_rejected = 0
    for price in prices:
        seen += 1
        problem = row_problem(price, {})
        if problem is not None:
            rows_rejected += 1
            if len(rejected) < MAX_LISTED_REJECTIONS:
                rejected.append(RejectedRow(printable(price.model_id, REJECTED_ID_CHARS), problem))
            continue
        kept.setdefault(price.model_id, price)
    return NormalizedListing(
        prices=tuple(kept[model_id] for model_id in sorted(kept)),
        rows_seen=seen if rows_seen is None else rows_seen,
        field_names=(),
        rows_rejected=rows_rejected,
        rejected=tuple(rejected),
    )


class PriceIndex:
    """Finds the price of a model id as a selector sends it.

    Order: exact bare id, exact upstream slug, ``provider/model`` (the provider canonicalized,
    so ``x-ai/grok-3`` is xai's ``grok-3``), then an explicit alias whose target may be any of
    those three forms; ``provider/alias`` resolves like the alias when the alias's model belongs
    to that provider (``google/gemini-2.0-flash``). Case-insensitive. Nothing fuzzy:
    ``gpt-4o-2024-05-13`` never takes the price of ``gpt-4o`` unless an alias says so. Of two
    prices with one id the later wins, so a caller can append overrides after upstream prices.
    """

    def __init__(
        self, prices: Iterable[ModelPrice], aliases: Mapping[str, str] | None = None
    ) -> None:
        self._by_id: dict[str, ModelPrice] = {}
        self._by_slug: dict[str, ModelPrice] = {}
        self._by_provider_model: dict[tuple[str, str], ModelPrice] = {}
        for price in prices:
            model = price.model_id.strip().lower()
            self._by_id[model] = price
            if price.slug:
                self._by_slug[price.slug.strip().lower()] = price
            self._by_provider_model[(canonical_provider(price.provider), model)] = price
        self._aliases = {
            key.strip().lower(): target.strip().lower() for key, target in (aliases or {}).items()
        }

    def __len__(self) -> int:
        return len(self._by_id)

    def _direct(self, key: str) -> ModelPrice | None:
        hit = self._by_id.get(key) or self._by_slug.get(key)
        if hit is not None:
            return hit
        provider, sep, model = key.partition("/")
        if sep and provider and model:
            return self._by_provider_model.get((canonical_provider(provider), model))
        return None

    def resolve(self, requested_id: str) -> ModelPrice | None:
        key = requested_id.strip().lower()
        if not key:
            return None
        hit = self._direct(key)
        if hit is None and key in self._aliases:
            hit = self._direct(self._aliases[key])
        if hit is None:
            provider, sep, model = key.partition("/")
            if sep and provider and model in self._aliases:
                target = self._direct(self._aliases[model])
                if target is not None and canonical_provider(target.provider) == canonical_provider(
                    provider
                ):
                    hit = target
        return hit

    def unmatched(self, ids: Iterable[str]) -> list[str]:
        """The ids that resolve to nothing, first-appearance order, without repeats."""
        seen: dict[str, None] = {}
        for model_id in ids:
            if model_id not in seen and self.resolve(model_id) is None:
                seen[model_id] = None
        return list(seen)
