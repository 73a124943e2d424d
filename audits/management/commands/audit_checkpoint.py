import json

from django.core.management.base import BaseCommand

from audits.context import audit_context
from audits.services import audit_checkpoint_create, checkpoint_document


class Command(BaseCommand):
    help = (
        "Sign the audit chain's head now (the beat scheduler does it hourly) and print the "
        "signed checkpoint as JSON, to keep outside the database: verify_audit --checkpoint "
        "FILE then detects a log cut short or rewritten since."
    )

    def handle(self, *args, **options):
        with audit_context():
            checkpoint = audit_checkpoint_create(actor=None)
        self.stdout.write(json.dumps(checkpoint_document(checkpoint), indent=2))
