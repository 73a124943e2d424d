"""record(): the one writer of the audit log."""

import json
import re
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from audits.chain import compute_hash, format_time
from audits.context import current
from audits.models import ActorKind, AuditEvent, ChainHead

_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def object_type_of(obj: models.Model) -> str:
    return _CAMEL.sub("_", type(obj).__name__).lower()


def actor_fields(actor) -> tuple[str, str, int | None]:
    if actor is None:
        return "system", ActorKind.SYSTEM, None
    kind = getattr(actor, "_audit_actor_kind", None)
    if kind is None:
        service_groups = getattr(settings, "AUDIT_SERVICE_GROUPS", ("ci",))
        is_service = actor.groups.filter(name__in=service_groups).exists()
        kind = ActorKind.SERVICE if is_service else ActorKind.USER
        actor._audit_actor_kind = kind
    return actor.get_username(), kind, actor.pk


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so the hash covers exactly what the JSON column returns
    # (dates become strings, tuples lists); NaN has no JSON form and is refused.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False))


def _lock_head() -> ChainHead:
    head = ChainHead.objects.select_for_update().filter(pk=1).first()
    if head is None:
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        head = ChainHead.objects.select_for_update().get(pk=1)
    return head


def record(
    *,
    actor,
    action: str,
    obj: models.Model | None = None,
    object_type: str | None = None,
    object_id: str | int | None = None,
    object_repr: str | None = None,
    model: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event to the chain, inside the caller's transaction.

    The head row is locked last and held only to commit, so concurrent writers queue
    on it in commit order: seq has no gap (a rolled-back writer releases the lock
    without having advanced the head) and the chain never forks.
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
    payload = _normalise(data or {})

    head = _lock_head()
    seq = head.seq + 1
    occurred_at = timezone.now()
    body = {
        "seq": seq,
        "occurred_at": format_time(occurred_at),
        "actor": actor_name,
        "actor_kind": str(actor_kind),
        "action": action,
        "object_type": object_type,
        "object_id": str(object_id),
        "object_repr": (object_repr or "")[:200],
        "model": model,
        "data": payload,
        "request_id": context.request_id,
        "ip": context.ip,
    }
    digest = compute_hash(head.hash, body)
    event = AuditEvent.objects.create(
        seq=seq,
        occurred_at=occurred_at,
        actor=actor_name,
        actor_user_id=actor_user_id,
        actor_kind=actor_kind,
        action=action,
        object_type=object_type,
        object_id=body["object_id"],
        object_repr=body["object_repr"],
        model=model,
        data=payload,
        request_id=context.request_id,
        ip=context.ip,
        prev_hash=head.hash,
        hash=digest,
    )
    ChainHead.objects.filter(pk=1).update(seq=seq, hash=digest)
    return event
