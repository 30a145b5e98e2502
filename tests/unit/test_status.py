"""The status machine of docs/contract.md, as pure logic."""

import pytest

from ordering.exceptions import InvalidTransition
from ordering.status import TRANSITIONS, Actor, OrderStatus, allowed_next, check_transition

S = OrderStatus

CONTRACT_STAFF = {
    (S.PAID, S.ACCEPTED),
    (S.PAID, S.REJECTED),
    (S.ACCEPTED, S.PREPARING),
    (S.PREPARING, S.READY),
    (S.READY, S.OUT_FOR_DELIVERY),
    (S.OUT_FOR_DELIVERY, S.DELIVERED),
    (S.READY, S.DELIVERED),
}
CONTRACT_CUSTOMER = {(S.PENDING_PAYMENT, S.CANCELLED), (S.PAID, S.CANCELLED)}
CONTRACT_SYSTEM = {(S.PENDING_PAYMENT, S.PAID), (S.PENDING_PAYMENT, S.PAYMENT_FAILED), (S.PAID, S.REJECTED)}


@pytest.mark.parametrize(
    "actor,expected",
    [
        (Actor.STAFF, CONTRACT_STAFF),
        (Actor.CUSTOMER, CONTRACT_CUSTOMER),
        (Actor.SYSTEM, CONTRACT_SYSTEM),
    ],
)
def test_each_actor_may_make_exactly_the_contract_transitions(actor, expected):
    allowed = {pair for pair, actors in TRANSITIONS.items() if actor in actors}
    assert allowed == expected


@pytest.mark.parametrize("frm", list(S))
@pytest.mark.parametrize("to", list(S))
@pytest.mark.parametrize("actor", list(Actor))
def test_check_transition_refuses_everything_else(frm, to, actor):
    if actor in TRANSITIONS.get((frm, to), ()):
        check_transition(frm, to, actor)
    else:
        with pytest.raises(InvalidTransition):
            check_transition(frm, to, actor)


def test_unknown_status_is_an_invalid_transition():
    with pytest.raises(InvalidTransition, match="not an order status"):
        check_transition(S.PAID, "eaten", Actor.STAFF)


def test_allowed_next_offers_the_kitchen_its_buttons():
    assert allowed_next("ready", Actor.STAFF) == [S.OUT_FOR_DELIVERY, S.DELIVERED]
    assert allowed_next("delivered", Actor.STAFF) == []
