"""The customer site: thin views that parse a form, call one service or selector and render."""

from __future__ import annotations

import datetime
import hashlib
import logging
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordResetForm
from django.core.exceptions import ObjectDoesNotExist
from django.core.files.storage import default_storage
from django.core.paginator import Paginator
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse, reverse_lazy
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ordering import selectors, services
from ordering.cart import Cart
from ordering.exceptions import IdempotencyConflict, InvalidTransition, NotFound, OrderingError, TotalOutOfRange
from ordering.forms import (
    AddToCartForm,
    CartLineForm,
    CheckoutForm,
    ProfileForm,
    RestaurantSearchForm,
    SignupForm,
    new_checkout_token,
)
from ordering.models import CustomerProfile, MenuItem, Order, Restaurant
from ordering.options import DIETARY, NOTE_MAX_LENGTH, choose, clean_note
from ordering.photos import FILE_NAME as PHOTO_FILE_NAME
from ordering.services.accounts import InvalidAccount
from ordering.services.orders import DeliveryCharge, delivery_charge
from ordering.status import STATUS_LABELS, Actor, OrderStatus, allowed_next
from passline.http import AuthenticatedHttpRequest
from passline.throttles import site_limit

logger = logging.getLogger(__name__)

# Completed checkout tokens kept in the session, so a resubmitted form finds its order.
CHECKOUT_DONE_KEY = "checkout_done"
CHECKOUT_DONE_KEEP = 10


# Restaurants and menus -------------------------------------------------------------------


def restaurant_list(request: HttpRequest) -> HttpResponse:
    """Every restaurant; with ``?q=`` those matching the words (with their matching dishes),
    with ``?cuisine=`` those of one cuisine."""
    form = RestaurantSearchForm(request.GET or None, cuisines=selectors.cuisines())
    searching = form.is_bound and form.is_valid() and any(form.cleaned_data.values())
    if searching:
        matches = selectors.restaurant_search(text=form.cleaned_data["q"], cuisine=form.cleaned_data["cuisine"])
    else:
        matches = [selectors.RestaurantMatch(restaurant, []) for restaurant in selectors.restaurant_list()]
    context = {"matches": matches, "form": form, "searching": searching}
    return render(request, "ordering/restaurant_list.html", context, status=400 if form.errors else 200)


def _exceeds_stock(cart: Cart, item: MenuItem, quantity: int) -> bool:
    """Would the cart then hold more of ``item`` than is left today? (Checkout checks again.)"""
    remaining = item.remaining_today
    if remaining is None:
        return False
    in_cart = cart.quantity_of(item.pk) if cart.restaurant_id == item.restaurant_id else 0
    return in_cart + quantity > remaining


