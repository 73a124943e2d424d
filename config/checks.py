"""What must hold before the service starts, as Django system checks.

`manage.py check`, `migrate` and `runserver` run them as Django always does; Django's
WSGI and ASGI handlers and Celery's worker and beat do not, so config.wsgi, config.asgi
and config.celery call start_or_refuse() themselves. Outside DEBUG the service starts
only with a secret key of its own and an audit signing key it can read, so a missing
or broken key stops it at start, never in the middle of an export.
"""

from django.conf import settings
from django.core import checks
from django.core.management.base import SystemCheckError

from audits.signing import SigningKeyError, SigningKeyMissing, signing_key

E001_HINT = (
    "Set SECRET_KEY to a long random value, e.g. the output of "
    "python -c 'import secrets; print(secrets.token_urlsafe(50))'; "
    "or set DEBUG=true on a machine nobody else reaches."
)
SIGNING_KEY_HINT = (
    "Set AUDIT_SIGNING_KEY to an Ed25519 private key as PEM (openssl genpkey -algorithm "
    "ed25519) or to the base64 of a 32-byte seed (python -c 'import base64, os; "
    "print(base64.b64encode(os.urandom(32)).decode())')."
)


def secret_key_configured(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    if settings.DEBUG:
        return []
    key = settings.SECRET_KEY or ""
    if key == getattr(settings, "DEVELOPMENT_SECRET_KEY", None):
        problem = "SECRET_KEY is not set (or is modelgov's development key)"
    elif key.startswith("django-insecure-"):
        problem = "SECRET_KEY is a development key (it starts with 'django-insecure-')"
    else:
        return []
    return [
        checks.Error(
            f"{problem}: with DEBUG off the service needs a secret key of its own.",
            hint=E001_HINT,
            id="modelgov.E001",
        )
    ]


def signing_key_configured(app_configs=None, **kwargs) -> list[checks.CheckMessage]:
    try:
        signing_key()
    except SigningKeyMissing as exc:
        return [checks.Error(str(exc), hint=SIGNING_KEY_HINT, id="modelgov.E002")]
    except SigningKeyError as exc:
        # A key that is set but unreadable is refused with DEBUG on too: it was meant
        # to be used, and would otherwise fail the first export that is signed.
        return [checks.Error(str(exc), hint=SIGNING_KEY_HINT, id="modelgov.E003")]
    return []


def register_all() -> None:
    checks.register(secret_key_configured, checks.Tags.security)
    checks.register(signing_key_configured, checks.Tags.security)


def start_or_refuse() -> None:
    """Run the system checks, as manage.py does before serving; raise SystemCheckError
    naming every error (warnings are left to `manage.py check`)."""
    errors = [
        message
        for message in checks.run_checks()
        if message.is_serious() and not message.is_silenced()
    ]
    if errors:
        raise SystemCheckError(
            "The service refuses to start:\n" + "\n".join(str(error) for error in errors)
        )
