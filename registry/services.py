"""Every change to the inventory but a version's registration (registry.registration),
each audited in its own transaction."""

from collections.abc import Callable
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db import IntegrityError, transaction
from guardian.shortcuts import assign_perm, remove_perm

from audits.services import record
from registry.errors import Conflict, Forbidden, InvalidInput, NotFound
from registry.evaluation import EvaluationSpec, parse_upload
from registry.models import EvaluationData, ModelVersion, RegisteredModel, RiskTier
from registry.permissions import (
    ADD_MODEL,
    CHANGE_MODEL,
    GRANTABLE,
    require_change,
    require_upload,
)

MODEL_EDITABLE = ("description", "risk_tier", "card", "tags")
VERSION_EDITABLE = ("description", "card", "tags")

TIER_ORDER = [RiskTier.LOW, RiskTier.MEDIUM, RiskTier.HIGH, RiskTier.CRITICAL]

# Reasons other apps give for keeping a model's risk tier where it is, as functions of
# the locked model returning a sentence or None: governance refuses while a promotion
# request is open, since it was judged under the tier's policy. Registered here so
# the registry applies them without importing governance.
tier_lowering_vetoes: list[Callable[[RegisteredModel], str | None]] = []


def _diff(obj, changes: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        field: {"before": getattr(obj, field), "after": value}
        for field, value in changes.items()
        if getattr(obj, field) != value
    }


def registered_model_create(
    *,
    actor: AbstractBaseUser,
    name: str,
    description: str = "",
    risk_tier: str = "medium",
    card: dict | None = None,
    tags: dict | None = None,
) -> RegisteredModel:
    if not actor.has_perm(ADD_MODEL):
        raise Forbidden("Your role may not create models.")
    try:
        with transaction.atomic():
            model = RegisteredModel.objects.create(
                name=name,
                description=description,
                risk_tier=risk_tier,
                card=card or {},
                tags=tags or {},
                created_by=actor,
            )
            # The creator owns the model: they change it and grant others.
            assign_perm("registry.change_registeredmodel", actor, model)
            record(
                actor=actor,
                action="registered_model.created",
                obj=model,
                model=model.name,
                data={
                    "name": name,
                    "description": description,
                    "risk_tier": risk_tier,
                    "card": model.card,
                    "tags": model.tags,
                    "owner": actor.get_username(),
                },
            )
    except IntegrityError as exc:
        if RegisteredModel.objects.filter(name=name).exists():
            raise Conflict(f"A model named {name!r} already exists.") from exc
        raise
    return model


def registered_model_update(
    *, actor: AbstractBaseUser, model: RegisteredModel, **changes: Any
) -> RegisteredModel:
    unknown = set(changes) - set(MODEL_EDITABLE)
    if unknown:
        raise InvalidInput(
            "These fields cannot be changed.", errors={f: ["Read-only."] for f in sorted(unknown)}
        )
    require_change(actor, model)
    with transaction.atomic():
        model = RegisteredModel.objects.select_for_update().get(pk=model.pk)
        diff = _diff(model, changes)
        if not diff:
            return model
        if "risk_tier" in diff:
            _require_tier_change(actor, model, diff["risk_tier"]["after"])
        for field, change in diff.items():
            setattr(model, field, change["after"])
        model.save(update_fields=[*diff, "updated_at"])
        record(
            actor=actor,
            action="registered_model.updated",
            obj=model,
            model=model.name,
            data={"changes": diff},
        )
    return model


def _require_tier_change(actor: AbstractBaseUser, model: RegisteredModel, tier: str) -> None:
    """Owners may raise a model's risk tier; lowering it, which can weaken the policy
    its promotions are judged under, is for admins (a global `change`), and never while
    a veto holds."""
    if tier not in TIER_ORDER or TIER_ORDER.index(tier) >= TIER_ORDER.index(model.risk_tier):
        return
    if not actor.has_perm(CHANGE_MODEL):
        raise Forbidden(
            f"Only an admin lowers a model's risk tier ({model.risk_tier} to {tier}); "
            "owners may only raise it."
        )
    for veto in tier_lowering_vetoes:
        reason = veto(model)
        if reason:
            raise Conflict(f"{model.name}'s risk tier cannot be lowered now: {reason}")


