"""Numbers in event data hash as the database gives them back, so events holding large
or signed-zero floats still verify on PostgreSQL, whose jsonb keeps numbers as decimals."""

import pytest
from django.db import transaction

from audits.bulk import append_events
from audits.context import audit_context
from audits.models import AuditEvent
from audits.selectors import verify_stored_chain
from audits.services import record

pytestmark = pytest.mark.django_db

FIGURES = {
    "huge": 1e16,
    "astronomic": -1.5e300,
    "negative_zero": -0.0,
    "tiny": 5e-324,
    "inexact": 0.1 + 0.2,
    "below_the_switch": 2.5e15,
    "big_int": 12345678901234567890,
}
AS_STORED = {
    "huge": 10**16,
    "astronomic": -15 * 10**299,
    "negative_zero": 0.0,
    "tiny": 5e-324,
    "inexact": 0.30000000000000004,
    "below_the_switch": 2.5e15,
    "big_int": 12345678901234567890,
}


def test_recorded_figures_verify_and_read_back_as_hashed():
    with audit_context(), transaction.atomic():
        event = record(
            actor=None,
            action="x.measured",
            object_type="x",
            object_id="1",
            data={"figures": FIGURES},
        )
    assert event.data == {"figures": AS_STORED}
    assert AuditEvent.objects.get(seq=event.seq).data == {"figures": AS_STORED}
    assert verify_stored_chain().ok


def test_bulk_appended_figures_verify_too():
    append_events(
        [
            {
                "actor": "system",
                "action": "x.measured",
                "object_type": "x",
                "object_id": "1",
                "data": {"figures": FIGURES},
            }
        ]
    )
    assert AuditEvent.objects.get().data == {"figures": AS_STORED}
    assert verify_stored_chain().ok
