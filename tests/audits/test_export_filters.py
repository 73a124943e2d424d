"""Filtered exports and lists hold exactly the filtered events; bad filters are 400s."""

import csv
import io
import json
from datetime import UTC, datetime

import pytest

from audits.bulk import append_events
from audits.models import AuditEvent
from tests.audits.conftest import KNOWN, download

pytestmark = pytest.mark.django_db

CASES = [
    ("since=2026-03-02", [3, 4, 5]),
    ("until=2026-03-02", [1, 2]),
    ("since=2026-03-01T09:05:00.250000Z&until=2026-03-02T14:30:01.000001Z", [2, 3]),
    # 15:30 at +01:00 is 14:30 UTC; an unencoded "+" arrives as a space.
    ("since=2026-03-02T15:30:00%2B01:00", [3, 4, 5]),
    ("since=2026-03-02T15:30:00 01:00", [3, 4, 5]),
    ("model=churn", [5]),
    ("actor=olivia", [1, 5]),
    ("action=promotion.approved", [3]),
    ("action=registered_model.*", [1, 5]),
    ("object_type=model_version", [2, 4]),
    ("model=fraud&actor=system", [4]),
    ("model=fraud&since=2026-03-03", []),
]


@pytest.mark.parametrize(("query", "seqs"), CASES)
def test_a_filtered_jsonl_export_holds_exactly_the_filtered_events(known_log, reader, query, seqs):
    body = download(reader.get(f"/api/v1/audit/export/?format=jsonl&{query}"))
    expected = [json.dumps(known_log[s - 1], ensure_ascii=False) + "\n" for s in seqs]
    assert body.decode("utf-8") == "".join(expected)


@pytest.mark.parametrize(("query", "seqs"), CASES)
def test_a_filtered_csv_export_holds_exactly_the_filtered_events(known_log, reader, query, seqs):
    body = download(reader.get(f"/api/v1/audit/export/?format=csv&{query}"))
    rows = list(csv.reader(io.StringIO(body.decode("utf-8"))))
    assert [int(row[0]) for row in rows[1:]] == seqs
    assert [row[-1] for row in rows[1:]] == [known_log[s - 1]["hash"] for s in seqs]


@pytest.mark.parametrize(("query", "seqs"), CASES)
def test_the_event_list_applies_the_same_filters(known_log, reader, query, seqs):
    response = reader.get(f"/api/v1/audit/events/?{query}")
    assert response.status_code == 200
    assert response.json()["count"] == len(seqs)
    assert response.json()["results"] == [known_log[s - 1] for s in seqs]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("since=yesterday", "since"),
        ("until=2026-02-30", "until"),
        ("since=2026-03-02&until=2026-03-01", "until"),
        ("model=" + "m" * 129, "model"),
    ],
)
@pytest.mark.parametrize("path", ["/api/v1/audit/export/", "/api/v1/audit/events/"])
def test_a_bad_filter_is_a_400_problem_naming_the_field(known_log, reader, path, query, field):
    response = reader.get(f"{path}?{query}")
    assert response.status_code == 400
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 400
    assert list(problem["errors"]) == [field]


def test_an_unknown_format_is_a_400_and_nothing_is_exported(known_log, reader):
    response = reader.get("/api/v1/audit/export/?format=xlsx")
    assert response.status_code == 400
    assert response.json()["errors"] == {"format": ["One of: jsonl, csv, pdf."]}
    assert not AuditEvent.objects.filter(action="audit.exported").exists()


def test_the_format_defaults_to_jsonl(known_log, reader):
    response = reader.get("/api/v1/audit/export/?model=churn")
    assert response["Content-Type"] == "application/jsonl; charset=utf-8"
    assert download(response) == (json.dumps(known_log[4], ensure_ascii=False) + "\n").encode()


def test_a_pdf_of_more_events_than_the_cap_is_refused(known_log, reader, settings):
    settings.AUDIT_PDF_MAX_EVENTS = 4
    response = reader.get("/api/v1/audit/export/?format=pdf")
    assert response.status_code == 400
    assert "at most 4 events and these filters match 5" in response.json()["detail"]
    assert reader.get("/api/v1/audit/export/?format=pdf&model=fraud").status_code == 200


def test_an_export_ends_at_the_chain_head_it_began_at(known_log, reader):
    response = reader.get("/api/v1/audit/export/?format=jsonl")
    # Written after the response began and before a byte of it was read.
    append_events([{**KNOWN[0], "occurred_at": datetime(2026, 3, 4, tzinfo=UTC)}])
    lines = download(response).decode().splitlines()
    assert [json.loads(line)["seq"] for line in lines] == [1, 2, 3, 4, 5]
    assert response["X-Audit-Head-Seq"] == "5"
