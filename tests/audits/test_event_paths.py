"""One builder for every path: for the same inputs, record(), the bulk import, the
registration's general path and its one statement (PostgreSQL, which hashes in SQL)
write events that are byte-identical but for seq, occurred_at, prev_hash and hash,
and every hash verifies, by audits.chain and by the three lines of API.md.

The inputs are generated: Unicode with astral and combining characters, escapes,
quotes, backslashes, control characters, the character the statement once used as
its marker, floats at the edges of their range, integers past 64 bits, nesting,
nulls and empty strings. U+0000 and lone surrogates are left out: PostgreSQL stores
neither in text or jsonb, and UTF-8 has no form for a surrogate.
"""

from contextlib import contextmanager
from dataclasses import dataclass
from unittest import mock

import pytest
from django.db import connection, transaction
from django.db.models import TextField
from django.db.models.functions import Cast
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from audits import context
from audits.bulk import append_events
from audits.chain import BODY_FIELDS, canonical, compute_hash
from audits.events import Computed, build, fragments
from audits.models import AuditEvent
from audits.services import record
from registry import registration
from registry.models import RegisteredModel
from tests.audits.conftest import contract_hash
from tests.factories import sha

pytestmark = pytest.mark.django_db

SPECIAL = [
    "",
    "\x01",
    "\x010\x01",
    "\x011\x01",
    "\\u0001",
    "\\u00010\\u0001",
    '"',
    "'",
    "\\",
    '\\"',
    "\\n",
    "E'\\n'",
    "e\u0301",
    "\u0301",
    "\U0001f600",
    "\U0001d4b3",
    "\U0010ffff",
    "\u2028\u2029",
    "\ufeff",
    "\x7f",
    "\x1f",
    "\t\r\n\b\f",
    "%s",
    "%(name)s",
    "{}",
    "$1",
    "'||'",
    "::text",
]
TEXT = st.one_of(
    st.text(
        st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"),
        max_size=12,
    ),
    st.sampled_from(SPECIAL),
)
EDGE_FLOATS = [-0.0, 0.0, 1e300, -1e300, 5e-324, 1e-300, 1e16, 2.5e15, 0.1 + 0.2]
EDGE_FLOATS += [1.7976931348623157e308, 123.0, 1e-7]
FLOATS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(EDGE_FLOATS))
INTS = st.one_of(st.integers(), st.sampled_from([2**63, -(2**63) - 1, 2**70, 10**40, 0]))
JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), INTS, FLOATS, TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(TEXT, inner, max_size=3)),
    max_leaves=10,
)
OBJECTS = st.dictionaries(TEXT, JSON, max_size=4)


@dataclass
class Registration:
    name: str
    artifact_uri: str
    artifact_size: int | None
    framework: str
    metrics: dict
    lineage: dict
    request_id: str | None
    ip: str | None


REGISTRATIONS = st.builds(
    Registration,
    name=TEXT.filter(bool),
    artifact_uri=TEXT,
    artifact_size=st.one_of(st.none(), st.integers(0, 2**63 - 1)),
    framework=TEXT,
    metrics=OBJECTS,
    lineage=OBJECTS,
    request_id=st.one_of(st.none(), TEXT),
    ip=st.one_of(st.none(), TEXT),
)
VARYING = ("seq", "occurred_at", "prev_hash", "hash")
STORED = (*BODY_FIELDS, "actor_user_id", "prev_hash", "hash")
# A version id no test reaches, handed out again before each path (PostgreSQL's
# sequences ignore rollbacks; SQLite's counter rolls back with the rest).
VERSION_ID = 900_000_001


class _Undone(Exception):
    pass


@contextmanager
def rolled_back():
    try:
        with transaction.atomic():
            yield
            raise _Undone
    except _Undone:
        pass


def _stored(seq: int) -> dict:
    row = (
        AuditEvent.objects.filter(seq=seq)
        .annotate(data_text=Cast("data", TextField()))
        .values(*STORED, "data_text")
        .get()
    )
    row["occurred_at"] = row["occurred_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return row


def _same_version_id() -> None:
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT setval(pg_get_serial_sequence('registry_modelversion', 'id'), %s, false)",
                [VERSION_ID],
            )


def _register(ci, case: Registration, *, general: bool) -> int:
    taken = []
    original = registration._register_in_one_statement

    def spy(version, name, condition=None):
        result = None if general else original(version, name, condition)
        taken.append(result is not None)
        return result

    _same_version_id()
    with mock.patch.object(registration, "_register_in_one_statement", spy):
        _, created = registration.model_version_register(
            actor=ci,
            model=case.name,
            artifact_uri=case.artifact_uri,
            artifact_sha256=sha("paths"),
            artifact_size=case.artifact_size,
            framework=case.framework,
            metrics=case.metrics,
            lineage=case.lineage,
        )
    assert created
    if connection.vendor == "postgresql":
        assert taken == [not general]
    return AuditEvent.objects.latest("seq").seq


