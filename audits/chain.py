"""The chain's canonical form, hashing and verification, exactly as API.md defines them.

Nothing here touches the database, so the same code verifies an exported file offline.
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from hashlib import sha256

from audits.models import GENESIS_HASH

BODY_FIELDS = (
    "seq",
    "occurred_at",
    "actor",
    "actor_kind",
    "action",
    "object_type",
    "object_id",
    "object_repr",
    "model",
    "data",
    "request_id",
    "ip",
)


def format_time(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# One encoder, built once: json.dumps() with these arguments builds a new one per call,
# which is a fifth of the cost of verifying an event.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical(body: Mapping) -> str:
    """json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)."""
    return _CANONICAL.encode(body)


def compute_hash(prev_hash: str, body: Mapping) -> str:
    return sha256((prev_hash + "\n" + _CANONICAL.encode(body)).encode("utf-8")).hexdigest()


@dataclass
class VerifyResult:
    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_bad_seq: int | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def verify_events(
    events: Iterable[Mapping], *, expected_head: tuple[int, str] | None = None
) -> VerifyResult:
    """Check a stream of full events (body + prev_hash + hash), oldest first.

    Position k of an intact chain holds seq k, so the first bad seq reported is the
    seq that should stand where the chain first breaks: an edited, deleted, moved or
    inserted event is named by the place it disturbs.
    """
    return _verify(map(_split, events), expected_head)


def verify_rows(
    batches: Iterable[Iterable[Sequence]], *, expected_head: tuple[int, str] | None = None
) -> VerifyResult:
    """verify_events() for stored rows: tuples of BODY_FIELDS, prev_hash and hash, with
    data as JSON text, in batches (what audits.selectors.event_rows yields)."""
    return _verify(_row_bodies(batches), expected_head)


_BODY_KEYS = frozenset(BODY_FIELDS)
_DATA = BODY_FIELDS.index("data")
# What _split() answers for an event that cannot be checked: no body, and why.
_UNPARSABLE = (None, "line is not a JSON object", None)


def _split(event: Mapping) -> tuple[dict | None, str | None, str | None]:
    if event.get("_unparsable"):
        return _UNPARSABLE
    body = dict(event)
    prev_hash = body.pop("prev_hash", None)
    digest = body.pop("hash", None)
    if body.keys() != _BODY_KEYS:
        extra = body.keys() - _BODY_KEYS
        if extra:
            return None, f"unexpected keys {sorted(extra)}", None
        # A missing key hashes as null, as it always has: the hash then disagrees.
        body = {key: body.get(key) for key in BODY_FIELDS}
    return body, prev_hash, digest


def _row_bodies(batches: Iterable[Iterable[Sequence]]):
    loads = json.loads
    for batch in batches:
        for row in batch:
            body = dict(zip(BODY_FIELDS, row, strict=False))
            body["data"] = loads(row[_DATA])
            yield body, row[-2], row[-1]


def _verify(items: Iterable[tuple], expected_head: tuple[int, str] | None) -> VerifyResult:
    prev_hash = GENESIS_HASH
    checked = 0
    for body, event_prev, digest in items:
        expected_seq = checked + 1
        if body is None:
            return _bad(checked, prev_hash, expected_seq, event_prev)
        if body["seq"] != expected_seq:
            return _bad(
                checked,
                prev_hash,
                expected_seq,
                f"expected seq {expected_seq}, found {body['seq']!r}",
            )
        if event_prev != prev_hash:
            return _bad(
                checked, prev_hash, expected_seq, "prev_hash does not match the event before"
            )
        if compute_hash(prev_hash, body) != digest:
            return _bad(checked, prev_hash, expected_seq, "hash does not match the event's content")
        prev_hash = digest
        checked += 1
    if expected_head is not None:
        head_seq, head_hash = expected_head
        if head_seq != checked or (checked and head_hash != prev_hash):
            return _bad(
                checked,
                prev_hash,
                checked + 1 if head_seq > checked else head_seq,
                f"the chain head says seq {head_seq}, the log ends at seq {checked}",
            )
    return VerifyResult(True, checked, checked, prev_hash)


def verify_each(events: Iterable[Mapping]) -> VerifyResult:
    """For a filtered export, whose events are not contiguous: each event's hash must
    match its own body and prev_hash, seqs must rise, and consecutive seqs must link.
    (That nothing between them was removed takes the full chain, or the manifest.)"""
    checked, last_seq, last_hash = 0, 0, GENESIS_HASH
    for body, event_prev, digest in map(_split, events):
        if body is None:
            return _bad(checked, last_hash, last_seq + 1, event_prev)
        seq = body["seq"]
        if type(seq) is not int or seq <= last_seq:
            return _bad(checked, last_hash, last_seq + 1, f"seq {seq!r} after seq {last_seq}")
        if not isinstance(event_prev, str) or compute_hash(event_prev, body) != digest:
            return _bad(checked, last_hash, seq, "hash does not match the event's content")
        if seq == last_seq + 1 and event_prev != last_hash:
            return _bad(checked, last_hash, seq, "prev_hash does not match the event before")
        checked, last_seq, last_hash = checked + 1, seq, digest
    return VerifyResult(True, checked, last_seq, last_hash)


def _bad(checked: int, prev_hash: str, seq: int, reason: str) -> VerifyResult:
    return VerifyResult(False, checked, checked, prev_hash, first_bad_seq=seq, reason=reason)


def iter_jsonl(lines: Iterable[str | bytes]):
    """Parse an exported JSON Lines file; a line that is not JSON yields a marker dict."""
    for line in lines:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        if not text.strip():
            continue
        try:
            value = json.loads(text)
        # A line nested past Python's recursion limit is as unreadable as a broken one;
        # the decoder unwinds cleanly from it.
        except (ValueError, RecursionError):
            yield {"_unparsable": True}
            continue
        yield value if isinstance(value, dict) else {"_unparsable": True}
