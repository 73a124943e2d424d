from django.core.management.base import BaseCommand, CommandError

from audits.context import audit_context
from audits.database_role import RoleRefused, database_role_configure


class Command(BaseCommand):
    help = (
        "Create or update the PostgreSQL login role the service runs as (its DATABASE_URL), "
        "with no more rights than web processes, workers and beat use: on the audit tables "
        "SELECT and INSERT only; it owns nothing and creates nothing. Run as the role that "
        "owns the tables, after every migrate. Idempotent."
    )

    def add_arguments(self, parser):
        parser.add_argument("name", help="The role's name (lower case, e.g. modelgov_app).")
        parser.add_argument(
            "--password",
            help="Set its password (sent to PostgreSQL as a SCRAM verifier). Without it an "
            "existing role keeps its password, and a new one has none.",
        )

    def handle(self, *args, name, password=None, **options):
        try:
            with audit_context():
                role = database_role_configure(name=name, password=password)
        except RoleRefused as exc:
            raise CommandError(str(exc)) from exc

        if role.created:
            self.stdout.write(f"Created role {role.name} in database {role.database}.")
        else:
            self.stdout.write(f"Updated role {role.name} in database {role.database}.")
        self.stdout.write(
            "  LOGIN; not SUPERUSER, CREATEDB, CREATEROLE, REPLICATION or BYPASSRLS; "
            "owns nothing; belongs to no other role"
            + (f" (set {', '.join(role.attributes_changed)})" if role.attributes_changed else "")
        )
        if role.password_set:
            self.stdout.write("  password set")
        by_privileges: dict[tuple[str, ...], list[str]] = {}
        for table, privileges in role.tables.items():
            by_privileges.setdefault(privileges, []).append(table)
        for privileges, tables in sorted(by_privileges.items(), key=lambda item: len(item[1])):
            self.stdout.write(f"  {', '.join(privileges)} on {', '.join(tables)}")
        self.stdout.write(f"  USAGE on {len(role.sequences)} sequences of those tables")
        self.stdout.write(
            f"  CONNECT on database {role.database}; USAGE, not CREATE, on schema "
            f"{', '.join(role.schemas)}"
        )
        if not role.changed:
            self.stdout.write("Nothing changed.")
            return
        if not role.created:
            for verb, changes in (("Granted", role.granted), ("Revoked", role.revoked)):
                for target, privileges in changes.items():
                    self.stdout.write(f"{verb} {', '.join(privileges)} on {target}")
        self.stdout.write("Recorded database_role.configured in the audit log.")
