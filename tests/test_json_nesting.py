"""JSON nested past JSON_MAX_DEPTH is refused as bad input (400 problem+json, or a form
error in the admin), never a 500, wherever a user sends it; nothing is stored and
nothing audited. Up to the limit, JSON is read as before."""

import json

import pytest
from django.contrib.auth.models import User

from audits.models import AuditEvent
from config.json_input import JSON_MAX_DEPTH, nesting_depth
from governance.models import Policy
from registry.models import ModelVersion, RegisteredModel
from tests.factories import make_version, version_payload

pytestmark = pytest.mark.django_db

LEVELS = 10_000
DEEP_ARRAY = "[" * LEVELS + "]" * LEVELS
DEEP_OBJECT = '{"a": ' * LEVELS + "1" + "}" * LEVELS
TOO_DEEP = "urn:modelgov:problem:json-too-deep"


def nested(depth: int) -> dict:
    """An object `depth` levels deep: nested(1) == {"a": 0}."""
    value: object = 0
    for _ in range(depth):
        value = {"a": value}
    return value


@pytest.fixture
def cast(owner, fraud, ci, api_for):
    make_version(ci, fraud, seed="v1")
    return {"owner": api_for(owner), "ci": api_for(ci), "model": fraud}


def snapshot():
    return (
        list(RegisteredModel.objects.order_by("pk").values()),
        list(ModelVersion.objects.order_by("pk").values()),
        list(Policy.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def assert_problem(response, field: str | None = None) -> dict:
    assert response.status_code == 400, response.content[:500]
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert body["status"] == 400
    assert f"{JSON_MAX_DEPTH} levels" in body["detail"], body
    if field is not None:
        assert body["type"] == "urn:modelgov:problem:validation-error"
        assert field in body["errors"], body
    return body


def field_json(name: str, text: str) -> str:
    return '{"name": "deep", "' + name + '": ' + text + "}"


JSON_BODIES = {
    "array": DEEP_ARRAY,
    "object": DEEP_OBJECT,
    "card": field_json("card", DEEP_OBJECT),
    "tags": field_json("tags", DEEP_ARRAY),
    # Past the 64 KiB the registration's direct path reads, so the full cycle parses it.
    "large": field_json("card", "[" * 40_000 + "]" * 40_000),
}

JSON_ENDPOINTS = [
    ("POST", "/api/v1/models/"),
    ("PATCH", "/api/v1/models/fraud/"),
    ("POST", "/api/v1/models/fraud/versions/"),
    ("PATCH", "/api/v1/models/fraud/versions/1/"),
    ("POST", "/api/v1/models/fraud/grants/"),
    ("POST", "/api/v1/promotions/"),
    ("POST", "/api/v1/tokens/"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
@pytest.mark.parametrize("body", JSON_BODIES, ids=str)
def test_json_nested_10_000_deep_is_a_400_everywhere(cast, method, path, body):
    before = snapshot()
    response = cast["owner"].generic(
        method, path, JSON_BODIES[body], content_type="application/json"
    )
    assert assert_problem(response)["type"] == TOO_DEEP
    assert snapshot() == before


def test_a_registration_nested_too_deep_is_refused_on_the_direct_path_too(cast):
    # The CI account registers with a token and a small JSON body: the path that
    # parses the body itself, before DRF's cycle.
    before = snapshot()
    text = json.dumps(version_payload("deep") | {"params": "PARAMS"})
    text = text.replace('"PARAMS"', '{"a": ' + DEEP_ARRAY + "}")
    assert len(text) < 64 * 1024
    response = cast["ci"].generic(
        "POST", "/api/v1/models/fraud/versions/", text, content_type="application/json"
    )
    assert assert_problem(response)["type"] == TOO_DEEP
    assert snapshot() == before


def test_json_at_the_limit_is_accepted_and_one_level_more_is_not(cast):
    at_limit = version_payload("at-limit") | {"params": nested(JSON_MAX_DEPTH - 1)}
    over = version_payload("over") | {"params": nested(JSON_MAX_DEPTH)}
    assert nesting_depth(json.dumps(at_limit)) == JSON_MAX_DEPTH

    before = snapshot()
    response = cast["ci"].post("/api/v1/models/fraud/versions/", over, format="json")
    assert assert_problem(response)["type"] == TOO_DEEP
    assert snapshot() == before

    response = cast["ci"].post("/api/v1/models/fraud/versions/", at_limit, format="json")
    assert response.status_code == 201, response.content
    assert ModelVersion.objects.get(model__name="fraud", version=2).params == at_limit["params"]


def test_brackets_inside_strings_do_not_count(cast):
    text = "[{" * 4_000
    response = cast["owner"].post(
        "/api/v1/models/",
        {"name": "brackets", "description": text, "card": {"intended_use": text}},
        format="json",
    )
    assert response.status_code == 201, response.content
    assert RegisteredModel.objects.get(name="brackets").card == {"intended_use": text}


@pytest.mark.parametrize("encoding", ["multipart", "form"])
def test_a_json_form_field_nested_too_deep_is_a_field_error(cast, encoding):
    before = snapshot()
    data = {"name": "deep", "card": DEEP_OBJECT, "tags": "{}"}
    if encoding == "multipart":
        response = cast["owner"].post("/api/v1/models/", data, format="multipart")
    else:
        from urllib.parse import urlencode

        response = cast["owner"].generic(
            "POST",
            "/api/v1/models/",
            urlencode(data),
            content_type="application/x-www-form-urlencoded",
        )
    assert_problem(response, "card")
    assert snapshot() == before


@pytest.mark.parametrize(
    ("text", "depth"),
    [
        ("1", 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('"[[[[["', 0),
        ('["\\"[[[", []]', 2),
        ('["\\\\", []]', 2),
        ('{"k\\u005b": "]]]"}', 1),
        (DEEP_ARRAY, LEVELS),
        (DEEP_OBJECT, LEVELS),
    ],
)
def test_nesting_depth_skips_strings(text, depth):
    assert nesting_depth(text) == depth


def login(client, username):
    client.force_login(User.objects.get(username=username))
    return client


def test_a_model_card_nested_too_deep_is_a_form_error_in_the_admin(client, cast):
    login(client, "olivia")
    model = cast["model"]
    before = snapshot()
    response = client.post(
        f"/admin/registry/registeredmodel/{model.pk}/change/",
        {
            "description": "edited",
            "risk_tier": "medium",
            "card": '{"intended_use": ' + DEEP_ARRAY + "}",
            "tags": DEEP_OBJECT,
            "versions-TOTAL_FORMS": "1",
            "versions-INITIAL_FORMS": "1",
            "versions-MIN_NUM_FORMS": "0",
            "versions-MAX_NUM_FORMS": "1000",
            "versions-0-id": str(model.versions.get().pk),
            "versions-0-model": str(model.pk),
        },
    )
    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert set(errors) == {"card", "tags"}
    assert f"{JSON_MAX_DEPTH} levels" in errors["card"][0]
    assert snapshot() == before


def test_a_version_card_nested_too_deep_is_a_form_error_in_the_admin(client, cast, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    version = cast["model"].versions.get()
    before = snapshot()
    response = client.post(
        f"/admin/registry/modelversion/{version.pk}/change/",
        {"description": "x", "card": DEEP_OBJECT, "tags": "{}"},
    )
    assert response.status_code == 200
    assert f"{JSON_MAX_DEPTH} levels" in response.context["adminform"].form.errors["card"][0]
    assert snapshot() == before


def test_policy_checks_nested_too_deep_are_a_form_error_in_the_admin(client, cast, make_user):
    make_user("ada", "admin")
    login(client, "ada")
    policy = Policy.objects.get(name="production")
    before = snapshot()
    response = client.post(
        f"/admin/governance/policy/{policy.pk}/change/",
        {
            "name": "production",
            "target_stage": "production",
            "risk_tier": "",
            "checks": '{"integrity": ' + DEEP_OBJECT + "}",
            "required_approvals": "3",
            "approver_role": "reviewer",
            "approval_valid_for": "7 00:00:00",
        },
    )
    assert response.status_code == 200
    assert f"{JSON_MAX_DEPTH} levels" in response.context["adminform"].form.errors["checks"][0]
    assert snapshot() == before
