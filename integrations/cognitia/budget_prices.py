"""Prices for Cognitia's budgets, callable from synchronous code (``utils/budget.py``).

Cognitia computes a message's cost in ``calculate_message_cost``, a plain function called from
the chat routes through ``debit_user_budget``; the kit's ``price_for`` is async, so it cannot be
called there. This module keeps the service's price map in the process:

* ``GET /api/v1/pricing/prices`` (every spelling of every model) is fetched once, then
  revalidated with its ETag every ``max_age`` seconds by a daemon thread (``If-None-Match``: a 304
  costs a few hundred bytes). A lookup never waits for the network when the map holds the id.
* An id the map lacks (a local tag such as ``cognitia_llm_zerogpu.smollm2``, which the service
  resolves by its prefix, or an id nothing resolves) is asked once with ``GET
  /api/v1/pricing/models?ids=`` under a short timeout, and the answer kept until the map changes:
  local models cost 0 because the service says ``local``, never because an id is missing.
* The cost is the service's ``/estimate`` arithmetic: exact decimal USD, ``tokens x price /
  10^6``. ``usage_cost`` (``message_cost_from_usage``) takes the provider's own usage object
  (OpenAI Chat Completions, OpenAI Responses, Anthropic, Gemini) and bills it as the provider
  does and as ``POST /estimate`` does: cached input at the cache-read price, cache writes at the
  cache-write price (Anthropic's 1-hour writes at 2x input, its documented rule), reasoning and
  Gemini's thoughts as output. A cache price the service does not know, with tokens to bill, is
  an unknown price (never the input price).

An unknown price is never free. ``PRICING_UNKNOWN_PRICE_POLICY`` says what happens:

* ``refuse`` (the default): ``cost()`` raises ``UnknownPrice`` and ``check_billable()`` refuses
  the call before it is made (``check_user_budget(..., model_id=...)`` answers 402).
* ``ceiling``: the call is charged at ``PRICING_UNKNOWN_CEILING_INPUT_USD_PER_MILLION`` and
  ``PRICING_UNKNOWN_CEILING_OUTPUT_USD_PER_MILLION`` (both required).

Either way the id is counted (``unknown_counts``) and logged, and the service counts the ids it
was asked and could not resolve. The service unreachable with nothing fetched yet is an unknown
price too. Settings: ``PRICING_SERVICE_URL`` (required), ``PRICING_BUDGET_TIMEOUT_SECONDS``
(default 2: a lookup of a missing id waits at most this long), ``PRICING_BUDGET_MAX_AGE_SECONDS``
(default 60).

Imports only the standard library and httpx (which Open WebUI depends on).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from decimal import Decimal, localcontext
from typing import Any

import httpx

log = logging.getLogger(__name__)

SERVICE_PREFIX = "/api/v1/pricing"
DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_MAX_AGE_SECONDS = 60.0
# After a failed call, the same call is not tried again for this long (at most max_age): a chat
# route must not wait for a timeout on every message while the service is down.
RETRY_AFTER_SECONDS = 10.0
POLICIES = ("refuse", "ceiling")
# Statuses whose amounts are the real cost: free and local are 0 because the service says so.
KNOWN_STATUSES = frozenset({"priced", "free", "local"})


class UnknownPrice(Exception):
    """The service knows no price for this model and the policy is ``refuse``."""

    def __init__(self, model_id: str, reason: str) -> None:
        super().__init__(f"no known price for {model_id!r}: {reason}")
        self.model_id = model_id
        self.reason = reason


class PolicyError(ValueError):
    """The unknown-price policy is misconfigured (named variable, what it takes)."""


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """What the service says of one id. Unknown: both amounts ``None`` (never 0)."""

    model_id: str
    price_status: str  # priced | free | local | unknown
    input_usd_per_million: Decimal | None
    output_usd_per_million: Decimal | None
    label: str
    cache_read_usd_per_million: Decimal | None = None  # None: unknown (or an older service)
    cache_write_usd_per_million: Decimal | None = None
    # Per call, USD per 1,000 calls (None: unknown): a web search, a request fee.
    web_search_usd_per_thousand: Decimal | None = None
    request_usd_per_thousand: Decimal | None = None
    # Long-context tiers: (kind, start, USD per million past start, None: unknown).
    long_context_tiers: tuple[tuple[str, int, Decimal | None], ...] = ()

    def at_length(self, input_tokens: int) -> ModelPrice:
        """This price for a request of ``input_tokens`` input tokens: past a tier's start every
        token of its kind costs the tier price (the highest start crossed wins), as the
        service's ``long_context.crossed`` bills it; an unknown tier price is unknown."""
        crossed: dict[str, Decimal | None] = {}
        for kind, start, usd in sorted(self.long_context_tiers, key=lambda t: t[1]):
            if input_tokens > start:
                crossed[kind] = usd
        if not crossed:
            return self
        fields: dict[str, Any] = {f"{kind}_usd_per_million": usd for kind, usd in crossed.items()}
        return replace(self, **fields)

    @property
    def known(self) -> bool:
        return (
            self.price_status in KNOWN_STATUSES
            and self.input_usd_per_million is not None
            and self.output_usd_per_million is not None
        )


