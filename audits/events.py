"""The one builder of audit events: an event's body, its canonical form and its hash.

Every path that appends to the chain (record(), the bulk import, the registration
statement) builds its events here, so they cannot drift apart. The builder knows
nothing of the database; audits.writer numbers, times and stores what it builds.

A value the database hands out inside the writing statement (the id of a row it
inserts, the number it claims, seq and occurred_at themselves) is a `Computed`: the
canonical form is then a list of fragments, literal text built here and those values
between them, which the statement joins in SQL. The literal text is the canonical
JSON itself, cut where the values go, never text searched for a marker afterwards.
"""

import json
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from hashlib import sha256
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder

from audits.chain import canonical, format_time

REPR_LENGTH = 200


@dataclass(frozen=True)
class Computed:
    """A value the writing statement computes: an SQL expression over its CTEs (e.g.
    `registered.id`). Its text must need no escaping in JSON (an integer, a time
    spelled by to_char), so that the SQL ::text of it is its JSON spelling."""

    expression: str


@dataclass(frozen=True)
class Spliced:
    """A string that ends in a computed value: `prefix` followed by its text."""

    prefix: str
    value: Computed


Fragment = str | Computed


def _stored_float(text: str) -> float | int:
    """A float as the JSON column gives it back. PostgreSQL's jsonb keeps numbers as
    decimals: 1e+16 comes back as 10000000000000000 (an int to Python) and -0.0 as 0.0,
    so hashing the float as written would fail verification there."""
    if "e+" in text or "E+" in text:
        return int(Decimal(text))
    value = float(text)
    return 0.0 if value == 0 else value


def normalise(data: dict[str, Any]) -> dict[str, Any]:
    # Round-trip through JSON so the hash covers exactly what the JSON column returns
    # (dates become strings, tuples lists); NaN has no JSON form and is refused.
    return json.loads(
        json.dumps(data, cls=DjangoJSONEncoder, allow_nan=False), parse_float=_stored_float
    )


def _holds_computed(value: Any) -> bool:
    if isinstance(value, Computed | Spliced):
        return True
    if isinstance(value, dict):
        return any(_holds_computed(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_computed(item) for item in value)
    return False


def _fragments(value: Any, out: list[Fragment]) -> None:
    """Append the canonical JSON of `value` to `out`, cut around computed values: the
    canonical encoder's own text wherever there is none, and the same structure
    (sorted keys, no spaces) around them."""
    if isinstance(value, Computed):
        out.append(value)
    elif isinstance(value, Spliced):
        # JSON escapes a string one character at a time, so the prefix's spelling ends
        # where the computed text begins.
        out.append(canonical(value.prefix)[:-1])
        out.append(value.value)
        out.append('"')
    elif isinstance(value, dict) and _holds_computed(value):
        out.append("{")
        for index, key in enumerate(sorted(value)):
            out.append(("," if index else "") + canonical(key) + ":")
            _fragments(value[key], out)
        out.append("}")
    elif isinstance(value, list) and _holds_computed(value):
        out.append("[")
        for index, item in enumerate(value):
            if index:
                out.append(",")
            _fragments(item, out)
        out.append("]")
    else:
        out.append(canonical(value))


def fragments(value: Any) -> list[Fragment]:
    """The canonical JSON of `value` as literal text and Computed values, adjacent
    text merged; for a value with nothing computed, one string: canonical(value)."""
    raw: list[Fragment] = []
    _fragments(value, raw)
    merged: list[Fragment] = []
    for piece in raw:
        if isinstance(piece, str) and merged and isinstance(merged[-1], str):
            merged[-1] += piece
        elif piece != "":
            merged.append(piece)
    return merged


def _resolve(value: Any) -> Any:
    """A Spliced value with a concrete number, as the string it spells."""
    if isinstance(value, tuple):
        prefix, number = value
        return Spliced(prefix, number) if isinstance(number, Computed) else f"{prefix}{number}"
    return value


@dataclass(frozen=True)
class Event:
    """An event before the writer numbers, times and chains it.

    `occurred_at` is None for every event written as it happens: the writer takes the
    time from the database. Only an event imported from another system brings its own.
    """

    actor: str
    actor_kind: str
    actor_user_id: int | None
    action: str
    object_type: str
    object_id: str | Computed | Spliced
    object_repr: str | Spliced
    model: str | None
    data: dict[str, Any]
    request_id: str | None
    ip: str | None
    occurred_at: datetime | None = None

    def body(self, seq: int | Computed, occurred_at: str | Computed) -> dict[str, Any]:
        """The body API.md defines: the event without prev_hash and hash."""
        if isinstance(occurred_at, Computed):
            occurred_at = Spliced("", occurred_at)
        return {
            "seq": seq,
            "occurred_at": occurred_at,
            "actor": self.actor,
            "actor_kind": self.actor_kind,
            "action": self.action,
            "object_type": self.object_type,
            "object_id": self.object_id,
            "object_repr": self.object_repr,
            "model": self.model,
            "data": self.data,
            "request_id": self.request_id,
            "ip": self.ip,
        }

    def canonical_fragments(
        self, seq: int | Computed, occurred_at: str | Computed
    ) -> list[Fragment]:
        return fragments(self.body(seq, occurred_at))

    def canonical(self, seq: int, occurred_at: datetime) -> str:
        (text,) = self.canonical_fragments(seq, format_time(occurred_at))
        return text

    def hash(self, prev_hash: str, seq: int, occurred_at: datetime) -> str:
        """sha256_hex((prev_hash + "\\n" + canonical).encode("utf-8"))."""
        text = prev_hash + "\n" + self.canonical(seq, occurred_at)
        return sha256(text.encode("utf-8")).hexdigest()


def build(
    *,
    actor: str,
    actor_kind: str,
    actor_user_id: int | None = None,
    action: str,
    object_type: str,
    object_id: str | int | Computed,
    object_repr: str | tuple[str, int | Computed] | None = None,
    model: str | None = None,
    data: dict[str, Any] | None = None,
    request_id: str | None = None,
    ip: str | None = None,
    occurred_at: datetime | None = None,
) -> Event:
    """The event, with every value as the log stores and hashes it.

    `object_repr` may be a prefix and the number that ends it, and `object_id` and the
    top-level values of `data` may be Computed, for a statement that hands them out
    itself. Data is round-tripped through JSON as the column would (normalise()).
    """
    data = data or {}
    computed = {key: value for key, value in data.items() if isinstance(value, Computed)}
    payload = normalise({key: value for key, value in data.items() if key not in computed})
    payload.update(computed)
    object_repr = _resolve(object_repr if object_repr is not None else "")
    if isinstance(object_repr, str):
        object_repr = object_repr[:REPR_LENGTH]
    elif len(object_repr.prefix) + 20 > REPR_LENGTH:
        # A bigint's 20 digits must fit: truncating in SQL would cut the hashed text.
        raise ValueError("object_repr prefix too long for a computed number")
    if isinstance(object_id, Computed):
        object_id = Spliced("", object_id)
    return Event(
        actor=actor,
        actor_kind=str(actor_kind),
        actor_user_id=actor_user_id,
        action=action,
        object_type=object_type,
        object_id=object_id if isinstance(object_id, Spliced) else str(object_id),
        object_repr=object_repr,
        model=model,
        data=payload,
        request_id=request_id,
        ip=ip,
        occurred_at=occurred_at,
    )
