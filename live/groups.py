"""Channels group names, from one place."""


def order_group(order_id: int) -> str:
    return f"order.{order_id}"


def customer_group(user_id: int) -> str:
    return f"customer.{user_id}"


def kitchen_group(restaurant_id: int) -> str:
    return f"kitchen.{restaurant_id}"


def menu_group(restaurant_id: int) -> str:
    return f"menu.{restaurant_id}"


def board_group(restaurant_id: int) -> str:
    return f"board.{restaurant_id}"


def session_group(session_key: str) -> str:
    """Every socket opened under one browser session: told to close when it logs out."""
    return f"session.{session_key}"


def dashboard_group(restaurant_id: int | None) -> str:
    """A restaurant's analytics dashboards; None: the all-restaurants dashboard."""
    return "dashboard.all" if restaurant_id is None else f"dashboard.{restaurant_id}"
