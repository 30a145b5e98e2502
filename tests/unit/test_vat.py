"""The VAT breakdown of a receipt: per rate and in total, to the cent, adding up exactly."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from ordering.vat import RateTotal, vat_breakdown, vat_included

D = Decimal


@dataclass(frozen=True)
class Line:
    unit_price: Decimal
    quantity: int
    vat_rate: Decimal

    @property
    def line_total(self) -> Decimal:
        return self.unit_price * self.quantity


def test_food_and_drinks_are_two_rates_whose_sums_make_the_total():
    # given two dishes at 7 % and a drink at 19 %, prices including VAT
    lines = [Line(D("10.50"), 1, D("7.00")), Line(D("10.50"), 1, D("7.00")), Line(D("3.90"), 2, D("19.00"))]
    # when
    breakdown = vat_breakdown(lines)
    # then 21.00 × 7/107 = 1.3738 and 7.80 × 19/119 = 1.2454
    assert breakdown.rates == (
        RateTotal(rate=D("7.00"), net=D("19.63"), vat=D("1.37"), gross=D("21.00")),
        RateTotal(rate=D("19.00"), net=D("6.55"), vat=D("1.25"), gross=D("7.80")),
    )
    assert (breakdown.net, breakdown.vat, breakdown.gross) == (D("26.18"), D("2.62"), D("28.80"))


def test_a_half_cent_rounds_up_not_to_even():
    # given 0.15 at 20 %: the VAT is exactly 0.025
    # when / then half up gives 0.03 (banker's rounding would give 0.02)
    assert vat_included(gross=D("0.15"), rate=D("20")) == D("0.03")
    assert vat_included(gross=D("0.03"), rate=D("20")) == D("0.01")
    breakdown = vat_breakdown([Line(D("0.15"), 1, D("20.00"))])
    assert breakdown.rates == (RateTotal(rate=D("20.00"), net=D("0.12"), vat=D("0.03"), gross=D("0.15")),)


def test_vat_is_rounded_once_per_rate_not_per_line():
    # given three lines of 0.03 at 20 %: 0.005 VAT each, 0.015 together
    lines = [Line(D("0.03"), 1, D("20")), Line(D("0.03"), 1, D("20.00")), Line(D("0.01"), 3, D("20"))]
    # when
    breakdown = vat_breakdown(lines)
    # then one rate (20 and 20.00 are the same), its VAT rounded once: 0.02, not 3 × 0.01
    assert breakdown.rates == (RateTotal(rate=D("20.00"), net=D("0.07"), vat=D("0.02"), gross=D("0.09")),)


def test_a_zero_rate_has_no_vat():
    breakdown = vat_breakdown([Line(D("4.99"), 3, D("0"))])

    assert breakdown.rates == (RateTotal(rate=D("0.00"), net=D("14.97"), vat=D("0.00"), gross=D("14.97")),)


def test_nothing_is_all_zeros():
    breakdown = vat_breakdown([])

    assert breakdown.rates == ()
    assert (breakdown.net, breakdown.vat, breakdown.gross) == (D("0.00"), D("0.00"), D("0.00"))


def test_rates_come_lowest_first():
    lines = [Line(D("1.00"), 1, D("19")), Line(D("1.00"), 1, D("0")), Line(D("1.00"), 1, D("7"))]

    assert [r.rate for r in vat_breakdown(lines).rates] == [D("0.00"), D("7.00"), D("19.00")]


cents = st.integers(min_value=0, max_value=100_000).map(lambda c: Decimal(c).scaleb(-2))
rates = st.sampled_from([D("0"), D("5.5"), D("7"), D("10"), D("19"), D("20"), D("21"), D("25.5")])
lines = st.lists(st.builds(Line, cents, st.integers(min_value=1, max_value=50), rates), max_size=30)


@given(lines)
def test_every_figure_is_in_cents_and_adds_up_exactly(order_lines):
    # when
    breakdown = vat_breakdown(order_lines)
    # then the gross is the order's total, and net + VAT is the gross, per rate and in total
    assert breakdown.gross == sum((line.line_total for line in order_lines), D("0.00"))
    assert breakdown.net + breakdown.vat == breakdown.gross
    for rate in breakdown.rates:
        assert rate.net + rate.vat == rate.gross
        assert all(value == value.quantize(D("0.01")) for value in (rate.net, rate.vat, rate.gross))
        assert D("0") <= rate.vat <= rate.gross
    assert breakdown.vat == sum((rate.vat for rate in breakdown.rates), D("0.00"))
