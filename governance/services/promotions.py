"""Promotion requests: submit, approve, reject, cancel, rerun checks, and the checks'
own lifecycle. Rights and rules are enforced here, whoever calls."""

import hashlib
import logging
from datetime import timedelta
from functools import partial

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from kombu.exceptions import OperationalError as KombuOperationalError

from audits.chain import canonical
from audits.services import record
from governance.background import after_response
from governance.checks import ERROR, CheckResult, registry
from governance.errors import (
    AlreadyDecided,
    ConflictOfInterest,
    DuplicateOpenRequest,
    Forbidden,
    InvalidInput,
    NoPolicy,
    NotAnApprover,
    NotFound,
    SelfApprovalForbidden,
    TransitionNotAllowed,
)
from governance.models import (
    OPEN_STATUSES,
    Approval,
    CheckRun,
    CheckStatus,
    Decision,
    PromotionRequest,
    Status,
    TargetStage,
)
from governance.roles import SERVICE_ROLES
from governance.services.policies import (
    minimum_approvals,
    policy_resolve,
    policy_snapshot,
    snapshot_digest,
)
from governance.transitions import request_event_data, transition
from registry.models import RegisteredModel, Stage
from registry.permissions import CHANGE_MODEL, REVIEW_MODEL, has_model_grant, has_model_perm
from registry.selectors import latest_evaluation

logger = logging.getLogger(__name__)

REQUEST_PROMOTION = "governance.add_promotionrequest"

# Where a version may be promoted from, by target stage. Archived -> production is a
# rollback: a request like any other, with a justification.
ALLOWED_FROM = {
    Stage.PRODUCTION: {Stage.NONE, Stage.STAGING, Stage.ARCHIVED},
    Stage.STAGING: {Stage.NONE, Stage.ARCHIVED},
    Stage.ARCHIVED: {Stage.NONE, Stage.STAGING, Stage.PRODUCTION},
}


def _is_service(user: AbstractBaseUser) -> bool:
    return user.groups.filter(name__in=SERVICE_ROLES).exists()


def _lock(request_id: int) -> PromotionRequest:
    """Lock the model, then the request: the order every promotion path uses."""
    found = (
        PromotionRequest.objects.filter(pk=request_id).values_list("model_id", flat=True).first()
    )
    if found is None:
        raise NotFound(f"No promotion request #{request_id}.")
    RegisteredModel.objects.select_for_update().get(pk=found)
    return (
        PromotionRequest.objects.select_for_update()
        .select_related("model", "version", "requested_by")
        .get(pk=request_id)
    )


def _send(check_run_id: int) -> None:
    from governance.tasks import check_run_execute

    if check_run_execute.app.conf.task_always_eager:
        # No broker: the web process runs it, after the response is sent.
        after_response(partial(check_run_execute.delay, check_run_id))
        return
    try:
        check_run_execute.delay(check_run_id)
    except KombuOperationalError:
        # The broker is down: the run stays queued and the sweep sends it again.
        logger.warning("Could not dispatch check run %s; the sweep will retry", check_run_id)


def _dispatch(run: CheckRun) -> None:
    transaction.on_commit(partial(_send, run.pk))


def _start_checks(request: PromotionRequest, *, actor) -> list[CheckRun]:
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


