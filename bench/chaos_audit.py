"""The chaos soak's audit: what the database holds after the faults, against what the customers
were told and what their trackers show.

* **Orders.** Every order the API accepted (answered 201 with an id) is in the database under
  its key (else *lost*) and in a final state: ``paid`` (the soak plays no kitchen, so a paid
  order stays paid), ``cancelled`` or ``rejected``; ``pending_payment`` after the settling time
  is *unconverged*, and ``payment_failed`` is a problem too (every wallet holds far more than
  the soak spends). One key never makes two orders (else *duplicated*).
* **Money.** Each movement once: no two ledger entries of a wallet share a key; a paid order
  has exactly one charge and no refund; a cancelled or rejected one as many refunds as charges
  (none or one each); no order has two charges or two refunds (else *duplicated*). Every
  wallet's balance is the sum of its ledger entries.
* **Trackers.** Each tracker's last version and status are the database's.
* **Dead letters** of the run, listed with their queue, type and reason; each is a problem.

Convergence after a fault (``convergence``): an order's latency is the time from the
customer's first attempt to place it to its ``paid`` event in the database; it is *slow* when
that exceeds ``slow_s`` (2 s by default; unhurt, the soak's orders are paid in well under a
second). Each slow order is put down to the last fault injected before it became slow (its
first attempt plus ``slow_s``: the fault under way when it should have been paid). A fault's
convergence time is from its injection to the payment of the last slow order put down to it:
the time until ordering was back to normal and every order it held up was through. 0 when it
held up none; none (never) when an order it held up was never paid.
"""

from __future__ import annotations

import bisect
import time
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from bench import common

FINAL = {"paid", "cancelled", "rejected"}


def database_orders(restaurant_id: int) -> dict[int, dict[str, Any]]:
    """The soak's orders: id → status, version, key, created and paid times (epoch seconds)."""
    from ordering.models import Order, OrderEvent

    orders = {
        row["id"]: {
            "status": row["status"],
            "version": row["version"],
            "key": row["idempotency_key"],
            "created": row["created_at"].timestamp(),
            "paid": None,
        }
        for row in Order.objects.filter(restaurant_id=restaurant_id).values(
            "id", "status", "version", "idempotency_key", "created_at"
        )
    }
    events = OrderEvent.objects.filter(order__restaurant_id=restaurant_id, status="paid").values_list("order_id", "at")
    for order_id, at in events:
        if order_id in orders:
            orders[order_id]["paid"] = at.timestamp()
    return orders


def charges_and_refunds(order_ids: list[int]) -> dict[int, Counter[str]]:
    from django.db.models import Count

    from billing.models import LedgerEntry

    movements: dict[int, Counter[str]] = defaultdict(Counter)
    for start in range(0, len(order_ids), 2000):
        rows = (
            LedgerEntry.objects.filter(order_id__in=order_ids[start : start + 2000])
            .values("order_id", "kind")
            .annotate(n=Count("id"))
        )
        for row in rows:
            movements[row["order_id"]][row["kind"]] += row["n"]
    return movements


def outstanding(restaurant_id: int) -> dict[str, int]:
    """What the system still has to do for the soak's orders: orders waiting for payment,
    outbox rows due and not sent, cancelled orders charged and not refunded yet."""
    from django.utils import timezone

    from bus.models import OutboxMessage
    from ordering.models import Order

    orders = database_orders(restaurant_id)
    movements = charges_and_refunds(list(orders))
    return {
        "pending_payment": sum(1 for o in orders.values() if o["status"] == "pending_payment"),
        "outbox_unsent": OutboxMessage.objects.filter(sent_at__isnull=True, available_at__lte=timezone.now()).count(),
        "unrefunded": sum(
            1
            for order_id, o in orders.items()
            if o["status"] in ("cancelled", "rejected")
            and movements[order_id]["charge"] > movements[order_id]["refund"]
        ),
        "orders": Order.objects.filter(restaurant_id=restaurant_id).count(),
    }


def settled(restaurant_id: int) -> bool:
    left = outstanding(restaurant_id)
    return not (left["pending_payment"] or left["outbox_unsent"] or left["unrefunded"])


def wait_settled(restaurant_id: int, timeout: float) -> tuple[bool, float, dict[str, int]]:
    """Wait (at most ``timeout``) until nothing is outstanding: (settled, seconds, what is left)."""
    started = time.monotonic()
    while True:
        left = outstanding(restaurant_id)
        done = not (left["pending_payment"] or left["outbox_unsent"] or left["unrefunded"])
        if done or time.monotonic() - started > timeout:
            return done, round(time.monotonic() - started, 1), left
        time.sleep(1)


