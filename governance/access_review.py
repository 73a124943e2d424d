"""The access review: who holds which role, permission and object permission, for a
periodic review of access (as CSV, each export audited like any other)."""

import csv
import io
from collections.abc import Iterator

from django.contrib.auth import get_user_model
from guardian.models import GroupObjectPermission, UserObjectPermission

from audits.chain import format_time
from audits.exports import Chunk, csv_safe
from governance.roles import ROLES
from registry.models import RegisteredModel

KIND = "access_review"
HEADER = (
    "principal_type",
    "principal",
    "is_active",
    "is_staff",
    "is_superuser",
    "last_login",
    "grant",
    "role",
    "permission",
    "object_type",
    "object",
)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def _objects(grants) -> dict[tuple[int, str], tuple[str, str]]:
    """(content type id, object pk) -> (object type, name), in one query per type."""
    model_type = None
    pks: set[str] = set()
    for grant in grants:
        if grant.content_type.model_class() is RegisteredModel:
            model_type = grant.content_type_id
            pks.add(grant.object_pk)
    names = dict(
        RegisteredModel.objects.filter(pk__in=[int(pk) for pk in pks]).values_list("pk", "name")
    )
    return {(model_type, str(pk)): ("registered_model", name) for pk, name in names.items()}


def _object_rows(facts: tuple, grants, objects) -> list[tuple]:
    rows = []
    for grant in grants:
        perm = grant.permission
        kind, name = objects.get(
            (grant.content_type_id, grant.object_pk),
            (grant.content_type.model, grant.object_pk),
        )
        rows.append(
            (
                *facts,
                "object_permission",
                "",
                f"{perm.content_type.app_label}.{perm.codename}",
                kind,
                name,
            )
        )
    return sorted(rows)


def access_review_rows() -> list[tuple[str, ...]]:
    """Every user (with their roles, other groups, direct permissions, object
    permissions and superuser status; a user with none of them gets a row saying so),
    then every group's object permissions."""
    User = get_user_model()
    user_grants = list(
        UserObjectPermission.objects.select_related("permission__content_type", "content_type")
    )
    group_grants = list(
        GroupObjectPermission.objects.select_related(
            "group", "permission__content_type", "content_type"
        )
    )
    objects = _objects(user_grants + group_grants)
    by_user: dict[int, list] = {}
    for grant in user_grants:
        by_user.setdefault(grant.user_id, []).append(grant)

    rows: list[tuple[str, ...]] = []
    users = User.objects.order_by(User.USERNAME_FIELD).prefetch_related(
        "groups", "user_permissions__content_type"
    )
    for user in users:
        facts = (
            "user",
            user.get_username(),
            _flag(user.is_active),
            _flag(user.is_staff),
            _flag(user.is_superuser),
            format_time(user.last_login) if user.last_login else "",
        )
        own: list[tuple[str, ...]] = []
        if user.is_superuser:
            own.append((*facts, "superuser", "", "", "", ""))
        groups = sorted(group.name for group in user.groups.all())
        own += [(*facts, "role", name, "", "", "") for name in groups if name in ROLES]
        own += [(*facts, "group", name, "", "", "") for name in groups if name not in ROLES]
        own += sorted(
            (*facts, "permission", "", f"{p.content_type.app_label}.{p.codename}", "", "")
            for p in user.user_permissions.all()
        )
        own += _object_rows(facts, by_user.get(user.pk, []), objects)
        rows += own or [(*facts, "none", "", "", "", "")]

    by_group: dict[str, list] = {}
    for grant in group_grants:
        by_group.setdefault(grant.group.name, []).append(grant)
    for name in sorted(by_group):
        rows += _object_rows(("group", name, "", "", "", ""), by_group[name], objects)
    return rows


def access_review_chunks() -> Iterator[Chunk]:
    """The review as CSV; a username or group name that a spreadsheet would run as a
    formula is written with a leading apostrophe, as in the audit's CSV exports."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(HEADER)
    rows = access_review_rows()
    writer.writerows([csv_safe(cell) for cell in row] for row in rows)
    yield buffer.getvalue().encode("utf-8"), len(rows), None, None
