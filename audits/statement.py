"""record(), for a change PostgreSQL makes in a single statement.

A change whose audit event must name values only the database knows (the id of the
row it inserts, a number it hands out) would otherwise take a transaction of five or
more round trips: change, lock the chain head, read it, insert the event, move the
head, commit. Here the event is appended by the same statement as the change,
through data-modifying CTEs, so it commits or fails with the change as one unit.

The event is the one record() would write: the same fields, the same canonical body
and the same hash over exactly what is stored. Python builds the canonical body with
a marker where each database value belongs; the statement splices the values in and
hashes the text with PostgreSQL's sha256(). Numbers the database supplies are
integers, whose JSON and SQL spellings agree, so nothing needs escaping there.

Locks are taken in the order record() takes them: the caller's rows first, the chain
head last. The head is read FOR UPDATE, which under READ COMMITTED waits for the
writer holding it and then reads the head that writer committed, so concurrent
statements and record() callers queue on one row and the chain never forks. The
event's time is computed by that read, and computed again when the read had to wait
(PostgreSQL re-reads the row the other writer committed and recomputes what it
selects), so occurred_at never runs behind seq, as under record().

record() remains the writer of every other event, and of registrations on SQLite.
"""

import json
from dataclasses import dataclass
from functools import cache
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audits.bulk import COLUMNS
from audits.chain import canonical
from audits.context import current
from audits.models import AuditEvent, ChainHead
from audits.services import actor_fields, normalise
from config.rows import quote, table


@dataclass(frozen=True)
class Computed:
    """An integer the statement computes: an SQL expression over the CTEs before the
    event's (e.g. `v.id` of the row just inserted)."""

    expression: str


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


_MARK = "\x01"
_MARK_JSON = "\\u0001"  # how canonical() spells the marker inside a JSON string
_UTC_TIME = '\'YYYY-MM-DD"T"HH24:MI:SS.US"Z"\''  # audits.chain.format_time, in to_char


def _text(expression: str) -> str:
    return f"({expression})::text"


class _Template:
    """A canonical body with markers where the database's values go."""

    def __init__(self):
        self.values: list[tuple[str, bool]] = []  # (SQL expression, spelled as a string)

    def mark(self, expression: str, *, as_string: bool) -> str:
        self.values.append((expression, as_string))
        return f"{_MARK}{len(self.values) - 1}{_MARK}"

    def sql(self, text: str, params: list[Any]) -> str | None:
        """The SQL concatenation that spells `text` with every marker replaced by its
        value, appending its literal pieces to params; None when the text holds
        anything that looks like a marker besides ours."""
        if text.count(_MARK_JSON) != 2 * len(self.values):
            return None
        spans = []
        for index, (expression, as_string) in enumerate(self.values):
            marker = f"{_MARK_JSON}{index}{_MARK_JSON}"
            start = text.find(marker)
            if start < 0 or text.count(marker) != 1:
                return None
            end = start + len(marker)
            # Every value was marked as a string. A number standing as a whole JSON
            # value loses the quotes; inside a longer string ("fraud v3") or as a
            # string of its own it splices in between them.
            if not as_string and text[start - 1 : start] == '"' == text[end : end + 1]:
                start, end = start - 1, end + 1
            spans.append((start, end, expression))
        parts, position = [], 0
        for start, end, expression in sorted(spans):
            if start > position:
                params.append(text[position:start])
                parts.append("%s::text")
            parts.append(_text(expression))
            position = end
        if position < len(text):
            params.append(text[position:])
            parts.append("%s::text")
        return " || ".join(parts)


@cache
def _names() -> tuple[str, str, str, str, str]:
    """The head's and the log's tables, the event's columns in the order bulk loads
    them (the order the INSERT below selects in), and its seq and hash columns, quoted."""
    column = {field.name: quote(field.column) for field in AuditEvent._meta.concrete_fields}
    return (
        table(ChainHead),
        table(AuditEvent),
        ", ".join(column[name] for name in COLUMNS),
        column["seq"],
        column["hash"],
    )