def audit(
    restaurant_id: int, user_ids: list[int], placed: dict[str, Any], trackers: list[dict[str, Any]], since: float
) -> dict[str, Any]:
    """Everything the soak checks, and the problems found (none: it passed)."""
    from django.db.models import Count, Sum

    from billing.models import LedgerEntry, Wallet
    from bus.models import DeadLetter

    orders = database_orders(restaurant_id)
    by_key: dict[str, list[int]] = defaultdict(list)
    for order_id, order in orders.items():
        by_key[order["key"]].append(order_id)
    client = placed["orders"]
    accepted = [o for o in client if "id" in o]
    lost = [o["key"] for o in accepted if o["id"] not in orders or o["id"] not in by_key.get(o["key"], [])]
    answered_keys = {o["key"] for o in accepted}
    statuses = Counter(o["status"] for o in orders.values())
    unconverged = sorted(i for i, o in orders.items() if o["status"] not in FINAL and o["status"] != "payment_failed")

    movements = charges_and_refunds(list(orders))
    money: list[str] = []
    duplicated_orders = {key: ids for key, ids in by_key.items() if len(ids) > 1}
    duplicated_money: list[int] = []
    for order_id, order in orders.items():
        charges, refunds = movements[order_id]["charge"], movements[order_id]["refund"]
        if charges > 1 or refunds > 1:
            duplicated_money.append(order_id)
        elif order["status"] == "paid" and (charges, refunds) != (1, 0):
            money.append(f"order {order_id} paid with {charges} charges and {refunds} refunds")
        elif order["status"] in ("cancelled", "rejected") and charges != refunds:
            money.append(f"order {order_id} {order['status']} with {charges} charges and {refunds} refunds")
        elif order["status"] in ("payment_failed", "pending_payment") and (charges or refunds):
            money.append(f"order {order_id} {order['status']} with {charges} charges and {refunds} refunds")
    duplicate_keys = list(
        LedgerEntry.objects.filter(wallet__user_id__in=user_ids)
        .values("wallet_id", "idempotency_key")
        .annotate(n=Count("id"))
        .filter(n__gt=1)
        .values_list("wallet_id", "idempotency_key")
    )
    sums = dict(
        LedgerEntry.objects.filter(wallet__user_id__in=user_ids)
        .values("wallet_id")
        .annotate(total=Sum("amount"))
        .values_list("wallet_id", "total")
    )
    wallets = list(Wallet.objects.filter(user_id__in=user_ids).values_list("id", "balance"))
    wallet_mismatches = [
        f"wallet {wallet_id}: balance {balance}, ledger {sums.get(wallet_id) or Decimal('0')}"
        for wallet_id, balance in wallets
        if balance != (sums.get(wallet_id) or Decimal("0"))
    ]

    tracker_mismatches = []
    for tracker in trackers:
        found = orders.get(tracker["order_id"])
        if found is None or (tracker["version"], tracker["status"]) != (found["version"], found["status"]):
            shown = f"v{tracker['version']} {tracker['status'] or '-'}"
            truth = f"v{found['version']} {found['status']}" if found else "no such order"
            tracker_mismatches.append(f"order {tracker['order_id']}: tracker {shown}, database {truth}")

    letters = list(
        DeadLetter.objects.filter(dead_at__gte=datetime.fromtimestamp(since, UTC)).values(
            "queue", "type", "reason", "attempts", "message_id"
        )
    )
    dead_letters = Counter((d["queue"], d["type"], (d["reason"] or "").splitlines()[0][:200]) for d in letters)

    problems = []
    if lost:
        problems.append(f"{len(lost)} accepted orders lost: {lost[:5]}")
    if duplicated_orders:
        problems.append(f"{len(duplicated_orders)} keys made more than one order: {list(duplicated_orders)[:5]}")
    if duplicated_money:
        problems.append(f"{len(duplicated_money)} orders charged or refunded more than once: {duplicated_money[:5]}")
    if duplicate_keys:
        problems.append(f"{len(duplicate_keys)} ledger keys used twice in a wallet: {duplicate_keys[:5]}")
    if unconverged:
        problems.append(f"{len(unconverged)} orders not in a final state: {unconverged[:10]}")
    if statuses.get("payment_failed"):
        problems.append(f"{statuses['payment_failed']} orders payment_failed, though every wallet holds enough")
    problems += money[:20]
    problems += wallet_mismatches[:20]
    if tracker_mismatches:
        problems.append(f"{len(tracker_mismatches)} trackers differ from the database: {tracker_mismatches[:5]}")
    if letters:
        problems.append(f"{len(letters)} dead letters")
    refused = Counter(o["refused"] for o in client if "refused" in o)
    if refused:
        problems.append(f"orders refused: {dict(refused)}")
    return {
        "orders_sent": len(client),
        "accepted": len(accepted),
        "given_up": sum(1 for o in client if "gave_up" in o),
        "refused": dict(refused),
        "in_database": len(orders),
        "placed_but_never_answered": sum(1 for o in orders.values() if o["key"] not in answered_keys),
        "statuses": dict(statuses),
        "lost": len(lost),
        "duplicated": len(duplicated_orders) + len(duplicated_money) + len(duplicate_keys),
        "unconverged": len(unconverged),
        "money_problems": len(money),
        "wallets_checked": len(wallets),
        "wallet_mismatches": len(wallet_mismatches),
        "trackers": len(trackers),
        "trackers_converged": len(trackers) - len(tracker_mismatches),
        "tracker_mismatches": tracker_mismatches[:20],
        "tracker_reconnects": sum(max(0, t["connects"] - 1) for t in trackers),
        "dead_letters": [
            {"queue": q, "type": t, "reason": r, "count": n} for (q, t, r), n in dead_letters.most_common()
        ],
        "problems": problems,
    }


