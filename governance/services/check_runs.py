"""Check runs: queueing a request's checks, running and recording each, deciding the
request when its round is done, and the sweep that keeps no run waiting forever."""

import hashlib
import logging
from datetime import timedelta
from functools import partial

from celery import Task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F
from django.utils import timezone
from kombu.exceptions import OperationalError as KombuOperationalError

from audits.chain import canonical
from audits.services import record
from governance.background import after_response
from governance.checks import ERROR, CheckResult, registry
from governance.models import CheckRun, CheckStatus, PromotionRequest, Status
from governance.transitions import lock_request, request_event_data, transition
from registry.selectors import latest_evaluation

logger = logging.getLogger(__name__)

# Faults worth another try: the database or the file storage briefly unreachable.
TRANSIENT = (OperationalError, InterfaceError, ConnectionError, TimeoutError)

# The Celery task that runs a queued check, set by GovernanceConfig.ready() from
# governance.tasks, whose tasks call the services here.
execute_task: Task | None = None


def _send(check_run_id: int) -> None:
    if execute_task.app.conf.task_always_eager:
        # No broker: the web process runs it, after the response is sent.
        after_response(partial(execute_task.delay, check_run_id))
        return
    try:
        execute_task.delay(check_run_id)
    except KombuOperationalError:
        # The broker is down: the run stays queued and the sweep sends it again.
        logger.warning("Could not dispatch check run %s; the sweep will retry", check_run_id)


def _dispatch(run: CheckRun) -> None:
    transaction.on_commit(partial(_send, run.pk))


def checks_start(request: PromotionRequest, *, actor) -> list[CheckRun]:
    runs = [
        CheckRun.objects.create(
            request=request, round=request.check_round, name=name, settings=settings
        )
        # Sorted: PostgreSQL's jsonb does not keep the policy's key order.
        for name, settings in sorted(request.policy_snapshot["checks"].items())
    ]
    for run in runs:
        _dispatch(run)
    if not runs:
        _checks_passed(request, actor=actor)
    return runs


def _checks_passed(
    request: PromotionRequest, *, actor, unverified: list[str] | None = None
) -> PromotionRequest:
    """Checks done and none blocks. Those that ended `unverified` are named in the
    reason and the event, so a reviewer and the log see that they did not pass."""
    extra = {"unverified": unverified} if unverified else {}
    note = (
        f"Checks done: {', '.join(unverified)} unverified, which the policy allows."
        if unverified
        else ""
    )
    if request.required_approvals:
        return transition(
            request,
            Status.AWAITING_APPROVAL,
            actor=actor,
            action="promotion.checks_passed",
            reason=note,
            data=extra,
        )
    # No approval needed: straight from checking to promoted once every gate passes.
    record(
        actor=actor,
        action="promotion.checks_passed",
        obj=request,
        object_type="promotion_request",
        model=request.model.name,
        data=request_event_data(
            request, **{"from": request.status, "to": Status.PROMOTED, **extra}
        ),
    )
    return transition(
        request,
        Status.PROMOTED,
        actor=actor,
        action="promotion.promoted",
        reason=f"{note} The policy needs no approval."
        if note
        else "Every check passed; the policy needs no approval.",
    )


def check_run_start(*, check_run_id: int) -> CheckRun | None:
    """Claim a queued run; a second delivery of the same task claims nothing."""
    with transaction.atomic():
        claimed = CheckRun.objects.filter(
            pk=check_run_id, status=CheckStatus.QUEUED, attempts__lt=settings.CHECK_MAX_ATTEMPTS
        ).update(status=CheckStatus.RUNNING, started_at=timezone.now(), attempts=F("attempts") + 1)
        if not claimed:
            return None
        run = CheckRun.objects.select_related("request__model", "request__version").get(
            pk=check_run_id
        )
        record(
            actor=None,
            action="check.started",
            obj=run,
            object_type="check_run",
            model=run.request.model.name,
            data={"check": run.name, "promotion_request": run.request_id, "round": run.round},
        )
    return run