@require_http_methods(["GET", "POST"])
def restaurant_menu(request: HttpRequest, slug: str) -> HttpResponse:
    """The menu; a POST adds a dish to the session cart and comes back here."""
    try:
        restaurant = selectors.restaurant_get_by_slug(slug=slug)
    except NotFound:
        raise Http404("There is no such restaurant.") from None

    form = None
    if request.method == "POST":
        form = AddToCartForm(request.POST)
        if form.is_valid():
            item = selectors.menu_items(restaurant_id=restaurant.pk).filter(pk=form.cleaned_data["item_id"]).first()
            if item is None:
                form.add_error(None, "That dish is not on this menu.")
            elif not (state := restaurant.availability).taking_orders:
                form.add_error(None, f"{restaurant.name} {state.message}")
            elif not item.is_available:
                form.add_error(None, f"{item.name} is not available right now.")
            elif item.sold_out:
                form.add_error(None, f"{item.name} is sold out for today.")
            elif _exceeds_stock(Cart(request.session), item, form.cleaned_data["quantity"]):
                form.add_error(None, f"Only {item.remaining_today} {item.name} left today.")
            elif (choice := _dish_choice(form, item)) is not None:
                cart = Cart(request.session)
                previous = cart.restaurant() if not cart.is_empty else None
                quantity = form.cleaned_data["quantity"]
                if cart.add(item, quantity, options=choice[0], note=choice[1]):
                    messages.info(
                        request,
                        f"Your cart held dishes from {previous.name if previous else 'another restaurant'}. "
                        f"A cart holds one restaurant's dishes, so it now starts fresh with {item.name}.",
                    )
                messages.success(request, f"Added {quantity} × {item.name} to your cart.")
                return redirect(_menu_url(restaurant.slug, request) + f"#item-{item.pk}")

    diet = _chosen_diet(request)
    context = {
        "restaurant": restaurant,
        "state": restaurant.availability,
        "sections": selectors.menu_by_category(restaurant=restaurant, dietary=frozenset(diet)),
        "dietary_choices": DIETARY,
        "diet": diet,
        "prep_time": selectors.restaurant_prep_time(restaurant=restaurant),
        "add_form": form,
        "add_item_id": form.data.get("item_id") if form is not None else None,
        "add_options": request.POST.getlist("option") if form is not None else [],
        "add_note": form.data.get("note", "") if form is not None else "",
        "note_max": NOTE_MAX_LENGTH,
        "max_quantity": settings.ORDER_MAX_QUANTITY_PER_LINE,
    }
    return render(request, "ordering/restaurant_menu.html", context, status=400 if form is not None else 200)


def _chosen_diet(request: HttpRequest) -> list[str]:
    """The dietary tags of the menu's filter (``?diet=vegan&diet=spicy``); unknown ones ignored."""
    return [code for code, _ in DIETARY if code in request.GET.getlist("diet")]


def _menu_url(slug: str, request: HttpRequest) -> str:
    """The menu page, with the dietary filter it was showing."""
    query = "&".join(f"diet={code}" for code in _chosen_diet(request))
    return reverse("restaurant_menu", args=[slug]) + (f"?{query}" if query else "")


def _dish_choice(form: AddToCartForm, item: MenuItem) -> tuple[list[int], str] | None:
    """The options and note of an add-to-cart form, checked against the dish's groups (the
    service checks again at checkout); None with a form error when they do not fit."""
    try:
        note = clean_note(form.cleaned_data.get("note") or "")
        options = form.cleaned_data["option"]
        choose(menu_item_id=item.pk, dish=item.name, groups=selectors.group_specs(item), option_ids=options)
    except OrderingError as error:
        form.add_error(None, error.message)
        return None
    return options, note


# Cart and checkout -----------------------------------------------------------------------


def _cart_context(cart: Cart) -> dict[str, Any]:
    lines = cart.lines()
    return {
        "cart": cart,
        "lines": lines,
        "total": Cart.total(lines),
        "restaurant": cart.restaurant(),
        "max_quantity": settings.ORDER_MAX_QUANTITY_PER_LINE,
        "has_unorderable": any(not line.orderable for line in lines),
    }


@require_http_methods(["GET", "POST"])
def cart(request: HttpRequest) -> HttpResponse:
    """The cart at current prices; a POST updates or removes one line."""
    cart = Cart(request.session)
    form = None
    if request.method == "POST":
        form = CartLineForm(request.POST)
        if form.is_valid():
            key = form.cleaned_data["line"] or str(form.cleaned_data["item_id"])
            if key not in cart.entries:
                messages.info(request, "That dish is no longer in your cart.")
                return redirect("cart")
            quantity = 0 if form.cleaned_data["action"] == "remove" else form.cleaned_data["quantity"]
            cart.set(key, quantity)
            messages.success(request, "Removed from your cart." if quantity == 0 else "Cart updated.")
            return redirect("cart")
    context = _cart_context(cart)
    context["line_form"] = form
    context["line_item_id"] = form.data.get("item_id") if form is not None else None
    context["line_key"] = (form.data.get("line") or form.data.get("item_id")) if form is not None else None
    return render(request, "ordering/cart.html", context, status=400 if form is not None else 200)


