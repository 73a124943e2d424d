from datetime import timedelta

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.utils import timezone

from audits.models import AuditEvent
from governance.models import Approval, Policy, PromotionRequest
from governance.services import policy_update
from registry.models import ModelVersion
from tests.evaluation_sets import binary_set, to_csv
from tests.factories import make_evaluation, make_model, make_version, version_payload

pytestmark = pytest.mark.django_db


def stages() -> dict[int, str]:
    return dict(ModelVersion.objects.values_list("version", "stage"))


def test_the_full_flow_through_the_api_with_rollback(world):
    ci = "ci"
    registered = world.call(
        ci, "post", "/api/v1/models/fraud/versions/", version_payload("v3", metrics={})
    )
    assert registered.json()["version"] == 3
    upload = world.api[ci].post(
        "/api/v1/models/fraud/versions/3/evaluation/",
        {
            # the same quality as v1, so neither promotion regresses against the other
            "file": SimpleUploadedFile("eval.csv", to_csv(binary_set(seed=1))),
            "score_column": "score",
            "sensitive_features": "group,sex",
        },
        format="multipart",
    )
    assert upload.status_code == 201, upload.content

    first = world.request(version=1, justification="Initial release")
    assert world.act("rita", first["id"], "approve", "ok").json()["status"] == "promoted"
    assert stages() == {1: "production", 2: "none", 3: "none"}

    second = world.request(version=3)
    promoted = world.act("raj", second["id"], "approve", "better recall").json()
    assert (promoted["status"], promoted["from_stage"]) == ("promoted", "none")
    assert stages() == {1: "archived", 2: "none", 3: "production"}
    archived = AuditEvent.objects.filter(
        action="model_version.stage_changed", data__version=1
    ).last()
    assert (archived.data["from"], archived.data["to"]) == ("production", "archived")

    # Rollback: an archived version back to production, through the same gates.
    response = world.call(
        ci,
        "post",
        "/api/v1/promotions/",
        {"model": "fraud", "version": 1, "target_stage": "production"},
    )
    assert response.status_code == 400
    assert "justification" in response.json()["errors"]
    rollback = world.request(version=1, justification="v3 misroutes EU payments")
    assert (rollback["status"], rollback["from_stage"]) == ("awaiting_approval", "archived")
    assert world.act("rita", rollback["id"], "approve").json()["status"] == "promoted"
    assert stages() == {1: "production", 2: "none", 3: "archived"}
    detail = world.api["carla"].get("/api/v1/models/fraud/").json()["latest_versions"]
    assert (detail["production"]["version"], detail["archived"]["version"]) == (1, 3)


def test_the_request_exposes_the_contract_fields(world):
    request = world.request(justification="Quarterly retrain")
    world.act("rita", request["id"], "approve", "Checked the card")
    body = world.get(request["id"])
    assert {
        "id",
        "model",
        "version",
        "from_stage",
        "target_stage",
        "status",
        "requested_by",
        "justification",
        "required_approvals",
        "approvals",
        "checks",
        "created_at",
        "decided_at",
    } <= set(body)
    assert (body["model"], body["version"], body["requested_by"]) == ("fraud", 1, "ci-bot")
    approval = body["approvals"][0]
    assert {"reviewer", "decision", "comment", "at"} <= set(approval)
    assert (approval["reviewer"], approval["decision"], approval["comment"]) == (
        "rita",
        "approved",
        "Checked the card",
    )
    for check in body["checks"]:
        assert {"name", "status", "summary", "results", "started_at", "finished_at"} <= set(check)
    assert [(c["name"], c["status"]) for c in body["checks"]] == [
        ("fairness", "passed"),
        ("integrity", "unverified"),  # an s3:// artifact: the server cannot read it
        ("validation", "passed"),
    ]
    assert body["decided_at"] is not None


def test_a_policy_edit_during_a_request_does_not_change_its_decision(world):
    request = world.request()
    assert request["required_approvals"] == 1
    policy = Policy.objects.get(name="production")
    policy_update(actor=world.users["ada"], policy=policy, required_approvals=3)
    edit = AuditEvent.objects.get(action="policy.updated")
    assert (
        edit.data["before"]["required_approvals"],
        edit.data["after"]["required_approvals"],
    ) == (1, 3)

    assert world.act("rita", request["id"], "approve").json()["status"] == "promoted"
    promoted = AuditEvent.objects.get(action="promotion.promoted")
    assert promoted.data["policy_digest"] == request["policy_digest"]
    assert promoted.data["policy_id"] == policy.pk

    later = world.request(version=2)
    assert later["required_approvals"] == 3
    assert later["policy_digest"] != request["policy_digest"]


