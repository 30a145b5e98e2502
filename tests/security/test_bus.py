"""The bus as a trust boundary between process roles, on the real RabbitMQ: every role connects
as its own user with only its own rights, a message whose type its publisher's role may not
publish is dead-lettered, a publisher cannot claim another user, an RPC reply counts only from
the serving role, and a dead letter is replayed only into the queue it died in, and only when
its publisher had the right to it.

The users are made for this module by ``manage.py bus_users`` (as scripts/setup.sh makes a
checkout's), named with a prefix of their own on the session's vhost, and deleted after.
"""

from __future__ import annotations

import io
import json
import secrets
import subprocess
import threading
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pika
import pytest
from django.core.management import CommandError, call_command
from django.test import override_settings
from pika.exceptions import ChannelClosedByBroker, ProbableAuthenticationError

from billing.events import BALANCE_CREDIT, BALANCE_DEBIT
from billing.models import LedgerEntry, Wallet
from bus import roles
from bus.connection import connection_parameters, message_properties
from bus.deadletters import dead_letter_collector
from bus.envelope import Envelope
from bus.models import DeadLetter, OutboxMessage
from bus.rpc import RpcClient, RpcTimeout
from bus.runner import ATTEMPT_HEADER
from bus.services import DeadLetterNotReplayable, dead_letter_replay
from consumers.balance import balance_commands
from consumers.billing import billing_order_placed, billing_refunds
from ordering.models import Order
from tests.broker import RABBITMQCTL
from tests.busapp.consumers import test_effects
from tests.busapp.models import Effect
from tests.factories import MenuItemFactory, OrderFactory, RestaurantFactory
from tests.support import wait_until

# The test consumers' queue gets a role of its own, as a real worker's has.
TEST_ROLE = roles.Role("test-effects", queues=(test_effects.queue,))


@pytest.fixture(scope="module")
def role_users(rabbit_vhost):
    """Every role's user on the session's vhost, with passwords of this module's own."""
    prefix = f"passline-test-{uuid.uuid4().hex[:8]}-"
    roles.define(TEST_ROLE)
    passwords = {role: secrets.token_urlsafe(16) for role in roles.ROLES}
    config = {
        "RABBITMQ_URL": rabbit_vhost,
        "RABBITMQ_USER_PREFIX": prefix,
        "RABBITMQ_ROLE_PASSWORDS": passwords,
        "BUS_ROLES": True,
    }
    try:
        with override_settings(**config):
            call_command("bus_users", stdout=io.StringIO())
        yield config
    finally:
        for role in roles.ROLES:
            subprocess.run([RABBITMQCTL, "-q", "delete_user", f"{prefix}{role}"], capture_output=True, timeout=60)
        roles.ROLES.pop(TEST_ROLE.name, None)


@pytest.fixture
def as_roles(bus, role_users, settings):
    """The broker with roles on: every process from here connects as its role's user."""
    for name, value in role_users.items():
        setattr(settings, name, value)
    return role_users


def connect(role: str) -> pika.BlockingConnection:
    return pika.BlockingConnection(connection_parameters(role, name=f"test-{role}"))


def publish_as(
    role: str,
    envelope: Envelope,
    *,
    exchange: str = "",
    routing_key: str,
    headers: dict | None = None,
    user_id: str | None = None,
    reply_to: str | None = None,
) -> None:
    """Publish, confirmed, as ``role``'s user (with its own user_id unless another is given)."""
    connection = connect(role)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = message_properties(
            message_id=envelope.message_id,
            type=envelope.type,
            correlation_id=envelope.correlation_id,
            timestamp=0,
            user_id=user_id or roles.user(role),
            reply_to=reply_to,
            headers=headers,
        )
        channel.basic_publish(exchange, routing_key, envelope.to_json(), properties, mandatory=True)
    finally:
        if connection.is_open:
            connection.close()


def credit_command(user_id: int, key: str, amount: str = "50.00") -> Envelope:
    payload = {"user_id": user_id, "amount": amount, "key": key, "kind": "top_up", "description": "free money"}
    return Envelope(type=BALANCE_CREDIT.name, version=1, payload=payload, correlation_id=f"c-{key}")


def happened(key: str, **fields) -> Envelope:
    return Envelope(type="test.happened", version=1, payload={"key": key, **fields}, correlation_id=f"c-{key}")


def dead_letter(message_id: str) -> DeadLetter:
    wait_until(lambda: DeadLetter.objects.filter(message_id=message_id).exists(), timeout=30, what="the dead letter")
    return DeadLetter.objects.get(message_id=message_id)


