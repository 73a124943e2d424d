"""Registering a model version: the same artifact again returns the version it made,
numbers come out 1, 2, 3... per model, and the version and its audit event are stored
together (on PostgreSQL in one statement)."""

from contextlib import nullcontext
from functools import cache
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.db import DEFAULT_DB_ALIAS, IntegrityError, connection, connections, transaction

from audits.context import current
from audits.durability import ASYNC_COMMIT, flush_wal
from audits.events import Computed, build
from audits.services import actor_fields, record
from audits.writer import append_statement
from config.rows import Condition, insert_row, quote, table
from registry.errors import NotFound, Unconfirmed
from registry.models import ModelVersion, RegisteredModel
from registry.permissions import ADD_VERSION, require_register
from registry.selectors import registered_model_get


def _claim_version_number(name: str, artifact_sha256: str) -> tuple[int, str, int, int | None]:
    """Lock the model row and advance its version counter, unless this artifact is
    already registered: (model id, name, version number, existing version id).

    One statement, since every registration runs it: the row lock orders concurrent
    registrations of a model, so numbers come out 1, 2, 3... with no gap or duplicate.
    """
    models_table, versions_table = table(RegisteredModel), table(ModelVersion)
    existing = (
        f"(SELECT v.id FROM {versions_table} v"  # noqa: S608
        f" WHERE v.model_id = {models_table}.id AND v.artifact_sha256 = %s)"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {models_table}"  # noqa: S608
            f" SET last_version = last_version + (CASE WHEN {existing} IS NULL THEN 1 ELSE 0 END)"
            f" WHERE name = %s RETURNING id, name, last_version, {existing}",
            [artifact_sha256, name, artifact_sha256],
        )
        row = cursor.fetchone()
    if row is None:
        raise NotFound(f"No model named {name!r}.")
    return row


@cache
def _registration_sql() -> tuple[str, tuple]:
    """The CTEs that claim a number and insert the version, and the fields whose values
    they take as parameters, each cast to its column's type; the model and the number
    come from the claimed row. `{guard}` is left for the audit log's condition."""
    models_table, versions_table = table(RegisteredModel), table(ModelVersion)
    columns, values, fields = [], [], []
    for field in ModelVersion._meta.concrete_fields:
        if field.primary_key:
            continue
        columns.append(quote(field.column))
        if field.name == "model":
            values.append("claimed.id")
        elif field.name == "version":
            values.append("claimed.last_version")
        else:
            values.append(f"%s::{field.cast_db_type(connection)}")
            fields.append(field)
    sql = (
        f"WITH claimed AS (UPDATE {models_table} m SET last_version = m.last_version + 1"  # noqa: S608
        " WHERE m.name = %s AND {guard} AND NOT EXISTS (SELECT 1 FROM"
        f" {versions_table} v WHERE v.model_id = m.id AND v.artifact_sha256 = %s)"
        " RETURNING m.id, m.last_version),"
        f" registered AS (INSERT INTO {versions_table} ({', '.join(columns)})"
        f" SELECT {', '.join(values)} FROM claimed RETURNING id, model_id, version)"
    )
    return sql, tuple(fields)


def _registration_event(
    version: ModelVersion, name: str, *, id: int | Computed, number: int | Computed
) -> dict[str, Any]:
    """model_version.registered, for record() and for the one statement alike: the
    version's id and number are Computed where that statement hands them out."""
    return {
        "action": "model_version.registered",
        "object_type": "model_version",
        "object_id": id,
        "object_repr": (f"{name} v", number),
        "model": name,
        "data": {
            "version": number,
            "artifact_uri": version.artifact_uri,
            "artifact_sha256": version.artifact_sha256,
            "artifact_size": version.artifact_size,
            "framework": version.framework,
            "metrics": version.metrics,
            "lineage": version.lineage,
        },
    }


