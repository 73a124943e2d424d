from django.core.management.base import BaseCommand, CommandError

from audits.context import audit_context
from governance.roles import ROLES
from governance.services import role_grant, roles_setup, token_create, user_upsert
from governance.services.access import token_lifetime
from registry.errors import ServiceError


class Command(BaseCommand):
    help = (
        "Create or update a user in one or more roles. With --token, print a new API "
        "token alone on the last line."
    )

    def add_arguments(self, parser):
        parser.add_argument("name")
        parser.add_argument("--role", action="append", choices=ROLES, default=[], required=True)
        parser.add_argument("--password", default=None)
        parser.add_argument("--token", action="store_true", help="Create and print an API token.")
        parser.add_argument(
            "--expires-in",
            type=int,
            default=None,
            metavar="DAYS",
            help="The token's lifetime (default: API_TOKEN_LIFETIME_DAYS).",
        )
        parser.add_argument("--revoke-role", action="append", choices=ROLES, default=[])

    def handle(self, *args, name, role, password, token, expires_in, revoke_role, **options):
        if expires_in is not None and not token:
            raise CommandError("--expires-in needs --token.")
        try:
            token_lifetime(expires_in)  # before anything changes
            with audit_context():
                roles_setup(actor=None)
                user, created = user_upsert(actor=None, username=name, password=password)
                for each in role:
                    role_grant(actor=None, user=user, role=each)
                for each in revoke_role:
                    role_grant(actor=None, user=user, role=each, revoke=True)
                secret = None
                if token:
                    _, secret = token_create(
                        actor=None, user=user, name="add_user", expires_in_days=expires_in
                    )
        except ServiceError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(
            f"{'Created' if created else 'Updated'} {name} with roles: {', '.join(role)}"
        )
        if secret:
            self.stdout.write(secret)
