"""The live benchmark's driver, a process of its own: moves orders on through the real
``order_transition`` (status change, timeline row and outbox row in one transaction) at a
steady rate, and records when each (order, version) committed.

Usage (from ``bench/live.py``): ``python -m bench.live_driver PLAN.json OUT.json``; the plan
holds ``rate`` and ``steps``, a list of ``[order_id, status, actor_kind, actor_id]``.
"""

from __future__ import annotations

import json
import os
import sys
import time
from typing import Any


def drive(steps: list[list[Any]], rate: float) -> dict[str, object]:
    from django.contrib.auth import get_user_model

    from ordering.services import order_transition
    from ordering.status import Actor

    actors = dict(get_user_model().objects.in_bulk({step[3] for step in steps if step[3] is not None}))
    commits: list[tuple[int, int, float]] = []
    behind = 0.0
    begin = time.monotonic()
    for seq, (order_id, status, actor_kind, actor_id) in enumerate(steps):
        due = begin + seq / rate
        pause = due - time.monotonic()
        if pause > 0:
            time.sleep(pause)
        else:
            behind = max(behind, -pause)
        order = order_transition(order_id=order_id, to=status, actor_kind=Actor(actor_kind), actor=actors.get(actor_id))
        commits.append((order.pk, order.version, time.time()))  # the transaction has committed
    seconds = time.monotonic() - begin
    return {
        "commits": commits,
        "seconds": round(seconds, 3),
        "rate": round(len(steps) / seconds, 1),
        "max_behind_ms": round(behind * 1000, 1),
    }


def main() -> None:
    plan_path, out_path = sys.argv[1:3]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passline.settings")
    import django

    django.setup()
    with open(plan_path) as plan_file:
        plan = json.load(plan_file)
    sys.stdout.write("driving\n")
    sys.stdout.flush()
    result = drive(plan["steps"], plan["rate"])
    with open(out_path, "w") as out:
        json.dump(result, out)


if __name__ == "__main__":
    main()