def promotion_request_submit(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    version: int,
    target_stage: str,
    justification: str = "",
) -> PromotionRequest:
    if target_stage not in TargetStage.values:
        raise InvalidInput(
            f"Unknown target stage {target_stage!r}.",
            errors={"target_stage": [f"One of: {', '.join(TargetStage.values)}."]},
        )
    if not (actor.has_perm(REQUEST_PROMOTION) or has_model_perm(actor, CHANGE_MODEL, model)):
        raise Forbidden(f"You may not request promotions of {model.name}.")
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        found = model.versions.filter(version=version).first()
        if found is None:
            raise NotFound(f"{model.name} has no version {version}.")
        if found.stage == target_stage:
            raise TransitionNotAllowed(f"Version {version} is already in {target_stage}.")
        if found.stage not in ALLOWED_FROM[target_stage]:
            raise TransitionNotAllowed(
                f"Version {version} is in {found.stage}; it cannot be promoted to {target_stage}."
            )
        if (
            target_stage == Stage.PRODUCTION
            and found.stage == Stage.ARCHIVED
            and not justification.strip()
        ):
            raise InvalidInput(
                "A rollback needs a justification.",
                errors={"justification": ["Required to bring an archived version back."]},
            )
        open_request = PromotionRequest.objects.filter(
            version=found, target_stage=target_stage, status__in=OPEN_STATUSES
        ).first()
        if open_request is not None:
            raise DuplicateOpenRequest(
                f"Request #{open_request.pk} for version {version} to {target_stage} is still open."
            )
        policy = policy_resolve(target_stage=target_stage, risk_tier=model.risk_tier)
        if policy is None:
            raise NoPolicy(
                f"No policy covers promotions to {target_stage} for {model.risk_tier} risk."
            )
        snapshot = policy_snapshot(policy)
        floor = minimum_approvals(target_stage=target_stage, from_stage=found.stage)
        if snapshot["required_approvals"] < floor:
            snapshot["required_approvals"] = floor
            snapshot["minimum_applied"] = (
                f"Raised to {floor}: any change to production needs at least {floor} approval."
            )
        found.model = model
        request = PromotionRequest.objects.create(
            model=model,
            version=found,
            from_stage=found.stage,
            target_stage=target_stage,
            requested_by=actor,
            justification=justification,
            policy=policy,
            policy_snapshot=snapshot,
            policy_digest=snapshot_digest(snapshot),
            required_approvals=snapshot["required_approvals"],
            approver_role=snapshot["approver_role"],
        )
        record(
            actor=actor,
            action="promotion.requested",
            obj=request,
            object_type="promotion_request",
            model=model.name,
            data=request_event_data(
                request, from_stage=found.stage, justification=justification, policy=snapshot
            ),
        )
        _start_checks(request, actor=actor)
    return promotion_request_reload(request.pk)


def open_request_veto(model: RegisteredModel) -> str | None:
    """A model with an open promotion request keeps its risk tier: the request froze the
    policy of that tier, and a lower tier must not be what the next request is judged
    under while this one is in flight."""
    open_ids = list(
        PromotionRequest.objects.filter(model=model, status__in=OPEN_STATUSES).values_list(
            "pk", flat=True
        )
    )
    if not open_ids:
        return None
    listed = ", ".join(f"#{pk}" for pk in open_ids)
    return f"promotion request {listed} is open; decide or cancel it first."


def promotion_request_reload(request_id: int) -> PromotionRequest:
    return PromotionRequest.objects.select_related("model", "version", "requested_by").get(
        pk=request_id
    )


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


def _named_reviewers_exist(model: RegisteredModel) -> bool:
    codename = "review_registeredmodel"
    return (
        UserObjectPermission.objects.filter(
            permission__codename=codename,
            object_pk=str(model.pk),
            content_type__model="registeredmodel",
        ).exists()
        or GroupObjectPermission.objects.filter(
            permission__codename=codename,
            object_pk=str(model.pk),
            content_type__model="registeredmodel",
        ).exists()
    )


def require_approver(actor: AbstractBaseUser, request: PromotionRequest) -> None:
    """Separation of duties, for every caller: raise unless `actor` may decide.

    Each refusal names the rule that applied. Nobody decides a request they made, a
    version they registered, or a model they own or were granted `change` on (a global
    `change`, which the admin role holds, is not a stake in one model)."""
    if _is_service(actor):
        raise Forbidden("Service accounts never approve or reject promotions.")
    if actor.pk == request.requested_by_id:
        raise SelfApprovalForbidden("The requester of a promotion never decides it.")
    if actor.pk == request.version.created_by_id:
        raise ConflictOfInterest(
            f"You registered {request.model.name} v{request.version.version}; "
            "the registrant of a version never decides its promotion."
        )
    # The creator stays an owner even after giving up its grant.
    if actor.pk == request.model.created_by_id or has_model_grant(
        actor, CHANGE_MODEL, request.model
    ):
        raise ConflictOfInterest(
            f"You own or may change {request.model.name}; "
            "its owners and those granted change never decide its promotions."
        )
    role = request.approver_role
    if not actor.groups.filter(name=role).exists():
        raise NotAnApprover(f"Only the {role} role decides this promotion.")
    if _named_reviewers_exist(request.model) and not actor.has_perm(REVIEW_MODEL, request.model):
        raise NotAnApprover(f"{request.model.name} names its own reviewers; you are not one.")


def may_decide(actor: AbstractBaseUser, request: PromotionRequest) -> bool:
    try:
        require_approver(actor, request)
    except Forbidden:
        return False
    return True


def valid_approvals(request: PromotionRequest, *, now=None):
    now = now or timezone.now()
    return request.approvals.filter(decision=Decision.APPROVED, expires_at__gt=now)


