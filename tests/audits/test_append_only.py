"""The audit table refuses change at the database, on PostgreSQL and on SQLite."""

import io

import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, transaction

from audits.models import AuditEvent
from audits.triggers import statements
from tests.factories import make_model

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


@pytest.fixture
def events(make_user):
    owner = make_user("olivia", "owner")
    make_model(owner, "fraud")
    make_model(owner, "churn")
    return list(AuditEvent.objects.order_by("seq"))


def _refused(sql_or_callable):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if callable(sql_or_callable):
            sql_or_callable()
        else:
            with connection.cursor() as cursor:
                cursor.execute(sql_or_callable)


def test_update_is_refused(events):
    _refused(lambda: AuditEvent.objects.filter(seq=1).update(actor="mallory"))
    _refused("UPDATE audits_auditevent SET data = '{}'")
    assert AuditEvent.objects.get(seq=1).actor == events[0].actor


def test_delete_is_refused(events):
    _refused(lambda: AuditEvent.objects.filter(seq=2).delete())
    _refused("DELETE FROM audits_auditevent")
    assert AuditEvent.objects.count() == len(events)


def _without_triggers(sql: str, params=()):
    with connection.cursor() as cursor:
        for statement in statements(connection.vendor, install=False):
            if connection.vendor == "sqlite" or "TRIGGER" in statement:
                cursor.execute(statement)
        cursor.execute(sql, params)
        for statement in statements(connection.vendor, install=True):
            if connection.vendor == "sqlite" or "TRIGGER" in statement:
                cursor.execute(statement)


def _verify() -> tuple[int, str]:
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()


def test_an_event_altered_with_triggers_disabled_is_named_by_verify_audit(events):
    assert _verify()[0] == 0
    target = events[3].seq
    _without_triggers(
        "UPDATE audits_auditevent SET object_repr = %s WHERE seq = %s", ["forged", target]
    )
    code, message = _verify()
    assert code == 1
    assert f"first bad seq {target}" in message
    # and the trigger is back in force afterwards
    _refused("UPDATE audits_auditevent SET actor = 'x'")


def test_the_newest_event_removed_with_triggers_disabled_is_named(events):
    last = events[-1].seq
    _without_triggers("DELETE FROM audits_auditevent WHERE seq = %s", [last])
    code, message = _verify()
    assert code == 1
    assert f"first bad seq {last}" in message


@pytest.mark.postgres
def test_truncate_is_refused(events):
    _refused("TRUNCATE audits_auditevent")
    assert AuditEvent.objects.count() == len(events)
