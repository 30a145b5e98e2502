"""Routes of the server-rendered customer site."""

from django.contrib.auth import views as auth_views
from django.urls import path

from ordering import kitchen_views, staff_views, views

urlpatterns = [
    path("", views.restaurant_list, name="restaurant_list"),
    path("r/<slug:slug>/", views.restaurant_menu, name="restaurant_menu"),
    path("r/<slug:slug>/board/", views.pickup_board, name="pickup_board"),
    path("cart/", views.cart, name="cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_history, name="order_history"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path("orders/<int:order_id>/again/", views.order_again, name="order_again"),
    path("signup/", views.signup, name="signup"),
    path("login/", views.LoginView.as_view(), name="login"),
    path("account/", views.profile, name="profile"),
    # Django's own password change and reset, with the site's templates (templates/registration/).
    path("account/password/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path("account/password/done/", auth_views.PasswordChangeDoneView.as_view(), name="password_change_done"),
    path("password-reset/", views.PasswordResetView.as_view(), name="password_reset"),
    path("password-reset/sent/", auth_views.PasswordResetDoneView.as_view(), name="password_reset_done"),
    path(
        "password-reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path("password-reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"),
    path("kitchen/", kitchen_views.kitchen_index, name="kitchen_index"),
    path("kitchen/<int:restaurant_id>/", kitchen_views.kitchen_screen, name="kitchen_screen"),
    path("staff/", staff_views.staff_index, name="staff_index"),
    path("staff/<int:restaurant_id>/", staff_views.staff_menu, name="staff_menu"),
    path("staff/<int:restaurant_id>/dishes/new/", staff_views.staff_dish, name="staff_dish_new"),
    path("staff/<int:restaurant_id>/dishes/<int:menu_item_id>/", staff_views.staff_dish, name="staff_dish"),
    path(
        "staff/<int:restaurant_id>/dishes/<int:menu_item_id>/choices/",
        staff_views.staff_dish_choices,
        name="staff_dish_choices",
    ),
    path(
        "staff/<int:restaurant_id>/dishes/<int:menu_item_id>/availability/",
        staff_views.staff_dish_availability,
        name="staff_dish_availability",
    ),
    path(
        "staff/<int:restaurant_id>/dishes/<int:menu_item_id>/move/",
        staff_views.staff_dish_move,
        name="staff_dish_move",
    ),
    path("staff/<int:restaurant_id>/categories/new/", staff_views.staff_category, name="staff_category_new"),
    path("staff/<int:restaurant_id>/categories/<int:category_id>/", staff_views.staff_category, name="staff_category"),
    path(
        "staff/<int:restaurant_id>/categories/<int:category_id>/move/",
        staff_views.staff_category_move,
        name="staff_category_move",
    ),
    path("staff/<int:restaurant_id>/opening/", staff_views.staff_opening, name="staff_opening"),
    path("staff/<int:restaurant_id>/busy/", staff_views.staff_busy, name="staff_busy"),
    path("staff/<int:restaurant_id>/settings/", staff_views.staff_settings, name="staff_settings"),
    path("staff/<int:restaurant_id>/fulfilment/", staff_views.staff_fulfilment, name="staff_fulfilment"),
    path("staff/<int:restaurant_id>/photo/", staff_views.staff_restaurant_photo, name="staff_restaurant_photo"),
    path(
        "staff/<int:restaurant_id>/dishes/<int:menu_item_id>/photo/",
        staff_views.staff_dish_photo,
        name="staff_dish_photo",
    ),
    path("staff/<int:restaurant_id>/hours/", staff_views.staff_hours, name="staff_hours"),
]
