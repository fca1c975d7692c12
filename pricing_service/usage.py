"""A provider's usage object, as its API returns it, -> what each price kind bills (pure).

Four shapes are read (``UsageFormat``), named by the caller or recognised by their fields:

* OpenAI Chat Completions: ``prompt_tokens`` include ``prompt_tokens_details.cached_tokens``
  and ``completion_tokens`` include ``completion_tokens_details.reasoning_tokens``.
* OpenAI Responses: the same rule over ``input_tokens`` / ``input_tokens_details`` and
  ``output_tokens`` / ``output_tokens_details``.
* Anthropic Messages: ``input_tokens`` exclude the cache: ``cache_creation_input_tokens``
  (written) and ``cache_read_input_tokens`` (read) are billed on top; ``cache_creation``
  splits the writes by lifetime (5 minutes, 1 hour). Extended thinking is in ``output_tokens``.
* Gemini: ``promptTokenCount`` includes ``cachedContentTokenCount`` (and
  ``toolUsePromptTokenCount`` is billed as input too); ``thoughtsTokenCount`` is billed as output
  on top of ``candidatesTokenCount``.

The extraction itself is genai-prices' (the installed package's bundled extractors, never an
auto-updated snapshot, run by its own ``UsageExtractor``): its ``Usage`` already follows
each provider's rule above (every input token in ``input_tokens``, cache reads and writes a part
of them, reasoning a part of ``output_tokens``). What is kept here on top of it: the check of
every field we read (whole numbers only, 0 to ``MAX_TOKENS``, with the provider's own field name
in the message; genai-prices accepts floats and booleans), the detection of the shape, the
consistency checks (a cache larger than the prompt is a 400, not a negative line), and the
billing against our prices, which genai-prices does not hold.

Billing (``bill``): one line per price kind, each with its tokens, its per-million price and its
cost. A kind whose price is unknown is null with a reason, never 0 and never silently priced as
another kind: cached tokens are not billed at the input price when the cache price is unknown.
The one derived price is Anthropic's documented rule for 1-hour cache writes (2 x the base input
price), named in its line. A line with 0 tokens costs 0 whatever its price; the total is null as
soon as one line with tokens has no price (``missing`` says which and why).

The four extractors are exported from the installed package's data into
``seed/usage_extractors.json.gz`` (``scripts/build_usage_extractors.py``;
``tests/unit/test_usage.py`` holds the file equal to the installed package): importing
``genai_prices.data`` for them would load every provider's prices (1.6 MB of source, 6 MB of
RSS once compiled) into each serving worker, while ``genai_prices.types`` alone, which
evaluates them, costs under 2 MB.
"""

from __future__ import annotations

import gzip
import json
import warnings
from dataclasses import asdict, dataclass
from decimal import Decimal
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from pricing_service.call_prices import bill_calls
from pricing_service.currency import cop_amount, exact_cop, tidy_usd, token_cost
from pricing_service.domain import PriceKind
from pricing_service.errors import InvalidRequest
from pricing_service.estimate_answer import (
    CallEstimateLine,
    EstimateLine,
    MissingPrice,
    UsageCounts,
    UsageEstimate,
)
from pricing_service.long_context import LongContext, crossed, long_context_info
from pricing_service.selector_item import SelectorCurrency, SelectorSnapshot

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from pricing_service.currency import Currency
    from pricing_service.domain import LongContextTier

__all__ = [
    "MAX_TOKENS",
    "Bill",
    "TokenUsage",
    "UsageEstimate",
    "UsageFormat",
    "bill",
    "estimate_body",
    "read_usage",
]

MAX_TOKENS = 100_000_000  # as the GET estimate's counts (service.MAX_TOKENS)
MAX_USAGE_KEYS = 100  # a usage object is a handful of fields; more is not one

EXTRACTORS_FILE = Path(__file__).parent / "seed" / "usage_extractors.json.gz"

_ZERO = Decimal(0)
# Anthropic's pricing page: "1-hour cache write tokens are 2 times the base input tokens price".
ANTHROPIC_1H_WRITE_FACTOR = Decimal(2)


class UsageFormat(StrEnum):
    OPENAI_CHAT = "openai_chat"
    OPENAI_RESPONSES = "openai_responses"
    ANTHROPIC = "anthropic"
    GEMINI = "gemini"


