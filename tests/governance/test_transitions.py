"""Each allowed move: exactly one transition and exactly its audit events.
Each forbidden move: 409, nothing written."""

import ast
from pathlib import Path

import pytest
from django.db import transaction

from audits.models import AuditEvent
from governance.errors import TransitionNotAllowed
from governance.models import PromotionRequest, Status
from governance.transitions import ALLOWED, transition
from registry.models import ModelVersion

pytestmark = pytest.mark.django_db

CHECKS_PASS = [("check.started", None, None), ("check.passed", None, None)] * 3
# The world's artifacts are s3:// URIs, which the integrity check cannot read.
CHECKS_DONE = [
    *CHECKS_PASS[:2],  # fairness
    ("check.started", None, None),
    ("check.unverified", None, None),  # integrity
    *CHECKS_PASS[:2],  # validation
]


def test_checking_to_awaiting_approval(world):
    start = world.mark()
    request = world.request()
    assert request["status"] == "awaiting_approval"
    assert world.events_since(start) == [
        ("promotion.requested", None, None),
        *CHECKS_DONE,
        ("promotion.checks_passed", "checking", "awaiting_approval"),
    ]


def test_checking_to_promoted_when_no_approval_is_needed(world):
    start = world.mark()
    request = world.request(target="staging")
    assert request["status"] == "promoted"
    assert world.events_since(start) == [
        ("promotion.requested", None, None),
        *CHECKS_DONE,
        ("promotion.checks_passed", "checking", "promoted"),
        ("promotion.promoted", "checking", "promoted"),
        ("model_version.stage_changed", "none", "staging"),
    ]
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "staging"


def test_checking_to_checks_failed(world, settings, tmp_path):
    settings.ARTIFACT_ROOTS = [str(tmp_path)]
    world.add_version("outside", artifact_uri="file:///etc/passwd")
    start = world.mark()
    request = world.request(version=3)
    assert request["status"] == "checks_failed"
    assert {c["name"]: c["status"] for c in request["checks"]} == {
        "fairness": "passed",
        "integrity": "failed",
        "validation": "passed",
    }
    assert (
        world.events_since(start)
        == [
            ("promotion.requested", None, None),
            *CHECKS_PASS[:2],  # fairness
            ("check.started", None, None),
            ("check.failed", None, None),  # integrity
            *CHECKS_PASS[:2],  # validation
            ("promotion.checks_failed", "checking", "checks_failed"),
        ]
    )


