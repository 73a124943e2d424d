"""List endpoints cost the same number of queries whatever the page size."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.factories import make_model, make_version, version_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(make_user, api_for):
    owner = make_user("olivia", "owner")
    ci = make_user("ci-bot", "ci")
    model = make_model(owner, "fraud")
    for i in range(100):
        make_model(ci, f"m-{i:03d}", tags={"team": "t"}, card={"intended_use": "x"})
        make_version(ci, model, seed=i)
    return api_for(owner)


def _count(api, path: str) -> int:
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        # token with its user, roles and permissions; count; page
        ("/api/v1/models/", 3),
        # token with its user, roles and permissions; model; count; page
        ("/api/v1/models/fraud/versions/", 4),
    ],
)
def test_a_page_of_1_and_of_100_cost_the_same_queries(api, path, expected):
    one = _count(api, f"{path}?page_size=1")
    hundred = _count(api, f"{path}?page_size=100")
    assert len(api.get(f"{path}?page_size=100").json()["results"]) == 100
    # The first call also records the token's first use.
    assert (one, hundred) == (expected + 1, expected)


def test_a_model_with_many_versions_costs_the_same_as_one(api, make_user, api_for):
    make_version(make_user("ci2", "ci"), make_model(make_user("oscar", "owner"), "lonely"))
    # token with its user, roles and permissions; model; latest per stage (2); the
    # first call also records the token's first use
    assert _count(api, "/api/v1/models/lonely/") == 4 + 1
    assert _count(api, "/api/v1/models/fraud/") == 4


def test_a_registration_costs_the_same_statements_however_many_versions_exist(
    api, make_user, api_for
):
    ci = api_for(make_user("ci-2", "ci"))
    url = "/api/v1/models/fraud/versions/"
    with CaptureQueriesContext(connection) as queries:
        created = ci.post(url, version_payload("new"), format="json")
    assert created.status_code == 201
    assert created.json()["version"] == 101
    statements = [q["sql"][:60] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # token with its user, roles and permissions; its first use recorded;
        # savepoint (the test runs in a transaction; a request outside one sends
        # neither); one statement that claims the number, inserts the version and
        # appends its event; release
        assert len(queries) == 5, statements
    else:
        # token; its first use recorded; savepoint; the model's row locked and its
        # counter advanced; the version; the chain head locked; the event; the head
        # moved; release
        assert len(queries) == 9, statements

    with CaptureQueriesContext(connection) as queries:
        second = ci.post(url, version_payload("second"), format="json")
    assert second.status_code == 201
    statements = [q["sql"][:60] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # The worker remembers the token: savepoint; the statement, which also requires
        # the token unrevoked and the credentials unchanged; release
        assert len(queries) == 3, statements
    else:
        assert len(queries) == 8, statements

    with CaptureQueriesContext(connection) as queries:
        again = ci.post(url, version_payload("new"), format="json")
    assert again.status_code == 200
    assert again.json() == created.json()
    statements = [q["sql"][:60] for q in queries.captured_queries]
    if connection.vendor == "postgresql":
        # savepoint; the remembered token's statement, which changes nothing; release;
        # then afresh: token; savepoint; the statement, which finds the artifact and
        # changes nothing; release; the existing version
        assert len(queries) == 8, statements
    else:
        # token; savepoint; the model's row locked, finding the artifact; the existing
        # version; release
        assert len(queries) == 5, statements
