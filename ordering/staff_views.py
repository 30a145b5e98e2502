"""Staff pages of a restaurant (not the Django admin): the menu, its categories, order and prices,
sold out, busy mode, preparation time and opening hours. Only the restaurant's staff may open them (the same
check as the kitchen screen); every change goes through one service and shows live on open
menu pages."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import BadRequest, PermissionDenied
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ordering import selectors, services
from ordering.exceptions import CategoryNameTaken, NotFound
from ordering.models import MenuCategory, MenuItem, Restaurant, default_vat_rate
from ordering.photos import PhotoRejected
from ordering.services import dish_options
from ordering.staff_forms import (
    BusyForm,
    CategoryForm,
    DishForm,
    DishTagsForm,
    FulfilmentForm,
    HoursForm,
    OptionGroupForm,
    PhotoForm,
    SettingsForm,
    format_options,
)
from passline.http import AuthenticatedHttpRequest

BUSY_CHOICES = (15, 30, 60)


def _staff_restaurant(request: AuthenticatedHttpRequest, restaurant_id: int) -> Restaurant:
    try:
        restaurant = selectors.restaurant_get(restaurant_id=restaurant_id)
    except NotFound:
        raise Http404("No such restaurant") from None
    if not selectors.is_restaurant_staff(user=request.user, restaurant_id=restaurant.pk):
        raise PermissionDenied("Only this restaurant's staff can manage it.")
    return restaurant


def _dish(restaurant: Restaurant, menu_item_id: int) -> MenuItem:
    item = selectors.menu_items(restaurant_id=restaurant.pk).filter(pk=menu_item_id).first()
    if item is None:
        raise Http404("That dish is not on this menu.")
    return item


def _vat_rate_kept(item: MenuItem | None) -> Decimal:
    return item.vat_rate if item is not None else default_vat_rate()


@login_required
def staff_index(request: AuthenticatedHttpRequest) -> HttpResponse:
    """The restaurants the user works: straight to its staff pages when there is one."""
    restaurants = list(selectors.staff_restaurants(user=request.user))
    if len(restaurants) == 1:
        return redirect("staff_menu", restaurant_id=restaurants[0].pk)
    if not restaurants:
        raise PermissionDenied("Only restaurant staff can manage a restaurant.")
    return render(request, "staff/index.html", {"restaurants": restaurants})


@login_required
@require_GET
def staff_menu(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Every dish by category, with its price, stock and a sold-out toggle."""
    restaurant = _staff_restaurant(request, restaurant_id)
    return render(
        request,
        "staff/menu.html",
        {"restaurant": restaurant, "sections": selectors.staff_menu(restaurant=restaurant), "tab": "menu"},
    )


@login_required
@require_http_methods(["GET", "POST"])
def staff_dish(request: AuthenticatedHttpRequest, restaurant_id: int, menu_item_id: int | None = None) -> HttpResponse:
    """Edit a dish, or add one (no ``menu_item_id``)."""
    restaurant = _staff_restaurant(request, restaurant_id)
    item = _dish(restaurant, menu_item_id) if menu_item_id is not None else None
    if request.method == "POST":
        form = DishForm(request.POST, restaurant=restaurant)
        if form.is_valid():
            data = form.cleaned_data
            fields = {
                "restaurant_id": restaurant.pk,
                "category_id": data["category"],
                "name": data["name"],
                "description": data["description"].strip(),
                "price": data["price"],
                "vat_rate": data["vat_rate"] if data["vat_rate"] is not None else _vat_rate_kept(item),
                "daily_stock": data["daily_stock"],
            }
            if item is None:
                item = services.menu_item_create(**fields)
                messages.success(request, f"{item.name} is on the menu.")
            else:
                item = services.menu_item_update(menu_item_id=item.pk, **fields)
                messages.success(request, f"{item.name} is saved.")
            return redirect(reverse("staff_menu", args=[restaurant.pk]) + f"#dish-{item.pk}")
    elif item is not None:
        form = DishForm(
            restaurant=restaurant,
            initial={
                "category": item.category_id,
                "name": item.name,
                "description": item.description,
                "price": item.price,
                "vat_rate": item.vat_rate,
                "daily_stock": item.daily_stock,
            },
        )
    else:
        form = DishForm(
            restaurant=restaurant, initial={"category": request.GET.get("category"), "vat_rate": default_vat_rate()}
        )
    status = 400 if request.method == "POST" else 200
    context: dict[str, object] = {"restaurant": restaurant, "item": item, "form": form, "tab": "menu"}
    if item is not None:
        context["photo_url"] = reverse("staff_dish_photo", args=[restaurant.pk, item.pk])
        context["photo_max_mb"] = settings.PHOTO_MAX_BYTES // (1024 * 1024)
    return render(request, "staff/dish.html", context, status=status)


