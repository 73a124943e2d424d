"""Where the server and its schema disagreed, the server now answers what the schema
says: what it documents as refused is refused (never a 500), and what it allows is
not refused."""

import pytest

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
