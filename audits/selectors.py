from collections.abc import Iterator

from django.db.models import QuerySet

from audits.chain import BODY_FIELDS, VerifyResult, format_time, verify_events
from audits.models import AuditEvent, ChainHead

_COLUMNS = (*BODY_FIELDS, "prev_hash", "hash")


def event_dicts(
    queryset: QuerySet[AuditEvent] | None = None, *, chunk_size: int = 5000
) -> Iterator[dict]:
    """Events as the export's dicts (body, prev_hash, hash), oldest first, streamed."""
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    rows = queryset.order_by("seq").values_list(*_COLUMNS).iterator(chunk_size=chunk_size)
    occurred_at = _COLUMNS.index("occurred_at")
    for row in rows:
        event = dict(zip(_COLUMNS, row, strict=True))
        event["occurred_at"] = format_time(row[occurred_at])
        yield event


def chain_head() -> tuple[int, str]:
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    return head if head else (0, ChainHead._meta.get_field("hash").default)


def verify_stored_chain() -> VerifyResult:
    """Check every stored event and that the log ends where the chain head says."""
    return verify_events(event_dicts(), expected_head=chain_head())