def results_in_event(results: dict) -> dict:
    """What a check's audit event holds of its results: the results themselves, or,
    past CHECK_RESULTS_INLINE_BYTES, their SHA-256 and size. The permanent log then
    grows by a few lines per check, whatever the check found; the check run keeps the
    full results, and the digest proves them unchanged."""
    text = canonical(results)
    size = len(text.encode("utf-8"))
    if size <= settings.CHECK_RESULTS_INLINE_BYTES:
        return {"results": results}
    return {
        "results_sha256": hashlib.sha256(text.encode("utf-8")).hexdigest(),
        "results_bytes": size,
    }


def _store_verdict(run: CheckRun, request: PromotionRequest, result: CheckResult) -> None:
    run.status = result.status
    run.summary = result.summary
    run.results = result.results
    run.finished_at = timezone.now()
    run.save(update_fields=["status", "summary", "results", "finished_at"])
    record(
        actor=None,
        action=f"check.{result.status}",
        obj=run,
        object_type="check_run",
        model=request.model.name,
        data={
            "check": run.name,
            "promotion_request": request.pk,
            "round": run.round,
            "summary": result.summary,
            **results_in_event(result.results),
        },
    )


def check_run_finish(*, check_run_id: int, result: CheckResult) -> CheckRun | None:
    """Store a check's verdict, then, when it was the round's last, decide the request."""
    with transaction.atomic():
        request_id = (
            CheckRun.objects.filter(pk=check_run_id).values_list("request_id", flat=True).get()
        )
        request = lock_request(request_id)
        run = CheckRun.objects.select_for_update().get(pk=check_run_id)
        if run.status != CheckStatus.RUNNING:
            return None
        _store_verdict(run, request, result)
        if request.status == Status.CHECKING and run.round == request.check_round:
            _decide_checks(request)
    return run


def _blocks(run: CheckRun) -> bool:
    """Whether a finished run stops its request: `failed` and `error` always;
    `unverified` only where the frozen policy sets the check's `require_verified`."""
    if run.status == CheckStatus.UNVERIFIED:
        return bool((run.settings or {}).get("require_verified"))
    return run.status in (CheckStatus.FAILED, CheckStatus.ERROR)


def _blocking_reason(run: CheckRun) -> str:
    if run.status == CheckStatus.UNVERIFIED:
        return (
            f"{run.name} unverified, and the policy requires it verified "
            f"(checks.{run.name}.require_verified): {run.summary}"
        )
    return f"{run.name} {run.status}: {run.summary}"


def _decide_checks(request: PromotionRequest) -> None:
    runs = list(request.check_runs.filter(round=request.check_round))
    if any(r.status in (CheckStatus.QUEUED, CheckStatus.RUNNING) for r in runs):
        return
    bad = [r for r in runs if _blocks(r)]
    if bad:
        transition(
            request,
            Status.CHECKS_FAILED,
            actor=None,
            action="promotion.checks_failed",
            reason="; ".join(_blocking_reason(r) for r in bad),
            data={"checks": {r.name: r.status for r in runs}},
        )
    else:
        unverified = [r.name for r in runs if r.status == CheckStatus.UNVERIFIED]
        _checks_passed(request, actor=None, unverified=unverified)


def _requeue(run: CheckRun, *, reason: str) -> None:
    """running -> queued, audited; the caller holds the run's lock."""
    CheckRun.objects.filter(pk=run.pk).update(status=CheckStatus.QUEUED, started_at=None)
    record(
        actor=None,
        action="check.requeued",
        obj=run,
        object_type="check_run",
        model=run.request.model.name,
        data={
            "check": run.name,
            "promotion_request": run.request_id,
            "round": run.round,
            "reason": reason,
        },
    )
    _dispatch(run)


def check_run_release(*, check_run_id: int, reason: str) -> None:
    """Give a claimed run back after a transient fault, so a retry can claim it."""
    with transaction.atomic():
        run = (
            CheckRun.objects.select_for_update()
            .select_related("request__model")
            .filter(pk=check_run_id, status=CheckStatus.RUNNING)
            .first()
        )
        if run is not None:
            _requeue(run, reason=reason)


