"""PricePerToken rows -> domain prices, and requested model ids -> those prices; pure, no I/O."""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.domain import ModelPrice, NormalizedListing, PriceBasis, RejectedRow
from pricing_service.errors import UpstreamRejected

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

__all__ = [
    "LIMITS",
    "UNKNOWN_PROVIDER",
    "PriceIndex",
    "bare_model_id",
    "canonical_provider",
    "normalize_listing",
    "normalize_model",
    "price_from_json",
    "provider_spellings",
    "row_problem",
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
_PROVIDER_ALIASES: dict[str, str] = {
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

# Upstream names some models after the host it priced them on, whatever the author:
# "together-cwm" is author fireworks, "together-solar-10.7b-instruct-v1.0" author upstage.
_HOST_SLUG_PREFIXES: tuple[str, ...] = ("together-",)

_LIST_INPUT = "input_per_1m"
_LIST_OUTPUT = "output_per_1m"
_CACHE_READ = "cache_read_per_1m"
_CACHE_WRITE = "cache_write_per_1m"

_BASIS_RANK: dict[PriceBasis, int] = {
    PriceBasis.OFFICIAL: 0,
    PriceBasis.CATALOG: 1,
    PriceBasis.LIST: 2,
    PriceBasis.SEED: 3,
    PriceBasis.SECOND_SOURCE: 4,
}


def _slugify(author: str) -> str:
    return re.sub(r"\s+", "-", author.strip().lower())


def canonical_provider(author: str | None) -> str:
    """Canonical provider slug of an upstream author slug or display name.

    ``"x-ai"`` and ``"X Ai"`` give ``"xai"``; ``"mistralai"`` gives ``"mistral-ai"``; an empty
    or missing author gives :data:`UNKNOWN_PROVIDER`.
    """
    if not author:
        return UNKNOWN_PROVIDER
    key = _slugify(author)
    if not key:
        return UNKNOWN_PROVIDER
    return _PROVIDER_ALIASES.get(key, key)


def provider_spellings(provider: str) -> tuple[str, ...]:
    """The ``provider/`` prefixes clients write for a canonical provider: upstream's, OpenRouter's.

    ``"xai"`` gives ``("xai", "x-ai")``; a provider both spell alike gives itself alone.
    """
    canonical = canonical_provider(provider)
    if canonical == UNKNOWN_PROVIDER:
        return ()
    other = _OPENROUTER_PROVIDERS.get(canonical)
    return (canonical,) if other is None else (canonical, other)


def _author_prefixes(author: str | None) -> list[str]:
    """Slug prefixes upstream may use for this author, longest first."""
    if not author or not _slugify(author):
        return []
    raw = _slugify(author)
    canonical = canonical_provider(author)
    spellings = {raw, canonical}
    spellings.update(alias for alias, target in _PROVIDER_ALIASES.items() if target == canonical)
    spellings.update({s.replace("-", "") for s in spellings})
    return sorted(spellings, key=lambda s: (-len(s), s))


def bare_model_id(slug: str, author: str | None) -> str:
    """Bare id from an upstream slug when ``get_model().model`` is absent.

    ``author`` may be the author slug (``"mistral-ai"``) or the row's ``author_name``
    (``"Mistral AI"``). Ids are lower-cased: chat UIs send lower-case ids. Without a known
    prefix the slug itself is the id (an empty author cannot say where the model name starts).
    """
    s = slug.strip().lower()
    for prefix in _author_prefixes(author):
        if s.startswith(prefix + "-") and len(s) > len(prefix) + 1:
            return s[len(prefix) + 1 :]
    for host in _HOST_SLUG_PREFIXES:
        if s.startswith(host) and len(s) > len(host):
            return s[len(host) :]
    return s


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


def _usable_detail(detail: object, slug: str) -> Mapping[str, Any] | None:
    if detail is None:
        return None
    if not isinstance(detail, Mapping):
        raise UpstreamRejected(
            f"get_model({slug}): expected an object, got {type(detail).__name__}"
        )
    # get_model answers an unknown slug with a normal result {"error": "No model found ..."}.
    if "error" in detail and "pricing" not in detail:
        return None
    return detail


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


def _str_or_none(value: object) -> str | None:
    if isinstance(value, str) and (text := clean_text(value)):
        return text
    return None


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


def _capability_name(key: str) -> str:
    for prefix in ("supports_", "is_"):
        if key.startswith(prefix):
            return key[len(prefix) :]
    return key


def _capabilities(row: Mapping[str, Any], detail: Mapping[str, Any] | None) -> tuple[str, ...]:
    names: set[str] = set()
    for key, value in row.items():
        if isinstance(key, str) and key.startswith("supports_") and value is True:
            names.add(_capability_name(key))
    flags = detail.get("capabilities") if detail is not None else None
    if isinstance(flags, Mapping):
        for key, value in flags.items():
            if isinstance(key, str) and value is True:
                names.add(_capability_name(key))
    return tuple(sorted(names))


def _modalities(detail: Mapping[str, Any] | None, direction: str) -> tuple[str, ...]:
    block = detail.get("modalities") if detail is not None else None
    values = block.get(direction) if isinstance(block, Mapping) else None
    if not isinstance(values, list):
        return ()
    return tuple(sorted({clean_text(v).lower() for v in values if isinstance(v, str)} - {""}))


def _provider_and_id(
    slug: str, row: Mapping[str, Any], detail: Mapping[str, Any] | None
) -> tuple[str, str]:
    author = detail.get("author") if detail is not None else None
    if not isinstance(author, str):
        author = row.get("author_name") if isinstance(row.get("author_name"), str) else None
    model = _str_or_none(detail.get("model")) if detail is not None else None
    model_id = model.lower() if model is not None else bare_model_id(slug, author)
    provider = canonical_provider(author)
    if provider == UNKNOWN_PROVIDER:
        # One upstream author is empty ("thudm-glm-4.1v-9b-thinking"): the slug still
        # names it, in front of the bare id.
        s = slug.strip().lower()
        if model is not None and s.endswith("-" + model_id) and len(s) > len(model_id) + 1:
            provider = canonical_provider(s[: -len(model_id) - 1])
    return provider, model_id


def normalize_model(
    row: Mapping[str, Any],
    detail: Mapping[str, Any] | None,
    *,
    basis_without_detail: PriceBasis = PriceBasis.LIST,
) -> ModelPrice:
    """One ``get_all_models`` row (and its ``get_model`` payload, when fetched) as a price.

    The official ``get_model().pricing`` wins over the list row, which is often a cheaper
    third-party endpoint; a complete price beats a partial one whatever its basis. A row
    without a detail gets ``basis_without_detail``.
    """
    if not isinstance(row, Mapping):
        raise UpstreamRejected(f"get_all_models: expected an object row, got {type(row).__name__}")
    slug = row.get("slug")
    if not isinstance(slug, str) or not slug.strip():
        raise UpstreamRejected(f"get_all_models: row without a string slug: {slug!r}")
    slug = slug.strip()
    usable = _usable_detail(detail, slug)

    list_in = price_from_json(row.get(_LIST_INPUT), field=f"{slug}.{_LIST_INPUT}")
    list_out = price_from_json(row.get(_LIST_OUTPUT), field=f"{slug}.{_LIST_OUTPUT}")
    pricing = usable.get("pricing") if usable is not None else None
    if pricing is not None and not isinstance(pricing, Mapping):
        raise UpstreamRejected(f"{slug}.pricing: expected an object, got {type(pricing).__name__}")
    pricing = pricing or {}
    off_in = price_from_json(pricing.get(_LIST_INPUT), field=f"{slug}.pricing.{_LIST_INPUT}")
    off_out = price_from_json(pricing.get(_LIST_OUTPUT), field=f"{slug}.pricing.{_LIST_OUTPUT}")
    cache_read = price_from_json(pricing.get(_CACHE_READ), field=f"{slug}.pricing.{_CACHE_READ}")
    cache_write = price_from_json(pricing.get(_CACHE_WRITE), field=f"{slug}.pricing.{_CACHE_WRITE}")

    official_complete = off_in is not None and off_out is not None
    list_complete = list_in is not None and list_out is not None
    if usable is None:
        basis, price_in, price_out = basis_without_detail, list_in, list_out
    elif official_complete or (not list_complete and (off_in is not None or off_out is not None)):
        basis, price_in, price_out = PriceBasis.OFFICIAL, off_in, off_out
    else:
        basis, price_in, price_out = PriceBasis.LIST, list_in, list_out

    provider, model_id = _provider_and_id(slug, row, usable)
    context = _positive_int(usable.get("context_length")) if usable is not None else None
    if context is None:
        context = _positive_int(row.get("context_length"))
    display = _str_or_none(row.get("model_name"))
    if display is None and usable is not None:
        display = _str_or_none(usable.get("model_name"))
    # The note describes get_model().pricing; a list price has no known source.
    source = None
    if basis is PriceBasis.OFFICIAL and usable is not None:
        source = _str_or_none(usable.get("pricing_source"))

    return ModelPrice(
        model_id=model_id,
        slug=slug.lower(),
        provider=provider,
        display_name=display or model_id,
        input_usd_per_million=price_in,
        output_usd_per_million=price_out,
        price_basis=basis,
        cache_read_usd_per_million=cache_read,
        cache_write_usd_per_million=cache_write,
        context_window=context,
        capabilities=_capabilities(row, usable),
        input_modalities=_modalities(usable, "input"),
        output_modalities=_modalities(usable, "output"),
        pricing_source=source,
        **_profile(row, usable),
    )


def _score(value: object) -> float | None:
    """A benchmark score or speed: a finite number, else unknown (never 0)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _profile(row: Mapping[str, Any], detail: Mapping[str, Any] | None) -> dict[str, Any]:
    """What get_model says besides the price: benchmark scores, speed, a description."""
    source: Mapping[str, Any] = detail if detail is not None else row
    scores = source.get("benchmarks")
    benchmarks: tuple[tuple[str, float | None], ...] = ()
    if isinstance(scores, Mapping):
        benchmarks = tuple(
            sorted((str(k), _score(v)) for k, v in scores.items() if isinstance(k, str))
        )
    performance = source.get("performance")
    speed = performance if isinstance(performance, Mapping) else {}
    tps = _score(speed.get("tokens_per_second"))
    ttft = _score(speed.get("time_to_first_token"))
    return {
        "benchmarks": benchmarks,
        "tokens_per_second": tps if tps is not None else _score(row.get("tokens_per_second")),
        "time_to_first_token": ttft if ttft is not None else _score(row.get("time_to_first_token")),
        "description": _str_or_none(source.get("description")),
    }


def _bad_text(value: str) -> bool:
    """NUL (PostgreSQL text refuses it, SQLite keeps it) or a lone surrogate (no encoding)."""
    if "\x00" in value:
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def _printable(value: str, limit: int) -> str:
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


def _field_names(names: set[str]) -> tuple[str, ...]:
    usable = sorted(n for n in names if len(n) <= MAX_FIELD_NAME_CHARS and not _bad_text(n))
    return tuple(usable[:MAX_FIELD_NAMES])


def _information(price: ModelPrice) -> int:
    optional = (
        price.cache_read_usd_per_million,
        price.cache_write_usd_per_million,
        price.context_window,
        price.pricing_source,
    )
    return (
        sum(v is not None for v in optional)
        + len(price.capabilities)
        + len(price.input_modalities)
        + len(price.output_modalities)
        + (price.display_name != price.model_id)
    )


def _preference(candidate: tuple[ModelPrice, dict[str, Any]]) -> tuple[Any, ...]:
    """Sort key: the best duplicate sorts first, and equal-looking ones in a fixed order."""
    price, raw = candidate
    known = (price.input_usd_per_million is not None) + (price.output_usd_per_million is not None)
    return (
        -known,
        _BASIS_RANK[price.price_basis],
        -_information(price),
        price.slug or "",
        repr(price),
        json.dumps(raw, sort_keys=True, default=str),
    )


def normalize_listing(
    rows: Sequence[Mapping[str, Any]],
    details: Mapping[str, Mapping[str, Any]],
    *,
    basis_without_detail: PriceBasis = PriceBasis.LIST,
    detail_errors: Mapping[str, str] | None = None,
) -> NormalizedListing:
    """Every row normalized, duplicates of one bare id merged, sorted by model id.

    ``details`` maps slug -> ``get_model`` payload and may lack slugs. Of several rows for one
    model id the one with both prices wins, then official over list, then the one with more
    information, then the smallest slug; the result does not depend on row order.
    ``raw_by_model_id`` keeps ``{"row": ..., "detail": ...}`` of each winner. A row over a
    limit (:func:`row_problem`) is left out, counted in ``rows_rejected`` and listed.
    ``detail_errors``: slug -> why its ``get_model`` call failed this run. A winner whose
    detail failed is named in ``detail_failed`` (its list price is a stand-in, not a price).
    """
    detail_errors = detail_errors or {}
    field_names: set[str] = set()
    candidates: dict[str, list[tuple[ModelPrice, dict[str, Any]]]] = {}
    rejected: list[RejectedRow] = []
    rows_rejected = 0
    for row in rows:
        if not isinstance(row, Mapping):
            raise UpstreamRejected(
                f"get_all_models: expected an object row, got {type(row).__name__}"
            )
        slug = row.get("slug")
        detail = details.get(slug.strip()) if isinstance(slug, str) else None
        price = normalize_model(row, detail, basis_without_detail=basis_without_detail)
        raw = {"row": dict(row), "detail": dict(detail) if isinstance(detail, Mapping) else None}
        problem = row_problem(price, raw)
        if problem is not None:
            rows_rejected += 1
            if len(rejected) < MAX_LISTED_REJECTIONS:
                rejected.append(RejectedRow(_printable(price.model_id, REJECTED_ID_CHARS), problem))
            continue
        field_names.update(k for k in row if isinstance(k, str))
        if isinstance(detail, Mapping):
            field_names.update(k for k in detail if isinstance(k, str))
        candidates.setdefault(price.model_id, []).append((price, raw))

    winners = {
        mid: group[0] if len(group) == 1 else min(group, key=_preference)
        for mid, group in candidates.items()
    }
    ordered = sorted(winners)
    failed = {}
    for mid in ordered:
        # The winner's row has a string slug (normalize_model refuses one without).
        reason = detail_errors.get(str(winners[mid][1]["row"]["slug"]).strip())
        if reason is not None:
            failed[mid] = reason
    return NormalizedListing(
        prices=tuple(winners[mid][0] for mid in ordered),
        rows_seen=len(rows),
        field_names=_field_names(field_names),
        raw_by_model_id={mid: copy.deepcopy(winners[mid][1]) for mid in ordered},
        rows_rejected=rows_rejected,
        rejected=tuple(rejected),
        detail_failed=failed,
        text_cleaned=sum(unsafe_text_count(winners[mid][1]) for mid in ordered),
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