def _remember_checkout(request: HttpRequest, token: str, order: Order) -> None:
    done = dict(request.session.get(CHECKOUT_DONE_KEY) or {})
    done[token] = order.pk
    request.session[CHECKOUT_DONE_KEY] = dict(list(done.items())[-CHECKOUT_DONE_KEEP:])


def _default_address(user: object) -> str:
    try:
        return user.profile.default_address  # type: ignore[attr-defined]
    except ObjectDoesNotExist:
        return ""


def _checkout_slots(restaurant: Restaurant | None) -> list[datetime.datetime]:
    """The times to order ahead for offered at checkout: today's and tomorrow's."""
    if restaurant is None:
        return []
    today = timezone.localdate()
    return [
        slot
        for day in (today, today + datetime.timedelta(days=1))
        for slot in selectors.order_ahead_slots(restaurant=restaurant, day=day)
    ]


def _checkout_sums(form: CheckoutForm, context: dict[str, Any]) -> dict[str, Any]:
    """The summary as the form stands: the dishes, the delivery fee if delivered, the tip, the
    total (the page's script keeps them in step as choices change; the server decides)."""
    restaurant, subtotal = context["restaurant"], context["total"]
    data = form.cleaned_data if form.is_bound and hasattr(form, "cleaned_data") else {}
    fulfilment = data.get("fulfilment") or form["fulfilment"].value() or form.fields["fulfilment"].initial
    charge = (
        delivery_charge(restaurant=restaurant, fulfilment=fulfilment, subtotal=subtotal)
        if restaurant
        else DeliveryCharge(fee=Decimal("0.00"), below_minimum=False)
    )
    tip = data.get("tip") or Decimal("0.00")
    return {
        "subtotal": subtotal,
        "delivery_fee": charge.fee,
        "tip": tip,
        "grand_total": subtotal + charge.fee + tip,
        "below_minimum": charge.below_minimum,
    }


@login_required
@require_http_methods(["GET", "POST"])
def checkout(request: AuthenticatedHttpRequest) -> HttpResponse:
    """Place the cart as an order. The hidden per-render token is the order's idempotency key,
    so a form submitted twice places one order."""
    cart = Cart(request.session)
    if request.method == "POST":
        token = request.POST.get("checkout_token", "")
        done = request.session.get(CHECKOUT_DONE_KEY) or {}
        if cart.is_empty and token in done:
            # The same form again after it was placed (a double click, a resend): same order.
            return redirect("order_detail", order_id=done[token])

    if cart.is_empty:
        messages.info(request, "Your cart is empty. Add a few dishes before checking out.")
        return redirect("cart")
    context = _cart_context(cart)
    restaurant = context["restaurant"]
    choices = {"restaurant": restaurant, "subtotal": context["total"], "slots": _checkout_slots(restaurant)}
    if request.method == "POST":
        form = CheckoutForm(request.POST, **choices)
    else:
        form = CheckoutForm(initial={"delivery_address": _default_address(request.user)}, **choices)

    status = 200
    limited = None
    if request.method == "POST":
        status = 400
        # Orders placed per account, the same allowance as the API's (PASSLINE_RATE_LIMITS["orders"]).
        limited = site_limit(request, "orders", user=request.user) if form.is_valid() else None
        if limited is not None:
            status = 429
            form.add_error(None, limited.message)
        elif form.is_valid():
            data = form.cleaned_data
            order_request = services.OrderRequest(
                restaurant_id=cart.restaurant_id,  # type: ignore[arg-type]
                items=cart.as_items(),
                delivery_address=data["delivery_address"],
                notes=data["notes"],
                fulfilment=data["fulfilment"],
                tip=data["tip"],
                scheduled_for=data["scheduled_for"],
                payment_method=data["payment_method"] or Order.PaymentMethod.WALLET,
            )
            try:
                order, created = services.order_place(
                    customer=request.user,
                    request=order_request,
                    idempotency_key=f"site-checkout:{data['checkout_token']}",
                )
            except IdempotencyConflict:
                status = 409
                form.add_error(
                    None, "This checkout form was already used for another order. Check your order and place it again."
                )
            except TotalOutOfRange as error:
                # The cart itself is the fault (nothing changed under it): bad input, not a conflict.
                form.add_error(None, error.message)
            except OrderingError as error:
                status = 409
                form.add_error(None, error.message)
            else:
                cart.clear()
                _remember_checkout(request, data["checkout_token"], order)
                if order.payment_method == Order.PaymentMethod.CARD and order.status == OrderStatus.PENDING_PAYMENT:
                    # On to the payment provider's page (billing's view), back to the order after.
                    return redirect("order_pay_by_card", order_id=order.pk)
                if created:
                    messages.success(request, f"Thank you! Order #{order.pk} is placed.")
                return redirect("order_detail", order_id=order.pk)

    # A fresh token on every render: a form shown again after an error is a new attempt.
    context.update({"form": form, "checkout_token": new_checkout_token(), **_checkout_sums(form, context)})
    # The wallet's balance and whether it is short of the total: billing's wallet_check tag.
    response = render(request, "ordering/checkout.html", context, status=status)
    if limited is not None:
        response["Retry-After"] = limited.retry_after
    return response


