"""Load and validate the curation catalog (catalog/*.toml) into a Catalog; pure after load.

Every problem is a ``CatalogError(file, entry, reason)`` naming the file (its name inside the
catalog directory), the entry (``category 'coding'``, ``curated 'fast'``, ``override #2``,
``line 7`` for TOML syntax, ``top level``, ``file``) and what is wrong, so ``catalog check`` can
print one line that points at the fix. Unknown keys are errors: a typo must not silently drop data.
"""

from __future__ import annotations

import re
import tomllib
from collections import Counter
from datetime import date, datetime
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from pricing_service.domain import (
    AcceptedFigure,
    Catalog,
    Category,
    FixedCost,
    Hardware,
    HostingScenario,
    LocalModel,
    PriceDecision,
    PriceOverride,
    SpecialKind,
)
from pricing_service.errors import CatalogError
from pricing_service.model_kinds import LOCAL_PREFIX, is_local_id

if TYPE_CHECKING:
    from collections.abc import Iterable
    from pathlib import Path

CATEGORIES_FILE = "categories.toml"
ALIASES_FILE = "aliases.toml"
SPECIALS_FILE = "specials.toml"
OVERRIDES_FILE = "overrides.toml"
LOCAL_FILE = "local.toml"
# Optional: a catalog without operators' decisions simply has none.
DECISIONS_FILE = "decisions.toml"
CATALOG_FILES = (CATEGORIES_FILE, ALIASES_FILE, SPECIALS_FILE, OVERRIDES_FILE, LOCAL_FILE)

MAX_MODELS_PER_CATEGORY = 9

_TOP = "top level"
_LINE_RE = re.compile(r"\s*\(at line (\d+), column \d+\)$")
_END_RE = re.compile(r"\s*\(at end of document\)$")
_DUPLICATE_KEY_MESSAGES = ("Cannot overwrite a value", "Cannot declare")
_OVERRIDE_KEYS = (
    "model_id",
    "provider",
    "display_name",
    "input_usd_per_million",
    "output_usd_per_million",
    "source",
    "as_of",
    "price_note",
    "second_source_disagrees",
)


def load_catalog(directory: Path) -> Catalog:
    """Read every catalog file in ``directory``, validate it and return the Catalog."""
    documents = {name: _parse_file(directory, name) for name in CATALOG_FILES}
    categories = _categories(documents[CATEGORIES_FILE])
    aliases = _aliases(documents[ALIASES_FILE])
    specials = _specials(documents[SPECIALS_FILE])
    overrides = _overrides(documents[OVERRIDES_FILE])
    free = _free(documents[OVERRIDES_FILE])
    hardware, local_models = _local(documents[LOCAL_FILE])
    fixed_costs, scenarios = _hosting(documents[LOCAL_FILE], hardware)
    _check_local_ids(categories, local_models)
    decisions = (
        _decisions(_parse_file(directory, DECISIONS_FILE))
        if (directory / DECISIONS_FILE).exists()
        else {}
    )
    return Catalog(
        categories=tuple(sorted(categories, key=lambda c: c.order)),
        aliases=aliases,
        specials=specials,
        overrides=overrides,
        local_models=local_models,
        hardware=hardware,
        free=free,
        fixed_costs=fixed_costs,
        scenarios=scenarios,
        decisions=decisions,
    )


def check_catalog(directory: Path) -> list[str]:
    """Load the catalog and describe it in human lines; raises CatalogError when invalid."""
    catalog = load_catalog(directory)
    curated = {mid for c in catalog.categories for mid in c.model_ids}
    kinds = Counter(kind.value for kind in catalog.specials.values())
    local_ids = sum(len(m.ids) for m in catalog.local_models)
    return [
        f"catalog {directory}: valid",
        f"categories: {len(catalog.categories)} "
        f"({', '.join(f'{c.id} {len(c.model_ids)}' for c in catalog.categories)})",
        f"curated model ids: {len(curated)} distinct",
        f"aliases: {len(catalog.aliases)}",
        f"specials: {len(catalog.specials)} ({_counts(kinds)})",
        f"price overrides: {len(catalog.overrides)} ({', '.join(sorted(catalog.overrides))})",
        f"hardware tiers: {len(catalog.hardware)} ({', '.join(catalog.hardware)})",
        f"local models: {len(catalog.local_models)} with {local_ids} selector ids "
        f"({', '.join(m.ollama_tag for m in catalog.local_models)})",
        f"hosting scenarios: {len(catalog.scenarios)} "
        f"({', '.join(s.id for s in catalog.scenarios)})",
        f"price decisions: {len(catalog.decisions)} ({', '.join(sorted(catalog.decisions))})",
    ]


