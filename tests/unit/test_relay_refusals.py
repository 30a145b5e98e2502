"""How long the relay keeps messages the broker refused (nack) before it tries them again
(bus/relay.py's Refusals: per route, bounded, over at the route's first confirm)."""

from __future__ import annotations

from bus.relay import Refusals

BILLING = ("notification", "order.status.paid")
AUDIT = ("audit", "order.placed")


def test_a_first_refusal_pauses_its_rows_for_the_base_delay():
    refusals = Refusals(base=0.25, cap=30.0)
    assert refusals.refused(BILLING, [1, 2, 3], now=100.0) == 0.25
    assert refusals.any()


def test_refusals_within_one_pause_are_one_round_and_do_not_lengthen_it():
    # given: a pipelined burst refused message by message within a few milliseconds
    refusals = Refusals(base=0.25, cap=30.0)
    pauses = [refusals.refused(BILLING, [row], now=100.0 + row * 0.001) for row in range(100)]
    # then: every row waits the base delay, not a delay doubled a hundred times
    assert set(pauses) == {0.25}


def test_a_route_refused_again_after_its_pause_waits_twice_as_long_up_to_the_cap():
    refusals = Refusals(base=0.25, cap=30.0)
    now, pauses = 0.0, []
    for _ in range(12):
        pause = refusals.refused(BILLING, [1], now=now)
        pauses.append(pause)
        now += pause  # tried again when the pause ends, and refused again
    assert pauses == [0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0, 30.0, 30.0]


def test_new_messages_refused_during_a_pause_do_not_keep_it_from_growing():
    # given: a route refused, new messages refused one by one every 0.1 s meanwhile
    refusals = Refusals(base=0.25, cap=30.0)
    refusals.refused(BILLING, [1], now=0.0)
    for tick in range(1, 3):
        assert refusals.refused(BILLING, [100 + tick], now=tick * 0.1) == 0.25
    # when: the held row is tried again when its pause ended, and refused again
    # then: it waits twice as long
    assert refusals.refused(BILLING, [1], now=0.25) == 0.5


def test_the_routes_first_confirm_ends_the_pause_and_hands_back_every_row_held_for_it():
    # given: a route refused for a while (a quorum queue without a leader), its rows held
    refusals = Refusals(base=0.25, cap=30.0)
    now = 0.0
    for row in range(8):
        now += refusals.refused(BILLING, [row, row + 100], now=now)
    # when: a publish to it is confirmed (a new leader takes publishes)
    released = refusals.accepted(BILLING)
    # then: every held row goes now, and a later refusal starts from the base delay again
    assert released == set(range(8)) | set(range(100, 108))
    assert not refusals.any()
    assert refusals.refused(BILLING, [9], now=now) == 0.25
    assert refusals.accepted(BILLING) == {9}
    assert refusals.accepted(BILLING) == set()


def test_a_confirm_on_another_route_leaves_a_refused_route_waiting():
    # given: one route refused, another one taking publishes (its queues have their leaders)
    refusals = Refusals(base=0.25, cap=30.0)
    refusals.refused(BILLING, [1, 2], now=0.0)
    second = refusals.refused(BILLING, [1, 2], now=0.3)
    # when: a message to the other route is confirmed
    assert refusals.accepted(AUDIT) == set()
    # then: the refused route's rows are still held and its back-off keeps growing
    assert refusals.refused(BILLING, [1, 2], now=0.3 + second) == 1.0
    assert refusals.accepted(BILLING) == {1, 2}


def test_the_cap_holds_even_when_the_base_is_above_it():
    refusals = Refusals(base=60.0, cap=30.0)
    assert refusals.refused(BILLING, [1], now=0.0) == 30.0
    assert refusals.refused(BILLING, [1], now=31.0) == 30.0