class Line(StrEnum):
    """One line of an itemized estimate: a price kind, or a part billed by its own rule."""

    INPUT = "input"  # prompt tokens read neither from nor into a cache
    CACHE_READ = "cache_read"  # cached input
    CACHE_WRITE = "cache_write"  # written to the cache (Anthropic: the 5-minute writes)
    CACHE_WRITE_1H = "cache_write_1h"  # Anthropic's 1-hour cache writes
    OUTPUT = "output"  # reasoning included: no source prices it apart
    INPUT_AUDIO = "input_audio"  # audio is priced apart by OpenAI and Google; we carry no price
    OUTPUT_AUDIO = "output_audio"


# genai-prices' provider id, api_flavor, and the key its extractor finds the usage under.
_EXTRACTORS: dict[UsageFormat, tuple[str, str, str]] = {
    UsageFormat.OPENAI_CHAT: ("openai", "chat", "usage"),
    UsageFormat.OPENAI_RESPONSES: ("openai", "responses", "usage"),
    UsageFormat.ANTHROPIC: ("anthropic", "default", "usage"),
    UsageFormat.GEMINI: ("google", "default", "usageMetadata"),
}

# Every count we read, per format: (path, required). Other fields are the provider's business
# (ids, service tier, modality lists) and are left alone.
_FIELDS: dict[UsageFormat, tuple[tuple[tuple[str, ...], bool], ...]] = {
    UsageFormat.OPENAI_CHAT: (
        (("prompt_tokens",), True),
        (("completion_tokens",), True),
        (("total_tokens",), False),
        (("prompt_tokens_details", "cached_tokens"), False),
        (("prompt_tokens_details", "audio_tokens"), False),
        (("completion_tokens_details", "reasoning_tokens"), False),
        (("completion_tokens_details", "audio_tokens"), False),
        (("completion_tokens_details", "accepted_prediction_tokens"), False),
        (("completion_tokens_details", "rejected_prediction_tokens"), False),
        # Perplexity answers in this shape and counts its searches here (billed per search).
        (("num_search_queries",), False),
    ),
    UsageFormat.OPENAI_RESPONSES: (
        (("input_tokens",), True),
        (("output_tokens",), True),
        (("total_tokens",), False),
        (("input_tokens_details", "cached_tokens"), False),
        (("output_tokens_details", "reasoning_tokens"), False),
    ),
    UsageFormat.ANTHROPIC: (
        (("input_tokens",), True),
        (("output_tokens",), True),
        (("cache_creation_input_tokens",), False),
        (("cache_read_input_tokens",), False),
        (("cache_creation", "ephemeral_5m_input_tokens"), False),
        (("cache_creation", "ephemeral_1h_input_tokens"), False),
        (("server_tool_use", "web_search_requests"), False),  # billed per search (call_prices)
    ),
    UsageFormat.GEMINI: (
        (("promptTokenCount",), True),
        (("candidatesTokenCount",), False),
        (("cachedContentTokenCount",), False),
        (("thoughtsTokenCount",), False),
        (("toolUsePromptTokenCount",), False),
        (("totalTokenCount",), False),
    ),
}

# Fields only one shape has: how a usage object is recognised without "format".
_MARKERS: dict[UsageFormat, frozenset[str]] = {
    UsageFormat.OPENAI_CHAT: frozenset(
        {"prompt_tokens", "completion_tokens", "prompt_tokens_details", "completion_tokens_details"}
    ),
    # total_tokens is Chat Completions' too; Anthropic has none, but a lone total is no proof.
    UsageFormat.OPENAI_RESPONSES: frozenset({"input_tokens_details", "output_tokens_details"}),
    UsageFormat.ANTHROPIC: frozenset(
        {
            "cache_creation_input_tokens",
            "cache_read_input_tokens",
            "cache_creation",
            "server_tool_use",
        }
    ),
    UsageFormat.GEMINI: frozenset(
        {
            "promptTokenCount",
            "candidatesTokenCount",
            "cachedContentTokenCount",
            "thoughtsTokenCount",
            "toolUsePromptTokenCount",
            "totalTokenCount",
            "promptTokensDetails",
            "candidatesTokensDetails",
        }
    ),
}
_SHARED = frozenset({"input_tokens", "output_tokens"})  # OpenAI Responses and Anthropic

