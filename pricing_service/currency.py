"""Decimal USD -> COP conversion and the one rounding rule for pesos; the rate is passed in.

The rounding rule (the only place the service rounds money):

* Numeric COP fields are exact: per million = USD per million × rate; per 10K = per million / 100;
  typical message (1,000 input + 500 output tokens) = (1000·in + 500·out) / 1,000,000 × rate.
  Only an amount with more than 6 decimal places is quantized, to 6 places with ROUND_HALF_EVEN,
  and a positive amount that would quantize to 0 becomes 0.000001 instead: a priced model never
  looks free. Trailing fractional zeros are dropped (``Decimal("1000")``, not ``"1000.00"``).
* Display strings are made from the exact amount (never from a quantized one, so nothing is
  rounded twice) with Colombian formatting: thousands ``.``, decimals ``,``, then `` COP``.
  At ≥ 100 pesos whole pesos (``"8.000 COP"``); below, at most 2 decimals without trailing zeros
  (``"10 COP"``, ``"0,5 COP"``, ``"12,35 COP"``); both ROUND_HALF_EVEN. A positive amount that
  would show as 0 shows ``"< 0,01 COP"``; exactly 0 shows ``"0 COP"``.
* Amounts and prices must be finite and non-negative and the rate finite and positive (a zero rate
  would show every model as free); anything else raises ValueError, a non-Decimal TypeError.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import (
    MAX_EMAX,
    MIN_EMIN,
    ROUND_HALF_EVEN,
    Context,
    Decimal,
    Inexact,
    InvalidOperation,
    localcontext,
)
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

MAX_PLACES = 6
TYPICAL_INPUT_TOKENS = 1000
TYPICAL_OUTPUT_TOKENS = 500
WHOLE_PESOS_FROM = Decimal(100)

_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)
_CENT = Decimal("0.01")
_ONE = Decimal(1)
_MILLION = Decimal(1_000_000)


@dataclass(frozen=True, slots=True)
class CopPrice:
    """One model's price in Colombian pesos, numeric (by the rule above) and as displayed."""

    input_cop_per_million: Decimal
    output_cop_per_million: Decimal
    input_cop_per_10k: Decimal
    output_cop_per_10k: Decimal
    typical_message_cop: Decimal  # 1,000 input + 500 output tokens
    input_cop_per_10k_display: str  # what a person sees: "100 COP", "0,5 COP", "< 0,01 COP"
    output_cop_per_10k_display: str
    typical_message_cop_display: str


def usd_to_cop(usd: Decimal, rate: Decimal) -> Decimal:
    """The exact product ``usd × rate``: no rounding, whatever the number of digits."""
    _check_amount("usd", usd)
    _check_rate(rate)
    with _wide(usd, rate, exact=True):
        return usd * rate


def cop_price(input_usd: Decimal, output_usd: Decimal, rate: Decimal) -> CopPrice:
    """Convert USD-per-million prices to the COP figures a selector shows."""
    _check_amount("input_usd", input_usd)
    _check_amount("output_usd", output_usd)
    _check_rate(rate)
    input_million = usd_to_cop(input_usd, rate)
    output_million = usd_to_cop(output_usd, rate)
    with _wide(input_usd, output_usd, rate, _MILLION, exact=True):
        input_10k = input_million.scaleb(-2)
        output_10k = output_million.scaleb(-2)
        typical_usd = (
            input_usd * TYPICAL_INPUT_TOKENS + output_usd * TYPICAL_OUTPUT_TOKENS
        ).scaleb(-6)
        typical = typical_usd * rate
    return CopPrice(
        input_cop_per_million=_settle(input_million),
        output_cop_per_million=_settle(output_million),
        input_cop_per_10k=_settle(input_10k),
        output_cop_per_10k=_settle(output_10k),
        typical_message_cop=_settle(typical),
        input_cop_per_10k_display=format_cop(input_10k),
        output_cop_per_10k_display=format_cop(output_10k),
        typical_message_cop_display=format_cop(typical),
    )


