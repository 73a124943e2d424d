"""Reads of the inventory. Every role reads it; what does not exist is a 404."""

from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Max, Q, QuerySet
from django.db.models.fields.json import KeyTransform
from guardian.shortcuts import get_groups_with_perms, get_users_with_perms

from registry.errors import NotFound
from registry.models import EvaluationData, ModelVersion, RegisteredModel, Stage
from registry.permissions import GRANTABLE, require_view


def registered_model_list(
    *,
    user: AbstractBaseUser,
    search: str | None = None,
    tag: tuple[str, str] | None = None,
    risk_tier: str | None = None,
) -> QuerySet[RegisteredModel]:
    require_view(user)
    queryset = RegisteredModel.objects.select_related("created_by").order_by("name")
    if search:
        queryset = queryset.filter(Q(name__icontains=search) | Q(description__icontains=search))
    if tag:
        key, value = tag
        queryset = queryset.alias(_tag=KeyTransform(key, "tags")).filter(_tag=value)
    if risk_tier:
        queryset = queryset.filter(risk_tier=risk_tier)
    return queryset


def registered_model_get(*, user: AbstractBaseUser, name: str) -> RegisteredModel:
    require_view(user)
    model = RegisteredModel.objects.select_related("created_by").filter(name=name).first()
    if model is None:
        raise NotFound(f"No model named {name!r}.")
    return model


def model_version_list(
    *, user: AbstractBaseUser, model: RegisteredModel, stage: str | None = None
) -> QuerySet[ModelVersion]:
    require_view(user)
    queryset = model.versions.select_related("created_by").order_by("-version")
    if stage:
        queryset = queryset.filter(stage=stage)
    return queryset


def model_version_get(
    *, user: AbstractBaseUser, model: RegisteredModel, version: int
) -> ModelVersion:
    require_view(user)
    found = model.versions.select_related("created_by").filter(version=version).first()
    if found is None:
        raise NotFound(f"{model.name} has no version {version}.")
    found.model = model
    return found


def latest_versions(model: RegisteredModel) -> dict[str, ModelVersion | None]:
    """The newest version in each stage (two queries, whatever the number of versions)."""
    newest = dict(
        model.versions.values_list("stage").annotate(top=Max("version")).values_list("stage", "top")
    )
    found = {
        v.stage: v
        for v in model.versions.select_related("created_by").filter(version__in=newest.values())
    }
    for version in found.values():
        version.model = model
    return {stage: found.get(stage) for stage in Stage.values}


def model_grants(model: RegisteredModel) -> list[dict[str, str]]:
    """Who holds each grantable permission on the model, directly or through a group."""
    codenames = {perm.split(".")[1]: name for name, perm in GRANTABLE.items()}
    grants = []
    users = get_users_with_perms(
        model, attach_perms=True, with_superusers=False, with_group_users=False
    )
    for user, perms in users.items():
        grants += [
            {"permission": codenames[p], "user": user.username} for p in perms if p in codenames
        ]
    for group, perms in get_groups_with_perms(model, attach_perms=True).items():
        grants += [
            {"permission": codenames[p], "group": group.name} for p in perms if p in codenames
        ]
    return sorted(grants, key=lambda g: (g["permission"], g.get("user", ""), g.get("group", "")))


def latest_evaluation(version: ModelVersion) -> EvaluationData | None:
    """The evaluation set the gates use: the version's newest upload."""
    return version.evaluations.order_by("-uploaded_at", "-id").first()