@login_required
@require_POST
def staff_dish_availability(request: AuthenticatedHttpRequest, restaurant_id: int, menu_item_id: int) -> HttpResponse:
    """The one-click toggle: ``available=0`` marks the dish sold out, ``available=1`` puts it back on sale."""
    restaurant = _staff_restaurant(request, restaurant_id)
    item = _dish(restaurant, menu_item_id)
    available = request.POST.get("available") == "1"
    services.menu_item_set_available(restaurant_id=restaurant.pk, menu_item_id=item.pk, available=available)
    messages.success(request, f"{item.name} is {'back on sale' if available else 'marked sold out'}.")
    return redirect(reverse("staff_menu", args=[restaurant.pk]) + f"#dish-{item.pk}")


def _step(request: AuthenticatedHttpRequest) -> int:
    direction = request.POST.get("direction")
    if direction not in ("up", "down"):
        raise BadRequest("direction must be up or down")
    return -1 if direction == "up" else 1


@login_required
@require_POST
def staff_dish_move(request: AuthenticatedHttpRequest, restaurant_id: int, menu_item_id: int) -> HttpResponse:
    """Move a dish one place up or down in its category (``direction``)."""
    restaurant = _staff_restaurant(request, restaurant_id)
    item = _dish(restaurant, menu_item_id)
    services.menu_item_move(restaurant_id=restaurant.pk, menu_item_id=item.pk, step=_step(request))
    return redirect(reverse("staff_menu", args=[restaurant.pk]) + f"#dish-{item.pk}")


def _category_of(restaurant: Restaurant, category_id: int) -> MenuCategory:
    category = MenuCategory.objects.filter(restaurant=restaurant, pk=category_id).first()
    if category is None:
        raise Http404("That category is not on this menu.")
    return category


@login_required
@require_http_methods(["GET", "POST"])
def staff_category(
    request: AuthenticatedHttpRequest, restaurant_id: int, category_id: int | None = None
) -> HttpResponse:
    """Rename a category or change its station, or add one (no ``category_id``)."""
    restaurant = _staff_restaurant(request, restaurant_id)
    category = _category_of(restaurant, category_id) if category_id is not None else None
    if request.method == "POST":
        form = CategoryForm(request.POST)
        if form.is_valid():
            try:
                if category is None:
                    category = services.menu_category_create(restaurant_id=restaurant.pk, **form.cleaned_data)
                    messages.success(request, f"{category.name} is on the menu.")
                else:
                    category = services.menu_category_update(
                        restaurant_id=restaurant.pk, category_id=category.pk, **form.cleaned_data
                    )
                    messages.success(request, f"{category.name} is saved.")
            except CategoryNameTaken as error:
                form.add_error("name", error.message)
            else:
                return redirect(reverse("staff_menu", args=[restaurant.pk]) + f"#category-{category.pk}")
    elif category is not None:
        form = CategoryForm(initial={"name": category.name, "station": category.station})
    else:
        form = CategoryForm()
    status = 400 if request.method == "POST" else 200
    context = {"restaurant": restaurant, "category": category, "form": form, "tab": "menu"}
    return render(request, "staff/category.html", context, status=status)


@login_required
@require_POST
def staff_category_move(request: AuthenticatedHttpRequest, restaurant_id: int, category_id: int) -> HttpResponse:
    """Move a category one place up or down on the menu (``direction``)."""
    restaurant = _staff_restaurant(request, restaurant_id)
    category = _category_of(restaurant, category_id)
    services.menu_category_move(restaurant_id=restaurant.pk, category_id=category.pk, step=_step(request))
    return redirect(reverse("staff_menu", args=[restaurant.pk]) + f"#category-{category.pk}")


def _opening_context(restaurant: Restaurant, **forms: object) -> dict[str, object]:
    return {
        "restaurant": restaurant,
        "tab": "opening",
        "busy_choices": BUSY_CHOICES,
        "busy_form": forms.get("busy_form") or BusyForm(),
        "settings_form": forms.get("settings_form")
        or SettingsForm(initial={"is_open": restaurant.is_open, "prep_time_minutes": restaurant.prep_time_minutes}),
        "hours_form": forms.get("hours_form") or HoursForm(initial=HoursForm.initial_for(restaurant)),
        "state": restaurant.availability,
        "time_zone": settings.TIME_ZONE,
        "fulfilment_form": forms.get("fulfilment_form")
        or FulfilmentForm(
            initial={
                "address": restaurant.address,
                "offers_delivery": restaurant.offers_delivery,
                "offers_pickup": restaurant.offers_pickup,
                "delivery_fee": restaurant.delivery_fee,
                "minimum_order": restaurant.minimum_order,
            }
        ),
        "photo_url": reverse("staff_restaurant_photo", args=[restaurant.pk]),
        "photo_max_mb": settings.PHOTO_MAX_BYTES // (1024 * 1024),
    }


