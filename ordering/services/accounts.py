"""Customer accounts, profiles and API tokens."""

from __future__ import annotations

import hashlib
import secrets

from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, transaction

from bus.outbox import outbox_write
from ordering.events import CUSTOMER_REGISTERED
from ordering.exceptions import OrderingError
from ordering.models import ApiToken, CustomerProfile
from passline.db import one_or_none


class InvalidAccount(OrderingError):
    code = "invalid_account"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@transaction.atomic
def customer_register(*, username: str, email: str, password: str) -> User:
    """Create a customer with an empty profile. Raises InvalidAccount with a field-level reason."""
    username = username.strip()
    email = email.strip()
    username_field = User._meta.get_field("username")
    try:
        username_field.run_validators(username)
        if not username:
            raise ValidationError("Choose a username.")
        if len(username) > 150:
            raise ValidationError("Usernames are at most 150 characters.")
    except ValidationError as error:
        raise InvalidAccount(" ".join(error.messages), code="invalid_username", field="username") from None
    try:
        validate_email(email)
    except ValidationError:
        raise InvalidAccount("Enter a valid email address.", code="invalid_email", field="email") from None
    if User.objects.filter(username__iexact=username).exists():
        raise InvalidAccount("That username is taken.", code="username_taken", field="username")
    candidate = User(username=username, email=email)
    try:
        validate_password(password, user=candidate)
    except ValidationError as error:
        raise InvalidAccount(" ".join(error.messages), code="weak_password", field="password") from None
    try:
        with transaction.atomic():
            user = User.objects.create_user(username=username, email=email, password=password)
    except IntegrityError:
        raise InvalidAccount("That username is taken.", code="username_taken", field="username") from None
    CustomerProfile.objects.create(user=user)
    # The notifier welcomes them, once this commits.
    outbox_write(
        event=CUSTOMER_REGISTERED,
        aggregate=f"customer:{user.pk}",
        payload={"customer_id": user.pk, "username": user.get_username(), "email": email},
    )
    return user


@transaction.atomic
def profile_update(
    *,
    user: User,
    phone: str,
    default_address: str,
    notify_email: bool,
    notify_sms: bool,
    notify_push: bool,
    notify_while_watching: bool = False,
) -> CustomerProfile:
    profile, _ = CustomerProfile.objects.select_for_update().get_or_create(user=user)
    profile.phone = phone.strip()
    profile.default_address = default_address.strip()
    profile.notify_email = notify_email
    profile.notify_sms = notify_sms
    profile.notify_push = notify_push
    profile.notify_while_watching = notify_while_watching
    profile.save()
    return profile


def api_token_issue(*, user: User) -> str:
    """A new bearer token for ``user``; only its digest is kept, so it is shown once."""
    token = secrets.token_urlsafe(32)
    ApiToken.objects.create(user=user, digest=_digest(token))
    return token


def api_token_user(*, token: str) -> User | None:
    """The active user a bearer token belongs to, or None."""
    if not token or len(token) > 200:
        return None
    found = one_or_none(ApiToken.objects.select_related("user").filter(digest=_digest(token)))
    if found is None or not found.user.is_active:
        return None
    return found.user