# Orders ----------------------------------------------------------------------------------

HAPPY_PATH = [
    OrderStatus.PENDING_PAYMENT,
    OrderStatus.PAID,
    OrderStatus.ACCEPTED,
    OrderStatus.PREPARING,
    OrderStatus.READY,
    OrderStatus.OUT_FOR_DELIVERY,
    OrderStatus.DELIVERED,
]
STEP_LABELS = {
    OrderStatus.PENDING_PAYMENT: "Placed",
    OrderStatus.PAID: "Paid",
    OrderStatus.ACCEPTED: "Accepted",
    OrderStatus.PREPARING: "Preparing",
    OrderStatus.READY: "Ready",
    OrderStatus.OUT_FOR_DELIVERY: "On its way",
    OrderStatus.DELIVERED: "Delivered",
}


@dataclass(frozen=True)
class Step:
    status: str
    label: str
    state: str  # done | current | upcoming | skipped | exit


def order_progress(order: Order) -> list[Step]:
    """The stepper: the happy path up to where the order is, or up to where it left it."""
    current = OrderStatus(order.status)
    reached = {event.status for event in order.events.all()} | {order.status}
    if current in HAPPY_PATH:
        at = HAPPY_PATH.index(current)
        steps = []
        for index, status in enumerate(HAPPY_PATH):
            if index == at:
                state = "done" if current == OrderStatus.DELIVERED else "current"
            elif index < at:
                state = "done" if status in reached else "skipped"
            else:
                state = "upcoming"
            steps.append(Step(status.value, STEP_LABELS[status], state))
        return steps
    # An exit: the steps it got through, then the exit itself.
    last = max((HAPPY_PATH.index(OrderStatus(s)) for s in reached if s in {h.value for h in HAPPY_PATH}), default=0)
    steps = [Step(s.value, STEP_LABELS[s], "done") for s in HAPPY_PATH[: last + 1]]
    steps.append(Step(current.value, STATUS_LABELS[current], "exit"))
    return steps


def _customer_order(request: AuthenticatedHttpRequest, order_id: int) -> Order:
    try:
        return selectors.customer_order(customer=request.user, order_id=order_id)
    except NotFound:
        raise Http404("There is no such order.") from None


