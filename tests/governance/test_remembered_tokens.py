"""A worker remembers the tokens it authenticated for registrations, and acts on that
memory only in the statement that registers, which requires the token unrevoked and
the credential epoch unchanged. Every change to a credential must therefore move the
epoch on at commit and be obeyed by the very next registration.

These tests commit (transaction=True): the epoch moves when a change commits, as it
does between two requests of a running service.
"""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection, transaction
from django.db.models.functions import Now
from django.test.utils import CaptureQueriesContext

from audits.context import audit_context
from audits.durability import FLUSH_SQL as FLUSH
from audits.models import AuditEvent
from governance import authentication
from governance.authentication import Remembered, hash_token
from governance.models import ApiToken, CredentialEpoch
from governance.services import role_grant, token_create, token_revoke
from registry import registration
from registry.errors import Unconfirmed
from registry.models import ModelVersion, RegisteredModel
from tests.factories import make_model, version_payload

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

URL = "/api/v1/models/fraud/versions/"
TOKEN_QUERY = "SELECT 'token'"


def _register(api, seed, url=URL):
    return api.post(url, json.dumps(version_payload(seed)), content_type="application/json")


def _registered(api, seed) -> list[str]:
    """Registers seed (201) and returns the statements the request sent."""
    with CaptureQueriesContext(connection) as queries:
        response = _register(api, seed)
    assert response.status_code == 201, response.content
    return [query["sql"] for query in queries.captured_queries]


def _epoch() -> int:
    # As the statements read it: 0 while the row is missing (a flushed test database).
    return CredentialEpoch.objects.filter(id=1).values_list("value", flat=True).first() or 0


def _versions() -> int:
    return ModelVersion.objects.filter(model__name="fraud").count()


def test_a_token_is_looked_up_once_then_the_registration_alone_checks_it(ci_api):
    first = _registered(ci_api, 1)
    second = _registered(ci_api, 2)
    third = _registered(ci_api, 3)

    # The first request authenticates (the token query), records the token's first
    # use, registers and waits for the disk; the next two register, with a statement
    # that also requires the token and the epoch, and wait for the disk.
    assert len(first) == 4 and first[0].lstrip().startswith(TOKEN_QUERY)
    assert len(second) == 2 and len(third) == 2
    assert "revoked_at IS NULL" in second[0] and "governance_credentialepoch" in second[0]
    assert second[1] == third[1] == FLUSH
    assert list(
        ModelVersion.objects.filter(model__name="fraud").values_list("version", flat=True)
    ) == [3, 2, 1]


def test_a_revoked_token_is_refused_by_the_next_registration(ci_api, ci):
    _registered(ci_api, 1)
    with audit_context():
        token_revoke(actor=None, token=ApiToken.objects.get(user=ci))
    events = AuditEvent.objects.count()

    response = _register(ci_api, 2)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert (_versions(), AuditEvent.objects.count()) == (1, events)


def _expire_keeping_the_epoch(ci):
    """Expire the token by the database's clock and put the epoch back, so only the
    expiry condition itself can refuse a remembered token."""
    before = _epoch()
    ApiToken.objects.filter(user=ci).update(expires_at=Now() - timedelta(seconds=1))
    CredentialEpoch.objects.filter(id=1).update(value=before)


def test_an_expired_token_is_refused_by_the_next_registration(ci_api, ci):
    _registered(ci_api, 1)
    _expire_keeping_the_epoch(ci)
    events = AuditEvent.objects.count()

    response = _register(ci_api, 2)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert (_versions(), AuditEvent.objects.count()) == (1, events)


def test_a_registration_by_an_expired_token_stores_nothing(fraud, ci):
    with audit_context():
        token, secret = token_create(actor=None, user=ci)
    remembered = Remembered(hash_token(secret), ci, token, _epoch())
    _expire_keeping_the_epoch(ci)

    with audit_context(), pytest.raises(Unconfirmed):
        registration.model_version_register(
            actor=ci, model="fraud", condition=remembered.still_valid, **version_payload(1)
        )

    assert _versions() == 0


def test_a_remembered_token_records_its_use_once_per_interval(ci_api, ci, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: now[0])
    _registered(ci_api, 1)
    ApiToken.objects.filter(user=ci).update(last_used_at=Now() - timedelta(minutes=5))
    stale = ApiToken.objects.get(user=ci).last_used_at

    within = _registered(ci_api, 2)
    now[0] += 60
    after = _registered(ci_api, 3)

    # The remembered registration and its flush; after the interval, the use too.
    assert len(within) == 2
    assert len(after) == 3 and after[2].startswith('UPDATE "governance_apitoken"')
    assert ApiToken.objects.get(user=ci).last_used_at > stale


def test_a_deactivated_user_is_refused_by_the_next_registration(ci_api, ci):
    _registered(ci_api, 1)
    ci.is_active = False
    ci.save(update_fields=["is_active"])

    assert _register(ci_api, 2).status_code == 401
    assert _versions() == 1


def test_a_role_taken_away_is_obeyed_by_the_next_registration(ci_api, ci):
    _registered(ci_api, 1)
    with audit_context():
        role_grant(actor=None, user=ci, role="ci", revoke=True)

    response = _register(ci_api, 2)

    assert response.status_code == 403
    assert _versions() == 1