@dataclass(frozen=True, slots=True)
class Cost:
    """One call's cost in exact USD; ``charged_as`` says on which basis it was billed."""

    model_id: str
    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal
    price_status: str
    charged_as: str  # the price status, or "ceiling" for an unknown price at the ceiling

    def as_floats(self) -> tuple[float, float, float]:
        """Cognitia's ``(input, output, total)`` floats (its spending table stores floats)."""
        return (float(self.input_usd), float(self.output_usd), float(self.total_usd))


@dataclass(frozen=True, slots=True)
class UnknownPolicy:
    """``refuse``, or ``ceiling`` with the per-million prices charged for an unknown price."""

    name: str = "refuse"
    ceiling_input_usd_per_million: Decimal | None = None
    ceiling_output_usd_per_million: Decimal | None = None

    def __post_init__(self) -> None:
        if self.name not in POLICIES:
            raise PolicyError(
                f"PRICING_UNKNOWN_PRICE_POLICY={self.name!r}: takes {' or '.join(POLICIES)}"
            )
        if self.name == "ceiling" and (
            self.ceiling_input_usd_per_million is None
            or self.ceiling_output_usd_per_million is None
        ):
            raise PolicyError(
                "PRICING_UNKNOWN_PRICE_POLICY=ceiling needs "
                "PRICING_UNKNOWN_CEILING_INPUT_USD_PER_MILLION and "
                "PRICING_UNKNOWN_CEILING_OUTPUT_USD_PER_MILLION"
            )
        for value in (self.ceiling_input_usd_per_million, self.ceiling_output_usd_per_million):
            if value is not None and (not value.is_finite() or value <= 0):
                raise PolicyError(f"an unknown-price ceiling must be a positive amount: {value}")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> UnknownPolicy:
        values = os.environ if env is None else env
        name = values.get("PRICING_UNKNOWN_PRICE_POLICY", "refuse").strip().lower()
        return cls(
            name=name,
            ceiling_input_usd_per_million=_env_amount(
                values, "PRICING_UNKNOWN_CEILING_INPUT_USD_PER_MILLION"
            ),
            ceiling_output_usd_per_million=_env_amount(
                values, "PRICING_UNKNOWN_CEILING_OUTPUT_USD_PER_MILLION"
            ),
        )


def _env_amount(values: Any, name: str) -> Decimal | None:
    raw = values.get(name)
    if raw is None or not raw.strip():
        return None
    try:
        return Decimal(raw.strip())
    except ArithmeticError as exc:
        raise PolicyError(f"{name}={raw!r} is not a number") from exc


def call_cost_usd(
    input_tokens: int,
    output_tokens: int,
    input_usd_per_million: Decimal,
    output_usd_per_million: Decimal,
) -> tuple[Decimal, Decimal, Decimal]:
    """The service's ``/estimate`` arithmetic: exact USD, ``tokens x price / 10^6``, unrounded."""
    for name, tokens in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(tokens, bool) or not isinstance(tokens, int) or tokens < 0:
            raise ValueError(f"{name} must be a whole number >= 0, got {tokens!r}")
    with localcontext() as context:
        context.prec = 80  # room for every digit: money is never rounded here
        input_usd = (input_usd_per_million * input_tokens).scaleb(-6)
        output_usd = (output_usd_per_million * output_tokens).scaleb(-6)
        return input_usd, output_usd, input_usd + output_usd


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(value)


_TIER_KINDS = ("input", "cache_read", "cache_write", "output")


