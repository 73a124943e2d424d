import threading

import pytest
from django.db import connection, transaction

from audits.context import audit_context
from audits.models import AuditEvent
from audits.selectors import verify_stored_chain
from audits.services import record

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 32
EVENTS_EACH = 5


def test_32_parallel_writers_leave_one_unbroken_chain():
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(index: int):
        try:
            start.wait()
            with audit_context(request_id=f"writer-{index}"):
                for n in range(EVENTS_EACH):
                    with transaction.atomic():
                        record(
                            actor=None,
                            action="thing.touched",
                            object_type="thing",
                            object_id=f"{index}-{n}",
                            data={"writer": index, "n": n},
                        )
                    # Every other writer also loses a transaction after taking a seq:
                    # its rollback must leave no gap.
                    if index % 2:
                        try:
                            with transaction.atomic():
                                record(
                                    actor=None,
                                    action="thing.lost",
                                    object_type="thing",
                                    object_id="x",
                                )
                                raise RuntimeError("rolled back")
                        except RuntimeError:
                            pass
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert failures == []
    seqs = list(AuditEvent.objects.order_by("seq").values_list("seq", flat=True))
    assert seqs == list(range(1, WRITERS * EVENTS_EACH + 1))
    assert not AuditEvent.objects.filter(action="thing.lost").exists()
    result = verify_stored_chain()
    assert result.ok, result
    assert result.events_checked == WRITERS * EVENTS_EACH