RULES: dict[UsageFormat, str] = {
    UsageFormat.OPENAI_CHAT: (
        "OpenAI Chat Completions: prompt_tokens include prompt_tokens_details.cached_tokens "
        "(billed at the cached-input price, the rest at the input price); completion_tokens "
        "include completion_tokens_details.reasoning_tokens (billed at the output price); "
        "num_search_queries (Perplexity) at the per-search price, and a model with a "
        "per-request fee is billed one request"
    ),
    UsageFormat.OPENAI_RESPONSES: (
        "OpenAI Responses: input_tokens include input_tokens_details.cached_tokens (billed at "
        "the cached-input price, the rest at the input price); output_tokens include "
        "output_tokens_details.reasoning_tokens (billed at the output price)"
    ),
    UsageFormat.ANTHROPIC: (
        "Anthropic: input_tokens exclude the cache; cache_read_input_tokens are billed at the "
        "cache-read price and cache_creation_input_tokens at the cache-write price, on top; "
        "1-hour writes (cache_creation.ephemeral_1h_input_tokens) at 2x the base input price, "
        "Anthropic's documented rule; thinking is part of output_tokens (output price); "
        "server_tool_use.web_search_requests at the per-search price"
    ),
    UsageFormat.GEMINI: (
        "Gemini: promptTokenCount (plus toolUsePromptTokenCount) is the input and includes "
        "cachedContentTokenCount (billed at the cached-input price, the rest at the input "
        "price; cache storage per hour is not a per-call cost and is not included); "
        "thoughtsTokenCount is billed at the output price on top of candidatesTokenCount"
    ),
}


@dataclass(frozen=True, slots=True)
class TokenUsage:
    """A usage object read by its provider's rule: every count a whole number of tokens."""

    format: UsageFormat
    detected: bool  # recognised by its fields (not named with "format")
    input_tokens: int  # every input token, cache reads and writes included
    cache_read_tokens: int
    cache_write_tokens: int  # every cache write (Anthropic: both lifetimes)
    cache_write_1h_tokens: int  # of which 1-hour writes (Anthropic)
    output_tokens: int  # reasoning included
    reasoning_tokens: int
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_searches: int = 0  # server-side web searches (Anthropic), billed per search

    def counts(self) -> UsageCounts:
        return UsageCounts(
            input_tokens=self.input_tokens,
            cache_read_tokens=self.cache_read_tokens,
            cache_write_tokens=self.cache_write_tokens,
            cache_write_1h_tokens=self.cache_write_1h_tokens,
            output_tokens=self.output_tokens,
            reasoning_tokens=self.reasoning_tokens,
            input_audio_tokens=self.input_audio_tokens,
            output_audio_tokens=self.output_audio_tokens,
            web_searches=self.web_searches,
        )


def read_usage(usage: Any, format: str | None = None) -> TokenUsage:
    """The usage object ``usage`` read by its provider's rule; InvalidRequest (400) when it is
    not an object, its shape is unknown or ambiguous, or a count is not a whole number."""
    if not isinstance(usage, dict):
        raise InvalidRequest(f"usage must be a JSON object, not {_json_type(usage)}")
    if len(usage) > MAX_USAGE_KEYS:
        raise InvalidRequest(f"usage has too many fields: at most {MAX_USAGE_KEYS}")
    if format is None:
        chosen, detected = _detect(usage), True
    else:
        try:
            chosen, detected = UsageFormat(format), False
        except ValueError:
            valid = ", ".join(f.value for f in UsageFormat)
            raise InvalidRequest(f"format must be one of {valid}, not {format!r}") from None
    _check_fields(usage, chosen)
    counts = _extract(usage, chosen)
    return _consistent(usage, chosen, detected, counts)


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return type(value).__name__


def _detect(usage: dict[str, Any]) -> UsageFormat:
    keys = set(usage)
    found = [fmt for fmt, markers in _MARKERS.items() if keys & markers]
    if len(found) > 1:
        names = " and ".join(f.value for f in found)
        raise InvalidRequest(
            f"usage mixes the fields of {names}: name its shape with format "
            f"({', '.join(f.value for f in UsageFormat)})"
        )
    if found:
        return found[0]
    if keys & _SHARED:
        raise InvalidRequest(
            "usage with input_tokens and output_tokens only fits both openai_responses and "
            "anthropic, which bill the cache differently: name it with format"
        )
    raise InvalidRequest(
        "usage has none of the fields of a known shape (OpenAI Chat Completions prompt_tokens, "
        "OpenAI Responses or Anthropic input_tokens, Gemini promptTokenCount)"
    )


