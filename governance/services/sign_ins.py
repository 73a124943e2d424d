"""Failed sign-ins, audited per burst: the failures of one username from one address
that follow each other within the lockout's cool-off. Attempts are counted in a
SignInBurst row, those refused while locked out included, and the audit log gets one
auth.login_failed per burst, with its counts, when the burst ends: when its cool-off
passes with no further attempt, or in a sign-in, whose auth.login then carries the
count instead. A burst kept going past one cool-off (an attacker who never stops) is
recorded every cool-off, so the log learns of it within one.

Refused attempts open no burst of their own: one naming another username, from an
address a burst locked out, is counted in that burst; one from another address, for a
username a burst locked out, likewise. However many usernames an attacker sprays from
a locked address, or however many addresses try a locked username, the log gets one
event per cool-off for the lock."""

from dataclasses import dataclass
from datetime import datetime

from axes.helpers import get_cool_off
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from audits.chain import format_time
from audits.context import audit_context, current
from audits.services import record
from governance.models import SignInBurst

# Bursts due to be recorded, taken per batch by the sweep, each in its own transaction.
SWEEP_BATCH = 500

USERNAME, ADDRESS = "username", "ip_address"  # django-axes' lockout parameters


def _window_start(now: datetime) -> datetime:
    return now - get_cool_off()


@dataclass(frozen=True)
class Attempt:
    """A failed sign-in as django-axes handled it: locked_by names the lockout parameters
    whose count had reached the limit with it, refused whether axes refused it before
    any password was checked."""

    username: str
    address: str
    path: str
    locked_by: tuple[str, ...] = ()
    refused: bool = False


def sign_in_failure_count(
    *,
    username: str,
    address: str | None,
    path: str | None,
    locked_by: list[str],
    refused: bool = False,
) -> None:
    """Count a failed sign-in in its burst, recording first the burst it lands in if that
    one is due (its cool-off passed, or it has gone on for longer than one)."""
    attempt = Attempt(
        username=username[:255],
        address=address or "",
        path=(path or "")[:255],
        locked_by=tuple(locked_by),
        refused=refused,
    )
    now = timezone.now()
    holder = _holder(attempt) if attempt.refused else (attempt.username, attempt.address)
    _record_if_due(*holder, now=now)
    with transaction.atomic():
        burst, _ = SignInBurst.objects.select_for_update().get_or_create(
            username=holder[0],
            address=holder[1],
            defaults={"path": attempt.path, "first_failed_at": now, "last_failed_at": now},
        )
        if burst.is_empty:
            burst.first_failed_at = now
        burst.last_failed_at = now
        if holder == (attempt.username, attempt.address):
            burst.failures += 1
            burst.refused += attempt.refused
            burst.locked_username |= USERNAME in attempt.locked_by
            burst.locked_address |= ADDRESS in attempt.locked_by
        elif holder[0] == attempt.username:
            burst.refused_other_addresses += 1
        else:
            burst.refused_other_usernames += 1
        burst.save()


def _holder(attempt: Attempt) -> tuple[str, str]:
    """The burst a refused attempt is counted in: its own client's if that one is open,
    otherwise the burst that locked its address, or its username, out."""
    bursts = SignInBurst.objects.order_by("-last_failed_at").values_list("username", "address")
    if bursts.filter(username=attempt.username, address=attempt.address).exists():
        return attempt.username, attempt.address
    if ADDRESS in attempt.locked_by:
        holder = bursts.filter(address=attempt.address, locked_address=True).first()
        if holder:
            return holder
    if USERNAME in attempt.locked_by:
        holder = bursts.filter(username=attempt.username, locked_username=True).first()
        if holder:
            return holder
    return attempt.username, attempt.address


def sign_in_failures_take(*, username: str, address: str | None) -> int:
    """The failures of the burst a sign-in ends, which are then recorded with the sign-in
    (auth.login's failures_before): call inside the transaction that records it. A burst
    whose cool-off has passed is no longer this sign-in's, nor is one that locked anything
    out (a superuser lifted the lock): the sweep records those."""
    burst = (
        SignInBurst.objects.select_for_update()
        .filter(
            username=username[:255],
            address=address or "",
            last_failed_at__gte=_window_start(timezone.now()),
            locked_username=False,
            locked_address=False,
            refused_other_usernames=0,
            refused_other_addresses=0,
        )
        .first()
    )
    if burst is None:
        return 0
    burst.delete()
    return burst.failures


def sign_in_bursts_record(*, now: datetime | None = None) -> int:
    """Record every burst that is due, each in its own transaction: those whose cool-off
    has passed, and those that have gone on for longer than one. Returns how many."""
    now = now or timezone.now()
    threshold = _window_start(now)
    counted = (
        Q(failures__gt=0) | Q(refused_other_usernames__gt=0) | Q(refused_other_addresses__gt=0)
    )
    due = SignInBurst.objects.filter(
        Q(last_failed_at__lt=threshold) | (Q(first_failed_at__lt=threshold) & counted)
    )
    recorded = 0
    while True:
        batch = list(
            due.order_by("last_failed_at").values_list("username", "address")[:SWEEP_BATCH]
        )
        for username, address in batch:
            recorded += _record_if_due(username, address, now=now)
        if len(batch) < SWEEP_BATCH:
            return recorded


def _record_if_due(username: str, address: str, *, now: datetime) -> int:
    """Record the burst of this username and address if it is due: close it when its
    cool-off has passed, start it again from nothing when it has gone on for longer than
    one (the lock it holds stays). Returns 1 if it was recorded."""
    threshold = _window_start(now)
    with transaction.atomic():
        burst = (
            SignInBurst.objects.select_for_update()
            .filter(username=username, address=address)
            .first()
        )
        if burst is None:
            return 0
        ended = burst.last_failed_at < threshold
        if not ended and (burst.is_empty or burst.first_failed_at >= threshold):
            return 0
        if ended:
            burst.delete()
            if burst.is_empty:
                return 0
        # The event names the burst's address, whichever request or sweep records it.
        with audit_context(request_id=current().request_id, ip=address or None):
            _record(burst, continues=not ended)
        if not ended:
            burst.failures = burst.refused = 0
            burst.refused_other_usernames = burst.refused_other_addresses = 0
            burst.first_failed_at = now
            burst.save()
        return 1


def _record(burst: SignInBurst, *, continues: bool) -> None:
    """One auth.login_failed for the burst: the username tried, never a password."""
    User = get_user_model()
    known = (
        User.objects.filter(**{User.USERNAME_FIELD: burst.username}).first()
        if burst.username
        else None
    )
    locked_by = [
        name
        for name, locked in ((USERNAME, burst.locked_username), (ADDRESS, burst.locked_address))
        if locked
    ]
    record(
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
            "refused": burst.refused,
            "refused_other_usernames": burst.refused_other_usernames,
            "refused_other_addresses": burst.refused_other_addresses,
            "first_failed_at": format_time(burst.first_failed_at),
            "last_failed_at": format_time(burst.last_failed_at),
            "locked_out": bool(locked_by),
            "locked_by": locked_by,
            "continues": continues,
        },
    )
