"""The analytics fold and the figures' arithmetic, without a database: a fact row is the same
whatever order its events come in and however often; days, minutes, means and money."""

from __future__ import annotations

import datetime
import itertools
from decimal import Decimal

import pytest

from analytics import figures as f
from analytics.facts import PAYMENT_REFUNDED, PAYMENT_SUCCEEDED, PLACED, STATUS, Dish, Observation, apply
from analytics.models import OrderFact
from analytics.services import FACT_FIELDS

T0 = datetime.datetime(2026, 3, 2, 11, 58, 30, 250_000, tzinfo=datetime.UTC)


def at(seconds: float) -> datetime.datetime:
    return T0 + datetime.timedelta(seconds=seconds)


def step(version: int, status: str, from_status: str, seconds: float) -> Observation:
    return Observation(
        kind=STATUS,
        order_id=1,
        restaurant_id=7,
        at=at(seconds),
        status=status,
        from_status=from_status,
        version=version,
    )


PLACED_1 = Observation(
    kind=PLACED,
    order_id=1,
    restaurant_id=7,
    at=T0,
    version=1,
    amount=Decimal("23.00"),
    dishes=(Dish(menu_item_id=3, name="Pizza", quantity=2, unit_price=Decimal("11.50")),),
)
# An order's whole life, including a recall of "ready" and the second "ready".
LIFE = [
    PLACED_1,
    step(2, "paid", "pending_payment", 1),
    Observation(kind=PAYMENT_SUCCEEDED, order_id=1, restaurant_id=7, amount=Decimal("23.00")),
    step(3, "accepted", "paid", 30),
    step(4, "preparing", "accepted", 60),
    step(5, "ready", "preparing", 600),
    step(6, "preparing", "ready", 610),
    step(7, "ready", "preparing", 700.5),
    step(8, "out_for_delivery", "ready", 800),
    step(9, "ready", "out_for_delivery", 805),  # a recall from the courier: not a new "ready"
]


def folded(observations: list[Observation]) -> tuple[object, ...]:
    fact = OrderFact(order_id=1)
    for observation in observations:
        apply(fact, observation)
    return tuple(getattr(fact, name) for name in FACT_FIELDS)


def test_a_whole_life_folds_into_one_row():
    # when every event of the order is folded in the order it happened
    fact = OrderFact(order_id=1)
    for observation in LIFE:
        apply(fact, observation)
    # then the row holds when it was placed, paid and (finally) ready, and what was charged
    assert (fact.restaurant_id, fact.placed_at, fact.total) == (7, T0, Decimal("23.00"))
    assert (fact.paid_at, fact.paid_amount) == (at(1), Decimal("23.00"))
    # the second "ready" counts (the first was recalled), the courier's recall does not
    assert (fact.ready_at, fact.ready_version, fact.unready_version) == (at(700.5), 7, 6)
    assert (fact.status, fact.version, fact.exit_status) == ("ready", 9, "")


@pytest.mark.parametrize("seed", range(12))
def test_any_order_and_any_repetition_of_the_events_gives_the_same_row(seed):
    # given the events shuffled (deterministically per seed), some of them twice
    import random

    rng = random.Random(seed)
    events = LIFE + rng.sample(LIFE, 4)
    rng.shuffle(events)
    # then the row is the same as in the order they happened
    assert folded(events) == folded(LIFE)


def test_a_status_change_before_the_order_placed_is_kept_and_completed_later():
    # given the paid step arrives first (another exchange, another path)
    fact = OrderFact(order_id=1)
    apply(fact, step(2, "paid", "pending_payment", 1))
    assert (fact.restaurant_id, fact.paid_at, fact.placed_at) == (7, at(1), None)
    # when order.placed arrives
    apply(fact, PLACED_1)
    # then both are there, and the status stays the newer one
    assert (fact.placed_at, fact.paid_at, fact.total) == (T0, at(1), Decimal("23.00"))
    assert (fact.status, fact.version) == ("paid", 2)


def test_a_ready_that_was_recalled_does_not_count_until_ready_again():
    fact = OrderFact(order_id=1)
    for observation in LIFE[:7]:  # up to the recall ready -> preparing
        apply(fact, observation)
    assert fact.ready_version < fact.unready_version  # not ready now


