"""Exports are streamed batch by batch, never built whole; the export is recorded when
the stream ends, with the request's own id and address, also when the client leaves."""

import hashlib
import json
import time

import psycopg
import pytest
from django.db import connection

from audits.bulk import append_events
from audits.chain import iter_jsonl, verify_events
from audits.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr("audits.exports.BATCH_ROWS", 2)


def test_a_jsonl_export_streams_whole_lines_batch_by_batch(known_log, reader, small_batches):
    response = reader.get("/api/v1/audit/export/?format=jsonl")
    assert response.streaming
    chunks = list(response.streaming_content)
    assert [chunk.count(b"\n") for chunk in chunks] == [2, 2, 1]
    assert all(chunk.endswith(b"\n") for chunk in chunks)


def test_a_csv_export_streams_its_header_then_batches(known_log, reader, small_batches):
    chunks = list(reader.get("/api/v1/audit/export/?format=csv").streaming_content)
    assert [chunk.count(b"\r\n") for chunk in chunks] == [1, 2, 2, 1]
    assert chunks[0].startswith(b"seq,occurred_at,")


def test_an_export_the_client_abandons_is_recorded_as_incomplete(
    known_log, reader, small_batches, monkeypatch
):
    response = reader.get("/api/v1/audit/export/?format=jsonl")
    first = next(iter(response.streaming_content))
    # The test's transaction must outlive request_finished, which closes connections.
    monkeypatch.setattr(connection, "close_if_unusable_or_obsolete", lambda: None)
    response.close()  # what a WSGI server does when the client goes away

    exported = AuditEvent.objects.get(action="audit.exported")
    assert {k: exported.data[k] for k in ("complete", "rows", "first_seq", "last_seq")} == {
        "complete": False,
        "rows": 2,
        "first_seq": 1,
        "last_seq": 2,
    }
    assert exported.data["sha256"] == hashlib.sha256(first).hexdigest()


def test_the_export_event_carries_the_requests_id_and_address(known_log, reader):
    response = reader.get(
        "/api/v1/audit/export/?format=csv", HTTP_X_REQUEST_ID="export-42", REMOTE_ADDR="10.1.2.3"
    )
    assert response["X-Request-ID"] == "export-42"
    b"".join(response.streaming_content)
    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.request_id, exported.ip) == ("export-42", "10.1.2.3")


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_slow_reader_holds_no_transaction_open(reader, small_batches):
    """Between batches the export's connection is idle, out of any transaction, and keeps
    no snapshot (backend_xmin) that would hold back vacuum for the whole download."""
    head_seq, head_hash = append_events(
        [
            {
                "actor": "system",
                "action": "test.happened",
                "object_type": "test",
                "object_id": str(n),
            }
            for n in range(40)
        ]
    )
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()

    response = reader.get("/api/v1/audit/export/?format=jsonl")
    chunks = iter(response.streaming_content)
    received = [next(chunks)]
    # The client reads nothing more for now: the rows read ahead wait in memory.
    activity = _settled_activity(pid)
    received += list(chunks)
    assert activity == ("idle", None)

    received += list(chunks)
    assert sum(chunk.count(b"\n") for chunk in received) == 40
    result = verify_events(
        iter_jsonl(b"".join(received).splitlines()), expected_head=(head_seq, head_hash)
    )
    assert result.ok, result
    assert (response["X-Audit-Head-Seq"], response["X-Audit-Head-Hash"]) == (
        str(head_seq),
        head_hash,
    )
    exported = AuditEvent.objects.get(action="audit.exported")
    assert (exported.data["complete"], exported.data["rows"]) == (True, 40)


def _settled_activity(pid: int) -> tuple[str, str | None]:
    """The backend's state and snapshot horizon, seen from another connection once it
    is not running a query (the export reads a few batches ahead)."""
    params = connection.get_connection_params()
    with psycopg.connect(
        **{k: params[k] for k in ("host", "port", "user", "dbname") if params.get(k)},
        autocommit=True,
    ) as other:
        deadline = time.monotonic() + 10
        while True:
            state, xmin = other.execute(
                "SELECT state, backend_xmin FROM pg_stat_activity WHERE pid = %s", [pid]
            ).fetchone()
            if state != "active" or time.monotonic() > deadline:
                return state, xmin
            time.sleep(0.05)


def test_batches_find_every_match_however_far_apart(reader, small_batches):
    """Matches close together fill batches; long stretches without one are crossed."""
    picked = {1, 2, 3, 4, 5, 40, 41, 300, 301, 302, 303, 304, 305, 306, 599, 600}
    append_events(
        [
            {
                "actor": "rita" if n in picked else "system",
                "action": "test.happened",
                "object_type": "test",
                "object_id": str(n),
            }
            for n in range(1, 601)
        ]
    )
    response = reader.get("/api/v1/audit/export/?format=jsonl&actor=rita")
    chunks = list(response.streaming_content)
    seqs = [json.loads(line)["seq"] for chunk in chunks for line in chunk.splitlines()]
    assert seqs == sorted(picked)
    assert all(chunk.count(b"\n") <= 2 for chunk in chunks)
