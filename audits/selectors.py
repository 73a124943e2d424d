import contextlib
import json
import queue
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import NotSupportedError, connections, transaction
from django.db.models import Func, QuerySet, TextField
from django.db.models.functions import Cast

from audits.chain import BODY_FIELDS, VerifyResult, verify_rows
from audits.durability import flush_wal
from audits.filters import EventFilters
from audits.models import GENESIS_HASH, AuditCheckpoint, AuditEvent, ChainHead

COLUMNS = (*BODY_FIELDS, "prev_hash", "hash")
DATA = COLUMNS.index("data")


class ExportTime(Func):
    """occurred_at as the export writes it (YYYY-MM-DDTHH:MM:SS.ffffffZ), formatted by the
    database: converting a million datetimes in Python costs more than the rest of a row."""

    output_field = TextField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = (
            "to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler, connection, **extra_context):
        # Django stores UTC as "YYYY-MM-DD HH:MM:SS[.ffffff]", the fraction only when non-zero.
        template = (
            "(REPLACE(%(expressions)s, ' ', 'T') || CASE WHEN INSTR(%(expressions)s, '.') > 0 "
            "THEN '' ELSE '.000000' END || 'Z')"
        )
        return self.as_sql(compiler, connection, template=template, **extra_context)

    def as_sql(self, compiler, connection, **extra_context):
        if "template" not in extra_context:
            raise NotSupportedError(f"No export time format for {connection.vendor}.")
        return super().as_sql(compiler, connection, **extra_context)


def event_queryset(
    *,
    filters: EventFilters | None = None,
    models: Collection[str] | None = None,
    upto_seq: int | None = None,
) -> QuerySet[AuditEvent]:
    """Events matching `filters`, oldest first; only those of `models` when it is given
    (an owner's view), only up to `upto_seq` when given (a consistent export)."""
    queryset = AuditEvent.objects.order_by("seq")
    if filters is not None:
        queryset = filters.apply(queryset)
    if models is not None:
        queryset = queryset.filter(model__in=list(models))
    if upto_seq is not None:
        queryset = queryset.filter(seq__lte=upto_seq)
    return queryset


def event_rows(
    queryset: QuerySet[AuditEvent], *, batch_size: int = 2000, server_side: bool = True
) -> Iterator[list[tuple]]:
    """Batches of rows in COLUMNS order, in the queryset's order (seq when it has none):
    occurred_at already in the export's
    text form and data as the database's own JSON text (parsing and re-serialising every
    payload would triple an export's cost; the text is valid JSON as it stands).

    Rows come from a server-side cursor, so memory stays flat whatever the count; on
    PostgreSQL the cursor lives in a transaction, since outside one Django declares it
    WITH HOLD and the server materialises the whole result before the first row. SQLite
    reads lazily without one, and a transaction there would hold the write lock. A
    short read (a page) passes server_side=False and needs neither."""
    if not queryset.ordered:
        queryset = queryset.order_by("seq")
    rows = queryset.annotate(
        _at=ExportTime("occurred_at"), _data=Cast("data", TextField())
    ).values_list(*[_select(name) for name in COLUMNS])
    connection = connections[queryset.db]
    try:
        sql, params = rows.query.get_compiler(connection=connection).as_sql()
    except EmptyResultSet:  # e.g. model__in=[]: an owner of no model
        return
    if not server_side:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor.fetchall()
        return
    if connection.vendor != "postgresql":
        with connection.chunked_cursor() as cursor:
            cursor.execute(sql, params)
            while batch := cursor.fetchmany(batch_size):
                yield batch
        return
    with transaction.atomic(using=queryset.db), connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        yield from _prefetched(cursor, batch_size)


def _prefetched(cursor, batch_size: int) -> Iterator[list[tuple]]:
    """The cursor's batches, each next one fetched by a helper thread while the caller
    works on the current one: the database prepares rows while Python formats them,
    instead of the two taking turns (a third off a million-row export). Only the helper
    touches the cursor until it has stopped."""
    batches: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            while not stop.is_set():
                batch = cursor.fetchmany(batch_size)
                batches.put(batch)
                if not batch:
                    return
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, raised there
            batches.put(exc)

    helper = threading.Thread(target=fetch, name="audit-rows", daemon=True)
    helper.start()
    try:
        while (batch := batches.get()) != []:
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        # On an early close the helper may be waiting for room in the queue.
        stop.set()
        while helper.is_alive():
            with contextlib.suppress(queue.Empty):
                batches.get(timeout=0.05)
        helper.join()


def _select(name: str) -> str:
    return {"occurred_at": "_at", "data": "_data"}.get(name, name)


def event_dicts(
    queryset: QuerySet[AuditEvent] | None = None,
    *,
    chunk_size: int = 2000,
    server_side: bool = True,
) -> Iterator[dict]:
    """Events as the export's dicts (body, prev_hash, hash), oldest first, streamed."""
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    loads = json.loads
    for batch in event_rows(queryset, batch_size=chunk_size, server_side=server_side):
        for row in batch:
            event = dict(zip(COLUMNS, row, strict=True))
            event["data"] = loads(row[DATA])
            yield event


def chain_head() -> tuple[int, str]:
    """The head, with every event up to it on disk (a registration may have committed
    asynchronously an instant ago): exports and verification read up to it."""
    head = ChainHead.objects.filter(pk=1).values_list("seq", "hash").first()
    flush_wal()
    return head if head else (0, GENESIS_HASH)


def verify_stored_chain() -> VerifyResult:
    """Check every stored event and that the log ends where the chain head says."""
    head = chain_head()
    # Events written after the head was read are for the next verification: without the
    # bound, a busy log would seem longer than its head.
    upto = AuditEvent.objects.filter(seq__lte=head[0]).order_by("seq")
    return verify_rows(event_rows(upto), expected_head=head)


def checkpoint_list() -> QuerySet[AuditCheckpoint]:
    return AuditCheckpoint.objects.order_by("seq", "id")


def hashes_at(seqs: Collection[int]) -> dict[int, str]:
    return dict(AuditEvent.objects.filter(seq__in=list(seqs)).values_list("seq", "hash"))


@dataclass
class EventPage:
    events: list[dict]
    count: int
    has_next: bool
    has_previous: bool


def event_page(
    queryset: QuerySet[AuditEvent],
    *,
    after: int | None = None,
    before: int | None = None,
    size: int = 50,
) -> EventPage:
    """One page by seq (keyset): `after` reads forward from a seq, `before` backward.
    Three queries whatever the page: the count, the page, and whether rows lie beyond
    the cursor's other side."""
    count = queryset.count()
    if before is not None:
        earlier = queryset.filter(seq__lt=before).order_by("-seq")[: size + 1]
        window = list(event_dicts(earlier, server_side=False))
        window.sort(key=lambda event: event["seq"])
        has_previous = len(window) > size
        events = window[-size:] if has_previous else window
        has_next = queryset.filter(seq__gte=before).exists()
        return EventPage(events, count, has_next, has_previous)
    start = after or 0
    window = list(event_dicts(queryset.filter(seq__gt=start)[: size + 1], server_side=False))
    has_next = len(window) > size
    has_previous = bool(start) and queryset.filter(seq__lte=start).exists()
    return EventPage(window[:size], count, has_next, has_previous)