def _register_in_one_statement(
    version: ModelVersion, name: str, condition: Condition | None = None
) -> ModelVersion | None:
    """PostgreSQL: claim the number, insert the version and append its audit event in
    one statement, which commits or fails as a unit; None when it changed nothing
    (the artifact is registered already, there is no such model, or the audit log has
    no head yet), for the general path.

    Outside a transaction it is a transaction of its own, with no BEGIN or COMMIT to
    send, committed asynchronously and on disk before this returns; inside one, a
    savepoint lets a lost race be answered like a retry. A `condition` is required
    with the audit log's own before the number is claimed.
    """
    actor_name, actor_kind, actor_user_id = actor_fields(version.created_by)
    context = current()
    event = append_statement(
        build(
            actor=actor_name,
            actor_kind=actor_kind,
            actor_user_id=actor_user_id,
            **_registration_event(
                version, name, id=Computed("registered.id"), number=Computed("registered.version")
            ),
            request_id=context.request_id,
            ip=context.ip,
        ),
        after="registered",
        returning="registered.id, registered.model_id, registered.version",
    )
    prefix, fields = _registration_sql()
    # The connection itself, not the proxy, which looks it up on every attribute.
    db = connections[DEFAULT_DB_ALIAS]
    values = [field.get_db_prep_save(field.pre_save(version, True), db) for field in fields]
    guard, guard_params = event.guard, []
    if condition is not None:
        guard, guard_params = f"{guard} AND {condition.sql}", list(condition.params)
    # A transaction of its own commits asynchronously and is flushed before anyone
    # is told: the model's row and the chain head are free for the next registration
    # while the disk syncs (audits.durability).
    own_transaction = not db.in_atomic_block
    if own_transaction:
        guard = f"{guard} AND {ASYNC_COMMIT}"
    sql = f"{prefix.format(guard=guard)}, {event.ctes} {event.final}"
    params = [name, *guard_params, version.artifact_sha256, *values, *event.params]
    savepoint = nullcontext() if own_transaction else transaction.atomic()
    with savepoint, db.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    if row is None:
        return None
    flush_wal()
    version.pk, model_id, version.version = row
    version.model = RegisteredModel.from_db(
        db.alias, ["id", "name", "last_version"], [model_id, name, version.version]
    )
    version._state.adding = False
    version._state.db = db.alias
    return version


def _registered(name: str, artifact_sha256: str) -> ModelVersion | None:
    return (
        ModelVersion.objects.select_related("model", "created_by")
        .filter(model__name=name, artifact_sha256=artifact_sha256)
        .first()
    )


def model_version_register(
    *,
    actor: AbstractBaseUser,
    model: RegisteredModel | str,
    artifact_uri: str,
    artifact_sha256: str,
    artifact_size: int | None = None,
    framework: str = "",
    metrics: dict | None = None,
    params: dict | None = None,
    lineage: dict | None = None,
    card: dict | None = None,
    tags: dict | None = None,
    description: str = "",
    condition: Condition | None = None,
) -> tuple[ModelVersion, bool]:
    """Register a version of a model (given as itself or by name); the same artifact
    again returns the existing version, unchanged.

    On PostgreSQL one statement claims the number, inserts the version and appends
    its event; whatever it leaves undone (a retry, an unknown model, an audit log
    with no head yet) takes the general path, the only one on SQLite.

    With a `condition` (what the actor's credentials must still be), only that
    statement runs, requiring it too: when it registers nothing, Unconfirmed is
    raised and nothing has been read or stored for the actor.

    Returns (version, created).
    """
    if condition is not None and (
        connection.vendor != "postgresql" or not actor.has_perm(ADD_VERSION)
    ):
        raise Unconfirmed("Only a global registrant's one statement can take a condition.")
    name = model if isinstance(model, str) else model.name
    if not actor.has_perm(ADD_VERSION):
        # Owners and those they grant: the model's own permissions decide.
        if isinstance(model, str):
            model = registered_model_get(user=actor, name=name)
        require_register(actor, model)
    version = ModelVersion(
        artifact_uri=artifact_uri,
        artifact_sha256=artifact_sha256,
        artifact_size=artifact_size,
        framework=framework,
        metrics=metrics or {},
        params=params or {},
        lineage=lineage or {},
        card=card or {},
        tags=tags or {},
        description=description,
        created_by=actor,
    )
    if condition is not None:
        try:
            if _register_in_one_statement(version, name, condition) is not None:
                return version, True
        except IntegrityError as exc:
            raise Unconfirmed("The same artifact was registered meanwhile.") from exc
        raise Unconfirmed("Nothing was registered under the condition.")
    if connection.vendor == "postgresql":
        try:
            if _register_in_one_statement(version, name) is not None:
                return version, True
        except IntegrityError:
            # A registration of the same artifact committed after this statement's
            # snapshot was taken: answer with that one, as a retry is answered.
            pass
        existing = _registered(name, artifact_sha256)
        if existing is not None:
            flush_wal()  # it may have been committed asynchronously an instant ago
            return existing, False
    try:
        with transaction.atomic():
            model_id, name, number, existing_id = _claim_version_number(name, artifact_sha256)
            if existing_id is not None:
                return _registered(name, artifact_sha256), False
            version.model = RegisteredModel.from_db(
                connection.alias, ["id", "name", "last_version"], [model_id, name, number]
            )
            version.version = number
            insert_row(version)
            record(
                actor=actor,
                **_registration_event(version, name, id=version.pk, number=number),
            )
    except IntegrityError:
        # A registration of the same artifact committed while this one waited for the
        # row lock, after this statement's snapshot was taken: answer with that one.
        existing = _registered(name, artifact_sha256)
        if existing is None:
            raise
        return existing, False
    return version, True
