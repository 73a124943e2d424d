import io
import json

import pytest
from django.core.management import call_command

from audits.selectors import event_dicts
from tests.factories import make_model, make_version

pytestmark = pytest.mark.django_db


@pytest.fixture
def export(make_user, tmp_path):
    owner = make_user("olivia", "owner")
    ci = make_user("ci-bot", "ci")
    model = make_model(owner, "fraud", card={"intended_use": "Ünïcode — test"})
    for i in range(3):
        make_version(ci, model, seed=i, metrics={"auc": 0.9 + i / 100})
    lines = [json.dumps(e, ensure_ascii=False) for e in event_dicts()]
    assert len(lines) >= 10
    return lines, tmp_path / "audit.jsonl"


def verify_file(path) -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", "--file", str(path), stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def write(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_an_untouched_export_passes(export):
    lines, path = export
    write(path, lines)
    code, message = verify_file(path)
    assert code == 0
    assert f"OK: {len(lines)} events" in message


def _edit(lines):
    event = json.loads(lines[4])
    event["data"]["auc"] = 0.99
    return [*lines[:4], json.dumps(event), *lines[5:]]


def _forged_insert(lines):
    forged = json.loads(lines[4])
    forged["object_repr"] = "forged"
    return [*lines[:4], json.dumps(forged), *lines[4:]]


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        (_edit, 5),
        (lambda lines: lines[:4] + lines[5:], 5),  # a deletion
        (lambda lines: [*lines[:4], lines[5], lines[4], *lines[6:]], 5),  # a reorder
        (_forged_insert, 5),
        (lambda lines: [*lines[:6], "{not json", *lines[6:]], 7),
    ],
    ids=["edit", "delete", "reorder", "insert", "garbage"],
)
def test_a_tampered_export_names_the_first_bad_seq(export, tamper, bad_seq):
    lines, path = export
    write(path, tamper(lines))
    code, message = verify_file(path)
    assert code == 1
    assert f"first bad seq {bad_seq}" in message


def test_verify_audit_on_the_database(export):
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert out.getvalue().startswith(f"OK: {len(export[0])} events in the database")


def test_the_verify_endpoint_answers_compliance_and_refuses_ci(export, make_user, api_for):
    compliance = api_for(make_user("carla", "compliance"))
    ci = api_for(make_user("ci-2", "ci"))
    events = list(event_dicts())
    response = compliance.get("/api/v1/audit/verify/")
    assert response.status_code == 200
    assert response.json() == {
        "ok": True,
        "events_checked": len(events),
        "head_seq": events[-1]["seq"],
        "head_hash": events[-1]["hash"],
        "first_bad_seq": None,
        "reason": "",
    }
    assert ci.get("/api/v1/audit/verify/").status_code == 403
    assert api_for(None).get("/api/v1/audit/verify/").status_code == 401
