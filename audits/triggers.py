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


# The tables written next to the log: checkpoints and export manifests only grow too.
# (The log's own triggers above stay as migration 0002 installed them.)
APPEND_ONLY_TABLES = ("audits_auditcheckpoint", "audits_auditexport")

_PG_REFUSE_ANY = """
    CREATE OR REPLACE FUNCTION audits_refuse_table_change() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'append-only: % on % refused', TG_OP, TG_TABLE_NAME
            USING ERRCODE = 'insufficient_privilege';
    END
    $$ LANGUAGE plpgsql
    """


def table_statements(table: str, vendor: str, *, install: bool) -> list[str]:
    """Append-only triggers for one of APPEND_ONLY_TABLES."""
    if vendor == "postgresql":
        if not install:
            return [
                f"DROP TRIGGER IF EXISTS {table}_refuse_update_delete ON {table}",
                f"DROP TRIGGER IF EXISTS {table}_refuse_truncate ON {table}",
            ]
        return [
            _PG_REFUSE_ANY,
            f"""CREATE TRIGGER {table}_refuse_update_delete BEFORE UPDATE OR DELETE ON {table}
                FOR EACH ROW EXECUTE FUNCTION audits_refuse_table_change()""",
            f"""CREATE TRIGGER {table}_refuse_truncate BEFORE TRUNCATE ON {table}
                FOR EACH STATEMENT EXECUTE FUNCTION audits_refuse_table_change()""",
        ]
    if vendor == "sqlite":
        if not install:
            return [
                f"DROP TRIGGER IF EXISTS {table}_refuse_update",
                f"DROP TRIGGER IF EXISTS {table}_refuse_delete",
            ]
        return [
            f"""CREATE TRIGGER {table}_refuse_update BEFORE UPDATE ON {table}
                BEGIN SELECT RAISE(ABORT, 'append-only: UPDATE on {table} refused'); END""",
            f"""CREATE TRIGGER {table}_refuse_delete BEFORE DELETE ON {table}
                BEGIN SELECT RAISE(ABORT, 'append-only: DELETE on {table} refused'); END""",
        ]
    raise NotImplementedError(f"no append-only triggers for {vendor}")


def every_statement(vendor: str, *, install: bool) -> list[str]:
    """The triggers of the log and of every table beside it (to step around them in a
    test database's flush)."""
    tables = [
        s for table in APPEND_ONLY_TABLES for s in table_statements(table, vendor, install=install)
    ]
    return [*statements(vendor, install=install), *tables]
