"""The PostgreSQL role the service runs as, with no more rights than it uses.

Migrations run as the role that owns the tables. The web processes, the workers and
beat run as a login role configured here: it reads and writes the rows of every
installed model, but on the audit log and the records kept beside it (exports,
checkpoints) it may only SELECT and INSERT, and of the chain head, the one row every
writer moves, it may also UPDATE. It owns nothing and may create nothing, so it can
neither alter nor drop a table or a trigger. Whoever holds the service's credentials
can append to the log but not rewrite, empty or unprotect it: PostgreSQL refuses that
for want of privilege, before the append-only triggers would.

Grants are made per table and are not inherited by tables created later, so the
configuration is run again after every migration.
"""

import re
from dataclasses import dataclass, field

from django.db import DEFAULT_DB_ALIAS, connections, transaction
from psycopg import sql

from audits.durability import FLUSH_FUNCTION
from audits.models import AuditCheckpoint, AuditEvent, AuditExport, ChainHead
from audits.services import record

READ_WRITE = ("SELECT", "INSERT", "UPDATE", "DELETE")
APPEND = ("SELECT", "INSERT")
# record() and the registration statement move the head (and read it FOR UPDATE, which
# needs UPDATE); lock_head() inserts it on a fresh log.
HEAD = ("SELECT", "INSERT", "UPDATE")

APPEND_ONLY_MODELS = (AuditEvent, AuditExport, AuditCheckpoint)

TABLE_PRIVILEGES = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")

# Lower case only: PostgreSQL folds unquoted names to lower case, so this name reads
# the same in a URL, in psql and in a GRANT written by hand. pg_ is reserved.
NAME = re.compile(r"^(?!pg_)[a-z_][a-z0-9_]{0,62}$")

ATTRIBUTES = {
    "rolsuper": "SUPERUSER",
    "rolcreatedb": "CREATEDB",
    "rolcreaterole": "CREATEROLE",
    "rolreplication": "REPLICATION",
    "rolbypassrls": "BYPASSRLS",
}


_ROLE = (
    "SELECT oid, rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
    " rolbypassrls FROM pg_roles WHERE rolname = %s"
)


class RoleRefused(Exception):
    """The role cannot be, or cannot be made, the service's least-privileged role."""


@dataclass
class RoleConfiguration:
    name: str
    database: str
    created: bool
    password_set: bool
    attributes_changed: list[str]
    # table -> privileges, as granted; sequences and the schemas are USAGE
    tables: dict[str, tuple[str, ...]]
    sequences: list[str]
    schemas: list[str]
    granted: dict[str, list[str]] = field(default_factory=dict)
    revoked: dict[str, list[str]] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(
            self.created
            or self.password_set
            or self.attributes_changed
            or self.granted
            or self.revoked
        )


