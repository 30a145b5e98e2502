from django.apps import AppConfig
from django.utils.module_loading import autodiscover_modules


class BusConfig(AppConfig):
    name = "bus"
    verbose_name = "Message bus"

    def ready(self) -> None:
        # Every app's ``events`` module declares its message types into bus.catalog.
        autodiscover_modules("events")
