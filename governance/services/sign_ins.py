"""Failed sign-ins, audited per burst: the failures of one username from one address
that follow each other within the lockout's cool-off. Attempts are counted in a
SignInBurst row; the audit log gets one auth.login_failed per burst, with its count,
when the burst locks out, or when its window passes with no sign-in; a sign-in that
ends a burst carries its count in auth.login instead. Attempts refused while locked out
are not counted here (django-axes counts them): however many attempts come, a burst
writes one event, and only the failures the lockout lets through open bursts."""

from datetime import datetime

from axes.helpers import get_cool_off
from django.contrib.auth import get_user_model
from django.db import transaction
from django.utils import timezone

from audits.chain import format_time
from audits.context import audit_context, current
from audits.models import AuditEvent
from audits.services import record
from governance.models import SignInBurst

# Bursts whose window has passed, recorded per transaction of the sweep's loop.
SWEEP_BATCH = 500


def _window_start(now: datetime) -> datetime:
    return now - get_cool_off()


def sign_in_failure_count(
    *, username: str, address: str | None, path: str | None, locked_by: list[str]
) -> AuditEvent | None:
    """Count a failed sign-in in its burst; when it locked the username or the address out
    (locked_by names which), record the burst and close it."""
    username, address = username[:255], address or ""
    now = timezone.now()
    _record_if_ended(username=username, address=address, now=now)
    with transaction.atomic():
        burst, created = SignInBurst.objects.select_for_update().get_or_create(
            username=username,
            address=address,
            defaults={
                "path": (path or "")[:255],
                "failures": 1,
                "first_failed_at": now,
                "last_failed_at": now,
            },
        )
        if not created:  # the row is locked: no other failure of the burst is counted meanwhile
            burst.failures += 1
            burst.last_failed_at = now
            burst.save(update_fields=["failures", "last_failed_at"])
        if not locked_by:
            return None
        burst.delete()
        return _record(burst, locked_by=locked_by)


def sign_in_failures_take(*, username: str, address: str | None) -> int:
    """The failures of the burst a sign-in ends, which are then recorded with the sign-in
    (auth.login's failures_before): call inside the transaction that records it. A burst
    whose window has passed is no longer this sign-in's; the sweep records it."""
    burst = (
        SignInBurst.objects.select_for_update()
        .filter(
            username=username[:255],
            address=address or "",
            last_failed_at__gte=_window_start(timezone.now()),
        )
        .first()
    )
    if burst is None:
        return 0
    burst.delete()
    return burst.failures


def sign_in_bursts_record(*, now: datetime | None = None) -> int:
    """Record every burst whose window has passed, each in its own transaction. Returns
    how many were recorded."""
    recorded = 0
    while True:
        threshold = _window_start(now or timezone.now())
        batch = list(
            SignInBurst.objects.filter(last_failed_at__lt=threshold)
            .order_by("last_failed_at")
            .values_list("username", "address")[:SWEEP_BATCH]
        )
        for username, address in batch:
            recorded += _record_if_ended(username=username, address=address, now=now)
        if len(batch) < SWEEP_BATCH:
            return recorded


def _record_if_ended(*, username: str, address: str, now: datetime | None) -> int:
    with transaction.atomic():
        burst = (
            SignInBurst.objects.select_for_update()
            .filter(
                username=username,
                address=address,
                last_failed_at__lt=_window_start(now or timezone.now()),
            )
            .first()
        )
        if burst is None:
            return 0
        burst.delete()
        # From the sweep, outside any request, the event still names the address.
        with audit_context(request_id=current().request_id, ip=address or None):
            _record(burst, locked_by=[])
        return 1


def _record(burst: SignInBurst, *, locked_by: list[str]) -> AuditEvent:
    """One auth.login_failed for the burst: the username tried, never a password."""
    User = get_user_model()
    known = (
        User.objects.filter(**{User.USERNAME_FIELD: burst.username}).first()
        if burst.username
        else None
    )
    return record(
        actor=None,
        action="auth.login_failed",
        object_type="user",
        object_id=known.pk if known else "",
        object_repr=burst.username[:200],
        data={
            "username": burst.username[:150],
            "known_user": known is not None,
            "path": burst.path or None,
            "failures": burst.failures,
            "first_failed_at": format_time(burst.first_failed_at),
            "last_failed_at": format_time(burst.last_failed_at),
            "locked_out": bool(locked_by),
            "locked_by": locked_by,
        },
    )
