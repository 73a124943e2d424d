"""Where the server and its schema disagreed, the server now answers what the schema
says: what it documents as refused is refused (never a 500), and what it allows is
not refused."""

import pytest

from registry.models import RegisteredModel
from tests.factories import sha, version_payload

pytestmark = pytest.mark.django_db

PROBLEM = "application/problem+json"


@pytest.fixture
def owner_api(owner, fraud, api_for):
    return api_for(owner)


@pytest.fixture
def admin_api(make_user, api_for):
    return api_for(make_user("ada", "admin"))


def problem(response, status: int) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == PROBLEM
    return response.json()


@pytest.mark.parametrize(
    "url",
    [
        "/api/v1/models/?search=%00",
        "/api/v1/promotions/?model=a%00",
        "/api/v1/audit/events/?actor=%00",
        "/api/v1/tokens/?user=%00",
    ],
)
def test_it_refuses_a_nul_character_in_a_query_parameter(admin_api, url):
    body = problem(admin_api.get(url), 400)
    assert list(body["errors"]) == [url.split("?")[1].split("=")[0]]


def test_a_path_with_a_nul_character_names_no_object(owner_api):
    problem(owner_api.get("/api/v1/models/fr%00aud/"), 404)


def test_an_export_filtered_on_any_text_keeps_it_out_of_its_headers(admin_api):
    response = admin_api.get("/api/v1/audit/export/", {"model": 'a"\r\nSet-Cookie: x=1'})
    assert response.status_code == 200
    disposition = response["Content-Disposition"]
    assert disposition.startswith('attachment; filename="audit-events-a___Set-Cookie__x_1-')
    assert "Set-Cookie" not in response.headers
    b"".join(response.streaming_content)


def test_a_grant_to_an_unknown_account_is_not_found(owner_api):
    response = owner_api.post(
        "/api/v1/models/fraud/grants/", {"permission": "change", "user": "nobody"}, format="json"
    )
    assert problem(response, 404)["errors"] == {"user": ["No such user."]}


def test_a_token_for_an_unknown_account_is_not_found(admin_api):
    response = admin_api.post("/api/v1/tokens/", {"user": "nobody"}, format="json")
    assert problem(response, 404)["errors"] == {"user": ["No such account."]}


def test_a_metric_past_what_a_float_holds_is_refused(ci_api):
    payload = version_payload("huge", metrics={"auc": 10**400})
    response = ci_api.post("/api/v1/models/fraud/versions/", payload, format="json")
    assert problem(response, 400)["errors"] == {"metrics.auc": ["Expected a finite number."]}


@pytest.mark.parametrize("name", ["fraud2\n", " fraud2", "fraud2 "])
def test_a_name_is_matched_as_sent(owner_api, name):
    response = owner_api.post("/api/v1/models/", {"name": name}, format="json")
    problem(response, 400)
    assert not RegisteredModel.objects.filter(name="fraud2").exists()


def test_a_digest_with_a_trailing_line_break_is_refused(ci_api):
    payload = version_payload("v", artifact_sha256=sha("v") + "\n")
    response = ci_api.post("/api/v1/models/fraud/versions/", payload, format="json")
    assert "artifact_sha256" in problem(response, 400)["errors"]


def test_a_tag_name_with_a_trailing_line_break_is_refused(owner_api):
    response = owner_api.patch("/api/v1/models/fraud/", {"tags": {"team\n": "x"}}, format="json")
    assert "tags.team\n" in problem(response, 400)["errors"]


def test_a_page_size_that_is_no_whole_number_is_refused(owner_api):
    for size in ("ten", "0", "-1"):
        body = problem(owner_api.get("/api/v1/models/", {"page_size": size}), 400)
        assert list(body["errors"]) == ["page_size"]
    assert owner_api.get("/api/v1/models/", {"page_size": 10_000}).status_code == 200


def test_an_empty_query_parameter_is_read_as_left_out(owner_api):
    for name in ("tag", "risk_tier", "page", "page_size", "search"):
        response = owner_api.get("/api/v1/models/", {name: ""})
        assert response.status_code == 200, (name, response.content)
        assert response.json()["count"] == 1


def test_text_is_taken_as_sent_and_white_space_alone_is_blank(ci_api):
    blank = version_payload("blank", artifact_uri=" \u3000\t")
    response = ci_api.post("/api/v1/models/fraud/versions/", blank, format="json")
    assert "artifact_uri" in problem(response, 400)["errors"]
    padded = version_payload("padded", description="  as sent  ")
    response = ci_api.post("/api/v1/models/fraud/versions/", padded, format="json")
    assert response.status_code == 201, response.content
    assert response.json()["description"] == "  as sent  "
