"""Checkpoints and export records only grow too, on PostgreSQL and on SQLite."""

import pytest
from django.db import DatabaseError, connection, transaction

from audits.models import AuditCheckpoint, AuditExport
from audits.services import audit_checkpoint_create
from tests.audits.conftest import download

pytestmark = [pytest.mark.django_db, pytest.mark.sqlite]


@pytest.fixture
def records(known_log, reader):
    with transaction.atomic():
        audit_checkpoint_create(actor=None)
    download(reader.get("/api/v1/audit/export/?format=csv"))
    return AuditCheckpoint.objects.get(), AuditExport.objects.get()


def _refused(action):
    with pytest.raises(DatabaseError, match="append-only"), transaction.atomic():
        if callable(action):
            action()
        else:
            with connection.cursor() as cursor:
                cursor.execute(action)


@pytest.mark.parametrize("table", ["audits_auditcheckpoint", "audits_auditexport"])
def test_update_and_delete_are_refused(records, table):
    _refused(f"UPDATE {table} SET id = id")  # noqa: S608 - the table name is ours
    _refused(f"DELETE FROM {table}")  # noqa: S608 - the table name is ours


def test_through_the_orm_too(records):
    checkpoint, export = records
    _refused(lambda: AuditCheckpoint.objects.filter(pk=checkpoint.pk).update(seq=1))
    _refused(lambda: AuditExport.objects.filter(pk=export.pk).delete())
    assert AuditCheckpoint.objects.get().seq == 5
    assert AuditExport.objects.count() == 1
