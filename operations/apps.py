from django.apps import AppConfig


class OperationsConfig(AppConfig):
    name = "operations"
    verbose_name = "Operations"

    def ready(self) -> None:
        # Every process loads the apps: each exports its traces when an endpoint is configured.
        from operations import otel

        otel.configure()
