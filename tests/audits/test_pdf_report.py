"""The PDF report of a model, read back with pypdf: its card, every version with its
stage history, the promotion with its checks and every approval, and the chain head."""

import hashlib
import io

import pytest
from pypdf import PdfReader

from audits.models import AuditEvent, AuditExport
from tests.factories import make_evaluation, make_model, make_version

pytestmark = pytest.mark.django_db


def pdf_text(body: bytes) -> str:
    return "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)


@pytest.fixture
def promoted(report_cast, django_capture_on_commit_callbacks):
    """fraud (high risk: two approvals) with two versions; v2 requested for production
    by CI, its checks run, approved by rita and raj, promoted. Plus another
    model the report must leave out."""
    users, api = report_cast
    model = make_model(
        users["olivia"],
        "fraud",
        risk_tier="high",
        card={
            "intended_use": "Flag card payments for manual review.",
            "limitations": "Untested on business accounts.",
        },
    )
    make_version(users["ci"], model, seed="v1", metrics={"auc": 0.9012345678901234})
    v2 = make_version(users["ci"], model, seed="v2", metrics={"auc": 0.934567890123456})
    make_evaluation(users["ci"], v2)
    make_model(users["olivia"], "churn")
    with django_capture_on_commit_callbacks(execute=True):
        response = api["ci"].post(
            "/api/v1/promotions/",
            {
                "model": "fraud",
                "version": 2,
                "target_stage": "production",
                "justification": "Better recall at the same precision.",
            },
            format="json",
        )
    assert response.status_code == 201, response.content
    request_id = response.json()["id"]
    for reviewer, comment in (("rita", "Metrics checked."), ("raj", "Card reviewed.")):
        with django_capture_on_commit_callbacks(execute=True):
            decided = api[reviewer].post(
                f"/api/v1/promotions/{request_id}/approve/", {"comment": comment}, format="json"
            )
        assert decided.status_code == 200, decided.content
    assert decided.json()["status"] == "promoted"
    return api, request_id


def test_the_report_holds_the_model_its_versions_approvals_and_the_chain_head(promoted):
    api, request_id = promoted
    response = api["carla"].get("/api/v1/audit/export/?format=pdf&model=fraud")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    body = b"".join(response.streaming_content)
    text = pdf_text(body)

    assert "Audit report" in text
    assert "Scope: model fraud" in text
    assert "Model fraud" in text
    assert "Flag card payments for manual review." in text
    assert "Untested on business accounts." in text
    assert "v1" in text and "v2" in text
    assert "0.934567890123456" in text  # figures at full precision
    assert f"Request #{request_id}: fraud v2 to production (promoted)" in text
    assert "Better recall at the same precision." in text
    assert "integrity" in text and "passed" in text
    assert "unverified" in text  # integrity, on an s3:// artifact: not shown as passed
    for reviewer, comment in (("rita", "Metrics checked."), ("raj", "Card reviewed.")):
        assert reviewer in text and comment in text
    assert "none to production (request" in text  # the stage history
    assert response["X-Audit-Head-Hash"] in text
    assert f"seq {response['X-Audit-Head-Seq']}" in text
    assert "churn" not in text


def test_the_first_page_carries_the_head_and_the_jsonl_digest(promoted):
    api, _ = promoted
    response = api["carla"].get("/api/v1/audit/export/?format=pdf&model=fraud")
    body = b"".join(response.streaming_content)
    first_page = PdfReader(io.BytesIO(body)).pages[0].extract_text()

    export = AuditExport.objects.get(pk=response["X-Audit-Export-Id"])
    manifest = export.manifest
    assert response["X-Audit-Head-Hash"] in first_page
    assert manifest["events_sha256"] in first_page
    assert manifest["sha256"] == hashlib.sha256(body).hexdigest()
    # The printed digest is that of the JSON Lines export of the same events.
    jsonl = api["carla"].get(
        f"/api/v1/audit/export/?format=jsonl&model=fraud&until={manifest['finished_at']}"
    )
    lines = b"".join(jsonl.streaming_content).splitlines(keepends=True)
    upto = [
        line for line in lines if int(line.split(b",")[0].split(b":")[1]) <= manifest["last_seq"]
    ]
    assert hashlib.sha256(b"".join(upto)).hexdigest() == manifest["events_sha256"]
    assert AuditEvent.objects.get(seq=export.event_seq).data["format"] == "pdf"
