"""Roles, users and API tokens: each change audited in its own transaction."""

import secrets
from datetime import timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Group, Permission
from django.db import transaction
from django.utils import timezone

from audits.chain import format_time
from audits.services import record
from governance.authentication import hash_token
from governance.errors import TokenForbidden
from governance.models import ApiToken
from governance.roles import (
    ROLE_PERMISSIONS,
    ROLES,
    SERVICE_ROLES,
    STAFF_ROLES,
    is_admin,
    is_service_account,
)
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


def token_create_check(*, actor: AbstractBaseUser | None, user: AbstractBaseUser) -> None:
    """Raise TokenForbidden unless the actor may make a token for the user.

    A person acts with their own tokens only: anyone makes tokens for themselves, and
    a token for another account is a service account's, made by an admin. Otherwise an
    admin could act as a reviewer (and approve their own request) with a token made
    for the reviewer. The operator on the server (actor None) makes any."""
    if actor is None or actor.pk == user.pk:
        return
    name = user.get_username()
    if not is_admin(actor):
        raise TokenForbidden(f"You may create API tokens only for yourself, not for {name}.")
    if user.is_superuser:
        raise TokenForbidden(f"Only {name} creates API tokens for {name}, a superuser.")
    if not is_service_account(user):
        raise TokenForbidden(
            f"{name} is a person, who creates their own API tokens; admins create them "
            f"only for {', '.join(SERVICE_ROLES)} accounts."
        )


def token_lifetime(expires_in_days: int | None) -> timedelta:
    longest = settings.API_TOKEN_MAX_LIFETIME_DAYS
    if expires_in_days is None:
        return timedelta(days=min(settings.API_TOKEN_LIFETIME_DAYS, longest))
    if not 1 <= expires_in_days <= longest:
        raise InvalidInput(
            f"A token lives 1 to {longest} days.",
            errors={"expires_in_days": [f"Between 1 and {longest}."]},
        )
    return timedelta(days=expires_in_days)


def token_create(
    *,
    actor: AbstractBaseUser | None,
    user: AbstractBaseUser,
    name: str = "",
    expires_in_days: int | None = None,
    made_with: ApiToken | None = None,
) -> tuple[ApiToken, str]:
    """Return the token row and its secret; the secret is not stored and is shown once.

    `made_with` is the token the actor authenticated with, if any: the new one expires
    no later than it, so a token never mints itself a longer life."""
    lifetime = token_lifetime(expires_in_days)
    secret = "mg_" + secrets.token_urlsafe(32)
    with transaction.atomic():
        token_create_check(actor=actor, user=user)
        expires_at = timezone.now() + lifetime
        if made_with is not None:
            limit = ApiToken.objects.values_list("expires_at", flat=True).get(pk=made_with.pk)
            expires_at = min(expires_at, limit)
        token = ApiToken.objects.create(
            user=user,
            name=name,
            key_hash=hash_token(secret),
            prefix=secret[:10],
            expires_at=expires_at,
        )
        record(
            actor=actor,
            action="token.created",
            obj=token,
            object_type="api_token",
            object_repr=f"{token.prefix}… for {user.get_username()}",
            data={
                "user": user.get_username(),
                "name": name,
                "prefix": token.prefix,
                "expires_at": format_time(expires_at),
            },
        )
    return token, secret


def token_revoke(*, actor: AbstractBaseUser | None, token: ApiToken) -> ApiToken:
    """Revoke a token: one's own, or any as an admin or the operator (actor None)."""
    with transaction.atomic():
        token = ApiToken.objects.select_for_update().select_related("user").get(pk=token.pk)
        if actor is not None and actor.pk != token.user_id and not is_admin(actor):
            raise TokenForbidden("You may revoke only your own API tokens.")
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