def test_checking_to_cancelled(world):
    request = world.request(who="olivia", run_tasks=False)
    assert request["status"] == "checking"
    start = world.mark()
    response = world.act("olivia", request["id"], "cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert world.events_since(start) == [("promotion.cancelled", "checking", "cancelled")]


@pytest.fixture
def failed(world, settings, tmp_path):
    settings.ARTIFACT_ROOTS = [str(tmp_path)]
    world.add_version("bad", artifact_uri=f"file://{tmp_path}/missing.bin")
    request = world.request(version=3)
    assert request["status"] == "checks_failed"
    assert {c["name"]: c["status"] for c in request["checks"]}["integrity"] == "error"
    return request


def test_checks_failed_to_checking(world, failed):
    start = world.mark()
    response = world.call(
        "ci", "post", f"/api/v1/promotions/{failed['id']}/rerun-checks/", run_tasks=False
    )
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "checking"
    assert [c["status"] for c in body["checks"]] == ["queued"] * 3
    assert world.events_since(start) == [("promotion.checks_rerun", "checks_failed", "checking")]


def test_checks_failed_to_cancelled(world, failed):
    start = world.mark()
    assert world.act("ci", failed["id"], "cancel").json()["status"] == "cancelled"
    assert world.events_since(start) == [("promotion.cancelled", "checks_failed", "cancelled")]


def test_awaiting_approval_to_promoted(world):
    request = world.request()
    start = world.mark()
    response = world.act("rita", request["id"], "approve", "Looks good")
    assert response.status_code == 200, response.content
    assert response.json()["status"] == "promoted"
    assert world.events_since(start) == [
        ("promotion.approved", None, None),
        ("promotion.promoted", "awaiting_approval", "promoted"),
        ("model_version.stage_changed", "none", "production"),
    ]


def test_awaiting_approval_to_rejected(world):
    request = world.request()
    start = world.mark()
    response = world.act("rita", request["id"], "reject", "AUC regressed on the holdout")
    assert response.json()["status"] == "rejected"
    assert response.json()["approvals"][0]["decision"] == "rejected"
    assert world.events_since(start) == [("promotion.rejected", "awaiting_approval", "rejected")]
    assert ModelVersion.objects.get(pk=world.versions[0].pk).stage == "none"


def test_awaiting_approval_to_cancelled(world):
    request = world.request()
    start = world.mark()
    assert world.act("olivia", request["id"], "cancel").json()["status"] == "cancelled"
    assert world.events_since(start) == [("promotion.cancelled", "awaiting_approval", "cancelled")]


def _in_status(world, status: str, request):
    """A request brought to `status` through the services."""
    if status == "checking":
        return world.request(run_tasks=False)["id"]
    if status == "checks_failed":
        return request.getfixturevalue("failed")["id"]
    made = world.request()
    if status == "rejected":
        world.act("rita", made["id"], "reject", "no")
    elif status == "cancelled":
        world.act("ci", made["id"], "cancel")
    elif status == "promoted":
        world.act("rita", made["id"], "approve")
    return made["id"]


ACTIONS = {
    "approve": Status.PROMOTED,
    "reject": Status.REJECTED,
    "cancel": Status.CANCELLED,
    "rerun-checks": Status.CHECKING,
}
FORBIDDEN = [
    (status, action)
    for status in Status.values
    for action, target in ACTIONS.items()
    if target not in ALLOWED[status]
    # approve from checking would be refused as "not awaiting approval" as well
]


@pytest.mark.parametrize(("status", "action"), FORBIDDEN, ids=[f"{s}-{a}" for s, a in FORBIDDEN])
def test_a_forbidden_move_is_409_and_writes_nothing(world, request, status, action):
    request_id = _in_status(world, status, request)
    assert PromotionRequest.objects.get(pk=request_id).status == status
    who = {"approve": "raj", "reject": "raj", "cancel": "ci", "rerun-checks": "ci"}[action]
    start = world.mark()
    response = world.act(who, request_id, action, "a comment")
    assert response.status_code == 409, response.content
    assert response["Content-Type"] == "application/problem+json"
    assert PromotionRequest.objects.get(pk=request_id).status == status
    assert AuditEvent.objects.filter(seq__gt=start).count() == 0


def test_transition_refuses_every_move_outside_the_table(world):
    request_id = world.request(run_tasks=False)["id"]
    request = PromotionRequest.objects.get(pk=request_id)
    for target in Status.values:
        if target in ALLOWED[Status.CHECKING]:
            continue
        with pytest.raises(TransitionNotAllowed), transaction.atomic():
            transition(request, target, actor=None, action="promotion.test")


def test_the_status_cannot_be_saved_outside_transition(world):
    request = PromotionRequest.objects.get(pk=world.request(run_tasks=False)["id"])
    request.status = Status.PROMOTED
    with pytest.raises(RuntimeError, match="transition"):
        request.save()
    assert PromotionRequest.objects.get(pk=request.pk).status == Status.CHECKING


def test_no_code_but_transition_writes_the_status():
    """A scan of the source: `<request>.status = ...` and `.update(status=...)` on
    promotion requests appear only in governance/transitions.py."""
    root = Path(__file__).resolve().parents[2]
    offenders = []
    paths = [
        p
        for app in ("config", "audits", "registry", "governance")
        for p in root.glob(f"{app}/**/*.py")
    ]
    assert paths
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if "/migrations/" in rel:
            continue
        if rel == "governance/transitions.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            targets = node.targets if isinstance(node, ast.Assign) else []
            for target in targets:
                if isinstance(target, ast.Attribute) and target.attr == "status":
                    owner = ast.unparse(target.value)
                    if owner != "run":  # CheckRun's own status, in check_run_finish
                        offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in {"update", "bulk_update", "create", "update_or_create"}
                and any(k.arg == "status" for k in node.keywords)
                and "CheckRun" not in ast.unparse(node.func)
            ):
                offenders.append(f"{rel}:{node.lineno} {ast.unparse(node)[:80]}")
    assert offenders == []
