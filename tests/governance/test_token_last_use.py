"""A token's last use is recorded without a write on every request: each process
writes it at most once per API_TOKEN_LAST_USE_INTERVAL, and only over an older value."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from governance import authentication
from governance.authentication import token_uses
from governance.models import ApiToken

pytestmark = pytest.mark.django_db

MODELS = "/api/v1/models/"
LAST_USE_WRITE = 'UPDATE "governance_apitoken" SET "last_used_at"'


def _get(api) -> list[str]:
    with CaptureQueriesContext(connection) as queries:
        assert api.get(MODELS).status_code == 200
    return [query["sql"] for query in queries.captured_queries]


def _last_used(user):
    return ApiToken.objects.get(user=user).last_used_at


@pytest.fixture
def clock(monkeypatch):
    """This process's monotonic clock, moved by hand."""
    now = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: now[0])
    return now


def test_the_first_use_is_recorded_and_the_next_within_the_interval_writes_nothing(
    ci, ci_api, clock
):
    assert _last_used(ci) is None

    first = _get(ci_api)
    recorded = _last_used(ci)
    clock[0] += 59
    second = _get(ci_api)

    # token with its user, roles and permissions; its use recorded; count; page
    assert len(first) == 4 and first[1].startswith(LAST_USE_WRITE)
    assert recorded is not None
    # token with its user, roles and permissions; count; page
    assert len(second) == 3 and not any(sql.startswith(LAST_USE_WRITE) for sql in second)
    assert _last_used(ci) == recorded


def test_after_the_interval_the_use_is_recorded_again(ci, ci_api, clock):
    _get(ci_api)
    ApiToken.objects.filter(user=ci).update(last_used_at=Now() - timedelta(minutes=5))
    stale = _last_used(ci)
    clock[0] += 60

    assert len(_get(ci_api)) == 4
    assert _last_used(ci) > stale


def test_another_process_finds_the_use_recorded_lately_and_changes_nothing(ci, ci_api):
    _get(ci_api)
    recorded = _last_used(ci)
    token_uses.clear()  # as a process that has not seen this token yet

    # It asks once, with a condition the recent value fails, and writes nothing.
    assert len(_get(ci_api)) == 4
    assert _last_used(ci) == recorded
    assert len(_get(ci_api)) == 3


def test_a_token_that_fails_authentication_records_no_use(ci, ci_api):
    ApiToken.objects.filter(user=ci).update(revoked_at=Now())

    with CaptureQueriesContext(connection) as queries:
        assert ci_api.get(MODELS).status_code == 401

    assert len(queries) == 1
    assert _last_used(ci) is None