def model_version_update(
    *, actor: AbstractBaseUser, version: ModelVersion, **changes: Any
) -> ModelVersion:
    unknown = set(changes) - set(VERSION_EDITABLE)
    if unknown:
        raise InvalidInput(
            "These fields cannot be changed.", errors={f: ["Read-only."] for f in sorted(unknown)}
        )
    require_change(actor, version.model)
    with transaction.atomic():
        locked = ModelVersion.objects.select_for_update().select_related("model").get(pk=version.pk)
        diff = _diff(locked, changes)
        if not diff:
            return locked
        for field, change in diff.items():
            setattr(locked, field, change["after"])
        locked.save(update_fields=[*diff, "updated_at"])
        record(
            actor=actor,
            action="model_version.updated",
            obj=locked,
            model=locked.model.name,
            data={"version": locked.version, "changes": diff},
        )
    return locked


def _principal(*, user: str | None, group: str | None):
    if bool(user) == bool(group):
        raise InvalidInput(
            "Name exactly one of user or group.",
            errors={"non_field_errors": ["Name exactly one of user or group."]},
        )
    if user:
        found = get_user_model().objects.filter(username=user).first()
        if found is None:
            raise NotFound(f"No user {user!r}.", errors={"user": ["No such user."]})
        return found, "user", user
    found = Group.objects.filter(name=group).first()
    if found is None:
        raise NotFound(f"No group {group!r}.", errors={"group": ["No such group."]})
    return found, "group", group


def model_permission_grant(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel,
    permission: str,
    user: str | None = None,
    group: str | None = None,
    revoke: bool = False,
) -> dict[str, str]:
    """Grant (or revoke) an object permission on a model to a user or a group."""
    if permission not in GRANTABLE:
        raise InvalidInput(
            f"Unknown permission {permission!r}.",
            errors={"permission": [f"One of: {', '.join(GRANTABLE)}."]},
        )
    require_change(actor, model)
    if permission == "review" and not actor.has_perm(CHANGE_MODEL):
        # Whoever names a model's reviewers chooses who decides its promotions: never
        # one with a stake in the model.
        raise Forbidden("Only an admin names or removes a model's reviewers.")
    principal, kind, name = _principal(user=user, group=group)
    if revoke and principal == actor and not actor.has_perm(CHANGE_MODEL):
        # Giving up one's own stake in a model would make one eligible to decide its
        # promotions; another owner or an admin takes a grant away.
        raise Forbidden("You cannot remove your own permissions on a model.")
    with transaction.atomic():
        RegisteredModel.objects.select_for_update().get(pk=model.pk)
        (remove_perm if revoke else assign_perm)(GRANTABLE[permission], principal, model)
        record(
            actor=actor,
            action="role.revoked" if revoke else "role.granted",
            obj=model,
            model=model.name,
            data={"permission": permission, kind: name, "scope": "model"},
        )
    return {"permission": permission, kind: name}


def evaluation_upload(
    *, actor: AbstractBaseUser, version: ModelVersion, upload, spec: EvaluationSpec
) -> EvaluationData:
    """Validate and store an evaluation CSV for a version. Nothing is kept on failure."""
    require_upload(actor, version.model)
    parsed = parse_upload(upload, spec)
    evaluation = EvaluationData(
        version=version,
        sha256=parsed.sha256,
        size_bytes=parsed.size_bytes,
        rows=parsed.rows,
        columns=parsed.columns,
        label_column=spec.label_column,
        prediction_column=spec.prediction_column,
        score_column=spec.score_column,
        sensitive_features=spec.sensitive_features,
        uploaded_by=actor,
    )
    evaluation.file.save("evaluation.csv", upload, save=False)
    try:
        with transaction.atomic():
            evaluation.save()
            record(
                actor=actor,
                action="evaluation.uploaded",
                obj=evaluation,
                object_type="evaluation_data",
                model=version.model.name,
                data={
                    "version": version.version,
                    "sha256": parsed.sha256,
                    "size_bytes": parsed.size_bytes,
                    "rows": parsed.rows,
                    "columns": parsed.columns,
                    "label_column": spec.label_column,
                    "prediction_column": spec.prediction_column,
                    "score_column": spec.score_column,
                    "sensitive_features": spec.sensitive_features,
                },
            )
    except BaseException:
        # The row was not written: the stored file would be an orphan.
        evaluation.file.delete(save=False)
        raise
    return evaluation
