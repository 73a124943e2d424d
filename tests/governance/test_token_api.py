"""/api/v1/tokens/: a person creates, lists and revokes their own tokens; an admin
also creates them for ci accounts, and for no other account. The rule lives in
token_create, so the service refuses what the API refuses."""

from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.test import APIClient

from audits.context import audit_context
from audits.models import AuditEvent
from governance.errors import TokenForbidden
from governance.models import ApiToken
from governance.services import token_create

pytestmark = pytest.mark.django_db

TOKENS = "/api/v1/tokens/"


def assert_problem(response, status: int, code: str) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["type"] == f"urn:modelgov:problem:{code}"
    assert body["status"] == status
    return body


def tokens_of(username: str) -> int:
    return ApiToken.objects.filter(user__username=username).count()


def created_events() -> list[tuple[str, str]]:
    return list(
        AuditEvent.objects.filter(action="token.created")
        .order_by("seq")
        .values_list("actor", "data__user")
    )


@pytest.fixture
def people(make_user):
    return {
        "ada": make_user("ada", "admin"),
        "rita": make_user("rita", "reviewer"),
        "olivia": make_user("olivia", "owner"),
        "ci-bot": make_user("ci-bot", "ci"),
    }


def test_an_admins_token_cannot_create_a_token_for_a_reviewer(people, api_for):
    ada = api_for(people["ada"])
    before = created_events()

    body = assert_problem(ada.post(TOKENS, {"user": "rita"}, format="json"), 403, "token-forbidden")

    assert "rita is a person" in body["detail"]
    assert tokens_of("rita") == 0
    assert created_events() == before


def test_an_admins_token_cannot_create_a_token_for_a_superuser(people, api_for):
    get_user_model().objects.create_superuser("root", password="x" * 12)

    assert_problem(
        api_for(people["ada"]).post(TOKENS, {"user": "root"}, format="json"),
        403,
        "token-forbidden",
    )
    assert tokens_of("root") == 0


@pytest.mark.parametrize(
    ("who", "whom"),
    [
        ("olivia", "rita"),
        ("rita", "olivia"),
        ("olivia", "ci-2"),
        ("rita", "ci-2"),
        ("ci-bot", "ci-2"),
        ("ci-bot", "olivia"),
    ],
)
def test_nobody_but_an_admin_creates_a_token_for_another_account(
    people, api_for, make_user, who, whom
):
    make_user("ci-2", "ci")
    api = api_for(people[who])
    before = tokens_of(whom)

    body = assert_problem(api.post(TOKENS, {"user": whom}, format="json"), 403, "token-forbidden")

    assert "only for yourself" in body["detail"]
    assert tokens_of(whom) == before


def test_a_token_created_for_oneself_shows_its_secret_once(people, api_for):
    rita = api_for(people["rita"])

    created = rita.post(TOKENS, {"name": "laptop", "expires_in_days": 7}, format="json")

    assert created.status_code == 201, created.content
    body = created.json()
    assert created["Cache-Control"] == "no-store"
    assert body["user"] == "rita" and body["name"] == "laptop"
    assert body["token"].startswith("mg_") and body["token"].startswith(body["prefix"])
    expires = ApiToken.objects.get(pk=body["id"]).expires_at
    assert abs(expires - (timezone.now() + timedelta(days=7))) < timedelta(minutes=1)
    listed = rita.get(TOKENS).json()
    assert listed["count"] == 2  # the one the test signs in with, and the new one
    assert all("token" not in token for token in listed["results"])
    assert body["token"] not in str(listed)
    fresh = APIClient()
    fresh.credentials(HTTP_AUTHORIZATION=f"Bearer {body['token']}")
    assert fresh.get("/api/v1/models/").status_code == 200
    assert created_events()[-1] == ("rita", "rita")


