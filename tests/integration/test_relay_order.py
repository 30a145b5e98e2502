"""Per-aggregate order when another relay holds some of an aggregate's rows.

Two relays that claim at the same moment can interleave their ``SKIP LOCKED`` scans, each
locking every other row of one aggregate. The other relay is played here by a second database
connection that holds row locks, so the interleaving happens every time.
"""

from __future__ import annotations

import threading

import pytest
from django.db import connection, connections, transaction

from bus.models import OutboxMessage
from bus.outbox import outbox_write
from tests.busapp.consumers import TEST_HAPPENED, test_effects
from tests.busapp.models import Effect
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


class RowLocks:
    """Holds ``FOR UPDATE`` locks on some outbox rows from another connection until released."""

    def __init__(self, ids: list[int]) -> None:
        self.ids = ids
        self.locked = threading.Event()
        self.release = threading.Event()
        self.thread = threading.Thread(target=self._hold)
        self.thread.start()
        assert self.locked.wait(10), "the other connection could not lock the rows"

    def _hold(self) -> None:
        try:
            with transaction.atomic():
                list(OutboxMessage.objects.select_for_update().filter(id__in=self.ids))
                self.locked.set()
                self.release.wait(30)
        finally:
            connections.close_all()

    def stop(self) -> None:
        self.release.set()
        self.thread.join(timeout=30)


def test_a_relay_never_publishes_past_a_row_of_the_aggregate_that_another_relay_holds(bus, run_relay, run_consumers):
    # given ten messages of one aggregate, and rows 2, 3 and 6 locked by someone else
    with transaction.atomic():
        for seq in range(10):
            outbox_write(
                event=TEST_HAPPENED, payload={"key": "gap", "seq": seq, "aggregate": "order:7"}, aggregate="order:7"
            )
    ids = list(OutboxMessage.objects.order_by("id").values_list("id", flat=True))
    locks = RowLocks([ids[2], ids[3], ids[6]])
    consumer = run_consumers(test_effects)
    relay = run_relay(batch_size=10, idle_interval=0.01)
    try:
        # when the relay runs meanwhile, it publishes only what comes before the first held row
        wait_until(lambda: Effect.objects.filter(key="gap").count() >= 2, what="the rows before the gap")
        wait_until(lambda: relay.worker.published >= 2, what="the relay's count")
        assert list(Effect.objects.filter(key="gap").values_list("seq", flat=True)) == [0, 1]
        assert OutboxMessage.objects.filter(sent_at__isnull=True).count() == 8
        # then, once the other relay lets go, the rest follows in the order it was written
        locks.stop()
        wait_until(lambda: Effect.objects.filter(key="gap").count() == 10, what="all ten messages")
    finally:
        locks.stop()
    relay.stop()
    consumer.stop()
    assert list(Effect.objects.filter(key="gap").values_list("seq", flat=True)) == list(range(10))
    connection.close()