def _price_of(model_id: str, value: dict[str, Any], label: str) -> ModelPrice:
    """A price map entry or a selector item as the kit's ModelPrice (fields an older service
    lacks are unknown)."""
    tiers = tuple(
        (str(t["kind"]), int(t["start"]), _decimal(t.get("usd_per_million")))
        for t in value.get("long_context_tiers") or ()
        if t.get("kind") in _TIER_KINDS
    )
    return ModelPrice(
        model_id=model_id,
        price_status=value["price_status"],
        input_usd_per_million=_decimal(value["input_usd_per_million"]),
        output_usd_per_million=_decimal(value["output_usd_per_million"]),
        label=label,
        cache_read_usd_per_million=_decimal(value.get("cache_read_usd_per_million")),
        cache_write_usd_per_million=_decimal(value.get("cache_write_usd_per_million")),
        web_search_usd_per_thousand=_decimal(value.get("web_search_usd_per_thousand")),
        request_usd_per_thousand=_decimal(value.get("request_usd_per_thousand")),
        long_context_tiers=tiers,
    )


@dataclass(slots=True)
class _Map:
    etag: str | None
    prices: dict[str, dict[str, Any]]
    fetched_at: float
    snapshot_id: int = 0


class BudgetPrices:
    """The service's price map for synchronous callers, kept fresh with its ETag."""

    def __init__(
        self,
        base_url: str,
        *,
        policy: UnknownPolicy | None = None,
        transport: httpx.BaseTransport | None = None,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        max_age: float = DEFAULT_MAX_AGE_SECONDS,
        background: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.policy = policy or UnknownPolicy()
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={"user-agent": "cognitia-pricing-kit-budgets"},
        )
        self._max_age = max_age
        self._clock = clock
        self._lock = threading.Lock()
        self._map: _Map | None = None
        self._extra: dict[str, ModelPrice] = {}  # ids the map lacks, until the map changes
        self._retry_at: dict[str, float] = {}  # call -> when it may be tried again after a failure
        self._retry_after = min(max_age, RETRY_AFTER_SECONDS)
        self.unknown_counts: dict[str, int] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()  # invalidate(): revalidate now
        self._min_snapshot = 0  # the snapshot a webhook announced
        self._thread: threading.Thread | None = None
        if background:
            self._thread = threading.Thread(
                target=self._keep_fresh, name="cognitia-pricing-budgets", daemon=True
            )
            self._thread.start()

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=self._http.timeout.read or DEFAULT_TIMEOUT_SECONDS + 1)
        self._http.close()

    # -- the map --------------------------------------------------------------------------------

    def _keep_fresh(self) -> None:
        while not self._stop.is_set():
            self.refresh()
            # Behind a snapshot a webhook announced (the replica asked has not switched yet):
            # ask again in a second, not in max_age.
            behind = self._behind()
            self._wake.wait(min(self._max_age, 1.0) if behind else self._max_age)
            self._wake.clear()

    def _behind(self) -> bool:
        current = self._map
        return current is not None and current.snapshot_id < self._min_snapshot

    def invalidate(self, snapshot_id: int | None = None) -> None:
        """The service said its prices changed (a webhook): revalidate the map now, in the
        background thread (or at the next lookup without one), and until it comes from
        ``snapshot_id`` or later; never blocks the caller."""
        with self._lock:
            self._extra = {}
            if snapshot_id is not None:
                self._min_snapshot = max(self._min_snapshot, snapshot_id)
            current = self._map
            if current is not None:
                current.fetched_at = float("-inf")
        self._wake.set()

    def _backing_off(self, call: str) -> bool:
        return self._clock() < self._retry_at.get(call, float("-inf"))

    def _failed(self, call: str) -> None:
        self._retry_at[call] = self._clock() + self._retry_after

    def refresh(self) -> bool:
        """Fetch or revalidate the map now; False when the service could not be reached."""
        current = self._map
        headers = {"if-none-match": current.etag} if current and current.etag else {}
        try:
            response = self._http.get(SERVICE_PREFIX + "/prices", headers=headers)
            if current is not None and response.status_code == 304:
                current.fetched_at = self._clock()
                return True
            response.raise_for_status()
            body = json.loads(response.content, parse_float=Decimal)
            snapshot = body.get("snapshot") or {}
            snapshot_id = snapshot.get("id")
            fresh = _Map(
                response.headers.get("etag"),
                body["prices"],
                self._clock(),
                snapshot_id if isinstance(snapshot_id, int) else 0,
            )
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            # The last map keeps serving; an unreachable service never makes a price unknown.
            log.warning("pricing.budget_map_unavailable %s", exc)
            self._failed("/prices")
            return False
        with self._lock:
            if current is None or fresh.etag != current.etag:
                self._extra = {}
            self._map = fresh
        return True

    def _current(self) -> _Map | None:
        current = self._map
        due = current is None or (
            self._thread is None
            and (self._clock() - current.fetched_at >= self._max_age or self._behind())
        )
        if due and not self._backing_off("/prices"):
            # No background thread (or nothing fetched yet): revalidate on demand, bounded.
            self.refresh()
            current = self._map
        return current

    def _ask(self, model_id: str) -> ModelPrice | None:
        """The service's own resolution of one id (local prefixes, aliases), bounded in time."""
        if self._backing_off(model_id):
            return None
        try:
            response = self._http.get(SERVICE_PREFIX + "/models", params={"ids": model_id})
            response.raise_for_status()
            items = json.loads(response.content, parse_float=Decimal)["items"]
        except (httpx.HTTPError, ValueError, KeyError) as exc:
            log.warning("pricing.budget_lookup_failed model=%s %s", model_id, exc)
            self._failed(model_id)
            return None
        if not items:
            return None
        item = items[0]
        price = _price_of(model_id, item, item["price_label"])
        with self._lock:
            self._extra[model_id] = price
        return price

    def price(self, model_id: str) -> ModelPrice:
        """What the service says of ``model_id``; ``unknown`` when it says nothing or is down."""
        current = self._current()
        value = None
        if current is not None:
            value = current.prices.get(model_id) or current.prices.get(model_id.strip().lower())
        if value is not None:
            return _price_of(model_id, value, value["label"])
        asked = self._extra.get(model_id) or self._ask(model_id)
        if asked is not None:
            return asked
        return ModelPrice(model_id, "unknown", None, None, "Sin precio conocido")

    # -- billing --------------------------------------------------------------------------------

    def _count_unknown(self, price: ModelPrice, action: str) -> None:
        with self._lock:
            self.unknown_counts[price.model_id] = self.unknown_counts.get(price.model_id, 0) + 1
        log.warning(
            "pricing.budget_unknown_price model=%s status=%s policy=%s action=%s",
            price.model_id,
            price.price_status,
            self.policy.name,
            action,
        )

    def check_billable(self, model_id: str) -> ModelPrice:
        """Before a call: its price, or ``UnknownPrice`` when unknown and the policy refuses."""
        price = self.price(model_id)
        if not price.known and self.policy.name == "refuse":
            self._count_unknown(price, "refused")
            raise UnknownPrice(model_id, f"the pricing service says {price.price_status!r}")
        return price

    def cost(self, model_id: str, input_tokens: int, output_tokens: int) -> Cost:
        """The call's cost as the service's ``/estimate`` computes it (long-context tiers
        included), or the policy's answer."""
        price = self.price(model_id).at_length(input_tokens)
        if price.known:
            assert price.input_usd_per_million is not None
            assert price.output_usd_per_million is not None
            amounts = call_cost_usd(
                input_tokens,
                output_tokens,
                price.input_usd_per_million,
                price.output_usd_per_million,
            )
            return Cost(model_id, *amounts, price.price_status, price.price_status)
        if self.policy.name == "refuse":
            self._count_unknown(price, "refused")
            raise UnknownPrice(model_id, f"the pricing service says {price.price_status!r}")
        assert self.policy.ceiling_input_usd_per_million is not None
        assert self.policy.ceiling_output_usd_per_million is not None
        self._count_unknown(price, "charged_ceiling")
        amounts = call_cost_usd(
            input_tokens,
            output_tokens,
            self.policy.ceiling_input_usd_per_million,
            self.policy.ceiling_output_usd_per_million,
        )
        return Cost(model_id, *amounts, price.price_status, "ceiling")

    def usage_cost(self, model_id: str, usage: Any, format: str | None = None) -> Cost:
        """The cost of a provider's usage object, as ``POST /estimate`` bills it.

        ``input_usd`` holds every input line (uncached, cache reads, cache writes), ``output_usd``
        the output (reasoning included); per-call charges (web searches, a request fee) are
        added to ``input_usd``. Past a long-context tier every token of its kind is billed at the
        tier price. A line with tokens and no known price makes the call's price unknown:
        refused, or charged at the ceiling (every input token at the input ceiling, every output
        token at the output ceiling), as ``cost`` does; web searches of unknown price have no
        ceiling and are refused either way (never free).
        """
        counts = read_usage(usage, format)
        price = self.price(model_id).at_length(counts.input_tokens)
        lines = _lines(counts, price) if price.known else None
        calls = _call_lines(counts, price)
        if (
            lines is not None
            and all(rate is not None for _, rate, _ in lines)
            and all(rate is not None for _, rate, _ in calls)
        ):
            with localcontext() as context:
                context.prec = 80  # room for every digit: money is never rounded here
                input_usd = output_usd = Decimal(0)
                for tokens, rate, side in lines:
                    assert rate is not None
                    amount = (rate * tokens).scaleb(-6)
                    if side == "output":
                        output_usd += amount
                    else:
                        input_usd += amount
                for count, rate, _ in calls:
                    assert rate is not None
                    input_usd += (rate * count).scaleb(-3)
                total_usd = input_usd + output_usd
            return Cost(
                model_id, input_usd, output_usd, total_usd, price.price_status, price.price_status
            )
        unpriced_calls = _unpriced(calls)
        if self.policy.name == "refuse" or unpriced_calls:
            self._count_unknown(price, "refused")
            missing = (
                f"no known price for the {', '.join(unpriced_calls)} calls"
                if unpriced_calls
                else f"no known price for the {', '.join(_unpriced(lines))} tokens"
                if lines is not None
                else f"the pricing service says {price.price_status!r}"
            )
            raise UnknownPrice(model_id, missing)
        assert self.policy.ceiling_input_usd_per_million is not None
        assert self.policy.ceiling_output_usd_per_million is not None
        self._count_unknown(price, "charged_ceiling")
        amounts = call_cost_usd(
            counts.input_tokens,
            counts.output_tokens,
            self.policy.ceiling_input_usd_per_million,
            self.policy.ceiling_output_usd_per_million,
        )
        return Cost(model_id, *amounts, price.price_status, "ceiling")


