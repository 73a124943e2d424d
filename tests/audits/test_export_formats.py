"""Each export format's exact content for a known event sequence, and the export's own
audit event."""

import csv
import hashlib
import io
import json

import pytest

from audits.exports import csv_text
from audits.models import AuditEvent, AuditExport
from tests.audits.conftest import GENESIS, download

pytestmark = pytest.mark.django_db


def test_the_jsonl_export_is_one_contract_object_per_line(known_log, reader):
    body = download(reader.get("/api/v1/audit/export/?format=jsonl"))
    h = [e["hash"] for e in known_log]

    lines = body.decode("utf-8").split("\n")
    assert lines[-1] == ""  # every line ends with a newline, the last one too
    assert lines[:-1] == [json.dumps(event, ensure_ascii=False) for event in known_log]
    # One line spelled out, so the format itself (key order, spacing, escaping) is pinned.
    assert lines[2] == (
        '{"seq": 3, "occurred_at": "2026-03-02T14:30:00.000000Z", "actor": "rita", '
        '"actor_kind": "user", "action": "promotion.approved", '
        '"object_type": "promotion_request", "object_id": "3", '
        '"object_repr": "#3 fraud v1 → production, «ünïcode»", "model": "fraud", '
        '"data": {"comment": "Looks \\"good\\", ship it", "promotion_request": 3}, '
        f'"request_id": "req-3", "ip": "10.0.0.3", "prev_hash": "{h[1]}", "hash": "{h[2]}"}}'
    )
    assert lines[3].endswith(
        f'"request_id": null, "ip": null, "prev_hash": "{h[2]}", "hash": "{h[3]}"}}'
    )


def test_the_csv_export_has_a_header_and_one_row_per_event(known_log, reader):
    body = download(reader.get("/api/v1/audit/export/?format=csv"))
    h = [e["hash"] for e in known_log]

    assert body.decode("utf-8") == (
        "seq,occurred_at,actor,actor_kind,action,object_type,object_id,object_repr,model,"
        "data,request_id,ip,prev_hash,hash\r\n"
        "1,2026-03-01T09:00:00.000000Z,olivia,user,registered_model.created,"
        'registered_model,1,fraud,fraud,"{""name"": ""fraud"", ""risk_tier"": ""high""}",'
        f"req-1,10.0.0.1,{GENESIS},{h[0]}\r\n"
        "2,2026-03-01T09:05:00.250000Z,ci-bot,service,model_version.registered,"
        'model_version,7,fraud v1,fraud,"{""metrics"": {""auc"": 0.9123456789012345}, '
        f'""version"": 1}}",req-2,10.0.0.2,{h[0]},{h[1]}\r\n'
        "3,2026-03-02T14:30:00.000000Z,rita,user,promotion.approved,promotion_request,3,"
        '"#3 fraud v1 → production, «ünïcode»",fraud,'
        '"{""comment"": ""Looks \\""good\\"", ship it"", ""promotion_request"": 3}",'
        f"req-3,10.0.0.3,{h[1]},{h[2]}\r\n"
        "4,2026-03-02T14:30:01.000001Z,system,system,model_version.stage_changed,"
        'model_version,7,fraud v1,fraud,"{""to"": ""production"", ""from"": ""staging"", '
        f'""version"": 1}}",,,{h[2]},{h[3]}\r\n'
        "5,2026-03-03T08:00:00.000000Z,olivia,user,registered_model.created,"
        'registered_model,2,churn,churn,"{""name"": ""churn"", ""risk_tier"": ""low""}",'
        f"req-5,10.0.0.1,{h[3]},{h[4]}\r\n"
    )
    # And a CSV reader gets the events back, data as JSON.
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8"))))
    assert [json.loads(row["data"]) for row in rows] == [e["data"] for e in known_log]


def test_an_export_is_audited_with_what_was_sent(known_log, reader):
    response = reader.get("/api/v1/audit/export/?format=jsonl&model=fraud")
    body = download(response)
    export_id = response["X-Audit-Export-Id"]

    events = list(AuditEvent.objects.filter(seq__gt=5).order_by("seq"))
    assert [(e.seq, e.action, e.actor, e.object_type, e.object_id, e.model) for e in events] == [
        (6, "audit.exported", "carla", "audit_export", export_id, "fraud")
    ]
    data = events[0].data
    assert set(data) == {
        "kind",
        "export_id",
        "format",
        "filters",
        "rows",
        "first_seq",
        "last_seq",
        "head_seq",
        "head_hash",
        "sha256",
        "complete",
        "exported_by",
        "started_at",
        "finished_at",
        "key_id",
    }
    assert {k: data[k] for k in set(data) - {"started_at", "finished_at", "key_id"}} == {
        "kind": "audit_events",
        "export_id": export_id,
        "format": "jsonl",
        "filters": {"model": "fraud"},
        "rows": 4,
        "first_seq": 1,
        "last_seq": 4,
        "head_seq": 5,
        "head_hash": known_log[4]["hash"],
        "sha256": hashlib.sha256(body).hexdigest(),
        "complete": True,
        "exported_by": "carla",
    }
    assert AuditExport.objects.get(pk=export_id).event_seq == 6


def test_the_response_names_the_manifest_and_the_chain_head(known_log, reader):
    response = reader.get("/api/v1/audit/export/?format=csv")
    download(response)
    export_id = response["X-Audit-Export-Id"]

    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="audit-events-')
    assert response["X-Audit-Head-Seq"] == "5"
    assert response["X-Audit-Head-Hash"] == known_log[4]["hash"]
    manifest_url = f"/api/v1/audit/exports/{export_id}/manifest/"
    assert response["Link"] == f'<{manifest_url}>; rel="describedby manifest"'
    manifest = reader.get(manifest_url).json()
    assert (manifest["format"], manifest["rows"], manifest["head_seq"]) == ("csv", 5, 5)


def test_an_empty_selection_exports_an_empty_file_and_a_lone_header(known_log, reader):
    assert download(reader.get("/api/v1/audit/export/?format=jsonl&actor=nobody")) == b""
    assert download(reader.get("/api/v1/audit/export/?format=csv&actor=nobody")) == (
        b"seq,occurred_at,actor,actor_kind,action,object_type,object_id,object_repr,model,"
        b"data,request_id,ip,prev_hash,hash\r\n"
    )
    exported = AuditEvent.objects.filter(action="audit.exported").order_by("seq")
    assert [(e.data["format"], e.data["rows"], e.data["first_seq"]) for e in exported] == [
        ("jsonl", 0, None),
        ("csv", 0, None),
    ]


def test_the_csv_writer_agrees_with_pythons_csv_module():
    tricky = [
        "plain",
        "",
        None,
        "a,b",
        'say "hi"',
        "two\nlines",
        "carriage\rreturn",
        "crlf\r\n",
        " padded ",
        "ünïcode → «»",
        '{"k": "v, w"}',
        "'",
        "\t",
        "=1+1",
        "+1",
        "-1",
        "@SUM(A1)",
        "\tindented",
        "\rreturned",
        '=HYPERLINK("http://evil/", "x")',
        "a=b",
        "x-1",
    ]
    rows = [
        (seq, *(tricky[(seq + i) % len(tricky)] for i in range(13)))
        for seq in range(1, len(tricky) + 1)
    ]

    def neutralised(value):  # OWASP's advice, written out again
        if value and value[0] in ("=", "+", "-", "@", "\t", "\r"):
            return "'" + value
        return value

    expected = io.StringIO()
    csv.writer(expected).writerows((row[0], *map(neutralised, row[1:])) for row in rows)
    assert csv_text(rows) == expected.getvalue()
