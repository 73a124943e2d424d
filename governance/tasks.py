"""Celery tasks: thin wrappers that take ids and call a service."""

from celery import shared_task
from django.conf import settings

from audits.context import audit_context
from governance.services import check_runs, sign_ins


@shared_task(
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=settings.CHECK_SOFT_TIME_LIMIT,
    time_limit=settings.CHECK_TIME_LIMIT,
    autoretry_for=check_runs.TRANSIENT,
    retry_backoff=2,
    retry_backoff_max=120,
    retry_jitter=True,
    max_retries=5,
)
def check_run_execute(check_run_id: int) -> str | None:
    with audit_context():
        run = check_runs.check_run_execute(check_run_id=check_run_id)
    return run.status if run else None


@shared_task
def check_runs_sweep() -> dict[str, int]:
    with audit_context():
        return check_runs.check_runs_sweep()


@shared_task
def sign_in_bursts_record() -> int:
    with audit_context():
        return sign_ins.sign_in_bursts_record()
