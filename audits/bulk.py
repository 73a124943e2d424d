"""The bulk import path: many events appended to the chain in one transaction.

For imports from another system and for filling a database to measure the log at
scale. The chain head is locked once, each event is hashed exactly as record()
hashes it, the rows are loaded with PostgreSQL's COPY (bulk_create elsewhere) and
the head is moved to the last event before the transaction commits. A failure
anywhere rolls the whole batch back, leaving the chain as it was.
"""

import json
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from audits.chain import compute_hash, format_time
from audits.models import AuditEvent, ChainHead
from audits.services import lock_head, normalise

COLUMNS = (
    "seq",
    "occurred_at",
    "actor",
    "actor_user_id",
    "actor_kind",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "model",
    "data",
    "request_id",
    "ip",
    "prev_hash",
    "hash",
)


def chained_rows(events: Iterable[Mapping[str, Any]], *, after: tuple[int, str]) -> Iterator[tuple]:
    """(COLUMNS) tuples for `events`, numbered and chained on from `after` (seq, hash).

    Each event is a mapping with actor, action, object_type and object_id, and
    optionally actor_kind (default "system" for the actor "system", else "user"),
    actor_user_id, object_repr, model, data, request_id, ip and occurred_at (an aware
    datetime; default now). `data` becomes the JSON text of the column.
    """
    seq, prev_hash = after
    for event in events:
        seq += 1
        occurred_at: datetime = event.get("occurred_at") or timezone.now()
        actor = event["actor"]
        payload = normalise(event.get("data") or {})
        body = {
            "seq": seq,
            "occurred_at": format_time(occurred_at),
            "actor": actor,
            "actor_kind": event.get("actor_kind") or ("system" if actor == "system" else "user"),
            "action": event["action"],
            "object_type": event["object_type"],
            "object_id": str(event["object_id"]),
            "object_repr": (event.get("object_repr") or "")[:200],
            "model": event.get("model"),
            "data": payload,
            "request_id": event.get("request_id"),
            "ip": event.get("ip"),
        }
        digest = compute_hash(prev_hash, body)
        yield (
            seq,
            occurred_at,
            actor,
            event.get("actor_user_id"),
            body["actor_kind"],
            body["action"],
            body["object_type"],
            body["object_id"],
            body["object_repr"],
            body["model"],
            payload,
            body["request_id"],
            body["ip"],
            prev_hash,
            digest,
        )
        prev_hash = digest


def append_events(
    events: Iterable[Mapping[str, Any]], *, batch_size: int = 5000
) -> tuple[int, str]:
    """Append `events` to the chain in one transaction; returns the new head (seq, hash)."""
    with transaction.atomic():
        head = lock_head()
        rows = chained_rows(events, after=(head.seq, head.hash))
        last = (head.seq, head.hash)
        if connection.vendor == "postgresql":
            last = _copy(rows, last)
        else:
            last = _bulk_create(rows, last, batch_size=batch_size)
        ChainHead.objects.filter(pk=1).update(seq=last[0], hash=last[1])
    return last


def _copy(rows: Iterator[tuple], last: tuple[int, str]) -> tuple[int, str]:
    data = COLUMNS.index("data")
    statement = f"COPY {AuditEvent._meta.db_table} ({', '.join(COLUMNS)}) FROM STDIN"
    with connection.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            # jsonb takes the JSON text; the row's other values adapt as usual.
            copy.write_row((*row[:data], json.dumps(row[data]), *row[data + 1 :]))
            last = (row[0], row[-1])
    return last


def _bulk_create(rows: Iterator[tuple], last: tuple[int, str], *, batch_size: int):
    batch: list[AuditEvent] = []
    for row in rows:
        batch.append(AuditEvent(**dict(zip(COLUMNS, row, strict=True))))
        last = (row[0], row[-1])
        if len(batch) >= batch_size:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    return last