def refused_code(action: Callable[[], object]) -> int:
    """The reply code of the broker's refusal of ``action(channel)`` (0: it was allowed)."""
    with pytest.raises(ChannelClosedByBroker) as refused:
        action()
    return refused.value.reply_code


# --- least privilege -------------------------------------------------------------------------------


def test_each_role_may_only_read_its_own_queues_and_configure_nothing(as_roles):
    # a worker role reads its own queue, and nobody else's
    connection = connect("notifier-sms")
    try:
        connection.channel().basic_consume("notifier.sms", lambda *a: None)
        assert refused_code(lambda: connection.channel().basic_consume("balance.commands", lambda *a: None)) == 403
        # and may declare nothing: the topology role does
        assert refused_code(lambda: connection.channel().queue_declare("sneaky", durable=True)) == 403
        assert refused_code(lambda: connection.channel().queue_delete("billing.refunds")) == 403
    finally:
        connection.close()
    # the relay publishes and reads nothing; the collector reads only the dead-letter queues
    relay = connect(roles.RELAY)
    try:
        assert refused_code(lambda: relay.channel().basic_consume("audit.events", lambda *a: None)) == 403
    finally:
        relay.close()
    collector = connect(roles.DEADLETTERS)
    try:
        collector.channel().basic_consume("billing.refunds.dead", lambda *a: None)
        assert refused_code(lambda: collector.channel().basic_consume("billing.refunds", lambda *a: None)) == 403
    finally:
        collector.close()


def test_a_role_without_a_password_or_with_a_wrong_one_does_not_connect(as_roles, settings):
    settings.RABBITMQ_ROLE_PASSWORDS = {**as_roles["RABBITMQ_ROLE_PASSWORDS"], "billing": "not-the-password"}
    with pytest.raises(ProbableAuthenticationError):
        connect("billing")
    settings.RABBITMQ_ROLE_PASSWORDS = {k: v for k, v in as_roles["RABBITMQ_ROLE_PASSWORDS"].items() if k != "billing"}
    with pytest.raises(roles.RoleError, match="RABBITMQ_PASSWORD_BILLING"):
        connect("billing")


def test_only_billing_may_send_wallet_commands_on_the_balance_exchange(as_roles):
    command = credit_command(1, "exchange")
    # the relay publishes events on the balance exchange, never a command (topic permission)
    with pytest.raises(ChannelClosedByBroker) as refused:
        publish_as(roles.RELAY, command, exchange="balance", routing_key="balance.credit")
    assert refused.value.reply_code == 403
    # a worker that sends no commands may not write to the exchange at all
    with pytest.raises(ChannelClosedByBroker) as refused:
        publish_as("notifier", command, exchange="balance", routing_key="balance.credit")
    assert refused.value.reply_code == 403


def test_a_publish_in_another_users_name_is_refused_by_the_broker(as_roles):
    with pytest.raises(ChannelClosedByBroker) as refused:
        publish_as("notifier", credit_command(1, "name"), routing_key="balance.commands", user_id=roles.user("billing"))
    assert refused.value.reply_code == 406
    assert "user_id" in refused.value.reply_text


# --- publishers checked by the consumer ------------------------------------------------------------


def test_a_credit_forged_by_another_role_is_dead_lettered_and_never_credited(as_roles, run_consumers, customer):
    run_consumers(balance_commands)
    run_consumers(dead_letter_collector)
    # given two roles with real credentials: a worker, and the relay (which publishes events)
    # when each puts a balance.credit straight into the balance worker's queue (the default
    # exchange reaches any queue: every worker may write it, for its own retries)
    forged = {role: credit_command(customer.pk, f"forged-{role}") for role in ("notifier", roles.RELAY)}
    for role, envelope in forged.items():
        publish_as(role, envelope, routing_key="balance.commands")
    # then both are dead-lettered with the reason, and nobody was credited
    wait_until(
        lambda: DeadLetter.objects.filter(type="balance.credit").count() == 2,
        timeout=30,
        what="both forged credits dead-lettered",
    )
    letters = list(DeadLetter.objects.filter(type="balance.credit"))
    assert not LedgerEntry.objects.exists()
    assert not Wallet.objects.filter(user=customer, balance__gt=0).exists()
    by_publisher = {letter.publisher: letter for letter in letters}
    assert set(by_publisher) == {roles.user("notifier"), roles.user(roles.RELAY)}
    for letter in letters:
        assert letter.queue == "balance.commands"
        assert "unauthorized publisher" in letter.reason
        # and an operator's replay would launder it: refused
        with pytest.raises(DeadLetterNotReplayable):
            dead_letter_replay(dead_letter_id=letter.pk)
    assert not OutboxMessage.objects.exists()
    # while the role that sends credits gets its credit
    answer = RpcClient(role="billing").call(BALANCE_CREDIT, forged["notifier"].payload | {"key": "real"}, timeout=10)
    assert Decimal(answer["balance"]) == Decimal("50.00")


