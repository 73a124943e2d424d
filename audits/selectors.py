import contextlib
import json
import queue
import threading
from collections.abc import Collection, Iterator
from dataclasses import dataclass

from django.core.exceptions import EmptyResultSet
from django.db import NotSupportedError, connections
from django.db.models import Func, Max, Min, QuerySet, TextField
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
    queryset: QuerySet[AuditEvent], *, batch_size: int = 2000, batched: bool = True
) -> Iterator[list[tuple]]:
    """Batches of rows in COLUMNS order, in seq order: occurred_at already in the export's
    text form and data as the database's own JSON text (parsing and re-serialising every
    payload would triple an export's cost; the text is valid JSON as it stands).

    Each batch is a short query of its own (keyset: seq above the last one read, LIMIT
    batch_size), so memory stays flat whatever the count, and between batches nothing
    is held open: no cursor, no transaction, no snapshot keeping PostgreSQL's vacuum
    waiting (nor, on SQLite, a read lock) for as long as a slow client takes to
    download. The batches still make one consistent picture: they end at the last seq
    matching when the read began (an export's queryset also stops at the chain head),
    and events up to a seq are never changed, removed or joined by others later.

    A short read (a page: sliced, in the queryset's own order) passes batched=False
    and is read in one query."""
    if batched or not queryset.ordered:
        queryset = queryset.order_by("seq")
    rows = queryset.annotate(
        _at=ExportTime("occurred_at"), _data=Cast("data", TextField())
    ).values_list(*[_select(name) for name in COLUMNS])
    connection = connections[queryset.db]
    if not batched:
        try:
            sql, params = rows.query.get_compiler(connection=connection).as_sql()
        except EmptyResultSet:  # e.g. model__in=[]: an owner of no model
            return
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            yield cursor.fetchall()
        return
    bounds = queryset.aggregate(first=Min("seq"), last=Max("seq"))
    if bounds["first"] is None:
        return
    with connection.cursor() as cursor:
        windows = _windows(rows, cursor, bounds["first"] - 1, bounds["last"], batch_size)
        # The helper thread runs the queries on this thread's connection, which Django
        # allows only when told (its debug cursor opens cursors of its own).
        connection.inc_thread_sharing()
        try:
            yield from _prefetched(windows)
        finally:
            connection.dec_thread_sharing()


def _windows(rows, cursor, last: int, end: int, batch_size: int) -> Iterator[list[tuple]]:
    """The batches of `rows` with seq in (last, end], each read over a window of seqs:
    as wide as a batch where events match densely, doubling across stretches where few
    do. The window bounds what any plan may scan: on a table with no statistics yet
    (just after a bulk import) PostgreSQL guesses that a seq range holds few rows, and
    would bitmap-scan and sort the whole rest of the log for every batch."""
    span = batch_size
    while last < end:
        upper = min(last + span, end)
        window = rows.filter(seq__gt=last, seq__lte=upper)[:batch_size]
        sql, params = window.query.get_compiler(connection=cursor.db).as_sql()
        cursor.execute(sql, params)
        batch = cursor.fetchall()
        if len(batch) == batch_size:
            last, span = batch[-1][0], max(batch_size, span // 2)
        else:
            last, span = upper, span * 2
        if batch:
            yield batch


def _prefetched(batches: Iterator[list[tuple]]) -> Iterator[list[tuple]]:
    """The batches, each next one read by a helper thread while the caller works on the
    current one: the database prepares rows while Python formats them, instead of the
    two taking turns. Only the helper touches the connection until it has stopped."""
    ready: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def fetch() -> None:
        try:
            for batch in batches:
                ready.put(batch)
                if stop.is_set():
                    break
            ready.put([])
        except BaseException as exc:  # noqa: BLE001 - handed to the reading thread, raised there
            ready.put(exc)
        finally:
            batches.close()

    helper = threading.Thread(target=fetch, name="audit-rows", daemon=True)
    helper.start()
    try:
        while (batch := ready.get()) != []:
            if isinstance(batch, BaseException):
                raise batch
            yield batch
    finally:
        # On an early close the helper may be waiting for room in the queue.
        stop.set()
        while helper.is_alive():
            with contextlib.suppress(queue.Empty):
                ready.get(timeout=0.05)
        helper.join()


def _select(name: str) -> str:
    return {"occurred_at": "_at", "data": "_data"}.get(name, name)


def event_dicts(
    queryset: QuerySet[AuditEvent] | None = None,
    *,
    chunk_size: int = 2000,
    batched: bool = True,
) -> Iterator[dict]:
    """Events as the export's dicts (body, prev_hash, hash), oldest first, streamed."""
    queryset = AuditEvent.objects.all() if queryset is None else queryset
    loads = json.loads
    for batch in event_rows(queryset, batch_size=chunk_size, batched=batched):
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
        window = list(event_dicts(earlier, batched=False))
        window.sort(key=lambda event: event["seq"])
        has_previous = len(window) > size
        events = window[-size:] if has_previous else window
        has_next = queryset.filter(seq__gte=before).exists()
        return EventPage(events, count, has_next, has_previous)
    start = after or 0
    window = list(event_dicts(queryset.filter(seq__gt=start)[: size + 1], batched=False))
    has_next = len(window) > size
    has_previous = bool(start) and queryset.filter(seq__lte=start).exists()
    return EventPage(window[:size], count, has_next, has_previous)
