"""Routes of the server-rendered customer site."""

from django.contrib.auth import views as auth_views
from django.urls import path

from ordering import kitchen_views, views

urlpatterns = [
    path("", views.restaurant_list, name="restaurant_list"),
    path("r/<slug:slug>/", views.restaurant_menu, name="restaurant_menu"),
    path("r/<slug:slug>/board/", views.pickup_board, name="pickup_board"),
    path("cart/", views.cart, name="cart"),
    path("checkout/", views.checkout, name="checkout"),
    path("orders/", views.order_history, name="order_history"),
    path("orders/<int:order_id>/", views.order_detail, name="order_detail"),
    path("orders/<int:order_id>/cancel/", views.order_cancel, name="order_cancel"),
    path("signup/", views.signup, name="signup"),
    path("login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("account/", views.profile, name="profile"),
    path("kitchen/", kitchen_views.kitchen_index, name="kitchen_index"),
    path("kitchen/<int:restaurant_id>/", kitchen_views.kitchen_screen, name="kitchen_screen"),
]
