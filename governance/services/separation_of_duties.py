"""Separation of duties: who may approve or reject a promotion request, enforced for
every caller."""

from django.contrib.auth.models import AbstractBaseUser
from guardian.models import GroupObjectPermission, UserObjectPermission

from governance.errors import (
    ConflictOfInterest,
    Forbidden,
    NotAnApprover,
    SelfApprovalForbidden,
)
from governance.models import PromotionRequest
from governance.roles import SERVICE_ROLES
from registry.models import RegisteredModel
from registry.permissions import CHANGE_MODEL, REVIEW_MODEL, has_model_grant


def _is_service(user: AbstractBaseUser) -> bool:
    return user.groups.filter(name__in=SERVICE_ROLES).exists()


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
