"""spelling.py: genai-prices' matching rules without its data agree with genai-prices itself."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pricing_service.second_source import second_source
from pricing_service.spelling import RULES_FILE, SpellingRules, export_rules, spelling_rules
from tests.support.recording import normalized_recording

PRICES = normalized_recording().prices
IDS = sorted({p.model_id for p in PRICES})
SUFFIXES = ("", "-latest", "-preview", "-2024-08-06", "-20240806", "-20241399", ":free", "-0")


def test_the_bundled_rules_are_the_installed_packages() -> None:
    # Fails after a genai-prices upgrade until scripts/build_spelling_rules.py is run.
    assert json.loads(gzip.decompress(RULES_FILE.read_bytes())) == json.loads(
        json.dumps(export_rules())
    )


def test_every_listed_model_and_its_spellings_match_as_genai_prices_matches_them() -> None:
    rules, source = spelling_rules(), second_source()
    checked = 0
    for price in PRICES:
        for suffix in SUFFIXES:
            for spelling in (
                price.model_id + suffix,
                (price.model_id + suffix).upper(),
                f"{price.provider}/{price.model_id}{suffix}",
            ):
                assert rules.match(spelling) == source.match(spelling), spelling
                checked += 1
        assert rules.model_ref(price.provider, price.model_id) == source.model_ref(
            price.provider, price.model_id
        ), price.model_id
    # Not vacuous: most of the recording's spellings are known to genai-prices.
    known = sum(1 for model_id in IDS if rules.match(model_id) is not None)
    assert known > len(IDS) // 4, known
    assert checked == len(PRICES) * len(SUFFIXES) * 3
    assert rules.match("gpt-4-1106-preview") == ("openai", "gpt-4-turbo")


@given(
    st.sampled_from(IDS),
    st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789-.:/", max_size=12),
    st.booleans(),
)
def test_any_spelling_matches_as_genai_prices_matches_it(
    model_id: str, noise: str, before: bool
) -> None:
    spelling = noise + model_id if before else model_id + noise
    assert spelling_rules().match(spelling) == second_source().match(spelling)


def _rules(*models: tuple[str, dict[str, object]]) -> SpellingRules:
    return SpellingRules(
        {
            "version": "t",
            "providers": [
                {"id": "openai", "model_match": {"starts_with": "GPT"}, "models": list(models)}
            ],
        }
    )


def test_each_kind_of_clause_is_evaluated_as_genai_prices_evaluates_it() -> None:
    rules = _rules(
        ("by-equals", {"equals": "GPT-A"}),
        ("by-start", {"starts_with": "gpt-b"}),
        ("by-end", {"and": [{"starts_with": "gpt"}, {"ends_with": "-C"}]}),
        ("by-contains", {"or": [{"equals": "nope"}, {"contains": "-D-"}]}),
        ("by-regex", {"regex": r"^gpt-e\d$"}),
    )
    assert rules.match("gpt-a") == ("openai", "by-equals")
    assert rules.match("GPT-B-2") == ("openai", "by-start")
    assert rules.match("gpt-x-c") == ("openai", "by-end")
    assert rules.match("gpt-x-d-y") == ("openai", "by-contains")
    assert rules.match("gpt-e7") == ("openai", "by-regex")  # regexes see the lowercased ref
    assert rules.match("gpt-z") is None
    assert rules.match("claude-a") is None  # the provider's model_match


def test_the_rules_are_held_as_tuples_with_equal_strings_shared() -> None:
    # Every serving worker holds them: one dict per clause held 1.5 MB, tuples about 0.7 MB.
    rules = _rules(("gpt-a", {"or": [{"equals": "gpt-a"}, {"equals": "GPT-A"}]}))
    model_match, models = rules._providers["openai"]
    assert model_match == ("starts_with", "gpt")
    ((model_id, clause),) = models
    assert clause == ("or", (("equals", "gpt-a"), ("equals", "gpt-a")))
    assert clause[1][0][1] is clause[1][1][1] is model_id


def test_an_unknown_kind_of_clause_is_refused_when_the_rules_are_read() -> None:
    with pytest.raises(ValueError, match="unknown clause 'sounds_like'"):
        _rules(("x", {"sounds_like": "gpt"}))
