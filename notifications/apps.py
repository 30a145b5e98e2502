from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.db.models.signals import post_save


class NotificationsConfig(AppConfig):
    name = "notifications"
    verbose_name = "Customer notifications"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # A verification holds for the address it proved: when an account's email or phone number
        # is saved as another one, wherever that happens (the account page, the admin, the API),
        # the verification is dropped (notifications.addresses.address_changed). A receiver rather
        # than a call in ordering's services: ordering does not depend on notifications. Updates
        # that bypass save() are covered all the same: an address is verified only while it is
        # the one the verification recorded.
        post_save.connect(_user_saved, sender=settings.AUTH_USER_MODEL, dispatch_uid="notifications.user_saved")
        post_save.connect(_profile_saved, sender="ordering.CustomerProfile", dispatch_uid="notifications.profile_saved")


def _user_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and "email" not in update_fields):
        return  # (a login saves last_login only)
    from notifications.addresses import EMAIL, address_changed

    address_changed(user_id=instance.pk, channel=EMAIL, address=instance.email)


def _profile_saved(sender: Any, instance: Any, created: bool, update_fields: Any = None, **kwargs: Any) -> None:
    if created or (update_fields is not None and "phone" not in update_fields):
        return
    from notifications.addresses import SMS, address_changed

    address_changed(user_id=instance.user_id, channel=SMS, address=instance.phone)
