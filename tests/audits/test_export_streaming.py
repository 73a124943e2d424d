"""Exports are streamed batch by batch, never built whole; the export is recorded when
the stream ends, with the request's own id and address, also when the client leaves."""

import hashlib

import pytest
from django.db import connection

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