def _check_fields(usage: dict[str, Any], chosen: UsageFormat) -> None:
    if chosen is UsageFormat.GEMINI:
        _check_modalities(usage)
    for path, required in _FIELDS[chosen]:
        name = ".".join(path)
        parent: Any = usage
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
            if parent is not None and not isinstance(parent, dict):
                raise InvalidRequest(
                    f"usage.{step} must be an object ({chosen.value}), not {_json_type(parent)}"
                )
        value = parent.get(path[-1]) if isinstance(parent, dict) else None
        if value is None:
            if required:
                raise InvalidRequest(f"usage.{name} is required for {chosen.value}")
            continue
        if isinstance(value, bool) or not isinstance(value, int):
            raise InvalidRequest(
                f"usage.{name} must be a whole number of tokens, not {_json_type(value)}"
            )
        if not 0 <= value <= MAX_TOKENS:
            raise InvalidRequest(f"usage.{name} must be between 0 and {MAX_TOKENS}, not {value}")


# Gemini's per-modality counts: audio is priced apart (an audio line); image, video and
# documents are billed at the text input price, as Google's pricing page states.
_GEMINI_MODALITY_LISTS = ("promptTokensDetails", "candidatesTokensDetails")


def _check_modalities(usage: dict[str, Any]) -> None:
    for name in _GEMINI_MODALITY_LISTS:
        entries = usage.get(name)
        if entries is None:
            continue
        if not isinstance(entries, list) or len(entries) > MAX_USAGE_KEYS:
            raise InvalidRequest(
                f"usage.{name} must be an array of at most {MAX_USAGE_KEYS} "
                "{modality, tokenCount} objects"
            )
        for index, entry in enumerate(entries):
            where = f"usage.{name}[{index}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("modality"), str):
                raise InvalidRequest(f"{where} must be an object with a modality string")
            count = entry.get("tokenCount", 0)
            if isinstance(count, bool) or not isinstance(count, int):
                raise InvalidRequest(
                    f"{where}.tokenCount must be a whole number, not {_json_type(count)}"
                )
            if not 0 <= count <= MAX_TOKENS:
                raise InvalidRequest(f"{where}.tokenCount must be between 0 and {MAX_TOKENS}")


def export_extractors() -> dict[str, Any]:
    """The extractors of the four formats, from the installed genai-prices' bundled data (the
    script and the test only: this imports the whole price data)."""
    import genai_prices
    from genai_prices.data import providers

    by_id = {p.id: p for p in providers}
    exported: dict[str, Any] = {}
    for chosen, (provider_id, flavor, _) in _EXTRACTORS.items():
        extractors = by_id[provider_id].extractors or []
        found = next(e for e in extractors if e.api_flavor == flavor)
        exported[chosen.value] = {
            "root": found.root,
            "api_flavor": found.api_flavor,
            "model_path": found.model_path,
            "mappings": [asdict(m) for m in found.mappings],
        }
    return {"version": genai_prices.__version__, "extractors": exported}


@cache
def _extractors() -> dict[UsageFormat, Any]:
    """genai-prices' ``UsageExtractor`` of each format, rebuilt from the exported file by its
    own types (``genai_prices.types``, without ``genai_prices.data``)."""
    import pydantic
    from genai_prices.types import UsageExtractor, UsageExtractorMapping

    mappings = pydantic.TypeAdapter(list[UsageExtractorMapping])
    data = json.loads(gzip.decompress(EXTRACTORS_FILE.read_bytes()))["extractors"]
    return {
        chosen: UsageExtractor(
            root=data[chosen.value]["root"],
            mappings=mappings.validate_python(data[chosen.value]["mappings"]),
            api_flavor=data[chosen.value]["api_flavor"],
            model_path=data[chosen.value]["model_path"],
        )
        for chosen in UsageFormat
    }


