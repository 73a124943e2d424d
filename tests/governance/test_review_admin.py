"""The review admin through Django's test client: what each role sees, and that every
decision goes through the governance services with their rules and audit events."""

import re
from types import SimpleNamespace

import pytest
from django.contrib.auth.models import User
from django.http import HttpRequest

from audits.context import audit_context
from audits.models import AuditEvent
from governance.models import Approval, CheckRun, PromotionRequest, Status
from governance.review import metrics_against_production
from governance.services import role_grant
from registry.models import ModelVersion
from registry.services import model_permission_grant, registered_model_update
from tests.evaluation_sets import binary_set

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
QUEUE = "/admin/governance/promotionrequest/"


def decision(request_id: int) -> str:
    return f"/admin/governance/promotionrequest/{request_id}/change/"


def decide(request_id: int) -> str:
    return f"/admin/governance/promotionrequest/{request_id}/decide/"


def login(client, username: str):
    assert client.login(request=HttpRequest(), username=username, password=PASSWORD)
    return client


def post_decision(client, request_id: int, **data) -> list[tuple[str, str]]:
    """POST to the decide view; return the messages the page it redirects to shows."""
    response = client.post(decide(request_id), data)
    assert response.status_code == 302, response.status_code
    shown = client.get(response["Location"], follow=True)
    assert shown.status_code == 200
    return [(m.level_tag, m.message) for m in shown.context["messages"]]


def queue_ids(response) -> list[int]:
    return [r.pk for r in response.context["cl"].result_list]


def make_high_risk(world):
    with audit_context():
        registered_model_update(actor=world.users["olivia"], model=world.model, risk_tier="high")


# The queue


def test_the_index_leads_a_reviewer_to_the_requests_awaiting_them(world, client):
    body = world.request()
    page = login(client, "rita").get("/admin/").content.decode()
    assert "Promotions awaiting my review (1)" in page
    assert f'href="{QUEUE}?review=mine"' in page
    response = client.get(f"{QUEUE}?review=mine")
    assert queue_ids(response) == [body["id"]]
    assert response.context["title"] == "Promotions awaiting my review"


def test_the_index_shows_others_the_open_requests_and_no_review_queue(world, client):
    world.request()
    page = login(client, "carla").get("/admin/").content.decode()
    assert "awaiting my review" not in page
    assert "Promotion requests (1 open)" in page


def test_a_reviewers_queue_leaves_out_what_they_approved_and_what_is_not_ready(world, client):
    make_high_risk(world)
    ready = world.request(version=1)
    checking = world.request(version=2, run_tasks=False)
    assert (ready["status"], checking["status"]) == ("awaiting_approval", "checking")
    assert ready["required_approvals"] == 2

    login(client, "rita")
    response = client.get(QUEUE)  # reviewers land on their own queue
    assert queue_ids(response) == [ready["id"]]
    assert "1 promotion request" in response.content.decode()
    post_decision(client, ready["id"], action="approve", comment="Figures hold.")
    assert queue_ids(client.get(QUEUE)) == []
    assert set(queue_ids(client.get(f"{QUEUE}?review=all"))) == {ready["id"], checking["id"]}

    raj = login(client, "raj").get(QUEUE)
    assert queue_ids(raj) == [ready["id"]]
    row = raj.content.decode()
    assert '<td class="field-approvals">1 of 2</td>' in row
    assert row.count("mg-badge-check") == 3


def test_the_queue_filters_by_status_model_stage_and_risk_tier_and_searches_by_name(world, client):
    from tests.factories import make_model, make_version

    other = make_model(world.users["olivia"], "churn", risk_tier="low")
    version = make_version(world.users["ci"], other, seed="churn-1")
    world.request(version=1)
    world.request(version=2, run_tasks=False)
    archived = world.request(version=1, target="archived", model="fraud", run_tasks=False)
    churn = world.request(version=version.version, model="churn", target="staging")
    assert churn["status"] == "checks_failed"  # no evaluation data: the gates end in error
    login(client, "carla")

    def ids(query: str) -> set[int]:
        return set(queue_ids(client.get(f"{QUEUE}?review=all&{query}")))

    everything = ids("")
    assert len(everything) == 4
    assert ids("status__exact=checks_failed") == {churn["id"]}
    assert ids(f"model__id__exact={other.pk}") == {churn["id"]}
    assert ids("target_stage__exact=archived") == {archived["id"]}
    assert ids("model__risk_tier__exact=low") == {churn["id"]}
    assert ids("q=chu") == {churn["id"]}
    assert ids("q=fraud") == everything - {churn["id"]}


