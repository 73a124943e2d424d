"""Failed sign-ins are limited per username and per client address (django-axes), refused
before any password is checked once locked out, and audited once per burst with its
count, never once per attempt."""

import re
from datetime import timedelta
from unittest import mock

import pytest
from django.contrib.auth.backends import ModelBackend
from django.test import Client
from django.utils import timezone

from audits.models import AuditEvent

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
LIMIT = 10
ATTACKER = "203.0.113.5"
ELSEWHERE = "198.51.100.7"
CSRF_FIELD = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture(autouse=True)
def _limits(settings):
    settings.AXES_FAILURE_LIMIT = LIMIT
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    settings.AUDIT_TRUSTED_PROXIES = 0


@pytest.fixture
def olivia(make_user):
    return make_user("olivia", "owner")


@pytest.fixture
def rita(make_user):
    return make_user("rita", "reviewer")


def browser(address: str = ATTACKER, **headers) -> Client:
    return Client(enforce_csrf_checks=True, REMOTE_ADDR=address, **headers)


def sign_in(client: Client, username: str, password: str, **headers):
    """What a browser does: fetch the sign-in page, post the form with its CSRF token."""
    page = client.get("/admin/login/?next=/admin/", **headers)
    assert page.status_code == 200
    token = CSRF_FIELD.search(page.content.decode()).group(1)
    return client.post(
        "/admin/login/?next=/admin/",
        {
            "username": username,
            "password": password,
            "next": "/admin/",
            "csrfmiddlewaretoken": token,
        },
        **headers,
    )


def signed_in(client: Client) -> bool:
    return "_auth_user_id" in client.session


def mark() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


