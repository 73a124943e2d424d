"""A CSV export never hands a spreadsheet a formula: a cell that begins with =, +, -, @,
a tab or a carriage return gets a leading apostrophe (OWASP's advice against CSV
injection), every other cell is written as it is, and JSON Lines keeps the text as is."""

import csv
import hashlib
import io
import json
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from audits.bulk import append_events
from audits.context import audit_context
from audits.models import AuditEvent
from audits.selectors import COLUMNS, event_dicts
from governance.services.sign_ins import sign_in_bursts_record
from tests.audits.conftest import download

pytestmark = pytest.mark.django_db

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
# Usernames tried at the admin's sign-in: each lands in an auth.login_failed event.
TRIED = [
    '=HYPERLINK("http://evil/", "x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
]
# The admin's form strips the whitespace a username begins with, so these come from a
# log imported from elsewhere.
IMPORTED = [
    {
        "actor": "\tmallory",
        "action": "auth.login_failed",
        "object_type": "user",
        "object_id": "",
        "object_repr": "\r=1+1",
        "data": {"username": "\r=1+1"},
    },
]


SWEEP_REQUEST = "-sweep:1"


def neutralised(value: str) -> str:
    return "'" + value if value.startswith(FORMULA_STARTS) else value


@pytest.fixture
def hostile_log(make_user, api_for, settings):
    # Each failure comes from an address of its own, and is recorded, one burst each,
    # by the sweep once the cool-off has passed; a request id may begin with a minus.
    for number, username in enumerate(TRIED):
        Client().post(
            "/admin/login/",
            {"username": username, "password": "wrong"},
            REMOTE_ADDR=f"10.9.0.{number + 1}",
        )
    later = timezone.now() + settings.AXES_COOLOFF_TIME + timedelta(seconds=1)
    with audit_context(request_id=SWEEP_REQUEST):
        assert sign_in_bursts_record(now=later) == len(TRIED)
    append_events(IMPORTED)
    # A compliance officer whose username begins with a minus takes a checkpoint, so
    # the actor column holds it too, then exports.
    reader = api_for(make_user("-carla", "compliance"))
    assert reader.post("/api/v1/audit/checkpoints/").status_code == 201
    return reader


def test_cells_that_begin_like_a_formula_get_an_apostrophe(hostile_log):
    response = hostile_log.get("/api/v1/audit/export/?format=csv")
    sent = download(response)
    body = sent.decode("utf-8")
    rows = list(csv.DictReader(io.StringIO(body, newline="")))
    head = int(response["X-Audit-Head-Seq"])
    events = [e for e in event_dicts() if e["seq"] <= head]
    assert [int(row["seq"]) for row in rows] == [e["seq"] for e in events]

    changed = []
    for row, event in zip(rows, events, strict=True):
        assert json.loads(row["data"]) == event["data"]
        for column in COLUMNS:
            if column == "data":
                continue
            value = "" if event[column] is None else str(event[column])
            assert row[column] == neutralised(value), (event["seq"], column)
            if row[column] != value:
                changed.append((event["action"], column, row[column]))

    failed = [
        cell
        for action, column, cell in changed
        if (action, column) == ("auth.login_failed", "object_repr")
    ]
    assert failed == [*("'" + name for name in TRIED), "'\r=1+1"]
    assert ("auth.login_failed", "actor", "'\tmallory") in changed
    assert ("audit.checkpointed", "actor", "'-carla") in changed
    request_ids = [cell for _, column, cell in changed if column == "request_id"]
    assert request_ids == ["'" + SWEEP_REQUEST] * len(TRIED)
    # The manifest's digest is of the bytes sent, apostrophes and all.
    exported = AuditEvent.objects.get(action="audit.exported")
    assert exported.data["sha256"] == hashlib.sha256(sent).hexdigest()


def test_json_lines_keeps_the_text_as_it_was_written(hostile_log):
    body = download(hostile_log.get("/api/v1/audit/export/?format=jsonl"))
    events = [json.loads(line) for line in body.decode("utf-8").splitlines()]
    failed = [e["object_repr"] for e in events if e["action"] == "auth.login_failed"]
    assert failed == [*TRIED, "\r=1+1"]
    assert body.decode("utf-8").splitlines() == [
        json.dumps(e, ensure_ascii=False) for e in event_dicts() if e["seq"] <= len(events)
    ]
