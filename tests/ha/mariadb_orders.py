"""A client placing orders through the JSON API of a running daphne, one after another, for
the MariaDB failover test: ``python -m tests.ha.mariadb_orders URL STOP_FILE``.

It first makes its customer, restaurant and dish and its bearer token directly in the
database of the environment, then places each order with ``POST /api/v1/orders`` under its
own Idempotency-Key, retried under the same key while the answer is 503, as the contract
tells a client to. One JSON line per answer on stdout: ``{"key", "status", "id", "t"}``
(``t`` the wall-clock time; status 0 when daphne gave no answer).
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request
from decimal import Decimal
from pathlib import Path
from typing import cast

import django

RETRY_PAUSE = 0.05


def post(url: str, body: dict[str, object], headers: dict[str, str]) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(
        url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json", **headers}, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")
    except OSError as error:
        return 0, {"error": {"code": type(error).__name__}}


def main(url: str, stop_file: Path) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "passline.settings")
    django.setup()
    from django.contrib.auth.models import User

    from ordering import services
    from ordering.models import MenuItem, Restaurant
    from tests.factories import MenuCategoryFactory, MenuItemFactory, RestaurantFactory, UserFactory

    customer = cast(User, UserFactory())
    restaurant = cast(Restaurant, RestaurantFactory())
    dish = cast(MenuItem, MenuItemFactory(category=MenuCategoryFactory(restaurant=restaurant), price=Decimal("7.50")))
    authorization = f"Bearer {services.api_token_issue(user=customer)}"
    body = {
        "restaurant_id": restaurant.pk,
        "items": [{"menu_item_id": dish.pk, "quantity": 1}],
        "delivery_address": "1 Failover Lane",
    }
    n = 0
    while not stop_file.exists():
        n += 1
        key = f"failover-{n}"
        while True:
            status, answer = post(
                f"{url}/api/v1/orders", body, {"Authorization": authorization, "Idempotency-Key": key}
            )
            line: dict[str, object] = {"key": key, "status": status, "t": time.time()}
            line.update({"id": answer["id"]} if status == 201 else {"error": answer.get("error")})
            print(json.dumps(line), flush=True)
            if status not in (0, 503) or stop_file.exists():
                break
            time.sleep(RETRY_PAUSE)


if __name__ == "__main__":
    main(sys.argv[1], Path(sys.argv[2]))
