from django.apps import AppConfig


class ServiceConfig(AppConfig):
    """The service as a whole, installed for the checks it must pass before it starts."""

    name = "config"
    verbose_name = "modelgov"

    def ready(self):
        from config import checks

        checks.register_all()
