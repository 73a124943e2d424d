"""Separation of duties, enforced by the server whatever the caller."""

import pytest

from audits.models import AuditEvent
from governance.models import PromotionRequest

pytestmark = pytest.mark.django_db


def assert_refused(response, status: int, request_id: int, expected_status: str, since: int):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert PromotionRequest.objects.get(pk=request_id).status == expected_status
    assert AuditEvent.objects.filter(seq__gt=since).count() == 0


def test_the_requester_never_approves_even_as_a_reviewer(world):
    # otto is an owner and a reviewer, and olivia lets him change her model
    world.call(
        "olivia", "post", "/api/v1/models/fraud/grants/", {"permission": "change", "user": "otto"}
    )
    request = world.request(who="otto")
    start = world.mark()
    assert_refused(
        world.act("otto", request["id"], "approve"), 403, request["id"], "awaiting_approval", start
    )
    assert_refused(
        world.act("otto", request["id"], "reject", "mine"),
        403,
        request["id"],
        "awaiting_approval",
        start,
    )
    body = world.act("otto", request["id"], "approve").json()
    assert body["type"] == "urn:modelgov:problem:self-approval-forbidden"


def test_service_accounts_never_approve(world, make_user, api_for):
    request = world.request(who="olivia")
    # even a ci account that was also given the reviewer role
    both = make_user("ci-reviewer", "ci", "reviewer")
    world.api["both"] = api_for(both)
    start = world.mark()
    assert_refused(
        world.act("ci", request["id"], "approve"), 403, request["id"], "awaiting_approval", start
    )
    assert_refused(
        world.act("both", request["id"], "approve"), 403, request["id"], "awaiting_approval", start
    )


def test_compliance_changes_nothing(world):
    request = world.request()
    start = world.mark()
    for action in ("approve", "cancel", "rerun-checks"):
        assert_refused(
            world.act("carla", request["id"], action),
            403,
            request["id"],
            "awaiting_approval",
            start,
        )
    assert_refused(
        world.act("carla", request["id"], "reject", "no"),
        403,
        request["id"],
        "awaiting_approval",
        start,
    )
    response = world.call(
        "carla",
        "post",
        "/api/v1/promotions/",
        {"model": "fraud", "version": 2, "target_stage": "staging"},
    )
    assert response.status_code == 403
    assert AuditEvent.objects.filter(seq__gt=start).count() == 0


def test_admins_do_not_bypass_approval(world):
    request = world.request()
    start = world.mark()
    assert_refused(
        world.act("ada", request["id"], "approve"), 403, request["id"], "awaiting_approval", start
    )


def test_a_reviewer_outside_the_models_named_reviewers_is_refused(world):
    granted = world.call(
        "ada", "post", "/api/v1/models/fraud/grants/", {"permission": "review", "user": "raj"}
    )
    assert granted.status_code == 200
    request = world.request()
    start = world.mark()
    assert_refused(
        world.act("rita", request["id"], "approve"), 403, request["id"], "awaiting_approval", start
    )
    assert world.act("raj", request["id"], "approve").json()["status"] == "promoted"


def test_a_named_reviewer_group_counts(world, make_user, api_for):
    from django.contrib.auth.models import Group

    board = Group.objects.create(name="risk-board")
    world.users["raj"].groups.add(board)
    world.call(
        "ada",
        "post",
        "/api/v1/models/fraud/grants/",
        {"permission": "review", "group": "risk-board"},
    )
    request = world.request()
    assert world.act("rita", request["id"], "approve").status_code == 403
    assert world.act("raj", request["id"], "approve").json()["status"] == "promoted"


def test_a_second_approval_by_the_same_reviewer_is_409(world):
    world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "high"})  # two approvals
    request = world.request()
    assert request["required_approvals"] == 2
    first = world.act("rita", request["id"], "approve", "ok")
    assert first.json()["status"] == "awaiting_approval"
    start = world.mark()
    assert_refused(
        world.act("rita", request["id"], "approve", "again"),
        409,
        request["id"],
        "awaiting_approval",
        start,
    )
    assert world.act("raj", request["id"], "approve", "ok").json()["status"] == "promoted"


def test_reject_without_a_comment_is_400(world):
    request = world.request()
    start = world.mark()
    response = world.act("rita", request["id"], "reject")
    assert_refused(response, 400, request["id"], "awaiting_approval", start)
    assert "comment" in response.json()["errors"]
    assert_refused(
        world.act("rita", request["id"], "reject", "   "),
        400,
        request["id"],
        "awaiting_approval",
        start,
    )


def test_only_the_requester_an_owner_or_an_admin_cancels(world):
    request = world.request(who="ci")
    start = world.mark()
    assert_refused(
        world.act("rita", request["id"], "cancel"), 403, request["id"], "awaiting_approval", start
    )
    assert world.act("olivia", request["id"], "cancel").json()["status"] == "cancelled"
    other = world.request(who="ci", version=2)
    assert world.act("ada", other["id"], "cancel").json()["status"] == "cancelled"


def test_who_may_request_a_promotion(world, make_user, api_for):
    body = {"model": "fraud", "version": 1, "target_stage": "staging"}
    world.api["oscar"] = api_for(make_user("oscar", "owner"))
    assert world.call("oscar", "post", "/api/v1/promotions/", body).status_code == 403
    assert world.call("rita", "post", "/api/v1/promotions/", body).status_code == 403
    assert world.call("olivia", "post", "/api/v1/promotions/", body).status_code == 201
    assert (
        world.api["ci"]
        .post("/api/v1/promotions/", body | {"version": 2}, format="json")
        .status_code
        == 201
    )
