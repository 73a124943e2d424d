"""What the audit trail needs to know of ownership (named by settings.AUDIT_MODEL_SCOPE)."""

from django.contrib.auth.models import AbstractBaseUser
from guardian.shortcuts import get_objects_for_user

from registry.models import RegisteredModel
from registry.permissions import CHANGE_MODEL


def owned_model_names(user: AbstractBaseUser) -> list[str]:
    """The models `user` holds the change permission on as an object grant (directly or
    through a group): the ones they own or were given. A global grant is not ownership."""
    owned = get_objects_for_user(
        user, CHANGE_MODEL, klass=RegisteredModel, accept_global_perms=False
    )
    return list(owned.values_list("name", flat=True))