def database_role_configure(
    *, name: str, password: str | None = None, using: str = DEFAULT_DB_ALIAS
) -> RoleConfiguration:
    """Create or bring up to date the login role `name` for the service, in one
    transaction, and record database_role.configured when anything changed.

    Run as the role that owns the tables (the one that migrates). Refuses that role
    itself, a superuser, a role that owns anything or belongs to another role, and any
    outcome in which the role could do more than intended (a privilege held by PUBLIC,
    say): it checks what PostgreSQL says the role may do before committing.
    """
    if not NAME.match(name):
        raise RoleRefused(
            f"{name!r} is not a role name this command makes: lower-case letters, digits "
            "and underscores, starting with a letter or underscore, at most 63 "
            "characters, not starting with pg_."
        )
    connection = connections[using]
    if connection.vendor != "postgresql":
        raise RoleRefused(
            f"Database roles are PostgreSQL's; this database is {connection.vendor}, "
            "where the service's file permissions are all there is to restrict."
        )
    if password is not None and not password:
        raise RoleRefused("An empty password would leave the role with none; omit --password.")

    with transaction.atomic(using=using), connection.cursor() as cursor:
        run = _runner(connection, cursor)
        cursor.execute("SELECT current_user, current_database()")
        owner, database = cursor.fetchone()
        if name == owner:
            raise RoleRefused(
                f"{name} is the role running this command, which owns the tables; the "
                "service needs a role of its own."
            )
        existing = _role_to_update(cursor, name)
        role = sql.Identifier(name)
        before = _acl(cursor, existing["oid"]) if existing else {}

        attributes_changed = []
        if existing is None:
            run(
                sql.SQL(
                    "CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE "
                    "NOREPLICATION NOBYPASSRLS"
                ).format(role)
            )
        else:
            # Only what differs: PostgreSQL lets only a superuser name some attributes
            # at all, even to switch them off.
            attributes_changed = [] if existing["rolcanlogin"] else ["LOGIN"]
            attributes_changed += [
                f"NO{attribute}" for column, attribute in ATTRIBUTES.items() if existing[column]
            ]
            if attributes_changed:
                run(sql.SQL("ALTER ROLE {} " + " ".join(attributes_changed)).format(role))
        if password is not None:
            # Sent as its SCRAM verifier, never in clear, so no server log can show it.
            verifier = connection.connection.pgconn.encrypt_password(
                password.encode(), name.encode(), None
            )
            run(
                sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                    role, sql.Literal(verifier.decode("ascii"))
                )
            )

        tables = _tables(cursor, connection)
        sequences = _sequences(cursor, connection, tables)
        schemas = sorted({schema for schema, _ in tables})
        wanted = _wanted(tables)

        _grant(cursor, run, name, database, wanted, sequences)
        _verify(cursor, name, database, wanted, schemas, sequences)
        after = _acl(cursor, _role(cursor, name)["oid"])
        configuration = RoleConfiguration(
            name=name,
            database=database,
            created=existing is None,
            password_set=password is not None,
            attributes_changed=attributes_changed,
            tables={_label(key): privileges for key, privileges in sorted(wanted.items())},
            sequences=[_label(key) for key in sequences],
            schemas=schemas,
            granted=_difference(after, before),
            revoked=_difference(before, after),
        )
        if configuration.changed:
            record(
                actor=None,
                action="database_role.configured",
                object_type="database_role",
                object_id=name,
                object_repr=name,
                data={
                    "database": database,
                    "created": configuration.created,
                    "password_set": configuration.password_set,
                    "attributes_changed": attributes_changed,
                    "granted": configuration.granted,
                    "revoked": configuration.revoked,
                },
            )
    return configuration


def _grant(cursor, run, name, database, wanted, sequences) -> None:
    """Revoke whatever the role was granted here before, then grant what it needs; in
    one transaction, so a running service never sees the gap."""
    role = sql.Identifier(name)
    schemas = sorted({schema for schema, _ in wanted})
    for schema in schemas:
        run(sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(_id(schema), role))
        run(sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(_id(schema), role))
        run(sql.SQL("REVOKE ALL ON SCHEMA {} FROM {}").format(_id(schema), role))
        run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(_id(schema), role))
    for (schema, table), privileges in sorted(wanted.items()):
        run(
            sql.SQL("GRANT {} ON TABLE {} TO {}").format(
                sql.SQL(", ").join(map(sql.SQL, privileges)), _id(schema, table), role
            )
        )
    for schema, sequence in sequences:
        run(sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(_id(schema, sequence), role))
    run(sql.SQL("REVOKE ALL ON DATABASE {} FROM {}").format(_id(database), role))
    run(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(_id(database), role))
    for schema in schemas:
        # Databases made before PostgreSQL 15 let every role create in public.
        if _may(cursor, "has_schema_privilege", name, schema, "CREATE"):
            run(sql.SQL("REVOKE CREATE ON SCHEMA {} FROM PUBLIC").format(_id(schema)))
    # audits.durability.flush_wal(); PUBLIC may run it unless an administrator
    # revoked that.
    if not _may(cursor, "has_function_privilege", name, FLUSH_FUNCTION, "EXECUTE"):
        run(sql.SQL("GRANT EXECUTE ON FUNCTION {} TO {}").format(sql.SQL(FLUSH_FUNCTION), role))


