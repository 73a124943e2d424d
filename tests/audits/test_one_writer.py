"""AuditEvent rows are created in one module, audits.writer: found by reading the code
of every app, not by trusting a docstring."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("audits", "registry", "governance", "config")
WRITER = "audits/writer.py"

_SQL_WRITE = re.compile(r"\b(INSERT\s+INTO|COPY)\b", re.IGNORECASE)
_ORM_CREATE = {"create", "bulk_create", "get_or_create", "update_or_create"}
# Calls that store whatever model instance they are given.
_ANY_MODEL_WRITE = {"bulk_create", "insert_row", "copy"}


def _mentions_the_log(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "AuditEvent":
            return True
        if isinstance(node, ast.Attribute) and node.attr == "AuditEvent":
            return True
        if (
            isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and "audits_auditevent" in node.value
        ):
            return True
    return False


def _called(node: ast.Call) -> str | None:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return None


def _on_the_log(node: ast.expr) -> bool:
    """AuditEvent.objects, or AuditEvent._default_manager and the like."""
    return (
        isinstance(node, ast.Attribute)
        and isinstance(node.value, ast.Name)
        and node.value.id == "AuditEvent"
    )


def writes(source: str) -> list[tuple[int, str]]:
    """(line, what) for every place in `source` that may create an audit event row:
    an AuditEvent instance made, a create on its manager, and, in a module that
    names the log at all, any bulk or raw insert and any SQL that inserts or copies."""
    tree = ast.parse(source)
    names_the_log = _mentions_the_log(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            called = _called(node)
            if called == "AuditEvent":
                found.append((node.lineno, "AuditEvent(...)"))
            elif (
                isinstance(node.func, ast.Attribute)
                and called in _ORM_CREATE
                and _on_the_log(node.func.value)
            ):
                found.append((node.lineno, f"AuditEvent.objects.{called}"))
            elif names_the_log and called in _ANY_MODEL_WRITE:
                found.append((node.lineno, f"{called}(...)"))
        elif (
            names_the_log
            and isinstance(node, ast.Constant)
            and isinstance(node.value, str)
            and _SQL_WRITE.search(node.value)
        ):
            found.append((node.lineno, "SQL: " + _SQL_WRITE.search(node.value).group(0)))
    return sorted(found)


def _modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" not in path.parts:
                yield path.relative_to(ROOT).as_posix(), path.read_text(encoding="utf-8")


def test_only_the_writer_creates_audit_event_rows():
    places = {path: found for path, source in _modules() if (found := writes(source))}

    assert set(places) == {WRITER}, places
    # The writer does all three: one row, many rows, and the SQL of one statement.
    kinds = {what for _, what in places[WRITER]}
    assert {"AuditEvent(...)", "insert_row(...)", "SQL: COPY", "SQL: INSERT INTO"} <= kinds


@pytest.mark.parametrize(
    "source",
    [
        "from audits.models import AuditEvent\nAuditEvent.objects.create(seq=1)\n",
        "from audits.models import AuditEvent\nAuditEvent.objects.bulk_create([])\n",
        "from audits.models import AuditEvent\ne = AuditEvent(seq=1)\n",
        "def f(c):\n    c.execute('INSERT INTO audits_auditevent (seq) VALUES (1)')\n",
        "from audits.models import AuditEvent\n"
        "def f(c, t):\n    c.execute(f'COPY {t(AuditEvent)} (seq) FROM STDIN')\n",
        "from audits.models import AuditEvent\nfrom config.rows import insert_row\n"
        "insert_row(AuditEvent.objects.model(seq=1))\n",
    ],
)
def test_the_search_finds_a_second_writer_where_there_is_one(source):
    assert writes(source) != []


def test_the_search_passes_code_that_only_reads_the_log():
    source = (
        "from audits.models import AuditEvent\n"
        "def f():\n    return AuditEvent.objects.filter(seq__gt=1).values_list('seq')\n"
    )
    assert writes(source) == []
