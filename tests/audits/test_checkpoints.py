"""Signed checkpoints of the chain head: taken hourly and on demand, and what catches a
log whose newest events were removed, or which was rewritten, hashes and all."""

import contextlib
import io
import json

import pytest
from django.conf import settings
from django.core.management import CommandError, call_command
from django.db import connection

from audits import signing
from audits.bulk import append_events
from audits.chain import compute_hash
from audits.context import audit_context
from audits.models import AuditCheckpoint, AuditEvent, ChainHead
from audits.selectors import event_dicts
from audits.services import audit_checkpoint_create, checkpoint_document
from audits.tasks import audit_checkpoint
from audits.triggers import every_statement
from config.celery import app
from tests.audits.conftest import KNOWN, UNDATED, download
from tests.audits.conftest import verify_audit as verify

pytestmark = pytest.mark.django_db


@contextlib.contextmanager
def triggers_off():
    """What someone with the database's owner rights can do: step around the triggers."""
    pg = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if pg:
            cursor.execute("SET session_replication_role = replica")
        else:
            for sql in every_statement("sqlite", install=False):
                cursor.execute(sql)
    try:
        yield
    finally:
        with connection.cursor() as cursor:
            if pg:
                cursor.execute("SET session_replication_role = DEFAULT")
            else:
                for sql in every_statement("sqlite", install=True):
                    cursor.execute(sql)


def cut_log_to(seq: int) -> None:
    with triggers_off():
        AuditEvent.objects.filter(seq__gt=seq).delete()
        last = AuditEvent.objects.get(seq=seq)
        ChainHead.objects.filter(pk=1).update(seq=seq, hash=last.hash)


def rewrite_from(seq: int) -> None:
    """Edit the event at `seq` and re-chain everything after it, head included."""
    events = list(event_dicts())
    with triggers_off():
        prev = events[seq - 2]["hash"] if seq > 1 else "0" * 64
        for event in events[seq - 1 :]:
            if event["seq"] == seq:
                event["actor"] = "mallory"
            body = {k: v for k, v in event.items() if k not in ("prev_hash", "hash")}
            digest = compute_hash(prev, body)
            AuditEvent.objects.filter(seq=event["seq"]).update(
                actor=event["actor"], prev_hash=prev, hash=digest
            )
            prev = digest
        ChainHead.objects.filter(pk=1).update(hash=prev)


def checkpoint() -> AuditCheckpoint:
    with audit_context(request_id="cp"):
        return audit_checkpoint_create(actor=None)


def test_a_checkpoint_signs_the_head_and_is_audited(known_log):
    taken = checkpoint()
    document = checkpoint_document(taken)
    assert (document["kind"], document["seq"], document["hash"]) == (
        "audit_checkpoint",
        5,
        known_log[4]["hash"],
    )
    assert signing.verify_document(document, public_key_pem=signing.signing_key().public_pem)[0]
    event = AuditEvent.objects.get(seq=6)
    assert (event.action, event.actor, event.object_type, event.object_id) == (
        "audit.checkpointed",
        "system",
        "audit_checkpoint",
        str(taken.pk),
    )
    assert event.data == {
        "seq": 5,
        "hash": known_log[4]["hash"],
        "key_id": document["key_id"],
        "signature": document["signature"],
    }


def test_the_command_prints_the_checkpoint_to_keep_elsewhere(known_log):
    out = io.StringIO()
    call_command("audit_checkpoint", stdout=out)
    assert json.loads(out.getvalue()) == checkpoint_document(AuditCheckpoint.objects.get())


def test_the_beat_schedule_takes_one_every_hour(known_log):
    entry = settings.CELERY_BEAT_SCHEDULE["audit-checkpoint-hourly"]
    assert entry["task"] == "audits.tasks.audit_checkpoint"
    assert entry["task"] in app.tasks
    assert (entry["schedule"].minute, entry["schedule"].hour) == ({0}, set(range(24)))
    assert audit_checkpoint.delay().get() == 5
    assert list(AuditCheckpoint.objects.values_list("seq", flat=True)) == [5]