def test_an_rpc_reply_from_anyone_but_the_serving_role_is_ignored(as_roles, customer):
    # given no balance worker, and the audit role, which sees every command and its reply_to
    forged: list[str] = []

    def answer_first() -> None:
        connection = connect("audit")
        try:
            channel = connection.channel()
            for _ in range(200):
                method, properties, body = channel.basic_get("audit.events", auto_ack=True)
                if method is not None and properties is not None and properties.type == BALANCE_DEBIT.name:
                    assert properties.reply_to and properties.correlation_id
                    reply = json.dumps({"ok": True, "result": {"entry_id": 1, "balance": "999.00"}}).encode()
                    channel.basic_publish(
                        "",
                        properties.reply_to,
                        reply,
                        pika.BasicProperties(correlation_id=properties.correlation_id, user_id=roles.user("audit")),
                    )
                    forged.append(properties.correlation_id)
                    return
                connection.sleep(0.05)
        finally:
            connection.close()

    forger = threading.Thread(target=answer_first)
    forger.start()
    # when billing debits and the audit role answers "ok" first
    payload = {"user_id": customer.pk, "amount": "5.00", "key": "k", "kind": "charge", "description": "d"}
    with pytest.raises(RpcTimeout):
        RpcClient(role="billing").call(BALANCE_DEBIT, payload, timeout=4)
    forger.join(timeout=20)
    # then the forged answer was sent, and not believed
    assert forged


def test_retries_keep_the_first_publisher_and_a_claimed_one_is_not_believed(as_roles, run_consumers):
    run_consumers(test_effects)
    run_consumers(dead_letter_collector)
    # a message from the relay that fails once comes back through the retry queue (republished
    # by the worker as itself) and is handled
    publish_as(roles.RELAY, happened("retried", fail_times=1), routing_key=test_effects.queue)
    wait_until(lambda: Effect.objects.filter(key="retried").exists(), timeout=30, what="the retried message handled")
    # another role claiming, in the worker's own header, that the relay published it
    claimed = happened("claimed")
    publish_as(
        "analytics", claimed, routing_key=test_effects.queue, headers={roles.PUBLISHER_HEADER: roles.user(roles.RELAY)}
    )
    letter = dead_letter(claimed.message_id)
    assert letter.publisher == roles.user("analytics")
    assert "unauthorized publisher" in letter.reason
    assert not Effect.objects.filter(key="claimed").exists()


@pytest.mark.parametrize("attempt", ["abc", -1, 10**9, {"n": 1}])
def test_a_malformed_attempt_header_is_dead_lettered_and_the_worker_goes_on(as_roles, run_consumers, attempt):
    worker = run_consumers(test_effects)
    run_consumers(dead_letter_collector)
    bad = happened("bad-attempt")
    publish_as(roles.RELAY, bad, routing_key=test_effects.queue, headers={ATTEMPT_HEADER: attempt})
    letter = dead_letter(bad.message_id)
    assert ATTEMPT_HEADER in letter.reason
    publish_as(roles.RELAY, happened("after"), routing_key=test_effects.queue)
    wait_until(lambda: Effect.objects.filter(key="after").exists(), timeout=30, what="the next message handled")
    assert worker.thread.is_alive()
    assert not Effect.objects.filter(key="bad-attempt").exists()


# --- dead letters ----------------------------------------------------------------------------------