def test_an_expired_approval_no_longer_counts(world):
    world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "critical"})
    request = world.request()
    assert (request["required_approvals"], request["policy"]["name"]) == (2, "production-critical")
    world.act("rita", request["id"], "approve")
    Approval.objects.filter(reviewer__username="rita").update(
        expires_at=timezone.now() - timedelta(seconds=1)
    )

    after_raj = world.act("raj", request["id"], "approve").json()
    assert after_raj["status"] == "awaiting_approval"
    assert [a["valid"] for a in after_raj["approvals"]] == [False, True]
    # rita's approval lapsed, so she may give a fresh one, which completes the request
    assert world.act("rita", request["id"], "approve").json()["status"] == "promoted"


def test_new_versions_and_edits_leave_an_open_request_alone(world):
    request = world.request()
    world.call("ci", "post", "/api/v1/models/fraud/versions/", version_payload("v3"))
    edit = world.call(
        "olivia", "patch", "/api/v1/models/fraud/versions/1/", {"description": "retrained"}
    )
    assert edit.status_code == 200
    assert world.get(request["id"])["status"] == "awaiting_approval"
    assert world.act("rita", request["id"], "approve").json()["status"] == "promoted"
    assert stages()[1] == "production"


def test_archiving_a_version_cancels_its_open_requests(world):
    pending = world.request(version=2)
    archive = world.request(who="olivia", version=2, target="archived")
    assert archive["status"] == "promoted"
    assert stages()[2] == "archived"
    cancelled = PromotionRequest.objects.get(pk=pending["id"])
    assert cancelled.status == "cancelled"
    assert "moved from none to archived" in cancelled.status_reason
    event = AuditEvent.objects.get(action="promotion.cancelled")
    assert (event.object_id, event.data["caused_by"]) == (str(pending["id"]), archive["id"])


def test_one_open_request_per_version_and_target(world):
    world.request()
    response = world.call(
        "ci",
        "post",
        "/api/v1/promotions/",
        {"model": "fraud", "version": 1, "target_stage": "production"},
    )
    assert response.status_code == 409
    assert response.json()["type"] == "urn:modelgov:problem:open-request-exists"
    assert (
        world.call(
            "ci",
            "post",
            "/api/v1/promotions/",
            {"model": "fraud", "version": 1, "target_stage": "staging"},
        ).status_code
        == 201
    )


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"model": "fraud", "version": 1, "target_stage": "prod"}, 400, "target_stage"),
        ({"model": "fraud", "version": "one", "target_stage": "staging"}, 400, "version"),
        ({"model": "fraud", "version": 0, "target_stage": "staging"}, 400, "version"),
        ({"version": 1, "target_stage": "staging"}, 400, "model"),
        ({"model": "nope", "version": 1, "target_stage": "staging"}, 404, None),
        ({"model": "fraud", "version": 9, "target_stage": "staging"}, 404, None),
        (
            {"model": "fraud", "version": 1, "target_stage": "archived", "justification": 5},
            400,
            "justification",
        ),
    ],
)
def test_bad_promotion_requests(world, body, status, field):
    start = world.mark()
    response = world.call("ci", "post", "/api/v1/promotions/", body)
    assert response.status_code == status
    assert response["Content-Type"] == "application/problem+json"
    if field:
        assert field in response.json()["errors"]
    assert AuditEvent.objects.filter(seq__gt=start).count() == 0
    assert PromotionRequest.objects.count() == 0


def test_a_version_already_in_the_stage_is_409(world):
    world.request(version=1, target="staging")
    response = world.call(
        "ci",
        "post",
        "/api/v1/promotions/",
        {"model": "fraud", "version": 1, "target_stage": "staging"},
    )
    assert response.status_code == 409


def test_filters_and_awaiting_me(world):
    churn = make_model(world.users["olivia"], "churn")
    make_evaluation(world.users["ci"], make_version(world.users["ci"], churn, seed="churn-1"))
    a = world.request(version=1)
    b = world.request(who="olivia", model="churn", version=1)
    world.act("rita", a["id"], "approve")

    def ids(who, query):
        return [
            r["id"] for r in world.api[who].get(f"/api/v1/promotions/?{query}").json()["results"]
        ]

    assert ids("carla", "status=promoted") == [a["id"]]
    assert ids("carla", "status=awaiting_approval&model=churn") == [b["id"]]
    assert ids("carla", "model=fraud") == [a["id"]]
    assert ids("carla", "model=other") == []
    assert ids("raj", "awaiting_me=true") == [b["id"]]
    assert ids("olivia", "awaiting_me=true") == []  # the requester, and not a reviewer
    assert ids("ci", "awaiting_me=true") == []
    assert ids("carla", "awaiting_me=true") == []
    world.act("raj", b["id"], "approve")
    assert ids("raj", "awaiting_me=true") == []
    assert world.api["carla"].get("/api/v1/promotions/?status=bogus").status_code == 400
