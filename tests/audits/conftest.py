import hashlib
import io
import json
from datetime import UTC, datetime

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.management import call_command
from rest_framework.test import APIClient

from audits.bulk import append_events

GENESIS = "0" * 64

# A known sequence, appended through the bulk path so every field is fixed. Payloads are
# ASCII with keys in the order PostgreSQL's jsonb keeps them (shorter keys first), so
# the stored JSON text is the same on PostgreSQL and SQLite.
KNOWN = [
    {
        "occurred_at": datetime(2026, 3, 1, 9, 0, 0, tzinfo=UTC),
        "actor": "olivia",
        "actor_kind": "user",
        "action": "registered_model.created",
        "object_type": "registered_model",
        "object_id": "1",
        "object_repr": "fraud",
        "model": "fraud",
        "data": {"name": "fraud", "risk_tier": "high"},
        "request_id": "req-1",
        "ip": "10.0.0.1",
    },
    {
        "occurred_at": datetime(2026, 3, 1, 9, 5, 0, 250000, tzinfo=UTC),
        "actor": "ci-bot",
        "actor_kind": "service",
        "action": "model_version.registered",
        "object_type": "model_version",
        "object_id": "7",
        "object_repr": "fraud v1",
        "model": "fraud",
        "data": {"metrics": {"auc": 0.9123456789012345}, "version": 1},
        "request_id": "req-2",
        "ip": "10.0.0.2",
    },
    {
        "occurred_at": datetime(2026, 3, 2, 14, 30, 0, tzinfo=UTC),
        "actor": "rita",
        "actor_kind": "user",
        "action": "promotion.approved",
        "object_type": "promotion_request",
        "object_id": "3",
        "object_repr": "#3 fraud v1 → production, «ünïcode»",
        "model": "fraud",
        "data": {"comment": 'Looks "good", ship it', "promotion_request": 3},
        "request_id": "req-3",
        "ip": "10.0.0.3",
    },
    {
        "occurred_at": datetime(2026, 3, 2, 14, 30, 1, 1, tzinfo=UTC),
        "actor": "system",
        "actor_kind": "system",
        "action": "model_version.stage_changed",
        "object_type": "model_version",
        "object_id": "7",
        "object_repr": "fraud v1",
        "model": "fraud",
        "data": {"to": "production", "from": "staging", "version": 1},
        "request_id": None,
        "ip": None,
    },
    {
        "occurred_at": datetime(2026, 3, 3, 8, 0, 0, tzinfo=UTC),
        "actor": "olivia",
        "actor_kind": "user",
        "action": "registered_model.created",
        "object_type": "registered_model",
        "object_id": "2",
        "object_repr": "churn",
        "model": "churn",
        "data": {"name": "churn", "risk_tier": "low"},
        "request_id": "req-5",
        "ip": "10.0.0.1",
    },
]

TIMES = [
    "2026-03-01T09:00:00.000000Z",
    "2026-03-01T09:05:00.250000Z",
    "2026-03-02T14:30:00.000000Z",
    "2026-03-02T14:30:01.000001Z",
    "2026-03-03T08:00:00.000000Z",
]
# The same events without their own times, for appending after events dated now: the
# database's clock dates them, since a log's time never runs backwards along seq.
UNDATED = [{key: value for key, value in event.items() if key != "occurred_at"} for event in KNOWN]


def contract_hash(prev_hash: str, body: dict) -> str:
    """The three lines of API.md, written out again so the tests do not trust ours."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("utf-8")).hexdigest()


def expected_events() -> list[dict]:
    events, prev = [], GENESIS
    for seq, (event, at) in enumerate(zip(KNOWN, TIMES, strict=True), start=1):
        body = {
            "seq": seq,
            "occurred_at": at,
            **{k: event[k] for k in ("actor", "actor_kind", "action", "object_type")},
            "object_id": event["object_id"],
            "object_repr": event["object_repr"],
            "model": event["model"],
            "data": event["data"],
            "request_id": event["request_id"],
            "ip": event["ip"],
        }
        digest = contract_hash(prev, body)
        events.append({**body, "prev_hash": prev, "hash": digest})
        prev = digest
    return events


@pytest.fixture
def known_log(db):
    append_events(KNOWN)
    return expected_events()


@pytest.fixture
def report_cast(make_user, api_for):
    """Who a model's report tells of: its owner, the CI account that registers and
    requests, two reviewers, and compliance, who exports it. (users, api) by name."""
    users = {
        "olivia": make_user("olivia", "owner"),
        "ci": make_user("ci-bot", "ci"),
        "rita": make_user("rita", "reviewer"),
        "raj": make_user("raj", "reviewer"),
        "carla": make_user("carla", "compliance"),
    }
    return users, {name: api_for(user) for name, user in users.items()}


@pytest.fixture
def reader(db):
    """A client of someone who reads the whole trail, made without the services (which
    would audit the making), so the log holds nothing but what a test put there."""
    user = get_user_model().objects.create_user("carla", password="correct-horse-battery")
    user.user_permissions.add(
        Permission.objects.get(content_type__app_label="audits", codename="view_auditevent")
    )
    api = APIClient()
    api.force_authenticate(user)
    api.user = user
    return api


def download(response) -> bytes:
    assert response.status_code == 200, response.content
    return b"".join(response.streaming_content)


def verify_audit(*args: str) -> tuple[int, str]:
    """manage.py verify_audit: its exit code, and what it wrote (stderr when it failed)."""
    out, err = io.StringIO(), io.StringIO()
    try:
        call_command("verify_audit", *args, stdout=out, stderr=err)
    except SystemExit as exit_:
        return exit_.code, err.getvalue()
    return 0, out.getvalue()