def _id(*names: str) -> sql.Identifier:
    return sql.Identifier(*names)


def _label(key: tuple[str, str]) -> str:
    schema, name = key
    return name if schema == "public" else f"{schema}.{name}"


def _runner(connection, cursor):
    def run(statement: sql.Composable) -> None:
        cursor.execute(statement.as_string(connection.connection))

    return run


def _may(cursor, function: str, role: str, target: str, privilege: str) -> bool:
    # `function` is one of PostgreSQL's has_*_privilege, named by this module.
    cursor.execute(f"SELECT {function}(%s, %s, %s)", [role, target, privilege])
    return cursor.fetchone()[0]


def _role_to_update(cursor, name: str) -> dict | None:
    """The role's attributes, or None when there is none by that name; refused when it
    could never be least-privileged."""
    role = _role(cursor, name)
    if role is None:
        return None
    if role["rolsuper"]:
        raise RoleRefused(f"{name} is a superuser; the service must run as a role that is not.")
    cursor.execute(
        "SELECT (SELECT count(*) FROM pg_shdepend WHERE refclassid = 'pg_authid'::regclass"
        "        AND refobjid = %s AND deptype = 'o'),"
        " (SELECT string_agg(quote_ident(r.rolname), ', ' ORDER BY r.rolname)"
        "  FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid WHERE m.member = %s)",
        [role["oid"], role["oid"]],
    )
    owned, memberships = cursor.fetchone()
    if owned:
        raise RoleRefused(
            f"{name} owns {owned} database object(s); an owner may alter, drop or disable "
            "the triggers of what it owns. Name a role that owns nothing."
        )
    if memberships:
        raise RoleRefused(
            f"{name} is a member of {memberships} and may use their rights; name a role "
            "that belongs to no other."
        )
    return role


def _role(cursor, name: str) -> dict | None:
    cursor.execute(_ROLE, [name])
    row = cursor.fetchone()
    return (
        None if row is None else dict(zip([c.name for c in cursor.description], row, strict=True))
    )


def _tables(cursor, connection) -> list[tuple[str, str]]:
    """(schema, name) of the tables of every installed model, as this session sees them."""
    names = connection.introspection.django_table_names(only_existing=True)
    cursor.execute(
        "SELECT n.nspname, c.relname FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relname = ANY(%s) AND c.relkind IN ('r', 'p', 'v', 'm', 'f')"
        " AND pg_table_is_visible(c.oid) ORDER BY 1, 2",
        [names],
    )
    return [tuple(row) for row in cursor.fetchall()]


def _sequences(cursor, connection, tables) -> list[tuple[str, str]]:
    """The sequences those tables' columns own (serial or identity), in their schema."""
    return sorted(
        (schema, sequence["name"])
        for schema, table in tables
        for sequence in connection.introspection.get_sequences(cursor, table)
    )


def _wanted(tables: list[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, ...]]:
    append_only = {model._meta.db_table for model in APPEND_ONLY_MODELS}
    head = ChainHead._meta.db_table

    def privileges(table: str) -> tuple[str, ...]:
        if table in append_only:
            return APPEND
        return HEAD if table == head else READ_WRITE

    return {(schema, table): privileges(table) for schema, table in tables}


