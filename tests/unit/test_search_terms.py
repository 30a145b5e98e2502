"""The words of a search, made into MariaDB's boolean full-text query (ordering/search.py)."""

from __future__ import annotations

from ordering.search import MAX_QUERY, MAX_WORDS, search_terms


def test_every_word_is_required_as_a_prefix() -> None:
    terms = search_terms("Green  Curry")
    assert terms.words == ("green", "curry")
    assert terms.boolean_query == "+green* +curry*"


def test_boolean_operators_and_punctuation_are_not_the_customers_to_use() -> None:
    terms = search_terms('-pizza +"margherita" (veg*) ~x @3 pho_bo')
    assert terms.words == ("pizza", "margherita", "veg", "x", "3", "pho", "bo")
    assert terms.boolean_query == "+pizza* +margherita* +veg* +pho*"


def test_words_shorter_than_the_index_holds_are_left_to_a_name_match() -> None:
    terms = search_terms("bo")
    assert terms and terms.indexed == () and terms.boolean_query == ""


def test_letters_of_any_script_count_and_repeats_are_dropped() -> None:
    assert search_terms("Phở phở Борщ").words == ("phở", "борщ")


def test_blank_and_overlong_input() -> None:
    assert not search_terms("  ,;  ")
    assert len(search_terms(" ".join(f"word{n}" for n in range(50))).words) == MAX_WORDS
    assert search_terms("a" * (MAX_QUERY + 50)).words == ("a" * MAX_QUERY,)
