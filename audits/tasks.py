"""Celery tasks: thin wrappers that call a service."""

from celery import shared_task

from audits.context import audit_context
from audits.services import audit_checkpoint_create


@shared_task
def audit_checkpoint() -> int:
    """Sign the chain head (hourly, from the beat schedule). Returns the checkpoint's seq."""
    with audit_context():
        return audit_checkpoint_create(actor=None).seq
