"""Every registry endpoint, for every role, through real HTTP with real tokens."""

import pytest

from audits.models import AuditEvent
from tests.factories import make_model, make_version, version_payload

pytestmark = pytest.mark.django_db

ROLES = ["owner", "other_owner", "reviewer", "compliance", "ci", "admin", "anonymous"]
READERS = {role: 200 for role in ROLES if role != "anonymous"} | {"anonymous": 401}


def only(allowed: dict[str, int]) -> dict[str, int]:
    """allowed roles get their status; the other roles 403; anonymous 401."""
    return {role: allowed.get(role, 403) for role in ROLES if role != "anonymous"} | {
        "anonymous": 401
    }


MATRIX = [
    (
        "post",
        "/api/v1/models/",
        lambda n: {"name": f"new-{n}"},
        only({"owner": 201, "other_owner": 201, "ci": 201, "admin": 201}),
    ),
    ("get", "/api/v1/models/", None, READERS),
    ("get", "/api/v1/models/fraud/", None, READERS),
    (
        "patch",
        "/api/v1/models/fraud/",
        lambda n: {"description": f"by {n}"},
        only({"owner": 200, "admin": 200}),
    ),
    ("get", "/api/v1/models/fraud/versions/", None, READERS),
    (
        "post",
        "/api/v1/models/fraud/versions/",
        lambda n: version_payload(f"matrix-{n}"),
        only({"owner": 201, "ci": 201, "admin": 201}),
    ),
    ("get", "/api/v1/models/fraud/versions/1/", None, READERS),
    (
        "patch",
        "/api/v1/models/fraud/versions/1/",
        lambda n: {"description": f"by {n}"},
        only({"owner": 200, "admin": 200}),
    ),
    ("get", "/api/v1/models/fraud/grants/", None, READERS),
    (
        "post",
        "/api/v1/models/fraud/grants/",
        lambda n: {"permission": "change", "group": "admin"},
        only({"owner": 200, "admin": 200}),
    ),
    (
        # Only admins name the reviewers who decide a model's promotions.
        "post",
        "/api/v1/models/fraud/grants/",
        lambda n: {"permission": "review", "user": "rita"},
        only({"admin": 200}),
    ),
]

MISSING = [
    ("get", "/api/v1/models/nope/", None),
    ("patch", "/api/v1/models/nope/", {"description": "x"}),
    ("get", "/api/v1/models/nope/versions/", None),
    ("post", "/api/v1/models/nope/versions/", version_payload("missing")),
    ("get", "/api/v1/models/fraud/versions/99/", None),
    ("patch", "/api/v1/models/fraud/versions/99/", {"description": "x"}),
    ("get", "/api/v1/models/nope/grants/", None),
]


@pytest.fixture
def clients(make_user, api_for):
    users = {
        "owner": make_user("olivia", "owner"),
        "other_owner": make_user("oscar", "owner"),
        "reviewer": make_user("rita", "reviewer"),
        "compliance": make_user("carla", "compliance"),
        "ci": make_user("ci-bot", "ci"),
        "admin": make_user("ada", "admin"),
    }
    model = make_model(users["owner"], "fraud")
    make_version(users["ci"], model, seed="v1")
    return {role: api_for(user) for role, user in users.items()} | {"anonymous": api_for(None)}


@pytest.mark.parametrize(
    ("method", "path", "body", "expected"),
    MATRIX,
    ids=[f"{m.upper()} {p}" for m, p, _, _ in MATRIX],
)
def test_each_role_gets_its_answer(clients, method, path, body, expected):
    for role, status in expected.items():
        before = AuditEvent.objects.count()
        kwargs = {"data": body(role), "format": "json"} if body else {}
        response = getattr(clients[role], method)(path, **kwargs)
        assert response.status_code == status, (role, response.content)
        if status >= 400:
            assert response["Content-Type"] == "application/problem+json"
            assert response.json()["status"] == status
            assert AuditEvent.objects.count() == before, f"{role}: a refused call wrote an event"


@pytest.mark.parametrize(
    ("method", "path", "body"), MISSING, ids=[f"{m.upper()} {p}" for m, p, _ in MISSING]
)
def test_what_does_not_exist_is_404_for_every_role(clients, method, path, body):
    for role in ("owner", "reviewer", "compliance", "ci", "admin"):
        kwargs = {"data": body, "format": "json"} if body else {}
        response = getattr(clients[role], method)(path, **kwargs)
        assert response.status_code == 404, (role, response.content)
        assert response["Content-Type"] == "application/problem+json"


def test_a_user_without_a_role_reads_nothing(make_user, api_for, clients):
    response = api_for(make_user("nobody"), scheme="Token").get("/api/v1/models/")
    assert response.status_code == 403


def test_an_owner_grant_lets_another_user_change_the_model(clients):
    assert (
        clients["other_owner"]
        .patch("/api/v1/models/fraud/", {"description": "mine now"}, format="json")
        .status_code
        == 403
    )
    granted = clients["owner"].post(
        "/api/v1/models/fraud/grants/", {"permission": "change", "user": "oscar"}, format="json"
    )
    assert granted.status_code == 200
    assert {"permission": "change", "user": "oscar"} in granted.json()["grants"]
    event = AuditEvent.objects.filter(action="role.granted", model="fraud").last()
    assert (event.actor, event.data) == (
        "olivia",
        {"permission": "change", "user": "oscar", "scope": "model"},
    )
    assert (
        clients["other_owner"]
        .patch("/api/v1/models/fraud/", {"description": "mine now"}, format="json")
        .status_code
        == 200
    )
    revoked = clients["owner"].delete(
        "/api/v1/models/fraud/grants/", {"permission": "change", "user": "oscar"}, format="json"
    )
    assert revoked.status_code == 200
    assert AuditEvent.objects.filter(action="role.revoked", model="fraud").count() == 1
    assert (
        clients["other_owner"]
        .patch("/api/v1/models/fraud/", {"description": "again"}, format="json")
        .status_code
        == 403
    )


def test_a_group_grant_counts_for_its_members(clients, make_user, api_for):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="fraud-team")
    member = make_user("mia", "owner")
    member.groups.add(team)
    response = clients["owner"].post(
        "/api/v1/models/fraud/grants/",
        {"permission": "change", "group": "fraud-team"},
        format="json",
    )
    assert response.status_code == 200
    assert (
        api_for(member)
        .patch("/api/v1/models/fraud/", {"description": "team edit"}, format="json")
        .status_code
        == 200
    )


def test_both_token_schemes_are_accepted_and_a_bad_token_is_401(make_user, api_for):
    user = make_user("carla", "compliance")
    assert api_for(user, scheme="Bearer").get("/api/v1/models/").status_code == 200
    assert api_for(user, scheme="Token").get("/api/v1/models/").status_code == 200
    bad = api_for(None)
    bad.credentials(HTTP_AUTHORIZATION="Bearer mg_not-a-real-token")
    response = bad.get("/api/v1/models/")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response["Content-Type"] == "application/problem+json"
