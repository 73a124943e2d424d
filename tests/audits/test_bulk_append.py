"""The bulk import path: one lock, the same hashes as record(), COPY on PostgreSQL."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audits.bulk import append_events
from audits.context import audit_context
from audits.models import AuditEvent, ChainHead
from audits.selectors import verify_stored_chain
from audits.services import record
from tests.audits.conftest import KNOWN, UNDATED

pytestmark = pytest.mark.django_db


def _recorded(action: str, **data) -> AuditEvent:
    with audit_context(request_id="req-9", ip="10.9.9.9"), transaction.atomic():
        return record(
            actor=None, action=action, object_type="thing", object_id="1", model="m", data=data
        )


class _Undone(Exception):
    pass


def test_it_hashes_exactly_as_record_does():
    _recorded("thing.created", size=1)
    with pytest.raises(_Undone), transaction.atomic():
        second = _recorded("thing.updated", size=2.5, when="now", tags=["a", "ü"])
        raise _Undone
    head = append_events(
        [
            {
                "actor": "system",
                "actor_kind": "system",
                "action": "thing.updated",
                "object_type": "thing",
                "object_id": 1,
                "model": "m",
                "data": {"size": 2.5, "when": "now", "tags": ("a", "ü")},
                "request_id": "req-9",
                "ip": "10.9.9.9",
                "occurred_at": second.occurred_at,
            }
        ]
    )
    assert head == (2, second.hash)
    assert AuditEvent.objects.get(seq=2).prev_hash == second.prev_hash


def test_it_appends_after_the_head_and_record_chains_on():
    head = append_events(KNOWN[:1])
    head = append_events(KNOWN[1:])
    assert head == (5, AuditEvent.objects.get(seq=5).hash)
    assert ChainHead.objects.values_list("seq", "hash").get() == head
    after = _recorded("thing.updated")
    assert (after.seq, after.prev_hash) == (6, head[1])
    assert after.occurred_at > AuditEvent.objects.get(seq=5).occurred_at
    result = verify_stored_chain()
    assert (result.ok, result.events_checked) == (True, 6)
    assert AuditEvent.objects.get(seq=1).occurred_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_an_imported_event_dated_before_the_last_one_is_refused():
    _recorded("thing.created")
    before = ChainHead.objects.values_list("seq", "hash").get()

    with pytest.raises(ValueError, match="never runs backwards"):
        append_events(KNOWN[:1])

    assert ChainHead.objects.values_list("seq", "hash").get() == before
    assert AuditEvent.objects.count() == 1


def test_events_without_a_time_are_dated_by_the_database_after_the_last():
    append_events(KNOWN)
    last = AuditEvent.objects.get(seq=5).occurred_at
    append_events(
        [{"actor": "system", "action": "x.y", "object_type": "x", "object_id": n} for n in range(3)]
    )
    times = list(AuditEvent.objects.filter(seq__gt=5).values_list("occurred_at", flat=True))
    assert len(times) == 3
    assert all(t >= last for t in times)
    assert verify_stored_chain().ok


def test_a_failing_batch_leaves_the_chain_as_it_was():
    append_events(KNOWN[:1])
    before = ChainHead.objects.values_list("seq", "hash").get()

    def events():
        yield KNOWN[1]
        yield {**KNOWN[2], "data": {"bad": float("nan")}}  # JSON has no NaN

    with pytest.raises(ValueError, match="Out of range float values"):
        append_events(events())
    assert ChainHead.objects.values_list("seq", "hash").get() == before
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres
def test_on_postgresql_it_loads_with_copy():
    with CaptureQueriesContext(connection) as queries:
        append_events(UNDATED * 200)
    statements = [q["sql"] for q in queries.captured_queries]
    # 1000 rows, and not one INSERT into the log: they came through COPY.
    assert not any(sql.startswith('INSERT INTO "audits_auditevent"') for sql in statements)
    assert AuditEvent.objects.count() == 1000
    assert verify_stored_chain().ok
