"""The database backend switches the server's autocommit back on only when a statement runs
outside a transaction (passline/mariadb/base.py): consecutive transactions send no
``SET autocommit`` between them, and a statement outside any transaction still commits at once."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from bus.models import ProcessedMessage

pytestmark = pytest.mark.django_db(transaction=True)


def set_statements() -> int:
    """``SET`` statements this session has sent (``SET autocommit`` among them), read on the
    driver's own connection so that the reading sends none."""
    raw = connection.connection
    raw.query("SHOW SESSION STATUS LIKE 'Com_set_option'")
    return int(raw.store_result().fetch_row()[0][1])


def seen_by_another_connection(message_id: str) -> bool:
    found: list[bool] = []

    def look() -> None:
        try:
            found.append(ProcessedMessage.objects.filter(message_id=message_id).exists())
        finally:
            connection.close()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join()
    return found[0]


def record(message_id: str) -> None:
    ProcessedMessage.objects.create(consumer="test.autocommit", message_id=message_id)


def test_transactions_one_after_another_send_no_autocommit_switches():
    connection.ensure_connection()
    with transaction.atomic():  # the server's autocommit is off from here on
        record("first")
    before = set_statements()

    # when: five more transactions, one after another (as a worker handles messages)
    for number in range(5):
        with transaction.atomic():
            record(f"in-a-row-{number}")

    # then: not one SET autocommit among them (Django's own backend sends two per transaction)
    assert set_statements() == before
    assert all(seen_by_another_connection(f"in-a-row-{number}") for number in range(5))


def test_a_statement_outside_a_transaction_commits_at_once():
    connection.ensure_connection()
    with transaction.atomic():
        record("inside")
    # when: a write outside any transaction follows a transaction
    record("outside")
    # then: another connection sees it at once, and the server's autocommit is on again
    assert seen_by_another_connection("outside")
    assert connection.connection.get_autocommit()


def test_a_statement_after_a_rolled_back_transaction_commits_at_once():
    connection.ensure_connection()
    with pytest.raises(RuntimeError), transaction.atomic():
        record("rolled-back")
        raise RuntimeError("the handler failed")
    record("after-the-rollback")
    assert not seen_by_another_connection("rolled-back")
    assert seen_by_another_connection("after-the-rollback")


def test_manual_transactions_still_begin_after_each_commit():
    # as the relay's epochs run: autocommit off, commit, keep going, commit, autocommit on
    connection.ensure_connection()
    transaction.set_autocommit(False)
    try:
        record("epoch-1")
        transaction.commit()
        record("epoch-2")
        assert not seen_by_another_connection("epoch-2")  # in a transaction until committed
        transaction.commit()
    finally:
        transaction.set_autocommit(True)
    assert seen_by_another_connection("epoch-1") and seen_by_another_connection("epoch-2")
