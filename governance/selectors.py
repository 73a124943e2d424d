from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group
from django.db.models import Exists, OuterRef, Prefetch, Q, QuerySet
from django.utils import timezone
from guardian.models import GroupObjectPermission, UserObjectPermission
from guardian.shortcuts import get_objects_for_user

from governance.errors import Forbidden, NotFound
from governance.models import ApiToken, Approval, Decision, Policy, PromotionRequest, Status
from governance.roles import SERVICE_ROLES, is_admin
from registry.permissions import CHANGE_MODEL

VIEW_PROMOTIONS = "governance.view_promotionrequest"


def _require_view(user: AbstractBaseUser) -> None:
    if not user.has_perm(VIEW_PROMOTIONS):
        raise Forbidden("Your role does not read promotion requests.")


def _with_details(queryset: QuerySet[PromotionRequest]) -> QuerySet[PromotionRequest]:
    return queryset.select_related("model", "version", "requested_by").prefetch_related(
        Prefetch("approvals", queryset=Approval.objects.select_related("reviewer")),
        "check_runs",
    )


def models_with_named_reviewers() -> QuerySet:
    codename = "review_registeredmodel"
    users = UserObjectPermission.objects.filter(permission__codename=codename).values("object_pk")
    groups = GroupObjectPermission.objects.filter(permission__codename=codename).values("object_pk")
    return users.union(groups)


def awaiting_decision_by(queryset: QuerySet[PromotionRequest], user: AbstractBaseUser):
    """Requests `user` may decide and has not approved (with an approval still valid)."""
    roles = list(user.groups.values_list("name", flat=True))
    if set(roles) & set(SERVICE_ROLES):
        return queryset.none()
    named = {int(pk) for pk in models_with_named_reviewers().values_list("object_pk", flat=True)}
    mine = set(
        get_objects_for_user(
            user, "registry.review_registeredmodel", accept_global_perms=False
        ).values_list("pk", flat=True)
    )
    # Models the user owns or was granted `change` on, itself or through a group: a
    # stake in the model, which rules its promotions out of the user's hands.
    stake = get_objects_for_user(
        user, CHANGE_MODEL, accept_global_perms=False, with_superuser=False
    ).values("pk")
    already = Approval.objects.filter(
        request=OuterRef("pk"),
        reviewer=user,
        decision=Decision.APPROVED,
        expires_at__gt=timezone.now(),
    )
    return (
        queryset.filter(status=Status.AWAITING_APPROVAL, approver_role__in=roles)
        .exclude(requested_by=user)
        .exclude(version__created_by=user)
        .exclude(model__created_by=user)
        .exclude(model_id__in=stake)
        .filter(~Q(model_id__in=named) | Q(model_id__in=mine))
        .exclude(Exists(already))
    )


def promotion_request_list(
    *,
    user: AbstractBaseUser,
    status: str | None = None,
    model: str | None = None,
    awaiting_me: bool = False,
) -> QuerySet[PromotionRequest]:
    _require_view(user)
    queryset = PromotionRequest.objects.order_by("-created_at", "-id")
    if status:
        queryset = queryset.filter(status=status)
    if model:
        queryset = queryset.filter(model__name=model)
    if awaiting_me:
        queryset = awaiting_decision_by(queryset, user)
    return _with_details(queryset)


def promotion_request_get(*, user: AbstractBaseUser, request_id: int) -> PromotionRequest:
    _require_view(user)
    found = _with_details(PromotionRequest.objects.filter(pk=request_id)).first()
    if found is None:
        raise NotFound(f"No promotion request #{request_id}.")
    return found


def policy_list(*, user: AbstractBaseUser) -> QuerySet[Policy]:
    if not user.has_perm("governance.view_policy"):
        raise Forbidden("Your role does not read policies.")
    return Policy.objects.order_by("target_stage", "risk_tier")


def api_token_list(*, user: AbstractBaseUser, username: str | None = None) -> QuerySet[ApiToken]:
    """The user's own tokens; an admin may name another account's."""
    tokens = ApiToken.objects.select_related("user").order_by("-created_at", "-id")
    if username is None or username == user.get_username():
        return tokens.filter(user=user)
    if not is_admin(user):
        raise Forbidden("Only admins list another account's API tokens.")
    return tokens.filter(user__username=username)


def api_token_get(*, user: AbstractBaseUser, token_id: int) -> ApiToken:
    """One of the user's own tokens, or any for an admin; another's is not found."""
    tokens = ApiToken.objects.select_related("user").filter(pk=token_id)
    if not is_admin(user):
        tokens = tokens.filter(user=user)
    found = tokens.first()
    if found is None:
        raise NotFound(f"No API token #{token_id}.")
    return found


def token_owner_choices(*, user: AbstractBaseUser) -> QuerySet:
    """Whose tokens the user may create: their own, and an admin's service accounts'
    (governance.roles.is_service_account, as one query)."""
    users = get_user_model().objects.order_by("username")
    if not is_admin(user):
        return users.filter(pk=user.pk)
    service = (
        users.filter(groups__name__in=SERVICE_ROLES, is_staff=False, is_superuser=False)
        .exclude(groups__in=Group.objects.exclude(name__in=SERVICE_ROLES))
        .values("pk")
    )
    return users.filter(Q(pk=user.pk) | Q(pk__in=service))