@login_required
@require_GET
def staff_opening(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Busy mode, open or closed, preparation time and opening hours."""
    restaurant = _staff_restaurant(request, restaurant_id)
    return render(request, "staff/opening.html", _opening_context(restaurant))


@login_required
@require_POST
def staff_busy(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Pause new orders (``minutes`` or until resumed), or ``resume``."""
    restaurant = _staff_restaurant(request, restaurant_id)
    if "resume" in request.POST:
        services.restaurant_resume(restaurant_id=restaurant.pk)
        messages.success(request, f"{restaurant.name} takes orders again.")
        return redirect("staff_opening", restaurant_id=restaurant.pk)
    form = BusyForm(request.POST)
    if not form.is_valid():
        return render(request, "staff/opening.html", _opening_context(restaurant, busy_form=form), status=400)
    minutes = form.cleaned_data["minutes"]
    restaurant = services.restaurant_set_busy(restaurant_id=restaurant.pk, minutes=minutes)
    until = f" for {minutes} minutes" if minutes else " until you resume"
    messages.success(request, f"New orders are paused{until}.")
    return redirect("staff_opening", restaurant_id=restaurant.pk)


@login_required
@require_POST
def staff_settings(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Open or closed by hand, and the preparation time."""
    restaurant = _staff_restaurant(request, restaurant_id)
    form = SettingsForm(request.POST)
    if not form.is_valid():
        return render(request, "staff/opening.html", _opening_context(restaurant, settings_form=form), status=400)
    services.restaurant_update_settings(restaurant_id=restaurant.pk, **form.cleaned_data)
    messages.success(request, "Settings saved.")
    return redirect("staff_opening", restaurant_id=restaurant.pk)


@login_required
@require_POST
def staff_hours(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Weekly opening hours and dated exceptions."""
    restaurant = _staff_restaurant(request, restaurant_id)
    form = HoursForm(request.POST)
    if not form.is_valid():
        return render(request, "staff/opening.html", _opening_context(restaurant, hours_form=form), status=400)
    services.restaurant_set_hours(restaurant_id=restaurant.pk, schedule=form.cleaned_data["schedule"])
    messages.success(request, "Opening hours saved.")
    return redirect("staff_opening", restaurant_id=restaurant.pk)


# A dish's choices: allergens, dietary tags and option groups (their own page) ---------------


def _choices_context(restaurant: Restaurant, item: MenuItem, **forms: object) -> dict[str, object]:
    groups = list(item.option_groups.all())
    bound = forms.get("group_form")
    group_forms = []
    for group in groups:
        prefix = f"g{group.pk}"
        if isinstance(bound, OptionGroupForm) and bound.prefix == prefix:
            group_forms.append((group, bound))
            continue
        initial = {
            "group": group.pk,
            "name": group.name,
            "min_choices": group.min_choices,
            "max_choices": group.max_choices,
            "options": format_options(group),
        }
        group_forms.append((group, OptionGroupForm(prefix=prefix, initial=initial)))
    new_form = bound if isinstance(bound, OptionGroupForm) and bound.prefix == "new" else OptionGroupForm(prefix="new")
    return {
        "restaurant": restaurant,
        "item": item,
        "tab": "menu",
        "tags_form": forms.get("tags_form")
        or DishTagsForm(initial={"allergens": item.allergens, "dietary": item.dietary}),
        "group_forms": group_forms,
        "new_form": new_form,
    }


@login_required
@require_http_methods(["GET", "POST"])
def staff_dish_choices(request: AuthenticatedHttpRequest, restaurant_id: int, menu_item_id: int) -> HttpResponse:
    """A dish's allergens and dietary tags, and its option groups: one form each, saved alone."""
    restaurant = _staff_restaurant(request, restaurant_id)
    item = _dish(restaurant, menu_item_id)
    here = reverse("staff_dish_choices", args=[restaurant.pk, item.pk])
    if request.method == "GET":
        return render(request, "staff/dish_choices.html", _choices_context(restaurant, item))
    action = request.POST.get("action")
    if action == "tags":
        tags_form = DishTagsForm(request.POST)
        if not tags_form.is_valid():
            return render(
                request, "staff/dish_choices.html", _choices_context(restaurant, item, tags_form=tags_form), status=400
            )
        dish_options.menu_item_set_tags(restaurant_id=restaurant.pk, menu_item_id=item.pk, **tags_form.cleaned_data)
        messages.success(request, f"Allergens and dietary tags of {item.name} are saved.")
        return redirect(here)
    prefix = request.POST.get("prefix", "")
    if action == "delete":
        group_id = int(prefix[1:]) if prefix[:1] == "g" and prefix[1:].isdigit() else 0
        try:
            dish_options.option_group_delete(restaurant_id=restaurant.pk, menu_item_id=item.pk, group_id=group_id)
        except NotFound:
            messages.info(request, "That option group was already removed.")
        else:
            messages.success(request, "The option group is removed.")
        return redirect(here)
    if action != "group" or not (prefix == "new" or (prefix[:1] == "g" and prefix[1:].isdigit())):
        return redirect(here)
    form = OptionGroupForm(request.POST, prefix=prefix)
    if form.is_valid():
        data = form.cleaned_data
        try:
            dish_options.option_group_save(
                restaurant_id=restaurant.pk,
                menu_item_id=item.pk,
                group_id=None if prefix == "new" else int(prefix[1:]),
                name=data["name"],
                min_choices=data["min_choices"],
                max_choices=data["max_choices"],
                options=data["options"],
            )
        except dish_options.InvalidOptionGroup as error:
            field = error.details.get("field")
            form.add_error(field if isinstance(field, str) and field in form.fields else None, error.message)
        except NotFound:
            messages.info(request, "That option group was removed meanwhile.")
            return redirect(here)
        else:
            messages.success(request, f"{data['name']} of {item.name} is saved.")
            return redirect(here)
    item = _dish(restaurant, menu_item_id)
    return render(request, "staff/dish_choices.html", _choices_context(restaurant, item, group_form=form), status=400)


def _photo_post(request: AuthenticatedHttpRequest, store: Callable[[bytes | None], object]) -> None:
    """Read the photo form (an upload, or "remove"), hand it to ``store`` and say how it went:
    a refusal by the form or by ``ordering.photos`` is an error message, nothing stored."""
    form = PhotoForm(request.POST, request.FILES)
    data: bytes | None = None
    if form.is_valid():
        upload = form.cleaned_data.get("photo")
        data = None if form.cleaned_data.get("remove") or upload is None else upload.read()
        try:
            store(data)
        except PhotoRejected as error:
            form.add_error("photo", str(error))
    if form.errors:
        messages.error(request, " ".join(str(error) for errors in form.errors.values() for error in errors))
    else:
        messages.success(request, "Photo removed." if data is None else "Photo saved.")


@login_required
@require_POST
def staff_dish_photo(request: AuthenticatedHttpRequest, restaurant_id: int, menu_item_id: int) -> HttpResponse:
    """Upload a dish's photo, or remove it; back to the dish."""
    restaurant = _staff_restaurant(request, restaurant_id)
    item = _dish(restaurant, menu_item_id)
    _photo_post(
        request, lambda data: services.dish_photo_set(restaurant_id=restaurant.pk, menu_item_id=item.pk, data=data)
    )
    return redirect(reverse("staff_dish", args=[restaurant.pk, item.pk]) + "#photo")


@login_required
@require_POST
def staff_restaurant_photo(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Upload the restaurant's photo (its banner on the list), or remove it."""
    restaurant = _staff_restaurant(request, restaurant_id)
    _photo_post(request, lambda data: services.restaurant_photo_set(restaurant_id=restaurant.pk, data=data))
    return redirect(reverse("staff_opening", args=[restaurant.pk]) + "#photo")


@login_required
@require_POST
def staff_fulfilment(request: AuthenticatedHttpRequest, restaurant_id: int) -> HttpResponse:
    """Delivery, pick-up, the delivery fee, the minimum order and the address."""
    restaurant = _staff_restaurant(request, restaurant_id)
    form = FulfilmentForm(request.POST)
    if not form.is_valid():
        return render(request, "staff/opening.html", _opening_context(restaurant, fulfilment_form=form), status=400)
    services.restaurant_update_fulfilment(restaurant_id=restaurant.pk, **form.cleaned_data)
    messages.success(request, "Delivery and pick-up saved.")
    return redirect(reverse("staff_opening", args=[restaurant.pk]) + "#fulfilment")
