"""Apply the cognitia-pricing kit to a Cognitia checkout: ``python apply.py PATH_TO_COGNITIA``.

Writes the kit's backend router, the budgets' price source and the budget change, the selector's
frontend change and Cognitia's updated tests. Every edit of a Cognitia file is an anchored text
replacement: when an anchor is missing (the file does not look as the kit expects) nothing at all
is written and the command says which file and which anchor. Everything is checked first, then
written. A second run finds every change made and writes nothing ("already applied").

A checkout without the budgets module (``backend/open_webui/utils/budget.py``, added at commit
1aff7b41) gets everything else; the command says what it skipped.

Exit status: 0 applied or already applied, 1 refused (nothing written), 2 bad usage.
Only the standard library is used.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

KIT = Path(__file__).resolve().parent


class Refused(Exception):
    """A file does not look as expected; nothing has been written."""


@dataclass(frozen=True)
class Replace:
    """Replace ``old`` (exactly ``count`` times) by ``new``; done when ``new`` is present."""

    old: str
    new: str
    count: int = 1


@dataclass(frozen=True)
class Region:
    """Replace the text from ``start`` up to (not including) ``end`` by ``new``; the region must
    contain every string of ``expect``. Done when ``new`` is present."""

    start: str
    end: str
    new: str
    expect: tuple[str, ...] = ()


Edit = Replace | Region


@dataclass
class Plan:
    writes: dict[Path, str] = field(default_factory=dict)
    done: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def _edit(text: str, edit: Edit, where: str) -> tuple[str, bool]:
    """The text after ``edit``, and whether it changed anything."""
    if edit.new and edit.new in text:
        return text, False
    if isinstance(edit, Replace):
        found = text.count(edit.old)
        if found != edit.count:
            raise Refused(
                f"{where}: expected {edit.count} occurrence(s) of {_show(edit.old)}, "
                f"found {found}; the file does not look like the Cognitia the kit knows"
            )
        return text.replace(edit.old, edit.new), True
    begin = text.find(edit.start)
    if begin < 0 or text.count(edit.start) != 1:
        raise Refused(f"{where}: anchor {_show(edit.start)} not found exactly once")
    finish = text.find(edit.end, begin + len(edit.start))
    if finish < 0:
        raise Refused(f"{where}: anchor {_show(edit.end)} not found after {_show(edit.start)}")
    region = text[begin:finish]
    for expected in edit.expect:
        if expected not in region:
            raise Refused(f"{where}: {_show(expected)} not found where the kit expects it")
    return text[:begin] + edit.new + text[finish:], True


def _show(anchor: str) -> str:
    line = anchor.strip().splitlines()[0] if anchor.strip() else anchor
    return repr(line if len(line) <= 80 else line[:77] + "...")


def _kit_file(name: str) -> str:
    return (KIT / name).read_text(encoding="utf-8")


# -- backend --------------------------------------------------------------------------------

ROUTER = "backend/open_webui/routers/pricing.py"
BUDGET_PRICES = "backend/open_webui/utils/pricing_budgets.py"
BUDGET = "backend/open_webui/utils/budget.py"
MAIN = "backend/open_webui/main.py"
TEST_PRICING = "backend/open_webui/test/apps/webui/routers/test_pricing.py"
TEST_BUDGET = "backend/open_webui/test/utils/test_budget.py"

MARK = "cognitia-pricing kit"

MAIN_EDITS: tuple[Edit, ...] = (
    Replace(
        "from open_webui.utils.pricing import pricing_refresh_loop\n",
        f"# {MARK}: prices come from the pricing service, which refreshes itself.\n",
    ),
    Replace(
        "    app.state.pricing_task = asyncio.create_task(pricing_refresh_loop())\n",
        f"    # {MARK}: no pricing refresh loop in Cognitia (the service has its own).\n",
    ),
    Replace(
        '    if hasattr(app.state, "pricing_task"):\n        app.state.pricing_task.cancel()\n',
        f"    # {MARK}: no pricing task to cancel.\n",
    ),
)
# main.py must still mount the router the kit replaces.
MAIN_MOUNT = 'app.include_router(pricing.router, prefix="/api/v1/pricing"'

BUDGET_EDITS: tuple[Edit, ...] = (
    Replace(
        "from open_webui.models.pricing import PricingTable\n",
        "from open_webui.utils.pricing_budgets import (\n"
        "    UnknownPrice,\n"
        "    budget_prices,\n"
        "    message_cost,\n"
        "    message_cost_from_usage,\n"
        ")\n",
    ),
    Replace(
        "\npricing_table = PricingTable()\n",
        f"\n# {MARK}: prices come from the pricing service (utils/pricing_budgets.py).\n",
    ),
    Region(
        start="def calculate_message_cost(",
        end="def check_user_budget(",
        expect=("pricing_table.get_by_ids", "return (0.0, 0.0, 0.0)"),
        new='''def calculate_message_cost(
    model_id: str,
    input_tokens: int,
    output_tokens: int,
    db=None,
    usage: Optional[dict] = None,
    usage_format: Optional[str] = None,
) -> tuple[float, float, float]:
    """(input, output, total) USD as the pricing service's /estimate computes them.

    With ``usage`` (the provider's usage object as its API returned it: OpenAI Chat
    Completions or Responses, Anthropic, Gemini; ``usage_format`` names it when its shape is
    ambiguous) the message is billed as the provider bills it: cached input at the cache price,
    cache writes, reasoning as output, web searches and request fees, long-context tiers (POST
    /estimate's rules); the token counts are then not used. Without it, input and output tokens
    at their prices (GET /estimate). Local and free models cost 0 because the service says so.
    An unknown price is never 0: it raises UnknownPrice (PRICING_UNKNOWN_PRICE_POLICY=refuse,
    the default) or is charged at the operator's ceiling (=ceiling), and is counted either way.
    ``db`` is kept for the callers.
    """
    if usage is not None:
        return message_cost_from_usage(model_id, usage, usage_format)
    return message_cost(model_id, input_tokens, output_tokens)


''',
    ),
    Region(
        start="def check_user_budget(",
        end="def debit_user_budget(",
        expect=("Budgets.get_budget_by_user_id", '"Budget exhausted"'),
        new='''def check_user_budget(user_id: str, db=None, model_id: Optional[str] = None) -> None:
    """
    Raises HTTPException(402) if user has a hard-limit budget with balance <= 0, or, when
    ``model_id`` is given, if that model's price is unknown and the policy refuses it
    (checked before the call: an unknown price is never billed as free).
    No-ops if user has no budget row.
    """
    budget = Budgets.get_budget_by_user_id(user_id, db=db)
    if budget is None:
        return

    if budget.hard_limit and budget.current_balance <= 0:
        raise HTTPException(status_code=402, detail="Budget exhausted")

    if model_id is not None:
        try:
            budget_prices().check_billable(model_id)
        except UnknownPrice as exc:
            raise HTTPException(
                status_code=402,
                detail=f"Precio desconocido para {model_id}: no se puede cobrar ({exc.reason})",
            ) from exc


def check_model_billable(user_id: str, model_id: str, db=None) -> None:
    """
    Raises HTTPException(402) before a call to a model whose price is unknown, for a user with
    a budget, when the policy refuses unknown prices (PRICING_UNKNOWN_PRICE_POLICY=refuse).
    """
    if Budgets.get_budget_by_user_id(user_id, db=db) is None:
        return
    try:
        budget_prices().check_billable(model_id)
    except UnknownPrice as exc:
        raise HTTPException(
            status_code=402,
            detail=f"Precio desconocido para {model_id}: no se puede cobrar ({exc.reason})",
        ) from exc


''',
    ),
)

OPENAI = "backend/open_webui/routers/openai.py"
# After the chat route resolved the model it will call (a custom model's base model included):
# refuse it there when its price is unknown, before any token is spent.
_RESOLVED = (
    '    model = models.get(model_id)\n\n    if model:\n        idx = model["urlIdx"]\n'
    "    else:\n        raise HTTPException(\n            status_code=404,\n"
    '            detail="Model not found",\n        )\n'
)
OPENAI_EDITS: tuple[Edit, ...] = (
    Replace(
        _RESOLVED,
        _RESOLVED
        + f"\n    # {MARK}: a model of unknown price is refused before the call when the\n"
        "    # operator's policy says so (PRICING_UNKNOWN_PRICE_POLICY), never billed as free.\n"
        "    from open_webui.utils.budget import check_model_billable\n\n"
        "    check_model_billable(user.id, model_id)\n",
    ),
)


# -- frontend -------------------------------------------------------------------------------

SELECTOR = "src/lib/components/chat/ModelSelector/Selector.svelte"
MODEL_ITEM = "src/lib/components/chat/ModelSelector/ModelItem.svelte"
SERVICE_SELECTOR = "src/lib/apis/pricing/serviceSelector.ts"

SELECTOR_EDITS: tuple[Edit, ...] = (
    Replace(
        "\timport { getPricingModels, refreshPricingModels } from '$lib/apis/pricing';\n",
        "\timport { WEBUI_API_BASE_URL } from '$lib/constants';\n"
        "\t// cognitia-pricing kit: the selector shows the pricing service's view as it"
        " renders it.\n"
        "\timport {\n\t\tSelectorIndex,\n\t\tfetchSelectorView,\n\t\tpricingNote\n"
        "\t} from '$lib/apis/pricing/serviceSelector';\n",
    ),
    Replace(
        "\tconst curatedModelIds = new Set<string>("
        "Object.values(CURATED_MODELS_BY_CATEGORY).flat());\n",
        "\tlet curatedIndex = SelectorIndex.empty('curated'); // the service's curated view\n"
        "\tlet allIndex = SelectorIndex.empty('all'); // its view=all (\"Ver todos\", search)\n"
        "\t$: activeIndex = !showAllModels && !searchValue ? curatedIndex : allIndex;\n",
    ),
    Replace(
        "\t\treturn categorizeModel(model).categories.includes('specials');\n",
        "\t\treturn allIndex.isSpecial(getItemId(model)); // the service's `special`\n",
    ),
    Region(
        start="\tconst loadPricing = async () => {\n",
        end="\t// Category grouping state\n",
        expect=("getPricingModels(localStorage.token)", "refreshPricingModels("),
        new="""\tconst loadPricing = async () => {
\t\tif (pricingLoading) return;
\t\tpricingLoading = true;
\t\ttry {
\t\t\t// Both views through Cognitia's backend; the browser revalidates them by ETag.
\t\t\tconst [curated, all] = await Promise.all([
\t\t\t\tfetchSelectorView(WEBUI_API_BASE_URL, localStorage.token, 'curated'),
\t\t\t\tfetchSelectorView(WEBUI_API_BASE_URL, localStorage.token, 'all')
\t\t\t]);
\t\t\tcuratedIndex = new SelectorIndex(curated);
\t\t\tallIndex = new SelectorIndex(all);
\t\t} catch (error) {
\t\t\tconsole.debug('Failed to load the pricing service view', error);
\t\t} finally {
\t\t\tpricingLoading = false;
\t\t}
\t};

\t// Load the views when the selector opens (onOpenChange runs before `show` is set).
\t$: if (show && !allIndex.loaded) loadPricing();

\t// The pricing service refreshes itself: nothing to ask for missing ids.
\tconst refreshMissingPricing = async (_modelIds: string[]) => {};

""",
    ),
    Region(
        start="\t$: categoryPills = MODEL_CATEGORIES.filter(\n",
        end="\t$: if (!showAllModels && selectedCategoryFilter === 'specials') {\n",
        expect=("c.id !== 'favorites'",),
        new="\t$: categoryPills = activeIndex.categories(); // the service's, in its order\n\n",
    ),
    Replace(
        "groupModelsByCategory(filteredItems, pinnedModels)",
        "activeIndex.group(filteredItems, pinnedModels)",
    ),
    Replace(
        "\tconst filterByCategory = (item: any, categoryFilter: string, pinned: string[]) => {\n",
        "\tconst filterByCategory = (\n\t\titem: any,\n\t\tcategoryFilter: string,\n"
        "\t\tpinned: string[],\n\t\tindex: SelectorIndex\n\t) => {\n",
    ),
    Replace(
        "\t\tconst cats = categorizeModel(item.model ?? item);\n"
        "\t\treturn cats.categories.includes(categoryFilter);\n",
        "\t\treturn index.inCategory(getItemId(item), categoryFilter);\n",
    ),
    Replace(
        "filterByCategory(item, selectedCategoryFilter, pinnedModels))",
        "filterByCategory(item, selectedCategoryFilter, pinnedModels, activeIndex))",
    ),
    Replace(
        "\t\t\tif (!curatedModelIds.has(itemId)) return false;\n",
        "\t\t\tif (!curatedIndex.has(itemId)) return false;\n",
    ),
    Replace("{$i18n.t('Pricing note')}", "{pricingNote(allIndex)}"),
    Region(
        start="\t\t\t\t\t\t\t\t{@const categoryModels = items.filter((item) => {\n",
        end="\t\t\t\t\t\t\t\t{#if categoryModels.length > 0}\n",
        expect=("return cats.categories.includes(category.id);",),
        new="\t\t\t\t\t\t\t\t{@const categoryModels = items.filter((item) =>\n"
        "\t\t\t\t\t\t\t\t\tactiveIndex.inCategory(getItemId(item), category.id)\n"
        "\t\t\t\t\t\t\t\t)}\n",
    ),
    Replace("{category.name.split(' ')[0]}", "{category.name}"),
    Replace(
        "{@const category = getCategoryById(categoryId)}",
        "{@const category = activeIndex.category(categoryId)}",
    ),
    Replace("pricing={pricingMap[item.value]}", "pricing={allIndex.itemFor(item.value)}", count=2),
)

MODEL_ITEM_EDITS: tuple[Edit, ...] = (
    Replace(
        "\timport { getModelBadges } from '$lib/utils/modelUtils';\n",
        "\timport { getModelBadges } from '$lib/utils/modelUtils';\n"
        "\t// cognitia-pricing kit: the price line is the pricing service's, as it renders it.\n"
        "\timport { servicePrice, type ServiceItem } from '$lib/apis/pricing/serviceSelector';\n",
    ),
    Replace(
        "\texport let pricing: { input_usd_per_million?: number; output_usd_per_million?: number } "
        "| null =\n\t\tnull;\n",
        "\texport let pricing: ServiceItem | null = null; // the service's item for this row\n",
    ),
    Region(
        start="\tconst USD_TO_COP = 4000;\n",
        end="</script>\n",
        expect=("usdPerMillionToCopPer10k", "isLocalModel"),
        new="\tconst isCognitiaLocal = (modelId: string) =>"
        " modelId.startsWith('cognitia_llm_');\n\n"
        "\t$: priceView = servicePrice(pricing, item?.value ?? item?.model?.id ?? '');\n",
    ),
    Region(
        start="\t\t{#if isLocalModel}\n",
        end='\t<div class="ml-auto pl-2 pr-1 flex items-center gap-1.5 shrink-0">\n',
        expect=("{$i18n.t('No price yet')}", "copFormatter.format(pricingInputCop"),
        new="""\t\t<Tooltip content={priceView.tooltip} placement="top-start">
\t\t\t<div
\t\t\t\tclass="text-[11px] text-gray-500 dark:text-gray-400"
\t\t\t\tdata-price-status={priceView.status}
\t\t\t\tdata-price-reason={priceView.reason ?? ''}
\t\t\t>
\t\t\t\t{priceView.text}
\t\t\t</div>
\t\t</Tooltip>
\t</div>

""",
    ),
)


def _plan_file(
    plan: Plan, root: Path, relative: str, edits: tuple[Edit, ...], must: tuple[str, ...] = ()
) -> None:
    path = root / relative
    text = path.read_text(encoding="utf-8")
    for needed in must:
        if needed not in text:
            raise Refused(f"{relative}: {_show(needed)} not found")
    changed = False
    for number, edit in enumerate(edits, 1):
        text, did = _edit(text, edit, f"{relative} (edit {number})")
        changed = changed or did
    if changed:
        plan.writes[path] = text
        plan.changed.append(relative)
    else:
        plan.done.append(relative)


def _plan_copy(
    plan: Plan, root: Path, relative: str, content: str, theirs: tuple[str, ...] = ()
) -> None:
    """Write ``content`` at ``relative``; an existing file must be the kit's or look like
    Cognitia's original (every string of ``theirs``)."""
    path = root / relative
    if path.exists():
        current = path.read_text(encoding="utf-8")
        if current == content:
            plan.done.append(relative)
            return
        if not theirs or not all(marker in current for marker in theirs):
            raise Refused(
                f"{relative}: neither Cognitia's original nor the kit's "
                f"(expected {', '.join(_show(t) for t in theirs) or 'no file'})"
            )
    elif not path.parent.is_dir():
        raise Refused(f"{relative}: its directory {path.parent.name}/ does not exist")
    plan.writes[path] = content
    plan.changed.append(relative)


def plan(root: Path) -> Plan:
    """Everything the kit would write, checked; raises Refused before anything is written."""
    if not (root / "backend" / "open_webui").is_dir() or not (root / "src" / "lib").is_dir():
        raise Refused(f"{root}: not a Cognitia checkout (no backend/open_webui/ or src/lib/)")
    result = Plan()
    _plan_copy(
        result,
        root,
        ROUTER,
        _kit_file("pricing.py"),
        theirs=("router = APIRouter()", "refresh_missing_or_expired"),
    )
    _plan_copy(result, root, BUDGET_PRICES, _kit_file("budget_prices.py"))
    _plan_file(result, root, MAIN, MAIN_EDITS, must=(MAIN_MOUNT,))
    _plan_copy(
        result,
        root,
        TEST_PRICING,
        _kit_file("cognitia_tests/test_pricing.py"),
        theirs=("class TestPricing", "/refresh"),
    )
    if (root / BUDGET).exists():
        _plan_file(result, root, BUDGET, BUDGET_EDITS)
        _plan_file(result, root, OPENAI, OPENAI_EDITS)
        _plan_copy(
            result,
            root,
            TEST_BUDGET,
            _kit_file("cognitia_tests/test_budget.py"),
            theirs=("calculate_message_cost", "open_webui.utils.budget"),
        )
    else:
        result.skipped.append(
            f"{BUDGET}, {TEST_BUDGET} and the budget check in {OPENAI}: this checkout has no "
            "budgets module (added at commit "
            "1aff7b41); utils/pricing_budgets.py is installed for when it comes"
        )
    _plan_copy(result, root, SERVICE_SELECTOR, _kit_file("frontend/src/serviceSelector.ts"))
    _plan_file(result, root, SELECTOR, SELECTOR_EDITS)
    _plan_file(result, root, MODEL_ITEM, MODEL_ITEM_EDITS)
    return result


def apply(root: Path) -> Plan:
    result = plan(root)
    for path, text in result.writes.items():
        path.write_text(text, encoding="utf-8")
    return result


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print("usage: python apply.py PATH_TO_COGNITIA", file=sys.stderr)
        return 2
    root = Path(argv[0]).resolve()
    try:
        result = apply(root)
    except Refused as exc:
        print(f"refused, nothing written: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"refused, nothing written: {exc}", file=sys.stderr)
        return 1
    for relative in result.changed:
        print(f"written: {relative}")
    for relative in result.done:
        print(f"unchanged (already applied): {relative}")
    for reason in result.skipped:
        print(f"skipped: {reason}")
    if not result.changed:
        print("already applied: nothing to change")
    print("next: set PRICING_SERVICE_URL (and PRICING_UNKNOWN_PRICE_POLICY), then deploy")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