def test_a_dead_letter_is_replayed_into_the_queue_it_died_in_and_nowhere_else(as_roles, run_consumers):
    run_consumers(test_effects)
    run_consumers(dead_letter_collector)
    # a real dead letter: the relay's message fails for good in its worker
    dead = happened("dies", permanent=True)
    publish_as(roles.RELAY, dead, routing_key=test_effects.queue)
    letter = dead_letter(dead.message_id)
    assert (letter.queue, letter.publisher) == (test_effects.queue, roles.user(roles.RELAY))
    row = dead_letter_replay(dead_letter_id=letter.pk)
    assert (row.exchange, row.routing_key) == ("", test_effects.queue)

    # a letter that names another queue in its headers, in billing.refunds.dead as the billing
    # worker would put it there: replayed into billing.refunds, whatever the header says
    status = Envelope(
        type="order.status_changed", version=1, payload={"order_id": 1}, correlation_id="c-status", message_id="m-s"
    )
    claims = {"x-passline-queue": "balance.commands", "x-passline-reason": "boom"}
    publish_as(
        "billing",
        status,
        exchange="dead-letter",
        routing_key="billing.refunds",
        headers={**claims, roles.PUBLISHER_HEADER: roles.user(roles.RELAY)},
    )
    # and the same from a role that may not publish it (it may write dead-letter, for its own)
    forged = Envelope(type="order.status_changed", version=1, payload={}, correlation_id="c-f", message_id="m-f")
    publish_as(
        "analytics",
        forged,
        exchange="dead-letter",
        routing_key="billing.refunds",
        headers={**claims, roles.PUBLISHER_HEADER: roles.user(roles.RELAY)},
    )
    wait_until(lambda: DeadLetter.objects.filter(message_id__in=["m-s", "m-f"]).count() == 2, timeout=30, what="both")
    kept = DeadLetter.objects.get(message_id="m-s")
    assert (kept.queue, kept.publisher) == ("billing.refunds", roles.user(roles.RELAY))
    assert dead_letter_replay(dead_letter_id=kept.pk).routing_key == "billing.refunds"
    smuggled = DeadLetter.objects.get(message_id="m-f")
    assert (smuggled.queue, smuggled.publisher) == ("billing.refunds", roles.user("analytics"))
    with pytest.raises(DeadLetterNotReplayable, match="unauthorized publisher"):
        dead_letter_replay(dead_letter_id=smuggled.pk)
    assert not OutboxMessage.objects.filter(routing_key="balance.commands").exists()


