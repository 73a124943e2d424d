"""Signing in, signing out and failing to sign in are audited, never with a password."""

import json

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone

from audits.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def events_since(seq: int) -> list[tuple]:
    return [
        (e.action, e.actor, e.actor_kind, e.object_type, e.object_id, e.object_repr, e.data)
        for e in AuditEvent.objects.filter(seq__gt=seq).order_by("seq")
    ]


def mark() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.fixture
def olivia(make_user):
    return make_user("olivia", "owner")


def test_a_login_and_a_logout_through_the_admin_are_audited(olivia):
    client = Client(REMOTE_ADDR="10.0.0.7")
    start = mark()
    response = client.post(
        "/admin/login/?next=/admin/",
        {"username": "olivia", "password": PASSWORD, "next": "/admin/"},
        HTTP_X_REQUEST_ID="login-1",
    )
    assert response.status_code == 302
    assert client.post("/admin/logout/").status_code == 200

    pk = str(olivia.pk)
    assert events_since(start) == [
        (
            "auth.login",
            "olivia",
            "user",
            "user",
            pk,
            "olivia",
            {"username": "olivia", "path": "/admin/login/"},
        ),
        (
            "auth.logout",
            "olivia",
            "user",
            "user",
            pk,
            "olivia",
            {"username": "olivia", "path": "/admin/logout/"},
        ),
    ]
    login = AuditEvent.objects.get(action="auth.login")
    assert (login.request_id, login.ip) == ("login-1", "10.0.0.7")


def test_a_failed_login_keeps_the_username_tried_and_never_the_password(olivia):
    from axes.models import AccessAttempt, AccessFailureLog

    from governance.services.sign_ins import sign_in_bursts_record

    client = Client(REMOTE_ADDR="10.0.0.7")
    start = mark()
    for username in ("olivia", "nobody"):
        response = client.post(
            "/admin/login/", {"username": username, "password": "guess-Tr0ub4dor&3"}
        )
        assert response.status_code == 200  # the form again, with its error
    # Each failure opens a burst, written once when it ends: here, when its window passes.
    assert events_since(start) == []
    later = timezone.now() + settings.AXES_COOLOFF_TIME
    assert sign_in_bursts_record(now=later) == 2
    assert sign_in_bursts_record(now=later) == 0
    assert {e.ip for e in AuditEvent.objects.filter(seq__gt=start)} == {"10.0.0.7"}

    assert [(*event[:6], _without_times(event[6])) for event in events_since(start)] == [
        (
            "auth.login_failed",
            "system",
            "system",
            "user",
            str(olivia.pk),
            "olivia",
            {
                "username": "olivia",
                "known_user": True,
                "path": "/admin/login/",
                "failures": 1,
                "refused": 0,
                "refused_other_usernames": 0,
                "refused_other_addresses": 0,
                "locked_out": False,
                "locked_by": [],
                "continues": False,
            },
        ),
        (
            "auth.login_failed",
            "system",
            "system",
            "user",
            "",
            "nobody",
            {
                "username": "nobody",
                "known_user": False,
                "path": "/admin/login/",
                "failures": 1,
                "refused": 0,
                "refused_other_usernames": 0,
                "refused_other_addresses": 0,
                "locked_out": False,
                "locked_by": [],
                "continues": False,
            },
        ),
    ]
    stored = json.dumps(
        [
            *AuditEvent.objects.filter(seq__gt=start).values(),
            *AccessAttempt.objects.values(),
            *AccessFailureLog.objects.values(),
        ],
        default=str,
    )
    assert "Tr0ub4dor" not in stored
    assert "*****" not in json.dumps(
        list(AuditEvent.objects.filter(seq__gt=start).values()), default=str
    )  # not even a masked form of it


def _without_times(data: dict) -> dict:
    return {k: v for k, v in data.items() if k not in ("first_failed_at", "last_failed_at")}


def test_a_token_call_is_no_login(olivia, api_for):
    api = api_for(olivia)
    start = mark()
    assert api.get("/api/v1/models/").status_code == 200
    assert events_since(start) == []
