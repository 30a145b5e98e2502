"""Customer accounts, profiles and API tokens."""

from __future__ import annotations

import functools
import hashlib
import logging
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import constant_time_compare, salted_hmac

from bus.outbox import outbox_write
from ordering.events import CUSTOMER_REGISTERED
from ordering.exceptions import OrderingError
from ordering.models import ApiToken, CustomerProfile
from passline.db import one_or_none

logger = logging.getLogger(__name__)


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


@dataclass(frozen=True)
class TokenPair:
    """A bearer token and its refresh token, each shown once."""

    token: str
    expires_at: datetime
    refresh_token: str
    refresh_expires_at: datetime


class InvalidRefreshToken(OrderingError):
    code = "invalid_refresh_token"

    def __init__(self) -> None:
        super().__init__("The refresh token is unknown, expired, already used or revoked: sign in again.")


def _password_stamp(user: AbstractBaseUser, secret: str | bytes | None = None) -> str:
    # As Django ties a session to the password (get_session_auth_hash): any change of the hash,
    # by whatever path it is written, voids the tokens issued before it.
    return salted_hmac("passline.api-token", user.password, secret=secret, algorithm="sha256").hexdigest()


def _stamp_matches(user: AbstractBaseUser, stamp: str) -> bool:
    secrets_to_try = [settings.SECRET_KEY, *getattr(settings, "SECRET_KEY_FALLBACKS", [])]
    return any(constant_time_compare(stamp, _password_stamp(user, secret)) for secret in secrets_to_try)


def api_token_build(*, user: User, family: str | None = None) -> tuple[ApiToken, TokenPair]:
    """A new, unsaved token pair for ``user`` and what to show the client."""
    now = timezone.now()
    token, refresh_token = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    row = ApiToken(
        user=user,
        digest=_digest(token),
        refresh_digest=_digest(refresh_token),
        family=family or uuid.uuid4().hex,
        password_stamp=_password_stamp(user),
        expires_at=now + settings.API_TOKEN_LIFETIME,
        refresh_expires_at=now + settings.API_REFRESH_TOKEN_LIFETIME,
    )
    return row, TokenPair(token, row.expires_at, refresh_token, row.refresh_expires_at)


def api_token_pair_issue(*, user: User) -> TokenPair:
    """A new bearer token and refresh token for ``user`` (a sign-in)."""
    # Pairs past any use are deleted on the way (a refresh token is kept until it expires,
    # revoked or not, so a second presentation is recognised as reuse).
    ApiToken.objects.filter(user=user, refresh_expires_at__lte=timezone.now()).delete()
    row, pair = api_token_build(user=user)
    row.save()
    return pair


def api_token_issue(*, user: User) -> str:
    """A new bearer token for ``user``; only its digest is kept, so it is shown once."""
    return api_token_pair_issue(user=user).token


def api_token_user(*, token: str) -> User | None:
    """The active user a live bearer token belongs to; None for a token that is unknown,
    expired or revoked, whose user is inactive, or whose user's password changed since."""
    if not token or len(token) > 200:
        return None
    # Every bearer request asks this: one statement written once, rather than a queryset
    # compiled per request (a tenth of the web process's CPU under the order load).
    found = next(iter(User.objects.raw(_token_user_sql(), [_digest(token), timezone.now()])), None)
    if found is None or not found.is_active or not _stamp_matches(found, found.__dict__["token_password_stamp"]):
        return None
    return found


@functools.cache
def _token_user_sql() -> str:
    """The user of a live token (unrevoked, unexpired), with the token's password stamp."""
    quote = connection.ops.quote_name
    token, user = ApiToken._meta, User._meta

    def t(column: str) -> str:
        return f"t.{quote(column)}"

    columns = ", ".join(f"u.{quote(str(field.column))}" for field in user.concrete_fields)
    return (
        f"SELECT {columns}, {t('password_stamp')} AS token_password_stamp"
        f" FROM {quote(token.db_table)} t JOIN {quote(user.db_table)} u ON u.{quote(str(user.pk.column))} = {t('user_id')}"
        f" WHERE {t('digest')} = %s AND {t('revoked_at')} IS NULL AND {t('expires_at')} > %s"
    )


def api_token_refresh(*, refresh_token: str) -> TokenPair:
    """Exchange a refresh token for a new pair, once: the old pair is revoked. A refresh token
    presented again (someone else may hold a copy) revokes every pair of its sign-in.
    Raises InvalidRefreshToken."""
    if not refresh_token or len(refresh_token) > 200:
        raise InvalidRefreshToken()
    now = timezone.now()
    with transaction.atomic():
        row = one_or_none(
            ApiToken.objects.select_for_update()
            .select_related("user")
            .filter(refresh_digest=_digest(refresh_token), refresh_expires_at__gt=now)
        )
        if row is not None and row.revoked_at is not None:
            revoked = ApiToken.objects.filter(family=row.family, revoked_at__isnull=True).update(revoked_at=now)
            logger.warning("refresh token reused: %d pair(s) of user %s revoked", revoked, row.user_id)
            row = None
        elif row is not None and (not row.user.is_active or not _stamp_matches(row.user, row.password_stamp)):
            row = None
        if row is not None:
            row.revoked_at = now
            row.save(update_fields=["revoked_at"])
            new_row, pair = api_token_build(user=row.user, family=row.family)
            new_row.save()
    if row is None:
        raise InvalidRefreshToken()
    return pair


def api_token_revoke(*, token: str) -> bool:
    """Revoke the pair a bearer token belongs to (its refresh token too). True if it was live."""
    if not token or len(token) > 200:
        return False
    return bool(
        ApiToken.objects.filter(digest=_digest(token), revoked_at__isnull=True).update(revoked_at=timezone.now())
    )


def api_tokens_revoke_all(*, user: AbstractBaseUser) -> int:
    """Revoke every live token pair of ``user`` (a site logout). Returns how many."""
    return ApiToken.objects.filter(user_id=user.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())


def api_tokens_revoke_on_logout(
    sender: object, request: object, user: AbstractBaseUser | None, **kwargs: object
) -> None:
    """``user_logged_out``: signing out of the site (or the admin) signs the account's API
    clients out too (connected in ``OrderingConfig.ready``)."""
    if user is not None and user.pk is not None:
        revoked = api_tokens_revoke_all(user=user)
        if revoked:
            logger.info("site logout of user %s revoked %d API token(s)", user.pk, revoked)
