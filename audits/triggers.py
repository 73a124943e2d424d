"""SQL that makes the audit table append-only, per database vendor."""

TABLE = "audits_auditevent"

POSTGRES_INSTALL = [
    f"""
    CREATE OR REPLACE FUNCTION audits_refuse_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'the audit log is append-only: % on {TABLE} refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """,
    f"""CREATE TRIGGER audit_refuse_update_delete BEFORE UPDATE OR DELETE ON {TABLE}
        FOR EACH ROW EXECUTE FUNCTION audits_refuse_change()""",
    f"""CREATE TRIGGER audit_refuse_truncate BEFORE TRUNCATE ON {TABLE}
        FOR EACH STATEMENT EXECUTE FUNCTION audits_refuse_change()""",
]
POSTGRES_REMOVE = [
    f"DROP TRIGGER IF EXISTS audit_refuse_update_delete ON {TABLE}",
    f"DROP TRIGGER IF EXISTS audit_refuse_truncate ON {TABLE}",
    "DROP FUNCTION IF EXISTS audits_refuse_change()",
]

# SQLite has no TRUNCATE; its truncate optimisation of an unqualified DELETE is
# disabled when a DELETE trigger exists, so the DELETE trigger covers it.
SQLITE_INSTALL = [
    f"""CREATE TRIGGER audit_refuse_update BEFORE UPDATE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_refuse_delete BEFORE DELETE ON {TABLE}
        BEGIN SELECT RAISE(ABORT, 'the audit log is append-only: DELETE refused'); END""",
]
SQLITE_REMOVE = [
    "DROP TRIGGER IF EXISTS audit_refuse_update",
    "DROP TRIGGER IF EXISTS audit_refuse_delete",
]


def statements(vendor: str, *, install: bool) -> list[str]:
    if vendor == "postgresql":
        return POSTGRES_INSTALL if install else POSTGRES_REMOVE
    if vendor == "sqlite":
        return SQLITE_INSTALL if install else SQLITE_REMOVE
    raise NotImplementedError(f"no append-only triggers for {vendor}")
