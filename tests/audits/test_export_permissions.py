"""Who reads and exports the audit trail: compliance and admin everything, owners their
own models' events, everyone else nothing."""

import io
import json

import pytest
from pypdf import PdfReader

from audits.models import AuditEvent
from registry.models import RegisteredModel
from registry.services import model_permission_grant
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db

AUDIT_READS = [
    "/api/v1/audit/events/",
    "/api/v1/audit/export/?format=jsonl",
    "/api/v1/audit/export/?format=csv",
    "/api/v1/audit/export/?format=pdf",
    "/api/v1/audit/checkpoints/",
    "/api/v1/access-review/",
]


@pytest.fixture
def people(make_user, api_for):
    users = {
        "olivia": make_user("olivia", "owner"),
        "omar": make_user("omar", "owner"),
        "ci": make_user("ci-bot", "ci"),
        "rita": make_user("rita", "reviewer"),
        "carla": make_user("carla", "compliance"),
        "ada": make_user("ada", "admin"),
    }
    fraud = make_model(users["olivia"], "fraud")
    churn = make_model(users["omar"], "churn")
    # CI made this one, so it holds the object grant on it: still no audit rights.
    ci_model = make_model(users["ci"], "ci-made")
    for model in (fraud, churn, ci_model):
        make_version(users["ci"], model)
    return users, {name: api_for(user) for name, user in users.items()}


@pytest.mark.parametrize("path", AUDIT_READS)
@pytest.mark.parametrize("who", ["ci", "rita"])
def test_ci_and_reviewers_get_403_on_the_audit_trail_and_its_exports(people, who, path):
    _, api = people
    before = AuditEvent.objects.count()
    response = api[who].get(path)
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"
    assert AuditEvent.objects.count() == before  # a refusal exports nothing


@pytest.mark.parametrize(
    "path", [*AUDIT_READS, "/api/v1/audit/exports/00000000-0000-4000-8000-000000000000/manifest/"]
)
def test_anonymous_callers_get_401(people, api_for, path):
    assert api_for(None).get(path).status_code == 401


def test_the_public_key_needs_no_credentials(people, api_for):
    response = api_for(None).get("/api/v1/audit/public-key/")
    assert response.status_code == 200
    assert response.content.startswith(b"-----BEGIN PUBLIC KEY-----")


def _models_in(response) -> set:
    if response.get("Content-Type", "").startswith("application/jsonl"):
        lines = b"".join(response.streaming_content).decode().splitlines()
        return {json.loads(line)["model"] for line in lines}
    return {event["model"] for event in response.json()["results"]}


@pytest.mark.parametrize(
    "path", ["/api/v1/audit/events/?page_size=1000", "/api/v1/audit/export/?format=jsonl"]
)
def test_owners_see_only_their_own_models_events(people, path):
    _, api = people
    assert _models_in(api["olivia"].get(path)) == {"fraud"}
    assert _models_in(api["omar"].get(path)) == {"churn"}
    # Asking for someone else's model finds nothing rather than their events.
    assert _models_in(api["olivia"].get(path + "&model=churn")) == set()


def test_an_owner_granted_another_model_sees_its_events_too(people):
    users, api = people
    model_permission_grant(
        actor=users["omar"],
        model=RegisteredModel.objects.get(name="churn"),
        permission="change",
        user="olivia",
    )
    events = api["olivia"].get("/api/v1/audit/events/?page_size=1000").json()["results"]
    assert {e["model"] for e in events} == {"fraud", "churn"}


@pytest.mark.parametrize("who", ["carla", "ada"])
def test_compliance_and_admin_see_every_event(people, who):
    _, api = people
    body = api[who].get("/api/v1/audit/events/?page_size=1000").json()
    assert body["count"] == AuditEvent.objects.count()
    assert {e["model"] for e in body["results"]} == {None, "fraud", "churn", "ci-made"}


def test_an_owners_pdf_holds_only_their_models(people):
    _, api = people
    response = api["olivia"].get("/api/v1/audit/export/?format=pdf")
    text = "".join(
        page.extract_text()
        for page in PdfReader(io.BytesIO(b"".join(response.streaming_content))).pages
    )
    assert "Model fraud" in text
    assert "churn" not in text and "ci-made" not in text


def test_a_manifest_is_served_to_its_taker_and_to_compliance_only(people):
    _, api = people
    response = api["olivia"].get("/api/v1/audit/export/?format=csv")
    b"".join(response.streaming_content)
    path = f"/api/v1/audit/exports/{response['X-Audit-Export-Id']}/manifest/"
    assert api["olivia"].get(path).status_code == 200
    assert api["carla"].get(path).status_code == 200
    assert api["omar"].get(path).status_code == 404
    assert api["ci"].get(path).status_code == 404
    manifest = api["olivia"].get(path).json()
    assert manifest["exported_by"] == "olivia"
    assert manifest["scope"] == "models owned by the exporter"


def test_an_owner_of_no_model_reads_and_exports_nothing(people, make_user, api_for):
    api = api_for(make_user("newcomer", "owner"))
    body = api.get("/api/v1/audit/events/").json()
    assert (body["count"], body["results"], body["next"]) == (0, [], None)
    response = api.get("/api/v1/audit/export/?format=jsonl")
    assert b"".join(response.streaming_content) == b""
    pdf = api.get("/api/v1/audit/export/?format=pdf")
    text = PdfReader(io.BytesIO(b"".join(pdf.streaming_content))).pages[0].extract_text()
    assert "No model's events in this selection." in text
    exported = AuditEvent.objects.filter(action="audit.exported").order_by("seq")
    assert [(e.actor, e.data["format"], e.data["rows"]) for e in exported] == [
        ("newcomer", "jsonl", 0),
        ("newcomer", "pdf", 0),
    ]