def test_owners_and_compliance_see_every_request_by_default(world, client):
    world.request(version=1)
    world.request(version=2, run_tasks=False)
    for username in ("olivia", "carla", "ada"):
        response = login(client, username).get(QUEUE)
        assert len(queue_ids(response)) == 2, username
        assert response.context["title"] == "Promotion requests"


# The decision page


def test_the_decision_page_shows_the_evidence(world, client):
    with audit_context():
        registered_model_update(
            actor=world.users["olivia"],
            model=world.model,
            card={"intended_use": "Flag <b>card</b> fraud", "contacts": ["fraud@example.com"]},
        )
    version = world.add_version(
        "documented",
        lineage={"dataset_uri": "s3://data/d.parquet", "code_commit": "3f2a9c1", "run_id": "r7"},
    )
    body = world.request(version=version.version)
    page = login(client, "rita").get(decision(body["id"])).content.decode()
    assert "Flag &lt;b&gt;card&lt;/b&gt; fraud" in page
    for text in ("s3://data/d.parquet", "3f2a9c1", "r7", version.artifact_sha256):
        assert text in page
    for check in ("validation", "fairness"):
        assert f'data-check="{check}" data-status="passed"' in page
    # An s3:// artifact: the integrity check could not read it, and says so.
    assert 'data-check="integrity" data-status="unverified"' in page
    assert page.count('<svg xmlns="http://www.w3.org/2000/svg" class="fairness-chart"') == 1
    assert page.count('data-metric="selection_rate"') == 2  # groups a and b
    assert "0 of 1" in page and "1</strong> more approval needed" in page
    assert body["policy_digest"] in page
    assert "max_demographic_parity_difference" in page
    assert 'id="approve"' in page and 'id="reject"' in page
    assert "cdn" not in page.lower() and '<script src="http' not in page


def test_group_names_are_escaped_in_the_chart_and_the_tables(world, client):
    rates = {"<script>alert(1)</script>": 0.5, 'a"b': 0.5}
    version = world.add_version("hostile", frame=binary_set(2000, seed=5, rates=rates))
    body = world.request(version=version.version)
    page = login(client, "rita").get(decision(body["id"])).content.decode()
    assert "<script>alert(1)</script>" not in page
    assert 'data-group="&lt;script&gt;alert(1)&lt;/script&gt;"' in page
    assert 'data-group="a&quot;b"' in page


def test_a_metric_worse_than_production_is_marked(world, client):
    first = world.request(version=1)
    world.act("raj", first["id"], "approve", "Baseline.")
    # Better than v1 on some figures, a little worse on others (within the policy's
    # allowed regression, so the checks pass).
    worse = world.add_version("mixed", frame=binary_set(2000, seed=8, accuracy=0.83))
    body = world.request(version=worse.version)
    assert body["status"] == "awaiting_approval", [c["summary"] for c in body["checks"]]
    validation = next(c for c in body["checks"] if c["name"] == "validation")["results"]
    assert validation["production"]["version"] == 1
    page = login(client, "rita").get(decision(body["id"])).content.decode()
    assert "production v1" in page
    computed, production = validation["computed"], validation["production"]["metrics"]
    worse_metrics = {name for name in computed if computed[name] < production[name]}
    assert worse_metrics == {"recall", "f1", "roc_auc"}
    marked = set(
        re.findall(r'<tr data-metric="(\w+)">(?:(?!</tr>).)*data-worse="true"', page, re.S)
    )
    assert marked == worse_metrics


def test_worse_follows_each_metrics_direction():
    request = SimpleNamespace(version=SimpleNamespace(metrics={}))
    run = CheckRun(
        name="validation",
        results={
            "computed": {"accuracy": 0.80, "f1": 0.9, "log_loss": 0.4, "custom": 3.0},
            "production": {
                "version": 4,
                "metrics": {"accuracy": 0.85, "f1": 0.9, "log_loss": 0.3, "custom": 2.0},
            },
        },
    )
    compared = metrics_against_production(request, run, None)
    assert compared["production_version"] == 4
    rows = {row.name: row for row in compared["rows"]}
    assert rows["accuracy"].difference == pytest.approx(-0.05)
    assert (rows["accuracy"].worse, rows["f1"].worse) == (True, False)
    assert rows["log_loss"].worse is True  # lower is better
    assert rows["custom"].worse is None  # direction unknown: not judged


