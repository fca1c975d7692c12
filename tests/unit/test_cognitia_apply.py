"""integrations/cognitia/apply.py on a stand-in Cognitia checkout (CI has no copy of Cognitia).

The stand-in files hold exactly the anchors the kit's edits name (built from apply.py's own edit
lists) plus a working budgets module of our own in Cognitia's shape, so after applying, the
Cognitia tests the kit ships (cognitia_tests/) run there against the kit's real code.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

import pytest

from integrations.cognitia import apply as kit

APPLY = Path(kit.__file__)

BUDGET_STANDIN = """import logging
from typing import Optional

from fastapi import HTTPException

from open_webui.models.budgets import Budgets
from open_webui.models.pricing import PricingTable

log = logging.getLogger(__name__)

pricing_table = PricingTable()


def calculate_message_cost(model_id, input_tokens, output_tokens, db=None):
    rows = pricing_table.get_by_ids([model_id], db=db)
    if not rows:
        return (0.0, 0.0, 0.0)
    raise AssertionError("the stand-in table is empty")


def check_user_budget(user_id: str, db=None) -> None:
    budget = Budgets.get_budget_by_user_id(user_id, db=db)
    if budget is None:
        return
    if budget.hard_limit and budget.current_balance <= 0:
        raise HTTPException(status_code=402, detail="Budget exhausted")


def debit_user_budget(
    user_id, model_id, chat_id, message_id, input_tokens, output_tokens, db=None
) -> Optional[float]:
    try:
        input_cost, output_cost, total_cost = calculate_message_cost(
            model_id, input_tokens, output_tokens, db=db
        )
        return Budgets.debit_and_record(
            user_id=user_id,
            chat_id=chat_id,
            message_id=message_id,
            model_id=model_id,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            input_cost_usd=input_cost,
            output_cost_usd=output_cost,
            total_cost_usd=total_cost,
            db=db,
        )
    except Exception:
        log.exception("Failed to debit budget for user=%s", user_id)
        return None