def test_an_admin_creates_a_token_for_a_ci_account(people, api_for):
    created = api_for(people["ada"]).post(TOKENS, {"user": "ci-bot"}, format="json")

    assert created.status_code == 201, created.content
    assert created.json()["user"] == "ci-bot"
    event = AuditEvent.objects.filter(action="token.created").order_by("-seq").first()
    assert (event.actor, event.data["user"]) == ("ada", "ci-bot")
    token = ApiToken.objects.get(pk=created.json()["id"])
    assert event.data["expires_at"].startswith(f"{token.expires_at:%Y-%m-%dT%H:%M:%S}")


def test_without_credentials_nothing_is_listed_or_created():
    anonymous = APIClient()

    assert_problem(anonymous.get(TOKENS), 401, "not-authenticated")
    assert_problem(anonymous.post(TOKENS, {}, format="json"), 401, "not-authenticated")
    assert not ApiToken.objects.exists()


def test_a_token_made_with_a_token_does_not_outlive_it(people, api_for):
    rita = api_for(people["rita"])
    ApiToken.objects.filter(user=people["rita"]).update(
        expires_at=timezone.now() + timedelta(days=2)
    )

    created = rita.post(TOKENS, {"expires_in_days": 30}, format="json")

    assert created.status_code == 201
    parent = ApiToken.objects.get(user=people["rita"], name="test")
    assert ApiToken.objects.get(pk=created.json()["id"]).expires_at == parent.expires_at


@pytest.mark.parametrize("days", [0, -1, 366])
def test_a_lifetime_out_of_bounds_is_refused(people, api_for, days):
    body = assert_problem(
        api_for(people["rita"]).post(TOKENS, {"expires_in_days": days}, format="json"),
        400,
        "validation-error",
    )
    assert "expires_in_days" in body["errors"]
    assert tokens_of("rita") == 1


def test_a_person_lists_and_revokes_only_their_own_tokens(people, api_for):
    rita = api_for(people["rita"])
    with audit_context():
        theirs, _ = token_create(actor=None, user=people["olivia"], name="olivia's")

    listed = rita.get(TOKENS).json()
    mine = listed["results"][0]["id"]

    assert [token["user"] for token in listed["results"]] == ["rita"]
    assert_problem(rita.get(f"{TOKENS}?user=olivia"), 403, "permission-denied")
    assert_problem(rita.post(f"{TOKENS}{theirs.pk}/revoke/"), 404, "not-found")
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    revoked = rita.post(f"{TOKENS}{mine}/revoke/")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"]
    assert_problem(rita.get(TOKENS), 401, "authentication-failed")


def test_an_admin_lists_and_revokes_a_ci_accounts_tokens(people, api_for):
    ada = api_for(people["ada"])
    with audit_context():
        ci_token, _ = token_create(actor=None, user=people["ci-bot"], name="pipeline")

    listed = ada.get(f"{TOKENS}?user=ci-bot").json()
    revoked = ada.post(f"{TOKENS}{ci_token.pk}/revoke/")

    assert [token["name"] for token in listed["results"]] == ["pipeline"]
    assert revoked.status_code == 200
    assert AuditEvent.objects.filter(action="token.revoked", actor="ada").count() == 1


# The service, which the admin, the API and the commands all call.


def test_the_service_refuses_an_admin_a_token_for_any_person(people, make_user):
    mixed = make_user("mixed", "owner", "ci")
    root = get_user_model().objects.create_superuser("root", password="x" * 12)
    for target in (people["rita"], people["olivia"], mixed, root):
        with audit_context(), pytest.raises(TokenForbidden):
            token_create(actor=people["ada"], user=target)
    assert not ApiToken.objects.exists()


def test_the_operator_on_the_server_creates_tokens_for_anyone(people):
    with audit_context():
        token_create(actor=None, user=people["rita"])
    assert tokens_of("rita") == 1


def test_the_schema_documents_the_token_endpoints(client):
    paths = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()[
        "paths"
    ]

    assert set(paths["/api/v1/tokens/"]) == {"get", "post"}
    assert "get" in paths["/api/v1/tokens/{token_id}/"]
    assert "post" in paths["/api/v1/tokens/{token_id}/revoke/"]
