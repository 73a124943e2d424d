import os

from celery import Celery, signals

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

app = Celery("modelgov")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@signals.worker_init.connect
@signals.beat_init.connect
def start_or_refuse(**kwargs) -> None:
    """A worker or scheduler starts only where the web service would: Celery's Django
    fixup runs the system checks but ignores what they find."""
    from django.core.management.base import SystemCheckError

    from config import checks

    try:
        checks.start_or_refuse()
    except SystemCheckError as exc:
        # Celery logs and swallows an Exception raised by a signal handler; SystemExit
        # passes through, and the process exits 1 with the message on stderr.
        raise SystemExit(str(exc)) from exc
