"""PricePerToken's rows -> domain prices: ``get_all_models`` rows and ``get_model`` payloads as
the PricePerToken adapter (listings/pricepertoken.py) normalizes them; pure, no I/O."""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from pricing_service.domain import ModelPrice, NormalizedListing, PriceBasis, RejectedRow
from pricing_service.errors import UpstreamRejected

if TYPE_CHECKING:
    from collections.abc import Sequence
from pricing_service.normalize import (
    MAX_LISTED_REJECTIONS,
    PROVIDER_ALIASES,
    REJECTED_ID_CHARS,
    UNKNOWN_PROVIDER,
    canonical_provider,
    clean_text,
    field_names,
    price_from_json,
    printable,
    row_problem,
    slugify,
    unsafe_text_count,
)

__all__ = ["bare_model_id", "normalize_listing", "normalize_model"]

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


def _author_prefixes(author: str | None) -> list[str]:
    """Slug prefixes upstream may use for this author, longest first."""
    if not author or not slugify(author):
        return []
    raw = slugify(author)
    canonical = canonical_provider(author)
    spellings = {raw, canonical}
    spellings.update(alias for alias, target in PROVIDER_ALIASES.items() if target == canonical)
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
    seen_names: set[str] = set()
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
                rejected.append(RejectedRow(printable(price.model_id, REJECTED_ID_CHARS), problem))
            continue
        seen_names.update(k for k in row if isinstance(k, str))
        if isinstance(detail, Mapping):
            seen_names.update(k for k in detail if isinstance(k, str))
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
        field_names=field_names(seen_names),
        raw_by_model_id={mid: copy.deepcopy(winners[mid][1]) for mid in ordered},
        rows_rejected=rows_rejected,
        rejected=tuple(rejected),
        detail_failed=failed,
        text_cleaned=sum(unsafe_text_count(winners[mid][1]) for mid in ordered),
    )