@dataclass(frozen=True, slots=True)
class CallCost:
    """What one call costs: exact USD, and COP by the rule above (each from its exact value)."""

    input_usd: Decimal
    output_usd: Decimal
    total_usd: Decimal
    input_cop: Decimal
    output_cop: Decimal
    total_cop: Decimal
    total_cop_display: str


def call_cost(
    input_tokens: int,
    output_tokens: int,
    input_usd_per_million: Decimal,
    output_usd_per_million: Decimal,
    rate: Decimal,
) -> CallCost:
    """The cost of one call of ``input_tokens`` + ``output_tokens`` at per-million prices."""
    for name, tokens in (("input_tokens", input_tokens), ("output_tokens", output_tokens)):
        if isinstance(tokens, bool) or not isinstance(tokens, int):
            raise TypeError(f"{name} must be an int, got {type(tokens).__name__}")
        if tokens < 0:
            raise ValueError(f"{name} must not be negative, got {tokens}")
    _check_amount("input_usd_per_million", input_usd_per_million)
    _check_amount("output_usd_per_million", output_usd_per_million)
    _check_rate(rate)
    with _wide(
        input_usd_per_million,
        output_usd_per_million,
        rate,
        Decimal(input_tokens),
        Decimal(output_tokens),
        _MILLION,
        exact=True,
    ):
        input_usd = (input_usd_per_million * input_tokens).scaleb(-6)
        output_usd = (output_usd_per_million * output_tokens).scaleb(-6)
        total_usd = input_usd + output_usd
        input_cop, output_cop, total_cop = input_usd * rate, output_usd * rate, total_usd * rate
    return CallCost(
        input_usd=_settle_exact(input_usd),
        output_usd=_settle_exact(output_usd),
        total_usd=_settle_exact(total_usd),
        input_cop=_settle(input_cop),
        output_cop=_settle(output_cop),
        total_cop=_settle(total_cop),
        total_cop_display=format_cop(total_cop),
    )


@dataclass(frozen=True, slots=True)
class TokenCost:
    """What ``tokens`` cost at one per-million price: exact USD, COP by the rule above."""

    usd: Decimal
    cop: Decimal


def token_cost(tokens: int, usd_per_million: Decimal, rate: Decimal) -> TokenCost:
    """The cost of ``tokens`` at ``usd_per_million``: USD exact, COP settled from the exact
    product (one line of an itemized estimate; the total is priced from the exact USD sum)."""
    return _count_cost("tokens", tokens, "usd_per_million", usd_per_million, 6, rate)


def calls_cost(calls: int, usd_per_thousand: Decimal, rate: Decimal) -> TokenCost:
    """The cost of ``calls`` at a per-call price stated per 1,000 calls (a web search, a
    request fee): USD exact, COP settled from the exact product, as ``token_cost``."""
    return _count_cost("calls", calls, "usd_per_thousand", usd_per_thousand, 3, rate)


def _count_cost(
    name: str, count: int, price_name: str, price: Decimal, per_digits: int, rate: Decimal
) -> TokenCost:
    """``count`` units at ``price`` per 10^``per_digits`` units: exact USD, settled COP."""
    if isinstance(count, bool) or not isinstance(count, int):
        raise TypeError(f"{name} must be an int, got {type(count).__name__}")
    if count < 0:
        raise ValueError(f"{name} must not be negative, got {count}")
    _check_amount(price_name, price)
    _check_rate(rate)
    with _wide(price, rate, Decimal(count), _MILLION, exact=True):
        usd = (price * count).scaleb(-per_digits)
        cop = usd * rate
    return TokenCost(usd=_settle_exact(usd), cop=_settle(cop))


def exact_cop(usd: Decimal, rate: Decimal) -> tuple[Decimal, str]:
    """A USD amount (a sum of exact line costs) in pesos: settled, and as displayed."""
    cop = usd_to_cop(usd, rate)
    return _settle(cop), format_cop(cop)


