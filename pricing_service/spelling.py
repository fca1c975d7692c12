"""genai-prices' rules for which model a spelling is, without genai-prices' price data.

A serving worker resolves ``?ids=`` spellings nothing else resolves by genai-prices' own
matching rules (``SelectorDataset(matcher=...)``): ``gpt-4-1106-preview`` is its
``gpt-4-turbo``. Importing genai-prices for that would load its whole bundled price data (about
18 MB per worker). The rules alone (each provider's ``model_match`` and each model's ``match``
clauses, in genai-prices' order) are exported from the installed package into
``seed/spelling_rules.json.gz`` by ``scripts/build_spelling_rules.py`` and evaluated here as
genai-prices evaluates them; ``tests/unit/test_spelling.py`` checks the file against the
installed package and this matcher against ``SecondSource`` on every id the recording lists
and variants of them.
"""

from __future__ import annotations

import gzip
import json
import re
import sys
import threading
from datetime import date
from pathlib import Path
from typing import Any

from pricing_service.normalize import canonical_provider
from pricing_service.second_source import _AUTHORS as AUTHORS
from pricing_service.second_source import _PROVIDER_IDS as PROVIDER_IDS
from pricing_service.second_source import second_source

__all__ = ["RULES_FILE", "SpellingRules", "export_rules", "spelling_rules"]

RULES_FILE = Path(__file__).parent / "seed" / "spelling_rules.json.gz"

# genai-prices' fallback: a compact date suffix (-20251211) retried as -2025-12-11.
_COMPACT_DATE = re.compile(r"(-)(20\d{2})(0[1-9]|1[0-2])(0[1-9]|[12]\d|3[01])(?=-|:|$)")

Clause = dict[str, Any]
# A clause as the matcher holds it (``_compiled``): ``(kind, value)``, an ``or``/``and``'s value
# a tuple of compiled clauses, a text clause's value lowercased once. The rules as decoded from
# JSON (one dict per clause, 4,600 of them) held 1.5 MB in every serving worker; as tuples they
# hold a third of it.
Compiled = tuple[str, Any]
_TEXT_KINDS = frozenset({"starts_with", "ends_with", "contains", "equals"})
_KINDS = _TEXT_KINDS | {"or", "and", "regex"}


def _compiled(clause: Clause, strings: dict[str, str]) -> Compiled:
    """``clause`` (genai-prices' ``types.Clause*``, as exported) in the matcher's form; equal
    strings shared through ``strings``."""
    (kind, value), *_ = clause.items()
    if kind not in _KINDS:
        raise ValueError(f"unknown clause {kind!r} in {RULES_FILE.name}")
    if kind in ("or", "and"):
        return (kind, tuple(_compiled(c, strings) for c in value))
    text = str(value).lower() if kind in _TEXT_KINDS else value
    return (sys.intern(kind), strings.setdefault(text, text))


def _matches(clause: Compiled, text: str) -> bool:
    """One compiled clause against ``text``, as genai-prices evaluates the clause: regexes on
    the text as given, the other kinds on it lowercased."""
    kind, value = clause
    if kind == "or":
        return any(_matches(c, text) for c in value)
    if kind == "and":
        return all(_matches(c, text) for c in value)
    if kind == "regex":
        return bool(re.search(value, text))
    lowered = text.lower()
    if kind == "starts_with":
        return lowered.startswith(value)
    if kind == "ends_with":
        return lowered.endswith(value)
    if kind == "contains":
        return value in lowered
    return bool(lowered == value)  # equals (``_compiled`` admits no other kind)


def _compact_dates(ref: str) -> str:
    def replace(found: re.Match[str]) -> str:
        year, month, day = (int(found.group(i)) for i in range(2, 5))
        try:
            date(year, month, day)
        except ValueError:
            return found.group(0)
        return f"{found.group(1)}{year:04d}-{month:02d}-{day:02d}"

    return _COMPACT_DATE.sub(replace, ref)


class SpellingRules:
    """``SpellingMatcher`` (curation.py) over the exported rules: ``match`` and ``model_ref``
    answer what ``SecondSource.match`` and ``SecondSource.model_ref`` answer."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version = str(data["version"])
        strings: dict[str, str] = {}
        self._providers: dict[str, tuple[Compiled | None, tuple[tuple[str, Compiled], ...]]] = {
            p["id"]: (
                None if p["model_match"] is None else _compiled(p["model_match"], strings),
                tuple(
                    (strings.setdefault(m[0], m[0]), _compiled(m[1], strings)) for m in p["models"]
                ),
            )
            for p in data["providers"]
        }
        self._lock = threading.Lock()
        self._cache: dict[tuple[str, str], str | None] = {}

    def _find(self, provider_id: str, model_ref: str) -> str | None:
        ref = model_ref.lower()
        key = (provider_id, ref)
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        models = self._providers[provider_id][1]
        found = next((mid for mid, clause in models if _matches(clause, ref)), None)
        if found is None:
            normalized = _compact_dates(ref)
            if normalized != ref:
                found = next((mid for mid, clause in models if _matches(clause, normalized)), None)
        with self._lock:
            self._cache[key] = found
        return found

    def _provider_id(self, provider: str) -> str | None:
        canonical = canonical_provider(provider)
        wanted = PROVIDER_IDS.get(canonical, canonical)
        return wanted if wanted in self._providers else None

    def model_ref(self, provider: str, model_id: str) -> str | None:
        provider_id = self._provider_id(provider)
        return None if provider_id is None else self._find(provider_id, model_id)

    def match(self, requested: str) -> tuple[str, str] | None:
        ref = requested.strip().lower()
        provider, sep, rest = ref.partition("/")
        found: tuple[str, str] | None = None
        if sep and provider and rest:
            provider_id = self._provider_id(provider)
            model_id = None if provider_id is None else self._find(provider_id, rest)
            if provider_id is None or model_id is None:
                return None
            found = (provider_id, model_id)
        else:
            for provider_id, (model_match, _) in self._providers.items():
                if model_match is not None and _matches(model_match, ref):
                    model_id = self._find(provider_id, ref)
                    if model_id is not None:
                        found = (provider_id, model_id)
                        break
        if found is None:
            return None
        return canonical_provider(AUTHORS.get(found[0], found[0])), found[1]


_shared: SpellingRules | None = None
_shared_lock = threading.Lock()


def spelling_rules() -> SpellingRules:
    """The process's one ``SpellingRules``, read from ``RULES_FILE`` on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = SpellingRules(json.loads(gzip.decompress(RULES_FILE.read_bytes())))
        return _shared


def _exported(clause: Any) -> Clause:
    if hasattr(clause, "or_"):
        return {"or": [_exported(c) for c in clause.or_]}
    if hasattr(clause, "and_"):
        return {"and": [_exported(c) for c in clause.and_]}
    ((kind, value),) = vars(clause).items()
    return {kind: value}


def export_rules() -> dict[str, Any]:
    """The rules of the installed genai-prices (``RULES_FILE`` holds them; this imports its
    data: for scripts/build_spelling_rules.py and the tests, never a serving worker)."""
    source = second_source()
    return {
        "version": source.version,
        "providers": [
            {
                "id": provider_id,
                "model_match": (
                    _exported(entry.model_match) if entry.model_match is not None else None
                ),
                "models": [[str(m.id), _exported(m.match)] for m in entry.models],
            }
            for provider_id, entry in source.provider_ids().items()
        ],
    }