def test_an_exit_and_its_refund_in_either_order():
    rejected = step(3, "rejected", "paid", 40)
    refund = Observation(kind=PAYMENT_REFUNDED, order_id=1, restaurant_id=7, amount=Decimal("23.00"))
    for events in itertools.permutations([PLACED_1, rejected, refund]):
        fact = OrderFact(order_id=1)
        for observation in events:
            apply(fact, observation)
        assert (fact.exit_status, fact.exit_at, fact.refunded_amount) == ("rejected", at(40), Decimal("23.00"))


def test_an_unknown_kind_is_a_programming_error():
    with pytest.raises(ValueError):
        apply(OrderFact(order_id=1), Observation(kind="teleported", order_id=1))


# --- the figures' arithmetic ----------------------------------------------------------------


def test_today_runs_from_local_midnight_to_the_next():
    now = datetime.datetime(2026, 3, 2, 23, 30, tzinfo=datetime.UTC)
    start, end = f.day_bounds(now, "Europe/Berlin")  # 00:30 on the 3rd there
    assert start.isoformat() == "2026-03-03T00:00:00+01:00" and end.isoformat() == "2026-03-04T00:00:00+01:00"


def test_a_day_when_the_clocks_change_is_23_hours_long():
    start, end = f.day_bounds(datetime.datetime(2026, 3, 29, 12, tzinfo=datetime.UTC), "Europe/Berlin")
    # (aware datetimes of one zone subtract as wall times: compare the instants)
    assert end.astimezone(datetime.UTC) - start.astimezone(datetime.UTC) == datetime.timedelta(hours=23)


def test_the_series_is_the_last_60_minutes_the_current_one_last():
    now = datetime.datetime(2026, 3, 2, 12, 0, 42, tzinfo=datetime.UTC)
    counts = {
        datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC): 3,  # the current minute
        datetime.datetime(2026, 3, 2, 11, 1, tzinfo=datetime.UTC): 2,  # the first one shown
        datetime.datetime(2026, 3, 2, 11, 0, tzinfo=datetime.UTC): 9,  # an hour ago: left out
        datetime.datetime(2026, 3, 2, 13, 30, tzinfo=datetime.timezone(datetime.timedelta(hours=2))): 4,  # 11:30 UTC
    }
    series = f.per_minute(counts, now)
    assert len(series) == 60 and f.series_start(now) == datetime.datetime(2026, 3, 2, 11, 1, tzinfo=datetime.UTC)
    assert (series[0], series[29], series[-1], sum(series)) == (2, 4, 3, 9)


def test_the_mean_is_in_whole_seconds_rounded_half_up_without_floats():
    assert f.mean_seconds(datetime.timedelta(seconds=3), 2) == 2  # 1.5 -> 2
    assert f.mean_seconds(datetime.timedelta(seconds=5, microseconds=999_999), 2) == 3  # 2.9999995
    assert f.mean_seconds(datetime.timedelta(seconds=4, microseconds=999_998), 2) == 2  # 2.499999
    assert f.mean_seconds(datetime.timedelta(days=1), 3) == 28_800
    assert f.mean_seconds(None, 0) is None and f.mean_seconds(datetime.timedelta(0), 0) is None


def test_money_is_to_the_cent_and_durations_read_as_minutes_and_seconds():
    assert f.money(None) == Decimal("0.00") and f.money(Decimal("2.005")) == Decimal("2.01")
    assert (f.duration_label(754), f.duration_label(3754), f.duration_label(5), f.duration_label(None)) == (
        "12:34",
        "1:02:34",
        "0:05",
        "",
    )


def test_a_dish_on_several_lines_is_one_dish_with_the_quantities_added_up():
    from analytics.facts import Dish, dishes_by_item

    dishes = dishes_by_item(
        [
            Dish(menu_item_id=1, name="Burger", quantity=2, unit_price=Decimal("12.50")),
            Dish(menu_item_id=2, name="Fries", quantity=1, unit_price=Decimal("3.50")),
            Dish(menu_item_id=1, name="Burger", quantity=1, unit_price=Decimal("10.00")),
        ]
    )
    assert dishes == (
        Dish(menu_item_id=1, name="Burger", quantity=3, unit_price=Decimal("11.67")),
        Dish(menu_item_id=2, name="Fries", quantity=1, unit_price=Decimal("3.50")),
    )
