"""An artifact the integrity check cannot read: `unverified`, through the API, the audit
log and the review admin; it blocks a request only where the policy requires it."""

import hashlib

import pytest

from audits.models import AuditEvent
from governance.models import CheckRun, Policy
from governance.services.policies import policy_update
from tests.factories import sha

pytestmark = pytest.mark.django_db

QUEUE = "/admin/governance/promotionrequest/"


def statuses(body) -> dict[str, str]:
    return {c["name"]: c["status"] for c in body["checks"]}


def require_verified(world, name: str = "production") -> None:
    policy = Policy.objects.get(name=name)
    checks = policy.checks | {"integrity": {"require_verified": True}}
    policy_update(actor=world.users["ada"], policy=policy, checks=checks)


def test_an_s3_artifact_is_unverified_and_the_request_goes_on_to_approval(world):
    body = world.request()
    assert body["status"] == "awaiting_approval", body["status_reason"]
    assert statuses(body) == {
        "fairness": "passed",
        "integrity": "unverified",
        "validation": "passed",
    }
    integrity = next(c for c in body["checks"] if c["name"] == "integrity")
    assert "does not read s3:// artifacts" in integrity["summary"]
    assert integrity["results"]["verified_content"] is False
    assert body["status_reason"] == "Checks done: integrity unverified, which the policy allows."

    run = CheckRun.objects.get(request_id=body["id"], name="integrity")
    verdicts = list(
        AuditEvent.objects.filter(object_type="check_run", object_id=str(run.pk))
        .order_by("seq")
        .values_list("action", flat=True)
    )
    assert verdicts == ["check.started", "check.unverified"]
    event = AuditEvent.objects.get(action="check.unverified")
    assert (event.data["check"], event.data["summary"]) == ("integrity", integrity["summary"])
    passed = AuditEvent.objects.get(action="promotion.checks_passed")
    assert passed.data["unverified"] == ["integrity"]


def test_require_verified_stops_a_request_with_an_s3_artifact_at_checks_failed(world):
    require_verified(world)
    body = world.request()
    assert body["status"] == "checks_failed"
    assert statuses(body)["integrity"] == "unverified"
    reason = body["status_reason"]
    assert reason.startswith("integrity unverified, and the policy requires it verified")
    assert "checks.integrity.require_verified" in reason
    assert "does not read s3:// artifacts" in reason
    failed = AuditEvent.objects.get(action="promotion.checks_failed")
    assert failed.data["checks"]["integrity"] == "unverified"

    # A rerun reads the same artifact and stops the same way.
    rerun = world.call("ci", "post", f"/api/v1/promotions/{body['id']}/rerun-checks/")
    assert rerun.status_code == 200, rerun.content
    assert world.get(body["id"])["status"] == "checks_failed"


def test_require_verified_lets_a_verified_artifact_through(world, settings, tmp_path):
    settings.ARTIFACT_ROOTS = [str(tmp_path)]
    content = b"verified"  # make_version registers sha("verified") as the digest
    (tmp_path / "model.bin").write_bytes(content)
    assert sha("verified") == hashlib.sha256(content).hexdigest()
    require_verified(world)
    version = world.add_version(
        "verified", artifact_uri=f"file://{tmp_path}/model.bin", artifact_size=len(content)
    )
    body = world.request(version=version.version)
    assert body["status"] == "awaiting_approval", body["status_reason"]
    assert set(statuses(body).values()) == {"passed"}
    assert body["status_reason"] == ""


def test_without_approval_an_unverified_artifact_is_promoted_saying_so(world):
    body = world.request(target="staging")
    assert body["status"] == "promoted"
    assert statuses(body)["integrity"] == "unverified"
    assert body["status_reason"] == (
        "Checks done: integrity unverified, which the policy allows. The policy needs no approval."
    )


def test_the_queue_and_the_decision_page_show_unverified_not_passed(world, client):
    body = world.request()
    client.force_login(world.users["rita"])
    queue = client.get(QUEUE).content.decode()
    assert 'data-state="unverified"' in queue
    assert "integrity: unverified" in queue
    assert "integrity: passed" not in queue
    assert "#a16207" in queue  # its own colour, not the green of passed

    page = client.get(f"{QUEUE}{body['id']}/change/").content.decode()
    assert 'data-check="integrity" data-status="unverified"' in page
    assert page.count("integrity: unverified") == 2  # the summary and the check's heading
    assert "does not read s3:// artifacts" in page
    assert "Checks done: integrity unverified, which the policy allows." in page
    assert 'data-action="check.unverified"' in page
