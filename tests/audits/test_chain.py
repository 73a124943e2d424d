import hashlib
import json

import pytest
from django.db import transaction

from audits.context import audit_context
from audits.models import AuditEvent, ChainHead
from audits.selectors import event_dicts, verify_stored_chain
from audits.services import record
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db


def _write(action: str, **data):
    with audit_context(request_id="req-1", ip="10.0.0.1"), transaction.atomic():
        return record(actor=None, action=action, object_type="thing", object_id="1", data=data)


@pytest.mark.django_db(transaction=True)
def test_it_refuses_to_write_outside_a_transaction():
    with pytest.raises(RuntimeError, match="transaction"):
        record(actor=None, action="thing.created", object_type="thing", object_id="1")
    assert AuditEvent.objects.count() == 0


def test_it_numbers_events_from_one_and_links_each_to_the_last():
    first = _write("thing.created", size=1)
    second = _write("thing.updated", size=2)
    assert (first.seq, second.seq) == (1, 2)
    assert first.prev_hash == "0" * 64
    assert second.prev_hash == first.hash
    head = ChainHead.objects.get()
    assert (head.seq, head.hash) == (2, second.hash)


def test_a_rolled_back_transaction_leaves_no_gap():
    _write("thing.created")
    with pytest.raises(ZeroDivisionError), transaction.atomic():
        record(actor=None, action="thing.updated", object_type="thing", object_id="1")
        1 / 0  # noqa: B018 - the failure that rolls the writer back
    third = _write("thing.deleted")
    assert list(AuditEvent.objects.values_list("seq", "action")) == [
        (1, "thing.created"),
        (2, "thing.deleted"),
    ]
    assert third.prev_hash == AuditEvent.objects.get(seq=1).hash
    assert verify_stored_chain().ok


def test_the_chain_of_real_events_recomputes_with_the_three_lines_of_the_contract(make_user):
    owner = make_user("olivia", "owner")
    ci = make_user("ci-bot", "ci")
    model = make_model(owner, "fraud", card={"intended_use": "Flag payments — «testing» ünïcode"})
    make_version(ci, model, metrics={"auc": 0.9123456789012345, "loss": 1e-12})
    lines = [json.dumps(event, ensure_ascii=False) for event in event_dicts()]
    assert len(lines) > 5

    prev = "0" * 64
    for line in lines:
        event = json.loads(line)
        body = {k: v for k, v in event.items() if k not in ("hash", "prev_hash")}
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        assert event["prev_hash"] == prev
        assert (
            hashlib.sha256((prev + "\n" + canonical).encode("utf-8")).hexdigest() == event["hash"]
        )
        prev = event["hash"]
    assert prev == ChainHead.objects.get().hash


def test_exported_events_carry_exactly_the_contract_keys(make_user):
    owner = make_user("olivia", "owner")
    with audit_context(request_id="abc", ip="192.0.2.7"):
        make_model(owner, "fraud")
    event = next(event_dicts(AuditEvent.objects.filter(action="registered_model.created")))
    assert set(event) == {
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
        "prev_hash",
        "hash",
    }
    assert event["occurred_at"].endswith("Z") and len(event["occurred_at"]) == 27
    assert (event["actor"], event["actor_kind"], event["model"]) == ("olivia", "user", "fraud")
    assert (event["object_type"], event["object_repr"]) == ("registered_model", "fraud")


def test_service_accounts_and_the_system_are_told_apart(make_user):
    ci = make_user("ci-bot", "ci")
    make_model(ci, "fraud")
    created = AuditEvent.objects.get(action="registered_model.created")
    assert (created.actor, created.actor_kind, created.actor_user_id) == (
        "ci-bot",
        "service",
        ci.pk,
    )
    system = AuditEvent.objects.filter(action="role.granted").first()
    assert (system.actor, system.actor_kind, system.actor_user_id) == ("system", "system", None)