def _extract(usage: dict[str, Any], chosen: UsageFormat) -> dict[str, int]:
    _, _, root = _EXTRACTORS[chosen]
    extractor = _extractors()[chosen]
    # Only the counts we checked go in: a provider field we do not read (a modality list, a
    # future count) can neither fail the extraction nor be billed unseen.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # keys genai-prices reads but does not price
        try:
            _, extracted = extractor.extract({root: _checked(usage, chosen)})
        except ValueError as exc:  # a shape its extractor refuses (checked above: not expected)
            raise InvalidRequest(f"usage is not a {chosen.value} usage object: {exc}") from None

    def count(name: str) -> int:
        value = getattr(extracted, name, None)
        return int(value) if value is not None else 0

    return {
        name: count(name)
        for name in (
            "input_tokens",
            "cache_read_tokens",
            "cache_write_tokens",
            "cache_write_1h_tokens",
            "output_tokens",
            "output_reasoning_tokens",
            "input_audio_tokens",
            "output_audio_tokens",
            "web_searches",
        )
    }


def _checked(usage: dict[str, Any], chosen: UsageFormat) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    if chosen is UsageFormat.GEMINI:
        for name in _GEMINI_MODALITY_LISTS:
            if usage.get(name) is not None:
                kept[name] = usage[name]
    for path, _ in _FIELDS[chosen]:
        parent: Any = usage
        for step in path[:-1]:
            parent = parent.get(step) if isinstance(parent, dict) else None
        value = parent.get(path[-1]) if isinstance(parent, dict) else None
        if value is None:
            continue
        target = kept
        for step in path[:-1]:
            target = target.setdefault(step, {})
        target[path[-1]] = value
    return kept


def _get(usage: dict[str, Any], *path: str) -> int:
    value: Any = usage
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value if isinstance(value, int) else 0


def _consistent(
    usage: dict[str, Any], chosen: UsageFormat, detected: bool, counts: dict[str, int]
) -> TokenUsage:
    found = TokenUsage(
        format=chosen,
        detected=detected,
        input_tokens=counts["input_tokens"],
        cache_read_tokens=counts["cache_read_tokens"],
        cache_write_tokens=counts["cache_write_tokens"],
        cache_write_1h_tokens=counts["cache_write_1h_tokens"],
        output_tokens=counts["output_tokens"],
        reasoning_tokens=counts["output_reasoning_tokens"],
        input_audio_tokens=counts["input_audio_tokens"],
        output_audio_tokens=counts["output_audio_tokens"],
        web_searches=counts["web_searches"] or _get(usage, "num_search_queries"),
    )
    if chosen is UsageFormat.ANTHROPIC:
        by_lifetime = _get(usage, "cache_creation", "ephemeral_5m_input_tokens") + _get(
            usage, "cache_creation", "ephemeral_1h_input_tokens"
        )
        if by_lifetime > found.cache_write_tokens:
            raise InvalidRequest(
                f"usage.cache_creation counts {by_lifetime} written tokens, more than "
                f"cache_creation_input_tokens ({found.cache_write_tokens})"
            )
        return found
    names = {
        UsageFormat.OPENAI_CHAT: (
            "prompt_tokens_details.cached_tokens",
            "prompt_tokens",
            "completion_tokens_details.reasoning_tokens",
            "completion_tokens",
        ),
        UsageFormat.OPENAI_RESPONSES: (
            "input_tokens_details.cached_tokens",
            "input_tokens",
            "output_tokens_details.reasoning_tokens",
            "output_tokens",
        ),
        UsageFormat.GEMINI: ("cachedContentTokenCount", "promptTokenCount", "", ""),
    }[chosen]
    cached, prompt, reasoning, completion = names
    if found.cache_read_tokens + found.input_audio_tokens > found.input_tokens:
        raise InvalidRequest(
            f"usage.{cached} ({found.cache_read_tokens}) plus audio tokens "
            f"({found.input_audio_tokens}) exceed {prompt} ({found.input_tokens}), which "
            "include them"
            if found.input_audio_tokens
            else f"usage.{cached} ({found.cache_read_tokens}) exceeds {prompt} "
            f"({found.input_tokens}), which includes it"
        )
    if reasoning and found.reasoning_tokens + found.output_audio_tokens > found.output_tokens:
        raise InvalidRequest(
            f"usage.{reasoning} ({found.reasoning_tokens}) plus audio tokens "
            f"({found.output_audio_tokens}) exceed {completion} ({found.output_tokens}), "
            "which include them"
        )
    return found


# -- billing ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Price:
    usd_per_million: Decimal | None
    reason: str | None  # why it is unknown, or the rule it comes from
    derived: bool = False


