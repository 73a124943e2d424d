"""Bad input answers 4xx problem+json, never 5xx, and changes nothing stored."""

import json

import pytest

from audits.models import AuditEvent
from registry.models import ModelVersion, RegisteredModel
from tests.factories import make_model, make_version, sha, version_payload

pytestmark = pytest.mark.django_db


@pytest.fixture
def owner_api(make_user, api_for):
    owner = make_user("olivia", "owner")
    ci = make_user("ci-bot", "ci")
    model = make_model(owner, "fraud", description="original", card={"intended_use": "x"})
    make_version(ci, model, seed="v1", description="first")
    return api_for(owner)


def snapshot():
    return (
        list(RegisteredModel.objects.order_by("pk").values()),
        list(ModelVersion.objects.order_by("pk").values()),
        AuditEvent.objects.count(),
    )


def assert_problem(response, status: int, field: str | None = None):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    body = response.json()
    assert {"type", "title", "status", "detail"} <= set(body)
    assert body["status"] == status
    if field is not None:
        assert field in body["errors"], body
    return body


BAD_MODELS = [
    ({"name": "has space"}, "name"),
    ({"name": "-leading-dash"}, "name"),
    ({"name": "x" * 129}, "name"),
    ({"name": ""}, "name"),
    ({}, "name"),
    ({"name": 42}, "name"),
    ({"name": "ok", "risk_tier": "extreme"}, "risk_tier"),
    (
        {"name": "ok", "card": {"intended_use": "x", "favourite_colour": "blue"}},
        "card.favourite_colour",
    ),
    ({"name": "ok", "card": {"contacts": "not-a-list"}}, "card.contacts"),
    ({"name": "ok", "card": "a string"}, "card"),
    ({"name": "ok", "card": ["a", "list"]}, "card"),
    ({"name": "ok", "tags": {"team": 5}}, "tags.team"),
    ({"name": "ok", "tags": ["x"]}, "tags"),
    ({"name": "ok", "tags": {"bad key!": "v"}}, "tags.bad key!"),
    ({"name": "ok", "description": 12.5j if False else ["list"]}, "description"),
    ({"name": "ok", "description": "x" * 10_001}, "description"),
    ({"name": "ok", "description": "nul\x00byte"}, "description"),
]


@pytest.mark.parametrize(("body", "field"), BAD_MODELS)
def test_bad_models_are_refused_with_field_errors(owner_api, body, field):
    before = snapshot()
    assert_problem(owner_api.post("/api/v1/models/", body, format="json"), 400, field)
    assert snapshot() == before


SHA63 = "a" * 63

BAD_VERSIONS = [
    ({"artifact_sha256": SHA63}, "artifact_sha256"),
    ({"artifact_sha256": "A" * 64}, "artifact_sha256"),
    ({"artifact_sha256": "g" * 64}, "artifact_sha256"),
    ({"artifact_sha256": None}, "artifact_sha256"),
    ({"artifact_uri": ""}, "artifact_uri"),
    ({"artifact_size": -1}, "artifact_size"),
    ({"artifact_size": "big"}, "artifact_size"),
    ({"metrics": {"auc": "high"}}, "metrics.auc"),
    ({"metrics": {"auc": True}}, "metrics.auc"),
    ({"metrics": [0.9]}, "metrics"),
    ({"params": "depth=6"}, "params"),
    ({"lineage": {"dataset_sha256": SHA63}}, "lineage.dataset_sha256"),
    ({"lineage": {"unknown": "x"}}, "lineage.unknown"),
    ({"lineage": "s3://data"}, "lineage.non_field_errors"),
    ({"card": {"limitations": 3}}, "card.limitations"),
    ({"card": {"not_a_section": "x"}}, "card.not_a_section"),
    ({"stage": "production"}, "stage"),
    ({"version": 7}, "version"),
]


@pytest.mark.parametrize(("change", "field"), BAD_VERSIONS)
def test_bad_versions_are_refused_with_field_errors(owner_api, change, field):
    before = snapshot()
    body = version_payload("new") | change
    response = owner_api.post("/api/v1/models/fraud/versions/", body, format="json")
    assert_problem(response, 400, field)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"stage": "production"}, "stage"),
        ({"artifact_sha256": sha("other")}, "artifact_sha256"),
        ({"metrics": {"auc": 1}}, "metrics"),
        ({"card": {"oops": "x"}}, "card.oops"),
        ({"description": "x" * 10_001}, "description"),
    ],
)
def test_bad_version_edits_are_refused(owner_api, body, field):
    before = snapshot()
    response = owner_api.patch("/api/v1/models/fraud/versions/1/", body, format="json")
    assert_problem(response, 400, field)
    assert snapshot() == before


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "renamed"}, "name"),
        ({"risk_tier": "none"}, "risk_tier"),
        ({"card": {"x": "y"}}, "card.x"),
    ],
)
def test_bad_model_edits_are_refused(owner_api, body, field):
    before = snapshot()
    assert_problem(owner_api.patch("/api/v1/models/fraud/", body, format="json"), 400, field)
    assert snapshot() == before


@pytest.mark.parametrize(
    "raw",
    [
        b'{"name": "fraud2",',
        b"not json at all",
        b'{"name": NaN}',
        b"\xff\xfe\x00binary",
        b"[]",
        b"null",
    ],
)
def test_malformed_json_is_a_400(owner_api, raw):
    before = snapshot()
    response = owner_api.generic("POST", "/api/v1/models/", raw, content_type="application/json")
    assert_problem(response, 400)
    assert snapshot() == before


def test_a_10_mb_description_is_refused_without_touching_anything(owner_api):
    before = snapshot()
    body = json.dumps({"name": "huge", "description": "x" * 10_000_000})
    response = owner_api.generic("POST", "/api/v1/models/", body, content_type="application/json")
    assert_problem(response, 413)
    response = owner_api.generic(
        "PATCH",
        "/api/v1/models/fraud/",
        json.dumps({"description": "y" * 10_000_000}),
        content_type="application/json",
    )
    assert_problem(response, 413)
    assert snapshot() == before


def test_an_unsupported_media_type_is_a_415(owner_api):
    response = owner_api.generic("POST", "/api/v1/models/", b"name=x", content_type="text/plain")
    assert_problem(response, 415)


def test_a_duplicate_model_name_is_a_409(owner_api):
    before = snapshot()
    assert_problem(owner_api.post("/api/v1/models/", {"name": "fraud"}, format="json"), 409)
    assert snapshot() == before


def test_bad_query_parameters_are_400(owner_api):
    assert_problem(owner_api.get("/api/v1/models/?risk_tier=extreme"), 400, "risk_tier")
    assert_problem(owner_api.get("/api/v1/models/?tag=no-colon"), 400, "tag")
    assert_problem(owner_api.get("/api/v1/models/fraud/versions/?stage=prod"), 400, "stage")
    assert_problem(owner_api.get("/api/v1/models/?page=999"), 404)
