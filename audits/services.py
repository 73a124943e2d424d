"""record(): one audited change's event, built by audits.events and written by
audits.writer; the records of exports and checkpoints."""

import re
import uuid
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import models, transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from audits.chain import format_time
from audits.context import current
from audits.events import build
from audits.models import ActorKind, AuditCheckpoint, AuditEvent, AuditExport
from audits.signing import sign_document
from audits.writer import append, lock_head

CHECKPOINT_KIND = "audit_checkpoint"

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def object_type_of(obj: models.Model) -> str:
    return _CAMEL.sub("_", type(obj).__name__).lower()


def _service_groups() -> tuple[str, ...]:
    return tuple(getattr(settings, "AUDIT_SERVICE_GROUPS", ("ci",)))


def remember_actor_kind(actor, group_names) -> None:
    """Record whether a user acts as a service, from group names already at hand,
    so that record() need not ask the database."""
    is_service = not set(_service_groups()).isdisjoint(group_names)
    actor._audit_actor_kind = ActorKind.SERVICE if is_service else ActorKind.USER


def actor_fields(actor) -> tuple[str, str, int | None]:
    if actor is None:
        return "system", ActorKind.SYSTEM, None
    kind = getattr(actor, "_audit_actor_kind", None)
    if kind is None:
        is_service = actor.groups.filter(name__in=_service_groups()).exists()
        kind = ActorKind.SERVICE if is_service else ActorKind.USER
        actor._audit_actor_kind = kind
    return actor.get_username(), kind, actor.pk


def record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    object_repr: str | tuple[str, int] | None = None,
    model: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    The event is built by audits.events and written by audits.writer, which locks the
    head row last and holds it only to commit, so concurrent writers queue on it in
    commit order: seq has no gap (a rolled-back writer releases the lock without
    having advanced the head) and the chain never forks. Its time is the database's.
    """
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("audits.record() must be called inside transaction.atomic()")
    if obj is not None:
        object_type = object_type or object_type_of(obj)
        object_id = obj.pk if object_id is None else object_id
        object_repr = object_repr if object_repr is not None else str(obj)
    if not object_type or object_id is None:
        raise ValueError("record() needs obj, or object_type and object_id")
    actor_name, actor_kind, actor_user_id = actor_fields(actor)
    context = current()
    event = build(
        actor=actor_name,
        actor_kind=actor_kind,
        actor_user_id=actor_user_id,
        action=action,
        object_type=object_type,
        object_id=object_id,
        object_repr=object_repr,
        model=model,
        data=data,
        request_id=context.request_id,
        ip=context.ip,
    )
    return append([event])


def audit_export_create(
    *,
    actor,
    export_id: uuid.UUID,
    kind: str,
    format: str,
    filters: dict[str, Any],
    rows: int,
    first_seq: int | None,
    last_seq: int | None,
    head: tuple[int, str],
    sha256: str,
    started_at: datetime,
    complete: bool = True,
    extra: dict[str, Any] | None = None,
) -> AuditExport:
    """Sign the manifest of an export that has been sent, store it and record
    audit.exported, in one transaction."""
    finished_at = timezone.now()
    actor_name = actor_fields(actor)[0]
    manifest = sign_document(
        {
            "kind": kind,
            "export_id": str(export_id),
            "format": format,
            "filters": filters,
            "rows": rows,
            "first_seq": first_seq,
            "last_seq": last_seq,
            "head_seq": head[0],
            "head_hash": head[1],
            "sha256": sha256,
            "complete": complete,
            "exported_by": actor_name,
            "started_at": format_time(started_at),
            "finished_at": format_time(finished_at),
            **(extra or {}),
        }
    )
    with transaction.atomic():
        event = record(
            actor=actor,
            action="audit.exported",
            object_type="audit_export",
            object_id=str(export_id),
            object_repr=f"{kind} as {format}",
            model=filters.get("model"),
            data={k: v for k, v in manifest.items() if k not in ("public_key", "signature")},
        )
        return AuditExport.objects.create(
            id=export_id,
            kind=kind,
            format=format,
            actor=actor_name,
            actor_user_id=getattr(actor, "pk", None),
            created_at=finished_at,
            manifest=manifest,
            event_seq=event.seq,
        )


def audit_checkpoint_create(*, actor=None) -> AuditCheckpoint:
    """Sign the chain head as it stands and record audit.checkpointed.

    The head is read under its lock, so the checkpoint names an event that exists and
    the audit.checkpointed event that follows it is the next one in the chain."""
    with transaction.atomic():
        head = lock_head()
        document = sign_document(
            {
                "kind": CHECKPOINT_KIND,
                "seq": head.seq,
                "hash": head.hash,
                "created_at": format_time(timezone.now()),
            }
        )
        checkpoint = AuditCheckpoint.objects.create(
            seq=document["seq"],
            hash=document["hash"],
            created_at=parse_datetime(document["created_at"]),
            key_id=document["key_id"],
            public_key=document["public_key"],
            signature=document["signature"],
        )
        record(
            actor=actor,
            action="audit.checkpointed",
            obj=checkpoint,
            object_type="audit_checkpoint",
            object_repr=f"chain head at seq {head.seq}",
            data={
                "seq": head.seq,
                "hash": head.hash,
                "key_id": document["key_id"],
                "signature": document["signature"],
            },
        )
    return checkpoint


def checkpoint_document(checkpoint: AuditCheckpoint) -> dict[str, Any]:
    """The checkpoint as it was signed: what to keep outside the database."""
    return {
        "kind": CHECKPOINT_KIND,
        "seq": checkpoint.seq,
        "hash": checkpoint.hash,
        "created_at": format_time(checkpoint.created_at),
        "key_id": checkpoint.key_id,
        "public_key": checkpoint.public_key,
        "signature": checkpoint.signature,
    }
