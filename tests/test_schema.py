"""The OpenAPI schema is the API's contract: it generates with no warning, names the
Bearer token, and documents every error an operation answers, as problem+json."""

import pytest
from django.core.management import call_command
from drf_spectacular.generators import SchemaGenerator

PROBLEM = "application/problem+json"
PUBLIC = {("GET", "/api/v1/audit/public-key/")}
THROTTLED = {
    ("GET", "/api/v1/audit/export/"),
    ("GET", "/api/v1/audit/verify/"),
    ("POST", "/api/v1/audit/checkpoints/"),
    ("GET", "/api/v1/access-review/"),
}


@pytest.fixture(scope="module")
def schema():
    return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema):
    for path, item in schema["paths"].items():
        for method, operation in item.items():
            yield method.upper(), path, operation


def test_it_generates_and_validates_with_no_warning(tmp_path):
    call_command(
        "spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml")
    )


def test_it_documents_the_bearer_token_and_the_session(schema):
    schemes = schema["components"]["securitySchemes"]
    assert {"type": schemes["bearerAuth"]["type"], "scheme": schemes["bearerAuth"]["scheme"]} == {
        "type": "http",
        "scheme": "bearer",
    }
    assert schemes["cookieAuth"] == {"type": "apiKey", "in": "cookie", "name": "sessionid"}
    for method, path, operation in operations(schema):
        if (method, path) in PUBLIC:
            assert {} in operation["security"], path
        else:
            assert operation["security"] == [{"bearerAuth": []}, {"cookieAuth": []}], path


def test_the_problem_component_is_rfc_9457_with_field_errors(schema):
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["properties"]) == {"type", "title", "status", "detail", "errors"}
    assert set(problem["required"]) == {"type", "title", "status", "detail"}
    assert problem["properties"]["errors"]["additionalProperties"]["type"] == "array"


def test_every_operation_documents_its_errors_as_problems(schema):
    for method, path, operation in operations(schema):
        expected = set()
        if (method, path) not in PUBLIC:
            expected |= {"401", "403"}
        parameters = operation.get("parameters", [])
        if "requestBody" in operation:
            expected |= {"400", "413", "415"}
        if any(p["in"] == "query" for p in parameters):
            expected.add("400")
        if "{" in path or any(p["name"] == "page" for p in parameters):
            expected.add("404")
        if (method, path) in THROTTLED:
            expected.add("429")
        responses = operation["responses"]
        errors = {code for code in responses if int(code) >= 400}
        assert errors == expected | (errors & {"404", "409"}), (method, path, sorted(errors))
        for code in errors:
            assert responses[code]["content"] == {
                PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
            }, (method, path, code)
        if "401" in errors:
            assert responses["401"]["headers"]["WWW-Authenticate"]["required"] is True
        if "429" in errors:
            assert "Retry-After" in responses["429"]["headers"]


def test_conflicts_and_objects_named_in_a_body_are_documented(schema):
    def codes(method, path):
        return set(schema["paths"][path][method]["responses"])

    assert {"404", "409"} <= codes("post", "/api/v1/promotions/")
    assert "409" in codes("post", "/api/v1/models/")
    assert "409" in codes("patch", "/api/v1/models/{name}/")
    for action in ("approve", "reject", "cancel", "rerun-checks"):
        assert "409" in codes("post", f"/api/v1/promotions/{{request_id}}/{action}/")
    assert "404" in codes("post", "/api/v1/tokens/")


def test_lists_document_their_page(schema):
    components = schema["components"]["schemas"]
    for path in (
        "/api/v1/models/",
        "/api/v1/models/{name}/versions/",
        "/api/v1/promotions/",
        "/api/v1/policies/",
        "/api/v1/tokens/",
        "/api/v1/audit/checkpoints/",
        "/api/v1/audit/events/",
    ):
        operation = schema["paths"][path]["get"]
        ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        page = components[ref.rsplit("/", 1)[1]]
        assert set(page["required"]) == {"count", "next", "previous", "results"}, path
        assert page["properties"]["next"]["type"] == ["string", "null"], path
        assert page["properties"]["results"]["type"] == "array", path
    names = {p["name"] for p in schema["paths"]["/api/v1/audit/events/"]["get"]["parameters"]}
    assert {"after", "before", "page_size"} <= names
    assert "page" not in names


def test_a_grant_taken_away_documents_its_body_and_answer(schema):
    delete = schema["paths"]["/api/v1/models/{name}/grants/"]["delete"]
    body = delete["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    grant = schema["components"]["schemas"][body.rsplit("/", 1)[1]]
    assert grant["oneOf"] == [{"required": ["user"]}, {"required": ["group"]}]
    assert "200" in delete["responses"]


def test_fields_refused_by_name_are_forbidden_in_the_body(schema):
    components = schema["components"]["schemas"]
    version = components["ModelVersionInputRequest"]["properties"]
    assert version["stage"]["not"] == {}
    update = components["PatchedRegisteredModelUpdateRequest"]["properties"]
    assert update["name"]["not"] == {}
    assert components["LineageRequest"]["additionalProperties"] is False