def upstream_priced(catalog: Catalog, model_ids: Iterable[str] | None = None) -> list[str]:
    """The ids of ``model_ids`` (default: every id the catalog names) the upstream is to
    price: not local, not priced by a catalog override; in their order, repeats kept."""
    wanted = catalog.referenced_ids() if model_ids is None else model_ids
    return [mid for mid in wanted if not is_local_id(mid) and mid not in catalog.overrides]


def _counts(counter: Counter[str]) -> str:
    return ", ".join(f"{key} {n}" for key, n in sorted(counter.items()))


def _parse_file(directory: Path, name: str) -> _Document:
    path = directory / name
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise CatalogError(name, "file", f"missing from {directory}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(name, "file", f"cannot be read: {exc}") from exc
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        entry, reason = _syntax_position(str(exc))
        raise CatalogError(name, entry, f"invalid TOML: {reason}") from exc
    return _Document(name, data)


def _syntax_position(message: str) -> tuple[str, str]:
    # Python 3.11's TOMLDecodeError has no lineno attribute; the position is only in the text.
    entry = "document"
    match = _LINE_RE.search(message)
    if match is not None:
        entry = f"line {match.group(1)}"
        message = message[: match.start()]
    else:
        match = _END_RE.search(message)
        if match is not None:
            entry = "end of document"
            message = message[: match.start()]
    if message.startswith(_DUPLICATE_KEY_MESSAGES):
        message = f"duplicate key or table ({message})"
    return entry, message


class _Document:
    """One parsed file: hands out its top-level tables with the file name for errors."""

    def __init__(self, name: str, data: dict[str, Any]) -> None:
        self.name = name
        self.top = _Table(name, _TOP, data)

    def tables(self, key: str, *, required: bool) -> list[_Table]:
        """An array of tables (``[[key]]``); each gets its entry name later, from its id."""
        value = self.top.raw(key, required=required)
        if value is None:
            return []
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise CatalogError(self.name, _TOP, f"{key!r} must be an array of tables [[{key}]]")
        return [_Table(self.name, f"{key} #{i}", v) for i, v in enumerate(value, start=1)]

    def mapping(self, key: str, *, required: bool) -> dict[str, Any]:
        """A plain table (``[key]``) whose keys are data (model ids), not field names."""
        value = self.top.raw(key, required=required)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise CatalogError(self.name, _TOP, f"{key!r} must be a table [{key}]")
        return value

    def expect(self, *keys: str) -> None:
        self.top.expect(*keys)


class _Table:
    """A TOML table whose keys are field names, with typed getters that raise CatalogError."""

    def __init__(self, file: str, entry: str, data: dict[str, Any]) -> None:
        self.file = file
        self.entry = entry
        self._data = data

    def error(self, reason: str) -> CatalogError:
        return CatalogError(self.file, self.entry, reason)

    def name_by(self, kind: str, key: str) -> None:
        """Name the entry by its id field (``override 'gpt-image-1'``) when it has a usable one."""
        value = self._data.get(key)
        if isinstance(value, str) and value.strip():
            self.entry = f"{kind} {value!r}"

    def expect(self, *keys: str) -> None:
        """Reject keys outside ``keys``: they are typos or fields this catalog does not know."""
        unknown = sorted(set(self._data) - set(keys))
        if unknown:
            raise self.error(f"unknown key {unknown[0]!r} (allowed: {', '.join(sorted(keys))})")

    def raw(self, key: str, *, required: bool = True) -> Any:
        if key not in self._data:
            if required:
                raise self.error(f"missing required key {key!r}")
            return None
        return self._data[key]

    def text(self, key: str) -> str:
        value = self.raw(key)
        if not isinstance(value, str):
            raise self.error(f"{key!r} must be a string, got {_type_name(value)}")
        if not value.strip():
            raise self.error(f"{key!r} must not be empty")
        return value

    def optional_text(self, key: str) -> str | None:
        return self.text(key) if key in self._data else None

    def __contains__(self, key: str) -> bool:
        return key in self._data

    def optional_flag(self, key: str) -> bool:
        """A boolean that defaults to false."""
        value = self._data.get(key, False)
        if not isinstance(value, bool):
            raise self.error(f"{key!r} must be true or false, got {_type_name(value)}")
        return value

    def identifier(self, key: str) -> str:
        value = self.text(key)
        _check_id(self, key, value)
        return value

    def optional_integer(self, key: str) -> int | None:
        if key not in self._data:
            return None
        value = self.integer(key)
        if value <= 0:
            raise self.error(f"{key!r} must be positive, got {value}")
        return value

    def optional_identifiers(self, key: str, *, noun: str) -> tuple[str, ...]:
        return self.identifiers(key, noun=noun) if key in self._data else ()

    def integer(self, key: str) -> int:
        value = self.raw(key)
        # bool is an int subclass: `order = true` must not sort as 1.
        if not isinstance(value, int) or isinstance(value, bool):
            raise self.error(f"{key!r} must be an integer, got {_type_name(value)}")
        return value

    def amount(self, key: str) -> Decimal:
        return _amount(self, key, self.raw(key))

    def optional_amount(self, key: str) -> Decimal | None:
        return self.amount(key) if key in self._data else None

    def day(self, key: str) -> date:
        value = self.raw(key)
        # datetime is a date subclass; an as_of with a time of day is a different, wrong type.
        if not isinstance(value, date) or isinstance(value, datetime):
            raise self.error(f"{key!r} must be a TOML date (2025-10-06), got {_type_name(value)}")
        return value

    def identifiers(self, key: str, *, noun: str) -> tuple[str, ...]:
        return _identifier_list(self, key, self.raw(key), noun)


def _type_name(value: object) -> str:
    names = {
        bool: "boolean",
        int: "integer",
        float: "float",
        str: "string",
        list: "array",
        dict: "table",
        date: "date",
        datetime: "datetime",
    }
    return names.get(type(value), type(value).__name__)


def _amount(table: _Table, key: str, value: object) -> Decimal:
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise table.error(f"{key!r} must be a number, got {_type_name(value)}")
    # str() first: Decimal(0.6) would carry the float's binary error into money.
    amount = Decimal(str(value))
    if not amount.is_finite():
        raise table.error(f"{key!r} must be a finite number, got {value!r}")
    if amount < 0:
        raise table.error(f"{key!r} must not be negative, got {value!r}")
    return amount


def _check_id(table: _Table, what: str, value: str) -> None:
    if not value or value != value.strip() or any(ch.isspace() for ch in value):
        raise table.error(f"{what} {value!r} must be non-empty and contain no whitespace")


def _identifier_list(table: _Table, key: str, value: object, noun: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise table.error(f"{key!r} must be an array of strings, got {_type_name(value)}")
    ids: list[str] = []
    for item in value:
        if not isinstance(item, str):
            raise table.error(f"{key!r} must hold only strings, got {_type_name(item)}")
        _check_id(table, noun, item)
        if item in ids:
            raise table.error(f"duplicate {noun} {item!r}")
        ids.append(item)
    return tuple(ids)


# Metrics a category may weigh in [weights.<id>] (the curation assistant, cli catalog suggest):
# the upstream's benchmark scores (higher is better), its speeds, the price (lower is better)
# and capabilities (1 when the model has it).
BENCHMARK_METRICS = (
    "intelligence",
    "coding",
    "math",
    "mmlu_pro",
    "gpqa",
    "livecodebench",
    "aider",
    "math_hard",
)
SPEED_METRICS = ("tokens_per_second", "time_to_first_token")
PRICE_METRIC = "price"
CAPABILITY_METRICS = ("tool_calls", "vision", "reasoning", "web_search", "prompt_caching")
WEIGHT_METRICS = (*BENCHMARK_METRICS, *SPEED_METRICS, PRICE_METRIC, *CAPABILITY_METRICS)


def _weights(doc: _Document, seen: set[str]) -> dict[str, tuple[tuple[str, Decimal], ...]]:
    tables = doc.mapping("weights", required=False)
    found: dict[str, tuple[tuple[str, Decimal], ...]] = {}
    for category_id, table in tables.items():
        entry = _Table(
            doc.name, f"weights {category_id!r}", table if isinstance(table, dict) else {}
        )
        if category_id not in seen:
            raise entry.error(f"unknown category {category_id!r}")
        if not isinstance(table, dict) or not table:
            raise entry.error("must be a table of metric = weight")
        entry.expect(*WEIGHT_METRICS)
        weights = []
        for metric in table:
            weight = entry.amount(metric)
            if weight <= 0:
                raise entry.error(f"{metric!r} must weigh more than 0, got {weight}")
            weights.append((metric, weight))
        found[category_id] = tuple(weights)
    return found


def _categories(doc: _Document) -> list[Category]:
    defined: list[tuple[str, str, str, str, int]] = []
    seen: set[str] = set()
    doc.expect("category", "curated", "weights")
    for table in doc.tables("category", required=True):
        table.name_by("category", "id")
        table.expect("id", "name", "emoji", "description", "order")
        category_id = table.identifier("id")
        if category_id in seen:
            raise table.error("duplicate category id")
        seen.add(category_id)
        fields = (
            category_id,
            table.text("name"),
            table.text("emoji"),
            table.text("description"),
            table.integer("order"),
        )
        defined.append(fields)

    curated = doc.mapping("curated", required=True)
    for category_id in curated:
        if category_id not in seen:
            raise CatalogError(
                doc.name,
                f"curated {category_id!r}",
                f"unknown category {category_id!r} (defined: {', '.join(sorted(seen))})",
            )

    weights = _weights(doc, seen)
    categories: list[Category] = []
    for category_id, name, emoji, description, order in defined:
        lists = _Table(doc.name, f"curated {category_id!r}", curated)
        model_ids = lists.identifiers(category_id, noun="model") if category_id in curated else ()
        if not 1 <= len(model_ids) <= MAX_MODELS_PER_CATEGORY:
            raise lists.error(
                f"has {len(model_ids)} models; a category lists 1 to {MAX_MODELS_PER_CATEGORY}"
            )
        categories.append(
            Category(
                category_id,
                name,
                emoji,
                description,
                order,
                model_ids,
                weights.get(category_id, ()),
            )
        )
    return categories


def _aliases(doc: _Document) -> dict[str, str]:
    aliases: dict[str, str] = {}
    doc.expect("aliases")
    # TOML itself rejects a repeated key, so a duplicate alias surfaces as a syntax error.
    for key, target in doc.mapping("aliases", required=False).items():
        table = _Table(doc.name, f"alias {key!r}", {})
        _check_id(table, "alias", key)
        if not isinstance(target, str):
            raise table.error(f"target must be a string, got {_type_name(target)}")
        _check_id(table, "target", target)
        if target == key:
            raise table.error("aliases itself")
        aliases[key] = target
    return aliases


def _specials(doc: _Document) -> dict[str, SpecialKind]:
    known = ", ".join(kind.value for kind in SpecialKind)
    specials: dict[str, SpecialKind] = {}
    doc.expect("specials")
    for model_id, kind in doc.mapping("specials", required=False).items():
        table = _Table(doc.name, f"special {model_id!r}", {})
        _check_id(table, "model id", model_id)
        if not isinstance(kind, str):
            raise table.error(f"kind must be a string, got {_type_name(kind)}")
        try:
            specials[model_id] = SpecialKind(kind)
        except ValueError:
            raise table.error(f"unknown special kind {kind!r} (known: {known})") from None
    return specials


def _overrides(doc: _Document) -> dict[str, PriceOverride]:
    overrides: dict[str, PriceOverride] = {}
    doc.expect("override", "free")
    for table in doc.tables("override", required=False):
        table.name_by("override", "model_id")
        table.expect(*_OVERRIDE_KEYS)
        model_id = table.identifier("model_id")
        if model_id in overrides:
            raise table.error("duplicate model_id")
        override = PriceOverride(
            model_id=model_id,
            provider=table.identifier("provider"),
            display_name=table.text("display_name"),
            input_usd_per_million=table.amount("input_usd_per_million"),
            output_usd_per_million=table.amount("output_usd_per_million"),
            source=table.text("source"),
            as_of=table.day("as_of"),
            price_note=table.optional_text("price_note"),
            second_source_disagrees=table.optional_text("second_source_disagrees"),
        )
        overrides[model_id] = override
    return overrides


def _decisions(doc: _Document) -> dict[str, PriceDecision]:
    """``[[decision]]``: an operator's acceptance of a held price, applied on every install."""
    decisions: dict[str, PriceDecision] = {}
    doc.expect("decision")
    for table in doc.tables("decision", required=False):
        table.name_by("decision", "model_id")
        table.expect(
            "model_id",
            "figure",
            "upstream_input_usd_per_million",
            "upstream_output_usd_per_million",
            "input_usd_per_million",
            "output_usd_per_million",
            "reason",
            "decided_on",
            "by",
        )
        model_id = table.identifier("model_id")
        if model_id in decisions:
            raise table.error("duplicate model_id: one decision a model")
        figure = table.text("figure")
        if figure not in set(AcceptedFigure):
            raise table.error(f"'figure' must be one of {', '.join(AcceptedFigure)}")
        upstream = (
            table.amount("upstream_input_usd_per_million"),
            table.amount("upstream_output_usd_per_million"),
        )
        if figure == "proposed":
            served = (
                table.optional_amount("input_usd_per_million") or upstream[0],
                table.optional_amount("output_usd_per_million") or upstream[1],
            )
            if served != upstream:
                raise table.error("a 'proposed' decision serves the upstream's figures as they are")
        else:
            served = (table.amount("input_usd_per_million"), table.amount("output_usd_per_million"))
        decisions[model_id] = PriceDecision(
            model_id=model_id,
            figure=figure,
            upstream_input_usd_per_million=upstream[0],
            upstream_output_usd_per_million=upstream[1],
            input_usd_per_million=served[0],
            output_usd_per_million=served[1],
            reason=table.text("reason"),
            decided_on=table.day("decided_on"),
            by=table.text("by"),
        )
    return decisions


def _free(doc: _Document) -> dict[str, str]:
    """``[free]`` model id = "why its price is 0": a drop to 0 is then not held as doubtful."""
    free: dict[str, str] = {}
    for model_id, why in doc.mapping("free", required=False).items():
        table = _Table(doc.name, f"free {model_id!r}", {})
        _check_id(table, "model id", model_id)
        if not isinstance(why, str) or not why.strip():
            raise table.error("give the reason the model is free as a non-empty string")
        free[model_id] = why.strip()
    return free


def _local(doc: _Document) -> tuple[dict[str, Hardware], tuple[LocalModel, ...]]:
    hardware: dict[str, Hardware] = {}
    doc.expect("hardware", "model", "fixed_cost", "scenario")
    for table in doc.tables("hardware", required=False):
        table.name_by("hardware", "id")
        table.expect("id", "name", "gpu", "vram_gb", "ram_gb", "usd_per_hour", "notes", "shared")
        hardware_id = table.identifier("id")
        if hardware_id in hardware:
            raise table.error("duplicate hardware id")
        declared = Hardware(
            id=hardware_id,
            name=table.text("name"),
            gpu=table.optional_text("gpu"),
            vram_gb=table.optional_amount("vram_gb"),
            usd_per_hour=table.amount("usd_per_hour"),
            ram_gb=table.optional_amount("ram_gb"),
            notes=table.optional_text("notes"),
            shared=table.optional_flag("shared"),
        )
        if declared.ram_gb is None and declared.vram_gb is None:
            raise table.error("give 'ram_gb' (CPU tiers) or 'vram_gb' (GPU tiers)")
        hardware[hardware_id] = declared

    models: list[LocalModel] = []
    tags: set[str] = set()
    owner_of_id: dict[str, str] = {}
    for table in doc.tables("model", required=False):
        table.name_by("model", "ollama_tag")
        table.expect(
            "ollama_tag",
            "display_name",
            "parameters",
            "vram_gb",
            "hardware",
            "ids",
            "context_window",
            "capabilities",
            "document_tier",
        )
        tag = table.identifier("ollama_tag")
        if tag in tags:
            raise table.error("duplicate ollama_tag")
        tags.add(tag)
        vram_gb = table.amount("vram_gb")
        suggested = suggested_tier(vram_gb, hardware.values())
        if suggested is None:
            raise table.error(f"needs {vram_gb} GB and no dedicated hardware tier has it")
        document_tier = table.optional_text("document_tier")
        # 'hardware' is the document's "Tier HF" as a tier id, given with its printed text;
        # without them the rule answers. Both must agree: one memory, one suggested tier.
        declared_tier = table.identifier("hardware") if "hardware" in table else None
        if (declared_tier is None) != (document_tier is None):
            raise table.error("give 'hardware' and 'document_tier' together, or neither")
        if declared_tier is not None and declared_tier not in hardware:
            raise table.error(
                f"unknown hardware {declared_tier!r} (defined: {', '.join(sorted(hardware))})"
            )
        if declared_tier is not None and declared_tier != suggested.id:
            raise table.error(
                f"hardware {declared_tier!r} contradicts the rule (suggested_tier), which gives "
                f"{suggested.id!r} for {vram_gb} GB: change the rule or the tier, not both ways"
            )
        model = LocalModel(
            ollama_tag=tag,
            display_name=table.text("display_name"),
            parameters=table.text("parameters"),
            vram_gb=vram_gb,
            hardware=suggested.id,
            ids=table.identifiers("ids", noun="id"),
            context_window=table.optional_integer("context_window"),
            capabilities=table.optional_identifiers("capabilities", noun="capability"),
            document_tier=document_tier,
        )
        if parameters_billions(model.parameters) is None:
            raise table.error(
                f'\'parameters\' must be a count like "7B" or "1.7B", got {model.parameters!r}'
            )
        if not model.ids:
            raise table.error("'ids' must name at least one selector id")
        for model_id in model.ids:
            if model_id in owner_of_id:
                raise table.error(
                    f"duplicate id {model_id!r} (also in model {owner_of_id[model_id]!r})"
                )
            owner_of_id[model_id] = tag
        models.append(model)
    return hardware, tuple(models)


# On a CPU tier the model shares system RAM with the OS, Ollama and its context cache: it fits
# when it needs at most half the RAM. This reproduces the document's "CPU o T4" for phi3 and
# llama3.2:3b (4 and 3 GB on CPU Upgrade's 8 GB) and "T4" for the 6-8 GB models.
CPU_MEMORY_FACTOR = Decimal(2)


def fits(vram_gb: Decimal, tier: Hardware) -> bool:
    """Whether a model needing ``vram_gb`` runs on ``tier``: in its VRAM (GPU) or half its RAM."""
    if tier.vram_gb is not None:
        return vram_gb <= tier.vram_gb
    if tier.ram_gb is not None:
        return vram_gb * CPU_MEMORY_FACTOR <= tier.ram_gb
    return False


def suggested_tier(vram_gb: Decimal, tiers: Iterable[Hardware]) -> Hardware | None:
    """The tier suggested for a model that needs ``vram_gb``: a function of the memory alone.

    The rule: the cheapest tier per hour on which the model fits (``fits``), leaving out shared
    tiers (ZeroGPU: a daily quota, no guarantee the Space runs); on a tie in price, the first
    declared. It reproduces every "Tier HF" of the target-state document's "Modelos
    Disponibles" table (phi3 and llama3.2:3b "CPU o T4" -> CPU Upgrade, the cheaper of the two;
    6-13 GB "T4" -> T4 Small; 45 GB "A100" -> A100 Large), and gives the models the document
    does not list the tier of a listed model with the same memory (gemma2:9b at 8 GB -> T4
    Small, like llama3.1:8b). None when no dedicated tier has the memory.
    """
    candidates = [t for t in tiers if not t.shared and fits(vram_gb, t)]
    return min(candidates, key=lambda t: t.usd_per_hour, default=None)


_PARAMETERS_RE = re.compile(r"(\d+(?:\.\d+)?)\s*([BM])", re.IGNORECASE)


def parameters_billions(text: str) -> Decimal | None:
    """``"3.8B"`` -> 3.8, ``"270M"`` -> 0.27: a local model's parameter count in billions."""
    match = _PARAMETERS_RE.fullmatch(text.strip())
    if match is None:
        return None
    number = Decimal(match.group(1))
    return number if match.group(2).upper() == "B" else number.scaleb(-3)


def _hosting(
    doc: _Document, hardware: dict[str, Hardware]
) -> tuple[dict[str, FixedCost], tuple[HostingScenario, ...]]:
    fixed: dict[str, FixedCost] = {}
    for table in doc.tables("fixed_cost", required=False):
        table.name_by("fixed_cost", "id")
        table.expect("id", "name", "plan", "usd_per_month")
        cost_id = table.identifier("id")
        if cost_id in fixed:
            raise table.error("duplicate fixed_cost id")
        fixed[cost_id] = FixedCost(
            id=cost_id,
            name=table.text("name"),
            plan=table.text("plan"),
            usd_per_month=table.amount("usd_per_month"),
        )
    scenarios: list[HostingScenario] = []
    for table in doc.tables("scenario", required=False):
        table.name_by("scenario", "id")
        table.expect(
            "id",
            "name",
            "tier",
            "days",
            "hours_per_day",
            "space_usd_per_month_min",
            "space_usd_per_month_max",
            "fixed",
            "note",
        )
        scenario = HostingScenario(
            id=table.identifier("id"),
            name=table.text("name"),
            tier=table.identifier("tier"),
            days=table.integer("days"),
            hours_per_day=table.optional_amount("hours_per_day"),
            space_usd_per_month_min=table.optional_amount("space_usd_per_month_min"),
            space_usd_per_month_max=table.optional_amount("space_usd_per_month_max"),
            fixed=table.identifiers("fixed", noun="fixed_cost"),
            note=table.optional_text("note"),
        )
        if any(s.id == scenario.id for s in scenarios):
            raise table.error("duplicate scenario id")
        if scenario.tier not in hardware:
            raise table.error(
                f"unknown tier {scenario.tier!r} (defined: {', '.join(sorted(hardware))})"
            )
        if not 1 <= scenario.days <= 31:
            raise table.error(f"'days' must be 1 to 31, got {scenario.days}")
        ranged = (scenario.space_usd_per_month_min, scenario.space_usd_per_month_max)
        if scenario.hours_per_day is not None:
            if ranged != (None, None):
                raise table.error("give 'hours_per_day' or the space_usd_per_month range, not both")
            if not 0 < scenario.hours_per_day <= 24:
                raise table.error("'hours_per_day' must be above 0 and at most 24")
        elif ranged[0] is None or ranged[1] is None or ranged[0] > ranged[1]:
            raise table.error(
                "without 'hours_per_day' give space_usd_per_month_min <= space_usd_per_month_max"
            )
        for cost_id in scenario.fixed:
            if cost_id not in fixed:
                raise table.error(
                    f"unknown fixed_cost {cost_id!r} (defined: {', '.join(sorted(fixed))})"
                )
        scenarios.append(scenario)
    return fixed, tuple(scenarios)


def _check_local_ids(categories: Iterable[Category], local_models: Iterable[LocalModel]) -> None:
    owner = {mid: model.ollama_tag for model in local_models for mid in model.ids}
    declared = set(owner)
    for category in categories:
        listed: dict[str, str] = {}
        for model_id in category.model_ids:
            # Two ids of one local model ("phi3:latest", "cognitia_llm_zerogpu.phi3") would show
            # the model twice in the tab: each model is listed once, by one of its ids.
            tag = owner.get(model_id)
            if tag is not None and tag in listed:
                raise CatalogError(
                    CATEGORIES_FILE,
                    f"curated {category.id!r}",
                    f"{model_id!r} and {listed[tag]!r} are the same local model ({tag!r}): "
                    "list it once",
                )
            if tag is not None:
                listed[tag] = model_id
            # Cognitia treats every id with this prefix as a model of its Ollama connection, so
            # each one the catalog names must be a declared local model (a typo would otherwise
            # show as an unknown price).
            if model_id.startswith(LOCAL_PREFIX) and model_id not in declared:
                raise CatalogError(
                    CATEGORIES_FILE,
                    f"curated {category.id!r}",
                    f"local id {model_id!r} is not declared in {LOCAL_FILE}",
                )