"""

STUBS = {
    "backend/open_webui/__init__.py": "",
    "backend/open_webui/models/__init__.py": "",
    "backend/open_webui/models/budgets.py": "class _Budgets:\n"
    "    def get_budget_by_user_id(self, user_id, db=None):\n        return None\n\n"
    "    def debit_and_record(self, **kwargs):\n        return None\n\n\nBudgets = _Budgets()\n",
    "backend/open_webui/models/pricing.py": "class PricingTable:\n"
    "    def get_by_ids(self, ids, db=None):\n        return []\n",
    "backend/open_webui/routers/__init__.py": "",
    "backend/open_webui/utils/__init__.py": "",
    "backend/open_webui/utils/auth.py": "def get_verified_user():\n"
    "    raise AssertionError('overridden by the tests')\n",
    "backend/open_webui/routers/pricing.py": "router = APIRouter()\n"
    "# refresh_missing_or_expired: the old router's MCP refresh\n",
    "backend/open_webui/main.py": "".join(
        edit.old for edit in kit.MAIN_EDITS if isinstance(edit, kit.Replace)
    )
    + kit.MAIN_MOUNT
    + ', tags=["pricing"])\n',
    "backend/open_webui/test/apps/webui/routers/test_pricing.py": "class TestPricing:\n"
    "    path = '/refresh'\n",
    "backend/open_webui/test/utils/test_budget.py": "from open_webui.utils.budget import "
    "calculate_message_cost\n",
}


def _standin(edits: tuple[kit.Edit, ...]) -> str:
    """A file holding every anchor of ``edits`` once, in order."""
    parts: list[str] = []
    for edit in edits:
        if isinstance(edit, kit.Replace):
            parts.extend([edit.old, "\n"] * edit.count)
        else:
            parts.extend([edit.start, *(f"{e}\n" for e in edit.expect), edit.end, "\n"])
    return "".join(parts)


def _checkout(root: Path, *, budgets: bool = True) -> Path:
    files = dict(STUBS)
    files[kit.SELECTOR] = _standin(kit.SELECTOR_EDITS)
    files[kit.MODEL_ITEM] = _standin(kit.MODEL_ITEM_EDITS)
    files["src/lib/apis/pricing/index.ts"] = "// the old pricing client\n"
    if budgets:
        files[kit.BUDGET] = BUDGET_STANDIN
        files[kit.OPENAI] = "async def generate_chat_completion(request, form_data, user):\n" + (
            "".join(edit.old for edit in kit.OPENAI_EDITS if isinstance(edit, kit.Replace))
        )
    else:
        del files["backend/open_webui/test/utils/test_budget.py"]
    for relative, text in files.items():
        path = root / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return root


def _tree(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file() and "__pycache__" not in p.parts
    }


def _run(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(APPLY), str(root)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_applies_then_says_already_applied(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    first = _run(root)
    assert first.returncode == 0, first.stderr
    for relative in (
        kit.ROUTER,
        kit.BUDGET_PRICES,
        kit.BUDGET,
        kit.OPENAI,
        kit.SELECTOR,
        kit.MODEL_ITEM,
    ):
        assert f"written: {relative}" in first.stdout
    assert (root / kit.ROUTER).read_text() == (APPLY.parent / "pricing.py").read_text()
    assert (root / kit.SERVICE_SELECTOR).is_file()
    selector = (root / kit.SELECTOR).read_text()
    assert "curatedModelIds" not in selector
    assert "groupModelsByCategory(filteredItems" not in selector
    assert "activeIndex.group(filteredItems, pinnedModels)" in selector
    assert "pricingMap[item.value]" not in selector
    item = (root / kit.MODEL_ITEM).read_text()
    assert "USD_TO_COP" not in item
    assert "servicePrice(pricing" in item
    openai = (root / kit.OPENAI).read_text()
    assert "    check_model_billable(user.id, model_id)\n" in openai
    compile(openai, kit.OPENAI, "exec")
    main = (root / kit.MAIN).read_text()
    assert "pricing_refresh_loop" not in main
    assert kit.MAIN_MOUNT in main
    before = _tree(root)
    second = _run(root)
    assert second.returncode == 0, second.stderr
    assert "already applied: nothing to change" in second.stdout
    assert "written:" not in second.stdout
    assert _tree(root) == before


def test_refuses_and_writes_nothing_when_an_anchor_is_missing(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    item = root / kit.MODEL_ITEM
    item.write_text(item.read_text().replace("\tconst USD_TO_COP = 4000;\n", ""))
    before = _tree(root)
    refused = _run(root)
    assert refused.returncode == 1
    assert "refused, nothing written" in refused.stderr
    assert kit.MODEL_ITEM in refused.stderr
    assert "const USD_TO_COP = 4000;" in refused.stderr
    assert _tree(root) == before  # the router and budget, planned earlier, were not written


def test_refuses_a_router_that_is_neither_theirs_nor_ours(tmp_path: Path) -> None:
    root = _checkout(tmp_path)
    (root / kit.ROUTER).write_text("# someone else's router\n")
    before = _tree(root)
    refused = _run(root)
    assert refused.returncode == 1
    assert kit.ROUTER in refused.stderr
    assert _tree(root) == before


def test_without_budgets_module_says_what_it_skipped(tmp_path: Path) -> None:
    root = _checkout(tmp_path, budgets=False)
    result = _run(root)
    assert result.returncode == 0, result.stderr
    assert f"skipped: {kit.BUDGET}" in result.stdout
    assert not (root / kit.BUDGET).exists()
    assert not (root / kit.TEST_BUDGET).exists()
    assert not (root / kit.OPENAI).exists()
    assert (root / kit.BUDGET_PRICES).is_file()


def test_not_a_checkout_is_refused(tmp_path: Path) -> None:
    result = _run(tmp_path)
    assert (result.returncode, tmp_path.name in result.stderr) == (1, True)
    assert "not a Cognitia checkout" in result.stderr
    usage = subprocess.run(
        [sys.executable, str(APPLY)], capture_output=True, text=True, timeout=60, check=False
    )
    assert usage.returncode == 2


@pytest.mark.parametrize("test_file", [kit.TEST_BUDGET, kit.TEST_PRICING])
def test_shipped_cognitia_tests_pass_on_the_applied_checkout(
    tmp_path: Path, test_file: str
) -> None:
    root = _checkout(tmp_path / "cognitia")
    assert _run(root).returncode == 0
    (root / "pytest.ini").write_text("[pytest]\n")  # not this repository's settings
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file],
        cwd=root,
        env={"PYTHONPATH": str(root / "backend"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed" in result.stdout
    assert "failed" not in result.stdout
