"""The access review: who holds which role and object permission, as CSV, audited."""

import csv
import hashlib
import io

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.http import HttpRequest
from django.test import Client

from audits.chain import format_time
from audits.models import AuditEvent
from governance.access_review import HEADER, access_review_rows
from governance.services import user_upsert
from registry.services import model_permission_grant
from tests.factories import make_model

pytestmark = pytest.mark.django_db


@pytest.fixture
def staff(make_user, api_for):
    users = {
        "olivia": make_user("olivia", "owner"),
        "carla": make_user("carla", "compliance"),
        "ci": make_user("ci-bot", "ci"),
        "rita": make_user("rita", "reviewer"),
        "ada": make_user("ada", "admin"),
    }
    users["nemo"], _ = user_upsert(actor=None, username="nemo")
    dora, _ = user_upsert(actor=None, username="dora")
    dora.user_permissions.add(Permission.objects.get(codename="view_user"))
    get_user_model().objects.create_superuser("root", password="correct-horse-battery")
    Group.objects.create(name="fraud-team")
    fraud = make_model(users["olivia"], "fraud")
    model_permission_grant(actor=users["ada"], model=fraud, permission="review", user="rita")
    model_permission_grant(actor=users["ada"], model=fraud, permission="review", group="fraud-team")
    assert Client().login(
        request=HttpRequest(), username="olivia", password="correct-horse-battery"
    )
    return users, api_for


def test_it_lists_every_role_and_object_permission_as_csv(staff):
    users, api_for = staff
    response = api_for(users["carla"]).get("/api/v1/access-review/")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="access-review-')
    body = b"".join(response.streaming_content)

    last_login = format_time(get_user_model().objects.get(username="olivia").last_login)
    assert body.decode().split("\r\n") == [
        "principal_type,principal,is_active,is_staff,is_superuser,last_login,grant,role,"
        "permission,object_type,object",
        "user,ada,true,true,false,,role,admin,,,",
        "user,carla,true,true,false,,role,compliance,,,",
        "user,ci-bot,true,false,false,,role,ci,,,",
        "user,dora,true,false,false,,permission,,auth.view_user,,",
        "user,nemo,true,false,false,,none,,,,",
        f"user,olivia,true,true,false,{last_login},role,owner,,,",
        f"user,olivia,true,true,false,{last_login},object_permission,,"
        "registry.change_registeredmodel,registered_model,fraud",
        "user,rita,true,true,false,,role,reviewer,,,",
        "user,rita,true,true,false,,object_permission,,registry.review_registeredmodel,"
        "registered_model,fraud",
        "user,root,true,true,true,,superuser,,,,",
        "group,fraud-team,,,,,object_permission,,registry.review_registeredmodel,"
        "registered_model,fraud",
        "",
    ]

    exported = AuditEvent.objects.order_by("-seq").first()
    assert (exported.action, exported.actor, exported.object_id) == (
        "audit.exported",
        "carla",
        response["X-Audit-Export-Id"],
    )
    assert {k: exported.data[k] for k in ("kind", "format", "filters", "rows", "sha256")} == {
        "kind": "access_review",
        "format": "csv",
        "filters": {},
        "rows": 11,
        "sha256": hashlib.sha256(body).hexdigest(),
    }


@pytest.mark.parametrize(("who", "status"), [("ada", 200), ("olivia", 403), ("rita", 403)])
def test_only_compliance_and_admin_review_access(staff, who, status):
    users, api_for = staff
    assert api_for(users[who]).get("/api/v1/access-review/").status_code == status


def test_names_that_begin_like_a_formula_get_an_apostrophe(make_user, api_for):
    # Django's username validator allows + - @; the ORM takes anything, as a directory
    # sync or a custom user form might.
    make_user("+alice", "owner")
    make_user("-bob", "reviewer")
    reader = make_user("@carol", "compliance")
    evil = get_user_model().objects.create_user('=HYPERLINK("http://evil/", "x")')
    evil.groups.add(Group.objects.create(name="\tteam"), Group.objects.create(name="\r=1+1"))

    response = api_for(reader).get("/api/v1/access-review/")
    assert response.status_code == 200
    body = b"".join(response.streaming_content).decode("utf-8")
    rows = list(csv.reader(io.StringIO(body, newline="")))

    def neutralised(value):
        return "'" + value if value.startswith(("=", "+", "-", "@", "\t", "\r")) else value

    expected = [
        list(HEADER),
        *([neutralised(cell) for cell in row] for row in access_review_rows()),
    ]
    assert rows == expected
    # Sorted: the database's collation may order names as if without punctuation.
    assert sorted(row[1] for row in rows[1:]) == [
        "'+alice",
        "'-bob",
        '\'=HYPERLINK("http://evil/", "x")',
        '\'=HYPERLINK("http://evil/", "x")',
        "'@carol",
    ]
    assert [row[7] for row in rows[1:] if row[6] == "group"] == ["'\tteam", "'\r=1+1"]
