"""create_app_role: the service's PostgreSQL role, made and kept least-privileged.

Each test runs in a transaction that is rolled back, role and grants included."""

import os
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db import connection

from audits.models import AuditCheckpoint, AuditEvent, AuditExport, ChainHead
from registry.models import RegisteredModel

pytestmark = pytest.mark.django_db

# Roles belong to the whole cluster: names of this run's own.
NAME = f"modelgov_app_{os.getpid()}"
ROOT, OWNER, MEMBER = (f"modelgov_{kind}_{os.getpid()}" for kind in ("root", "owner", "member"))
PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def create(*args: str) -> str:
    out = StringIO()
    call_command("create_app_role", *args, stdout=out)
    return out.getvalue()


def privileges(role: str, model) -> set[str]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT p FROM unnest(%s::text[]) p WHERE has_table_privilege(%s, %s, p)",
            [list(PRIVILEGES), role, model._meta.db_table],
        )
        return {row[0] for row in cursor.fetchall()}


def sql(statement: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(statement)


def configured() -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(action="database_role.configured"))


@pytest.mark.postgres
def test_it_grants_only_select_and_insert_on_the_audit_tables():
    out = create(NAME, "--password", "s3cret-enough")

    assert f"Created role {NAME}" in out
    for model in (AuditEvent, AuditExport, AuditCheckpoint):
        assert privileges(NAME, model) == {"SELECT", "INSERT"}, model
    assert privileges(NAME, ChainHead) == {"SELECT", "INSERT", "UPDATE"}
    assert privileges(NAME, RegisteredModel) == {"SELECT", "INSERT", "UPDATE", "DELETE"}
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
            " rolbypassrls, rolpassword LIKE 'SCRAM-SHA-256$%%' FROM pg_authid"
            " WHERE rolname = %s",
            [NAME],
        )
        assert cursor.fetchone() == (True, False, False, False, False, False, True)
        cursor.execute(
            "SELECT has_schema_privilege(%s, 'public', 'CREATE'),"
            " has_database_privilege(%s, current_database(), 'CREATE')",
            [NAME, NAME],
        )
        assert cursor.fetchone() == (False, False)
    [event] = configured()
    assert (event.actor, event.object_type, event.object_id) == ("system", "database_role", NAME)
    assert event.data["created"] is True
    assert event.data["password_set"] is True
    assert event.data["granted"]["table audits_auditevent"] == ["INSERT", "SELECT"]
    assert "s3cret-enough" not in str(event.data)


@pytest.mark.postgres
def test_running_it_again_changes_nothing_and_records_nothing():
    create(NAME)

    out = create(NAME)

    assert f"Updated role {NAME}" in out
    assert out.rstrip().endswith("Nothing changed.")
    assert len(configured()) == 1


@pytest.mark.postgres
def test_it_takes_back_what_the_role_was_granted_beyond_its_needs():
    create(NAME)
    sql(f"GRANT UPDATE, TRUNCATE ON audits_auditevent TO {NAME}")
    sql(f"ALTER ROLE {NAME} CREATEDB NOLOGIN")

    out = create(NAME)

    assert "Revoked TRUNCATE, UPDATE on table audits_auditevent" in out
    assert privileges(NAME, AuditEvent) == {"SELECT", "INSERT"}
    event = configured()[-1]
    assert event.data["revoked"] == {"table audits_auditevent": ["TRUNCATE", "UPDATE"]}
    assert event.data["attributes_changed"] == ["LOGIN", "NOCREATEDB"]


@pytest.mark.postgres
def test_it_refuses_when_public_may_change_the_log():
    sql("GRANT UPDATE ON audits_auditcheckpoint TO PUBLIC")

    with pytest.raises(CommandError, match="on audits_auditcheckpoint: it also has UPDATE"):
        create(NAME)

    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_roles WHERE rolname = %s", [NAME])
        assert cursor.fetchone() == (0,)
    assert configured() == []


@pytest.mark.postgres
def test_it_refuses_the_owner_a_superuser_and_a_role_that_owns_or_inherits():
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_user")
        owner = cursor.fetchone()[0]
    with pytest.raises(CommandError, match="the role running this command"):
        create(owner)

    sql(f"CREATE ROLE {ROOT} SUPERUSER")
    with pytest.raises(CommandError, match="is a superuser"):
        create(ROOT)

    sql(f"CREATE ROLE {OWNER}; CREATE SCHEMA {OWNER} AUTHORIZATION {OWNER}")
    with pytest.raises(CommandError, match="owns 1 database object"):
        create(OWNER)

    sql(f"CREATE ROLE {MEMBER} IN ROLE pg_read_all_data")
    with pytest.raises(CommandError, match="is a member of pg_read_all_data"):
        create(MEMBER)
    assert configured() == []


@pytest.mark.parametrize("name", ["Modelgov", "pg_app", "app; DROP TABLE x", "1app", "a" * 64])
def test_it_refuses_a_name_it_would_have_to_quote(name):
    with pytest.raises(CommandError, match="is not a role name"):
        create(name)


@pytest.mark.sqlite
@pytest.mark.skipif(connection.vendor != "sqlite", reason="the refusal on SQLite")
def test_it_refuses_sqlite():
    with pytest.raises(CommandError, match="Database roles are PostgreSQL's"):
        create(NAME)
