"""Controls an insider cannot get around: each attack made the way an insider would
(the REST API with their token, the admin's forms with a session and its CSRF token)
and shown refused, with what it leaves behind."""

import re

import pytest
from django.http import HttpRequest
from django.test import Client

from audits.context import audit_context
from audits.models import AuditEvent
from governance.errors import InvalidInput
from governance.models import Approval, Policy, PromotionRequest
from governance.services.policies import policy_update
from registry.models import ModelVersion, RegisteredModel
from registry.services import model_permission_grant
from tests.factories import make_evaluation, make_model, make_version, version_payload

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def admin_session(username: str) -> Client:
    """A browser's session: logged in, and every POST must carry the CSRF token."""
    client = Client(enforce_csrf_checks=True)
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD)
    return client


def submit_form(client: Client, path: str, data: dict, *, form_path: str | None = None):
    """GET the page holding the form, then POST it with the token that page carried."""
    page = client.get(form_path or path)
    assert page.status_code == 200, page.status_code
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.content.decode())
    assert token, "the form carries no CSRF token"
    return client.post(path, {**data, "csrfmiddlewaretoken": token.group(1)})


def shown_messages(client: Client, response) -> list[tuple[str, str]]:
    assert response.status_code == 302, response.status_code
    page = client.get(response["Location"])
    return [(m.level_tag, m.message) for m in page.context["messages"]]


def assert_problem(response, status: int, code: str):
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["type"] == f"urn:modelgov:problem:{code}"
    return response.json()


def model_form(model: RegisteredModel, **changes) -> dict:
    return {
        "description": model.description,
        "risk_tier": model.risk_tier,
        "card": "{}",
        "tags": "{}",
        "versions-TOTAL_FORMS": "0",
        "versions-INITIAL_FORMS": "0",
        "versions-MIN_NUM_FORMS": "0",
        "versions-MAX_NUM_FORMS": "1000",
    } | changes


# Risk tier


def test_an_owner_cannot_lower_a_critical_model_to_get_a_lighter_policy(world):
    created = world.call(
        "olivia", "post", "/api/v1/models/", {"name": "vault", "risk_tier": "critical"}
    )
    assert created.status_code == 201
    start = world.mark()

    body = assert_problem(
        world.call("olivia", "patch", "/api/v1/models/vault/", {"risk_tier": "low"}),
        403,
        "permission-denied",
    )
    assert "Only an admin lowers a model's risk tier (critical to low)" in body["detail"]
    assert RegisteredModel.objects.get(name="vault").risk_tier == "critical"
    assert world.mark() == start

    # so a production request freezes the critical tier's policy: two approvals
    model = RegisteredModel.objects.get(name="vault")
    make_evaluation(world.users["ci"], make_version(world.users["ci"], model))
    request = world.request(model="vault")
    assert (request["required_approvals"], request["status"]) == (2, "awaiting_approval")
    frozen = PromotionRequest.objects.get(pk=request["id"]).policy_snapshot
    assert frozen["name"] == "production-critical"


def test_an_owner_cannot_lower_the_tier_in_the_admin_either(world):
    world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "high"})
    client = admin_session("olivia")
    start = world.mark()
    path = f"/admin/registry/registeredmodel/{world.model.pk}/change/"
    response = submit_form(client, path, model_form(world.model, risk_tier="low"))
    assert response.status_code == 403
    assert RegisteredModel.objects.get(pk=world.model.pk).risk_tier == "high"
    assert world.mark() == start


def test_an_owner_may_raise_the_tier(world):
    response = world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "critical"})
    assert response.status_code == 200
    assert response.json()["risk_tier"] == "critical"


def test_an_admin_lowers_a_tier_with_before_and_after_in_the_log(world):
    world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "critical"})
    start = world.mark()
    response = world.call("ada", "patch", "/api/v1/models/fraud/", {"risk_tier": "low"})
    assert response.status_code == 200
    [event] = AuditEvent.objects.filter(seq__gt=start)
    assert (event.action, event.actor) == ("registered_model.updated", "ada")
    assert event.data["changes"] == {"risk_tier": {"before": "critical", "after": "low"}}


