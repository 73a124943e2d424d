"""Sign-ins, sign-outs and failed sign-ins, audited. Django's auth signals are the only
hook for them, so here, unlike anywhere else, a signal writes the audit row: each in a
transaction of its own, since a login is no state change of ours."""

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import transaction

from audits.services import record


def _path(request) -> str | None:
    return getattr(request, "path", None)


def login_recorded(sender, request, user, **kwargs) -> None:
    with transaction.atomic():
        record(
            actor=user,
            action="auth.login",
            obj=user,
            object_type="user",
            object_repr=user.get_username(),
            data={"username": user.get_username(), "path": _path(request)},
        )


def logout_recorded(sender, request, user, **kwargs) -> None:
    if user is None:  # an anonymous visitor "logging out": nobody to name
        return
    with transaction.atomic():
        record(
            actor=user,
            action="auth.logout",
            obj=user,
            object_type="user",
            object_repr=user.get_username(),
            data={"username": user.get_username(), "path": _path(request)},
        )


def login_failure_recorded(sender, credentials, request=None, **kwargs) -> None:
    """Only the username tried is kept; Django hands over the rest of the credentials
    masked, and none of them belongs in the log."""
    User = get_user_model()
    tried = str(credentials.get(User.USERNAME_FIELD) or credentials.get("username") or "")
    known = User.objects.filter(**{User.USERNAME_FIELD: tried}).first() if tried else None
    with transaction.atomic():
        record(
            actor=None,
            action="auth.login_failed",
            object_type="user",
            object_id=known.pk if known else "",
            object_repr=tried[:200],
            data={"username": tried[:150], "known_user": known is not None, "path": _path(request)},
        )


def connect() -> None:
    user_logged_in.connect(login_recorded, dispatch_uid="governance.auth.login")
    user_logged_out.connect(logout_recorded, dispatch_uid="governance.auth.logout")
    user_login_failed.connect(login_failure_recorded, dispatch_uid="governance.auth.failed")
