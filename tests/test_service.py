"""Health, errors as problem+json, and the API documentation."""

import pytest
from django.urls import path

from config.urls import urlpatterns as real_urlpatterns

pytestmark = pytest.mark.django_db


def boom(request):
    raise RuntimeError("unexpected")


urlpatterns = [*real_urlpatterns, path("boom", boom)]
handler500 = "config.problems.handler500"


def test_healthz(client):
    response = client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_readyz_reports_the_database(client, settings):
    settings.BROKER_URL = ""
    body = client.get("/readyz").json()
    assert body["checks"]["database"] == "ok"


def test_readyz_is_503_when_the_broker_is_unreachable(client, settings):
    settings.BROKER_URL = "redis://127.0.0.1:1/0"
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["broker"].startswith("unreachable")


@pytest.mark.redis
def test_readyz_reaches_the_real_broker(client):
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    assert response.json()["checks"] == {"database": "ok", "broker": "ok"}


def test_unknown_paths_are_problem_json(client):
    response = client.get("/api/v1/no-such-thing/")
    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404


@pytest.mark.urls("tests.test_service")
def test_unexpected_errors_are_problem_json(client):
    client.raise_request_exception = False
    response = client.get("/boom")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["detail"] == "An unexpected error occurred."


def test_method_not_allowed_is_problem_json(make_user, api_for):
    response = api_for(make_user("olivia", "owner")).delete("/api/v1/models/")
    assert response.status_code == 405
    assert response["Content-Type"] == "application/problem+json"


def test_the_schema_and_docs_are_served_without_a_cdn(client):
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"] if schema["Content-Type"].endswith("json") else None
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn." not in html and "unpkg" not in html and "jsdelivr" not in html
    if paths is not None:
        assert "/api/v1/models/{name}/versions/" in paths


def test_the_schema_lists_the_registry_paths(client):
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    paths = response.json()["paths"]
    for expected in (
        "/api/v1/models/",
        "/api/v1/models/{name}/",
        "/api/v1/models/{name}/versions/",
        "/api/v1/models/{name}/versions/{version}/",
        "/api/v1/audit/verify/",
    ):
        assert expected in paths
