"""Fixtures shared by every kind of test."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from urllib.parse import quote

import pika
import pytest
from channels.layers import channel_layers
from pika.adapters.utils.connection_workflow import AMQPConnectorException

from bus.handlers import Handler, registered
from bus.relay import OutboxRelay
from bus.runner import WorkerRunner
from bus.topology import declare_topology
from tests.broker import ctl, purge_all, session_vhost
from tests.factories import PASSWORD, MenuCategoryFactory, MenuItemFactory, RestaurantFactory, UserFactory
from tests.support import InThread, WorkerThreads


@pytest.fixture(autouse=True)
def fresh_channel_layer():
    """Each test gets a channel layer of its own. channels-redis keeps receive state (a lock
    bound to the event loop it was made on) on the layer, and every async_to_sync in a test
    runs a new loop: a receive a failed or interrupted test left behind holds that lock on a
    dead loop, and every later socket's receive fails with "bound to a different event loop"."""
    yield
    channel_layers.backends.clear()


@pytest.fixture(autouse=True)
def closed_breakers() -> Iterator[None]:
    """Every test starts with the circuit breakers closed and their failures forgotten: their
    state lives in Redis, shared by every test of the run (a test that fails texts on purpose
    must not leave the next one's breaker open)."""
    from passline.breakers import forget_all

    forget_all()
    yield


@pytest.fixture
def password() -> str:
    return PASSWORD


@pytest.fixture
def customer(db):
    return UserFactory()


@pytest.fixture
def other_customer(db):
    return UserFactory()


@pytest.fixture
def restaurant(db):
    return RestaurantFactory(name="Casa Test")


@pytest.fixture
def menu(restaurant):
    """Two categories and three dishes; the soup has a daily stock of 5."""
    mains = MenuCategoryFactory(restaurant=restaurant, name="Mains", position=1)
    starters = MenuCategoryFactory(restaurant=restaurant, name="Starters", position=0)
    return {
        "pizza": MenuItemFactory(category=mains, name="Pizza", price=Decimal("11.50")),
        "pasta": MenuItemFactory(category=mains, name="Pasta", price=Decimal("9.25")),
        "soup": MenuItemFactory(category=starters, name="Soup", price=Decimal("4.10"), daily_stock=5),
    }


@pytest.fixture(scope="session")
def rabbit_vhost():
    """A vhost of its own for this test session on the machine's RabbitMQ, deleted after.

    One for the whole session, integration and browser tests alike: creating and deleting
    vhosts (each with its forty-odd quorum queues) during a run is churn the broker need not do.
    """
    vhost = session_vhost()
    ctl("add_vhost", vhost)
    ctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")
    yield f"amqp://guest:guest@127.0.0.1:5672/{quote(vhost, safe='')}"
    ctl("delete_vhost", vhost)


@pytest.fixture
def bus(rabbit_vhost, settings, transactional_db):
    """The broker (the session's vhost) with the topology declared and every test queue empty.

    Uses transactional_db: the relay and the consumers commit, and child processes must see it.
    """
    settings.RABBITMQ_URL = rabbit_vhost
    settings.RABBITMQ_HEARTBEAT = 5
    # A broker busy with its own housekeeping can miss a handshake deadline; that is not what
    # these tests test, so the set-up tries again, waiting longer each time, before it fails.
    for attempt in range(4):
        try:
            declare_topology()
            purge_all(rabbit_vhost)
            break
        except (pika.exceptions.AMQPConnectionError, AMQPConnectorException):
            if attempt == 3:
                raise
            time.sleep(2**attempt)
    return rabbit_vhost


@pytest.fixture
def worker_threads() -> Iterator[WorkerThreads]:
    """Relays and consumer runners in threads of this process: ``worker_threads.start(worker)``;
    whatever the test left running stops at teardown, even when the test failed, and a
    thread's error fails the test. ``worker_threads.stop()`` stops them all before then."""
    threads = WorkerThreads()
    yield threads
    threads.stop()


@pytest.fixture
def run_relay(bus, worker_threads) -> Callable[..., InThread]:
    """``run_relay(**options)``: an OutboxRelay in a thread on the test broker, polling every
    5 ms unless ``idle_interval`` says otherwise; stopped at teardown."""

    def run(**options: object) -> InThread:
        return worker_threads.start(OutboxRelay(**{"idle_interval": 0.005, **options}))

    return run


@pytest.fixture
def relay(run_relay) -> OutboxRelay:
    """The outbox relay, running in a thread for the whole test."""
    return run_relay().worker


@pytest.fixture
def run_consumers(bus, worker_threads) -> Callable[..., InThread]:
    """``run_consumers(*consumers_or_queue_names, runner=WorkerRunner, **options)``: one
    runner for those consumers in a thread on the test broker; stopped at teardown."""

    def run(*consumers: Handler | str, runner: type[WorkerRunner] = WorkerRunner, **options: object) -> InThread:
        chosen = [registered()[c] if isinstance(c, str) else c for c in consumers]
        return worker_threads.start(runner(chosen, **options))

    return run


@pytest.fixture
def run_bridge(run_relay, run_consumers) -> Callable[[], None]:
    """``run_bridge()``: the relay and the bridge (RabbitMQ to the channel layer) in threads, the
    chain behind every live page; stopped at teardown. Tests call it once the state they start
    from is written, when it matters what is relayed before a socket listens."""
    from consumers.bridge import bridge_notification

    def run() -> None:
        run_relay()
        run_consumers(bridge_notification)

    return run
