from django.apps import AppConfig


class OrderingConfig(AppConfig):
    name = "ordering"
    verbose_name = "Ordering"

    def ready(self) -> None:
        from django.contrib.auth.signals import user_logged_out

        from ordering.services.accounts import api_tokens_revoke_on_logout

        user_logged_out.connect(api_tokens_revoke_on_logout, dispatch_uid="ordering.revoke_api_tokens_on_logout")