# -- usage objects (the service's pricing_service/usage.py rules, without genai-prices) --------

USAGE_FORMATS = ("openai_chat", "openai_responses", "anthropic", "gemini")
MAX_TOKENS = 100_000_000
_MARKERS = {
    "openai_chat": {
        "prompt_tokens",
        "completion_tokens",
        "prompt_tokens_details",
        "completion_tokens_details",
    },
    "openai_responses": {"input_tokens_details", "output_tokens_details"},
    "anthropic": {
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "cache_creation",
        "server_tool_use",
    },
    "gemini": {
        "promptTokenCount",
        "candidatesTokenCount",
        "cachedContentTokenCount",
        "thoughtsTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
        "promptTokensDetails",
        "candidatesTokensDetails",
    },
}


@dataclass(frozen=True, slots=True)
class UsageCounts:
    """A usage object by its provider's rule: every input token in ``input_tokens``."""

    format: str
    input_tokens: int  # cache reads and writes included
    cache_read_tokens: int
    cache_write_tokens: int  # both lifetimes
    cache_write_1h_tokens: int
    output_tokens: int  # reasoning included
    input_audio_tokens: int = 0
    output_audio_tokens: int = 0
    web_searches: int = 0  # server-side web searches (Anthropic, Perplexity)


def _count(usage: Any, *path: str) -> int:
    value = usage
    for step in path:
        if value is None:
            return 0
        if not isinstance(value, dict):
            raise ValueError(f"usage.{'.'.join(path[:-1])} must be an object")
        value = value.get(step)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_TOKENS:
        raise ValueError(f"usage.{'.'.join(path)} must be a whole number of tokens, not {value!r}")
    return int(value)


