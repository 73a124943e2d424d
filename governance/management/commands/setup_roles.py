from django.core.management.base import BaseCommand

from audits.context import audit_context
from governance.services import policies_setup, roles_setup


class Command(BaseCommand):
    help = (
        "Create the roles (owner, reviewer, compliance, ci, admin) and their permissions. "
        "Idempotent."
    )

    def handle(self, *args, **options):
        with audit_context():
            changed = roles_setup(actor=None)
            policies = policies_setup(actor=None)
        if changed:
            self.stdout.write(f"Configured roles: {', '.join(changed)}")
        else:
            self.stdout.write("Roles already up to date.")
        if policies:
            self.stdout.write(f"Installed default policies: {', '.join(policies)}")