def per_million_and_10k(usd_per_million: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """One price kind's peso figures (a cache price): per million and per 10K, by the rule."""
    _check_amount("usd_per_million", usd_per_million)
    per_million = usd_to_cop(usd_per_million, rate)
    with _wide(per_million, exact=True):
        per_10k = per_million.scaleb(-2)
    return _settle(per_million), _settle(per_10k)


def cop_amount(usd: Decimal, rate: Decimal) -> Decimal:
    """A USD amount in pesos by the rule above (exact product, settled), e.g. a monthly cost."""
    return _settle(usd_to_cop(usd, rate))


def tidy_usd(amount: Decimal) -> Decimal:
    """A USD amount without trailing zeros (``144.00`` -> ``144``); never rounds."""
    _check_amount("amount", amount)
    return _settle_exact(amount)


def _settle_exact(amount: Decimal) -> Decimal:
    """Trailing zeros off, nothing rounded (USD stays exact)."""
    with _wide(amount):
        if amount == 0:
            return Decimal(0)
        tidy = amount.normalize()
        return tidy.quantize(_ONE) if _exponent(tidy) > 0 else tidy


def format_cop(amount: Decimal) -> str:
    """Show a peso amount the Colombian way: ``"1.234 COP"``, ``"0,5 COP"``, ``"< 0,01 COP"``."""
    _check_amount("amount", amount)
    if amount == 0:
        return "0 COP"
    with _wide(amount):
        if amount >= WHOLE_PESOS_FROM:
            return f"{_group(amount.quantize(_ONE, rounding=ROUND_HALF_EVEN))} COP"
        cents = amount.quantize(_CENT, rounding=ROUND_HALF_EVEN)
    if cents == 0:
        return "< 0,01 COP"
    if cents >= WHOLE_PESOS_FROM:  # 99.995 rounds up into whole-peso territory
        return f"{_group(cents.quantize(_ONE))} COP"
    text = f"{cents:f}".rstrip("0").rstrip(".")
    return f"{text.replace('.', ',')} COP"


def _group(whole: Decimal) -> str:
    return f"{whole:,f}".replace(",", ".")


def _settle(amount: Decimal) -> Decimal:
    with _wide(amount):
        if _exponent(amount) < -MAX_PLACES:
            quantized = amount.quantize(_QUANTUM, rounding=ROUND_HALF_EVEN)
            amount = _QUANTUM if quantized == 0 and amount > 0 else quantized
        if amount == 0:
            return Decimal(0)
        tidy = amount.normalize()
        # normalize() turns 1000 into 1E+3; bring the exponent back to 0 for plain digits.
        return tidy.quantize(_ONE) if _exponent(tidy) > 0 else tidy


def _wide(*operands: Decimal, exact: bool = False) -> AbstractContextManager[Context]:
    """A context with room for every digit of these operands' products, sums and quantizations.

    With ``exact`` the Inexact signal is trapped: arithmetic there must never lose a digit, and
    if it did that would be a bug, so it raises instead of returning a rounded figure.
    """
    digits = sum(len(d.as_tuple().digits) + abs(_exponent(d)) for d in operands)
    traps = [InvalidOperation, Inexact] if exact else [InvalidOperation]
    context = Context(
        prec=max(28, 2 * digits + 2 * MAX_PLACES + 4),
        Emax=MAX_EMAX,
        Emin=MIN_EMIN,
        traps=traps,
    )
    return localcontext(context)


def _exponent(value: Decimal) -> int:
    exponent = value.as_tuple().exponent
    return exponent if isinstance(exponent, int) else 0


def _check_amount(name: str, value: Decimal) -> None:
    if not isinstance(value, Decimal):
        raise TypeError(f"{name} must be a Decimal, got {type(value).__name__}")
    if not value.is_finite():
        raise ValueError(f"{name} must be finite, got {value}")
    if value < 0:
        raise ValueError(f"{name} must not be negative, got {value}")


def _check_rate(rate: Decimal) -> None:
    if not isinstance(rate, Decimal):
        raise TypeError(f"rate must be a Decimal, got {type(rate).__name__}")
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"rate must be a finite positive number, got {rate}")
