"""The bulk import path: one lock, the same hashes as record(), COPY on PostgreSQL."""

from datetime import UTC, datetime

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from audits.bulk import append_events, chained_rows
from audits.context import audit_context
from audits.models import AuditEvent, ChainHead
from audits.selectors import event_dicts, verify_stored_chain
from audits.services import record
from tests.audits.conftest import KNOWN

pytestmark = pytest.mark.django_db


def _recorded(action: str, **data) -> AuditEvent:
    with audit_context(request_id="req-9", ip="10.9.9.9"), transaction.atomic():
        return record(
            actor=None, action=action, object_type="thing", object_id="1", model="m", data=data
        )


def test_it_hashes_exactly_as_record_does():
    _recorded("thing.created", size=1)
    second = _recorded("thing.updated", size=2.5, when="now", tags=["a", "ü"])
    stored = list(event_dicts())[1]
    again = {
        key: stored[key]
        for key in ("actor", "action", "object_type", "object_id", "object_repr", "model")
    }
    again.update(
        actor_kind="system",
        data=stored["data"],
        request_id="req-9",
        ip="10.9.9.9",
        occurred_at=second.occurred_at,
    )
    rows = list(chained_rows([again], after=(1, second.prev_hash)))
    assert (rows[0][0], rows[0][-2], rows[0][-1]) == (2, second.prev_hash, second.hash)


def test_it_appends_after_the_head_and_record_chains_on():
    _recorded("thing.created")
    head = append_events(KNOWN)
    assert head == (6, AuditEvent.objects.get(seq=6).hash)
    assert ChainHead.objects.values_list("seq", "hash").get() == head
    after = _recorded("thing.updated")
    assert (after.seq, after.prev_hash) == (7, head[1])
    result = verify_stored_chain()
    assert (result.ok, result.events_checked) == (True, 7)
    assert AuditEvent.objects.get(seq=2).occurred_at == datetime(2026, 3, 1, 9, 0, tzinfo=UTC)


def test_a_failing_batch_leaves_the_chain_as_it_was():
    _recorded("thing.created")
    before = ChainHead.objects.values_list("seq", "hash").get()

    def events():
        yield KNOWN[0]
        yield {**KNOWN[1], "data": {"bad": float("nan")}}  # JSON has no NaN

    with pytest.raises(ValueError, match="Out of range float values"):
        append_events(events())
    assert ChainHead.objects.values_list("seq", "hash").get() == before
    assert AuditEvent.objects.count() == 1


@pytest.mark.postgres
def test_on_postgresql_it_loads_with_copy():
    with CaptureQueriesContext(connection) as queries:
        append_events(KNOWN * 200)
    statements = [q["sql"] for q in queries.captured_queries]
    # 1000 rows, and not one INSERT into the log: they came through COPY.
    assert not any(sql.startswith('INSERT INTO "audits_auditevent"') for sql in statements)
    assert AuditEvent.objects.count() == 1000
    assert verify_stored_chain().ok
