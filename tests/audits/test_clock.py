"""occurred_at is the database's clock, read where the chain head is locked: a web host
whose clock is wrong cannot date an event, and time never runs backwards along seq."""

import itertools
import threading
import time
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from audits.bulk import append_events
from audits.context import audit_context
from audits.models import AuditEvent, ChainHead
from audits.selectors import verify_stored_chain
from audits.services import record
from registry.registration import model_version_register
from tests.factories import make_model, sha

SKEW = timedelta(hours=5)
ROUNDS = 6


def _touch(writer: str, n: int) -> None:
    with audit_context(request_id=writer), transaction.atomic():
        record(
            actor=None,
            action="thing.touched",
            object_type="thing",
            object_id=f"{writer}-{n}",
            data={"n": n},
        )


class _HostClock:
    """timezone.now() and time.time() as one thread's host sees them, `skew` off;
    every other thread sees the real ones."""

    def __init__(self, monkeypatch, skew: timedelta):
        self.skewed: set[int] = set()
        real_now, real_time = timezone.now, time.time

        def now():
            wrong = threading.get_ident() in self.skewed
            return real_now() + skew if wrong else real_now()

        def clock():
            wrong = threading.get_ident() in self.skewed
            return real_time() + skew.total_seconds() if wrong else real_time()

        monkeypatch.setattr(timezone, "now", now)
        monkeypatch.setattr(time, "time", clock)

    def skew_this_thread(self) -> None:
        self.skewed.add(threading.get_ident())


@pytest.mark.django_db(transaction=True)
@pytest.mark.sqlite
@pytest.mark.parametrize("skew", [SKEW, -SKEW], ids=["hours ahead", "hours behind"])
def test_two_writers_whose_clocks_disagree_write_the_databases_time_in_seq_order(
    monkeypatch, make_user, skew
):
    owner = make_user("olivia", "owner")
    model = make_model(owner, "fraud")
    host = _HostClock(monkeypatch, skew)
    turns = [threading.Semaphore(1), threading.Semaphore(0)]
    failures: list[BaseException] = []
    before = timezone.now()

    def writer(index: int):
        name = f"writer-{index}"
        try:
            if index == 1:
                host.skew_this_thread()
                assert abs(timezone.now() - before - skew) < timedelta(minutes=1)
            for n in range(ROUNDS):
                # The two take turns, so their events interleave along seq.
                turns[index].acquire()
                try:
                    _touch(name, n)
                    if index == 1 and n % 2 == 0:
                        append_events(
                            [
                                {
                                    "actor": "system",
                                    "action": "thing.imported",
                                    "object_type": "thing",
                                    "object_id": f"{name}-{n}",
                                }
                            ]
                        )
                    if index == 1 and n % 3 == 0 and connection.vendor == "postgresql":
                        with audit_context(request_id=name):
                            model_version_register(
                                actor=owner,
                                model=model.name,
                                artifact_uri="s3://a",
                                artifact_sha256=sha(f"clock-{n}"),
                            )
                finally:
                    turns[1 - index].release()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            for turn in turns:
                turn.release()
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    after = timezone.now()

    assert failures == []
    events = list(AuditEvent.objects.order_by("seq"))
    written = [e for e in events if (e.request_id or "").startswith("writer-")]
    assert {e.request_id for e in written} == {"writer-0", "writer-1"}
    assert len([e for e in written if e.action == "thing.touched"]) == 2 * ROUNDS
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    backwards = [
        later.seq
        for earlier, later in itertools.pairwise(events)
        if later.occurred_at < earlier.occurred_at
    ]
    assert backwards == []
    # Not one from the wrong clock: every time lies where the real one was meanwhile
    # (SQLite's clock has milliseconds, hence the slack).
    slack = timedelta(milliseconds=2)
    assert all(before - slack <= e.occurred_at <= after + slack for e in written), [
        (e.seq, e.request_id, e.occurred_at) for e in written
    ]
    head = ChainHead.objects.get()
    assert (head.seq, head.occurred_at) == (events[-1].seq, events[-1].occurred_at)
    assert verify_stored_chain().ok


@pytest.mark.django_db
@pytest.mark.sqlite
def test_a_database_clock_behind_the_last_event_dates_the_next_one_with_the_last_time():
    with transaction.atomic():
        first = record(actor=None, action="thing.touched", object_type="thing", object_id="1")
    # As if the database's clock had been set back an hour since.
    later = first.occurred_at + timedelta(hours=1)
    ChainHead.objects.filter(pk=1).update(occurred_at=later)

    with transaction.atomic():
        second = record(actor=None, action="thing.touched", object_type="thing", object_id="2")

    stored = AuditEvent.objects.get(seq=second.seq)
    assert stored.occurred_at == second.occurred_at == later
    assert ChainHead.objects.get().occurred_at == later


@pytest.mark.django_db
@pytest.mark.sqlite
def test_record_adds_no_query_for_the_clock():
    with transaction.atomic():
        record(actor=None, action="thing.touched", object_type="thing", object_id="0")
    with CaptureQueriesContext(connection) as queries, transaction.atomic():
        record(actor=None, action="thing.touched", object_type="thing", object_id="1")
    statements = [q["sql"] for q in queries.captured_queries if "SAVEPOINT" not in q["sql"]]
    # The head locked and read with the time, the event, the head moved.
    assert len(statements) == 3, statements