def convergence(
    faults: list[dict[str, Any]], placed: dict[str, Any], restaurant_id: int, ended: float, slow_s: float
) -> dict[str, Any]:
    """Each fault's convergence time (module docstring)."""
    orders = database_orders(restaurant_id)
    first_attempt = {o["key"]: o["first_at"] for o in placed["orders"]}
    cancelled_by_client = {c["id"] for c in placed["cancels"]}
    latencies = []  # (placed, paid or None)
    for order_id, order in orders.items():
        if order_id in cancelled_by_client and order["paid"] is None:
            continue  # cancelled before it was paid: no payment to wait for
        latencies.append((first_attempt.get(order["key"], order["created"]), order["paid"]))
    starts = [fault["at"] for fault in faults]
    first_fault = starts[0] if starts else ended
    baseline = [paid - at for at, paid in latencies if paid is not None and paid < first_fault]
    blamed: dict[int, list[tuple[float, float]]] = defaultdict(list)  # fault index → its slow orders
    never: dict[int, int] = defaultdict(int)
    slow_before_faults = 0
    for at, paid in latencies:
        if paid is not None and paid - at <= slow_s:
            continue
        # The last fault injected before the order became slow: the one under way when it should
        # have been paid.
        index = bisect.bisect_right(starts, at + slow_s) - 1
        if index < 0:
            slow_before_faults += 1
        elif paid is None:
            never[index] += 1
        else:
            blamed[index].append((at, paid))
    failures = [at for at, _ in placed["failures"]]
    results = []
    for index, fault in enumerate(faults):
        window_end = starts[index + 1] if index + 1 < len(starts) else ended
        slow = sorted(blamed.get(index, []), key=lambda pair: pair[1])
        seconds = None if never.get(index) else round(slow[-1][1] - fault["at"], 1) if slow else 0.0
        zero = fault["at"] - fault["at_s"]  # the soak's start
        results.append(
            {
                **fault,
                "convergence_s": seconds,
                "slow_orders": len(slow),
                # The last ones paid: [placed, paid] in seconds from the soak's start.
                "last_slow_orders": [[round(at - zero, 1), round(paid - zero, 1)] for at, paid in slow[-5:]],
                "never_paid": never.get(index, 0),
                "failed_requests": sum(1 for at in failures if fault["at"] <= at < window_end),
            }
        )
    measured = [r["convergence_s"] for r in results]
    return {
        "slow_s": slow_s,
        "before_faults_p50_s": round(common.percentile(baseline, 50), 3) if baseline else None,
        "before_faults_p99_s": round(common.percentile(baseline, 99), 3) if baseline else None,
        "slow_before_faults": slow_before_faults,
        "worst_s": None if None in measured else max(measured, default=0.0),
        "faults": results,
    }