def _modality(usage: dict[str, Any], name: str, modality: str) -> int:
    entries = usage.get(name) or []
    if not isinstance(entries, list):
        raise ValueError(f"usage.{name} must be an array")
    total = 0
    for entry in entries:
        if isinstance(entry, dict) and entry.get("modality") == modality:
            total += _count(entry, "tokenCount")
    return total


def read_usage(usage: Any, format: str | None = None) -> UsageCounts:
    """The usage object read by its provider's rule; ValueError for an unknown, ambiguous or
    malformed one (the service answers 400 for the same objects)."""
    if not isinstance(usage, dict):
        raise ValueError("usage must be an object")
    if format is None:
        found = [name for name, keys in _MARKERS.items() if set(usage) & keys]
        if len(found) != 1:
            raise ValueError(
                f"usage shape is ambiguous or unknown ({', '.join(found) or 'no known field'}): "
                f"name it with format ({', '.join(USAGE_FORMATS)})"
            )
        format = found[0]
    if format not in USAGE_FORMATS:
        raise ValueError(f"format must be one of {', '.join(USAGE_FORMATS)}, not {format!r}")
    required = {
        "openai_chat": ("prompt_tokens", "completion_tokens"),
        "openai_responses": ("input_tokens", "output_tokens"),
        "anthropic": ("input_tokens", "output_tokens"),
        "gemini": ("promptTokenCount",),
    }[format]
    for name in required:
        if usage.get(name) is None:
            raise ValueError(f"usage.{name} is required for {format}")
    if format == "openai_chat":
        counts = UsageCounts(
            format,
            input_tokens=_count(usage, "prompt_tokens"),
            cache_read_tokens=_count(usage, "prompt_tokens_details", "cached_tokens"),
            cache_write_tokens=0,
            cache_write_1h_tokens=0,
            output_tokens=_count(usage, "completion_tokens"),
            input_audio_tokens=_count(usage, "prompt_tokens_details", "audio_tokens"),
            output_audio_tokens=_count(usage, "completion_tokens_details", "audio_tokens"),
            web_searches=_count(usage, "num_search_queries"),  # Perplexity
        )
        reasoning = _count(usage, "completion_tokens_details", "reasoning_tokens")
    elif format == "openai_responses":
        counts = UsageCounts(
            format,
            input_tokens=_count(usage, "input_tokens"),
            cache_read_tokens=_count(usage, "input_tokens_details", "cached_tokens"),
            cache_write_tokens=0,
            cache_write_1h_tokens=0,
            output_tokens=_count(usage, "output_tokens"),
        )
        reasoning = _count(usage, "output_tokens_details", "reasoning_tokens")
    elif format == "anthropic":
        read = _count(usage, "cache_read_input_tokens")
        written = _count(usage, "cache_creation_input_tokens")
        one_hour = _count(usage, "cache_creation", "ephemeral_1h_input_tokens")
        if one_hour + _count(usage, "cache_creation", "ephemeral_5m_input_tokens") > written:
            raise ValueError("usage.cache_creation counts more than cache_creation_input_tokens")
        # input_tokens exclude the cache: every input token is their sum.
        counts = UsageCounts(
            format,
            input_tokens=_count(usage, "input_tokens") + read + written,
            cache_read_tokens=read,
            cache_write_tokens=written,
            cache_write_1h_tokens=one_hour,
            output_tokens=_count(usage, "output_tokens"),
            web_searches=_count(usage, "server_tool_use", "web_search_requests"),
        )
        reasoning = 0
    else:
        counts = UsageCounts(
            format,
            input_tokens=_count(usage, "promptTokenCount")
            + _count(usage, "toolUsePromptTokenCount"),
            cache_read_tokens=_count(usage, "cachedContentTokenCount"),
            cache_write_tokens=0,
            cache_write_1h_tokens=0,
            # Thoughts are billed as output, on top of the candidates.
            output_tokens=_count(usage, "candidatesTokenCount")
            + _count(usage, "thoughtsTokenCount"),
            input_audio_tokens=_modality(usage, "promptTokensDetails", "AUDIO"),
            output_audio_tokens=_modality(usage, "candidatesTokensDetails", "AUDIO"),
        )
        reasoning = 0
    if counts.cache_read_tokens + counts.input_audio_tokens > counts.input_tokens:
        raise ValueError("usage: cached and audio tokens exceed the prompt, which includes them")
    if reasoning + counts.output_audio_tokens > counts.output_tokens:
        raise ValueError("usage: reasoning and audio tokens exceed the output, which includes them")
    return counts


