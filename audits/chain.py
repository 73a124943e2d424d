"""The chain's canonical form, hashing and verification, exactly as API.md defines them.

Nothing here touches the database, so the same code verifies an exported file offline.
"""

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

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


def canonical(body: Mapping) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def compute_hash(prev_hash: str, body: Mapping) -> str:
    return hashlib.sha256((prev_hash + "\n" + canonical(body)).encode("utf-8")).hexdigest()


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
    prev_hash = GENESIS_HASH
    checked = 0
    for event in events:
        expected_seq = checked + 1
        if event.get("_unparsable"):
            return _bad(checked, prev_hash, expected_seq, "line is not a JSON object")
        body = {key: event.get(key) for key in BODY_FIELDS}
        extra = set(event) - set(BODY_FIELDS) - {"prev_hash", "hash"}
        if extra:
            return _bad(checked, prev_hash, expected_seq, f"unexpected keys {sorted(extra)}")
        if event.get("seq") != expected_seq:
            return _bad(
                checked,
                prev_hash,
                expected_seq,
                f"expected seq {expected_seq}, found {event.get('seq')!r}",
            )
        if event.get("prev_hash") != prev_hash:
            return _bad(
                checked, prev_hash, expected_seq, "prev_hash does not match the event before"
            )
        if compute_hash(prev_hash, body) != event.get("hash"):
            return _bad(checked, prev_hash, expected_seq, "hash does not match the event's content")
        prev_hash = event["hash"]
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
        except ValueError:
            yield {"_unparsable": True}
            continue
        yield value if isinstance(value, dict) else {"_unparsable": True}