def test_no_tier_is_lowered_while_a_promotion_request_is_open(world):
    world.call("olivia", "patch", "/api/v1/models/fraud/", {"risk_tier": "high"})
    request = world.request()
    assert request["status"] == "awaiting_approval"
    start = world.mark()
    body = assert_problem(
        world.call("ada", "patch", "/api/v1/models/fraud/", {"risk_tier": "medium"}),
        409,
        "conflict",
    )
    assert f"promotion request #{request['id']} is open" in body["detail"]
    assert RegisteredModel.objects.get(pk=world.model.pk).risk_tier == "high"
    assert world.mark() == start

    # once it is decided, the admin may
    world.act("olivia", request["id"], "cancel")
    lowered = world.call("ada", "patch", "/api/v1/models/fraud/", {"risk_tier": "medium"})
    assert lowered.status_code == 200


# Who may approve


def test_an_owner_who_also_reviews_never_approves_its_models_promotion(world):
    world.call(
        "olivia", "post", "/api/v1/models/fraud/grants/", {"permission": "change", "user": "otto"}
    )
    request = world.request(who="ci")
    start = world.mark()
    body = assert_problem(world.act("otto", request["id"], "approve"), 403, "conflict-of-interest")
    assert "You own or may change fraud" in body["detail"]
    assert_problem(world.act("otto", request["id"], "reject", "no"), 403, "conflict-of-interest")
    assert world.mark() == start
    assert world.get(request["id"])["status"] == "awaiting_approval"


def test_the_owner_who_created_a_model_never_approves_it_in_the_admin(world, make_user):
    orla = make_user("orla", "owner", "reviewer")
    ledger = make_model(orla, "ledger")
    make_evaluation(world.users["ci"], make_version(world.users["ci"], ledger))
    request = world.request(who="ci", model="ledger")
    client = admin_session("orla")
    change = f"/admin/governance/promotionrequest/{request['id']}/change/"
    assert 'id="approve"' not in client.get(change).content.decode()
    start = world.mark()
    response = submit_form(
        client,
        f"/admin/governance/promotionrequest/{request['id']}/decide/",
        {"action": "approve", "comment": "looks fine to me"},
        form_path=change,
    )
    [(level, message)] = shown_messages(client, response)
    assert level == "error"
    assert message.startswith("You own or may change ledger")
    assert world.mark() == start
    assert not Approval.objects.filter(request_id=request["id"]).exists()


def test_a_group_grant_of_change_counts_as_a_stake(world):
    from django.contrib.auth.models import Group

    team = Group.objects.create(name="fraud-team")
    world.users["raj"].groups.add(team)
    with audit_context():
        model_permission_grant(
            actor=world.users["olivia"], model=world.model, permission="change", group="fraud-team"
        )
    request = world.request()
    assert_problem(world.act("raj", request["id"], "approve"), 403, "conflict-of-interest")
    assert world.act("rita", request["id"], "approve").json()["status"] == "promoted"


def test_the_registrant_of_a_version_never_approves_it(world, make_user, api_for):
    # The admin role registers versions on any model; with the reviewer role too, it
    # would otherwise approve what it registered.
    ari = make_user("ari", "admin", "reviewer")
    world.api["ari"] = api_for(ari)
    registered = world.call(
        "ari", "post", "/api/v1/models/fraud/versions/", version_payload("by-ari")
    )
    assert registered.status_code == 201
    number = registered.json()["version"]
    make_evaluation(world.users["ci"], ModelVersion.objects.get(model=world.model, version=number))
    request = world.request(who="ci", version=number)
    start = world.mark()
    body = assert_problem(world.act("ari", request["id"], "approve"), 403, "conflict-of-interest")
    assert f"You registered fraud v{number}" in body["detail"]
    assert world.mark() == start

    # The same account decides a version someone else registered.
    other = world.request(who="ci", version=1)
    assert world.act("ari", other["id"], "approve").json()["status"] == "promoted"


def test_the_review_queue_leaves_out_what_one_may_not_decide(world):
    world.call(
        "olivia", "post", "/api/v1/models/fraud/grants/", {"permission": "change", "user": "otto"}
    )
    request = world.request(who="ci")
    mine = world.api["otto"].get("/api/v1/promotions/?awaiting_me=true").json()
    assert mine["count"] == 0
    theirs = world.api["rita"].get("/api/v1/promotions/?awaiting_me=true").json()
    assert [r["id"] for r in theirs["results"]] == [request["id"]]


# Naming reviewers


