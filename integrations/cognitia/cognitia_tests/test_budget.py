"""Cognitia's budget functions with prices from the cognitia-pricing service.

apply.py installs this file as backend/open_webui/test/utils/test_budget.py (checkouts with the
budgets module). ``calculate_message_cost`` no longer reads the model_pricing table: it asks the
kit's price source (utils/pricing_budgets.py), here fed by an httpx MockTransport that answers as
the service does. What changed from the table: an unknown model is refused or charged at the
operator's ceiling, never (0, 0, 0); a local model costs 0 because the service says "local".
"""

import json
from decimal import Decimal
from unittest.mock import patch

import httpx
import pytest
from fastapi import HTTPException
from open_webui.utils import pricing_budgets
from open_webui.utils.budget import (
    calculate_message_cost,
    check_model_billable,
    check_user_budget,
    debit_user_budget,
)
from open_webui.utils.pricing_budgets import BudgetPrices, UnknownPolicy, UnknownPrice


def _price(price_in, price_out, status):
    return {
        "input_usd_per_million": price_in,
        "output_usd_per_million": price_out,
        "price_status": status,
        "label": status,
    }


PRICES = {
    "prices": {
        "gpt-4o": {**_price(2.5, 10, "priced"), "cache_read_usd_per_million": 1.25},
        "openai/gpt-4o": _price(2.5, 10, "priced"),
        "omni-moderation-latest": _price(0, 0, "free"),
        "gpt-4o-2024-05-13": _price(None, None, "unknown"),
    }
}
# Ids the map lacks, as the service resolves them with ?ids= (a local prefix).
RESOLVED = {"cognitia_llm_zerogpu.smollm2": ("local", 0, 0)}


def _service(request: httpx.Request) -> httpx.Response:
    if request.url.path == "/api/v1/pricing/prices":
        return httpx.Response(200, content=json.dumps(PRICES), headers={"etag": '"m1"'})
    if request.url.path == "/api/v1/pricing/models":
        model_id = request.url.params["ids"]
        status, price_in, price_out = RESOLVED.get(model_id, ("unknown", None, None))
        item = {
            "model_id": model_id,
            "price_status": status,
            "input_usd_per_million": price_in,
            "output_usd_per_million": price_out,
            "price_label": status,
        }
        return httpx.Response(200, json={"items": [item]})
    return httpx.Response(404)


def _source(policy=None):
    return BudgetPrices(
        "http://pricing.test",
        policy=policy,
        transport=httpx.MockTransport(_service),
        background=False,
    )


@pytest.fixture(autouse=True)
def prices():
    source = _source()
    pricing_budgets.set_budget_prices(source)
    yield source
    pricing_budgets.set_budget_prices(None)


class MockBudget:
    def __init__(self, user_id="user-1", current_balance=5.0, hard_limit=True, initial_budget=5.0):
        self.user_id = user_id
        self.current_balance = current_balance
        self.hard_limit = hard_limit
        self.initial_budget = initial_budget


class TestCalculateMessageCost:
    def test_known_model_returns_correct_cost(self):
        assert calculate_message_cost("gpt-4o", 1000, 500) == (0.0025, 0.005, 0.0075)

    def test_provider_prefixed_id_has_the_same_price(self):
        assert calculate_message_cost("openai/gpt-4o", 1000, 500) == (0.0025, 0.005, 0.0075)

    def test_zero_tokens_returns_zeros(self):
        assert calculate_message_cost("gpt-4o", 0, 0) == (0.0, 0.0, 0.0)

    def test_large_token_count(self):
        assert calculate_message_cost("gpt-4o", 1_000_000, 1_000_000) == (2.5, 10.0, 12.5)

    def test_local_and_free_cost_zero_by_their_status(self, prices):
        assert calculate_message_cost("cognitia_llm_zerogpu.smollm2", 5000, 5000) == (0, 0, 0)
        assert calculate_message_cost("omni-moderation-latest", 5000, 5000) == (0, 0, 0)
        assert prices.unknown_counts == {}

    def test_unknown_model_is_refused_never_free(self, prices):
        for model_id in ("unknown-model", "gpt-4o-2024-05-13"):
            with pytest.raises(UnknownPrice):
                calculate_message_cost(model_id, 1000, 500)
        assert prices.unknown_counts == {"unknown-model": 1, "gpt-4o-2024-05-13": 1}

    def test_unknown_model_charged_at_the_ceiling(self):
        source = _source(UnknownPolicy("ceiling", Decimal(75), Decimal(150)))
        pricing_budgets.set_budget_prices(source)
        assert calculate_message_cost("unknown-model", 1000, 500) == (0.075, 0.075, 0.15)
        assert source.unknown_counts == {"unknown-model": 1}


