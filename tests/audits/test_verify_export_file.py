"""verify_audit --file on a real HTTP export: intact passes; an edit, a deletion, a
reorder or an inserted line is named by the first bad seq; no database is needed."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.audits.conftest import download
from tests.audits.conftest import verify_audit as verify

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def exported(known_log, reader, tmp_path):
    lines = download(reader.get("/api/v1/audit/export/?format=jsonl")).decode().splitlines()
    return lines, tmp_path / "audit.jsonl"


def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def test_an_untouched_export_passes(exported):
    lines, path = exported
    write(path, lines)
    code, message = verify("--file", str(path))
    assert code == 0
    assert message.startswith(f"OK: 5 events in {path}; head seq 5, hash ")


def _edited(lines):
    event = json.loads(lines[2])
    event["data"]["comment"] = "Looks bad"
    return [*lines[:2], json.dumps(event, ensure_ascii=False), *lines[3:]]


def _forged(lines):
    forged = json.loads(lines[2])
    forged["actor"] = "mallory"
    return [*lines[:2], json.dumps(forged, ensure_ascii=False), *lines[2:]]


@pytest.mark.parametrize(
    ("tamper", "bad_seq"),
    [
        (_edited, 3),
        (lambda lines: [*lines[:2], *lines[3:]], 3),  # a deletion
        (lambda lines: [*lines[:2], lines[3], lines[2], *lines[4:]], 3),  # a reorder
        (_forged, 3),  # an inserted line
        (lambda lines: [*lines[:2], lines[1], *lines[2:]], 3),  # a line repeated
        (lambda lines: [*lines[:3], '{"seq": 4', *lines[3:]], 4),  # a broken line
        (lambda lines: [*lines[:3], "[" * 10_000 + "]" * 10_000, *lines[3:]], 4),
    ],
    ids=["edit", "delete", "reorder", "insert", "repeat", "garbage", "nested-too-deep"],
)
def test_a_tampered_export_names_the_first_bad_seq(exported, tamper, bad_seq):
    lines, path = exported
    write(path, tamper(lines))
    code, message = verify("--file", str(path))
    assert code == 1
    assert message.startswith(f"TAMPERED: first bad seq {bad_seq} in {path}: ")


def verify_offline(path) -> subprocess.CompletedProcess:
    """manage.py verify_audit --file in a process whose database does not exist, with
    none of the service's keys: as on an auditor's machine."""
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "AUDIT_SIGNING_KEY")},
        "DEBUG": "false",
        # Nothing listens there: any attempt to connect would fail the command.
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere",
        "REDIS_URL": "",
        "CELERY_BROKER_URL": "",
    }
    command = [sys.executable, "manage.py", "verify_audit", "--file", str(path)]
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)


def test_it_needs_no_database(exported):
    lines, path = exported
    write(path, lines)
    result = verify_offline(path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("OK: 5 events in")
    write(path, _edited(lines))
    result = verify_offline(path)
    assert result.returncode == 1
    assert "first bad seq 3" in result.stderr