def test_only_admins_name_or_remove_a_models_reviewers(world):
    start = world.mark()
    grant = {"permission": "review", "user": "rita"}
    body = assert_problem(
        world.call("olivia", "post", "/api/v1/models/fraud/grants/", grant),
        403,
        "permission-denied",
    )
    assert body["detail"] == "Only an admin names or removes a model's reviewers."
    assert world.mark() == start
    assert not world.users["rita"].has_perm("registry.review_registeredmodel", world.model)

    assert world.call("ada", "post", "/api/v1/models/fraud/grants/", grant).status_code == 200
    start = world.mark()
    assert_problem(
        world.call("olivia", "delete", "/api/v1/models/fraud/grants/", grant),
        403,
        "permission-denied",
    )
    assert world.mark() == start
    assert world.call("ada", "delete", "/api/v1/models/fraud/grants/", grant).status_code == 200


# Policies


POLICY_FORM = {
    "risk_tier": "",
    "checks": '{"integrity": {}}',
    "approver_role": "reviewer",
    "approval_valid_for": "7 00:00:00",
}


@pytest.mark.parametrize("name", ["production", "production-high", "production-critical"])
def test_no_one_sets_a_production_policy_to_zero_approvals(world, django_user_model, name):
    django_user_model.objects.create_superuser("root", password=PASSWORD)
    policy = Policy.objects.get(name=name)
    form = POLICY_FORM | {
        "name": name,
        "target_stage": "production",
        "risk_tier": policy.risk_tier,
        "required_approvals": "0",
    }
    for who in ("ada", "root"):
        client = admin_session(who)
        start = world.mark()
        path = f"/admin/governance/policy/{policy.pk}/change/"
        page = submit_form(client, path, form)
        assert page.status_code == 200  # the form again, with its error
        assert "A production policy needs at least one approval, at every tier." in (
            page.content.decode()
        )
        assert world.mark() == start
    with pytest.raises(InvalidInput) as refused, audit_context():
        policy_update(actor=world.users["ada"], policy=policy, required_approvals=0)
    assert refused.value.errors == {
        "required_approvals": ["A production policy needs at least one approval, at every tier."]
    }
    assert Policy.objects.get(pk=policy.pk).required_approvals == policy.required_approvals
    assert world.mark() == start


def test_a_production_policy_found_at_zero_is_frozen_with_one(world):
    # A row edited in the database, or left from before the rule, bends nothing.
    Policy.objects.filter(name="production").update(required_approvals=0)
    request = world.request(who="ci")
    assert (request["status"], request["required_approvals"]) == ("awaiting_approval", 1)
    snapshot = PromotionRequest.objects.get(pk=request["id"]).policy_snapshot
    assert snapshot["required_approvals"] == 1
    assert snapshot["minimum_applied"].startswith("Raised to 1")
    event = AuditEvent.objects.get(action="promotion.requested", object_id=str(request["id"]))
    assert event.data["policy"]["required_approvals"] == 1


@pytest.mark.parametrize("who", ["ci", "olivia"])
def test_taking_the_production_version_out_needs_an_approval(world, who):
    first = world.request(who="ci")
    assert world.act("rita", first["id"], "approve").json()["status"] == "promoted"
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "production"

    pulled = world.request(who=who, version=1, target="archived")
    assert (pulled["status"], pulled["required_approvals"]) == ("awaiting_approval", 1)
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "production"
    # its requester cannot approve it, a reviewer can
    assert world.act(who, pulled["id"], "approve").status_code == 403
    assert world.act("raj", pulled["id"], "approve").json()["status"] == "promoted"
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "archived"


def test_archiving_a_version_outside_production_needs_no_approval(world):
    archived = world.request(who="ci", version=2, target="archived")
    assert (archived["status"], archived["required_approvals"]) == ("promoted", 0)


def test_giving_up_ones_own_grant_does_not_make_one_eligible(world, make_user, api_for):
    orla = make_user("orla", "owner", "reviewer")
    world.api["orla"] = api_for(orla)
    ledger = make_model(orla, "ledger")
    make_evaluation(world.users["ci"], make_version(world.users["ci"], ledger))
    request = world.request(who="ci", model="ledger")
    start = world.mark()
    grant = {"permission": "change", "user": "orla"}
    body = assert_problem(
        world.call("orla", "delete", "/api/v1/models/ledger/grants/", grant),
        403,
        "permission-denied",
    )
    assert body["detail"] == "You cannot remove your own permissions on a model."
    assert world.mark() == start

    # Even with the grant taken away by an admin, the model's creator stays its owner.
    assert world.call("ada", "delete", "/api/v1/models/ledger/grants/", grant).status_code == 200
    body = assert_problem(world.act("orla", request["id"], "approve"), 403, "conflict-of-interest")
    assert body["detail"].startswith("You own or may change ledger")
