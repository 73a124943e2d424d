"""The one-statement registration (PostgreSQL): the version, its number and its audit
event written by one SQL statement must leave exactly what the general path (ORM and
audits.record()) leaves, and a chain that anyone can check with the three lines of
API.md.

The general path is selected, where a test compares the two, by replacing our own
`registry.registration._register_in_one_statement` with a wrapper that answers None (the
answer that sends model_version_register down the general path); the wrapper also
notes which way each registration went, so a test knows the statement was exercised.
"""

import hashlib
import itertools
import json
import threading
import time
from contextlib import contextmanager
from datetime import UTC
from decimal import Decimal
from functools import partial

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection, transaction
from rest_framework.test import APIClient

from audits.context import audit_context
from audits.models import GENESIS_HASH, AuditEvent, ChainHead
from audits.selectors import verify_stored_chain
from audits.services import lock_head, record
from registry import registration
from registry.models import ModelVersion, RegisteredModel
from registry.registration import model_version_register
from registry.services import registered_model_update
from tests.factories import make_model, sha, version_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

URL = "/api/v1/models/fraud/versions/"
EVENT_DATA_KEYS = {
    "version",
    "artifact_uri",
    "artifact_sha256",
    "artifact_size",
    "framework",
    "metrics",
    "lineage",
}

# Values the canonical JSON and PostgreSQL may spell differently, and what the event's
# data holds for them once stored (jsonb keeps numbers as decimals).
AWKWARD_METRICS = {
    "huge": 1e16,
    "negative_zero": -0.0,
    "tiny": 1e-300,
    "subnormal": 5e-324,
    "inexact": 0.1 + 0.2,
    "below_the_switch": 2.5e15,
    "max_float": 1.7976931348623157e308,
    "big_int": 2**70,
    "negative_big_int": -(2**63) - 1,
    'ünï «code» 😀 "quoted" back\\slash': 1,
}
AWKWARD_METRICS_STORED = {
    "huge": 10**16,
    "negative_zero": 0.0,
    "tiny": 1e-300,
    "subnormal": 5e-324,
    "inexact": 0.30000000000000004,
    "below_the_switch": 2.5e15,
    "max_float": int(Decimal("1.7976931348623157e+308")),
    "big_int": 2**70,
    "negative_big_int": -(2**63) - 1,
    'ünï «code» 😀 "quoted" back\\slash': 1,
}
AWKWARD_URI = (
    "s3://bücket/模型/🚀/\"double\"/'single'/back\\slash/%s/%(name)s/{}/$1/"
    "tab\there/new\nline/\u2028/\x7f/naïve.pkl"
)
AWKWARD_LINEAGE = {
    "dataset_uri": "s3://données/naïve 🤖 «set».parquet",
    "dataset_sha256": sha("dataset"),
    "code_repo": "https://git.example/\"repo\"\\path?q=%s&r='1'",
    "code_commit": "abc1234",
    "run_id": "run-«ünï»-😀-\\n-is-not-a-newline-E'\\n'",
}
NESTED_PARAMS = {
    "layers": [{"units": 64, "activation": "relu"}, {"units": [1, [2, [3, {"deep": None}]]]}],
    "optimiser": {"name": "ädam 🧠", "lr": 1e-300, "betas": [0.9, 0.999]},
    "flags": {"on": True, "off": False},
    "huge": 2**80,
}
LITERAL_MARKER = "\\u0001"  # backslash, u, 0, 0, 0, 1: six characters of text


class _Undone(Exception):
    """Raised to roll a block back."""


class Paths:
    """Wraps _register_in_one_statement: notes which way each registration went
    ("statement", "fell back", "raised", or "forced" to the general path) and, inside
    `general()`, answers None so that the calling thread takes the general path."""

    def __init__(self, original):
        self._original = original
        self._local = threading.local()
        self._lock = threading.Lock()
        self.taken: list[str] = []

    @contextmanager
    def general(self):
        self._local.general = True
        try:
            yield
        finally:
            self._local.general = False

    def _note(self, way: str) -> None:
        with self._lock:
            self.taken.append(way)

    def __call__(self, version, name):
        if getattr(self._local, "general", False):
            self._note("forced")
            return None
        try:
            result = self._original(version, name)
        except BaseException:
            self._note("raised")
            raise
        self._note("fell back" if result is None else "statement")
        return result


