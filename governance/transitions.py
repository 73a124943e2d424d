"""The promotion state machine: the only writer of PromotionRequest.status and of
ModelVersion.stage, and the order in which every promotion path takes its locks."""

import contextvars

from django.db import transaction
from django.utils import timezone

from audits.services import record
from governance.errors import NotFound, TransitionNotAllowed
from governance.models import FINAL_STATUSES, OPEN_STATUSES, PromotionRequest, Status
from registry.models import ModelVersion, RegisteredModel, Stage

ALLOWED: dict[str, set[str]] = {
    Status.CHECKING: {
        Status.AWAITING_APPROVAL,
        Status.PROMOTED,
        Status.CHECKS_FAILED,
        Status.CANCELLED,
    },
    Status.CHECKS_FAILED: {Status.CHECKING, Status.CANCELLED},
    Status.AWAITING_APPROVAL: {Status.PROMOTED, Status.REJECTED, Status.CANCELLED},
    Status.REJECTED: set(),
    Status.CANCELLED: set(),
    Status.PROMOTED: set(),
}

_writing = contextvars.ContextVar("promotion_transition", default=False)


def is_transitioning() -> bool:
    return _writing.get()


def lock_request(request_id: int) -> PromotionRequest:
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


def request_event_data(request: PromotionRequest, **extra) -> dict:
    return {
        "promotion_request": request.pk,
        "version": request.version.version,
        "target_stage": request.target_stage,
        "policy_id": request.policy_id,
        "policy_digest": request.policy_digest,
        **extra,
    }


def transition(
    request: PromotionRequest,
    to: str,
    *,
    actor,
    action: str,
    reason: str = "",
    data: dict | None = None,
) -> PromotionRequest:
    """Move a request to `to`: lock, check the move against ALLOWED, save, audit.

    Reaching `promoted` also moves the version's stage, under the model's row lock,
    which is taken before the request's so every path locks in the same order."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("transition() must run inside transaction.atomic()")
    if to == Status.PROMOTED:
        RegisteredModel.objects.select_for_update().get(pk=request.model_id)
    locked = (
        PromotionRequest.objects.select_for_update()
        .select_related("model", "version")
        .get(pk=request.pk)
    )
    if to not in ALLOWED[locked.status]:
        raise TransitionNotAllowed(
            f"Request #{locked.pk} is {locked.status}; it cannot become {to}."
        )
    before = locked.status
    token = _writing.set(True)
    try:
        locked.status = to
        locked.status_reason = reason
        fields = ["status", "status_reason", "updated_at"]
        if to in FINAL_STATUSES:
            locked.decided_at = timezone.now()
            fields.append("decided_at")
        locked.save(update_fields=fields)
    finally:
        _writing.reset(token)
    record(
        actor=actor,
        action=action,
        obj=locked,
        object_type="promotion_request",
        model=locked.model.name,
        data=request_event_data(
            locked, **{"from": before, "to": to, "reason": reason, **(data or {})}
        ),
    )
    if to == Status.PROMOTED:
        _move_stage(locked, actor=actor)
    return locked


def _set_stage(version: ModelVersion, stage: str, *, actor, request: PromotionRequest, reason: str):
    before = version.stage
    version.stage = stage
    version.stage_changed_at = timezone.now()
    version.save(update_fields=["stage", "stage_changed_at", "updated_at"])
    record(
        actor=actor,
        action="model_version.stage_changed",
        obj=version,
        model=request.model.name,
        data={
            "version": version.version,
            "from": before,
            "to": stage,
            "promotion_request": request.pk,
            "reason": reason,
        },
    )
    # Open requests for this version were made from the stage it has just left.
    stale = PromotionRequest.objects.filter(version=version, status__in=OPEN_STATUSES)
    for other in stale.exclude(pk=request.pk):
        transition(
            other,
            Status.CANCELLED,
            actor=None,
            action="promotion.cancelled",
            reason=f"Version {version.version} moved from {before} to {stage} "
            f"by request #{request.pk}.",
            data={"caused_by": request.pk},
        )


def _move_stage(request: PromotionRequest, *, actor) -> None:
    version = ModelVersion.objects.select_for_update().get(pk=request.version_id)
    version.model = request.model
    if request.target_stage == Stage.PRODUCTION:
        current = (
            ModelVersion.objects.select_for_update()
            .filter(model_id=request.model_id, stage=Stage.PRODUCTION)
            .exclude(pk=version.pk)
            .first()
        )
        if current is not None:
            current.model = request.model
            _set_stage(
                current,
                Stage.ARCHIVED,
                actor=actor,
                request=request,
                reason=f"Replaced in production by version {version.version}.",
            )
    _set_stage(version, request.target_stage, actor=actor, request=request, reason="Promoted.")
    if request.target_stage == Stage.PRODUCTION:
        # Other open requests for production were judged against the production
        # version that has just been replaced: the first decided wins, the rest
        # must be asked again.
        rivals = PromotionRequest.objects.filter(
            model_id=request.model_id, target_stage=Stage.PRODUCTION, status__in=OPEN_STATUSES
        ).exclude(pk=request.pk)
        for rival in rivals:
            transition(
                rival,
                Status.CANCELLED,
                actor=None,
                action="promotion.cancelled",
                reason=f"Superseded: request #{request.pk} promoted version "
                f"{version.version} to production first.",
                data={"caused_by": request.pk},
            )