@login_required
def order_detail(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    order = _customer_order(request, order_id)
    context = {
        "order": order,
        "steps": order_progress(order),
        "is_exit": OrderStatus(order.status) not in HAPPY_PATH,
        "can_cancel": OrderStatus.CANCELLED in allowed_next(order.status, Actor.CUSTOMER),
        "events": list(order.events.all()),
        "lines": list(order.lines.all()),
        "ready_time": selectors.order_ready_time(order=order),
    }
    return render(request, "ordering/order_detail.html", context)


@login_required
@require_POST
def order_cancel(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    try:
        services.order_cancel(order_id=order_id, customer=request.user)
    except NotFound:
        raise Http404("There is no such order.") from None
    except InvalidTransition:
        messages.error(request, "This order can no longer be cancelled: the kitchen has it, or it has already ended.")
    else:
        messages.success(request, "Your order is cancelled. Anything you paid goes back to your wallet.")
    return redirect("order_detail", order_id=order_id)


def _names(names: list[str]) -> str:
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


@login_required
@require_POST
def order_again(request: AuthenticatedHttpRequest, order_id: int) -> HttpResponse:
    """Put an earlier order's dishes back in the cart (replacing what it held) and show the cart;
    dishes that cannot be ordered today are named and left out."""
    order = _customer_order(request, order_id)
    if not order.restaurant.is_open:
        messages.error(request, f"{order.restaurant.name} is closed and takes no orders now. Your cart is unchanged.")
        return redirect("order_detail", order_id=order.pk)
    cart = Cart(request.session)
    previous = cart.restaurant() if not cart.is_empty else None
    refill = cart.refill(order)
    if refill.skipped:
        gone = _names(refill.skipped)
        verb = "is" if len(refill.skipped) == 1 else "are"
        if not refill.added:
            messages.error(
                request, f"{gone} {verb} not available any more, so nothing was added. Your cart is unchanged."
            )
            return redirect("order_detail", order_id=order.pk)
        messages.warning(
            request, f"{gone} {verb} not available any more and {'was' if verb == 'is' else 'were'} left out."
        )
    for name, gone_options in refill.dropped:
        messages.warning(
            request,
            f"{_names(gone_options)} {'is' if len(gone_options) == 1 else 'are'} no longer offered "
            f"with {name}, so your cart has {name} without {'it' if len(gone_options) == 1 else 'them'}.",
        )
    for name, quantity in refill.lowered:
        messages.warning(request, f"Only {quantity} {name} can be ordered now, so your cart has {quantity}.")
    if previous is not None:
        messages.info(
            request,
            f"Your cart held other dishes from {previous.name}: they were replaced by order #{order.pk}'s.",
        )
    messages.success(request, f"Order #{order.pk}'s dishes are in your cart. Check them and go to checkout.")
    return redirect("cart")


@login_required
def order_history(request: AuthenticatedHttpRequest) -> HttpResponse:
    page = Paginator(selectors.customer_orders(customer=request.user), 20).get_page(request.GET.get("page"))
    return render(request, "ordering/order_history.html", {"page": page, "orders": page.object_list})


# Accounts --------------------------------------------------------------------------------


def _safe_next(request: HttpRequest, candidate: str | None) -> str | None:
    if candidate and url_has_allowed_host_and_scheme(
        candidate, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return candidate
    return None


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    next_url = request.POST.get("next") or request.GET.get("next") or ""
    form = SignupForm(request.POST or None)
    limited = site_limit(request, "register") if request.method == "POST" else None
    if limited is not None:
        form.is_valid()
        form.add_error(None, limited.message)
    elif request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            user = services.customer_register(username=data["username"], email=data["email"], password=data["password"])
        except InvalidAccount as error:
            field = error.details.get("field")
            form.add_error(field if field in form.fields else None, error.message)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to Passline, {user.get_username()}!")
            return redirect(_safe_next(request, next_url) or "restaurant_list")
    status = 429 if limited else 400 if request.method == "POST" else 200
    response = render(
        request, "registration/signup.html", {"form": form, "next": _safe_next(request, next_url) or ""}, status=status
    )
    if limited:
        response["Retry-After"] = limited.retry_after
    return response


class LoginView(auth_views.LoginView):
    """Django's log-in, with a cap on attempts from one address across all usernames (django-axes
    locks single usernames; ``passline.throttles.lockout_response`` answers a locked one)."""

    redirect_authenticated_user = True

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limited = site_limit(request, "login")
        if limited is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form_class()(request, initial={"username": request.POST.get("username", "")})
        response = self.render_to_response(self.get_context_data(form=form, locked_out=limited.message), status=429)
        response["Retry-After"] = limited.retry_after
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Django's password reset: the email's link points at SITE_URL (never at the request's Host),
    and one address, or one email address, can ask only so often (no mail pumping)."""

    email_template_name = "registration/password_reset_email.txt"
    success_url = reverse_lazy("password_reset_done")

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        limited = site_limit(request, "password_reset")
        if limited is None:
            return super().post(request, *args, **kwargs)
        form = self.get_form()
        form.is_valid()
        form.add_error(None, limited.message)
        response = self.render_to_response(self.get_context_data(form=form), status=429)
        response["Retry-After"] = limited.retry_after
        return response

    def form_valid(self, form: PasswordResetForm) -> HttpResponse:
        email = form.cleaned_data["email"].strip().casefold()
        digest = hashlib.sha256(email.encode()).hexdigest()
        if site_limit(self.request, "password_reset_email", ident=digest) is not None:
            # The same page as a sent email: whether the address has an account stays unsaid.
            logger.warning("password reset for one email address over its limit; no email sent")
            return redirect(self.success_url)
        self.extra_email_context = {"site_url": settings.SITE_URL.rstrip("/")}
        return super().form_valid(form)


@login_required
@require_http_methods(["GET", "POST"])
def profile(request: AuthenticatedHttpRequest) -> HttpResponse:
    if request.method == "POST":
        form = ProfileForm(request.POST)
        if form.is_valid():
            services.profile_update(user=request.user, **form.cleaned_data)
            messages.success(request, "Your account details are saved.")
            return redirect("profile")
        status = 400
    else:
        current = CustomerProfile.objects.filter(user=request.user).first() or CustomerProfile(user=request.user)
        form = ProfileForm(
            initial={
                "phone": current.phone,
                "default_address": current.default_address,
                "notify_email": current.notify_email,
                "notify_sms": current.notify_sms,
                "notify_push": current.notify_push,
                "notify_while_watching": current.notify_while_watching,
            }
        )
        status = 200
    return render(request, "ordering/profile.html", {"form": form}, status=status)


def pickup_board(request: HttpRequest, slug: str) -> HttpResponse:
    """A public screen at the counter: order numbers being prepared and ready for pick-up."""
    try:
        restaurant = selectors.restaurant_get_by_slug(slug=slug)
    except NotFound:
        raise Http404("No such restaurant") from None
    board = selectors.pickup_board(restaurant_id=restaurant.pk)
    return render(request, "ordering/pickup_board.html", {"restaurant": restaurant, "board": board})


# Photos ----------------------------------------------------------------------------------

# A photo file never changes under its name (the name holds its digest): cached for a year.
PHOTO_CACHE_CONTROL = "public, max-age=31536000, immutable"


@require_GET
def photo_file(request: HttpRequest, name: str) -> FileResponse:
    """A stored photo (``ordering.photos``), by its exact name: nothing else under MEDIA_ROOT is
    served, and no name that is not one of ours reaches the storage (no ``..``, no other file)."""
    if not PHOTO_FILE_NAME.fullmatch(name) or not default_storage.exists(name):
        raise Http404("No such photo.")
    response = FileResponse(default_storage.open(name, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = PHOTO_CACHE_CONTROL
    response["X-Content-Type-Options"] = "nosniff"
    return response
