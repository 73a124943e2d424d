"""The one writer of the audit log: every AuditEvent row is inserted by this module.

Events come built by audits.events; here they are numbered, timed and chained under a
lock on the chain-head row, inside the caller's transaction, and stored:

- append(): what Python appends, one event (record()) or many (the bulk import,
  loaded with PostgreSQL's COPY);
- append_statement(): the same append as SQL, for a change PostgreSQL makes in one
  statement (a registration), whose event names values only that statement knows.

The head is locked last and held only to commit, so concurrent writers queue on it in
commit order: seq has no gap (a rolled-back writer releases the lock without having
moved the head) and the chain never forks.

occurred_at is the database's clock, read by the statement that locks the head, and
never earlier than the last event's, which the head keeps: a web host whose clock is
wrong cannot date an event, and time never runs backwards along seq.
"""

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from itertools import chain
from typing import Any, NamedTuple

from django.db import DEFAULT_DB_ALIAS, connection

from audits.chain import BODY_FIELDS, format_time
from audits.events import Computed, Event, Fragment, Spliced, fragments
from audits.models import AuditEvent, ChainHead
from config.rows import for_update, insert_row, quote, table

# The body's fields in their order, the acting user's row beside the actor's name, and
# the chain's two hashes.
COLUMNS = (
    *BODY_FIELDS[: BODY_FIELDS.index("actor") + 1],
    "actor_user_id",
    *BODY_FIELDS[BODY_FIELDS.index("actor") + 1 :],
    "prev_hash",
    "hash",
)
_DATA = COLUMNS.index("data")
_BATCH = 5000


class Head(NamedTuple):
    """The chain head, locked: the last event's seq, hash and time, and the database's
    clock as the lock was granted, never before that time."""

    seq: int
    hash: str
    occurred_at: datetime | None
    clock: datetime


# The clock is read in the statement that takes the lock: no round trip of its own.
# PostgreSQL recomputes what a FOR UPDATE read selects when it had to wait for the
# row and the holder changed it, so both times are those of the head it was granted.
# SQLite's 'now' has milliseconds; the zeros spell it as Django stores a datetime.
_CLOCK = {
    "postgresql": "greatest(clock_timestamp(), occurred_at)",
    "sqlite": "max(strftime('%Y-%m-%d %H:%M:%f000', 'now'), coalesce(occurred_at, ''))",
}


def _as_time(value) -> datetime | None:
    # SQLite gives a column as a naive datetime and an expression as text, both UTC.
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if value is not None and value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


def lock_head() -> Head:
    head = _locked_head()
    if head is None:
        ChainHead.objects.bulk_create([ChainHead(pk=1)], ignore_conflicts=True)
        head = _locked_head()
    return head


def _locked_head() -> Head | None:
    # Every audited change runs this; a statement built once costs a fraction of the ORM's.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT seq, hash, occurred_at, {_CLOCK[connection.vendor]}"  # noqa: S608
            f" FROM {table(ChainHead)} WHERE id = 1{for_update()}"
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return Head(row[0], row[1], _as_time(row[2]), _as_time(row[3]))


def _rows(events: Iterable[Event], head: Head) -> Iterator[tuple]:
    seq, prev_hash, last_at = head.seq, head.hash, head.occurred_at
    for event in events:
        seq += 1
        at = event.occurred_at or head.clock
        if last_at is not None and at < last_at:
            raise ValueError(
                f"An event at {format_time(at)} would follow one at {format_time(last_at)}:"
                " occurred_at never runs backwards along seq."
            )
        digest = event.hash(prev_hash, seq, at)
        yield (
            seq,
            at,
            event.actor,
            event.actor_user_id,
            event.actor_kind,
            event.action,
            event.object_type,
            event.object_id,
            event.object_repr,
            event.model,
            event.data,
            event.request_id,
            event.ip,
            prev_hash,
            digest,
        )
        prev_hash, last_at = digest, at


def append(events: Iterable[Event]) -> AuditEvent | None:
    """Append `events` to the chain inside the caller's transaction; the last event
    written, or None when there was none."""
    if not connection.in_atomic_block:
        raise RuntimeError("the audit log is appended to inside transaction.atomic()")
    head = lock_head()
    rows = _rows(events, head)
    first = next(rows, None)
    if first is None:
        return None
    second = next(rows, None)
    if second is None:
        last = _event(first)
        insert_row(last)
    else:
        last = _event(_load(chain((first, second), rows)))
    at_field = ChainHead._meta.get_field("occurred_at")
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {table(ChainHead)} SET seq = %s, hash = %s, occurred_at = %s"  # noqa: S608
            " WHERE id = 1",
            [last.seq, last.hash, at_field.get_db_prep_save(last.occurred_at, connection)],
        )
    return last


def _event(row: tuple) -> AuditEvent:
    return AuditEvent(**dict(zip(COLUMNS, row, strict=True)))


