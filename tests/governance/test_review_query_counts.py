"""The review screens cost a fixed number of queries: the queue whatever the number of
requests, the decision page whatever the number of groups in its fairness result."""

import pytest
from django.db import connection
from django.http import HttpRequest
from django.test.utils import CaptureQueriesContext

from tests.evaluation_sets import binary_set

pytestmark = pytest.mark.django_db

PASSWORD = "correct-horse-battery"
QUEUE = "/admin/governance/promotionrequest/"


def decision(request_id: int) -> str:
    return f"/admin/governance/promotionrequest/{request_id}/change/"


def count(client, path: str) -> tuple[int, str]:
    # One call first: the content-type and permission caches are filled once per
    # process, and the count must not depend on which test ran before.
    assert client.get(path).status_code == 200
    with CaptureQueriesContext(connection) as queries:
        response = client.get(path)
    assert response.status_code == 200
    return len(queries), response.content.decode()


@pytest.fixture
def rita(world, client):
    assert client.login(request=HttpRequest(), username="rita", password=PASSWORD)
    return client


def test_the_queue_costs_the_same_for_1_and_50_requests(world, rita):
    world.request(version=1)
    one, page = count(rita, QUEUE)
    assert page.count('class="field-number"') == 1
    for i in range(49):
        version = world.add_version(f"bulk-{i}", frame=binary_set(1200, seed=100 + i))
        assert world.request(version=version.version)["status"] == "awaiting_approval"
    fifty, page = count(rita, QUEUE)
    assert page.count('class="field-number"') == 50
    assert page.count("mg-badge-check") == 150
    assert "Promotions awaiting my review" in page
    # session, user; my roles (the filter's default); my user and group permissions;
    # the model filter's choices; awaiting_decision_by: my roles, the models that name
    # reviewers, those that name me; the filtered and the full count; the page; the
    # page's current check runs; its counted approvals
    assert (one, fifty) == (14, 14)


def test_the_decision_page_costs_the_same_for_1_and_20_groups(world, rita):
    lone = world.add_version("one-group", frame=binary_set(400, rates={"only": 0.5}))
    many = world.add_version(
        "twenty-groups", frame=binary_set(4000, rates={f"g{i}": 0.5 for i in range(20)})
    )
    first = world.request(version=lone.version)
    second = world.request(version=many.version)
    one, page_one = count(rita, decision(first["id"]))
    twenty, page_twenty = count(rita, decision(second["id"]))
    # The 20 groups' rates scatter enough to fail the fairness check; the page must
    # cost the same whatever the verdict.
    assert (first["status"], second["status"]) == ("awaiting_approval", "checks_failed")
    assert page_one.count('data-metric="selection_rate"') == 1
    assert page_twenty.count('data-metric="selection_rate"') == 20
    # session, user; the request with its model, version, requester and policy; its
    # approvals; its check runs; my user and group permissions; the production version;
    # the right to decide (service account? approver role? named reviewers: user and
    # group grants); the audit timeline
    assert (one, twenty) == (14, 14)