def test_reported_metrics_are_compared_when_the_check_has_no_production_figures():
    request = SimpleNamespace(version=SimpleNamespace(metrics={"auc": 0.88, "note": "x"}))
    production = SimpleNamespace(version=2, metrics={"auc": 0.9})
    compared = metrics_against_production(request, None, production)
    (row,) = compared["rows"]
    assert (row.name, row.production, row.worse) == ("auc", 0.9, True)
    assert "reported" in compared["source"]


def test_the_timeline_holds_the_request_its_checks_and_the_stage_moves(world, client):
    body = world.request()
    login(client, "rita")
    post_decision(client, body["id"], action="approve", comment="Ship it.")
    page = client.get(decision(body["id"])).content.decode()
    runs = [str(pk) for pk in CheckRun.objects.filter(request_id=body["id"]).values_list("pk")]
    expected = list(
        AuditEvent.objects.filter(
            object_type="promotion_request", object_id=str(body["id"])
        ).values_list("action", flat=True)
    )
    expected += ["check.started", "check.passed"] * 2 + ["check.started", "check.unverified"]
    expected += ["model_version.stage_changed"]
    assert len(runs) == 3
    assert sorted(re.findall(r'<li data-action="([^"]+)"', page)) == sorted(expected)
    assert "“Ship it.”" in page
    assert "v1: none → production" in page


# Deciding


def test_approving_in_the_admin_promotes_through_the_service(world, client):
    body = world.request()
    login(client, "rita")
    start = world.mark()
    response = client.post(decide(body["id"]), {"action": "approve", "comment": "Figures hold."})
    assert response.status_code == 302
    assert response["Location"] == decision(body["id"])
    shown = client.get(response["Location"])
    assert [m.message for m in shown.context["messages"]] == [
        "Approved: fraud v1 is now in production."
    ]
    assert [a for a, *_ in world.events_since(start)] == [
        "promotion.approved",
        "promotion.promoted",
        "model_version.stage_changed",
    ]
    actors = AuditEvent.objects.filter(seq__gt=start).values_list("actor", flat=True)
    assert set(actors) == {"rita"}
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "production"


def test_a_first_of_two_approvals_says_how_many_more_are_needed(world, client):
    make_high_risk(world)
    body = world.request()
    assert post_decision(login(client, "rita"), body["id"], action="approve") == [
        ("success", "Approved: 1 of 2 approvals; 1 more needed before fraud v1 moves.")
    ]
    page = client.get(decision(body["id"])).content.decode()
    assert 'id="approve"' not in page
    assert "You have approved this request; it waits for another reviewer." in page


def test_rejecting_needs_a_comment_and_then_rejects(world, client):
    body = world.request()
    login(client, "rita")
    start = world.mark()
    assert post_decision(client, body["id"], action="reject", comment="   ") == [
        ("error", "A rejection needs a comment.")
    ]
    assert world.mark() == start
    assert PromotionRequest.objects.get(pk=body["id"]).status == Status.AWAITING_APPROVAL

    assert post_decision(client, body["id"], action="reject", comment="F1 too low.") == [
        ("success", "Rejected: fraud v1 stays in stage none.")
    ]
    assert [a for a, *_ in world.events_since(start)] == ["promotion.rejected"]
    approval = Approval.objects.get(request_id=body["id"])
    assert (approval.decision, approval.comment) == ("rejected", "F1 too low.")


@pytest.mark.parametrize(
    ("who", "refusal"),
    [
        ("otto", "The requester of a promotion never decides it."),
        ("carla", "Only the reviewer role decides this promotion."),
        (
            "olivia",
            "You own or may change fraud; "
            "its owners and those granted change never decide its promotions.",
        ),
    ],
)
def test_those_who_may_not_decide_see_no_buttons_and_their_posts_change_nothing(
    world, client, who, refusal
):
    with audit_context():
        model_permission_grant(
            actor=world.users["olivia"], model=world.model, permission="change", user="otto"
        )
    body = world.request(who="otto")
    login(client, who)
    page = client.get(decision(body["id"])).content.decode()
    assert 'id="approve"' not in page and 'id="reject"' not in page
    assert refusal in page
    start = world.mark()
    for action in ("approve", "reject"):
        assert post_decision(client, body["id"], action=action, comment="forged") == [
            ("error", refusal)
        ]
    assert world.mark() == start
    assert not Approval.objects.filter(request_id=body["id"]).exists()


def test_a_model_that_names_its_reviewers_is_decided_only_by_them(world, client):
    with audit_context():
        model_permission_grant(
            actor=world.users["ada"], model=world.model, permission="review", user="raj"
        )
    body = world.request()
    assert 'id="approve"' not in login(client, "rita").get(decision(body["id"])).content.decode()
    assert queue_ids(client.get(QUEUE)) == []
    assert 'id="approve"' in login(client, "raj").get(decision(body["id"])).content.decode()


