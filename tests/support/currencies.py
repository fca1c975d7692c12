"""A local currency that is not in the table: XTS, ISO 4217's code reserved for tests.

Its display differs from COP's in every way a row can (separators, places, where whole units
start) and it has neither a bundled rate nor the TRM, so a test that serves it proves the
service reads the row, not COP: ``monkeypatch.setitem(CURRENCIES, XTS.code, XTS)``.
"""

from __future__ import annotations

from decimal import Decimal

from pricing_service.currency import Currency, RateMode

XTS = Currency(
    code="XTS",
    units="units",
    thousands=",",
    decimal=".",
    places=3,
    whole_from=Decimal(1000),
    rate_sources=(RateMode.FIXED,),
    default_rate=None,
)
