import io

import pytest
from django.contrib.auth.models import Group, User
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from audits.models import AuditEvent
from governance.models import ApiToken

pytestmark = pytest.mark.django_db


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_setup_roles_is_idempotent():
    run("setup_roles")
    groups = {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    }
    events = AuditEvent.objects.count()
    assert set(groups) == {"owner", "reviewer", "compliance", "ci", "admin"}
    assert "add_modelversion" in groups["ci"]
    assert "add_modelversion" not in groups["reviewer"]

    assert "already up to date" in run("setup_roles")
    assert AuditEvent.objects.count() == events
    assert {
        g.name: set(g.permissions.values_list("codename", flat=True)) for g in Group.objects.all()
    } == groups


def test_add_user_prints_a_working_token_alone_on_the_last_line():
    output = run("add_user", "ci-bot", "--role", "ci", "--token")
    token = output.rstrip("\n").splitlines()[-1]
    assert token.startswith("mg_") and " " not in token
    # Only the digest is stored.
    assert not ApiToken.objects.filter(key_hash=token).exists()
    for scheme in ("Bearer", "Token"):
        api = APIClient()
        api.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
        assert api.get("/api/v1/models/").status_code == 200


def test_add_user_creates_then_updates_and_audits_each_role():
    run("add_user", "rita", "--role", "reviewer", "--password", "first-password-1")
    run(
        "add_user",
        "rita",
        "--role",
        "reviewer",
        "--role",
        "compliance",
        "--password",
        "second-password-2",
    )
    rita = User.objects.get(username="rita")
    assert set(rita.groups.values_list("name", flat=True)) == {"reviewer", "compliance"}
    assert rita.is_staff and not rita.is_superuser
    assert rita.check_password("second-password-2")
    granted = list(
        AuditEvent.objects.filter(action="role.granted").values_list("data__role", flat=True)
    )
    assert granted == ["reviewer", "compliance"]
    assert list(AuditEvent.objects.filter(object_type="user").values_list("action", flat=True)) == [
        "user.created",
        "role.granted",
        "user.updated",
        "role.granted",
    ]
    assert "second-password-2" not in str(list(AuditEvent.objects.values_list("data", flat=True)))


def test_ci_accounts_are_not_staff():
    run("add_user", "ci-bot", "--role", "ci")
    assert not User.objects.get(username="ci-bot").is_staff


def test_add_user_refuses_an_unknown_role():
    with pytest.raises(CommandError):
        run("add_user", "x", "--role", "superhero")


def test_a_revoked_token_no_longer_works(make_user):
    from audits.context import audit_context
    from governance.services import token_create, token_revoke

    user = make_user("carla", "compliance")
    with audit_context():
        token, secret = token_create(actor=None, user=user)
        token_revoke(actor=user, token=token)
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    assert api.get("/api/v1/models/").status_code == 401
    assert list(
        AuditEvent.objects.filter(object_type="api_token").values_list("action", "actor")
    ) == [
        ("token.created", "system"),
        ("token.revoked", "carla"),
    ]
