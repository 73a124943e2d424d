"""The bulk import path: many events appended to the chain in one transaction.

For imports from another system and for filling a database to measure the log at
scale. Each event is built as record() builds it (audits.events) and written by the
same writer (audits.writer), which locks the chain head once, loads the rows with
PostgreSQL's COPY (bulk_create elsewhere) and moves the head to the last event before
the transaction commits. A failure anywhere rolls the whole batch back, leaving the
chain as it was.
"""

from collections.abc import Iterable, Mapping
from typing import Any

from django.db import transaction

from audits.events import Event, build
from audits.writer import append, lock_head


def imported(event: Mapping[str, Any]) -> Event:
    """An event given as a mapping with actor, action, object_type and object_id, and
    optionally actor_kind (default "system" for the actor "system", else "user"),
    actor_user_id, object_repr, model, data, request_id, ip and occurred_at.

    occurred_at (an aware datetime) is the time the event happened in the system it
    comes from; without it, the database's clock dates it as it does every other.
    Either way it may not be earlier than the event before it in the chain.
    """
    actor = event["actor"]
    return build(
        actor=actor,
        actor_kind=event.get("actor_kind") or ("system" if actor == "system" else "user"),
        actor_user_id=event.get("actor_user_id"),
        action=event["action"],
        object_type=event["object_type"],
        object_id=event["object_id"],
        object_repr=event.get("object_repr"),
        model=event.get("model"),
        data=event.get("data"),
        request_id=event.get("request_id"),
        ip=event.get("ip"),
        occurred_at=event.get("occurred_at"),
    )


def append_events(events: Iterable[Mapping[str, Any]]) -> tuple[int, str]:
    """Append `events` to the chain in one transaction; returns the new head (seq, hash)."""
    with transaction.atomic():
        last = append(imported(event) for event in events)
        if last is None:
            head = lock_head()
            return head.seq, head.hash
    return last.seq, last.hash