def event_statement(
    *,
    actor,
    action: str,
    object_type: str,
    object_id: Computed,
    object_repr: tuple[str, Computed],
    model: str | None,
    data: dict[str, Any],
    after: str,
    returning: str,
) -> EventStatement | None:
    """The event record() would write for this change, as SQL that follows the CTE
    named `after`: it yields one row when the change was made and none otherwise,
    and the event is written only with that row.

    `object_repr` is a text prefix and the number that ends it. Values of `data` may
    be Computed, at its top level. None when the event cannot be templated (a value
    that holds the marker character): the caller then takes the record() path.
    """
    actor_name, actor_kind, actor_user_id = actor_fields(actor)
    context = current()
    template = _Template()
    computed = {key: value for key, value in data.items() if isinstance(value, Computed)}
    payload = normalise({key: value for key, value in data.items() if key not in computed})
    repr_prefix, repr_number = object_repr
    if len(repr_prefix) + 20 > AuditEvent._meta.get_field("object_repr").max_length:
        return None
    body = {
        "seq": template.mark("audit_head.seq", as_string=False),
        "occurred_at": template.mark(
            f"to_char(audit_head.at AT TIME ZONE 'UTC', {_UTC_TIME})", as_string=True
        ),
        "actor": actor_name,
        "actor_kind": str(actor_kind),
        "action": action,
        "object_type": object_type,
        "object_id": template.mark(object_id.expression, as_string=True),
        "object_repr": repr_prefix + template.mark(repr_number.expression, as_string=True),
        "model": model,
        "data": {
            **payload,
            **{
                key: template.mark(value.expression, as_string=False)
                for key, value in computed.items()
            },
        },
        "request_id": context.request_id,
        "ip": context.ip,
    }
    canonical_params: list[Any] = []
    canonical_sql = template.sql(canonical(body), canonical_params)
    if canonical_sql is None:
        return None

    head, events, columns, seq_column, hash_column = _names()
    data_sql = "%s::jsonb"
    data_params: list[Any] = [json.dumps(payload, cls=DjangoJSONEncoder)]
    if computed:
        pairs = ", ".join(f"%s::text, ({value.expression})" for value in computed.values())
        data_sql = f"({data_sql} || jsonb_build_object({pairs}))"
        data_params += list(computed)
    digest = (
        "encode(sha256(convert_to(audit_head.prev_hash || E'\\n' || "
        f"{canonical_sql}, 'UTF8')), 'hex')"
    )
    # Names come from the models' metadata and the caller's own SQL; values are bound.
    # The head read waits for the writer holding it, then sees what that writer
    # committed; clock_timestamp() is taken by that read, so after the wait.
    ctes = (
        "audit_head AS MATERIALIZED (SELECT h.seq + 1 AS seq, h.hash AS prev_hash,"  # noqa: S608
        f" clock_timestamp() AS at FROM {head} h, {after} WHERE h.id = 1 FOR UPDATE OF h),"
        f" audit_event AS (INSERT INTO {events} ({columns})"
        " SELECT audit_head.seq, audit_head.at, %s::text, %s::bigint, %s::text, %s::text,"
        f" %s::text, {_text(object_id.expression)},"
        f" %s::text || {_text(repr_number.expression)}, %s::text, {data_sql},"
        f" %s::text, %s::text, audit_head.prev_hash, {digest}"
        f" FROM audit_head, {after}"
        f" RETURNING {seq_column} AS seq, {hash_column} AS hash)"
    )
    params = [
        actor_name,
        actor_user_id,
        str(actor_kind),
        action,
        object_type,
        repr_prefix,
        model,
        *data_params,
        context.request_id,
        context.ip,
        *canonical_params,
    ]
    final = (
        f"UPDATE {head} SET seq = audit_event.seq, hash = audit_event.hash"  # noqa: S608
        f" FROM audit_event, {after} WHERE {head}.id = 1 RETURNING {returning}"
    )
    guard = f"EXISTS (SELECT 1 FROM {head} WHERE id = 1)"  # noqa: S608
    return EventStatement(ctes=ctes, final=final, params=params, guard=guard)
