from datetime import timedelta

import pytest
from django.http import HttpRequest

from audits.models import AuditEvent
from governance.errors import InvalidInput
from governance.models import Policy
from governance.services import policy_create, policy_update

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"


def test_setup_installs_the_default_policies(roles):
    policies = {
        p.name: (p.target_stage, p.risk_tier, p.required_approvals, set(p.checks))
        for p in Policy.objects.all()
    }
    assert policies == {
        "staging": ("staging", "", 0, {"integrity", "validation", "fairness"}),
        "production": ("production", "", 1, {"integrity", "validation", "fairness"}),
        "production-high": ("production", "high", 2, {"integrity", "validation", "fairness"}),
        "production-critical": (
            "production",
            "critical",
            2,
            {"integrity", "validation", "fairness"},
        ),
        "archive": ("archived", "", 0, set()),
    }
    assert AuditEvent.objects.filter(action="policy.created").count() == 5


def test_a_policy_naming_an_unknown_check_is_refused(roles):
    with pytest.raises(InvalidInput) as refused:
        policy_create(
            actor=None,
            name="x",
            target_stage="staging",
            risk_tier="low",
            required_approvals=0,
            checks={"vibes": {}},
        )
    assert "checks.vibes" in refused.value.errors
    policy = Policy.objects.get(name="staging")
    checks = policy.checks
    with pytest.raises(InvalidInput):
        policy_update(actor=None, policy=policy, checks={"integrity": {"bogus": 1}})
    assert Policy.objects.get(name="staging").checks == checks
    assert not AuditEvent.objects.filter(action="policy.updated").exists()


def test_an_edit_is_audited_with_before_and_after(roles, make_user):
    admin = make_user("ada", "admin")
    policy = Policy.objects.get(name="production")
    policy_update(
        actor=admin, policy=policy, required_approvals=2, approval_valid_for=timedelta(days=1)
    )
    event = AuditEvent.objects.get(action="policy.updated")
    assert event.actor == "ada"
    assert event.data["before"]["required_approvals"] == 1
    assert event.data["after"]["required_approvals"] == 2
    assert event.data["after"]["approval_valid_for_seconds"] == 86400
    # an edit that changes nothing writes nothing
    policy_update(actor=admin, policy=policy, required_approvals=2)
    assert AuditEvent.objects.filter(action="policy.updated").count() == 1


def test_the_admin_edits_policies_through_the_service(client, make_user):
    make_user("ada", "admin")
    assert client.login(request=HttpRequest(), username="ada", password=PASSWORD)
    policy = Policy.objects.get(name="production")
    form = {
        "name": "production",
        "target_stage": "production",
        "risk_tier": "",
        "checks": '{"integrity": {}, "astrology": {}}',
        "required_approvals": "3",
        "approver_role": "reviewer",
        "approval_valid_for": "7 00:00:00",
    }
    page = client.post(f"/admin/governance/policy/{policy.pk}/change/", form)
    assert page.status_code == 200
    assert "Unknown check" in page.content.decode()
    assert not AuditEvent.objects.filter(action="policy.updated").exists()

    response = client.post(
        f"/admin/governance/policy/{policy.pk}/change/", form | {"checks": '{"integrity": {}}'}
    )
    assert response.status_code == 302
    event = AuditEvent.objects.get(action="policy.updated")
    assert (event.actor, event.data["after"]["required_approvals"]) == ("ada", 3)


def test_reviewers_cannot_edit_policies_in_the_admin(client, make_user):
    make_user("rita", "reviewer")
    assert client.login(request=HttpRequest(), username="rita", password=PASSWORD)
    policy = Policy.objects.get(name="production")
    response = client.post(
        f"/admin/governance/policy/{policy.pk}/change/", {"required_approvals": "0"}
    )
    assert response.status_code == 403
    assert Policy.objects.get(pk=policy.pk).required_approvals == 1


def test_policies_are_listed_over_the_api(roles, make_user, api_for):
    body = api_for(make_user("ci-bot", "ci")).get("/api/v1/policies/").json()
    assert body["count"] == 5
    assert {p["name"] for p in body["results"]} >= {"production", "staging"}
