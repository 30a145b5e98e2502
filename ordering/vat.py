"""The VAT in an order's prices, by rate. Pure: no database, no settings.

Prices include VAT. For each rate the gross amount is the sum of its lines; the VAT in it is
``gross × rate / (100 + rate)``, rounded once per rate to the cent (half up), as an invoice's
VAT table does, and the net is what is left. So per rate ``net + vat == gross`` exactly, and the
grosses add up to the order's total to the cent.

Anything else an order charges is one more :class:`Taxable` with its own rate: the delivery
fee is a :class:`Charge` at the rate recorded with the order. A tip is not a supply: it is
outside VAT and outside the table (so the table's gross is the total less the tip).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Protocol

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
HUNDRED = Decimal("100")


class Taxable(Protocol):
    """Something with a VAT-inclusive amount: an order line (``OrderLine``), a fee."""

    @property
    def vat_rate(self) -> Decimal: ...

    @property
    def line_total(self) -> Decimal: ...


@dataclass(frozen=True)
class Charge:
    """A VAT-inclusive amount that is not a dish: the delivery fee."""

    vat_rate: Decimal
    line_total: Decimal


@dataclass(frozen=True)
class RateTotal:
    rate: Decimal  # percent, e.g. 7.00
    net: Decimal
    vat: Decimal
    gross: Decimal


@dataclass(frozen=True)
class VatBreakdown:
    rates: tuple[RateTotal, ...]  # lowest rate first
    net: Decimal
    vat: Decimal
    gross: Decimal


def vat_included(*, gross: Decimal, rate: Decimal) -> Decimal:
    """The VAT contained in ``gross`` at ``rate`` percent, to the cent (half up)."""
    return (gross * rate / (HUNDRED + rate)).quantize(CENT, rounding=ROUND_HALF_UP)


def vat_breakdown(items: Iterable[Taxable]) -> VatBreakdown:
    """Net, VAT and gross per rate and in total, each to the cent; the gross total is the sum
    of the items' amounts."""
    grosses: dict[Decimal, Decimal] = {}
    for item in items:
        rate = item.vat_rate.quantize(CENT)
        grosses[rate] = grosses.get(rate, ZERO) + item.line_total
    rates = []
    for rate in sorted(grosses):
        gross = grosses[rate].quantize(CENT, rounding=ROUND_HALF_UP)
        vat = vat_included(gross=gross, rate=rate)
        rates.append(RateTotal(rate=rate, net=gross - vat, vat=vat, gross=gross))
    return VatBreakdown(
        rates=tuple(rates),
        net=sum((r.net for r in rates), ZERO),
        vat=sum((r.vat for r in rates), ZERO),
        gross=sum((r.gross for r in rates), ZERO),
    )
