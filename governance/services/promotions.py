"""Promotion requests: submit, approve, reject, cancel and rerun their checks. Rights
and rules are enforced here, whoever calls."""

from datetime import timedelta

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from audits.services import record
from governance.errors import (
    AlreadyDecided,
    DuplicateOpenRequest,
    Forbidden,
    InvalidInput,
    NoPolicy,
    NotFound,
    TransitionNotAllowed,
)
from governance.models import (
    OPEN_STATUSES,
    Approval,
    Decision,
    PromotionRequest,
    Status,
    TargetStage,
)
from governance.services.check_runs import checks_start
from governance.services.policies import (
    minimum_approvals,
    policy_resolve,
    policy_snapshot,
    snapshot_digest,
)
from governance.services.separation_of_duties import require_approver
from governance.transitions import lock_request, request_event_data, transition
from registry.models import RegisteredModel, Stage
from registry.permissions import CHANGE_MODEL, has_model_perm

REQUEST_PROMOTION = "governance.add_promotionrequest"

# Where a version may be promoted from, by target stage. Archived -> production is a
# rollback: a request like any other, with a justification.
ALLOWED_FROM = {
    Stage.PRODUCTION: {Stage.NONE, Stage.STAGING, Stage.ARCHIVED},
    Stage.STAGING: {Stage.NONE, Stage.ARCHIVED},
    Stage.ARCHIVED: {Stage.NONE, Stage.STAGING, Stage.PRODUCTION},
}


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
        checks_start(request, actor=actor)
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


def valid_approvals(request: PromotionRequest, *, now=None):
    now = now or timezone.now()
    return request.approvals.filter(decision=Decision.APPROVED, expires_at__gt=now)


def promotion_request_approve(
    *, actor: AbstractBaseUser, request_id: int, comment: str = ""
) -> PromotionRequest:
    with transaction.atomic():
        request = lock_request(request_id)
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
        request = lock_request(request_id)
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
        request = lock_request(request_id)
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
        request = lock_request(request_id)
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
        checks_start(request, actor=actor)
    return promotion_request_reload(request_id)