def _acl(cursor, oid: int) -> dict[str, set[str]]:
    """What is granted to the role itself, per object, on this database."""
    cursor.execute(
        """
        SELECT CASE c.relkind WHEN 'S' THEN 'sequence ' ELSE 'table ' END
               || c.oid::regclass::text, a.privilege_type
          FROM pg_class c, aclexplode(c.relacl) a WHERE a.grantee = %s
        UNION ALL
        SELECT 'column ' || c.oid::regclass::text || '.' || quote_ident(t.attname),
               a.privilege_type
          FROM pg_attribute t JOIN pg_class c ON c.oid = t.attrelid,
               aclexplode(t.attacl) a WHERE a.grantee = %s
        UNION ALL
        SELECT 'schema ' || quote_ident(n.nspname), a.privilege_type
          FROM pg_namespace n, aclexplode(n.nspacl) a WHERE a.grantee = %s
        UNION ALL
        SELECT 'database ' || quote_ident(d.datname), a.privilege_type
          FROM pg_database d, aclexplode(d.datacl) a
         WHERE a.grantee = %s AND d.datname = current_database()
        UNION ALL
        SELECT 'function ' || p.oid::regprocedure::text, a.privilege_type
          FROM pg_proc p, aclexplode(p.proacl) a WHERE a.grantee = %s
        """,
        [oid] * 5,
    )
    acl: dict[str, set[str]] = {}
    for target, privilege in cursor.fetchall():
        acl.setdefault(target, set()).add(privilege)
    return acl


def _difference(a: dict[str, set[str]], b: dict[str, set[str]]) -> dict[str, list[str]]:
    return {
        target: sorted(privileges - b.get(target, set()))
        for target, privileges in sorted(a.items())
        if privileges - b.get(target, set())
    }


def _verify(cursor, name, database, wanted, schemas, sequences) -> None:
    """What PostgreSQL says the role may do, PUBLIC's rights and any earlier grant
    included, must be exactly what was meant; otherwise nothing is committed."""
    problems = []
    role = _role(cursor, name)
    if not role["rolcanlogin"]:
        problems.append("it cannot log in")
    problems += [f"it has {attribute}" for column, attribute in ATTRIBUTES.items() if role[column]]
    if _may(cursor, "has_database_privilege", name, database, "CREATE"):
        problems.append(f"it may create schemas in database {database}")
    if not _may(cursor, "has_database_privilege", name, database, "CONNECT"):
        problems.append(f"it may not connect to database {database}")
    for schema in schemas:
        if _may(cursor, "has_schema_privilege", name, schema, "CREATE"):
            problems.append(f"it may create objects in schema {schema}")
    for (schema, table), privileges in sorted(wanted.items()):
        qualified = sql.Identifier(schema, table).as_string(None)
        cursor.execute(
            "SELECT p FROM unnest(%s::text[]) p WHERE has_table_privilege(%s, %s, p)",
            [list(TABLE_PRIVILEGES), name, qualified],
        )
        held = {row[0] for row in cursor.fetchall()}
        if "UPDATE" not in privileges and _may(
            cursor, "has_any_column_privilege", name, qualified, "UPDATE"
        ):
            held.add("UPDATE")
        if held != set(privileges):
            extra, missing = held - set(privileges), set(privileges) - held
            detail = "; ".join(
                part
                for part in (
                    extra and f"it also has {', '.join(sorted(extra))}",
                    missing and f"it lacks {', '.join(sorted(missing))}",
                )
                if part
            )
            problems.append(f"on {table}: {detail}")
    for schema, sequence in sequences:
        qualified = sql.Identifier(schema, sequence).as_string(None)
        if not _may(cursor, "has_sequence_privilege", name, qualified, "USAGE"):
            problems.append(f"it may not use sequence {sequence}")
    if not _may(cursor, "has_function_privilege", name, FLUSH_FUNCTION, "EXECUTE"):
        problems.append(f"it may not execute {FLUSH_FUNCTION}")
    if problems:
        raise RoleRefused(
            f"{name} would not be least-privileged: {'; '.join(problems)}. A privilege "
            "granted to PUBLIC, or one this command's role may not revoke, is the usual "
            "cause; nothing was changed."
        )