# gpt-4o: input 2.5, cached input 1.25, output 10 USD per million.
CACHED_USAGE = {
    "prompt_tokens": 2006,
    "completion_tokens": 300,
    "prompt_tokens_details": {"cached_tokens": 1920},
    "completion_tokens_details": {"reasoning_tokens": 0},
}


class TestCalculateMessageCostFromUsage:
    def test_the_usage_object_bills_cached_tokens_at_the_cache_price(self):
        # 86 uncached x 2.5 = 0.000215 + 1920 cached x 1.25 = 0.0024 -> input 0.002615 USD;
        # output 300 x 10 = 0.003; total 0.005615 (the token counts are not used).
        assert calculate_message_cost("gpt-4o", 0, 0, usage=CACHED_USAGE) == (
            0.002615,
            0.003,
            0.005615,
        )
        # The same counts without the usage object bill every prompt token at the input price.
        assert calculate_message_cost("gpt-4o", 2006, 300) == (0.005015, 0.003, 0.008015)

    def test_reasoning_is_output_and_an_unknown_cache_price_is_refused(self, prices):
        # 100 x 2.5 = 0.00025; 500 completion tokens (400 of them reasoning) x 10 = 0.005.
        reasoning = {
            "prompt_tokens": 100,
            "completion_tokens": 500,
            "completion_tokens_details": {"reasoning_tokens": 400},
        }
        assert calculate_message_cost("openai/gpt-4o", 0, 0, usage=reasoning) == (
            0.00025,
            0.005,
            0.00525,
        )
        # openai/gpt-4o's map entry states no cache price: cached tokens are not billed as input.
        with pytest.raises(UnknownPrice, match="cache_read"):
            calculate_message_cost("openai/gpt-4o", 0, 0, usage=CACHED_USAGE)
        assert prices.unknown_counts == {"openai/gpt-4o": 1}


