"""The deployment's local currency, Decimal USD -> local and the one rounding rule; the rate is
passed in.

The local currency (``PRICING_CURRENCY``, ``COP`` by default) is one row of ``CURRENCIES``: its
code, how its amounts display, the rate sources that can serve it and its bundled fixed rate,
described once here and read by every answer, the Space picker and the console. The wire's
``*_cop_*`` fields (and ``usd_to_cop``) are named after the first deployment's currency and keep
that name whatever the deployment's: they hold amounts in ``currency.code``, which every answer
states and every display string ends with. Here ``cop`` means those local amounts.

The rounding rule (the only place the service rounds money; below with COP's row):

* Numeric COP fields are exact: per million = USD per million × rate; per 10K = per million / 100;
  typical message (1,000 input + 500 output tokens) = (1000·in + 500·out) / 1,000,000 × rate.
  Only an amount with more than 6 decimal places is quantized, to 6 places with ROUND_HALF_EVEN,
  and a positive amount that would quantize to 0 becomes 0.000001 instead: a priced model never
  looks free. Trailing fractional zeros are dropped (``Decimal("1000")``, not ``"1000.00"``).
  This part is the same for every currency.
* Display strings are made from the exact amount (never from a quantized one, so nothing is
  rounded twice) with the currency's formatting (COP: thousands ``.``, decimals ``,``), then
  a space and the code. From ``whole_from`` (COP: 100 pesos) whole units (``"8.000 COP"``);
  below, at most ``places`` decimals (COP: 2) without trailing zeros (``"10 COP"``,
  ``"0,5 COP"``, ``"12,35 COP"``); both ROUND_HALF_EVEN. A positive amount that would show as 0
  shows ``"< 0,01 COP"``; exactly 0 shows ``"0 COP"``.
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
from enum import StrEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

MAX_PLACES = 6
TYPICAL_INPUT_TOKENS = 1000
TYPICAL_OUTPUT_TOKENS = 500

_QUANTUM = Decimal(1).scaleb(-MAX_PLACES)
_ONE = Decimal(1)
_MILLION = Decimal(1_000_000)


class RateMode(StrEnum):
    """How the USD -> local rate is kept (PRICING_COP_RATE_SOURCE, /ready's ``currency.mode``,
    rates.py)."""

    FIXED = "fixed"  # PRICING_USD_TO_COP, else the currency's bundled rate
    TRM = "trm"  # Colombia's TRM, fetched daily and stored; the fixed rate until one is accepted


class RateSource(StrEnum):
    """Which rate an answer's amounts used (``currency.source`` of every answer, /ready's, the
    console's; cop_rate.source for a stored one)."""

    DEFAULT = "default"  # the currency's bundled rate (PRICING_USD_TO_COP unset)
    OPERATOR = "PRICING_USD_TO_COP"  # the operator's fixed rate
    TRM = RateMode.TRM.value  # a stored, accepted TRM


@dataclass(frozen=True, slots=True)
class Currency:
    """A local currency: what the service needs to show amounts in it and to get its rate."""

    code: str  # ISO 4217: ``currency.code`` of every answer, after every display amount
    units: str  # its whole unit in the (English) rounding rule: "pesos"
    thousands: str  # the display's thousands separator
    decimal: str  # the display's decimal separator
    places: int  # at most this many decimals below ``whole_from``
    whole_from: Decimal  # from this amount a display shows whole units
    # How its rate can be kept (``PRICING_COP_RATE_SOURCE``, rates.py).
    rate_sources: tuple[RateMode, ...]
    # The fixed rate served when ``PRICING_USD_TO_COP`` is unset (None: the operator must set it).
    default_rate: Decimal | None

    def format(self, amount: Decimal) -> str:
        """An amount as a person reads it: ``"1.234 COP"``, ``"0,5 COP"``, ``"< 0,01 COP"``."""
        _check_amount("amount", amount)
        if amount == 0:
            return f"0 {self.code}"
        with _wide(amount):
            if amount >= self.whole_from:
                return self._shown(amount.quantize(_ONE, rounding=ROUND_HALF_EVEN))
            fraction = amount.quantize(self._smallest, rounding=ROUND_HALF_EVEN)
        if fraction == 0:
            return self._below_smallest
        if fraction >= self.whole_from:  # 99.995 rounds up into whole-unit territory
            return self._shown(fraction.quantize(_ONE))
        return self._shown(fraction)

    @property
    def rounding_rule(self) -> str:
        """The rule above in one line (``currency.rounding`` of every answer)."""
        return (
            f"exact USD x rate (per 10K = per million / 100; typical message = "
            f"{TYPICAL_INPUT_TOKENS} input + {TYPICAL_OUTPUT_TOKENS} output tokens); only amounts "
            f"with more than {MAX_PLACES} decimals are rounded half-even to {MAX_PLACES}, a "
            f"positive amount never becomes 0; *_display strings round half-even to whole "
            f"{self.units} from {self.whole_from} {self.code}, else to at most {self.places} "
            f"decimals, '{self._below_smallest}' below"
        )

    @property
    def _smallest(self) -> Decimal:
        return _ONE.scaleb(-self.places)

    @property
    def _below_smallest(self) -> str:
        return f"< {self._digits(self._smallest)} {self.code}"

    def _shown(self, amount: Decimal) -> str:
        return f"{self._digits(amount)} {self.code}"

    def _digits(self, amount: Decimal) -> str:
        text = f"{amount:,f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return text.translate({ord(","): self.thousands, ord("."): self.decimal})


COP = Currency(
    code="COP",
    units="pesos",
    thousands=".",
    decimal=",",
    places=2,
    whole_from=Decimal(100),
    rate_sources=(RateMode.FIXED, RateMode.TRM),
    default_rate=Decimal(4000),  # the seed document's educational figure
)
# Every currency a deployment can serve (``PRICING_CURRENCY``), by code.
CURRENCIES: dict[str, Currency] = {currency.code: currency for currency in (COP,)}
DEFAULT_CURRENCY = COP.code


@dataclass(frozen=True, slots=True)
class CopPrice:
    """One model's price in the local currency, numeric (by the rule above) and as displayed."""

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


def cop_price(
    input_usd: Decimal, output_usd: Decimal, rate: Decimal, currency: Currency
) -> CopPrice:
    """Convert USD-per-million prices to the local figures a selector shows."""
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
        input_cop_per_10k_display=currency.format(input_10k),
        output_cop_per_10k_display=currency.format(output_10k),
        typical_message_cop_display=currency.format(typical),
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
    currency: Currency,
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
        total_cop_display=currency.format(total_cop),
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


def exact_cop(usd: Decimal, rate: Decimal, currency: Currency) -> tuple[Decimal, str]:
    """A USD amount (a sum of exact line costs) in the local currency: settled, and as
    displayed."""
    cop = usd_to_cop(usd, rate)
    return _settle(cop), currency.format(cop)


def per_million_and_10k(usd_per_million: Decimal, rate: Decimal) -> tuple[Decimal, Decimal]:
    """One price kind's peso figures (a cache price): per million and per 10K, by the rule."""
    _check_amount("usd_per_million", usd_per_million)
    per_million = usd_to_cop(usd_per_million, rate)
    with _wide(per_million, exact=True):
        per_10k = per_million.scaleb(-2)
    return _settle(per_million), _settle(per_10k)


def cop_amount(usd: Decimal, rate: Decimal) -> Decimal:
    """A USD amount in the local currency by the rule above (exact product, settled), e.g. a
    monthly cost."""
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