# Anthropic's pricing page: 1-hour cache writes cost 2x the base input price.
ANTHROPIC_1H_WRITE_FACTOR = Decimal(2)


def _lines(counts: UsageCounts, price: ModelPrice) -> list[tuple[int, Decimal | None, str]]:
    """(tokens, USD per million or None, what) for every line with tokens."""
    free = price.price_status in ("free", "local")
    zero = Decimal(0)

    def known(value: Decimal | None) -> Decimal | None:
        return zero if free else value

    base = known(price.input_usd_per_million)
    one_hour = (
        base * ANTHROPIC_1H_WRITE_FACTOR
        if counts.format == "anthropic" and base is not None
        else known(None)
    )
    lines = [
        (
            counts.input_tokens
            - counts.cache_read_tokens
            - counts.cache_write_tokens
            - counts.input_audio_tokens,
            base,
            "input",
        ),
        (counts.cache_read_tokens, known(price.cache_read_usd_per_million), "cache_read"),
        (
            counts.cache_write_tokens - counts.cache_write_1h_tokens,
            known(price.cache_write_usd_per_million),
            "cache_write",
        ),
        (counts.cache_write_1h_tokens, one_hour, "cache_write_1h"),
        (
            counts.output_tokens - counts.output_audio_tokens,
            known(price.output_usd_per_million),
            "output",
        ),
        (counts.input_audio_tokens, known(None), "input_audio"),
        (counts.output_audio_tokens, known(None), "output_audio"),
    ]
    return [line for line in lines if line[0] > 0]