def test_a_decided_request_has_no_buttons_and_a_late_post_is_refused(world, client):
    body = world.request()
    world.act("raj", body["id"], "approve", "Fine.")
    login(client, "rita")
    page = client.get(decision(body["id"])).content.decode()
    assert 'id="approve"' not in page
    assert "This request is promoted; there is nothing to decide." in page
    assert post_decision(client, body["id"], action="reject", comment="Too late") == [
        ("error", f"Request #{body['id']} is promoted; it cannot be rejected.")
    ]


def test_an_unknown_action_or_a_get_decides_nothing(world, client):
    body = world.request()
    login(client, "rita")
    start = world.mark()
    assert post_decision(client, body["id"], action="promote") == [
        ("error", "Choose Approve or Reject.")
    ]
    assert post_decision(client, body["id"], action="approve", comment="x" * 10_001) == [
        ("error", "A comment holds at most 10000 characters.")
    ]
    assert client.get(decide(body["id"])).status_code == 302
    assert client.post(decision(body["id"]), {"action": "approve"}).status_code == 405
    assert world.mark() == start


def test_a_missing_request_is_a_message_not_an_error_page(world, client):
    login(client, "rita")
    shown = post_decision(client, 999, action="approve")
    assert ("error", "No promotion request #999.") in shown
    assert client.get(decision(999)).status_code == 302


def test_a_forged_post_without_the_csrf_token_is_refused(world):
    from django.test import Client

    body = world.request()
    client = Client(enforce_csrf_checks=True)
    login(client, "rita")
    response = client.post(decide(body["id"]), {"action": "approve"})
    assert response.status_code == 403
    assert not Approval.objects.exists()


# Roles in the admin


def test_ci_accounts_never_get_into_the_admin_even_with_a_staff_role(world, client):
    with audit_context():
        role_grant(actor=None, user=world.users["ci"], role="owner")
    assert not User.objects.get(username="ci-bot").is_staff
    client.login(request=HttpRequest(), username="ci-bot", password=PASSWORD)
    response = client.get("/admin/")
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_reviewers_do_not_see_the_audit_admin_and_compliance_does(world, client):
    login(client, "rita")
    assert client.get("/admin/audits/auditevent/").status_code == 403
    assert "Audit events" not in client.get("/admin/").content.decode()
    login(client, "carla")
    assert client.get("/admin/audits/auditevent/").status_code == 200


# The model page


def test_the_model_page_shows_stage_history_and_open_requests(world, client):
    first = world.request(version=1)
    world.act("raj", first["id"], "approve", "Baseline.")
    second = world.request(version=2)
    page = (
        login(client, "rita")
        .get(f"/admin/registry/registeredmodel/{world.model.pk}/change/")
        .content.decode()
    )
    history = page.split('id="stage-history"')[1].split("</ol>")[0]
    assert "<strong>v1</strong>" in history
    assert "production" in history and f"promotion request #{first['id']}" in history
    section = page.split("Open promotion requests")[1]
    assert f'href="{decision(second["id"])}">#{second["id"]}</a>' in section
    assert f">#{first['id']}</a>" not in section  # promoted: no longer open


# Audit events


def test_audit_events_filter_by_action_actor_model_and_date(world, client):
    body = world.request()
    world.act("rita", body["id"], "approve", "Fine.")
    login(client, "carla")

    def found(query: str) -> set[str]:
        response = client.get(f"/admin/audits/auditevent/?{query}")
        assert response.status_code == 200
        return {e.action for e in response.context["cl"].result_list}

    assert found("action=promotion.approved") == {"promotion.approved"}
    assert found("actor=rita") == {
        "promotion.approved",
        "promotion.promoted",
        "model_version.stage_changed",
    }
    assert "role.granted" not in found("model=fraud")
    assert "promotion.requested" in found("model=fraud")
    today = AuditEvent.objects.latest("seq").occurred_at.date()
    assert "promotion.approved" in found(
        f"occurred_at__gte={today.isoformat()}+00:00:00%2B00:00"
        "&occurred_at__lt=2999-01-01+00:00:00%2B00:00"
    )
    assert found("occurred_at__lt=2000-01-01+00:00:00%2B00:00") == set()
    page = client.get("/admin/audits/auditevent/").content.decode()
    for title in ("By action", "By actor", "By model"):
        assert title in page