def _prices(item: Mapping[str, Any], usage: TokenUsage, model_id: str) -> dict[Line, _Price]:
    status = item["price_status"]
    figures: dict[PriceKind, Decimal | None] = {kind: item.get(kind.field) for kind in PriceKind}
    if status in ("local", "free"):
        reason = "local model (no API cost)" if status == "local" else "a free model"
        return {line: _Price(_ZERO, reason) for line in Line}
    if status == "unknown" or figures[PriceKind.INPUT] is None:
        reason = (
            item.get("price_status_reason")
            or f"no known price for {model_id}: nothing can be billed"
        )
        return {line: _Price(None, reason) for line in Line}
    prices: dict[Line, _Price] = {
        Line.INPUT: _Price(figures[PriceKind.INPUT], None),
        Line.OUTPUT: _Price(figures[PriceKind.OUTPUT], None),
    }
    read = figures[PriceKind.CACHE_READ]
    prices[Line.CACHE_READ] = _Price(
        read,
        None
        if read is not None
        else (
            f"no cached-input (cache read) price is known for {model_id}; providers bill cached "
            "tokens at a discount, so they are not billed at the input price"
        ),
    )
    write = figures[PriceKind.CACHE_WRITE]
    prices[Line.CACHE_WRITE] = _Price(
        write,
        None
        if write is not None
        else (
            f"no cache-write price is known for {model_id}; providers bill cache writes above "
            "the input price, so they are not billed at it"
        ),
    )
    base = figures[PriceKind.INPUT]
    if usage.format is UsageFormat.ANTHROPIC and base is not None:
        prices[Line.CACHE_WRITE_1H] = _Price(
            base * ANTHROPIC_1H_WRITE_FACTOR,
            "Anthropic's documented rule: 1-hour cache writes cost 2x the base input price",
            derived=True,
        )
    else:
        prices[Line.CACHE_WRITE_1H] = _Price(
            None, "1-hour cache writes are priced only for Anthropic (2x the base input price)"
        )
    audio = (
        "audio tokens are priced apart from text by this provider and this service carries no "
        "audio price"
    )
    prices[Line.INPUT_AUDIO] = _Price(None, audio)
    prices[Line.OUTPUT_AUDIO] = _Price(None, audio)
    return prices


def _tokens(usage: TokenUsage) -> dict[Line, int]:
    return {
        Line.INPUT: usage.input_tokens
        - usage.cache_read_tokens
        - usage.cache_write_tokens
        - usage.input_audio_tokens,
        Line.CACHE_READ: usage.cache_read_tokens,
        Line.CACHE_WRITE: usage.cache_write_tokens - usage.cache_write_1h_tokens,
        Line.CACHE_WRITE_1H: usage.cache_write_1h_tokens,
        Line.OUTPUT: usage.output_tokens - usage.output_audio_tokens,
        Line.INPUT_AUDIO: usage.input_audio_tokens,
        Line.OUTPUT_AUDIO: usage.output_audio_tokens,
    }


# Lines every answer carries (a price kind); the others appear only when they have tokens.
_ALWAYS = (Line.INPUT, Line.CACHE_READ, Line.CACHE_WRITE, Line.OUTPUT)


def _long_context(
    usage: TokenUsage,
    prices: dict[Line, _Price],
    tiers: Sequence[LongContextTier],
) -> LongContext | None:
    """Apply the tiers whose threshold the prompt crosses (``long_context.crossed``, the rule
    the GET form and the kit's price map use too); what was applied, or None without tiers."""
    served = {line.value: price.usd_per_million for line, price in prices.items()}
    for kind, tiered in crossed(usage.input_tokens, served, tiers).items():
        prices[Line(kind)] = _Price(tiered.usd_per_million, tiered.reason, derived=True)
    return long_context_info(usage.input_tokens, tiers)


