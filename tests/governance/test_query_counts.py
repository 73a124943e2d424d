import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits.context import audit_context
from governance.services import promotion_request_submit
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db


def _count(api, path):
    with CaptureQueriesContext(connection) as queries:
        response = api.get(path)
    assert response.status_code == 200
    return len(queries), response.json()


def test_the_promotion_list_costs_the_same_for_1_and_100(make_user, api_for):
    owner = make_user("olivia", "owner")
    ci = make_user("ci-bot", "ci")
    model = make_model(owner, "fraud")
    with audit_context():
        for i in range(100):
            version = make_version(ci, model, seed=i)
            promotion_request_submit(
                actor=ci, model=model, version=version.version, target_stage="production"
            )
    api = api_for(make_user("carla", "compliance"))
    one, _ = _count(api, "/api/v1/promotions/?page_size=1")
    hundred, body = _count(api, "/api/v1/promotions/?page_size=100")
    assert len(body["results"]) == 100
    assert all(len(r["checks"]) == 3 for r in body["results"])
    # token with its user, roles and permissions; count, page, approvals, check runs;
    # the first call also records the token's first use
    assert (one, hundred) == (5 + 1, 5)