@pytest.fixture
def paths(monkeypatch):
    spy = Paths(registration._register_in_one_statement)
    monkeypatch.setattr(registration, "_register_in_one_statement", spy)
    return spy


def _head_seq() -> int:
    return ChainHead.objects.values_list("seq", flat=True).first() or 0


def _events_after(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def _contract_body(event: AuditEvent) -> dict:
    """The event's body as the JSONL export of API.md spells it, from stored fields."""
    return {
        "seq": event.seq,
        "occurred_at": event.occurred_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "actor": event.actor,
        "actor_kind": event.actor_kind,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "object_repr": event.object_repr,
        "model": event.model,
        "data": event.data,
        "request_id": event.request_id,
        "ip": event.ip,
    }


def _contract_canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _chain_faults() -> list[str]:
    """Every place where the stored log disagrees with the three lines of API.md,
    recomputed here without the project's own chain code."""
    faults, prev = [], GENESIS_HASH
    for position, event in enumerate(AuditEvent.objects.order_by("seq"), start=1):
        if event.seq != position:
            faults.append(f"seq {event.seq} at position {position}")
        if event.prev_hash != prev:
            faults.append(f"seq {event.seq}: prev_hash does not name the event before")
        canonical = _contract_canonical(_contract_body(event))
        digest = hashlib.sha256((prev + "\n" + canonical).encode("utf-8")).hexdigest()
        if digest != event.hash:
            faults.append(f"seq {event.seq}: hash does not match {canonical}")
        prev = event.hash
    head = ChainHead.objects.filter(pk=1).values_list("hash", flat=True).first()
    if head is not None and head != prev:
        faults.append("the chain head does not name the last event")
    return faults


def _times_go_back(events: list[AuditEvent]) -> list[int]:
    """Seqs whose occurred_at is earlier than the event before."""
    return [
        later.seq
        for earlier, later in itertools.pairwise(events)
        if later.occurred_at < earlier.occurred_at
    ]


def _expected_data(payload: dict, version: int, metrics: dict | None = None) -> dict:
    return {
        "version": version,
        "artifact_uri": payload["artifact_uri"],
        "artifact_sha256": payload["artifact_sha256"],
        "artifact_size": payload.get("artifact_size"),
        "framework": payload.get("framework", ""),
        "metrics": payload.get("metrics", {}) if metrics is None else metrics,
        "lineage": payload.get("lineage", {}),
    }


# -- The event is the one the general path writes ---------------------------------------


def _twin_registrations(api, paths, payload: dict):
    """The same registration by the general path (then rolled back) and by the
    statement: for each, the answer, the stored version row (as values()) and the
    events written, all read before the general one is rolled back."""

    def register():
        before = _head_seq()
        response = api.post(URL, payload, format="json", HTTP_X_REQUEST_ID="req-twin")
        assert response.status_code == 201, response.content
        version = (
            ModelVersion.objects.filter(
                model__name="fraud", artifact_sha256=payload["artifact_sha256"]
            )
            .values()
            .get()
        )
        return response, version, _events_after(before)

    try:
        with transaction.atomic(), paths.general():
            general = register()
            raise _Undone
    except _Undone:
        pass
    assert not ModelVersion.objects.exists()
    statement = register()
    assert paths.taken == ["forced", "statement"]
    return general, statement


TWIN_PAYLOAD = version_payload(
    "twin",
    artifact_size=2**40,
    framework="xgboost",
    metrics={"auc": 0.9123456789012345, "loss": 1e-12, "count": 12},
    params={"depth": 6, "nested": {"a": [1, 2, {"b": None}]}},
    card={"intended_use": "Flags card fraud"},
    tags={"team": "risk"},
    description="first cut",
)
VARYING = ("occurred_at", "object_id")  # the time, and the id the database hands out


def test_the_statement_writes_the_event_the_general_path_writes_field_for_field(ci_api, ci, paths):
    (_, general_version, general_events), (_, version, events) = _twin_registrations(
        ci_api, paths, TWIN_PAYLOAD
    )

    assert len(general_events) == len(events) == 1
    general_event, event = general_events[0], events[0]
    assert general_event.object_id == str(general_version["id"])
    assert event.object_id == str(version["id"])
    assert (
        event.action,
        event.actor,
        event.actor_kind,
        event.actor_user_id,
        event.object_type,
        event.object_repr,
        event.model,
        event.request_id,
        event.ip,
    ) == (
        "model_version.registered",
        "ci-bot",
        "service",
        ci.pk,
        "model_version",
        "fraud v1",
        "fraud",
        "req-twin",
        "127.0.0.1",
    )
    assert set(event.data) == EVENT_DATA_KEYS
    assert event.data == _expected_data(TWIN_PAYLOAD, 1)

    def comparable(e):
        body = _contract_body(e)
        return {k: v for k, v in body.items() if k not in VARYING}

    assert comparable(event) == comparable(general_event)
    # The same text, not merely equal values (1 and 1.0 compare equal in Python).
    assert _contract_canonical(comparable(event)) == _contract_canonical(comparable(general_event))
    assert (event.actor_user_id, event.prev_hash) == (
        general_event.actor_user_id,
        general_event.prev_hash,
    )
    assert verify_stored_chain().ok
    assert _chain_faults() == []


def test_the_statement_stores_the_version_the_general_path_stores(ci_api, paths):
    (_, general_version, _), (_, version, _) = _twin_registrations(ci_api, paths, TWIN_PAYLOAD)

    def stored(row):
        return {k: val for k, val in row.items() if k not in ("id", "created_at", "updated_at")}

    assert stored(version) == stored(general_version)
    assert stored(version)["params"] == TWIN_PAYLOAD["params"]
    assert RegisteredModel.objects.get(name="fraud").last_version == 1


def test_the_statement_answers_what_the_general_path_answers(ci_api, paths):
    (general_response, _, _), (response, _, _) = _twin_registrations(ci_api, paths, TWIN_PAYLOAD)

    def answer(r):
        return {k: v for k, v in r.json().items() if k not in ("created_at", "updated_at")}

    assert answer(response) == answer(general_response)
    assert response.json()["version"] == 1
    assert response.json()["created_by"] == "ci-bot"


def test_a_service_call_without_a_request_writes_the_event_the_general_path_writes(
    owner, fraud, paths
):
    """No audit context (request_id and ip null), a user rather than a service, and the
    defaults for every optional value."""
    arguments = {"artifact_uri": "s3://artifacts/plain.pkl", "artifact_sha256": sha("plain")}
    before = _head_seq()
    try:
        with transaction.atomic(), paths.general():
            general_version, created = model_version_register(
                actor=owner, model="fraud", **arguments
            )
            assert created
            (general_event,) = _events_after(before)
            raise _Undone
    except _Undone:
        pass

    version, created = model_version_register(actor=owner, model="fraud", **arguments)

    assert created
    assert paths.taken == ["forced", "statement"]
    (event,) = _events_after(before)
    assert event.object_id == str(version.pk)
    assert general_event.object_id == str(general_version.pk)
    assert (event.actor, event.actor_kind, event.actor_user_id) == ("olivia", "user", owner.pk)
    assert (event.request_id, event.ip, event.object_repr) == (None, None, "fraud v1")
    assert event.data == {
        "version": 1,
        "artifact_uri": "s3://artifacts/plain.pkl",
        "artifact_sha256": sha("plain"),
        "artifact_size": None,
        "framework": "",
        "metrics": {},
        "lineage": {},
    }
    body, general_body = _contract_body(event), _contract_body(general_event)
    for key in VARYING:
        body.pop(key), general_body.pop(key)
    assert _contract_canonical(body) == _contract_canonical(general_body)
    assert event.prev_hash == general_event.prev_hash
    assert _chain_faults() == []


def test_seq_has_no_gap_and_time_never_goes_back_as_the_two_paths_alternate(
    ci_api, owner, api_for, paths
):
    owner_api = api_for(owner)
    before = _head_seq()
    expected = []
    for i in range(12):
        if i % 2:
            with paths.general():
                response = ci_api.post(URL, version_payload(f"alt-{i}"), format="json")
        else:
            response = ci_api.post(URL, version_payload(f"alt-{i}"), format="json")
        assert response.status_code == 201, response.content
        expected.append(("model_version.registered", f"fraud v{i + 1}"))
        if i % 3 == 0:
            edit = owner_api.patch(
                "/api/v1/models/fraud/", {"description": f"edit {i}"}, format="json"
            )
            assert edit.status_code == 200, edit.content
            expected.append(("registered_model.updated", "fraud"))

    events = _events_after(before)
    assert [(e.action, e.object_repr) for e in events] == expected
    assert [e.seq for e in events] == list(range(before + 1, before + 1 + len(expected)))
    previous = AuditEvent.objects.get(seq=before)
    assert [e.prev_hash for e in events] == [previous.hash] + [e.hash for e in events[:-1]]
    assert _times_go_back([previous, *events]) == []
    assert paths.taken == ["statement", "forced"] * 6
    assert verify_stored_chain().ok
    assert _chain_faults() == []


# -- Awkward values ---------------------------------------------------------------------


def test_awkward_values_registered_by_the_statement_verify_by_the_three_lines(ci_api, paths):
    payload = version_payload(
        "awkward",
        artifact_uri=AWKWARD_URI,
        framework='skl€arn "v1.5" \\ 🚀',
        metrics=AWKWARD_METRICS,
        params=NESTED_PARAMS,
        lineage=AWKWARD_LINEAGE,
    )
    before = _head_seq()

    response = ci_api.post(URL, payload, format="json")

    assert response.status_code == 201, response.content
    assert paths.taken == ["statement"]
    (event,) = _events_after(before)
    assert (event.action, event.object_repr) == ("model_version.registered", "fraud v1")
    assert event.data == _expected_data(payload, 1, metrics=AWKWARD_METRICS_STORED)
    version = ModelVersion.objects.get(artifact_sha256=sha("awkward"))
    assert event.object_id == str(version.pk)
    assert (version.artifact_uri, version.params) == (AWKWARD_URI, NESTED_PARAMS)
    result = verify_stored_chain()
    assert result.ok, result
    assert _chain_faults() == []


def test_the_literal_text_backslash_u0001_registers_and_verifies(ci_api, paths):
    payload = version_payload(
        "literal",
        artifact_uri=f"s3://artifacts/{LITERAL_MARKER}/{LITERAL_MARKER}0{LITERAL_MARKER}.pkl",
        framework=LITERAL_MARKER,
        metrics={LITERAL_MARKER: 1.5},
        lineage={"run_id": f"{LITERAL_MARKER}1{LITERAL_MARKER}", "code_commit": "abc1234"},
    )
    before = _head_seq()

    response = ci_api.post(URL, payload, format="json")

    assert response.status_code == 201, response.content
    assert len(paths.taken) == 1
    (event,) = _events_after(before)
    assert (event.action, event.object_repr) == ("model_version.registered", "fraud v1")
    assert event.data == _expected_data(payload, 1)
    assert event.data["artifact_uri"].count("\\u0001") == 3
    assert verify_stored_chain().ok
    assert _chain_faults() == []


# \x01 was once the statement's marker character; the canonical text is now cut where
# the database's values go, so no value is special.
MARKER_PLACES = {
    "artifact_uri": {"artifact_uri": "s3://artifacts/\x01/model.pkl"},
    "artifact_uri_shaped_like_a_marker": {"artifact_uri": "s3://artifacts/\x010\x01.pkl"},
    "framework": {"framework": "sk\x01learn"},
    "metric_name": {"metrics": {"auc\x01": 0.9}},
    "lineage": {"lineage": {"run_id": "run\x011\x01", "code_commit": "abc1234"}},
}


@pytest.mark.parametrize("place", MARKER_PLACES)
def test_a_value_holding_a_control_character_takes_the_statement_and_verifies(ci_api, paths, place):
    payload = version_payload(f"marker-{place}", **MARKER_PLACES[place])
    before = _head_seq()

    response = ci_api.post(URL, payload, format="json")

    assert response.status_code == 201, response.content
    assert paths.taken == ["statement"]
    (event,) = _events_after(before)
    assert (event.action, event.object_repr) == ("model_version.registered", "fraud v1")
    version = ModelVersion.objects.get(artifact_sha256=payload["artifact_sha256"])
    assert event.object_id == str(version.pk)
    assert event.data == _expected_data(payload, 1)
    assert verify_stored_chain().ok
    assert _chain_faults() == []


def test_control_characters_in_a_direct_service_call_take_the_statement_and_verify(
    ci, fraud, paths
):
    before = _head_seq()
    with audit_context(request_id="req-marker", ip="192.0.2.1"):
        version, created = model_version_register(
            actor=ci,
            model=fraud,
            artifact_uri="s3://\x01\x01/x.pkl",
            artifact_sha256=sha("service-marker"),
            lineage={"run_id": "\x01"},
            metrics={"\x010\x01": 1e16},
        )
    assert created
    assert paths.taken == ["statement"]
    (event,) = _events_after(before)
    assert event.object_id == str(version.pk)
    assert event.data["metrics"] == {"\x010\x01": 10**16}
    assert (event.request_id, event.ip) == ("req-marker", "192.0.2.1")
    assert verify_stored_chain().ok
    assert _chain_faults() == []


# -- Retries and missing models over HTTP ------------------------------------------------


def test_a_retry_answers_200_with_the_same_body_and_writes_nothing(ci_api, paths):
    first = ci_api.post(URL, version_payload("again"), format="json")
    assert first.status_code == 201
    before = _head_seq()
    stored = list(ModelVersion.objects.values())

    retry = ci_api.post(URL, version_payload("again"), format="json")

    assert retry.status_code == 200
    assert retry.json() == first.json()
    assert _events_after(before) == []
    assert _head_seq() == before
    assert list(ModelVersion.objects.values()) == stored
    assert RegisteredModel.objects.get(name="fraud").last_version == 1
    assert paths.taken == ["statement", "fell back"]


def test_a_registration_to_a_missing_model_answers_404_and_writes_nothing(ci_api):
    before = _head_seq()

    response = ci_api.post("/api/v1/models/nope/versions/", version_payload("x"), format="json")

    assert response.status_code == 404
    assert response["Content-Type"] == "application/problem+json"
    assert response.json()["status"] == 404
    assert _events_after(before) == []
    assert _head_seq() == before
    assert not ModelVersion.objects.exists()


# -- A log with no head row yet ---------------------------------------------------------


@pytest.fixture
def bare_fraud(transactional_db):
    """A model and a registering user made without the services, so no event has been
    written and the chain head row does not exist."""
    user = get_user_model().objects.create_user("ci-bot", password="correct-horse-battery")
    user.user_permissions.add(
        *Permission.objects.filter(
            content_type__app_label="registry",
            codename__in=["view_registeredmodel", "add_modelversion"],
        )
    )
    RegisteredModel.objects.create(name="fraud", created_by=user)
    api = APIClient()
    api.force_authenticate(user)
    return api


@pytest.mark.django_db(transaction=True)
def test_without_a_head_row_the_first_registration_is_version_1_and_event_1(bare_fraud, paths):
    assert not ChainHead.objects.exists()
    assert not AuditEvent.objects.exists()

    response = bare_fraud.post(URL, version_payload("first"), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1
    events = list(AuditEvent.objects.order_by("seq"))
    assert [(e.seq, e.action, e.object_repr, e.prev_hash) for e in events] == [
        (1, "model_version.registered", "fraud v1", GENESIS_HASH)
    ]
    assert events[0].object_id == str(ModelVersion.objects.get().pk)
    assert events[0].data == _expected_data(version_payload("first"), 1)
    head = ChainHead.objects.get()
    assert (head.pk, head.seq, head.hash) == (1, 1, events[0].hash)
    assert RegisteredModel.objects.get().last_version == 1
    assert paths.taken == ["fell back"]
    assert verify_stored_chain().ok
    assert _chain_faults() == []


@pytest.mark.django_db(transaction=True)
def test_once_the_head_row_exists_the_next_registration_takes_the_statement(bare_fraud, paths):
    assert not ChainHead.objects.exists()
    bare_fraud.post(URL, version_payload("first"), format="json")

    response = bare_fraud.post(URL, version_payload("second"), format="json")

    assert response.status_code == 201, response.content
    assert response.json()["version"] == 2
    assert paths.taken == ["fell back", "statement"]
    events = list(AuditEvent.objects.order_by("seq"))
    assert [(e.seq, e.action, e.object_repr) for e in events] == [
        (1, "model_version.registered", "fraud v1"),
        (2, "model_version.registered", "fraud v2"),
    ]
    assert events[1].prev_hash == events[0].hash
    assert ChainHead.objects.get().seq == 2
    assert _times_go_back(events) == []
    assert verify_stored_chain().ok
    assert _chain_faults() == []


@pytest.mark.django_db(transaction=True)
def test_a_registration_rolled_back_with_its_callers_transaction_leaves_no_trace(ci, fraud, paths):
    before = _head_seq()
    head = ChainHead.objects.get()
    with pytest.raises(_Undone), transaction.atomic():
        model_version_register(
            actor=ci, model="fraud", artifact_uri="s3://a", artifact_sha256=sha(1)
        )
        raise _Undone

    assert (ChainHead.objects.get().seq, ChainHead.objects.get().hash) == (head.seq, head.hash)
    assert _events_after(before) == []
    assert not ModelVersion.objects.exists()
    assert RegisteredModel.objects.get(name="fraud").last_version == 0

    version, created = model_version_register(
        actor=ci, model="fraud", artifact_uri="s3://a", artifact_sha256=sha(1)
    )
    assert (created, version.version) == (True, 1)
    assert [(e.seq, e.object_repr) for e in _events_after(before)] == [(before + 1, "fraud v1")]
    assert paths.taken == ["statement", "statement"]
    assert verify_stored_chain().ok


# -- Concurrency on real PostgreSQL -----------------------------------------------------


def _in_parallel(tasks):
    """Run each task in its own thread, all released at once; their answers, in order,
    and every exception raised."""
    start = threading.Barrier(len(tasks))
    answers: list = [None] * len(tasks)
    failures: list[BaseException] = []

    def run(index):
        try:
            start.wait()
            answers[index] = tasks[index]()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(tasks))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return answers, failures


def _assert_one_unbroken_chain():
    events = list(AuditEvent.objects.order_by("seq"))
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert _times_go_back(events) == []
    result = verify_stored_chain()
    assert result.ok, result
    assert result.events_checked == len(events)
    assert _chain_faults() == []


@pytest.mark.django_db(transaction=True)
def test_16_registrations_and_16_other_audited_writes_in_parallel_leave_one_chain(
    make_user, api_for, paths
):
    owner = make_user("olivia", "owner")
    make_model(owner, "fraud")
    make_model(owner, "churn")
    ci = make_user("ci-bot", "ci")
    clients = [api_for(ci) for _ in range(16)]
    before = _head_seq()

    def register(i):
        return clients[i].post(URL, version_payload(f"p{i}"), format="json")

    def write(i):
        actor = get_user_model().objects.get(pk=owner.pk)
        with audit_context(request_id=f"writer-{i}"):
            if i % 3 == 2:
                with transaction.atomic():
                    record(
                        actor=None,
                        action="thing.touched",
                        object_type="thing",
                        object_id=str(i),
                        data={"writer": i},
                    )
            else:
                # The registrations' own model, or another one: both lock a model row
                # first and the chain head last, as the statement does.
                name = "fraud" if i % 3 == 0 else "churn"
                model = RegisteredModel.objects.get(name=name)
                registered_model_update(actor=actor, model=model, description=f"edit {i}")

    tasks = [partial(register, i) for i in range(16)] + [partial(write, i) for i in range(16)]
    answers, failures = _in_parallel(tasks)

    assert failures == []
    assert [a.status_code for a in answers[:16]] == [201] * 16
    assert sorted(a.json()["version"] for a in answers[:16]) == list(range(1, 17))
    assert sorted(
        ModelVersion.objects.filter(model__name="fraud").values_list("version", flat=True)
    ) == list(range(1, 17))
    assert paths.taken == ["statement"] * 16
    new = _events_after(before)
    assert sorted(e.action for e in new) == sorted(
        ["model_version.registered"] * 16
        + ["registered_model.updated"] * 11
        + ["thing.touched"] * 5
    )
    registered = [e for e in new if e.action == "model_version.registered"]
    assert sorted(e.object_repr for e in registered) == sorted(f"fraud v{n}" for n in range(1, 17))
    versions = dict(ModelVersion.objects.values_list("pk", "version"))
    assert all(e.data["version"] == versions[int(e.object_id)] for e in registered)
    _assert_one_unbroken_chain()


@pytest.mark.django_db(transaction=True)
def test_both_registration_paths_in_parallel_on_one_model_number_1_to_16(make_user, api_for, paths):
    make_model(make_user("olivia", "owner"), "fraud")
    ci = make_user("ci-bot", "ci")
    clients = [api_for(ci) for _ in range(16)]
    before = _head_seq()

    def register(i):
        if i % 2:
            with paths.general():
                return clients[i].post(URL, version_payload(f"p{i}"), format="json")
        return clients[i].post(URL, version_payload(f"p{i}"), format="json")

    answers, failures = _in_parallel([partial(register, i) for i in range(16)])

    assert failures == []
    assert [a.status_code for a in answers] == [201] * 16
    assert sorted(ModelVersion.objects.values_list("version", flat=True)) == list(range(1, 17))
    assert sorted(paths.taken) == ["forced"] * 8 + ["statement"] * 8
    new = _events_after(before)
    assert [e.action for e in new] == ["model_version.registered"] * 16
    assert sorted(e.data["version"] for e in new) == list(range(1, 17))
    _assert_one_unbroken_chain()


@pytest.mark.django_db(transaction=True)
def test_one_artifact_sent_by_12_clients_at_once_makes_one_version_and_one_event(
    make_user, api_for, paths
):
    make_model(make_user("olivia", "owner"), "fraud")
    ci = make_user("ci-bot", "ci")
    clients = [api_for(ci) for _ in range(12)]
    before = _head_seq()

    answers, failures = _in_parallel(
        [partial(api.post, URL, version_payload("same"), format="json") for api in clients]
    )

    assert failures == []
    assert sorted(a.status_code for a in answers) == [200] * 11 + [201]
    assert len({json.dumps(a.json(), sort_keys=True) for a in answers}) == 1
    version = ModelVersion.objects.get()
    assert version.version == 1
    assert RegisteredModel.objects.get(name="fraud").last_version == 1
    new = _events_after(before)
    assert [(e.action, e.object_id, e.object_repr) for e in new] == [
        ("model_version.registered", str(version.pk), "fraud v1")
    ]
    assert paths.taken.count("statement") == 1
    _assert_one_unbroken_chain()


def _wait_until_a_backend_waits_for_a_lock():
    """Poll the server until some session of this database is blocked on a lock (a
    synchronisation point, not a timing assertion: it fails only if that never happens)."""
    with connection.cursor() as cursor:
        for _ in range(3000):
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity"
                " WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )
            if cursor.fetchone()[0]:
                return
            time.sleep(0.01)
    pytest.fail("the registration never waited for the chain head")


@pytest.mark.django_db(transaction=True)
def test_a_registration_that_waited_for_the_head_is_timed_after_the_event_it_waited_for(
    ci, fraud, paths
):
    """A writer holds the head; the registration's statement starts and waits for it;
    only then does the writer take its time and commit. The registration's event comes
    next in the chain, so its time must not be earlier."""
    before = _head_seq()
    holding, release = threading.Event(), threading.Event()

    def writer():
        with audit_context(request_id="holder"), transaction.atomic():
            lock_head()
            holding.set()
            release.wait()
            record(actor=None, action="thing.touched", object_type="thing", object_id="1")

    def register():
        holding.wait()
        with audit_context(request_id="waiter"):
            return model_version_register(
                actor=ci, model="fraud", artifact_uri="s3://a", artifact_sha256=sha("waiter")
            )

    threads = []
    results, failures = [None, None], []

    def run(index, task):
        try:
            results[index] = task()
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            failures.append(exc)
            holding.set()
            release.set()
        finally:
            connection.close()

    for index, task in enumerate((writer, register)):
        threads.append(threading.Thread(target=run, args=(index, task)))
        threads[-1].start()
    holding.wait()
    try:
        _wait_until_a_backend_waits_for_a_lock()
    finally:
        release.set()
        for thread in threads:
            thread.join()

    assert failures == []
    assert paths.taken == ["statement"]
    events = _events_after(before)
    assert [(e.seq, e.action, e.request_id) for e in events] == [
        (before + 1, "thing.touched", "holder"),
        (before + 2, "model_version.registered", "waiter"),
    ]
    assert _times_go_back(events) == []
    _assert_one_unbroken_chain()