def test_every_queue_is_bounded_and_dead_letter_queues_in_bytes_too(bus):
    listed = subprocess.run(
        [RABBITMQCTL, "-q", "list_queues", "-p", _vhost(bus), "name", "arguments", "--formatter", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    queues = {queue["name"]: dict(_pairs(queue["arguments"])) for queue in json.loads(listed.stdout)}
    assert queues
    for name, arguments in queues.items():
        assert arguments.get("x-max-length"), name
        assert arguments.get("x-overflow") == "reject-publish", name
        if name.endswith(".dead") or name == "bus.parked":
            assert arguments.get("x-max-length-bytes"), name
    # the collector never republishes: it has no retry queues to lose letters in
    assert dead_letter_collector.retry_delays == ()
    assert not any(name.startswith("bus.deadletters.") for name in queues)


def _vhost(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path[1:])


def _pairs(arguments: Any) -> Any:
    # rabbitmqctl's JSON gives a queue's arguments as [[name, type, value], ...] or as an object.
    if isinstance(arguments, dict):
        return arguments.items()
    return [(item[0], item[-1]) for item in arguments]


# --- how a process knows its role, and how the users are made --------------------------------------


def test_a_worker_consumes_only_one_roles_queues(as_roles):
    with pytest.raises(CommandError, match="one process consumes one role's queues"):
        call_command("consume", "balance.commands", "billing.refunds")
    assert roles.role_of_queues(["billing.order_placed", "billing.refunds"]) == "billing"


def test_setting_up_the_users_again_never_changes_a_password(as_roles, settings):
    settings.RABBITMQ_ROLE_PASSWORDS = {**as_roles["RABBITMQ_ROLE_PASSWORDS"], "bridge": "another-password"}
    call_command("bus_users", stdout=io.StringIO())
    with pytest.raises(ProbableAuthenticationError):
        connect("bridge")
    settings.RABBITMQ_ROLE_PASSWORDS = as_roles["RABBITMQ_ROLE_PASSWORDS"]
    connect("bridge").close()


# --- the whole chain -------------------------------------------------------------------------------


def test_an_order_is_paid_with_every_process_on_its_own_user(as_roles, relay, run_consumers, customer):
    run_consumers(balance_commands)
    run_consumers(billing_order_placed, billing_refunds)
    RpcClient(role="billing").call(
        BALANCE_CREDIT,
        {"user_id": customer.pk, "amount": "30.00", "key": "top-up", "kind": "top_up", "description": "top-up"},
        timeout=10,
    )
    dish = MenuItemFactory(category__restaurant=RestaurantFactory(), price=Decimal("12.50"), daily_stock=10)
    OrderFactory(customer=customer, dish=dish, quantity=2)
    wait_until(lambda: Order.objects.get(customer=customer).status == "paid", timeout=30, what="the order paid")
    assert Wallet.objects.get(user=customer).balance == Decimal("5.00")
    # and the relay's topic permissions let every event of it out (a refusal would close its channel)
    wait_until(lambda: not OutboxMessage.objects.filter(sent_at__isnull=True).exists(), timeout=30, what="all sent")
    sent = set(OutboxMessage.objects.values_list("type", flat=True))
    assert {"order.placed", "order.status_changed", "payment.succeeded"} <= sent, sent


def test_the_relay_replays_only_into_a_consumers_queue(as_roles, run_relay):
    from django.db import transaction

    with transaction.atomic():
        row = OutboxMessage.objects.create(
            message_id="m-parked",
            type="order.status_changed",
            exchange="",
            routing_key="bus.parked",
            aggregate="dead-letter:1",
            correlation_id="c",
            body="{}",
        )
    run_relay()
    wait_until(lambda: OutboxMessage.objects.get(pk=row.pk).attempts > 0, timeout=30, what="the row refused")
    refused = OutboxMessage.objects.get(pk=row.pk)
    assert refused.sent_at is None
    assert "no consumer's queue" in refused.last_error


def test_every_process_of_the_procfile_has_the_role_of_its_name_and_every_queue_a_role():
    from pathlib import Path

    from bus.handlers import registered

    procfile = (Path(__file__).resolve().parents[2] / "Procfile").read_text().splitlines()
    processes = dict(line.split(":", 1) for line in procfile if line.strip() and not line.startswith("#"))
    for name, command in processes.items():
        words = command.split()
        if "consume" in words:
            assert roles.role_of_queues(words[words.index("consume") + 1 :]) == name
        elif "relay_outbox" in words:
            assert name == roles.RELAY
        else:
            # no broker user: web writes the outbox; the scheduler prunes the database
            assert (name == "web" and "manage.py" not in command) or (name == "scheduler" and "scheduler" in words)
    own = [queue for queue in registered() if not queue.startswith("test.")]
    assert {roles.role_of_queues([queue]) for queue in own} == set(processes) - {"web", "scheduler", roles.RELAY}


@pytest.mark.slow
def test_the_users_are_made_through_the_management_api_as_in_a_container(settings, tmp_path):
    """The Docker set-up's path: ``bus_users --management-url`` against a broker of its own
    with the management plugin (the machine's shared broker has none)."""
    from tests.integration.conftest import PrivateBroker
    from tests.support import free_port

    broker = PrivateBroker()
    api_port = free_port()
    (broker.dir / "enabled_plugins").write_text("[rabbitmq_management].\n")
    with open(broker.dir / "rabbitmq.conf", "a") as conf:
        conf.write(f"management.tcp.ip = 127.0.0.1\nmanagement.tcp.port = {api_port}\n")
    try:
        broker.start()
        settings.RABBITMQ_URL = broker.url.replace("/%2F", "/passline-compose")
        settings.RABBITMQ_USER_PREFIX = "passline-"
        settings.RABBITMQ_ROLE_PASSWORDS = {role: secrets.token_urlsafe(16) for role in roles.ROLES}
        settings.BUS_ROLES = True
        api = f"http://guest:guest@127.0.0.1:{api_port}"
        wait_until(lambda: _answers(api), timeout=60, what="the management API")
        call_command("bus_users", management_url=api, stdout=io.StringIO())
        # every role logs in to the vhost with its own password and only its own rights
        connection = connect("bridge")
        assert refused_code(lambda: connection.channel().queue_declare("sneaky")) == 403
        connection.close()
        # and a second run keeps the passwords it finds
        first = dict(settings.RABBITMQ_ROLE_PASSWORDS)
        settings.RABBITMQ_ROLE_PASSWORDS = dict.fromkeys(roles.ROLES, "changed")
        call_command("bus_users", management_url=api, stdout=io.StringIO())
        settings.RABBITMQ_ROLE_PASSWORDS = first
        connect("relay").close()
    finally:
        broker.shutdown()


def _answers(api: str) -> bool:
    import urllib.error
    import urllib.request

    try:
        request = urllib.request.Request(api.replace("guest:guest@", "") + "/api/overview")
        request.add_header("Authorization", "Basic Z3Vlc3Q6Z3Vlc3Q=")
        urllib.request.urlopen(request, timeout=2).close()
        return True
    except (urllib.error.URLError, OSError):
        return False