def check_run_execute(*, check_run_id: int) -> CheckRun | None:
    """Claim, run (outside any transaction: a gate may take minutes), record.

    A transient fault (database, storage) hands the run back and propagates, so the
    task retries; a fault of the gate itself is its `error` verdict."""
    run = check_run_start(check_run_id=check_run_id)
    if run is None:
        return None
    check = registry().get(run.name)
    try:
        if check is None:
            result = CheckResult(ERROR, f"No check named {run.name!r} is installed.")
        else:
            result = check.run(
                version=run.request.version,
                evaluation=latest_evaluation(run.request.version),
                settings=run.settings,
            )
    except TRANSIENT as exc:
        check_run_release(check_run_id=check_run_id, reason=f"{type(exc).__name__}: {exc}")
        raise
    except SoftTimeLimitExceeded:
        result = CheckResult(ERROR, "The check ran past its time limit.")
    except Exception as exc:  # noqa: BLE001 - a crashing gate is an `error` verdict, not a lost task
        result = CheckResult(ERROR, f"The check crashed: {type(exc).__name__}: {exc}")
    return check_run_finish(check_run_id=check_run_id, result=result)


def check_runs_sweep(*, now=None) -> dict[str, int]:
    """What the beat scheduler runs every minute, so no request waits forever:

    - a run `running` past its hard time limit lost its worker: queue it again, or,
      after CHECK_MAX_ATTEMPTS, end it in `error`;
    - a run `queued` for longer than CHECK_REDISPATCH_AFTER may have lost its message
      (a broker that was down): send it again; the claim makes a duplicate harmless;
    - a request still `checking` CHECK_DEADLINE after its checks started ends
      `checks_failed`, its unfinished runs in `error`.
    """
    now = now or timezone.now()
    counts = {"requeued": 0, "abandoned": 0, "redispatched": 0, "expired": 0}
    stale = now - timedelta(seconds=settings.CHECK_TIME_LIMIT + 30)
    for run_id in CheckRun.objects.filter(
        status=CheckStatus.RUNNING, started_at__lt=stale
    ).values_list("pk", flat=True):
        with transaction.atomic():
            run = (
                CheckRun.objects.select_for_update()
                .select_related("request__model")
                .filter(pk=run_id, status=CheckStatus.RUNNING, started_at__lt=stale)
                .first()
            )
            if run is None:
                continue
            if run.attempts < settings.CHECK_MAX_ATTEMPTS:
                _requeue(run, reason="Its worker stopped before finishing.")
                counts["requeued"] += 1
                continue
        check_run_finish(
            check_run_id=run_id,
            result=CheckResult(ERROR, f"The check did not finish after {run.attempts} attempts."),
        )
        counts["abandoned"] += 1

    waiting = now - timedelta(seconds=settings.CHECK_REDISPATCH_AFTER)
    for run in CheckRun.objects.filter(status=CheckStatus.QUEUED, created_at__lt=waiting):
        _send(run.pk)
        counts["redispatched"] += 1

    deadline = now - timedelta(seconds=settings.CHECK_DEADLINE)
    late = (
        CheckRun.objects.filter(
            request__status=Status.CHECKING,
            round=F("request__check_round"),
            status__in=(CheckStatus.QUEUED, CheckStatus.RUNNING),
            created_at__lt=deadline,
        )
        .values_list("request_id", flat=True)
        .order_by()
        .distinct()
    )
    for request_id in list(late):
        check_request_expire(request_id=request_id)
        counts["expired"] += 1
    return counts


def check_request_expire(*, request_id: int) -> None:
    """End a request whose checks missed the deadline: its unfinished runs in `error`."""
    with transaction.atomic():
        request = lock_request(request_id)
        if request.status != Status.CHECKING:
            return
        unfinished = request.check_runs.select_for_update().filter(
            round=request.check_round, status__in=(CheckStatus.QUEUED, CheckStatus.RUNNING)
        )
        summary = f"The check did not finish within {settings.CHECK_DEADLINE} seconds."
        for run in unfinished:
            _store_verdict(run, request, CheckResult(ERROR, summary))
        _decide_checks(request)
