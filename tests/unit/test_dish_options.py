"""The pure rules of dish options: choosing within a dish's groups, the price, the note, and how an
order request merges and fingerprints its lines."""

from __future__ import annotations

from decimal import Decimal as D

import pytest

from ordering.exceptions import InvalidNote, InvalidOptions
from ordering.options import (
    ALLERGEN_CODES,
    ALLERGENS,
    NOTE_MAX_LENGTH,
    GroupSpec,
    OptionSpec,
    choose,
    clean_note,
    clean_tags,
    labelled,
    options_summary,
    price_with,
)
from ordering.services.orders import ItemRequest, OrderRequest

SIZE = GroupSpec(
    id=1,
    name="Size",
    min_choices=1,
    max_choices=1,
    options=(
        OptionSpec(10, "Small", D("-2.00")),
        OptionSpec(11, "Regular", D("0.00")),
        OptionSpec(12, "Large", D("3.00")),
    ),
)
EXTRAS = GroupSpec(
    id=2,
    name="Extras",
    min_choices=0,
    max_choices=2,
    options=(
        OptionSpec(20, "Cheese", D("1.00")),
        OptionSpec(21, "Bacon", D("1.50")),
        OptionSpec(22, "Truffle", D("4.00"), available=False),
        OptionSpec(23, "Rocket", D("0.80")),
    ),
)
PIZZA = (SIZE, EXTRAS)


def _choose(*ids: int):
    return choose(menu_item_id=7, dish="Pizza", groups=PIZZA, option_ids=list(ids))


def test_a_size_and_two_extras_add_their_prices_and_keep_menu_order():
    # when: chosen in any order
    snapshot, delta = _choose(21, 12, 20)
    # then: the snapshot is in menu order, the delta the sum of the three
    assert delta == D("5.50")
    assert [(c["group"], c["name"], c["price_delta"]) for c in snapshot] == [
        ("Size", "Large", "3.00"),
        ("Extras", "Cheese", "1.00"),
        ("Extras", "Bacon", "1.50"),
    ]
    assert price_with(D("10.00"), snapshot) == D("15.50")
    assert options_summary(snapshot) == "Size: Large; Extras: Cheese, Bacon"


def test_a_cheaper_size_lowers_the_price():
    snapshot, delta = _choose(10)
    assert delta == D("-2.00") and price_with(D("10.00"), snapshot) == D("8.00")


def test_a_required_group_left_out_names_the_group():
    with pytest.raises(InvalidOptions) as refused:
        _choose(20)
    assert refused.value.code == "invalid_options"
    assert refused.value.details == {"menu_item_id": 7, "reason": "too_few_options", "group": "Size", "min_choices": 1}
    assert "Size" in refused.value.message


def test_more_than_the_group_allows_is_refused():
    with pytest.raises(InvalidOptions) as refused:
        _choose(11, 20, 21, 23)
    assert refused.value.details["reason"] == "too_many_options"
    assert refused.value.details["group"] == "Extras" and refused.value.details["max_choices"] == 2


def test_two_sizes_of_a_single_choice_group_are_refused():
    with pytest.raises(InvalidOptions) as refused:
        _choose(10, 12)
    assert refused.value.details["reason"] == "too_many_options" and refused.value.details["group"] == "Size"


def test_an_option_of_another_dish_is_unknown():
    with pytest.raises(InvalidOptions) as refused:
        _choose(11, 99)
    assert refused.value.details["reason"] == "unknown_option" and refused.value.details["option_ids"] == [99]


def test_an_unavailable_option_is_refused_by_name():
    with pytest.raises(InvalidOptions) as refused:
        _choose(11, 22)
    assert refused.value.details["reason"] == "option_unavailable" and "Truffle" in refused.value.message


def test_the_same_option_twice_is_refused():
    with pytest.raises(InvalidOptions) as refused:
        _choose(11, 20, 20)
    assert refused.value.details["reason"] == "duplicate_option"


def test_a_dish_without_groups_takes_no_options_and_costs_its_price():
    assert choose(menu_item_id=1, dish="Soup", groups=(), option_ids=[]) == ([], D("0.00"))
    with pytest.raises(InvalidOptions):
        choose(menu_item_id=1, dish="Soup", groups=(), option_ids=[10])


def test_a_note_is_one_trimmed_line_of_at_most_the_limit():
    assert clean_note("  no   onions\nplease ") == "no onions please"
    assert clean_note("x" * NOTE_MAX_LENGTH) == "x" * NOTE_MAX_LENGTH
    with pytest.raises(InvalidNote) as refused:
        clean_note("x" * (NOTE_MAX_LENGTH + 1))
    assert refused.value.code == "invalid_note"


def test_tags_keep_known_codes_once_and_label_in_list_order():
    assert clean_tags(["milk", "gluten", "milk", "caffeine"], ALLERGEN_CODES) == ["gluten", "milk"]
    assert labelled(ALLERGENS, ["milk", "gluten"]) == [("gluten", "Gluten"), ("milk", "Milk")]
    assert len(ALLERGENS) == 14


def _request(*items) -> OrderRequest:
    return OrderRequest(restaurant_id=1, items=list(items), delivery_address="1 Lane")


def test_identical_choices_merge_and_other_choices_are_other_lines():
    request = _request(
        ItemRequest(5, 1, (21, 20), "no onions"),
        ItemRequest(5, 2, (20, 21), " no  onions "),
        ItemRequest(5, 1, (20,), "no onions"),
        (5, 1),
    )
    assert request.lines == {(5, (), ""): 1, (5, (20,), "no onions"): 1, (5, (20, 21), "no onions"): 3}
    assert request.dish_quantities == {5: 5}


def test_the_fingerprint_includes_options_and_notes_and_keeps_plain_requests_as_before():
    plain = _request((5, 2))
    assert plain.fingerprint() == _request(ItemRequest(5, 2)).fingerprint()
    assert plain.fingerprint() != _request(ItemRequest(5, 2, (20,))).fingerprint()
    assert _request(ItemRequest(5, 2, (20,))).fingerprint() != _request(ItemRequest(5, 2, (21,))).fingerprint()
    assert _request(ItemRequest(5, 2, (), "a")).fingerprint() != _request(ItemRequest(5, 2, (), "b")).fingerprint()
    # the same choices in another order are the same request
    assert (
        _request(ItemRequest(5, 1, (20, 21)), ItemRequest(6, 1)).fingerprint()
        == _request(ItemRequest(6, 1), ItemRequest(5, 1, (21, 20))).fingerprint()
    )
