"""Sign-ins and sign-outs, audited. Django's auth signals are the only hook for them, so
here, unlike anywhere else, a signal writes the audit row: each in a transaction of its
own, since a login is no state change of ours. Failed sign-ins are audited per burst
(governance.services.sign_ins), from django-axes' handler once axes has counted them; a
sign-in that ends a burst records its count as failures_before."""

from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db import transaction

from audits.services import record
from governance.services.sign_ins import sign_in_failures_take
from governance.sign_in import client_address


def _path(request) -> str | None:
    return getattr(request, "path", None)


def login_recorded(sender, request, user, **kwargs) -> None:
    data = {"username": user.get_username(), "path": _path(request)}
    with transaction.atomic():
        failures = sign_in_failures_take(
            username=user.get_username(), address=client_address(request) if request else None
        )
        if failures:
            data["failures_before"] = failures
        record(
            actor=user,
            action="auth.login",
            obj=user,
            object_type="user",
            object_repr=user.get_username(),
            data=data,
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


def connect() -> None:
    user_logged_in.connect(login_recorded, dispatch_uid="governance.auth.login")
    user_logged_out.connect(logout_recorded, dispatch_uid="governance.auth.logout")