def _fields(ci, case: Registration, version_id: int) -> dict:
    """The event written out by hand, as a caller of record() or the import would."""
    return {
        "action": "model_version.registered",
        "object_type": "model_version",
        "object_id": str(version_id),
        "object_repr": f"{case.name} v1",
        "model": case.name,
        "data": {
            "version": 1,
            "artifact_uri": case.artifact_uri,
            "artifact_sha256": sha("paths"),
            "artifact_size": case.artifact_size,
            "framework": case.framework,
            "metrics": case.metrics,
            "lineage": case.lineage,
        },
    }


@contextmanager
def acting_from(request_id: str | None, ip: str | None):
    """The audit context as given, with no check on the request id: audit_context()
    would replace an awkward one with an id of its own, and the import takes any."""
    token = context._current.set(context.AuditContext(request_id=request_id, ip=ip))
    try:
        yield
    finally:
        context._current.reset(token)


def _paths(ci, case: Registration) -> dict[str, dict]:
    events: dict[str, dict] = {}
    with acting_from(case.request_id, case.ip):
        if connection.vendor == "postgresql":
            with rolled_back():
                events["statement"] = _stored(_register(ci, case, general=False))
        with rolled_back():
            events["general"] = _stored(_register(ci, case, general=True))
        version_id = int(events["general"]["object_id"])
        with rolled_back():
            event = record(actor=ci, **_fields(ci, case, version_id))
            events["record"] = _stored(event.seq)
    with rolled_back():
        seq, _ = append_events(
            [
                {
                    "actor": ci.get_username(),
                    "actor_kind": "service",
                    "actor_user_id": ci.pk,
                    "request_id": case.request_id,
                    "ip": case.ip,
                    **_fields(ci, case, version_id),
                }
            ]
        )
        events["bulk"] = _stored(seq)
    return events


@pytest.fixture
def ci(make_user):
    user = make_user("ci-bot", "ci")
    with transaction.atomic():  # the chain head exists, as on any running service
        record(actor=None, action="test.started", object_type="test", object_id="1")
    return user


@pytest.mark.sqlite
@settings(
    max_examples=300,
    deadline=None,
    database=None,
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(case=REGISTRATIONS)
def test_every_path_writes_the_same_event_and_every_hash_verifies(ci, case):
    with rolled_back():
        RegisteredModel.objects.create(name=case.name, created_by=ci)
        events = _paths(ci, case)

    expected = 4 if connection.vendor == "postgresql" else 3
    assert len(events) == expected
    same = {
        path: canonical({k: v for k, v in event.items() if k not in VARYING})
        for path, event in events.items()
    }
    first = next(iter(events.values()))
    assert len(set(same.values())) == 1, {
        path: {k: v for k, v in event.items() if k not in VARYING and v != first[k]}
        for path, event in events.items()
    }
    for path, event in events.items():
        body = {field: event[field] for field in BODY_FIELDS}
        assert compute_hash(event["prev_hash"], body) == event["hash"], path
        assert contract_hash(event["prev_hash"], body) == event["hash"], path


@settings(max_examples=500, deadline=None, database=None)
@given(data=OBJECTS, repr_prefix=TEXT, number=st.integers(1, 2**63 - 1), seq=st.integers(1))
def test_the_statements_fragments_spell_the_canonical_body(data, repr_prefix, number, seq):
    """What the statement joins in SQL is the builder's canonical text, cut where the
    database's values go: filled in, it is that text exactly."""
    fields = {
        "actor": "ci-bot",
        "actor_kind": "service",
        "action": "model_version.registered",
        "object_type": "model_version",
        "model": repr_prefix,
        "request_id": repr_prefix,
        "ip": None,
    }
    when = "2026-12-04T17:00:00.123456Z"
    values = {"id": str(number + 1), "number": str(number), "seq": str(seq), "at": when}
    computed = build(
        **fields,
        object_id=Computed("id"),
        object_repr=(repr_prefix, Computed("number")),
        data={**data, "version": Computed("number")},
    )
    concrete = build(
        **fields,
        object_id=number + 1,
        object_repr=(repr_prefix, number),
        data={**data, "version": number},
    )
    pieces = computed.canonical_fragments(Computed("seq"), Computed("at"))
    spelled = "".join(
        values[piece.expression] if isinstance(piece, Computed) else piece for piece in pieces
    )
    body = concrete.body(seq, when)
    assert spelled == canonical(body)
    # The data column the statement stores is the same text of the data alone.
    data_pieces = fragments(computed.data)
    assert "".join(
        values[p.expression] if isinstance(p, Computed) else p for p in data_pieces
    ) == canonical(concrete.data)
