"""Django's own user and group screens change roles without a service of ours: what they
do is written to the audit chain as admin.action."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.http import HttpRequest
from django.test import Client

from audits.models import AuditEvent

pytestmark = pytest.mark.django_db


def test_adding_and_deleting_a_group_in_the_admin_is_audited(roles):
    get_user_model().objects.create_superuser("root", password="correct-horse-battery")
    client = Client()
    assert client.login(request=HttpRequest(), username="root", password="correct-horse-battery")
    start = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first()
    view = Permission.objects.get(content_type__app_label="audits", codename="view_auditevent")

    added = client.post("/admin/auth/group/add/", {"name": "auditors", "permissions": [view.pk]})
    assert added.status_code == 302
    group = Group.objects.get(name="auditors")
    deleted = client.post(f"/admin/auth/group/{group.pk}/delete/", {"post": "yes"})
    assert deleted.status_code == 302

    events = AuditEvent.objects.filter(seq__gt=start).order_by("seq")
    assert [(e.action, e.actor, e.object_type, e.object_id, e.data) for e in events] == [
        (
            "admin.action",
            "root",
            "group",
            str(group.pk),
            {
                "operation": "added",
                "model": "auth.group",
                "object": "auditors",
                "change": [{"added": {}}],
                "permissions": ["audits.view_auditevent"],
            },
        ),
        (
            "admin.action",
            "root",
            "group",
            str(group.pk),
            {
                "operation": "deleted",
                "model": "auth.group",
                "object": "auditors",
                "change": "",
                "permissions": ["audits.view_auditevent"],
            },
        ),
    ]
