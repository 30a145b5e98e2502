"""Writers nudge the relay after they commit (bus/nudge.py), so it publishes at once rather
than at its next poll; the nudge is only a hint, and without Redis the poll still delivers."""

from __future__ import annotations

import time

import pytest
from django.db import transaction

from bus import redis_hints
from bus.models import OutboxMessage
from bus.outbox import outbox_write
from bus.relay import OutboxRelay
from tests.busapp.consumers import TEST_HAPPENED
from tests.support import wait_until

pytestmark = pytest.mark.django_db(transaction=True)
# Long enough that only a nudge can explain a quick publish.
SLOW_POLL = 30.0


def write(key: str) -> None:
    with transaction.atomic():
        outbox_write(event=TEST_HAPPENED, payload={"key": key}, aggregate=f"test:{key}")
        outbox_write(event=TEST_HAPPENED, payload={"key": key, "seq": 1}, aggregate=f"test:{key}")


def sent(key: str) -> bool:
    rows = OutboxMessage.objects.filter(aggregate=f"test:{key}")
    return rows.count() == 2 and not rows.filter(sent_at__isnull=True).exists()


def idle(relay: OutboxRelay) -> bool:
    """The relay has connected, found nothing, and waits on its poll timer."""
    return relay._timer is not None and not relay._epoch_batches


def test_a_commit_wakes_an_idle_relay_at_once(run_relay):
    relay = run_relay(idle_interval=SLOW_POLL).worker
    wait_until(lambda: idle(relay), timeout=20, what="the relay to wait on its poll timer")
    time.sleep(1.5)  # the nudge listener has subscribed by now (it starts with the relay)
    # when a transaction with two outbox rows commits
    started = time.monotonic()
    write("nudged")
    # then both are published within a second, not at the 30 s poll
    wait_until(lambda: sent("nudged"), timeout=3, what="the nudged rows to be sent")
    assert time.monotonic() - started < 3


def test_without_redis_the_write_commits_and_the_poll_delivers(settings, monkeypatch, run_relay):
    # (the relay stops at teardown before monkeypatch puts the Redis client back)
    monkeypatch.setattr(redis_hints, "_client", None)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    run_relay(idle_interval=0.2)
    write("unnudged")  # no error reaches the writer
    assert OutboxMessage.objects.filter(aggregate="test:unnudged").count() == 2
    wait_until(lambda: sent("unnudged"), timeout=10, what="the poll to send the rows")


def test_a_steady_stream_of_nudges_does_not_hold_the_relay_back(run_relay):
    # given a relay that claims 50 ms after a nudge (so that the commits of those 50 ms share
    # one claim) and would otherwise wait on its 30 s poll
    relay = run_relay(idle_interval=SLOW_POLL, nudge_delay=0.05).worker
    wait_until(lambda: idle(relay), timeout=20, what="the relay to wait on its poll timer")
    time.sleep(1.5)  # the nudge listener has subscribed by now
    # when writers commit every 10 ms for two seconds, each nudging
    first_published_while_writing = False
    for index in range(200):
        write(f"stream-{index}")
        time.sleep(0.01)
        first_published_while_writing = first_published_while_writing or sent("stream-0")
    # then the first rows went out while the stream went on: a nudge never pushes back a
    # claim that is already due (each one did, and nothing left until the writes stopped)
    assert first_published_while_writing
    wait_until(lambda: sent("stream-199"), timeout=5, what="the last rows to be sent")


def test_a_nudged_transaction_costs_one_claim(run_relay):
    # given an idle relay (its poll 30 s away)
    relay = run_relay(idle_interval=SLOW_POLL).worker
    wait_until(lambda: idle(relay), timeout=20, what="the relay to wait on its poll timer")
    time.sleep(1.5)  # the nudge listener has subscribed by now
    claims = relay.claims
    # when a transaction's rows commit and are published
    write("one-claim")
    wait_until(lambda: sent("one-claim"), timeout=3, what="the nudged rows to be sent")
    wait_until(lambda: idle(relay), timeout=5, what="the relay to be idle again")
    time.sleep(0.3)
    # then the relay read the outbox once: not again while the broker confirmed, nor after
    # (a claim of fewer rows than a batch took every row committed before it)
    assert relay.claims - claims == 1
