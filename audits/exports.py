"""Exports of the audit trail: JSON Lines, CSV and PDF, streamed, counted and hashed as
they are sent, each recorded (audit.exported) with a signed manifest once complete."""

import hashlib
import json
import logging
import re
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from json.encoder import encode_basestring
from typing import Any

from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.urls import reverse
from django.utils import timezone

from audits.context import audit_context, current
from audits.selectors import COLUMNS, DATA, event_rows
from audits.signing import signing_key

logger = logging.getLogger("modelgov.audit")

KIND_EVENTS = "audit_events"
FORMATS = ("jsonl", "csv", "pdf")
CONTENT_TYPES = {
    "jsonl": "application/jsonl; charset=utf-8",
    "csv": "text/csv; charset=utf-8",
    "pdf": "application/pdf",
}
BATCH_ROWS = 2000

# A chunk of an export: its bytes, how many rows it holds, and the first and last seq
# among them (None for rows that are not events, such as a CSV header).
Chunk = tuple[bytes, int, int | None, int | None]


def _json_or_null(value: str | None) -> str:
    return "null" if value is None else encode_basestring(value)


def jsonl_text(rows: list[tuple]) -> str:
    """One JSON object per line, keys in the contract's order. Strings are escaped as
    json.dumps(ensure_ascii=False) escapes them; data is the stored JSON text as is.
    Only model, request_id and ip may be null (the columns say so)."""
    s, n = encode_basestring, _json_or_null
    return "".join(
        f'{{"seq": {r[0]}, "occurred_at": {s(r[1])}, "actor": {s(r[2])}, '
        f'"actor_kind": {s(r[3])}, "action": {s(r[4])}, "object_type": {s(r[5])}, '
        f'"object_id": {s(r[6])}, "object_repr": {s(r[7])}, "model": {n(r[8])}, '
        f'"data": {r[9]}, "request_id": {n(r[10])}, "ip": {n(r[11])}, '
        f'"prev_hash": {s(r[12])}, "hash": {s(r[13])}}}\n'
        for r in rows
    )


def jsonl_chunks(queryset: QuerySet) -> Iterator[Chunk]:
    for batch in event_rows(queryset, batch_size=BATCH_ROWS):
        yield jsonl_text(batch).encode("utf-8"), len(batch), batch[0][0], batch[-1][0]


_CSV_SPECIAL = re.compile(r'[",\r\n]')
# A spreadsheet takes a cell that begins with one of these for a formula (OWASP's CSV
# injection list), and a username or a client's request id may begin with any of them.
FORMULA_STARTS = frozenset("=+-@\t\r")
# A formula start at the beginning of one of a row's cells, once they are joined each
# after a NUL. Kept apart from _CSV_SPECIAL: two searches cost less than half of one
# that alternates between the two patterns.
_CSV_FORMULA = re.compile(r"\x00[-=+@\t\r]")


def csv_safe(value: str) -> str:
    """The value with a leading apostrophe when a spreadsheet would read it as a formula:
    the apostrophe shows the text as text instead of running it."""
    return "'" + value if value[:1] in FORMULA_STARTS else value


def csv_cell(value: str | None) -> str:
    """A field as RFC 4180 (and Python's csv module, minimal quoting) writes it, after
    csv_safe(): quoted, quotes doubled, when it holds a comma, a quote or a line break;
    null is empty."""
    if value is None:
        return ""
    if value[:1] in FORMULA_STARTS:
        value = "'" + value
    if _CSV_SPECIAL.search(value):
        return '"' + value.replace('"', '""') + '"'
    return value


def csv_text(rows: list[tuple]) -> str:
    """Rows of events as CSV lines (CRLF), as the csv module would write them with every
    cell passed through csv_safe(). Written by hand: the csv module spends more on a row
    than fetching it does. Most rows need neither quoting nor an apostrophe but in data,
    so two searches over a row's other fields pick the short way."""
    c, special, formula = csv_cell, _CSV_SPECIAL.search, _CSV_FORMULA.search
    lines = []
    for r in rows:
        model, request_id, ip = r[8] or "", r[10] or "", r[11] or ""
        plain = (r[1], r[2], r[3], r[4], r[5], r[6], r[7], model, request_id, ip, r[12], r[13])
        try:
            joined = "\x00".join(plain)
        except TypeError:  # a null where the schema allows none: the careful way
            needs_care = True
        else:
            needs_care = special(joined) is not None or formula("\x00" + joined) is not None
        if needs_care:
            cells = ",".join(c(v) for v in r[1:])
            lines.append(f"{r[0]},{cells}\r\n")
        else:
            lines.append(
                f"{r[0]},{r[1]},{r[2]},{r[3]},{r[4]},{r[5]},{r[6]},{r[7]},{model},{c(r[9])},"
                f"{request_id},{ip},{r[12]},{r[13]}\r\n"
            )
    return "".join(lines)


