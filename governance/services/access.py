"""Roles, users and API tokens: each change audited in its own transaction."""

import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction
from django.utils import timezone

from audits.services import record
from governance.authentication import hash_token
from governance.models import ApiToken
from governance.roles import ROLE_PERMISSIONS, ROLES, SERVICE_ROLES, STAFF_ROLES
from registry.errors import InvalidInput

User = get_user_model()


def roles_setup(*, actor: AbstractBaseUser | None = None) -> list[str]:
    """Create the role groups and give each exactly its permissions. Idempotent:
    a run that changes nothing writes nothing. Returns the roles it changed."""
    changed = []
    for role in ROLES:
        wanted = ROLE_PERMISSIONS[role]
        with transaction.atomic():
            group, created = Group.objects.select_for_update().get_or_create(name=role)
            current = {
                f"{app}.{codename}"
                for app, codename in group.permissions.values_list(
                    "content_type__app_label", "codename"
                )
            }
            if not created and current == set(wanted):
                continue
            perms = [_permission(name) for name in wanted]
            group.permissions.set(perms)
            record(
                actor=actor,
                action="role.configured",
                obj=group,
                object_type="role",
                data={
                    "role": role,
                    "added": sorted(set(wanted) - current),
                    "removed": sorted(current - set(wanted)),
                },
            )
            changed.append(role)
    return changed


def _permission(name: str) -> Permission:
    app_label, codename = name.split(".")
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def user_upsert(
    *, actor: AbstractBaseUser | None, username: str, password: str | None = None
) -> tuple[AbstractBaseUser, bool]:
    """Create a user, or set a new password on an existing one."""
    with transaction.atomic():
        user, created = User.objects.select_for_update().get_or_create(username=username)
        if password is not None:
            user.set_password(password)
        elif created:
            user.set_unusable_password()
        if created or password is not None:
            user.save()
            record(
                actor=actor,
                action="user.created" if created else "user.updated",
                obj=user,
                object_type="user",
                object_repr=username,
                data={"username": username, "password_set": password is not None},
            )
    return user, created


def role_grant(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, role: str, revoke: bool = False
) -> bool:
    """Add the user to a role (or take it away). Returns whether anything changed."""
    if role not in ROLES:
        raise InvalidInput(
            f"Unknown role {role!r}.", errors={"role": [f"One of: {', '.join(ROLES)}."]}
        )
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        group = Group.objects.get(name=role)
        holds = user.groups.filter(pk=group.pk).exists()
        if holds != revoke:
            return False
        (user.groups.remove if revoke else user.groups.add)(group)
        remaining = set(user.groups.values_list("name", flat=True))
        # A service account never uses the admin, whatever other role it also holds.
        is_staff = bool(remaining & set(STAFF_ROLES)) and not remaining & set(SERVICE_ROLES)
        if user.is_staff != is_staff:
            user.is_staff = is_staff
            user.save(update_fields=["is_staff"])
        record(
            actor=actor,
            action="role.revoked" if revoke else "role.granted",
            obj=user,
            object_type="user",
            object_repr=user.get_username(),
            data={"role": role, "user": user.get_username(), "scope": "global"},
        )
    return True


def token_create(
    *, actor: AbstractBaseUser | None, user: AbstractBaseUser, name: str = ""
) -> tuple[ApiToken, str]:
    """Return the token row and its secret; the secret is not stored and is shown once."""
    secret = "mg_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token = ApiToken.objects.create(
            user=user, name=name, key_hash=hash_token(secret), prefix=secret[:10]
        )
        record(
            actor=actor,
            action="token.created",
            obj=token,
            object_type="api_token",
            object_repr=f"{token.prefix}… for {user.get_username()}",
            data={"user": user.get_username(), "name": name, "prefix": token.prefix},
        )
    return token, secret


def token_revoke(*, actor: AbstractBaseUser | None, token: ApiToken) -> ApiToken:
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if token.revoked_at is not None:
            return token
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
        record(
            actor=actor,
            action="token.revoked",
            obj=token,
            object_type="api_token",
            object_repr=f"{token.prefix}… for {token.user.get_username()}",
            data={"user": token.user.get_username(), "prefix": token.prefix},
        )
    return token