def promotion_request_approve(
    *, actor: AbstractBaseUser, request_id: int, comment: str = ""
) -> PromotionRequest:
    with transaction.atomic():
        request = _lock(request_id)
        require_approver(actor, request)
        if request.status != Status.AWAITING_APPROVAL:
            raise TransitionNotAllowed(
                f"Request #{request.pk} is {request.status}; it cannot be approved."
            )
        now = timezone.now()
        if valid_approvals(request, now=now).filter(reviewer=actor).exists():
            raise AlreadyDecided("You have already approved this request.")
        valid_for = timedelta(seconds=request.policy_snapshot["approval_valid_for_seconds"])
        approval = Approval.objects.create(
            request=request,
            reviewer=actor,
            decision=Decision.APPROVED,
            comment=comment,
            expires_at=now + valid_for,
        )
        count = valid_approvals(request, now=now).count()
        record(
            actor=actor,
            action="promotion.approved",
            obj=request,
            object_type="promotion_request",
            model=request.model.name,
            data=request_event_data(
                request,
                approval=approval.pk,
                comment=comment,
                expires_at=approval.expires_at,
                valid_approvals=count,
                required_approvals=request.required_approvals,
            ),
        )
        if count >= request.required_approvals:
            transition(
                request,
                Status.PROMOTED,
                actor=actor,
                action="promotion.promoted",
                reason=f"{count} of {request.required_approvals} approvals.",
            )
    return promotion_request_reload(request_id)


def promotion_request_reject(
    *, actor: AbstractBaseUser, request_id: int, comment: str
) -> PromotionRequest:
    if not (comment or "").strip():
        raise InvalidInput(
            "A rejection needs a comment.", errors={"comment": ["Required to reject."]}
        )
    with transaction.atomic():
        request = _lock(request_id)
        require_approver(actor, request)
        if request.status != Status.AWAITING_APPROVAL:
            raise TransitionNotAllowed(
                f"Request #{request.pk} is {request.status}; it cannot be rejected."
            )
        approval = Approval.objects.create(
            request=request, reviewer=actor, decision=Decision.REJECTED, comment=comment
        )
        transition(
            request,
            Status.REJECTED,
            actor=actor,
            action="promotion.rejected",
            reason=comment,
            data={"approval": approval.pk, "comment": comment},
        )
    return promotion_request_reload(request_id)


def promotion_request_cancel(*, actor: AbstractBaseUser, request_id: int) -> PromotionRequest:
    with transaction.atomic():
        request = _lock(request_id)
        if actor.pk != request.requested_by_id and not has_model_perm(
            actor, CHANGE_MODEL, request.model
        ):
            raise Forbidden(
                "Only the requester, an owner of the model or an admin cancels a request."
            )
        if request.status not in OPEN_STATUSES:
            raise TransitionNotAllowed(
                f"Request #{request.pk} is {request.status}; it cannot be cancelled."
            )
        transition(
            request,
            Status.CANCELLED,
            actor=actor,
            action="promotion.cancelled",
            reason=f"Cancelled by {actor.get_username()}.",
        )
    return promotion_request_reload(request_id)


def promotion_request_rerun_checks(*, actor: AbstractBaseUser, request_id: int) -> PromotionRequest:
    with transaction.atomic():
        request = _lock(request_id)
        if not (
            actor.pk == request.requested_by_id
            or actor.has_perm(REQUEST_PROMOTION)
            or has_model_perm(actor, CHANGE_MODEL, request.model)
        ):
            raise Forbidden("You may not rerun the checks of this request.")
        if request.status != Status.CHECKS_FAILED:
            raise TransitionNotAllowed(
                f"Request #{request.pk} is {request.status}; checks rerun only after they failed."
            )
        PromotionRequest.objects.filter(pk=request.pk).update(check_round=F("check_round") + 1)
        request = transition(
            request,
            Status.CHECKING,
            actor=actor,
            action="promotion.checks_rerun",
            data={"round": request.check_round + 1},
        )
        _start_checks(request, actor=actor)
    return promotion_request_reload(request_id)


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
        request = _lock(request_id)
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
    from governance.tasks import TRANSIENT

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
        request = _lock(request_id)
        if request.status != Status.CHECKING:
            return
        unfinished = request.check_runs.select_for_update().filter(
            round=request.check_round, status__in=(CheckStatus.QUEUED, CheckStatus.RUNNING)
        )
        summary = f"The check did not finish within {settings.CHECK_DEADLINE} seconds."
        for run in unfinished:
            _store_verdict(run, request, CheckResult(ERROR, summary))
        _decide_checks(request)