def _call_lines(counts: UsageCounts, price: ModelPrice) -> list[tuple[int, Decimal | None, str]]:
    """(calls, USD per 1,000 or None, what) for every per-call charge of the call: its web
    searches, and one request where the model has a request fee (the service's call_prices)."""
    local = price.price_status == "local"
    search = Decimal(0) if local else price.web_search_usd_per_thousand
    lines: list[tuple[int, Decimal | None, str]] = []
    if counts.web_searches:
        lines.append((counts.web_searches, search, "web_search"))
    if price.request_usd_per_thousand is not None:
        lines.append((1, price.request_usd_per_thousand, "request"))
    return lines


def _unpriced(lines: list[tuple[int, Decimal | None, str]] | None) -> list[str]:
    return [what for _, rate, what in lines or () if rate is None]


_prices: BudgetPrices | None = None
_prices_lock = threading.Lock()


def budget_prices() -> BudgetPrices:
    """The process's price source, made on first use from the environment."""
    global _prices
    with _prices_lock:
        if _prices is None:
            url = os.environ.get("PRICING_SERVICE_URL")
            if not url:
                raise PolicyError("PRICING_SERVICE_URL is not set: budgets cannot be priced")
            _prices = BudgetPrices(
                url,
                policy=UnknownPolicy.from_env(),
                timeout=float(
                    os.environ.get("PRICING_BUDGET_TIMEOUT_SECONDS", DEFAULT_TIMEOUT_SECONDS)
                ),
                max_age=float(
                    os.environ.get("PRICING_BUDGET_MAX_AGE_SECONDS", DEFAULT_MAX_AGE_SECONDS)
                ),
            )
        return _prices


def invalidate_budget_prices(snapshot_id: int | None = None) -> None:
    """Revalidate the process's price map now, if one was made (the kit's webhook route)."""
    with _prices_lock:
        prices = _prices
    if prices is not None:
        prices.invalidate(snapshot_id)


def set_budget_prices(prices: BudgetPrices | None) -> None:
    """Use this source (tests); ``None`` makes one from the environment on next use."""
    global _prices
    with _prices_lock:
        previous, _prices = _prices, prices
    if previous is not None and previous is not prices:
        previous.close()


def message_cost_from_usage(
    model_id: str, usage: Any, format: str | None = None
) -> tuple[float, float, float]:
    """``(input, output, total)`` USD of the provider's usage object, billed as the provider
    bills it (cache and reasoning included); raises ``UnknownPrice`` as ``message_cost`` does."""
    return budget_prices().usage_cost(model_id, usage, format).as_floats()


def message_cost(
    model_id: str, input_tokens: int, output_tokens: int
) -> tuple[float, float, float]:
    """``calculate_message_cost``'s answer: ``(input, output, total)`` USD, never 0 for unknown.

    Raises ``UnknownPrice`` when the price is unknown and the policy is ``refuse``.
    """
    return budget_prices().cost(model_id, input_tokens, output_tokens).as_floats()