def bill(
    usage: TokenUsage,
    item: Mapping[str, Any],
    *,
    model_id: str,
    rate: Decimal,
    currency: Currency,
    tiers: Sequence[LongContextTier] = (),
) -> Bill:
    """The itemized cost of ``usage`` at the prices of the selector item ``item``, with the
    long-context ``tiers`` of the model applied when its prompt crosses them: one line per
    price kind, the per-call lines, the totals (null when a line with tokens has no price),
    ``missing`` (those lines, with why) and ``long_context`` (null when the model has none)."""
    prices = _prices(item, usage, model_id)
    long_context = _long_context(usage, prices, tiers) if item["price_status"] == "priced" else None
    tokens = _tokens(usage)
    lines: list[EstimateLine] = []
    missing: list[MissingPrice] = []
    total: Decimal | None = _ZERO
    for line in Line:
        count = tokens[line]
        if line not in _ALWAYS and count == 0:
            continue
        price = prices[line]
        note = price.reason
        if line is Line.OUTPUT and usage.reasoning_tokens:
            rule = f"includes {usage.reasoning_tokens} reasoning tokens, billed as output"
            note = f"{rule}; {price.reason}" if price.reason else rule
        usd: Decimal | None = None
        cop: Decimal | None = None
        if price.usd_per_million is not None:
            cost = token_cost(count, price.usd_per_million, rate)
            usd, cop = cost.usd, cost.cop
            if total is not None:
                total += cost.usd
        elif count == 0:
            usd, cop = _ZERO, _ZERO  # nothing billed, whatever the price
        else:
            total = None
            # An unknown price always says why (``_prices``, ``crossed``).
            missing.append(MissingPrice(kind=line.value, tokens=count, reason=price.reason or ""))
        lines.append(
            EstimateLine(
                kind=line.value,
                tokens=count,
                usd_per_million=price.usd_per_million,
                cop_per_million=(
                    cop_amount(price.usd_per_million, rate)
                    if price.usd_per_million is not None
                    else None
                ),
                usd=usd,
                cop=cop,
                note=note,
            )
        )
    calls = bill_calls(
        {PriceKind.WEB_SEARCH: usage.web_searches}, item, model_id=model_id, rate=rate
    )
    for call in calls:
        if call.usd is None:
            total = None
            missing.append(MissingPrice(kind=call.kind, calls=call.calls, reason=call.note or ""))
        elif total is not None:
            total += call.usd
    if total is None:
        total_cop = total_display = None
    else:
        total_cop, total_display = exact_cop(total, rate, currency)
        total = tidy_usd(total)
    return Bill(
        items=lines,
        calls=calls,
        total_usd=total,
        total_cop=total_cop,
        total_cop_display=total_display,
        missing=missing,
        long_context=long_context,
    )


def estimate_body(
    item: Mapping[str, Any],
    usage: TokenUsage,
    *,
    rate: Decimal,
    local: Currency,
    currency: Mapping[str, Any],
    snapshot: Mapping[str, Any],
    tiers: Sequence[LongContextTier] = (),
) -> UsageEstimate:
    """POST /estimate's answer: the model as the selector item ``item`` shows it, the usage as
    read, the itemized bill in USD and the ``local`` currency, and the ``currency`` and
    ``snapshot`` of the answer ``item`` came in (``SelectorDataset.lookup``)."""
    model_id = item["model_id"]
    billed = bill(usage, item, model_id=model_id, rate=rate, currency=local, tiers=tiers)
    return UsageEstimate(
        model_id=model_id,
        display_name=item["display_name"],
        provider=item["provider"],
        format=usage.format.value,
        format_detected=usage.detected,
        rule=RULES[usage.format],
        usage=usage.counts(),
        price_status=item["price_status"],
        price_status_reason=item["price_status_reason"],
        price_basis=item["price_basis"],
        items=billed.items,
        calls=billed.calls,
        total_usd=billed.total_usd,
        total_cop=billed.total_cop,
        total_cop_display=billed.total_cop_display,
        missing=billed.missing,
        long_context=billed.long_context,
        price_note=item["price_note"],
        pricing_source=item["pricing_source"],
        pricing_source_is_author=item["pricing_source_is_author"],
        updated_at=item["updated_at"],
        source=item["source"],
        source_url=item["source_url"],
        currency=msgspec.convert(currency, SelectorCurrency),
        snapshot=msgspec.convert(snapshot, SelectorSnapshot),
    )


@dataclass(frozen=True, slots=True)
class Bill:
    """What ``bill`` finds: the lines, the totals, what is missing, the tiers applied."""

    items: list[EstimateLine]
    calls: list[CallEstimateLine]  # per-call kinds the usage bills (empty: none)
    total_usd: Decimal | None
    total_cop: Decimal | None
    total_cop_display: str | None
    missing: list[MissingPrice]
    long_context: LongContext | None  # null: no tiers known for the model