class TestCheckUserBudget:
    @patch("open_webui.utils.budget.Budgets")
    def test_raises_402_when_balance_zero_and_hard_limit(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=0.0)
        with pytest.raises(HTTPException) as exc_info:
            check_user_budget("user-1")
        assert exc_info.value.status_code == 402
        assert exc_info.value.detail == "Budget exhausted"

    @patch("open_webui.utils.budget.Budgets")
    def test_raises_402_when_balance_negative(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=-0.5)
        with pytest.raises(HTTPException) as exc_info:
            check_user_budget("user-1")
        assert exc_info.value.status_code == 402

    @patch("open_webui.utils.budget.Budgets")
    def test_does_not_raise_when_no_budget_row(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = None
        assert check_user_budget("user-1", model_id="unknown-model") is None

    @patch("open_webui.utils.budget.Budgets")
    def test_does_not_raise_when_hard_limit_false(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(
            current_balance=0.0, hard_limit=False
        )
        assert check_user_budget("user-1") is None

    @patch("open_webui.utils.budget.Budgets")
    def test_does_not_raise_when_balance_positive(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=3.5)
        assert check_user_budget("user-1", model_id="gpt-4o") is None

    @patch("open_webui.utils.budget.Budgets")
    def test_refuses_a_model_of_unknown_price_before_the_call(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=3.5)
        with pytest.raises(HTTPException) as exc_info:
            check_user_budget("user-1", model_id="unknown-model")
        assert exc_info.value.status_code == 402
        assert "unknown-model" in exc_info.value.detail


class TestCheckModelBillable:
    @patch("open_webui.utils.budget.Budgets")
    def test_refuses_unknown_price_for_a_user_with_a_budget(self, mock_budgets, prices):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=3.5)
        with pytest.raises(HTTPException) as exc_info:
            check_model_billable("user-1", "gpt-4o-2024-05-13")
        assert exc_info.value.status_code == 402
        assert prices.unknown_counts == {"gpt-4o-2024-05-13": 1}

    @patch("open_webui.utils.budget.Budgets")
    def test_known_local_and_free_prices_pass(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=3.5)
        for model_id in ("gpt-4o", "cognitia_llm_zerogpu.smollm2", "omni-moderation-latest"):
            assert check_model_billable("user-1", model_id) is None

    @patch("open_webui.utils.budget.Budgets")
    def test_no_budget_no_refusal(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = None
        assert check_model_billable("user-1", "unknown-model") is None

    @patch("open_webui.utils.budget.Budgets")
    def test_ceiling_policy_lets_the_call_through(self, mock_budgets):
        mock_budgets.get_budget_by_user_id.return_value = MockBudget(current_balance=3.5)
        pricing_budgets.set_budget_prices(_source(UnknownPolicy("ceiling", Decimal(1), Decimal(2))))
        assert check_model_billable("user-1", "unknown-model") is None


class TestDebitUserBudget:
    @patch("open_webui.utils.budget.Budgets")
    def test_debits_the_services_price_and_returns_balance(self, mock_budgets):
        mock_budgets.debit_and_record.return_value = 4.9925
        new_balance = debit_user_budget(
            user_id="user-1",
            model_id="gpt-4o",
            chat_id="chat-1",
            message_id="msg-1",
            input_tokens=1000,
            output_tokens=500,
        )
        assert new_balance == 4.9925
        mock_budgets.debit_and_record.assert_called_once_with(
            user_id="user-1",
            chat_id="chat-1",
            message_id="msg-1",
            model_id="gpt-4o",
            input_tokens=1000,
            output_tokens=500,
            input_cost_usd=0.0025,
            output_cost_usd=0.005,
            total_cost_usd=0.0075,
            db=None,
        )

    @patch("open_webui.utils.budget.Budgets")
    def test_returns_none_when_no_budget(self, mock_budgets):
        mock_budgets.debit_and_record.return_value = None
        assert (
            debit_user_budget(
                user_id="user-1",
                model_id="gpt-4o",
                chat_id="chat-1",
                message_id="msg-1",
                input_tokens=1000,
                output_tokens=500,
            )
            is None
        )

    @patch("open_webui.utils.budget.Budgets")
    def test_unknown_price_is_not_recorded_as_free(self, mock_budgets, prices):
        result = debit_user_budget(
            user_id="user-1",
            model_id="unknown-model",
            chat_id="chat-1",
            message_id="msg-1",
            input_tokens=1000,
            output_tokens=500,
        )
        assert result is None
        mock_budgets.debit_and_record.assert_not_called()  # no 0-cost transaction
        assert prices.unknown_counts == {"unknown-model": 1}

    @patch("open_webui.utils.budget.Budgets")
    @patch("open_webui.utils.budget.calculate_message_cost")
    def test_catches_exception_and_returns_none(self, mock_calc, mock_budgets):
        mock_calc.side_effect = Exception("DB error")
        result = debit_user_budget(
            user_id="user-1",
            model_id="gpt-4o",
            chat_id="chat-1",
            message_id="msg-1",
            input_tokens=1000,
            output_tokens=500,
        )
        assert result is None
        mock_budgets.debit_and_record.assert_not_called()