def csv_chunks(queryset: QuerySet) -> Iterator[Chunk]:
    """A header row, then one row per event; null is an empty cell, data its JSON text."""
    yield (",".join(COLUMNS) + "\r\n").encode("utf-8"), 0, None, None
    for batch in event_rows(queryset, batch_size=BATCH_ROWS):
        yield csv_text(batch).encode("utf-8"), len(batch), batch[0][0], batch[-1][0]


def parsed_events(rows: list[tuple]) -> Iterator[dict]:
    for row in rows:
        event = dict(zip(COLUMNS, row, strict=True))
        event["data"] = json.loads(row[DATA])
        yield event


@dataclass
class ExportStream:
    """Sends an export's chunks, hashing and counting exactly what goes out, and records
    it (audit.exported, with a signed manifest) when the last byte is sent, or when the
    client goes away early (then marked incomplete)."""

    actor: Any
    kind: str
    format: str
    filters: dict[str, Any]
    head: tuple[int, str]
    extra: dict[str, Any] = field(default_factory=dict)
    export_id: uuid.UUID = field(default_factory=uuid.uuid4)
    started_at: datetime = field(default_factory=timezone.now)

    def __post_init__(self):
        # The stream is sent after the request's middleware has returned, so the
        # request's id and address are kept here for the event written at the end.
        self._context = current()
        # The manifest is signed once the last byte is sent: a key that cannot sign
        # stops the export before the first.
        signing_key()

    def stream(self, chunks: Iterator[Chunk]) -> Iterator[bytes]:
        digest = hashlib.sha256()
        rows, first_seq, last_seq = 0, None, None
        complete = False
        try:
            for data, count, first, last in chunks:
                digest.update(data)
                rows += count
                first_seq = first_seq if first_seq is not None else first
                last_seq = last if last is not None else last_seq
                yield data
            complete = True
        finally:
            # Close the source first: the thread reading its rows must be done with
            # the connection before the export is recorded on it.
            getattr(chunks, "close", lambda: None)()
            try:
                self._record(rows, first_seq, last_seq, digest.hexdigest(), complete)
            except Exception:
                # A server closing an abandoned response swallows what its closers
                # raise; an export that could not be recorded must not pass unnoticed.
                logger.exception("Export %s could not be recorded", self.export_id)
                raise

    def _record(self, rows, first_seq, last_seq, sha256, complete) -> None:
        from audits.services import audit_export_create

        with audit_context(request_id=self._context.request_id, ip=self._context.ip):
            audit_export_create(
                actor=self.actor,
                export_id=self.export_id,
                kind=self.kind,
                format=self.format,
                filters=self.filters,
                rows=rows,
                first_seq=first_seq,
                last_seq=last_seq,
                head=self.head,
                sha256=sha256,
                started_at=self.started_at,
                complete=complete,
                extra=self.extra,
            )

    def manifest_path(self) -> str:
        return reverse("audit-export-manifest", kwargs={"export_id": self.export_id})

    def response(self, chunks: Iterator[Chunk], *, filename: str) -> StreamingHttpResponse:
        response = StreamingHttpResponse(
            self.stream(chunks), content_type=CONTENT_TYPES[self.format]
        )
        response["Content-Disposition"] = f'attachment; filename="{filename}"'
        response["Cache-Control"] = "no-store"
        # Proxies that buffer whole responses would hold a large export in memory.
        response["X-Accel-Buffering"] = "no"
        response["X-Audit-Export-Id"] = str(self.export_id)
        response["X-Audit-Head-Seq"] = str(self.head[0])
        response["X-Audit-Head-Hash"] = self.head[1]
        response["Link"] = f'<{self.manifest_path()}>; rel="describedby manifest"'
        return response


# What a model name may hold (registry.models.NAME_PATTERN): anything else in a `model`
# filter, which is any text a caller sent, is kept out of the Content-Disposition header.
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def export_filename(kind: str, filters: dict[str, Any], format: str, at: datetime) -> str:
    model = _FILENAME_UNSAFE.sub("_", filters.get("model") or "")
    scope = f"-{model}" if model else ""
    return f"{kind.replace('_', '-')}{scope}-{at:%Y%m%dT%H%M%SZ}.{format}"


def pdf_chunks(
    queryset: QuerySet,
    *,
    build: Callable[[list[dict], str], bytes],
    on_digest: Callable[[str], None],
    chunk_size: int = 256 * 1024,
) -> Iterator[Chunk]:
    """The PDF, built in memory from the events (the caller caps their number). `build`
    gets the parsed events and the sha256 of their JSON Lines export, which the report
    prints since no document can hold its own digest."""
    jsonl = hashlib.sha256()
    events: list[dict] = []
    for batch in event_rows(queryset, batch_size=BATCH_ROWS):
        jsonl.update(jsonl_text(batch).encode("utf-8"))
        events.extend(parsed_events(batch))
    on_digest(jsonl.hexdigest())
    document = build(events, jsonl.hexdigest())
    first = events[0]["seq"] if events else None
    last = events[-1]["seq"] if events else None
    for start in range(0, len(document), chunk_size):
        rows = len(events) if start == 0 else 0
        yield document[start : start + chunk_size], rows, first, last
