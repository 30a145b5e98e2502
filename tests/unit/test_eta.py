"""The estimated ready time: the median preparation time, its fallback, and what each status shows."""

import datetime

import pytest

from ordering.eta import MIN_SAMPLES, PrepTime, ReadyKind, prep_time_from, ready_time
from ordering.status import OrderStatus

NOW = datetime.datetime(2026, 3, 2, 12, 0, tzinfo=datetime.UTC)
MEASURED = PrepTime(minutes=18, samples=12)


def minutes(*values: float) -> list[datetime.timedelta]:
    return [datetime.timedelta(minutes=v) for v in values]


# The restaurant's preparation time -----------------------------------------------------


def test_the_prep_time_is_the_median_of_the_measured_durations():
    # given one very slow order among quick ones
    durations = minutes(10, 12, 14, 16, 90)
    # when
    prep = prep_time_from(durations, fallback_minutes=30)
    # then the slow one does not drag the figure up as a mean would
    assert prep == PrepTime(minutes=14, samples=5)
    assert prep.measured and prep.source == "Measured from the restaurant's last 5 orders"


def test_an_even_number_of_durations_takes_the_middle_two_rounded_to_a_minute():
    assert prep_time_from(minutes(10, 11, 14, 16, 20, 22), fallback_minutes=30).minutes == 15  # (14 + 16) / 2
    assert prep_time_from(minutes(10, 10, 10.4, 10.6, 11, 11), fallback_minutes=30).minutes == 11  # 10.5 rounds up
    assert prep_time_from(minutes(10, 10, 10.2, 10.4, 11, 11), fallback_minutes=30).minutes == 10  # 10.3 rounds down
    assert prep_time_from([datetime.timedelta(seconds=5)] * MIN_SAMPLES, fallback_minutes=30).minutes == 1


def test_too_few_samples_fall_back_to_the_restaurants_own_estimate():
    # given one order fewer than the minimum
    durations = minutes(*[10] * (MIN_SAMPLES - 1))
    # when
    prep = prep_time_from(durations, fallback_minutes=25)
    # then
    assert prep == PrepTime(minutes=25, samples=0)
    assert not prep.measured and prep.source == "The restaurant's own estimate"
    assert prep_time_from([], fallback_minutes=25) == prep


def test_negative_durations_are_ignored_as_data_errors():
    durations = minutes(-5, 10, 10, 10, 10)
    assert prep_time_from(durations, fallback_minutes=25) == PrepTime(minutes=25, samples=0)
    assert prep_time_from(durations + minutes(12), fallback_minutes=25) == PrepTime(minutes=10, samples=5)


# The order's ready time ----------------------------------------------------------------


def test_a_paid_order_is_ready_a_prep_time_after_the_kitchen_accepts():
    result = ready_time(status=OrderStatus.PAID, accepted_at=None, ready_at=None, prep=MEASURED, now=NOW)
    assert result is not None
    assert (result.kind, result.at, result.prep) == (ReadyKind.AFTER_ACCEPT, None, MEASURED)
    assert result.is_estimate


@pytest.mark.parametrize("status", [OrderStatus.ACCEPTED, OrderStatus.PREPARING])
def test_an_order_in_the_kitchen_is_expected_a_prep_time_after_its_acceptance(status):
    # given accepted 5 minutes ago, with an 18-minute kitchen
    accepted_at = NOW - datetime.timedelta(minutes=5)
    # when
    result = ready_time(status=status, accepted_at=accepted_at, ready_at=None, prep=MEASURED, now=NOW)
    # then
    assert result is not None
    assert (result.kind, result.at) == (ReadyKind.EXPECTED, NOW + datetime.timedelta(minutes=13))


@pytest.mark.parametrize("late_by", [datetime.timedelta(0), datetime.timedelta(minutes=7)])
def test_an_order_past_its_expected_time_is_due_any_minute_not_a_time_in_the_past(late_by):
    # given accepted 18 minutes ago (or more), with an 18-minute kitchen
    accepted_at = NOW - MEASURED.duration - late_by
    # when
    result = ready_time(status=OrderStatus.PREPARING, accepted_at=accepted_at, ready_at=None, prep=MEASURED, now=NOW)
    # then
    assert result is not None
    assert (result.kind, result.at) == (ReadyKind.DUE, None)
    assert result.is_estimate


@pytest.mark.parametrize("status", [OrderStatus.READY, OrderStatus.OUT_FOR_DELIVERY, OrderStatus.DELIVERED])
def test_once_ready_there_is_no_estimate_but_the_actual_ready_time(status):
    ready_at = NOW - datetime.timedelta(minutes=3)
    accepted_at = NOW - datetime.timedelta(minutes=20)
    result = ready_time(status=status, accepted_at=accepted_at, ready_at=ready_at, prep=None, now=NOW)
    assert result is not None
    assert (result.kind, result.at, result.is_estimate) == (ReadyKind.READY, ready_at, False)


@pytest.mark.parametrize(
    "status",
    [OrderStatus.PENDING_PAYMENT, OrderStatus.PAYMENT_FAILED, OrderStatus.REJECTED, OrderStatus.CANCELLED],
)
def test_before_payment_and_after_an_exit_there_is_nothing_to_say(status):
    assert ready_time(status=status, accepted_at=None, ready_at=None, prep=MEASURED, now=NOW) is None


def test_missing_facts_give_no_estimate_rather_than_a_made_up_one():
    # in the kitchen without an acceptance time, or without a measured prep time
    assert ready_time(status=OrderStatus.ACCEPTED, accepted_at=None, ready_at=None, prep=MEASURED, now=NOW) is None
    assert ready_time(status=OrderStatus.ACCEPTED, accepted_at=NOW, ready_at=None, prep=None, now=NOW) is None
    # ready, but no ready event to show
    assert ready_time(status=OrderStatus.DELIVERED, accepted_at=None, ready_at=None, prep=None, now=NOW) is None


def test_statuses_arrive_as_plain_strings_from_the_model():
    result = ready_time(status="paid", accepted_at=None, ready_at=None, prep=MEASURED, now=NOW)
    assert result is not None and result.kind == ReadyKind.AFTER_ACCEPT