def events_since(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def burst_data(event: AuditEvent) -> dict:
    """The event's data without the burst's times, which are checked for form only."""
    data = dict(event.data)
    for key in ("first_failed_at", "last_failed_at"):
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", data.pop(key))
    return data


def window_passes() -> int:
    """The sweep, run as if the cool-off had passed since every failure so far."""
    from django.conf import settings

    from governance.services.sign_ins import sign_in_bursts_record

    later = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    return sign_in_bursts_record(now=later)


def test_twenty_failures_lock_the_username_and_leave_one_event_with_their_count(olivia):
    client = browser()
    start = mark()

    statuses = [sign_in(client, "olivia", f"guess-{i}").status_code for i in range(20)]

    # The tenth failure locks out; it and every attempt after it get the lockout page.
    assert statuses == [200] * (LIMIT - 1) + [429] * (20 - LIMIT + 1)
    page = sign_in(client, "olivia", "guess-20").content.decode()
    assert "Too many failed sign-ins for this username or from this address" in page
    assert "Try again in 15 minutes" in page
    assert 'id="login-form"' in page
    # While the burst goes on, the attempts write nothing to the audit log.
    assert events_since(start) == []

    # When its cool-off passes, the burst is recorded once, with every attempt counted:
    # the ten that reached the limit and the eleven refused after it.
    assert window_passes() == 1
    events = events_since(start)
    assert [(e.action, e.actor, e.object_type, e.object_id, e.object_repr) for e in events] == [
        ("auth.login_failed", "system", "user", str(olivia.pk), "olivia")
    ]
    assert burst_data(events[0]) == {
        "username": "olivia",
        "known_user": True,
        "path": "/admin/login/",
        "failures": 21,
        "refused": 21 - LIMIT,
        "refused_other_usernames": 0,
        "refused_other_addresses": 0,
        "locked_out": True,
        "locked_by": ["username", "ip_address"],
        "continues": False,
    }
    assert events[0].ip == ATTACKER
    assert window_passes() == 0
    assert len(events_since(start)) == 1


def test_a_locked_out_attempt_is_refused_before_its_password_is_checked(olivia):
    client = browser()
    for i in range(LIMIT):
        sign_in(client, "olivia", f"guess-{i}")

    with mock.patch.object(ModelBackend, "authenticate", autospec=True) as password_check:
        refused = sign_in(client, "olivia", PASSWORD)

    assert refused.status_code == 429
    assert password_check.call_count == 0
    assert not signed_in(client)
    window_passes()
    [event] = AuditEvent.objects.filter(action="auth.login_failed")
    assert (event.data["failures"], event.data["refused"]) == (LIMIT + 1, 1)


def test_a_burst_kept_going_is_recorded_every_cool_off(olivia):
    from governance.models import SignInBurst

    client = browser()
    start = mark()
    for i in range(LIMIT + 2):
        sign_in(client, "olivia", f"guess-{i}")
    # The attacker keeps trying for longer than one cool-off: the sweep records what the
    # burst counted so far and leaves it open, still holding its lock.
    SignInBurst.objects.update(first_failed_at=timezone.now() - timedelta(minutes=16))
    from governance.services.sign_ins import sign_in_bursts_record

    assert sign_in_bursts_record() == 1
    assert sign_in_bursts_record() == 0
    for i in range(3):
        assert sign_in(client, "olivia", f"more-{i}").status_code == 429
    assert sign_in(browser(ELSEWHERE), "olivia", PASSWORD).status_code == 429
    assert window_passes() == 1

    first, rest = events_since(start)
    assert (first.data["failures"], first.data["refused"], first.data["continues"]) == (
        LIMIT + 2,
        2,
        True,
    )
    assert [
        rest.data[key]
        for key in ("failures", "refused", "refused_other_addresses", "locked_by", "continues")
    ] == [3, 3, 1, ["username", "ip_address"], False]
    assert first.data["last_failed_at"] <= rest.data["first_failed_at"]
    assert not SignInBurst.objects.exists()


def test_the_lock_holds_the_username_everywhere_and_the_address_for_everyone(olivia, rita):
    attacker = browser()
    for i in range(LIMIT):
        sign_in(attacker, "olivia", f"guess-{i}")

    # Another username from another address is not locked.
    other = browser(ELSEWHERE)
    assert sign_in(other, "rita", PASSWORD).status_code == 302
    assert signed_in(other)
    # The username is locked from every address, and the address for every username.
    assert sign_in(browser(ELSEWHERE), "olivia", PASSWORD).status_code == 429
    assert sign_in(browser(), "rita", PASSWORD).status_code == 429


def test_an_address_trying_many_usernames_is_locked_and_each_burst_is_recorded(olivia, rita):
    client = browser()
    start = mark()
    names = [f"user{i}" for i in range(LIMIT - 1)] + ["olivia"]

    statuses = [sign_in(client, name, "guess").status_code for name in names]
    assert statuses == [200] * (LIMIT - 1) + [429]
    # Spraying on from the locked address: each attempt is refused and counted in the
    # burst that locked the address, not in one of its own.
    sprayed = [f"spray{i}" for i in range(25)] + ["rita"]
    assert {sign_in(client, name, PASSWORD).status_code for name in sprayed} == {429}
    assert events_since(start) == []

    # When the cool-off passes: the lone failures of the other usernames, each once with
    # its count, and the burst that locked the address, with the attempts it refused.
    assert window_passes() == LIMIT
    events = events_since(start)
    assert [(e.action, e.ip, e.object_repr, burst_data(e)) for e in events] == [
        (
            "auth.login_failed",
            ATTACKER,
            name,
            {
                "username": name,
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
        )
        for name in names[:-1]
    ] + [
        (
            "auth.login_failed",
            ATTACKER,
            "olivia",
            {
                "username": "olivia",
                "known_user": True,
                "path": "/admin/login/",
                "failures": 1,
                "refused": 0,
                "refused_other_usernames": len(sprayed),
                "refused_other_addresses": 0,
                "locked_out": True,
                "locked_by": ["ip_address"],
                "continues": False,
            },
        )
    ]
    assert window_passes() == 0


def test_many_addresses_trying_one_username_leave_an_event_per_address_until_it_locks(olivia):
    start = mark()
    addresses = [f"192.0.2.{i}" for i in range(LIMIT)]
    statuses = [sign_in(browser(a), "olivia", "guess").status_code for a in addresses]
    assert statuses == [200] * (LIMIT - 1) + [429]
    # Once the username is locked, attempts from yet more addresses open no bursts.
    more = [f"198.51.100.{i}" for i in range(30)]
    assert {sign_in(browser(a), "olivia", PASSWORD).status_code for a in more} == {429}

    assert window_passes() == LIMIT
    events = events_since(start)
    assert [e.ip for e in events] == addresses
    locked = events[-1].data
    assert (locked["locked_by"], locked["refused_other_addresses"]) == (["username"], len(more))
    assert sum(e.data["failures"] for e in events) + locked["refused_other_addresses"] == 40


def test_forwarded_addresses_count_only_from_trusted_proxies(settings, olivia, rita):
    # No trusted proxy: a client naming other addresses in X-Forwarded-For is still
    # counted by its own.
    client = browser()
    for i in range(LIMIT):
        sign_in(client, f"user{i}", "guess", HTTP_X_FORWARDED_FOR=f"192.0.2.{i}")
    assert sign_in(client, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="192.0.2.200").status_code == 429

    # One trusted proxy: the address it saw counts, whatever the client put before it,
    # and another client behind the same proxy is not locked out.
    settings.AUDIT_TRUSTED_PROXIES = 1
    proxy = "10.0.0.2"
    behind = browser(proxy)
    for i in range(LIMIT):
        spoofed = f"192.0.2.{i}, {ELSEWHERE}"
        sign_in(behind, f"user{i}", "guess", HTTP_X_FORWARDED_FOR=spoofed)
    assert sign_in(behind, "user0", "guess", HTTP_X_FORWARDED_FOR=ELSEWHERE).status_code == 429
    neighbour = browser(proxy)
    response = sign_in(neighbour, "rita", PASSWORD, HTTP_X_FORWARDED_FOR="198.51.100.8")
    assert response.status_code == 302
    from axes.models import AccessAttempt

    assert set(AccessAttempt.objects.values_list("ip_address", flat=True)) == {
        ATTACKER,
        ELSEWHERE,
    }


def test_a_sign_in_resets_the_counts_and_records_the_failures_before_it(olivia):
    client = browser()
    start = mark()
    for i in range(3):
        assert sign_in(client, "olivia", f"guess-{i}").status_code == 200
    assert sign_in(client, "olivia", PASSWORD).status_code == 302

    [login] = events_since(start)
    assert (login.action, login.actor, login.ip, login.data) == (
        "auth.login",
        "olivia",
        ATTACKER,
        {"username": "olivia", "path": "/admin/login/", "failures_before": 3},
    )
    assert window_passes() == 0

    # Counted from zero again: the limit is reached only after LIMIT more failures.
    client.post("/admin/logout/", {"csrfmiddlewaretoken": client.cookies["csrftoken"].value})
    statuses = [sign_in(client, "olivia", f"again-{i}").status_code for i in range(LIMIT)]
    assert statuses == [200] * (LIMIT - 1) + [429]


def test_a_failure_after_the_window_records_the_earlier_burst_and_starts_another(olivia):
    from governance.models import SignInBurst

    client = browser()
    start = mark()
    for i in range(2):
        sign_in(client, "olivia", f"guess-{i}")
    SignInBurst.objects.update(last_failed_at=timezone.now() - timedelta(minutes=16))

    sign_in(client, "olivia", "guess-2")

    [earlier] = events_since(start)
    assert (earlier.data["failures"], earlier.data["locked_out"], earlier.data["continues"]) == (
        2,
        False,
        False,
    )
    assert list(SignInBurst.objects.values_list("username", "failures")) == [("olivia", 1)]


def test_locked_out_attempts_are_shown_to_admins_read_only(make_user, olivia):
    from axes.models import AccessAttempt

    make_user("ada", "admin")
    attacker = browser()
    for i in range(LIMIT + 2):
        sign_in(attacker, "olivia", f"guess-{i}")

    admin = browser(ELSEWHERE)
    assert sign_in(admin, "ada", PASSWORD).status_code == 302
    attempts = admin.get("/admin/axes/accessattempt/")
    assert attempts.status_code == 200
    page = attempts.content.decode()
    assert "olivia" in page
    assert "Locked Out" in page
    failures = admin.get("/admin/axes/accessfailurelog/?locked_out__exact=1")
    assert failures.status_code == 200
    # The one that reached the limit, and the two after it, refused before any password
    # was checked.
    assert failures.context["cl"].result_count == 3

    attempt = AccessAttempt.objects.get(username="olivia")
    change = admin.get(f"/admin/axes/accessattempt/{attempt.pk}/change/")
    assert change.status_code == 200
    assert 'name="_save"' not in change.content.decode()
    token = admin.cookies["csrftoken"].value
    deleted = admin.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/",
        {"post": "yes", "csrfmiddlewaretoken": token},
    )
    assert deleted.status_code == 403
    assert AccessAttempt.objects.filter(pk=attempt.pk).exists()


def test_a_superuser_unlocks_by_deleting_the_attempt_in_the_admin(olivia):
    from axes.models import AccessAttempt
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_superuser("root", password=PASSWORD)
    for i in range(LIMIT):
        sign_in(browser(), "olivia", f"guess-{i}")
    root = browser(ELSEWHERE)
    assert sign_in(root, "root", PASSWORD).status_code == 302
    attempt = AccessAttempt.objects.get(username="olivia")
    start = mark()

    deleted = root.post(
        f"/admin/axes/accessattempt/{attempt.pk}/delete/",
        {"post": "yes", "csrfmiddlewaretoken": root.cookies["csrftoken"].value},
    )

    assert deleted.status_code == 302
    assert [
        (e.action, e.actor, e.data["operation"], e.data["model"]) for e in events_since(start)
    ] == [("admin.action", "root", "deleted", "axes.accessattempt")]
    assert sign_in(browser(), "olivia", PASSWORD).status_code == 302


def test_api_tokens_are_unaffected_by_a_locked_username_and_address(olivia, api_for):
    for i in range(LIMIT):
        sign_in(browser("127.0.0.1"), "olivia", f"guess-{i}")
    assert sign_in(browser("127.0.0.1"), "olivia", PASSWORD).status_code == 429
    start = mark()

    # From 127.0.0.1 too, the test client's address.
    for scheme in ("Bearer", "Token"):
        assert api_for(olivia, scheme=scheme).get("/api/v1/models/").status_code == 200
    assert [e.action for e in events_since(start)] == ["token.created", "token.created"]
