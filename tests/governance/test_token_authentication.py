"""An API token loads its user, roles and permissions in one statement, and the
permissions it loads are exactly those Django's own backend would find."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext

from audits.context import audit_context
from audits.models import ActorKind
from audits.services import actor_fields
from governance.authentication import user_for_token
from governance.roles import ROLES
from governance.services import role_grant, token_create, token_revoke

pytestmark = pytest.mark.django_db


def _token(user) -> str:
    with audit_context():
        _, secret = token_create(actor=None, user=user, name="t")
    return secret


def _as_django_sees_it(user) -> tuple[set[str], set[str], set[str]]:
    fresh = get_user_model().objects.get(pk=user.pk)
    return (
        fresh.get_user_permissions(),
        fresh.get_group_permissions(),
        fresh.get_all_permissions(),
    )


@pytest.mark.parametrize("role", ROLES)
def test_it_loads_the_permissions_djangos_backend_would(make_user, role):
    user = make_user(f"someone-{role}", role)
    secret = _token(user)

    with CaptureQueriesContext(connection) as queries:
        loaded, token = user_for_token(secret)
        permissions = (
            loaded.get_user_permissions(),
            loaded.get_group_permissions(),
            loaded.get_all_permissions(),
        )
        kind = actor_fields(loaded)[1]

    assert len(queries) == 1
    assert loaded.pk == user.pk and token.user_id == user.pk
    assert loaded.get_username() == user.get_username()
    assert permissions == _as_django_sees_it(user)
    assert permissions[2], "every role holds some permission"
    assert kind == (ActorKind.SERVICE if role == "ci" else ActorKind.USER)


def test_direct_permissions_and_several_roles_add_up(make_user):
    user = make_user("mixed", "owner", "ci")
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))

    loaded, _ = user_for_token(_token(user))

    assert "audits.view_auditevent" in loaded.get_user_permissions()
    assert (
        loaded.get_user_permissions(),
        loaded.get_group_permissions(),
        loaded.get_all_permissions(),
    ) == _as_django_sees_it(user)
    assert actor_fields(loaded)[1] == ActorKind.SERVICE


def test_a_user_without_roles_is_known_but_holds_nothing(make_user):
    user = make_user("nobody")

    loaded, _ = user_for_token(_token(user))

    assert loaded.pk == user.pk
    assert loaded.get_all_permissions() == set()
    assert not loaded.has_perm("registry.view_registeredmodel")
    assert actor_fields(loaded)[1] == ActorKind.USER


def test_a_superuser_holds_every_permission(make_user):
    user = make_user("root")
    get_user_model().objects.filter(pk=user.pk).update(is_superuser=True)

    loaded, _ = user_for_token(_token(user))

    assert loaded.is_superuser
    assert loaded.has_perm("governance.change_policy")
    assert loaded.get_all_permissions() == _as_django_sees_it(user)[2]


def test_a_role_taken_away_is_gone_on_the_next_call(make_user):
    user = make_user("leaver", "ci")
    secret = _token(user)
    assert user_for_token(secret)[0].has_perm("registry.add_modelversion")

    with audit_context():
        role_grant(actor=None, user=user, role="ci", revoke=True)

    loaded, _ = user_for_token(secret)
    assert not loaded.has_perm("registry.add_modelversion")
    assert actor_fields(loaded)[1] == ActorKind.USER


def test_unknown_revoked_and_inactive_find_nobody(make_user):
    user = make_user("temp", "ci")
    secret = _token(user)
    assert user_for_token("mg_unknown") == (None, None)

    get_user_model().objects.filter(pk=user.pk).update(is_active=False)
    assert user_for_token(secret) == (None, None)

    get_user_model().objects.filter(pk=user.pk).update(is_active=True)
    loaded, token = user_for_token(secret)
    assert loaded is not None
    with audit_context():
        token_revoke(actor=None, token=token)
    assert user_for_token(secret) == (None, None)