def _load(rows: Iterator[tuple]) -> tuple:
    """Store many rows: COPY on PostgreSQL, batches of bulk_create elsewhere; the last."""
    last = None
    if connection.vendor == "postgresql":
        statement = f"COPY {table(AuditEvent)} ({', '.join(COLUMNS)}) FROM STDIN"
        with connection.cursor() as cursor, cursor.copy(statement) as copy:
            for row in rows:
                # jsonb takes the JSON text; the row's other values adapt as usual.
                copy.write_row((*row[:_DATA], json.dumps(row[_DATA]), *row[_DATA + 1 :]))
                last = row
        return last
    batch: list[AuditEvent] = []
    for row in rows:
        batch.append(_event(row))
        last = row
        if len(batch) >= _BATCH:
            AuditEvent.objects.bulk_create(batch)
            batch = []
    if batch:
        AuditEvent.objects.bulk_create(batch)
    return last


# -- The same append, as SQL ------------------------------------------------------------


@dataclass(frozen=True)
class EventStatement:
    """The CTEs that append the event, to follow the caller's own CTEs, and the final
    UPDATE of the chain head, which returns `returning`; params in text order.

    `guard` is a condition the caller's first change must require: without a chain
    head row (a fresh database; record() creates it) the change would be made and
    no event written, so the change must then not happen either."""

    ctes: str
    final: str
    params: list[Any]
    guard: str


SEQ = Computed("audit_head.seq")
# audits.chain.format_time, in to_char: digits and fixed characters, nothing to escape.
OCCURRED_AT = Computed(
    "to_char(audit_head.at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
)


def _concat(pieces: list[Fragment], params: list[Any]) -> str:
    """SQL text that spells the fragments: literal text bound, computed values cast."""
    parts = []
    for piece in pieces:
        if piece == "":
            continue
        if isinstance(piece, Computed):
            parts.append(f"({piece.expression})::text")
        else:
            params.append(piece)
            parts.append("%s::text")
    return " || ".join(parts) if parts else "''"


def _text(value: str | Spliced, params: list[Any]) -> str:
    if isinstance(value, Spliced):
        return _concat([value.prefix, value.value], params)
    params.append(value)
    return "%s::text"


@cache
def _names(alias: str) -> tuple[str, str, str, str, str, str]:
    """The head's and the log's tables, the event's columns in COLUMNS order, and its
    seq, occurred_at and hash columns, quoted."""
    column = {field.name: quote(field.column, alias) for field in AuditEvent._meta.concrete_fields}
    return (
        table(ChainHead, alias),
        table(AuditEvent, alias),
        ", ".join(column[name] for name in COLUMNS),
        column["seq"],
        column["occurred_at"],
        column["hash"],
    )


def append_statement(event: Event, *, after: str, returning: str) -> EventStatement:
    """append([event]) as SQL that follows the CTE named `after`: it yields one row
    when the caller's change was made and none otherwise, and the event is written
    only with that row.

    The canonical text is the builder's, in fragments; the statement fills in only
    what it computes (seq and occurred_at under the head's lock, and the event's
    Computed values) and hashes it with PostgreSQL's sha256(). The data column is
    that same canonical text of the data, cast to jsonb.
    """
    head, events, columns, seq_column, at_column, hash_column = _names(DEFAULT_DB_ALIAS)
    params: list[Any] = [event.actor, event.actor_user_id, event.actor_kind, event.action]
    params.append(event.object_type)
    object_id = _text(event.object_id, params)
    object_repr = _text(event.object_repr, params)
    params.append(event.model)
    data = f"({_concat(fragments(event.data), params)})::jsonb"
    params += [event.request_id, event.ip]
    canonical = _concat(event.canonical_fragments(SEQ, OCCURRED_AT), params)
    digest = (
        f"encode(sha256(convert_to(audit_head.prev_hash || E'\\n' || {canonical}, 'UTF8')), 'hex')"
    )
    # Names come from the models' metadata and the caller's own SQL; values are bound.
    ctes = (
        "audit_head AS MATERIALIZED (SELECT h.seq + 1 AS seq, h.hash AS prev_hash,"  # noqa: S608
        " greatest(clock_timestamp(), h.occurred_at) AS at"
        f" FROM {head} h, {after} WHERE h.id = 1 FOR UPDATE OF h),"
        f" audit_event AS (INSERT INTO {events} ({columns})"
        " SELECT audit_head.seq, audit_head.at, %s::text, %s::bigint, %s::text, %s::text,"
        f" %s::text, {object_id}, {object_repr}, %s::text, {data},"
        f" %s::text, %s::text, audit_head.prev_hash, {digest}"
        f" FROM audit_head, {after}"
        f" RETURNING {seq_column} AS seq, {at_column} AS at, {hash_column} AS hash)"
    )
    final = (
        f"UPDATE {head} SET seq = audit_event.seq, hash = audit_event.hash,"  # noqa: S608
        f" occurred_at = audit_event.at FROM audit_event, {after}"
        f" WHERE {head}.id = 1 RETURNING {returning}"
    )
    guard = f"EXISTS (SELECT 1 FROM {head} WHERE id = 1)"  # noqa: S608
    return EventStatement(ctes=ctes, final=final, params=params, guard=guard)
