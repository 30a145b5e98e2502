"""The audit trail in templates: ``{% order_message_tree order_id %}`` shows an order's messages
nested by causation, with their handlers (the admin's order page uses it)."""

from __future__ import annotations

from typing import Any

from django import template

from audit.selectors import order_message_tree as tree_of

register = template.Library()


@register.inclusion_tag("admin/audit/message_tree.html")
def order_message_tree(order_id: int) -> dict[str, Any]:
    return {"roots": tree_of(order_id=order_id)}
