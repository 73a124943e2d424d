"""Who may do what to the inventory. Global permissions come from role groups;
object permissions (django-guardian) from ownership and grants."""

from django.contrib.auth.models import AbstractBaseUser
from guardian.models import GroupObjectPermission, UserObjectPermission

from registry.errors import Forbidden
from registry.models import RegisteredModel

VIEW_MODEL = "registry.view_registeredmodel"
ADD_MODEL = "registry.add_registeredmodel"
CHANGE_MODEL = "registry.change_registeredmodel"
REVIEW_MODEL = "registry.review_registeredmodel"
ADD_VERSION = "registry.add_modelversion"

# Object permissions an owner may hand out on a model, by their API name.
GRANTABLE = {"change": CHANGE_MODEL, "review": REVIEW_MODEL}


def has_model_perm(user: AbstractBaseUser, perm: str, model: RegisteredModel) -> bool:
    """A global grant covers every model; otherwise guardian's object grant decides."""
    return user.has_perm(perm) or user.has_perm(perm, model)


def has_model_grant(user: AbstractBaseUser, perm: str, model: RegisteredModel) -> bool:
    """A grant on this very model, to the user or one of its groups: what owning a
    model or being granted `change` or `review` on it is. A global permission (a role's)
    and superuser status are not grants on one model. One query."""
    app_label, codename = perm.split(".", 1)
    grant = {
        "permission__codename": codename,
        "permission__content_type__app_label": app_label,
        "content_type__app_label": app_label,
        "content_type__model": RegisteredModel._meta.model_name,
        "object_pk": str(model.pk),
    }
    mine = UserObjectPermission.objects.filter(user=user, **grant).values("pk")
    ours = GroupObjectPermission.objects.filter(group__user=user, **grant).values("pk")
    return mine.union(ours).exists()


def require_view(user: AbstractBaseUser) -> None:
    if not user.has_perm(VIEW_MODEL):
        raise Forbidden("Your role does not read the model inventory.")


def require_change(user: AbstractBaseUser, model: RegisteredModel) -> None:
    if not has_model_perm(user, CHANGE_MODEL, model):
        raise Forbidden(f"Only owners of {model.name} and those they grant may change it.")


def require_register(user: AbstractBaseUser, model: RegisteredModel) -> None:
    if not (user.has_perm(ADD_VERSION) or user.has_perm(CHANGE_MODEL, model)):
        raise Forbidden(f"You may not register versions of {model.name}.")


ADD_EVALUATION = "registry.add_evaluationdata"


def require_upload(user: AbstractBaseUser, model: RegisteredModel) -> None:
    if not (user.has_perm(ADD_EVALUATION) or user.has_perm(CHANGE_MODEL, model)):
        raise Forbidden(f"You may not upload evaluation data for {model.name}.")
