import hashlib
import threading
import time
from dataclasses import dataclass
from datetime import timedelta
from functools import cache

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.db.models import Q
from django.db.models.functions import Now
from django.utils.translation import gettext_lazy as _
from rest_framework import authentication, exceptions

from audits.services import remember_actor_kind
from config.rows import Condition, quote, table
from governance.models import ApiToken, CredentialEpoch

KEYWORDS = ("bearer", "token")


def hash_token(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@cache
def _token_query() -> tuple[str, tuple[str, ...]]:
    """One statement for the token's user, its groups and its permissions.

    Django would take four (the token with its user, the user's permissions, its
    groups' permissions, and its groups for the audit's actor kind); every API call
    pays for them, so they come back as rows of one UNION instead: the token row
    with the user's columns, then ("role", group name), ("group", app, codename) and
    ("user", app, codename) rows.
    """
    user_model = get_user_model()
    user_fields = list(user_model._meta.concrete_fields)
    user_groups = user_model.groups.field
    user_perms = user_model.user_permissions.field
    group_perms = Group.permissions.field
    holder = (
        f"(SELECT k.user_id FROM {table(ApiToken)} k"  # noqa: S608
        f" WHERE k.key_hash = %s AND {_usable('k')})"
    )
    ug, ug_user, ug_group = (
        table(user_groups.remote_field.through),
        quote(user_groups.m2m_column_name()),
        quote(user_groups.m2m_reverse_name()),
    )
    gp, gp_group, gp_perm = (
        table(group_perms.remote_field.through),
        quote(group_perms.m2m_column_name()),
        quote(group_perms.m2m_reverse_name()),
    )
    up, up_user, up_perm = (
        table(user_perms.remote_field.through),
        quote(user_perms.m2m_column_name()),
        quote(user_perms.m2m_reverse_name()),
    )
    perm, content_type = table(Permission), table(ContentType)
    columns = ", ".join(f"u.{quote(field.column)}" for field in user_fields)
    no_user = ", ".join(["NULL"] * len(user_fields))
    epoch = f"CAST({_epoch_sql()} AS TEXT)"
    sql = f"""
        SELECT 'token', t.id, NULL, {epoch}, {columns}
          FROM {table(ApiToken)} t
          JOIN {table(user_model)} u ON u.{quote(user_model._meta.pk.column)} = t.user_id
         WHERE t.key_hash = %s AND {_usable("t")}
        UNION ALL
        SELECT 'role', NULL, g.name, NULL, {no_user}
          FROM {ug} ug JOIN {table(Group)} g ON g.id = ug.{ug_group}
         WHERE ug.{ug_user} = {holder}
        UNION ALL
        SELECT 'group', NULL, ct.app_label, p.codename, {no_user}
          FROM {ug} ug
          JOIN {gp} gp ON gp.{gp_group} = ug.{ug_group}
          JOIN {perm} p ON p.id = gp.{gp_perm}
          JOIN {content_type} ct ON ct.id = p.content_type_id
         WHERE ug.{ug_user} = {holder}
        UNION ALL
        SELECT 'user', NULL, ct.app_label, p.codename, {no_user}
          FROM {up} up
          JOIN {perm} p ON p.id = up.{up_perm}
          JOIN {content_type} ct ON ct.id = p.content_type_id
         WHERE up.{up_user} = {holder}
    """  # noqa: S608
    return sql, tuple(field.attname for field in user_fields)


def user_for_token(secret: str):
    """(user, token) for an unrevoked, unexpired token of an active user, with the
    user's permissions loaded; (None, None) otherwise."""
    sql, attnames = _token_query()
    with connection.cursor() as cursor:
        cursor.execute(sql, [hash_token(secret)] * 4)
        rows = cursor.fetchall()
    found = next((row for row in rows if row[0] == "token"), None)
    if found is None:
        return None, None
    user = get_user_model().from_db(connection.alias, attnames, found[4:])
    if not user.is_active:
        return None, None
    roles, granted = set(), {"user": set(), "group": set()}
    for kind, _token_id, a, b, *_user in rows:
        if kind == "role":
            roles.add(a)
        elif kind != "token":
            granted[kind].add(f"{a}.{b}")
    if not user.is_superuser:
        # The caches ModelBackend fills on first use (a superuser holds every
        # permission, and ModelBackend lists them all from the table).
        user._user_perm_cache = granted["user"]
        user._group_perm_cache = granted["group"]
        user._perm_cache = granted["user"] | granted["group"]
    remember_actor_kind(user, roles)
    token = ApiToken.from_db(connection.alias, ["id", "user_id"], [found[1], user.pk])
    token.user = user
    # The credential epoch read in the same snapshot as the rows above.
    token.epoch = int(found[3])
    return user, token


def token_secret(request) -> str | None:
    """The secret of an `Authorization: Bearer|Token SECRET` header; None when the
    request carries no token. Raises AuthenticationFailed for a malformed one."""
    # META directly: DRF's get_authorization_header() builds request.headers, a copy
    # of every header, for the one it reads.
    header = request.META.get("HTTP_AUTHORIZATION", "").encode("latin-1").split()
    if not header or header[0].decode("latin-1").lower() not in KEYWORDS:
        return None
    if len(header) != 2:
        raise exceptions.AuthenticationFailed(_("Malformed Authorization header."))
    try:
        return header[1].decode("ascii")
    except UnicodeDecodeError as exc:
        raise exceptions.AuthenticationFailed(_("Invalid token.")) from exc


@dataclass(frozen=True)
class Remembered:
    """What a token authenticated as, and the credential epoch read with it."""

    key_hash: str
    user: object
    token: ApiToken
    epoch: int

    @property
    def still_valid(self) -> Condition:
        """SQL that holds while the token is unrevoked and unexpired and no credential
        has changed since it was authenticated (every change to the user, its groups
        and its permissions moves the epoch on)."""
        return Condition(_still_valid_sql(), (self.token.pk, self.epoch))


def _usable(alias: str) -> str:
    """SQL that holds for an unrevoked token that has not expired by the database's
    clock (web hosts' clocks may disagree; the database's is the one every worker
    shares). As Django's Now() reads it; `%` doubled for a statement with parameters."""
    if connection.vendor == "sqlite":
        now = "STRFTIME('%%Y-%%m-%%d %%H:%%M:%%f', 'NOW')"
    else:
        now = "STATEMENT_TIMESTAMP()"
    return f"{alias}.revoked_at IS NULL AND {alias}.expires_at > {now}"


def _epoch_sql() -> str:
    """The credential epoch; 0 while its row is missing (the trigger that recreates it
    starts from the clock, so 0 never comes back)."""
    return f"COALESCE((SELECT e.value FROM {table(CredentialEpoch)} e WHERE e.id = 1), 0)"  # noqa: S608


@cache
def _still_valid_sql() -> str:
    return (
        f"EXISTS (SELECT 1 FROM {table(ApiToken)} k"  # noqa: S608
        f" WHERE k.id = %s AND {_usable('k')}) AND {_epoch_sql()} = %s"
    )


class RememberedTokens:
    """Tokens this process authenticated lately, by their hash, for a caller that acts
    on one only in a statement requiring `Remembered.still_valid` and forgets it
    when that statement does nothing. At most `size` are kept; the oldest goes first.
    """

    def __init__(self, size: int = 256):
        self.size = size
        self._by_hash: dict[str, Remembered] = {}
        # A gthread worker's threads share this memory: iterating for the oldest entry
        # while another thread changes the dict would raise.
        self._lock = threading.Lock()

    def get(self, secret: str) -> Remembered | None:
        return self._by_hash.get(hash_token(secret))

    def remember(self, secret: str, user, token) -> None:
        epoch = getattr(token, "epoch", None)
        if epoch is None or connection.vendor != "postgresql":
            return  # no trigger moves the epoch here: nothing could tell a memory is stale
        key_hash = hash_token(secret)
        with self._lock:
            self._by_hash.pop(key_hash, None)
            while len(self._by_hash) >= self.size:
                self._by_hash.pop(next(iter(self._by_hash)), None)
            self._by_hash[key_hash] = Remembered(key_hash, user, token, epoch)

    def forget(self, remembered: Remembered) -> None:
        with self._lock:
            if self._by_hash.get(remembered.key_hash) is remembered:
                self._by_hash.pop(remembered.key_hash, None)

    def clear(self) -> None:
        with self._lock:
            self._by_hash.clear()


class TokenUses:
    """When this process last recorded each token's use.

    Each process writes a token's `last_used_at` at most once per
    API_TOKEN_LAST_USE_INTERVAL seconds, and only over a stored value older than that,
    so most requests write nothing and all processes together write it about once per
    interval. The write moves no credential epoch (governance.epoch)."""

    def __init__(self, size: int = 4096):
        self.size = size
        self._written: dict[int, float] = {}
        self._lock = threading.Lock()  # shared by a gthread worker's threads

    def record(self, token_id: int) -> None:
        interval = settings.API_TOKEN_LAST_USE_INTERVAL
        now = time.monotonic()
        with self._lock:
            written = self._written.pop(token_id, None)
            if written is not None and now - written < interval:
                self._written[token_id] = written
                return
            while len(self._written) >= self.size:
                # The oldest first; forgetting one early costs one write that finds
                # nothing to change.
                self._written.pop(next(iter(self._written)), None)
            self._written[token_id] = now
        stale = Q(last_used_at__isnull=True) | Q(
            last_used_at__lt=Now() - timedelta(seconds=interval)
        )
        ApiToken.objects.filter(stale, pk=token_id).update(last_used_at=Now())

    def clear(self) -> None:
        with self._lock:
            self._written.clear()


class ApiTokenAuthentication(authentication.BaseAuthentication):
    """`Authorization: Bearer TOKEN` or `Authorization: Token TOKEN`."""

    keywords = KEYWORDS

    def authenticate(self, request):
        secret = token_secret(request)
        if secret is None:
            return None
        user, token = user_for_token(secret)
        if user is None:
            raise exceptions.AuthenticationFailed(_("Invalid, expired or revoked token."))
        token_uses.record(token.pk)
        return user, token

    def authenticate_header(self, request):
        return 'Bearer realm="modelgov"'


# Registrations by token (registry.api.views) act on these; see RememberedTokens.
remembered_tokens = RememberedTokens()
token_uses = TokenUses()
