"""django-axes, as the service configures it (settings AXES_*): the client address it
counts failures by, the handler that hands each counted failure to the audit's burst
(governance.services.sign_ins), and the page a locked-out sign-in gets."""

import ipaddress

from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import (
    get_client_username,
    get_cool_off,
    get_failure_limit,
    get_lockout_parameters,
)
from django.conf import settings
from django.db.models import Sum
from django.shortcuts import render
from django.urls import reverse

from audits.middleware import client_ip
from governance.services.sign_ins import sign_in_failure_count


def client_address(request) -> str | None:
    """The address the audit records for the request (so X-Forwarded-For counts only as
    far as AUDIT_TRUSTED_PROXIES allows), if it is an IP address: axes keeps it in an
    address column, which would refuse anything else."""
    address = client_ip(request)
    if not address:
        return None
    try:
        parsed = ipaddress.ip_address(address)
    except ValueError:
        return None
    return None if getattr(parsed, "scope_id", None) else address


class SignInAttemptHandler(AxesDatabaseHandler):
    """Axes' database handler, which also hands every failure it counted, and whether it
    locked anything out, to the audit's burst; in that order, so what the audit says is
    what axes decided."""

    def is_allowed(self, request, credentials=None) -> bool:
        allowed = super().is_allowed(request, credentials)
        if not allowed:
            # Axes' backend refuses the attempt before any password is checked; it is
            # counted all the same, by axes and in the audit's burst.
            request.sign_in_refused = True
        return allowed

    def user_login_failed(self, sender, credentials, request=None, **kwargs):
        super().user_login_failed(sender, credentials, request, **kwargs)
        if request is None:
            return
        sign_in_failure_count(
            username=get_client_username(request, credentials) or "",
            address=request.axes_ip_address,
            path=getattr(request, "path", None),
            locked_by=self.locked_by(request, credentials) if request.axes_locked_out else [],
            refused=getattr(request, "sign_in_refused", False),
        )

    def locked_by(self, request, credentials) -> list[str]:
        """The lockout parameters (username, ip_address) whose count reached the limit."""
        limit = get_failure_limit(request, credentials)
        names = [
            "+".join(parameter) if isinstance(parameter, list) else parameter
            for parameter in get_lockout_parameters(request, credentials)
        ]
        counts = [
            attempts.aggregate(n=Sum("failures_since_start"))["n"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        ]
        return [name for name, count in zip(names, counts, strict=True) if count >= limit]


def lockout_response(request, original_response=None, credentials=None):
    """The admin's sign-in page again, saying why the attempt was refused."""
    from django.contrib import admin
    from django.contrib.admin.forms import AdminAuthenticationForm

    minutes = max(1, round(get_cool_off(request).total_seconds() / 60))
    username = get_client_username(request, credentials) or ""
    context = {
        **admin.site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
        "next": request.POST.get("next") or request.GET.get("next") or reverse("admin:index"),
        "form": AdminAuthenticationForm(request, initial={"username": username}),
        "refusal": (
            "Too many failed sign-ins for this username or from this address. "
            f"Try again in {minutes} minute{'s' if minutes != 1 else ''}, "
            "or ask an administrator to unlock it."
        ),
    }
    return render(
        request, "admin/login_refused.html", context, status=settings.AXES_HTTP_RESPONSE_CODE
    )
