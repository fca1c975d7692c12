"""`catalog suggest --write`: the suggestion stored in categories.toml, its comments kept."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import pytest

from pricing_service.catalog import MAX_MODELS_PER_CATEGORY, load_catalog
from pricing_service.catalog_edit import rewrite_curated
from pricing_service.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def catalog_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    directory = tmp_path / "catalog"
    shutil.copytree(ROOT / "catalog", directory)
    monkeypatch.setenv("PRICING_CATALOG_DIR", str(directory))
    # No snapshot in this database: the command ranks the bundled seed (the recording).
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'empty.sqlite'}")
    return directory


def comments(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.lstrip().startswith("#")]


def test_write_changes_only_the_curated_lists(
    catalog_copy: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_copy / "categories.toml"
    before_text = path.read_text()
    before = tomllib.loads(before_text)
    others = {p.name: p.read_text() for p in catalog_copy.iterdir() if p != path}

    assert main(["catalog", "suggest", "--write"]) == 0
    out = capsys.readouterr().out
    assert "writes categories.toml" in out
    assert f"wrote {path}" in out

    after_text = path.read_text()
    after = tomllib.loads(after_text)
    assert comments(after_text) == comments(before_text)
    assert after["category"] == before["category"]
    assert after["weights"] == before["weights"]
    assert {p.name: p.read_text() for p in catalog_copy.iterdir() if p != path} == others
    changed = {c for c in before["curated"] if after["curated"][c] != before["curated"][c]}
    assert changed  # the recording suggests something for the hand-picked lists
    # Categories without [weights] are never touched.
    assert not changed & {"local", "specials"}
    for category_id in changed:
        new = after["curated"][category_id]
        assert 1 <= len(new) <= MAX_MODELS_PER_CATEGORY
        assert len(set(new)) == len(new)
        # Local ids (which the ranking cannot judge) stay where the curator put them.
        old_local = [m for m in before["curated"][category_id] if "zerogpu" in m]
        assert [m for m in new if "zerogpu" in m] == old_local
    assert f'{sorted(changed)[0]} = [\n    "' in after_text  # one id a line, as written by hand

    # The result is a valid catalog, and the suggestion now matches it.
    assert main(["catalog", "check"]) == 0
    assert "valid" in capsys.readouterr().out
    load_catalog(catalog_copy)
    assert main(["catalog", "suggest", "--write"]) == 0
    assert "nothing written" in capsys.readouterr().out
    assert path.read_text() == after_text


def test_write_one_category(catalog_copy: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = catalog_copy / "categories.toml"
    before = tomllib.loads(path.read_text())
    assert main(["catalog", "suggest", "--category", "coding", "--write"]) == 0
    capsys.readouterr()
    after = tomllib.loads(path.read_text())
    assert after["curated"]["coding"] != before["curated"]["coding"]
    rest = {k: v for k, v in after["curated"].items() if k != "coding"}
    assert rest == {k: v for k, v in before["curated"].items() if k != "coding"}
    assert "cognitia_llm_zerogpu.mistral-7b" in after["curated"]["coding"]


def test_an_invalid_result_is_not_kept(
    catalog_copy: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    path = catalog_copy / "categories.toml"
    before = path.read_text()
    monkeypatch.setattr(
        "pricing_service.suggest.curated_after", lambda category, result: ("Bad Id!",)
    )
    assert main(["catalog", "suggest", "--category", "coding", "--write"]) == 2
    assert "not written" in capsys.readouterr().err
    assert path.read_text() == before
    assert not list(catalog_copy.glob(".*.tmp"))


def test_rewrite_keeps_comments_and_refuses_new_categories() -> None:
    text = '# head\n[curated]\n# about a\na = ["x"]  # trailing\nb = [\n    "y",\n]\n# tail\n'
    out = rewrite_curated(text, {"b": ["z", "w"]})
    assert out == text.replace('"y",', '"z",\n    "w",')
    with pytest.raises(ValueError, match="no list for 'c'"):
        rewrite_curated(text, {"c": ["x"]})
    with pytest.raises(ValueError, match=r"no \[curated\]"):
        rewrite_curated("[other]\n", {"a": ["x"]})
