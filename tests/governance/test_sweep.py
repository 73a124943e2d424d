"""Lost and stuck checks: the sweep that beat runs, and idempotent task delivery."""

from datetime import timedelta

import pytest
from django.db import OperationalError
from django.utils import timezone

from audits.models import AuditEvent
from governance.checks import validation
from governance.models import CheckRun
from governance.services import check_run_execute, check_runs_sweep

pytestmark = pytest.mark.django_db


def actions_since(seq):
    return list(AuditEvent.objects.filter(seq__gt=seq).values_list("action", flat=True))


@pytest.fixture
def queued(world):
    """A production request whose three checks are queued and were never delivered."""
    request = world.request(run_tasks=False)
    assert [c["status"] for c in request["checks"]] == ["queued"] * 3
    return request


def test_a_task_delivered_twice_writes_one_result_and_one_set_of_events(world, queued):
    run = CheckRun.objects.get(request_id=queued["id"], name="validation")
    start = world.mark()
    first = check_run_execute(check_run_id=run.pk)
    second = check_run_execute(check_run_id=run.pk)
    assert (first.status, second) == ("passed", None)
    assert actions_since(start) == ["check.started", "check.passed"]
    run.refresh_from_db()
    assert run.attempts == 1


def test_the_sweep_dispatches_checks_whose_message_was_lost(
    world, queued, django_capture_on_commit_callbacks, settings
):
    later = timezone.now() + timedelta(seconds=settings.CHECK_REDISPATCH_AFTER + 1)
    assert check_runs_sweep(now=timezone.now())["redispatched"] == 0
    counts = check_runs_sweep(now=later)
    assert counts["redispatched"] == 3
    assert world.get(queued["id"])["status"] == "awaiting_approval"


def test_a_run_stuck_running_is_queued_again_and_completes(
    world, queued, django_capture_on_commit_callbacks, settings
):
    run = CheckRun.objects.get(request_id=queued["id"], name="fairness")
    CheckRun.objects.filter(pk=run.pk).update(
        status="running",
        attempts=1,
        started_at=timezone.now() - timedelta(seconds=settings.CHECK_TIME_LIMIT + 60),
    )
    start = world.mark()
    with django_capture_on_commit_callbacks(execute=True):
        counts = check_runs_sweep()
    assert counts["requeued"] == 1
    assert actions_since(start)[:3] == ["check.requeued", "check.started", "check.passed"]
    run.refresh_from_db()
    assert (run.status, run.attempts) == ("passed", 2)


def test_a_run_that_keeps_dying_ends_in_error(world, queued, settings):
    for run in CheckRun.objects.filter(request_id=queued["id"]):
        check_run_execute(check_run_id=run.pk) if run.name != "fairness" else None
    run = CheckRun.objects.get(request_id=queued["id"], name="fairness")
    CheckRun.objects.filter(pk=run.pk).update(
        status="running",
        attempts=settings.CHECK_MAX_ATTEMPTS,
        started_at=timezone.now() - timedelta(seconds=settings.CHECK_TIME_LIMIT + 60),
    )
    assert check_runs_sweep()["abandoned"] == 1
    request = world.get(queued["id"])
    assert request["status"] == "checks_failed"
    fairness = next(c for c in request["checks"] if c["name"] == "fairness")
    assert (fairness["status"], fairness["summary"]) == (
        "error",
        f"The check did not finish after {settings.CHECK_MAX_ATTEMPTS} attempts.",
    )


def test_a_request_past_its_deadline_ends_checks_failed(world, queued, settings):
    later = timezone.now() + timedelta(seconds=settings.CHECK_DEADLINE + 1)
    start = world.mark()
    settings.CHECK_REDISPATCH_AFTER = 10**9  # only the deadline acts here
    assert check_runs_sweep(now=later)["expired"] == 1
    request = world.get(queued["id"])
    assert request["status"] == "checks_failed"
    assert {c["status"] for c in request["checks"]} == {"error"}
    assert actions_since(start) == ["check.error"] * 3 + ["promotion.checks_failed"]
    assert "did not finish within" in request["status_reason"]


def test_a_transient_fault_hands_the_run_back_for_a_retry(world, queued, monkeypatch):
    run = CheckRun.objects.get(request_id=queued["id"], name="validation")

    def database_gone(**kwargs):
        raise OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(validation, "run", database_gone)
    start = world.mark()
    with pytest.raises(OperationalError):
        check_run_execute(check_run_id=run.pk)
    run.refresh_from_db()
    assert run.status == "queued"
    assert actions_since(start) == ["check.started", "check.requeued"]
    monkeypatch.undo()
    assert check_run_execute(check_run_id=run.pk).status == "passed"


def test_a_crashing_gate_is_an_error_verdict(world, queued, monkeypatch):
    run = CheckRun.objects.get(request_id=queued["id"], name="validation")
    monkeypatch.setattr(validation, "run", lambda **kwargs: 1 / 0)
    assert check_run_execute(check_run_id=run.pk).status == "error"
    run.refresh_from_db()
    assert run.summary == "The check crashed: ZeroDivisionError: division by zero"
