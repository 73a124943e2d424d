"""The registration answered without DRF's full cycle (VersionListCreateApi.
register_directly) must answer what the full cycle answers, and leave to it every
request it is not made for.

`paths` records, per request, whether the direct path answered (True) or left the
request to the full cycle (False); `_turn_direct_path_off` turns the direct path off, so
that a test can compare the two answers to the same kind of request.
"""

import json

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from django.utils.crypto import get_random_string
from rest_framework.test import APIClient

from audits.models import AuditEvent
from registry.api.views import VersionListCreateApi
from registry.models import ModelVersion
from tests.factories import sha, version_payload

pytestmark = pytest.mark.django_db

URL = "/api/v1/models/fraud/versions/"
# Differ between two registrations by what they are: which version, which artifact, when.
VOLATILE_FIELDS = {"version", "artifact_uri", "artifact_sha256", "created_at", "updated_at"}
VOLATILE_HEADERS = {"X-Request-ID", "Content-Length"}


@pytest.fixture
def paths(monkeypatch):
    answered = []
    direct = VersionListCreateApi.register_directly

    def spy(self, request, name):
        response = direct(self, request, name)
        answered.append(response is not None)
        return response

    monkeypatch.setattr(VersionListCreateApi, "register_directly", spy)
    return answered


def _turn_direct_path_off(monkeypatch) -> None:
    monkeypatch.setattr(VersionListCreateApi, "register_directly", lambda *args: None)


def _post(api, payload, **headers):
    return api.post(URL, json.dumps(payload), content_type="application/json", **headers)


def _answer(response) -> tuple[int, dict, object]:
    headers = {k: v for k, v in response.headers.items() if k not in VOLATILE_HEADERS}
    if response["Content-Type"].startswith(("application/json", "application/problem+json")):
        body = response.json()
        if isinstance(body, dict):
            body = {k: v for k, v in body.items() if k not in VOLATILE_FIELDS}
    else:
        body = response.content
    return response.status_code, headers, body


def _both_ways(request, paths, monkeypatch) -> tuple:
    """(direct answer, full-cycle answer) to request(seed), for two seeds."""
    direct = request("direct")
    assert paths == [True], "the direct path did not answer"
    _turn_direct_path_off(monkeypatch)
    full = request("full")
    return direct, full


def test_a_registration_is_answered_directly_with_the_full_cycles_answer(
    ci_api, paths, monkeypatch
):
    direct, full = _both_ways(lambda seed: _post(ci_api, version_payload(seed)), paths, monkeypatch)

    assert direct.status_code == 201
    assert _answer(direct) == _answer(full)
    assert direct.json()["version"] == 1 and full.json()["version"] == 2
    assert direct.json()["artifact_sha256"] == sha("direct")
    assert direct["Content-Type"] == "application/json"
    assert direct["Allow"] == "GET, POST, HEAD, OPTIONS"
    assert direct["X-Request-ID"]


def test_a_retry_is_answered_directly_with_200_and_the_same_body(ci_api, paths):
    first = _post(ci_api, version_payload("same"))
    again = _post(ci_api, version_payload("same"))

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert paths == [True, True]
    assert ModelVersion.objects.filter(model__name="fraud").count() == 1
    assert AuditEvent.objects.filter(action="model_version.registered").count() == 1


def test_the_direct_answer_carries_every_header_the_middleware_adds(ci_api, paths):
    response = _post(ci_api, version_payload("headers"))

    assert paths == [True]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert "Accept" in response["Vary"]


@pytest.mark.parametrize(
    ("case", "send"),
    [
        (
            "a revoked or unknown token",
            lambda api: _post(APIClient(), version_payload(1), HTTP_AUTHORIZATION="Bearer nope"),
        ),
        (
            "a malformed Authorization header",
            lambda api: _post(APIClient(), version_payload(1), HTTP_AUTHORIZATION="Bearer a b"),
        ),
        (
            "a model that does not exist",
            lambda api: api.post(
                "/api/v1/models/ghost/versions/", version_payload(1), format="json"
            ),
        ),
    ],
)
def test_errors_met_on_the_direct_path_are_answered_as_the_full_cycle_answers_them(
    ci_api, paths, monkeypatch, case, send
):
    direct = send(ci_api)
    assert paths == [True], case
    _turn_direct_path_off(monkeypatch)
    full = send(ci_api)

    assert direct.status_code in (401, 404), case
    assert direct["Content-Type"] == "application/problem+json"
    assert _answer(direct) == _answer(full), case