def test_compliance_takes_and_lists_checkpoints_over_http(known_log, reader):
    response = reader.post("/api/v1/audit/checkpoints/")
    assert response.status_code == 201
    assert response.json() == checkpoint_document(AuditCheckpoint.objects.get())
    listed = reader.get("/api/v1/audit/checkpoints/").json()
    assert (listed["count"], listed["results"]) == (1, [response.json()])
    assert AuditEvent.objects.get(seq=6).actor == "carla"


def test_verify_audit_checks_the_log_against_its_checkpoints(known_log):
    checkpoint()
    append_events(UNDATED[:1])
    checkpoint()
    code, message = verify()
    assert code == 0, message
    assert message.startswith("OK: 8 events in the database")
    assert "2 checkpoint(s) match the log; the latest: seq 7" in message


def test_removing_the_newest_events_is_caught_by_a_checkpoint(known_log, tmp_path):
    taken = checkpoint()  # signs seq 5; its own event is seq 6
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(checkpoint_document(taken)))
    cut_log_to(3)

    code, message = verify()
    assert code == 1
    assert message.startswith("TAMPERED: first bad seq 4 in the database: ")
    assert "has the log reach seq 5, but it ends at seq 3" in message

    # The checkpoint removed from the database too: the log alone looks whole...
    with triggers_off():
        AuditCheckpoint.objects.all().delete()
    assert verify()[0] == 0
    # ...but not next to the copy kept outside it.
    code, message = verify("--checkpoint", str(saved))
    assert code == 1
    assert message.startswith("TAMPERED: first bad seq 4 in the database: ")


def test_a_rewritten_chain_is_caught_by_a_checkpoint(db):
    append_events(KNOWN[:2])
    checkpoint()  # seq 2, event 3
    append_events(UNDATED[2:])
    checkpoint()  # seq 6, event 7
    rewrite_from(4)

    code, message = verify()
    assert code == 1
    assert message.startswith("TAMPERED: first bad seq 3 in the database: ")
    assert "rewritten after seq 2 and at or before seq 6" in message


def test_a_checkpoint_with_a_forged_signature_fails(known_log):
    taken = checkpoint()
    with triggers_off():
        AuditCheckpoint.objects.filter(pk=taken.pk).update(seq=4, hash=known_log[3]["hash"])
    code, message = verify()
    assert code == 1
    assert "The checkpoint at seq 4" in message and "is not validly signed" in message


def test_an_export_is_checked_against_checkpoints_offline(known_log, reader, tmp_path):
    saved = tmp_path / "checkpoint.json"
    saved.write_text(json.dumps(checkpoint_document(checkpoint())))
    key = tmp_path / "audit-key.pem"
    key.write_bytes(reader.get("/api/v1/audit/public-key/").content)
    body = download(reader.get("/api/v1/audit/export/?format=jsonl"))
    path = tmp_path / "audit.jsonl"
    path.write_bytes(body)
    code, message = verify(
        "--file", str(path), "--checkpoint", str(saved), "--public-key", str(key)
    )
    assert code == 0, message
    assert "1 checkpoint(s) match the log; the latest: seq 5" in message

    path.write_bytes(b"".join(body.splitlines(keepends=True)[:4]))
    code, message = verify(
        "--file", str(path), "--checkpoint", str(saved), "--public-key", str(key)
    )
    assert code == 1
    assert message.startswith(f"TAMPERED: first bad seq 5 in {path}: ")


def test_unreadable_inputs_are_command_errors(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("[1, 2]")
    with pytest.raises(CommandError, match="something other than checkpoints"):
        call_command("verify_audit", "--checkpoint", str(bad))
    with pytest.raises(CommandError, match="Cannot read the manifest"):
        call_command("verify_audit", "--file", str(bad), "--manifest", str(tmp_path / "none"))
