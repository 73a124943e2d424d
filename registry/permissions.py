"""Who may do what to the inventory. Global permissions come from role groups;
object permissions (django-guardian) from ownership and grants."""

from django.contrib.auth.models import AbstractBaseUser

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
