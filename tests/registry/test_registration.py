import pytest

from audits.models import AuditEvent
from registry.models import ModelVersion
from tests.factories import make_model, sha, version_payload

pytestmark = pytest.mark.django_db


def test_versions_are_numbered_per_model(ci_api, make_user):
    make_model(make_user("oscar", "owner"), "churn")
    numbers = [
        ci_api.post(
            f"/api/v1/models/{name}/versions/", version_payload(f"{name}-{i}"), format="json"
        ).json()["version"]
        for name, i in [("fraud", 1), ("fraud", 2), ("churn", 1), ("fraud", 3), ("churn", 2)]
    ]
    assert numbers == [1, 2, 1, 3, 2]


def test_a_new_version_starts_in_stage_none_with_what_ci_sent(ci_api):
    response = ci_api.post("/api/v1/models/fraud/versions/", version_payload("a"), format="json")
    assert response.status_code == 201
    body = response.json()
    assert body["stage"] == "none"
    assert body["version"] == 1
    assert body["model"] == "fraud"
    assert body["artifact_sha256"] == sha("a")
    assert body["metrics"] == {"auc": 0.91, "f1": 0.8}
    assert body["lineage"]["run_id"] == "r1"
    assert body["created_by"] == "ci-bot"


def test_the_same_artifact_again_answers_200_with_the_existing_version_and_changes_nothing(ci_api):
    first = ci_api.post("/api/v1/models/fraud/versions/", version_payload("a"), format="json")
    events = list(AuditEvent.objects.values_list("seq", flat=True))
    stored = list(ModelVersion.objects.values())
    retry = ci_api.post(
        "/api/v1/models/fraud/versions/",
        version_payload("a", description="a retry that says something else", metrics={"auc": 0.1}),
        format="json",
    )
    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert list(AuditEvent.objects.values_list("seq", flat=True)) == events
    assert list(ModelVersion.objects.values()) == stored


def test_registration_writes_exactly_one_event(ci_api):
    before = AuditEvent.objects.count()
    ci_api.post("/api/v1/models/fraud/versions/", version_payload("a"), format="json")
    events = list(AuditEvent.objects.filter(seq__gt=before))
    assert [(e.action, e.actor, e.actor_kind, e.model, e.object_type) for e in events] == [
        ("model_version.registered", "ci-bot", "service", "fraud", "model_version")
    ]
    assert events[0].data == {
        "version": 1,
        "artifact_uri": "s3://artifacts/a.pkl",
        "artifact_sha256": sha("a"),
        "artifact_size": 2048,
        "framework": "sklearn",
        "metrics": {"auc": 0.91, "f1": 0.8},
        "lineage": {
            "dataset_uri": "s3://data/train.parquet",
            "code_commit": "abc1234",
            "run_id": "r1",
        },
    }
    assert events[0].request_id and events[0].ip == "127.0.0.1"


def test_model_creation_and_edits_write_their_events(make_user, api_for):
    api = api_for(make_user("olivia", "owner"))
    before = AuditEvent.objects.count()
    api.post(
        "/api/v1/models/",
        {"name": "fraud", "risk_tier": "high", "tags": {"team": "risk"}},
        format="json",
    )
    api.patch(
        "/api/v1/models/fraud/",
        {"description": "Flags card fraud", "risk_tier": "high"},
        format="json",
    )
    api.patch(
        "/api/v1/models/fraud/", {"description": "Flags card fraud"}, format="json"
    )  # no change
    api.post("/api/v1/models/fraud/versions/", version_payload("a"), format="json")
    api.patch(
        "/api/v1/models/fraud/versions/1/", {"card": {"limitations": "Cards only"}}, format="json"
    )
    events = list(AuditEvent.objects.filter(seq__gt=before).values_list("action", "data"))
    assert [action for action, _ in events] == [
        "registered_model.created",
        "registered_model.updated",
        "model_version.registered",
        "model_version.updated",
    ]
    assert events[0][1] == {
        "name": "fraud",
        "description": "",
        "risk_tier": "high",
        "card": {},
        "tags": {"team": "risk"},
        "owner": "olivia",
    }
    assert events[1][1] == {"changes": {"description": {"before": "", "after": "Flags card fraud"}}}
    assert events[3][1] == {
        "version": 1,
        "changes": {"card": {"before": {}, "after": {"limitations": "Cards only"}}},
    }


def test_the_model_shows_its_latest_version_per_stage(ci_api):
    for i in range(3):
        ci_api.post("/api/v1/models/fraud/versions/", version_payload(i), format="json")
    latest = ci_api.get("/api/v1/models/fraud/").json()["latest_versions"]
    assert latest["none"]["version"] == 3
    assert latest["production"] is None


def test_models_are_searchable_by_text_tag_and_risk_tier(make_user, api_for):
    owner = make_user("olivia", "owner")
    make_model(owner, "fraud", description="card payments", tags={"team": "risk"}, risk_tier="high")
    make_model(owner, "churn", description="subscribers", tags={"team": "growth"})
    api = api_for(owner)

    def names(query):
        return [m["name"] for m in api.get(f"/api/v1/models/?{query}").json()["results"]]

    assert names("search=payment") == ["fraud"]
    assert names("tag=team:growth") == ["churn"]
    assert names("risk_tier=high") == ["fraud"]
    assert names("") == ["churn", "fraud"]
