"""spelling.py: genai-prices' matching rules without its data agree with genai-prices itself."""

from __future__ import annotations

import gzip
import json

from hypothesis import given
from hypothesis import strategies as st

from pricing_service.second_source import second_source
from pricing_service.spelling import RULES_FILE, export_rules, spelling_rules
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
