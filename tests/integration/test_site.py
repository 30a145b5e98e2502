"""The customer site: pages, sign-up, log-in, the account page, error pages."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from ordering.models import CustomerProfile
from tests.factories import MenuCategoryFactory, MenuItemFactory, RestaurantFactory

pytestmark = pytest.mark.django_db

User = get_user_model()

SIGNUP = {
    "username": "newbie",
    "email": "newbie@example.com",
    "password": "tasty-noodles-42",
    "password_confirm": "tasty-noodles-42",
}


# Pages ---------------------------------------------------------------------------------


def test_restaurant_list_shows_cards_with_open_and_closed_badges(client):
    # given
    RestaurantFactory(name="Open Kitchen", cuisine="Thai", prep_time_minutes=25)
    RestaurantFactory(name="Shut Kitchen", is_open=False)
    # when
    response = client.get(reverse("restaurant_list"))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert "Open Kitchen" in html and "Thai" in html and "About 25 min" in html
    assert "Shut Kitchen" in html and ">Closed<" in html
    assert 'class="skip-link" href="#main"' in html
    assert 'id="cart-count"' in html


def test_menu_groups_dishes_by_category_with_prices_and_states(client, restaurant, menu):
    # given a sold-out and an unavailable dish
    desserts = MenuCategoryFactory(restaurant=restaurant, name="Desserts", position=5)
    MenuItemFactory(category=desserts, name="Gone cake", daily_stock=0)
    MenuItemFactory(category=desserts, name="Off flan", is_available=False)
    # when
    response = client.get(reverse("restaurant_menu", args=[restaurant.slug]))
    # then
    html = response.content.decode()
    assert response.status_code == 200
    assert html.index("Starters") < html.index("Mains") < html.index("Desserts")
    assert "€11.50" in html and "€4.10" in html
    assert "Sold out" in html and "Unavailable" in html
    # three orderable dishes have an add form; the sold-out and unavailable ones do not
    assert html.count(">Add to cart</button>") == 3


def test_closed_restaurant_shows_a_notice_and_no_add_buttons(client, restaurant, menu):
    # given
    restaurant.is_open = False
    restaurant.save()
    # when
    response = client.get(reverse("restaurant_menu", args=[restaurant.slug]))
    # then
    html = response.content.decode()
    assert "is closed right now" in html
    assert "Add to cart" not in html


def test_unknown_restaurant_is_the_site_404_page(client):
    response = client.get("/r/no-such-place/")
    assert response.status_code == 404
    assert "We couldn't find that page" in response.content.decode()


def test_500_template_renders_without_a_request():
    # given the bare context Django's server_error view uses
    from django.template import loader

    # when
    html = loader.get_template("500.html").render({})
    # then
    assert "Something went wrong" in html and "Passline" in html


# Sign-up -------------------------------------------------------------------------------


def test_signup_creates_the_customer_logs_in_and_goes_to_the_restaurants(client):
    # when
    response = client.post(reverse("signup"), SIGNUP)
    # then
    assert response.status_code == 302
    assert response["Location"] == reverse("restaurant_list")
    user = User.objects.get(username="newbie")
    assert user.email == "newbie@example.com" and user.check_password("tasty-noodles-42")
    assert CustomerProfile.objects.filter(user=user).exists()
    assert int(client.session["_auth_user_id"]) == user.pk


def test_signup_follows_a_safe_next_and_ignores_another_site(client):
    # when
    safe = client.post(reverse("signup") + "?next=/checkout/", SIGNUP)
    client.logout()
    unsafe = client.post(reverse("signup"), {**SIGNUP, "username": "other", "next": "https://evil.example/"})
    # then
    assert safe["Location"] == "/checkout/"
    assert unsafe["Location"] == reverse("restaurant_list")


def test_signup_with_a_taken_username_is_a_username_error(client, customer):
    # when
    response = client.post(reverse("signup"), {**SIGNUP, "username": customer.username.upper()})
    # then
    assert response.status_code == 400
    assert response.context["form"].errors["username"] == ["That username is taken."]
    assert "_auth_user_id" not in client.session


def test_signup_with_a_weak_password_is_a_password_error(client):
    # when
    response = client.post(reverse("signup"), {**SIGNUP, "password": "12345678", "password_confirm": "12345678"})
    # then
    assert response.status_code == 400
    errors = response.context["form"].errors["password"]
    assert any("too common" in e or "entirely numeric" in e for e in errors)
    assert 'aria-invalid="true"' in response.content.decode()
    assert not User.objects.filter(username="newbie").exists()


def test_signup_with_a_mismatched_confirmation_is_an_error_and_creates_nobody(client):
    # when
    response = client.post(reverse("signup"), {**SIGNUP, "password_confirm": "something-else-99"})
    # then
    assert response.status_code == 400
    assert response.context["form"].errors["password_confirm"] == ["The two passwords do not match."]
    assert not User.objects.filter(username="newbie").exists()


def test_signup_with_an_invalid_email_is_an_email_error(client):
    response = client.post(reverse("signup"), {**SIGNUP, "email": "not-an-email"})
    assert response.status_code == 400
    assert "email" in response.context["form"].errors


# Log-in, log-out, login required -------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "args", "method"),
    [
        ("checkout", [], "get"),
        ("order_history", [], "get"),
        ("order_detail", [1], "get"),
        ("order_cancel", [1], "post"),
        ("profile", [], "get"),
    ],
)
def test_customer_pages_send_anonymous_visitors_to_log_in(client, name, args, method):
    # when
    url = reverse(name, args=args)
    response = getattr(client, method)(url)
    # then
    assert response.status_code == 302
    assert response["Location"] == f"{reverse('login')}?next={url}"


def test_login_page_logs_in_and_follows_next(client, customer, password):
    # given
    page = client.get(reverse("login") + "?next=/orders/")
    assert page.status_code == 200 and 'name="username"' in page.content.decode()
    # when
    response = client.post(reverse("login"), {"username": customer.username, "password": password, "next": "/orders/"})
    # then
    assert response.status_code == 302 and response["Location"] == "/orders/"


def test_login_with_a_wrong_password_shows_an_error(client, customer):
    response = client.post(reverse("login"), {"username": customer.username, "password": "nope"})
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()


def test_logout_is_a_post(client, customer):
    # given
    client.force_login(customer)
    # when
    response = client.post(reverse("logout"))
    # then
    assert response.status_code == 302
    assert "_auth_user_id" not in client.session


@pytest.mark.parametrize("logged_in", [True, False])
def test_a_post_only_address_opened_in_the_browser_is_a_page_that_says_to_use_the_button(
    client, customer, menu, logged_in
):
    from ordering import services

    # given: the site's addresses that only a form's button POSTs to
    order, _ = services.order_place(
        customer=customer,
        request=services.OrderRequest(
            restaurant_id=menu["pizza"].restaurant_id, items=[(menu["pizza"].pk, 1)], delivery_address="1 Lane"
        ),
    )
    addresses = {reverse("logout"): "/"}
    if logged_in:
        client.force_login(customer)
        addresses[reverse("order_cancel", args=[order.pk])] = reverse("order_detail", args=[order.pk])
    else:
        # (a visitor is first asked to log in, and comes back to the page below)
        assert client.get(reverse("order_cancel", args=[order.pk]))["Location"].startswith(reverse("login"))
    for url, back in addresses.items():
        # when: opened as a link, typed or reloaded
        response = client.get(url)
        # then: still 405 (nothing happened), but a page of the site that says what to do
        html = response.content.decode()
        assert response.status_code == 405, url
        assert "POST" in response["Allow"], url
        assert response["Content-Type"].startswith("text/html"), url
        assert "use the button" in html and f'href="{back}"' in html, (url, html[-800:])
        assert 'class="skip-link"' in html  # the site's own layout
    # and nothing was cancelled or logged out
    order.refresh_from_db()
    assert order.status == "pending_payment"
    assert ("_auth_user_id" in client.session) is logged_in


def test_the_admins_post_only_log_out_opened_in_the_browser_is_the_same_page(client):
    client.force_login(User.objects.create_superuser("boss", "boss@example.com", "tasty-noodles-42"))
    response = client.get("/admin/logout/")
    assert response.status_code == 405
    assert "use the button" in response.content.decode() and 'href="/admin/"' in response.content.decode()
    assert "_auth_user_id" in client.session


def test_a_post_only_api_address_keeps_its_json_405(client, customer):
    client.force_login(customer)
    response = client.get("/api/v1/auth/token")
    assert response.status_code == 405 and response.json()["error"]["code"] == "method_not_allowed"


def test_header_shows_account_links_when_logged_in(client, customer):
    client.force_login(customer)
    html = client.get(reverse("restaurant_list")).content.decode()
    assert ">Orders</a>" in html and ">Account</a>" in html and ">Log out</button>" in html
    assert ">Log in</a>" not in html


# Profile -------------------------------------------------------------------------------


def test_profile_shows_the_current_details(client, customer):
    client.force_login(customer)
    response = client.get(reverse("profile"))
    assert response.status_code == 200
    assert 'value="1 Test Lane"' in response.content.decode()


def test_profile_update_saves_contact_and_preferences(client, customer):
    # given
    client.force_login(customer)
    # when: notify_email unticked (absent), sms and push ticked
    response = client.post(
        reverse("profile"),
        {"phone": "+49 30 1234567", "default_address": "5 New Road", "notify_sms": "on", "notify_push": "on"},
        follow=True,
    )
    # then
    assert response.status_code == 200
    assert "Your account details are saved." in response.content.decode()
    profile = CustomerProfile.objects.get(user=customer)
    assert (profile.phone, profile.default_address) == ("+49 30 1234567", "5 New Road")
    assert (profile.notify_email, profile.notify_sms, profile.notify_push) == (False, True, True)
    assert profile.notify_while_watching is False


def test_profile_keeps_email_and_texts_while_watching_when_asked(client, customer):
    client.force_login(customer)
    client.post(reverse("profile"), {"default_address": "x", "notify_email": "on", "notify_while_watching": "on"})
    assert CustomerProfile.objects.get(user=customer).notify_while_watching is True
    page = client.get(reverse("profile")).content.decode()
    assert 'name="notify_while_watching"' in page and 'id="allow-browser-notifications"' in page


def test_texts_without_a_phone_number_are_refused_and_nothing_is_saved(client, customer):
    client.force_login(customer)
    response = client.post(reverse("profile"), {"phone": "", "default_address": "2 Other Road", "notify_sms": "on"})
    assert response.status_code == 400
    assert response.context["form"].errors["phone"] == ["Add a phone number to get text messages."]
    profile = CustomerProfile.objects.get(user=customer)
    assert (profile.notify_sms, profile.default_address) == (False, "1 Test Lane")


def test_profile_rejects_a_bad_phone_and_saves_nothing(client, customer):
    client.force_login(customer)
    response = client.post(reverse("profile"), {"phone": "call me maybe", "default_address": "x"})
    assert response.status_code == 400
    assert "phone" in response.context["form"].errors
    assert CustomerProfile.objects.get(user=customer).default_address == "1 Test Lane"