def test_a_permission_taken_from_the_role_is_obeyed_by_the_next_registration(ci_api):
    _registered(ci_api, 1)
    add_version = Permission.objects.get(
        content_type__app_label="registry", codename="add_modelversion"
    )
    Group.objects.get(name="ci").permissions.remove(add_version)

    assert _register(ci_api, 2).status_code == 403
    assert _versions() == 1


def test_a_renamed_account_is_audited_under_its_new_name(ci_api, ci):
    _registered(ci_api, 1)
    ci.username = "ci-bot-renamed"
    ci.save(update_fields=["username"])

    assert _register(ci_api, 2).status_code == 201
    actors = list(
        AuditEvent.objects.filter(action="model_version.registered")
        .order_by("seq")
        .values_list("actor", flat=True)
    )
    assert actors == ["ci-bot", "ci-bot-renamed"]


def test_what_a_remembered_token_does_not_register_is_answered_afresh(ci_api):
    first = _register(ci_api, "same")
    _registered(ci_api, "other")  # the token is remembered from here on

    again = _register(ci_api, "same")
    ghost = _register(ci_api, 1, url="/api/v1/models/ghost/versions/")

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert ghost.status_code == 404
    assert ghost["Content-Type"] == "application/problem+json"
    assert _versions() == 2


def test_an_unrelated_credential_change_costs_one_lookup_and_nothing_else(ci_api, make_user):
    _registered(ci_api, 1)
    make_user("newcomer", "reviewer")

    after_change = _registered(ci_api, 2)
    remembered_again = _registered(ci_api, 3)

    # The stale memory's statement registers nothing; the token is looked up again,
    # the version registered (and flushed), and the fresh memory serves the next one.
    assert len(after_change) == 4
    assert after_change[1].lstrip().startswith(TOKEN_QUERY)
    assert len(remembered_again) == 2
    assert _versions() == 3


@pytest.mark.parametrize("epoch_offset", [-1, 1])
def test_a_registration_on_another_epoch_stores_nothing(fraud, ci, epoch_offset):
    with audit_context():
        token, secret = token_create(actor=None, user=ci)
    model = RegisteredModel.objects.get(pk=fraud.pk)
    events = AuditEvent.objects.count()
    stale = Remembered(hash_token(secret), ci, token, _epoch() + epoch_offset)

    with audit_context(), pytest.raises(Unconfirmed):
        registration.model_version_register(
            actor=ci, model="fraud", condition=stale.still_valid, **version_payload(1)
        )

    assert _versions() == 0
    assert RegisteredModel.objects.get(pk=fraud.pk).last_version == model.last_version
    assert AuditEvent.objects.count() == events


def test_an_owner_registering_by_grant_is_looked_up_every_time(fraud, api_for):
    # Owners register through their object permissions, which only a lookup decides.
    owner_api = api_for(fraud.created_by)

    first, second = _registered(owner_api, 1), _registered(owner_api, 2)

    assert first[0].lstrip().startswith(TOKEN_QUERY)
    assert second[0].lstrip().startswith(TOKEN_QUERY)
    assert _versions() == 2


def _credential_changes():
    def token(ci):
        ApiToken.objects.create(user=ci, key_hash="0" * 64, prefix="mg_0")

    def token_revoked(ci):
        ApiToken.objects.filter(user=ci).update(revoked_at=Now())

    def token_expiry(ci):
        ApiToken.objects.filter(user=ci).update(expires_at=Now())

    def token_deleted(ci):
        ApiToken.objects.filter(user=ci).delete()

    def user(ci):
        ci.first_name = "Cee"
        ci.save(update_fields=["first_name"])

    def membership(ci):
        ci.groups.add(Group.objects.create(name="extra"))

    def group(ci):
        Group.objects.filter(name="ci").update(name="ci")

    def group_permission(ci):
        Group.objects.get(name="ci").permissions.add(
            Permission.objects.get(
                content_type__app_label="registry", codename="change_modelversion"
            )
        )

    def user_permission(ci):
        ci.user_permissions.add(Permission.objects.first())

    def permission(ci):
        Permission.objects.filter(codename="add_modelversion").update(name="Can register")

    def content_type(ci):
        ContentType.objects.create(app_label="elsewhere", model="thing")

    return [
        token,
        token_revoked,
        token_expiry,
        token_deleted,
        user,
        membership,
        group,
        group_permission,
        user_permission,
        permission,
        content_type,
    ]


@pytest.mark.parametrize("change", _credential_changes(), ids=lambda change: change.__name__)
def test_every_credential_change_moves_the_epoch_at_commit(ci, change):
    with audit_context():
        token_create(actor=None, user=ci)
    before = _epoch()
    with transaction.atomic():
        change(ci)
        # Deferred: the row is locked and moved when the transaction commits.
        assert _epoch() == before
    assert _epoch() > before


def test_a_tokens_last_use_leaves_the_epoch_alone(ci):
    with audit_context():
        token_create(actor=None, user=ci)
    before = _epoch()

    ApiToken.objects.filter(user=ci).update(last_used_at=Now())
    ApiToken.objects.filter(user=ci).update(last_used_at=None)

    assert _epoch() == before


def test_registrations_and_models_leave_the_epoch_alone(ci_api, ci):
    before = _epoch()
    _registered(ci_api, 1)
    _registered(ci_api, 2)
    make_model(ci, "other")

    assert _epoch() == before
