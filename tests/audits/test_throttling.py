"""The calls that cost the most (verifying the chain, exports and the access review,
taking a checkpoint) are limited per user: the call past the limit answers 429
problem+json with Retry-After and does nothing, and other users are not held back."""

import pytest
from django.conf import settings
from django.core.cache.backends.redis import RedisCache
from rest_framework.throttling import ScopedRateThrottle

from audits.models import AuditCheckpoint, AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture
def officers(make_user, api_for):
    carla, cora = make_user("carla", "compliance"), make_user("cora", "compliance")
    return (carla, api_for(carla)), (cora, api_for(cora))


@pytest.fixture
def low_rates(monkeypatch):
    # DRF reads the rates once, at import; the configured ones are tested below.
    rates = {"audit_export": "3/hour", "audit_checkpoint": "2/hour"}
    monkeypatch.setattr(
        ScopedRateThrottle, "THROTTLE_RATES", {**ScopedRateThrottle.THROTTLE_RATES, **rates}
    )


def configured_limit(scope: str) -> int:
    rate = settings.REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"][scope]
    return ScopedRateThrottle().parse_rate(rate)[0]


def assert_throttled(response):
    assert response.status_code == 429
    assert response["Content-Type"] == "application/problem+json"
    problem = response.json()
    assert (problem["status"], problem["type"]) == (429, "urn:modelgov:problem:throttled")
    assert int(response["Retry-After"]) >= 1


def test_verification_is_limited_per_user_at_the_configured_rate(officers):
    (_, carla), (_, cora) = officers
    for _ in range(configured_limit("audit_verify")):
        assert carla.get("/api/v1/audit/verify/").status_code == 200
    assert_throttled(carla.get("/api/v1/audit/verify/"))
    assert cora.get("/api/v1/audit/verify/").json()["ok"] is True


def test_an_export_past_the_limit_is_refused_and_not_recorded(officers, low_rates):
    (_, carla), (_, cora) = officers
    for path in ("audit/export/?format=jsonl", "audit/export/?format=csv", "access-review/"):
        response = carla.get(f"/api/v1/{path}")
        assert response.status_code == 200
        b"".join(response.streaming_content)
    assert AuditEvent.objects.filter(action="audit.exported").count() == 3

    # The access review is an export too, and shares the budget.
    for path in ("audit/export/?format=csv", "audit/export/?format=pdf", "access-review/"):
        assert_throttled(carla.get(f"/api/v1/{path}"))
    assert AuditEvent.objects.filter(action="audit.exported").count() == 3

    response = cora.get("/api/v1/audit/export/?format=csv")
    assert response.status_code == 200
    b"".join(response.streaming_content)
    assert AuditEvent.objects.filter(action="audit.exported").count() == 4


def test_taking_checkpoints_is_limited_reading_them_is_not(officers, low_rates):
    (_, carla), (_, cora) = officers
    for _ in range(2):
        assert carla.post("/api/v1/audit/checkpoints/").status_code == 201
    assert_throttled(carla.post("/api/v1/audit/checkpoints/"))
    assert AuditCheckpoint.objects.count() == 2
    assert AuditEvent.objects.filter(action="audit.checkpointed").count() == 2
    for _ in range(3):
        assert carla.get("/api/v1/audit/checkpoints/").status_code == 200
    assert cora.post("/api/v1/audit/checkpoints/").status_code == 201


@pytest.mark.redis
def test_with_redis_every_process_sees_the_same_count(officers):
    """Another web process has a Redis client of its own: it finds the user's calls."""
    (carla_user, carla), _ = officers
    assert carla.get("/api/v1/audit/verify/").status_code == 200
    assert carla.get("/api/v1/audit/verify/").status_code == 200
    config = settings.CACHES["default"]
    assert config["BACKEND"] == "django.core.cache.backends.redis.RedisCache"
    elsewhere = RedisCache(config["LOCATION"], config)
    assert len(elsewhere.get(f"throttle_audit_verify_{carla_user.pk}")) == 2