def test_a_role_without_the_right_is_refused_as_the_full_cycle_refuses_it(
    fraud, make_user, api_for, paths, monkeypatch
):
    reviewer = api_for(make_user("rita", "reviewer"))
    direct, full = _both_ways(
        lambda seed: _post(reviewer, version_payload(seed)), paths, monkeypatch
    )

    assert direct.status_code == 403
    assert _answer(direct) == _answer(full)
    assert not ModelVersion.objects.filter(model=fraud).exists()


@pytest.mark.parametrize(
    ("case", "send"),
    [
        (
            "an invalid body",
            lambda api: _post(api, {**version_payload(1), "artifact_sha256": "a" * 63}),
        ),
        (
            "malformed JSON",
            lambda api: api.post(URL, b'{"artifact_uri": ', content_type="application/json"),
        ),
        ("a JSON array", lambda api: api.post(URL, b"[1, 2]", content_type="application/json")),
        (
            "NaN",
            lambda api: api.post(
                URL, b'{"metrics": {"auc": NaN}}', content_type="application/json"
            ),
        ),
        ("a form", lambda api: api.post(URL, {"artifact_uri": "s3://x"}, format="multipart")),
        (
            "a latin-1 body",
            lambda api: api.post(
                URL,
                json.dumps(version_payload(1)).encode(),
                content_type="application/json; charset=latin-1",
            ),
        ),
        ("an HTML client", lambda api: _post(api, version_payload(1), HTTP_ACCEPT="text/html")),
        (
            "an unsupported Accept",
            lambda api: _post(api, version_payload(1), HTTP_ACCEPT="application/xml"),
        ),
        (
            "a body over 64 KiB",
            lambda api: _post(api, version_payload(1, description="x" * 70_000)),
        ),
    ],
)
def test_what_the_direct_path_is_not_made_for_gets_the_full_cycles_answer(
    ci_api, paths, monkeypatch, case, send
):
    answer = send(ci_api)
    assert paths == [False], case
    events = AuditEvent.objects.count()
    # The same request again, with the direct path off: the same answer. A request that
    # registered (the HTML client's) is answered 200 the second time, as retries are.
    _turn_direct_path_off(monkeypatch)
    again = send(ci_api)

    assert answer.status_code != 500, case
    if answer.status_code == 201:
        assert again.status_code == 200, case
    else:
        assert _answer(answer) == _answer(again), case
    assert AuditEvent.objects.count() == events, case


def _browser(user, csrf_secret: str | None = None) -> APIClient:
    browser = APIClient(enforce_csrf_checks=True)
    browser.force_login(get_user_model().objects.get(pk=user.pk))
    if csrf_secret:
        browser.cookies[settings.CSRF_COOKIE_NAME] = csrf_secret
        browser.credentials(HTTP_X_CSRFTOKEN=csrf_secret)
    return browser


def test_a_session_without_its_csrf_token_is_refused_as_the_full_cycle_refuses_it(
    fraud, make_user, paths, monkeypatch
):
    browser = _browser(make_user("sam", "ci"))
    # Any Authorization header but a token one leaves the session to authenticate.
    direct, full = _both_ways(
        lambda seed: _post(browser, version_payload(seed), HTTP_AUTHORIZATION="Basic c2Ft"),
        paths,
        monkeypatch,
    )

    assert direct.status_code == 403
    assert "CSRF" in direct.json()["detail"]
    assert _answer(direct) == _answer(full)
    assert not ModelVersion.objects.filter(model=fraud).exists()


def test_a_session_with_its_csrf_token_takes_the_full_cycle(fraud, make_user, paths):
    browser = _browser(make_user("sam", "ci"), csrf_secret=get_random_string(32))

    response = _post(browser, version_payload(1), HTTP_AUTHORIZATION="Basic c2Ft")

    assert response.status_code == 201, response.content
    assert paths == [False]
    assert ModelVersion.objects.get(model=fraud).created_by.username == "sam"


@pytest.mark.sqlite
def test_a_token_is_remembered_only_where_triggers_move_the_credential_epoch(ci_api, vendor):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    assert _post(ci_api, version_payload("first")).status_code == 201
    with CaptureQueriesContext(connection) as queries:
        assert _post(ci_api, version_payload("second")).status_code == 201

    looked_up = any("SELECT 'token'" in query["sql"] for query in queries.captured_queries)
    # PostgreSQL's statement requires the token and the epoch itself; SQLite's path
    # takes several statements, none of which could, so it looks the token up again.
    assert looked_up is (vendor == "sqlite")
