"""Every write of ordering: keyword-only, typed, atomic functions. Interfaces call these."""

from ordering.services.accounts import api_token_issue, api_token_user, customer_register, profile_update
from ordering.services.kitchen import order_item_mark_done, order_recall, order_set_priority
from ordering.services.orders import (
    ItemRequest,
    OrderRequest,
    order_cancel,
    order_move_many,
    order_place,
    order_transition,
    order_transition_by_staff,
)
from ordering.services.photos import dish_photo_set, restaurant_photo_set
from ordering.services.restaurants import (
    menu_category_create,
    menu_category_move,
    menu_category_update,
    menu_item_create,
    menu_item_move,
    menu_item_set_available,
    menu_item_update,
    restaurant_resume,
    restaurant_set_busy,
    restaurant_set_hours,
    restaurant_update_fulfilment,
    restaurant_update_settings,
)

__all__ = [
    "dish_photo_set",
    "restaurant_photo_set",
    "ItemRequest",
    "menu_category_create",
    "menu_category_move",
    "menu_category_update",
    "menu_item_move",
    "OrderRequest",
    "api_token_issue",
    "api_token_user",
    "customer_register",
    "menu_item_create",
    "menu_item_set_available",
    "menu_item_update",
    "order_cancel",
    "order_item_mark_done",
    "order_move_many",
    "order_place",
    "order_recall",
    "order_set_priority",
    "order_transition",
    "order_transition_by_staff",
    "profile_update",
    "restaurant_resume",
    "restaurant_set_busy",
    "restaurant_set_hours",
    "restaurant_update_fulfilment",
    "restaurant_update_settings",
]
