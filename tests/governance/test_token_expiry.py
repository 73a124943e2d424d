"""Every token expires: after `expires_at`, by the database's clock, it answers 401
as a revoked one does. Its lifetime is the default unless its creator names one, up
to a maximum."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db.models.functions import Now
from django.utils import timezone

from governance.models import ApiToken
from tests.factories import version_payload

pytestmark = pytest.mark.django_db


def expire(user) -> None:
    # The database's clock, as the token lookup reads it.
    ApiToken.objects.filter(user=user).update(expires_at=Now() - timedelta(seconds=1))


def about(days: int):
    return timezone.now() + timedelta(days=days)


def assert_close(when, expected):
    assert abs(when - expected) < timedelta(minutes=1), (when, expected)


def test_an_expired_token_answers_401(ci, ci_api):
    assert ci_api.get("/api/v1/models/").status_code == 200

    expire(ci)

    for response in (
        ci_api.get("/api/v1/models/"),
        ci_api.post("/api/v1/models/fraud/versions/", version_payload(1), format="json"),
    ):
        assert response.status_code == 401
        assert response["Content-Type"] == "application/problem+json"
        assert "expired" in response.json()["detail"]


def test_a_token_lives_the_default_lifetime(ci, api_for, settings):
    settings.API_TOKEN_LIFETIME_DAYS = 30
    api_for(ci)

    assert_close(ApiToken.objects.get(user=ci).expires_at, about(30))


def run(*args) -> str:
    out = StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_add_user_token_expires_in_the_days_asked(roles):
    run("add_user", "ci-bot", "--role", "ci", "--token", "--expires-in", "7")
    run("add_user", "ci-2", "--role", "ci", "--token")

    assert_close(ApiToken.objects.get(user__username="ci-bot").expires_at, about(7))
    assert_close(ApiToken.objects.get(user__username="ci-2").expires_at, about(90))


def test_add_user_refuses_a_lifetime_beyond_the_maximum_before_changing_anything(roles):
    with pytest.raises(CommandError, match="1 to 365 days"):
        run("add_user", "ci-bot", "--role", "ci", "--token", "--expires-in", "366")

    assert not get_user_model().objects.filter(username="ci-bot").exists()
    assert not ApiToken.objects.exists()
