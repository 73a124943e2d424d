"""Celery tasks: thin wrappers that take ids and call a service."""

from celery import shared_task

from audits.context import audit_context
from governance import services


@shared_task(acks_late=True)
def check_run_execute(check_run_id: int) -> str | None:
    with audit_context():
        run = services.check_run_execute(check_run_id=check_run_id)
    return run.status if run else None
